/**
 * Testing drivers on the simulator: {@link simTest} runs one test body on every simulated IOMMU ×
 * every VFIO path as named `Deno.test` steps with leak checks after each; {@link LeakCheck}
 * compares a machine's resources with a baseline; {@link SIM_PLATFORMS} lists the platforms.
 * For a network stack without a NIC: {@link LoopNetDevice} (an in-memory NetDevice) and
 * {@link FrameBuilder} (the frames a neighbour would send it).
 *
 * @example
 * ```ts
 * import { simTest } from "@deno-vfio/deno-vfio/testing";
 * simTest("my driver opens and closes", (ctx) => {
 *   using dev = ctx.openDevice("0000:00:02.0");
 * }, { machine: { devices: [{ model: "edu", bdf: "0000:00:02.0" }] } });
 * ```
 *
 * @module
 */

export * from "./platforms.ts";
export * from "./leaks.ts";
export * from "./sim_test.ts";
export * from "./fail_nth.ts";
export * from "./fail_nth_sweep.ts";
export { LoopNetDevice } from "./loop_net_device.ts";
export { type ArpFields, FrameBuilder, type FrameOverrides, type Station } from "./net_frames.ts";
