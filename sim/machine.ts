/**
 * `createMachine()`: a simulated machine (Linux 6.12 with VFIO and iommufd, an IOMMU model, PCI
 * functions) behind a {@link SimKernel}: x86 with VT-d or virtio-iommu, arm64 with SMMUv3, or a
 * POWER9 PowerNV host with sPAPR TCE windows (powerpc ioctl numbers, 64 KiB pages, the VFIO
 * container with the sPAPR TCE driver and no VFIO cdev; on it each IOMMU group is one PE).
 *
 * Topology rules:
 * - the default machine has one QEMU "edu" device at 0000:00:02.0 bound to vfio-pci;
 * - further devices without a `bdf` take the next free slot on bus 0 (00:03.0, 00:04.0, …);
 * - IOMMU groups are numbered as QEMU q35 with intel-iommu numbers them — one group per device,
 *   the group number being the slot on bus 0 (edu at 00:02.0 is group 2); devices given the same
 *   `group` share it; a function off bus 0 takes the lowest free number from 32 up;
 * - the process has RLIMIT_MEMLOCK 8 MiB (Linux's default) but CAP_IPC_LOCK by default, so tests
 *   are not limited unless they ask (`capIpcLock: false`).
 *
 * Everything is deterministic: the same options and the same calls give the same results; the
 * seed drives every random choice a device model makes.
 *
 * @example
 * ```ts
 * const m = createMachine({ iommu: "vtd" });
 * const fd = m.kernel.open("/dev/vfio/vfio", O_RDWR);
 * ```
 *
 * @module
 */

import { VirtualClock } from "./clock.ts";
import type { IommuFault, IommuModel } from "./iommu/model.ts";
import type { DeviceFaults } from "./faults/device_faults.ts";
import { connectWithFaults } from "./faults/connect.ts";
import { IommufdContext } from "./iommufd/mod.ts";
import { PciBus, VFIO_PCI_DRIVER } from "./kernel/pci_bus.ts";
import type { SimIommuGroup, SimPciFunction } from "./kernel/pci_function.ts";
import { DEFAULT_MEMLOCK_LIMIT, SimKernel } from "./kernel/sim_kernel.ts";
import { buildSysfs } from "./kernel/sysfs.ts";
import { PCI_COMMAND } from "./pci/pci_regs.ts";
import { PhysicalMemory } from "./memory.ts";
import { SmmuV3Iommu } from "./iommu/smmuv3/smmuv3.ts";
import { devicePasidWidth } from "./pci/ext_cap.ts";
import type { PciDeviceModel } from "./pci/device.ts";
import { IrqRouter } from "./vfio/device.ts";
import { DEFAULT_DMA_ENTRY_LIMIT } from "./vfio/type1.ts";
import { VfioSubsystem } from "./vfio/vfio.ts";
import {
  createDeviceModel,
  createIommuModel,
  IOMMU_PLATFORMS,
  isNicModel,
} from "./machine_models.ts";
import { EthernetSegment } from "./net/segment.ts";
import { DEFAULT_KERNEL_VERSION, parseKernelVersion } from "./kernel_version.ts";
import { IOASID_PROPOSAL_PATH } from "../ffi/uapi/proposals.ts";
import { iommuKinds, type MachinePasids, machinePasids } from "./machine_pasids.ts";
import { SystemPasidSpace } from "./kernel/pasid_space.ts";
import { VirtioIommu } from "./iommu/virtio_iommu/virtio_iommu.ts";
import type { SimFile, SimProcess } from "./kernel/file.ts";
import { TraceRing } from "./trace.ts";
import { checkPlatformOptions, type MachineOptions } from "./machine_options.ts";
import { DEFAULT_DEVICES, layout, parseBdf, requesterOf } from "./machine_layout.ts";

export type { IommuModelName, ModelContext } from "./machine_models.ts";
export type { DeviceModelFactory, MachineDevice, MachineOptions } from "./machine_options.ts";

