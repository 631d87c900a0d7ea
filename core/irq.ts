/**
 * Device interrupts over eventfds: INTx, MSI or MSI-X wired with VFIO_DEVICE_SET_IRQS (one
 * eventfd per vector), awaited without blocking the event loop, or polled.
 *
 * Waiting follows shared/reference/deno-ffi.md §1: `kernel.pollAsync` on the vector's eventfd
 * plus a private stop eventfd, then a synchronous read drains the counter. Cancelling a wait
 * (AbortSignal), disabling its vectors or closing writes the stop eventfd, so no pending
 * nonblocking call is ever left behind, and an eventfd is closed only once no poll uses it.
 *
 * @example
 * ```ts
 * const irqs = new Interrupts(device);
 * irqs.enableMsi(1);
 * const got = await irqs.wait(0, { timeoutMs: 1000 }); // count, "timeout" or "cancelled"
 * irqs.close();
 * ```
 *
 * @module
 */

import { ERRNO } from "../ffi/errno.ts";
import {
  EFD_CLOEXEC,
  EFD_NONBLOCK,
  type Kernel,
  POLLERR,
  type PollFd,
  POLLIN,
  POLLNVAL,
} from "../ffi/kernel.ts";
import { decode, encode } from "../ffi/uapi/layout.ts";
import type { VfioDevice } from "./device.ts";
import {
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_SET_IRQS,
  vfio_irq_info,
  VFIO_IRQ_INFO_AUTOMASKED,
  VFIO_IRQ_INFO_EVENTFD,
  VFIO_IRQ_INFO_MASKABLE,
  VFIO_IRQ_INFO_NORESIZE,
  vfio_irq_set,
  VFIO_IRQ_SET_ACTION_MASK,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_ACTION_UNMASK,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
  VFIO_PCI_INTX_IRQ_INDEX,
  VFIO_PCI_MSI_IRQ_INDEX,
  VFIO_PCI_MSIX_IRQ_INDEX,
} from "../ffi/uapi/mod.ts";
import { check, VfioError } from "./errors.ts";
import { type HintTable, ioctlChecked, runAll } from "./syscall.ts";

/** VFIO_DEVICE_GET_IRQ_INFO, decoded. */
export interface IrqInfo {
  /** The IRQ index (VFIO_PCI_INTX_IRQ_INDEX, …). */
  readonly index: number;
  /** VFIO_IRQ_INFO_* bits. */
  readonly flags: number;
  /** Number of vectors (0: the device has no such interrupt). */
  readonly count: number;
  /** Can signal an eventfd. */
  readonly eventfd: boolean;
  /** Can be masked and unmasked (INTx). */
  readonly maskable: boolean;
  /** Masked by the kernel after each interrupt until unmasked (INTx). */
  readonly automasked: boolean;
  /** The vector count cannot change while enabled. */
  readonly noResize: boolean;
}

/** The outcome of {@link Interrupts.wait}: the interrupt count, or why there was none. */
export type WaitResult = number | "timeout" | "cancelled";

/** Options of {@link Interrupts.wait}. */
export interface WaitOptions {
  /** Give up after this many milliseconds (virtual time on the simulator); Infinity: never. */
  timeoutMs: number;
  /** Cancel the wait; it then resolves "cancelled". */
  signal?: AbortSignal;
}

/** Which interrupt mode is enabled. */
export type IrqMode = "none" | "intx" | "msi" | "msix";

const MODE_OF_INDEX: Record<number, IrqMode> = {
  [VFIO_PCI_INTX_IRQ_INDEX]: "intx",
  [VFIO_PCI_MSI_IRQ_INDEX]: "msi",
  [VFIO_PCI_MSIX_IRQ_INDEX]: "msix",
};
const FD_SIZE = 4; // each eventfd is an s32 in vfio_irq_set.data
const COUNTER_SIZE = 8; // an eventfd counter is a u64
const INFINITE = -1; // poll(2) timeout: wait forever
const ROUNDING_SLACK_MS = 1e-6; // far below the clock's 1 ns step, far above float error

/** Hint for EPERM from SET_IRQS (vfio.md §7.3, vm-lab.md step 3). */
export const IRQ_REMAPPING_HINT: string =
  "the platform has no interrupt remapping (MSI isolation): enable it (intel_iommu=on, " +
  "amd_iommu=on, or an SMMU with an ITS) or, accepting the risk, load vfio_iommu_type1 (container) " +
  "or iommufd (cdev) with allow_unsafe_interrupts=1";

interface Vector {
  readonly fd: number;
  waiters: number;
  retired: boolean;
}

interface Waiter {
  readonly vector: Vector;
  doomed: boolean;
}

