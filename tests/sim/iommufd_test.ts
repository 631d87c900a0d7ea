/**
 * The simulated iommufd against shared/reference/iommufd.md: dispatch rules (§2), object IDs and
 * DESTROY (§2, §6), IOAS commands row by row (§7), devices, HWPTs, hw info, dirty tracking,
 * invalidation and fault queues (§8), and the teardown on close.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ioctlEncode } from "../../ffi/ioctl.ts";
import { decode, encode } from "../../ffi/uapi/layout.ts";
import { userLockedPages } from "../../sim/iommufd/mod.ts";
import * as u from "../../ffi/uapi/mod.ts";
import { err, PAGE, U64_MAX, type World, world } from "./iommufd_fixture.ts";

const RW = u.IOMMU_IOAS_MAP_READABLE | u.IOMMU_IOAS_MAP_WRITEABLE;
const FIXED_RW = u.IOMMU_IOAS_MAP_FIXED_IOVA | RW;
const MSI = 0xfee00000n;
/** VT-d ECAP of QEMU with scalable mode (SMTS), nesting (NEST) and second-stage A/D (SLADS). */
const NEST_ECAP = 0xf00f4an | (1n << 26n) | (1n << 43n) | (1n << 45n);

function ioasAlloc(w: World): number {
  const r = w.call(u.IOMMU_IOAS_ALLOC, u.iommu_ioas_alloc, { size: 12 });
  assert.equal(r.rc, 0);
  return r.out.out_ioas_id;
}

function bind(w: World, i = 0): number {
  const id = w.ctx.bindDevice(w.fns[i], w.process);
  assert.ok(id > 0, `bind: ${w.name(id)}`);
  return id;
}

function map(
  w: World,
  v: Partial<ReturnType<typeof decode<typeof u.iommu_ioas_map.fields>>>,
): { rc: number; iova: bigint } {
  const r = w.call(u.IOMMU_IOAS_MAP, u.iommu_ioas_map, { size: 40, flags: FIXED_RW, ...v });
  return { rc: r.rc, iova: r.out.iova };
}

function unmap(
  w: World,
  ioas: number,
  iova: bigint,
  length: bigint,
): { rc: number; length: bigint } {
  const r = w.call(u.IOMMU_IOAS_UNMAP, u.iommu_ioas_unmap, {
    size: 24,
    ioas_id: ioas,
    iova,
    length,
  });
  return { rc: r.rc, length: r.out.length };
}

function ranges(
  w: World,
  ioas: number,
  room = 8,
): { rc: number; num: number; align: bigint; list: string[] } {
  const m = w.mem(PAGE);
  const r = w.call(u.IOMMU_IOAS_IOVA_RANGES, u.iommu_ioas_iova_ranges, {
    size: 32,
    ioas_id: ioas,
    num_iovas: room,
    allowed_iovas: m.address,
  });
  const list: string[] = [];
  for (let i = 0; i < Math.min(room, r.out.num_iovas); i++) {
    const e = decode(u.iommu_iova_range, m.bytes, i * 16);
    list.push(`0x${e.start.toString(16)}-0x${e.last.toString(16)}`);
  }
  return { rc: r.rc, num: r.out.num_iovas, align: r.out.out_iova_alignment, list };
}

function destroy(w: World, id: number): number {
  return w.call(u.IOMMU_DESTROY, u.iommu_destroy, { size: 8, id }).rc;
}

function allowIovas(w: World, ioas: number, list: [bigint, bigint][]): number {
  const m = w.mem(PAGE);
  list.forEach(([start, last], i) =>
    m.bytes.set(encode(u.iommu_iova_range, { start, last }), i * 16)
  );
  return w.call(u.IOMMU_IOAS_ALLOW_IOVAS, u.iommu_ioas_allow_iovas, {
    size: 24,
    ioas_id: ioas,
    num_iovas: list.length,
    allowed_iovas: m.address,
  }).rc;
}

const ATTACHED = ["0x0-0xfedfffff", "0xfef00000-0xffffffffffff"];

Deno.test({
  name: "iommufd dispatch: EFAULT, ENOTTY, EINVAL below min_size, E2BIG tail, min(size) copy-out",
  permissions: "none",
  fn() {
    const w = world();
    assert.equal(w.raw(u.IOMMU_IOAS_ALLOC, 0n), err("EFAULT"));
    assert.equal(w.raw(u.IOMMU_IOAS_ALLOC, new Uint8Array(3)), err("EFAULT"));
    const buf = new Uint8Array(64);
    buf[0] = 12;
    assert.equal(w.raw(ioctlEncode("generic", "none", 0x3b, 0x8f, 0), buf), err("ENOTTY"));
    assert.equal(w.raw(ioctlEncode("generic", "none", 0x3b, 0xff, 0), buf), err("ENOTTY"));
    assert.equal(w.raw(ioctlEncode("generic", "write", 0x3b, 0x81, 12), buf), err("ENOTTY"));
    assert.equal(w.raw(ioctlEncode("generic", "none", 0x3c, 0x81, 0), buf), err("ENOTTY"));
    assert.equal(w.call(u.IOMMU_IOAS_ALLOC, u.iommu_ioas_alloc, { size: 8 }).rc, err("EINVAL"));
    const dirty = encode(u.iommu_ioas_alloc, { size: 16 }, 4);
    dirty[14] = 1;
    assert.equal(w.raw(u.IOMMU_IOAS_ALLOC, dirty), err("E2BIG"));
    // A size larger than the buffer faults while checking the tail.
    assert.equal(
      w.raw(u.IOMMU_IOAS_ALLOC, encode(u.iommu_ioas_alloc, { size: 13 })),
      err("EFAULT"),
    );
    const zeroTail = encode(u.iommu_ioas_alloc, { size: 16 }, 4);
    assert.equal(w.raw(u.IOMMU_IOAS_ALLOC, zeroTail), 0);
    assert.equal(decode(u.iommu_ioas_alloc, zeroTail).out_ioas_id, 1);
    assert.deepEqual([...zeroTail.subarray(12)], [0, 0, 0, 0]);
    // A bigint argument is a user pointer.
    const m = w.mem(PAGE);
    m.bytes.set(encode(u.iommu_ioas_alloc, { size: 12 }));
    assert.equal(w.raw(u.IOMMU_IOAS_ALLOC, m.address), 0);
    assert.equal(decode(u.iommu_ioas_alloc, m.bytes).out_ioas_id, 2);
    // HWPT_ALLOC's min_size is 24: a 24-byte struct is zero-extended, out_hwpt_id (16) copied.
    const short = w.call(u.IOMMU_HWPT_ALLOC, u.iommu_hwpt_alloc, { size: 20 });
    assert.equal(short.rc, err("EINVAL"));
    // GET_HW_INFO with size 32 (pre-capabilities): out_capabilities is not copied out.
    const devid = bind(w);
    const info = w.call(u.IOMMU_GET_HW_INFO, u.iommu_hw_info, {
      size: 32,
      dev_id: devid,
      out_capabilities: 0x5a5an,
    });
    assert.equal(info.rc, 0);
    assert.equal(info.out.out_capabilities, 0x5a5an);
    assert.equal(info.out.data_len, 24);
  },
});

