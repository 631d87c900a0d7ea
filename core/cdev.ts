/**
 * The VFIO device cdev (`/dev/vfio/devices/vfioN`) ioctls that connect a device to iommufd:
 * BIND_IOMMUFD, ATTACH_IOMMUFD_PT and DETACH_IOMMUFD_PT. A freshly opened cdev answers every
 * other ioctl with EINVAL until it is bound.
 *
 * @example
 * ```ts
 * const fd = openChecked(kernel, "/dev/vfio/devices/vfio0");
 * const devId = bindIommufd(kernel, fd, iommufd.fd, "0000:00:03.0");
 * const hwpt = attachIommufdPt(kernel, fd, ioasId, "0000:00:03.0"); // the auto HWPT id
 * detachIommufdPt(kernel, fd, "0000:00:03.0");
 * ```
 *
 * @module
 */

import {
  PASID_ATTACH_MIN_KERNEL,
  vfio_device_attach_iommufd_pt_pasid,
  VFIO_DEVICE_ATTACH_PASID,
  vfio_device_detach_iommufd_pt_pasid,
  VFIO_DEVICE_DETACH_PASID,
} from "../ffi/uapi/post_6_12.ts";
import type { Kernel } from "../ffi/kernel.ts";
import { decode, encode } from "../ffi/uapi/layout.ts";
import {
  VFIO_DEVICE_ATTACH_IOMMUFD_PT,
  vfio_device_attach_iommufd_pt,
  VFIO_DEVICE_BIND_IOMMUFD,
  vfio_device_bind_iommufd,
  VFIO_DEVICE_DETACH_IOMMUFD_PT,
  vfio_device_detach_iommufd_pt,
} from "../ffi/uapi/mod.ts";
import { HINTS, ioctlChecked } from "./syscall.ts";

/**
 * VFIO_DEVICE_BIND_IOMMUFD: bind the cdev `deviceFd` to the iommufd context `iommufdFd`;
 * returns the device's iommufd object id (`out_devid`). EPERM → the platform lacks MSI
 * isolation (hint: `iommufd.allow_unsafe_interrupts=1`).
 */
export function bindIommufd(
  kernel: Kernel,
  deviceFd: number,
  iommufdFd: number,
  device: string,
): number {
  const layout = vfio_device_bind_iommufd;
  const arg = encode(layout, { argsz: layout.size, iommufd: iommufdFd });
  ioctlChecked(kernel, deviceFd, VFIO_DEVICE_BIND_IOMMUFD, arg, device, {
    EPERM: HINTS.iommufdInterrupts,
    EBUSY: `the IOMMU group of ${device} is open through /dev/vfio/<group>, or another ` +
      "driver owns DMA for the group",
    EINVAL: "the device is already bound, or its IOMMU does not enforce cache coherency",
    EBADFD: "the fd passed is not an iommufd",
  });
  return decode(layout, arg).out_devid;
}

/**
 * VFIO_DEVICE_ATTACH_IOMMUFD_PT: attach (or replace) the device's page table: `ptId` is an IOAS
 * (the kernel picks or creates a HWPT) or a HWPT. Returns the HWPT id the kernel wrote back.
 */
export function attachIommufdPt(
  kernel: Kernel,
  deviceFd: number,
  ptId: number,
  device: string,
): number {
  const layout = vfio_device_attach_iommufd_pt;
  const arg = encode(layout, { argsz: layout.size, pt_id: ptId });
  ioctlChecked(kernel, deviceFd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, arg, device, {
    ENOENT: `no IOAS or HWPT with id ${ptId}`,
    EINVAL: "the page table is incompatible with the device's IOMMU (or another device of " +
      "its group uses a different one)",
    EADDRINUSE: "an existing mapping overlaps a reserved region of the device (e.g. the MSI " +
      "window): unmap it or map elsewhere",
  });
  return decode(layout, arg).pt_id;
}

/** VFIO_DEVICE_DETACH_IOMMUFD_PT: detach the device from its page table. */
export function detachIommufdPt(kernel: Kernel, deviceFd: number, device: string): void {
  const layout = vfio_device_detach_iommufd_pt;
  ioctlChecked(
    kernel,
    deviceFd,
    VFIO_DEVICE_DETACH_IOMMUFD_PT,
    encode(layout, { argsz: layout.size }),
    device,
  );
}

/**
 * VFIO_DEVICE_ATTACH_IOMMUFD_PT with VFIO_DEVICE_ATTACH_PASID (Linux 6.15+): install the HWPT
 * `ptId` (allocated with IOMMU_HWPT_ALLOC_PASID) on PASID `pasid` of the device. Returns the HWPT
 * id. On 6.12 the kernel knows no flags and answers EINVAL.
 */
export function attachIommufdPasid(
  kernel: Kernel,
  deviceFd: number,
  pasid: number,
  ptId: number,
  device: string,
): number {
  const layout = vfio_device_attach_iommufd_pt_pasid;
  const arg = encode(layout, {
    argsz: layout.size,
    flags: VFIO_DEVICE_ATTACH_PASID,
    pt_id: ptId,
    pasid,
  });
  ioctlChecked(kernel, deviceFd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, arg, device, {
    EINVAL: `the kernel has no PASID attach (before Linux ${PASID_ATTACH_MIN_KERNEL}), PASID ` +
      `${pasid} is beyond the device's PASID width, ${ptId} is an IOAS or a HWPT not allocated ` +
      "with IOMMU_HWPT_ALLOC_PASID, or the device itself (no PASID) is attached to such a HWPT: " +
      "allocate HWPTs with IOMMU_HWPT_ALLOC_PASID for the device and for each PASID",
    ENOENT: `no HWPT with id ${ptId}`,
    EACCES: `PASID ${pasid} is not this process's: with the PASID allocator proposal a PASID ` +
      "must come from /dev/ioasid (PasidSpace.allocate) and not be freed",
  });
  return decode(layout, arg).pt_id;
}

/** VFIO_DEVICE_DETACH_IOMMUFD_PT with VFIO_DEVICE_DETACH_PASID (Linux 6.15+). */
export function detachIommufdPasid(
  kernel: Kernel,
  deviceFd: number,
  pasid: number,
  device: string,
): void {
  const layout = vfio_device_detach_iommufd_pt_pasid;
  const arg = encode(layout, { argsz: layout.size, flags: VFIO_DEVICE_DETACH_PASID, pasid });
  ioctlChecked(kernel, deviceFd, VFIO_DEVICE_DETACH_IOMMUFD_PT, arg, device);
}
