/**
 * The 82576 (QEMU's `igb`) as a row of the e1000-family table: queue blocks at 0xC000/0xE000,
 * queues enabled through RXDCTL/TXDCTL, advanced one-buffer receive descriptors selected per
 * queue in SRRCTL, RSS over up to eight queue pairs (MRQC, RETA, RSSRK), advanced transmit data
 * descriptors, and one MSI-X vector per queue in GPIE Multiple-MSIX mode (82576 datasheet §7.1,
 * §7.2, §7.3; registers in ./registers.ts).
 *
 * @module
 */

import type { Mmio } from "../../ffi/kernel.ts";
import type { E1000IrqScheme, E1000Model } from "../e1000/model.ts";
import { E1000_RXCSUM, TXD_CMD_DEXT } from "../e1000/registers.ts";
import {
  IGB_ADVTXD_DTYP_DATA,
  IGB_ADVTXD_PAYLEN_SHIFT,
  IGB_DEVICE_ID,
  IGB_EIAC,
  IGB_EICR,
  IGB_EICS,
  IGB_EIMC,
  IGB_EIMS,
  IGB_GPIE,
  IGB_GPIE_MSIX_MODE,
  IGB_GPIE_NSICR,
  IGB_GPIE_PBA,
  IGB_IMC,
  IGB_IVAR0,
  IGB_IVAR_ENTRY_BITS,
  IGB_IVAR_QUEUES,
  IGB_IVAR_VALID,
  IGB_MAX_RSS_QUEUES,
  IGB_MRQC,
  IGB_MRQC_ENABLE_RSS,
  IGB_MRQC_RSS_IPV4,
  IGB_MRQC_RSS_TCP_IPV4,
  IGB_MRQC_RSS_UDP_IPV4,
  IGB_QUEUE_ENABLE,
  IGB_QUEUE_STRIDE,
  IGB_RETA,
  IGB_RETA_ENTRIES,
  IGB_RSSRK,
  IGB_RSSRK_REGISTERS,
  IGB_RX_QUEUE_BASE,
  IGB_RXCSUM_PCSD,
  IGB_SRRCTL,
  IGB_SRRCTL_BSIZEPKT_SHIFT,
  IGB_SRRCTL_DESCTYPE_ADV_ONEBUF,
  IGB_TX_QUEUE_BASE,
} from "./registers.ts";

/**
 * The RSS hash key: the 40-byte Toeplitz key of Microsoft's RSS specification (the one its
 * published hash test vectors use), so a hash can be checked by hand.
 */
const RSS_KEY: readonly number[] = (
  "6d5a56da255b0ec24167253d43a38fb0d0ca2bcbae7b30b477cb2da38030f20c6a42b73bbeac01fa"
).match(/../g)!.map((h) => parseInt(h, 16));
/** Bytes packed into one 32-bit register (RSSRK, RETA). */
const BYTES_PER_REGISTER = 4;
const BITS_PER_BYTE = 8;
const ALL_VECTORS = 0xffff_ffff;

/** A little-endian 32-bit register value from four bytes. */
function packBytes(b: (i: number) => number): number {
  let v = 0;
  for (let i = 0; i < BYTES_PER_REGISTER; i++) v |= b(i) << (i * BITS_PER_BYTE);
  return v >>> 0;
}

/** Advanced one-buffer descriptors per queue; RSS over `queues` when there are several. */
function configureRx(regs: Mmio, queues: number, bufferSize: number): void {
  for (let q = 0; q < queues; q++) {
    regs.write32(
      IGB_RX_QUEUE_BASE + q * IGB_QUEUE_STRIDE + IGB_SRRCTL,
      IGB_SRRCTL_DESCTYPE_ADV_ONEBUF | (bufferSize >>> IGB_SRRCTL_BSIZEPKT_SHIFT),
    );
  }
  if (queues === 1) {
    regs.write32(E1000_RXCSUM, 0);
    regs.write32(IGB_MRQC, 0);
    return;
  }
  // RSS needs PCSD (the hash replaces the fragment checksum in the write-back).
  regs.write32(E1000_RXCSUM, IGB_RXCSUM_PCSD);
  for (let r = 0; r < IGB_RSSRK_REGISTERS; r++) {
    regs.write32(
      IGB_RSSRK + r * BYTES_PER_REGISTER,
      packBytes((i) => RSS_KEY[r * BYTES_PER_REGISTER + i]),
    );
  }
  for (let r = 0; r < IGB_RETA_ENTRIES / BYTES_PER_REGISTER; r++) {
    regs.write32(
      IGB_RETA + r * BYTES_PER_REGISTER,
      packBytes((i) => (r * BYTES_PER_REGISTER + i) % queues),
    );
  }
  regs.write32(
    IGB_MRQC,
    IGB_MRQC_ENABLE_RSS | IGB_MRQC_RSS_IPV4 | IGB_MRQC_RSS_TCP_IPV4 | IGB_MRQC_RSS_UDP_IPV4,
  );
}

/** One MSI-X vector per receive queue (vector q for queue q), EICR auto-cleared on each message. */
const MSIX: E1000IrqScheme = {
  kind: "msix",
  vectors: (queues) => queues,
  vectorOf: (queue) => queue,
  setup(regs: Mmio, queues: number): void {
    regs.write32(IGB_EIMC, ALL_VECTORS);
    regs.write32(IGB_GPIE, IGB_GPIE_MSIX_MODE | IGB_GPIE_PBA | IGB_GPIE_NSICR);
    const ivar = new Array<number>(IGB_IVAR_QUEUES).fill(0);
    for (let q = 0; q < queues; q++) {
      // IVAR[q mod 8]: byte 0 receive queue q, byte 2 receive queue q + 8.
      const entry = Math.floor(q / IGB_IVAR_QUEUES) * 2;
      ivar[q % IGB_IVAR_QUEUES] |= (IGB_IVAR_VALID | q) << (entry * IGB_IVAR_ENTRY_BITS);
    }
    ivar.forEach((v, i) => regs.write32(IGB_IVAR0 + i * BYTES_PER_REGISTER, v >>> 0));
    regs.write32(IGB_EIAC, (1 << queues) - 1);
    regs.write32(IGB_EICR, ALL_VECTORS);
  },
  queueBits: (queue) => 1 << queue,
  maskSet: IGB_EIMS,
  maskClear: IGB_EIMC,
  causeClear: IGB_EICR,
};

/** The 82576. */
export const IGB_MODEL: E1000Model = {
  name: "igb",
  chip: "82576",
  deviceId: IGB_DEVICE_ID,
  interrupts: {
    kind: "msix",
    setup: { reg: IGB_GPIE, value: IGB_GPIE_MSIX_MODE },
    causeSet: IGB_EICS,
    causeRead: IGB_EICR,
    causeWriteClears: true,
    maskSet: IGB_EIMS,
    maskClear: [IGB_EIMC, IGB_IMC],
    // EICR bit 0 is MSI-X vector 0 in Multiple_MSIX mode.
    cause: 1 << 0,
  },
  queues: {
    rxBase: IGB_RX_QUEUE_BASE,
    txBase: IGB_TX_QUEUE_BASE,
    stride: IGB_QUEUE_STRIDE,
    max: IGB_MAX_RSS_QUEUES,
  },
  queueEnable: IGB_QUEUE_ENABLE,
  configureRx,
  txCmd: IGB_ADVTXD_DTYP_DATA | TXD_CMD_DEXT,
  txPaylenShift: IGB_ADVTXD_PAYLEN_SHIFT,
  irqSchemes: [MSIX],
};
