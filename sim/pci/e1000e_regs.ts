/**
 * Registers, bits and descriptor formats of the Intel 82574L (e1000e) that the 82576 does not
 * share, from the 82574 GbE Controller Family Datasheet (§10.2 registers, §7.1.4–7.1.5 legacy
 * and extended receive descriptors, §7.2.10 transmit descriptors, §7.4 interrupts and §10.2.4.9
 * IVAR), and the register map of the simulated part as data — every register QEMU 10's e1000e
 * implements that a driver can reach, with read/write behaviour and power-on value (checked
 * against the dump of QEMU's BAR 0 in tests/sim/goldens/qemu_e1000_bar0_reset.json).
 *
 * @module
 */

import {
  E1000_ITR,
  E1000_RA,
  E1000_RA_LEGACY,
  E1000_VFTA,
  E1000_VFTA_LEGACY,
  E1000_VFTA_WORDS,
} from "./e1000_regs.ts";
import type { RegisterAlias, RegisterSpec } from "./e1000_regfile.ts";
import { commonRegisters } from "./e1000_common_regs.ts";

/** Receive and transmit queues of the 82574. */
export const E1000E_QUEUES = 2;
/** MSI-X vectors (table size 5). */
export const E1000E_MSIX_VECTORS = 5;

// ---- Interrupts (§10.2.4) ----
/** Extended Interrupt Auto Clear. */
export const E1000E_EIAC = 0x00dc;
/** Interrupt Vector Allocation (§10.2.4.9). */
export const E1000E_IVAR = 0x00e4;
/** Extended Interrupt Throttle n (0–4) at 0xE8 + 4n. */
export const E1000E_EITR = 0x00e8;
/** ICR: Transmit descriptor low threshold. */
export const ICR_TXD_LOW = 1 << 15;
/** ICR: Small receive packet detected. */
export const ICR_SRPD = 1 << 16;
/** ICR: Receive ACK frame. */
export const ICR_ACK = 1 << 17;
/** ICR: Manageability event. */
export const ICR_MNG = 1 << 18;
/** ICR: RX queue 0 / 1, TX queue 0 / 1 (MSI-X). */
export const ICR_RXQ0 = 1 << 20;
/** ICR: RX queue 1. */
export const ICR_RXQ1 = 1 << 21;
/** ICR: TX queue 0. */
export const ICR_TXQ0 = 1 << 22;
/** ICR: TX queue 1. */
export const ICR_TXQ1 = 1 << 23;
/** ICR: Other (MSI-X: one of the "other" causes is set). */
export const ICR_OTHER = 1 << 24;
/** The causes ICR.OTHER stands for. */
export const ICR_OTHER_CAUSES = (1 << 2) | (1 << 6) | (1 << 9) | ICR_SRPD | ICR_ACK | ICR_MNG;
/** IMS bits that exist. */
export const E1000E_IMS_VALID = 0x01f7_82d7;
/** IMS bits that name an MSI-X cause (queues and other). */
export const E1000E_IMS_EXTENDED = ICR_RXQ0 | ICR_RXQ1 | ICR_TXQ0 | ICR_TXQ1 | ICR_OTHER;
/** IVAR: 4-bit fields RXQ0, RXQ1, TXQ0, TXQ1, OTHER from bit 0; bit 3 of a field: valid. */
export const IVAR_FIELD_BITS = 4;
/** IVAR field: valid. */
export const IVAR_FIELD_VALID = 0x8;
/** IVAR field: vector. */
export const IVAR_FIELD_VECTOR = 0x7;
/** IVAR: write back every transmit descriptor (bit 31). */
export const IVAR_TX_INT_EVERY_WB = 1 << 31;
/** CTRL_EXT: Interrupt Acknowledge Auto-mask Enable. */
export const CTRL_EXT_IAME = 1 << 27;
/** CTRL_EXT: Extended Interrupt Auto Mask Enable. */
export const CTRL_EXT_EIAME = 1 << 24;
/** CTRL_EXT: PBA support — an IMS write clears the MSI-X pending bits of its causes. */
export const CTRL_EXT_PBA_SUPPORT = 1 << 31;
/** ITR/EITR: interval bits. */
export const ITR_INTERVAL_MASK = 0xffff;

