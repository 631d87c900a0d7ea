/**
 * Pinned user memory behind IOAS areas (`struct iopt_pages`, drivers/iommu/iommufd/pages.c): one
 * object per IOAS_MAP (shared by IOAS_COPY and by split areas), pinned only while some area using it
 * lives in an IOAS with at least one domain, and charged to the locked-memory limit in the
 * context's accounting mode.
 *
 * Pinning resolves the user range through {@link ProcessMemory.resolve} (EFAULT for an unmapped
 * byte) and takes a reference on every physical chunk, so pinned memory outlives munmap as on Linux.
 *
 * @module
 */

import { ERRNO } from "../../ffi/errno.ts";
import type { SimProcess } from "../kernel/file.ts";
import type { PhysicalChunk, PhysicalMemory } from "../memory.ts";

/** How pinned pages are charged (`IOPT_PAGES_ACCOUNT_NONE/USER/MM`). */
export type AccountMode = "none" | "user" | "mm";

/** One physically contiguous piece of pinned memory. */
export interface PinnedPiece {
  /** Physical address. */
  readonly phys: number;
  /** Length in bytes. */
  readonly length: number;
  /** The chunk it lives in (one reference held per piece). */
  readonly chunk: PhysicalChunk;
}

/** A run of pinned pages `[first, last]` (page indexes inside the pages object). */
interface PinRun {
  readonly first: number;
  readonly last: number;
  readonly pieces: readonly PinnedPiece[];
}

/** An inclusive range of page indexes. */
export interface PageRange {
  /** First page index. */
  readonly first: number;
  /** Last page index (inclusive). */
  readonly last: number;
}

/** Something that uses a pages object (an IOAS area): which pages it covers, and whether they must be pinned. */
export interface PagesUser {
  /** Page indexes covered. */
  readonly pageRange: PageRange;
  /** True while the user's IOAS has a domain (pages must be pinned). */
  readonly needsPin: boolean;
}

/** `user->locked_vm` of each simulated process's user (the sim has one user per process). */
const userLockedVm = new WeakMap<SimProcess, number>();

/** Pages charged to the user's `locked_vm` by iommufd in "user" accounting mode. */
export function userLockedPages(process: SimProcess): number {
  return userLockedVm.get(process) ?? 0;
}

function limitPages(process: SimProcess, pageSize: number): number {
  return Number.isFinite(process.memlockLimit)
    ? Math.floor(process.memlockLimit / pageSize)
    : Number.POSITIVE_INFINITY;
}

/** Charge `npages` in `mode`: 0 or -ENOMEM over RLIMIT_MEMLOCK (`iopt_pages_update_pinned`). */
function charge(mode: AccountMode, process: SimProcess, npages: number, pageSize: number): number {
  if (mode === "none" || npages === 0) return 0;
  const limit = limitPages(process, pageSize);
  if (mode === "user") {
    const cur = userLockedPages(process);
    if (cur + npages > limit) return -ERRNO.ENOMEM;
    userLockedVm.set(process, cur + npages);
    return 0;
  }
  if (process.lockedPages + npages > limit) return -ERRNO.ENOMEM;
  process.lockedPages += npages;
  return 0;
}

function uncharge(mode: AccountMode, process: SimProcess, npages: number): void {
  if (mode === "none" || npages === 0) return;
  if (mode === "user") userLockedVm.set(process, Math.max(0, userLockedPages(process) - npages));
  else process.lockedPages = Math.max(0, process.lockedPages - npages);
}

/** Pieces covering `[offset, offset + length)` bytes of `pieces` (no references taken). */
function slicePieces(
  pieces: readonly PinnedPiece[],
  offset: number,
  length: number,
): PinnedPiece[] {
  const out: PinnedPiece[] = [];
  let at = 0;
  for (const p of pieces) {
    const start = Math.max(offset, at);
    const end = Math.min(offset + length, at + p.length);
    if (start < end) {
      out.push({ phys: p.phys + (start - at), length: end - start, chunk: p.chunk });
    }
    at += p.length;
  }
  return out;
}

/** Subtract sorted, disjoint `b` from sorted, disjoint `a`. */
function subtract(a: readonly PageRange[], b: readonly PageRange[]): PageRange[] {
  const out: PageRange[] = [];
  for (const r of a) {
    let first = r.first;
    for (const s of b) {
      if (s.last < first || s.first > r.last) continue;
      if (s.first > first) out.push({ first, last: s.first - 1 });
      first = s.last + 1;
      if (first > r.last) break;
    }
    if (first <= r.last) out.push({ first, last: r.last });
  }
  return out;
}

/** Union of ranges, sorted and merged (touching ranges merge). */
export function mergeRanges(ranges: readonly PageRange[]): PageRange[] {
  const sorted = [...ranges].sort((x, y) => x.first - y.first);
  const out: PageRange[] = [];
  for (const r of sorted) {
    const top = out[out.length - 1];
    if (top && r.first <= top.last + 1) {
      out[out.length - 1] = { first: top.first, last: Math.max(top.last, r.last) };
    } else out.push(r);
  }
  return out;
}

