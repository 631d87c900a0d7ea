/**
 * The NetStack's options and what follows from them: addresses as signed 32-bit integers, the
 * MTU and the frame and payload limits it implies, and the ARP hold budget derived from the
 * device's packet pool, with the reasoning that keeps receive from starving.
 *
 * @module
 */

import type { PacketPool } from "../drivers/packet_pool.ts";
import { ETH_FCS_LENGTH, ETH_HEADER_LENGTH } from "./ethernet.ts";
import {
  DEFAULT_TTL,
  ETHERNET_MTU,
  IPV4_MIN_HEADER,
  IPV4_MIN_MTU,
  parseCidr,
  parseIpv4,
  prefixMask,
} from "./ipv4.ts";
import { PacketMemory } from "./packet_memory.ts";
import { UDP_HEADER_LENGTH } from "./udp.ts";

/** Frames handled per poll (one receive batch), and frames queued before a transmit batch. */
export const RX_BATCH = 32;
/** Upper bound of the default ARP hold budget (frames). */
export const ARP_PENDING_DEFAULT_MAX = 64;

/** Options of a NetStack. */
export interface NetStackOptions {
  /** Our address with prefix, "10.0.2.15/24". */
  address: string;
  /** Default gateway for addresses outside the prefix. */
  gateway?: string;
  /** TTL of datagrams we send (default 64). */
  ttl?: number;
  /** Milliseconds clock for ARP ageing (the Kernel's `now`, virtual on the simulator). */
  now: () => number;
  /**
   * The largest IPv4 datagram received or sent (default 1500, or less if the pool's buffers
   * cannot hold a 1514-byte frame); 68 up to the buffers' frame space minus the 14-byte header.
   */
  mtu?: number;
  /** Resolved ARP entries kept (default 256). */
  arpEntries?: number;
  /**
   * Frames held while their next hop is resolved, over all neighbours (at most 8 per neighbour).
   * Default: 1/16 of the pool, from 1 to 64; at most a quarter of the pool. Why: a driver posts
   * part of the pool as its receive ring and keeps part in its transmit ring (virtio-net: a
   * quarter each with its default pool of 4 × queue size), and one poll needs up to 2 × RX_BATCH
   * more (the received batch and its replies). With 1/16 held, 1,024 buffers keep
   * 1024 − 256 − 256 − 64 − 64 = 384 free for the receive ring however many unresolvable
   * addresses a neighbour makes us answer; in addition no frame is held while fewer than
   * RX_BATCH buffers are free, so the ring can always be refilled for the next batch.
   */
  arpPendingFrames?: number;
}

/** The stack's settings, validated; addresses as signed 32-bit integers. */
export interface StackConfig {
  /** Our address. */
  address: number;
  /** Our prefix mask. */
  mask: number;
  /** The subnet's directed broadcast; our own address when the prefix has none (/31, /32). */
  directed: number;
  /** The gateway (when `hasGateway`). */
  gateway: number;
  /** Whether a gateway is configured. */
  hasGateway: boolean;
  /** TTL of datagrams we send. */
  ttl: number;
  /** The MTU. */
  mtu: number;
  /** Longest frame accepted: header, MTU and an FCS a NIC may leave. */
  maxFrame: number;
  /** Largest UDP payload that fits the MTU. */
  maxUdpPayload: number;
  /** The ARP hold budget (frames). */
  pendingFrames: number;
  /** No frame is held for ARP while fewer buffers than this are free. */
  holdReserve: number;
}

/** Validate `options` against `pool`; throws a RangeError naming the bad option. */
export function stackConfig(pool: PacketPool, options: NetStackOptions): StackConfig {
  const { address, prefixLength } = parseCidr(options.address);
  const mask = prefixMask(prefixLength) | 0;
  const frameSpace = pool.bufferSize - pool.headroom;
  const largest = frameSpace - ETH_HEADER_LENGTH;
  const mtu = options.mtu ?? Math.min(ETHERNET_MTU, largest);
  if (!Number.isInteger(mtu) || mtu < IPV4_MIN_MTU || mtu > largest) {
    throw new RangeError(
      `MTU ${mtu} must be an integer from ${IPV4_MIN_MTU} to ${largest} (the pool's ` +
        `${frameSpace}-byte frames less the Ethernet header); use larger buffers for a larger MTU`,
    );
  }
  const quarter = Math.max(1, Math.floor(pool.capacity / 4));
  const pendingFrames = options.arpPendingFrames ??
    Math.max(1, Math.min(ARP_PENDING_DEFAULT_MAX, Math.floor(pool.capacity / 16)));
  if (!Number.isInteger(pendingFrames) || pendingFrames < 1 || pendingFrames > quarter) {
    throw new RangeError(
      `arpPendingFrames ${pendingFrames} must be an integer from 1 to ${quarter} (a quarter of ` +
        `the ${pool.capacity}-buffer pool), so frames waiting for ARP cannot starve receive`,
    );
  }
  const hasGateway = options.gateway !== undefined;
  return {
    address: address | 0,
    mask,
    directed: prefixLength <= 30 ? (address | ~mask) : address | 0,
    gateway: hasGateway ? parseIpv4(options.gateway!) | 0 : 0,
    hasGateway,
    ttl: options.ttl ?? DEFAULT_TTL,
    mtu,
    maxFrame: ETH_HEADER_LENGTH + mtu + ETH_FCS_LENGTH,
    maxUdpPayload: mtu - IPV4_MIN_HEADER - UDP_HEADER_LENGTH,
    pendingFrames,
    holdReserve: Math.min(RX_BATCH, quarter),
  };
}

/** The views over a pool's memory (one allocation, so one buffer); throws if that fails to hold. */
export function poolMemory(pool: PacketPool): PacketMemory {
  const buffer = pool.buffer(0).data.buffer;
  for (let i = 1; i < pool.capacity; i++) {
    if (pool.buffer(i).data.buffer !== buffer) {
      throw new RangeError("NetStack: the packet pool's buffers must share one ArrayBuffer");
    }
  }
  return new PacketMemory(buffer);
}
