/**
 * A VFIO device fd: device info, regions (mmapped or pread-backed), reset, hot-reset info and
 * feature probing. The fd comes from a backend (`space.backend.openDevice(target)`); closing
 * the device unmaps every region and hands the fd back to whoever opened it.
 *
 * @example
 * ```ts
 * const device = new VfioDevice(kernel, space.backend.openDevice(target), "0000:00:02.0", {
 *   closeFd: (fd) => space.backend.closeDevice(fd),
 * });
 * const info = device.getInfo();          // flags, numRegions, numIrqs
 * const bar0 = device.region(0);          // an Mmio
 * bar0.write32(0x04, 0x12345678);
 * device.close();
 * ```
 *
 * @module
 */

import { ERRNO } from "../ffi/errno.ts";
import type { Kernel, Mmio } from "../ffi/kernel.ts";
import { decode, encode } from "../ffi/uapi/layout.ts";
import {
  decodeArray,
  readCapChain,
  VFIO_DEVICE_FEATURE,
  vfio_device_feature,
  VFIO_DEVICE_FEATURE_GET,
  VFIO_DEVICE_FEATURE_MASK,
  VFIO_DEVICE_FEATURE_PROBE,
  VFIO_DEVICE_FEATURE_SET,
  VFIO_DEVICE_FLAGS_CAPS,
  VFIO_DEVICE_FLAGS_PCI,
  VFIO_DEVICE_FLAGS_RESET,
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_GET_PCI_HOT_RESET_INFO,
  vfio_device_info,
  VFIO_DEVICE_RESET,
  vfio_pci_dependent_device,
  VFIO_PCI_DEVID_NOT_OWNED,
  VFIO_PCI_HOT_RESET_FLAG_DEV_ID,
  VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED,
  vfio_pci_hot_reset_info,
  type VfioCapHeader,
} from "../ffi/uapi/mod.ts";
import { check, VfioError } from "./errors.ts";
import { type OpenedRegion, openRegion, queryRegionInfo, type RegionInfo } from "./region.ts";
import { ioctlChecked, requestOf, runAll } from "./syscall.ts";

/** VFIO_DEVICE_GET_INFO, decoded. */
export interface DeviceInfo {
  /** VFIO_DEVICE_FLAGS_* bits. */
  readonly flags: number;
  /** Number of regions (vfio-pci: 9 + device-specific ones). */
  readonly numRegions: number;
  /** Number of IRQ indexes (vfio-pci: 5). */
  readonly numIrqs: number;
  /** VFIO_DEVICE_FLAGS_RESET: VFIO_DEVICE_RESET can work. */
  readonly resetWorks: boolean;
  /** VFIO_DEVICE_FLAGS_PCI. */
  readonly pci: boolean;
  /** The capability headers of the device-info chain (e.g. PCI_ATOMIC_COMP, id 5). */
  readonly caps: readonly VfioCapHeader[];
}

/** One device that a PCI hot reset also resets. */
export interface DependentDevice {
  /** IOMMU group number (group-opened device), or the iommufd device id (cdev, `devIds`). */
  readonly groupOrDevId: number;
  /** With `devIds`: the device is not owned by this iommufd context. */
  readonly notOwned: boolean;
  /** The device's PCI address, "ssss:bb:dd.f". */
  readonly bdf: string;
}

/** VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, decoded. */
export interface HotResetInfo {
  /** VFIO_PCI_HOT_RESET_FLAG_* bits. */
  readonly flags: number;
  /** Entries carry iommufd device ids rather than group numbers (cdev-opened device). */
  readonly devIds: boolean;
  /** Every affected device is owned by this iommufd context. */
  readonly allOwned: boolean;
  /** Every device the reset affects (this one included). */
  readonly devices: readonly DependentDevice[];
}

/** What a device answers to a VFIO_DEVICE_FEATURE probe. */
export interface FeatureSupport {
  /** The feature can be read (PROBE | GET succeeded). */
  readonly get: boolean;
  /** The feature can be set (PROBE | SET succeeded). */
  readonly set: boolean;
}

/** Options of the {@link VfioDevice} constructor. */
export interface VfioDeviceOptions {
  /** How to give the fd back (default: `kernel.close`); e.g. `space.backend.closeDevice`. */
  closeFd?: (fd: number) => void;
}

