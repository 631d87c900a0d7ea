/**
 * The simulated iommufd (drivers/iommu/iommufd of Linux 6.12): {@link IommufdContext} is the file
 * behind /dev/iommu (and behind /dev/vfio/vfio in IOMMUFD_VFIO_CONTAINER mode); the rest is
 * exported for diagnostics and tests.
 *
 * @module
 */

export { IommufdContext, type IommufdContextOptions } from "./context.ts";
export { type DirtyTrackingDomain } from "./hwpt.ts";
export { driverFor, IOMMU_DRIVERS, vtdNestingSupported } from "./drivers.ts";
export type { IommuDriverRow } from "./driver_ops.ts";
export { type FaultGroup, FaultQueue, type PageFault } from "./fault.ts";
export { type IovaSpan, ULONG_MAX } from "./io_pagetable.ts";
export type { IommufdObject, ObjectType } from "./objects.ts";
export { type AccountMode, userLockedPages } from "./pages.ts";
