/**
 * The register file of a simulated e1000-family controller: one 32-bit slot per BAR-0 dword, and
 * per slot — as data, built once from a model's register list — how a read and a write behave
 * (plain, clear-on-read, the high half of a clear-on-read 64-bit counter, or model-specific),
 * the bits a plain write keeps, the power-on value, whether a software reset (CTRL.RST) keeps the
 * value, and alias offsets (legacy locations that reach another register). Unknown offsets read 0
 * and ignore writes, as QEMU's e1000e and igb do.
 *
 * @example
 * ```ts
 * const regs = new E1000RegisterFile([
 *   { at: E1000_RCTL, read: "plain", write: "plain" },
 *   { at: E1000_GPRC, read: "clear", write: "none" },
 * ]);
 * const i = regs.index(E1000_GPRC);
 * regs.inc(i);
 * regs.readGeneric(i); // 1, and the counter is 0 again
 * ```
 *
 * @module
 */

import { E1000_REG_WORDS } from "./e1000_regs.ts";

/** How a read of a register behaves. */
export type RegisterRead = "none" | "plain" | "clear" | "clear64hi" | "special";
/** How a write to a register behaves. */
export type RegisterWrite = "none" | "plain" | "special";

/** One register, or `count` registers `stride` bytes apart. */
export interface RegisterSpec {
  /** Byte offset of the (first) register. */
  readonly at: number;
  /** Registers in the run (default 1). */
  readonly count?: number;
  /** Bytes between them (default 4). */
  readonly stride?: number;
  /** Read behaviour. */
  readonly read: RegisterRead;
  /** Write behaviour. */
  readonly write: RegisterWrite;
  /** Bits a plain write stores (default all). */
  readonly mask?: number;
  /** Power-on value (default 0). */
  readonly init?: number;
  /** A software reset (CTRL.RST) leaves the value alone (default false). */
  readonly keepOnSoftReset?: boolean;
}

/** `count` registers at `at` (`stride` apart) that are other names of registers at `target`. */
export interface RegisterAlias {
  /** Byte offset of the first alias. */
  readonly at: number;
  /** Byte offset of the register it reaches. */
  readonly target: number;
  /** Aliases in the run (default 1). */
  readonly count?: number;
  /** Bytes between aliases (default 4). */
  readonly stride?: number;
  /** Bytes between the targets (default: `stride`). */
  readonly targetStride?: number;
}

/** Read kinds as stored. */
const READ_CODE: Readonly<Record<RegisterRead, number>> = {
  none: 0,
  plain: 1,
  clear: 2,
  clear64hi: 3,
  special: 4,
};
/** Write kinds as stored. */
const WRITE_CODE: Readonly<Record<RegisterWrite, number>> = { none: 0, plain: 1, special: 2 };
/** Stored read code of "special". */
export const READ_SPECIAL = READ_CODE.special;
/** Stored write code of "special". */
export const WRITE_SPECIAL = WRITE_CODE.special;
/** Stored write code of "plain". */
const WRITE_PLAIN = WRITE_CODE.plain;
/** Offset bits that select a BAR-0 dword. */
const OFFSET_MASK = E1000_REG_WORDS * 4 - 1;
const U32_MAX = 0xffff_ffff;
const TWO_32 = 0x1_0000_0000;

/** Register storage plus behaviour tables. */
export class E1000RegisterFile {
  /** Register values, indexed by byte offset / 4. */
  readonly mac: Uint32Array = new Uint32Array(E1000_REG_WORDS);
  /** Read behaviour codes per register. */
  readonly readKind: Uint8Array = new Uint8Array(E1000_REG_WORDS);
  /** Write behaviour codes per register. */
  readonly writeKind: Uint8Array = new Uint8Array(E1000_REG_WORDS);
  readonly #writeMask = new Uint32Array(E1000_REG_WORDS);
  readonly #initial = new Uint32Array(E1000_REG_WORDS);
  readonly #keepSoft = new Uint8Array(E1000_REG_WORDS);
  readonly #alias = new Int32Array(E1000_REG_WORDS);

  /** A register file with these registers and aliases; everything else is unimplemented. */
  constructor(specs: readonly RegisterSpec[], aliases: readonly RegisterAlias[] = []) {
    for (const s of specs) {
      const stride = s.stride ?? 4;
      for (let n = 0; n < (s.count ?? 1); n++) {
        const i = (s.at + n * stride) >>> 2;
        this.readKind[i] = READ_CODE[s.read];
        this.writeKind[i] = WRITE_CODE[s.write];
        this.#writeMask[i] = (s.mask ?? U32_MAX) >>> 0;
        this.#initial[i] = (s.init ?? 0) >>> 0;
        this.#keepSoft[i] = s.keepOnSoftReset ? 1 : 0;
      }
    }
    for (const a of aliases) {
      const stride = a.stride ?? 4;
      const targetStride = a.targetStride ?? stride;
      for (let n = 0; n < (a.count ?? 1); n++) {
        const from = (a.at + n * stride) >>> 2;
        this.#alias[from] = ((a.target + n * targetStride) >>> 2) - from;
      }
    }
    this.reset(false);
  }

  /** The register index a byte offset reaches (after aliases). */
  index(offset: number): number {
    const i = (offset & OFFSET_MASK) >>> 2;
    return i + this.#alias[i];
  }

  /** A read of a non-special register: plain, clear-on-read, or the high half of a 64-bit one. */
  readGeneric(i: number): number {
    const v = this.mac[i];
    switch (this.readKind[i]) {
      case READ_CODE.plain:
        return v;
      case READ_CODE.clear:
        this.mac[i] = 0;
        return v;
      case READ_CODE.clear64hi:
        this.mac[i] = 0;
        this.mac[i - 1] = 0;
        return v;
      default:
        return 0;
    }
  }

  /** A write of a plain register (through its mask); other kinds are the model's business. */
  writeGeneric(i: number, value: number): void {
    if (this.writeKind[i] === WRITE_PLAIN) this.mac[i] = (value & this.#writeMask[i]) >>> 0;
  }

  /** Write `value` through register `i`'s mask, whatever its kind (special writers use it). */
  store(i: number, value: number): void {
    this.mac[i] = (value & this.#writeMask[i]) >>> 0;
  }

  /** Power-on values; with `soft`, registers marked keepOnSoftReset keep theirs. */
  reset(soft: boolean): void {
    if (!soft) {
      this.mac.set(this.#initial);
      return;
    }
    for (let i = 0; i < E1000_REG_WORDS; i++) {
      if (this.#keepSoft[i] === 0) this.mac[i] = this.#initial[i];
    }
  }

  /** Add 1 to a 32-bit counter, stopping at all-ones. */
  inc(i: number): void {
    if (this.mac[i] !== U32_MAX) this.mac[i]++;
  }

  /** Add `n` (below 2^32) to the 64-bit counter whose low half is register `lo`, saturating. */
  add64(lo: number, n: number): void {
    const low = this.mac[lo] + n;
    // n is a frame's byte count, so the low half carries at most once (no float division).
    const carry = low >= TWO_32 ? 1 : 0;
    const high = this.mac[lo + 1] + carry;
    if (high > U32_MAX) {
      this.mac[lo] = U32_MAX;
      this.mac[lo + 1] = U32_MAX;
      return;
    }
    this.mac[lo] = carry === 0 ? low : low - TWO_32;
    this.mac[lo + 1] = high;
  }
}

/** Register index of a byte offset (no aliases). */
export function reg(offset: number): number {
  return offset >>> 2;
}
