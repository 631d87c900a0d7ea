/**
 * The hardware statistics registers of the e1000 family (82576 §8.19, 82574 §10.2): 32-bit
 * counters that clear when read (64-bit octet counters: low half first, reading the high half
 * clears both). The driver reads them into running totals, so a counter never wraps and every
 * read of a snapshot sees everything since the NIC was opened.
 *
 * @module
 */

import type { Mmio } from "../../ffi/kernel.ts";
import {
  E1000_BPRC,
  E1000_BPTC,
  E1000_CRCERRS,
  E1000_GORCH,
  E1000_GORCL,
  E1000_GOTCH,
  E1000_GOTCL,
  E1000_GPRC,
  E1000_GPTC,
  E1000_MPC,
  E1000_MPRC,
  E1000_MPTC,
  E1000_RLEC,
  E1000_RNBC,
  E1000_ROC,
  E1000_RUC,
  E1000_TPR,
  E1000_TPT,
} from "./registers.ts";

/** The hardware counters, accumulated since the NIC was opened. */
export interface E1000HardwareStats {
  /** Good packets received (GPRC). */
  goodPacketsReceived: number;
  /** Octets of good packets received, CRC included (GORC). */
  goodOctetsReceived: number;
  /** Good packets transmitted (GPTC). */
  goodPacketsTransmitted: number;
  /** Octets of good packets transmitted (GOTC). */
  goodOctetsTransmitted: number;
  /** Packets the receive FIFO had no room for (MPC). */
  missedPackets: number;
  /** Times the receive ring had no free descriptor (RNBC). */
  receiveNoBuffers: number;
  /** Packets with a CRC error (CRCERRS). */
  crcErrors: number;
  /** Packets with a length error (RLEC). */
  lengthErrors: number;
  /** Packets shorter than 64 bytes (RUC). */
  undersize: number;
  /** Packets longer than the maximum frame (ROC). */
  oversize: number;
  /** Broadcast packets received (BPRC). */
  broadcastReceived: number;
  /** Multicast packets received (MPRC). */
  multicastReceived: number;
  /** Broadcast packets transmitted (BPTC). */
  broadcastTransmitted: number;
  /** Multicast packets transmitted (MPTC). */
  multicastTransmitted: number;
  /** Packets received, good or bad (TPR). */
  totalPacketsReceived: number;
  /** Packets transmitted (TPT). */
  totalPacketsTransmitted: number;
}

/** One counter: its field and register (and the high half of a 64-bit counter). */
interface Counter {
  readonly key: keyof E1000HardwareStats;
  readonly reg: number;
  readonly high?: number;
}

const TWO_POW_32 = 0x1_0000_0000;

/** The counters the driver keeps, as a table. */
export const E1000_COUNTERS: readonly Counter[] = [
  { key: "goodPacketsReceived", reg: E1000_GPRC },
  { key: "goodOctetsReceived", reg: E1000_GORCL, high: E1000_GORCH },
  { key: "goodPacketsTransmitted", reg: E1000_GPTC },
  { key: "goodOctetsTransmitted", reg: E1000_GOTCL, high: E1000_GOTCH },
  { key: "missedPackets", reg: E1000_MPC },
  { key: "receiveNoBuffers", reg: E1000_RNBC },
  { key: "crcErrors", reg: E1000_CRCERRS },
  { key: "lengthErrors", reg: E1000_RLEC },
  { key: "undersize", reg: E1000_RUC },
  { key: "oversize", reg: E1000_ROC },
  { key: "broadcastReceived", reg: E1000_BPRC },
  { key: "multicastReceived", reg: E1000_MPRC },
  { key: "broadcastTransmitted", reg: E1000_BPTC },
  { key: "multicastTransmitted", reg: E1000_MPTC },
  { key: "totalPacketsReceived", reg: E1000_TPR },
  { key: "totalPacketsTransmitted", reg: E1000_TPT },
];

/** Running totals of the hardware counters. */
export class E1000Counters {
  readonly #regs: Mmio;
  readonly #totals: E1000HardwareStats;

  /** Totals over `regs`, starting from zero (call {@link discard} right after a reset). */
  constructor(regs: Mmio) {
    this.#regs = regs;
    this.#totals = Object.fromEntries(
      E1000_COUNTERS.map((c) => [c.key, 0]),
    ) as unknown as E1000HardwareStats;
  }

  /** Read (and so clear) every counter without counting it. */
  discard(): void {
    for (const c of E1000_COUNTERS) this.#read(c);
  }

  /** A copy of the totals, without reading the registers. */
  totals(): E1000HardwareStats {
    return { ...this.#totals };
  }

  /** Add what the registers counted since the last read; returns a copy of the totals. */
  update(): E1000HardwareStats {
    for (const c of E1000_COUNTERS) this.#totals[c.key] += this.#read(c);
    return { ...this.#totals };
  }

  #read(c: Counter): number {
    const low = this.#regs.read32(c.reg) >>> 0;
    if (c.high === undefined) return low;
    return low + (this.#regs.read32(c.high) >>> 0) * TWO_POW_32;
  }
}