Deno.test({
  name:
    "iommufd ids: lowest free, reused, failed creations consume none; bind 1, IOAS 2, auto HWPT 3",
  permissions: "none",
  fn() {
    const w = world();
    const devid = bind(w);
    const ioas = ioasAlloc(w);
    assert.deepEqual([devid, ioas], [1, 2]);
    assert.equal(w.ctx.attachDevice(devid, ioas), 3);
    assert.equal(
      w.call(u.IOMMU_IOAS_ALLOC, u.iommu_ioas_alloc, { size: 12, flags: 1 }).rc,
      err("EOPNOTSUPP"),
    );
    // A failed HWPT allocation (no nesting on QEMU's VT-d) gives its reserved id back.
    const nest = w.call(u.IOMMU_HWPT_ALLOC, u.iommu_hwpt_alloc, {
      size: 48,
      flags: u.IOMMU_HWPT_ALLOC_NEST_PARENT,
      dev_id: devid,
      pt_id: ioas,
    });
    assert.equal(nest.rc, err("EOPNOTSUPP"));
    assert.equal(ioasAlloc(w), 4);
    assert.equal(ioasAlloc(w), 5);
    assert.equal(destroy(w, 4), 0);
    assert.equal(destroy(w, 4), err("ENOENT"));
    assert.equal(ioasAlloc(w), 4);
    assert.equal(destroy(w, 99), err("ENOENT"));
    assert.equal(destroy(w, ioas), err("EBUSY"), "the auto HWPT holds the IOAS");
    assert.equal(destroy(w, 3), err("EBUSY"), "the device holds the HWPT");
    assert.equal(destroy(w, devid), err("EBUSY"), "devices are never destroyable");
    w.ctx.detachDevice(devid);
    assert.equal(destroy(w, 3), err("ENOENT"), "the auto HWPT died with its last device");
    assert.equal(destroy(w, ioas), 0);
    assert.equal(destroy(w, devid), err("EBUSY"));
    w.ctx.unbindDevice(devid);
    assert.equal(destroy(w, devid), err("ENOENT"));
    assert.equal(ioasAlloc(w), 1);
  },
});

Deno.test({
  name:
    "iommufd IOVA_RANGES: EMSGSIZE with the struct copied back; attach cuts the MSI window and the aperture",
  permissions: "none",
  fn() {
    const w = world();
    const ioas = ioasAlloc(w);
    assert.deepEqual(ranges(w, ioas, 0), { rc: err("EMSGSIZE"), num: 1, align: 1n, list: [] });
    assert.deepEqual(ranges(w, ioas), {
      rc: 0,
      num: 1,
      align: 1n,
      list: ["0x0-0xffffffffffffffff"],
    });
    const devid = bind(w);
    assert.deepEqual(ranges(w, devid).rc, err("ENOENT"));
    assert.equal(ranges(w, 99).rc, err("ENOENT"));
    const r = w.call(u.IOMMU_IOAS_IOVA_RANGES, u.iommu_ioas_iova_ranges, {
      size: 32,
      ioas_id: ioas,
      __reserved: 1,
    });
    assert.equal(r.rc, err("EOPNOTSUPP"));
    const bad = w.call(u.IOMMU_IOAS_IOVA_RANGES, u.iommu_ioas_iova_ranges, {
      size: 32,
      ioas_id: ioas,
      num_iovas: 1,
      allowed_iovas: 0x10n,
    });
    assert.equal(bad.rc, err("EFAULT"));
    assert.equal(w.ctx.attachDevice(devid, ioas), 3);
    assert.deepEqual(ranges(w, ioas), { rc: 0, num: 2, align: 0x1000n, list: ATTACHED });
    assert.deepEqual(ranges(w, ioas, 1), {
      rc: err("EMSGSIZE"),
      num: 2,
      align: 0x1000n,
      list: [ATTACHED[0]],
    });
    w.ctx.detachDevice(devid);
    assert.deepEqual(ranges(w, ioas), {
      rc: 0,
      num: 1,
      align: 1n,
      list: ["0x0-0xffffffffffffffff"],
    });
  },
});

Deno.test({
  name: "iommufd IOAS_MAP: every errno row in order, EEXIST, auto IOVA, pinning into the domain",
  permissions: "none",
  fn() {
    const w = world();
    const devid = bind(w);
    const ioas = ioasAlloc(w);
    const hwpt = w.ctx.attachDevice(devid, ioas);
    const m = w.mem(0x10000);
    const base = { ioas_id: ioas, user_va: m.address, length: 0x2000n, iova: 0x100000n };
    const rows: [string, Record<string, number | bigint>, string][] = [
      ["unknown flag", { flags: FIXED_RW | 8 }, "EOPNOTSUPP"],
      ["__reserved", { __reserved: 1 }, "EOPNOTSUPP"],
      ["iova U64_MAX", { iova: U64_MAX }, "EOVERFLOW"],
      ["length U64_MAX", { length: U64_MAX }, "EOVERFLOW"],
      ["no R/W", { flags: u.IOMMU_IOAS_MAP_FIXED_IOVA }, "EINVAL"],
      ["unknown IOAS", { ioas_id: 99 }, "ENOENT"],
      ["IOAS id of the HWPT", { ioas_id: hwpt }, "ENOENT"],
      ["length 0", { length: 0n }, "EINVAL"],
      ["length > SIZE_MAX - PAGE", { length: U64_MAX - 0xfffn }, "EINVAL"],
      ["user_va + length overflows", { user_va: U64_MAX - 0xfffn }, "EOVERFLOW"],
      ["length misaligned", { length: 0x1800n }, "EINVAL"],
      ["auto: length >= ULONG_MAX/2", { flags: RW, length: 1n << 63n }, "EOVERFLOW"],
      [
        "auto: alignment below iova_alignment",
        { flags: RW, user_va: m.address + 0x800n },
        "EINVAL",
      ],
      ["auto: no hole", { flags: RW, length: 1n << 48n }, "ENOSPC"],
      ["iova misaligned", { iova: 0x100800n }, "EINVAL"],
      ["iova + length overflows", { iova: U64_MAX - 0xfffn }, "EOVERFLOW"],
      ["reserved MSI window", { iova: MSI, length: 0x1000n }, "EINVAL"],
      ["beyond the aperture", { iova: 1n << 48n, length: 0x1000n }, "EINVAL"],
      ["user_va misaligned", { user_va: m.address + 0x800n }, "EINVAL"],
      ["unmapped user_va", { user_va: 0x1000n }, "EFAULT"],
    ];
    for (const [label, over, errno] of rows) {
      assert.equal(w.name(map(w, { ...base, ...over }).rc), errno, label);
    }
    assert.equal(map(w, base).rc, 0);
    assert.equal(w.name(map(w, { ...base, iova: 0x101000n }).rc), "EEXIST");
    // The mapping is in the hardware: the device reads the process's bytes through VT-d.
    m.bytes[0x1234] = 0xab;
    const t = w.vtd.translate(0x10, undefined, 0x101234n, "read", 1);
    assert.ok(t.ok);
    const phys = new Uint8Array(1);
    w.memory.read(t.phys, phys);
    assert.equal(phys[0], 0xab);
    // Auto IOVA: lowest hole from PAGE_SIZE, never 0, keeps 2 MiB alignment of a 2 MiB buffer.
    const a = map(w, { ...base, flags: RW, length: 0x1000n, user_va: m.address + 0x3000n });
    assert.deepEqual(a, { rc: 0, iova: 0x1000n });
    const big = w.process.memory.mmap(0x200000, 0x200000)!;
    const b = map(w, { ...base, flags: RW, length: 0x200000n, user_va: BigInt(big.address) });
    assert.deepEqual(b, { rc: 0, iova: 0x200000n });
    const c = map(w, { ...base, flags: RW, length: 0x3000n, user_va: m.address + 0x4000n });
    assert.deepEqual(c, { rc: 0, iova: 0x4000n }, "lowest hole with min(roundup(len), lowbit(va))");
    assert.equal(w.process.lockedPages, 0, "user accounting does not touch VmLck");
    assert.equal(userLockedPages(w.process), 2 + 1 + 512 + 3);
  },
});

