/**
 * VFIO device regions (BARs, ROM, config space, device-specific regions): their info with the
 * capability chain, and access to them as an {@link Mmio}.
 *
 * A region is reached at `region_info.offset` in the device fd — never at an offset computed by
 * hand (vfio.md §7.2: the `index << 40` encoding is a vfio-pci convention, not ABI). A region
 * the kernel lets us mmap is mapped (whole, or the areas of its SPARSE_MMAP capability); every
 * other access goes through pread/pwrite of exactly the access width at
 * `region_info.offset + offset`, behind the same {@link Mmio} interface.
 *
 * @example
 * ```ts
 * const info = queryRegionInfo(kernel, deviceFd, 0, "0000:00:02.0");
 * const bar0 = openRegion(kernel, deviceFd, info, "0000:00:02.0");
 * bar0.access.write32(0x04, 0x12345678);
 * ```
 *
 * @module
 */

import type { Kernel, Mmio } from "../ffi/kernel.ts";
import { decode, encode } from "../ffi/uapi/layout.ts";
import {
  decodeArray,
  readCapChain,
  VFIO_DEVICE_GET_REGION_INFO,
  vfio_region_info,
  VFIO_REGION_INFO_CAP_MSIX_MAPPABLE,
  VFIO_REGION_INFO_CAP_SPARSE_MMAP,
  vfio_region_info_cap_sparse_mmap,
  VFIO_REGION_INFO_CAP_TYPE,
  vfio_region_info_cap_type,
  VFIO_REGION_INFO_FLAG_CAPS,
  VFIO_REGION_INFO_FLAG_MMAP,
  VFIO_REGION_INFO_FLAG_READ,
  VFIO_REGION_INFO_FLAG_WRITE,
  vfio_region_sparse_mmap_area,
  type VfioCapHeader,
} from "../ffi/uapi/mod.ts";
import { VfioError } from "./errors.ts";
import { ioctlChecked } from "./syscall.ts";

/** One mmap-able window of a region (from the SPARSE_MMAP capability). */
export interface SparseMmapArea {
  /** Byte offset inside the region. */
  readonly offset: bigint;
  /** Length in bytes. */
  readonly size: bigint;
}

/** What VFIO_DEVICE_GET_REGION_INFO reports for one region, capabilities decoded. */
export interface RegionInfo {
  /** The region index (BAR n = n, ROM 6, CONFIG 7, VGA 8, device-specific ≥ 9). */
  readonly index: number;
  /** VFIO_REGION_INFO_FLAG_* bits. */
  readonly flags: number;
  /** Region size in bytes (0: the BAR is not implemented). */
  readonly size: bigint;
  /** Where the region starts in the device fd: the only offset ever used to reach it. */
  readonly offset: bigint;
  /** FLAG_READ. */
  readonly readable: boolean;
  /** FLAG_WRITE. */
  readonly writable: boolean;
  /** FLAG_MMAP. */
  readonly mmap: boolean;
  /** The SPARSE_MMAP areas, when the region carries that capability. */
  readonly sparseAreas?: readonly SparseMmapArea[];
  /** The TYPE capability (`type`, `subtype`) of a device-specific region. */
  readonly type?: { readonly type: number; readonly subtype: number };
  /** The MSIX_MAPPABLE capability: the MSI-X table in this BAR may be mmapped. */
  readonly msixMappable: boolean;
  /** Every capability header of the chain, in order. */
  readonly caps: readonly VfioCapHeader[];
}

/**
 * VFIO_DEVICE_GET_REGION_INFO with the argsz protocol: a first call with `argsz = 32`; when the
 * kernel sets FLAG_CAPS and a larger `argsz`, a second call with a buffer of that size fetches
 * the capability chain, which is then decoded.
 */
