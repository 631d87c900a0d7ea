import assert from "node:assert/strict";
import { NetStack } from "../../net/stack.ts";
import { internetChecksum } from "../../net/checksum.ts";
import { parseIpv4 } from "../../net/ipv4.ts";
import { parseMac } from "../../net/ethernet.ts";
import { LoopNetDevice } from "../../testing/loop_net_device.ts";
import { checksum, FrameBuilder, put16 } from "../../testing/net_frames.ts";

const OUR_MAC = parseMac("52:54:00:12:34:56");
const PEER_MAC = parseMac("02:00:00:00:00:01");
const OUR_IP = parseIpv4("10.0.2.15");
const PEER_IP = parseIpv4("10.0.2.2");

const frames = new FrameBuilder({ mac: OUR_MAC, ip: OUR_IP }, { mac: PEER_MAC, ip: PEER_IP });
const udp = (srcPort: number, dstPort: number, data: Uint8Array): Uint8Array =>
  frames.udp(srcPort, dstPort, data);
const echoRequest = (id: number, seq: number, data: Uint8Array): Uint8Array =>
  frames.echoRequest(id, seq, data);
const arpRequest = (tpa: number): Uint8Array => frames.arp({ tpa });

function setup(): { dev: LoopNetDevice; stack: NetStack; now: { t: number } } {
  const dev = new LoopNetDevice(OUR_MAC);
  const now = { t: 0 };
  const stack = new NetStack(dev, {
    address: "10.0.2.15/24",
    gateway: "10.0.2.2",
    now: () => now.t,
  });
  return { dev, stack, now };
}

/** Learn the peer's MAC so replies need no ARP round trip. */
function learnPeer(dev: LoopNetDevice, stack: NetStack): void {
  dev.inbox.push(arpRequest(OUR_IP));
  stack.poll();
  dev.sent.length = 0;
}