// ---- Queues ----
/** RX queue 0 block (RDBAL0…); queue 1 at + 0x100. */
export const E1000E_RX_QUEUE = 0x2800;
/** TX queue 0 block (TDBAL…); queue 1 at + 0x100. */
export const E1000E_TX_QUEUE = 0x3800;
/** Bytes between queue blocks. */
export const E1000E_QUEUE_STRIDE = 0x100;
/** Offset of the tail register in a queue block. */
export const QUEUE_TAIL = 0x18;
/** Receive Descriptor Control (0x2828): QEMU writes both queues' copies. */
export const E1000E_RXDCTL = 0x2828;
/** Transmit Arbitration Count 0/1 (0x3840, 0x3940). */
export const E1000E_TARC0 = 0x3840;
/** TARC: queue enable. */
export const TARC_ENABLE = 1 << 10;
/** TARC bits a read returns (QEMU: 10:0 and 30:27). */
export const TARC_READ_MASK = 0x7800_07ff;
/** EEPROM Write (82574 §10.2.2.5). */
export const E1000E_EEWR = 0x102c;
/** Packet Split Receive Control. */
export const E1000E_PSRCTL = 0x2170;
/** Receive Small Packet Detect. */
export const E1000E_RSRPD = 0x2c00;

/** RFCTL: extended receive descriptors (EXSTEN). */
export const RFCTL_EXSTEN = 1 << 15;
/** RFCTL: ACK interrupt disable. */
export const RFCTL_ACK_DIS = 1 << 12;
/** RCTL: flexible buffer size (bits 30:27, KiB). */
export const RCTL_FLXBUF_SHIFT = 27;
/** RCTL: flexible buffer field mask (after the shift). */
export const RCTL_FLXBUF_MASK = 0xf;

// Extended receive descriptor packet types (status bits 19:16).
/** Packet type field shift. */
export const RXD_PKT_TYPE_SHIFT = 16;
/** Not IP. */
export const RXD_PKT_MAC = 0;
/** IPv4 without TCP/UDP; IPv4 with TCP or UDP. */
export const RXD_PKT_IP4 = 1;
/** IPv4 + TCP/UDP. */
export const RXD_PKT_IP4_XDP = 2;
/** IPv6 without TCP/UDP. */
export const RXD_PKT_IP6 = 5;
/** IPv6 + TCP/UDP. */
export const RXD_PKT_IP6_XDP = 6;

// Transmit descriptors (§7.2.10).
/** Dword 2: extended data descriptor (DTYP = 0001b) when DEXT is set too. */
export const TXD_DTYP_D = 1 << 20;
/** Dword 2: TCP segmentation enable (data descriptor). */
export const TXD_CMD_TSE = 1 << 26;
/** Dword 2: interrupt delay enable. */
export const TXD_CMD_IDE = 1 << 31;
/** Dword 3 (data descriptor): POPTS.IXSM, POPTS.TXSM. */
export const TXD_POPTS_IXSM = 1 << 8;
/** POPTS.TXSM. */
export const TXD_POPTS_TXSM = 1 << 9;
/** Dword 3: VLAN tag (special) shift. */
export const TXD_SPECIAL_SHIFT = 16;

// Other 82574 registers QEMU implements (kept so reads and writes behave as QEMU's).
/** Extended Configuration Control. */
const EXTCNF_CTRL = 0x0f00;
/** Extended Configuration Size. */
const EXTCNF_SIZE = 0x0f08;
/** PHY OEM bits. */
const POEMB = 0x0f10;
/** Packet Buffer Allocation: receive KB in bits 15:0, transmit KB in 31:16. */
export const E1000E_PBA = 0x1000;
/** PBA: receive allocation in KB. */
export const PBA_RXA_MASK = 0xffff;
/** Packet Buffer Size. */
const PBS = 0x1008;
/** Flash timer, software control/data/count, opcode, lock. */
const FLASHT = 0x1028;
const FLSWCTL = 0x1030;
const FLSWDATA = 0x1034;
const FLSWCNT = 0x1038;
const FLOP = 0x103c;
const FLOL = 0x1050;
/** Management Control. */
const MANC = 0x5820;
/** Function Active and Power State. */
const FACTPS = 0x5b30;
/** Time-sync receive configuration (EtherType and UDP port of PTP). */
const RXCFGL = 0xb634;
const RXUDP = 0xb638;
/** Receive interrupt delay timer, absolute delay, ACK delay. */
const RDTR = 0x2820;
const RADV = 0x282c;
const RAID = 0x2c08;
/** Receive data FIFO head/tail/saved head/saved tail/packet count (stride 8). */
const RDFH = 0x2410;
/** Transmit interrupt delay, absolute delay, adaptive IFS throttle. */
const TIDV = 0x3820;
const TADV = 0x382c;
const AIT = 0x0458;
/** Transmit data FIFO head/tail/saved head/saved tail (stride 8), packet count. */
const TDFH = 0x3410;
const TDFPC = 0x3430;
/** Statistics only the 82574 has: sequence errors, carrier extension errors, TSO failures. */
const SEQEC = 0x4038;
const CEXTERR = 0x403c;
const TSCTFC = 0x40fc;
/** The 82542-era locations QEMU's e1000e still answers. */
const RDTR_LEGACY = 0x0108;
const RD_LEGACY = 0x0110;
const RDH_LEGACY = 0x0120;
const RDT_LEGACY = 0x0128;
const TD_LEGACY = 0x0420;
const TDH_LEGACY = 0x0430;
const TDT_LEGACY = 0x0438;
const TIDV_LEGACY = 0x0440;
const RDFH_LEGACY = 0x8000;
const TDFH_LEGACY = 0x8010;
/** Stride of the FIFO pointer registers. */
const FIFO_REG_STRIDE = 8;
/** Queue register offsets inside a queue block. */
const QUEUE_BAH = 0x04;
const QUEUE_LEN = 0x08;
const QUEUE_HEAD = 0x10;
const QUEUE_DCTL = 0x28;
const TX_QUEUE_TARC = 0x40;

