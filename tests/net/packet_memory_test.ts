/**
 * The word-wide checksum and copies of net/packet_memory.ts against a byte-at-a-time reference
 * (RFC 1071), at every alignment and length the stack can meet, and the checksum helpers built
 * on them.
 */
import assert from "node:assert/strict";
import { copyBetween, copyBytes, PacketMemory } from "../../net/packet_memory.ts";
import { finishChecksum, internetChecksum, sumWords, updateChecksum } from "../../net/checksum.ts";
import { checksum as referenceChecksum } from "../../testing/net_frames.ts";

/** Seeded bytes (xorshift32), so every run checks the same data. */
function bytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed | 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

Deno.test({
  name: "packet memory: the word-wide sum equals RFC 1071's at every alignment and length",
  permissions: "none",
  fn() {
    const mem = new PacketMemory(bytes(4096, 7).buffer);
    for (let at = 0; at < 12; at++) {
      for (let len = 0; len <= 200; len++) {
        const got = finishChecksum(mem.sum(at, len));
        const want = referenceChecksum(mem.bytes, at, len);
        if (got !== want) assert.fail(`at ${at} length ${len}: ${got} != ${want}`);
      }
    }
    const all = new PacketMemory(new Uint8Array(65536).fill(0xff).buffer);
    assert.equal(finishChecksum(all.sum(2, 65534)), 0, "a full-size range of 0xffff words");
  },
});

Deno.test({
  name: "packet memory: copySum copies exactly the range and returns its sum",
  permissions: "none",
  fn() {
    const src = new PacketMemory(bytes(2048, 99).buffer);
    for (const [dst, from] of [[64, 64], [66, 98], [65, 97], [64, 66], [70, 3]]) {
      for (let len = 0; len <= 130; len++) {
        const mem = new PacketMemory(new Uint8Array(2048).fill(0xee).buffer);
        const sum = mem.copySum(dst, src, from, len);
        assert.deepEqual(mem.bytes.subarray(dst, dst + len), src.bytes.subarray(from, from + len));
        assert.equal(mem.bytes[dst - 1], 0xee, "nothing before the range");
        assert.equal(mem.bytes[dst + len], 0xee, "nothing after the range");
        assert.equal(finishChecksum(sum), referenceChecksum(mem.bytes, dst, len), `${dst}/${len}`);
      }
    }
  },
});

Deno.test({
  name: "packet memory: copies within one buffer and between arrays of different buffers",
  permissions: "none",
  fn() {
    const mem = new PacketMemory(bytes(1024, 3).buffer);
    const before = mem.bytes.slice();
    copyBetween(mem, 600, mem, 100, 300);
    assert.deepEqual(mem.bytes.subarray(600, 900), before.subarray(100, 400));
    const a = bytes(100, 5);
    const b = new Uint8Array(new ArrayBuffer(256), 8, 200);
    copyBytes(b, 3, a.subarray(10), 7, 50);
    assert.deepEqual(b.subarray(3, 53), a.subarray(17, 67));
    assert.equal(b[2], 0);
    assert.equal(b[53], 0);
  },
});

Deno.test({
  name: "checksum helpers: sums of subarrays stay inside them; RFC 1624 updates match a new sum",
  permissions: "none",
  fn() {
    const big = bytes(300, 11);
    const view = big.subarray(33, 133); // odd start inside the buffer
    assert.equal(internetChecksum(view, 0, 100), referenceChecksum(big, 33, 100));
    assert.equal(sumWords(view, 90, 50), sumWords(view, 90, 10), "clipped to the array");
    const msg = bytes(64, 13);
    msg[0] = 8; // echo request, code 0
    msg[1] = 0;
    msg[2] = msg[3] = 0;
    const c = internetChecksum(msg, 0, 64);
    msg[2] = c >>> 8;
    msg[3] = c & 0xff;
    msg[0] = 0;
    const updated = updateChecksum(c, 0x0800, 0x0000);
    msg[2] = msg[3] = 0;
    assert.equal(updated, internetChecksum(msg, 0, 64));
  },
});
