/**
 * Issue 14 item 3: answering a UDP datagram and an ICMP echo through net/ allocates nothing per
 * packet and uses no BigInt.
 *
 * How allocation is measured: V8 allocates by bumping a pointer in the young generation, so
 * `Deno.memoryUsage().heapUsed` grows by the bytes allocated until a scavenge empties the young
 * generation, and a scavenge runs only when allocation fills it (the test is synchronous: no
 * timer, no other task runs). So with no garbage made heapUsed stays flat, while one object of
 * even 16 bytes per packet moves it by at least 160 KB in a window of 10,000 packets — up, or far
 * down when a scavenge falls in the window. After a warm-up that lets the JIT settle, each of ten
 * windows must move heapUsed by less than 16 KiB, except two: the optimizing compiler may still
 * install code, which lives on the heap too (a few KB). A control run with one small allocation
 * per packet, through the same measurement, proves the method sees it on this V8.
 */
import assert from "node:assert/strict";
import { NetStack } from "../../net/stack.ts";
import { parseIpv4 } from "../../net/ipv4.ts";
import { parseMac } from "../../net/ethernet.ts";
import { LoopNetDevice } from "../../testing/loop_net_device.ts";
import { FrameBuilder } from "../../testing/net_frames.ts";

const HOST = { mac: parseMac("52:54:00:12:34:56"), ip: parseIpv4("10.0.2.15") };
const PEER = { mac: parseMac("02:00:00:00:00:01"), ip: parseIpv4("10.0.2.2") };
const WINDOW = 10_000;
const WINDOWS = 10;
const FLAT = 16 * 1024;

let sink: unknown;

/** heapUsed growth per window of UDP + ICMP echoes; `allocate` adds one object per datagram. */
function heapGrowth(allocate: boolean): { growth: number[]; answered: number } {
  const frames = new FrameBuilder(HOST, PEER);
  const dev = new LoopNetDevice(HOST.mac, 256);
  const stack = new NetStack(dev, { address: "10.0.2.15/24", now: () => 0 });
  const echo = stack.udpBind(7, (d, off, len, ip, port) => {
    if (allocate) sink = { len };
    echo.sendTo(ip, port, d, off, len);
  });
  dev.inbox.push(frames.arp());
  stack.poll();
  dev.capture = false;
  const traffic = [
    frames.udp(5000, 7, new TextEncoder().encode("no garbage per packet, please.")),
    frames.echoRequest(1, 1, new Uint8Array(56).fill(0x5a)),
  ];
  const run = (n: number): void => {
    dev.replay(traffic, n);
    while (dev.pending > 0) stack.poll();
  };
  run(200_000); // warm-up: interpreter → baseline → optimized code
  const growth: number[] = [];
  for (let w = 0; w < WINDOWS; w++) {
    const before = Deno.memoryUsage().heapUsed;
    run(WINDOW);
    growth.push(Deno.memoryUsage().heapUsed - before);
  }
  return { growth, answered: stack.stats.udpDelivered + stack.stats.echoReplies };
}

function flatWindows(growth: number[]): number {
  return growth.filter((g) => Math.abs(g) < FLAT).length;
}

Deno.test({
  name: "no garbage: 100,000 UDP and ICMP echoes through net/ leave the heap flat",
  permissions: "none",
  fn() {
    const { growth, answered } = heapGrowth(false);
    assert.equal(answered, 200_000 + WINDOWS * WINDOW, "every packet was answered");
    assert.ok(flatWindows(growth) >= WINDOWS - 2, `heapUsed growth per window: ${growth}`);
  },
});

Deno.test({
  name: "no garbage: the measurement sees one small object per datagram (control)",
  permissions: "none",
  fn() {
    const { growth } = heapGrowth(true);
    assert.ok(flatWindows(growth) <= 2, `heapUsed growth per window: ${growth}`);
    assert.ok(sink !== undefined);
  },
});

Deno.test({
  name: "no BigInt in net/: addresses and sums are Numbers",
  permissions: { read: true },
  async fn() {
    const dir = new URL("../../net/", import.meta.url);
    let files = 0;
    for await (const entry of Deno.readDir(dir)) {
      if (!entry.name.endsWith(".ts")) continue;
      files++;
      const code = (await Deno.readTextFile(new URL(entry.name, dir)))
        .replace(/\/\*[\s\S]*?\*\//g, "")
        .replace(/\/\/.*$/gm, "");
      assert.doesNotMatch(code, /\bBigInt\b|\bbigint\b|\b\d+n\b|0x[0-9a-f]+n\b/i, entry.name);
    }
    assert.ok(files >= 8, `${files} files checked`);
  },
});
