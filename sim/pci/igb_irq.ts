/**
 * Interrupt logic of the simulated 82576 (§7.3, §8.8) with QEMU 10's igb semantics:
 * - causes collect in ICR ("other" causes: LSC, RXO, MDAC, …) and EICR (queue causes, one bit
 *   per MSI-X vector in MSI-X mode); IMS/EIMS enable them;
 * - MSI-X mode (GPIE.MSIX_MODE): a newly enabled ICR cause sets the EICR bit IVAR_MISC names; a
 *   newly enabled EICR bit sends its MSI-X vector through the table (vectors 0–9 exist), and
 *   EIAC then auto-clears that EICR bit;
 * - otherwise: a newly enabled ICR cause sets ICR.INT_ASSERTED and EICR.OTHER and sends MSI-X
 *   vector 0, MSI vector 0, or asserts INTx (counted in IAC), whichever is enabled;
 * - ICR reads clear it when GPIE.NSICR, IMS = 0, INT_ASSERTED is set, or MSI-X is off; writes to
 *   ICR clear the bits written; IMC reads return IMS; EICR is clear-on-read and write-1-to-clear;
 *   EIAC only gains bits, and a write to EIAM sets the complement of the written bits, as QEMU;
 * - EITR intervals are stored and read back; throttling is not modelled (interrupts are sent at
 *   once).
 *
 * @module
 */

import { sendMsi } from "./config_irq.ts";
import type { DeviceConfig, IntxPin } from "./config_irq.ts";
import type { InterruptSink } from "./device.ts";
import type { E1000RegisterFile } from "./e1000_regfile.ts";
import {
  E1000_IAC,
  E1000_IAM,
  E1000_ICR,
  E1000_ICS,
  E1000_IMC,
  E1000_IMS,
  E1000_PBACLR,
  ICR_INT_ASSERTED,
} from "./e1000_regs.ts";
import {
  EICR_LEGACY_MASK,
  EICR_MSIX_MASK,
  EICR_OTHER,
  EITR_CNT_IGNR,
  EITR_INTERVAL_MASK,
  GPIE_MSIX_MODE,
  GPIE_NSICR,
  ICR_DRSTA,
  IGB_EIAC,
  IGB_EIAM,
  IGB_EICR,
  IGB_EICR_CAUSES,
  IGB_EICS,
  IGB_EIMC,
  IGB_EIMS,
  IGB_EITR,
  IGB_GPIE,
  IGB_IMS_VALID,
  IGB_IVAR0,
  IGB_IVAR_MISC,
  IGB_MSIX_VECTORS,
  IVAR_MISC_OTHER_SHIFT,
  IVAR_VALID,
  IVAR_VECTOR_MASK,
} from "./igb_regs.ts";
import type { MsixTable } from "./msix_table.ts";

const ICR = E1000_ICR >>> 2;
const ICS = E1000_ICS >>> 2;
const IMS = E1000_IMS >>> 2;
const IMC = E1000_IMC >>> 2;
const IAM = E1000_IAM >>> 2;
const EICR = IGB_EICR >>> 2;
const EICS = IGB_EICS >>> 2;
const EIMS = IGB_EIMS >>> 2;
const EIMC = IGB_EIMC >>> 2;
const PBACLR = E1000_PBACLR >>> 2;
const EIAC = IGB_EIAC >>> 2;
const EIAM = IGB_EIAM >>> 2;
const GPIE = IGB_GPIE >>> 2;
const IVAR0 = IGB_IVAR0 >>> 2;
const IVAR_MISC = IGB_IVAR_MISC >>> 2;
const EITR0 = IGB_EITR >>> 2;

/** Which register a raise or lower acts on. */
type CauseRegister = typeof ICR | typeof EICR | typeof IMS | typeof EIMS;

/** What the interrupt logic drives. */
export interface IgbIrqOutputs {
  /** The function's config space (MSI / MSI-X enables). */
  readonly config: DeviceConfig;
  /** The MSI-X table in BAR 3. */
  readonly msix: MsixTable;
  /** The INTx pin. */
  readonly intx: IntxPin;
  /** The machine's interrupt sink (MSI). */
  readonly sink: () => InterruptSink | undefined;
}

