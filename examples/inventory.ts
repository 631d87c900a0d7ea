/**
 * inventory — the PCI devices of this machine as VFIO sees them: ids, driver, IOMMU group, VFIO
 * cdev, whether a userspace driver could open each one now, and the IOMMU facts sysfs shows
 * (device nodes, IOMMU units, groups with their reserved regions, module parameters, the
 * locked-memory limit). Everything is read through libc, so `--allow-ffi` is the only
 * permission needed; nothing is written.
 *
 *   deno run --allow-ffi examples/inventory.ts
 *   deno run examples/inventory.ts --sim
 *
 * @module
 */

import {
  describePciDevice,
  findVfioNodes,
  type Kernel,
  leavesGroupViable,
  listPciDevices,
  NO_VFIO_HINT,
  type PciDeviceDescription,
  VFIO_PCI,
} from "../mod.ts";
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
import type { IommuModelName } from "../sim/mod.ts";

const HELP = `inventory — PCI devices, IOMMU groups and VFIO readiness

usage: deno run --allow-ffi examples/inventory.ts [--sim [--iommu MODEL]]
  --sim            list a simulated machine instead of this one (needs no permission)
  --iommu MODEL    the simulated machine's IOMMU: vtd (default), smmuv3, virtio-iommu, spapr
  --help           this text`;

/** Where sysfs lists the IOMMU hardware units (dmar0, ivhd0, smmu3.0x…, virtio-iommu…). */
const IOMMU_CLASS_DIR = "/sys/class/iommu";
/** Where sysfs lists the IOMMU groups. */
const IOMMU_GROUPS_DIR = "/sys/kernel/iommu_groups";
/** Where the vfio-pci driver appears once loaded. */
const VFIO_PCI_DRIVER_DIR = "/sys/bus/pci/drivers/vfio-pci";
/** Module parameters worth knowing before opening a device (vfio.md §8, iommufd.md). */
const MODULE_PARAMETERS = [
  "/sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts",
  "/sys/module/vfio_iommu_type1/parameters/dma_entry_limit",
  "/sys/module/iommufd/parameters/allow_unsafe_interrupts",
  "/sys/module/vfio/parameters/enable_unsafe_noiommu_mode",
];
/** Kernel command-line options that switch or tune the IOMMU. */
const IOMMU_CMDLINE = /^(intel_iommu|amd_iommu|iommu|iommu\.\w+)=/;

function read(kernel: Kernel, path: string): string | undefined {
  const text = kernel.readFile(path);
  return typeof text === "string" ? text.trim() : undefined;
}

function list(kernel: Kernel, path: string): string[] {
  const names = kernel.readdir(path);
  return typeof names === "number" ? [] : names;
}

function hex(n: number, digits: number): string {
  return n.toString(16).padStart(digits, "0");
}

/** What a driver could do with the device now, in a few words. */
function status(d: PciDeviceDescription): string {
  if (d.group === undefined) return "no IOMMU group";
  if (d.driver !== VFIO_PCI) return "bind to vfio-pci first";
  const blockers = d.groupMembers.filter((m) => !leavesGroupViable(m.driver));
  if (blockers.length > 0) return `group shared with ${blockers.map((m) => m.name).join(", ")}`;
  return "ready";
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c])).join("  ").trimEnd())
    .join("\n");
}

function deviceTable(devices: PciDeviceDescription[]): string {
  const rows = [["BDF", "VENDOR:DEV", "CLASS", "DRIVER", "GROUP", "CDEV", "VFIO"]];
  for (const d of devices) {
    rows.push([
      d.bdf,
      `${hex(d.vendor, 4)}:${hex(d.device, 4)}`,
      d.classCode === undefined ? "-" : hex(d.classCode, 6),
      d.driver ?? "-",
      d.group === undefined ? "-" : String(d.group),
      d.cdev ?? "-",
      status(d),
    ]);
  }
  return table(rows);
}

