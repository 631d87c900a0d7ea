/**
 * The VFIO container API served by iommufd (shared/reference/iommufd.md §9): the compat answers
 * side by side with the native type1 container on one simulated machine, then the compat details
 * on a context built directly (GET_INFO chain layout and partial fits, TYPE1 v1 cutting, `size`
 * written back on error, no DMA entry limit, DIRTY_PAGES).
 *
 * @module
 */

import assert from "node:assert/strict";
import { errnoName } from "../../ffi/errno.ts";
import { O_RDWR } from "../../ffi/kernel.ts";
import { ioctlNumber } from "../../ffi/uapi/common.ts";
import type { IoctlDecl } from "../../ffi/uapi/common.ts";
import { decode, encode } from "../../ffi/uapi/layout.ts";
import { defineIoctl, VFIO_BASE, VFIO_TYPE } from "../../ffi/uapi/common.ts";
import { createMachine } from "../../sim/machine.ts";
import * as u from "../../ffi/uapi/mod.ts";
import { err, PAGE, U64_MAX, type World, world } from "./iommufd_fixture.ts";

const VFIO_GROUP_SET_CONTAINER = defineIoctl("VFIO_GROUP_SET_CONTAINER", VFIO_TYPE, VFIO_BASE + 4);
const VFIO_GROUP_GET_DEVICE_FD = defineIoctl("VFIO_GROUP_GET_DEVICE_FD", VFIO_TYPE, VFIO_BASE + 6);
const RW = u.VFIO_DMA_MAP_FLAG_READ | u.VFIO_DMA_MAP_FLAG_WRITE;
const MSI = 0xfee00000n;

/** One container on the simulated machine: native type1 (/dev/vfio/vfio) or compat (/dev/iommu). */
function containerOn(path: "/dev/vfio/vfio" | "/dev/iommu") {
  const m = createMachine({ iommu: "vtd", strict: true });
  const k = m.kernel;
  const fn = m.functions[0];
  const io = (fd: number, decl: IoctlDecl, arg?: Uint8Array | number | bigint): number =>
    k.ioctl(fd, ioctlNumber(k.ioctlArch, decl), arg);
  const c = k.open(path, O_RDWR);
  assert.ok(c >= 0);
  const mem = k.mmapAnonymous(0x10000);
  assert.ok(typeof mem !== "number");
  let group = -1;
  return {
    io,
    c,
    mem,
    addGroup(): number {
      group = k.open(`/dev/vfio/${fn.group.id}`, O_RDWR);
      const fdArg = new Uint8Array(4);
      new DataView(fdArg.buffer).setInt32(0, c, true);
      return io(group, VFIO_GROUP_SET_CONTAINER, fdArg);
    },
    openDevice(): number {
      return io(group, VFIO_GROUP_GET_DEVICE_FD, new TextEncoder().encode(fn.bdf + "\0"));
    },
    map(flags: number, iova: bigint, size: bigint): number {
      const arg = encode(u.vfio_iommu_type1_dma_map, {
        argsz: 32,
        flags,
        vaddr: mem.address,
        iova,
        size,
      });
      return io(c, u.VFIO_IOMMU_MAP_DMA, arg);
    },
    unmap(flags: number, iova: bigint, size: bigint): string {
      const arg = encode(u.vfio_iommu_type1_dma_unmap, { argsz: 24, flags, iova, size });
      const rc = io(c, u.VFIO_IOMMU_UNMAP_DMA, arg);
      return `${rc < 0 ? errnoName(rc) : rc}/0x${
        decode(u.vfio_iommu_type1_dma_unmap, arg).size.toString(16)
      }`;
    },
    info(argsz: number): { rc: number; bytes: Uint8Array } {
      const bytes = new Uint8Array(Math.max(argsz, 24));
      bytes.set(encode(u.vfio_iommu_type1_info, { argsz }));
      return { rc: io(c, u.VFIO_IOMMU_GET_INFO, bytes), bytes };
    },
  };
}

/** Capability ids in chain order, with their offsets. */
function chain(bytes: Uint8Array): { id: number; at: number }[] {
  const info = decode(u.vfio_iommu_type1_info, bytes);
  const out: { id: number; at: number }[] = [];
  for (let at = info.cap_offset; at !== 0 && out.length < 8;) {
    const h = decode(u.vfio_info_cap_header, bytes, at);
    out.push({ id: h.id, at });
    at = h.next;
  }
  return out;
}

