/**
 * The e1000-family controller code over real VFIO on QEMU's e1000e (82574L) and igb (82576),
 * through every VFIO path: identify, software reset, the NVM read through EERD with a valid
 * checksum, the station address the reset loads into RAL0/RAH0 equal to the NVM's, and a software
 * interrupt taken on MSI (e1000e) or MSI-X (igb); no fd or locked memory left behind. There is no
 * simulated model of these controllers: the real devices are the only referee of registers.ts.
 */
import assert from "node:assert/strict";
import { openPciDevice } from "../../core/pci_device.ts";
import { E1000Controller } from "../../drivers/e1000/controller.ts";
import { formatMac } from "../../net/ethernet.ts";
import { INTEL_VENDOR_ID } from "../../drivers/e1000/registers.ts";
import { E1000_MODELS } from "../../drivers/e1000/models.ts";
import { hostTest, lockedKb, openFds, vfioDevices, vfioPaths } from "./host_env.ts";

/** QEMU's locally administered MAC prefix 52:54:00. */
const QEMU_MAC_PREFIX = [0x52, 0x54, 0x00];

hostTest("e1000e and igb over real VFIO: reset, NVM, MAC, MSI/MSI-X, no leaks", async (kernel) => {
  let tested = 0;
  for (const model of E1000_MODELS) {
    for (const bdf of vfioDevices(kernel, INTEL_VENDOR_ID, model.deviceId)) {
      for (const path of vfioPaths(kernel, bdf)) {
        const fds = openFds(kernel);
        const locked = lockedKb(kernel);
        {
          using dev = openPciDevice(bdf, { kernel, iommu: path });
          const nic = E1000Controller.open(dev);
          try {
            assert.equal(nic.model.name, model.name);
            await nic.reset();
            assert.ok(await nic.nvmChecksumValid(), `${model.name} ${path}: NVM checksum 0xbaba`);
            const nvmMac = await nic.nvmMacAddress();
            const mac = nic.macAddress();
            assert.ok(mac, `${model.name} ${path}: RAH0.AV set after reset`);
            assert.deepEqual(mac, nvmMac, `${model.name} ${path}: RAL0/RAH0 = NVM address`);
            assert.deepEqual([...mac.subarray(0, 3)], QEMU_MAC_PREFIX, "QEMU's MAC prefix");
            const cause = nic.model.interrupts.cause;
            const causes = await nic.interruptSelfTest();
            assert.equal(causes & cause, cause, `${model.name} ${path}: the raised cause`);
            // A second round: the vector was re-armed and the cause cleared.
            assert.equal((await nic.interruptSelfTest()) & cause, cause, "second interrupt");
            console.log(
              `${model.name} ${model.chip} ${bdf} ${path}: mac ${formatMac(mac)}, link ${
                nic.linkUp() ? "up" : "down"
              }, interrupt causes 0x${causes.toString(16)}`,
            );
          } finally {
            nic.close();
          }
        }
        assert.equal(openFds(kernel), fds, `${model.name} ${path}: every fd closed`);
        assert.equal(lockedKb(kernel), locked, `${model.name} ${path}: locked memory unchanged`);
        tested++;
      }
    }
  }
  assert.ok(tested > 0, "an e1000e or igb bound to vfio-pci");
});
