/**
 * The options of `createMachine()` (machine.ts): the devices, the IOMMU model and the kernel's
 * configuration, and the checks that refuse a combination the platform's Linux cannot have, each
 * with one error saying what to change.
 *
 * @module
 */

import type { PciDeviceModel } from "./pci/device.ts";
import type { DeviceModelName, IommuModelName, ModelContext } from "./machine_models.ts";
import { DEFAULT_KERNEL_VERSION, kernelAtLeast, parseKernelVersion } from "./kernel_version.ts";
import { VIOMMU_MIN_KERNEL } from "../ffi/uapi/post_6_12.ts";

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
   * The Ethernet segment a NIC model plugs into: 0 (default) is `SimMachine.segment`; any
   * other number is a segment of its own, shared by the devices given that number (two NICs on
   * two wires: 1 and 2). See `SimMachine.segments`.
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

/** Refuse options the platform's Linux 6.12 configuration cannot have. */
export function checkPlatformOptions(options: MachineOptions, vfioCdev: boolean): void {
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
