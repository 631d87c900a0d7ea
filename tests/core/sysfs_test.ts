/**
 * core/sysfs.ts on a scripted sysfs (RecordingKernel: files, links, dirs) — bound, unbound and
 * host-driver devices, groups with other members, reserved_regions parsing, cdev present or not,
 * the unusable-device explanations, and the bind helper's exact write sequence — and once on
 * the simulator, whose sysfs must read the same way.
 */

import assert from "node:assert/strict";
import { ERRNO } from "../../ffi/errno.ts";
import type { Kernel } from "../../ffi/kernel.ts";
import { VfioError } from "../../core/errors.ts";
import {
  bindToVfioPci,
  describePciDevice,
  explainUnusable,
  leavesGroupViable,
  listPciDevices,
  normalizeBdf,
  parseReservedRegions,
} from "../../core/sysfs.ts";
import { createMachine } from "../../sim/mod.ts";
import { RecordingKernel } from "../helpers/recording_kernel.ts";

const NIC = "0000:03:00.0";
const NIC_FN1 = "0000:03:00.1";
const BRIDGE = "0000:00:1c.0";
const EDU = "0000:00:02.0";
const DEV = "/sys/bus/pci/devices";
const GROUPS = "/sys/kernel/iommu_groups";

/** A RecordingKernel whose sysfs writes can fail or have effects (drivers_probe binding). */
class SysfsKernel extends RecordingKernel {
  /** Results to return for writes to a path (default: the length written). */
  readonly writeResults: Map<string, number> = new Map();
  /** Called after each successful write, to model its effect. */
  onWrite: (path: string, text: string) => void = () => {};
  override writeFile(path: string, text: string): number {
    const forced = this.writeResults.get(path);
    if (forced !== undefined) {
      this.written.push({ path, text });
      this.calls.push({ op: "writeFile", fd: -1, path, result: forced });
      return forced;
    }
    const r = super.writeFile(path, text);
    this.onWrite(path, text);
    return r;
  }
}

interface FakeDevice {
  bdf: string;
  vendor?: number;
  device?: number;
  driver?: string;
  group?: number;
  cdev?: string;
}

function hex(n: number, digits: number): string {
  return `0x${n.toString(16).padStart(digits, "0")}\n`;
}

/** A machine with /dev/vfio and /dev/iommu, and vfio-pci, ixgbe and pcieport registered. */
function fakeSysfs(devices: FakeDevice[], options: { devVfio?: boolean } = {}): SysfsKernel {
  const k = new SysfsKernel();
  const groups = new Map<number, string[]>();
  k.dirs.set(DEV, devices.map((d) => d.bdf));
  k.dirs.set("/sys/bus/pci/drivers", ["ixgbe", "pcieport", "vfio-pci"]);
  k.dirs.set("/dev", options.devVfio === false ? ["null"] : ["iommu", "null", "vfio"]);
  for (const d of devices) {
    const dir = `${DEV}/${d.bdf}`;
    k.files.set(`${dir}/vendor`, hex(d.vendor ?? 0x8086, 4));
    k.files.set(`${dir}/device`, hex(d.device ?? 0x10fb, 4));
    k.files.set(`${dir}/class`, hex(0x020000, 6));
    k.files.set(`${dir}/driver_override`, "(null)\n");
    if (d.driver) k.links.set(`${dir}/driver`, `../../../bus/pci/drivers/${d.driver}`);
    if (d.group !== undefined) {
      k.links.set(`${dir}/iommu_group`, `../../../../kernel/iommu_groups/${d.group}`);
      k.links.set(`${dir}/iommu`, "../../../virtual/iommu/dmar0");
      groups.set(d.group, [...(groups.get(d.group) ?? []), d.bdf]);
    }
    if (d.cdev) k.dirs.set(`${dir}/vfio-dev`, [d.cdev]);
  }
  for (const [group, members] of groups) {
    k.dirs.set(`${GROUPS}/${group}/devices`, members);
    k.files.set(`${GROUPS}/${group}/type`, "DMA-FQ\n");
    for (const bdf of members) {
      const link = k.links.get(`${DEV}/${bdf}/driver`);
      if (link) k.links.set(`${GROUPS}/${group}/devices/${bdf}/driver`, link);
    }
  }
  if (options.devVfio !== false) {
    k.dirs.set("/dev/vfio", [...[...groups.keys()].map(String), "devices", "vfio"]);
  }
  return k;
}

function unusable(k: Kernel, bdf: string): VfioError {
  const problem = explainUnusable(describePciDevice(k, bdf));
  assert.ok(problem instanceof VfioError, "expected the device to be unusable");
  return problem;
}