export function queryRegionInfo(
  kernel: Kernel,
  fd: number,
  index: number,
  device: string,
): RegionInfo {
  const layout = vfio_region_info;
  const hints = { EINVAL: `the device has no region ${index}` };
  let bytes = encode(layout, { argsz: layout.size, index });
  ioctlChecked(kernel, fd, VFIO_DEVICE_GET_REGION_INFO, bytes, device, hints);
  let info = decode(layout, bytes);
  if ((info.flags & VFIO_REGION_INFO_FLAG_CAPS) !== 0 && info.argsz > layout.size) {
    bytes = encode(layout, { argsz: info.argsz, index }, info.argsz - layout.size);
    ioctlChecked(kernel, fd, VFIO_DEVICE_GET_REGION_INFO, bytes, device, hints);
    info = decode(layout, bytes);
  }
  const hasCaps = (info.flags & VFIO_REGION_INFO_FLAG_CAPS) !== 0 && info.cap_offset !== 0;
  const caps = hasCaps ? readCapChain(bytes, info.cap_offset) : [];
  let sparseAreas: SparseMmapArea[] | undefined;
  let type: { type: number; subtype: number } | undefined;
  let msixMappable = false;
  for (const cap of caps) {
    if (cap.id === VFIO_REGION_INFO_CAP_SPARSE_MMAP) sparseAreas = decodeSparse(bytes, cap.offset);
    else if (cap.id === VFIO_REGION_INFO_CAP_MSIX_MAPPABLE) msixMappable = true;
    else if (cap.id === VFIO_REGION_INFO_CAP_TYPE) {
      const t = decode(vfio_region_info_cap_type, bytes, cap.offset);
      type = { type: t.type, subtype: t.subtype };
    }
  }
  return {
    index,
    flags: info.flags,
    size: info.size,
    offset: info.offset,
    readable: (info.flags & VFIO_REGION_INFO_FLAG_READ) !== 0,
    writable: (info.flags & VFIO_REGION_INFO_FLAG_WRITE) !== 0,
    mmap: (info.flags & VFIO_REGION_INFO_FLAG_MMAP) !== 0,
    sparseAreas,
    type,
    msixMappable,
    caps,
  };
}

function decodeSparse(bytes: Uint8Array, at: number): SparseMmapArea[] {
  const header = decode(vfio_region_info_cap_sparse_mmap, bytes, at);
  const first = at + vfio_region_info_cap_sparse_mmap.size;
  // A truncated chain keeps the complete areas (decodeArray stops at the end of the buffer).
  return decodeArray(vfio_region_sparse_mmap_area, bytes, first, header.nr_areas)
    .map((area) => ({ offset: area.offset, size: area.size }));
}

const BYTE = 1;
const HALF = 2;
const WORD = 4;
const DWORD = 8;
const BYTE_MASK = 0xff;
const HALF_MASK = 0xffff;

/**
 * An {@link Mmio} over pread/pwrite of the device fd: each access is one pread or pwrite of
 * exactly its width at `region_info.offset + offset`. Used for config space, I/O BARs, regions
 * without FLAG_MMAP and as the fallback when mmap fails. Failures throw a VfioError.
 */
export class PreadMmio implements Mmio {
  /** Region length in bytes. */
  readonly length: number;
  readonly #kernel: Kernel;
  readonly #fd: number;
  readonly #base: bigint;
  readonly #device: string;
  readonly #index: number;
  readonly #buffer = new Uint8Array(DWORD);
  readonly #view = new DataView(this.#buffer.buffer);
  readonly #slices = [BYTE, HALF, WORD, DWORD].map((n) => this.#buffer.subarray(0, n));

  /** Access `length` bytes of region `index` starting at `base` (its `region_info.offset`). */
  constructor(
    kernel: Kernel,
    fd: number,
    base: bigint,
    length: number,
    device: string,
    index: number,
  ) {
    this.#kernel = kernel;
    this.#fd = fd;
    this.#base = base;
    this.length = length;
    this.#device = device;
    this.#index = index;
  }

