/**
 * The iommufd and VFIO-container uAPI names sim/iommufd/ uses: a re-export of the single
 * declaration in `ffi/uapi/mod.ts` (Linux 6.12 layouts, ioctls and constants under their C names).
 *
 * @module
 */

export * from "../../ffi/uapi/mod.ts";
