/**
 * `LinuxKernel`: the {@link Kernel} seam over the real Linux kernel, through glibc and Deno FFI.
 *
 * This is the only module of deno_vfio that needs `--allow-ffi`. Importing it needs no
 * permission: libc is opened on first use (`LinuxKernel.open()` forces it, so a missing
 * permission shows at start-up). Measured FFI facts this file relies on are in
 * shared/reference/deno-ffi.md: errno is read through an `Int32Array` over the thread's errno
 * cell right after a call returns -1; `nonblocking` calls lose errno; BARs are accessed with
 * typed-array element stores and `Atomics.load`, never a DataView.
 *
 * sysfs and procfs are read with libc too (`readFile`, `readdir`, `readlink`): Deno's own file
 * APIs refuse /sys and /proc without `--allow-all`, libc through FFI does not.
 *
 * @example
 * ```ts
 * const { LinuxKernel } = await import("./ffi/linux.ts");
 * const kernel = LinuxKernel.open();
 * const fd = kernel.open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
 * ```
 *
 * @module
 */

import { ERRNO } from "./errno.ts";
import { hostIoctlArch, type IoctlArch } from "./ioctl.ts";
import { HostMmio, LinuxMemory, MappingState } from "./linux_mappings.ts";
import {
  type AnonymousMapOptions,
  type Kernel,
  type MappedMemory,
  type Mmio,
  O_CLOEXEC,
  O_RDONLY,
  type PollFd,
} from "./kernel.ts";

/** glibc's SONAME on every Linux architecture this project targets. */
const LIBC = "libc.so.6";

/**
 * The libc symbols, one entry each, with the C prototype (glibc 2.36 man pages / headers).
 * Variadic `open` and `ioctl` are called through fixed signatures: integer and pointer
 * arguments pass the same way on x86-64 and aarch64 (deno-ffi.md §1).
 */
