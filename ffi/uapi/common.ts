/**
 * ioctl declarations shared by the VFIO and iommufd uAPI modules.
 *
 * Every VFIO and iommufd ioctl is `_IO(';', nr)`: its number carries no size or direction, so the
 * value depends only on the architecture's encoding of "no direction" (see `ffi/ioctl.ts`).
 * Declarations carry the C macro name so the gcc layout test can check each number.
 *
 * @module
 */

import { type IoctlArch, ioctlNone } from "../ioctl.ts";

/** `VFIO_TYPE`: the ioctl type byte of VFIO and iommufd (';'). */
export const VFIO_TYPE = 0x3b;
/** `VFIO_BASE`: first VFIO command number. */
export const VFIO_BASE = 100;
/** `IOMMUFD_TYPE`: iommufd's ioctl type byte (also ';'). */
export const IOMMUFD_TYPE: number = VFIO_TYPE;

/** One ioctl: its C macro name and command number. */
export interface IoctlDecl {
  /** The C macro, e.g. "VFIO_IOMMU_MAP_DMA". */
  readonly name: string;
  /** The type byte. */
  readonly type: number;
  /** The command number (`_IOC_NR`). */
  readonly nr: number;
}

/** Declare an `_IO(type, nr)` ioctl. */
export function defineIoctl(name: string, type: number, nr: number): IoctlDecl {
  return Object.freeze({ name, type, nr });
}

/** The request number of an ioctl on an architecture. */
export function ioctlNumber(arch: IoctlArch, decl: IoctlDecl): number {
  return ioctlNone(arch, decl.type, decl.nr);
}
