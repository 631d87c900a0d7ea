/**
 * MMIO dispatch for device models: a {@link BarMap} routes each access of a BAR to the handler of
 * the range it falls in (a register block, an MSI-X table, a data window …), and a
 * {@link RegisterBlock} is such a handler for a block of 32-bit registers declared by offset,
 * each with its reset value, writable bits and optional read/write side effects.
 *
 * Access rules are data: which widths a block accepts (default: 4-byte accesses only), and what
 * an access the block does not accept or an offset without a register reads (all-ones by
 * default, as a PCIe read that no register claims usually completes; some devices read 0).
 * Wider accesses to a block that accepts 8-byte ones read or write the register pair at
 * `offset` (low dword) and `offset + 4` (high dword); accepted 1- and 2-byte accesses read or
 * merge into the byte lanes of the containing register.
 *
 * @example
 * ```ts
 * const regs = new RegisterBlock({ name: "crc", accessSizes: [4] });
 * regs.define(0x00, { name: "ID", reset: 0x1234_0001, writable: 0 });
 * regs.define(0x04, { name: "CONTROL", write: (v) => start(v) });
 * const bars = new BarMap().route(0, 0, 0x1000, regs);
 * bars.read(0, 0x00, 4); // 0x12340001
 * bars.read(0, 0x02, 2); // 0xffff: the block takes 4-byte accesses only
 * ```
 *
 * @module
 */

/** Width of one MMIO access in bytes. */
export type AccessSize = 1 | 2 | 4 | 8;

/** Handles the accesses of one range of a BAR; offsets are relative to the range's start. */
export interface MmioHandler {
  /** A read of `size` bytes (a bigint for size 8). */
  read(offset: number, size: AccessSize): number | bigint;
  /** A write of `size` bytes (`value` a bigint for size 8, or a number). */
  write(offset: number, size: AccessSize, value: number | bigint): void;
}

/** What a read nothing answers returns: all-ones of its width, or zero. */
export type UnclaimedRead = "ones" | "zero";

/** The all-ones (or zero) value of an access of `size` bytes. */
export function unclaimedValue(size: AccessSize, kind: UnclaimedRead = "ones"): number | bigint {
  if (size === 8) return kind === "ones" ? 0xffff_ffff_ffff_ffffn : 0n;
  return kind === "ones" ? 2 ** (8 * size) - 1 : 0;
}

interface Route {
  readonly bar: number;
  readonly start: number;
  readonly end: number;
  readonly handler: MmioHandler;
}

/** Options of a {@link BarMap}. */
export interface BarMapOptions {
  /** What a read outside every routed range returns (default "ones"). */
  readonly unclaimed?: UnclaimedRead;
}

/**
 * The ranges of a device's BARs and their handlers. An access that falls outside every range, or
 * straddles the end of one, reads as `unclaimed` and its write is dropped.
 */
export class BarMap {
  readonly #routes: Route[] = [];
  readonly #unclaimed: UnclaimedRead;

  /** An empty map. */
  constructor(options: BarMapOptions = {}) {
    this.#unclaimed = options.unclaimed ?? "ones";
  }

  /** Send accesses to `[offset, offset + length)` of BAR `bar` to `handler`; ranges may not overlap. */
  route(bar: number, offset: number, length: number, handler: MmioHandler): this {
    if (!Number.isInteger(bar) || bar < 0 || bar > 5) {
      throw new RangeError(`BarMap: BAR ${bar} does not exist (BARs are 0–5)`);
    }
    if (
      !Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length <= 0
    ) {
      throw new RangeError(`BarMap: bad range offset ${offset} length ${length}`);
    }
    const end = offset + length;
    const clash = this.#routes.find((r) => r.bar === bar && offset < r.end && r.start < end);
    if (clash) {
      throw new RangeError(
        `BarMap: BAR ${bar} [0x${offset.toString(16)}, 0x${end.toString(16)}) overlaps ` +
          `[0x${clash.start.toString(16)}, 0x${clash.end.toString(16)})`,
      );
    }
    this.#routes.push({ bar, start: offset, end, handler });
    return this;
  }

  /** A read of BAR `bar`. */
  read(bar: number, offset: number, size: AccessSize): number | bigint {
    const r = this.#find(bar, offset, size);
    return r === undefined
      ? unclaimedValue(size, this.#unclaimed)
      : r.handler.read(offset - r.start, size);
  }

  /** A write to BAR `bar`. */
  write(bar: number, offset: number, size: AccessSize, value: number | bigint): void {
    const r = this.#find(bar, offset, size);
    r?.handler.write(offset - r.start, size, value);
  }

  #find(bar: number, offset: number, size: number): Route | undefined {
    for (const r of this.#routes) {
      if (r.bar === bar && offset >= r.start && offset + size <= r.end) return r;
    }
    return undefined;
  }
}