Deno.test({
  name: "iommufd IOAS_MAP without a domain: no pinning until attach (EFAULT then), rlimit ENOMEM",
  permissions: "none",
  fn() {
    const w = world({ memlockLimit: 4 * PAGE });
    const devid = bind(w);
    const ioas = ioasAlloc(w);
    assert.equal(
      map(w, { ioas_id: ioas, user_va: 0x1000n, length: 0x1000n, iova: 0x100000n }).rc,
      0,
    );
    assert.equal(userLockedPages(w.process), 0);
    assert.equal(w.ctx.attachDevice(devid, ioas), err("EFAULT"));
    assert.deepEqual(
      ranges(w, ioas).list,
      ["0x0-0xffffffffffffffff"],
      "failed attach left nothing",
    );
    assert.equal(unmap(w, ioas, 0n, U64_MAX).length, 0x1000n);
    const m = w.mem(8 * PAGE);
    assert.equal(
      map(w, { ioas_id: ioas, user_va: m.address, length: 0x5000n, iova: 0x100000n }).rc,
      0,
    );
    assert.equal(w.ctx.attachDevice(devid, ioas), err("ENOMEM"));
    assert.equal(unmap(w, ioas, 0n, U64_MAX).rc, 0);
    assert.equal(w.ctx.attachDevice(devid, ioas), 3, "failed attaches gave their HWPT id back");
    assert.equal(
      map(w, { ioas_id: ioas, user_va: m.address, length: 0x4000n, iova: 0x100000n }).rc,
      0,
    );
    assert.equal(userLockedPages(w.process), 4);
    const r = map(w, {
      ioas_id: ioas,
      user_va: m.address + 0x4000n,
      length: 0x1000n,
      iova: 0x200000n,
    });
    assert.equal(w.name(r.rc), "ENOMEM");
    assert.equal(userLockedPages(w.process), 4);
  },
});

Deno.test({
  name: "iommufd IOAS_UNMAP: whole areas only, ENOENT cases, unmap-all, EOVERFLOW/EINVAL",
  permissions: "none",
  fn() {
    const w = world();
    const ioas = ioasAlloc(w);
    const m = w.mem(0x10000);
    const at = (iova: bigint, length: bigint, off = 0n) =>
      map(w, { ioas_id: ioas, user_va: m.address + off, length, iova }).rc;
    assert.equal(at(0x100000n, 0x2000n), 0);
    assert.equal(at(0x110000n, 0x1000n), 0);
    assert.equal(at(0x120000n, 0x1000n), 0);
    assert.equal(unmap(w, 99, 0x100000n, 0x1000n).rc, err("ENOENT"));
    assert.equal(unmap(w, ioas, 0x800000n, 0x1000n).rc, err("ENOENT"), "nothing there");
    assert.equal(unmap(w, ioas, 0x101000n, 0x1000n).rc, err("ENOENT"), "inside an area");
    assert.equal(unmap(w, ioas, 0x100000n, 0x1000n).rc, err("ENOENT"), "head of an area");
    assert.equal(unmap(w, ioas, 0x100000n, 0n).rc, err("EINVAL"));
    assert.equal(unmap(w, ioas, U64_MAX, 0x1000n).rc, err("EOVERFLOW"));
    assert.equal(unmap(w, ioas, 0x1000n, U64_MAX).rc, err("EOVERFLOW"));
    assert.equal(unmap(w, ioas, U64_MAX - 0xfffn, 0x2000n).rc, err("EOVERFLOW"));
    // Whole areas plus holes are fine; a later partial area stops the walk (earlier ones gone).
    assert.deepEqual(unmap(w, ioas, 0x10f000n, 0x10000n), { rc: 0, length: 0x1000n });
    assert.equal(at(0x110000n, 0x1000n), 0);
    assert.equal(unmap(w, ioas, 0x110000n, 0x10800n).rc, err("ENOENT"));
    assert.equal(
      unmap(w, ioas, 0x110000n, 0x1000n).rc,
      err("ENOENT"),
      "already unmapped by the failed call",
    );
    assert.deepEqual(unmap(w, ioas, 0n, U64_MAX), { rc: 0, length: 0x3000n });
    assert.deepEqual(unmap(w, ioas, 0n, U64_MAX), { rc: 0, length: 0n });
  },
});

Deno.test({
  name:
    "iommufd IOAS_COPY: contiguous source areas, ENOENT gaps, EPERM on read-only pages, one area per piece",
  permissions: "none",
  fn() {
    const w = world();
    const src = ioasAlloc(w);
    const dst = ioasAlloc(w);
    const m = w.mem(0x10000);
    assert.equal(
      map(w, { ioas_id: src, user_va: m.address, length: 0x2000n, iova: 0x100000n }).rc,
      0,
    );
    assert.equal(
      map(w, {
        ioas_id: src,
        flags: u.IOMMU_IOAS_MAP_FIXED_IOVA | u.IOMMU_IOAS_MAP_READABLE,
        user_va: m.address + 0x4000n,
        length: 0x1000n,
        iova: 0x102000n,
      }).rc,
      0,
    );
    assert.equal(
      map(w, { ioas_id: src, user_va: m.address, length: 0x1000n, iova: 0x200000n }).rc,
      0,
    );
    const copy = (v: Record<string, number | bigint>) =>
      w.call(u.IOMMU_IOAS_COPY, u.iommu_ioas_copy, {
        size: 40,
        flags: FIXED_RW,
        dst_ioas_id: dst,
        src_ioas_id: src,
        length: 0x2000n,
        dst_iova: 0x500000n,
        src_iova: 0x100000n,
        ...v,
      });
    const rows: [Record<string, number | bigint>, string][] = [
      [{ flags: 8 | RW }, "EOPNOTSUPP"],
      [{ length: U64_MAX }, "EOVERFLOW"],
      [{ src_iova: U64_MAX }, "EOVERFLOW"],
      [{ dst_iova: U64_MAX }, "EOVERFLOW"],
      [{ flags: u.IOMMU_IOAS_MAP_FIXED_IOVA }, "EINVAL"],
      [{ src_ioas_id: 99 }, "ENOENT"],
      [{ length: 0n }, "EINVAL"],
      [{ src_iova: 0x100800n, length: 0x800n, dst_iova: 0x600000n }, "OK"],
      [{ src_iova: 0x101000n, length: 0x3000n }, "ENOENT"],
      [{ src_iova: 0x0ff000n }, "ENOENT"],
      [{ dst_ioas_id: 99 }, "ENOENT"],
      [{ src_iova: 0x100000n, length: 0x3000n }, "EPERM"],
    ];
    for (const [over, errno] of rows) {
      assert.equal(
        w.name(copy(over).rc),
        errno,
        JSON.stringify(over, (_, v) => typeof v === "bigint" ? `${v}` : v),
      );
    }
    assert.equal(unmap(w, dst, 0n, U64_MAX).rc, 0);
    const ro = copy({
      flags: u.IOMMU_IOAS_MAP_FIXED_IOVA | u.IOMMU_IOAS_MAP_READABLE,
      length: 0x3000n,
    });
    assert.equal(ro.rc, 0);
    assert.equal(w.name(copy({ dst_iova: 0x501000n }).rc), "EEXIST");
    // Two source areas became two destination areas: unmapping one page inside fails.
    assert.equal(unmap(w, dst, 0x500000n, 0x1000n).rc, err("ENOENT"));
    assert.deepEqual(unmap(w, dst, 0x502000n, 0x1000n), { rc: 0, length: 0x1000n });
    const auto = copy({ flags: RW, src_iova: 0x200000n, length: 0x1000n });
    assert.equal(auto.rc, 0);
    assert.equal(auto.out.dst_iova, 0x1000n);
  },
});

