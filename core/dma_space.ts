/**
 * DMA memory for drivers: a {@link DmaSpace} owns one IOMMU address space (a {@link DmaBackend}:
 * a type1 container, an iommufd IOAS or a sPAPR TCE container), allocates process memory, picks
 * IOVAs inside the ranges the kernel reports and maps the memory there.
 *
 * Several devices share one space: `openPciDevice` opens each device into `space.backend`.
 * The IOVA ranges shrink as devices attach (reserved regions, apertures, sPAPR windows); the
 * space re-reads them from the backend before every allocation.
 *
 * @example
 * ```ts
 * using space = DmaSpace.open(kernel, "iommufd");
 * const fd = space.backend.openDevice({ bdf: "0000:00:03.0", group: 7, cdev: "/dev/vfio/devices/vfio0" });
 * const ring = space.allocate(4096, { read: true, write: true });
 * regs.write32(RING_LO, ring.iovaLow);
 * regs.write32(RING_HI, ring.iovaHigh);
 * space.free(ring);
 * ```
 *
 * @module
 */

import type { Kernel, MappedMemory } from "../ffi/kernel.ts";
import type { DmaBackend, DmaBackendKind, DmaProtection, Iova, IovaRange } from "./dma_backend.ts";
import { VfioError } from "./errors.ts";
import { hex, IovaAllocator } from "./iova_allocator.ts";
import { type DmaBackendOptions, openDmaBackend } from "./backends.ts";
import { throwErrno } from "./syscall.ts";

/** Transparent huge pages are asked for (and IOVAs 2 MiB-aligned) from this size up. */
export const HUGE_PAGE_SIZE = 2 * 1024 * 1024;
const LOW_32_MASK = 0xffff_ffffn;
const HIGH_SHIFT = 32n;

/** A buffer mapped for DMA: the device uses `iova`, the CPU uses `bytes`. */
export interface DmaBuffer {
  /** The IOVA of `bytes[0]` as the device sees it. */
  readonly iova: Iova;
  /** Low 32 bits of the IOVA, for register writes on hot paths. */
  readonly iovaLow: number;
  /** High 32 bits of the IOVA. */
  readonly iovaHigh: number;
  /** The process virtual address of `bytes[0]`. */
  readonly vaddr: bigint;
  /** The mapped memory (the whole mapping, `size` bytes). */
  readonly bytes: Uint8Array;
  /** Mapped size in bytes (the request rounded up to the IOMMU page size). */
  readonly size: number;
}

/** Options of {@link DmaSpace.allocate}. */
export interface DmaAllocateOptions {
  /** The device may read the buffer (default true). */
  read?: boolean;
  /** The device may write the buffer (default true). */
  write?: boolean;
  /** Ask for transparent huge pages and a 2 MiB-aligned IOVA (default: size ≥ 2 MiB). */
  hugePages?: boolean;
  /** A fixed IOVA instead of an allocated one; it must lie inside {@link DmaSpace.ranges}. */
  iova?: bigint;
  /** IOVA alignment (a power of two; at least the IOMMU page size). */
  align?: bigint;
  /**
   * The highest IOVA the device can address (its DMA mask, e.g. `(1n << 28n) - 1n` for QEMU's
   * edu): the whole buffer lies at or below it. Default: no limit.
   */
  iovaLimit?: bigint;
}

/** Options of {@link DmaSpace.map}. */
export interface DmaMapOptions {
  /** The device may read the memory (default true). */
  read?: boolean;
  /** The device may write the memory (default true). */
  write?: boolean;
  /** A fixed IOVA instead of an allocated one. */
  iova?: bigint;
  /** IOVA alignment (a power of two; at least the IOMMU page size). */
  align?: bigint;
  /** Byte offset into the memory (a multiple of the IOMMU page size; default 0). */
  offset?: number;
  /** Bytes to map (a multiple of the IOMMU page size; default: the rest of the memory). */
  length?: number;
}

/** Options of {@link DmaSpace.open}. */
export interface DmaSpaceOptions {
  /** IOVA ranges never to hand out, on top of what the kernel reserves. */
  reserved?: readonly IovaRange[];
  /** Allow IOVA 0 to be allocated (off by default: 0 looks like a null pointer to devices). */
  allowZeroIova?: boolean;
  /** Options for the backend. */
  backend?: DmaBackendOptions;
}

interface Entry {
  readonly buffer: DmaBuffer;
  /** Memory the space allocated (and must munmap), or undefined for caller memory. */
  readonly owned: MappedMemory | undefined;
  readonly size: bigint;
}