  /** One 1-byte pread. */
  read8(offset: number): number {
    this.#read(offset, BYTE);
    return this.#view.getUint8(0);
  }
  /** One 1-byte pwrite. */
  write8(offset: number, value: number): void {
    this.#view.setUint8(0, value & BYTE_MASK);
    this.#write(offset, BYTE);
  }
  /** One 2-byte pread (little-endian, as PCI). */
  read16(offset: number): number {
    this.#read(offset, HALF);
    return this.#view.getUint16(0, true);
  }
  /** One 2-byte pwrite. */
  write16(offset: number, value: number): void {
    this.#view.setUint16(0, value & HALF_MASK, true);
    this.#write(offset, HALF);
  }
  /** One 4-byte pread. */
  read32(offset: number): number {
    this.#read(offset, WORD);
    return this.#view.getUint32(0, true);
  }
  /** One 4-byte pwrite; `value` is taken modulo 2^32. */
  write32(offset: number, value: number): void {
    this.#view.setUint32(0, value >>> 0, true);
    this.#write(offset, WORD);
  }
  /** One 8-byte pread. */
  read64(offset: number): bigint {
    this.#read(offset, DWORD);
    return this.#view.getBigUint64(0, true);
  }
  /** One 8-byte pwrite. */
  write64(offset: number, value: bigint): void {
    this.#view.setBigUint64(0, BigInt.asUintN(64, value), true);
    this.#write(offset, DWORD);
  }

  #slice(width: number): Uint8Array {
    return this.#slices[Math.log2(width)];
  }

  #read(offset: number, width: number): void {
    this.#bounds(offset, width, "pread");
    const n = this.#kernel.pread(this.#fd, this.#slice(width), this.#base + BigInt(offset));
    this.#result(n, width, offset, "pread");
  }

  #write(offset: number, width: number): void {
    this.#bounds(offset, width, "pwrite");
    const n = this.#kernel.pwrite(this.#fd, this.#slice(width), this.#base + BigInt(offset));
    this.#result(n, width, offset, "pwrite");
  }

  #bounds(offset: number, width: number, operation: string): void {
    if (!Number.isInteger(offset) || offset < 0 || offset + width > this.length) {
      throw new VfioError({
        operation,
        device: this.#device,
        message: `${width}-byte access at offset ${offset} is outside region ${this.#index} ` +
          `(${this.length} bytes)`,
      });
    }
  }

  #result(n: number, width: number, offset: number, operation: string): void {
    if (n === width) return;
    throw new VfioError({
      operation,
      device: this.#device,
      errno: n < 0 ? -n : undefined,
      message: n < 0
        ? `${width}-byte access at offset 0x${offset.toString(16)} of region ${this.#index}`
        : `short ${operation} (${n} of ${width} bytes) at offset 0x${
          offset.toString(16)
        } of region ${this.#index}`,
    });
  }
}

interface Window {
  readonly start: number;
  readonly end: number;
  readonly mmio: Mmio;
}

/**
 * An {@link Mmio} over a region with SPARSE_MMAP areas: accesses that fall inside a mapped area
 * go to the mapping, all others to pread/pwrite.
 */
export class SparseMmio implements Mmio {
  /** Region length in bytes. */
  readonly length: number;
  readonly #windows: readonly Window[];
  readonly #fallback: Mmio;

