/**
 * The ARP cache on its own: its hash index and held-frame lists against a model under seeded
 * random sequences, its bounds, which entry it evicts, and the ageing of resolved entries.
 */
import assert from "node:assert/strict";
import {
  ARP_ENTRY_LIFETIME_MS,
  ARP_PENDING_TIMEOUT_MS,
  ARP_STALE_GRACE_MS,
  ArpCache,
  ArpHold,
} from "../../net/arp.ts";
import type { PacketBuffer } from "../../drivers/packet_pool.ts";
import { macOf } from "../../testing/net_frames.ts";

let frames = 0;
function frame(): PacketBuffer {
  return { index: frames++, data: new Uint8Array(0), iova: 0, head: new Uint8Array(0), length: 0 };
}

/** Seeded xorshift32 in [0, n). */
function rng(seed: number): (n: number) => number {
  let x = seed | 1;
  return (n) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
}

/**
 * Random learn / hold / take / expire / clock steps over `addresses` distinct addresses. Every
 * frame must be held, taken, or freed exactly once; a MAC found must be the last one learned; and
 * a learned address must be found until it ages out, unless more addresses were learned than the
 * table holds (then it may have been evicted).
 */
function randomRun(
  seed: number,
  addresses: number,
  entries: number,
  pendingFrames: number,
  steps: number,
): void {
  const rand = rng(seed);
  const live = new Set<PacketBuffer>();
  const cache = new ArpCache({
    free(f) {
      assert.ok(live.delete(f), "a frame freed that was not held");
    },
    entries,
    pendingFrames,
    pendingPerNeighbour: 3,
  });
  const learned = new Map<number, { mac: number; at: number }>();
  let now = 0;
  for (let step = 0; step < steps; step++) {
    // Addresses with the top bit set (negative as int32) and a spread that collides in the index.
    const ip = (0xc0a80000 + rand(addresses) * 0x10003) >>> 0;
    const op = rand(10);
    if (op < 3) {
      const slot = cache.learn(ip, macOf(step), 0, now);
      for (let f = cache.takeHeld(slot); f !== undefined; f = cache.takeHeld(slot)) {
        assert.ok(live.delete(f), "a frame released that was not held");
      }
      learned.set(ip, { mac: step, at: now });
    } else if (op < 8) {
      if (cache.resolve(ip, now) >= 0) continue;
      const f = frame();
      const r = cache.hold(ip, f, now);
      if (r !== ArpHold.REFUSED) live.add(f);
      if (r === ArpHold.REFUSED) {
        assert.equal(cache.heldFrames, pendingFrames, "refused only when full");
      }
    } else if (op === 8) cache.expire(now);
    else now += rand(8) === 0 ? 20_000 : rand(400); // entries age out now and then
    assert.equal(cache.heldFrames, live.size, `held frames at step ${step}`);
    assert.ok(cache.size <= entries && cache.unresolved <= pendingFrames, `bounds, step ${step}`);
    // More addresses learned than entries: a missing one may have been evicted (forget it).
    const evictions = learned.size > entries;
    for (const [k, e] of learned) {
      const got = cache.lookup(k, now);
      if (got !== undefined) assert.deepEqual(got, macOf(e.mac), `MAC of ${k} at step ${step}`);
      else if (evictions || now > e.at + ARP_ENTRY_LIFETIME_MS + ARP_STALE_GRACE_MS) {
        learned.delete(k);
      } else assert.fail(`${k} lost at step ${step}`);
    }
  }
}

Deno.test({
  name: "ARP cache: random steps over few addresses in a small index lose nothing, free once",
  permissions: "none",
  fn() {
    // 8 + 4 slots give a 32-cell index: six addresses collide in it often, and unresolved
    // entries come and go, so deletions run through probe chains.
    for (let seed = 1; seed <= 40; seed++) randomRun(seed * 0x2545f491, 6, 8, 4, 2_000);
  },
});

Deno.test({
  name: "ARP cache: random steps over 200 addresses stay in bounds with the right MACs",
  permissions: "none",
  fn() {
    randomRun(0x6a09e667, 200, 24, 12, 10_000);
  },
});

