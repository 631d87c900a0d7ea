/**
 * The conformance scenarios on the real kernel (VFIO through LinuxKernel / libc FFI).
 *
 *   deno run --allow-ffi tests/conformance/linux_runner.ts [--bdf 0000:00:02.0]
 *       [--path type1|iommufd|compat]… [--iommu vtd] [--json FILE|-] [--sim MODEL]
 *
 * Without --bdf the first QEMU edu device (1234:11e8) is used. Without --path every path the
 * kernel offers is run. `--json -` writes the report (run.ts) to stdout and the human summary to
 * stderr; `--json FILE` also needs --allow-write. The IOMMU model is read from the device's sysfs
 * `iommu` link; when IOMMU_EXPECTATIONS has no row for it the observations are still recorded
 * (for goldens) but not checked. Exits 0 when every expectation held, 1 when one did not, 2 on a
 * usage or setup error; without /dev/vfio it prints one line and exits 0. `--sim MODEL` runs the
 * same CLI on a simulated machine instead (no permission needed): a check of the runner itself.
 *
 * @module
 */

import { parseArgs } from "node:util";
import type { Kernel } from "../../ffi/kernel.ts";
import { ALL_SCENARIOS } from "./all.ts";
import {
  discoverEnv,
  findPciDevice,
  iommuModelOf,
  kernelRelease,
  pathUnavailable,
} from "./discover.ts";
import { expectationsFor, type IommuExpectations } from "./expectations.ts";
import {
  type ConformanceReport,
  failureLines,
  golden,
  type GoldenScenario,
  REPORT_FORMAT,
  runScenario,
} from "./run.ts";
import { VFIO_PATHS, type VfioPath } from "./scenario.ts";

const USAGE = "usage: linux_runner.ts [--bdf BDF] [--path type1|iommufd|compat]… [--iommu MODEL] " +
  "[--json FILE|-] [--sim MODEL]";

/** A row for a model without expectations: observations are recorded, nothing is checked. */
function placeholderExpectations(model: string): IommuExpectations {
  return {
    model,
    paths: VFIO_PATHS,
    iovaRanges: [{ start: 0n, end: (1n << 64n) - 1n }],
    pgsizes: 0x1000n,
    iovaAlignment: 0x1000n,
    reservedIova: 0xfee00000n,
    dmaCc: 0,
    nestingSetIommu: null,
    hwInfo: { type: 0, dataHex: "" },
    hwCapabilities: 0n,
    nestedOverPlainParent: "EINVAL",
    domainAperture: "alloc",
  };
}

async function loadLinuxKernel(): Promise<Kernel> {
  const { LinuxKernel } = await import("../../ffi/linux.ts");
  try {
    return LinuxKernel.open();
  } catch (e) {
    return fail(
      `cannot load libc (run with --allow-ffi): ${e instanceof Error ? e.message : e}`,
      2,
    );
  }
}

function fail(message: string, code: number): never {
  console.error(`conformance: ${message}`);
  Deno.exit(code);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      bdf: { type: "string" },
      path: { type: "string", multiple: true },
      iommu: { type: "string" },
      json: { type: "string" },
      sim: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const paths = (values.path ?? [...VFIO_PATHS]) as VfioPath[];
  const bad = paths.find((p) => !VFIO_PATHS.includes(p));
  if (bad) fail(`unknown path "${bad}"\n${USAGE}`, 2);
  let kernel: Kernel;
  if (values.sim !== undefined) {
    const { createMachine } = await import("../../sim/mod.ts");
    if (values.sim !== "vtd") fail(`no simulated IOMMU "${values.sim}"`, 2);
    kernel = createMachine({ iommu: values.sim, iommufd: true, cdev: true }).kernel;
  } else {
    if (Deno.build.os !== "linux") fail("skipped: not Linux (no VFIO)", 0);
    kernel = await loadLinuxKernel();
  }
  if (typeof kernel.readdir("/dev/vfio") === "number") {
    fail("skipped: /dev/vfio is absent (no VFIO on this kernel)", 0);
  }
  const bdf = values.bdf ?? findPciDevice(kernel, 0x1234, 0x11e8);
  if (bdf === undefined) fail("no --bdf given and no QEMU edu device (1234:11e8) found", 2);
  const model = values.iommu ?? values.sim ?? iommuModelOf(kernel, bdf) ?? "unknown";
  const row = expectationsFor(model);
  if (row === undefined) {
    console.error(`conformance: no expectations for IOMMU "${model}": recording observations only`);
  }
  const env = discoverEnv(kernel, bdf, row ?? placeholderExpectations(model));
  if (typeof env === "string") fail(env, 2);

  const release = values.sim !== undefined ? "sim" : kernelRelease(kernel);
  console.error(`conformance: ${bdf}, group ${env.group}, IOMMU ${model}, kernel ${release}`);
  const runs: { path: VfioPath; scenarios: GoldenScenario[] }[] = [];
  let passed = 0;
  let failed = 0;
  for (const path of paths) {
    const unavailable = pathUnavailable(kernel, env, path);
    const scenarios: GoldenScenario[] = [];
    for (const def of ALL_SCENARIOS.filter((d) => d.paths.includes(path))) {
      if (unavailable) {
        scenarios.push({ name: def.name, skipped: unavailable });
        continue;
      }
      const result = await runScenario(kernel, env, path, def, row !== undefined);
      scenarios.push(golden(result));
      const lines = failureLines(path, result);
      const status = result.skipped
        ? `skipped (${result.skipped})`
        : lines.length
        ? "FAILED"
        : "ok";
      console.error(`${def.name} [${path}] ... ${status}`);
      for (const line of lines) console.error(`  ${line}`);
      if (result.skipped) continue;
      if (lines.length > 0) failed++;
      else passed++;
    }
    if (unavailable) console.error(`conformance: path ${path} skipped: ${unavailable}`);
    runs.push({ path, scenarios });
  }
  const report: ConformanceReport = { format: REPORT_FORMAT, kernel: release, iommu: model, runs };
  const text = JSON.stringify(report, null, 1);
  if (values.json === "-") console.log(text);
  else if (values.json !== undefined) Deno.writeTextFileSync(values.json, `${text}\n`);
  console.error(`${passed} passed, ${failed} failed`);
  if (failed > 0) Deno.exit(1);
}

if (import.meta.main) await main();
