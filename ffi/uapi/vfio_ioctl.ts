/**
 * How include/uapi/linux/vfio.h numbers its ioctls: `_IO(VFIO_TYPE, VFIO_BASE + n)`. Used by the
 * family modules behind ./vfio.ts; not part of the uAPI re-exports.
 *
 * @module
 */

import { defineIoctl, type IoctlDecl, VFIO_BASE, VFIO_TYPE } from "./common.ts";

/** The VFIO ioctl `name`, number `VFIO_BASE + n` of type `VFIO_TYPE`. */
export function vfioIoctl(name: string, n: number): IoctlDecl {
  return defineIoctl(name, VFIO_TYPE, VFIO_BASE + n);
}
