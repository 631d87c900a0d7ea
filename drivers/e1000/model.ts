/**
 * The shape of one Intel gigabit controller model as the shared driver code sees it: where its
 * queue registers are, how its receive descriptors are selected, what its transmit data
 * descriptor's command word carries, and how its queues raise interrupts. Each model fills one
 * of these (drivers/e1000e/model.ts, drivers/igb/model.ts); the code in this folder reads only
 * the table, so the differences between the 82574 and the 82576 stay data.
 *
 * @module
 */

import type { Mmio } from "../../ffi/kernel.ts";

/** How a model raises a software interrupt and which vector type carries it (bring-up test). */
export interface E1000InterruptRegs {
  /** The vector type the self test enables: MSI (82574) or MSI-X (82576, as its Linux driver uses). */
  readonly kind: "msi" | "msix";
  /** Register written once before the test, and the value (82576: GPIE MSI-X mode); or none. */
  readonly setup?: { readonly reg: number; readonly value: number };
  /** Cause set register. */
  readonly causeSet: number;
  /** Cause read register (82574: read-to-clear ICR; 82576: EICR, written to clear). */
  readonly causeRead: number;
  /** Whether the cause register must be written with the bits to clear them. */
  readonly causeWriteClears: boolean;
  /** Mask set register. */
  readonly maskSet: number;
  /** Mask clear registers (all written with all-ones to mask everything). */
  readonly maskClear: readonly number[];
  /** The cause bit the self test raises (routed to MSI/MSI-X vector 0). */
  readonly cause: number;
}

/**
 * How the receive queues raise interrupts in one mode (MSI-X or MSI): the vectors, the routing
 * the device needs, and the registers that mask, unmask and clear a queue's cause.
 */
export interface E1000IrqScheme {
  /** The vector type. */
  readonly kind: "msix" | "msi";
  /** Vectors to enable for `queues` receive queues. */
  readonly vectors: (queues: number) => number;
  /** The vector receive queue `queue` signals. */
  readonly vectorOf: (queue: number) => number;
  /** Route the queues' causes to their vectors (IVAR, GPIE, EIAC, …); everything stays masked. */
  readonly setup: (regs: Mmio, queues: number) => void;
  /** The cause/mask bit(s) of receive queue `queue` in the three registers below. */
  readonly queueBits: (queue: number) => number;
  /** Mask set (IMS / EIMS): 1-bits unmask. */
  readonly maskSet: number;
  /** Mask clear (IMC / EIMC): 1-bits mask. */
  readonly maskClear: number;
  /** The latched causes (ICR / EICR): 1-bits written clear them. */
  readonly causeClear: number;
}

/** Where a model's descriptor queue registers are: queue n's block at base + n × stride. */
export interface E1000QueueLayout {
  /** Receive queue 0's block. */
  readonly rxBase: number;
  /** Transmit queue 0's block. */
  readonly txBase: number;
  /** Distance between queue blocks. */
  readonly stride: number;
  /** Most queue pairs the driver uses (RSS spreads receive traffic over them). */
  readonly max: number;
}

/** One controller model. */
export interface E1000Model {
  /** Name, as QEMU calls the device. */
  readonly name: "e1000e" | "igb";
  /** Controller. */
  readonly chip: string;
  /** PCI device id. */
  readonly deviceId: number;
  /** Interrupt registers of the bring-up self test. */
  readonly interrupts: E1000InterruptRegs;
  /** The queue register blocks. */
  readonly queues: E1000QueueLayout;
  /**
   * The RXDCTL/TXDCTL bit that enables a queue (the driver waits for it to read back), or 0 when
   * queues are enabled by RCTL.EN/TCTL.EN alone.
   */
  readonly queueEnable: number;
  /**
   * Select one-buffer receive descriptors with write-back in words 2-3 for buffers of
   * `bufferSize` bytes, checksum offload off, and RSS over `queues` queues when more than one.
   */
  readonly configureRx: (regs: Mmio, queues: number, bufferSize: number) => void;
  /** Word 2 bits of every transmit data descriptor besides length, EOP, IFCS and RS. */
  readonly txCmd: number;
  /** Shift of PAYLEN (the frame length) in word 3, or undefined when word 3 is written as 0. */
  readonly txPaylenShift: number | undefined;
  /** Interrupt modes, in order of preference. */
  readonly irqSchemes: readonly E1000IrqScheme[];
}
