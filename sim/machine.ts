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
  type DeviceModelName,
  IOMMU_PLATFORMS,
  type IommuModelName,
  isNicModel,
  type ModelContext,
} from "./machine_models.ts";
import { EthernetSegment } from "./net/segment.ts";
import { DEFAULT_KERNEL_VERSION, kernelAtLeast, parseKernelVersion } from "./kernel_version.ts";
import { VIOMMU_MIN_KERNEL } from "../ffi/uapi/post_6_12.ts";
import { IOASID_PROPOSAL_PATH } from "../ffi/uapi/proposals.ts";
import { iommuKinds, type MachinePasids, machinePasids } from "./machine_pasids.ts";
import { SystemPasidSpace } from "./kernel/pasid_space.ts";
import { VirtioIommu } from "./iommu/virtio_iommu/virtio_iommu.ts";
import type { SimFile, SimProcess } from "./kernel/file.ts";
import { TraceRing } from "./trace.ts";

export type { IommuModelName, ModelContext } from "./machine_models.ts";

/**
 * Builds a device model while the machine is built, with what only the machine has (its Ethernet
 * segment for a NIC); the built-in models are made by such factories.
 */
export type DeviceModelFactory = (ctx: ModelContext) => PciDeviceModel;

/** One PCI function of the machine. */
export interface MachineDevice {
  /**
   * A built-in model by name, a model instance (your own {@link PciDeviceModel}), or a factory
   * called with the machine's {@link ModelContext}.
   */
  readonly model: DeviceModelName | PciDeviceModel | DeviceModelFactory;
  /** PCI address (default: the next free slot on bus 0). */
  readonly bdf?: string;
  /** Driver bound at boot (default "vfio-pci"; "" leaves it unbound; other names are host drivers). */
  readonly driver?: string;
  /** IOMMU group number; devices with the same number share a group. */
  readonly group?: number;
  /**
   * The IOMMU instance the function sits behind: 0 (default) is `iommu`, 1… are
   * `additionalIommus`. Functions of one group share their IOMMU.
   */
  readonly iommu?: number;
  /**
   * The Ethernet segment a NIC model plugs into: 0 (default) is {@link SimMachine.segment}; any
   * other number is a segment of its own, shared by the devices given that number (two NICs on
   * two wires: 1 and 2). See {@link SimMachine.segments}.
   */
  readonly segment?: number;
}