/** The user memory of one IOAS_MAP. */
export class Pages {
  /** Page-aligned user address of page index 0 (`pages->uptr`). */
  readonly base: bigint;
  /** Whether the pages may be mapped writeable (`pages->writable`). */
  readonly writable: boolean;
  /** The process whose memory this is, and which is charged for it. */
  readonly process: SimProcess;
  /** Accounting mode, fixed when the pages are created. */
  readonly mode: AccountMode;
  /** The areas using these pages (in any IOAS). */
  readonly users: Set<PagesUser> = new Set();
  readonly #pageSize: number;
  readonly #physical: PhysicalMemory;
  #runs: PinRun[] = [];

  /** Pages starting at `base` (page aligned) of `process`. */
  constructor(opts: {
    base: bigint;
    writable: boolean;
    process: SimProcess;
    mode: AccountMode;
    pageSize: number;
    physical: PhysicalMemory;
  }) {
    this.base = opts.base;
    this.writable = opts.writable;
    this.process = opts.process;
    this.mode = opts.mode;
    this.#pageSize = opts.pageSize;
    this.#physical = opts.physical;
  }

  /** Number of pages pinned now. */
  get pinnedPages(): number {
    return this.#runs.reduce((n, r) => n + r.last - r.first + 1, 0);
  }

  /** The pinned ranges, sorted. */
  #pinned(): PageRange[] {
    return this.#runs.map((r) => ({ first: r.first, last: r.last })).sort((a, b) =>
      a.first - b.first
    );
  }

  /**
   * Make exactly `needed` pinned: pin what is missing (EFAULT for an unmapped byte, ENOMEM over
   * the limit; nothing changes on failure) and unpin the rest. Returns 0 or -errno.
   */
  sync(needed: readonly PageRange[]): number {
    const want = mergeRanges(needed);
    const have = this.#pinned();
    const added: PinRun[] = [];
    for (const r of subtract(want, have)) {
      const run = this.#pin(r);
      if (typeof run === "number") {
        this.#drop(added);
        return run;
      }
      added.push(run);
    }
    const addedPages = added.reduce((n, r) => n + r.last - r.first + 1, 0);
    const rc = charge(this.mode, this.process, addedPages, this.#pageSize);
    if (rc < 0) {
      this.#drop(added);
      return rc;
    }
    this.#runs.push(...added);
    for (const r of subtract(have, want)) this.#unpin(r);
    return 0;
  }

  /** Pin exactly what the users that need pinning cover ({@link sync}). */
  syncUsers(): number {
    const needed: PageRange[] = [];
    for (const u of this.users) if (u.needsPin) needed.push(u.pageRange);
    return this.sync(needed);
  }

  /** Unpin everything and uncharge it. */
  releaseAll(): void {
    const n = this.pinnedPages;
    this.#drop(this.#runs);
    this.#runs = [];
    uncharge(this.mode, this.process, n);
  }

  /** The physical pieces of pinned pages `[first, last]`, in order; undefined if not all pinned. */
  pieces(first: number, last: number): PinnedPiece[] | undefined {
    const out: PinnedPiece[] = [];
    let next = first;
    const runs = [...this.#runs].sort((a, b) => a.first - b.first);
    for (const r of runs) {
      if (r.last < next || r.first > last) continue;
      if (r.first > next) return undefined;
      const end = Math.min(r.last, last);
      out.push(
        ...slicePieces(
          r.pieces,
          (next - r.first) * this.#pageSize,
          (end - next + 1) * this.#pageSize,
        ),
      );
      next = end + 1;
      if (next > last) break;
    }
    return next > last ? out : undefined;
  }

  #pin(r: PageRange): PinRun | number {
    const pageSize = this.#pageSize;
    const start = this.base + BigInt(r.first) * BigInt(pageSize);
    const length = (r.last - r.first + 1) * pageSize;
    if (start + BigInt(length) > (1n << 64n) || !Number.isSafeInteger(length)) return -ERRNO.EFAULT;
    const resolved = this.process.memory.resolve(start, length);
    if (!resolved) return -ERRNO.EFAULT;
    for (const p of resolved) this.#physical.retain(p.chunk);
    return { first: r.first, last: r.last, pieces: resolved };
  }

  #drop(runs: readonly PinRun[]): void {
    for (const run of runs) for (const p of run.pieces) this.#physical.release(p.chunk);
  }

  /** Unpin pages `[r.first, r.last]`, splitting runs, and uncharge them. */
  #unpin(r: PageRange): void {
    const keep: PinRun[] = [];
    let removed = 0;
    for (const run of this.#runs) {
      if (run.last < r.first || run.first > r.last) {
        keep.push(run);
        continue;
      }
      const size = this.#pageSize;
      if (run.first < r.first) {
        const pieces = slicePieces(run.pieces, 0, (r.first - run.first) * size);
        for (const p of pieces) this.#physical.retain(p.chunk);
        keep.push({ first: run.first, last: r.first - 1, pieces });
      }
      if (run.last > r.last) {
        const pieces = slicePieces(
          run.pieces,
          (r.last + 1 - run.first) * size,
          (run.last - r.last) * size,
        );
        for (const p of pieces) this.#physical.retain(p.chunk);
        keep.push({ first: r.last + 1, last: run.last, pieces });
      }
      removed += Math.min(run.last, r.last) - Math.max(run.first, r.first) + 1;
      this.#drop([run]);
    }
    this.#runs = keep;
    uncharge(this.mode, this.process, removed);
  }
}
