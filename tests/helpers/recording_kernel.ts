/**
 * A scripted {@link Kernel} for unit tests of core/: it records every call with a copy of its
 * argument bytes and answers from handlers the test installs, so a test can assert the exact
 * ioctl sequence and argument bytes a client produced.
 *
 * @example
 * ```ts
 * const k = new RecordingKernel();
 * k.files.set("/dev/vfio/vfio", "");           // open() succeeds for this path
 * k.onIoctl((call) => call.request === 0x3b64 ? 0 : -25);
 * ```
 *
 * @module
 */

import type { IoctlArch } from "../../ffi/ioctl.ts";
import type { Kernel, MappedMemory, Mmio, PollFd } from "../../ffi/kernel.ts";
import { ERRNO } from "../../ffi/errno.ts";

/** One recorded system call. */
export interface RecordedCall {
  /** Which call: "open", "close", "ioctl", "pread", … */
  op: string;
  /** The fd (or -1 for calls without one). */
  fd: number;
  /** Path for open/readlink/readdir/readFile/writeFile. */
  path?: string;
  /** ioctl request number. */
  request?: number;
  /** A copy of the argument bytes as passed in (before the handler wrote to them). */
  argIn?: Uint8Array;
  /** The argument buffer itself (handlers write output fields into it). */
  arg?: Uint8Array;
  /** An integer ioctl argument. */
  value?: bigint;
  /** pread/pwrite offset. */
  offset?: bigint;
  /** The result returned. */
  result?: number;
}

/** An ioctl handler: return the result (or -errno); write output fields into `call.arg`. */
export type IoctlHandler = (call: RecordedCall) => number | undefined;

/** A simple Mmio over a plain buffer that records accesses. */
export class RecordingMmio implements Mmio {
  readonly bytes: Uint8Array;
  readonly accesses: {
    op: "r8" | "w8" | "r16" | "w16" | "r32" | "w32" | "r64" | "w64";
    offset: number;
    value?: number | bigint;
  }[] = [];
  #view: DataView;
  /** A region of `length` zero bytes. */
  constructor(readonly length: number) {
    this.bytes = new Uint8Array(length);
    this.#view = new DataView(this.bytes.buffer);
  }
  /** 8-bit read. */
  read8(offset: number): number {
    this.accesses.push({ op: "r8", offset });
    return this.#view.getUint8(offset);
  }
  /** 8-bit write. */
  write8(offset: number, value: number): void {
    this.accesses.push({ op: "w8", offset, value });
    this.#view.setUint8(offset, value & 0xff);
  }
  /** 16-bit read. */
  read16(offset: number): number {
    this.accesses.push({ op: "r16", offset });
    return this.#view.getUint16(offset, true);
  }
  /** 16-bit write. */
  write16(offset: number, value: number): void {
    this.accesses.push({ op: "w16", offset, value });
    this.#view.setUint16(offset, value & 0xffff, true);
  }
  /** 32-bit read. */
  read32(offset: number): number {
    this.accesses.push({ op: "r32", offset });
    return this.#view.getUint32(offset, true);
  }
  /** 32-bit write. */
  write32(offset: number, value: number): void {
    this.accesses.push({ op: "w32", offset, value });
    this.#view.setUint32(offset, value >>> 0, true);
  }
  /** 64-bit read. */
  read64(offset: number): bigint {
    this.accesses.push({ op: "r64", offset });
    return this.#view.getBigUint64(offset, true);
  }
  /** 64-bit write. */
  write64(offset: number, value: bigint): void {
    this.accesses.push({ op: "w64", offset, value });
    this.#view.setBigUint64(offset, BigInt.asUintN(64, value), true);
  }
}

/** The scripted kernel. */
export class RecordingKernel implements Kernel {
  /** Always "linux": the stub stands in for a real kernel. */
  readonly name = "linux" as const;
  /** Every call, in order. */
  readonly calls: RecordedCall[] = [];
  /** Paths open() accepts, and the content readFile() returns for them. */
  readonly files: Map<string, string> = new Map();
  /** Symlinks for readlink(). */
  readonly links: Map<string, string> = new Map();
  /** Directories for readdir(). */
  readonly dirs: Map<string, string[]> = new Map();
  /** Writes made with writeFile(). */
  readonly written: { path: string; text: string }[] = [];
  /** Open fds and the path each was opened from. */
  readonly openFds: Map<number, string> = new Map();
  /** Anonymous mappings that are still mapped. */
  readonly mappings: Set<MappedMemory> = new Set();
  #handlers: IoctlHandler[] = [];
  #nextFd = 3;
  #nextAddress = 0x7f00_0000_0000n;
  #time = 0;

  /** A stub for an architecture and page size. */
  constructor(readonly ioctlArch: IoctlArch = "generic", readonly pageSize = 4096) {}

  /** Add an ioctl handler; the first one that returns a number answers. Unanswered: -ENOTTY. */
  onIoctl(handler: IoctlHandler): void {
    this.#handlers.push(handler);
  }

