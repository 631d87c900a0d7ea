/**
 * The stack against a hostile neighbour (issue 17): RFC 1122 source-address rules for every
 * protocol it answers, broadcasts that must not be answered or reflected, the MTU on receive and
 * send, and the bounds on ARP's held frames and cache. Frames are forged with
 * testing/net_frames.ts, which is independent of net/.
 */
import assert from "node:assert/strict";
import { NetStack, type NetStackOptions } from "../../net/stack.ts";
import { parseIpv4 } from "../../net/ipv4.ts";
import { parseMac } from "../../net/ethernet.ts";
import { LoopNetDevice } from "../../testing/loop_net_device.ts";
import { BROADCAST, FrameBuilder, macOf } from "../../testing/net_frames.ts";

const HOST = { mac: parseMac("52:54:00:12:34:56"), ip: parseIpv4("10.0.2.15") };
const PEER = { mac: parseMac("02:00:00:00:00:01"), ip: parseIpv4("10.0.2.2") };
const frames = new FrameBuilder(HOST, PEER);
const PAYLOAD = new TextEncoder().encode("well-behaved");
const PING = new Uint8Array(32).map((_, i) => i);

/** Sources no host may answer (RFC 1122 §3.2.1.3), with the reason. */
const BAD_SOURCES: [string, number][] = [
  ["limited broadcast", parseIpv4("255.255.255.255")],
  ["this host (0.0.0.0)", parseIpv4("0.0.0.0")],
  ["this network (0/8)", parseIpv4("0.1.2.3")],
  ["multicast 224/4", parseIpv4("224.0.0.1")],
  ["multicast 239/8", parseIpv4("239.1.2.3")],
  ["class E 240/4", parseIpv4("240.0.0.1")],
  ["loopback 127/8", parseIpv4("127.0.0.1")],
  ["subnet broadcast", parseIpv4("10.0.2.255")],
  ["our own address", HOST.ip],
];

interface Rig {
  dev: LoopNetDevice;
  stack: NetStack;
  now: { t: number };
}

/** A stack with the echo service on UDP port 7 that knows the peer's MAC. */
function rig(buffers = 64, options: Partial<NetStackOptions> = {}): Rig {
  const dev = new LoopNetDevice(HOST.mac, buffers);
  const now = { t: 0 };
  const stack = new NetStack(dev, {
    address: "10.0.2.15/24",
    gateway: "10.0.2.1",
    now: () => now.t,
    ...options,
  });
  const echo = stack.udpBind(7, (d, off, len, ip, port) => echo.sendTo(ip, port, d, off, len));
  dev.inbox.push(frames.arp());
  stack.poll();
  dev.sent.length = 0;
  return { dev, stack, now };
}

function pollAll(r: Rig): void {
  for (let i = 0; i < 100_000 && r.dev.pending > 0; i++) r.stack.poll();
  r.stack.poll();
}

/** Frames sent, by kind. */
function sentSummary(dev: LoopNetDevice): { toBroadcast: number; toPeer: number; total: number } {
  let toBroadcast = 0;
  let toPeer = 0;
  for (const f of dev.sent) {
    if (f.subarray(0, 6).every((b) => b === 0xff)) toBroadcast++;
    if (f.subarray(0, 6).every((b, i) => b === PEER.mac[i])) toPeer++;
  }
  return { toBroadcast, toPeer, total: dev.sent.length };
}

/** The peer sends `n` datagrams and `n` pings; returns how many of each were answered. */
function peerAnswered(r: Rig, n: number): { udp: number; ping: number } {
  const before = r.dev.sent.length;
  for (let i = 0; i < n; i++) {
    r.dev.inbox.push(frames.udp(5000, 7, PAYLOAD), frames.echoRequest(9, i, PING));
  }
  pollAll(r);
  let udp = 0;
  let ping = 0;
  for (const f of r.dev.sent.slice(before)) {
    if (!f.subarray(0, 6).every((b, i) => b === PEER.mac[i])) continue;
    if (f[23] === 17 && ((f[36] << 8) | f[37]) === 5000) udp++;
    if (f[23] === 1 && f[34] === 0) ping++;
  }
  return { udp, ping };
}

