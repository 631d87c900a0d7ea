/**
 * Bring-up of an Intel e1000-family controller (82574L `e1000e`, 82576 `igb`) over VFIO: identify
 * the model, global reset (bus mastering quiesced first), read the NVM through EERD and validate
 * its checksum, read the station address the reset loaded into RAL0/RAH0, bring the link up
 * (CTRL.SLU, and PHY auto-negotiation through MDIC when STATUS.LU stays clear), and prove the
 * interrupt path by raising a cause in software and taking it on MSI or MSI-X vector 0. The packet
 * driver (nic.ts) starts with these steps; the register facts are in registers.ts and the per-model
 * table in models.ts.
 *
 * @example
 * ```ts
 * using dev = openPciDevice("0000:00:05.0"); // formatMac: net/ethernet.ts
 * const nic = E1000Controller.open(dev);
 * await nic.reset();
 * console.log(nic.model.chip, formatMac(nic.macAddress()), nic.nvmChecksumValid());
 * nic.close();
 * ```
 *
 * @module
 */

import type { Mmio } from "../../ffi/kernel.ts";
import type { PciDevice } from "../../core/pci_device.ts";
import { VfioError } from "../../core/errors.ts";
import { pollUntil } from "../../core/poll_until.ts";
import { PCI_DEVICE_ID, PCI_VENDOR_ID } from "../../core/config_space.ts";
import {
  E1000_CTRL,
  E1000_CTRL_GIO_MASTER_DISABLE,
  E1000_CTRL_RST,
  E1000_CTRL_SLU,
  E1000_EERD,
  E1000_EERD_ADDR_SHIFT,
  E1000_EERD_DATA_SHIFT,
  E1000_EERD_DONE,
  E1000_EERD_START,
  E1000_MDIC,
  E1000_MDIC_DATA_MASK,
  E1000_MDIC_ERROR,
  E1000_MDIC_OP_READ,
  E1000_MDIC_OP_WRITE,
  E1000_MDIC_PHY_SHIFT,
  E1000_MDIC_READY,
  E1000_MDIC_REG_SHIFT,
  E1000_PHY_ADDRESS,
  E1000_RAH0,
  E1000_RAH_AV,
  E1000_RAL0,
  E1000_REGS_BAR,
  E1000_STATUS,
  E1000_STATUS_GIO_MASTER_ENABLE,
  E1000_STATUS_LU,
  NVM_CHECKSUM_WORDS,
  NVM_MAC_WORD,
  NVM_SUM,
  PHY_CONTROL,
  PHY_CONTROL_AN_ENABLE,
  PHY_CONTROL_RESTART_AN,
} from "./registers.ts";
import type { E1000Model } from "./model.ts";
import { describeE1000Models, findE1000Model } from "./models.ts";

/** Options of {@link E1000Controller.open}. */
export interface E1000Options {
  /** Give up on the device after this many milliseconds (default 2000). */
  readonly timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 2000;
/** Poll interval while waiting for the reset, an NVM read or a PHY access (milliseconds). */
const POLL_MS = 1;
/**
 * How long a reset waits for pending bus-master requests to drain (STATUS.GIO_MASTER_ENABLE);
 * the reset goes ahead afterwards either way, as Linux's drivers do.
 */
const GIO_MASTER_DRAIN_MS = 10;
/** Bytes of an Ethernet address. */
const MAC_BYTES = 6;
/** All 32 interrupt mask bits. */
const ALL_CAUSES = 0xffff_ffff;

/** An Intel e1000-family controller opened through VFIO. */
export class E1000Controller {
  /** The controller model (from the PCI device id). */
  readonly model: E1000Model;
  /** The register BAR. */
  readonly regs: Mmio;
  readonly #dev: PciDevice;
  readonly #timeoutMs: number;
  #interruptsOn = false;

  private constructor(dev: PciDevice, model: E1000Model, timeoutMs: number) {
    this.#dev = dev;
    this.model = model;
    this.regs = dev.bar(E1000_REGS_BAR);
    this.#timeoutMs = timeoutMs;
  }

