import assert from "node:assert/strict";
import { IOVA_MAX, IovaAllocator, subtractRanges } from "../../core/iova_allocator.ts";
import { VfioError } from "../../core/errors.ts";

function assertEquals(actual: unknown, expected: unknown): void {
  assert.deepEqual(actual, expected);
}

/** Run `fn`, expect a VfioError whose message contains `text`, and return it. */
function assertThrows(fn: () => unknown, _type: typeof VfioError, text = ""): VfioError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof VfioError, `expected a VfioError, got ${e}`);
    assert.ok(e.message.includes(text), `"${e.message}" does not contain "${text}"`);
    return e;
  }
  throw new assert.AssertionError({ message: `expected a VfioError containing "${text}"` });
}

const KiB = 1024n;
const MiB = 1024n * KiB;
const GiB = 1024n * MiB;
const TiB = 1024n * GiB;
const PAGE = 4n * KiB;

Deno.test("IovaAllocator: lowest-first, never IOVA 0 by default, page rounding", () => {
  const a = new IovaAllocator([{ start: 0n, end: 0xffff_ffffn }]);
  assertEquals(a.allocate(1n), PAGE); // page 0 skipped, size rounded up to a page
  assertEquals(a.allocate(PAGE + 1n), 2n * PAGE);
  assertEquals(a.sizeOf(2n * PAGE), 2n * PAGE);
  assertEquals(a.allocate(PAGE), 4n * PAGE);
  assertEquals(a.blockCount, 3);
  assertEquals(a.allocatedBytes, 4n * PAGE);
});

Deno.test("IovaAllocator: allowZero hands out 0; a fixed reserve at 0 is always allowed", () => {
  const a = new IovaAllocator([{ start: 0n, end: 0xffffn }], { allowZero: true });
  assertEquals(a.allocate(PAGE), 0n);
  const b = new IovaAllocator([{ start: 0n, end: 0xffffn }]);
  assertEquals(b.reserve(0n, PAGE), 0n);
  assertEquals(b.allocate(PAGE), PAGE);
});

Deno.test("IovaAllocator: ranges with holes (x86 MSI window and reserved holes)", () => {
  const ranges = [{ start: 0n, end: 0xfedf_ffffn }, { start: 0xfef0_0000n, end: (1n << 48n) - 1n }];
  const a = new IovaAllocator(ranges, { reserved: [{ start: 0n, end: 0xfedf_ffffn - MiB }] });
  // Only the last MiB below the MSI window is left in the low range.
  assertEquals(a.ranges()[0], { start: 0xfedf_ffffn - MiB + 1n, end: 0xfedf_ffffn });
  assertEquals(a.allocate(MiB), 0xfed0_0000n);
  // The next one does not fit below the window and skips the MSI hole.
  assertEquals(a.allocate(PAGE), 0xfef0_0000n);
  assertThrows(() => a.reserve(0xfee0_0000n, PAGE), VfioError, "not inside one usable IOVA range");
});

Deno.test("IovaAllocator: tiny and unaligned ranges are trimmed to whole pages", () => {
  const a = new IovaAllocator([{ start: 0x1001n, end: 0x2ffen }, { start: 0x5000n, end: 0x5fffn }]);
  assertEquals(a.ranges(), [{ start: 0x5000n, end: 0x5fffn }]);
  assertEquals(a.allocate(1n), 0x5000n);
  const e = assertThrows(() => a.allocate(1n), VfioError);
  assert.ok(e.message.includes("IOVA space exhausted"), e.message);
  assert.ok(e.message.includes("[0x5000, 0x5fff]"), e.message);
});

Deno.test("IovaAllocator: sPAPR windows [0, 2 GiB) + [1<<59, 1<<59 + 1 TiB)", () => {
  const ddw = 1n << 59n;
  const a = new IovaAllocator(
    [{ start: 0n, end: 2n * GiB - 1n }, { start: ddw, end: ddw + TiB - 1n }],
    { minPageSize: 64n * KiB },
  );
  assertEquals(a.allocate(GiB, GiB), GiB); // aligned to 1 GiB: first slot above 0 is 1 GiB
  assertEquals(a.allocate(1n), 64n * KiB); // 64 KiB TCE pages: the size rounds up to 64 KiB
  assertEquals(a.allocate(GiB), ddw); // no 1 GiB hole left in the 32-bit window
  assertEquals(a.allocate(512n * GiB, 512n * GiB), ddw + 512n * GiB);
  assertEquals(a.reserve(ddw + GiB, PAGE * 16n), ddw + GiB);
  assertThrows(() => a.reserve(2n * GiB, 64n * KiB), VfioError, "not inside one usable");
});

Deno.test("IovaAllocator: exhaustion names the ranges and the sizes", () => {
  const a = new IovaAllocator([{ start: 0x10000n, end: 0x1ffffn }]);
  a.allocate(0x8000n);
  const e = assertThrows(() => a.allocate(0x10000n), VfioError);
  assertEquals(e.operation, "IovaAllocator");
  assert.ok(e.message.includes("IOVA space exhausted"), e.message);
  assert.ok(e.message.includes("0x10000 bytes"), e.message);
  assert.ok(e.message.includes("[0x10000, 0x1ffff]"), e.message);
  assert.ok(e.message.includes("0x8000 bytes in use in 1 blocks"), e.message);
  assert.ok(e.message.includes("largest free block 0x8000"), e.message);
});

