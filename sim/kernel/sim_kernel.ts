/**
 * `SimKernel`: the simulated Linux 6.12 kernel behind the {@link Kernel} seam. It owns the process
 * (fd table, address space, limits), the file namespace (/dev, /sys, /proc), eventfds, poll, and
 * virtual time; fd types (VFIO container, group, device, iommufd, …) are {@link SimFile}s that
 * subsystems (sim/vfio/, sim/iommufd/) install under /dev.
 *
 * Every call answers the way the system call does: a result or `-errno`, never an exception for
 * anything user space can pass. A bug inside the simulator is not turned into an invented errno:
 * it is thrown in `strict` mode (tests) and otherwise reported on stderr, kept in
 * {@link SimKernel.bugs}, and answered with -EIO.
 *
 * @example
 * ```ts
 * const kernel = createMachine({ iommu: "vtd" }).kernel;
 * const efd = kernel.eventfd(0, EFD_NONBLOCK);
 * await kernel.pollAsync([{ fd: efd, events: POLLIN, revents: 0 }], 10); // 0 after 10 virtual ms
 * ```
 *
 * @module
 */

import { ERRNO } from "../../ffi/errno.ts";
import type { IoctlArch } from "../../ffi/ioctl.ts";
import {
  type AnonymousMapOptions,
  type Kernel,
  type MappedMemory,
  type Mmio,
  O_RDONLY,
  POLLERR,
  type PollFd,
  POLLHUP,
  POLLIN,
  POLLNVAL,
  POLLOUT,
} from "../../ffi/kernel.ts";
import type { VirtualClock } from "../clock.ts";
import { ProcessMemory } from "../memory.ts";
import type { PhysicalMemory } from "../memory.ts";
import { EFD_VALID_FLAGS, EventFd } from "./eventfd.ts";
import { genericIoctls } from "./generic_ioctl.ts";
import type { SimFile } from "./file.ts";
import { SimMmio } from "./mmio.ts";
import { KernelProcess } from "./process.ts";
import { procStatus } from "./procfs.ts";
import { AttributeFile, DirectoryFile } from "./vfs_files.ts";
import { dynamicDir, roFile, staticDir, Vfs, type VfsDir, type VfsNode } from "./vfs.ts";

/** Linux x86-64 PAGE_SIZE. */
export const SIM_PAGE_SIZE = 4096;
/** Transparent huge page size used for `hugePages` anonymous mappings. */
export const HUGE_PAGE_SIZE = 2 * 1024 * 1024;
/** Nanoseconds per millisecond of the {@link Kernel} time API. */
export const NS_PER_MS = 1_000_000;
/** poll(2) events reported for files without a poll method (`DEFAULT_POLLMASK`). */
export const DEFAULT_POLLMASK = POLLIN | POLLOUT;
/** poll(2) events always reported, whether requested or not. */
const ALWAYS_REPORTED = POLLERR | POLLHUP | POLLNVAL;
/** open(2) access-mode bits. */
const O_ACCMODE = 3;

/** Options of a {@link SimKernel}. */
export interface SimKernelOptions {
  /** The machine's virtual clock. */
  readonly clock: VirtualClock;
  /** The machine's physical memory (process memory is allocated from it). */
  readonly memory: PhysicalMemory;
  /** ioctl number encoding (default "generic": x86-64/arm64). */
  readonly ioctlArch?: IoctlArch;
  /** PAGE_SIZE (default 4096). */
  readonly pageSize?: number;
  /** RLIMIT_MEMLOCK in bytes (default 8 MiB, Linux's default since 5.16). */
  readonly memlockLimit?: number;
  /** CAP_IPC_LOCK (default false). */
  readonly capIpcLock?: boolean;
  /** Throw internal simulator errors instead of reporting them (tests). */
  readonly strict?: boolean;
  /**
   * Pace virtual time with real time: `sleep(ms)` also waits `ms` real milliseconds, so real
   * I/O (a bridge to host sockets) gets its turn (default false: as fast as possible).
   */
  readonly realtime?: boolean;
}