Deno.test({
  name: "ARP cache: a full table evicts the oldest entry never used, then the least recently used",
  permissions: "none",
  fn() {
    const cache = new ArpCache({ free() {}, entries: 4, pendingFrames: 4 });
    for (let i = 1; i <= 4; i++) cache.learn(i, macOf(i), 0, i);
    cache.resolve(1, 10); // 1 and 3 are used, 2 and 4 only learned
    cache.resolve(3, 11);
    cache.learn(5, macOf(5), 0, 12);
    assert.deepEqual([1, 2, 3, 4, 5].map((ip) => cache.has(ip)), [true, false, true, true, true]);
    cache.learn(6, macOf(6), 0, 13);
    assert.equal(cache.has(4), false, "then the other idle one");
    cache.learn(7, macOf(7), 0, 14);
    assert.equal(cache.has(5), false, "then 5, never used");
    cache.resolve(6, 20);
    cache.resolve(7, 21);
    cache.learn(8, macOf(8), 0, 22);
    assert.equal(cache.has(1), false, "all used now: the least recently used goes");
    assert.equal(cache.size, 4);
  },
});

Deno.test({
  name:
    "ARP cache: unresolved entries never evict resolved ones and are refused when the budget is spent",
  permissions: "none",
  fn() {
    const freed: PacketBuffer[] = [];
    const cache = new ArpCache({ free: (f) => freed.push(f), entries: 2, pendingFrames: 3 });
    cache.learn(1, macOf(1), 0, 0);
    cache.learn(2, macOf(2), 0, 0);
    assert.equal(cache.hold(10, frame(), 0), ArpHold.NEW);
    assert.equal(cache.hold(11, frame(), 0), ArpHold.NEW);
    assert.equal(cache.hold(11, frame(), 0), ArpHold.QUEUED);
    assert.equal(cache.hold(12, frame(), 0), ArpHold.REFUSED, "the budget of 3 is spent");
    assert.equal(cache.hold(10, frame(), 0), ArpHold.REPLACED, "a waiting address keeps its turn");
    assert.equal(freed.length, 1);
    assert.ok(cache.has(1) && cache.has(2), "both resolved entries stay");
    assert.equal(cache.unresolved, 2);
    assert.equal(cache.expire(ARP_PENDING_TIMEOUT_MS), 0, "not before the timeout");
    assert.equal(cache.expire(ARP_PENDING_TIMEOUT_MS + 1), 3);
    assert.equal(cache.unresolved, 0);
    assert.equal(cache.heldFrames, 0);
    assert.equal(cache.size, 2);
  },
});

Deno.test({
  name: "ARP cache: resolved entries age into a unicast-poll grace period, then go",
  permissions: "none",
  fn() {
    const cache = new ArpCache({ free() {}, entries: 4, pendingFrames: 4 });
    const slot = cache.learn(7, macOf(7), 0, 0);
    assert.equal(cache.pollDue(slot, ARP_ENTRY_LIFETIME_MS), false, "fresh");
    const stale = ARP_ENTRY_LIFETIME_MS + 1;
    assert.equal(cache.resolve(7, stale), slot, "still usable");
    assert.equal(cache.pollDue(slot, stale), true);
    assert.equal(cache.pollDue(slot, stale + 999), false, "one poll per timeout");
    assert.equal(cache.pollDue(slot, stale + 1000), true);
    assert.equal(cache.resolve(7, ARP_ENTRY_LIFETIME_MS + ARP_STALE_GRACE_MS + 1), -1);
    assert.equal(cache.has(7), false);
  },
});

Deno.test({
  name: "ARP cache: bounds must be positive integers",
  permissions: "none",
  fn() {
    assert.throws(() => new ArpCache({ free() {}, entries: 0 }), RangeError);
    assert.throws(() => new ArpCache({ free() {}, pendingFrames: 1.5 }), RangeError);
    assert.throws(
      () => new ArpCache({ free() {}, pendingFrames: 4, pendingPerNeighbour: 5 }),
      /pendingPerNeighbour 5 must be an integer from 1 to pendingFrames \(4\)/,
    );
  },
});
