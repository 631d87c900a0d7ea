/**
 * The simulated Intel NICs — 82574L (`e1000e`) and 82576 (`igb`) — as one PCI function model
 * whose part-specific behaviour (interrupts, queues, descriptor formats) comes from the part's
 * description (igb.ts, e1000e.ts). What the parts have in common lives here: the BARs
 * (registers, a flash window with nothing behind it, the IOADDR/IODATA I/O window, the MSI-X
 * table and PBA), the register file with its access widths, the general registers (CTRL with
 * its self-clearing RST, STATUS, EECD/EERD and the NVM, CTRL_EXT, MDIC and the PHY, GCR, SWSM),
 * the link (PHY autonegotiation, {@link E1000Device.setLink}), the Ethernet port, and the
 * virtual-clock scheduling of transmit and receive work.
 *
 * Register accesses are 4 bytes wide; an 8-byte access is two, a 1- or 2-byte read returns the
 * bytes of the dword and a 1- or 2-byte write is ignored. Nothing written anywhere throws.
 *
 * @example
 * ```ts
 * const machine = createMachine({ iommu: "vtd", devices: [{ model: "igb" }] });
 * const nic = machine.fn("0000:00:02.0").model as E1000Device;
 * nic.setLink(false); // STATUS.LU drops, ICR.LSC is raised
 * nic.counters.txFrames; // frames put on the wire so far
 * ```
 *
 * @module
 */

import type { EthernetSegment, SegmentLink, SegmentPort } from "../net/segment.ts";
import { busMasterEnabled, IntxPin } from "./config_irq.ts";
import type { PciConfigSpace } from "./config.ts";
import type { BarDecl, DeviceHost, PciConfig, PciDeviceModel } from "./device.ts";
import { DmaAccess } from "./dma_access.ts";
import type { E1000Core, E1000Counters, E1000Part, E1000PartDescription } from "./e1000_core.ts";
import { E1000Nvm, eecdWrite } from "./e1000_nvm.ts";
import { E1000Phy, MII_BMCR } from "./e1000_phy.ts";
import { E1000RegisterFile, READ_SPECIAL } from "./e1000_regfile.ts";
import {
  CTRL_EXT_ASDCHK,
  CTRL_EXT_EE_RST,
  CTRL_EXT_SPD_BYPS,
  CTRL_FD,
  CTRL_FRCDPX,
  CTRL_FRCSPD,
  CTRL_GIO_MASTER_DISABLE,
  CTRL_PHY_RST,
  CTRL_RFCE,
  CTRL_RST,
  CTRL_SPEED_10,
  CTRL_SPEED_100,
  CTRL_SPEED_MASK,
  CTRL_TFCE,
  E1000_BAR,
  E1000_CTRL,
  E1000_CTRL_DUP,
  E1000_CTRL_EXT,
  E1000_EECD,
  E1000_EERD,
  E1000_GCR,
  E1000_IOADDR,
  E1000_IODATA,
  E1000_MDIC,
  E1000_MMIO_SIZE,
  E1000_MPC,
  E1000_MSIX_PBA_OFFSET,
  E1000_RA,
  E1000_RCTL,
  E1000_STATUS,
  E1000_SWSM,
  ICR_LSC,
  ICR_MDAC,
  MDIC_INT_EN,
  RAH_AV,
  RCTL_EN,
  RCTL_LBM_MAC,
  RCTL_LBM_MASK,
  STATUS_FD,
  STATUS_GIO_MASTER_ENABLE,
  STATUS_LU,
  STATUS_PHYRA,
  STATUS_SPEED_10,
  STATUS_SPEED_100,
  STATUS_SPEED_1000,
} from "./e1000_regs.ts";
import { countTxFrame, frameKind } from "./e1000_stats.ts";
import { E1000E_PART } from "./e1000e.ts";
import { IGB_PART } from "./igb.ts";
import { MsixTable } from "./msix_table.ts";

export type { E1000Counters } from "./e1000_core.ts";

