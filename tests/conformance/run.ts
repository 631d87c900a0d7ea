/**
 * Running scenarios and the report format shared by the simulator test and the real-kernel CLI.
 *
 * ## Report format (`deno-vfio-conformance/1`, the golden files)
 *
 * ```json
 * {
 *   "format": "deno-vfio-conformance/1",
 *   "kernel": "6.12.107+deb13-amd64",
 *   "iommu": "vtd",
 *   "runs": [
 *     { "path": "type1",
 *       "scenarios": [
 *         { "name": "type1/map-dma-errno", "observations": [ { "label": "…", "ret": -1, "errno": "EINVAL" } ] },
 *         { "name": "iommufd/get-hw-info", "skipped": "no VFIO cdev" } ] } ]
 * }
 * ```
 *
 * `kernel` is ignored when goldens are compared (tests/vm/results.ts), so a new build of the same
 * kernel that answers the same is not drift. Observations are described in scenario.ts. Scenario
 * and path order are stable (declaration order, then type1, iommufd, compat).
 *
 * @module
 */

import type { Kernel } from "../../ffi/kernel.ts";
import {
  type Observation,
  ScenarioAbort,
  ScenarioContext,
  type ScenarioDef,
  type ScenarioEnv,
  type VfioPath,
} from "./scenario.ts";

/** The report format tag. */
export const REPORT_FORMAT = "deno-vfio-conformance/1";

/** What one scenario run produced. */
export interface ScenarioResult {
  /** Scenario name. */
  readonly name: string;
  /** Observations (empty when skipped). */
  readonly observations: readonly Observation[];
  /** Expectation failures (not part of the golden). */
  readonly failures: readonly string[];
  /** Why it did not run, when skipped. */
  readonly skipped?: string;
}

/** A golden entry: a scenario's observations, or why it was skipped. */
export type GoldenScenario =
  | { readonly name: string; readonly observations: readonly Observation[] }
  | { readonly name: string; readonly skipped: string };

/** The JSON document a run writes (see the module doc). */
export interface ConformanceReport {
  /** Always {@link REPORT_FORMAT}. */
  readonly format: string;
  /** `uname -r` of the kernel, or "sim". */
  readonly kernel: string;
  /** The IOMMU model. */
  readonly iommu: string;
  /** One entry per path run. */
  readonly runs: readonly {
    readonly path: VfioPath;
    readonly scenarios: readonly GoldenScenario[];
  }[];
}

/** Why a scenario cannot run in `env`, or undefined. */
export function missingNeed(def: ScenarioDef, env: ScenarioEnv): string | undefined {
  for (const need of def.needs) {
    if (need === "cdev" && env.cdev === undefined) return "no VFIO cdev for the device";
  }
  return undefined;
}

/**
 * Run one scenario on `kernel` and clean up after it (every fd it left open is closed, every
 * buffer unmapped). Never throws: an exception inside the scenario becomes a failure line.
 */
export async function runScenario(
  kernel: Kernel,
  env: ScenarioEnv,
  path: VfioPath,
  def: ScenarioDef,
  checkExpectations = true,
): Promise<ScenarioResult> {
  const skipped = missingNeed(def, env);
  if (skipped) return { name: def.name, observations: [], failures: [], skipped };
  const t = new ScenarioContext(kernel, env, path, checkExpectations);
  try {
    await def.run(t);
  } catch (e) {
    if (!(e instanceof ScenarioAbort)) {
      t.failures.push(`threw: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    }
  } finally {
    try {
      t.cleanup();
    } catch (e) {
      t.failures.push(`cleanup threw: ${String(e)}`);
    }
  }
  return { name: def.name, observations: t.observations, failures: t.failures };
}

/** The golden form of a result. */
export function golden(result: ScenarioResult): GoldenScenario {
  return result.skipped !== undefined
    ? { name: result.name, skipped: result.skipped }
    : { name: result.name, observations: result.observations };
}

/** One line per failure, prefixed with the scenario and path. */
export function failureLines(path: VfioPath, result: ScenarioResult): string[] {
  return result.failures.map((f) => `${result.name} [${path}]: ${f}`);
}
