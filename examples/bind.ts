/**
 * bind — hand a PCI function to vfio-pci so a userspace driver can open it: sets its
 * driver_override, unbinds it from its current driver, re-probes it, and checks the result
 * (core/sysfs.ts `bindToVfioPci`). Needs root on a real machine (sysfs writes).
 *
 *   sudo deno run --allow-ffi examples/bind.ts 0000:03:00.0
 *   deno run examples/bind.ts --sim 0000:00:03.0
 *
 * @module
 */

import { bindToVfioPci, describePciDevice, explainUnusable, type Kernel } from "../mod.ts";
import type { IommuModelName } from "../sim/mod.ts";
import {
  help,
  hostKernel,
  oneOf,
  parseFlags,
  runProgram,
  SIM_IOMMUS,
  simMachine,
  TARGET_OPTIONS,
  UsageError,
} from "./cli.ts";

const HELP = `bind — bind a PCI function to vfio-pci

usage: sudo deno run --allow-ffi examples/bind.ts [--sim [--iommu MODEL]] BDF
  BDF              PCI address, e.g. 0000:03:00.0 (or 03:00.0); see examples/inventory.ts
  --sim            bind on a simulated machine (its 0000:00:03.0 starts unbound)
  --iommu MODEL    the simulated machine's IOMMU: vtd (default), smmuv3, virtio-iommu, spapr
  --help           this text

The device's driver_override is set to vfio-pci, so its host driver will not take it back;
to return it: echo > /sys/bus/pci/devices/BDF/driver_override, then unbind and re-probe.`;

/** A simulated machine: edu at 00:02.0 on vfio-pci, edu at 00:03.0 unbound, one on "igb". */
function simulatedKernel(iommu: IommuModelName): Kernel {
  return simMachine(iommu, {
    devices: [
      { model: "edu", bdf: "0000:00:02.0" },
      { model: "edu", bdf: "0000:00:03.0", driver: "" },
      { model: "edu", bdf: "0000:00:04.0", driver: "igb" },
    ],
  }).kernel;
}

async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(
    args,
    { sim: { type: "boolean", default: false }, iommu: TARGET_OPTIONS.iommu },
    true,
  );
  if (values.help) return help(HELP);
  if (positionals.length !== 1) {
    throw new UsageError(
      `${positionals.length === 0 ? "BDF missing" : `${positionals.join(" ")}: one BDF only`}: ` +
        "give exactly one PCI address, e.g. 0000:03:00.0",
    );
  }
  if (values.iommu !== undefined && !values.sim) {
    throw new UsageError("--iommu: picks the simulated machine's IOMMU; add --sim");
  }
  const iommu = oneOf("--iommu", values.iommu ?? "vtd", SIM_IOMMUS) as IommuModelName;
  const kernel = values.sim ? simulatedKernel(iommu) : await hostKernel();
  const before = describePciDevice(kernel, positionals[0]);
  const after = bindToVfioPci(kernel, before.bdf);
  const was = before.driver === after.driver ? "already" : `was ${before.driver ?? "unbound"}`;
  const nodes = [
    after.groupNode ?? (after.group === undefined ? undefined : `group ${after.group}`),
    after.cdev,
  ].filter((n) => n !== undefined).join(", ");
  console.log(
    `bind: ${after.bdf} is bound to ${after.driver} (${was})${nodes ? `: ${nodes}` : ""}`,
  );
  const problem = explainUnusable(after, "bind");
  if (problem !== undefined) console.log(`bind: note: ${problem.message}`);
  return 0;
}

if (import.meta.main) await runProgram("bind", main);
