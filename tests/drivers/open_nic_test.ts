/**
 * openNic() on the simulator: it picks the driver by PCI id, refuses anything else with one
 * error naming the device and every supported id (closing the device it opened), and refuses
 * options a driver cannot honour.
 */
import assert from "node:assert/strict";
import { openPciDevice } from "../../core/pci_device.ts";
import { VfioError } from "../../core/errors.ts";
import { openNic, SUPPORTED_NICS } from "../../drivers/open_nic.ts";
import { VirtioNet } from "../../drivers/virtio/net.ts";
import { IntelNic } from "../../drivers/e1000/nic.ts";
import { createMachine, type MachineDevice } from "../../sim/machine.ts";
import { NIC_BDF, simHasNic } from "../helpers/nic_driver_rig.ts";

const SUPPORTED_LIST =
  /not a supported NIC \(virtio-net 1af4:1041, virtio-net 1af4:1000, e1000e 8086:10d3, igb 8086:10c9\)/;

Deno.test({
  name: "openNic refuses an edu, names the supported NICs and closes the device it opened",
  permissions: "none",
  async fn() {
    const machine = createMachine({ iommu: "vtd", strict: true });
    const fds = machine.kernel.process.openFds().length;
    await assert.rejects(
      () => openNic("0000:00:02.0", { kernel: machine.kernel }),
      (e: unknown) =>
        e instanceof VfioError && /device 1234:11e8 is/.test(e.message) &&
        SUPPORTED_LIST.test(e.message) && /bound to vfio-pci/.test(e.message),
    );
    assert.equal(machine.kernel.process.openFds().length, fds, "the device was closed again");
    assert.match(machine.kernel.readFile("/proc/self/status") as string, /VmLck:\s+0 kB/);
  },
});

Deno.test({
  name: "openNic needs a kernel for a PCI address, and keeps a caller's device open on error",
  permissions: "none",
  async fn() {
    await assert.rejects(() => openNic("0000:00:03.0"), /needs a kernel/);
    const machine = createMachine({
      iommu: "vtd",
      devices: [{ model: "virtio-net", bdf: NIC_BDF }],
      strict: true,
    });
    using dev = openPciDevice(NIC_BDF, { kernel: machine.kernel, iommu: "iommufd" });
    await assert.rejects(
      () => openNic(dev, { queues: 4 }),
      /4 queue pairs asked for; the virtio-net driver uses one/,
    );
    assert.equal(dev.config.read16(0), 0x1af4, "the caller's device is still open");
    const nic = await openNic(dev);
    assert.ok(nic instanceof VirtioNet);
    assert.equal(nic.name, `virtio-net ${NIC_BDF}`);
    nic.close();
  },
});

Deno.test({
  name: "SUPPORTED_NICS lists each driver's PCI ids",
  permissions: "none",
  fn() {
    assert.deepEqual(
      SUPPORTED_NICS.map((n) => n.driver),
      ["virtio-net", "virtio-net", "e1000e", "igb"],
    );
  },
});

for (const kind of ["e1000e", "igb"] as const) {
  Deno.test({
    name: `openNic picks the ${kind} driver by PCI id and checks its queue count`,
    ignore: !simHasNic(kind),
    permissions: "none",
    async fn() {
      const machine = createMachine({
        iommu: "smmuv3",
        devices: [{ model: kind as MachineDevice["model"], bdf: NIC_BDF }],
        strict: true,
      });
      const k = machine.kernel;
      const tooMany = kind === "igb" ? 9 : 2;
      await assert.rejects(
        () => openNic(NIC_BDF, { kernel: k, queues: tooMany }),
        new RegExp(`queue`),
      );
      const fds = k.process.openFds().length;
      const nic = await openNic(NIC_BDF, { kernel: k });
      assert.ok(nic instanceof IntelNic);
      assert.equal(nic.model.name, kind);
      assert.equal(nic.name, `${kind} ${NIC_BDF}`);
      nic.close();
      assert.equal(k.process.openFds().length, fds, "closing the NIC closed the device");
    },
  });
}
