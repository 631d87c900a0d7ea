/**
 * A device's path to memory: every DMA goes through the IOMMU model's `translate`, one 4 KiB IOVA
 * page at a time, then to {@link PhysicalMemory}. Like hardware:
 * - a function whose Command.BusMaster is clear cannot issue the request at all: the access
 *   fails without reaching the IOMMU (no fault is recorded), and a trace line says so;
 * - a transfer that faults stops at the faulting page; the pages before it were transferred.
 *
 * **The port's translation cache.** A device model touches the same few pages (its rings, its
 * buffers) for every packet, so the port keeps the answers of `translate` in a small
 * direct-mapped cache of 4 KiB pages, tagged by IOVA page and PASID (the port is one requester
 * id), each with the physical chunk behind it. It cannot serve a translation the model would not
 * serve, because it keeps only what the model vouches for and drops it when the model says so:
 * - an answer is stored only when the model marked it cacheable ({@link TranslationHint}): the
 *   model promises the same answer for the whole page, for that access, with no side effect, for
 *   as long as its {@link TranslationEpoch} keeps its value — in practice an answer now held in
 *   the model's own IOTLB, configuration or TCE cache, or computed from state whose every change
 *   bumps the epoch;
 * - an entry is used only while the model's epoch still has the value it had right after the
 *   `translate` call that produced it, and only for an access (read or write) the model has
 *   answered for that page: every IOTLB insertion, eviction or invalidation, configuration-cache
 *   invalidation, attach/detach, PASID-table change, TCE write, window or EEH change of that
 *   IOMMU ends every entry of every port behind it;
 * - faults are never stored, so a faulting access always reaches the model and leaves its record
 *   and kernel log line exactly as before; a stale IOTLB entry of the model stays visible through
 *   the port exactly as long as the model itself would answer from it.
 * Models without a `translationEpoch` are asked for every page. The only thing the cache changes
 * is how often the model's lookups run: IOTLB hit counters count the lookups that reach it.
 *
 * @example
 * ```ts
 * const dma = createDmaPort({ iommu, memory, requester: 0x0010, config: edu.config });
 * dma.write(0x100000n, new Uint8Array([1, 2, 3])); // true when mapped and bus master is on
 * dma.read32(0x100000); // 0x030201, or DMA_FAULT (-1)
 * ```
 *
 * @module
 */

import type { VirtualClock } from "../clock.ts";
import {
  type DmaAccess,
  type IommuModel,
  TranslationEpoch,
  type TranslationHint,
} from "../iommu/model.ts";
import type { PhysicalChunk, PhysicalMemory } from "../memory.ts";
import { type ByteViews, copyBytes, ViewCache } from "../bytes.ts";
import { PCI_COMMAND, PCI_COMMAND_MASTER } from "./pci_regs.ts";
import { DMA_FAULT, type DmaPort, type PciConfig } from "./device.ts";

/** Requests never cross a 4 KiB boundary (translation granule; PCIe 4.0 §2.2.7). */
export const DMA_PAGE_SIZE = 4096;
/**
 * Entries of a port's translation cache (a power of two), direct-mapped by IOVA page number
 * folded with its bits above the index (rings and buffers 2 MiB apart do not collide).
 */
export const DMA_CACHE_SLOTS = 1024;

/** Options of {@link createDmaPort}. */
export interface DmaPortOptions {
  /** The IOMMU translating this function's requests. */
  readonly iommu: IommuModel;
  /** Physical memory behind the IOMMU. */
  readonly memory: PhysicalMemory;
  /** Requester id (bus << 8 | device << 3 | function). */
  readonly requester: number;
  /** The function's config space (for Command.BusMaster). */
  readonly config: PciConfig;
  /** Clock for trace timestamps (optional). */
  readonly clock?: VirtualClock;
  /** Trace sink for refused and faulting DMA (optional). */
  readonly trace?: (line: string) => void;
}

/** A {@link DmaPort} for one function. */
export function createDmaPort(o: DmaPortOptions): DmaPort {
  return new CachingDmaPort(o);
}

const PAGE_MASK = DMA_PAGE_SIZE - 1;
const SLOT_MASK = DMA_CACHE_SLOTS - 1;
/** The extra slot that holds an answer the model did not let the port keep (never looked up). */
const SCRATCH = DMA_CACHE_SLOTS;
const READ = 1;
const WRITE = 2;
const NO_PASID = -1;
/** Largest IOVA + length the number-address methods accept (exclusive: 2^53). */
const SAFE_END = Number.MAX_SAFE_INTEGER + 1;
/** What the port's page translation answers for a failed access (already traced). */
const FAILED = -1;

