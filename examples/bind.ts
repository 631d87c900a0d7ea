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

import { parseArgs } from "node:util";
import type { Kernel } from "../ffi/kernel.ts";
import { bindToVfioPci, describePciDevice, explainUnusable } from "../core/sysfs.ts";
import { createMachine } from "../sim/machine.ts";

const HELP = `bind — bind a PCI function to vfio-pci

usage: sudo deno run --allow-ffi examples/bind.ts [--sim] BDF
  BDF       PCI address, e.g. 0000:03:00.0 (or 03:00.0); see examples/inventory.ts
  --sim     bind on a simulated machine (its 0000:00:03.0 starts unbound)
  --help    this text

The device's driver_override is set to vfio-pci, so its host driver will not take it back;
to return it: echo > /sys/bus/pci/devices/BDF/driver_override, then unbind and re-probe.`;

/** A simulated machine: edu at 00:02.0 on vfio-pci, edu at 00:03.0 unbound, one on "igb". */
function simulatedKernel(): Kernel {
  return createMachine({
    iommu: "vtd",
    devices: [
      { model: "edu", bdf: "0000:00:02.0" },
      { model: "edu", bdf: "0000:00:03.0", driver: "" },
      { model: "edu", bdf: "0000:00:04.0", driver: "igb" },
    ],
  }).kernel;
}

async function linuxKernel(): Promise<Kernel> {
  const { LinuxKernel } = await import("../ffi/linux.ts");
  try {
    return LinuxKernel.open();
  } catch (e) {
    if (e instanceof Deno.errors.NotCapable) {
      throw new Error("needs --allow-ffi (sysfs is written through libc)");
    }
    throw e;
  }
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      sim: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (positionals.length !== 1) {
    throw new Error("give exactly one PCI address, e.g. 0000:03:00.0 (--help for usage)");
  }
  const kernel = values.sim ? simulatedKernel() : await linuxKernel();
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

if (import.meta.main) {
  try {
    Deno.exit(await main());
  } catch (e) {
    console.error(`bind: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