/** One IOMMU address space with an IOVA allocator and the buffers mapped into it. */
export class DmaSpace {
  /** The backend: `openPciDevice` opens devices with `backend.openDevice(target)`. */
  readonly backend: DmaBackend;
  readonly #kernel: Kernel;
  readonly #options: DmaSpaceOptions;
  readonly #entries: Map<DmaBuffer, Entry> = new Map();
  #allocator: IovaAllocator | undefined;
  #seenRanges: IovaRange[] | undefined;
  #closed = false;

  /**
   * A space over a new backend of `kind` ("type1", "iommufd" or "spapr"). Throws a VfioError
   * (naming the ioctl, the errno and a hint) when the kernel refuses.
   */
  static open(kernel: Kernel, kind: DmaBackendKind, options: DmaSpaceOptions = {}): DmaSpace {
    return new DmaSpace(kernel, openDmaBackend(kernel, kind, options.backend), options);
  }

  /** A space over an existing backend; the space takes ownership (closes it on close). */
  constructor(kernel: Kernel, backend: DmaBackend, options: DmaSpaceOptions = {}) {
    this.#kernel = kernel;
    this.backend = backend;
    this.#options = options;
  }

  /** The backend's kind. */
  get kind(): DmaBackendKind {
    return this.backend.kind;
  }

  /** The usable IOVA ranges now: the kernel's ranges minus the reserved ones, whole pages. */
  ranges(): IovaRange[] {
    return this.#sync().ranges();
  }

  /** The IOMMU page size: every IOVA, size and offset is a multiple of it. */
  pageSize(): bigint {
    return this.#sync().minPageSize;
  }

