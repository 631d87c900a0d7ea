/**
 * Every conformance scenario on the simulator: one fresh machine per scenario × IOMMU model ×
 * path, one Deno test step each. A failing step lists every expectation the simulator missed.
 * A second test compares the simulator's observations with the real kernel's goldens
 * (tests/goldens/<machine>/conformance-<path>.json, recorded by the VM bench) where they exist.
 *
 * @module
 */

import { createMachine, type SimMachine } from "../../sim/mod.ts";
import { SIM_PLATFORMS } from "../../testing/mod.ts";
import { ALL_SCENARIOS } from "./all.ts";
import { discoverEnv, pathUnavailable } from "./discover.ts";
import { expectationsFor, IOMMU_EXPECTATIONS } from "./expectations.ts";
import { failureLines, golden, type GoldenScenario, runScenario } from "./run.ts";
import { GUEST_KERNEL_CONFIG, VM_MACHINES } from "../vm/machines.ts";
import { compareGolden, goldenPath } from "../vm/results.ts";

type MachineOptions = Parameters<typeof createMachine>[0];

/**
 * The simulated IOMMU models and the machine options each needs, from the testing fixture's
 * platform table (x86 virtio-iommu: allow_unsafe_interrupts, as the VM bench passes too); a
 * platform without the VFIO cdev (POWER9: the sPAPR TCE container only) is built without it.
 */
const SIM_MODELS: readonly {
  readonly model: MachineOptions["iommu"];
  readonly options?: Partial<MachineOptions>;
}[] = SIM_PLATFORMS.map((p) => ({
  model: p.iommu,
  options: { ...p.options, ...(p.paths.includes("iommufd") ? {} : { cdev: undefined }) },
}));

const EDU_BDF = "0000:00:02.0";

/** A machine with QEMU's edu at EDU_BDF (the device under test). */
function machineFor(options: MachineOptions): SimMachine {
  return createMachine({ ...options, devices: [{ model: "edu", bdf: EDU_BDF }] });
}

for (const { model, options } of SIM_MODELS) {
  Deno.test({
    name: `conformance scenarios on the simulator (${model})`,
    permissions: "none",
    fn: async (t) => {
      const row = expectationsFor(model);
      if (row === undefined) throw new Error(`no IOMMU_EXPECTATIONS row for ${model}`);
      for (const def of ALL_SCENARIOS) {
        // The paths Linux has on this platform are data (the row's `paths`).
        for (const path of def.paths.filter((p) => row.paths.includes(p))) {
          await t.step(`${def.name} [${model}/${path}]`, async () => {
            const machine = machineFor({
              iommu: model,
              iommufd: true,
              cdev: true,
              iommufdTest: true, // as the VM bench's own kernels are built
              seed: 1,
              ...options,
            });
            const env = discoverEnv(machine.kernel, EDU_BDF, row);
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

/** Where the VM bench keeps the real kernel's answers (tests/vm/run.ts --update-goldens). */
const ROOT = new URL("../../", import.meta.url);

Deno.test({
  name: "the simulator answers like the recorded kernel goldens (machines with a simulated IOMMU)",
  permissions: { read: [new URL("tests/goldens/", ROOT)] },
  fn: async (t) => {
    const simulated = new Set<string>(SIM_MODELS.map((m) => m.model));
    for (const vm of VM_MACHINES.filter((m) => simulated.has(m.simIommu))) {
      for (const path of vm.paths) {
        const file = goldenPath(ROOT.pathname, vm.name, `conformance-${path}`);
        let recorded: { observations?: { runs?: unknown } };
        try {
          recorded = JSON.parse(await Deno.readTextFile(file));
        } catch {
          continue; // no golden recorded yet for this machine and path
        }
        await t.step(`${vm.name} ${path}`, async () => {
          const model = vm.simIommu as MachineOptions["iommu"];
          const options = SIM_MODELS.find((m) => m.model === model)?.options;
          const scenarios: GoldenScenario[] = [];
          for (const def of ALL_SCENARIOS.filter((d) => d.paths.includes(path))) {
            const machine = machineFor({
              iommu: model,
              iommufd: true,
              cdev: true,
              seed: 1,
              ...options,
              // The VM machine's kernel decides who serves /dev/vfio/vfio (compat container),
              // whether IOMMU_TEST_CMD exists and whether it has transparent huge pages.
              iommufdVfioContainer: vm.iommufdVfioContainer,
              ...GUEST_KERNEL_CONFIG[vm.kernel],
            });
            const env = discoverEnv(
              machine.kernel,
              EDU_BDF,
              expectationsFor(model) ?? IOMMU_EXPECTATIONS.vtd,
            );
            if (typeof env === "string") throw new Error(env);
            scenarios.push(golden(await runScenario(machine.kernel, env, path, def)));
          }
          const diff = compareGolden(`${vm.name}/${path}`, recorded.observations?.runs, [
            JSON.parse(JSON.stringify({ path, scenarios })),
          ]);
          if (diff.length > 0) throw new Error(`\n${diff.join("\n")}`);
        });
      }
    }
  },
});