/** A simulated machine. */
export interface SimMachine {
  /** The kernel (pass it wherever a {@link Kernel} is expected). */
  readonly kernel: SimKernel;
  /** Virtual time. */
  readonly clock: VirtualClock;
  /** Physical memory. */
  readonly memory: PhysicalMemory;
  /** The IOMMU (instance 0). */
  readonly iommu: IommuModel;
  /** Every IOMMU instance: `iommu`, then `additionalIommus`. */
  readonly iommus: readonly IommuModel[];
  /** PCI functions, in bdf order. */
  readonly functions: readonly SimPciFunction[];
  /** The function at `bdf` (throws for an unknown address). */
  fn(bdf: string): SimPciFunction;
  /** IOMMU faults recorded so far (of every instance, oldest first). */
  faults(): readonly IommuFault[];
  /**
   * Hot-unplug IOMMU instance `index` (a virtio-iommu): it answers no request any more and, with
   * the PASID proposal, the PASIDs allocated through it are released through their teardown and
   * quarantine while the other instances keep serving. Throws for another kind or a bad index.
   */
  unplugIommu(index: number): void;
  /**
   * The trace of device, IOMMU, DMA and VFIO events still in the ring (oldest first; at most
   * {@link MachineOptions.traceCapacity} lines), as text. Use `tracer` to follow events live.
   */
  readonly trace: readonly string[];
  /** The bounded trace ring, with subscribers that see every event as it happens. */
  readonly tracer: TraceRing;
  /** The Ethernet segment NIC models are plugged into by default (attach peers, taps, pcap). */
  readonly segment: EthernetSegment;
  /** Every segment by the number devices gave ({@link MachineDevice.segment}; 0 is `segment`). */
  readonly segments: ReadonlyMap<number, EthernetSegment>;
  /** The proposed system-wide PASID space, when `pasidAllocatorProposal` is on. */
  readonly pasidSpace?: MachinePasids["space"];
  /** **Proposal**: the space, its teardown, allocators and SVA processes, when the proposal is on. */
  readonly pasids?: MachinePasids;
  /**
   * Fault injection for the function at `bdf` (throws for an unknown address): DMA faults,
   * a hang, lost and spurious interrupts, link down/up, surprise removal, EEH freeze (see
   * {@link DeviceFaults}).
   */
  inject(bdf: string): DeviceFaults;
}

/** Major number of the vfio cdevs (dynamic on Linux; 511 is what 6.12 guests show first). */
const VFIO_CDEV_MAJOR = 511;
/** Physical memory default. */
const DEFAULT_PHYSICAL_MEMORY = 4 * 1024 ** 3;

