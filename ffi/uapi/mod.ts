/**
 * Linux 6.12's VFIO and iommufd user API as data: struct layouts, ioctl declarations and
 * constants under their C names. Re-exports only.
 *
 * @module
 */

export * from "./common.ts";
export * from "./layout.ts";
export * from "./caps.ts";
export * from "./vfio.ts";
export * from "./iommufd.ts";
export type { IoctlArch } from "../ioctl.ts";
