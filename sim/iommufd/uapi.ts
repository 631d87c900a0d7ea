/**
 * The iommufd and VFIO-container uAPI names the simulated iommufd uses, in one place.
 *
 * @module
 */

export * from "../../ffi/uapi/mod.ts";
