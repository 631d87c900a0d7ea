/**
 * The simulated iommufd's IOAS commands against shared/reference/iommufd.md row by row (§7):
 * IOVA_RANGES, MAP, UNMAP, COPY, ALLOW_IOVAS, OPTION and VFIO_IOAS.
 *
 * @module
 */

import assert from "node:assert/strict";
import { userLockedPages } from "../../sim/iommufd/mod.ts";
import * as u from "../../ffi/uapi/mod.ts";
import { err, PAGE, U64_MAX, type World, world } from "./iommufd_fixture.ts";
import {
  allowIovas,
  ATTACHED,
  bind,
  destroy,
  FIXED_RW,
  ioasAlloc,
  map,
  MSI,
  ranges,
  RW,
  unmap,
} from "./iommufd_ops.ts";

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