/**
 * The cache slot of an IOVA's page: the page number's low bits folded with the ten above them (so
 * rings and buffers 4 MiB apart do not collide). `>>>` takes the address modulo 2^32, which is
 * fine for a hash: entries are tagged with the whole page address.
 */
function slotOf(addr: number): number {
  return ((addr >>> 12) ^ (addr >>> 22)) & SLOT_MASK;
}

/** "bb:dd.f" of a requester id. */
function bdf(requester: number): string {
  const hex = (n: number): string => n.toString(16).padStart(2, "0");
  return `${hex((requester >> 8) & 0xff)}:${hex((requester >> 3) & 0x1f)}.${requester & 0x7}`;
}

/** The port with its translation cache (see the module doc). */
class CachingDmaPort implements DmaPort {
  readonly #o: DmaPortOptions;
  /** The model's epoch (a private one, never bumped, when the model has none). */
  readonly #epoch: TranslationEpoch;
  /** Whether answers are kept (the model has a translation epoch). */
  readonly #caching: boolean;
  readonly #hint: TranslationHint = { cacheable: false };
  // One cache entry per slot (slot SCRATCH: the answer of the current uncacheable access).
  /** IOVA of the page's first byte (-1: empty). */
  readonly #iova = new Float64Array(DMA_CACHE_SLOTS + 1).fill(-1);
  /** PASID of the entry ({@link NO_PASID} for requests without one). */
  readonly #pasid = new Int32Array(DMA_CACHE_SLOTS + 1);
  /** The model's epoch right after the translation. */
  readonly #gen = new Float64Array(DMA_CACHE_SLOTS + 1).fill(-1);
  /** Accesses the model answered for the page: {@link READ} | {@link WRITE}. */
  readonly #perm = new Uint8Array(DMA_CACHE_SLOTS + 1);
  /** Physical address of the page's first byte. */
  readonly #phys = new Float64Array(DMA_CACHE_SLOTS + 1);
  /** The chunk backing the page (undefined: not RAM). */
  readonly #chunk: (PhysicalChunk | undefined)[] = new Array(DMA_CACHE_SLOTS + 1).fill(undefined);
  /** Views over the chunk's bytes. */
  readonly #view: (ByteViews | undefined)[] = new Array(DMA_CACHE_SLOTS + 1).fill(undefined);
  /** Offset of the page's first byte in the chunk. */
  readonly #off = new Float64Array(DMA_CACHE_SLOTS + 1);
  /** Bytes of the page the chunk backs, from its first byte (0: not RAM). */
  readonly #backed = new Float64Array(DMA_CACHE_SLOTS + 1);
  readonly #small = new Uint8Array(4);
  readonly #smallView = new DataView(this.#small.buffer);
  /** The transfer a miss belongs to (for its trace line). */
  #callIova = 0;
  #callLength = 0;
  /** Views of the device buffers passed to readInto/writeFrom (the same few every time). */
  readonly #buffers = new ViewCache();

  constructor(o: DmaPortOptions) {
    this.#o = o;
    this.#epoch = o.iommu.translationEpoch ?? new TranslationEpoch();
    this.#caching = o.iommu.translationEpoch !== undefined;
  }

  read(iova: bigint, dst: Uint8Array, pasid?: number): boolean {
    if (iova >= 0n && iova + BigInt(dst.length) <= BigInt(SAFE_END)) {
      return this.#transfer(false, Number(iova), dst, 0, dst.length, pasid);
    }
    return this.#bigTransfer("read", iova, dst, pasid);
  }

  write(iova: bigint, src: Uint8Array, pasid?: number): boolean {
    if (iova >= 0n && iova + BigInt(src.length) <= BigInt(SAFE_END)) {
      return this.#transfer(true, Number(iova), src, 0, src.length, pasid);
    }
    return this.#bigTransfer("write", iova, src, pasid);
  }

  readInto(
    iova: number,
    dst: Uint8Array,
    dstOffset: number,
    length: number,
    pasid?: number,
  ): boolean {
    checkRange(dst, dstOffset, length);
    return this.#transfer(false, iova, dst, dstOffset, length, pasid);
  }

  writeFrom(
    iova: number,
    src: Uint8Array,
    srcOffset: number,
    length: number,
    pasid?: number,
  ): boolean {
    checkRange(src, srcOffset, length);
    return this.#transfer(true, iova, src, srcOffset, length, pasid);
  }

  read16(iova: number, pasid?: number): number {
    return this.#get(iova, pasid, 2);
  }

  read32(iova: number, pasid?: number): number {
    return this.#get(iova, pasid, 4);
  }

  write16(iova: number, value: number, pasid?: number): boolean {
    return this.#put(iova, value & 0xffff, pasid, 2);
  }

