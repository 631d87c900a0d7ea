/**
 * The VFIO uAPI names the simulated kernel uses, in one place.
 *
 * @module
 */

export * from "../../ffi/uapi/mod.ts";