Deno.test("IovaAllocator: fragmentation and re-use after free, merging neighbours", () => {
  const a = new IovaAllocator([{ start: PAGE, end: 9n * PAGE - 1n }]);
  const blocks = Array.from({ length: 8 }, () => a.allocate(PAGE));
  assertEquals(blocks.map(Number), [1, 2, 3, 4, 5, 6, 7, 8].map((n) => n * 4096));
  assertThrows(() => a.allocate(PAGE), VfioError, "exhausted");
  a.free(blocks[1]);
  a.free(blocks[3]);
  assertThrows(() => a.allocate(2n * PAGE), VfioError, "exhausted"); // fragmented: 2 single holes
  assertEquals(a.allocate(PAGE), blocks[1]); // lowest hole re-used first
  a.free(blocks[2]);
  assertEquals(a.freeIntervals(), [{ start: 3n * PAGE, end: 5n * PAGE - 1n }]); // merged
  assertEquals(a.allocate(2n * PAGE), blocks[2]);
  for (const b of [blocks[0], blocks[1], blocks[2], blocks[4], blocks[5], blocks[6], blocks[7]]) {
    a.free(b);
  }
  assertEquals(a.freeIntervals(), [{ start: PAGE, end: 9n * PAGE - 1n }]);
  assertEquals(a.blockCount, 0);
  assertThrows(() => a.free(blocks[0]), VfioError, "not the start of an allocated block");
});

Deno.test("IovaAllocator: 2 MiB alignment for huge mappings", () => {
  const a = new IovaAllocator([{ start: 0n, end: 0xffff_ffffn }]);
  assertEquals(a.allocate(PAGE), PAGE);
  const huge = a.allocate(4n * MiB, 2n * MiB);
  assertEquals(huge, 2n * MiB);
  assertEquals(a.allocate(PAGE), 2n * PAGE); // the hole below the huge block is still used
  assertEquals(a.allocate(2n * MiB, 2n * MiB), 6n * MiB);
  assertThrows(() => a.allocate(PAGE, 3n * PAGE), VfioError, "not a power of two");
});

Deno.test("IovaAllocator: ranges up to 2^64 - 1", () => {
  const top = IOVA_MAX - 2n * PAGE + 1n;
  const a = new IovaAllocator([{ start: top, end: IOVA_MAX }]);
  assertEquals(a.allocate(PAGE), top);
  assertEquals(a.allocate(PAGE), IOVA_MAX - PAGE + 1n);
  assertThrows(() => a.allocate(PAGE), VfioError, "exhausted");
  const full = new IovaAllocator([{ start: 0n, end: IOVA_MAX }]);
  assertEquals(full.allocate(1n << 63n, 1n << 63n), 1n << 63n);
  assertEquals(full.ranges(), [{ start: 0n, end: IOVA_MAX }]);
});

Deno.test("IovaAllocator: setRanges shrinks the ranges and keeps live blocks", () => {
  const a = new IovaAllocator([{ start: 0n, end: 0xffff_ffffn }]);
  const b = a.allocate(PAGE);
  a.setRanges([{ start: 0n, end: 0x7fffn }, { start: 0x10000n, end: 0xffff_ffffn }]);
  assertEquals(a.allocate(0x8000n - PAGE - PAGE), 2n * PAGE);
  assertEquals(a.allocate(PAGE), 0x10000n);
  a.free(b);
  assertEquals(a.allocate(PAGE), b);
});

Deno.test("IovaAllocator: reserve rules (alignment, overlap) and bad page size", () => {
  const a = new IovaAllocator([{ start: 0n, end: 0xfffffn }]);
  a.reserve(0x8000n, 0x2000n);
  assertThrows(() => a.reserve(0x9000n, PAGE), VfioError, "overlaps");
  assertThrows(() => a.reserve(0x9001n, PAGE), VfioError, "not aligned");
  assertEquals(a.allocate(0x8000n), 0xa000n); // skips the reserved block
  assertThrows(() => a.allocate(0n), VfioError, "must be positive");
  assertThrows(() => new IovaAllocator([], { minPageSize: 3000n }), VfioError, "power of two");
});

Deno.test("IovaAllocator: claim adopts unaligned blocks (after the page size grew)", () => {
  const a = new IovaAllocator([{ start: 0n, end: 0xfffffn }], { minPageSize: 0x10000n });
  a.claim(0x1000n, 0x1000n);
  assertThrows(() => a.claim(0x1800n, 0x1000n), VfioError, "overlaps");
  assertEquals(a.allocate(0x10000n), 0x10000n);
  a.free(0x1000n);
  assertEquals(a.allocate(0x10000n), 0x20000n); // page 0 is still skipped
  assertEquals(a.blockCount, 2);
});

Deno.test("subtractRanges: merges and cuts inclusive ranges", () => {
  assertEquals(
    subtractRanges([{ start: 10n, end: 19n }, { start: 0n, end: 9n }], [{ start: 5n, end: 12n }]),
    [{ start: 0n, end: 4n }, { start: 13n, end: 19n }],
  );
});

Deno.test("IovaAllocator: a DMA limit keeps the whole block at or below it, or says why not", () => {
  // Usable: [64 KiB, 256 KiB) and [1 MiB, 4 GiB); a 28-bit-style limit at 2 MiB - 1.
  const a = new IovaAllocator([{ start: 64n * KiB, end: 256n * KiB - 1n }, {
    start: MiB,
    end: 4n * GiB - 1n,
  }]);
  const limit = 2n * MiB - 1n;
  assertEquals(a.allocate(128n * KiB, PAGE, limit), 64n * KiB);
  assertEquals(a.allocate(MiB, PAGE, limit), MiB); // the first range has 64 KiB left
  assertThrows(() => a.allocate(MiB, PAGE, limit), VfioError, "below the DMA limit 0x1fffff");
  assertEquals(a.allocate(MiB), 2n * MiB); // no limit: above it
});