  write32(iova: number, value: number, pasid?: number): boolean {
    return this.#put(iova, value >>> 0, pasid, 4);
  }

  /** A little-endian value of `bytes` bytes (2 or 4) at `iova`, or DMA_FAULT. */
  #get(iova: number, pasid: number | undefined, bytes: 2 | 4): number {
    const at = iova & PAGE_MASK;
    if (at > DMA_PAGE_SIZE - bytes) {
      // Across a page boundary: two pieces, as any transfer.
      if (!this.#transfer(false, iova, this.#small, 0, bytes, pasid)) return DMA_FAULT;
      const v = this.#smallView;
      return bytes === 2 ? v.getUint16(0, true) : v.getUint32(0, true);
    }
    if (!this.#busMaster(false, iova, bytes)) return DMA_FAULT;
    const hit = this.#hit(iova, pasid, READ, bytes);
    const s = hit >= 0 ? hit : this.#call(iova, bytes).#miss(iova, pasid, false, 0, bytes);
    if (s === FAILED) return DMA_FAULT;
    const v = this.#view[s]!.data;
    const o = this.#off[s] + at;
    return bytes === 2 ? v.getUint16(o, true) : v.getUint32(o, true);
  }

  /** Store `value` as `bytes` (2 or 4) little-endian bytes at `iova`; false when it failed. */
  #put(iova: number, value: number, pasid: number | undefined, bytes: 2 | 4): boolean {
    const at = iova & PAGE_MASK;
    if (at > DMA_PAGE_SIZE - bytes) {
      if (bytes === 2) this.#smallView.setUint16(0, value, true);
      else this.#smallView.setUint32(0, value, true);
      return this.#transfer(true, iova, this.#small, 0, bytes, pasid);
    }
    if (!this.#busMaster(true, iova, bytes)) return false;
    const hit = this.#hit(iova, pasid, WRITE, bytes);
    const s = hit >= 0 ? hit : this.#call(iova, bytes).#miss(iova, pasid, true, 0, bytes);
    if (s === FAILED) return false;
    const v = this.#view[s]!.data;
    const o = this.#off[s] + at;
    if (bytes === 2) v.setUint16(o, value, true);
    else v.setUint32(o, value, true);
    return true;
  }

  /** Copy `length` bytes between `iova` and `buf[offset…]`, page by page. */
  #transfer(
    write: boolean,
    iova: number,
    buf: Uint8Array,
    offset: number,
    length: number,
    pasid: number | undefined,
  ): boolean {
    if (!this.#busMaster(write, iova, length)) return false;
    const views = this.#buffers.of(buf);
    let done = 0;
    while (done < length) {
      const addr = iova + done;
      const at = addr & PAGE_MASK;
      const n = Math.min(DMA_PAGE_SIZE - at, length - done);
      const hit = this.#hit(addr, pasid, write ? WRITE : READ, n);
      const s = hit >= 0 ? hit : this.#call(iova, length).#miss(addr, pasid, write, done, n);
      if (s === FAILED) return false;
      const pos = this.#off[s] + at;
      if (write) copyBytes(views, offset + done, this.#view[s]!, pos, n);
      else copyBytes(this.#view[s]!, pos, views, offset + done, n);
      done += n;
    }
    return true;
  }

  /** Bus mastering on? Otherwise the request is never issued (traced, no IOMMU fault). */
  #busMaster(write: boolean, iova: number | bigint, length: number): boolean {
    // Command.BusMaster is in the register's low byte (PCI 3.0 §6.2.2).
    if ((this.#o.config.read(PCI_COMMAND, 1) & PCI_COMMAND_MASTER) !== 0) return true;
    this.#trace(
      `${this.#what(write, iova, length)} refused: bus master disabled (PCI_COMMAND.MASTER clear)`,
    );
    return false;
  }

  /** The cache slot answering `n` bytes at `addr` for `access` (READ or WRITE), or -1. */
  #hit(addr: number, pasid: number | undefined, access: number, n: number): number {
    const s = slotOf(addr);
    const at = addr & PAGE_MASK;
    if (
      this.#iova[s] === addr - at && this.#gen[s] === this.#epoch.value &&
      (this.#perm[s] & access) !== 0 && this.#pasid[s] === (pasid ?? NO_PASID)
    ) {
      const chunk = this.#chunk[s];
      if (chunk !== undefined && chunk.refs > 0 && at + n <= this.#backed[s]) return s;
    }
    return -1;
  }

  /**
   * Ask the model about the `n` bytes at `addr` (within one page) and keep its answer when it
   * may be kept: the slot holding it, or FAILED when the model faulted or the bytes are not RAM
   * (traced as part of the current call's transfer, `done` bytes into it).
   */
  #miss(addr: number, pasid: number | undefined, write: boolean, done: number, n: number): number {
    const iova = this.#callIova;
    const length = this.#callLength;
    if (!Number.isSafeInteger(addr) || addr < 0 || addr + n > SAFE_END) {
      throw new RangeError(
        `DMA: IOVA ${addr} is not a non-negative safe integer (use the bigint read/write)`,
      );
    }
    const at = addr & PAGE_MASK;
    const page = addr - at;
    const access: DmaAccess = write ? "write" : "read";
    const hint = this.#hint;
    hint.cacheable = false;
    const r = this.#o.iommu.translate(this.#o.requester, pasid, BigInt(addr), access, n, hint);
    if (!r.ok) {
      this.#trace(
        `${this.#what(write, iova, length)} stopped after ${done} bytes: ${r.fault.message}`,
      );
      return FAILED;
    }
    const phys = Number(r.phys);
    const physPage = phys - at;
    const s = hint.cacheable && this.#caching ? slotOf(addr) : SCRATCH;
    const bit = write ? WRITE : READ;
    const gen = this.#epoch.value;
    const tag = pasid ?? NO_PASID;
    const same = this.#iova[s] === page && this.#gen[s] === gen && this.#pasid[s] === tag &&
      this.#phys[s] === physPage;
    this.#perm[s] = same ? this.#perm[s] | bit : bit;
    this.#iova[s] = s === SCRATCH ? -1 : page;
    this.#gen[s] = gen;
    this.#pasid[s] = tag;
    this.#phys[s] = physPage;
    const chunk = this.#o.memory.chunkAt(physPage);
    if (chunk !== undefined) {
      this.#chunk[s] = chunk;
      this.#view[s] = this.#o.memory.viewOf(chunk);
      this.#off[s] = physPage - chunk.base;
      this.#backed[s] = Math.min(DMA_PAGE_SIZE, chunk.base + chunk.length - physPage);
    } else {
      this.#chunk[s] = undefined;
      this.#view[s] = undefined;
      this.#backed[s] = 0;
    }
    if (at + n > this.#backed[s]) {
      this.#trace(
        `${this.#what(write, iova, length)} stopped after ${done} bytes: physical 0x${
          phys.toString(16)
        } is not RAM`,
      );
      return FAILED;
    }
    return s;
  }

  /** Note the transfer a miss belongs to (its trace line names the whole transfer). */
  #call(iova: number, length: number): this {
    this.#callIova = iova;
    this.#callLength = length;
    return this;
  }

