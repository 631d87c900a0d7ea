/**
 * deno_vfio: userspace PCI drivers over Linux VFIO and iommufd, and a simulated machine to run
 * them on.
 *
 * @module
 */

export * from "./ffi/kernel.ts";
export * from "./ffi/errno.ts";
export * from "./core/errors.ts";
export * from "./core/dma_backend.ts";
