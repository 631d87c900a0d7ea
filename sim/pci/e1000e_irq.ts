/**
 * Interrupt logic of the simulated 82574L (§7.4, §10.2.4) with QEMU 10's e1000e semantics:
 * - ICR collects causes, IMS enables them; ICS reads as a copy of ICR (ICR without the
 *   clear-on-read), IMC reads 0;
 * - with MSI-X enabled, a newly enabled RXQ0/RXQ1/TXQ0/TXQ1/OTHER cause sends the vector IVAR
 *   assigns it (§10.2.4.9: a 4-bit field per cause, bit 3 valid), then EIAC auto-clears the
 *   cause in ICR (and in IMS unless CTRL_EXT.IAME), and with CTRL_EXT.EIAME IAM loses it; any
 *   of the "other" causes (LSC, RXO, MDAC, SRPD, ACK, MNG) also sets ICR.OTHER;
 * - without MSI-X, a newly enabled cause sets ICR.INT_ASSERTED and sends MSI vector 0 or
 *   asserts INTx (counted in IAC);
 * - an ICR read clears ICR when IMS is 0, without MSI-X, or when INT_ASSERTED is set and an
 *   enabled cause is pending (with CTRL_EXT.IAME it also clears the IAM bits from IMS); writing
 *   ICR clears the bits written (writing OTHER clears the causes it stands for);
 * - an IMS write with CTRL_EXT.PBA_SUPPORT clears the MSI-X pending bits of its causes;
 * - ITR/EITR are stored and read back; throttling and the RDTR/RADV/TIDV/TADV delays are not
 *   modelled (interrupts are sent at once).
 *
 * @module
 */

import { sendMsi } from "./config_irq.ts";
import type { DeviceConfig, IntxPin } from "./config_irq.ts";
import type { InterruptSink } from "./device.ts";
import type { E1000RegisterFile } from "./e1000_regfile.ts";
import {
  E1000_CTRL_EXT,
  E1000_IAC,
  E1000_IAM,
  E1000_ICR,
  E1000_ICS,
  E1000_IMC,
  E1000_IMS,
  E1000_ITR,
  E1000_PBACLR,
  ICR_INT_ASSERTED,
} from "./e1000_regs.ts";
import {
  CTRL_EXT_EIAME,
  CTRL_EXT_IAME,
  CTRL_EXT_PBA_SUPPORT,
  E1000E_EIAC,
  E1000E_EITR,
  E1000E_IMS_EXTENDED,
  E1000E_IMS_VALID,
  E1000E_IVAR,
  E1000E_MSIX_VECTORS,
  ICR_OTHER,
  ICR_OTHER_CAUSES,
  ICR_RXQ0,
  ICR_RXQ1,
  ICR_TXQ0,
  ICR_TXQ1,
  ITR_INTERVAL_MASK,
  IVAR_FIELD_BITS,
  IVAR_FIELD_VALID,
  IVAR_FIELD_VECTOR,
} from "./e1000e_regs.ts";
import type { MsixTable } from "./msix_table.ts";

const ICR = E1000_ICR >>> 2;
const ICS = E1000_ICS >>> 2;
const IMS = E1000_IMS >>> 2;
const IMC = E1000_IMC >>> 2;
const IAM = E1000_IAM >>> 2;
const ITR = E1000_ITR >>> 2;
const EIAC = E1000E_EIAC >>> 2;
const IVAR = E1000E_IVAR >>> 2;
const EITR0 = E1000E_EITR >>> 2;
const CTRL_EXT = E1000_CTRL_EXT >>> 2;
const PBACLR = E1000_PBACLR >>> 2;
/** ITR/EITR value QEMU keeps internally when software writes less (E1000E_MIN_XITR). */
const MIN_XITR = 500;
/** MSI-X causes in IVAR field order. */
const MSIX_CAUSES = [ICR_RXQ0, ICR_RXQ1, ICR_TXQ0, ICR_TXQ1, ICR_OTHER] as const;

/** What the interrupt logic drives. */
export interface E1000eIrqOutputs {
  /** Config space (MSI / MSI-X enables). */
  readonly config: DeviceConfig;
  /** MSI-X table in BAR 3. */
  readonly msix: MsixTable;
  /** INTx pin. */
  readonly intx: IntxPin;
  /** The machine's interrupt sink (MSI). */
  readonly sink: () => InterruptSink | undefined;
}

/** The interrupt registers' behaviour. */
export class E1000eInterrupts {
  readonly #regs: E1000RegisterFile;
  readonly #mac: Uint32Array;
  readonly #out: E1000eIrqOutputs;
  #itrGuest = 0;
  readonly #eitrGuest = new Uint32Array(E1000E_MSIX_VECTORS);

  /** Interrupts over `regs`. */
  constructor(regs: E1000RegisterFile, outputs: E1000eIrqOutputs) {
    this.#regs = regs;
    this.#mac = regs.mac;
    this.#out = outputs;
  }

  /** Back to power-on. */
  reset(): void {
    this.#itrGuest = 0;
    this.#eitrGuest.fill(0);
    this.#mac[ITR] = MIN_XITR;
    for (let v = 0; v < E1000E_MSIX_VECTORS; v++) this.#mac[EITR0 + v] = MIN_XITR;
    this.#out.intx.set(false);
  }

  /** Whether MSI-X is enabled (queue causes are RXQn/TXQn then). */
  get msixEnabled(): boolean {
    return this.#out.msix.enabled;
  }

  /** Raise ICR causes. */
  raise(causes: number): void {
    this.#raise(ICR, causes);
  }