for (const [what, src] of BAD_SOURCES) {
  Deno.test({
    name: `source rules: nothing from ${what} is answered or delivered (RFC 1122 §3.2.1.3)`,
    permissions: "none",
    fn() {
      const r = rig();
      let delivered = 0;
      r.stack.udpBind(9, () => void delivered++);
      r.dev.inbox.push(
        frames.udp(5000, 7, PAYLOAD, { src }),
        frames.udp(5000, 9, PAYLOAD, { src }),
        frames.echoRequest(1, 1, PING, { src }),
        frames.udp(5000, 7, PAYLOAD, { src, dst: parseIpv4("255.255.255.255"), dstMac: BROADCAST }),
      );
      pollAll(r);
      assert.equal(r.dev.sent.length, 0, "nothing sent, nothing reflected to ff:ff:ff:ff:ff:ff");
      assert.equal(delivered, 0);
      assert.equal(r.stack.stats.badSource, 4);
      assert.equal(r.stack.stats.udpDelivered, 0);
      assert.equal(r.stack.stats.echoReplies, 0);
      // The same address as an ARP sender asking for us (0.0.0.0 is the probe case, below).
      if (src !== 0) {
        r.dev.inbox.push(frames.arp({ spa: src, sha: macOf(7) }));
        pollAll(r);
        assert.equal(r.dev.sent.length, 0, "no ARP reply");
        assert.equal(r.stack.stats.arpBadSender, 1);
        assert.equal(r.stack.arp.has(src), false, "not learned");
      }
      assert.equal(r.dev.pool.available, r.dev.pool.capacity);
      assert.deepEqual(peerAnswered(r, 1), { udp: 1, ping: 1 });
    },
  });
}

Deno.test({
  name: "ARP: an RFC 5227 probe for our address is answered unicast and teaches nothing",
  permissions: "none",
  fn() {
    const r = rig();
    const prober = macOf(0x42);
    r.dev.inbox.push(frames.arp({ spa: 0, sha: prober, tpa: HOST.ip }));
    r.dev.inbox.push(frames.arp({ spa: 0, sha: prober, tpa: parseIpv4("10.0.2.77") }));
    r.dev.inbox.push(frames.arp({ op: 2, spa: 0, sha: prober, tpa: HOST.ip }));
    pollAll(r);
    assert.equal(r.dev.sent.length, 1, "one reply, to the probe for our address");
    const reply = r.dev.sent[0];
    assert.deepEqual(reply.subarray(0, 6), prober, "unicast to the prober");
    assert.equal((reply[20] << 8) | reply[21], 2);
    assert.deepEqual(reply.subarray(22, 28), HOST.mac);
    assert.deepEqual([...reply.subarray(38, 42)], [0, 0, 0, 0], "target protocol address 0.0.0.0");
    assert.equal(r.stack.arp.size, 1, "only the peer is known");
    assert.equal(r.stack.stats.notForUs, 1, "the probe for another address");
    assert.equal(r.stack.stats.arpBadSender, 1, "a reply from 0.0.0.0");
  },
});

Deno.test({
  name: "ARP: senders with a group, zero or our own MAC are neither learned nor answered",
  permissions: "none",
  fn() {
    const r = rig();
    const spa = parseIpv4("10.0.2.50");
    for (const sha of [BROADCAST, parseMac("01:00:5e:00:00:01"), new Uint8Array(6), HOST.mac]) {
      r.dev.inbox.push(frames.arp({ spa, sha, srcMac: PEER.mac }));
    }
    pollAll(r);
    assert.equal(r.dev.sent.length, 0);
    assert.equal(r.stack.stats.arpBadSender, 4);
    assert.equal(r.stack.arp.has(spa), false);
  },
});

Deno.test({
  name: "ARP: a request from an off-link sender is answered but not learned",
  permissions: "none",
  fn() {
    const r = rig();
    const spa = parseIpv4("192.168.7.7");
    r.dev.inbox.push(frames.arp({ spa, sha: macOf(5) }));
    pollAll(r);
    assert.equal(r.dev.sent.length, 1);
    assert.deepEqual(r.dev.sent[0].subarray(0, 6), macOf(5));
    assert.equal(r.stack.arp.has(spa), false);
  },
});

