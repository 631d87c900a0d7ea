/**
 * Kernel-side fault injection, as the kernel's own iommufd selftest does with fail-nth: a
 * {@link FailNthKernel} in front of any {@link Kernel} (the simulator's or the real one) counts
 * the system calls of each kind and fails the Nth call of a chosen kind with a chosen errno,
 * so a driver's error unwinding can be checked at every step.
 *
 * The injected failure is what the kernel would answer had the call failed before doing
 * anything — except close(2), which on Linux releases the descriptor even when it reports an
 * error, so an injected close failure still closes the fd and then returns the errno.
 *
 * @example
 * ```ts
 * const k = new FailNthKernel(machine.kernel, { call: "ioctl", nth: 3, errno: ERRNO.ENOMEM });
 * assertThrows(() => openPciDevice(bdf, { kernel: k }), VfioError); // the 3rd ioctl failed
 * k.fired; // true
 * ```
 *
 * @module
 */

import { errnoName } from "../ffi/errno.ts";
import type { IoctlArch } from "../ffi/ioctl.ts";
import type { AnonymousMapOptions, Kernel, MappedMemory, Mmio, PollFd } from "../ffi/kernel.ts";

/** The system calls of the {@link Kernel} seam that fail-nth counts. */
export type SyscallKind =
  | "open"
  | "close"
  | "ioctl"
  | "pread"
  | "pwrite"
  | "read"
  | "write"
  | "eventfd"
  | "poll"
  | "mmapAnonymous"
  | "mmapDevice"
  | "munmap"
  | "readlink"
  | "readdir"
  | "readFile"
  | "writeFile";

/** Every kind, in the seam's order. */
export const SYSCALL_KINDS: readonly SyscallKind[] = [
  "open",
  "close",
  "ioctl",
  "pread",
  "pwrite",
  "read",
  "write",
  "eventfd",
  "poll",
  "mmapAnonymous",
  "mmapDevice",
  "munmap",
  "readlink",
  "readdir",
  "readFile",
  "writeFile",
];

/** Which call fails and how. */
export interface FailNthRule {
  /** The kind of call. */
  readonly call: SyscallKind;
  /** Fail the nth call of that kind (1-based), counted from when the rule was armed. */
  readonly nth: number;
  /** The errno to answer (a positive ERRNO value, e.g. ERRNO.ENOMEM). */
  readonly errno: number;
  /** For ioctl: count only this request number. */
  readonly request?: number;
}

/** A {@link Kernel} that fails the Nth call of a kind (see the module doc). */
export class FailNthKernel implements Kernel {
  /** The kernel underneath. */
  readonly inner: Kernel;
  /** Calls of each kind seen since the last {@link arm} (or construction). */
  readonly counts: Record<SyscallKind, number>;
  #rule: FailNthRule | undefined;
  #seen = 0;
  #fired: string | undefined;

  /** In front of `inner`, failing per `rule` when given. */
  constructor(inner: Kernel, rule?: FailNthRule) {
    this.inner = inner;
    this.counts = zeroCounts();
    if (rule) this.arm(rule);
  }

  /** Arm a rule (counting starts again from zero). */
  arm(rule: FailNthRule): void {
    if (!Number.isInteger(rule.nth) || rule.nth < 1) {
      throw new RangeError(`fail-nth: nth ${rule.nth} must be a positive integer`);
    }
    if (!Number.isInteger(rule.errno) || rule.errno <= 0) {
      throw new RangeError(`fail-nth: errno ${rule.errno} must be a positive errno value`);
    }
    this.#rule = rule;
    this.#seen = 0;
    this.#fired = undefined;
    Object.assign(this.counts, zeroCounts());
  }

  /** Stop injecting (counting goes on). */
  disarm(): void {
    this.#rule = undefined;
  }

  /** Whether the armed rule has failed its call. */
  get fired(): boolean {
    return this.#fired !== undefined;
  }

  /** The call that was failed, e.g. "ioctl #3 (0x3b6e) -> ENOMEM", or undefined. */
  get firedAt(): string | undefined {
    return this.#fired;
  }

  /** Same as the inner kernel. */
  get name(): "linux" | "sim" {
    return this.inner.name;
  }

  /** Same as the inner kernel. */
  get ioctlArch(): IoctlArch {
    return this.inner.ioctlArch;
  }

  /** Same as the inner kernel. */
  get pageSize(): number {
    return this.inner.pageSize;
  }

