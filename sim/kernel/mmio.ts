/**
 * The simulator's {@link Mmio}: a mapped device region whose loads and stores go to the device
 * model. Every access costs a little virtual time and runs device events that fall due, so a
 * driver's ordinary busy-poll loop makes progress on the simulator.
 *
 * A misaligned or out-of-range access, or one after munmap, would be a SIGBUS/SIGSEGV on Linux and
 * kill the process; here it throws a {@link MmioFault}.
 *
 * @module
 */

import type { Mmio } from "../../ffi/kernel.ts";
import type { VirtualClock } from "../clock.ts";

/** Virtual time one MMIO access takes (a posted PCIe round trip is of this order). */
export const MMIO_ACCESS_NS = 100;

/** Access widths of an MMIO load or store, in bytes. */
export type MmioWidth = 1 | 2 | 4 | 8;

/** Where a mapping's accesses go (offsets relative to the start of the mapping). */
export interface MmioTarget {
  /** A load of `size` bytes (a bigint for 8). */
  read(offset: number, size: MmioWidth): number | bigint;
  /** A store of `size` bytes. */
  write(offset: number, size: MmioWidth, value: number | bigint): void;
}

/** The signal an access would raise on Linux (SIGBUS for misalignment, SIGSEGV outside). */
export class MmioFault extends Error {
  /** A fault described by `message`. */
  constructor(message: string) {
    super(message);
    this.name = "MmioFault";
  }
}

/** A device mapping returned by `SimKernel.mmapDevice`. */
export class SimMmio implements Mmio {
  #mapped = true;

  /** `length` bytes of `target`, labelled for fault messages (e.g. "0000:00:02.0 BAR0"). */
  constructor(
    readonly length: number,
    readonly label: string,
    private readonly target: MmioTarget,
    private readonly clock: VirtualClock,
  ) {}

  /** False after munmap. */
  get mapped(): boolean {
    return this.#mapped;
  }

  /** munmap: later accesses fault. */
  unmap(): void {
    this.#mapped = false;
  }

  #check(offset: number, size: MmioWidth): void {
    if (!this.#mapped) {
      throw new MmioFault(`SIGSEGV: ${this.label} access at ${offset} after munmap`);
    }
    if (!Number.isInteger(offset) || offset < 0 || offset + size > this.length) {
      throw new MmioFault(
        `SIGSEGV: ${this.label} ${size}-byte access at ${offset} outside ${this.length}`,
      );
    }
    if (offset % size !== 0) {
      throw new MmioFault(`SIGBUS: ${this.label} misaligned ${size}-byte access at ${offset}`);
    }
    this.clock.advance(MMIO_ACCESS_NS);
  }

  #load(offset: number, size: 1 | 2 | 4): number {
    this.#check(offset, size);
    const v = this.target.read(offset, size);
    return Number(BigInt.asUintN(size * 8, BigInt(v)));
  }

  #store(offset: number, size: MmioWidth, value: number | bigint): void {
    this.#check(offset, size);
    this.target.write(offset, size, value);
  }

  /** One 8-bit load. */
  read8(offset: number): number {
    return this.#load(offset, 1);
  }
  /** One 8-bit store. */
  write8(offset: number, value: number): void {
    this.#store(offset, 1, value & 0xff);
  }
  /** One 16-bit load. */
  read16(offset: number): number {
    return this.#load(offset, 2);
  }
  /** One 16-bit store. */
  write16(offset: number, value: number): void {
    this.#store(offset, 2, value & 0xffff);
  }
  /** One 32-bit load. */
  read32(offset: number): number {
    return this.#load(offset, 4);
  }
  /** One 32-bit store (value modulo 2^32). */
  write32(offset: number, value: number): void {
    this.#store(offset, 4, value >>> 0);
  }
  /** One 64-bit load. */
  read64(offset: number): bigint {
    this.#check(offset, 8);
    return BigInt.asUintN(64, BigInt(this.target.read(offset, 8)));
  }
  /** One 64-bit store. */
  write64(offset: number, value: bigint): void {
    this.#store(offset, 8, BigInt.asUintN(64, value));
  }
}