Deno.test({
  name: "broadcast: echo requests to a broadcast address are not answered (RFC 1122 §3.2.2.6)",
  permissions: "none",
  fn() {
    const r = rig();
    for (const dst of [parseIpv4("255.255.255.255"), parseIpv4("10.0.2.255")]) {
      r.dev.inbox.push(frames.echoRequest(1, 1, PING, { dst, dstMac: BROADCAST }));
      r.dev.inbox.push(frames.echoRequest(1, 2, PING, { dst })); // unicast MAC, broadcast IP
    }
    pollAll(r);
    assert.equal(r.dev.sent.length, 0);
    assert.equal(r.stack.stats.icmpBroadcast, 4);
  },
});

Deno.test({
  name: "broadcast: a UDP datagram to a broadcast address is delivered; the echo goes unicast",
  permissions: "none",
  fn() {
    const r = rig();
    r.dev.inbox.push(
      frames.udp(5000, 7, PAYLOAD, { dst: parseIpv4("255.255.255.255"), dstMac: BROADCAST }),
      frames.udp(5000, 7, PAYLOAD, { dst: parseIpv4("10.0.2.255"), dstMac: BROADCAST }),
    );
    pollAll(r);
    assert.equal(r.stack.stats.udpDelivered, 2);
    assert.deepEqual(sentSummary(r.dev), { toBroadcast: 0, toPeer: 2, total: 2 });
  },
});

Deno.test({
  name: "broadcast: a datagram for our unicast address in a broadcast frame is dropped (§3.3.6)",
  permissions: "none",
  fn() {
    const r = rig();
    r.dev.inbox.push(
      frames.udp(5000, 7, PAYLOAD, { dstMac: BROADCAST }),
      frames.echoRequest(1, 1, PING, { dstMac: parseMac("01:00:5e:00:00:01") }),
    );
    pollAll(r);
    assert.equal(r.dev.sent.length, 0);
    assert.equal(r.stack.stats.unicastToGroupMac, 2);
  },
});

Deno.test({
  name: "broadcast: multicast destinations are not for us; no ICMP error is ever sent",
  permissions: "none",
  fn() {
    const r = rig();
    r.dev.inbox.push(
      frames.udp(5000, 7, PAYLOAD, {
        dst: parseIpv4("224.0.0.251"),
        dstMac: parseMac("01:00:5e:00:00:fb"),
      }),
      frames.udp(5000, 4444, PAYLOAD), // closed port: counted, no port unreachable
      frames.udp(5000, 4444, PAYLOAD, { dst: parseIpv4("255.255.255.255"), dstMac: BROADCAST }),
    );
    pollAll(r);
    assert.equal(r.dev.sent.length, 0);
    assert.equal(r.stack.stats.notForUs, 1);
    assert.equal(r.stack.stats.udpNoSocket, 2);
  },
});

/** A UDP frame whose IP total length is `total` (payload padded with 'x'). */
function udpOfTotal(total: number): Uint8Array {
  return frames.udp(5000, 7, new Uint8Array(total - 28).fill(0x78));
}

Deno.test({
  name: "MTU on receive: frames of 1515 to 1518 bytes (IP total 1501 to 1504) are counted oversize",
  permissions: "none",
  fn() {
    const r = rig();
    for (let total = 1501; total <= 1504; total++) r.dev.inbox.push(udpOfTotal(total));
    const long = new Uint8Array(1600);
    long.set(udpOfTotal(1500)); // a legal datagram in a frame longer than MTU + header + FCS
    r.dev.inbox.push(long);
    pollAll(r);
    assert.equal(r.stack.stats.rxOversize, 5);
    assert.equal(r.stack.stats.udpDelivered, 0);
    r.dev.inbox.push(udpOfTotal(1500));
    const withFcs = new Uint8Array(1518);
    withFcs.set(udpOfTotal(1500)); // four FCS bytes left by the NIC
    r.dev.inbox.push(withFcs);
    pollAll(r);
    assert.equal(r.stack.stats.udpDelivered, 2, "1500 bytes fit, with or without an FCS");
    assert.equal(r.dev.sent.length, 2);
    assert.equal(r.dev.sent[0].length, 1514, "the echo is a full-size frame");
  },
});

