/**
 * {@link simTest}: one driver test body run on every simulated IOMMU × every VFIO path the
 * platform offers, each as its own named `Deno.test` step ("vtd/type1", "vtd/iommufd", …,
 * "spapr/spapr"), on a fresh machine, with the leak check built in: after the body returns, every
 * fd, mapping, locked page, machine page and IOMMU domain must be back at its baseline, and every
 * figure the body asked to keep (a packet pool's free buffers) too.
 *
 * @example
 * ```ts
 * import { simTest } from "@deno-vfio/deno-vfio/testing";
 * import { EduDriver } from "@deno-vfio/deno-vfio";
 *
 * simTest("edu computes 5!", async (ctx) => {
 *   using dev = ctx.openDevice("0000:00:02.0");
 *   const edu = EduDriver.open(dev);
 *   assertEquals(await edu.factorial(5), 120);
 *   edu.close();
 * });
 * ```
 *
 * @module
 */

import type { DmaBackendKind } from "../core/dma_backend.ts";
import { openPciDevice, type OpenPciDeviceOptions, type PciDevice } from "../core/pci_device.ts";
import type { SimKernel } from "../sim/kernel/sim_kernel.ts";
import { createMachine, type MachineOptions, type SimMachine } from "../sim/machine.ts";
import type { IommuModelName } from "../sim/machine_models.ts";
import { LeakCheck, type PoolLike } from "./leaks.ts";
import { SIM_PLATFORMS, type SimPlatform } from "./platforms.ts";

/** What a {@link simTest} body gets for one platform and path. */
export interface SimTestContext {
  /** The platform (IOMMU model, its paths and options). */
  readonly platform: SimPlatform;
  /** The IOMMU model of this step. */
  readonly iommu: IommuModelName;
  /** The VFIO path of this step. */
  readonly path: DmaBackendKind;
  /** The step's fresh machine. */
  readonly machine: SimMachine;
  /** Its kernel (pass it wherever a `Kernel` is expected). */
  readonly kernel: SimKernel;
  /** The leak check the step ends with (add figures with `keep`/`keepPool`). */
  readonly leaks: LeakCheck;
  /** The Deno test context of the step (for nested steps). */
  readonly t: Deno.TestContext;
  /** `openPciDevice` of `bdf` on this step's kernel and VFIO path. */
  openDevice(bdf: string, options?: Omit<OpenPciDeviceOptions, "kernel" | "iommu">): PciDevice;
  /** Expect every buffer of the pool to be free at the end of the step (see LeakCheck.keepPool). */
  keepPool(pool: PoolLike, name?: string): void;
}

/** Options of {@link simTest}. */
export interface SimTestOptions {
  /**
   * Machine options beside the platform's own (devices, seed, …), or a function of the platform
   * and path returning them. `strict` defaults to true (simulator bugs throw).
   */
  readonly machine?:
    | Partial<MachineOptions>
    | ((platform: SimPlatform, path: DmaBackendKind) => Partial<MachineOptions>);
  /** Run only on these IOMMU models (default: every one). */
  readonly iommus?: readonly IommuModelName[];
  /** Run only on these VFIO paths where the platform has them (default: every one). */
  readonly paths?: readonly DmaBackendKind[];
  /** Leave out the leak check (a test that keeps things open on purpose). */
  readonly noLeakCheck?: boolean;
  /** Permissions of the Deno test (default "none": the simulator needs nothing). */
  readonly permissions?: Deno.PermissionOptions;
  /** Report the test as ignored (e.g. a long variant not asked for). */
  readonly ignore?: boolean;
}

/** The (platform, path) pairs {@link simTest} runs on with these options. */
export function simTestSteps(
  options: Pick<SimTestOptions, "iommus" | "paths"> = {},
): { platform: SimPlatform; path: DmaBackendKind }[] {
  return SIM_PLATFORMS
    .filter((p) => options.iommus === undefined || options.iommus.includes(p.iommu))
    .flatMap((platform) =>
      platform.paths
        .filter((path) => options.paths === undefined || options.paths.includes(path))
        .map((path) => ({ platform, path }))
    );
}

/** Run `body` once per platform and path as the steps of one `Deno.test` (see the module doc). */
export function simTest(
  name: string,
  body: (ctx: SimTestContext) => void | Promise<void>,
  options: SimTestOptions = {},
): void {
  const steps = simTestSteps(options);
  if (steps.length === 0) {
    throw new Error(`simTest "${name}": no platform has the IOMMU models and paths asked for`);
  }
  Deno.test({
    name,
    permissions: options.permissions ?? "none",
    ignore: options.ignore,
    fn: async (t) => {
      for (const { platform, path } of steps) {
        await t.step(`${platform.iommu}/${path}`, async (st) => {
          const ctx = simTestContext(platform, path, st, options.machine);
          await body(ctx);
          if (!options.noLeakCheck) ctx.leaks.assertClean(`after ${platform.iommu}/${path}`);
        });
      }
    },
  });
}

/** A context for one platform and path: a fresh machine and its leak baseline. */
export function simTestContext(
  platform: SimPlatform,
  path: DmaBackendKind,
  t: Deno.TestContext,
  machine?: SimTestOptions["machine"],
): SimTestContext {
  const extra = typeof machine === "function" ? machine(platform, path) : machine ?? {};
  const m = createMachine({ strict: true, ...platform.options, ...extra, iommu: platform.iommu });
  const leaks = new LeakCheck(m);
  return {
    platform,
    iommu: platform.iommu,
    path,
    machine: m,
    kernel: m.kernel,
    leaks,
    t,
    openDevice: (bdf, o = {}) => openPciDevice(bdf, { ...o, kernel: m.kernel, iommu: path }),
    keepPool: (pool, name) => leaks.keepPool(pool, name),
  };
}
