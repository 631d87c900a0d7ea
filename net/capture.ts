/**
 * Capture at the driver: a {@link NetDevice} that passes every call to the NIC it wraps and shows
 * each frame the NIC received (after `rxBatch`) and each frame it took for transmit (after
 * `txBatch`, only those it took) to a tap — what tcpdump shows on a real interface, for a NIC
 * the kernel no longer sees because a userspace driver owns it. Give the stack the wrapper and
 * keep the NIC for everything else; a program that does not capture does not wrap, so capture
 * costs nothing when it is off.
 *
 * @example
 * ```ts
 * const pcap = new PcapWriter((bytes) => void file.writeSync(bytes));
 * const wall = () => (performance.timeOrigin + performance.now()) * 1e6;
 * const dev = new CaptureNetDevice(nic, (_dir, frame, offset, length) =>
 *   pcap.write(wall(), frame, offset, length));
 * const stack = new NetStack(dev, { address: "10.0.2.15/24" });
 * ```
 *
 * @module
 */

import type {
  InterruptMode,
  NetDevice,
  NetDeviceStats,
  WorkWaitResult,
} from "../drivers/net_device.ts";
import type { PacketBuffer, PacketPool } from "../drivers/packet_pool.ts";

/** Which way a captured frame went: received from the wire, or sent to it. */
export type FrameDirection = "rx" | "tx";

/**
 * Sees one captured frame: `length` bytes of `frame` from `offset`, valid only during the call
 * (the buffer goes back to the stack or the NIC; copy what you keep).
 */
export type CaptureTap = (
  direction: FrameDirection,
  frame: Uint8Array,
  offset: number,
  length: number,
) => void;

/** A NIC whose received and transmitted frames are shown to a tap (see the module doc). */
export class CaptureNetDevice implements NetDevice {
  readonly #nic: NetDevice;
  readonly #tap: CaptureTap;

  /** Wrap `nic`; `tap` sees every frame received and every frame the NIC took for transmit. */
  constructor(nic: NetDevice, tap: CaptureTap) {
    this.#nic = nic;
    this.#tap = tap;
  }

  /** The NIC's name. */
  get name(): string {
    return this.#nic.name;
  }
  /** The NIC's MAC address. */
  get mac(): Uint8Array {
    return this.#nic.mac;
  }
  /** The NIC's packet pool. */
  get pool(): PacketPool {
    return this.#nic.pool;
  }
  /** The NIC's interrupt mode. */
  get interruptMode(): InterruptMode {
    return this.#nic.interruptMode;
  }

  /** The NIC's link state. */
  linkUp(): boolean {
    return this.#nic.linkUp();
  }

  /** Receive from the NIC, then show each frame to the tap. */
  rxBatch(out: PacketBuffer[], max: number): number {
    const n = this.#nic.rxBatch(out, max);
    for (let i = 0; i < n; i++) this.#tap("rx", out[i].data, 0, out[i].length);
    return n;
  }

  /** Queue frames on the NIC, then show the ones it took to the tap. */
  txBatch(buffers: PacketBuffer[], count: number): number {
    const sent = this.#nic.txBatch(buffers, count);
    for (let i = 0; i < sent; i++) this.#tap("tx", buffers[i].data, 0, buffers[i].length);
    return sent;
  }

  /** The NIC's counters. */
  stats(): NetDeviceStats {
    return this.#nic.stats();
  }

  /** The NIC's wait for work. */
  waitForWork(timeoutMs: number, signal?: AbortSignal): Promise<WorkWaitResult> {
    return this.#nic.waitForWork(timeoutMs, signal);
  }

  /** Close the NIC. */
  close(): void {
    this.#nic.close();
  }
}
