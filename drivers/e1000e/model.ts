/**
 * The 82574L (QEMU's `e1000e`) as a row of the e1000-family table: queue blocks at
 * 0x2800/0x3800, queues enabled by RCTL/TCTL alone, extended receive descriptors selected by
 * RFCTL.EXSTEN with the 2 KiB buffer size of RCTL.BSIZE, legacy transmit descriptors, and
 * interrupts on MSI-X vector 0 through IVAR (or, without MSI-X, on MSI) (82574 datasheet §7.1,
 * §7.2, §10.2.4; registers in ./registers.ts).
 *
 * @module
 */

import type { Mmio } from "../../ffi/kernel.ts";
import { VfioError } from "../../core/errors.ts";
import type { E1000IrqScheme, E1000Model } from "../e1000/model.ts";
import { E1000_CTRL_EXT, E1000_RXCSUM } from "../e1000/registers.ts";
import {
  E1000E_CTRL_EXT_PBA_CLR,
  E1000E_DEVICE_ID,
  E1000E_EIAC,
  E1000E_ICR,
  E1000E_ICR_RXQ0,
  E1000E_ICR_TXDW,
  E1000E_ICS,
  E1000E_IMC,
  E1000E_IMS,
  E1000E_IVAR,
  E1000E_IVAR_RXQ0_SHIFT,
  E1000E_IVAR_VALID,
  E1000E_MSI_RX_CAUSES,
  E1000E_QUEUE_STRIDE,
  E1000E_RFCTL,
  E1000E_RFCTL_EXSTEN,
  E1000E_RX_QUEUE_BASE,
  E1000E_TX_QUEUE_BASE,
} from "./registers.ts";

const ALL_CAUSES = 0xffff_ffff;
/** The receive buffer size RCTL.BSIZE = 00b selects (the shared code programs it). */
const RCTL_BUFFER_SIZE = 2048;
/** The vector every 82574 receive cause goes to. */
const RX_VECTOR = 0;

/** Extended descriptors (RFCTL.EXSTEN), checksum offload off. */
function configureRx(regs: Mmio, queues: number, bufferSize: number): void {
  if (queues !== 1 || bufferSize !== RCTL_BUFFER_SIZE) {
    throw new VfioError({
      operation: "e1000e receive setup",
      message: `${queues} queues of ${bufferSize}-byte buffers asked for; the driver uses one ` +
        `queue of ${RCTL_BUFFER_SIZE}-byte buffers on the 82574`,
    });
  }
  regs.write32(E1000E_RFCTL, regs.read32(E1000E_RFCTL) | E1000E_RFCTL_EXSTEN);
  regs.write32(E1000_RXCSUM, 0);
}

/** Receive queue 0 on MSI-X vector 0 (IVAR), ICR.RXQ0 auto-cleared on each message (EIAC). */
const MSIX: E1000IrqScheme = {
  kind: "msix",
  vectors: () => 1,
  vectorOf: () => RX_VECTOR,
  setup(regs: Mmio): void {
    regs.write32(E1000E_IMC, ALL_CAUSES);
    regs.write32(E1000_CTRL_EXT, regs.read32(E1000_CTRL_EXT) | E1000E_CTRL_EXT_PBA_CLR);
    regs.write32(E1000E_IVAR, (E1000E_IVAR_VALID | RX_VECTOR) << E1000E_IVAR_RXQ0_SHIFT);
    regs.write32(E1000E_EIAC, E1000E_ICR_RXQ0);
    regs.write32(E1000E_ICR, ALL_CAUSES);
  },
  queueBits: () => E1000E_ICR_RXQ0,
  maskSet: E1000E_IMS,
  maskClear: E1000E_IMC,
  causeClear: E1000E_ICR,
};

/** Without MSI-X: the receive timer, overrun and threshold causes on the MSI vector. */
const MSI: E1000IrqScheme = {
  kind: "msi",
  vectors: () => 1,
  vectorOf: () => RX_VECTOR,
  setup(regs: Mmio): void {
    regs.write32(E1000E_IMC, ALL_CAUSES);
    regs.write32(E1000E_ICR, ALL_CAUSES);
  },
  queueBits: () => E1000E_MSI_RX_CAUSES,
  maskSet: E1000E_IMS,
  maskClear: E1000E_IMC,
  causeClear: E1000E_ICR,
};

/** The 82574L. */
export const E1000E_MODEL: E1000Model = {
  name: "e1000e",
  chip: "82574L",
  deviceId: E1000E_DEVICE_ID,
  interrupts: {
    kind: "msi",
    causeSet: E1000E_ICS,
    causeRead: E1000E_ICR,
    causeWriteClears: false,
    maskSet: E1000E_IMS,
    maskClear: [E1000E_IMC],
    cause: E1000E_ICR_TXDW,
  },
  queues: {
    rxBase: E1000E_RX_QUEUE_BASE,
    txBase: E1000E_TX_QUEUE_BASE,
    stride: E1000E_QUEUE_STRIDE,
    max: 1,
  },
  queueEnable: 0,
  configureRx,
  txCmd: 0,
  txPaylenShift: undefined,
  irqSchemes: [MSIX, MSI],
};
