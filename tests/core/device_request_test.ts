/**
 * DeviceRequest: the VFIO request eventfd fires when the kernel wants the device back (here: an
 * unbind from vfio-pci while the device is open), and closing unregisters and closes it.
 */
import assert from "node:assert/strict";
import { DeviceRequest } from "../../core/device_request.ts";
import { openPciDevice } from "../../core/pci_device.ts";
import { ERRNO } from "../../ffi/errno.ts";
import { createMachine } from "../../sim/machine.ts";

const BDF = "0000:00:02.0";

Deno.test("DeviceRequest: an unbind while open is relayed through the request eventfd", async () => {
  const machine = createMachine({ iommu: "vtd", strict: true });
  const fds = machine.kernel.process.openFds().length;
  const dev = openPciDevice(BDF, { kernel: machine.kernel, iommu: "iommufd" });
  const request = DeviceRequest.watch(dev.device);
  assert.equal(request.pending(), false);
  assert.equal(await request.wait(5), false, "nothing asked yet");
  const unbind = machine.kernel.writeFile("/sys/bus/pci/drivers/vfio-pci/unbind", BDF);
  assert.equal(unbind, -ERRNO.EBUSY, "the simulator answers EBUSY where Linux blocks");
  assert.equal(await request.wait(5), true);
  assert.equal(request.requests, 1);
  request.close();
  request.close(); // a second close does nothing
  dev.close();
  assert.equal(machine.kernel.process.openFds().length, fds, "eventfd and device closed");
});