Deno.test({
  name: "MTU on receive: a smaller configured MTU is enforced",
  permissions: "none",
  fn() {
    const r = rig(64, { mtu: 576 });
    r.dev.inbox.push(udpOfTotal(576), udpOfTotal(577));
    pollAll(r);
    assert.equal(r.stack.stats.udpDelivered, 1);
    assert.equal(r.stack.stats.rxOversize, 1);
  },
});

Deno.test({
  name: "MTU on send: a datagram over MTU − 28 bytes is refused with a RangeError and counted",
  permissions: "none",
  fn() {
    const r = rig();
    const sock = r.stack.udpBind(9000, () => {});
    assert.throws(
      () => sock.sendTo(PEER.ip, 9, new Uint8Array(3000)),
      (e: unknown) =>
        e instanceof RangeError && /3000 bytes exceeds the 1472 bytes/.test(e.message),
    );
    assert.throws(() => sock.sendTo(PEER.ip, 9, new Uint8Array(1473)), RangeError);
    assert.equal(r.stack.stats.txTooBig, 2);
    assert.equal(r.stack.stats.txDropped, 2);
    assert.equal(sock.sendTo(PEER.ip, 9, new Uint8Array(1472)), true);
    r.stack.poll();
    assert.equal(r.dev.sent.length, 1);
    assert.equal(r.dev.sent[0].length, 1514);
    assert.equal(r.dev.pool.available, r.dev.pool.capacity, "nothing leaked by the refusals");
  },
});

Deno.test({
  name: "send: destinations that never go on a wire are refused with a RangeError and counted",
  permissions: "none",
  fn() {
    const r = rig();
    const sock = r.stack.udpBind(9000, () => {});
    for (const dst of ["127.0.0.1", "0.0.0.0", "0.1.2.3", "240.0.0.1", "10.0.2.15"]) {
      assert.throws(() => sock.sendTo(parseIpv4(dst), 9, PAYLOAD), RangeError, dst);
    }
    assert.equal(r.stack.stats.txBadDestination, 5);
    assert.throws(() => sock.sendTo(PEER.ip, 0, PAYLOAD), RangeError, "port 0");
    assert.throws(() => sock.sendTo(PEER.ip, 9, PAYLOAD, 4, 20), RangeError, "range");
    assert.equal(r.dev.pool.available, r.dev.pool.capacity);
  },
});

Deno.test({
  name: "send: broadcast and multicast destinations get their link-layer addresses",
  permissions: "none",
  fn() {
    const r = rig();
    const sock = r.stack.udpBind(9000, () => {});
    sock.sendTo(parseIpv4("255.255.255.255"), 9, PAYLOAD);
    sock.sendTo(parseIpv4("10.0.2.255"), 9, PAYLOAD);
    sock.sendTo(parseIpv4("224.0.0.251"), 9, PAYLOAD);
    r.stack.poll();
    assert.equal(r.dev.sent.length, 3);
    assert.deepEqual(r.dev.sent[0].subarray(0, 6), BROADCAST);
    assert.deepEqual(r.dev.sent[1].subarray(0, 6), BROADCAST);
    assert.deepEqual(r.dev.sent[2].subarray(0, 6), parseMac("01:00:5e:00:00:fb"));
    assert.equal(r.stack.stats.arpRequests, 0, "no resolution for group addresses");
  },
});