const SLOT_SHIFT = 3;
const FUNCTION_MASK = 0x7;
const HEX_BYTE = 2;
const HEX_SEGMENT = 4;

/** A PCI address "ssss:bb:dd.f" from segment, bus and devfn. */
export function formatBdf(segment: number, bus: number, devfn: number): string {
  const hex = (n: number, width: number): string => n.toString(16).padStart(width, "0");
  return `${hex(segment, HEX_SEGMENT)}:${hex(bus, HEX_BYTE)}:${
    hex(devfn >> SLOT_SHIFT, HEX_BYTE)
  }.${devfn & FUNCTION_MASK}`;
}

/** A VFIO device fd and the regions mapped through it. */
export class VfioDevice {
  /** The kernel. */
  readonly kernel: Kernel;
  /** The device fd. */
  readonly fd: number;
  /** The device's name for messages (its PCI address). */
  readonly name: string;
  readonly #closeFd: (fd: number) => void;
  readonly #regions: Map<number, OpenedRegion> = new Map();
  #info: DeviceInfo | undefined;
  #closed = false;

  /** Wrap an open device fd; the device owns it from now on. */
  constructor(kernel: Kernel, fd: number, name: string, options: VfioDeviceOptions = {}) {
    this.kernel = kernel;
    this.fd = fd;
    this.name = name;
    this.#closeFd = options.closeFd ?? ((f) => this.#closeRaw(f));
  }

  /** VFIO_DEVICE_GET_INFO with the argsz protocol for its capability chain (cached). */
  getInfo(): DeviceInfo {
    this.#assertOpen("getInfo");
    if (this.#info !== undefined) return this.#info;
    const layout = vfio_device_info;
    let bytes = encode(layout, { argsz: layout.size });
    ioctlChecked(this.kernel, this.fd, VFIO_DEVICE_GET_INFO, bytes, this.name);
    let info = decode(layout, bytes);
    if ((info.flags & VFIO_DEVICE_FLAGS_CAPS) !== 0 && info.argsz > layout.size) {
      bytes = encode(layout, { argsz: info.argsz }, info.argsz - layout.size);
      ioctlChecked(this.kernel, this.fd, VFIO_DEVICE_GET_INFO, bytes, this.name);
      info = decode(layout, bytes);
    }
    const hasCaps = (info.flags & VFIO_DEVICE_FLAGS_CAPS) !== 0 && info.cap_offset !== 0;
    this.#info = {
      flags: info.flags,
      numRegions: info.num_regions,
      numIrqs: info.num_irqs,
      resetWorks: (info.flags & VFIO_DEVICE_FLAGS_RESET) !== 0,
      pci: (info.flags & VFIO_DEVICE_FLAGS_PCI) !== 0,
      caps: hasCaps ? readCapChain(bytes, info.cap_offset) : [],
    };
    return this.#info;
  }

  /** VFIO_DEVICE_GET_REGION_INFO for `index`, with its capability chain decoded. */
  regionInfo(index: number): RegionInfo {
    this.#assertOpen("regionInfo");
    return this.#regions.get(index)?.info ??
      queryRegionInfo(this.kernel, this.fd, index, this.name);
  }

  /**
   * Region `index` as an {@link Mmio} (cached): mmapped when the kernel allows it, otherwise (or
   * when mmap fails) one pread/pwrite per access at `region_info.offset + offset`.
   */
  region(index: number): Mmio {
    return this.#open(index).access;
  }

  /** How region `index` is reached once opened with {@link region}, or undefined before. */
  regionMode(index: number): OpenedRegion["mode"] | undefined {
    return this.#regions.get(index)?.mode;
  }

  /** VFIO_DEVICE_RESET. EINVAL means the device has no usable function reset. */
  reset(): void {
    this.#assertOpen("reset");
    ioctlChecked(this.kernel, this.fd, VFIO_DEVICE_RESET, undefined, this.name, {
      EINVAL: "device has no usable reset (no FLR, PM or bus reset for this function alone); " +
        "use a hot reset of its slot or bus (hotResetInfo)",
      EAGAIN: "the device is busy (its locks are held): retry",
    });
  }