/** The interrupts of one device. */
export class Interrupts {
  readonly #kernel: Kernel;
  readonly #fd: number;
  readonly #name: string;
  readonly #waiters: Set<Waiter> = new Set();
  readonly #counter = new Uint8Array(COUNTER_SIZE);
  readonly #counterView = new DataView(this.#counter.buffer);
  #active: { index: number; vectors: Vector[] } | undefined;
  #stopFd = -1;
  #doomedPending = 0;
  #closed = false;

  /** The interrupts of an open device. */
  constructor(device: VfioDevice) {
    this.#kernel = device.kernel;
    this.#fd = device.fd;
    this.#name = device.name;
  }

  /** The enabled mode. */
  get mode(): IrqMode {
    return this.#active === undefined ? "none" : MODE_OF_INDEX[this.#active.index];
  }

  /** Number of enabled vectors. */
  get vectors(): number {
    return this.#active?.vectors.length ?? 0;
  }

  /** The eventfd of an enabled vector (e.g. to hand to another poller). */
  eventfd(vector: number): number {
    return this.#vector(vector, "eventfd").fd;
  }

  /** VFIO_DEVICE_GET_IRQ_INFO for `index`. */
  irqInfo(index: number): IrqInfo {
    this.#assertOpen("irqInfo");
    const layout = vfio_irq_info;
    const bytes = encode(layout, { argsz: layout.size, index });
    ioctlChecked(this.#kernel, this.#fd, VFIO_DEVICE_GET_IRQ_INFO, bytes, this.#name, {
      EINVAL: `the device has no IRQ index ${index}`,
    });
    const info = decode(layout, bytes);
    return {
      index,
      flags: info.flags,
      count: info.count,
      eventfd: (info.flags & VFIO_IRQ_INFO_EVENTFD) !== 0,
      maskable: (info.flags & VFIO_IRQ_INFO_MASKABLE) !== 0,
      automasked: (info.flags & VFIO_IRQ_INFO_AUTOMASKED) !== 0,
      noResize: (info.flags & VFIO_IRQ_INFO_NORESIZE) !== 0,
    };
  }

  /** Enable `count` MSI vectors, one eventfd each. */
  enableMsi(count: number): void {
    this.#enable(VFIO_PCI_MSI_IRQ_INDEX, count, "MSI");
  }

  /** Enable `count` MSI-X vectors, one eventfd each. */
  enableMsix(count: number): void {
    this.#enable(VFIO_PCI_MSIX_IRQ_INDEX, count, "MSI-X");
  }

  /**
   * Enable INTx with one eventfd. INTx is automasked: after each interrupt, acknowledge it in the
   * device, then call {@link unmask}.
   */
  enableIntx(): void {
    this.#enable(VFIO_PCI_INTX_IRQ_INDEX, 1, "INTx");
  }

  /**
   * Disable interrupt index `index` (SET_IRQS DATA_NONE | ACTION_TRIGGER, count 0) and close its
   * eventfds; waits on them resolve "cancelled". Nothing happens when it is not enabled.
   */
  disable(index: number): void {
    this.#assertOpen("disable");
    const active = this.#active;
    if (active === undefined || active.index !== index) return;
    this.#setIrqs(index, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, 0, []);
    this.#active = undefined;
    this.#retire(active.vectors);
  }

  /** Disable MSI. */
  disableMsi(): void {
    this.disable(VFIO_PCI_MSI_IRQ_INDEX);
  }

  /** Disable MSI-X. */
  disableMsix(): void {
    this.disable(VFIO_PCI_MSIX_IRQ_INDEX);
  }

  /** Disable INTx. */
  disableIntx(): void {
    this.disable(VFIO_PCI_INTX_IRQ_INDEX);
  }

  /** Unmask INTx (SET_IRQS DATA_NONE | ACTION_UNMASK, start 0, count 1). */
  unmask(): void {
    this.#intxAction(VFIO_IRQ_SET_ACTION_UNMASK, "unmask");
  }

  /** Mask INTx (SET_IRQS DATA_NONE | ACTION_MASK, start 0, count 1). */
  mask(): void {
    this.#intxAction(VFIO_IRQ_SET_ACTION_MASK, "mask");
  }

  /**
   * The interrupts of `vector` since the last wait or poll, without blocking: 0 when none. For
   * drivers that poll.
   */
  poll(vector: number): number {
    return this.#drain(this.#vector(vector, "poll").fd);
  }

  /**
   * Wait for an interrupt on `vector`: resolves with the number of interrupts since the last
   * wait or poll, "timeout", or "cancelled" (the signal aborted, the vector was disabled or the
   * interrupts closed). The poll runs off the event loop; it is always woken before it is
   * abandoned.
   */
  async wait(vector: number, options: WaitOptions): Promise<WaitResult> {
    const v = this.#vector(vector, "wait");
    if (options.signal?.aborted) return "cancelled";
    const stop = this.#stop();
    const waiter: Waiter = { vector: v, doomed: false };
    this.#waiters.add(waiter);
    v.waiters++;
    const onAbort = (): void => this.#doom((w) => w === waiter);
    options.signal?.addEventListener("abort", onAbort, { once: true });
    try {
      return await this.#waitLoop(waiter, stop, options.timeoutMs);
    } finally {
      options.signal?.removeEventListener("abort", onAbort);
      this.#leave(waiter);
    }
  }

  /**
   * Disable the enabled interrupts and close every eventfd (those still polled as soon as their
   * waits return "cancelled"). Cleanup continues past errors; the first is thrown.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const active = this.#active;
    this.#active = undefined;
    const steps: (() => void)[] = [];
    if (active !== undefined) {
      steps.push(() =>
        this.#setIrqs(active.index, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, 0, [])
      );
    }
    steps.push(() => this.#retire(active?.vectors ?? []));
    steps.push(() => this.#maybeCloseStop());
    runAll(steps);
  }

  /** Same as {@link close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  #enable(index: number, count: number, what: string): void {
    this.#assertOpen(`enable ${what}`);
    if (!Number.isInteger(count) || count < 1) {
      throw this.#usage(`enable ${what}`, `vector count ${count} must be a positive integer`);
    }
    const active = this.#active;
    if (active !== undefined && active.index !== index) {
      throw this.#usage(
        `enable ${what}`,
        `${MODE_OF_INDEX[active.index]} interrupts are enabled`,
        "disable them first: a device uses one interrupt mode at a time",
      );
    }
    const info = this.irqInfo(index);
    if (count > info.count) {
      throw this.#usage(
        `enable ${what}`,
        `${count} ${what} vectors requested, the device has ${info.count}`,
        info.count === 0 ? `the device has no ${what} capability` : undefined,
      );
    }
    if (active !== undefined) this.disable(index);
    const vectors: Vector[] = [];
    try {
      for (let i = 0; i < count; i++) {
        const fd = this.#kernel.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        check(fd, { operation: "eventfd", device: this.#name });
        vectors.push({ fd, waiters: 0, retired: false });
      }
      const flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
      this.#setIrqs(index, flags, count, vectors.map((v) => v.fd));
    } catch (e) {
      for (const v of vectors) this.#kernel.close(v.fd);
      throw e;
    }
    this.#active = { index, vectors };
  }

  #intxAction(action: number, what: string): void {
    this.#assertOpen(what);
    if (this.#active?.index !== VFIO_PCI_INTX_IRQ_INDEX) {
      throw this.#usage(`INTx ${what}`, "INTx is not enabled", "call enableIntx() first");
    }
    this.#setIrqs(VFIO_PCI_INTX_IRQ_INDEX, VFIO_IRQ_SET_DATA_NONE | action, 1, []);
  }

  /** VFIO_DEVICE_SET_IRQS with `fds` as the s32 data (empty for DATA_NONE). */
  #setIrqs(index: number, flags: number, count: number, fds: readonly number[]): void {
    const layout = vfio_irq_set;
    const data = fds.length * FD_SIZE;
    const bytes = encode(
      layout,
      { argsz: layout.size + data, flags, index, start: 0, count },
      data,
    );
    const view = new DataView(bytes.buffer);
    fds.forEach((fd, i) => view.setInt32(layout.size + i * FD_SIZE, fd, true));
    const hints: HintTable = {
      EPERM: IRQ_REMAPPING_HINT,
      EINVAL: "the device lacks that many vectors of this index, or another interrupt mode is " +
        "active",
      ENOTTY: "the action is not supported for this interrupt index",
    };
    ioctlChecked(this.#kernel, this.#fd, VFIO_DEVICE_SET_IRQS, bytes, this.#name, hints);
  }

  async #waitLoop(waiter: Waiter, stop: number, timeoutMs: number): Promise<WaitResult> {
    const vector = waiter.vector;
    const forever = !Number.isFinite(timeoutMs);
    const deadline = this.#kernel.now() + (forever ? 0 : Math.max(0, timeoutMs));
    const fds: PollFd[] = [
      { fd: vector.fd, events: POLLIN, revents: 0 },
      { fd: stop, events: POLLIN, revents: 0 },
    ];
    for (;;) {
      if (this.#gone(waiter)) return "cancelled";
      // poll(2) takes whole milliseconds: round up, but not for a float rounding error of the
      // subtraction (25 ms must stay 25, not become 26).
      const remaining = forever
        ? INFINITE
        : Math.ceil(Math.max(0, deadline - this.#kernel.now() - ROUNDING_SLACK_MS));
      const ready = await this.#kernel.pollAsync(fds, remaining);
      if (this.#gone(waiter)) return "cancelled";
      // EINTR (a signal) is retried while a deadline bounds the wait; without one it is reported,
      // because the simulator also answers EINTR to a wait that nothing could ever end.
      if (ready === -ERRNO.EINTR && !forever) continue;
      check(ready, {
        operation: "poll",
        device: this.#name,
        hint: ready === -ERRNO.EINTR
          ? "the wait without timeout was interrupted; on the simulator no device event could " +
            "raise this interrupt (is it enabled in the device?)"
          : undefined,
      });
      if ((fds[0].revents & (POLLERR | POLLNVAL)) !== 0) {
        throw new VfioError({
          operation: "poll",
          device: this.#name,
          message: `the eventfd of the vector reports revents 0x${fds[0].revents.toString(16)}`,
        });
      }
      if ((fds[0].revents & POLLIN) !== 0) {
        const count = this.#drain(vector.fd);
        if (count > 0) return count;
      }
      // Woken by the stop eventfd for another waiter: wait again for the time that is left.
      if (ready === 0 || (!forever && this.#kernel.now() >= deadline)) return "timeout";
    }
  }

  #gone(waiter: Waiter): boolean {
    return waiter.doomed || this.#closed;
  }

  /** Read (and so reset) an eventfd counter: the count, or 0 when it was zero. */
  #drain(fd: number): number {
    const n = this.#kernel.read(fd, this.#counter);
    if (n === -ERRNO.EAGAIN) return 0;
    check(n, { operation: "read eventfd", device: this.#name });
    return Number(this.#counterView.getBigUint64(0, true));
  }

  /** Wake the polls: add 1 to the stop eventfd. */
  #kick(): void {
    if (this.#stopFd < 0) return;
    this.#counterView.setBigUint64(0, 1n, true);
    check(this.#kernel.write(this.#stopFd, this.#counter), {
      operation: "write eventfd",
      device: this.#name,
    });
  }

  /** Mark the waiters that `select` picks for cancellation, then wake the polls once. */
  #doom(select: (waiter: Waiter) => boolean): void {
    let any = false;
    for (const waiter of this.#waiters) {
      if (waiter.doomed || !select(waiter)) continue;
      waiter.doomed = true;
      this.#doomedPending++;
      any = true;
    }
    if (any) this.#kick();
  }

  /**
   * A waiter is done. The stop eventfd is drained only when no cancelled waiter still has to see
   * it, and never after close (every waiter must see that one).
   */
  #leave(waiter: Waiter): void {
    this.#waiters.delete(waiter);
    waiter.vector.waiters--;
    if (waiter.doomed) {
      this.#doomedPending--;
      if (this.#doomedPending === 0 && !this.#closed && this.#stopFd >= 0) {
        this.#drain(this.#stopFd);
      }
    }
    if (waiter.vector.retired && waiter.vector.waiters === 0) this.#kernel.close(waiter.vector.fd);
    this.#maybeCloseStop();
  }

  /**
   * Retire vectors: cancel the waits on them (or every wait, after close), close the idle
   * eventfds now; the others close when their last wait returns.
   */
  #retire(vectors: readonly Vector[]): void {
    const steps: (() => void)[] = [
      () => this.#doom((w) => this.#closed || w.vector.retired),
    ];
    for (const v of vectors) v.retired = true;
    for (const v of vectors) {
      if (v.waiters === 0) {
        steps.push(() => check(this.#kernel.close(v.fd), { operation: "close eventfd" }));
      }
    }
    runAll(steps);
  }

  #maybeCloseStop(): void {
    if (this.#closed && this.#waiters.size === 0 && this.#stopFd >= 0) {
      const fd = this.#stopFd;
      this.#stopFd = -1;
      check(this.#kernel.close(fd), { operation: "close eventfd", device: this.#name });
    }
  }

  #stop(): number {
    if (this.#stopFd < 0) {
      const fd = this.#kernel.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
      this.#stopFd = check(fd, { operation: "eventfd", device: this.#name });
    }
    return this.#stopFd;
  }

  #vector(vector: number, operation: string): Vector {
    this.#assertOpen(operation);
    const v = this.#active?.vectors[vector];
    if (v === undefined) {
      throw this.#usage(
        operation,
        `vector ${vector} is not enabled (${this.mode}, ${this.vectors} vectors)`,
        "enable interrupts first (enableMsi, enableMsix or enableIntx)",
      );
    }
    return v;
  }

  #usage(operation: string, message: string, hint?: string): VfioError {
    return new VfioError({ operation, device: this.#name, message, hint });
  }

  #assertOpen(operation: string): void {
    if (this.#closed) throw this.#usage(operation, "the interrupts are closed");
  }
}