Deno.test({
  name: "ARP holds: per neighbour at most 8 frames, the oldest dropped and counted",
  permissions: "none",
  fn() {
    const r = rig(256);
    const sock = r.stack.udpBind(9000, () => {});
    const target = parseIpv4("10.0.2.77");
    for (let i = 0; i < 12; i++) sock.sendTo(target, 9, new Uint8Array([i]));
    r.stack.poll();
    assert.equal(r.stack.arp.heldFrames, 8);
    assert.equal(r.stack.stats.arpQueueFull, 4);
    assert.equal(r.stack.stats.arpRequests, 1, "one request for the address");
    const reply = frames.arp({ op: 2, spa: target, sha: macOf(77), dstMac: HOST.mac });
    r.dev.inbox.push(reply);
    r.dev.sent.length = 0;
    r.stack.poll();
    const data = r.dev.sent.map((f) => f[42]);
    assert.deepEqual(data, [4, 5, 6, 7, 8, 9, 10, 11], "the newest eight, in order");
    assert.equal(r.dev.pool.available, r.dev.pool.capacity);
  },
});

Deno.test({
  name: "ARP holds: a global bound over all neighbours; held frames and entries expire",
  permissions: "none",
  fn() {
    const r = rig(1024);
    const bound = r.stack.arp.maxPendingFrames;
    assert.equal(bound, 64, "1/16 of a 1024-buffer pool");
    const sock = r.stack.udpBind(9000, () => {});
    for (let i = 0; i < 500; i++) sock.sendTo(parseIpv4("10.0.2.0") + 20 + (i % 200), 9, PAYLOAD);
    r.stack.poll();
    assert.equal(r.stack.arp.heldFrames, bound);
    assert.ok(r.stack.arp.unresolved <= bound);
    assert.ok(r.stack.stats.arpRequests <= bound, `${r.stack.stats.arpRequests} requests`);
    assert.equal(r.dev.pool.available, 1024 - bound);
    assert.equal(r.stack.stats.arpQueueFull, 500 - bound);
    r.now.t += 1001;
    r.stack.poll();
    assert.equal(r.stack.arp.heldFrames, 0);
    assert.equal(r.stack.arp.unresolved, 0);
    assert.equal(r.stack.stats.arpTimeout, bound);
    assert.equal(r.stack.stats.txDropped, 500);
    assert.equal(r.dev.pool.available, 1024);
    assert.equal(r.stack.arp.size, 1, "the resolved peer was never touched");
  },
});

Deno.test({
  name: "ARP holds: the bound is checked against the pool (a quarter at most)",
  permissions: "none",
  fn() {
    const dev = new LoopNetDevice(HOST.mac, 64);
    const make = (arpPendingFrames: number) =>
      new NetStack(dev, { address: "10.0.2.15/24", now: () => 0, arpPendingFrames });
    assert.throws(() => make(17), /from 1 to 16 \(a quarter of the 64-buffer pool\)/);
    assert.throws(() => make(0), RangeError);
    assert.equal(make(16).arp.maxPendingFrames, 16);
    assert.equal(
      new NetStack(dev, { address: "10.0.2.15/24", now: () => 0 }).arp.maxPendingFrames,
      4,
    );
  },
});

Deno.test({
  name: "ARP cache: a flood of requests from new senders never evicts a neighbour in use",
  permissions: "none",
  fn() {
    const r = rig(256, { arpEntries: 16 });
    assert.deepEqual(peerAnswered(r, 1), { udp: 1, ping: 1 }); // the peer's entry is now used
    for (let i = 0; i < 200; i++) {
      r.dev.inbox.push(frames.arp({ spa: parseIpv4("10.0.2.0") + 30 + i, sha: macOf(i + 1000) }));
    }
    pollAll(r);
    assert.equal(r.stack.arp.size, 16);
    assert.ok(r.stack.arp.has(PEER.ip), "the peer is still known");
    const requests = r.stack.stats.arpRequests;
    assert.deepEqual(peerAnswered(r, 3), { udp: 3, ping: 3 });
    assert.equal(r.stack.stats.arpRequests, requests, "answered without resolving again");
  },
});