/** One 32-bit register of a {@link RegisterBlock}. */
export interface Register32 {
  /** Name (datasheet spelling), for traces and errors. */
  readonly name: string;
  /** Value after reset (default 0). */
  readonly reset?: number;
  /**
   * Bits a write may change when the register has no `write` side effect (default all: a plain
   * read/write register; 0 makes it read-only).
   */
  readonly writable?: number;
  /** The value a read returns (default: the stored value). Reads may have side effects. */
  read?(): number;
  /**
   * A write's side effect, given the written 32-bit value (sub-dword writes arrive merged into
   * the current value). Without it, the writable bits are stored.
   */
  write?(value: number): void;
}

/** Options of a {@link RegisterBlock}. */
export interface RegisterBlockOptions {
  /** Name for traces (e.g. the device model's). */
  readonly name: string;
  /** Access widths the block accepts (default [4]); others read `unclaimed` and are dropped. */
  readonly accessSizes?: readonly AccessSize[];
  /** What offsets without a register, and refused accesses, read (default "ones"). */
  readonly unclaimed?: UnclaimedRead;
}

interface RegisterSlot {
  readonly reg: Register32;
  value: number;
}

const DWORD = 4;
const U32 = 0xffff_ffff;

/** A block of 32-bit registers, as most device register files are. */
export class RegisterBlock implements MmioHandler {
  /** Name given at construction. */
  readonly name: string;
  readonly #slots = new Map<number, RegisterSlot>();
  readonly #sizes: ReadonlySet<AccessSize>;
  readonly #unclaimed: UnclaimedRead;

  /** An empty block. */
  constructor(options: RegisterBlockOptions) {
    this.name = options.name;
    this.#sizes = new Set(options.accessSizes ?? [DWORD]);
    this.#unclaimed = options.unclaimed ?? "ones";
  }

  /** Declare the register at `offset` (dword aligned). */
  define(offset: number, reg: Register32): this {
    if (!Number.isSafeInteger(offset) || offset < 0 || offset % DWORD !== 0) {
      throw new RangeError(
        `${this.name}: register ${reg.name} offset ${offset} is not dword aligned`,
      );
    }
    if (this.#slots.has(offset)) {
      throw new RangeError(`${this.name}: two registers at 0x${offset.toString(16)}`);
    }
    this.#slots.set(offset, { reg, value: (reg.reset ?? 0) >>> 0 });
    return this;
  }

  /** The stored value of the register at `offset` (device side, no read side effects). */
  value(offset: number): number {
    return this.#slot(offset).value;
  }

  /** Set the stored value of the register at `offset` (device side: status bits, counters …). */
  set(offset: number, value: number): void {
    this.#slot(offset).value = value >>> 0;
  }

  /** Every register back to its reset value. */
  reset(): void {
    for (const s of this.#slots.values()) s.value = (s.reg.reset ?? 0) >>> 0;
  }

  /** An MMIO read (see the module doc for widths). */
  read(offset: number, size: AccessSize): number | bigint {
    if (!this.#accepts(offset, size)) return unclaimedValue(size, this.#unclaimed);
    if (size === 8) {
      return BigInt(this.#readDword(offset)) | (BigInt(this.#readDword(offset + DWORD)) << 32n);
    }
    const base = offset - (offset % DWORD);
    const shift = 8 * (offset - base);
    const mask = size === DWORD ? U32 : 2 ** (8 * size) - 1;
    return ((this.#readDword(base) >>> shift) & mask) >>> 0;
  }

  /** An MMIO write (see the module doc for widths). */
  write(offset: number, size: AccessSize, value: number | bigint): void {
    if (!this.#accepts(offset, size)) return;
    const v = BigInt.asUintN(8 * size, BigInt(value));
    if (size === 8) {
      this.#writeDword(offset, Number(v & BigInt(U32)));
      this.#writeDword(offset + DWORD, Number(v >> 32n));
      return;
    }
    const base = offset - (offset % DWORD);
    const slot = this.#slots.get(base);
    if (size === DWORD || slot === undefined) {
      this.#writeDword(base, Number(v));
      return;
    }
    const shift = 8 * (offset - base);
    const mask = ((2 ** (8 * size) - 1) * 2 ** shift) >>> 0;
    const merged = ((slot.value & ~mask) | ((Number(v) * 2 ** shift) & mask)) >>> 0;
    this.#writeDword(base, merged);
  }

  #accepts(offset: number, size: AccessSize): boolean {
    return this.#sizes.has(size) && Number.isSafeInteger(offset) && offset >= 0 &&
      offset % size === 0;
  }

  #readDword(offset: number): number {
    const s = this.#slots.get(offset);
    if (s === undefined) return Number(unclaimedValue(DWORD, this.#unclaimed));
    return s.reg.read ? s.reg.read() >>> 0 : s.value;
  }

  #writeDword(offset: number, value: number): void {
    const s = this.#slots.get(offset);
    if (s === undefined) return;
    if (s.reg.write) {
      s.reg.write(value >>> 0);
      return;
    }
    const w = s.reg.writable ?? U32;
    s.value = ((s.value & ~w) | (value & w)) >>> 0;
  }

  #slot(offset: number): RegisterSlot {
    const s = this.#slots.get(offset);
    if (s === undefined) {
      throw new RangeError(`${this.name}: no register at 0x${offset.toString(16)}`);
    }
    return s;
  }
}