/** The interrupt registers' behaviour. */
export class IgbInterrupts {
  readonly #regs: E1000RegisterFile;
  readonly #mac: Uint32Array;
  readonly #out: IgbIrqOutputs;
  /** EITR values as software wrote them (what reads return). */
  readonly #eitrGuest = new Uint32Array(IGB_EICR_CAUSES);

  /** Interrupts over the register file `regs`. */
  constructor(regs: E1000RegisterFile, outputs: IgbIrqOutputs) {
    this.#regs = regs;
    this.#mac = regs.mac;
    this.#out = outputs;
  }

  /** Back to power-on (a software reset keeps the EITR values). */
  reset(soft: boolean): void {
    if (!soft) this.#eitrGuest.fill(0);
    this.#out.intx.set(false);
  }

  /** The EICR bit of the vector IVAR assigns to RX (`tx` false) or TX queue `queue`; 0 if none. */
  queueCause(queue: number, tx: boolean): number {
    const byte = (queue < 8 ? 0 : 2) + (tx ? 1 : 0);
    const entry = (this.#mac[IVAR0 + (queue & 7)] >>> (8 * byte)) & 0xff;
    return (entry & IVAR_VALID) !== 0 ? (1 << (entry & IVAR_VECTOR_MASK)) >>> 0 : 0;
  }

  /** Raise ICR causes. */
  raiseIcr(causes: number): void {
    this.#raise(ICR, causes);
  }

  /** Raise EICR causes. */
  raiseEicr(causes: number): void {
    this.#raise(EICR, causes);
  }

  /** A read of ICR. */
  readIcr(): number {
    const m = this.#mac;
    const value = m[ICR];
    if (
      (m[GPIE] & GPIE_NSICR) !== 0 || m[IMS] === 0 || (m[ICR] & ICR_INT_ASSERTED) !== 0 ||
      !this.#out.msix.enabled
    ) {
      this.#lower(ICR, 0xffff_ffff);
    }
    this.#autoMask();
    return value;
  }

  /** A read of IMC returns IMS (§8.8.10). */
  readImc(): number {
    return this.#mac[IMS];
  }

  /** A read of EITR n: the value written, without the counter-ignore bit. */
  readEitr(index: number): number {
    return this.#eitrGuest[index - EITR0];
  }

  /** A write to one of the interrupt registers (by index); false when `index` is not one. */
  write(index: number, value: number): boolean {
    const m = this.#mac;
    const mask = (m[GPIE] & GPIE_MSIX_MODE) !== 0 ? EICR_MSIX_MASK : EICR_LEGACY_MASK;
    switch (index) {
      case ICR:
        this.#autoMask();
        this.#lower(ICR, value);
        return true;
      case ICS:
        this.#raise(ICR, value);
        return true;
      case IMS:
        this.#raise(IMS, value & IGB_IMS_VALID);
        return true;
      case IMC:
        this.#lower(IMS, value);
        return true;
      case EICS:
        this.#raise(EICR, value & mask);
        return true;
      case EIMS:
        this.#raise(EIMS, value & mask);
        return true;
      case EIMC:
        this.#lower(EIMS, value & mask);
        return true;
      case EIAC:
        if ((m[GPIE] & GPIE_MSIX_MODE) !== 0) m[EIAC] = (m[EIAC] | (value & EICR_MSIX_MASK)) >>> 0;
        return true;
      case EIAM:
        m[EIAM] = (m[EIAM] | ~(value & mask)) >>> 0;
        return true;
      case EICR:
        this.#lower(EICR, value & mask);
        return true;
      case PBACLR:
        this.#pbaClear(value);
        return true;
    }
    if (index >= EITR0 && index < EITR0 + IGB_EICR_CAUSES) {
      this.#eitrGuest[index - EITR0] = (value & ~EITR_CNT_IGNR) >>> 0;
      m[index] = value & EITR_INTERVAL_MASK;
      return true;
    }
    return false;
  }

  /** GPIE.NSICR, or a real interrupt pending: IMS loses the IAM bits. */
  #autoMask(): void {
    const m = this.#mac;
    if ((m[GPIE] & GPIE_NSICR) !== 0 || (m[IMS] !== 0 && (m[ICR] & ICR_INT_ASSERTED) !== 0)) {
      this.#lower(IMS, m[IAM]);
    }
  }

