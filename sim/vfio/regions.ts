/**
 * vfio-pci regions (vfio.md §7.2): GET_REGION_INFO, read/write through the device fd, and mmap of
 * memory BARs as an {@link Mmio} that dispatches to the device model.
 *
 * The device-fd offset of region `index` is `index << 40` (`VFIO_PCI_OFFSET_SHIFT`). BARs of the
 * simulated machine are assigned page-aligned, so every memory BAR is mmap-able; I/O BARs never
 * are. Reads of the MSI-X table through read/write are filtered as vfio-pci does (all-ones, writes
 * dropped); the table is reachable through mmap (MSIX_MAPPABLE). With memory decoding disabled in
 * PCI_COMMAND, BAR read/write answers EIO and an mmap access is a SIGBUS.
 *
 * @module
 */

import { ERRNO } from "../../ffi/errno.ts";
import { encode, offsetOfEnd } from "../../ffi/uapi/layout.ts";
import type { Mmio } from "../../ffi/kernel.ts";
import type { SimPciFunction } from "../kernel/pci_function.ts";
import { MmioFault, type MmioWidth, SimMmio } from "../kernel/mmio.ts";
import { copyIn, readStruct, writeStruct } from "../kernel/user.ts";
import type { BarDecl } from "../pci/device.ts";
import { buildCapChain, type InfoCap } from "./caps.ts";
import { configRw } from "./config_virt.ts";
import type { VfioEnv } from "./env.ts";
import { MSIX, msixTable, PCI } from "./pci_caps.ts";
import {
  vfio_info_cap_header,
  VFIO_PCI_BAR5_REGION_INDEX,
  VFIO_PCI_CONFIG_REGION_INDEX,
  VFIO_PCI_NUM_REGIONS,
  VFIO_PCI_ROM_REGION_INDEX,
  VFIO_PCI_VGA_REGION_INDEX,
  vfio_region_info,
  VFIO_REGION_INFO_CAP_MSIX_MAPPABLE,
  VFIO_REGION_INFO_FLAG_CAPS,
  VFIO_REGION_INFO_FLAG_MMAP,
  VFIO_REGION_INFO_FLAG_READ,
  VFIO_REGION_INFO_FLAG_WRITE,
} from "../../ffi/uapi/mod.ts";

/** `VFIO_PCI_OFFSET_SHIFT`: region index in the device-fd offset. */
export const VFIO_PCI_OFFSET_SHIFT = 40n;
/** `VFIO_PCI_OFFSET_MASK`: in-region offset bits. */
export const VFIO_PCI_OFFSET_MASK = (1n << VFIO_PCI_OFFSET_SHIFT) - 1n;
const CAP_VERSION = 1;
/** Value read from the filtered MSI-X table through read(). */
const FILTERED_BYTE = 0xff;

/** The device-fd offset of a region. */
export function regionOffset(index: number): bigint {
  return BigInt(index) << VFIO_PCI_OFFSET_SHIFT;
}

/** The BAR declaration of index `bar`, or undefined when unimplemented. */
export function barOf(fn: SimPciFunction, bar: number): BarDecl | undefined {
  return fn.model.bars.find((b) => b.index === bar && b.size > 0);
}

function memoryEnabled(fn: SimPciFunction): boolean {
  return (fn.model.config.read(PCI.COMMAND, 2) & PCI.COMMAND_MEMORY) !== 0;
}

