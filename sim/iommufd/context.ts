/**
 * `IommufdContext`: one open /dev/iommu (or iommufd-served /dev/vfio/vfio) file — the simulated
 * `struct iommufd_ctx` with its object table, ioctl dispatch and the kernel-internal API the
 * simulated VFIO uses (bind/attach/detach, compat IOAS).
 *
 * SKELETON: the signatures are final; bodies land in the following commits.
 *
 * @module
 */

import { ERRNO } from "../../ffi/errno.ts";
import type { IoctlArch } from "../../ffi/ioctl.ts";
import type { SimFile, SimProcess } from "../kernel/file.ts";
import type { SimPciFunction } from "../kernel/pci_function.ts";
import type { PhysicalMemory } from "../memory.ts";

/** Options of an {@link IommufdContext}. */
export interface IommufdContextOptions {
  /** `iommufd.allow_unsafe_interrupts`. */
  readonly allowUnsafeInterrupts: boolean;
  /** PAGE_SIZE. */
  readonly pageSize: number;
  /** The machine's physical memory (pinned chunks are retained in it). */
  readonly memory: PhysicalMemory;
  /** Opened as /dev/vfio/vfio (IOMMUFD_VFIO_CONTAINER): "mm" rlimit accounting by default. */
  readonly compatMode?: boolean;
  /** ioctl number encoding (default "generic"). */
  readonly ioctlArch?: IoctlArch;
  /** The opener has CAP_SYS_RESOURCE (IOMMU_OPTION RLIMIT_MODE SET); default false. */
  readonly capSysResource?: boolean;
}

/** An open iommufd. */
export class IommufdContext implements SimFile {
  /** fd type tag. */
  readonly kind = "iommufd";
  readonly #options: IommufdContextOptions;

  /** A fresh context (no objects). */
  constructor(options: IommufdContextOptions) {
    this.#options = options;
  }

  /** The options the context was opened with. */
  get options(): IommufdContextOptions {
    return this.#options;
  }

  /** ioctl(2) on the iommufd. */
  ioctl(_process: SimProcess, _request: number, _arg: Uint8Array | bigint): number {
    return -ERRNO.ENOTTY;
  }

  /** Last close: destroy every object. */
  release(_process: SimProcess): void {}

  /** `iommufd_device_bind`: the new device ID (> 0) or -errno (EINVAL, EPERM, EBUSY). */
  bindDevice(_fn: SimPciFunction, _process: SimProcess): number {
    return -ERRNO.ENODEV;
  }

  /** `iommufd_device_unbind`: detach if attached, release DMA ownership with the group's last device. */
  unbindDevice(_devid: number): void {}

  /** Attach (or replace) a bound device to an IOAS or HWPT: the HWPT ID (> 0) or -errno. */
  attachDevice(_devid: number, _ptId: number): number {
    return -ERRNO.ENOENT;
  }

  /** Detach a bound device (no-op when not attached). */
  detachDevice(_devid: number): void {}

  /** The VFIO-compat IOAS ID, creating it when `create`; -ENODEV if none and !create. */
  compatIoasId(_create: boolean): number {
    return -ERRNO.ENODEV;
  }
}
