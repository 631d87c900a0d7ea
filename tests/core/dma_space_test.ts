/**
 * DmaSpace over an in-memory DmaBackend: allocation policy (ranges, page size, huge pages,
 * fixed IOVAs, 32-bit halves), caller memory, following ranges as devices attach, and that no
 * error path leaks memory, IOVA space or mappings.
 */

import assert from "node:assert/strict";
import type { AnonymousMapOptions, MappedMemory } from "../../ffi/kernel.ts";
import type {
  DeviceTarget,
  DmaBackend,
  DmaProtection,
  Iova,
  IovaRange,
} from "../../core/dma_backend.ts";
import { DmaSpace, HUGE_PAGE_SIZE } from "../../core/dma_space.ts";
import { VfioError } from "../../core/errors.ts";
import { createMachine } from "../../sim/machine.ts";
import { RecordingKernel } from "../helpers/recording_kernel.ts";
import { expectVfioError } from "./vfio_test_helpers.ts";

const PAGE = 4096;
const MiB = 1024 * 1024;

/** A backend that keeps its mappings in a Map and can be told to fail. */
class FakeBackend implements DmaBackend {
  readonly kind = "iommufd" as const;
  readonly maps: Map<bigint, { vaddr: bigint; size: bigint; prot: DmaProtection }> = new Map();
  readonly log: string[] = [];
  ranges: IovaRange[] = [{ start: 0n, end: 0xffff_ffffn }];
  page = BigInt(PAGE);
  failMap: Error | undefined;
  failUnmap: Error | undefined;
  closed = false;
  #nextFd = 50;

  iovaRanges(): IovaRange[] {
    return this.ranges;
  }
  minPageSize(): bigint {
    return this.page;
  }
  mappingsAvailable(): number | undefined {
    return undefined;
  }
  map(vaddr: bigint, iova: Iova, size: bigint, prot: DmaProtection): void {
    this.log.push(`map ${iova.toString(16)} ${size.toString(16)}`);
    if (this.failMap) throw this.failMap;
    this.maps.set(iova, { vaddr, size, prot });
  }
  unmap(iova: Iova, size: bigint): void {
    this.log.push(`unmap ${iova.toString(16)} ${size.toString(16)}`);
    if (this.failUnmap) throw this.failUnmap;
    assert.equal(this.maps.get(iova)?.size, size);
    this.maps.delete(iova);
  }
  openDevice(_target: DeviceTarget): number {
    // Attaching cuts an MSI-like hole out of the ranges (a new array, as real backends do).
    this.ranges = [{ start: 0n, end: 0xfedf_ffffn }, { start: 0xfef0_0000n, end: 0xffff_ffffn }];
    return this.#nextFd++;
  }
  closeDevice(_fd: number): void {}
  close(): void {
    this.log.push("close");
    this.closed = true;
  }
}

/** Records the options of every anonymous mapping. */
class AdviceKernel extends RecordingKernel {
  readonly advice: (AnonymousMapOptions | undefined)[] = [];
  override mmapAnonymous(length: number, options?: AnonymousMapOptions): MappedMemory | number {
    this.advice.push(options);
    return super.mmapAnonymous(length);
  }
}

function setup(): { k: AdviceKernel; backend: FakeBackend; space: DmaSpace } {
  const k = new AdviceKernel();
  const backend = new FakeBackend();
  return { k, backend, space: new DmaSpace(k, backend) };
}

Deno.test("DmaSpace: allocate maps zeroed memory lowest-first, page-rounded, read/write", () => {
  const { k, backend, space } = setup();
  const a = space.allocate(100);
  const b = space.allocate(PAGE + 1, { read: true, write: false });
  assert.equal(a.iova, 0x1000n);
  assert.equal(a.size, PAGE);
  assert.equal(a.bytes.length, PAGE);
  assert.ok(a.bytes.every((x) => x === 0));
  assert.equal(b.iova, 0x2000n);
  assert.equal(b.size, 2 * PAGE);
  assert.deepEqual(backend.maps.get(0x2000n)?.prot, { read: true, write: false });
  assert.deepEqual(backend.maps.get(0x1000n)?.prot, { read: true, write: true });
  assert.equal(backend.maps.get(0x1000n)?.vaddr, a.vaddr);
  assert.deepEqual(k.advice, [{ hugePages: false }, { hugePages: false }]);
  assert.deepEqual(space.buffers(), [a, b]);
  space.close();
});