/** VFIO_DEVICE_GET_REGION_INFO (minsz 32; `cap_offset` is echoed when there are no caps). */
export function getRegionInfo(fn: SimPciFunction, user: Uint8Array): number {
  const layout = vfio_region_info;
  const minsz = offsetOfEnd(layout, "offset");
  const info = readStruct(user, layout, minsz);
  if (info === undefined) return -ERRNO.EFAULT;
  if (info.argsz < minsz) return -ERRNO.EINVAL;
  const caps: InfoCap[] = [];
  const index = info.index;
  if (index === VFIO_PCI_CONFIG_REGION_INDEX) {
    info.offset = regionOffset(index);
    info.size = BigInt(fn.model.config.size);
    info.flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
  } else if (index <= VFIO_PCI_BAR5_REGION_INDEX) {
    const bar = barOf(fn, index);
    info.offset = regionOffset(index);
    info.size = BigInt(bar?.size ?? 0);
    info.flags = 0;
    if (bar !== undefined) {
      info.flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
      if (bar.kind !== "io") {
        info.flags |= VFIO_REGION_INFO_FLAG_MMAP;
        if (msixTable(fn.model.config)?.bar === index) {
          caps.push({
            id: VFIO_REGION_INFO_CAP_MSIX_MAPPABLE,
            version: CAP_VERSION,
            bytes: encode(vfio_info_cap_header, {}),
          });
        }
      }
    }
  } else if (index === VFIO_PCI_ROM_REGION_INDEX) {
    info.offset = regionOffset(index);
    info.flags = 0;
    info.size = 0n;
  } else if (index === VFIO_PCI_VGA_REGION_INDEX || index >= VFIO_PCI_NUM_REGIONS) {
    return -ERRNO.EINVAL;
  }
  const chain = buildCapChain(caps, layout.size);
  if (chain.length > 0) {
    info.flags |= VFIO_REGION_INFO_FLAG_CAPS;
    if (info.argsz < layout.size + chain.length) {
      info.argsz = layout.size + chain.length;
      info.cap_offset = 0;
    } else {
      const dst = copyIn(user, layout.size, chain.length);
      if (dst === undefined) return -ERRNO.EFAULT;
      dst.set(chain);
      info.cap_offset = layout.size;
    }
  }
  return writeStruct(user, layout, info, minsz) ? 0 : -ERRNO.EFAULT;
}

/** One BAR access of `size` bytes through the device model, as little-endian bytes. */
function barAccess(
  fn: SimPciFunction,
  bar: number,
  pos: number,
  size: MmioWidth,
  data: Uint8Array,
  at: number,
  write: boolean,
): void {
  const model = fn.model;
  if (fn.removed || fn.group.iommu.mmioBlocked?.(fn.requester)) {
    if (!write) data.fill(0xff, at, at + size); // gone, or EEH froze its PE: all-ones
    return;
  }
  if (write) {
    if (size === 8) {
      model.mmioWrite(
        bar,
        pos,
        8,
        new DataView(data.buffer, data.byteOffset).getBigUint64(at, true),
      );
    } else {
      let v = 0;
      for (let i = 0; i < size; i++) v |= data[at + i] << (8 * i);
      model.mmioWrite(bar, pos, size, v >>> 0);
    }
    return;
  }
  const value = BigInt.asUintN(size * 8, BigInt(model.mmioRead(bar, pos, size)));
  for (let i = 0; i < size; i++) data[at + i] = Number((value >> BigInt(8 * i)) & 0xffn);
}

function ioChunk(pos: number, count: number): MmioWidth {
  if (count >= 8 && pos % 8 === 0) return 8;
  if (count >= 4 && pos % 4 === 0) return 4;
  if (count >= 2 && pos % 2 === 0) return 2;
  return 1;
}

/** `vfio_pci_bar_rw`: bytes moved or -errno. */
function barRw(
  fn: SimPciFunction,
  bar: number,
  pos: bigint,
  buffer: Uint8Array,
  write: boolean,
): number {
  const decl = barOf(fn, bar);
  if (decl === undefined) return -ERRNO.EINVAL;
  const end = BigInt(decl.size);
  if (pos >= end) return -ERRNO.EINVAL;
  const count = Number(end - pos < BigInt(buffer.length) ? end - pos : BigInt(buffer.length));
  if (decl.kind !== "io" && !memoryEnabled(fn)) return -ERRNO.EIO;
  const table = msixTable(fn.model.config);
  const tableStart = table?.bar === bar ? table.offset : -1;
  const tableEnd = table?.bar === bar ? table.offset + table.entries * MSIX.ENTRY_SIZE : -1;
  let done = 0;
  const start = Number(pos);
  while (done < count) {
    const at = start + done;
    let size = ioChunk(at, count - done);
    if (at >= tableStart && at < tableEnd) {
      size = 1;
      if (!write) buffer[done] = FILTERED_BYTE;
    } else {
      while (size > 1 && at < tableStart && at + size > tableStart) size = (size / 2) as MmioWidth;
      barAccess(fn, bar, at, size, buffer, done, write);
    }
    done += size;
  }
  return done;
}