const CTRL_INIT = 0x0014_0241; // FD | SLU | SPEED_1000 | SWDPIN0 | ADVD3WUC
const STATUS_INIT = 0x0000_0202; // LU | ASDV 1000
const VET_INIT = 0x8100;
const EECD_INIT = 0x0000_0300; // auto-read done, NVM present
const EERD_INIT = 0x2; // DONE
const GCR_INIT = 0x0680_0200;
const LEDCTL_INIT = 0x0006_8302;
const TIPG_INIT = (0x6 << 20) | (0x8 << 10) | 0x8;
const PBA_INIT = 0x0014_0014; // 20 KB receive, 20 KB transmit
const PBS_INIT = 0x28;
const POEMB_INIT = 0x30d;
const FLASHT_INIT = 0x2;
const FLSWCTL_INIT = 0xc000_0000;
const RXCFGL_INIT = 0x88f7; // PTP EtherType
const RXUDP_INIT = 0x319; // PTP event port 319 (as QEMU stores it)
const PSRCTL_INIT = (4 << 16) | (4 << 8) | 2;
const TARC_INIT = 0x3 | TARC_ENABLE;
const MANC_INIT = 1 << 28;
const FACTPS_INIT = 0x2000_0004;
const TX_FIFO_INIT = 0x600;
const RXDCTL_INIT = 1 << 16;
/** Descriptor base-low bits kept (16-byte aligned) and ring-length bits (128-byte units). */
const DBAL_MASK = 0xffff_fff0;
const DLEN_MASK = 0x000f_ff80;
const U16 = 0xffff;
const U12 = 0xfff;
const U13 = 0x1fff;
const U6 = 0x3f;

/** Register specs of one queue pair. */
function queueSpecs(n: number): RegisterSpec[] {
  const rx = E1000E_RX_QUEUE + E1000E_QUEUE_STRIDE * n;
  const tx = E1000E_TX_QUEUE + E1000E_QUEUE_STRIDE * n;
  return [
    { at: rx, read: "plain", write: "plain", mask: DBAL_MASK },
    { at: rx + QUEUE_BAH, read: "plain", write: "plain" },
    { at: rx + QUEUE_LEN, read: "plain", write: "plain", mask: DLEN_MASK },
    { at: rx + QUEUE_HEAD, read: "plain", write: "plain", mask: U16 },
    { at: rx + QUEUE_TAIL, read: "plain", write: "special", mask: U16 },
    { at: rx + QUEUE_DCTL, read: "plain", write: n === 0 ? "special" : "plain", init: RXDCTL_INIT },
    { at: tx, read: "plain", write: "plain", mask: DBAL_MASK },
    { at: tx + QUEUE_BAH, read: "plain", write: "plain" },
    { at: tx + QUEUE_LEN, read: "plain", write: "plain", mask: DLEN_MASK },
    { at: tx + QUEUE_HEAD, read: "plain", write: "plain", mask: U16 },
    { at: tx + QUEUE_TAIL, read: "plain", write: "special", mask: U16 },
    { at: tx + QUEUE_DCTL, read: "plain", write: "plain" },
    { at: tx + TX_QUEUE_TARC, read: "special", write: "plain", init: TARC_INIT },
  ];
}

