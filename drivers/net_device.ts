/**
 * What every NIC driver offers the network stack (ixy's device "vtable"): a MAC address, link
 * state, batched receive and transmit of packet buffers from a preallocated pool, and counters.
 * The stack (net/) only ever sees this interface.
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
  /** Stop the device, free its rings and pool, release the PCI device if the driver opened it. */
  close(): void;
}