Deno.test("sysfs: PCI addresses are normalized; anything else is a VfioError with a hint", () => {
  assert.equal(normalizeBdf("00:02.0"), "0000:00:02.0");
  assert.equal(normalizeBdf(" 0000:0A:1F.7\n"), "0000:0a:1f.7");
  assert.equal(normalizeBdf("10000:e1:00.0"), "10000:e1:00.0"); // VMD domains are wider
  for (const bad of ["", "02.0", "00:20.0", "0000:00:02.8", "0000:00:02", "eth0", "00:02.0.1"]) {
    assert.throws(
      () => normalizeBdf(bad),
      (e: unknown) => e instanceof VfioError && /0000:03:00\.0/.test(e.hint ?? ""),
      bad,
    );
  }
  assert.throws(() => describePciDevice(new RecordingKernel(), "3:0.0"), VfioError);
});

Deno.test("sysfs: reserved_regions lines parse; malformed ones are skipped, not thrown", () => {
  const text = [
    "0x00000000fee00000 0x00000000feefffff msi",
    "0x0000000000000000 0x0000000000000fff direct-relaxable",
    "0x0000000008000000 0x00000000080fffff reserved  ",
    "garbage",
    "0x0000000000002000 0x0000000000001000 direct", // end below start
    "0x00000000fee00000 0x00000000feefffff", // no type
    "0xzz 0x10 msi",
    "0x1 0x2 msi extra",
    "0x00000000000000000 0x1 msi", // 17 digits
    "",
  ].join("\n");
  assert.deepEqual(parseReservedRegions(text), [
    { start: 0xfee00000n, end: 0xfeefffffn, type: "msi" },
    { start: 0n, end: 0xfffn, type: "direct-relaxable" },
    { start: 0x8000000n, end: 0x80fffffn, type: "reserved" },
  ]);
  assert.deepEqual(parseReservedRegions(""), []);
});

Deno.test("sysfs: a device bound to vfio-pci, with cdev, group members and reserved regions", () => {
  const k = fakeSysfs([
    { bdf: NIC, driver: "vfio-pci", group: 7, cdev: "vfio3" },
    { bdf: NIC_FN1, driver: "vfio-pci", group: 7 },
    { bdf: BRIDGE, driver: "pcieport", group: 7, vendor: 0x8086, device: 0xa110 },
  ]);
  k.files.set(
    `${GROUPS}/7/reserved_regions`,
    "0x00000000fee00000 0x00000000feefffff msi\nnot a region\n",
  );
  k.files.set(`${DEV}/${NIC}/driver_override`, "vfio-pci\n");
  const d = describePciDevice(k, "03:00.0");
  assert.deepEqual(d, {
    hasDevVfio: true,
    hasVfioContainer: true,
    hasIommufd: true,
    devVfio: ["7", "devices", "vfio"],
    bdf: NIC,
    vendor: 0x8086,
    device: 0x10fb,
    classCode: 0x020000,
    driver: "vfio-pci",
    driverOverride: "vfio-pci",
    group: 7,
    groupType: "DMA-FQ",
    groupNode: "/dev/vfio/7",
    groupMembers: [
      { name: BRIDGE, driver: "pcieport" },
      { name: NIC_FN1, driver: "vfio-pci" },
    ],
    reservedRegions: [{ start: 0xfee00000n, end: 0xfeefffffn, type: "msi" }],
    cdev: "/dev/vfio/devices/vfio3",
    iommu: "dmar0",
  });
  assert.equal(explainUnusable(d), undefined);
  // sysfs is only read: nothing opened, nothing written.
  assert.deepEqual(k.written, []);
  assert.equal(k.callsOf("open").length, 0);
});

Deno.test("sysfs: cdev absent, group without reserved_regions, override unset", () => {
  const k = fakeSysfs([{ bdf: NIC, driver: "vfio-pci", group: 7 }]);
  k.dirs.set(`${DEV}/${NIC}/vfio-dev`, ["power"]); // no vfioN entry
  const d = describePciDevice(k, NIC);
  assert.equal(d.cdev, undefined);
  assert.equal(d.driverOverride, undefined);
  assert.deepEqual(d.reservedRegions, []);
  assert.deepEqual(d.groupMembers, []);
  assert.equal(explainUnusable(d), undefined);
});

