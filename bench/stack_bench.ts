/**
 * The network stack alone (net/ over the in-memory LoopNetDevice): ns per packet to receive and
 * answer a UDP datagram (echoed through the socket API) and an ICMP echo request, at batch 32.
 *
 *   deno bench bench/stack_bench.ts
 *
 * Each iteration moves {@link PACKETS} packets (32 polls of 32), so the per-packet cost is
 * time/iter ÷ 1024 — measured with a loop inside the bench function, because Deno.bench's own
 * floor (4–8 ns per iteration) would swamp a single packet. The "device alone" line is the
 * LoopNetDevice receiving and sending the same frames without the stack (one copy in, one free
 * out): subtract it to get the stack's own share. When the run ends, a summary line prints the
 * median and the lowest ns/packet of each bench (on a busy machine the lowest is the steadier).
 *
 * @module
 */

import { NetStack, type PacketBuffer, parseIpv4, parseMac, RX_BATCH } from "../mod.ts";
import { FrameBuilder, LoopNetDevice } from "../testing/mod.ts";

/** Packets per bench iteration. */
const PACKETS = 32 * RX_BATCH;
const HOST = { mac: parseMac("52:54:00:12:34:56"), ip: parseIpv4("10.0.2.15") };
const PEER = { mac: parseMac("52:55:0a:00:02:02"), ip: parseIpv4("10.0.2.2") };
const frames = new FrameBuilder(HOST, PEER);
const UDP_PAYLOAD = new TextEncoder().encode("deno_vfio echo bench payload ".repeat(2));
const PING_DATA = new Uint8Array(56).map((_, i) => i);
const samplesByBench = new Map<string, number[]>();

/** A stack on a fresh loop device that has learned the peer, with the UDP echo bound. */
function rig(): { dev: LoopNetDevice; stack: NetStack } {
  const dev = new LoopNetDevice(HOST.mac, 256);
  const stack = new NetStack(dev, { address: "10.0.2.15/24", now: () => 0 });
  const echo = stack.udpBind(7, (d, off, len, ip, port) => echo.sendTo(ip, port, d, off, len));
  dev.inbox.push(frames.arp({ op: 1 }));
  stack.poll();
  dev.capture = false;
  return { dev, stack };
}

/** A bench that times `round` (which moves PACKETS packets) and records ns/packet. */
function packetBench(label: string, name: string, round: () => void): void {
  const samples: number[] = [];
  samplesByBench.set(label, samples);
  Deno.bench({
    name,
    group: "stack",
    fn() {
      const t0 = performance.now();
      round();
      samples.push((performance.now() - t0) * 1e6 / PACKETS);
    },
  });
}

{
  const { dev, stack } = rig();
  const batch = [frames.udp(5000, 7, UDP_PAYLOAD)];
  packetBench("UDP echo", "stack: UDP echo, 1024 datagrams at batch 32", () => {
    dev.replay(batch, PACKETS);
    while (dev.pending > 0) stack.poll();
  });
}

{
  const { dev, stack } = rig();
  const batch = [frames.echoRequest(1, 1, PING_DATA)];
  packetBench("ICMP echo", "stack: ICMP echo, 1024 requests at batch 32", () => {
    dev.replay(batch, PACKETS);
    while (dev.pending > 0) stack.poll();
  });
}

{
  const dev = new LoopNetDevice(HOST.mac, 256);
  dev.capture = false;
  const rx: PacketBuffer[] = new Array(RX_BATCH);
  const batch = [frames.udp(5000, 7, UDP_PAYLOAD)];
  packetBench("device alone", "device alone: 1024 frames rx → tx at batch 32 (no stack)", () => {
    dev.replay(batch, PACKETS);
    while (dev.pending > 0) dev.txBatch(rx, dev.rxBatch(rx, RX_BATCH));
  });
}

globalThis.addEventListener("unload", () => {
  const parts: string[] = [];
  for (const [label, s] of samplesByBench) {
    if (s.length === 0) continue;
    s.sort((a, b) => a - b);
    parts.push(`${label} ${s[s.length >> 1].toFixed(0)} (min ${s[0].toFixed(0)})`);
  }
  if (parts.length > 0) console.log(`stack bench, ns/packet median (min): ${parts.join("; ")}`);
});
