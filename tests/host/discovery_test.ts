/**
 * Device discovery on a real kernel: the edu device's sysfs description, its IOMMU group and
 * reserved regions, and the VFIO nodes.
 */
import assert from "node:assert/strict";
import { describePciDevice, explainUnusable, leavesGroupViable } from "../../core/sysfs.ts";
import { EDU_DEVICE_ID, EDU_VENDOR_ID } from "../../drivers/edu/registers.ts";
import { hostTest, vfioDevices } from "./host_env.ts";

hostTest("discovery: the edu device, its group, reserved regions and VFIO nodes", (kernel) => {
  const [bdf] = vfioDevices(kernel, EDU_VENDOR_ID, EDU_DEVICE_ID);
  assert.ok(bdf, "an edu device bound to vfio-pci");
  const d = describePciDevice(kernel, bdf);
  assert.equal(d.driver, "vfio-pci");
  assert.ok(d.group !== undefined && d.group >= 0, "has an IOMMU group");
  assert.equal(explainUnusable(d), undefined, "usable");
  assert.ok(
    d.groupMembers.every((m) => leavesGroupViable(m.driver)),
    "every other member of the group leaves it viable",
  );
  assert.ok(d.hasVfioContainer || d.hasIommufd, "a VFIO node");
  for (const r of d.reservedRegions) assert.ok(r.end >= r.start, "regions are well formed");
  console.log(
    `discovery: ${bdf} group ${d.group} iommu ${d.iommu ?? "?"} cdev ${d.cdev ?? "-"} reserved ${
      d.reservedRegions.map((r) => `${r.type}:0x${r.start.toString(16)}-0x${r.end.toString(16)}`)
        .join(" ")
    }`,
  );
});