function groupLines(kernel: Kernel): string[] {
  const lines: string[] = [];
  const groups = list(kernel, IOMMU_GROUPS_DIR).sort((a, b) => Number(a) - Number(b));
  for (const g of groups) {
    const dir = `${IOMMU_GROUPS_DIR}/${g}`;
    const members = list(kernel, `${dir}/devices`);
    const type = read(kernel, `${dir}/type`) ?? "?";
    lines.push(`  group ${g} (${type}): ${members.join(", ") || "(no devices)"}`);
    const regions = read(kernel, `${dir}/reserved_regions`);
    for (const line of regions ? regions.split("\n") : []) lines.push(`    reserved ${line}`);
  }
  return lines;
}

function iommuFacts(kernel: Kernel): string[] {
  const nodes = findVfioNodes(kernel);
  const yes = (b: boolean): string => b ? "yes" : "no";
  const facts = [
    `  /dev/vfio: ${yes(nodes.hasDevVfio)}` +
    `   /dev/vfio/vfio (type1 container): ${yes(nodes.hasVfioContainer)}` +
    `   /dev/iommu (iommufd): ${yes(nodes.hasIommufd)}`,
    `  vfio-pci driver loaded: ${yes(typeof kernel.readdir(VFIO_PCI_DRIVER_DIR) !== "number")}`,
    `  IOMMU units (${IOMMU_CLASS_DIR}): ${list(kernel, IOMMU_CLASS_DIR).join(", ") || "none"}`,
  ];
  const cmdline = (read(kernel, "/proc/cmdline") ?? "").split(/\s+/)
    .filter((w) => IOMMU_CMDLINE.test(w));
  facts.push(`  kernel command line: ${cmdline.join(" ") || "(no IOMMU options)"}`);
  for (const path of MODULE_PARAMETERS) {
    const value = read(kernel, path);
    if (value !== undefined) facts.push(`  ${path.replace("/sys/module/", "")}: ${value}`);
  }
  const memlock = /^Max locked memory\s+(\S+)\s+(\S+)/m.exec(
    read(kernel, "/proc/self/limits") ?? "",
  );
  if (memlock) {
    facts.push(
      `  RLIMIT_MEMLOCK: soft ${memlock[1]}, hard ${memlock[2]} bytes (pinned DMA memory)`,
    );
  }
  return facts;
}

/** A small simulated machine with one device in each state the table distinguishes. */
function simulatedKernel(iommu: IommuModelName): Kernel {
  return simMachine(iommu, {
    devices: [
      { model: "edu", bdf: "0000:00:02.0" },
      { model: "edu", bdf: "0000:00:03.0", driver: "" },
      { model: "edu", bdf: "0000:00:05.0", group: 5 },
      { model: "edu", bdf: "0000:00:05.1", group: 5, driver: "igb" },
    ],
  }).kernel;
}

async function main(args: string[]): Promise<number> {
  const { values } = parseFlags(args, {
    sim: { type: "boolean", default: false },
    iommu: TARGET_OPTIONS.iommu,
  });
  if (values.help) return help(HELP);
  if (values.iommu !== undefined && !values.sim) {
    throw new UsageError("--iommu: picks the simulated machine's IOMMU; add --sim");
  }
  const iommu = oneOf("--iommu", values.iommu ?? "vtd", SIM_IOMMUS) as IommuModelName;
  const kernel = values.sim ? simulatedKernel(iommu) : await hostKernel();
  const devices = listPciDevices(kernel).map((bdf) => describePciDevice(kernel, bdf));
  console.log(
    `PCI devices (${devices.length})${values.sim ? ` on a simulated ${iommu} machine` : ""}`,
  );
  if (devices.length > 0) console.log(deviceTable(devices));
  console.log("\nIOMMU and VFIO");
  for (const line of iommuFacts(kernel)) console.log(line);
  const groups = groupLines(kernel);
  console.log(`\nIOMMU groups${groups.length === 0 ? ": none (the IOMMU is off or absent)" : ""}`);
  for (const line of groups) console.log(line);
  if (!findVfioNodes(kernel).hasDevVfio) {
    console.log(`\nno /dev/vfio: no device can be opened with VFIO here; ${NO_VFIO_HINT}`);
  }
  return 0;
}

if (import.meta.main) await runProgram("inventory", main);