  #pbaClear(value: number): void {
    const valid = (1 << IGB_EICR_CAUSES) - 1;
    this.#mac[PBACLR] = value & valid;
    if (!this.#out.msix.enabled) return;
    for (let v = 0; v < IGB_MSIX_VECTORS; v++) {
      if ((value >>> v) & 1) this.#out.msix.clearPending(v);
    }
  }

  #raise(index: CauseRegister, causes: number): void {
    const m = this.#mac;
    const oldCauses = m[ICR] & m[IMS];
    const oldExtended = m[EICR] & m[EIMS];
    m[index] = (m[index] | causes) >>> 0;
    if ((m[GPIE] & GPIE_MSIX_MODE) !== 0) {
      const raised = m[ICR] & m[IMS] & ~oldCauses;
      if ((raised & ICR_DRSTA) !== 0) this.#eicrFromMisc(m[IVAR_MISC] & 0xff);
      if ((raised & ~ICR_DRSTA) !== 0) {
        this.#eicrFromMisc((m[IVAR_MISC] >>> IVAR_MISC_OTHER_SHIFT) & 0xff);
      }
      const raisedExtended = (m[EICR] & m[EIMS] & ~oldExtended) >>> 0;
      for (let v = 0; v < IGB_EICR_CAUSES; v++) {
        if ((raisedExtended >>> v) & 1) this.#sendVector(v);
      }
      return;
    }
    this.#fixAsserted();
    const raised = m[ICR] & m[IMS] & ~oldCauses;
    if (raised === 0) return;
    m[EICR] = (m[EICR] | (raised & ICR_DRSTA) | EICR_OTHER) >>> 0;
    const out = this.#out;
    if (out.msix.enabled) out.msix.notify(0);
    else if (sendMsi(out.config, this.#sinkOrNull(), 0) === "disabled") {
      this.#regs.inc(E1000_IAC >>> 2);
      out.intx.set(true);
    }
  }

  #lower(index: CauseRegister, causes: number): void {
    const m = this.#mac;
    m[index] = (m[index] & ~causes) >>> 0;
    if ((m[ICR] & m[IMS]) === 0 && (m[GPIE] & GPIE_MSIX_MODE) === 0) {
      m[EICR] = (m[EICR] & ~EICR_OTHER) >>> 0;
      this.#out.intx.set(false);
    }
  }

  #eicrFromMisc(entry: number): void {
    if ((entry & IVAR_VALID) !== 0) {
      this.#mac[EICR] = (this.#mac[EICR] | (1 << (entry & IVAR_VECTOR_MASK))) >>> 0;
    }
  }

  #sendVector(vector: number): void {
    if (vector >= IGB_MSIX_VECTORS) return; // vectors above 9 belong to VFs in QEMU's igb
    this.#out.msix.notify(vector);
    this.#mac[EICR] = (this.#mac[EICR] & ~(this.#mac[EIAC] & (1 << vector))) >>> 0;
  }

  #fixAsserted(): void {
    const m = this.#mac;
    m[ICR] = (m[ICR] & ~ICR_INT_ASSERTED) >>> 0;
    if (m[ICR] !== 0) m[ICR] = (m[ICR] | ICR_INT_ASSERTED) >>> 0;
  }

  #sinkOrNull(): InterruptSink {
    return this.#out.sink() ?? NO_SINK;
  }
}

/** A sink that drops messages (before the device is plugged in). */
const NO_SINK: InterruptSink = { msi() {}, msix() {}, intx() {} };