/**
 * Virtual time after which a wait without timeout (blocking read, poll with -1) is declared a hang:
 * on Linux it would block forever; here it throws in strict mode or answers -EINTR.
 */
export const HANG_LIMIT_NS = 3600 * 1e9;

/**
 * Realtime mode: the longest real wait of {@link SimKernel.pollAsync} between two looks at the
 * clock, so host I/O that posts device events meanwhile (a bridge's socket) wakes it this soon.
 */
export const REALTIME_SLICE_MS = 1;

/** RLIMIT_MEMLOCK default (`MLOCK_LIMIT` = 8 MiB since Linux 5.16). */
export const DEFAULT_MEMLOCK_LIMIT = 8 * 1024 * 1024;

/** The simulated kernel. */
export class SimKernel implements Kernel {
  /** Always "sim". */
  readonly name = "sim" as const;
  /** ioctl encoding. */
  readonly ioctlArch: IoctlArch;
  /** PAGE_SIZE. */
  readonly pageSize: number;
  /** The simulated process (fd table, memory, limits). */
  readonly process: KernelProcess;
  /** The file namespace. */
  readonly vfs: Vfs;
  /** Internal simulator errors caught in non-strict mode (each also printed to stderr). */
  readonly bugs: Error[] = [];
  readonly #clock: VirtualClock;
  readonly #strict: boolean;
  readonly #realtime: boolean;
  readonly #mounts = new Map<string, VfsNode>();
  readonly #mmios = new Map<SimMmio, SimFile>();
  readonly #generic: ReturnType<typeof genericIoctls>;

  /** A kernel over the machine's clock and memory. */
  constructor(options: SimKernelOptions) {
    this.ioctlArch = options.ioctlArch ?? "generic";
    this.#generic = genericIoctls(this.ioctlArch);
    this.pageSize = options.pageSize ?? SIM_PAGE_SIZE;
    this.#clock = options.clock;
    this.#strict = options.strict ?? false;
    this.#realtime = options.realtime ?? false;
    this.process = new KernelProcess(
      new ProcessMemory(options.memory, this.pageSize),
      options.clock,
      {
        memlockLimit: options.memlockLimit ?? DEFAULT_MEMLOCK_LIMIT,
        capIpcLock: options.capIpcLock ?? false,
      },
    );
    const proc = staticDir({
      self: staticDir({ status: roFile(() => procStatus(this.process, this.pageSize)) }),
    });
    this.#mounts.set("proc", proc);
    this.vfs = new Vfs(dynamicDir(() => this.#mounts));
  }

  /** Device regions mapped with {@link mmapDevice} and not yet unmapped. */
  get deviceMappings(): number {
    return this.#mmios.size;
  }

  /** Mount a directory at `/<name>` (the machine mounts /dev and /sys). */
  mount(name: string, dir: VfsDir): void {
    this.#mounts.set(name, dir);
  }

  /** The machine's virtual clock. */
  get clock(): VirtualClock {
    return this.#clock;
  }

  #guard<T>(what: string, fail: T, fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      if (this.#strict) throw e;
      const error = e instanceof Error ? e : new Error(String(e));
      this.bugs.push(error);
      console.error(`SimKernel bug in ${what}: ${error.stack ?? error.message}`);
      return fail;
    }
  }

  /**
   * Run device events until `ready()` holds or virtual time reaches `deadlineNs`; false when it
   * did not become ready. Without a deadline, a wait that no pending event can end, or that lasts
   * longer than {@link HANG_LIMIT_NS} of virtual time, is a hang (false).
   */
  waitUntil(ready: () => boolean, deadlineNs = Infinity): boolean {
    const limit = deadlineNs === Infinity ? this.#clock.nowNs + HANG_LIMIT_NS : deadlineNs;
    while (!ready()) {
      const next = this.#clock.nextEventNs();
      if (next === undefined || next > limit) {
        if (deadlineNs !== Infinity) this.#clock.runUntil(deadlineNs);
        return ready();
      }
      this.#clock.runUntil(next);
    }
    return true;
  }

