/**
 * The seam between the common Intel NIC model (e1000_device.ts) and a part's own behaviour
 * (igb.ts, e1000e.ts): what the common model gives a part ({@link E1000Core}), what a part
 * gives back ({@link E1000Part}), and a part's description as data.
 *
 * @module
 */

import type { IntxPin } from "./config_irq.ts";
import type { PciConfigSpace } from "./config.ts";
import type { InterruptSink } from "./device.ts";
import type { DmaAccess } from "./dma_access.ts";
import type { E1000Nvm, NvmTemplate } from "./e1000_nvm.ts";
import type { E1000Phy, PhyModel } from "./e1000_phy.ts";
import type { E1000RegisterFile, RegisterAlias, RegisterSpec } from "./e1000_regfile.ts";
import type { RxFifo } from "./e1000_rx_fifo.ts";
import type { MsixTable } from "./msix_table.ts";

/** Counters of a NIC model (not registers: what a test wants to know). */
export interface E1000Counters {
  /** Frames put on the wire. */
  txFrames: number;
  /** Frames written to host memory. */
  rxFrames: number;
  /** Frames dropped because the receive FIFO was full (also in MPC). */
  rxMissed: number;
  /** DMA accesses the IOMMU refused (descriptor fetch, buffer, write-back). */
  dmaFaults: number;
  /** Frames not sent for another reason (too long, link down). */
  txDropped: number;
}

/** What the common model gives a part. */
export interface E1000Core {
  /** Registers. */
  readonly regs: E1000RegisterFile;
  /** Register values. */
  readonly mac: Uint32Array;
  /** The NVM. */
  readonly nvm: E1000Nvm;
  /** The PHY. */
  readonly phy: E1000Phy;
  /** MSI-X table and PBA (BAR 3). */
  readonly msix: MsixTable;
  /** The INTx pin. */
  readonly intx: IntxPin;
  /** DMA through the IOMMU. */
  readonly dma: DmaAccess;
  /** The config space. */
  readonly config: PciConfigSpace;
  /** Model counters. */
  readonly counters: E1000Counters;
  /** The machine's interrupt sink, once connected. */
  irqSink(): InterruptSink | undefined;
  /** Run the part's `process` a moment from now (once, however often asked). */
  schedule(): void;
  /** Put a frame on the wire (or loop it back); true when it went out. */
  sendFrame(frame: Uint8Array, length: number): boolean;
  /** The IOMMU refused a DMA: count and trace it. */
  dmaFault(what: string): void;
  /** Append a line to the machine's trace. */
  trace(line: string): void;
  /** Whether the function may master the bus. */
  busMaster(): boolean;
}

/** What a part gives the common model. */
export interface E1000Part {
  /** The receive FIFO. */
  readonly fifo: RxFifo;
  /** Read a special register the common model does not know; undefined if not the part's. */
  read(index: number): number | undefined;
  /** Write a special register the common model does not know; false if not the part's. */
  write(index: number, value: number): boolean;
  /** Raise "other" causes (LSC, MDAC) in ICR. */
  raiseOther(causes: number): void;
  /** Run the scheduled work: transmit queues whose tail moved, then the receive FIFO. */
  process(): void;
  /** Reset the part's queues and interrupt state (`soft`: CTRL.RST). */
  reset(soft: boolean): void;
}

/** A part as data plus the factory of its behaviour. */
export interface E1000PartDescription {
  /** Model name. */
  readonly model: string;
  /** A fresh config space. */
  config(): PciConfigSpace;
  /** Registers. */
  readonly registers: readonly RegisterSpec[];
  /** Legacy register locations. */
  readonly aliases: readonly RegisterAlias[];
  /** NVM image. */
  readonly nvm: NvmTemplate;
  /** PHY. */
  readonly phy: PhyModel;
  /** MSI-X table entries. */
  readonly msixVectors: number;
  /** Receive FIFO size in bytes, from the registers. */
  rxFifoBytes(mac: Uint32Array): number;
  /** The part's behaviour over `core`. */
  create(core: E1000Core): E1000Part;
}