Deno.test({
  name:
    "iommufd ALLOW_IOVAS: EINVAL ranges, EADDRINUSE over reservations, steers auto IOVA, blocks reservations",
  permissions: "none",
  fn() {
    const w = world();
    const devid = bind(w);
    const ioas = ioasAlloc(w);
    assert.equal(allowIovas(w, ioas, [[0x100000n, 0x100000n]]), err("EINVAL"));
    assert.equal(allowIovas(w, ioas, [[0x200000n, 0x100000n]]), err("EINVAL"));
    assert.equal(
      allowIovas(w, ioas, [[0x100000n, 0x1fffffn], [0x180000n, 0x2fffffn]]),
      err("EINVAL"),
    );
    assert.equal(allowIovas(w, 99, []), err("ENOENT"));
    // An allowed range over the MSI window makes the attach fail with EADDRINUSE.
    assert.equal(allowIovas(w, ioas, [[MSI, MSI + 0xfffn]]), 0);
    assert.equal(w.ctx.attachDevice(devid, ioas), err("EADDRINUSE"));
    assert.equal(allowIovas(w, ioas, []), 0);
    assert.equal(w.ctx.attachDevice(devid, ioas), 3);
    assert.equal(allowIovas(w, ioas, [[MSI, MSI + 0xfffn]]), err("EADDRINUSE"));
    assert.equal(allowIovas(w, ioas, [[0x100000n, 0x1fffffn]]), 0);
    const m = w.mem(0x4000);
    const a = map(w, { ioas_id: ioas, flags: RW, user_va: m.address, length: 0x1000n });
    assert.deepEqual(a, { rc: 0, iova: 0x100000n });
    const fixed = map(w, { ioas_id: ioas, user_va: m.address, length: 0x1000n, iova: 0x800000n });
    assert.equal(fixed.rc, 0, "FIXED maps outside the allowed ranges are not rejected");
    assert.deepEqual(ranges(w, ioas).list, ATTACHED, "allowed ranges are not reported");
  },
});

Deno.test({
  name: "iommufd OPTION: RLIMIT_MODE (EPERM, EBUSY, values) and HUGE_PAGES",
  permissions: "none",
  fn() {
    const opt = (w: World, v: Record<string, number | bigint>) =>
      w.call(u.IOMMU_OPTION, u.iommu_option, { size: 24, ...v });
    const w = world();
    assert.equal(opt(w, { option_id: 0, op: u.IOMMU_OPTION_OP_GET }).out.val64, 0n);
    assert.equal(opt(w, { option_id: 0, op: 0, val64: 1n }).rc, err("EPERM"));
    assert.equal(opt(w, { option_id: 0, op: 1, object_id: 1 }).rc, err("EOPNOTSUPP"));
    assert.equal(opt(w, { option_id: 0, op: 2 }).rc, err("EOPNOTSUPP"));
    assert.equal(opt(w, { option_id: 2, op: 1 }).rc, err("EOPNOTSUPP"));
    assert.equal(opt(w, { option_id: 0, op: 1, __reserved: 1 }).rc, err("EOPNOTSUPP"));
    const admin = world({ ctx: { capSysResource: true } });
    assert.equal(opt(admin, { option_id: 0, op: 0, val64: 2n }).rc, err("EINVAL"));
    assert.equal(opt(admin, { option_id: 0, op: 0, val64: 1n }).rc, 0);
    assert.equal(opt(admin, { option_id: 0, op: 1 }).out.val64, 1n);
    const ioas = ioasAlloc(admin);
    assert.equal(opt(admin, { option_id: 0, op: 0, val64: 0n }).rc, err("EBUSY"));
    // "mm" mode charges VmLck.
    const devid = bind(admin);
    admin.ctx.attachDevice(devid, ioas);
    const m = admin.mem(0x2000);
    assert.equal(
      map(admin, { ioas_id: ioas, user_va: m.address, length: 0x2000n, iova: 0x100000n }).rc,
      0,
    );
    assert.equal(admin.process.lockedPages, 2);
    assert.equal(userLockedPages(admin.process), 0);
    // HUGE_PAGES.
    const hp = world();
    const io = ioasAlloc(hp);
    assert.equal(opt(hp, { option_id: 1, op: 1, object_id: 99 }).rc, err("ENOENT"));
    assert.equal(opt(hp, { option_id: 1, op: 1, object_id: io }).out.val64, 1n);
    assert.equal(opt(hp, { option_id: 1, op: 0, object_id: io, val64: 2n }).rc, err("EINVAL"));
    assert.equal(opt(hp, { option_id: 1, op: 0, object_id: io, val64: 0n }).rc, 0);
    assert.equal(opt(hp, { option_id: 1, op: 1, object_id: io }).out.val64, 0n);
    assert.equal(ranges(hp, io).align, 0x1000n, "disabled large pages align to PAGE_SIZE");
    assert.equal(opt(hp, { option_id: 1, op: 0, object_id: io, val64: 1n }).rc, 0);
    assert.equal(ranges(hp, io).align, 1n);
    const dev = bind(hp);
    hp.ctx.attachDevice(dev, io);
    const mm = hp.mem(0x1000);
    assert.equal(
      map(hp, { ioas_id: io, user_va: mm.address, length: 0x1000n, iova: 0x100000n }).rc,
      0,
    );
    assert.equal(opt(hp, { option_id: 1, op: 0, object_id: io, val64: 0n }).rc, err("EINVAL"));
  },
});