/** A deterministic PRNG (mulberry32) from a seed. */
function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** Build a machine. */
export function createMachine(options: MachineOptions): SimMachine {
  const kernelVersion = parseKernelVersion(options.kernelVersion ?? DEFAULT_KERNEL_VERSION);
  const platform = IOMMU_PLATFORMS[options.iommu];
  if (platform === undefined) {
    throw new Error(
      `createMachine: unknown IOMMU model "${options.iommu}" (want one of ${
        Object.keys(IOMMU_PLATFORMS).join(", ")
      })`,
    );
  }
  checkPlatformOptions(options, platform.vfioCdev);
  const clock = new VirtualClock();
  const tracer = new TraceRing(() => clock.nowNs, options.traceCapacity);
  const log = (line: string): void => tracer.write("iommu", line);
  const memory = new PhysicalMemory(options.physicalMemory ?? DEFAULT_PHYSICAL_MEMORY);
  const groupOfRequester = new Map<number, number>();
  const proposal = options.pasidAllocatorProposal;
  const proposalOptions = typeof proposal === "object" ? proposal : {};
  const pasidSpace = proposal
    ? new SystemPasidSpace(clock, proposalOptions.quarantineNs)
    : undefined;
  const devices = options.devices ?? DEFAULT_DEVICES;
  const places = layout(devices);
  const kinds = iommuKinds(options.iommu, options.additionalIommus, devices);
  const pasidWidths = new Map<number, number>(); // requester → PCIe PASID width
  const pasidTenant = { guest: "this machine" };
  const iommus = kinds.map((kind, instance) =>
    createIommuModel(kind, {
      memory,
      clock,
      intremap: options.intremap ?? true,
      log,
      pageSize: platform.pageSize,
      groupOf: (requester) => groupOfRequester.get(requester),
      pasidSpace,
      vtdScalableMode: options.vtdScalableMode === true ? {} : options.vtdScalableMode || undefined,
      smmuNesting: options.smmuNesting === true ? {} : options.smmuNesting || undefined,
      smmuSsidBits: options.smmuSsidBits,
      instance,
      ...(kinds.length > 1
        ? {
          endpoints: places.filter((_, i) => (devices[i].iommu ?? 0) === instance)
            .map((p) => requesterOf(p.bdf)),
        }
        : {}),
      pasidTenant,
      endpointPasidBits: (requester) => pasidWidths.get(requester) ?? 0,
    })
  );
  const iommu = iommus[0];
  const random = seededRandom(options.seed ?? 1);
  const segment = new EthernetSegment(clock);
  const segments = new Map<number, EthernetSegment>([[0, segment]]);
  const segmentFor = (n: number | undefined): EthernetSegment => {
    if (n === undefined) return segment;
    if (!Number.isInteger(n) || n < 0) {
      throw new Error(`createMachine: segment ${n}: want a non-negative integer`);
    }
    let s = segments.get(n);
    if (s === undefined) {
      s = new EthernetSegment(clock);
      segments.set(n, s);
    }
    return s;
  };
  const made = new Map<unknown, number>();
  const instances = (kind: unknown): number => {
    const n = made.get(kind) ?? 0;
    made.set(kind, n + 1);
    return n;
  };
  let nics = 0;

  const groups = new Map<number, { id: number; functions: SimPciFunction[] } & SimIommuGroup>();
  const functions: SimPciFunction[] = [];
  const routers = new Map<SimPciFunction, IrqRouter>();
  const injectors = new Map<string, DeviceFaults>();
  const native = new Map<string, string>();
  const bootDriver = new Map<SimPciFunction, string>();
  devices.forEach((d, i) => {
    const { bdf, group: groupId } = places[i];
    const { bus, slot, func } = parseBdf(bdf);
    const iommu = iommus[d.iommu ?? 0];
    let group = groups.get(groupId);
    if (group === undefined) {
      group = { id: groupId, iommu, functions: [], dmaOwner: undefined, dmaOwnerCookie: undefined };
      groups.set(groupId, group);
    }
    let model: PciDeviceModel;
    if (typeof d.model === "string") {
      const nic = nics;
      if (isNicModel(d.model)) nics++;
      model = createDeviceModel(d.model, {
        segment: segmentFor(d.segment),
        instance: instances(d.model),
        nic,
      });
    } else if (typeof d.model === "function") {
      model = d.model({ segment: segmentFor(d.segment), instance: instances(d.model), nic: nics });
    } else {
      model = d.model;
    }
    // What boot firmware left in COMMAND (platform data; the model's reset still clears it).
    model.config.write(PCI_COMMAND, 2, platform.firmwareCommand);
    const fn: SimPciFunction = {
      bdf,
      requester: (bus << 8) | (slot << 3) | func,
      group,
      model,
      driver: "",
      cdevIndex: undefined,
    };
    group.functions.push(fn);
    functions.push(fn);
    groupOfRequester.set(fn.requester, groupId);
    pasidWidths.set(fn.requester, devicePasidWidth(model.config));
    // arm_smmu_probe_device: the master's SSID bits from its PCIe PASID capability.
    if (iommu instanceof SmmuV3Iommu) {
      iommu.probeMaster(fn.requester, devicePasidWidth(model.config));
    }
    const router = new IrqRouter();
    routers.set(fn, router);
    const driver = d.driver ?? VFIO_PCI_DRIVER;
    if (driver !== VFIO_PCI_DRIVER && driver !== "") native.set(bdf, driver);
    if (driver !== "") bootDriver.set(fn, driver);
    const wired = connectWithFaults({
      fn,
      iommu,
      memory,
      clock,
      router,
      random,
      deviceLog: (line) => tracer.write("device", line),
      dmaLog: (line) => tracer.write("dma", line),
      remove: () => vfio.surpriseRemove(fn),
    });
    injectors.set(bdf, wired);
  });
  functions.sort((a, b) => (a.bdf < b.bdf ? -1 : a.bdf > b.bdf ? 1 : 0));

  const kernel = new SimKernel({
    clock,
    memory,
    memlockLimit: options.memlockLimit ?? DEFAULT_MEMLOCK_LIMIT,
    capIpcLock: options.capIpcLock ?? true,
    strict: options.strict,
    realtime: options.realtime,
    ioctlArch: platform.ioctlArch,
    pageSize: platform.pageSize,
  });
  const bus = new PciBus(functions, native);
  const wiring = pasidSpace
    ? machinePasids({
      space: pasidSpace,
      clock,
      arch: kernel.ioctlArch,
      iommus,
      functions: () => functions,
      drainTimeoutNs: proposalOptions.drainTimeoutNs,
      trace: log,
    })
    : undefined;
  const iommufd = (compatMode: boolean): IommufdContext =>
    new IommufdContext({
      allowUnsafeInterrupts: options.allowUnsafeInterrupts?.iommufd ?? false,
      pageSize: kernel.pageSize,
      memory,
      compatMode,
      ioctlArch: kernel.ioctlArch,
      kernelVersion,
      pasidPolicy: wiring?.policy,
      capSysResource: options.capSysResource ?? true,
      iommufdTest: options.iommufdTest ?? false,
      transparentHugepage: options.transparentHugepage ?? true,
    });
  const groupList = [...groups.values()].sort((a, b) => a.id - b.id);
  const otherDevices = new Map<string, (process: SimProcess) => SimFile>();
  if (wiring) {
    otherDevices.set(IOASID_PROPOSAL_PATH.slice("/dev/".length), (p) => wiring.openIoasid(p));
  }
  const vfio = new VfioSubsystem({
    env: {
      arch: kernel.ioctlArch,
      pageSize: kernel.pageSize,
      physical: memory,
      clock,
      refs: kernel.process,
      bus,
      iommuDrivers: platform.iommuDrivers,
      type1: {
        allowUnsafeInterrupts: options.allowUnsafeInterrupts?.type1 ?? false,
        dmaEntryLimit: options.dmaEntryLimit ?? DEFAULT_DMA_ENTRY_LIMIT,
      },
      dynamicMsix: true,
      kernelVersion,
      trace: (line) => tracer.write("vfio", line),
    },
    groups: groupList,
    routers,
    cdev: options.cdev ?? platform.vfioCdev,
    openIommufd: (options.iommufd ?? true) ? () => iommufd(false) : undefined,
    openCompatContainer: options.iommufdVfioContainer ? () => iommufd(true) : undefined,
    otherDevices,
  });
  bus.registerDriver(vfio.driver());
  for (const name of new Set(native.values())) bus.registerDriver({ name, managesDma: false });
  for (const fn of functions) {
    const driver = bootDriver.get(fn);
    if (driver !== undefined) bus.attach(fn, driver);
  }
  kernel.mount("dev", vfio.devDir());
  kernel.mount(
    "sys",
    buildSysfs({
      bus,
      groups: groupList,
      defaultDomainType: platform.defaultDomainType,
      cdevMajor: VFIO_CDEV_MAJOR,
      iommufdMockBus: options.iommufdTest ?? false,
      hugePmdSize: (options.transparentHugepage ?? true) ? platform.pageSize * 512 : undefined,
    }),
  );

  return {
    kernel,
    clock,
    memory,
    iommu,
    iommus,
    functions,
    fn(bdf: string): SimPciFunction {
      const f = functions.find((x) => x.bdf === bdf);
      if (f === undefined) throw new Error(`no PCI function ${bdf} in this machine`);
      return f;
    },
    faults: () =>
      iommus.length === 1
        ? iommu.faults
        : iommus.flatMap((i) => i.faults).sort((a, b) => a.timeNs - b.timeNs),
    unplugIommu(index: number): void {
      const target = iommus[index];
      if (!(target instanceof VirtioIommu)) {
        throw new Error(
          `unplugIommu(${index}): ${
            target === undefined ? "no such IOMMU instance" : `a ${target.facts.kind}`
          }; only a virtio-iommu can be hot-unplugged here`,
        );
      }
      target.unplug();
    },
    get trace(): readonly string[] {
      return tracer.lines();
    },
    tracer,
    segment,
    inject(bdf: string): DeviceFaults {
      const f = injectors.get(bdf);
      if (f === undefined) throw new Error(`no PCI function ${bdf} in this machine`);
      return f;
    },
    ...(wiring ? { pasidSpace: wiring.pasids.space, pasids: wiring.pasids } : {}),
    segments,
  };
}
