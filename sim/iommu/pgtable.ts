/**
 * The one radix page-table walker and writer of the simulated IOMMUs. Every table format the
 * models use — VT-d second stage (vtd/vtd_pgtable.ts), x86 first-stage paging under VT-d nesting
 * (vtd/vtd_first_stage.ts) and VMSAv8-64 stage 1 and stage 2 (smmuv3/smmuv3_pgtable.ts) — is a
 * tree of table pages of `2^levelStride` little-endian entries, each level resolving
 * `levelStride` bits of the input address above a `2^pageShift` page. What differs between them
 * is data: the shape, which entries are present, which point to a next table, which leaf
 * encodings are legal, and how a leaf or table entry is written. A vendor folder declares its
 * {@link RadixFormat}; the walk and the table bookkeeping are here, once.
 *
 * Levels are counted here by *height*: 1 is the level of the smallest page (VT-d level 1, Arm
 * level 3), `height + 1` the table above. Each vendor converts to its own numbering.
 *
 * - {@link walkRadix} is the hardware side: it reads only physical memory (through an optional
 *   `fetch` hook for nested walks, where each table address is itself translated), so tables
 *   written by anyone are honoured as the hardware would honour them; vendor rules (permissions,
 *   access flags, address-size limits, A/D updates) run in a `check` hook on each entry used.
 * - {@link RadixTable} is the kernel side: a domain's table written the way Linux writes it
 *   (largest pages that fit, large pages split on partial unmap, empty tables freed).
 *
 * @module
 */

import { ERRNO } from "../../ffi/errno.ts";
import type { PhysicalChunk, PhysicalMemory } from "../memory.ts";
import type { MapProtection } from "./model.ts";

/** A radix table format: its shape and how its entries read. */
export interface RadixFormat {
  /** Who owns the format, for messages ("VT-d", "SMMUv3"). */
  readonly name: string;
  /** log2 of the smallest page, which is also the size of a table page (12). */
  readonly pageShift: number;
  /** Input bits resolved per level (9: 512 entries per table). */
  readonly levelStride: number;
  /** Bytes per entry (8). */
  readonly entryBytes: number;
  /** The next-table / output address bits of an entry. */
  readonly addrMask: bigint;
  /** Whether `entry` is present (VT-d: R or W; x86: P; VMSA: Valid). */
  present(entry: bigint): boolean;
  /** Whether a present entry at `height` points to a next-level table (else it is a leaf). */
  isTable(entry: bigint, height: number): boolean;
  /** Whether a present leaf encoding is legal at `height` (absent: every leaf is). */
  leafAllowed?(entry: bigint, height: number): boolean;
}

/** A format the kernel side can write. */
export interface RadixWriteFormat extends RadixFormat {
  /** The entry pointing to the next-level table at `child`. */
  tableEntry(child: bigint): bigint;
  /** The attribute bits of a leaf mapped with `prot` (what Linux's page-table code writes). */
  leafAttrs(prot: MapProtection): bigint;
  /** The leaf entry for output `phys` at `height` with `attrs` (from leafAttrs or a split). */
  leafEntry(phys: bigint, height: number, attrs: bigint): bigint;
  /** The attributes of an existing leaf that its pieces inherit when it is split. */
  attrsOf(entry: bigint): bigint;
}

/** Bytes one entry at `height` maps (1: the page, 2: 512 pages, …). */
export function radixPageSize(format: RadixFormat, height: number): bigint {
  return 1n << BigInt(format.pageShift + format.levelStride * (height - 1));
}

/** Index of `iova` in a table at `height`. */
export function radixIndex(format: RadixFormat, iova: bigint, height: number): number {
  const shift = BigInt(format.pageShift + format.levelStride * (height - 1));
  return Number((iova >> shift) & ((1n << BigInt(format.levelStride)) - 1n));
}

/** Why the walker itself stopped: no memory behind an entry, not present, an illegal leaf. */
export type RadixFault = "no-memory" | "not-present" | "reserved";