  /** open(2). */
  open(path: string, flags: number): number {
    return this.#guard(`open(${path})`, -ERRNO.EIO, () => {
      const r = this.vfs.resolve(path);
      if (typeof r === "number") return r;
      const node = r.node;
      let file: SimFile | number;
      switch (node.kind) {
        case "chardev":
          file = node.open(this.process, flags);
          break;
        case "file": {
          const mode = flags & O_ACCMODE;
          if ((mode === O_RDONLY && !node.read) || (mode !== O_RDONLY && !node.write)) {
            return -ERRNO.EACCES;
          }
          file = new AttributeFile(node);
          break;
        }
        case "dir":
          if ((flags & O_ACCMODE) !== O_RDONLY) return -ERRNO.EISDIR;
          file = new DirectoryFile();
          break;
        default:
          return -ERRNO.ENOENT;
      }
      if (typeof file === "number") return file;
      const fd = this.process.installFd(file);
      if (fd < 0) file.release?.(this.process);
      return fd;
    });
  }

  /** close(2). */
  close(fd: number): number {
    return this.#guard(`close(${fd})`, -ERRNO.EIO, () => this.process.closeFd(fd));
  }

  /** ioctl(2): dispatched to the file's ioctl (ENOTTY without one). */
  ioctl(fd: number, request: number, arg?: Uint8Array | number | bigint): number {
    return this.#guard(`ioctl(${fd}, 0x${(request >>> 0).toString(16)})`, -ERRNO.EIO, () => {
      const file = this.process.fget(fd);
      if (file === undefined) return -ERRNO.EBADF;
      const value = arg instanceof Uint8Array ? arg : toUlong(arg);
      const generic = this.#generic.get(request >>> 0);
      if (generic) return generic(this.process, file, value);
      if (!file.ioctl) return -ERRNO.ENOTTY;
      return file.ioctl(this.process, request >>> 0, value);
    });
  }

  /** pread(2). */
  pread(fd: number, buffer: Uint8Array, offset: bigint): number {
    return this.#guard(`pread(${fd})`, -ERRNO.EIO, () => {
      const file = this.process.fget(fd);
      if (file === undefined) return -ERRNO.EBADF;
      if (offset < 0n) return -ERRNO.EINVAL;
      return file.pread ? file.pread(this.process, buffer, offset) : -ERRNO.ESPIPE;
    });
  }

  /** pwrite(2). */
  pwrite(fd: number, buffer: Uint8Array, offset: bigint): number {
    return this.#guard(`pwrite(${fd})`, -ERRNO.EIO, () => {
      const file = this.process.fget(fd);
      if (file === undefined) return -ERRNO.EBADF;
      if (offset < 0n) return -ERRNO.EINVAL;
      return file.pwrite ? file.pwrite(this.process, buffer, offset) : -ERRNO.ESPIPE;
    });
  }

  /** read(2) (EINVAL for files that cannot be read). */
  read(fd: number, buffer: Uint8Array): number {
    return this.#guard(`read(${fd})`, -ERRNO.EIO, () => {
      const file = this.process.fget(fd);
      if (file === undefined) return -ERRNO.EBADF;
      return file.read ? file.read(this.process, buffer) : -ERRNO.EINVAL;
    });
  }

  /** write(2) (EINVAL for files that cannot be written). */
  write(fd: number, buffer: Uint8Array): number {
    return this.#guard(`write(${fd})`, -ERRNO.EIO, () => {
      const file = this.process.fget(fd);
      if (file === undefined) return -ERRNO.EBADF;
      return file.write ? file.write(this.process, buffer) : -ERRNO.EINVAL;
    });
  }

  /** eventfd(2): EINVAL for unknown flags. */
  eventfd(initialValue: number, flags: number): number {
    return this.#guard("eventfd", -ERRNO.EIO, () => {
      if ((flags & ~EFD_VALID_FLAGS) !== 0) return -ERRNO.EINVAL;
      const file = new EventFd(initialValue, flags, (ready) => {
        if (this.waitUntil(ready)) return true;
        this.#hang("blocking eventfd read/write");
        return false;
      });
      return this.process.installFd(file);
    });
  }

  /** The eventfd behind an fd (kernel-internal `eventfd_ctx_fdget`): EBADF / EINVAL otherwise. */
  eventfdCtx(fd: number): EventFd | number {
    const file = this.process.fget(fd);
    if (file === undefined) return -ERRNO.EBADF;
    return file instanceof EventFd ? file : -ERRNO.EINVAL;
  }

  #pollOnce(fds: PollFd[]): number {
    let ready = 0;
    for (const p of fds) {
      if (p.fd < 0) {
        p.revents = 0;
        continue;
      }
      const file = this.process.fget(p.fd);
      if (file === undefined) {
        p.revents = POLLNVAL;
      } else {
        const mask = file.pollEvents ? file.pollEvents() : DEFAULT_POLLMASK;
        p.revents = mask & (p.events | ALWAYS_REPORTED);
      }
      if (p.revents !== 0) ready++;
    }
    return ready;
  }

  /**
   * poll(2): runs device events in virtual time until an fd is ready or `timeoutMs` passed
   * (negative: no timeout). A wait nothing could ever end answers -EINTR (in strict mode it
   * throws: the program would hang on Linux).
   */
  poll(fds: PollFd[], timeoutMs: number): number {
    return this.#guard("poll", -ERRNO.EIO, () => {
      const deadline = timeoutMs < 0 ? Infinity : this.#clock.nowNs + timeoutMs * NS_PER_MS;
      let ready = this.#pollOnce(fds);
      if (ready > 0 || timeoutMs === 0) return ready;
      const woke = this.waitUntil(() => (ready = this.#pollOnce(fds)) > 0, deadline);
      if (!woke && deadline === Infinity) return this.#hang("poll without timeout");
      return ready;
    });
  }

  /**
   * poll(2) that yields to the event loop between device events (same virtual-time rules). In
   * realtime mode virtual time follows real time instead: the wait sleeps for real, in slices of
   * at most {@link REALTIME_SLICE_MS}, advancing the clock by the real time each slice took.
   */
  async pollAsync(fds: PollFd[], timeoutMs: number): Promise<number> {
    if (this.#realtime) return await this.#pollRealtime(fds, timeoutMs);
    const start = this.#clock.nowNs;
    const deadline = timeoutMs < 0 ? Infinity : start + timeoutMs * NS_PER_MS;
    const limit = timeoutMs < 0 ? start + HANG_LIMIT_NS : deadline;
    for (;;) {
      const ready = this.#guard("pollAsync", -ERRNO.EIO, () => this.#pollOnce(fds));
      if (ready !== 0 || timeoutMs === 0) return ready;
      const next = this.#clock.nextEventNs();
      if (next === undefined || next > limit) {
        if (deadline === Infinity) return this.#hang("pollAsync without timeout");
        this.#guard("pollAsync", undefined, () => this.#clock.runUntil(deadline));
        return this.#guard("pollAsync", -ERRNO.EIO, () => this.#pollOnce(fds));
      }
      this.#guard("pollAsync", undefined, () => this.#clock.runUntil(next));
      await Promise.resolve();
    }
  }

  async #pollRealtime(fds: PollFd[], timeoutMs: number): Promise<number> {
    const deadline = this.#clock.nowNs + (timeoutMs < 0 ? HANG_LIMIT_NS : timeoutMs * NS_PER_MS);
    let wall = performance.now();
    for (;;) {
      const ready = this.#guard("pollAsync", -ERRNO.EIO, () => this.#pollOnce(fds));
      if (ready !== 0 || timeoutMs === 0) return ready;
      const leftMs = (deadline - this.#clock.nowNs) / NS_PER_MS;
      if (leftMs <= 0) return timeoutMs < 0 ? this.#hang("pollAsync without timeout") : 0;
      await new Promise((resolve) => setTimeout(resolve, Math.min(REALTIME_SLICE_MS, leftMs)));
      const now = performance.now();
      const until = Math.min(deadline, this.#clock.nowNs + (now - wall) * NS_PER_MS);
      this.#guard("pollAsync", undefined, () => this.#clock.runUntil(until));
      wall = now;
    }
  }

  #hang(what: string): number {
    if (this.#strict) {
      throw new Error(`${what}: no device event wakes this wait; Linux would block forever`);
    }
    return -ERRNO.EINTR;
  }

  /** Anonymous shared memory from the simulated process address space. */
  mmapAnonymous(length: number, options?: AnonymousMapOptions): MappedMemory | number {
    return this.#guard("mmapAnonymous", -ERRNO.EIO, () => {
      if (!Number.isSafeInteger(length) || length <= 0) return -ERRNO.EINVAL;
      const align = options?.hugePages ? HUGE_PAGE_SIZE : this.pageSize;
      const m = this.process.memory.mmap(length, align);
      if (m === undefined) return -ERRNO.ENOMEM;
      return { address: BigInt(m.address), length: m.length, bytes: m.chunk.bytes };
    });
  }

  /** mmap(2) of a device region: EINVAL for length 0 or an offset that is not page aligned. */
  mmapDevice(fd: number, offset: bigint, length: number): Mmio | number {
    return this.#guard(`mmapDevice(${fd})`, -ERRNO.EIO, () => {
      const file = this.process.fget(fd);
      if (file === undefined) return -ERRNO.EBADF;
      if (!Number.isSafeInteger(length) || length <= 0) return -ERRNO.EINVAL;
      if (offset < 0n || offset % BigInt(this.pageSize) !== 0n) return -ERRNO.EINVAL;
      if (!file.mmap) return -ERRNO.ENODEV;
      const m = file.mmap(this.process, offset, length);
      if (m instanceof SimMmio) {
        // The mapping holds the file, as a vma does: closing the fd does not release it.
        this.process.get(file);
        this.#mmios.set(m, file);
      }
      return m;
    });
  }

  /** munmap(2): unmapping nothing is not an error, as on Linux. */
  munmap(mapping: MappedMemory | Mmio): number {
    return this.#guard("munmap", -ERRNO.EIO, () => {
      if (mapping instanceof SimMmio) {
        const file = this.#mmios.get(mapping);
        mapping.unmap();
        this.#mmios.delete(mapping);
        if (file !== undefined) this.process.put(file);
        return 0;
      }
      if (!("address" in mapping)) return -ERRNO.EINVAL;
      if (mapping.address % BigInt(this.pageSize) !== 0n) return -ERRNO.EINVAL;
      this.process.memory.munmap(Number(mapping.address));
      return 0;
    });
  }

  /** readlink(2). */
  readlink(path: string): string | number {
    return this.#guard(`readlink(${path})`, -ERRNO.EIO, () => this.vfs.readlink(path));
  }

  /** Directory listing, sorted. */
  readdir(path: string): string[] | number {
    return this.#guard(`readdir(${path})`, -ERRNO.EIO, () => this.vfs.readdir(path));
  }

  /** A small sysfs/procfs file. */
  readFile(path: string): string | number {
    return this.#guard(`readFile(${path})`, -ERRNO.EIO, () => this.vfs.readFile(path));
  }

  /** Write a sysfs attribute. */
  writeFile(path: string, text: string): number {
    return this.#guard(`writeFile(${path})`, -ERRNO.EIO, () => this.vfs.writeFile(path, text));
  }

  /** Virtual milliseconds since the machine started. */
  now(): number {
    return this.#clock.nowNs / NS_PER_MS;
  }

  /**
   * Advance virtual time by `ms`, running device events on the way; in realtime mode also wait
   * that long for real.
   */
  sleep(ms: number): Promise<void> {
    this.#guard("sleep", undefined, () => this.#clock.advance(Math.max(0, ms) * NS_PER_MS));
    if (!this.#realtime) return Promise.resolve();
    return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
  }
}

/** An ioctl integer argument as the kernel's `unsigned long`. */
function toUlong(arg: number | bigint | undefined): bigint {
  if (arg === undefined) return 0n;
  if (typeof arg === "bigint") return BigInt.asUintN(64, arg);
  if (!Number.isFinite(arg)) return 0n;
  return BigInt.asUintN(64, BigInt(Math.trunc(arg)));
}
