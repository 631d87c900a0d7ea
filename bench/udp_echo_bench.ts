/**
 * Echo throughput of the UDP NIC demo on the simulator, and the per-packet cost split into its
 * parts. Each bench moves a batch of 32 frames; divide the time per iteration by 32 for the
 * per-packet cost. Before the benches run, the file times each part itself and prints the split
 * in ns per packet.
 *
 *   deno bench --allow-ffi bench/udp_echo_bench.ts
 *
 * - "echo": the whole path — simulated peer → wire → virtio-net model (rings and buffers through
 *   VT-d) → driver → stack → socket → stack → driver → model → wire → peer.
 * - "driver + device model": the same frames through the virtio-net driver and the device model,
 *   echoed at layer 2 without the stack (rx batch straight back to tx).
 * - "device model": the virtio-net model with no driver (a feeder writes its rings directly),
 *   frames in over the wire and back out (sim_rigs.ts).
 * - "DMA": the twelve port accesses of one frame received and sent (rings, descriptor, buffer),
 *   translated through the DmaPort's cache; "IOMMU translate": one call of the VT-d model's own
 *   translate (an IOTLB hit), what every page access cost before the cache.
 * - "wire": frames through a segment to a port, delivered on the clock.
 * - "forward": the stand-in for simulated forwarding until examples/forward.ts exists — two NICs
 *   on two wires, NIC A's receive batch copied into NIC B's pool and sent (sim_rigs.ts).
 * Split: driver = (driver + device model) − device model; device model = device model − DMA −
 * two wire hops; the rest of "echo" is the stack, the peer and the socket glue.
 *
 * @module
 */

import {
  NetStack,
  openPciDevice,
  type PacketBuffer,
  parseIpv4,
  parseMac,
  VirtioNet,
} from "../mod.ts";
import { createMachine, SimPeer } from "../sim/mod.ts";
import {
  deviceModelRig,
  forwardRig,
  frameDmaRig,
  modelTranslateRig,
  stackRig,
  wireRig,
} from "./sim_rigs.ts";

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

/**
 * Own timing of `round` (moving `packets` packets): the median time of one round over about
 * `ms`, in ns per packet (the median, because other processes and GC pauses on a shared host
 * make the mean say more about them than about the code).
 */
async function nsPerPacket(round: () => unknown, packets: number, ms = 500): Promise<number> {
  for (let i = 0; i < 200; i++) await round();
  const times: number[] = [];
  const end = performance.now() + ms;
  while (performance.now() < end) {
    const t0 = performance.now();
    for (let i = 0; i < 16; i++) await round();
    times.push((performance.now() - t0) / 16);
  }
  times.sort((a, b) => a - b);
  return (times[times.length >> 1] * 1e6) / packets;
}

const split: Record<string, number> = {};

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
  split.echo = await nsPerPacket(round, BATCH);
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
  const l2 = async (): Promise<void> => {
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
  };
  split.l2 = await nsPerPacket(l2, BATCH);
  Deno.bench({
    name: "driver + device model: 32 frames rx → tx at layer 2 (no stack)",
    group: "echo",
    fn: l2,
  });
}

// The parts on their own.
{
  const device = deviceModelRig();
  const dma = frameDmaRig();
  const translate = modelTranslateRig();
  const wire = wireRig();
  const stack = stackRig();
  const forward = await forwardRig();
  split.device = await nsPerPacket(() => device.round(), 32);
  split.dma = await nsPerPacket(() => dma.frame(), 1);
  split.translate = await nsPerPacket(() => translate.translate(), 1);
  split.wire = await nsPerPacket(() => wire.round(), 32);
  split.stack = await nsPerPacket(() => stack.round(), 32);
  split.forward = await nsPerPacket(() => forward.round(), 32);
  Deno.bench({
    name: "device model: 32 frames in and out, no driver (a feeder writes the rings)",
    group: "parts",
    baseline: true,
    fn: () => device.round(),
  });
  Deno.bench({
    name: "DMA: the 12 port accesses of one frame received and sent, VT-d, cached",
    group: "parts",
    fn: () => void dma.frame(),
  });
  Deno.bench({
    name: "IOMMU translate: one VT-d model translate (IOTLB hit)",
    group: "parts",
    fn: () => void translate.translate(),
  });
  Deno.bench({
    name: "wire: 32 frames through a segment to a port",
    group: "parts",
    fn: () => wire.round(),
  });
  Deno.bench({
    name: "forward (stand-in): 32 frames NIC A → driver → NIC B, two wires",
    group: "forward",
    fn: () => forward.round(),
  });
}

{
  const s = split;
  const driver = s.l2 - s.device;
  const model = s.device - s.dma - 2 * s.wire;
  const rest = s.echo - s.stack - driver - model - s.dma - 2 * s.wire;
  const row = (what: string, ns: number) =>
    console.log(`  ${what.padEnd(58)}${ns.toFixed(0).padStart(8)} ns`);
  console.log(
    "per-packet split of the simulated echo (own timing, median, ns per echoed packet):",
  );
  row("whole echo", s.echo);
  row("stack (a datagram in and its echo out, in-memory device)", s.stack);
  row("driver (rx + tx: driver+model at layer 2 − model alone)", driver);
  row("device model (rx + tx, without DMA and wire)", model);
  row("IOMMU translation + DMA copies (12 port accesses)", s.dma);
  row("wire (two hops)", 2 * s.wire);
  row("echo − the parts (peer, socket glue; parts timed apart: rough)", rest);
  console.log(
    `  one VT-d model translate (IOTLB hit), per page access before the port cache: ` +
      `${s.translate.toFixed(0)} ns`,
  );
  console.log(
    `echo ${(1e3 / s.echo).toFixed(3)} M/s; forwarding stand-in ` +
      `${(1e3 / s.forward).toFixed(3)} Mpps (${s.forward.toFixed(0)} ns/packet)`,
  );
}