/** A walk's hooks: a nested walk's table-address translation, and the vendor's checks. */
export interface RadixWalkHooks<F> {
  /**
   * The physical address to read the entry at table-space address `at` from (a nested walk
   * translates it through stage 2), or the fault that stops the walk there.
   */
  fetch?(at: bigint, height: number): bigint | F;
  /**
   * A vendor rule on one entry the walk uses: a fault, or undefined to go on. `next` is the next
   * table's address (a table entry) or the leaf's output page base; `at` is where the entry is in
   * table space (to update A/D bits through the same translation).
   */
  check?(entry: bigint, height: number, leaf: boolean, next: bigint, at: bigint): F | undefined;
}

/** A walk that reached a leaf. */
export interface RadixLeaf {
  /** Found. */
  readonly ok: true;
  /** The leaf entry. */
  readonly entry: bigint;
  /** Its height (1 = the smallest page). */
  readonly height: number;
  /** Output address of the looked-up byte. */
  readonly out: bigint;
  /** First input address of the leaf. */
  readonly pageIova: bigint;
  /** Bytes the leaf maps. */
  readonly pageSize: bigint;
}

/** A walk that stopped: the walker's or a hook's fault, the height and the entry's address. */
export interface RadixStop<F> {
  /** Not found. */
  readonly ok: false;
  /** Why. */
  readonly fault: RadixFault | F;
  /** The height of the entry that stopped the walk. */
  readonly height: number;
  /** The physical address the entry was (or would have been) read from. */
  readonly phys: bigint;
}

/** The result of {@link walkRadix}. */
export type RadixWalk<F = never> = RadixLeaf | RadixStop<F>;

/**
 * Walk the table at `root` (its top table at `topHeight`) for `iova`, as a hardware table walker
 * does: one entry per level, read from physical memory, until a leaf.
 *
 * @example
 * ```ts
 * const w = walkRadix(memory, VTD_SL_FORMAT, BigInt(table.root), table.levels, 0x1000n);
 * if (w.ok) console.log(w.out.toString(16), w.pageSize);
 * ```
 */
export function walkRadix<F = never>(
  memory: PhysicalMemory,
  format: RadixFormat,
  root: bigint,
  topHeight: number,
  iova: bigint,
  hooks?: RadixWalkHooks<F>,
): RadixWalk<F> {
  let table = root;
  let phys = root;
  for (let height = topHeight; height >= 1; height--) {
    const at = table + BigInt(radixIndex(format, iova, height) * format.entryBytes);
    phys = at;
    if (hooks?.fetch !== undefined) {
      const translated = hooks.fetch(at, height);
      if (typeof translated !== "bigint") return { ok: false, fault: translated, height, phys: at };
      phys = translated;
    }
    const entry = memory.readU64(phys);
    if (entry === undefined) return { ok: false, fault: "no-memory", height, phys };
    if (!format.present(entry)) return { ok: false, fault: "not-present", height, phys };
    const leaf = height === 1 || !format.isTable(entry, height);
    if (leaf && format.leafAllowed !== undefined && !format.leafAllowed(entry, height)) {
      return { ok: false, fault: "reserved", height, phys };
    }
    const size = radixPageSize(format, height);
    const next = leaf ? entry & format.addrMask & ~(size - 1n) : entry & format.addrMask;
    const stop = hooks?.check?.(entry, height, leaf, next, at);
    if (stop !== undefined) return { ok: false, fault: stop, height, phys };
    if (leaf) {
      const offset = iova & (size - 1n);
      return {
        ok: true,
        entry,
        height,
        out: next + offset,
        pageIova: iova - offset,
        pageSize: size,
      };
    }
    table = next;
  }
  return { ok: false, fault: "not-present", height: 1, phys }; // not reached: height 1 is a leaf
}

/**
 * One domain's table, written as Linux's page-table code writes it, owning its table pages in
 * physical memory: maps use the largest pages that alignment and size allow (up to
 * `largestLeafHeight`), an unmap splits a large page only partly inside the range so that exactly
 * the range goes, and table pages left empty are freed.
 */
