/**
 * The copper PHY behind MDIC (IEEE 802.3 clause 22 registers; 82574 §10.2.2.7 and the 82574
 * PHY registers, 82576 §8.2.x and its internal PHY) and the link state it gives the MAC, as
 * QEMU 10's e1000e and igb model them (measured through MDIC with QEMU 10.0.13):
 * - one PHY, at address 1; any other address sets MDIC.E; reading or writing a register the PHY
 *   does not have sets MDIC.E; MDIC.R is set when the access completes (at once);
 * - writing BMCR with Restart Auto-Negotiation (and Auto-Negotiation Enable) takes the link
 *   down and brings it up {@link AUTONEG_NS} later with ICR.LSC, if the cable is connected;
 *   BMCR Reset and Restart read back 0;
 * - the register values after reset are QEMU's (BMSR without Auto-Negotiation Complete: a
 *   fresh PHY has not negotiated yet).
 *
 * Register maps per part are data ({@link PhyModel}).
 *
 * @example
 * ```ts
 * const phy = new E1000Phy(IGB_PHY, { clock, linkChanged, ... });
 * const mdic = phy.mdicWrite(0, 0x04201340); // restart autonegotiation
 * ```
 *
 * @module
 */

import type { ScheduledEvent, VirtualClock } from "../clock.ts";
import {
  MDIC_DATA_MASK,
  MDIC_ERROR,
  MDIC_OP_READ,
  MDIC_OP_WRITE,
  MDIC_PHY_ADDRESS,
  MDIC_PHY_MASK,
  MDIC_PHY_SHIFT,
  MDIC_READY,
  MDIC_REG_MASK,
  MDIC_REG_SHIFT,
} from "./e1000_regs.ts";

/** Clause 22 register numbers. */
export const MII_BMCR = 0x00;
/** Basic Mode Status. */
export const MII_BMSR = 0x01;
/** Link partner ability. */
export const MII_ANLPAR = 0x05;
/** BMCR: Restart Auto-Negotiation (self-clearing). */
export const BMCR_ANRESTART = 1 << 9;
/** BMCR: Auto-Negotiation Enable. */
export const BMCR_AUTOEN = 1 << 12;
/** BMCR: PHY reset (self-clearing). */
const BMCR_RESET = 1 << 15;
/** BMCR: reserved bits 5:0. */
const BMCR_RESERVED = 0x3f;
/** BMSR: Link Status. */
export const BMSR_LINK_ST = 1 << 2;
/** BMSR: Auto-Negotiation Complete. */
export const BMSR_AN_COMP = 1 << 5;
/** ANLPAR: Acknowledge. */
const ANLPAR_ACK = 1 << 14;
/** Virtual time an autonegotiation takes on QEMU (its autoneg timer: 500 ms). */
export const AUTONEG_NS = 500_000_000;
/** PHY registers (clause 22 address space). */
const PHY_REGS = 32;
/** Register access: readable, writable. */
const PHY_R = 1;
const PHY_W = 2;

/** A part's PHY: register values after reset and which registers read and write. */
export interface PhyModel {
  /** Values after reset, by register number. */
  readonly init: Readonly<Record<number, number>>;
  /** Register numbers that read. */
  readonly readable: readonly number[];
  /** Register numbers that write. */
  readonly writable: readonly number[];
  /** Register whose bit {@link restartBit} restarts autonegotiation as well (e1000e OEM bits). */
  readonly restartRegister?: number;
  /** That bit. */
  readonly restartBit?: number;
  /** Register whose value selects the page, and the bits it keeps (e1000e). */
  readonly pageRegister?: { readonly at: number; readonly mask: number };
}

/** Clause 22 values QEMU gives both parts' PHYs. */
const COMMON_PHY_INIT: Readonly<Record<number, number>> = {
  0x00: 0x1140, // BMCR: 1000 Mb/s, full duplex, autonegotiation enabled
  0x01: 0x794d, // BMSR: capabilities + link status, no AN complete
  0x04: 0x0de1, // ANAR
  0x05: 0x07e0, // ANLPAR
  0x06: 0x0005, // ANER
  0x07: 0x2001, // ANNP
  0x09: 0x0f00, // 1000BASE-T control
  0x0a: 0x3c00, // 1000BASE-T status
  0x0f: 0x3000, // extended status
};
const COMMON_READABLE = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0x0a, 0x0f];
const COMMON_WRITABLE = [0, 4, 7, 9];

/** The 82576's internal PHY as QEMU's igb has it (IGP03E1000 id). */
export const IGB_PHY: PhyModel = {
  init: {
    ...COMMON_PHY_INIT,
    0x02: 0x02a8,
    0x03: 0x0391,
    0x10: 0x0120,
    0x11: 0xc000,
    0x19: 0x008d,
  },
  readable: [...COMMON_READABLE, 0x10, 0x11, 0x12, 0x13, 0x19],
  writable: [...COMMON_WRITABLE, 0x10, 0x12, 0x19, 0x1f],
};

/** The 82574L's PHY as QEMU's e1000e has it (page 0). */
export const E1000E_PHY: PhyModel = {
  init: { ...COMMON_PHY_INIT, 0x02: 0x0141, 0x03: 0x0cb1, 0x10: 0x3360, 0x11: 0xac08 },
  readable: [...COMMON_READABLE, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x19, 0x1a, 0x1d, 0x1e],
  writable: [...COMMON_WRITABLE, 0x10, 0x12, 0x14, 0x16, 0x19, 0x1a, 0x1d, 0x1e],
  restartRegister: 0x19,
  restartBit: 1 << 10,
  pageRegister: { at: 0x16, mask: 0xff },
};

