/**
 * Shorthands the iommufd tests share: IOAS allocation, map, unmap, IOVA ranges, allowed IOVAs,
 * device bind and object destruction, each one ioctl on a {@link World} (iommufd_fixture.ts).
 *
 * @module
 */

import assert from "node:assert/strict";
import { decode, encode } from "../../ffi/uapi/layout.ts";
import * as u from "../../ffi/uapi/mod.ts";
import { PAGE, type World } from "./iommufd_fixture.ts";

/** IOAS_MAP readable and writeable. */
export const RW = u.IOMMU_IOAS_MAP_READABLE | u.IOMMU_IOAS_MAP_WRITEABLE;
/** IOAS_MAP at a fixed IOVA, readable and writeable. */
export const FIXED_RW = u.IOMMU_IOAS_MAP_FIXED_IOVA | RW;
/** The x86 MSI window's base. */
export const MSI = 0xfee00000n;
/** VT-d ECAP of QEMU with scalable mode (SMTS), nesting (NEST) and second-stage A/D (SLADS). */
export const NEST_ECAP = 0xf00f4an | (1n << 26n) | (1n << 43n) | (1n << 45n);

/** IOAS_ALLOC; asserts it succeeds and returns the new id. */
export function ioasAlloc(w: World): number {
  const r = w.call(u.IOMMU_IOAS_ALLOC, u.iommu_ioas_alloc, { size: 12 });
  assert.equal(r.rc, 0);
  return r.out.out_ioas_id;
}

/** Bind function `i` of the world's group; asserts it succeeds and returns the device id. */
export function bind(w: World, i = 0): number {
  const id = w.ctx.bindDevice(w.fns[i], w.process);
  assert.ok(id > 0, `bind: ${w.name(id)}`);
  return id;
}

/** IOAS_MAP with FIXED_IOVA | READABLE | WRITEABLE unless `v` says otherwise. */
export function map(
  w: World,
  v: Partial<ReturnType<typeof decode<typeof u.iommu_ioas_map.fields>>>,
): { rc: number; iova: bigint } {
  const r = w.call(u.IOMMU_IOAS_MAP, u.iommu_ioas_map, { size: 40, flags: FIXED_RW, ...v });
  return { rc: r.rc, iova: r.out.iova };
}

/** IOAS_UNMAP of `[iova, iova + length)`. */
export function unmap(
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

/** IOAS_IOVA_RANGES with room for `room` ranges, each formatted `0xstart-0xlast`. */
export function ranges(
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

/** IOMMU_DESTROY of `id`; the return code. */
export function destroy(w: World, id: number): number {
  return w.call(u.IOMMU_DESTROY, u.iommu_destroy, { size: 8, id }).rc;
}

/** IOAS_ALLOW_IOVAS with `list` of `[start, last]`; the return code. */
export function allowIovas(w: World, ioas: number, list: [bigint, bigint][]): number {
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

/** The IOVA ranges of an IOAS once a VT-d device is attached (MSI window and aperture cut). */
export const ATTACHED = ["0x0-0xfedfffff", "0xfef00000-0xffffffffffff"];