Deno.test({
  name: "ARP cache: an entry past its lifetime is polled unicast while in use, then forgotten",
  permissions: "none",
  fn() {
    const r = rig();
    r.now.t = 60_500; // past the 60 s lifetime
    assert.deepEqual(peerAnswered(r, 1), { udp: 1, ping: 1 });
    const polls = r.dev.sent.filter((f) => f[12] === 0x08 && f[13] === 0x06);
    assert.equal(polls.length, 1, "one poll for the two frames");
    assert.deepEqual(polls[0].subarray(0, 6), PEER.mac, "unicast to the known MAC");
    assert.equal((polls[0][20] << 8) | polls[0][21], 1);
    r.dev.inbox.push(frames.arp({ op: 2, dstMac: HOST.mac })); // the peer answers
    pollAll(r);
    r.now.t = 60_500 + 59_000;
    r.dev.sent.length = 0;
    assert.deepEqual(peerAnswered(r, 1), { udp: 1, ping: 1 });
    assert.equal(r.dev.sent.length, 2, "confirmed: no poll needed");
    r.now.t = 60_500 + 60_000 + 3_500; // unanswered past the grace period
    r.dev.sent.length = 0;
    r.dev.inbox.push(frames.udp(5000, 7, PAYLOAD));
    pollAll(r);
    assert.equal(r.dev.sent.length, 1);
    assert.deepEqual(r.dev.sent[0].subarray(0, 6), BROADCAST, "resolved again from scratch");
  },
});

// Floods: each hostile kind, interleaved with a well-behaved peer, then the peer alone.
const SPOOFED = 150;
const floods: [string, (i: number) => Uint8Array][] = [
  [
    "echo requests from spoofed unresolvable on-link sources",
    (i) => frames.echoRequest(1, i, PING, { src: parseIpv4("10.0.2.0") + 50 + (i % SPOOFED) }),
  ],
  [
    "UDP echo datagrams from spoofed unresolvable on-link sources",
    (i) => frames.udp(6000, 7, PAYLOAD, { src: parseIpv4("10.0.2.0") + 50 + (i % SPOOFED) }),
  ],
  [
    "datagrams from sources no host may answer",
    (i) => frames.udp(6000, 7, PAYLOAD, { src: BAD_SOURCES[i % BAD_SOURCES.length][1] }),
  ],
  [
    "echo requests to the broadcast address",
    (i) =>
      frames.echoRequest(1, i, PING, {
        dst: parseIpv4("255.255.255.255"),
        dstMac: BROADCAST,
        src: parseIpv4("10.0.2.0") + 50 + (i % SPOOFED),
      }),
  ],
  [
    "ARP requests from ever-new senders",
    (i) => frames.arp({ spa: parseIpv4("10.0.2.20") + (i % 200), sha: macOf(i + 5000) }),
  ],
  ["oversize frames", () => udpOfTotal(1504)],
];

for (const [kind, hostile] of floods) {
  Deno.test({
    name: `flood of ${kind}: the service keeps answering a well-behaved peer`,
    permissions: "none",
    fn() {
      // A pool like virtio-net's default (4 × 256) and a small ARP cache, so floods churn it.
      const r = rig(1024, { arpEntries: 32 });
      let hostileSent = 0;
      for (let round = 0; round < 40; round++) {
        for (let k = 0; k < 30; k++) r.dev.inbox.push(hostile(hostileSent++));
        r.dev.inbox.push(frames.udp(5000, 7, PAYLOAD), frames.echoRequest(9, round, PING));
        const before = r.dev.sent.length;
        pollAll(r);
        const toPeer = r.dev.sent.slice(before).filter((f) =>
          f.subarray(0, 6).every((b, i) => b === PEER.mac[i])
        );
        assert.equal(toPeer.length, 2, `round ${round}: the peer's datagram and ping answered`);
        r.now.t += 25; // 1,200 hostile frames over a second
      }
      assert.ok(r.dev.pool.available >= 1024 - r.stack.arp.maxPendingFrames);
      assert.deepEqual(peerAnswered(r, 20), { udp: 20, ping: 20 }, "20 of 20 right after");
      r.now.t += 1001;
      r.stack.poll();
      assert.equal(r.dev.pool.available, 1024, "every buffer back once the holds expire");
      assert.equal(r.dev.stats().rxDropped, 0, "receive never ran out of buffers");
    },
  });
}