const LIBC_SYMBOLS = {
  // int open(const char *pathname, int flags, ... /* mode_t mode */);
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  // int close(int fd);
  close: { parameters: ["i32"], result: "i32" },
  // int ioctl(int fd, unsigned long request, ... /* void *argp */);
  ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32" },
  // int ioctl(int fd, unsigned long request, ... /* unsigned long value */);
  ioctl_value: { name: "ioctl", parameters: ["i32", "u64", "u64"], result: "i32" },
  // ssize_t pread64(int fd, void *buf, size_t count, off64_t offset);
  pread64: { parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
  // ssize_t pwrite64(int fd, const void *buf, size_t count, off64_t offset);
  pwrite64: { parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
  // ssize_t read(int fd, void *buf, size_t count);
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  // ssize_t write(int fd, const void *buf, size_t count);
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  // void *mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset);
  mmap: { parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"], result: "pointer" },
  // int munmap(void *addr, size_t length);
  munmap: { parameters: ["pointer", "usize"], result: "i32" },
  // int madvise(void *addr, size_t length, int advice);
  madvise: { parameters: ["pointer", "usize", "i32"], result: "i32" },
  // int eventfd(unsigned int initval, int flags);
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  // int poll(struct pollfd *fds, nfds_t nfds, int timeout);
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32" },
  // int poll(struct pollfd *fds, nfds_t nfds, int timeout); on a helper thread (errno is lost)
  poll_nonblocking: {
    name: "poll",
    parameters: ["buffer", "u64", "i32"],
    result: "i32",
    nonblocking: true,
  },
  // ssize_t readlink(const char *pathname, char *buf, size_t bufsiz);
  readlink: { parameters: ["buffer", "buffer", "usize"], result: "isize" },
  // DIR *opendir(const char *name);
  opendir: { parameters: ["buffer"], result: "pointer" },
  // struct dirent64 *readdir64(DIR *dirp);
  readdir64: { parameters: ["pointer"], result: "pointer" },
  // int closedir(DIR *dirp);
  closedir: { parameters: ["pointer"], result: "i32" },
  // int *__errno_location(void);
  __errno_location: { parameters: [], result: "pointer" },
  // long sysconf(int name);
  sysconf: { parameters: ["i32"], result: "i64" },
} as const satisfies Deno.ForeignLibraryInterface;

type Libc = Deno.DynamicLibrary<typeof LIBC_SYMBOLS>["symbols"];

/** mmap(2) protection and flags (asm-generic/mman-common.h, uapi/linux/mman.h). */
const PROT_READ = 0x1;
const PROT_WRITE = 0x2;
const MAP_SHARED = 0x01;
const MAP_ANONYMOUS = 0x20;
const MAP_POPULATE = 0x8000;
/** madvise(2) advice (asm-generic/mman-common.h). */
const MADV_HUGEPAGE = 14;
/** Prefault writable (Linux 5.14+); older kernels answer EINVAL and pages are touched instead. */
const MADV_POPULATE_WRITE = 23;
/** `(void *) -1` as `Deno.UnsafePointer.value` reports it. */
const MAP_FAILED = 0xffff_ffff_ffff_ffffn;
/** open(2) write-only (asm-generic/fcntl.h). */
const O_WRONLY = 1;
/** `_SC_PAGESIZE` in glibc's bits/confname.h enum (the same on every architecture). */
const SC_PAGESIZE = 30;
/** PATH_MAX (linux/limits.h): the longest link target readlink can return. */
const PATH_MAX = 4096;
/**
 * Offset of `d_name` in glibc's `struct dirent64` (sysdeps/unix/sysv/linux/bits/dirent.h:
 * u64 d_ino @0, s64 d_off @8, u16 d_reclen @16, u8 d_type @18, char d_name[256] @19).
 * One generic header serves x86-64 and aarch64; checked with gcc offsetof on x86-64.
 */
const DIRENT64_NAME_OFFSET = 19;
/** `struct pollfd { int fd; short events; short revents; }` (asm-generic/poll.h). */
const POLLFD_SIZE = 8;
const POLLFD_EVENTS = 4;
const POLLFD_REVENTS = 6;
/** The largest poll(2) timeout (an `int` of milliseconds). */
const POLL_TIMEOUT_MAX = 0x7fff_ffff;
/** Chunk size of readFile: one page, the most a sysfs attribute holds. */
const READ_CHUNK = 4096;
/** readFile refuses files larger than this (it is meant for small sysfs/procfs files). */
const READ_FILE_MAX = 16 * 1024 * 1024;
/** Where the kernel publishes its transparent huge page size (Linux 4.14+). */
const HPAGE_PMD_SIZE_PATH = "/sys/kernel/mm/transparent_hugepage/hpage_pmd_size";
/** PMD size with 4 KiB pages on x86-64 and arm64: the fallback huge page size. */
const DEFAULT_HUGE_PAGE_SIZE = 2 * 1024 * 1024;

/** The opened library and the calling thread's errno cell. */
interface LoadedLibc {
  readonly sym: Libc;
  readonly errno: Int32Array;
}

let loaded: LoadedLibc | undefined;

/** dlopen libc on first use (needs --allow-ffi; throws Deno.errors.NotCapable without it). */
function libc(): LoadedLibc {
  if (loaded !== undefined) return loaded;
  const lib = Deno.dlopen(LIBC, LIBC_SYMBOLS);
  const cell = lib.symbols.__errno_location();
  if (cell === null) throw new Error("__errno_location() returned NULL");
  // The main thread's errno cell has a fixed address: wrap it once (deno-ffi.md §1).
  const errno = new Int32Array(Deno.UnsafePointerView.getArrayBuffer(cell, 4));
  loaded = { sym: lib.symbols, errno };
  return loaded;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A NUL-terminated copy of a path for libc. */
function cString(text: string): Uint8Array {
  const bytes = new Uint8Array(text.length * 3 + 1);
  const { written } = encoder.encodeInto(text, bytes);
  return bytes.subarray(0, written + 1);
}

/** `-errno` of the call that just failed. */
function failed(c: LoadedLibc): number {
  return -c.errno[0];
}

/** A size_t / ssize_t result as a Number, or -errno. */
function sizeResult(c: LoadedLibc, r: bigint): number {
  return r < 0n ? failed(c) : Number(r);
}

/** A poll set as `struct pollfd[]` bytes. */
function encodePollFds(fds: PollFd[]): Uint8Array {
  const bytes = new Uint8Array(Math.max(fds.length, 1) * POLLFD_SIZE);
  const view = new DataView(bytes.buffer);
  fds.forEach((p, i) => {
    view.setInt32(i * POLLFD_SIZE, p.fd, true);
    view.setInt16(i * POLLFD_SIZE + POLLFD_EVENTS, p.events, true);
  });
  return bytes;
}

/** Copy `revents` back into the caller's poll set (zero when the call failed). */
function decodePollFds(fds: PollFd[], bytes: Uint8Array, ok: boolean): void {
  const view = new DataView(bytes.buffer);
  fds.forEach((p, i) => {
    p.revents = ok ? view.getUint16(i * POLLFD_SIZE + POLLFD_REVENTS, true) : 0;
  });
}

/** A poll(2) timeout: negative or non-finite waits forever; fractions round up. */
function pollTimeout(ms: number): number {
  if (!(ms >= 0) || !Number.isFinite(ms)) return -1;
  return Math.min(Math.ceil(ms), POLL_TIMEOUT_MAX);
}

/**
 * The real Linux kernel through glibc. See the module documentation for permissions.
 *
 * Limits worth knowing:
 * - `pollAsync` runs poll(2) on a Deno helper thread, where errno cannot be read; when it returns
 *   -1 the same set is polled once more synchronously with a zero timeout: a persistent failure
 *   (EBADF, EINVAL, EFAULT…) is reported with its real errno, a passing one (a signal) as -EINTR.
 *   A pending `pollAsync` keeps the process alive until it returns: bound it with a timeout or a
 *   private eventfd you signal before exiting.
 * - `mmapAnonymous` returns MAP_SHARED memory, which Linux backs with shmem: transparent huge
 *   pages for it follow /sys/kernel/mm/transparent_hugepage/shmem_enabled (often "never"), so
 *   `hugePages` guarantees the alignment, not the huge pages.
 */
export class LinuxKernel implements Kernel {
  /** Always "linux". */
  readonly name = "linux" as const;
  /** The ioctl encoding of the host architecture. */
  readonly ioctlArch: IoctlArch = hostIoctlArch();
  #pageSize: number | undefined;
  #hugePageSize: number | undefined;
  /** Pointer bookkeeping of every live or retired mapping this kernel returned. */
  readonly #mappings: WeakMap<object, MappingState> = new WeakMap();

  /**
   * A kernel with libc loaded now: throws `Deno.errors.NotCapable` without `--allow-ffi`.
   * (`new LinuxKernel()` defers loading to the first call.)
   */
  static open(): LinuxKernel {
    const kernel = new LinuxKernel();
    libc();
    return kernel;
  }

  /** PAGE_SIZE from sysconf(_SC_PAGESIZE). */
  get pageSize(): number {
    if (this.#pageSize === undefined) {
      this.#pageSize = Number(libc().sym.sysconf(SC_PAGESIZE));
    }
    return this.#pageSize;
  }

  /** The transparent huge page size the kernel reports (2 MiB on x86-64 and 4 KiB-page arm64). */
  get hugePageSize(): number {
    if (this.#hugePageSize === undefined) {
      const text = this.readFile(HPAGE_PMD_SIZE_PATH);
      const n = typeof text === "string" ? Number(text.trim()) : NaN;
      this.#hugePageSize = Number.isInteger(n) && n > 0 ? n : DEFAULT_HUGE_PAGE_SIZE;
    }
    return this.#hugePageSize;
  }

  /** open(2). */
  open(path: string, flags: number): number {
    const c = libc();
    const fd = c.sym.open(cString(path), flags, 0);
    return fd < 0 ? failed(c) : fd;
  }

  /** close(2). */
  close(fd: number): number {
    const c = libc();
    return c.sym.close(fd) < 0 ? failed(c) : 0;
  }

  /** ioctl(2): a Uint8Array goes by pointer, a number or bigint by value (absent: 0). */
  ioctl(fd: number, request: number, arg?: Uint8Array | number | bigint): number {
    const c = libc();
    const req = BigInt(request >>> 0);
    const r = arg instanceof Uint8Array
      ? c.sym.ioctl(fd, req, arg)
      : c.sym.ioctl_value(fd, req, BigInt.asUintN(64, BigInt(arg ?? 0)));
    return r === -1 ? failed(c) : r;
  }

  /** pread64(2). */
  pread(fd: number, buffer: Uint8Array, offset: bigint): number {
    const c = libc();
    return sizeResult(c, c.sym.pread64(fd, buffer, BigInt(buffer.length), offset));
  }

  /** pwrite64(2). */
  pwrite(fd: number, buffer: Uint8Array, offset: bigint): number {
    const c = libc();
    return sizeResult(c, c.sym.pwrite64(fd, buffer, BigInt(buffer.length), offset));
  }

  /** read(2). */
  read(fd: number, buffer: Uint8Array): number {
    const c = libc();
    return sizeResult(c, c.sym.read(fd, buffer, BigInt(buffer.length)));
  }

  /** write(2). */
  write(fd: number, buffer: Uint8Array): number {
    const c = libc();
    return sizeResult(c, c.sym.write(fd, buffer, BigInt(buffer.length)));
  }

  /** eventfd(2). */
  eventfd(initialValue: number, flags: number): number {
    const c = libc();
    const fd = c.sym.eventfd(initialValue >>> 0, flags);
    return fd < 0 ? failed(c) : fd;
  }

  /** poll(2) on the calling thread (blocks the event loop for up to `timeoutMs`). */
  poll(fds: PollFd[], timeoutMs: number): number {
    const c = libc();
    const bytes = encodePollFds(fds);
    const r = c.sym.poll(bytes, BigInt(fds.length), pollTimeout(timeoutMs));
    const result = r < 0 ? failed(c) : r;
    decodePollFds(fds, bytes, result >= 0);
    return result;
  }

  /** poll(2) on a helper thread; see the class documentation for errno. */
  async pollAsync(fds: PollFd[], timeoutMs: number): Promise<number> {
    const c = libc();
    const bytes = encodePollFds(fds);
    const r = await c.sym.poll_nonblocking(bytes, BigInt(fds.length), pollTimeout(timeoutMs));
    if (r >= 0) {
      decodePollFds(fds, bytes, true);
      return r;
    }
    // errno stayed on the helper thread: ask again, without waiting, to learn it.
    const again = c.sym.poll(bytes, BigInt(fds.length), 0);
    const result = again < 0 ? failed(c) : -ERRNO.EINTR;
    decodePollFds(fds, bytes, false);
    return result;
  }

  /**
   * Anonymous MAP_SHARED read/write memory of `length` bytes rounded up to pages, populated.
   * With `hugePages` and at least one huge page of length, the start is aligned to a huge page
   * (an over-sized mapping is made and its slack unmapped) and MADV_HUGEPAGE advised before the
   * pages are faulted in, so every whole huge page inside can be one.
   */
  mmapAnonymous(length: number, options: AnonymousMapOptions = {}): MappedMemory | number {
    if (!(length > 0) || !Number.isSafeInteger(Math.ceil(length))) return -ERRNO.EINVAL;
    const page = this.pageSize;
    const huge = this.hugePageSize;
    const size = Math.ceil(length / page) * page;
    const c = libc();
    const prot = PROT_READ | PROT_WRITE;
    if (options.hugePages !== true || size < huge) {
      const flags = MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE;
      const p = c.sym.mmap(null, BigInt(size), prot, flags, -1, 0n);
      if (p === null || Deno.UnsafePointer.value(p) === MAP_FAILED) return failed(c);
      return this.#remember(new MappingState(p, size, getBuffer(p, size)), LinuxMemory);
    }
    // mmap returns a page-aligned start, so an aligned one lies within the first huge - page.
    const span = size + huge - page;
    const raw = c.sym.mmap(null, BigInt(span), prot, MAP_SHARED | MAP_ANONYMOUS, -1, 0n);
    if (raw === null || Deno.UnsafePointer.value(raw) === MAP_FAILED) return failed(c);
    const start = Deno.UnsafePointer.value(raw);
    const head = Number((BigInt(huge) - start % BigInt(huge)) % BigInt(huge));
    const p = Deno.UnsafePointer.create(start + BigInt(head))!;
    if (head > 0) c.sym.munmap(raw, BigInt(head));
    const tail = span - head - size;
    if (tail > 0) c.sym.munmap(Deno.UnsafePointer.offset(p, size), BigInt(tail));
    // Advice only: the kernel may decline huge pages (see the class documentation).
    c.sym.madvise(p, BigInt(size), MADV_HUGEPAGE);
    const buffer = getBuffer(p, size);
    if (c.sym.madvise(p, BigInt(size), MADV_POPULATE_WRITE) !== 0) {
      const err = failed(c);
      if (err !== -ERRNO.EINVAL) {
        // ENOMEM and the like: touching the pages would raise SIGBUS instead.
        c.sym.munmap(p, BigInt(size));
        buffer.transfer(0);
        return err;
      }
      // A kernel older than 5.14: fault the pages in by touching one byte of each.
      const bytes = new Uint8Array(buffer);
      for (let off = 0; off < size; off += page) bytes[off] = 0;
    }
    return this.#remember(new MappingState(p, size, buffer), LinuxMemory);
  }

  /** mmap(2) of a device region, MAP_SHARED read/write, as an {@link Mmio}. */
  mmapDevice(fd: number, offset: bigint, length: number): Mmio | number {
    if (!(length > 0) || !Number.isSafeInteger(length)) return -ERRNO.EINVAL;
    const c = libc();
    const p = c.sym.mmap(null, BigInt(length), PROT_READ | PROT_WRITE, MAP_SHARED, fd, offset);
    if (p === null || Deno.UnsafePointer.value(p) === MAP_FAILED) return failed(c);
    return this.#remember(new MappingState(p, length, getBuffer(p, length)), HostMmio);
  }

  /**
   * munmap(2) of a mapping this kernel returned. Its memory is then unreachable from JavaScript:
   * the buffer is detached (earlier views read as empty) and the object throws on use. A second
   * munmap returns 0, as Linux does for an unmapped range; an object this kernel did not return
   * gives -EINVAL.
   */
  munmap(mapping: MappedMemory | Mmio): number {
    const state = this.#mappings.get(mapping);
    if (state === undefined) return -ERRNO.EINVAL;
    if (!state.live) return 0;
    const c = libc();
    if (c.sym.munmap(state.pointer, BigInt(state.length)) !== 0) return failed(c);
    state.live = false;
    // Detach the external buffer so no view over it can reach the unmapped pages.
    state.buffer.transfer(0);
    return 0;
  }

  /** readlink(2). */
  readlink(path: string): string | number {
    const c = libc();
    const buf = new Uint8Array(PATH_MAX);
    const n = sizeResult(c, c.sym.readlink(cString(path), buf, BigInt(buf.length)));
    if (n < 0) return n;
    if (n >= buf.length) return -ERRNO.ENAMETOOLONG;
    return decoder.decode(buf.subarray(0, n));
  }

  /** opendir/readdir64/closedir: the names, sorted, without "." and "..". */
  readdir(path: string): string[] | number {
    const c = libc();
    const dir = c.sym.opendir(cString(path));
    if (dir === null) return failed(c);
    const names: string[] = [];
    let result = 0;
    for (;;) {
      c.errno[0] = 0; // readdir64 returns NULL both at the end and on error
      const entry = c.sym.readdir64(dir);
      if (entry === null) {
        result = -c.errno[0];
        break;
      }
      const name = Deno.UnsafePointerView.getCString(entry, DIRENT64_NAME_OFFSET);
      if (name !== "." && name !== "..") names.push(name);
    }
    c.sym.closedir(dir);
    return result < 0 ? result : names.sort();
  }

  /** The whole of a small file (sysfs, procfs) through open/read/close. */
  readFile(path: string): string | number {
    const fd = this.open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fd;
    const chunks: Uint8Array[] = [];
    let total = 0;
    let result = 0;
    for (;;) {
      const chunk = new Uint8Array(READ_CHUNK);
      const n = this.read(fd, chunk);
      if (n === -ERRNO.EINTR) continue;
      if (n <= 0) {
        result = n;
        break;
      }
      chunks.push(chunk.subarray(0, n));
      total += n;
      if (total > READ_FILE_MAX) {
        result = -ERRNO.EFBIG;
        break;
      }
    }
    this.close(fd);
    if (result < 0) return result;
    const all = new Uint8Array(total);
    let at = 0;
    for (const chunk of chunks) {
      all.set(chunk, at);
      at += chunk.length;
    }
    return decoder.decode(all);
  }

  /** One write(2) of the whole text (a sysfs store takes one write): bytes written or -errno. */
  writeFile(path: string, text: string): number {
    const fd = this.open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return fd;
    const written = this.write(fd, encoder.encode(text));
    const closed = this.close(fd);
    return written < 0 ? written : closed < 0 ? closed : written;
  }

  /** performance.now(): monotonic milliseconds. */
  now(): number {
    return performance.now();
  }

  /** A timer. */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  #remember<T extends object>(state: MappingState, Kind: new (state: MappingState) => T): T {
    const object = new Kind(state);
    this.#mappings.set(object, state);
    return object;
  }
}

/** An ArrayBuffer over `length` mapped bytes (no copy). */
function getBuffer(pointer: Deno.PointerObject, length: number): ArrayBuffer {
  return Deno.UnsafePointerView.getArrayBuffer(pointer, length);
}