/** Every register of the simulated e1000e. */
export const E1000E_REGISTERS: readonly RegisterSpec[] = [
  ...commonRegisters({
    ctrl: CTRL_INIT,
    status: STATUS_INIT,
    eecd: EECD_INIT,
    eerd: EERD_INIT,
    vet: VET_INIT,
    vetMask: U16,
    ledctl: LEDCTL_INIT,
    gcr: GCR_INIT,
    swsm: 1,
    tctl: 0,
    tipg: TIPG_INIT,
    flaKeepsOnSoftReset: true,
    imcReadsIms: false,
    tctlStartsTx: true,
  }),
  { at: EXTCNF_CTRL, read: "plain", write: "plain", init: 1 << 3 },
  { at: EXTCNF_SIZE, read: "plain", write: "plain" },
  { at: POEMB, read: "plain", write: "plain", init: POEMB_INIT },
  { at: E1000E_PBA, read: "plain", write: "plain", init: PBA_INIT, keepOnSoftReset: true },
  { at: PBS, read: "plain", write: "plain", mask: U6, init: PBS_INIT, keepOnSoftReset: true },
  { at: FLASHT, read: "plain", write: "plain", mask: U16, init: FLASHT_INIT },
  { at: E1000E_EEWR, read: "plain", write: "special", init: EERD_INIT },
  { at: FLSWCTL, read: "plain", write: "plain", init: FLSWCTL_INIT },
  { at: FLSWDATA, read: "plain", write: "plain" },
  { at: FLSWCNT, read: "plain", write: "plain" },
  { at: FLOP, read: "plain", write: "plain" },
  { at: FLOL, read: "plain", write: "plain", init: 1 },
  { at: MANC, read: "plain", write: "plain", init: MANC_INIT },
  { at: FACTPS, read: "plain", write: "plain", init: FACTPS_INIT },
  { at: RXCFGL, read: "plain", write: "plain", init: RXCFGL_INIT },
  { at: RXUDP, read: "plain", write: "plain", init: RXUDP_INIT },
  // Interrupts.
  { at: E1000_ITR, read: "special", write: "special" },
  { at: E1000E_EIAC, read: "plain", write: "plain" },
  { at: E1000E_IVAR, read: "plain", write: "plain" },
  { at: E1000E_EITR, count: E1000E_MSIX_VECTORS, read: "special", write: "special" },
  // Receive.
  { at: RDTR, read: "plain", write: "plain", mask: U16 },
  { at: RADV, read: "plain", write: "plain", mask: U16 },
  { at: E1000E_RSRPD, read: "plain", write: "plain", mask: U12 },
  { at: RAID, read: "plain", write: "plain", mask: U16 },
  { at: E1000E_PSRCTL, read: "plain", write: "plain", init: PSRCTL_INIT },
  { at: RDFH, count: 5, stride: FIFO_REG_STRIDE, read: "plain", write: "plain", mask: U13 },
  // Transmit.
  { at: AIT, read: "plain", write: "plain", mask: U16 },
  { at: TIDV, read: "none", write: "plain", mask: U16 }, // QEMU does not read it back
  { at: TADV, read: "plain", write: "plain", mask: U16 },
  {
    at: TDFH,
    count: 4,
    stride: FIFO_REG_STRIDE,
    read: "plain",
    write: "plain",
    mask: U13,
    init: TX_FIFO_INIT,
  },
  { at: TDFPC, read: "plain", write: "plain", mask: U13 },
  ...Array.from({ length: E1000E_QUEUES }, (_, n) => queueSpecs(n)).flat(),
  // Statistics only the 82574 has.
  { at: SEQEC, read: "plain", write: "none" },
  { at: CEXTERR, read: "plain", write: "none" },
  { at: TSCTFC, read: "plain", write: "none" },
];

/** The 82542-era register locations QEMU's e1000e still answers. */
export const E1000E_ALIASES: readonly RegisterAlias[] = [
  { at: E1000_RA_LEGACY, target: E1000_RA, count: 32 },
  { at: E1000_VFTA_LEGACY, target: E1000_VFTA, count: E1000_VFTA_WORDS },
  { at: RDTR_LEGACY, target: RDTR },
  { at: RD_LEGACY, target: E1000E_RX_QUEUE, count: 3 }, // RDBAL0, RDBAH0, RDLEN0
  { at: RDH_LEGACY, target: E1000E_RX_QUEUE + QUEUE_HEAD },
  { at: RDT_LEGACY, target: E1000E_RX_QUEUE + QUEUE_TAIL },
  { at: TD_LEGACY, target: E1000E_TX_QUEUE, count: 3 }, // TDBAL, TDBAH, TDLEN
  { at: TDH_LEGACY, target: E1000E_TX_QUEUE + QUEUE_HEAD },
  { at: TDT_LEGACY, target: E1000E_TX_QUEUE + QUEUE_TAIL },
  { at: TIDV_LEGACY, target: TIDV },
  { at: RDFH_LEGACY, target: RDFH, count: 2, stride: FIFO_REG_STRIDE }, // RDFH, RDFT
  { at: TDFH_LEGACY, target: TDFH, count: 2, stride: FIFO_REG_STRIDE }, // TDFH, TDFT
];
