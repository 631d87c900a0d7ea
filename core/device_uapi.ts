/**
 * The uAPI names the device-fd clients use (VFIO device info, regions, IRQs, reset, hot reset,
 * features), in one place.
 *
 * @module
 */

export * from "../ffi/uapi/mod.ts";

export { type CapEntry, parseCapChain } from "./dma_uapi.ts";