Deno.test("DmaSpace: IOVAs above 4 GiB are split into 32-bit halves", () => {
  const { backend, space } = setup();
  backend.ranges = [{ start: 0n, end: (1n << 48n) - 1n }];
  const buffer = space.allocate(PAGE, { iova: 0x1234_5678_9000n });
  assert.equal(buffer.iova, 0x1234_5678_9000n);
  assert.equal(buffer.iovaLow, 0x5678_9000);
  assert.equal(buffer.iovaHigh, 0x1234);
  assert.equal(buffer.iovaHigh * 2 ** 32 + buffer.iovaLow, Number(buffer.iova));
  space.close();
});

Deno.test("DmaSpace: huge pages are advised from 2 MiB up and get 2 MiB-aligned IOVAs", () => {
  const { k, space } = setup();
  space.allocate(PAGE);
  const huge = space.allocate(2 * MiB);
  assert.equal(huge.iova, BigInt(HUGE_PAGE_SIZE));
  const forced = space.allocate(PAGE, { hugePages: true });
  assert.equal(forced.iova, 2n * BigInt(HUGE_PAGE_SIZE));
  const small = space.allocate(PAGE);
  assert.equal(small.iova, 0x2000n); // the hole below the huge mappings is still used
  assert.deepEqual(k.advice.map((a) => a?.hugePages), [false, true, true, false]);
  space.close();
});

Deno.test("DmaSpace: ranges follow the backend after a device attaches", () => {
  const { backend, space } = setup();
  assert.deepEqual(space.ranges(), [{ start: 0n, end: 0xffff_ffffn }]);
  const before = space.allocate(PAGE, { iova: 0xfee0_0000n }); // legal before the attach
  space.free(before);
  space.backend.openDevice({ bdf: "0000:00:02.0", group: 1 });
  assert.deepEqual(space.ranges(), backend.ranges);
  expectVfioError(() => space.allocate(PAGE, { iova: 0xfee0_0000n }), "not inside one usable");
  space.close();
});

Deno.test("DmaSpace: a larger IOMMU page size rebuilds the allocator, keeping live buffers", () => {
  const { backend, space } = setup();
  const a = space.allocate(PAGE);
  backend.page = 0x1_0000n;
  assert.equal(space.pageSize(), 0x1_0000n);
  const b = space.allocate(PAGE);
  assert.equal(b.size, 0x1_0000);
  assert.equal(b.iova, 0x1_0000n);
  space.free(a);
  space.free(b);
  space.close();
});

Deno.test("DmaSpace: a failing map munmaps the memory and releases the IOVA", () => {
  const { k, backend, space } = setup();
  backend.failMap = new VfioError({ operation: "VFIO_IOMMU_MAP_DMA", errno: 28, message: "x" });
  assert.throws(() => space.allocate(PAGE), VfioError);
  assert.equal(k.mappings.size, 0);
  assert.deepEqual(k.callsOf("munmap").length, 1);
  assert.deepEqual(space.buffers(), []);
  backend.failMap = undefined;
  assert.equal(space.allocate(PAGE).iova, 0x1000n); // the same IOVA is free again
  space.close();
});

Deno.test("DmaSpace: map() maps caller memory; free leaves the memory to the caller", () => {
  const { k, backend, space } = setup();
  const mem = k.mmapAnonymous(4 * PAGE) as MappedMemory;
  const buffer = space.map(mem, { offset: PAGE, length: 2 * PAGE, write: false });
  assert.equal(buffer.vaddr, mem.address + BigInt(PAGE));
  assert.equal(buffer.size, 2 * PAGE);
  buffer.bytes[0] = 0xab;
  assert.equal(mem.bytes[PAGE], 0xab);
  assert.deepEqual(backend.maps.get(buffer.iova)?.prot, { read: true, write: false });
  expectVfioError(() => space.map(mem, { offset: 100 }), "multiples of the IOMMU page size");
  space.free(buffer);
  assert.ok(k.mappings.has(mem)); // still the caller's
  expectVfioError(() => space.free(buffer), "freed twice");
  space.close();
  assert.ok(k.mappings.has(mem));
});

