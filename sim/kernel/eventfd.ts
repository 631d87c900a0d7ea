/**
 * eventfd(2) (fs/eventfd.c): a 64-bit counter. write adds, read returns and clears it (or
 * decrements it by one in semaphore mode), POLLIN while it is non-zero, POLLOUT while another
 * write of 1 fits. Kernel code signals it with {@link EventFd.signal} (`eventfd_signal`), which
 * keeps working after the last fd is closed, as an `eventfd_ctx` reference does.
 *
 * @module
 */

import { ERRNO } from "../../ffi/errno.ts";
import { EFD_CLOEXEC, EFD_NONBLOCK, POLLIN, POLLOUT } from "../../ffi/kernel.ts";
import type { SimFile, SimProcess } from "./file.ts";

/** eventfd(2) flag: read decrements by one (semaphore semantics). */
export const EFD_SEMAPHORE = 1;
/** Every flag eventfd(2) accepts. */
export const EFD_VALID_FLAGS = EFD_SEMAPHORE | EFD_CLOEXEC | EFD_NONBLOCK;
/** The largest counter value (`ULLONG_MAX - 1`; a write of `ULLONG_MAX` is EINVAL). */
export const EVENTFD_MAX = 0xffff_ffff_ffff_fffen;
/** Bytes moved by one read or write. */
export const EVENTFD_WORD = 8;

/** What a blocking read or write does when it would block: wait for this to make progress. */
export type BlockingWait = (ready: () => boolean) => boolean;

/** A kernel-side listener called after the counter was raised (virqfd, ioeventfd users). */
export type EventFdListener = (eventfd: EventFd) => void;

/** An eventfd file. */
export class EventFd implements SimFile {
  /** fd type tag. */
  readonly kind = "eventfd";
  #count: bigint;
  readonly #semaphore: boolean;
  #nonblock: boolean;
  readonly #wait: BlockingWait;
  readonly #listeners = new Set<EventFdListener>();

  /**
   * A counter starting at `initial`; `wait` runs the machine until a blocked read/write could
   * proceed (it returns false when nothing could ever wake it).
   */
  constructor(initial: number, flags: number, wait: BlockingWait) {
    this.#count = BigInt(initial >>> 0);
    this.#semaphore = (flags & EFD_SEMAPHORE) !== 0;
    this.#nonblock = (flags & EFD_NONBLOCK) !== 0;
    this.#wait = wait;
  }

  /** O_NONBLOCK (set at creation or with FIONBIO). */
  get nonblock(): boolean {
    return this.#nonblock;
  }
  set nonblock(value: boolean) {
    this.#nonblock = value;
  }

  /** The current counter value. */
  get count(): bigint {
    return this.#count;
  }

  /** `eventfd_signal`: add `n` (saturating at the maximum) and wake listeners. */
  signal(n = 1n): void {
    const room = EVENTFD_MAX + 1n - this.#count;
    this.#count += n > room ? room : n;
    for (const listener of [...this.#listeners]) listener(this);
  }

  /** Consume the counter from kernel code (`eventfd_ctx_do_read`); returns the value taken. */
  consume(): bigint {
    const value = this.#count;
    this.#count = 0n;
    return value;
  }

  /** Register a kernel listener (called after every raise of the counter). */
  listen(listener: EventFdListener): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }

  /** read(2): 8 bytes of counter, EINVAL for a shorter buffer, EAGAIN when zero and non-blocking. */
  read(_process: SimProcess, buffer: Uint8Array): number {
    if (buffer.length < EVENTFD_WORD) return -ERRNO.EINVAL;
    if (this.#count === 0n) {
      if (this.#nonblock) return -ERRNO.EAGAIN;
      if (!this.#wait(() => this.#count > 0n)) return -ERRNO.EINTR;
    }
    const value = this.#semaphore ? 1n : this.#count;
    this.#count -= value;
    new DataView(buffer.buffer, buffer.byteOffset, EVENTFD_WORD).setBigUint64(0, value, true);
    return EVENTFD_WORD;
  }

  /** write(2): adds an 8-byte value; EINVAL for a short buffer or ULLONG_MAX. */
  write(_process: SimProcess, buffer: Uint8Array): number {
    if (buffer.length < EVENTFD_WORD) return -ERRNO.EINVAL;
    const value = new DataView(buffer.buffer, buffer.byteOffset, EVENTFD_WORD).getBigUint64(
      0,
      true,
    );
    if (value > EVENTFD_MAX) return -ERRNO.EINVAL;
    if (EVENTFD_MAX - this.#count < value) {
      if (this.#nonblock) return -ERRNO.EAGAIN;
      if (!this.#wait(() => EVENTFD_MAX - this.#count >= value)) return -ERRNO.EINTR;
    }
    if (value > 0n) this.signal(value);
    return EVENTFD_WORD;
  }

  /** pread(2) on an eventfd: ESPIPE (no positioned I/O on anonymous inodes). */
  pread(): number {
    return -ERRNO.ESPIPE;
  }

  /** pwrite(2): ESPIPE. */
  pwrite(): number {
    return -ERRNO.ESPIPE;
  }

  /** POLLIN when the counter is non-zero, POLLOUT while a write of 1 fits. */
  pollEvents(): number {
    let events = 0;
    if (this.#count > 0n) events |= POLLIN;
    if (this.#count < EVENTFD_MAX) events |= POLLOUT;
    return events;
  }
}