const name = (rc: number): string => (rc < 0 ? errnoName(rc) : `${rc}`);

Deno.test({
  name:
    "compat vs native type1, side by side: SET_IOMMU, CHECK_EXTENSION, GET_INFO, MAP/UNMAP, DIRTY_PAGES",
  permissions: "none",
  fn() {
    const native = containerOn("/dev/vfio/vfio");
    const compat = containerOn("/dev/iommu");
    const both = <T>(f: (s: ReturnType<typeof containerOn>) => T): { compat: T; native: T } => ({
      compat: f(compat),
      native: f(native),
    });
    // Before any group.
    assert.deepEqual(both((s) => name(s.io(s.c, u.VFIO_SET_IOMMU, u.VFIO_TYPE1v2_IOMMU))), {
      compat: "ENODEV",
      native: "EINVAL",
    });
    assert.deepEqual(both((s) => name(s.io(s.c, u.VFIO_CHECK_EXTENSION, u.VFIO_DMA_CC_IOMMU))), {
      compat: "ENODEV",
      native: "0",
    });
    assert.deepEqual(both((s) => name(s.io(s.c, u.VFIO_GET_API_VERSION))), {
      compat: "0",
      native: "0",
    });
    assert.deepEqual(both((s) => name(s.addGroup())), { compat: "0", native: "0" });
    // Group attached: compat IOAS exists, no domain yet.
    assert.deepEqual(both((s) => name(s.io(s.c, u.VFIO_CHECK_EXTENSION, u.VFIO_DMA_CC_IOMMU))), {
      compat: "1",
      native: "0",
    });
    assert.deepEqual(both((s) => name(s.map(0, 0x100000n, 0x1000n))), {
      compat: "0",
      native: "EINVAL",
    }, "MAP_DMA without READ/WRITE");
    assert.deepEqual(both((s) => s.unmap(u.VFIO_DMA_UNMAP_FLAG_ALL, 0n, 0n)), {
      compat: "0/0x1000",
      native: "EINVAL/0x0",
    });
    assert.deepEqual(both((s) => name(s.io(s.c, u.VFIO_SET_IOMMU, 0x55))), {
      compat: "EINVAL",
      native: "ENODEV",
    });
    assert.deepEqual(both((s) => name(s.io(s.c, u.VFIO_SET_IOMMU, u.VFIO_TYPE1v2_IOMMU))), {
      compat: "0",
      native: "0",
    });
    assert.deepEqual(both((s) => name(s.io(s.c, u.VFIO_SET_IOMMU, u.VFIO_TYPE1v2_IOMMU))), {
      compat: "0",
      native: "EINVAL",
    }, "SET_IOMMU again");
    assert.ok(compat.openDevice() >= 0);
    assert.ok(native.openDevice() >= 0);
    const ext = (s: ReturnType<typeof containerOn>) =>
      Array.from({ length: 10 }, (_, i) => s.io(s.c, u.VFIO_CHECK_EXTENSION, i + 1)).join(",");
    assert.deepEqual(both(ext), { compat: "1,0,1,0,0,0,0,0,1,0", native: "1,0,1,0,0,1,0,0,1,1" });
    // GET_INFO: compat has no MIGRATION, DMA_AVAIL = U32_MAX, argsz always overwritten.
    const info = both((s) => {
      const r = s.info(512);
      const v = decode(u.vfio_iommu_type1_info, r.bytes);
      const caps = chain(r.bytes);
      const avail = caps.find((c) => c.id === u.VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL)!;
      return {
        rc: r.rc,
        argsz: v.argsz,
        pgsizes: v.iova_pgsizes,
        caps: caps.map((c) => `${c.id}@${c.at}`).join(" "),
        avail: decode(u.vfio_iommu_type1_info_dma_avail, r.bytes, avail.at).avail,
      };
    });
    assert.deepEqual(info, {
      compat: { rc: 0, argsz: 88, pgsizes: 0x40201000n, caps: "3@24 1@40", avail: 0xffffffff },
      native: { rc: 0, argsz: 512, pgsizes: 0x40201000n, caps: "2@24 3@56 1@72", avail: 65535 },
    });
    assert.deepEqual(both((s) => name(s.map(RW, 0x100000n, 0x2000n))), {
      compat: "0",
      native: "0",
    });
    assert.deepEqual(both((s) => name(s.map(RW, 0x101000n, 0x2000n))), {
      compat: "EEXIST",
      native: "EEXIST",
    });
    assert.deepEqual(both((s) => name(s.map(RW, MSI, 0x1000n))), {
      compat: "EINVAL",
      native: "EINVAL",
    });
    assert.deepEqual(both((s) => name(s.map(u.VFIO_DMA_MAP_FLAG_VADDR, 0x400000n, 0x1000n))), {
      compat: "EINVAL",
      native: "ENOENT",
    });
    assert.deepEqual(both((s) => s.unmap(0, 0x101000n, 0x1000n)), {
      compat: "ENOENT/0x0",
      native: "EINVAL/0x1000",
    }, "partial area (v2): native leaves the struct alone, compat writes size 0");
    assert.deepEqual(both((s) => s.unmap(u.VFIO_DMA_UNMAP_FLAG_VADDR, 0x800000n, 0x1000n)), {
      compat: "EINVAL/0x1000",
      native: "0/0x0",
    });
    assert.deepEqual(both((s) => s.unmap(0, 0x100000n, 0x2000n)), {
      compat: "0/0x2000",
      native: "0/0x2000",
    });
    const start = encode(u.vfio_iommu_type1_info, { argsz: 8, flags: 1 }).subarray(0, 8);
    assert.deepEqual(both((s) => name(s.io(s.c, u.VFIO_IOMMU_DIRTY_PAGES, start))), {
      compat: "ENOTTY",
      native: "0",
    });
  },
});