Deno.test({
  name: "iommufd VFIO_IOAS: GET ENODEV, SET ENOENT, CLEAR, EOPNOTSUPP; destroying it clears it",
  permissions: "none",
  fn() {
    const w = world();
    const vio = (op: number, ioas_id = 0, extra: Record<string, number> = {}) =>
      w.call(u.IOMMU_VFIO_IOAS, u.iommu_vfio_ioas, { size: 12, op, ioas_id, ...extra });
    assert.equal(vio(u.IOMMU_VFIO_IOAS_GET).rc, err("ENODEV"));
    assert.equal(vio(u.IOMMU_VFIO_IOAS_SET, 5).rc, err("ENOENT"));
    assert.equal(vio(3).rc, err("EOPNOTSUPP"));
    assert.equal(vio(0, 0, { __reserved: 1 }).rc, err("EOPNOTSUPP"));
    const ioas = ioasAlloc(w);
    assert.equal(vio(u.IOMMU_VFIO_IOAS_SET, ioas).rc, 0);
    assert.deepEqual([vio(0).rc, vio(0).out.ioas_id], [0, ioas]);
    assert.equal(w.ctx.compatIoasId(false), ioas);
    assert.equal(vio(u.IOMMU_VFIO_IOAS_CLEAR).rc, 0);
    assert.equal(w.ctx.compatIoasId(false), err("ENODEV"));
    assert.equal(w.ctx.compatIoasId(true), 2);
    assert.equal(w.ctx.compatIoasId(true), 2);
    assert.equal(destroy(w, 2), 0);
    assert.equal(vio(0).rc, err("ENODEV"));
  },
});

Deno.test({
  name:
    "iommufd bind: EINVAL without coherency, EPERM without MSI isolation, EBUSY for another owner",
  permissions: "none",
  fn() {
    const nc = world({ facts: { cacheCoherency: false } });
    assert.equal(nc.ctx.bindDevice(nc.fns[0], nc.process), err("EINVAL"));
    const noIr = world({ vtd: { intremap: false } });
    assert.equal(noIr.ctx.bindDevice(noIr.fns[0], noIr.process), err("EPERM"));
    const unsafe = world({ vtd: { intremap: false }, ctx: { allowUnsafeInterrupts: true } });
    assert.equal(unsafe.ctx.bindDevice(unsafe.fns[0], unsafe.process), 1);
    const w = world({ functions: 2 });
    w.group.dmaOwner = "vfio-container";
    w.group.dmaOwnerCookie = {};
    assert.equal(w.ctx.bindDevice(w.fns[0], w.process), err("EBUSY"));
    w.group.dmaOwner = undefined;
    w.group.dmaOwnerCookie = undefined;
    const a = bind(w, 0);
    assert.equal(w.group.dmaOwner, "iommufd");
    assert.equal(w.group.dmaOwnerCookie, w.ctx);
    assert.equal(w.other().bindDevice(w.fns[1], w.process), err("EBUSY"));
    const b = bind(w, 1);
    w.ctx.unbindDevice(a);
    assert.equal(w.group.dmaOwner, "iommufd", "the group's other device still owns it");
    w.ctx.unbindDevice(b);
    assert.equal(w.group.dmaOwner, undefined);
    assert.equal(w.group.dmaOwnerCookie, undefined);
  },
});

Deno.test({
  name:
    "iommufd attach: group semantics, auto HWPT reuse, replace, EADDRINUSE for areas in the way",
  permissions: "none",
  fn() {
    const w = world({ functions: 2 });
    const d1 = bind(w, 0);
    const d2 = bind(w, 1);
    const ioas = ioasAlloc(w);
    const other = ioasAlloc(w);
    assert.equal(w.ctx.attachDevice(d1, 99), err("ENOENT"));
    assert.equal(w.ctx.attachDevice(d1, d2), err("EINVAL"));
    assert.equal(w.ctx.attachDevice(99, ioas), err("ENOENT"));
    const h = w.ctx.attachDevice(d1, ioas);
    assert.equal(h, 5);
    assert.equal(
      w.vtd.attached(0x10),
      w.vtd.attached(0x11),
      "the whole group follows the first device",
    );
    assert.ok(w.vtd.attached(0x11));
    assert.equal(w.ctx.attachDevice(d2, other), err("EINVAL"), "a group uses one HWPT");
    assert.equal(w.ctx.attachDevice(d2, ioas), h, "compatible auto HWPT reused");
    assert.equal(w.ctx.attachDevice(d1, ioas), h, "replace with the same HWPT is a no-op");
    // Replace the group's HWPT by an auto HWPT of another IOAS: reservations move along.
    const h2 = w.ctx.attachDevice(d1, other);
    assert.equal(h2, 6);
    assert.deepEqual(ranges(w, other).list, ATTACHED);
    assert.deepEqual(ranges(w, ioas).list, ["0x0-0xffffffffffffffff"]);
    assert.equal(destroy(w, h), err("ENOENT"), "the old auto HWPT died");
    w.ctx.detachDevice(d1);
    w.ctx.detachDevice(d2);
    assert.equal(w.vtd.attached(0x10), undefined);
    assert.equal(w.vtd.domainIds.length, 0, "no domain left");
    // Areas in the way of the attach.
    const m = w.mem(0x4000);
    assert.equal(map(w, { ioas_id: ioas, user_va: m.address, length: 0x1000n, iova: MSI }).rc, 0);
    assert.equal(w.ctx.attachDevice(d1, ioas), err("EADDRINUSE"), "area over the MSI window");
    assert.equal(unmap(w, ioas, 0n, U64_MAX).rc, 0);
    assert.equal(
      map(w, { ioas_id: ioas, user_va: m.address, length: 0x1000n, iova: 1n << 48n }).rc,
      0,
    );
    assert.equal(w.ctx.attachDevice(d1, ioas), err("EADDRINUSE"), "area beyond the aperture");
    assert.equal(unmap(w, ioas, 0n, U64_MAX).rc, 0);
    assert.equal(
      map(w, { ioas_id: ioas, user_va: m.address + 0x800n, length: 0x800n, iova: 0x100800n }).rc,
      0,
    );
    assert.equal(w.ctx.attachDevice(d1, ioas), err("EADDRINUSE"), "area violating the alignment");
    assert.equal(unmap(w, ioas, 0n, U64_MAX).rc, 0);
    assert.equal(w.ctx.attachDevice(d1, ioas), 5, "lowest free id again");
    assert.equal(w.vtd.domainIds.length, 1);
  },
});