/** Options of {@link createMachine}. */
export interface MachineOptions {
  /**
   * The IOMMU model: "vtd", "smmuv3", "virtio-iommu" or "spapr"; it also picks the platform
   * (ioctl encoding, page size, VFIO container drivers; see machine_models.ts).
   */
  readonly iommu: IommuModelName;
  /**
   * Further IOMMU instances (1, 2, …) besides `iommu` (instance 0), each with its own endpoints
   * (the devices whose `iommu` names it) and all sharing the proposed system-wide PASID space.
   * Only several virtio-iommu devices are modelled, and one machine's IOMMUs are of one kind: a
   * VT-d beside a virtio-iommu is refused for the reason seeds/000 gives (see machine_pasids.ts).
   * The virtio spec allows several instances (seeds/000: "it's up to the hypervisor"); QEMU 10's
   * x86 machines refuse a second vIOMMU of any kind ("QEMU does not support multiple vIOMMUs for
   * x86 yet"), so no VM bench machine can check this topology. Default: none.
   */
  readonly additionalIommus?: readonly IommuModelName[];
  /** PCI functions (default: one edu at 0000:00:02.0). */
  readonly devices?: readonly MachineDevice[];
  /** Seed of every random choice (default 1). */
  readonly seed?: number;
  /** /dev/iommu (CONFIG_IOMMUFD; default true). */
  readonly iommufd?: boolean;
  /** /dev/vfio/devices/vfioN (CONFIG_VFIO_DEVICE_CDEV; default true). */
  readonly cdev?: boolean;
  /** /dev/vfio/vfio served by iommufd (CONFIG_IOMMUFD_VFIO_CONTAINER; default false). */
  readonly iommufdVfioContainer?: boolean;
  /** Module parameters `allow_unsafe_interrupts` of vfio_iommu_type1 and iommufd (default false). */
  readonly allowUnsafeInterrupts?: { readonly type1?: boolean; readonly iommufd?: boolean };
  /** vfio_iommu_type1 `dma_entry_limit` (default 65535). */
  readonly dmaEntryLimit?: number;
  /** RLIMIT_MEMLOCK in bytes (default 8 MiB, Linux's default). */
  readonly memlockLimit?: number;
  /** The process has CAP_IPC_LOCK (default true, so tests are not limited by RLIMIT_MEMLOCK). */
  readonly capIpcLock?: boolean;
  /**
   * The process has CAP_SYS_RESOURCE (default true: it runs as root, like the VM bench), which
   * IOMMU_OPTION RLIMIT_MODE SET needs.
   */
  readonly capSysResource?: boolean;
  /**
   * The kernel is built with CONFIG_IOMMUFD_TEST (default false; the VM bench's own kernels have
   * it): IOMMU_TEST_CMD (0xa0) answers on /dev/iommu and /sys/bus/iommufd_mock exists.
   */
  readonly iommufdTest?: boolean;
  /**
   * CONFIG_TRANSPARENT_HUGEPAGE (default true, as distribution kernels have it; the VM bench's
   * tinyconfig kernels do not): iommufd aligns automatic IOVAs up to HPAGE_SIZE rather than
   * PAGE_SIZE, and /sys/kernel/mm/transparent_hugepage/hpage_pmd_size exists.
   */
  readonly transparentHugepage?: boolean;
  /**
   * VT-d scalable mode (default off, like QEMU's intel-iommu): per-device PASID tables with
   * `pasidBits`-bit PASIDs (default 20) and nested translation (`nesting`, default true; ECAP.NEST,
   * which QEMU does not offer), so iommufd accepts NEST_PARENT and VTD_S1 nested HWPTs. `true`
   * takes the defaults. Only for `iommu: "vtd"`.
   */
  readonly vtdScalableMode?: boolean | { readonly pasidBits?: number; readonly nesting?: boolean };
  /**
   * **Proposal, not Linux ABI**: a system-wide PASID allocator at /dev/ioasid whose PASIDs belong
   * to the open file and are quarantined for `quarantineNs` (default 10 ms virtual) before reuse
   * (sim/kernel/pasid_space.ts, ffi/uapi/proposals.ts). With `iommu: "virtio-iommu"` the device
   * also offers the proposed ALLOC_PASID/FREE_PASID/ATTACH_PASID requests drawing from the same
   * space, the guest driver side negotiates them (`VirtioIommu.allocPasid`), and /dev/ioasid
   * allocates through them. iommufd's PASID attach then takes only PASIDs the caller owns (EACCES
   * otherwise), and a freed PASID is torn down (entries silenced, drivers told, DMA drained)
   * before its quarantine (sim/kernel/pasid_teardown.ts); `drainTimeoutNs` bounds the drain.
   * Default off.
   */
  readonly pasidAllocatorProposal?:
    | boolean
    | { readonly quarantineNs?: number; readonly drainTimeoutNs?: number };
  /**
   * SMMUv3 nested translation for iommufd vIOMMUs (Linux 6.13+; `iommu: "smmuv3"` and a
   * `kernelVersion` of 6.13 or later only): the SMMU model's `nesting`, with IDR3.FWB so the
   * kernel lets a vIOMMU own nested domains. `ssidBits` sets IDR1.SSIDSIZE (default 0, QEMU's;
   * `pasid=on` gives 16) so guest CD tables may have more than one CD. Default off.
   */
  readonly smmuNesting?: boolean | { readonly ssidBits?: number };
  /**
   * IDR1.SSIDSIZE of the SMMUv3 (`iommu: "smmuv3"` only; 0..20, default 0 as QEMU's default;
   * QEMU's `pasid=on` gives 16): with it the host can attach stage-1 domains to PASIDs (Linux
   * 6.15's VFIO_DEVICE_ATTACH_PASID). With `smmuNesting` the two must agree when both are given.
   */
  readonly smmuSsidBits?: number;
  /** VT-d interrupt remapping (QEMU `intremap=on`; default true). Off: MSI is not isolated. */
  readonly intremap?: boolean;
  /** Simulated physical memory in bytes (default 4 GiB). */
  readonly physicalMemory?: number;
  /** Throw internal simulator errors instead of answering -EIO (default false; tests set it). */
  readonly strict?: boolean;
  /** Pace virtual time with real time (for bridges to real host sockets; default false). */
  readonly realtime?: boolean;
  /**
   * The Linux version the kernel answers as (default {@link DEFAULT_KERNEL_VERSION}, 6.12). uAPI
   * merged after 6.12 exists only when this names a later version.
   */
  readonly kernelVersion?: string;
  /** Trace lines the machine keeps (default 4096, `DEFAULT_TRACE_CAPACITY`). */
  readonly traceCapacity?: number;
}

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