  /**
   * VFIO_DEVICE_GET_PCI_HOT_RESET_INFO: the devices a slot/bus reset would also reset. Uses the
   * argsz protocol: the first call (no room for entries) fails with ENOSPC and reports the
   * count; the second call has room for all of them.
   */
  hotResetInfo(): HotResetInfo {
    this.#assertOpen("hotResetInfo");
    const layout = vfio_pci_hot_reset_info;
    const entry = vfio_pci_dependent_device.size;
    const noReset = "neither a slot nor a bus reset is possible for this device";
    const request = requestOf(this.kernel, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO);
    let bytes = encode(layout, { argsz: layout.size });
    let result = this.kernel.ioctl(this.fd, request, bytes);
    if (result === -ERRNO.ENOSPC) {
      const count = decode(layout, bytes).count;
      bytes = encode(layout, { argsz: layout.size + count * entry }, count * entry);
      result = this.kernel.ioctl(this.fd, request, bytes);
    }
    check(result, {
      operation: VFIO_DEVICE_GET_PCI_HOT_RESET_INFO.name,
      device: this.name,
      hint: result === -ERRNO.ENODEV ? noReset : undefined,
    });
    const info = decode(layout, bytes);
    const devIds = (info.flags & VFIO_PCI_HOT_RESET_FLAG_DEV_ID) !== 0;
    const devices: DependentDevice[] = decodeArray(
      vfio_pci_dependent_device,
      bytes,
      layout.size,
      info.count,
    ).map((d) => ({
      groupOrDevId: d.group_id,
      notOwned: devIds && d.group_id === VFIO_PCI_DEVID_NOT_OWNED >>> 0,
      bdf: formatBdf(d.segment, d.bus, d.devfn),
    }));
    return {
      flags: info.flags,
      devIds,
      allOwned: (info.flags & VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED) !== 0,
      devices,
    };
  }

  /**
   * Probe VFIO_DEVICE_FEATURE `feature` (VFIO_DEVICE_FEATURE_* index) for GET and SET support.
   * "Not supported" answers (ENOTTY, EINVAL; §7.5) give false; other errors throw.
   */
  probeFeature(feature: number): FeatureSupport {
    this.#assertOpen("probeFeature");
    return {
      get: this.#probe(feature, VFIO_DEVICE_FEATURE_GET),
      set: this.#probe(feature, VFIO_DEVICE_FEATURE_SET),
    };
  }

  /**
   * Unmap every region and give the fd back (also when a step fails; the first error is
   * thrown after every step ran). A second call does nothing.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const steps: (() => void)[] = [];
    for (const region of this.#regions.values()) {
      for (const mapping of region.mappings) steps.push(() => this.#munmap(mapping));
    }
    this.#regions.clear();
    steps.push(() => this.#closeFd(this.fd));
    runAll(steps);
  }

  /** Same as {@link close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  #open(index: number): OpenedRegion {
    this.#assertOpen("region");
    const known = this.#regions.get(index);
    if (known !== undefined) return known;
    const info = queryRegionInfo(this.kernel, this.fd, index, this.name);
    const opened = openRegion(this.kernel, this.fd, info, this.name);
    this.#regions.set(index, opened);
    return opened;
  }

  #probe(feature: number, op: number): boolean {
    const layout = vfio_device_feature;
    const flags = (feature & VFIO_DEVICE_FEATURE_MASK) | VFIO_DEVICE_FEATURE_PROBE | op;
    const bytes = encode(layout, { argsz: layout.size, flags });
    const result = this.kernel.ioctl(this.fd, requestOf(this.kernel, VFIO_DEVICE_FEATURE), bytes);
    if (result >= 0) return true;
    if (result === -ERRNO.ENOTTY || result === -ERRNO.EINVAL) return false;
    return check(result, { operation: VFIO_DEVICE_FEATURE.name, device: this.name }) >= 0;
  }

  #munmap(mapping: Mmio): void {
    check(this.kernel.munmap(mapping), { operation: "munmap", device: this.name });
  }

  #closeRaw(fd: number): void {
    check(this.kernel.close(fd), { operation: "close", device: this.name });
  }

  #assertOpen(operation: string): void {
    if (this.#closed) {
      throw new VfioError({
        operation: `VfioDevice.${operation}`,
        device: this.name,
        message: "the device is closed",
      });
    }
  }
}