Deno.test({
  name: "iommufd HWPT_ALLOC: the errno table, explicit HWPTs, nesting on a NEST-capable VT-d",
  permissions: "none",
  fn() {
    const w = world();
    const devid = bind(w);
    const ioas = ioasAlloc(w);
    const alloc = (v: Record<string, number | bigint>) =>
      w.call(u.IOMMU_HWPT_ALLOC, u.iommu_hwpt_alloc, {
        size: 48,
        dev_id: devid,
        pt_id: ioas,
        ...v,
      });
    const rows: [Record<string, number | bigint>, string][] = [
      [{ __reserved: 1 }, "EOPNOTSUPP"],
      [{ data_len: 24 }, "EINVAL"],
      [{ data_type: u.IOMMU_HWPT_DATA_VTD_S1 }, "EINVAL"],
      [{ dev_id: ioas }, "ENOENT"],
      [{ pt_id: 99 }, "EINVAL"],
      [{ pt_id: devid }, "EINVAL"],
      [{ flags: u.IOMMU_HWPT_FAULT_ID_VALID }, "EOPNOTSUPP"],
      [{ flags: 1 << 3 }, "EOPNOTSUPP"],
      [{ flags: u.IOMMU_HWPT_ALLOC_DIRTY_TRACKING }, "EOPNOTSUPP"],
      [{ flags: u.IOMMU_HWPT_ALLOC_NEST_PARENT }, "EOPNOTSUPP"],
      [{ data_type: u.IOMMU_HWPT_DATA_VTD_S1, data_len: 24 }, "EOPNOTSUPP"],
    ];
    for (const [over, errno] of rows) {
      assert.equal(w.name(alloc(over).rc), errno, JSON.stringify(over));
    }
    const explicit = alloc({});
    assert.deepEqual([explicit.rc, explicit.out.out_hwpt_id], [0, 3]);
    assert.deepEqual(ranges(w, ioas).list, ["0x0-0xffffffffffff"], "aperture reserved by the HWPT");
    assert.equal(ranges(w, ioas).align, 0x1000n);
    assert.equal(
      w.ctx.attachDevice(devid, ioas),
      4,
      "explicit HWPTs are never reused automatically",
    );
    assert.equal(w.ctx.attachDevice(devid, 3), 3, "replace with the explicit HWPT");
    assert.equal(destroy(w, 4), err("ENOENT"));
    assert.equal(destroy(w, 3), err("EBUSY"));
    w.ctx.detachDevice(devid);
    assert.equal(destroy(w, 3), 0);
    assert.deepEqual(ranges(w, ioas).list, ["0x0-0xffffffffffffffff"]);

    // Nesting needs ECAP.NEST (and scalable mode).
    const vtdInfo = (ecap: bigint) =>
      encode(u.iommu_hw_info_vtd, { cap_reg: 0xd2008c222f0606n, ecap_reg: ecap });
    const n = world({
      facts: { hwInfo: { type: 1, data: vtdInfo(NEST_ECAP) }, dirtyTracking: true },
    });
    const dev = bind(n);
    const io = ioasAlloc(n);
    const nalloc = (v: Record<string, number | bigint>) =>
      n.call(u.IOMMU_HWPT_ALLOC, u.iommu_hwpt_alloc, { size: 48, dev_id: dev, pt_id: io, ...v });
    const parent = nalloc({
      flags: u.IOMMU_HWPT_ALLOC_NEST_PARENT | u.IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
    });
    assert.equal(parent.rc, 0);
    const pid = parent.out.out_hwpt_id;
    const plain = nalloc({}).out.out_hwpt_id;
    const s1 = n.mem(PAGE);
    s1.bytes.set(encode(u.iommu_hwpt_vtd_s1, { pgtbl_addr: 0x1000n, addr_width: 48 }));
    const auto = n.ctx.attachDevice(dev, io);
    const nrows: [Record<string, number | bigint>, string][] = [
      [
        { pt_id: pid, data_type: 1, data_len: 24, flags: u.IOMMU_HWPT_ALLOC_NEST_PARENT },
        "EOPNOTSUPP",
      ],
      [{ pt_id: pid, data_type: 1, data_len: 0 }, "EINVAL"],
      [{ pt_id: plain, data_type: 1, data_len: 24, data_uptr: s1.address }, "EINVAL"],
      [{ pt_id: auto, data_type: 1, data_len: 24, data_uptr: s1.address }, "EINVAL"],
      [{ pt_id: pid, data_type: 7, data_len: 24, data_uptr: s1.address }, "EOPNOTSUPP"],
      [{ pt_id: pid, data_type: 1, data_len: 16, data_uptr: s1.address }, "EINVAL"],
      [{ pt_id: pid, data_type: 1, data_len: 32, data_uptr: s1.address }, "EINVAL"],
      [{ pt_id: pid, data_type: 1, data_len: 24, data_uptr: 0x10n }, "EFAULT"],
      [{
        pt_id: pid,
        data_type: 1,
        data_len: 24,
        data_uptr: s1.address,
        flags: u.IOMMU_HWPT_FAULT_ID_VALID,
        fault_id: 99,
      }, "ENOENT"],
    ];
    for (const [over, errno] of nrows) {
      assert.equal(
        n.name(nalloc(over).rc),
        errno,
        JSON.stringify(over, (_, v) => typeof v === "bigint" ? `${v}` : v),
      );
    }
    const nested = nalloc({ pt_id: pid, data_type: 1, data_len: 24, data_uptr: s1.address });
    assert.equal(nested.rc, 0);
    const nid = nested.out.out_hwpt_id;
    assert.equal(destroy(n, pid), err("EBUSY"), "the nested HWPT holds its parent");
    n.ctx.detachDevice(dev);
    assert.equal(n.ctx.attachDevice(dev, nid), nid);
    assert.deepEqual(ranges(n, io).list, ATTACHED, "device regions go to the parent's IOAS");
    n.ctx.detachDevice(dev);
    assert.equal(destroy(n, nid), 0);
    assert.equal(destroy(n, pid), 0);
  },
});

Deno.test({
  name:
    "iommufd GET_HW_INFO: VT-d registers with the erratum flag, zero-filled tail, data_len = kernel length",
  permissions: "none",
  fn() {
    const w = world();
    const devid = bind(w);
    const ioas = ioasAlloc(w);
    const m = w.mem(PAGE);
    const get = (dataLen: number, v: Record<string, number | bigint> = {}) => {
      m.bytes.fill(0xff, 0, 128);
      return w.call(u.IOMMU_GET_HW_INFO, u.iommu_hw_info, {
        size: 40,
        dev_id: devid,
        data_len: dataLen,
        data_uptr: m.address,
        ...v,
      });
    };
    const r = get(64);
    assert.equal(r.rc, 0);
    assert.deepEqual(
      [r.out.out_data_type, r.out.data_len, r.out.out_capabilities, r.out.out_max_pasid_log2],
      [u.IOMMU_HW_INFO_TYPE_INTEL_VTD, 24, 0n, 0],
    );
    const vtd = decode(u.iommu_hw_info_vtd, m.bytes);
    assert.deepEqual([vtd.flags, vtd.cap_reg, vtd.ecap_reg], [1, w.vtd.cap, w.vtd.ecap]);
    assert.ok(m.bytes.subarray(24, 64).every((b) => b === 0), "zero-filled up to data_len");
    assert.ok(m.bytes.subarray(64, 128).every((b) => b === 0xff), "untouched beyond");
    const short = get(8);
    assert.deepEqual([short.rc, short.out.data_len], [0, 24]);
    assert.ok(m.bytes.subarray(8, 128).every((b) => b === 0xff));
    assert.equal(get(64, { flags: 1 }).rc, err("EOPNOTSUPP"));
    const reserved = encode(u.iommu_hw_info, { size: 40, dev_id: devid });
    reserved[30] = 1;
    assert.equal(w.raw(u.IOMMU_GET_HW_INFO, reserved), err("EOPNOTSUPP"));
    assert.equal(get(64, { dev_id: ioas }).rc, err("ENOENT"));
    assert.equal(get(64, { data_uptr: 0x10n }).rc, err("EFAULT"));
    assert.equal(get(0, { data_uptr: 0n }).rc, 0, "no data requested: no pointer needed");
    const d = world({
      facts: {
        dirtyTracking: true,
        maxPasidLog2: 20,
        hwInfo: { type: 0, data: new Uint8Array(0) },
        kind: "virtio-iommu",
      },
    });
    const dd = bind(d);
    const info = d.call(u.IOMMU_GET_HW_INFO, u.iommu_hw_info, {
      size: 40,
      dev_id: dd,
      data_len: 0,
    });
    assert.deepEqual(
      [
        info.out.out_data_type,
        info.out.data_len,
        info.out.out_capabilities,
        info.out.out_max_pasid_log2,
      ],
      [0, 0, u.IOMMU_HW_CAP_DIRTY_TRACKING, 20],
    );
  },
});