/** Default device: QEMU's edu at 00:02.0. */
const DEFAULT_DEVICES: readonly MachineDevice[] = [{ model: "edu", bdf: "0000:00:02.0" }];
/** First slot handed out on bus 0 (00:00.0 host bridge and 00:01.0 VGA exist on q35). */
const FIRST_FREE_SLOT = 2;
/** Group numbers for functions off bus 0 start here (above every bus-0 slot). */
const OFF_ROOT_GROUP_BASE = 32;
/** Major number of the vfio cdevs (dynamic on Linux; 511 is what 6.12 guests show first). */
const VFIO_CDEV_MAJOR = 511;
/** Physical memory default. */
const DEFAULT_PHYSICAL_MEMORY = 4 * 1024 ** 3;
const BDF_RE = /^([0-9a-f]{4}):([0-9a-f]{2}):([0-1][0-9a-f])\.([0-7])$/;

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

function parseBdf(bdf: string): { bus: number; slot: number; func: number } {
  const m = BDF_RE.exec(bdf);
  if (!m) throw new Error(`createMachine: bad PCI address "${bdf}" (want dddd:bb:ss.f)`);
  const slot = parseInt(m[3], 16);
  if (slot > 0x1f) throw new Error(`createMachine: slot of "${bdf}" out of range`);
  return { bus: parseInt(m[2], 16), slot, func: parseInt(m[4], 10) };
}

/** Requester id (bus << 8 | devfn) of a PCI address. */
function requesterOf(bdf: string): number {
  const { bus, slot, func } = parseBdf(bdf);
  return (bus << 8) | (slot << 3) | func;
}

function slotBdf(slot: number): string {
  return `0000:00:${slot.toString(16).padStart(2, "0")}.0`;
}

/** Assign addresses and group numbers (see the module doc). */
function layout(devices: readonly MachineDevice[]): { bdf: string; group: number }[] {
  const taken = new Set(devices.map((d) => d.bdf).filter((b) => b !== undefined));
  let next = FIRST_FREE_SLOT;
  const bdfs = devices.map((d) => {
    if (d.bdf !== undefined) return d.bdf;
    while (taken.has(slotBdf(next))) next++;
    const bdf = slotBdf(next);
    taken.add(bdf);
    return bdf;
  });
  if (new Set(bdfs).size !== bdfs.length) throw new Error("createMachine: duplicate PCI address");
  const used = new Set(devices.map((d) => d.group).filter((g) => g !== undefined));
  return bdfs.map((bdf, i) => {
    const explicit = devices[i].group;
    if (explicit !== undefined) return { bdf, group: explicit };
    const { bus, slot } = parseBdf(bdf);
    let group = bus === 0 ? slot : OFF_ROOT_GROUP_BASE;
    while (used.has(group)) group = group < OFF_ROOT_GROUP_BASE ? OFF_ROOT_GROUP_BASE : group + 1;
    used.add(group);
    return { bdf, group };
  });
}