/** read/write/pread/pwrite on the device fd (`vfio_pci_rw`): bytes moved or -errno. */
export function regionRw(
  fn: SimPciFunction,
  offset: bigint,
  buffer: Uint8Array,
  write: boolean,
): number {
  if (buffer.length === 0) return 0;
  const index = offset >> VFIO_PCI_OFFSET_SHIFT;
  const pos = offset & VFIO_PCI_OFFSET_MASK;
  if (index >= BigInt(VFIO_PCI_NUM_REGIONS)) return -ERRNO.EINVAL;
  const i = Number(index);
  if (i === VFIO_PCI_CONFIG_REGION_INDEX) {
    if (pos >= BigInt(fn.model.config.size)) return -ERRNO.EFAULT;
    if (fn.removed) return removedConfigRw(fn.model.config.size, Number(pos), buffer, write);
    return configRw(fn.model.config, Number(pos), buffer, write);
  }
  if (i === VFIO_PCI_ROM_REGION_INDEX) return -ERRNO.EINVAL;
  if (i <= VFIO_PCI_BAR5_REGION_INDEX) return barRw(fn, i, pos, buffer, write);
  return -ERRNO.EINVAL;
}

/**
 * Config access to a removed function: no device answers, so reads complete all-ones and writes
 * go nowhere (the simulated vfio-pci keeps no virtual copy of config space; Linux's would still
 * answer the fields it virtualizes, such as the ids and BARs). Same range rule as {@link configRw}.
 */
function removedConfigRw(size: number, pos: number, buffer: Uint8Array, write: boolean): number {
  if (pos + buffer.length > size) return -ERRNO.EFAULT;
  if (!write) buffer.fill(0xff);
  return buffer.length;
}

/** `vfio_pci_core_mmap`: an Mmio over a memory BAR, or -EINVAL. */
export function regionMmap(
  fn: SimPciFunction,
  env: VfioEnv,
  offset: bigint,
  length: number,
): Mmio | number {
  const index = offset >> VFIO_PCI_OFFSET_SHIFT;
  if (index >= BigInt(VFIO_PCI_NUM_REGIONS)) return -ERRNO.EINVAL;
  if (index >= BigInt(VFIO_PCI_ROM_REGION_INDEX)) return -ERRNO.EINVAL;
  const bar = Number(index);
  const decl = barOf(fn, bar);
  if (decl === undefined || decl.kind === "io") return -ERRNO.EINVAL;
  const page = env.pageSize;
  const physLen = Math.ceil(decl.size / page) * page;
  const reqLen = Math.ceil(length / page) * page;
  const start = Number(offset & VFIO_PCI_OFFSET_MASK);
  if (start + reqLen > physLen) return -ERRNO.EINVAL;
  const label = `${fn.bdf} BAR${bar}`;
  return new SimMmio(reqLen, label, {
    read(off, size) {
      if (!memoryEnabled(fn)) throw new MmioFault(`SIGBUS: ${label}: memory decoding disabled`);
      if (
        start + off >= decl.size || fn.removed || fn.group.iommu.mmioBlocked?.(fn.requester)
      ) {
        return size === 8 ? (1n << 64n) - 1n : 2 ** (8 * size) - 1;
      }
      return fn.model.mmioRead(bar, start + off, size);
    },
    write(off, size, value) {
      if (!memoryEnabled(fn)) throw new MmioFault(`SIGBUS: ${label}: memory decoding disabled`);
      if (start + off >= decl.size || fn.removed || fn.group.iommu.mmioBlocked?.(fn.requester)) {
        return;
      }
      fn.model.mmioWrite(bar, start + off, size, value);
    },
  }, env.clock);
}
