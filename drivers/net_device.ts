/**
 * What every NIC driver offers the network stack (ixy's device "vtable"): a MAC address, link
 * state, batched receive and transmit of packet buffers from a preallocated pool, counters, and
 * a wait for work that sleeps on the receive interrupt. The stack (net/) only ever sees this
 * interface.
 *
 * The wait is meant for a NAPI-style loop (as Linux's NAPI): poll while frames flow; when a poll
 * finds nothing, `await waitForWork(...)`, which re-enables the receive interrupt, looks at the
 * rings once more (a frame that arrived between the last poll and the re-arm is not missed) and
 * only then sleeps.
 *
 * @example
 * ```ts
 * for (;;) {
 *   if (stack.poll() === 0) await nic.waitForWork(1000);
 * }
 * ```
 *
 * @module
 */

import type { PacketBuffer, PacketPool } from "./packet_pool.ts";

/** Counters every NIC keeps. */
export interface NetDeviceStats {
  /** Frames received and handed to the stack. */
  rxPackets: number;
  /** Bytes of those frames. */
  rxBytes: number;
  /** Frames the device reported sent. */
  txPackets: number;
  /** Bytes of those frames. */
  txBytes: number;
  /** Received frames dropped by the driver (no buffer, error status). */
  rxDropped: number;
  /** Frames the driver could not queue for transmit (ring full). */
  txDropped: number;
}

/** Counters at zero, for a driver to start from. */
export function newNetDeviceStats(): NetDeviceStats {
  return { rxPackets: 0, rxBytes: 0, txPackets: 0, txBytes: 0, rxDropped: 0, txDropped: 0 };
}

/**
 * Run a driver's open; when it fails and `closeDevice` asked the driver to own the PCI device,
 * close the device before the error goes on (the driver freed what it allocated itself).
 */
export async function openOwningDevice<T>(
  dev: { close(): void },
  closeDevice: boolean | undefined,
  open: () => Promise<T>,
): Promise<T> {
  try {
    return await open();
  } catch (e) {
    if (closeDevice) dev.close();
    throw e;
  }
}

/** How a NIC's {@link NetDevice.waitForWork} learns about frames. */
export type InterruptMode =
  /** An MSI-X vector per receive queue, through an eventfd. */
  | "msix"
  /** The MSI vector, through an eventfd. */
  | "msi"
  /** No interrupt: the wait looks at the rings every millisecond. */
  | "none";

/** The outcome of {@link NetDevice.waitForWork}. */
export type WorkWaitResult =
  /** A receive ring has a frame (or the interrupt fired): poll. */
  | "ready"
  /** Nothing arrived within the timeout. */
  | "timeout"
  /** The signal aborted the wait, or the device was closed. */
  | "cancelled";

/** Options every NIC driver's open takes. */
export interface NicOpenOptions {
  /** Packet buffers in the pool (default: a driver-specific number that covers every ring). */
  poolSize?: number;
  /**
   * Use this pool instead of allocating one (ixy-style zero-copy forwarding shares one pool
   * between two NICs of one DMA space); it stays open when the NIC closes. Its buffers must hold
   * a full frame after the driver's headroom.
   */
  pool?: PacketPool;
  /**
   * Take receive interrupts for {@link NetDevice.waitForWork} (default true): MSI-X, else MSI,
   * when the device has them. False enables no vector (for busy-polling programs, and machines
   * whose IOMMU cannot isolate MSIs). "msix" or "msi" asks for that kind only: a device (or
   * driver) without it is a VfioError that says which kinds it has.
   */
  interrupts?: boolean | "msix" | "msi";
  /** Close the PCI device when the NIC is closed (openNic sets it for devices it opened). */
  closeDevice?: boolean;
  /**
   * Transmit buffers the device leaves unsent longer than this (with the link up) mean it hung;
   * the driver's `check()` then resets and resumes it (default 5000 ms, Linux's netdev watchdog).
   */
  txTimeoutMs?: number;
}

/** The default of {@link NicOpenOptions.txTimeoutMs}. */
export const DEFAULT_TX_TIMEOUT_MS = 5000;

/**
 * What a NIC driver's `check()` found — called from an application's idle loop, it looks at the
 * device once: a working device ("ok"), or one that had stopped and that it reset and resumed
 * ("recovered"). A device that no longer answers MMIO (surprise-removed, or EEH-frozen on POWER)
 * is a VfioError instead.
 */
export type NicHealth = "ok" | "recovered";

/** A network interface card as the stack sees it. */
export interface NetDevice {
  /** Driver and device, e.g. "virtio-net 0000:00:03.0". */
  readonly name: string;
  /** The MAC address (6 bytes). */
  readonly mac: Uint8Array;
  /** The pool receive buffers come from and transmit buffers must come from. */
  readonly pool: PacketPool;
  /** True when the link is up. */
  linkUp(): boolean;
  /**
   * Receive up to `max` frames into `out[0..n)`; returns n. The caller owns the buffers and must
   * return each to the pool (or pass it to {@link txBatch}).
   */
  rxBatch(out: PacketBuffer[], max: number): number;
  /**
   * Queue `count` frames from `buffers` for transmit; returns how many were taken. Taken buffers
   * belong to the driver, which returns them to the pool once the device has sent them; the rest
   * stay with the caller.
   */
  txBatch(buffers: PacketBuffer[], count: number): number;
  /** A snapshot of the counters. */
  stats(): NetDeviceStats;
  /** How {@link waitForWork} learns about frames. */
  readonly interruptMode: InterruptMode;
  /**
   * Wait until a receive ring has a frame, at most `timeoutMs` milliseconds (virtual time on the
   * simulator). Call it when a poll found nothing: it re-arms the receive interrupt, checks the
   * rings again, sleeps on the interrupt's eventfd and masks the interrupt again before it
   * returns, so traffic is then polled without interrupts.
   */
  waitForWork(timeoutMs: number, signal?: AbortSignal): Promise<WorkWaitResult>;
  /**
   * Stop the device, free its rings and pool, release the PCI device if the driver was asked to
   * ({@link NicOpenOptions.closeDevice}).
   */
  close(): void;
}