Deno.test({
  name: "iommufd dirty tracking: validation order, bitmap bits written to user memory",
  permissions: "none",
  fn() {
    const w = world({ facts: { dirtyTracking: true } });
    const devid = bind(w);
    const ioas = ioasAlloc(w);
    const plain = w.call(u.IOMMU_HWPT_ALLOC, u.iommu_hwpt_alloc, {
      size: 48,
      dev_id: devid,
      pt_id: ioas,
    });
    const dirty = w.call(u.IOMMU_HWPT_ALLOC, u.iommu_hwpt_alloc, {
      size: 48,
      dev_id: devid,
      pt_id: ioas,
      flags: u.IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
    });
    assert.deepEqual([plain.rc, dirty.rc], [0, 0]);
    const hp = plain.out.out_hwpt_id;
    const hd = dirty.out.out_hwpt_id;
    const set = (hwpt_id: number, flags: number) =>
      w.call(u.IOMMU_HWPT_SET_DIRTY_TRACKING, u.iommu_hwpt_set_dirty_tracking, {
        size: 16,
        hwpt_id,
        flags,
      }).rc;
    assert.equal(set(hd, 2), err("EOPNOTSUPP"));
    assert.equal(set(ioas, 1), err("ENOENT"));
    assert.equal(set(hp, 1), err("EOPNOTSUPP"));
    assert.equal(set(hd, 1), 0);
    const bm = w.mem(PAGE);
    const get = (v: Record<string, number | bigint>) =>
      w.call(u.IOMMU_HWPT_GET_DIRTY_BITMAP, u.iommu_hwpt_get_dirty_bitmap, {
        size: 48,
        hwpt_id: hd,
        iova: 0x100000n,
        length: 0x10000n,
        page_size: 0x1000n,
        data: bm.address,
        ...v,
      }).rc;
    const rows: [Record<string, number | bigint>, string][] = [
      [{ flags: 2 }, "EOPNOTSUPP"],
      [{ __reserved: 1 }, "EOPNOTSUPP"],
      [{ hwpt_id: ioas }, "ENOENT"],
      [{ iova: U64_MAX - 0xfffn, length: 0x2000n }, "EOVERFLOW"],
      [{ iova: 0x100800n }, "EINVAL"],
      [{ page_size: 0n }, "EINVAL"],
      [{ page_size: 0x200000n }, "EINVAL"],
      [{ hwpt_id: hp }, "EOPNOTSUPP"],
      [{ data: 0x10n }, "EFAULT"],
    ];
    for (const [over, errno] of rows) {
      assert.equal(
        w.name(get(over)),
        errno,
        JSON.stringify(over, (_, v) => typeof v === "bigint" ? `${v}` : v),
      );
    }
    const variant = w.iommu as unknown as { dirty: bigint[]; tracking: boolean };
    assert.equal(variant.tracking, true);
    variant.dirty = [0x100000n, 0x103000n, 0x10f000n];
    assert.equal(get({ flags: u.IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR }), 0);
    assert.deepEqual([...bm.bytes.subarray(0, 2)], [0b1001, 0b1000_0000]);
    bm.bytes.fill(0, 0, 8);
    assert.equal(get({}), 0);
    assert.deepEqual([...bm.bytes.subarray(0, 2)], [0b1001, 0b1000_0000]);
    bm.bytes.fill(0, 0, 8);
    assert.equal(get({}), 0);
    assert.deepEqual([...bm.bytes.subarray(0, 2)], [0, 0], "cleared by the previous read");
    assert.equal(set(hd, 0), 0);
    assert.equal(variant.tracking, false);
  },
});

Deno.test({
  name: "iommufd HWPT_INVALIDATE: the validation table, entry_num always written back",
  permissions: "none",
  fn() {
    const vtdInfo = encode(u.iommu_hw_info_vtd, {
      cap_reg: 0xd2008c222f0606n,
      ecap_reg: NEST_ECAP,
    });
    const w = world({ facts: { hwInfo: { type: 1, data: vtdInfo } } });
    const dev = bind(w);
    const ioas = ioasAlloc(w);
    const parent = w.call(u.IOMMU_HWPT_ALLOC, u.iommu_hwpt_alloc, {
      size: 48,
      dev_id: dev,
      pt_id: ioas,
      flags: u.IOMMU_HWPT_ALLOC_NEST_PARENT,
    }).out.out_hwpt_id;
    const s1 = w.mem(PAGE);
    s1.bytes.set(encode(u.iommu_hwpt_vtd_s1, { addr_width: 48 }));
    const nested = w.call(u.IOMMU_HWPT_ALLOC, u.iommu_hwpt_alloc, {
      size: 48,
      dev_id: dev,
      pt_id: parent,
      data_type: 1,
      data_len: 24,
      data_uptr: s1.address,
    }).out.out_hwpt_id;
    const entries = w.mem(PAGE);
    const put = (list: Record<string, number | bigint>[]) =>
      list.forEach((e, i) => entries.bytes.set(encode(u.iommu_hwpt_vtd_s1_invalidate, e), i * 24));
    put([{ addr: 0x1000n, npages: 1n }, { addr: 0n, npages: U64_MAX }, {
      addr: 0x2000n,
      npages: 1n,
      flags: 2,
    }]);
    const inv = (v: Record<string, number | bigint>) => {
      const r = w.call(u.IOMMU_HWPT_INVALIDATE, u.iommu_hwpt_invalidate, {
        size: 32,
        hwpt_id: nested,
        data_uptr: entries.address,
        data_type: u.IOMMU_HWPT_INVALIDATE_DATA_VTD_S1,
        entry_len: 24,
        entry_num: 2,
        ...v,
      });
      return `${w.name(r.rc)}/${r.out.entry_num}`;
    };
    assert.equal(inv({}), "OK/2");
    assert.equal(inv({ entry_num: 3 }), "EOPNOTSUPP/2", "unknown entry flag stops at the third");
    assert.equal(inv({ __reserved: 1 }), "EOPNOTSUPP/0");
    assert.equal(inv({ data_uptr: 0n }), "EINVAL/0");
    assert.equal(inv({ entry_len: 0 }), "EINVAL/0");
    assert.equal(inv({ entry_len: PAGE + 1 }), "EINVAL/0");
    assert.equal(inv({ entry_num: (1 << 19) + 1 }), "EINVAL/0");
    assert.equal(inv({ hwpt_id: parent }), "ENOENT/0");
    assert.equal(inv({ data_type: 1 }), "EINVAL/0");
    assert.equal(inv({ entry_len: 16 }), "EINVAL/0");
    assert.equal(
      inv({ entry_len: 32 }),
      "EINVAL/0",
      "longer than the kernel struct: no E2BIG here",
    );
    assert.equal(inv({ entry_num: 0, data_uptr: 0n, entry_len: 0 }), "OK/0", "probe");
    assert.equal(inv({ data_uptr: 0x10n }), "EFAULT/0");
    put([{ addr: 0x1800n, npages: 1n }]);
    assert.equal(inv({ entry_num: 1 }), "EINVAL/0");
    put([{ addr: 0x1000n, npages: U64_MAX }]);
    assert.equal(inv({ entry_num: 1 }), "EINVAL/0");
    put([{ addr: 0n, npages: 1n, __reserved: 1 }]);
    assert.equal(inv({ entry_num: 1 }), "EOPNOTSUPP/0");
  },
});

