/**
 * The virtio-net driver and the net/ stack over real VFIO on QEMU's virtio-net (behind the
 * machine's IOMMU; QEMU needs iommu_platform=on): feature negotiation, the MAC, and a real ARP
 * exchange with QEMU's user-network gateway 10.0.2.2.
 */
import assert from "node:assert/strict";
import { openPciDevice } from "../../core/pci_device.ts";
import { VirtioNet } from "../../drivers/virtio/net.ts";
import { NetStack } from "../../net/stack.ts";
import { parseIpv4 } from "../../net/ipv4.ts";
import { hostTest, vfioDevices, vfioPaths } from "./host_env.ts";

const VIRTIO_MODERN_NET = [0x1af4, 0x1041] as const;
const GATEWAY = parseIpv4("10.0.2.2");

hostTest("virtio-net over real VFIO: negotiation, MAC, ARP with QEMU's gateway", async (kernel) => {
  const [bdf] = vfioDevices(kernel, ...VIRTIO_MODERN_NET);
  assert.ok(bdf, "a modern virtio-net bound to vfio-pci");
  for (const path of vfioPaths(kernel, bdf)) {
    using dev = openPciDevice(bdf, { kernel, iommu: path });
    const nic = await VirtioNet.open(dev, { queueSize: 64 });
    try {
      assert.equal(nic.features & (3n << 32n), 3n << 32n, "VERSION_1 + ACCESS_PLATFORM");
      assert.equal(nic.mac[0], 0x52, "QEMU's MAC prefix 52:54:00");
      assert.equal(nic.linkUp(), true);
      const stack = new NetStack(nic, { address: "10.0.2.15/24", now: () => kernel.now() });
      stack.sendUdp(9, GATEWAY, 9, new TextEncoder().encode("hello gateway"));
      // Done when the gateway answered ARP and the UDP datagram queued behind it has gone out:
      // the driver counts a frame once the device has used it, which can be a poll later.
      const done = () =>
        stack.arp.lookup(GATEWAY, kernel.now()) !== undefined && nic.stats().txPackets >= 2;
      const deadline = kernel.now() + 3000;
      while (!done() && kernel.now() < deadline) {
        if (stack.poll() === 0) await kernel.sleep(1);
      }
      const mac = stack.arp.lookup(GATEWAY, kernel.now());
      assert.ok(mac, `${path}: the gateway answered ARP`);
      console.log(
        `virtio-net ${bdf} ${path}: gateway 10.0.2.2 is at ${
          [...mac!].map((b) => b.toString(16).padStart(2, "0")).join(":")
        }`,
      );
      const s = nic.stats();
      assert.ok(
        s.rxPackets >= 1 && s.txPackets >= 2,
        `${path}: rx ${s.rxPackets} tx ${s.txPackets}`,
      );
    } finally {
      nic.close();
    }
  }
});