/** Virtual time from a tail write (or a frame's arrival) to the device acting on it. */
export const E1000_PROCESS_DELAY_NS = 1_000;
/** GCR bits a write cannot change (QEMU: bits 23, 25, 26). */
const GCR_READ_ONLY = 0x0680_0000;
/** SWSM: Semaphore bit set by a read (SMBI). */
const SWSM_SMBI = 1 << 0;
/** BMCR: loopback. */
const BMCR_LOOPBACK = 1 << 14;
/** Register offsets the I/O window reaches (below 128 KiB). */
const IOADDR_REGISTER_LIMIT = 0x1ffff;
/** Bytes of an Ethernet address. */
const MAC_BYTES = 6;
/** QEMU's first NIC address. */
const DEFAULT_MAC = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

/** A 64-bit register value from whatever was written (a fraction or NaN must not throw). */
function toU64(value: number | bigint): bigint {
  if (typeof value === "bigint") return BigInt.asUintN(64, value);
  return BigInt.asUintN(64, BigInt(Number.isFinite(value) ? Math.trunc(value) : 0));
}

/** The parts this model can be. */
export type E1000Model = "igb" | "e1000e";

/** The parts by name. */
const PARTS: Readonly<Record<E1000Model, E1000PartDescription>> = {
  igb: IGB_PART,
  e1000e: E1000E_PART,
};

/** Options of an {@link E1000Device}. */
export interface E1000DeviceOptions {
  /** MAC address (default: QEMU's 52:54:00:12:34:56). */
  readonly mac?: Uint8Array;
  /** The Ethernet segment the port is plugged into (frames go nowhere without one). */
  readonly segment?: EthernetSegment;
}

/** A simulated Intel 82574L (`"e1000e"`) or 82576 (`"igb"`). */
export class E1000Device implements PciDeviceModel, SegmentPort {
  /** "igb" or "e1000e". */
  readonly model: E1000Model;
  /** The config space. */
  readonly config: PciConfig;
  /** BAR 0–3. */
  readonly bars: readonly BarDecl[];
  /** FLR (igb) and PM reset (e1000e) both reset the function. */
  readonly resetWorks = true;
  /** Name on the Ethernet segment. */
  readonly name: string;
  /** Model counters. */
  readonly counters: E1000Counters = {
    txFrames: 0,
    rxFrames: 0,
    rxMissed: 0,
    dmaFaults: 0,
    txDropped: 0,
  };
  readonly #description: E1000PartDescription;
  readonly #config: PciConfigSpace;
  readonly #regs: E1000RegisterFile;
  readonly #mac: Uint32Array;
  readonly #nvm: E1000Nvm;
  readonly #phy: E1000Phy;
  readonly #msix: MsixTable;
  readonly #intx: IntxPin;
  readonly #part: E1000Part;
  readonly #address: Uint8Array;
  readonly #segment: EthernetSegment | undefined;
  #host: DeviceHost | undefined;
  #link: SegmentLink | undefined;
  #ioaddr = 0;
  #scheduled = false;

