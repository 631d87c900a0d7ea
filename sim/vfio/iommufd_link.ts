/**
 * The kernel-internal iommufd API VFIO uses (the contract with sim/iommufd/): binding a device to an
 * iommufd context, attaching it to an IOAS or HWPT, and the compat IOAS a group gets when an
 * iommufd is passed to VFIO_GROUP_SET_CONTAINER.
 *
 * An iommufd file is an {@link IommufdContext} (sim/iommufd/).
 *
 * @module
 */

import type { SimFile, SimProcess } from "../kernel/file.ts";
import { IommufdContext } from "../iommufd/mod.ts";
import type { SimPciFunction } from "../kernel/pci_function.ts";

/** What VFIO calls on an iommufd context. */
export interface IommufdKernelApi {
  /** Bind a device: its devid (> 0) or -errno; claims group DMA ownership for iommufd. */
  bindDevice(fn: SimPciFunction, process: SimProcess): number;
  /** Unbind (detaches; releases ownership with the group's last device). */
  unbindDevice(devid: number): void;
  /** Attach (or replace) to an IOAS or HWPT: the attached HWPT id or -errno. */
  attachDevice(devid: number, ptId: number): number;
  /** Detach from whatever the device is attached to. */
  detachDevice(devid: number): void;
  /**
   * Attach a PASID-compatible HWPT to one PASID (6.15+) for `process`: the HWPT id or -errno
   * (with the allocator proposal, EACCES for a PASID `process` does not own).
   */
  attachDevicePasid(devid: number, pasid: number, ptId: number, process: SimProcess): number;
  /** Detach one PASID. */
  detachDevicePasid(devid: number, pasid: number): void;
  /** The compat IOAS id, creating it when asked: the id or -errno. */
  compatIoasId(create: boolean): number;
}

/** An open iommufd (/dev/iommu, or /dev/vfio/vfio served by iommufd). */
export type IommufdFile = SimFile & IommufdKernelApi;

/** The iommufd behind an open file, or undefined (`iommufd_ctx_from_file` fails: EBADFD). */
export function asIommufd(file: SimFile): IommufdFile | undefined {
  return file instanceof IommufdContext ? file : undefined;
}
