/**
 * Every conformance scenario on the simulator: one fresh machine per scenario × IOMMU model ×
 * path, one Deno test step each. A failing step lists every expectation the simulator missed.
 *
 * @module
 */

import { createMachine, type SimMachine } from "../../sim/mod.ts";
import { FakeDevice } from "../sim/fake_device.ts";
import { ALL_SCENARIOS } from "./all.ts";
import { discoverEnv, pathUnavailable } from "./discover.ts";
import { expectationsFor } from "./expectations.ts";
import { failureLines, runScenario } from "./run.ts";

type MachineOptions = Parameters<typeof createMachine>[0];

/** The simulated IOMMU models and the machine options each needs: adding a model is one line. */
const SIM_MODELS: readonly {
  readonly model: MachineOptions["iommu"];
  readonly options?: Partial<MachineOptions>;
}[] = [
  { model: "vtd" },
];

const EDU_BDF = "0000:00:02.0";

/**
 * A machine with the device under test at EDU_BDF: QEMU's edu, or — until the edu model lands in
 * the simulator — the test suite's fake 1234:11e8 function (the scenarios use no device feature).
 */
function machineFor(options: MachineOptions): SimMachine {
  try {
    return createMachine({ ...options, devices: [{ model: "edu", bdf: EDU_BDF }] });
  } catch (e) {
    if (!(e instanceof Error && /not available/.test(e.message))) throw e;
    return createMachine({ ...options, devices: [{ model: new FakeDevice(), bdf: EDU_BDF }] });
  }
}

for (const { model, options } of SIM_MODELS) {
  Deno.test({
    name: `conformance scenarios on the simulator (${model})`,
    permissions: "none",
    fn: async (t) => {
      for (const def of ALL_SCENARIOS) {
        for (const path of def.paths) {
          await t.step(`${def.name} [${model}/${path}]`, async () => {
            const machine = machineFor({
              iommu: model,
              iommufd: true,
              cdev: true,
              seed: 1,
              ...options,
            });
            const expectations = expectationsFor(model);
            if (expectations === undefined) {
              throw new Error(`no IOMMU_EXPECTATIONS row for ${model}`);
            }
            const env = discoverEnv(machine.kernel, EDU_BDF, expectations);
            if (typeof env === "string") throw new Error(env);
            const missing = pathUnavailable(machine.kernel, env, path);
            if (missing) throw new Error(`the simulator lacks the ${path} path: ${missing}`);
            const result = await runScenario(machine.kernel, env, path, def);
            if (result.skipped) throw new Error(`skipped on the simulator: ${result.skipped}`);
            const lines = failureLines(path, result);
            if (lines.length > 0) throw new Error(`\n${lines.join("\n")}`);
          });
        }
      }
    },
  });
}
