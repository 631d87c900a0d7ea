/**
 * The one seam between deno_vfio and the operating system.
 *
 * Everything above this interface — uAPI encoding, the VFIO/iommufd clients, DMA memory, drivers,
 * the network stack — is the same code on real Linux (`LinuxKernel` in
 * `ffi/linux.ts`) and on the simulated machine (`SimKernel` in `sim/`).
 *
 * Conventions, the same as raw Linux system calls:
 * - a call that returns a number returns a non-negative result, or `-errno` on failure
 *   (compare with `ERRNO` from `ffi/errno.ts`);
 * - a call that returns an object returns it, or `-errno` (a number) on failure;
 * - nothing here throws for an error the kernel reports.
 *
 * @module
 */

import type { IoctlArch } from "./ioctl.ts";

/** open(2) flags used by the framework (asm-generic values; identical on x86-64, arm64, ppc64). */
export const O_RDONLY = 0;
/** open(2): read and write. */
export const O_RDWR = 2;
/** open(2): non-blocking. */
export const O_NONBLOCK = 0o4000;
/** open(2): close on exec. */
export const O_CLOEXEC = 0o2000000;
/** eventfd(2): close on exec (same value as O_CLOEXEC). */
export const EFD_CLOEXEC: number = O_CLOEXEC;
/** eventfd(2): non-blocking reads (same value as O_NONBLOCK). */
export const EFD_NONBLOCK: number = O_NONBLOCK;
/** poll(2) event: data to read. */
export const POLLIN = 0x1;
/** poll(2) event: writable. */
export const POLLOUT = 0x4;
/** poll(2) event: error. */
export const POLLERR = 0x8;
/** poll(2) event: hang-up. */
export const POLLHUP = 0x10;
/** poll(2) event: the fd is not open. */
export const POLLNVAL = 0x20;
/** poll(2) event: normal data to read (reported with POLLIN by iommufd's event fds). */
export const POLLRDNORM = 0x40;

/**
 * Anonymous process memory (from {@link Kernel.mmapAnonymous}): a user virtual address that the
 * kernel accepts in MAP_DMA/IOAS_MAP, and the bytes behind it.
 */
export interface MappedMemory {
  /** The process virtual address of the first byte. */
  readonly address: bigint;
  /** Length in bytes (a multiple of the page size). */
  readonly length: number;
  /** The memory itself; on the simulator it is backed by a SharedArrayBuffer. */
  readonly bytes: Uint8Array;
}

/**
 * What a 32-bit MMIO read returns from a function that no longer answers (PCIe: a completion
 * timeout or unsupported request reads all-ones; also a removed device or a frozen POWER PE).
 */
export const MMIO_ALL_ONES = 0xffff_ffff;

/**
 * A mapped device region (a PCI BAR): 8-, 16-, 32- and 64-bit register accesses, each one real
 * access of that width (devices such as virtio require the natural width of each register).
 * Never wrap a BAR in a DataView (V8 may split it into byte accesses).
 *
 * Ordering, as Linux's `writel`/`readl`: a write is observed by the device after every earlier
 * memory access of the thread (descriptors written to DMA memory before a doorbell are visible
 * when the device sees the doorbell), and a read completes before later loads of DMA memory.
 * On x86 that is TSO with plain stores; on arm64 `LinuxKernel` makes writes store-releases.
 */
export interface Mmio {
  /** Length of the mapping in bytes. */
  readonly length: number;
  /** One 8-bit load at a byte offset. */
  read8(offset: number): number;
  /** One 8-bit store at a byte offset. */
  write8(offset: number, value: number): void;
  /** One 16-bit load at a byte offset (multiple of 2). */
  read16(offset: number): number;
  /** One 16-bit store at a byte offset (multiple of 2). */
  write16(offset: number, value: number): void;
  /** One 32-bit load at a byte offset (multiple of 4). */
  read32(offset: number): number;
  /** One 32-bit store at a byte offset (multiple of 4); `value` is taken modulo 2^32. */
  write32(offset: number, value: number): void;
  /** One 64-bit load at a byte offset (multiple of 8). */
  read64(offset: number): bigint;
  /** One 64-bit store at a byte offset (multiple of 8). */
  write64(offset: number, value: bigint): void;
}