/** A world with a compat IOAS and, optionally, the device attached to it. */
function compatWorld(
  attach: boolean,
  o: Parameters<typeof world>[0] = {},
): World & { ioas: number } {
  const w = world(o);
  const ioas = w.ctx.compatIoasId(true);
  if (attach) {
    const devid = w.ctx.bindDevice(w.fns[0], w.process);
    assert.ok(w.ctx.attachDevice(devid, ioas) > 0);
  }
  return Object.assign(w, { ioas });
}

function mapDma(
  w: World,
  flags: number,
  vaddr: bigint,
  iova: bigint,
  size: bigint,
  argsz = 32,
): number {
  return w.raw(
    u.VFIO_IOMMU_MAP_DMA,
    encode(u.vfio_iommu_type1_dma_map, { argsz, flags, vaddr, iova, size }),
  );
}

function unmapDma(w: World, flags: number, iova: bigint, size: bigint, argsz = 24): string {
  const arg = encode(u.vfio_iommu_type1_dma_unmap, { argsz, flags, iova, size: size });
  const rc = w.raw(u.VFIO_IOMMU_UNMAP_DMA, arg);
  return `${w.name(rc)}/0x${decode(u.vfio_iommu_type1_dma_unmap, arg).size.toString(16)}`;
}

Deno.test({
  name:
    "compat GET_INFO: EINVAL/EFAULT/ENODEV, 8-byte aligned chain, partial fits, page sizes before a domain",
  permissions: "none",
  fn() {
    const none = world();
    const info = (w: World, argsz: number, len = Math.max(argsz, 24)) => {
      const bytes = new Uint8Array(len);
      bytes.fill(0xee);
      bytes.set(encode(u.vfio_iommu_type1_info, { argsz }).subarray(0, 8));
      return { rc: w.raw(u.VFIO_IOMMU_GET_INFO, bytes), bytes };
    };
    assert.equal(info(none, 24).rc, err("ENODEV"));
    const w = compatWorld(false);
    assert.equal(info(w, 15).rc, err("EINVAL"));
    assert.equal(info(w, 24, 12).rc, err("EFAULT"));
    const fresh = info(w, 512);
    const v = decode(u.vfio_iommu_type1_info, fresh.bytes);
    assert.deepEqual([v.flags, v.iova_pgsizes, v.cap_offset, v.argsz], [
      3,
      0xfffffffffffff000n,
      24,
      72,
    ]);
    const r = decode(u.vfio_iommu_type1_info_cap_iova_range, fresh.bytes, 40);
    assert.deepEqual([r.header.id, r.header.version, r.header.next, r.nr_iovas], [1, 1, 0, 1]);
    assert.deepEqual(decode(u.vfio_iova_range, fresh.bytes, 56), { start: 0n, end: U64_MAX });
    // argsz 16: only the first 16 bytes are written back (min(argsz, sizeof)).
    const small = info(w, 16, 24);
    assert.equal(small.rc, 0);
    assert.equal(decode(u.vfio_iommu_type1_info, small.bytes).argsz, 72);
    assert.deepEqual([...small.bytes.subarray(16, 24)], new Array(8).fill(0xee));
    // argsz 40: DMA_AVAIL fits and is written, IOVA_RANGE does not; its `next` still points at 40.
    const partial = info(w, 40);
    const pv = decode(u.vfio_iommu_type1_info, partial.bytes);
    assert.deepEqual([pv.argsz, pv.cap_offset, pv.flags], [72, 0, 3]);
    const avail = decode(u.vfio_iommu_type1_info_dma_avail, partial.bytes, 24);
    assert.deepEqual([avail.header.id, avail.header.next, avail.avail], [3, 40, 0xffffffff]);
    // Attached: VT-d page sizes, the MSI hole and the 48-bit aperture.
    const a = compatWorld(true);
    const full = info(a, 512);
    const av = decode(u.vfio_iommu_type1_info, full.bytes);
    assert.deepEqual([av.argsz, av.iova_pgsizes], [88, 0x40201000n]);
    const cap = decode(u.vfio_iommu_type1_info_cap_iova_range, full.bytes, 40);
    assert.equal(cap.nr_iovas, 2);
    assert.deepEqual(decode(u.vfio_iova_range, full.bytes, 56), { start: 0n, end: 0xfedfffffn });
    assert.deepEqual(decode(u.vfio_iova_range, full.bytes, 72), {
      start: 0xfef00000n,
      end: (1n << 48n) - 1n,
    });
  },
});