  /** An 82576 (`"igb"`) or 82574L (`"e1000e"`) with a MAC, plugged into a segment. */
  constructor(model: E1000Model, options: E1000DeviceOptions = {}) {
    const description = PARTS[model];
    if (description === undefined) throw new Error(`E1000Device: unknown part "${model}"`);
    this.#description = description;
    this.model = model;
    this.#config = description.config();
    this.config = this.#config;
    this.bars = this.#config.bars;
    this.#address = new Uint8Array(options.mac ?? DEFAULT_MAC).slice(0, MAC_BYTES);
    this.#segment = options.segment;
    this.name = `${model} ${
      [...this.#address].map((b) => b.toString(16).padStart(2, "0")).join(":")
    }`;
    this.#regs = new E1000RegisterFile(description.registers, description.aliases);
    this.#mac = this.#regs.mac;
    this.#nvm = new E1000Nvm(description.nvm, this.#address);
    this.#phy = new E1000Phy(description.phy, {
      clock: () => this.#host?.clock,
      linkDown: () => void (this.#mac[E1000_STATUS >>> 2] &= ~STATUS_LU),
      linkUp: (negotiated) => this.#linkUp(negotiated),
    });
    this.#msix = new MsixTable(this.#config, {
      bar: E1000_BAR.msix,
      tableOffset: 0,
      pbaOffset: E1000_MSIX_PBA_OFFSET,
      vectors: description.msixVectors,
    });
    this.#intx = new IntxPin(this.#config);
    this.#part = description.create(this.#core());
    this.#config.onWrite(() => {
      if (busMasterEnabled(this.#config)) this.#schedule();
    });
    this.#resetDevice(false);
  }

  /** The MAC address the NVM and RAL0/RAH0 carry. */
  get macAddress(): Uint8Array {
    return this.#address.slice();
  }

  /** Frames waiting in the receive FIFO (for a descriptor, the link, or RCTL.EN). */
  get rxWaiting(): number {
    return this.#part.fifo.count;
  }

  /** Plug into the machine and the segment. */
  connect(host: DeviceHost): void {
    this.#host = host;
    this.#msix.connect(host.irq);
    this.#intx.connect(host.irq);
    this.#link = this.#segment?.attach(this);
  }

  /** Function-level reset: config space and device back to power-on. */
  reset(): void {
    this.#config.reset();
    this.#msix.reset();
    this.#intx.reset();
    this.#resetDevice(false);
  }

  /**
   * Connect or disconnect the cable (QEMU's `set_link`): down clears STATUS.LU at once; up
   * brings the link up — after autonegotiation (500 ms of virtual time) when it has not
   * completed. ICR.LSC is raised whenever STATUS changes.
   */
  setLink(up: boolean): void {
    const before = this.#mac[E1000_STATUS >>> 2];
    this.#phy.setCable(up);
    if (this.#mac[E1000_STATUS >>> 2] !== before) this.#part.raiseOther(ICR_LSC);
  }

  /** A frame from the wire (the segment calls this). */
  receive(frame: Uint8Array): void {
    this.#receive(frame, frame.length);
  }

  /** A frame from the wire as a range of the segment's buffer (copied into the FIFO, no view). */
  receiveFrom(buf: Uint8Array, offset: number, length: number): void {
    this.#receive(buf, length, offset);
  }

  #receive(frame: Uint8Array, length: number, offset = 0): void {
    if (!this.#phy.cable) return; // no link partner: nothing arrives
    const room = this.#description.rxFifoBytes(this.#mac);
    let held = this.#part.fifo.push(frame, length, room, offset);
    if (!held) {
      // QEMU writes a frame to guest memory as it arrives while a descriptor is free; frames
      // wait (here in the on-chip buffer) only while none is. So a full buffer first gives its
      // frames to the free descriptors there are, and a frame is missed only if no room results.
      this.#part.drainRx();
      held = this.#part.fifo.push(frame, length, room, offset);
    }
    if (!held) {
      this.#regs.inc(E1000_MPC >>> 2);
      this.counters.rxMissed++;
      this.#trace(`receive FIFO full: frame of ${length} bytes dropped`);
    }
    this.#schedule();
  }

  /** A register read of `size` bytes. */
  mmioRead(bar: number, offset: number, size: 1 | 2 | 4 | 8): number | bigint {
    if (!Number.isInteger(offset) || offset < 0) return 0;
    if (bar === E1000_BAR.msix) {
      return this.#msix.owns(bar, offset) ? this.#msix.read(offset, size) : 0;
    }
    if (bar === E1000_BAR.io) {
      if (size !== 4) return 0;
      if (offset === E1000_IOADDR) return this.#ioaddr;
      return offset === E1000_IODATA && this.#ioaddr < IOADDR_REGISTER_LIMIT
        ? this.#read32(this.#ioaddr)
        : 0;
    }
    if (bar !== E1000_BAR.mmio || offset >= E1000_MMIO_SIZE) return 0;
    if (size === 8) {
      const lo = this.#read32(offset);
      const hi = this.#read32(offset + 4);
      return (BigInt(hi) << 32n) | BigInt(lo);
    }
    const v = this.#read32(offset & ~3);
    if (size === 4) return v;
    return (v >>> (8 * (offset & 3))) & (size === 1 ? 0xff : 0xffff);
  }

  /** A register write of `size` bytes. */
  mmioWrite(bar: number, offset: number, size: 1 | 2 | 4 | 8, value: number | bigint): void {
    if (!Number.isInteger(offset) || offset < 0) return;
    if (bar === E1000_BAR.msix) {
      if (this.#msix.owns(bar, offset)) this.#msix.write(offset, size, value);
      return;
    }
    if (size === 8) {
      const v = toU64(value);
      this.mmioWrite(bar, offset, 4, Number(v & 0xffff_ffffn));
      this.mmioWrite(bar, offset + 4, 4, Number(v >> 32n));
      return;
    }
    if (size !== 4) return;
    const v = Number(value) >>> 0;
    if (bar === E1000_BAR.io) {
      if (offset === E1000_IOADDR) this.#ioaddr = v;
      else if (offset === E1000_IODATA && this.#ioaddr < IOADDR_REGISTER_LIMIT) {
        this.#write32(this.#ioaddr, v);
      }
      return;
    }
    if (bar === E1000_BAR.mmio && offset < E1000_MMIO_SIZE) this.#write32(offset & ~3, v);
  }

  /** What the part sees of the device. */
  #core(): E1000Core {
    return {
      regs: this.#regs,
      mac: this.#mac,
      nvm: this.#nvm,
      phy: this.#phy,
      msix: this.#msix,
      intx: this.#intx,
      dma: new DmaAccess(() => this.#host?.dma),
      config: this.#config,
      counters: this.counters,
      irqSink: () => this.#host?.irq,
      schedule: () => this.#schedule(),
      sendFrame: (frame, length) => this.#sendFrame(frame, length),
      dmaFault: (what) => {
        this.counters.dmaFaults++;
        this.#trace(`${what}: DMA refused by the IOMMU; frame dropped`);
      },
      trace: (line) => this.#trace(line),
      busMaster: () => busMasterEnabled(this.#config),
    };
  }

  #schedule(): void {
    if (this.#scheduled || this.#host === undefined) return;
    this.#scheduled = true;
    this.#host.clock.schedule(E1000_PROCESS_DELAY_NS, this.#run);
  }

  /** The scheduled work (one function for the device's lifetime). */
  readonly #run = (): void => {
    this.#scheduled = false;
    this.#part.process();
  };

  #sendFrame(frame: Uint8Array, length: number): boolean {
    if (!this.#phy.cable) {
      this.counters.txDropped++;
      return false;
    }
    const loopback = (this.#mac[E1000_RCTL >>> 2] & RCTL_LBM_MASK) === RCTL_LBM_MAC ||
      (this.#phy.regs[MII_BMCR] & BMCR_LOOPBACK) !== 0;
    if (loopback) this.#receive(frame, length);
    else this.#link?.sendFrom(frame, 0, length);
    countTxFrame(this.#regs, frameKind(frame), length);
    this.counters.txFrames++;
    return true;
  }

  #trace(line: string): void {
    this.#host?.trace(line);
  }

  #read32(offset: number): number {
    const i = this.#regs.index(offset);
    if (this.#regs.readKind[i] !== READ_SPECIAL) return this.#regs.readGeneric(i);
    switch (i) {
      case E1000_STATUS >>> 2:
        return this.#status();
      case E1000_SWSM >>> 2: {
        const v = this.#mac[i];
        this.#mac[i] = (v | SWSM_SMBI) >>> 0;
        return v;
      }
      default:
        return this.#part.read(i) ?? 0;
    }
  }

  #write32(offset: number, value: number): void {
    const i = this.#regs.index(offset);
    const kind = this.#regs.writeKind[i];
    if (kind === 0) return;
    if (kind === 1) {
      this.#regs.writeGeneric(i, value);
      return;
    }
    const m = this.#mac;
    switch (i) {
      case E1000_CTRL >>> 2:
      case E1000_CTRL_DUP >>> 2:
        this.#writeCtrl(value);
        return;
      case E1000_STATUS >>> 2:
        if ((value & STATUS_PHYRA) === 0) m[i] &= ~STATUS_PHYRA;
        return;
      case E1000_EECD >>> 2:
        m[i] = eecdWrite(m[i], value);
        return;
      case E1000_EERD >>> 2:
        m[i] = this.#nvm.eerdWrite(value);
        return;
      case E1000_CTRL_EXT >>> 2:
        this.#regs.store(i, value & ~(CTRL_EXT_ASDCHK | CTRL_EXT_EE_RST));
        return;
      case E1000_MDIC >>> 2:
        m[i] = this.#phy.mdicWrite(m[i], value);
        if ((m[i] & MDIC_INT_EN) !== 0) this.#part.raiseOther(ICR_MDAC);
        return;
      case E1000_GCR >>> 2:
        m[i] = ((m[i] & GCR_READ_ONLY) | (value & ~GCR_READ_ONLY)) >>> 0;
        return;
      case E1000_RCTL >>> 2:
        this.#regs.store(i, value);
        if ((value & RCTL_EN) !== 0) this.#schedule();
        return;
    }
    if (!this.#part.write(i, value)) this.#regs.store(i, value);
  }

  #writeCtrl(value: number): void {
    const m = this.#mac;
    m[E1000_CTRL >>> 2] = (value & ~CTRL_RST) >>> 0;
    if ((value & CTRL_RST) !== 0) this.#resetDevice(true);
    if ((value & CTRL_PHY_RST) !== 0) m[E1000_STATUS >>> 2] |= STATUS_PHYRA;
  }

  /** STATUS as read: duplex and speed from CTRL/CTRL_EXT, GIO master enable (QEMU 10). */
  #status(): number {
    const m = this.#mac;
    const ctrl = m[E1000_CTRL >>> 2];
    let v = m[E1000_STATUS >>> 2];
    if ((ctrl & CTRL_FRCDPX) === 0 || (ctrl & CTRL_FD) !== 0) v |= STATUS_FD;
    if ((ctrl & CTRL_FRCSPD) !== 0 || (m[E1000_CTRL_EXT >>> 2] & CTRL_EXT_SPD_BYPS) !== 0) {
      const speed = ctrl & CTRL_SPEED_MASK;
      v |= speed === CTRL_SPEED_10
        ? STATUS_SPEED_10
        : speed === CTRL_SPEED_100
        ? STATUS_SPEED_100
        : STATUS_SPEED_1000;
    } else {
      v |= STATUS_SPEED_1000;
    }
    if ((ctrl & CTRL_GIO_MASTER_DISABLE) === 0) v |= STATUS_GIO_MASTER_ENABLE;
    return v >>> 0;
  }

  #linkUp(negotiated: boolean): void {
    const m = this.#mac;
    m[E1000_STATUS >>> 2] |= STATUS_LU;
    if (negotiated) {
      if (this.#phy.autonegEnabled && this.#phy.negotiated) {
        m[E1000_CTRL >>> 2] |= CTRL_TFCE | CTRL_RFCE;
      }
      this.#part.raiseOther(ICR_LSC);
    }
    this.#schedule();
  }

  /** QEMU's core reset: registers, PHY, the station address in RAL0/RAH0, queues. */
  #resetDevice(soft: boolean): void {
    this.#regs.reset(soft);
    this.#phy.reset();
    if (!this.#phy.cable) this.#phy.setCable(false);
    const a = this.#address;
    this.#mac[E1000_RA >>> 2] = (a[0] | (a[1] << 8) | (a[2] << 16) | (a[3] << 24)) >>> 0;
    this.#mac[(E1000_RA >>> 2) + 1] = (a[4] | (a[5] << 8) | RAH_AV) >>> 0;
    this.#ioaddr = 0;
    this.#part.fifo.clear();
    this.#intx.set(false);
    this.#part.reset(soft);
  }
}