  /** A read of ICR. */
  readIcr(): number {
    const m = this.#mac;
    const value = m[ICR];
    if (m[IMS] === 0) this.#lower(ICR, 0xffff_ffff);
    if (!this.#out.msix.enabled) this.#lower(ICR, 0xffff_ffff);
    if ((m[ICR] & ICR_INT_ASSERTED) !== 0) {
      if ((m[CTRL_EXT] & CTRL_EXT_IAME) !== 0) {
        this.#lower(ICR, 0xffff_ffff);
        this.#lower(IMS, m[IAM]);
      }
      if ((m[ICR] & m[IMS]) !== 0) this.#lower(ICR, 0xffff_ffff);
    }
    return value;
  }

  /** A read of ITR or EITR n: what software wrote. */
  readThrottle(index: number): number {
    return index === ITR ? this.#itrGuest : this.#eitrGuest[index - EITR0];
  }

  /** A write to an interrupt register (by index); false when `index` is not one. */
  write(index: number, value: number): boolean {
    const m = this.#mac;
    switch (index) {
      case ICR:
        if ((m[ICR] & ICR_INT_ASSERTED) !== 0 && (m[CTRL_EXT] & CTRL_EXT_IAME) !== 0) {
          this.#lower(IMS, m[IAM]);
        }
        this.#lower(ICR, (value & ICR_OTHER) !== 0 ? value | ICR_OTHER_CAUSES : value);
        return true;
      case ICS:
        this.#raise(ICR, value);
        return true;
      case IMS: {
        const valid = value & E1000E_IMS_VALID;
        if (
          (valid & E1000E_IMS_EXTENDED) !== 0 && (m[CTRL_EXT] & CTRL_EXT_PBA_SUPPORT) !== 0 &&
          this.#out.msix.enabled
        ) {
          this.#forEachVector(valid, (v) => this.#out.msix.clearPending(v));
        }
        this.#raise(IMS, valid);
        return true;
      }
      case IMC:
        this.#lower(IMS, value);
        return true;
      case ITR:
        this.#itrGuest = value & ITR_INTERVAL_MASK;
        m[ITR] = Math.max(this.#itrGuest, MIN_XITR);
        return true;
      case PBACLR:
        m[PBACLR] = value & ((1 << E1000E_MSIX_VECTORS) - 1);
        if (this.#out.msix.enabled) {
          for (let v = 0; v < E1000E_MSIX_VECTORS; v++) {
            if ((value >>> v) & 1) this.#out.msix.clearPending(v);
          }
        }
        return true;
    }
    if (index >= EITR0 && index < EITR0 + E1000E_MSIX_VECTORS) {
      this.#eitrGuest[index - EITR0] = value & ITR_INTERVAL_MASK;
      m[index] = Math.max(value & ITR_INTERVAL_MASK, MIN_XITR);
      return true;
    }
    return false;
  }

  #raise(index: typeof ICR | typeof IMS, causes: number): void {
    const m = this.#mac;
    const msix = this.#out.msix.enabled;
    const old = m[IMS] & m[ICR];
    m[index] = (m[index] | causes) >>> 0;
    if (msix && (m[ICR] & ICR_OTHER_CAUSES) !== 0) m[ICR] = (m[ICR] | ICR_OTHER) >>> 0;
    this.#fixAsserted();
    m[ICS] = m[ICR];
    const raised = (m[IMS] & m[ICR] & ~old) >>> 0;
    if (raised === 0) return;
    if (msix) {
      this.#notify(raised & ~ICR_INT_ASSERTED);
      return;
    }
    if (sendMsi(this.#out.config, this.#out.sink() ?? NO_SINK, 0) === "disabled") {
      this.#regs.inc(E1000_IAC >>> 2);
      this.#out.intx.set(true);
    }
  }

  #lower(index: typeof ICR | typeof IMS, causes: number): void {
    const m = this.#mac;
    m[index] = (m[index] & ~causes) >>> 0;
    m[ICS] = m[ICR];
    if ((m[IMS] & m[ICR]) === 0) this.#out.intx.set(false);
  }

  /** Send the vectors of `causes` (QEMU's `e1000e_msix_notify`). */
  #notify(causes: number): void {
    const m = this.#mac;
    for (let f = 0; f < MSIX_CAUSES.length; f++) {
      const cause = MSIX_CAUSES[f];
      if ((causes & cause) === 0) continue;
      const field = (m[IVAR] >>> (IVAR_FIELD_BITS * f)) & 0xf;
      if ((field & IVAR_FIELD_VALID) !== 0) this.#out.msix.notify(field & IVAR_FIELD_VECTOR);
      if ((m[CTRL_EXT] & CTRL_EXT_EIAME) !== 0) m[IAM] = (m[IAM] & ~cause) >>> 0;
      const autoClear = m[EIAC] & cause;
      m[ICR] = (m[ICR] & ~autoClear) >>> 0;
      if ((m[CTRL_EXT] & CTRL_EXT_IAME) === 0) m[IMS] = (m[IMS] & ~autoClear) >>> 0;
    }
  }

  #forEachVector(causes: number, f: (vector: number) => void): void {
    const m = this.#mac;
    for (let i = 0; i < MSIX_CAUSES.length; i++) {
      if ((causes & MSIX_CAUSES[i]) === 0) continue;
      const field = (m[IVAR] >>> (IVAR_FIELD_BITS * i)) & 0xf;
      if ((field & IVAR_FIELD_VALID) !== 0) f(field & IVAR_FIELD_VECTOR);
    }
  }

  #fixAsserted(): void {
    const m = this.#mac;
    m[ICR] = (m[ICR] & ~ICR_INT_ASSERTED) >>> 0;
    if (m[ICR] !== 0) m[ICR] = (m[ICR] | ICR_INT_ASSERTED) >>> 0;
  }
}

/** A sink that drops messages (before the device is plugged in). */
const NO_SINK: InterruptSink = { msi() {}, msix() {}, intx() {} };