Deno.test("DmaSpace: close unmaps everything, frees its memory, then closes the backend", () => {
  const { k, backend, space } = setup();
  const caller = k.mmapAnonymous(PAGE) as MappedMemory;
  space.allocate(PAGE);
  space.map(caller);
  space.allocate(3 * PAGE);
  {
    using _ = space;
  }
  assert.deepEqual(backend.log.slice(-4), [
    "unmap 3000 3000",
    "unmap 2000 1000",
    "unmap 1000 1000",
    "close",
  ]);
  assert.equal(backend.maps.size, 0);
  assert.deepEqual([...k.mappings], [caller]);
  expectVfioError(() => space.allocate(PAGE), "the space is closed");
  space.close(); // idempotent
});

Deno.test("DmaSpace: close keeps going past a failing unmap and reports it", () => {
  const { k, backend, space } = setup();
  space.allocate(PAGE);
  space.allocate(PAGE);
  backend.failUnmap = new VfioError({ operation: "VFIO_IOMMU_UNMAP_DMA", errno: 22, message: "x" });
  assert.throws(() => space.close(), VfioError);
  assert.ok(backend.closed);
  assert.equal(k.mappings.size, 0);
});

Deno.test("DmaSpace: exhaustion and bad sizes are VfioErrors", () => {
  const { backend, space } = setup();
  backend.ranges = [{ start: 0x1000n, end: 0x2fffn }];
  space.allocate(2 * PAGE);
  expectVfioError(() => space.allocate(PAGE), "IOVA space exhausted", "[0x1000, 0x2fff]");
  expectVfioError(() => space.allocate(0), "must be a positive integer");
  expectVfioError(() => space.allocate(1.5), "must be a positive integer");
  space.close();
});

Deno.test("DmaSpace: reserved ranges and IOVA 0", () => {
  const k = new RecordingKernel();
  const backend = new FakeBackend();
  const space = new DmaSpace(k, backend, {
    reserved: [{ start: 0n, end: 0xf_ffffn }],
  });
  assert.equal(space.allocate(PAGE).iova, 0x10_0000n);
  space.close();
  const zero = new DmaSpace(k, new FakeBackend(), { allowZeroIova: true });
  assert.equal(zero.allocate(PAGE).iova, 0n);
  zero.close();
});

for (const kind of ["type1", "iommufd"] as const) {
  Deno.test(`DmaSpace on the simulated machine (${kind}): two devices share one space`, () => {
    const m = createMachine({ iommu: "vtd", devices: [{ model: "edu" }, { model: "edu" }] });
    const space = DmaSpace.open(m.kernel, kind);
    const targets = [
      { bdf: "0000:00:02.0", group: 2, cdev: "/dev/vfio/devices/vfio0" },
      { bdf: "0000:00:03.0", group: 3, cdev: "/dev/vfio/devices/vfio1" },
    ];
    const fds = targets.map((t) => space.backend.openDevice(t));
    assert.equal(new Set(fds).size, 2);
    // VT-d: the MSI window is cut out of a 48-bit aperture (iommu-models.md §0, §1).
    assert.deepEqual(space.ranges(), [
      { start: 0n, end: 0xfedf_ffffn },
      { start: 0xfef0_0000n, end: (1n << 48n) - 1n },
    ]);
    const ring = space.allocate(PAGE);
    const huge = space.allocate(4 * MiB);
    assert.equal(ring.iova, 0x1000n);
    assert.equal(huge.iova, BigInt(HUGE_PAGE_SIZE));
    expectVfioError(() => space.allocate(PAGE, { iova: 0xfee0_0000n }), "not inside one usable");
    space.free(ring);
    space.backend.closeDevice(fds[0]);
    space.close();
  });
}