export class RadixTable {
  readonly #memory: PhysicalMemory;
  readonly #format: RadixWriteFormat;
  readonly #tables = new Map<number, PhysicalChunk>();
  /** Present entries per table page (the kernel's bookkeeping, so emptiness is O(1)). */
  readonly #present = new Map<number, number>();
  /** Physical address of the top table (what the context entry / CD / STE points to). */
  readonly root: number;

  /**
   * A table of `topHeight` levels of `format`. Throws when physical memory cannot hold the root
   * table (a machine configuration error).
   */
  constructor(
    memory: PhysicalMemory,
    format: RadixWriteFormat,
    readonly topHeight: number,
    readonly largestLeafHeight: number,
  ) {
    this.#memory = memory;
    this.#format = format;
    const root = this.#allocTable();
    if (root === undefined) {
      throw new RangeError(`${format.name}: no physical memory for a root table`);
    }
    this.root = root;
  }

  /** Table pages in use (root included). */
  get tablePages(): number {
    return this.#tables.size;
  }

  /** Whether any byte of `[start, end)` is mapped. */
  anyMapped(start: bigint, end: bigint): boolean {
    return this.#anyMapped(this.root, this.topHeight, 0n, start, end);
  }

  /**
   * Map `[iova, iova + size)` → `[phys, …)` with the largest pages alignment and size allow. The
   * caller has checked alignment and that nothing in the range is mapped. Returns 0, or -ENOMEM
   * (with nothing left mapped) when a table page cannot be allocated.
   */
  map(iova: bigint, phys: bigint, size: bigint, prot: MapProtection): number {
    const attrs = this.#format.leafAttrs(prot);
    for (let done = 0n; done < size;) {
      const va = iova + done;
      const pa = phys + done;
      let height = Math.min(this.largestLeafHeight, this.topHeight);
      while (height > 1) {
        const s = radixPageSize(this.#format, height);
        if (va % s === 0n && pa % s === 0n && size - done >= s) break;
        height--;
      }
      if (!this.#setLeaf(va, pa, height, attrs)) {
        this.unmap(iova, done);
        return -ERRNO.ENOMEM;
      }
      done += radixPageSize(this.#format, height);
    }
    return 0;
  }

  /**
   * Unmap `[iova, iova + size)`. A large page only partly inside the range is split first (VT-d's
   * and io-pgtable-arm's split on unmap); table pages left empty are freed. Returns the bytes that
   * were mapped. (If memory for a split runs out, the whole large page is removed.)
   */
  unmap(iova: bigint, size: bigint): bigint {
    return this.#unmap(this.root, this.topHeight, 0n, iova, iova + size);
  }

  /** Free every table page (the domain is being destroyed). */
  destroy(): void {
    for (const chunk of this.#tables.values()) this.#memory.release(chunk);
    this.#tables.clear();
    this.#present.clear();
  }

  #isTable(entry: bigint, height: number): boolean {
    return height > 1 && this.#format.present(entry) && this.#format.isTable(entry, height);
  }

  #setLeaf(iova: bigint, phys: bigint, leafHeight: number, attrs: bigint): boolean {
    const f = this.#format;
    let table = this.root;
    for (let height = this.topHeight; height > leafHeight; height--) {
      const index = radixIndex(f, iova, height);
      const entry = this.#read(table, index);
      if (this.#isTable(entry, height)) {
        table = Number(entry & f.addrMask);
        continue;
      }
      const child = this.#allocTable();
      if (child === undefined) return false;
      this.#write(table, index, f.tableEntry(BigInt(child)));
      table = child;
    }
    const index = radixIndex(f, iova, leafHeight);
    const old = this.#read(table, index);
    // An empty lower table where a large page goes (left by earlier unmaps): free it first, as
    // Linux frees page tables to make room for a large page.
    if (this.#isTable(old, leafHeight)) this.#freeSubtree(Number(old & f.addrMask), leafHeight - 1);
    this.#write(table, index, f.leafEntry(phys, leafHeight, attrs));
    return true;
  }

  #unmap(table: number, height: number, base: bigint, start: bigint, end: bigint): bigint {
    const f = this.#format;
    const size = radixPageSize(f, height);
    const entries = 1 << f.levelStride;
    let removed = 0n;
    const first = base > start ? 0 : Number((start - base) / size);
    for (let i = first; i < entries; i++) {
      const entryBase = base + BigInt(i) * size;
      if (entryBase >= end) break;
      const entry = this.#read(table, i);
      if (!f.present(entry)) continue;
      const s = start > entryBase ? start : entryBase;
      const e = end < entryBase + size ? end : entryBase + size;
      const leaf = !this.#isTable(entry, height);
      if (leaf && s === entryBase && e === entryBase + size) {
        this.#write(table, i, 0n);
        removed += size;
        continue;
      }
      let child: number;
      if (leaf) {
        const split = this.#split(entry, height);
        if (split === undefined) {
          this.#write(table, i, 0n);
          removed += size;
          continue;
        }
        this.#write(table, i, f.tableEntry(BigInt(split)));
        child = split;
      } else {
        child = Number(entry & f.addrMask);
      }
      removed += this.#unmap(child, height - 1, entryBase, s, e);
      if (this.#isEmpty(child)) {
        this.#write(table, i, 0n);
        this.#release(child);
      }
    }
    return removed;
  }

  /** A new table of `height − 1` leaves equivalent to the large leaf `entry`. */
  #split(entry: bigint, height: number): number | undefined {
    const f = this.#format;
    const child = this.#allocTable();
    if (child === undefined) return undefined;
    const step = radixPageSize(f, height - 1);
    const attrs = f.attrsOf(entry);
    const out = entry & f.addrMask;
    for (let i = 0; i < 1 << f.levelStride; i++) {
      this.#write(child, i, f.leafEntry(out + BigInt(i) * step, height - 1, attrs));
    }
    return child;
  }