  /** Check that `dev` is a supported controller and map its registers. Masks all interrupts. */
  static open(dev: PciDevice, options: E1000Options = {}): E1000Controller {
    const vendor = dev.config.read16(PCI_VENDOR_ID);
    const device = dev.config.read16(PCI_DEVICE_ID);
    const model = findE1000Model(vendor, device);
    if (!model) {
      throw new VfioError({
        operation: "E1000Controller.open",
        device: dev.bdf,
        message: `device is ${hex4(vendor)}:${
          hex4(device)
        }, not a supported controller (${describeE1000Models()})`,
        hint: "pass the address of an e1000e or igb NIC (QEMU: -device e1000e / -device igb)",
      });
    }
    const nic = new E1000Controller(dev, model, options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    nic.maskAll();
    return nic;
  }

  /** Device Status register. */
  status(): number {
    return this.regs.read32(E1000_STATUS);
  }

  /** Whether STATUS reports link up. */
  linkUp(): boolean {
    return (this.status() & E1000_STATUS_LU) !== 0;
  }

  /**
   * Global reset (82576 §4.5.2, 82574 §4.6.2): stop new bus-master requests and let pending ones
   * drain, set CTRL.RST and wait for the bit to clear; the reset reloads the station address from
   * the NVM and clears the rings and statistics. Interrupts are masked again afterwards.
   */
  async reset(): Promise<void> {
    const r = this.regs;
    this.maskAll();
    r.write32(E1000_CTRL, r.read32(E1000_CTRL) | E1000_CTRL_GIO_MASTER_DISABLE);
    const drainUntil = this.#dev.kernel.now() + GIO_MASTER_DRAIN_MS;
    while (
      (r.read32(E1000_STATUS) & E1000_STATUS_GIO_MASTER_ENABLE) !== 0 &&
      this.#dev.kernel.now() < drainUntil
    ) {
      await this.#dev.kernel.sleep(POLL_MS);
    }
    r.write32(E1000_CTRL, r.read32(E1000_CTRL) | E1000_CTRL_RST);
    await this.#until(() => (r.read32(E1000_CTRL) & E1000_CTRL_RST) === 0, "reset");
    this.maskAll();
  }

  /**
   * Bring the link up (82576 §4.5.4, 82574 §4.6.3): set CTRL.SLU; when STATUS.LU is still clear,
   * restart auto-negotiation in the PHY (its control register through MDIC) and wait up to
   * `timeoutMs` for STATUS.LU. Returns whether the link is up; a link that stays down (no cable,
   * peer down) is not an error.
   */
  async linkSetup(timeoutMs: number): Promise<boolean> {
    const r = this.regs;
    r.write32(E1000_CTRL, (r.read32(E1000_CTRL) | E1000_CTRL_SLU) & ~E1000_CTRL_GIO_MASTER_DISABLE);
    if (this.linkUp()) return true;
    const control = await this.readPhy(PHY_CONTROL);
    await this.writePhy(PHY_CONTROL, control | PHY_CONTROL_AN_ENABLE | PHY_CONTROL_RESTART_AN);
    const until = this.#dev.kernel.now() + timeoutMs;
    while (!this.linkUp() && this.#dev.kernel.now() < until) {
      await this.#dev.kernel.sleep(POLL_MS);
    }
    return this.linkUp();
  }

  /** Read register `reg` of the internal PHY through MDIC. */
  async readPhy(reg: number): Promise<number> {
    return await this.#mdic(E1000_MDIC_OP_READ | (reg << E1000_MDIC_REG_SHIFT), `PHY read ${reg}`);
  }

  /** Write register `reg` of the internal PHY through MDIC. */
  async writePhy(reg: number, value: number): Promise<void> {
    await this.#mdic(
      E1000_MDIC_OP_WRITE | (reg << E1000_MDIC_REG_SHIFT) | (value & E1000_MDIC_DATA_MASK),
      `PHY write ${reg}`,
    );
  }