/** One entry of a poll set: the kernel fills `revents`. */
export interface PollFd {
  /** File descriptor to watch. */
  fd: number;
  /** Requested events (POLLIN, …). */
  events: number;
  /** Returned events, written by poll. */
  revents: number;
}

/** Options of {@link Kernel.mmapAnonymous}. */
export interface AnonymousMapOptions {
  /** Ask for transparent huge pages (madvise MADV_HUGEPAGE); the kernel may ignore it. */
  hugePages?: boolean;
}

/**
 * What deno_vfio needs from an operating system kernel: the handful of system calls VFIO and
 * iommufd are driven with, plus the small sysfs look-ups used for discovery.
 */
export interface Kernel {
  /** `"linux"` for the real kernel, `"sim"` for the simulated one. */
  readonly name: "linux" | "sim";
  /** How ioctl request numbers are encoded on this kernel's architecture. */
  readonly ioctlArch: IoctlArch;
  /** The kernel's PAGE_SIZE in bytes. */
  readonly pageSize: number;

  /** open(2): returns the new fd or -errno. */
  open(path: string, flags: number): number;
  /** close(2): returns 0 or -errno. */
  close(fd: number): number;
  /**
   * ioctl(2). A `Uint8Array` argument is passed by pointer (the kernel reads and may write it in
   * place); a number or bigint is passed by value. Returns the ioctl's result or -errno.
   */
  ioctl(fd: number, request: number, arg?: Uint8Array | number | bigint): number;
  /** pread(2) at a 64-bit offset: bytes read or -errno. */
  pread(fd: number, buffer: Uint8Array, offset: bigint): number;
  /** pwrite(2) at a 64-bit offset: bytes written or -errno. */
  pwrite(fd: number, buffer: Uint8Array, offset: bigint): number;
  /** read(2): bytes read or -errno. */
  read(fd: number, buffer: Uint8Array): number;
  /** write(2): bytes written or -errno. */
  write(fd: number, buffer: Uint8Array): number;
  /** eventfd(2): the new fd or -errno. */
  eventfd(initialValue: number, flags: number): number;
  /** poll(2), synchronous: number of ready fds (0 on timeout) or -errno. */
  poll(fds: PollFd[], timeoutMs: number): number;
  /**
   * poll(2) without blocking the event loop: resolves with the number of ready fds (0 on timeout)
   * or -errno. Use a private eventfd in the set to cancel a wait.
   */
  pollAsync(fds: PollFd[], timeoutMs: number): Promise<number>;

  /** Anonymous, shared, read/write memory of `length` bytes (rounded up to pages), or -errno. */
  mmapAnonymous(length: number, options?: AnonymousMapOptions): MappedMemory | number;
  /** mmap(2) of a device-fd region (MAP_SHARED, read/write) as an {@link Mmio}, or -errno. */
  mmapDevice(fd: number, offset: bigint, length: number): Mmio | number;
  /** munmap(2) of memory or a device mapping returned by this kernel: 0 or -errno. */
  munmap(mapping: MappedMemory | Mmio): number;

  /** readlink(2): the link target or -errno. */
  readlink(path: string): string | number;
  /** The names in a directory (without "." and ".."), sorted, or -errno. */
  readdir(path: string): string[] | number;
  /** The whole content of a small (sysfs/procfs) file as text, or -errno. */
  readFile(path: string): string | number;
  /** Write text to a (sysfs) file: bytes written or -errno. */
  writeFile(path: string, text: string): number;

  /** A monotonic clock in milliseconds (virtual time on the simulator). */
  now(): number;
  /** Wait `ms` milliseconds (on the simulator: advance virtual time and run device work). */
  sleep(ms: number): Promise<void>;
}