  #what(write: boolean, iova: number | bigint, length: number): string {
    return `${write ? "write" : "read"} iova=0x${iova.toString(16)} len=${length}`;
  }

  #trace(line: string): void {
    const o = this.#o;
    if (!o.trace) return;
    const t = o.clock ? `[${(o.clock.nowNs / 1e6).toFixed(6)} ms] ` : "";
    o.trace(`${t}dma ${bdf(o.requester)}: ${line}`);
  }

  /** A transfer at an IOVA beyond 2^53 (or a negative one): bigint arithmetic, no cache. */
  #bigTransfer(
    access: DmaAccess,
    iova: bigint,
    data: Uint8Array,
    pasid: number | undefined,
  ): boolean {
    const what = `${access} iova=0x${iova.toString(16)} len=${data.length}`;
    if (!this.#busMaster(access === "write", iova, data.length)) return false;
    let done = 0;
    while (done < data.length) {
      const at = iova + BigInt(done);
      const inPage = DMA_PAGE_SIZE - Number(at % BigInt(DMA_PAGE_SIZE));
      const n = Math.min(inPage, data.length - done);
      const r = this.#o.iommu.translate(this.#o.requester, pasid, at, access, n);
      if (!r.ok) {
        this.#trace(`${what} stopped after ${done} bytes: ${r.fault.message}`);
        return false;
      }
      const piece = data.subarray(done, done + n);
      const memory = this.#o.memory;
      const ok = access === "read" ? memory.read(r.phys, piece) : memory.write(r.phys, piece);
      if (!ok) {
        this.#trace(
          `${what} stopped after ${done} bytes: physical 0x${r.phys.toString(16)} is not RAM`,
        );
        return false;
      }
      done += n;
    }
    return true;
  }
}

/** A model bug, not a DMA failure: the range lies outside the model's own buffer. */
function checkRange(buf: Uint8Array, offset: number, length: number): void {
  if (!(offset >= 0 && length >= 0 && offset + length <= buf.length)) {
    throw new RangeError(
      `DMA: bytes [${offset}, ${offset + length}) outside a buffer of ${buf.length}`,
    );
  }
}