  /** open(2). */
  open(path: string, flags: number): number {
    return this.#hit("open", path) ?? this.inner.open(path, flags);
  }

  /** close(2): an injected failure still releases the fd, as Linux does. */
  close(fd: number): number {
    const fail = this.#hit("close", String(fd));
    const r = this.inner.close(fd);
    return fail ?? r;
  }

  /** ioctl(2). */
  ioctl(fd: number, request: number, arg?: Uint8Array | number | bigint): number {
    return this.#hit("ioctl", `0x${(request >>> 0).toString(16)}`, request) ??
      this.inner.ioctl(fd, request, arg);
  }

  /** pread(2). */
  pread(fd: number, buffer: Uint8Array, offset: bigint): number {
    return this.#hit("pread") ?? this.inner.pread(fd, buffer, offset);
  }

  /** pwrite(2). */
  pwrite(fd: number, buffer: Uint8Array, offset: bigint): number {
    return this.#hit("pwrite") ?? this.inner.pwrite(fd, buffer, offset);
  }

  /** read(2). */
  read(fd: number, buffer: Uint8Array): number {
    return this.#hit("read") ?? this.inner.read(fd, buffer);
  }

  /** write(2). */
  write(fd: number, buffer: Uint8Array): number {
    return this.#hit("write") ?? this.inner.write(fd, buffer);
  }

  /** eventfd(2). */
  eventfd(initialValue: number, flags: number): number {
    return this.#hit("eventfd") ?? this.inner.eventfd(initialValue, flags);
  }

  /** poll(2). */
  poll(fds: PollFd[], timeoutMs: number): number {
    return this.#hit("poll") ?? this.inner.poll(fds, timeoutMs);
  }

  /** poll(2) off the event loop (counted as "poll"). */
  pollAsync(fds: PollFd[], timeoutMs: number): Promise<number> {
    const fail = this.#hit("poll");
    return fail === undefined ? this.inner.pollAsync(fds, timeoutMs) : Promise.resolve(fail);
  }

  /** Anonymous memory. */
  mmapAnonymous(length: number, options?: AnonymousMapOptions): MappedMemory | number {
    return this.#hit("mmapAnonymous") ?? this.inner.mmapAnonymous(length, options);
  }

  /** A device region mapping. */
  mmapDevice(fd: number, offset: bigint, length: number): Mmio | number {
    return this.#hit("mmapDevice") ?? this.inner.mmapDevice(fd, offset, length);
  }

  /** munmap(2): an injected failure leaves the mapping in place. */
  munmap(mapping: MappedMemory | Mmio): number {
    return this.#hit("munmap") ?? this.inner.munmap(mapping);
  }

  /** readlink(2). */
  readlink(path: string): string | number {
    return this.#hit("readlink", path) ?? this.inner.readlink(path);
  }

  /** A directory listing. */
  readdir(path: string): string[] | number {
    return this.#hit("readdir", path) ?? this.inner.readdir(path);
  }

  /** A small file. */
  readFile(path: string): string | number {
    return this.#hit("readFile", path) ?? this.inner.readFile(path);
  }

  /** Write a sysfs attribute. */
  writeFile(path: string, text: string): number {
    return this.#hit("writeFile", path) ?? this.inner.writeFile(path, text);
  }

  /** Same as the inner kernel (not a system call that can fail). */
  now(): number {
    return this.inner.now();
  }

  /** Same as the inner kernel. */
  sleep(ms: number): Promise<void> {
    return this.inner.sleep(ms);
  }

  /** Count a call; -errno when it is the one to fail. */
  #hit(kind: SyscallKind, detail?: string, request?: number): number | undefined {
    this.counts[kind]++;
    const rule = this.#rule;
    if (rule === undefined || rule.call !== kind || this.#fired !== undefined) return undefined;
    if (
      rule.request !== undefined && request !== undefined && rule.request >>> 0 !== request >>> 0
    ) {
      return undefined;
    }
    if (++this.#seen !== rule.nth) return undefined;
    const where = detail === undefined ? "" : ` (${detail})`;
    this.#fired = `${kind} #${rule.nth}${where} -> ${errnoName(rule.errno)}`;
    return -rule.errno;
  }
}

function zeroCounts(): Record<SyscallKind, number> {
  return Object.fromEntries(SYSCALL_KINDS.map((k) => [k, 0])) as Record<SyscallKind, number>;
}
