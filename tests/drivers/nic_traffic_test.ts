/**
 * The three NIC drivers (virtio-net, e1000e, igb) with the net/ stack on their simulated devices,
 * on every IOMMU model × VFIO path of the testing fixture (each step ends with its leak check: fds,
 * mappings, locked memory, IOMMU domains, every pool buffer back): ARP, ping and UDP echo
 * NAPI-style (waitForWork when idle) over small rings that wrap many times; a full receive ring;
 * transmit ring exhaustion; a close in the middle of traffic that gives back every fd, mapping and
 * locked page; and hostile frames on the wire. A NIC whose simulated model does not exist yet is
 * reported as ignored.
 */
import assert from "node:assert/strict";
import { IntelNic } from "../../drivers/e1000/nic.ts";
import type { PacketBuffer } from "../../drivers/packet_pool.ts";
import { Rng } from "../helpers/rng.ts";
import {
  ECHO_PORT,
  NIC_IP,
  NIC_KINDS,
  type NicRig,
  nicRig,
  nicSimTest,
} from "../helpers/nic_driver_rig.ts";

/** Small rings, so a few hundred frames wrap them many times. */
const SMALL_RING = 16;
const CLIENT_PORT = 5000;
/** A local experimental EtherType (IEEE 802 "local experimental 1"), ignored by every peer. */
const ETHERTYPE_EXPERIMENTAL = 0x88b5;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Resolve ARP both ways with a ping, so datagrams flow without waiting. */
async function pingOnce(r: NicRig, seq = 1): Promise<void> {
  r.peer.ping(NIC_IP, 7, seq);
  await r.run(() => r.peer.echoReplies.length >= seq);
  assert.equal(r.peer.echoReplies.length, seq, "the ping is answered");
}

/** Send `count` datagrams in bursts of `burst`, running the rig between bursts. */
async function echoDatagrams(r: NicRig, count: number, burst: number): Promise<number> {
  let got = 0;
  r.peer.onUdp(CLIENT_PORT, (d) => {
    assert.equal(decoder.decode(d.data), `datagram ${got}`, "echoes come back in order");
    got++;
  });
  for (let i = 0; i < count; i++) {
    r.peer.sendUdp(NIC_IP, ECHO_PORT, CLIENT_PORT, encoder.encode(`datagram ${i}`));
    if (i % burst === burst - 1) await r.run(() => got > i - burst);
  }
  await r.run(() => got === count);
  return got;
}

/** A frame of `length` bytes to `dst` with the experimental EtherType. */
function fillFrame(buf: PacketBuffer, dst: Uint8Array, src: Uint8Array, length: number): void {
  buf.data.set(dst, 0);
  buf.data.set(src, 6);
  buf.data[12] = ETHERTYPE_EXPERIMENTAL >>> 8;
  buf.data[13] = ETHERTYPE_EXPERIMENTAL & 0xff;
  buf.data.fill(0xa5, 14, length);
  buf.length = length;
}