  /** One 16-bit NVM word through EERD. */
  async readNvm(word: number): Promise<number> {
    this.regs.write32(E1000_EERD, (word << E1000_EERD_ADDR_SHIFT) | E1000_EERD_START);
    let value = 0;
    await this.#until(() => {
      value = this.regs.read32(E1000_EERD);
      return (value & E1000_EERD_DONE) !== 0;
    }, `NVM read of word 0x${word.toString(16)}`);
    return value >>> E1000_EERD_DATA_SHIFT;
  }

  /** Whether NVM words 0x00..0x3f sum to 0xbaba, as the Linux drivers require before use. */
  async nvmChecksumValid(): Promise<boolean> {
    let sum = 0;
    for (let w = 0; w < NVM_CHECKSUM_WORDS; w++) sum = (sum + await this.readNvm(w)) & 0xffff;
    return sum === NVM_SUM;
  }

  /** The permanent Ethernet address from NVM words 0..2. */
  async nvmMacAddress(): Promise<Uint8Array> {
    const mac = new Uint8Array(MAC_BYTES);
    for (let i = 0; i < MAC_BYTES / 2; i++) {
      const word = await this.readNvm(NVM_MAC_WORD + i);
      mac[2 * i] = word & 0xff;
      mac[2 * i + 1] = word >>> 8;
    }
    return mac;
  }

  /** The station address in RAL0/RAH0, or undefined when RAH0.AV is clear. */
  macAddress(): Uint8Array | undefined {
    const low = this.regs.read32(E1000_RAL0);
    const high = this.regs.read32(E1000_RAH0);
    if ((high & E1000_RAH_AV) === 0) return undefined;
    return Uint8Array.of(low, low >>> 8, low >>> 16, low >>> 24, high, high >>> 8);
  }

  /**
   * Raise the model's test cause in software and wait for it on MSI or MSI-X vector 0. Returns
   * the cause bits the device reported. Enables bus mastering (MSI is a memory write) and the
   * vector on first use.
   */
  async interruptSelfTest(): Promise<number> {
    const irq = this.model.interrupts;
    if (!this.#interruptsOn) {
      this.#dev.config.enableBusMaster();
      if (irq.kind === "msi") this.#dev.irqs.enableMsi(1);
      else this.#dev.irqs.enableMsix(1);
      this.#interruptsOn = true;
      if (irq.setup) this.regs.write32(irq.setup.reg, irq.setup.value);
    }
    this.regs.write32(irq.maskSet, irq.cause);
    this.regs.write32(irq.causeSet, irq.cause);
    const got = await this.#dev.irqs.wait(0, { timeoutMs: this.#timeoutMs });
    if (got === "timeout" || got === "cancelled") {
      throw new VfioError({
        operation: `${this.model.name} interrupt`,
        device: this.#dev.bdf,
        message: `no ${irq.kind === "msi" ? "MSI" : "MSI-X"} within ${this.#timeoutMs} ms (${got})`,
        hint: "check that the IOMMU passes the MSI window and interrupt remapping is set up",
      });
    }
    const causes = this.regs.read32(irq.causeRead);
    if (irq.causeWriteClears) this.regs.write32(irq.causeRead, causes);
    this.maskAll();
    return causes;
  }

  /** Mask every interrupt cause of the model. */
  maskAll(): void {
    for (const reg of this.model.interrupts.maskClear) this.regs.write32(reg, ALL_CAUSES);
  }

  /** Mask every interrupt and disable the vectors this object enabled. The device stays open. */
  close(): void {
    this.maskAll();
    if (!this.#interruptsOn) return;
    if (this.model.interrupts.kind === "msi") this.#dev.irqs.disableMsi();
    else this.#dev.irqs.disableMsix();
    this.#interruptsOn = false;
  }

  async #mdic(command: number, what: string): Promise<number> {
    const r = this.regs;
    r.write32(E1000_MDIC, command | (E1000_PHY_ADDRESS << E1000_MDIC_PHY_SHIFT));
    let value = 0;
    await this.#until(() => {
      value = r.read32(E1000_MDIC);
      return (value & E1000_MDIC_READY) !== 0;
    }, what);
    if ((value & E1000_MDIC_ERROR) !== 0) {
      throw new VfioError({
        operation: `${this.model.name} ${what}`,
        device: this.#dev.bdf,
        message: `the PHY at MDIO address ${E1000_PHY_ADDRESS} did not answer (MDIC 0x${
          (value >>> 0).toString(16)
        })`,
      });
    }
    return value & E1000_MDIC_DATA_MASK;
  }

  #until(done: () => boolean, what: string): Promise<void> {
    return pollUntil(this.#dev, done, {
      timeoutMs: this.#timeoutMs,
      pollMs: POLL_MS,
      operation: `${this.model.name} ${what}`,
    });
  }
}

function hex4(v: number): string {
  return v.toString(16).padStart(4, "0");
}