Deno.test("sysfs: an unbound device and one bound to a host driver say how to bind them", () => {
  const k = fakeSysfs([
    { bdf: NIC, driver: "ixgbe", group: 7 },
    { bdf: NIC_FN1, group: 8 },
  ]);
  assert.equal(describePciDevice(k, NIC).driver, "ixgbe");
  const ixgbe = unusable(k, NIC);
  assert.match(
    ixgbe.message,
    /^0000:03:00\.0: openPciDevice failed: 0000:03:00\.0 is bound to ixgbe, not vfio-pci\. run /,
  );
  assert.match(ixgbe.hint!, /deno run -A examples\/bind\.ts 0000:03:00\.0/);
  assert.match(
    ixgbe.hint!,
    /echo vfio-pci > \/sys\/bus\/pci\/devices\/0000:03:00\.0\/driver_override/,
  );
  assert.match(ixgbe.hint!, /echo 0000:03:00\.0 > \/sys\/bus\/pci\/drivers_probe/);
  const unbound = unusable(k, NIC_FN1);
  assert.equal(describePciDevice(k, NIC_FN1).driver, undefined);
  assert.match(unbound.message, /0000:03:00\.1 is not bound to any driver, not vfio-pci/);
  assert.match(unbound.hint!, /examples\/bind\.ts 0000:03:00\.1/);
});