  /** The recorded calls of one kind. */
  callsOf(op: string): RecordedCall[] {
    return this.calls.filter((c) => c.op === op);
  }

  #record(call: RecordedCall, result: number): number {
    call.result = result;
    this.calls.push(call);
    return result;
  }

  open(path: string, _flags: number): number {
    if (!this.files.has(path)) return this.#record({ op: "open", fd: -1, path }, -ERRNO.ENOENT);
    const fd = this.#nextFd++;
    this.openFds.set(fd, path);
    return this.#record({ op: "open", fd, path }, fd);
  }
  close(fd: number): number {
    const ok = this.openFds.delete(fd);
    return this.#record({ op: "close", fd }, ok ? 0 : -ERRNO.EBADF);
  }
  ioctl(fd: number, request: number, arg?: Uint8Array | number | bigint): number {
    const call: RecordedCall = { op: "ioctl", fd, request };
    if (arg instanceof Uint8Array) {
      call.arg = arg;
      call.argIn = arg.slice();
    } else if (arg !== undefined) call.value = BigInt(arg);
    if (!this.openFds.has(fd)) return this.#record(call, -ERRNO.EBADF);
    for (const h of this.#handlers) {
      const r = h(call);
      if (r !== undefined) return this.#record(call, r);
    }
    return this.#record(call, -ERRNO.ENOTTY);
  }
  pread(fd: number, buffer: Uint8Array, offset: bigint): number {
    const call: RecordedCall = { op: "pread", fd, offset, arg: buffer };
    for (const h of this.#handlers) {
      const r = h(call);
      if (r !== undefined) return this.#record(call, r);
    }
    return this.#record(call, -ERRNO.EINVAL);
  }
  pwrite(fd: number, buffer: Uint8Array, offset: bigint): number {
    const call: RecordedCall = { op: "pwrite", fd, offset, arg: buffer, argIn: buffer.slice() };
    for (const h of this.#handlers) {
      const r = h(call);
      if (r !== undefined) return this.#record(call, r);
    }
    return this.#record(call, -ERRNO.EINVAL);
  }
  read(fd: number, buffer: Uint8Array): number {
    const call: RecordedCall = { op: "read", fd, arg: buffer };
    for (const h of this.#handlers) {
      const r = h(call);
      if (r !== undefined) return this.#record(call, r);
    }
    return this.#record(call, -ERRNO.EAGAIN);
  }
  write(fd: number, buffer: Uint8Array): number {
    return this.#record({ op: "write", fd, argIn: buffer.slice() }, buffer.length);
  }
  eventfd(_initialValue: number, _flags: number): number {
    const fd = this.#nextFd++;
    this.openFds.set(fd, "anon_inode:[eventfd]");
    return this.#record({ op: "eventfd", fd }, fd);
  }
  poll(fds: PollFd[], _timeoutMs: number): number {
    for (const p of fds) p.revents = 0;
    return this.#record({ op: "poll", fd: -1 }, 0);
  }
  pollAsync(fds: PollFd[], timeoutMs: number): Promise<number> {
    return Promise.resolve(this.poll(fds, timeoutMs));
  }
  mmapAnonymous(length: number): MappedMemory | number {
    const size = Math.ceil(length / this.pageSize) * this.pageSize;
    const mem = { address: this.#nextAddress, length: size, bytes: new Uint8Array(size) };
    this.#nextAddress += BigInt(size + this.pageSize);
    this.mappings.add(mem);
    this.#record({ op: "mmap", fd: -1 }, 0);
    return mem;
  }
  mmapDevice(fd: number, offset: bigint, length: number): Mmio | number {
    this.#record({ op: "mmapDevice", fd, offset }, 0);
    return new RecordingMmio(length);
  }
  munmap(mapping: MappedMemory | Mmio): number {
    if ("address" in mapping) this.mappings.delete(mapping);
    return this.#record({ op: "munmap", fd: -1 }, 0);
  }
  readlink(path: string): string | number {
    const target = this.links.get(path);
    this.#record({ op: "readlink", fd: -1, path }, target === undefined ? -ERRNO.ENOENT : 0);
    return target ?? -ERRNO.ENOENT;
  }
  readdir(path: string): string[] | number {
    const names = this.dirs.get(path);
    this.#record({ op: "readdir", fd: -1, path }, names === undefined ? -ERRNO.ENOENT : 0);
    return names ? [...names].sort() : -ERRNO.ENOENT;
  }
  readFile(path: string): string | number {
    const text = this.files.get(path);
    this.#record({ op: "readFile", fd: -1, path }, text === undefined ? -ERRNO.ENOENT : 0);
    return text ?? -ERRNO.ENOENT;
  }
  writeFile(path: string, text: string): number {
    this.written.push({ path, text });
    return this.#record({ op: "writeFile", fd: -1, path }, text.length);
  }
  now(): number {
    return this.#time;
  }
  sleep(ms: number): Promise<void> {
    this.#time += ms;
    return Promise.resolve();
  }
}