Deno.test({
  name: "iommufd FAULT_QUEUE_ALLOC: fault fd read/write rules, EBUSY while open or used",
  permissions: "none",
  fn() {
    const w = world();
    const alloc = (flags = 0) =>
      w.call(u.IOMMU_FAULT_QUEUE_ALLOC, u.iommu_fault_alloc, { size: 16, flags });
    assert.equal(alloc(1).rc, err("EOPNOTSUPP"));
    const q = alloc();
    assert.equal(q.rc, 0);
    assert.equal(q.out.out_fault_id, 1);
    const fd = q.out.out_fault_fd;
    const file = w.process.fget(fd)!;
    assert.equal(file.kind, "iommufd-pgfault");
    assert.equal(file.read!(w.process, new Uint8Array(10)), err("ESPIPE"));
    assert.equal(file.read!(w.process, new Uint8Array(40)), 0);
    assert.equal(file.pread!(w.process, new Uint8Array(40), 40n), err("ESPIPE"));
    assert.equal(file.write!(w.process, new Uint8Array(3)), err("ESPIPE"));
    assert.equal(file.write!(w.process, new Uint8Array(0)), 0);
    assert.equal(
      file.write!(w.process, encode(u.iommu_hwpt_page_response, { cookie: 0x77 })),
      err("EINVAL"),
    );
    assert.equal(
      file.write!(w.process, encode(u.iommu_hwpt_page_response, { code: 2 })),
      err("EINVAL"),
    );
    assert.equal(file.pollEvents!() & 1, 0);
    assert.equal(destroy(w, 1), err("EBUSY"), "the fd holds the fault object");
    assert.equal(w.process.closeFd(fd), 0);
    assert.equal(destroy(w, 1), 0);
  },
});

Deno.test({
  name: "iommufd close: every object destroyed, pins released, locked pages and ownership back",
  permissions: "none",
  fn() {
    const w = world({ functions: 2 });
    const baseline = w.memory.usedBytes;
    const d1 = bind(w, 0);
    bind(w, 1);
    const ioas = ioasAlloc(w);
    const second = ioasAlloc(w);
    assert.ok(w.ctx.attachDevice(d1, ioas) > 0);
    const m = w.process.memory.mmap(0x8000)!;
    const va = BigInt(m.address);
    assert.equal(map(w, { ioas_id: ioas, user_va: va, length: 0x8000n, iova: 0x100000n }).rc, 0);
    const copy = w.call(u.IOMMU_IOAS_COPY, u.iommu_ioas_copy, {
      size: 40,
      flags: RW,
      dst_ioas_id: second,
      src_ioas_id: ioas,
      length: 0x4000n,
      src_iova: 0x100000n,
    });
    assert.equal(copy.rc, 0);
    w.call(u.IOMMU_HWPT_ALLOC, u.iommu_hwpt_alloc, { size: 48, dev_id: d1, pt_id: second });
    w.call(u.IOMMU_FAULT_QUEUE_ALLOC, u.iommu_fault_alloc, { size: 16 });
    assert.equal(userLockedPages(w.process), 8, "COPY shares the pinned pages");
    // The process unmaps its buffer: the pinned chunk stays alive (device may still DMA).
    assert.ok(w.process.memory.munmap(m.address));
    assert.ok(w.memory.usedBytes > baseline);
    assert.ok(w.vtd.domainIds.length === 2);
    // Close every fd: the fault fd first, then the iommufd (as process exit would).
    for (const fd of w.process.openFds()) w.process.closeFd(fd);
    assert.equal(w.process.liveFiles, 0);
    assert.equal(userLockedPages(w.process), 0);
    assert.equal(w.process.lockedPages, 0);
    assert.equal(w.memory.usedBytes, baseline);
    assert.deepEqual(w.vtd.domainIds, []);
    assert.equal(w.vtd.attached(0x10), undefined);
    assert.equal(w.group.dmaOwner, undefined);
    assert.equal(w.ctx.objects.length, 0);
  },
});

Deno.test({
  name: "iommufd hostile bytes: random command structs never throw",
  permissions: "none",
  fn() {
    const w = world({ functions: 2 });
    bind(w, 0);
    bind(w, 1);
    ioasAlloc(w);
    const m = w.mem(0x10000);
    let seed = 0x1234567;
    const rand = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed >>> 8;
    };
    const ptrs = [0n, m.address, m.address + 0xff00n, U64_MAX - 7n, 0x1000n];
    for (let i = 0; i < 20000; i++) {
      const nr = 0x80 + (rand() % 16);
      const buf = new Uint8Array(64);
      const sizes = [8, 12, 24, 40, 32, 40, 24, 24, 12, 48, 40, 16, 48, 32, 16, 16];
      const size = rand() % 8 === 0 ? rand() % 72 : sizes[nr - 0x80];
      for (let j = 0; j < size && j < buf.length; j++) {
        buf[j] = rand() % 4 === 0 ? rand() & 0xff : 0;
      }
      const view = new DataView(buf.buffer);
      view.setUint32(0, size, true);
      for (const off of [4, 8, 12]) if (rand() % 2) view.setUint32(off, rand() % 8, true);
      for (const off of [16, 24, 32, 40]) {
        if (rand() % 2) {
          view.setBigUint64(off, ptrs[rand() % ptrs.length] + BigInt(rand() % 3) * 0x1000n, true);
        }
      }
      const rc = w.raw(ioctlEncode("generic", "none", 0x3b, nr, 0), buf);
      assert.equal(typeof rc, "number");
      if (i % 1000 === 0) w.ctx.attachDevice(1 + (rand() % 6), 1 + (rand() % 6));
    }
    for (const fd of w.process.openFds()) w.process.closeFd(fd);
    assert.equal(w.process.lockedPages, 0);
    assert.equal(userLockedPages(w.process), 0);
    assert.deepEqual(w.vtd.domainIds, []);
  },
});
