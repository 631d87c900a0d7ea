/**
 * Device discovery through sysfs, over any {@link Kernel} (the real one or the simulator): what a
 * PCI function is, which driver holds it, its IOMMU group and the group's other members and
 * reserved regions, its VFIO cdev, and which VFIO/iommufd nodes exist — plus the bind helper
 * and the actionable error for a device VFIO cannot use yet.
 *
 * Paths follow shared/reference/vfio.md §6 (groups, reserved regions) and §7.6 (cdev):
 * - /sys/bus/pci/devices/<bdf>/{vendor,device,class,driver,driver_override,iommu_group,iommu}
 * - /sys/bus/pci/devices/<bdf>/vfio-dev/vfioN → /dev/vfio/devices/vfioN
 * - /sys/kernel/iommu_groups/<N>/{devices/,reserved_regions,type}
 * - /dev/vfio/{vfio,<N>,devices/}, /dev/iommu
 *
 * @example
 * ```ts
 * const desc = describePciDevice(kernel, "03:00.0");
 * const problem = explainUnusable(desc);
 * if (problem) throw problem; // "0000:03:00.0 is bound to ixgbe, not vfio-pci: run …"
 * ```
 *
 * @module
 */

import { ERRNO } from "../ffi/errno.ts";
import type { Kernel } from "../ffi/kernel.ts";
import { errnoDescription, VfioError } from "./errors.ts";

/** Where sysfs lists every PCI function. */
export const PCI_DEVICES_DIR = "/sys/bus/pci/devices";
/** Where sysfs lists the PCI drivers. */
const PCI_DRIVERS_DIR = "/sys/bus/pci/drivers";
/** Writing a bdf here makes the driver core probe it again (honouring driver_override). */
const DRIVERS_PROBE = "/sys/bus/pci/drivers_probe";
/** Where sysfs lists the IOMMU groups. */
const IOMMU_GROUPS_DIR = "/sys/kernel/iommu_groups";
/** The name of the VFIO PCI driver. */
export const VFIO_PCI = "vfio-pci";

/**
 * Drivers that leave a group viable for VFIO: they set `driver_managed_dma` in Linux ≥ 5.19
 * (vfio-pci and its vendor variants, pci-stub, the PCIe port driver), so they do not claim the
 * group's DMA ownership. Any other bound driver makes the group unusable for VFIO (vfio.md §6).
 */
const DMA_OWNERSHIP_FREE_DRIVERS: readonly string[] = [VFIO_PCI, "pci-stub", "pcieport"];
/** Vendor variants of vfio-pci are named after it ("mlx5_vfio_pci", "virtio_vfio_pci", …). */
const VFIO_VARIANT = /vfio/;

/** A PCI address: domain (4+ hex digits, as Linux prints it), bus, slot (0–1f), function (0–7). */
const BDF_FULL = /^([0-9a-f]{4,8}):([0-9a-f]{2}):([01][0-9a-f])\.([0-7])$/;
/** The short form lspci prints without -D: bus:slot.function in domain 0000. */
const BDF_SHORT = /^([0-9a-f]{2}):([01][0-9a-f])\.([0-7])$/;
/** One reserved_regions line: `0x%016llx 0x%016llx %s` (start, inclusive end, type). */
const RESERVED_LINE = /^0x([0-9a-f]{1,16}) 0x([0-9a-f]{1,16}) (\S+)$/i;
/** The cdev directory names under vfio-dev/. */
const CDEV_NAME = /^vfio\d+$/;

/** An IOMMU reserved region of a group: IOVAs the device must never be given. */
export interface ReservedRegion {
  /** First IOVA of the region. */
  readonly start: bigint;
  /** Last IOVA of the region (inclusive). */
  readonly end: bigint;
  /** `direct`, `direct-relaxable`, `reserved` or `msi` (vfio.md §6). */
  readonly type: string;
}

/** Another device in the same IOMMU group. */
export interface GroupMember {
  /** Its device name (a PCI address for PCI functions). */
  readonly name: string;
  /** The driver bound to it, or undefined when unbound. */
  readonly driver: string | undefined;
}

/** Which VFIO and iommufd device nodes exist on the machine. */
export interface VfioNodes {
  /** /dev/vfio exists (the vfio module is loaded). */
  readonly hasDevVfio: boolean;
  /** /dev/vfio/vfio exists (the legacy container, type1 / sPAPR). */
  readonly hasVfioContainer: boolean;
  /** /dev/iommu exists (CONFIG_IOMMUFD). */
  readonly hasIommufd: boolean;
  /** The names in /dev/vfio (group numbers, "vfio", "devices"), sorted. */
  readonly devVfio: readonly string[];
}