Deno.test("sysfs: no IOMMU group, and no /dev/vfio, each explained", () => {
  const k = fakeSysfs([{ bdf: NIC, driver: "vfio-pci" }]);
  const d = describePciDevice(k, NIC);
  assert.equal(d.group, undefined);
  assert.equal(d.groupNode, undefined);
  assert.equal(d.iommu, undefined);
  assert.deepEqual([d.groupMembers, d.reservedRegions], [[], []]);
  assert.match(unusable(k, NIC).message, /no IOMMU group\. enable the IOMMU \(intel_iommu=on/);

  const bare = fakeSysfs([{ bdf: NIC, driver: "ixgbe" }], { devVfio: false });
  const nodes = describePciDevice(bare, NIC);
  assert.deepEqual(
    [nodes.hasDevVfio, nodes.hasVfioContainer, nodes.hasIommufd, nodes.devVfio],
    [false, false, false, []],
  );
  const e = unusable(bare, NIC);
  assert.match(e.hint!, /modprobe vfio-pci; is the IOMMU on\? .*intel_iommu=on/);
});

Deno.test("sysfs: a group is not viable while another member is held by a host driver", () => {
  const k = fakeSysfs([
    { bdf: NIC, driver: "vfio-pci", group: 7 },
    { bdf: NIC_FN1, driver: "ixgbe", group: 7 },
    { bdf: BRIDGE, driver: "pcieport", group: 7 },
    { bdf: "0000:03:00.2", group: 7 },
    { bdf: "0000:03:00.3", driver: "mlx5_vfio_pci", group: 7 },
  ]);
  const e = unusable(k, NIC);
  assert.match(
    e.message,
    /IOMMU group 7 is not viable: 0000:03:00\.1 \(bound to ixgbe\) shares it/,
  );
  assert.match(e.hint!, /bind 0000:03:00\.1 too/);
  assert.ok(!/0000:00:1c\.0|0000:03:00\.[23]/.test(e.message), "viable members are not blamed");
  assert.deepEqual(
    ["vfio-pci", "pci-stub", "pcieport", undefined, "ixgbe", "nvme"].map(leavesGroupViable),
    [true, true, true, true, false, false],
  );
});

Deno.test("sysfs: a non-PCI group member's driver is read through the group's link", () => {
  const k = fakeSysfs([{ bdf: NIC, driver: "vfio-pci", group: 7 }]);
  const platform = "ff100000.dma-controller";
  k.dirs.set(`${GROUPS}/7/devices`, [NIC, platform]);
  k.links.set(`${GROUPS}/7/devices/${platform}/driver`, "../../../bus/platform/drivers/pl330");
  assert.deepEqual(describePciDevice(k, NIC).groupMembers, [{ name: platform, driver: "pl330" }]);
  assert.match(unusable(k, NIC).message, /ff100000\.dma-controller \(bound to pl330\)/);
});

Deno.test("sysfs: listPciDevices and a missing device", () => {
  const k = fakeSysfs([{ bdf: NIC_FN1 }, { bdf: NIC }]);
  assert.deepEqual(listPciDevices(k), [NIC, NIC_FN1]);
  assert.deepEqual(listPciDevices(new RecordingKernel()), []);
  assert.throws(
    () => describePciDevice(k, "0000:09:00.0"),
    (e: unknown) =>
      e instanceof VfioError && e.errno === ERRNO.ENOENT && /no such PCI device/.test(e.message) &&
      /inventory/.test(e.hint ?? ""),
  );
});

/** A sysfs where drivers_probe binds the device to whatever driver_override says. */
function bindable(driver: string | undefined): SysfsKernel {
  const k = fakeSysfs([{ bdf: NIC, driver, group: 7 }]);
  let override: string | undefined;
  k.onWrite = (path, text) => {
    if (path === `${DEV}/${NIC}/driver_override`) override = text;
    if (path === `${DEV}/${NIC}/driver/unbind`) k.links.delete(`${DEV}/${NIC}/driver`);
    if (path === "/sys/bus/pci/drivers_probe" && override !== undefined) {
      k.links.set(`${DEV}/${NIC}/driver`, `../../../bus/pci/drivers/${override}`);
    }
  };
  return k;
}

Deno.test("bind: override, unbind, probe — exactly these writes, then vfio-pci is checked", () => {
  const k = bindable("ixgbe");
  const after = bindToVfioPci(k, "03:00.0");
  assert.deepEqual(k.written, [
    { path: `${DEV}/${NIC}/driver_override`, text: "vfio-pci" },
    { path: `${DEV}/${NIC}/driver/unbind`, text: NIC },
    { path: "/sys/bus/pci/drivers_probe", text: NIC },
  ]);
  assert.equal(after.driver, "vfio-pci");
  // An unbound device skips the unbind; a bound one is left alone.
  const free = bindable(undefined);
  bindToVfioPci(free, NIC);
  assert.deepEqual(free.written.map((w) => w.path), [
    `${DEV}/${NIC}/driver_override`,
    "/sys/bus/pci/drivers_probe",
  ]);
  const done = fakeSysfs([{ bdf: NIC, driver: "vfio-pci", group: 7 }]);
  assert.equal(bindToVfioPci(done, NIC).driver, "vfio-pci");
  assert.deepEqual(done.written, []);
});

Deno.test("bind: failures are VfioErrors with the action to take", () => {
  const noDriver = bindable("ixgbe");
  noDriver.dirs.set("/sys/bus/pci/drivers", ["ixgbe"]);
  assert.throws(
    () => bindToVfioPci(noDriver, NIC),
    (e: unknown) => e instanceof VfioError && /modprobe vfio-pci/.test(e.hint ?? ""),
  );
  assert.deepEqual(noDriver.written, []);

  const denied = bindable("ixgbe");
  denied.writeResults.set(`${DEV}/${NIC}/driver_override`, -ERRNO.EACCES);
  assert.throws(
    () => bindToVfioPci(denied, NIC),
    (e: unknown) =>
      e instanceof VfioError && e.errnoName === "EACCES" && /run as root/.test(e.hint ?? ""),
  );
  assert.equal(denied.written.length, 1, "nothing is written after the first failure");

  const refused = bindable("ixgbe");
  refused.onWrite = (path) => {
    if (path.endsWith("/unbind")) refused.links.delete(`${DEV}/${NIC}/driver`);
  };
  assert.throws(
    () => bindToVfioPci(refused, NIC),
    (e: unknown) => e instanceof VfioError && /vfio-pci did not take the device/.test(e.message),
  );
  assert.throws(() => bindToVfioPci(refused, "0000:09:00.0"), /no such PCI device/);
});

Deno.test("sysfs on the simulator: describe, explain, bind an unbound device", () => {
  const m = createMachine({
    iommu: "vtd",
    devices: [{ model: "edu", bdf: EDU }, { model: "edu", driver: "", bdf: "0000:00:03.0" }],
  });
  const k = m.kernel;
  assert.deepEqual(listPciDevices(k), [EDU, "0000:00:03.0"]);
  const edu = describePciDevice(k, "00:02.0");
  assert.equal(edu.vendor, 0x1234);
  assert.equal(edu.device, 0x11e8);
  assert.equal(edu.driver, "vfio-pci");
  assert.equal(edu.group, 2);
  assert.equal(edu.groupNode, "/dev/vfio/2");
  assert.equal(edu.cdev, "/dev/vfio/devices/vfio0");
  assert.deepEqual([edu.hasDevVfio, edu.hasVfioContainer, edu.hasIommufd], [true, true, true]);
  assert.deepEqual(edu.reservedRegions, [{ start: 0xfee00000n, end: 0xfeefffffn, type: "msi" }]);
  assert.equal(explainUnusable(edu), undefined);
  assert.match(unusable(k, "0000:00:03.0").message, /is not bound to any driver/);
  const bound = bindToVfioPci(k, "0000:00:03.0");
  assert.equal(bound.driver, "vfio-pci");
  assert.equal(bound.driverOverride, "vfio-pci");
  assert.equal(explainUnusable(bound), undefined);
});
