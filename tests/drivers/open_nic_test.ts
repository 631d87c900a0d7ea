/**
 * openNic() on the simulator, on every IOMMU model × VFIO path of the testing fixture: it picks
 * the driver by PCI id, refuses anything else with one error naming the device and every
 * supported id (closing the device it opened), and refuses options a driver cannot honour.
 */
import assert from "node:assert/strict";
import { VfioError } from "../../core/errors.ts";
import { openNic, SUPPORTED_NICS } from "../../drivers/open_nic.ts";
import { VirtioNet } from "../../drivers/virtio/net.ts";
import { IntelNic } from "../../drivers/e1000/nic.ts";
import { simTest } from "../../testing/mod.ts";
import { NIC_BDF, nicSimTest } from "../helpers/nic_driver_rig.ts";

const SUPPORTED_LIST =
  /not a supported NIC \(virtio-net 1af4:1041, virtio-net 1af4:1000, e1000e 8086:10d3, igb 8086:10c9\)/;

simTest(
  "openNic refuses an edu, names the supported NICs and closes the device it opened",
  async (ctx) => {
    const fds = ctx.kernel.process.openFds().length;
    await assert.rejects(
      () => openNic("0000:00:02.0", { kernel: ctx.kernel, iommu: ctx.path }),
      (e: unknown) =>
        e instanceof VfioError && /device 1234:11e8 is/.test(e.message) &&
        SUPPORTED_LIST.test(e.message) && /bound to vfio-pci/.test(e.message),
    );
    assert.equal(ctx.kernel.process.openFds().length, fds, "the device was closed again");
    assert.match(ctx.kernel.readFile("/proc/self/status") as string, /VmLck:\s+0 kB/);
  },
);

Deno.test("openNic needs a kernel for a PCI address", async () => {
  await assert.rejects(() => openNic("0000:00:03.0"), /needs a kernel/);
});

nicSimTest(
  "virtio-net",
  "openNic keeps a caller's device open on error",
  async (ctx) => {
    using dev = ctx.openDevice(NIC_BDF);
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
);

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
  nicSimTest(kind, "openNic picks the driver by PCI id and checks its queue count", async (ctx) => {
    const k = ctx.kernel;
    const tooMany = kind === "igb" ? 9 : 2;
    await assert.rejects(
      () => openNic(NIC_BDF, { kernel: k, iommu: ctx.path, queues: tooMany }),
      new RegExp(`queue`),
    );
    await assert.rejects(
      () => openNic(NIC_BDF, { kernel: k, iommu: ctx.path, txTimeoutMs: 0 }),
      /txTimeoutMs 0: a positive number of milliseconds/,
    );
    const fds = k.process.openFds().length;
    const nic = await openNic(NIC_BDF, { kernel: k, iommu: ctx.path });
    assert.ok(nic instanceof IntelNic);
    assert.equal(nic.model.name, kind);
    assert.equal(nic.name, `${kind} ${NIC_BDF}`);
    nic.close();
    assert.equal(k.process.openFds().length, fds, "closing the NIC closed the device");
  });
}
