/**
 * The simulated process: its fd table, its address space and its resource limits, as kernel code
 * sees them (`current`). Open files are reference counted like `struct file`: the fd table holds
 * one reference per fd, and kernel objects may hold more (a device fd holds its group file, a
 * group holds its container or iommufd); {@link SimFile.release} runs when the last one goes.
 *
 * @module
 */

import { ERRNO } from "../../ffi/errno.ts";
import type { VirtualClock } from "../clock.ts";
import type { ProcessMemory } from "../memory.ts";
import type { SimFile, SimProcess } from "./file.ts";

/** The first fd handed out (0–2 are the process's stdio). */
export const FIRST_FD = 3;
/** RLIMIT_NOFILE of the simulated process (Linux default soft limit). */
export const FD_LIMIT = 1024;

/**
 * `account_locked_vm(mm, pages, true)`: charge `pages` pages of `pageSize` bytes to the process's
 * locked memory, unless that exceeds RLIMIT_MEMLOCK without CAP_IPC_LOCK: 0 or -ENOMEM (nothing
 * charged). Uncharging is `process.lockedPages -= pages`.
 */
export function chargeLockedPages(process: SimProcess, pages: number, pageSize: number): number {
  if (!process.capIpcLock && process.lockedPages + pages > process.memlockLimit / pageSize) {
    return -ERRNO.ENOMEM;
  }
  process.lockedPages += pages;
  return 0;
}

/** Kernel-internal file reference counting (`get_file` / `fput`). */
export interface FileRefs {
  /** Take a reference on an open file. */
  get(file: SimFile): void;
  /** Drop a reference; the file is released when none is left. */
  put(file: SimFile): void;
}

/** Limits and capabilities of the simulated process. */
export interface ProcessLimits {
  /** RLIMIT_MEMLOCK in bytes (Infinity: unlimited). */
  readonly memlockLimit: number;
  /** CAP_IPC_LOCK: locked pages are charged but not limited. */
  readonly capIpcLock: boolean;
}

/** The process a {@link SimKernel} runs: fd table, memory, limits, file references. */
export class KernelProcess implements SimProcess, FileRefs {
  readonly #fds = new Map<number, SimFile>();
  readonly #refs = new Map<SimFile, number>();
  /** Pages charged to locked_vm (VmLck). */
  lockedPages = 0;
  /** RLIMIT_MEMLOCK in bytes. */
  readonly memlockLimit: number;
  /** CAP_IPC_LOCK. */
  readonly capIpcLock: boolean;

  /** A process over `memory`, driven by `clock`. */
  constructor(
    readonly memory: ProcessMemory,
    readonly clock: VirtualClock,
    limits: ProcessLimits,
  ) {
    this.memlockLimit = limits.memlockLimit;
    this.capIpcLock = limits.capIpcLock;
  }

  /** The file behind an fd, or undefined (EBADF). */
  fget(fd: number): SimFile | undefined {
    return Number.isInteger(fd) ? this.#fds.get(fd) : undefined;
  }

  /** Install a file at the lowest free fd ≥ 3, taking one reference; the fd or -EMFILE. */
  installFd(file: SimFile): number {
    for (let fd = FIRST_FD; fd < FD_LIMIT; fd++) {
      if (!this.#fds.has(fd)) {
        this.#fds.set(fd, file);
        this.get(file);
        return fd;
      }
    }
    return -ERRNO.EMFILE;
  }

  /** close(2): drop the fd's reference; EBADF if not open. */
  closeFd(fd: number): number {
    const file = this.fget(fd);
    if (file === undefined) return -ERRNO.EBADF;
    this.#fds.delete(fd);
    this.put(file);
    return 0;
  }

  /** Open fds, ascending. */
  openFds(): number[] {
    return [...this.#fds.keys()].sort((a, b) => a - b);
  }

  /** Take a reference on a file. */
  get(file: SimFile): void {
    this.#refs.set(file, (this.#refs.get(file) ?? 0) + 1);
  }

  /** Drop a reference; release the file when the last one goes. */
  put(file: SimFile): void {
    const left = (this.#refs.get(file) ?? 0) - 1;
    if (left > 0) {
      this.#refs.set(file, left);
      return;
    }
    this.#refs.delete(file);
    file.release?.(this);
  }

  /** Number of files alive (referenced by an fd or by kernel objects). */
  get liveFiles(): number {
    return this.#refs.size;
  }
}