/** What the PHY needs from the MAC model. */
export interface PhyHost {
  /** The machine's clock (autonegotiation takes time). */
  readonly clock: () => VirtualClock | undefined;
  /** The link went down (autonegotiation started or the cable was pulled). */
  linkDown(): void;
  /** The link came up; `negotiated` when it was an autonegotiation that completed. */
  linkUp(negotiated: boolean): void;
}

/** The PHY registers and the link state machine. */
export class E1000Phy {
  /** Register values. */
  readonly regs: Uint16Array = new Uint16Array(PHY_REGS);
  readonly #model: PhyModel;
  readonly #host: PhyHost;
  readonly #access = new Uint8Array(PHY_REGS);
  #autoneg: ScheduledEvent | undefined;
  /** Whether a cable (a link partner) is connected. */
  cable = true;

  /** A PHY of `model` for a MAC. */
  constructor(model: PhyModel, host: PhyHost) {
    this.#model = model;
    this.#host = host;
    for (const r of model.readable) this.#access[r] |= PHY_R;
    for (const r of model.writable) this.#access[r] |= PHY_W;
    this.reset();
  }

  /** Registers back to their reset values; a running autonegotiation is abandoned. */
  reset(): void {
    this.#autoneg?.cancel();
    this.#autoneg = undefined;
    this.regs.fill(0);
    for (const [r, v] of Object.entries(this.#model.init)) this.regs[Number(r)] = v;
  }

  /** Whether autonegotiation is enabled in BMCR. */
  get autonegEnabled(): boolean {
    return (this.regs[MII_BMCR] & BMCR_AUTOEN) !== 0;
  }

  /** Whether autonegotiation has completed. */
  get negotiated(): boolean {
    return (this.regs[MII_BMSR] & BMSR_AN_COMP) !== 0;
  }

  /** The MDIC value after software writes `value` (the access completes at once). */
  mdicWrite(current: number, value: number): number {
    const data = value & MDIC_DATA_MASK;
    const register = (value >>> MDIC_REG_SHIFT) & MDIC_REG_MASK;
    const phy = (value >>> MDIC_PHY_SHIFT) & MDIC_PHY_MASK;
    let result = value >>> 0;
    if (phy !== MDIC_PHY_ADDRESS) {
      result = current | MDIC_ERROR;
    } else if ((value & MDIC_OP_READ) !== 0) {
      if (!this.#canAccess(register, PHY_R)) result |= MDIC_ERROR;
      else result = ((value ^ data) | this.regs[register]) >>> 0;
    } else if ((value & MDIC_OP_WRITE) !== 0) {
      if (!this.#canAccess(register, PHY_W)) result |= MDIC_ERROR;
      else this.#write(register, data);
    }
    return (result | MDIC_READY) >>> 0;
  }

  /** Link state as the PHY sees it: the cable is (dis)connected. */
  setCable(connected: boolean): void {
    this.cable = connected;
    if (!connected) {
      this.#autoneg?.cancel();
      this.#autoneg = undefined;
      this.#down();
      return;
    }
    if (this.autonegEnabled && !this.negotiated) this.restartAutoneg();
    else {
      this.regs[MII_BMSR] |= BMSR_LINK_ST;
      this.#host.linkUp(false);
    }
  }

  /** Take the link down and bring it up again after {@link AUTONEG_NS}. */
  restartAutoneg(): void {
    this.#down();
    this.#autoneg?.cancel();
    const clock = this.#host.clock();
    if (clock === undefined) return;
    this.#autoneg = clock.schedule(AUTONEG_NS, () => {
      this.#autoneg = undefined;
      if (!this.cable) return;
      this.regs[MII_BMSR] |= BMSR_LINK_ST | BMSR_AN_COMP;
      this.regs[MII_ANLPAR] |= ANLPAR_ACK;
      this.#host.linkUp(true);
    });
  }

  #down(): void {
    this.regs[MII_BMSR] &= ~(BMSR_LINK_ST | BMSR_AN_COMP);
    this.regs[MII_ANLPAR] &= ~ANLPAR_ACK;
    this.#host.linkDown();
  }

  #canAccess(register: number, how: number): boolean {
    const page = this.#model.pageRegister;
    const anyPage = register <= 0x0f || register === page?.at;
    if (!anyPage && page !== undefined && this.regs[page.at] !== 0) return false;
    return (this.#access[register] & how) !== 0;
  }

  #write(register: number, data: number): void {
    if (register === MII_BMCR) {
      this.regs[MII_BMCR] = data & ~(BMCR_RESERVED | BMCR_RESET | BMCR_ANRESTART);
      if ((data & BMCR_ANRESTART) !== 0 && this.autonegEnabled) this.restartAutoneg();
      return;
    }
    const m = this.#model;
    if (register === m.restartRegister && m.restartBit !== undefined) {
      this.regs[register] = data & ~m.restartBit;
      if ((data & m.restartBit) !== 0) this.restartAutoneg();
      return;
    }
    if (register === m.pageRegister?.at) {
      this.regs[register] = data & m.pageRegister.mask;
      return;
    }
    this.regs[register] = data;
  }
}