for (const kind of NIC_KINDS) {
  nicSimTest(
    kind,
    `ARP, ping and 300 UDP echoes over ${SMALL_RING}-entry rings (wrap)`,
    async (ctx) => {
      const r = await nicRig(ctx, { ringSize: SMALL_RING });
      await pingOnce(r);
      assert.equal(await echoDatagrams(r, 300, 8), 300);
      assert.equal(r.stack.stats.udpDelivered, 300);
      assert.equal(r.machine.faults().length, 0);
      const s = r.nic.stats();
      assert.equal(s.rxDropped, 0);
      assert.equal(s.txPackets, s.rxPackets, "every frame received was answered and sent");
      if (r.nic instanceof IntelNic) {
        const hw = r.nic.stats().hardware;
        assert.equal(hw.goodPacketsTransmitted, r.nic.stats().txPackets, "GPTC = sent frames");
        assert.ok(hw.goodPacketsReceived >= s.rxPackets, "GPRC counts every frame received");
      }
      r.close();
    },
  );

  nicSimTest(
    kind,
    "a full receive ring loses frames, not the driver; traffic resumes",
    async (ctx) => {
      const r = await nicRig(ctx, { ringSize: SMALL_RING });
      await pingOnce(r);
      let got = 0;
      r.peer.onUdp(CLIENT_PORT, () => void got++);
      const burst = 4 * SMALL_RING;
      for (let i = 0; i < burst; i++) {
        r.peer.sendUdp(NIC_IP, ECHO_PORT, CLIENT_PORT, encoder.encode(`burst ${i}`));
      }
      r.machine.clock.advance(5_000_000); // the device fills the ring while nobody polls
      await r.run(() => got === burst, 200);
      assert.ok(got >= SMALL_RING - 1, `at least a ring's worth echoed (${got})`);
      if (got < burst && r.nic instanceof IntelNic) {
        const hw = r.nic.stats().hardware;
        assert.ok(
          hw.receiveNoBuffers + hw.missedPackets > 0,
          "the device counts what the full ring made it drop",
        );
      }
      got = 0;
      for (let i = 0; i < 5; i++) {
        r.peer.sendUdp(NIC_IP, ECHO_PORT, CLIENT_PORT, encoder.encode(`after ${i}`));
      }
      await r.run(() => got === 5);
      assert.equal(got, 5, "traffic resumes");
      assert.equal(r.machine.faults().length, 0);
      r.close();
    },
  );

  nicSimTest(
    kind,
    "transmit ring exhaustion takes what fits, the rest stays with the caller",
    async (ctx) => {
      const r = await nicRig(ctx, { ringSize: SMALL_RING });
      let seen = 0;
      r.machine.segment.tap((_t, f) => {
        if (f.length >= 14 && ((f[12] << 8) | f[13]) === ETHERTYPE_EXPERIMENTAL) seen++;
      });
      const want = 3 * SMALL_RING;
      const bufs: PacketBuffer[] = [];
      assert.equal(r.nic.pool.allocBatch(bufs, want), want);
      for (const b of bufs) fillFrame(b, r.peer.mac, r.nic.mac, 60);
      const first = r.nic.txBatch(bufs, want);
      assert.ok(first >= 1 && first <= SMALL_RING, `one ring's worth at most (${first})`);
      assert.equal(r.nic.stats().txDropped, want - first);
      let sent = first;
      const deadline = r.machine.kernel.now() + 100;
      while (sent < want && r.machine.kernel.now() < deadline) {
        await r.machine.kernel.sleep(0.1);
        const rest = bufs.slice(sent);
        sent += r.nic.txBatch(rest, rest.length);
      }
      assert.equal(sent, want, "the rest goes out once the device completed the first batch");
      await r.run(() => r.nic.stats().txPackets === want, 50);
      assert.equal(r.nic.stats().txPackets, want);
      assert.equal(seen, want, "every frame reached the wire once");
      assert.equal(r.machine.faults().length, 0);
      r.close();
    },
  );

  nicSimTest(
    kind,
    "close in the middle of traffic gives back fds, mappings and locked memory",
    async (ctx) => {
      const r = await nicRig(ctx);
      await pingOnce(r);
      for (let i = 0; i < 50; i++) {
        r.peer.sendUdp(NIC_IP, ECHO_PORT, CLIENT_PORT, encoder.encode(`flight ${i}`));
      }
      r.machine.clock.advance(2_000_000); // the device fills receive buffers
      r.stack.poll(); // one batch received, its echoes handed to the transmit ring
      const delivered = r.stack.stats.udpDelivered;
      assert.ok(delivered > 0 && delivered < 50, `closing with frames in flight (${delivered})`);
      r.close();
      const status = r.machine.kernel.readFile("/proc/self/status") as string;
      assert.match(status, /VmLck:\s+0 kB/, "no locked memory left");
      assert.equal(
        r.machine.memory.usedBytes,
        ctx.leaks.baseline.physicalBytes,
        "every page released",
      );
      assert.equal(
        r.machine.kernel.process.openFds().length,
        ctx.leaks.baseline.fds,
        "every fd closed",
      );
      r.peer.ping(NIC_IP, 9, 9); // the device is stopped: nothing is received, nothing faults
      r.machine.clock.advance(10_000_000);
      assert.equal(r.machine.faults().length, 0, "no DMA after close");
    },
  );

  nicSimTest(kind, "hostile frames on the wire never throw; the NIC keeps echoing", async (ctx) => {
    const r = await nicRig(ctx);
    await pingOnce(r);
    const rng = new Rng(0x13);
    const wire = r.machine.segment.attach({ name: "hostile", receive: () => {} });
    const template = hostileTemplate(r);
    for (let i = 0; i < 2000; i++) {
      const f = rng.int(0, 3) === 0 ? rng.bytes(rng.int(0, 1519)) : mutate(template, rng);
      if (rng.int(0, 2) === 0 && f.length >= 6) f.set(r.nic.mac, 0);
      wire.send(f);
      if (i % 64 === 63) await r.run(() => false, 1);
    }
    await r.run(() => false, 20);
    wire.detach();
    assert.equal(await echoDatagrams(r, 20, 4), 20, "echoes after the storm");
    assert.equal(r.machine.faults().length, 0);
    const s = r.stack.stats;
    assert.ok(s.malformed + s.badChecksum + s.udpNoSocket > 0, "the stack counted junk");
    r.close();
  });
}

/** A valid UDP datagram to the NIC, as the peer would send it (captured from the wire). */
function hostileTemplate(r: NicRig): Uint8Array {
  let frame: Uint8Array | undefined;
  r.machine.segment.tap((_t, f) => {
    if (frame === undefined && f.length > 42 && f[23] === 17) frame = f.slice();
  });
  r.peer.sendUdp(NIC_IP, ECHO_PORT, CLIENT_PORT, encoder.encode("template"));
  r.machine.clock.advance(1_000_000);
  assert.ok(frame, "the peer's datagram was captured");
  return frame;
}

/** Flip, truncate or extend a copy of `frame`. */
function mutate(frame: Uint8Array, rng: Rng): Uint8Array {
  const f = frame.slice(0, rng.int(1, frame.length + 1));
  const flips = rng.int(1, 6);
  for (let i = 0; i < flips && f.length > 0; i++) f[rng.int(0, f.length)] = rng.int(0, 256);
  return f;
}