/** Refuse options the platform's Linux 6.12 configuration cannot have. */
function checkPlatformOptions(options: MachineOptions, vfioCdev: boolean): void {
  if (options.vtdScalableMode && options.iommu !== "vtd") {
    throw new Error(
      `createMachine: vtdScalableMode with iommu "${options.iommu}": scalable mode is a VT-d ` +
        'feature; use iommu: "vtd" or leave vtdScalableMode out',
    );
  }
  const bits = typeof options.vtdScalableMode === "object"
    ? options.vtdScalableMode.pasidBits
    : undefined;
  if (bits !== undefined && (!Number.isInteger(bits) || bits < 1 || bits > 20)) {
    throw new Error(`createMachine: vtdScalableMode.pasidBits ${bits}: want 1..20 (PCIe PASIDs)`);
  }
  checkSmmuNesting(options);
  if (vfioCdev) return;
  const bad = [
    options.cdev === true ? "cdev: true" : undefined,
    options.iommufdVfioContainer === true ? "iommufdVfioContainer: true" : undefined,
  ].filter((x) => x !== undefined);
  if (bad.length > 0) {
    throw new Error(
      `createMachine: ${bad.join(" and ")} with iommu "${options.iommu}": Linux 6.12 builds ` +
        "VFIO_DEVICE_CDEV only without SPAPR_TCE_IOMMU and IOMMUFD_VFIO_CONTAINER only without " +
        "the VFIO container, so a sPAPR machine uses the container with the sPAPR TCE driver; " +
        "leave these options out",
    );
  }
}

/** `smmuSsidBits` needs an SMMUv3 and agrees with `smmuNesting.ssidBits`. */
function checkSmmuSsidBits(options: MachineOptions): void {
  const bits = options.smmuSsidBits;
  if (bits === undefined) return;
  if (options.iommu !== "smmuv3") {
    throw new Error(
      `createMachine: smmuSsidBits with iommu "${options.iommu}": it is an SMMUv3 register ` +
        'field; use iommu: "smmuv3" (VT-d PASIDs are vtdScalableMode)',
    );
  }
  const nested = typeof options.smmuNesting === "object" ? options.smmuNesting.ssidBits : undefined;
  if (nested !== undefined && nested !== bits) {
    throw new Error(
      `createMachine: smmuSsidBits ${bits} and smmuNesting.ssidBits ${nested} disagree; give one`,
    );
  }
}

/** `smmuNesting` needs an SMMUv3 and a kernel that has vIOMMUs. */
function checkSmmuNesting(options: MachineOptions): void {
  checkSmmuSsidBits(options);
  if (!options.smmuNesting) return;
  if (options.iommu !== "smmuv3") {
    throw new Error(
      `createMachine: smmuNesting with iommu "${options.iommu}": it is an SMMUv3 feature; use ` +
        'iommu: "smmuv3" (VT-d nesting is vtdScalableMode)',
    );
  }
  const version = options.kernelVersion ?? DEFAULT_KERNEL_VERSION;
  if (!kernelAtLeast(parseKernelVersion(version), VIOMMU_MIN_KERNEL)) {
    throw new Error(
      `createMachine: smmuNesting with kernelVersion ${version}: Linux gained iommufd vIOMMUs ` +
        `and SMMUv3 nesting in ${VIOMMU_MIN_KERNEL}; pass kernelVersion: "${VIOMMU_MIN_KERNEL}" ` +
        "or later",
    );
  }
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
