/**
 * The stack's counters: what it received, answered and sent, and every drop by its reason. Each
 * frame or datagram the stack does not deliver or send is counted in exactly one reason; the
 * send-side reasons also add up to `txDropped`.
 *
 * @module
 */

/** Counters of the stack; every drop has its reason. */
export interface NetStackStats {
  /** Frames received from the device. */
  rxFrames: number;
  /** Frames sent to the device. */
  txFrames: number;

  // Receive-side drops.
  /**
   * Frames for another MAC; IPv4 datagrams for another address (multicast groups included: the
   * stack joins none); ARP requests for another address and ARP replies neither for us nor from a
   * known neighbour.
   */
  notForUs: number;
  /** Frames too short for their headers, with inconsistent lengths, or an unknown ARP operation. */
  malformed: number;
  /**
   * Frames too long for the MTU: longer than MTU + 14-byte header + 4-byte FCS, or carrying an
   * IPv4 datagram whose total length exceeds the MTU.
   */
  rxOversize: number;
  /** IPv4 headers or ICMP/UDP messages with a wrong checksum. */
  badChecksum: number;
  /** IPv4 fragments (not reassembled). */
  fragments: number;
  /** EtherTypes or IP protocols the stack does not handle, and ICMP messages other than echo requests. */
  unknownProtocol: number;
  /**
   * IPv4 datagrams whose source is not one host (RFC 1122 §3.2.1.3): 0.0.0.0/8, 127.0.0.0/8,
   * 224.0.0.0/4 multicast, 240.0.0.0/4 (255.255.255.255 included), our subnet's broadcast or our
   * own address. Never answered, never delivered to a socket.
   */
  badSource: number;
  /**
   * IPv4 datagrams for our unicast address that came in a link-layer broadcast or multicast
   * frame (RFC 1122 §3.3.6 says to discard them).
   */
  unicastToGroupMac: number;
  /**
   * ICMP echo requests to a broadcast address, not answered (RFC 1122 §3.2.2.6 allows it; answering
   * would make the stack a "smurf" amplifier).
   */
  icmpBroadcast: number;
  /**
   * ARP packets whose sender cannot be a neighbour, neither learned nor answered: a group, zero or
   * our own hardware address; a protocol address that is not one host (as for `badSource`; our own
   * address means another station claims it); or a reply from 0.0.0.0. (A request from 0.0.0.0 for
   * our address is an RFC 5227 probe and is answered.)
   */
  arpBadSender: number;
  /** UDP datagrams for a port nobody bound (no ICMP error is ever sent). */
  udpNoSocket: number;

  // What was answered and delivered.
  /** ARP requests answered. */
  arpReplies: number;
  /** ARP requests sent: broadcasts to resolve a neighbour, unicast polls to confirm one. */
  arpRequests: number;
  /** ICMP echo requests answered. */
  echoReplies: number;
  /** UDP datagrams delivered to a socket. */
  udpDelivered: number;

  // Send-side drops (each also counted in txDropped).
  /** Everything that was to be sent and was not: the sum of the counters below. */
  txDropped: number;
  /** Replies and datagrams not sent because the packet pool was empty. */
  txNoBuffer: number;
  /** Datagrams to an address outside our prefix with no gateway configured. */
  noRoute: number;
  /**
   * Frames dropped because the ARP hold queue was full: a neighbour's own limit (its oldest frame
   * goes), the global bound, or the pool's receive reserve (the new frame goes, no request is sent).
   */
  arpQueueFull: number;
  /** Frames dropped because their neighbour did not answer ARP in time. */
  arpTimeout: number;
  /** Frames the device did not take (its transmit ring was full). */
  txRingFull: number;
  /** `sendTo` calls refused with a RangeError: the datagram does not fit the MTU. */
  txTooBig: number;
  /**
   * `sendTo` calls refused with a RangeError: the destination cannot be sent to (0.0.0.0/8,
   * loopback, class E, our own address).
   */
  txBadDestination: number;
}

/** A zeroed set of counters. */
export function newNetStackStats(): NetStackStats {
  return {
    rxFrames: 0,
    txFrames: 0,
    notForUs: 0,
    malformed: 0,
    rxOversize: 0,
    badChecksum: 0,
    fragments: 0,
    unknownProtocol: 0,
    badSource: 0,
    unicastToGroupMac: 0,
    icmpBroadcast: 0,
    arpBadSender: 0,
    udpNoSocket: 0,
    arpReplies: 0,
    arpRequests: 0,
    echoReplies: 0,
    udpDelivered: 0,
    txDropped: 0,
    txNoBuffer: 0,
    noRoute: 0,
    arpQueueFull: 0,
    arpTimeout: 0,
    txRingFull: 0,
    txTooBig: 0,
    txBadDestination: 0,
  };
}

/**
 * Every drop reason of {@link NetStackStats}, receive side first, then send side (`txDropped`,
 * their send-side sum, is not in the list): what a report walks to name the drops that happened.
 *
 * @example
 * ```ts
 * const drops = NET_STACK_DROPS.filter((k) => stack.stats[k] > 0)
 *   .map((k) => `${k}=${stack.stats[k]}`).join(" ") || "none";
 * ```
 */
export const NET_STACK_DROPS: readonly (keyof NetStackStats)[] = [
  "notForUs",
  "malformed",
  "rxOversize",
  "badChecksum",
  "fragments",
  "unknownProtocol",
  "badSource",
  "unicastToGroupMac",
  "icmpBroadcast",
  "arpBadSender",
  "udpNoSocket",
  "txNoBuffer",
  "noRoute",
  "arpQueueFull",
  "arpTimeout",
  "txRingFull",
  "txTooBig",
  "txBadDestination",
];

/** The send-side drop reasons (each also counted in `txDropped`). */
export type TxDropReason =
  | "txNoBuffer"
  | "noRoute"
  | "arpQueueFull"
  | "arpTimeout"
  | "txRingFull"
  | "txTooBig"
  | "txBadDestination";