Deno.test({
  name: "compat CHECK_EXTENSION and SET_IOMMU: DMA_CC from the HWPTs, TYPE1 disables large pages",
  permissions: "none",
  fn() {
    const w = world();
    const ext = (id: number | bigint) => w.raw(u.VFIO_CHECK_EXTENSION, BigInt(id));
    assert.equal(ext(u.VFIO_DMA_CC_IOMMU), err("ENODEV"));
    assert.equal(ext(u.VFIO_TYPE1_IOMMU), 1);
    assert.equal(ext(0x1234n), 0);
    assert.equal(ext(U64_MAX), 0);
    assert.equal(w.raw(u.VFIO_CHECK_EXTENSION, new Uint8Array(8)), 0, "a pointer is no type id");
    assert.equal(w.raw(u.VFIO_SET_IOMMU, BigInt(u.VFIO_TYPE1_IOMMU)), err("ENODEV"));
    assert.equal(w.raw(u.VFIO_SET_IOMMU, BigInt(u.VFIO_TYPE1_NESTING_IOMMU)), err("EINVAL"));
    const ioas = w.ctx.compatIoasId(true);
    assert.equal(ext(u.VFIO_DMA_CC_IOMMU), 1, "no HWPT yet");
    const devid = w.ctx.bindDevice(w.fns[0], w.process);
    assert.ok(w.ctx.attachDevice(devid, ioas) > 0);
    assert.equal(ext(u.VFIO_DMA_CC_IOMMU), 0, "QEMU's VT-d has no snoop control");
    const sc = world({ facts: { enforceCacheCoherency: true } });
    sc.ctx.attachDevice(sc.ctx.bindDevice(sc.fns[0], sc.process), sc.ctx.compatIoasId(true));
    assert.equal(sc.raw(u.VFIO_CHECK_EXTENSION, BigInt(u.VFIO_DMA_CC_IOMMU)), 1);
    // TYPE1 (v1) on an IOAS with a domain and mappings cannot disable large pages.
    const m = w.mem(PAGE);
    assert.equal(mapDma(w, u.VFIO_DMA_MAP_FLAG_READ, m.address, 0x100000n, 0x1000n), 0);
    assert.equal(w.raw(u.VFIO_SET_IOMMU, BigInt(u.VFIO_TYPE1_IOMMU)), err("EINVAL"));
    assert.equal(w.raw(u.VFIO_SET_IOMMU, BigInt(u.VFIO_TYPE1v2_IOMMU)), 0);
    const v1 = compatWorld(false);
    assert.equal(v1.raw(u.VFIO_SET_IOMMU, BigInt(u.VFIO_TYPE1_IOMMU)), 0);
    const opt = v1.call(u.IOMMU_OPTION, u.iommu_option, {
      size: 24,
      option_id: u.IOMMU_OPTION_HUGE_PAGES,
      op: u.IOMMU_OPTION_OP_GET,
      object_id: v1.ioas,
    });
    assert.equal(opt.out.val64, 0n);
  },
});