/** Everything sysfs says about one PCI function, as {@link describePciDevice} found it. */
export interface PciDeviceDescription extends VfioNodes {
  /** The normalized PCI address, "0000:03:00.0". */
  readonly bdf: string;
  /** PCI vendor id. */
  readonly vendor: number;
  /** PCI device id. */
  readonly device: number;
  /** PCI class code (base class, subclass, interface), or undefined if unreadable. */
  readonly classCode: number | undefined;
  /** The bound driver's name, or undefined when unbound. */
  readonly driver: string | undefined;
  /** driver_override, or undefined when unset ("(null)") or unreadable. */
  readonly driverOverride: string | undefined;
  /** The IOMMU group number, or undefined when the device has none (no IOMMU). */
  readonly group: number | undefined;
  /** The group's default domain type (`DMA`, `DMA-FQ`, `identity`, …), if readable. */
  readonly groupType: string | undefined;
  /** The group's character device (/dev/vfio/N), when it exists. */
  readonly groupNode: string | undefined;
  /** The other devices of the group (without this one), with their drivers. */
  readonly groupMembers: readonly GroupMember[];
  /** The group's reserved regions, in file order (malformed lines skipped). */
  readonly reservedRegions: readonly ReservedRegion[];
  /** The VFIO cdev (/dev/vfio/devices/vfioN) when the kernel created one. */
  readonly cdev: string | undefined;
  /** The IOMMU instance translating the device ("dmar0"), from its `iommu` link. */
  readonly iommu: string | undefined;
}

function basename(path: string): string {
  return path.replace(/\/+$/, "").split("/").pop() ?? "";
}

/**
 * The canonical form of a PCI address: lower case, with the domain ("00:02.0" → "0000:00:02.0").
 * Throws a {@link VfioError} with a hint for anything else.
 */
export function normalizeBdf(bdf: string): string {
  const text = bdf.trim().toLowerCase();
  if (BDF_FULL.test(text)) return text;
  if (BDF_SHORT.test(text)) return `0000:${text}`;
  throw new VfioError({
    operation: "parse PCI address",
    device: bdf,
    message: `"${bdf}" is not a PCI address`,
    hint: "write it as domain:bus:slot.function, e.g. 0000:03:00.0 (see `lspci -D`)",
  });
}

/**
 * Parse /sys/kernel/iommu_groups/N/reserved_regions. Lines that do not have the kernel's format
 * (`0x%016llx 0x%016llx %s`), or whose end is below the start, are skipped, never thrown.
 */
export function parseReservedRegions(text: string): ReservedRegion[] {
  const regions: ReservedRegion[] = [];
  for (const line of text.split("\n")) {
    const m = RESERVED_LINE.exec(line.trim());
    if (m === null) continue;
    const start = BigInt(`0x${m[1]}`);
    const end = BigInt(`0x${m[2]}`);
    if (end < start) continue;
    regions.push({ start, end, type: m[3] });
  }
  return regions;
}

/**
 * True when a bound driver leaves the IOMMU group usable by VFIO (see
 * `DMA_OWNERSHIP_FREE_DRIVERS`); an unbound device (undefined) does too.
 */
export function leavesGroupViable(driver: string | undefined): boolean {
  return driver === undefined || DMA_OWNERSHIP_FREE_DRIVERS.includes(driver) ||
    VFIO_VARIANT.test(driver);
}

/** The PCI functions sysfs lists, sorted; empty when there is no /sys/bus/pci. */
export function listPciDevices(kernel: Kernel): string[] {
  const names = kernel.readdir(PCI_DEVICES_DIR);
  if (names === -ERRNO.ENOENT) return [];
  if (typeof names === "number") {
    throw new VfioError({
      operation: "readdir",
      errno: -names,
      device: PCI_DEVICES_DIR,
      message: errnoDescription(-names),
    });
  }
  return names;
}

/** Which of /dev/vfio, /dev/vfio/vfio and /dev/iommu exist. */
export function findVfioNodes(kernel: Kernel): VfioNodes {
  const dev = kernel.readdir("/dev");
  const vfio = kernel.readdir("/dev/vfio");
  const devVfio = typeof vfio === "number" ? [] : vfio;
  return {
    hasDevVfio: typeof vfio !== "number",
    hasVfioContainer: devVfio.includes("vfio"),
    hasIommufd: typeof dev !== "number" && dev.includes("iommu"),
    devVfio,
  };
}

function readText(kernel: Kernel, path: string): string | undefined {
  const text = kernel.readFile(path);
  return typeof text === "string" ? text.trim() : undefined;
}

/** A sysfs hex attribute ("0x8086\n"), or undefined. */
function parseHex(text: string | number): number | undefined {
  if (typeof text === "number") return undefined;
  const t = text.trim();
  return /^0x[0-9a-f]+$/i.test(t) ? parseInt(t.slice(2), 16) : undefined;
}

function linkName(kernel: Kernel, path: string): string | undefined {
  const target = kernel.readlink(path);
  return typeof target === "string" ? basename(target) : undefined;
}