  /** Buffers currently mapped. */
  buffers(): DmaBuffer[] {
    return [...this.#entries.keys()];
  }

  /**
   * Allocate zeroed anonymous memory of at least `size` bytes (rounded up to the page size) and
   * map it for DMA. On any failure nothing is left behind (memory unmapped, IOVA released).
   */
  allocate(size: number, options: DmaAllocateOptions = {}): DmaBuffer {
    this.#assertOpen("allocate");
    const allocator = this.#sync();
    const bytes = this.#roundToPages(size, allocator.minPageSize);
    const huge = options.hugePages ?? bytes >= BigInt(HUGE_PAGE_SIZE);
    const iova = this.#takeIova(allocator, bytes, options, huge);
    const memory = this.#kernel.mmapAnonymous(Number(bytes), { hugePages: huge });
    if (typeof memory === "number") {
      allocator.free(iova);
      throwErrno(memory, {
        operation: "mmap",
        message: `cannot allocate ${bytes} bytes of DMA memory`,
        hint: "the process is out of memory or address space",
      });
    }
    try {
      return this.#mapAt(memory.bytes, memory.address, iova, bytes, options, memory);
    } catch (e) {
      this.#kernel.munmap(memory);
      throw e;
    }
  }

  /**
   * Map caller-owned memory (from `kernel.mmapAnonymous`) for DMA. {@link free} unmaps it but
   * leaves the memory to the caller.
   */
  map(memory: MappedMemory, options: DmaMapOptions = {}): DmaBuffer {
    this.#assertOpen("map");
    const allocator = this.#sync();
    const offset = options.offset ?? 0;
    const length = options.length ?? memory.length - offset;
    const page = allocator.minPageSize;
    if (
      offset < 0 || length <= 0 || offset + length > memory.length ||
      BigInt(offset) % page !== 0n || BigInt(length) % page !== 0n ||
      memory.address % page !== 0n
    ) {
      throw new VfioError({
        operation: "DmaSpace.map",
        message: `cannot map [${offset}, ${offset + length}) of ${memory.length} bytes at ${
          hex(memory.address)
        }`,
        hint: `address, offset and length must be multiples of the IOMMU page size ${hex(page)}`,
      });
    }
    const bytes = BigInt(length);
    const iova = this.#takeIova(allocator, bytes, options, false);
    const view = memory.bytes.subarray(offset, offset + length);
    const vaddr = memory.address + BigInt(offset);
    return this.#mapAt(view, vaddr, iova, bytes, options, undefined);
  }

  /** Unmap a buffer, release its IOVA and (if the space allocated it) its memory. */
  free(buffer: DmaBuffer): void {
    const entry = this.#entries.get(buffer);
    if (entry === undefined) {
      throw new VfioError({
        operation: "DmaSpace.free",
        message: `no buffer at IOVA ${hex(buffer.iova)} in this space (freed twice?)`,
      });
    }
    this.backend.unmap(buffer.iova, entry.size);
    this.#entries.delete(buffer);
    this.#allocator?.free(buffer.iova);
    if (entry.owned !== undefined) this.#kernel.munmap(entry.owned);
  }

  /**
   * Unmap every buffer, free the memory the space allocated, then close the backend (which
   * closes every device and fd it opened). Cleanup continues past errors; the first is thrown.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    let first: unknown;
    const stillMapped: MappedMemory[] = [];
    for (const buffer of [...this.#entries.keys()].reverse()) {
      try {
        this.free(buffer);
      } catch (e) {
        first ??= e;
        // The IOMMU may still map this memory: release it only after the backend is closed.
        const owned = this.#entries.get(buffer)?.owned;
        if (owned !== undefined) stillMapped.push(owned);
        this.#entries.delete(buffer);
      }
    }
    try {
      this.backend.close();
    } catch (e) {
      first ??= e;
    }
    for (const memory of stillMapped) this.#kernel.munmap(memory);
    if (first !== undefined) throw first;
  }

  /** Same as {@link close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  #mapAt(
    bytes: Uint8Array,
    vaddr: bigint,
    iova: Iova,
    size: bigint,
    options: { read?: boolean; write?: boolean },
    owned: MappedMemory | undefined,
  ): DmaBuffer {
    const prot: DmaProtection = { read: options.read ?? true, write: options.write ?? true };
    try {
      this.backend.map(vaddr, iova, size, prot);
    } catch (e) {
      this.#allocator?.free(iova);
      throw e;
    }
    const buffer: DmaBuffer = Object.freeze({
      iova,
      iovaLow: Number(iova & LOW_32_MASK),
      iovaHigh: Number(iova >> HIGH_SHIFT),
      vaddr,
      bytes: bytes.subarray(0, Number(size)),
      size: Number(size),
    });
    this.#entries.set(buffer, { buffer, owned, size });
    return buffer;
  }

  #takeIova(
    allocator: IovaAllocator,
    size: bigint,
    options: { iova?: bigint; align?: bigint; iovaLimit?: bigint },
    huge: boolean,
  ): Iova {
    if (allocator.ranges().length === 0) {
      throw new VfioError({
        operation: "DmaSpace",
        message: `the ${this.backend.kind} backend reports no usable IOVA range`,
        hint: this.backend.kind === "iommufd"
          ? "the IOAS has no usable IOVA left"
          : "open a device first: a VFIO container has no IOMMU (and no IOVA ranges) until " +
            "a group is attached",
      });
    }
    const limit = options.iovaLimit;
    if (options.iova !== undefined) {
      if (limit !== undefined && options.iova + size - 1n > limit) {
        throw new VfioError({
          operation: "DmaSpace",
          message: `IOVA 0x${options.iova.toString(16)} + 0x${
            size.toString(16)
          } lies above the DMA limit 0x${limit.toString(16)}`,
        });
      }
      return allocator.reserve(options.iova, size);
    }
    if (options.align !== undefined) return allocator.allocate(size, options.align, limit);
    if (huge) {
      try {
        return allocator.allocate(size, BigInt(HUGE_PAGE_SIZE), limit);
      } catch {
        // No 2 MiB-aligned hole: fall back to page alignment below.
      }
    }
    return allocator.allocate(size, undefined, limit);
  }

  #roundToPages(size: number, page: bigint): bigint {
    if (!Number.isSafeInteger(size) || size <= 0) {
      throw new VfioError({
        operation: "DmaSpace.allocate",
        message: `size ${size} must be a positive integer`,
      });
    }
    return ((BigInt(size) + page - 1n) / page) * page;
  }

  /** The IOMMU page size, at least the host page size. */
  #pageSize(): bigint {
    const min = this.backend.minPageSize();
    const host = BigInt(this.#kernel.pageSize);
    return min > host ? min : host;
  }

  /**
   * The allocator, following the backend's ranges and page size (they change as devices
   * attach). Built on first use, so opening a space issues no query before a device is open.
   */
  #sync(): IovaAllocator {
    const ranges = this.backend.iovaRanges();
    const page = this.#pageSize();
    const current = this.#allocator;
    if (current === undefined || page !== current.minPageSize) {
      const next = new IovaAllocator(ranges, {
        minPageSize: page,
        reserved: this.#options.reserved,
        allowZero: this.#options.allowZeroIova,
      });
      for (const e of this.#entries.values()) next.claim(e.buffer.iova, e.size);
      this.#allocator = next;
    } else if (ranges !== this.#seenRanges) {
      current.setRanges(ranges);
    }
    this.#seenRanges = ranges;
    return this.#allocator!;
  }

  #assertOpen(operation: string): void {
    if (this.#closed) {
      throw new VfioError({ operation: `DmaSpace.${operation}`, message: "the space is closed" });
    }
  }
}