Deno.test({
  name:
    "compat MAP_DMA / UNMAP_DMA: flags, no entry limit, v1 cuts, size written back even on error",
  permissions: "none",
  fn() {
    const w = compatWorld(true);
    const m = w.mem(0x10000);
    assert.equal(mapDma(w, RW, m.address, 0x100000n, 0x1000n, 31), err("EINVAL"));
    assert.equal(mapDma(w, RW | 8, m.address, 0x100000n, 0x1000n), err("EINVAL"));
    assert.equal(w.raw(u.VFIO_IOMMU_MAP_DMA, new Uint8Array(16)), err("EFAULT"));
    assert.equal(mapDma(w, RW, m.address, 0x100800n, 0x1000n), err("EINVAL"));
    assert.equal(mapDma(w, RW, m.address, U64_MAX - 0xfffn, 0x2000n), err("EOVERFLOW"));
    assert.equal(mapDma(w, RW, 0x1000n, 0x100000n, 0x1000n), err("EFAULT"));
    assert.equal(mapDma(w, RW, m.address, 0x100000n, 0n), err("EINVAL"));
    assert.equal(mapDma(w, RW, m.address, 0x100000n, 0x4000n), 0);
    assert.equal(unmapDma(w, u.VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP, 0n, 0n), "EINVAL/0x0");
    assert.equal(unmapDma(w, u.VFIO_DMA_UNMAP_FLAG_ALL, 0x100000n, 0n), "EINVAL/0x0");
    assert.equal(unmapDma(w, 0, 0x100000n, 0x1000n, 23), "EINVAL/0x1000");
    assert.equal(unmapDma(w, 0, 0x102000n, 0x4000n), "ENOENT/0x0");
    // Nothing in range: success with size 0 (Linux 6.12.117 on the VM bench; only the native
    // IOMMU_IOAS_UNMAP calls that ENOENT).
    assert.equal(unmapDma(w, 0, 0x800000n, 0x1000n), "OK/0x0", "nothing in range");
    assert.equal(unmapDma(w, 0, 0x100000n, 0n), "EINVAL/0x0");
    assert.equal(unmapDma(w, 0, 0x100000n, 0x4000n), "OK/0x4000");
    assert.equal(w.raw(u.VFIO_IOMMU_DIRTY_PAGES, new Uint8Array(8)), err("ENOTTY"));
    assert.equal(
      w.raw(ioctlNumber("generic", defineIoctl("X", VFIO_TYPE, VFIO_BASE + 19)), 0n),
      err("ENOTTY"),
    );

    // TYPE1 v1: areas are cut first, so exact sub-ranges unmap.
    const v1 = compatWorld(false);
    assert.equal(v1.raw(u.VFIO_SET_IOMMU, BigInt(u.VFIO_TYPE1_IOMMU)), 0);
    const devid = v1.ctx.bindDevice(v1.fns[0], v1.process);
    assert.ok(v1.ctx.attachDevice(devid, v1.ioas) > 0);
    const mm = v1.mem(0x4000);
    assert.equal(mapDma(v1, RW, mm.address, 0x100000n, 0x4000n), 0);
    assert.equal(unmapDma(v1, 0, 0x101000n, 0x1000n), "OK/0x1000");
    assert.equal(unmapDma(v1, 0, 0x100000n, 0x1000n), "OK/0x1000");
    assert.equal(unmapDma(v1, 0, 0x102800n, 0x800n), "EINVAL/0x800", "cut off the page grid");
    assert.equal(unmapDma(v1, u.VFIO_DMA_UNMAP_FLAG_ALL, 0n, 0n), "OK/0x2000");
    const t = v1.vtd.translate(0x10, undefined, 0x103000n, "read", 4);
    assert.equal(t.ok, false, "unmapped from the hardware too");

    // No dma_entry_limit: more than 65535 mappings (no domain, so nothing is pinned).
    const n = compatWorld(false);
    const one = n.mem(PAGE);
    for (let i = 0; i < 65536 + 1; i++) {
      const rc = mapDma(n, RW, one.address, 0x100000000n + BigInt(i) * 0x1000n, 0x1000n);
      if (rc !== 0) assert.fail(`map #${i}: ${n.name(rc)}`);
    }
    assert.equal(unmapDma(n, u.VFIO_DMA_UNMAP_FLAG_ALL, 0n, 0n), "OK/0x10001000");
  },
});
