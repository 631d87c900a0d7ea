/**
 * The testing entry point itself: the platform table matches the simulator's platforms, and the
 * leak check names each kind of leak a driver can make (an fd, a DMA buffer, a mapped BAR, a
 * locked page, a packet-pool buffer) and is clean once everything is released.
 */
import assert from "node:assert/strict";
import { openPciDevice } from "../../core/pci_device.ts";
import { PacketPool } from "../../drivers/packet_pool.ts";
import { createMachine } from "../../sim/machine.ts";
import { LeakCheck, SIM_PLATFORMS, simTest, simTestSteps } from "../../testing/mod.ts";

Deno.test("the platform table: every IOMMU model with the VFIO paths Linux has there", () => {
  assert.deepEqual(
    SIM_PLATFORMS.map((p) => `${p.iommu}:${p.paths.join("+")}`),
    ["vtd:type1+iommufd", "virtio-iommu:type1+iommufd", "smmuv3:type1+iommufd", "spapr:spapr"],
  );
  assert.equal(simTestSteps().length, 7);
  assert.deepEqual(
    simTestSteps({ iommus: ["smmuv3", "spapr"], paths: ["iommufd", "spapr"] }).map((s) =>
      `${s.platform.iommu}/${s.path}`
    ),
    ["smmuv3/iommufd", "spapr/spapr"],
  );
});

Deno.test("LeakCheck names an open device, its mappings, a BAR mapping and pool buffers", () => {
  const machine = createMachine({ iommu: "vtd", strict: true });
  const leaks = new LeakCheck(machine);
  const dev = openPciDevice("0000:00:02.0", { kernel: machine.kernel, iommu: "type1" });
  dev.bar(0);
  const pool = new PacketPool(dev.dma, 8);
  leaks.keepPool(pool);
  const taken = pool.alloc()!;
  const changes = leaks.changes().join("\n");
  for (
    const what of [
      "open file descriptors",
      "memory mappings",
      "mapped device regions",
      "locked pages",
      "IOMMU domains",
      "packet pool free buffers: 8 before, 7 after",
    ]
  ) {
    assert.ok(changes.includes(what), `${what} in:\n${changes}`);
  }
  assert.throws(() => leaks.assertClean(), /not back to their baseline at the end of the test/);
  pool.free(taken);
  pool.close();
  dev.close();
  assert.deepEqual(leaks.changes(), []);
  leaks.assertClean();
});

simTest("simTest gives each step a fresh machine on its own path", (ctx) => {
  const dev = ctx.openDevice("0000:00:02.0");
  assert.equal(dev.info.backend, ctx.path);
  assert.equal(ctx.machine.iommu.facts.kind, ctx.iommu);
  assert.equal(ctx.machine.faults().length, 0);
  dev.close();
});