  /** Combine the mapped `windows` (offsets inside the region) with a pread/pwrite fallback. */
  constructor(
    length: number,
    windows: readonly { offset: number; mmio: Mmio }[],
    fallback: Mmio,
  ) {
    this.length = length;
    this.#windows = windows.map((w) => ({
      start: w.offset,
      end: w.offset + w.mmio.length,
      mmio: w.mmio,
    }));
    this.#fallback = fallback;
  }

  /** 8-bit load. */
  read8(offset: number): number {
    const w = this.#find(offset, BYTE);
    return w ? w.mmio.read8(offset - w.start) : this.#fallback.read8(offset);
  }
  /** 8-bit store. */
  write8(offset: number, value: number): void {
    const w = this.#find(offset, BYTE);
    if (w) w.mmio.write8(offset - w.start, value);
    else this.#fallback.write8(offset, value);
  }
  /** 16-bit load. */
  read16(offset: number): number {
    const w = this.#find(offset, HALF);
    return w ? w.mmio.read16(offset - w.start) : this.#fallback.read16(offset);
  }
  /** 16-bit store. */
  write16(offset: number, value: number): void {
    const w = this.#find(offset, HALF);
    if (w) w.mmio.write16(offset - w.start, value);
    else this.#fallback.write16(offset, value);
  }
  /** 32-bit load. */
  read32(offset: number): number {
    const w = this.#find(offset, WORD);
    return w ? w.mmio.read32(offset - w.start) : this.#fallback.read32(offset);
  }
  /** 32-bit store. */
  write32(offset: number, value: number): void {
    const w = this.#find(offset, WORD);
    if (w) w.mmio.write32(offset - w.start, value);
    else this.#fallback.write32(offset, value);
  }
  /** 64-bit load. */
  read64(offset: number): bigint {
    const w = this.#find(offset, DWORD);
    return w ? w.mmio.read64(offset - w.start) : this.#fallback.read64(offset);
  }
  /** 64-bit store. */
  write64(offset: number, value: bigint): void {
    const w = this.#find(offset, DWORD);
    if (w) w.mmio.write64(offset - w.start, value);
    else this.#fallback.write64(offset, value);
  }

  #find(offset: number, width: number): Window | undefined {
    for (const w of this.#windows) {
      if (offset >= w.start && offset + width <= w.end) return w;
    }
    return undefined;
  }
}

/** How a region is reached: one mapping, mapped areas plus pread, or pread/pwrite only. */
export type RegionAccessMode = "mmap" | "sparse" | "pread";

/** An opened region: the {@link Mmio} to use and the kernel mappings behind it. */
export interface OpenedRegion {
  /** The region's info. */
  readonly info: RegionInfo;
  /** The accessor drivers use. */
  readonly access: Mmio;
  /** How `access` reaches the device. */
  readonly mode: RegionAccessMode;
  /** The kernel mappings to munmap when the region is released. */
  readonly mappings: readonly Mmio[];
}

/**
 * Open a region for access: mmap it when FLAG_MMAP is set (only the SPARSE_MMAP areas when the
 * region carries that capability), falling back to pread/pwrite for anything not mapped,
 * including when mmap itself fails. Throws a VfioError for an unimplemented (size 0) region.
 */
export function openRegion(
  kernel: Kernel,
  fd: number,
  info: RegionInfo,
  device: string,
): OpenedRegion {
  if (info.size === 0n) {
    throw new VfioError({
      operation: "region",
      device,
      message: `region ${info.index} is not implemented (size 0)`,
      hint: "check which BARs the device has (lspci -v)",
    });
  }
  if (info.size > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new VfioError({
      operation: "region",
      device,
      message: `region ${info.index} of 0x${info.size.toString(16)} bytes is too large to access`,
    });
  }
  const length = Number(info.size);
  const pread = new PreadMmio(kernel, fd, info.offset, length, device, info.index);
  if (!info.mmap) return { info, access: pread, mode: "pread", mappings: [] };
  if (info.sparseAreas === undefined) {
    const whole = kernel.mmapDevice(fd, info.offset, length);
    if (typeof whole === "number") return { info, access: pread, mode: "pread", mappings: [] };
    return { info, access: whole, mode: "mmap", mappings: [whole] };
  }
  const windows: { offset: number; mmio: Mmio }[] = [];
  for (const area of info.sparseAreas) {
    if (area.size === 0n || area.offset + area.size > info.size) continue;
    const mmio = kernel.mmapDevice(fd, info.offset + area.offset, Number(area.size));
    if (typeof mmio !== "number") windows.push({ offset: Number(area.offset), mmio });
  }
  if (windows.length === 0) return { info, access: pread, mode: "pread", mappings: [] };
  const access = new SparseMmio(length, windows, pread);
  return { info, access, mode: "sparse", mappings: windows.map((w) => w.mmio) };
}
