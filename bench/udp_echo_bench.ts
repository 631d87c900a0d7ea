/**
 * Echo throughput of the UDP NIC demo on the simulator, and the per-packet cost split into its
 * parts. Each bench moves a batch of 32 datagrams; divide the time per iteration by 32 for the
 * per-packet cost.
 *
 *   deno bench bench/udp_echo_bench.ts
 *
 * - "echo": the whole path — simulated peer → wire → virtio-net model (rings and buffers through
 *   VT-d) → driver → stack → socket → stack → driver → model → wire → peer.
 * - "driver + device model": the same frames through the virtio-net driver and the device model,
 *   echoed at layer 2 without the stack (rx batch straight back to tx).
 * The driver-plus-model share is (driver + device model) − peer/wire overhead; the stack's share is
 * measured alone by bench/stack_bench.ts; "echo" − both is what remains (wire and peer).
 *
 * @module
 */

import { openPciDevice } from "../core/pci_device.ts";
import { VirtioNet } from "../drivers/virtio/net.ts";
import type { PacketBuffer } from "../drivers/packet_pool.ts";
import { NetStack } from "../net/stack.ts";
import { parseIpv4 } from "../net/ipv4.ts";
import { parseMac } from "../net/ethernet.ts";
import { createMachine } from "../sim/machine.ts";
import { SimPeer } from "../sim/net/peer.ts";

const BATCH = 32;
const NIC_IP = parseIpv4("10.0.2.15");
const PEER_IP = parseIpv4("10.0.2.2");
const PAYLOAD = new TextEncoder().encode("deno_vfio echo bench payload ".repeat(2));

async function simulatedNic() {
  const machine = createMachine({
    iommu: "vtd",
    devices: [{ model: "virtio-net", bdf: "0000:00:03.0" }],
  });
  const dev = openPciDevice("0000:00:03.0", { kernel: machine.kernel, iommu: "iommufd" });
  const nic = await VirtioNet.open(dev, { queueSize: 256 });
  const peer = new SimPeer(machine.segment, {
    name: "peer",
    mac: parseMac("52:55:0a:00:02:02"),
    ip: PEER_IP,
  });
  return { machine, nic, peer };
}

// Whole echo path.
{
  const { machine, nic, peer } = await simulatedNic();
  const stack = new NetStack(nic, { address: "10.0.2.15/24", now: () => machine.kernel.now() });
  const echo = stack.udpBind(7, (d, off, len, ip, port) => echo.sendTo(ip, port, d, off, len));
  let echoed = 0;
  peer.onUdp(5000, () => void echoed++);
  const round = async (): Promise<void> => {
    const target = echoed + BATCH;
    for (let i = 0; i < BATCH; i++) peer.sendUdp(NIC_IP, 7, 5000, PAYLOAD);
    while (echoed < target) {
      if (stack.poll() === 0) await machine.kernel.sleep(0.001);
    }
  };
  await round(); // ARP warm-up
  Deno.bench({
    name: "echo: 32 datagrams through driver + stack + virtio-net model + VT-d",
    group: "echo",
    baseline: true,
    fn: round,
  });
}

// Driver + device model, echoing at layer 2.
{
  const { machine, nic, peer } = await simulatedNic();
  const rx: PacketBuffer[] = new Array(BATCH);
  const frame = new Uint8Array(64 + PAYLOAD.length);
  frame.set(nic.mac, 0);
  frame.set(parseMac("52:55:0a:00:02:02"), 6);
  frame[12] = 0x88;
  frame[13] = 0xb5; // local experimental EtherType: the peer ignores it
  let got = 0;
  void peer;
  const injector = machine.segment.attach({ name: "injector", receive() {} });
  Deno.bench({
    name: "driver + device model: 32 frames rx → tx at layer 2 (no stack)",
    group: "echo",
    async fn() {
      for (let i = 0; i < BATCH; i++) injector.send(frame);
      got = 0;
      while (got < BATCH) {
        const n = nic.rxBatch(rx, BATCH);
        if (n === 0) {
          await machine.kernel.sleep(0.001);
          continue;
        }
        got += n;
        const sent = nic.txBatch(rx, n);
        for (let i = sent; i < n; i++) nic.pool.free(rx[i]);
      }
    },
  });
}
