/**
 * What an open file is inside the simulated kernel: the `file_operations` of a simulated fd, and
 * the process context a handler runs in. Every fd type (VFIO container, group, device, cdev,
 * iommufd, eventfd, fault fd) implements {@link SimFile}; handlers return a result or -errno and
 * never throw for anything user space can pass.
 *
 * @module
 */

import type { Mmio } from "../../ffi/kernel.ts";
import type { VirtualClock } from "../clock.ts";
import type { ProcessMemory } from "../memory.ts";

/** The calling process, as a handler sees it (copy_from_user, fget, limits). */
export interface SimProcess {
  /** The process address space (copyFromUser/copyToUser give EFAULT semantics). */
  readonly memory: ProcessMemory;
  /** The machine's clock. */
  readonly clock: VirtualClock;
  /** The open file behind an fd number, or undefined (EBADF). */
  fget(fd: number): SimFile | undefined;
  /** Install a new file in the lowest free fd; returns the fd or -EMFILE. */
  installFd(file: SimFile): number;
  /** RLIMIT_MEMLOCK in bytes (Infinity for unlimited). */
  readonly memlockLimit: number;
  /** Pages currently charged to the process's locked_vm (VmLck). */
  lockedPages: number;
  /** Whether the process has CAP_IPC_LOCK (not charged against the limit). */
  readonly capIpcLock: boolean;
}

/** An open simulated file. Optional operations answer like a file without them in Linux. */
export interface SimFile {
  /** A short type tag for diagnostics and fd-type checks ("vfio-container", "iommufd", …). */
  readonly kind: string;
  /**
   * ioctl: `arg` is the caller's buffer (passed by pointer; the handler reads and writes it in
   * place) or an integer passed by value. Returns the result or -errno. Files without ioctls
   * answer -ENOTTY.
   */
  ioctl?(process: SimProcess, request: number, arg: Uint8Array | bigint): number;
  /** read(2): bytes or -errno (-EINVAL if unsupported). */
  read?(process: SimProcess, buffer: Uint8Array): number;
  /** write(2): bytes or -errno. */
  write?(process: SimProcess, buffer: Uint8Array): number;
  /** pread(2): bytes or -errno (-ESPIPE if unsupported). */
  pread?(process: SimProcess, buffer: Uint8Array, offset: bigint): number;
  /** pwrite(2): bytes or -errno. */
  pwrite?(process: SimProcess, buffer: Uint8Array, offset: bigint): number;
  /** mmap(2) of a device region: an Mmio or -errno (-ENODEV if unsupported). */
  mmap?(process: SimProcess, offset: bigint, length: number): Mmio | number;
  /** Ready events for poll (POLLIN, …). */
  pollEvents?(): number;
  /** The last fd referring to the file was closed: release everything it holds. */
  release?(process: SimProcess): void;
}