Deno.test({
  name: "checksum matches RFC 1071's worked example",
  permissions: "none",
  fn() {
    const words = new Uint8Array([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
    assert.equal(internetChecksum(words, 0, words.length), 0x220d);
  },
});

Deno.test({
  name: "ARP: a request for our address gets a reply with our MAC",
  permissions: "none",
  fn() {
    const { dev, stack } = setup();
    dev.inbox.push(arpRequest(OUR_IP));
    assert.equal(stack.poll(), 1);
    assert.equal(dev.sent.length, 1);
    const r = dev.sent[0];
    assert.deepEqual(r.subarray(0, 6), PEER_MAC);
    assert.deepEqual(r.subarray(6, 12), OUR_MAC);
    assert.equal((r[12] << 8) | r[13], 0x0806);
    assert.equal((r[20] << 8) | r[21], 2, "operation reply");
    assert.equal(r.length, 60, "padded to the Ethernet minimum");
    assert.ok(r.subarray(42).every((b) => b === 0), "padding is zeros");
    assert.deepEqual(r.subarray(22, 28), OUR_MAC);
    assert.deepEqual(r.subarray(32, 38), PEER_MAC);
    assert.equal(stack.stats.arpReplies, 1);
    assert.equal(dev.pool.available, dev.pool.capacity, "no buffer leaked");
  },
});

Deno.test({
  name: "ARP: a request for another address is not answered",
  permissions: "none",
  fn() {
    const { dev, stack } = setup();
    dev.inbox.push(arpRequest(parseIpv4("10.0.2.99")));
    stack.poll();
    assert.equal(dev.sent.length, 0);
  },
});

Deno.test({
  name: "ICMP: an echo request is answered with the same id, sequence and data",
  permissions: "none",
  fn() {
    const { dev, stack } = setup();
    learnPeer(dev, stack);
    const data = new TextEncoder().encode("ping payload 0123456789");
    dev.inbox.push(echoRequest(0x4242, 7, data));
    stack.poll();
    assert.equal(dev.sent.length, 1);
    const r = dev.sent[0];
    assert.equal(checksum(r, 14, 20), 0, "IP header checksum");
    const icmp = r.subarray(34, 34 + 8 + data.length);
    assert.equal(icmp[0], 0, "echo reply");
    assert.equal(checksum(icmp, 0, icmp.length), 0, "ICMP checksum");
    assert.equal((icmp[4] << 8) | icmp[5], 0x4242);
    assert.equal((icmp[6] << 8) | icmp[7], 7);
    assert.deepEqual(icmp.subarray(8), data);
    assert.equal(stack.stats.echoReplies, 1);
  },
});

Deno.test({
  name: "UDP: a bound socket receives and its echo goes back with a valid checksum",
  permissions: "none",
  fn() {
    const { dev, stack } = setup();
    learnPeer(dev, stack);
    const got: string[] = [];
    const sock = stack.udpBind(7, (d, off, len, ip, port) => {
      got.push(new TextDecoder().decode(d.subarray(off, off + len)));
      sock.sendTo(ip, port, d, off, len);
    });
    dev.inbox.push(udp(40000, 7, new TextEncoder().encode("hello")));
    stack.poll();
    assert.deepEqual(got, ["hello"]);
    assert.equal(dev.sent.length, 1);
    const r = dev.sent[0];
    const u = r.subarray(34);
    assert.equal((u[0] << 8) | u[1], 7);
    assert.equal((u[2] << 8) | u[3], 40000);
    const ulen = (u[4] << 8) | u[5];
    assert.equal(ulen, 13);
    const pseudo = (OUR_IP >>> 16) + (OUR_IP & 0xffff) + (PEER_IP >>> 16) + (PEER_IP & 0xffff) +
      17 + ulen;
    assert.equal(checksum(u, 0, ulen, pseudo), 0, "checksum verifies");
    assert.equal(r.length, 60, "padded to the minimum frame");
    assert.ok(r.subarray(34 + 13).every((b) => b === 0), "padding is zeros");
    assert.equal(dev.pool.available, dev.pool.capacity);
  },
});

Deno.test({
  name: "UDP to an unknown neighbour waits for ARP, then leaves",
  permissions: "none",
  fn() {
    const { dev, stack } = setup();
    const sock = stack.udpBind(9000, () => {});
    assert.equal(sock.sendTo(PEER_IP, 9, new Uint8Array([1, 2, 3])), true);
    stack.poll();
    assert.equal(dev.sent.length, 1, "an ARP request");
    assert.equal((dev.sent[0][20] << 8) | dev.sent[0][21], 1);
    const reply = frames.arp({ op: 2, dstMac: OUR_MAC });
    dev.inbox.push(reply);
    stack.poll();
    assert.equal(dev.sent.length, 2, "the held datagram was sent");
    assert.deepEqual(dev.sent[1].subarray(0, 6), PEER_MAC);
    assert.equal(dev.pool.available, dev.pool.capacity);
  },
});

Deno.test({
  name: "releaseHeldFrames gives frames waiting for ARP back to the pool at once (a shared pool)",
  permissions: "none",
  fn() {
    const { dev, stack } = setup();
    stack.sendUdp(5, PEER_IP, 9, new Uint8Array(4));
    stack.sendUdp(5, parseIpv4("10.0.2.3"), 9, new Uint8Array(4));
    stack.poll();
    assert.equal(dev.pool.available, dev.pool.capacity - 2, "two frames held");
    assert.equal(stack.releaseHeldFrames(), 2);
    assert.equal(dev.pool.available, dev.pool.capacity, "every buffer back before any timeout");
    assert.equal(stack.stats.txDropped, 2);
    assert.equal(stack.releaseHeldFrames(), 0);
  },
});

Deno.test({
  name: "ARP: unanswered resolution drops the held frame after its timeout",
  permissions: "none",
  fn() {
    const { dev, stack, now } = setup();
    stack.sendUdp(5, PEER_IP, 9, new Uint8Array(4));
    stack.poll();
    assert.equal(dev.pool.available, dev.pool.capacity - 1, "one frame held");
    now.t += 5000;
    stack.poll();
    assert.equal(dev.pool.available, dev.pool.capacity);
    assert.equal(stack.stats.txDropped, 1);
  },
});

Deno.test({
  name:
    "hostile frames: truncations, bad checksums, wrong lengths, fragments are counted, never thrown",
  permissions: "none",
  fn() {
    const { dev, stack } = setup();
    learnPeer(dev, stack);
    stack.udpBind(7, () => {});
    const good = udp(1234, 7, new Uint8Array(40).fill(0x61));
    for (let len = 0; len < good.length; len++) dev.inbox.push(good.slice(0, len));
    const badIpSum = good.slice();
    badIpSum[24] ^= 0xff;
    const badUdpSum = good.slice();
    badUdpSum[40] ^= 0xff;
    const fragment = good.slice();
    fragment[20] |= 0x20; // MF
    put16(fragment, 24, 0);
    put16(fragment, 24, checksum(fragment, 14, 20));
    const longUdp = good.slice();
    put16(longUdp, 38, 400); // UDP length beyond the datagram
    put16(longUdp, 40, 0);
    const longIp = good.slice();
    put16(longIp, 16, 1400);
    put16(longIp, 24, 0);
    put16(longIp, 24, checksum(longIp, 14, 20));
    const badVersion = good.slice();
    badVersion[14] = 0x65;
    dev.inbox.push(badIpSum, badUdpSum, fragment, longUdp, longIp, badVersion);
    let polls = 0;
    while (dev.inbox.length > 0 && polls++ < 1000) stack.poll();
    assert.equal(stack.stats.udpDelivered, 0, "no corrupt datagram was delivered");
    assert.equal(stack.stats.fragments, 1);
    assert.equal(stack.stats.badChecksum, 2);
    assert.ok(stack.stats.malformed >= good.length - 1 - 20, `malformed ${stack.stats.malformed}`);
    assert.equal(dev.pool.available, dev.pool.capacity);
  },
});

Deno.test({
  name: "hostile frames: 20,000 seeded random and mutated frames never throw or leak",
  permissions: "none",
  fn() {
    const { dev, stack } = setup();
    learnPeer(dev, stack);
    stack.udpBind(7, (d, off, len, ip, port) => stack.sendUdp(7, ip, port, d, off, len));
    let seed = 0x1234567;
    const rand = (): number => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const seeds = [
      udp(1, 7, new Uint8Array(20)),
      echoRequest(1, 1, new Uint8Array(16)),
      arpRequest(OUR_IP),
    ];
    for (let i = 0; i < 20_000; i++) {
      let f: Uint8Array;
      if (rand() < 0.3) {
        f = new Uint8Array(Math.floor(rand() * 1600));
        for (let j = 0; j < f.length; j++) f[j] = rand() * 256;
        if (rand() < 0.5 && f.length >= 14) f.set(OUR_MAC, 0);
      } else {
        f = seeds[Math.floor(rand() * seeds.length)].slice();
        const flips = 1 + Math.floor(rand() * 4);
        for (let k = 0; k < flips; k++) f[Math.floor(rand() * f.length)] = rand() * 256;
        if (rand() < 0.3) f = f.slice(0, Math.floor(rand() * f.length));
      }
      dev.inbox.push(f);
      stack.poll();
    }
    stack.poll();
    assert.equal(stack.stats.rxFrames, 20_000 + 1);
    assert.equal(dev.pool.available, dev.pool.capacity, "every buffer returned");
  },
});

Deno.test({
  name: "a UDP handler that throws: the error propagates and every buffer of the batch returns",
  permissions: "none",
  fn() {
    const { dev, stack } = setup();
    learnPeer(dev, stack);
    let calls = 0;
    stack.udpBind(7, () => {
      if (++calls === 2) throw new Error("handler bug");
    });
    for (let i = 0; i < 5; i++) dev.inbox.push(udp(1234, 7, new Uint8Array([i])));
    assert.throws(() => stack.poll(), /handler bug/);
    assert.equal(dev.pool.available, dev.pool.capacity, "no buffer leaked");
    stack.poll();
    assert.equal(calls, 2, "the rest of the batch was dropped with its buffers");
  },
});

Deno.test({
  name: "UDP: a closed port stops receiving; a new socket on it gets the next datagram",
  permissions: "none",
  fn() {
    const { dev, stack } = setup();
    learnPeer(dev, stack);
    const got: string[] = [];
    const first = stack.udpBind(7, () => void got.push("first"));
    dev.inbox.push(udp(1234, 7, new Uint8Array(1)));
    stack.poll();
    first.close();
    dev.inbox.push(udp(1234, 7, new Uint8Array(1)));
    stack.poll();
    assert.equal(stack.stats.udpNoSocket, 1);
    stack.udpBind(7, () => void got.push("second"));
    dev.inbox.push(udp(1234, 7, new Uint8Array(1)));
    stack.poll();
    assert.deepEqual(got, ["first", "second"]);
    assert.equal(first.received, 1);
  },
});
