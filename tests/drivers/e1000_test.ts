/**
 * The e1000-family controller code on the simulator. The simulator has no model of these
 * controllers (tests/host/e1000_test.ts runs the code on QEMU's e1000e and igb), so what is checked
 * here is what needs no NIC: a device that is not one is refused with one clear error, and its
 * VFIO device stays usable.
 */
import assert from "node:assert/strict";
import { openPciDevice } from "../../core/pci_device.ts";
import { VfioError } from "../../core/errors.ts";
import { E1000Controller } from "../../drivers/e1000/controller.ts";
import { createMachine } from "../../sim/machine.ts";

Deno.test({
  name: "e1000 controller: an edu is refused with the supported models named",
  permissions: "none",
  fn() {
    const machine = createMachine({ iommu: "vtd", strict: true });
    using dev = openPciDevice("0000:00:02.0", { kernel: machine.kernel, iommu: "iommufd" });
    assert.throws(
      () => E1000Controller.open(dev),
      (e: unknown) =>
        e instanceof VfioError &&
        /device is 1234:11e8, not a supported controller \(82574L 8086:10d3, 82576 8086:10c9\)/
          .test(e.message) &&
        /-device e1000e \/ -device igb/.test(e.message),
    );
    assert.equal(dev.config.read16(0), 0x1234, "the device is still open and answers");
  },
});