  #anyMapped(table: number, height: number, base: bigint, start: bigint, end: bigint): boolean {
    const f = this.#format;
    const size = radixPageSize(f, height);
    const first = base > start ? 0 : Number((start - base) / size);
    for (let i = first; i < 1 << f.levelStride; i++) {
      const entryBase = base + BigInt(i) * size;
      if (entryBase >= end) break;
      const entry = this.#read(table, i);
      if (!f.present(entry)) continue;
      if (!this.#isTable(entry, height)) return true;
      const s = start > entryBase ? start : entryBase;
      const e = end < entryBase + size ? end : entryBase + size;
      if (this.#anyMapped(Number(entry & f.addrMask), height - 1, entryBase, s, e)) return true;
    }
    return false;
  }

  #freeSubtree(table: number, height: number): void {
    if (height > 1) {
      for (let i = 0; i < 1 << this.#format.levelStride; i++) {
        const entry = this.#read(table, i);
        if (this.#isTable(entry, height)) {
          this.#freeSubtree(Number(entry & this.#format.addrMask), height - 1);
        }
      }
    }
    this.#release(table);
  }

  #isEmpty(table: number): boolean {
    return this.#tables.has(table) && (this.#present.get(table) ?? 0) === 0;
  }

  #allocTable(): number | undefined {
    const bytes = 1 << this.#format.pageShift;
    const chunk = this.#memory.allocate(bytes, bytes);
    if (chunk === undefined) return undefined;
    this.#tables.set(chunk.base, chunk);
    this.#present.set(chunk.base, 0);
    return chunk.base;
  }

  #release(table: number): void {
    const chunk = this.#tables.get(table);
    if (chunk === undefined) return;
    this.#tables.delete(table);
    this.#present.delete(table);
    this.#memory.release(chunk);
  }

  #read(table: number, index: number): bigint {
    return this.#memory.readU64(table + index * this.#format.entryBytes) ?? 0n;
  }

  #write(table: number, index: number, value: bigint): void {
    const f = this.#format;
    const was = f.present(this.#read(table, index));
    const now = f.present(value);
    if (was !== now) this.#present.set(table, (this.#present.get(table) ?? 0) + (now ? 1 : -1));
    this.#memory.writeU64(table + index * f.entryBytes, value);
  }
}
