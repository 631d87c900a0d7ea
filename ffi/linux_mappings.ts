/**
 * The mappings `LinuxKernel` hands out: anonymous memory ({@link LinuxMemory}) and device BARs
 * ({@link HostMmio}: plain stores on x86-64, store-releases on arm64), each over the buffer of
 * its mmap and dead after munmap ({@link MappingState}).
 *
 * @module
 */

import type { MappedMemory, Mmio } from "./kernel.ts";

/** What the kernel knows about one mapping it returned: the pointer and the buffer over it. */
export class MappingState {
  /** False once munmap succeeded; the buffer is detached then. */
  live = true;
  constructor(
    readonly pointer: Deno.PointerObject,
    readonly length: number,
    readonly buffer: ArrayBuffer,
  ) {}
}

/** The error of a mapping used after munmap. */
export function unmappedError(what: string): Error {
  return new Error(`${what} used after munmap (the memory is gone; it would crash the process)`);
}

/** Anonymous memory returned by {@link LinuxKernel.mmapAnonymous}. */
export class LinuxMemory implements MappedMemory {
  readonly address: bigint;
  readonly length: number;
  readonly #state: MappingState;
  readonly #bytes: Uint8Array;
  constructor(state: MappingState) {
    this.#state = state;
    this.address = Deno.UnsafePointer.value(state.pointer);
    this.length = state.length;
    this.#bytes = new Uint8Array(state.buffer);
  }
  /** The memory; throws after munmap (views taken earlier then have length 0). */
  get bytes(): Uint8Array {
    if (!this.#state.live) throw unmappedError(`memory at 0x${this.address.toString(16)}`);
    return this.#bytes;
  }
}

/**
 * A mapped BAR on x86-64: `Atomics.load` for reads (never merged by the JIT), typed-array element
 * stores for writes (one access of the register's width); see deno-ffi.md §2. x86's TSO keeps a
 * store to uncached MMIO after every earlier store, so a doorbell is ordered after the
 * descriptors written before it, as Linux's `writel` requires. Every access checks its alignment
 * and range in one branch: after munmap the views are detached (length 0), so a stale access
 * throws instead of faulting.
 */
export class LinuxMmio implements Mmio {
  readonly length: number;
  readonly #state: MappingState;
  protected readonly u8: Uint8Array;
  protected readonly u16: Uint16Array;
  protected readonly u32: Uint32Array;
  protected readonly u64: BigUint64Array;
  constructor(state: MappingState) {
    const b = state.buffer;
    const n = state.length;
    this.#state = state;
    this.length = n;
    this.u8 = new Uint8Array(b);
    this.u16 = new Uint16Array(b, 0, Math.floor(n / 2));
    this.u32 = new Uint32Array(b, 0, Math.floor(n / 4));
    this.u64 = new BigUint64Array(b, 0, Math.floor(n / 8));
  }
  read8(offset: number): number {
    if (!(offset >>> 0 < this.u8.length)) this.fault(offset, 1);
    return Atomics.load(this.u8, offset >>> 0);
  }
  write8(offset: number, value: number): void {
    if (!(offset >>> 0 < this.u8.length)) this.fault(offset, 1);
    this.u8[offset >>> 0] = value;
  }
  read16(offset: number): number {
    if ((offset & 1) !== 0 || !(offset >>> 1 < this.u16.length)) this.fault(offset, 2);
    return Atomics.load(this.u16, offset >>> 1);
  }
  write16(offset: number, value: number): void {
    if ((offset & 1) !== 0 || !(offset >>> 1 < this.u16.length)) this.fault(offset, 2);
    this.u16[offset >>> 1] = value;
  }
  read32(offset: number): number {
    if ((offset & 3) !== 0 || !(offset >>> 2 < this.u32.length)) this.fault(offset, 4);
    return Atomics.load(this.u32, offset >>> 2);
  }
  write32(offset: number, value: number): void {
    if ((offset & 3) !== 0 || !(offset >>> 2 < this.u32.length)) this.fault(offset, 4);
    this.u32[offset >>> 2] = value;
  }
  read64(offset: number): bigint {
    if ((offset & 7) !== 0 || !(offset >>> 3 < this.u64.length)) this.fault(offset, 8);
    return Atomics.load(this.u64, offset >>> 3);
  }
  write64(offset: number, value: bigint): void {
    if ((offset & 7) !== 0 || !(offset >>> 3 < this.u64.length)) this.fault(offset, 8);
    this.u64[offset >>> 3] = value;
  }
  protected fault(offset: number, width: number): never {
    if (!this.#state.live) throw unmappedError("Mmio");
    throw new RangeError(
      `Mmio: ${width * 8}-bit access at offset ${offset} is ` +
        (offset % width !== 0
          ? `not ${width}-byte aligned`
          : `outside the ${this.length}-byte BAR`),
    );
  }
}

/**
 * A mapped BAR on arm64: as {@link LinuxMmio}, but every write is an `Atomics.store`, which V8
 * emits as a store-release (STLR). A plain STR to Device memory may be observed before earlier
 * stores to Normal memory, so a doorbell could reach the device before the descriptors it
 * announces; Linux's `writel` puts a barrier (`dma_wmb`) first. JavaScript has no barrier, and
 * the store-release orders every earlier access of this thread before the register write, for
 * every observer. Reads stay `Atomics.load` (LDAR: later loads of DMA memory are ordered after
 * the register read, as `readl`'s barrier does).
 */
class ReleaseWriteMmio extends LinuxMmio {
  override write8(offset: number, value: number): void {
    if (!(offset >>> 0 < this.u8.length)) this.fault(offset, 1);
    Atomics.store(this.u8, offset >>> 0, value);
  }
  override write16(offset: number, value: number): void {
    if ((offset & 1) !== 0 || !(offset >>> 1 < this.u16.length)) this.fault(offset, 2);
    Atomics.store(this.u16, offset >>> 1, value);
  }
  override write32(offset: number, value: number): void {
    if ((offset & 3) !== 0 || !(offset >>> 2 < this.u32.length)) this.fault(offset, 4);
    Atomics.store(this.u32, offset >>> 2, value);
  }
  override write64(offset: number, value: bigint): void {
    if ((offset & 7) !== 0 || !(offset >>> 3 < this.u64.length)) this.fault(offset, 8);
    Atomics.store(this.u64, offset >>> 3, value);
  }
}

/**
 * The BAR mapping class of this host: plain stores on x86-64 (TSO orders them), store-release
 * on every other architecture (arm64's weak ordering).
 */
export const HostMmio: typeof LinuxMmio = Deno.build.arch === "x86_64"
  ? LinuxMmio
  : ReleaseWriteMmio;