/** The device's IOMMU group number, or undefined when it has none. */
function groupOf(kernel: Kernel, deviceDir: string): number | undefined {
  const name = linkName(kernel, `${deviceDir}/iommu_group`);
  if (name === undefined || !/^\d+$/.test(name)) return undefined;
  return Number(name);
}

function cdevOf(kernel: Kernel, deviceDir: string): string | undefined {
  const names = kernel.readdir(`${deviceDir}/vfio-dev`);
  if (typeof names === "number") return undefined;
  const name = names.find((n) => CDEV_NAME.test(n));
  return name === undefined ? undefined : `/dev/vfio/devices/${name}`;
}

function membersOf(kernel: Kernel, group: number, bdf: string): GroupMember[] {
  const dir = `${IOMMU_GROUPS_DIR}/${group}/devices`;
  const names = kernel.readdir(dir);
  if (typeof names === "number") return [];
  // A PCI member is read where every PCI device is (the same directory the group links to);
  // anything else (a platform device on ARM) through the group's own link.
  return names.filter((n) => n !== bdf).map((name) => ({
    name,
    driver: linkName(
      kernel,
      BDF_FULL.test(name) ? `${PCI_DEVICES_DIR}/${name}/driver` : `${dir}/${name}/driver`,
    ),
  }));
}

/**
 * What sysfs says about PCI function `bdf` (any accepted spelling, see {@link normalizeBdf}).
 * Throws a {@link VfioError} when the address is malformed or no such device exists; everything
 * else that is missing is reported as undefined or empty.
 */
export function describePciDevice(kernel: Kernel, bdf: string): PciDeviceDescription {
  const address = normalizeBdf(bdf);
  const dir = `${PCI_DEVICES_DIR}/${address}`;
  const vendorText = kernel.readFile(`${dir}/vendor`);
  const vendor = parseHex(vendorText);
  const device = parseHex(kernel.readFile(`${dir}/device`));
  if (vendor === undefined || device === undefined) {
    const errno = typeof vendorText === "number" ? -vendorText : undefined;
    throw new VfioError({
      operation: "describePciDevice",
      errno,
      device: address,
      message: errno === ERRNO.ENOENT
        ? "no such PCI device"
        : `cannot read ${dir}/vendor and device`,
      hint: "list the machine's PCI devices with `deno run --allow-ffi examples/inventory.ts` " +
        "or `lspci -D`",
    });
  }
  const override = readText(kernel, `${dir}/driver_override`);
  const group = groupOf(kernel, dir);
  const nodes = findVfioNodes(kernel);
  const groupDir = `${IOMMU_GROUPS_DIR}/${group}`;
  const regionsText = group === undefined ? -ERRNO.ENOENT : kernel.readFile(
    `${groupDir}/reserved_regions`,
  );
  const groupNodeName = group === undefined
    ? undefined
    : nodes.devVfio.find((n) => n === String(group) || n === `noiommu-${group}`);
  return {
    ...nodes,
    bdf: address,
    vendor,
    device,
    classCode: parseHex(kernel.readFile(`${dir}/class`)),
    driver: linkName(kernel, `${dir}/driver`),
    driverOverride: override === undefined || override === "(null)" ? undefined : override,
    group,
    groupType: group === undefined ? undefined : readText(kernel, `${groupDir}/type`),
    groupNode: groupNodeName === undefined ? undefined : `/dev/vfio/${groupNodeName}`,
    groupMembers: group === undefined ? [] : membersOf(kernel, group, address),
    reservedRegions: typeof regionsText === "string" ? parseReservedRegions(regionsText) : [],
    cdev: cdevOf(kernel, dir),
    iommu: linkName(kernel, `${dir}/iommu`),
  };
}

/** What to do when /dev/vfio is missing. */
export const NO_VFIO_HINT: string =
  "load vfio-pci: modprobe vfio-pci; is the IOMMU on? boot with intel_iommu=on (Intel) or " +
  "amd_iommu=on (AMD), and check `dmesg | grep -i -e DMAR -e IOMMU`";

/** The shell lines that bind `bdf` to vfio-pci by hand. */
export function manualBindCommands(bdf: string): string {
  const dir = `${PCI_DEVICES_DIR}/${bdf}`;
  return `echo ${VFIO_PCI} > ${dir}/driver_override; echo ${bdf} > ${dir}/driver/unbind; ` +
    `echo ${bdf} > ${DRIVERS_PROBE}`;
}

function bindHint(bdf: string): string {
  return `run \`deno run -A examples/bind.ts ${bdf}\`, or as root: ${manualBindCommands(bdf)}`;
}

/**
 * Why VFIO cannot use the device as described, as a {@link VfioError} naming what to do, or
 * undefined when nothing stands in the way. Checked in order: no /dev/vfio, no IOMMU group, not
 * bound to vfio-pci, other members of the group held by drivers that own its DMA.
 */
