/**
 * Issue 17's measurement, end to end on the simulated machine: the virtio-net driver with its
 * default pool (1,024 buffers, 256 posted for receive, so 768 free) under 1,200 echo requests
 * from 150 spoofed, unresolvable on-link sources sent over one second. Before the global ARP
 * bound the pool fell to 1 free buffer and a resolved host got 0 of 20 datagrams answered.
 */
import assert from "node:assert/strict";
import { openPciDevice } from "../../core/pci_device.ts";
import { VirtioNet } from "../../drivers/virtio/net.ts";
import { NetStack } from "../../net/stack.ts";
import { parseIpv4 } from "../../net/ipv4.ts";
import { createMachine } from "../../sim/machine.ts";
import { SimPeer } from "../../sim/net/peer.ts";
import { FrameBuilder, macOf } from "../../testing/net_frames.ts";

const BDF = "0000:00:03.0";
const NIC_IP = parseIpv4("10.0.2.15");
const PEER_IP = parseIpv4("10.0.2.2");

Deno.test({
  name:
    "virtio-net: 1,200 spoofed echo requests from 150 sources leave 20 of 20 datagrams answered",
  permissions: "none",
  async fn() {
    const machine = createMachine({
      iommu: "vtd",
      devices: [{ model: "virtio-net", bdf: BDF }],
      strict: true,
    });
    const dev = openPciDevice(BDF, { kernel: machine.kernel, iommu: "iommufd" });
    const nic = await VirtioNet.open(dev);
    try {
      const stack = new NetStack(nic, {
        address: "10.0.2.15/24",
        now: () => machine.kernel.now(),
      });
      const echo = stack.udpBind(7, (d, off, len, ip, port) => echo.sendTo(ip, port, d, off, len));
      const peer = new SimPeer(machine.segment, {
        name: "peer",
        mac: new Uint8Array([0x52, 0x55, 0x0a, 0, 2, 2]),
        ip: PEER_IP,
      });
      const attacker = machine.segment.attach({ name: "attacker", receive() {} });
      const forge = new FrameBuilder({ mac: nic.mac, ip: NIC_IP }, { mac: macOf(1), ip: 0 });
      const run = async (until: () => boolean, maxMs: number): Promise<void> => {
        const end = machine.kernel.now() + maxMs;
        while (!until() && machine.kernel.now() < end) {
          if (stack.poll() === 0) await machine.kernel.sleep(0.01);
        }
      };
      peer.ping(NIC_IP, 1, 1); // the peer resolves us, we learn it from its ARP request
      await run(() => peer.echoReplies.length === 1, 1000);
      assert.equal(peer.echoReplies.length, 1);
      nic.stats(); // reclaims sent buffers
      const free = nic.pool.available;
      assert.equal(free, 768, "1,024 buffers less the 256 posted for receive");

      let lowest = free;
      const start = machine.kernel.now();
      for (let burst = 0; burst < 40; burst++) {
        for (let k = 0; k < 30; k++) {
          const i = burst * 30 + k;
          const src = parseIpv4("10.0.2.50") + (i % 150);
          attacker.send(
            forge.echoRequest(0x666, i, new Uint8Array(32), { src, srcMac: macOf(i % 150) }),
          );
        }
        const until = start + (burst + 1) * 25;
        await run(() => machine.kernel.now() >= until, 100);
        lowest = Math.min(lowest, nic.pool.available);
      }
      assert.ok(
        lowest >= free - stack.arp.maxPendingFrames - 32,
        `the pool never fell below ${lowest} free`,
      );
      assert.equal(stack.stats.arpQueueFull + stack.arp.heldFrames + stack.stats.arpTimeout, 1200);

      let echoed = 0;
      peer.onUdp(5000, () => void echoed++);
      for (let i = 0; i < 20; i++) peer.sendUdp(NIC_IP, 7, 5000, new TextEncoder().encode(`${i}`));
      await run(() => echoed === 20, 1000);
      assert.equal(echoed, 20, "20 of 20 answered");
      assert.equal(nic.stats().rxDropped, 0);
      assert.equal(machine.faults().length, 0);
    } finally {
      nic.close();
      dev.close();
    }
  },
});
