/**
 * Capture at the driver (net/capture.ts) into a pcap file (net/pcap.ts): every frame the NIC
 * received and every frame it took for transmit, in order, each in one record with its
 * timestamp; frames the NIC refused (ring full) are not in the capture; a frame given as a range
 * of a larger buffer is written as that range. Also: NET_STACK_DROPS names every drop counter.
 */
import assert from "node:assert/strict";
import { CaptureNetDevice, type FrameDirection } from "../../net/capture.ts";
import { LINKTYPE_ETHERNET, PCAP_MAGIC, PcapWriter } from "../../net/pcap.ts";
import { NetStack } from "../../net/stack.ts";
import { NET_STACK_DROPS, newNetStackStats } from "../../net/stats.ts";
import { parseIpv4 } from "../../net/ipv4.ts";
import { parseMac } from "../../net/ethernet.ts";
import { LoopNetDevice } from "../../testing/loop_net_device.ts";
import { FrameBuilder } from "../../testing/net_frames.ts";

const HOST = { mac: parseMac("52:54:00:12:34:56"), ip: parseIpv4("10.0.2.15") };
const PEER = { mac: parseMac("52:55:0a:00:02:02"), ip: parseIpv4("10.0.2.2") };
const frames = new FrameBuilder(HOST, PEER);

/** The records of a pcap file: [seconds, microseconds, frame]. */
function records(file: Uint8Array): [number, number, Uint8Array][] {
  const v = new DataView(file.buffer, file.byteOffset, file.byteLength);
  assert.equal(v.getUint32(0, true), PCAP_MAGIC);
  assert.equal(v.getUint32(20, true), LINKTYPE_ETHERNET);
  const out: [number, number, Uint8Array][] = [];
  for (let at = 24; at < file.length;) {
    const length = v.getUint32(at + 8, true);
    assert.equal(v.getUint32(at + 12, true), length, "whole frames: captured = on the wire");
    out.push([
      v.getUint32(at, true),
      v.getUint32(at + 4, true),
      file.slice(at + 16, at + 16 + length),
    ]);
    at += 16 + length;
  }
  return out;
}

/** A pcap writer into memory (the sink copies: the writer reuses its record buffer). */
function memoryPcap(): { pcap: PcapWriter; file(): Uint8Array } {
  const chunks: Uint8Array[] = [];
  const pcap = new PcapWriter((b) => chunks.push(b.slice()));
  return {
    pcap,
    file(): Uint8Array {
      const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
      let at = 0;
      for (const c of chunks) {
        all.set(c, at);
        at += c.length;
      }
      return all;
    },
  };
}

Deno.test({
  name: "capture at the driver: received and sent frames, in order, into a pcap file",
  permissions: "none",
  fn() {
    const nic = new LoopNetDevice(HOST.mac);
    const { pcap, file } = memoryPcap();
    const seen: FrameDirection[] = [];
    let timeNs = 1_700_000_000_123_456_000;
    const dev = new CaptureNetDevice(nic, (direction, frame, offset, length) => {
      seen.push(direction);
      pcap.write(timeNs, frame, offset, length);
      timeNs += 1000;
    });
    assert.equal(dev.name, nic.name);
    assert.equal(dev.mac, nic.mac);
    assert.equal(dev.pool, nic.pool);
    const stack = new NetStack(dev, { address: "10.0.2.15/24", now: () => 0 });
    const echo = stack.udpBind(7, (d, off, len, ip, port) => echo.sendTo(ip, port, d, off, len));
    const arp = frames.arp({ op: 1 });
    const datagram = frames.udp(5000, 7, new TextEncoder().encode("captured"));
    nic.inbox.push(arp, datagram);
    stack.poll();
    assert.deepEqual(
      seen,
      ["rx", "rx", "tx", "tx"],
      "ARP request and datagram in, reply and echo out",
    );
    const got = records(file());
    assert.equal(pcap.count, 4);
    assert.deepEqual(got.map((r) => r[2]), [arp, datagram, nic.sent[0], nic.sent[1]]);
    assert.deepEqual(got[0].slice(0, 2), [1_700_000_000, 123_456], "seconds and microseconds");
    assert.deepEqual(got[3].slice(0, 2), [1_700_000_000, 123_459]);
    assert.deepEqual(dev.stats(), nic.stats());
  },
});

Deno.test({
  name: "capture at the driver: a frame the NIC did not take is not captured",
  permissions: "none",
  fn() {
    const nic = new LoopNetDevice(HOST.mac);
    const sent: number[] = [];
    const dev = new CaptureNetDevice(nic, (direction, _f, _o, length) => {
      if (direction === "tx") sent.push(length);
    });
    const bufs = [nic.pool.alloc()!, nic.pool.alloc()!];
    bufs[0].length = 60;
    bufs[1].length = 70;
    nic.txLimit = 1;
    assert.equal(dev.txBatch(bufs, 2), 1);
    assert.deepEqual(sent, [60]);
    nic.pool.free(bufs[1]);
  },
});

Deno.test({
  name: "pcap writer: a range of a larger buffer, and a frame longer than any before",
  permissions: "none",
  fn() {
    const { pcap, file } = memoryPcap();
    const buf = new Uint8Array(4000).map((_, i) => i & 0xff);
    pcap.write(0, buf, 10, 60);
    pcap.write(2_500_000_000, buf, 0, 3000);
    const got = records(file());
    assert.deepEqual(got[0][2], buf.subarray(10, 70));
    assert.deepEqual(got[1], [2, 500_000, buf.subarray(0, 3000)]);
  },
});

Deno.test({
  name: "NET_STACK_DROPS names every drop counter of the stack, and nothing else",
  permissions: "none",
  fn() {
    const notDrops = [
      "rxFrames",
      "txFrames",
      "arpReplies",
      "arpRequests",
      "echoReplies",
      "udpDelivered",
      "txDropped",
    ];
    const keys = Object.keys(newNetStackStats()).filter((k) => !notDrops.includes(k));
    assert.deepEqual([...NET_STACK_DROPS].sort(), keys.sort());
  },
});