export function explainUnusable(
  desc: PciDeviceDescription,
  operation = "openPciDevice",
): VfioError | undefined {
  const { bdf } = desc;
  const fail = (message: string, hint: string): VfioError =>
    new VfioError({ operation, device: bdf, message, hint });
  if (!desc.hasDevVfio) {
    return fail(
      "/dev/vfio does not exist (VFIO is not loaded)",
      NO_VFIO_HINT,
    );
  }
  if (desc.group === undefined) {
    return fail(
      "the device has no IOMMU group",
      "enable the IOMMU (intel_iommu=on / amd_iommu=on, iommu=pt) in the kernel command line and " +
        "firmware (VT-d / AMD-Vi); in a VM give the guest a virtual IOMMU (QEMU -device " +
        "intel-iommu or virtio-iommu)",
    );
  }
  if (desc.driver !== VFIO_PCI) {
    const held = desc.driver === undefined
      ? `${bdf} is not bound to any driver, not ${VFIO_PCI}`
      : `${bdf} is bound to ${desc.driver}, not ${VFIO_PCI}`;
    return fail(held, bindHint(bdf));
  }
  const blockers = desc.groupMembers.filter((m) => !leavesGroupViable(m.driver));
  if (blockers.length > 0) {
    const list = blockers.map((m) => `${m.name} (bound to ${m.driver})`).join(", ");
    return fail(
      `IOMMU group ${desc.group} is not viable: ${list} ` +
        `${blockers.length === 1 ? "shares" : "share"} it`,
      `every device of the group must be unbound or bound to ${VFIO_PCI}: bind ` +
        `${blockers.map((m) => m.name).join(" and ")} too (examples/bind.ts), or put the ` +
        "device in a slot with its own group",
    );
  }
  return undefined;
}

function writeOrThrow(kernel: Kernel, bdf: string, path: string, text: string): void {
  const r = kernel.writeFile(path, text);
  if (r >= 0) return;
  const denied = r === -ERRNO.EACCES || r === -ERRNO.EPERM;
  throw new VfioError({
    operation: `write ${path}`,
    errno: -r,
    device: bdf,
    message: `writing "${text}" failed (${errnoDescription(-r)})`,
    hint: denied
      ? `sysfs writes need root: run as root (sudo deno run -A examples/bind.ts ${bdf})`
      : `see dmesg; by hand: ${manualBindCommands(bdf)}`,
  });
}

/**
 * Bind PCI function `bdf` to vfio-pci: write "vfio-pci" to its driver_override, unbind it from
 * its current driver, ask the driver core to probe it again (/sys/bus/pci/drivers_probe), and
 * check that vfio-pci holds it. A device already bound to vfio-pci is left alone. driver_override
 * stays set, so the host driver does not take the device back on the next probe.
 *
 * Returns the device's description after binding; throws a {@link VfioError} with a hint
 * (load vfio-pci, run as root, …) on failure.
 */
export function bindToVfioPci(kernel: Kernel, bdf: string): PciDeviceDescription {
  const before = describePciDevice(kernel, bdf);
  const address = before.bdf;
  if (before.driver === VFIO_PCI) return before;
  const drivers = kernel.readdir(PCI_DRIVERS_DIR);
  if (typeof drivers === "number" || !drivers.includes(VFIO_PCI)) {
    throw new VfioError({
      operation: "bindToVfioPci",
      device: address,
      message: `the ${VFIO_PCI} driver is not loaded (${PCI_DRIVERS_DIR}/${VFIO_PCI} is missing)`,
      hint: "load it as root: modprobe vfio-pci",
    });
  }
  const dir = `${PCI_DEVICES_DIR}/${address}`;
  writeOrThrow(kernel, address, `${dir}/driver_override`, VFIO_PCI);
  if (before.driver !== undefined) writeOrThrow(kernel, address, `${dir}/driver/unbind`, address);
  writeOrThrow(kernel, address, DRIVERS_PROBE, address);
  const after = describePciDevice(kernel, address);
  if (after.driver === VFIO_PCI) return after;
  throw new VfioError({
    operation: "bindToVfioPci",
    device: address,
    message: after.driver === undefined
      ? `${VFIO_PCI} did not take the device after ${DRIVERS_PROBE}`
      : `the device is bound to ${after.driver} after ${DRIVERS_PROBE}, not ${VFIO_PCI}`,
    hint: after.group === undefined
      ? "the device has no IOMMU group and vfio-pci refuses it: enable the IOMMU " +
        "(intel_iommu=on / amd_iommu=on)"
      : `see dmesg for ${VFIO_PCI}'s reason; driver_override is ` +
        `"${after.driverOverride ?? "(null)"}"`,
  });
}
