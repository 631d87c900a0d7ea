/**
 * Testing drivers on the simulator: {@link simTest} runs one test body on every simulated IOMMU ×
 * every VFIO path as named `Deno.test` steps with leak checks after each; {@link LeakCheck}
 * compares a machine's resources with a baseline; {@link SIM_PLATFORMS} lists the platforms.
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
