/**
 * The virtual clock's heap against the sorted list it replaced, and the wire's slots: order,
 * growth past the initial slots, copies for taps and for ports without `receiveFrom`.
 */

import assert from "node:assert/strict";
import { VirtualClock } from "../../sim/clock.ts";
import { EthernetSegment, MAX_SEGMENT_FRAME } from "../../sim/net/segment.ts";
import { byteViews, copyBytes } from "../../sim/bytes.ts";
import { Rng } from "../helpers/rng.ts";

/** The clock's old queue: a list kept sorted by time, insertion after equal times. */
class SortedListClock {
  now = 0;
  #events: { at: number; run: () => void; cancelled: boolean }[] = [];
  schedule(delay: number, run: () => void) {
    const e = { at: this.now + Math.max(0, delay), run, cancelled: false };
    const i = this.#events.findIndex((x) => x.at > e.at);
    if (i < 0) this.#events.push(e);
    else this.#events.splice(i, 0, e);
    return { cancel: () => void (e.cancelled = true) };
  }
  runUntil(t: number) {
    for (;;) {
      while (this.#events.length > 0 && this.#events[0].cancelled) this.#events.shift();
      const next = this.#events[0];
      if (next === undefined || next.at > t) break;
      this.#events.shift();
      this.now = Math.max(this.now, next.at);
      next.run();
    }
    this.now = Math.max(this.now, t);
  }
}

Deno.test({
  name: "clock: the heap runs events in the sorted list's order, posted calls included",
  permissions: "none",
  fn() {
    const rng = new Rng(7);
    const heap = new VirtualClock();
    const list = new SortedListClock();
    const ran: { heap: string[]; list: string[] } = { heap: [], list: [] };
    const target = { onClock: (arg: number) => void ran.heap.push(`p${arg}`) };
    const handles: { heap: { cancel(): void }; list: { cancel(): void } }[] = [];
    let id = 0;
    for (let step = 0; step < 20_000; step++) {
      const r = rng.int(0, 10);
      const delay = rng.pick([0, 0, 5, 100, rng.int(0, 1000)]);
      if (r < 4) {
        const n = id++;
        // Events that schedule more at their own time (delay 0) keep the order too.
        const nested = rng.chance(0.1);
        handles.push({
          heap: heap.schedule(delay, () => {
            ran.heap.push(`e${n}`);
            if (nested) heap.schedule(0, () => void ran.heap.push(`n${n}`));
          }),
          list: list.schedule(delay, () => {
            ran.list.push(`e${n}`);
            if (nested) list.schedule(0, () => void ran.list.push(`n${n}`));
          }),
        });
      } else if (r < 7) {
        const n = id++;
        heap.post(delay, target, n);
        list.schedule(delay, () => void ran.list.push(`p${n}`));
      } else if (r < 8 && handles.length > 0) {
        const h = rng.pick(handles);
        h.heap.cancel();
        h.list.cancel();
      } else {
        const dt = rng.int(0, 300);
        heap.advance(dt);
        list.runUntil(list.now + dt);
        assert.equal(heap.nowNs, list.now);
      }
    }
    heap.advance(1e9);
    list.runUntil(list.now + 1e9);
    assert.deepEqual(ran.heap, ran.list);
    assert.ok(ran.heap.length > 5000);
    assert.equal(heap.nextEventNs(), undefined);
  },
});

Deno.test({
  name: "wire: frames arrive in order past the initial slots; taps and plain ports keep copies",
  permissions: "none",
  fn() {
    const clock = new VirtualClock();
    const seg = new EthernetSegment(clock, 1000);
    const viaSlots: number[][] = [];
    const plain: Uint8Array[] = [];
    const tapped: Uint8Array[] = [];
    seg.attach({
      name: "fast",
      receive() {
        throw new Error("receiveFrom is preferred");
      },
      receiveFrom(buf, offset, length) {
        viaSlots.push([...buf.subarray(offset, offset + length)]);
      },
    });
    seg.attach({ name: "plain", receive: (f) => void plain.push(f) });
    seg.tap((_t, f) => void tapped.push(f));
    const sender = seg.attach({ name: "sender", receive() {} });
    const frame = (i: number) =>
      Uint8Array.from({ length: 60 + (i % 7) }, (_, j) => (i + j) & 0xff);
    // 100 frames in flight at once: more than the wire's first slots.
    const buf = new Uint8Array(2048);
    for (let i = 0; i < 100; i++) {
      const f = frame(i);
      if (i % 2 === 0) sender.send(f);
      else {
        buf.set(f, 100);
        sender.sendFrom(buf, 100, f.length);
        buf.fill(0xee); // the wire copied it before returning
      }
    }
    sender.send(new Uint8Array(MAX_SEGMENT_FRAME + 1));
    sender.send(new Uint8Array(0));
    assert.equal(seg.dropped, 2);
    clock.advance(999);
    assert.equal(viaSlots.length, 0, "one latency later, not before");
    clock.advance(1);
    assert.equal(viaSlots.length, 100);
    for (let i = 0; i < 100; i++) {
      assert.deepEqual(viaSlots[i], [...frame(i)]);
      assert.deepEqual([...plain[i]], [...frame(i)], "plain ports keep intact copies");
      assert.deepEqual([...tapped[i]], [...frame(i)], "taps keep intact copies");
    }
    assert.equal(seg.frames, 100);
  },
});

Deno.test({
  name: "bytes: word and DataView copies agree with a byte loop at every alignment",
  permissions: "none",
  fn() {
    const rng = new Rng(3);
    const backing = new Uint8Array(new SharedArrayBuffer(4096));
    const a = byteViews(backing.subarray(0));
    const b = byteViews(new Uint8Array(4096));
    const odd = byteViews(new Uint8Array(new ArrayBuffer(4097), 1)); // no word view
    assert.equal(odd.words, undefined);
    for (let k = 0; k < 2000; k++) {
      const [src, dst] = rng.pick([[a, b], [b, a], [a, odd], [odd, b]]);
      for (let i = 0; i < src.bytes.length; i++) src.bytes[i] = rng.int(0, 256);
      const len = rng.int(0, 600);
      const so = rng.int(0, src.bytes.length - len);
      const d0 = rng.int(0, dst.bytes.length - len);
      const want = dst.bytes.slice();
      for (let i = 0; i < len; i++) want[d0 + i] = src.bytes[so + i];
      copyBytes(src, so, dst, d0, len);
      assert.deepEqual(dst.bytes, want);
    }
  },
});
