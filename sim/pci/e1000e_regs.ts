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
  E1000_CTRL,
  E1000_CTRL_DUP,
  E1000_CTRL_EXT,
  E1000_EECD,
  E1000_EEMNGCTL,
  E1000_EERD,
  E1000_FCAH,
  E1000_FCAL,
  E1000_FCT,
  E1000_FCTTV,
  E1000_FLA,
  E1000_FWSM,
  E1000_GCR,
  E1000_IAM,
  E1000_ICR,
  E1000_ICS,
  E1000_IMC,
  E1000_IMS,
  E1000_ITR,
  E1000_LEDCTL,
  E1000_MDIC,
  E1000_MRQC,
  E1000_MTA,
  E1000_MTA_WORDS,
  E1000_PBACLR,
  E1000_RA,
  E1000_RCTL,
  E1000_RETA,
  E1000_RETA_WORDS,
  E1000_RFCTL,
  E1000_RSSRK,
  E1000_RSSRK_WORDS,
  E1000_RXCSUM,
  E1000_STATUS,
  E1000_SW_FW_SYNC,
  E1000_SWSM,
  E1000_TCTL,
  E1000_TIPG,
  E1000_VET,
  E1000_VFTA,
  E1000_VFTA_WORDS,
  RXCSUM_IPOFLD,
  RXCSUM_TUOFLD,
} from "./e1000_regs.ts";
import type { RegisterAlias, RegisterSpec } from "./e1000_regfile.ts";
import { E1000_STAT_REGISTERS } from "./e1000_stats.ts";

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

const CTRL_INIT = 0x0014_0241; // FD | SLU | SPEED_1000 | SWDPIN0 | ADVD3WUC
const STATUS_INIT = 0x0000_0202; // LU | ASDV 1000
const EECD_INIT = 0x0000_0300; // auto-read done, NVM present
const EERD_INIT = 0x2; // DONE
const GCR_INIT = 0x0680_0200;
const LEDCTL_INIT = 0x0006_8302;
const TIPG_INIT = (0x6 << 20) | (0x8 << 10) | 0x8;
const PBA_INIT = 0x0014_0014; // 20 KB receive, 20 KB transmit
const PBS_INIT = 0x28;
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
    { at: rx + 0x04, read: "plain", write: "plain" },
    { at: rx + 0x08, read: "plain", write: "plain", mask: DLEN_MASK },
    { at: rx + 0x10, read: "plain", write: "plain", mask: U16 },
    { at: rx + QUEUE_TAIL, read: "plain", write: "special", mask: U16 },
    { at: rx + 0x28, read: "plain", write: n === 0 ? "special" : "plain", init: RXDCTL_INIT },
    { at: tx, read: "plain", write: "plain", mask: DBAL_MASK },
    { at: tx + 0x04, read: "plain", write: "plain" },
    { at: tx + 0x08, read: "plain", write: "plain", mask: DLEN_MASK },
    { at: tx + 0x10, read: "plain", write: "plain", mask: U16 },
    { at: tx + QUEUE_TAIL, read: "plain", write: "special", mask: U16 },
    { at: tx + 0x28, read: "plain", write: "plain" },
    { at: tx + 0x40, read: "special", write: "plain", init: TARC_INIT },
  ];
}

/** Every register of the simulated e1000e. */
export const E1000E_REGISTERS: readonly RegisterSpec[] = [
  { at: E1000_CTRL, read: "plain", write: "special", init: CTRL_INIT },
  { at: E1000_CTRL_DUP, read: "none", write: "special" },
  { at: E1000_STATUS, read: "special", write: "special", init: STATUS_INIT },
  { at: E1000_EECD, read: "plain", write: "special", init: EECD_INIT },
  { at: E1000_EERD, read: "plain", write: "special", init: EERD_INIT },
  { at: E1000_CTRL_EXT, read: "plain", write: "special" },
  { at: E1000_FLA, read: "plain", write: "plain", keepOnSoftReset: true },
  { at: E1000_MDIC, read: "plain", write: "special" },
  { at: E1000_FCAL, read: "plain", write: "plain" },
  { at: E1000_FCAH, read: "plain", write: "plain", mask: U16 },
  { at: E1000_FCT, read: "plain", write: "plain", mask: U16 },
  { at: E1000_VET, read: "plain", write: "plain", mask: U16, init: 0x8100 },
  { at: E1000_FCTTV, read: "plain", write: "plain", mask: U16 },
  { at: E1000_LEDCTL, read: "plain", write: "plain", init: LEDCTL_INIT },
  { at: 0x0f00, read: "plain", write: "plain", init: 1 << 3 }, // EXTCNF_CTRL
  { at: 0x0f08, read: "plain", write: "plain" }, // EXTCNF_SIZE
  { at: 0x0f10, read: "plain", write: "plain", init: 0x30d }, // POEMB
  { at: 0x1000, read: "plain", write: "plain", init: PBA_INIT, keepOnSoftReset: true }, // PBA
  { at: 0x1008, read: "plain", write: "plain", mask: U6, init: PBS_INIT, keepOnSoftReset: true },
  { at: E1000_EEMNGCTL, read: "plain", write: "plain", init: 1 << 31 },
  { at: 0x1028, read: "plain", write: "plain", mask: U16, init: 0x2 }, // FLASHT
  { at: E1000E_EEWR, read: "plain", write: "special", init: EERD_INIT },
  { at: 0x1030, read: "plain", write: "plain", init: 0xc000_0000 }, // FLSWCTL
  { at: 0x1034, read: "plain", write: "plain" }, // FLSWDATA
  { at: 0x1038, read: "plain", write: "plain" }, // FLSWCNT
  { at: 0x103c, read: "plain", write: "plain" }, // FLOP
  { at: 0x1050, read: "plain", write: "plain", init: 1 }, // FLOL
  { at: E1000_GCR, read: "plain", write: "special", init: GCR_INIT },
  { at: 0x5820, read: "plain", write: "plain", init: MANC_INIT }, // MANC
  { at: 0x5b30, read: "plain", write: "plain", init: FACTPS_INIT }, // FACTPS
  { at: E1000_SWSM, read: "special", write: "plain", init: 1 },
  { at: E1000_FWSM, read: "plain", write: "plain" },
  { at: E1000_SW_FW_SYNC, read: "plain", write: "plain" },
  { at: E1000_PBACLR, read: "plain", write: "special" },
  { at: 0xb634, read: "plain", write: "plain", init: 0x88f7 }, // RXCFGL
  { at: 0xb638, read: "plain", write: "plain", init: 0x319 }, // RXUDP
  // Interrupts.
  { at: E1000_ICR, read: "special", write: "special" },
  { at: E1000_ITR, read: "special", write: "special" },
  { at: E1000_ICS, read: "plain", write: "special" },
  { at: E1000_IMS, read: "plain", write: "special" },
  { at: E1000_IMC, read: "none", write: "special" },
  { at: E1000E_EIAC, read: "plain", write: "plain" },
  { at: E1000_IAM, read: "plain", write: "plain" },
  { at: E1000E_IVAR, read: "plain", write: "plain" },
  { at: E1000E_EITR, count: E1000E_MSIX_VECTORS, read: "special", write: "special" },
  // Receive.
  { at: E1000_RCTL, read: "plain", write: "special" },
  { at: 0x2820, read: "plain", write: "plain", mask: U16 }, // RDTR
  { at: 0x282c, read: "plain", write: "plain", mask: U16 }, // RADV
  { at: E1000E_RSRPD, read: "plain", write: "plain", mask: U12 },
  { at: 0x2c08, read: "plain", write: "plain", mask: U16 }, // RAID
  { at: E1000E_PSRCTL, read: "plain", write: "plain", init: PSRCTL_INIT },
  { at: 0x2410, count: 5, stride: 8, read: "plain", write: "plain", mask: U13 }, // RDFH…RDFPC
  { at: E1000_RXCSUM, read: "plain", write: "plain", init: RXCSUM_IPOFLD | RXCSUM_TUOFLD },
  { at: E1000_RFCTL, read: "plain", write: "plain" },
  { at: E1000_MTA, count: E1000_MTA_WORDS, read: "plain", write: "plain" },
  { at: E1000_RA, count: 32, read: "plain", write: "plain" },
  { at: E1000_VFTA, count: E1000_VFTA_WORDS, read: "plain", write: "plain" },
  { at: E1000_MRQC, read: "plain", write: "plain" },
  { at: E1000_RETA, count: E1000_RETA_WORDS, read: "plain", write: "plain" },
  { at: E1000_RSSRK, count: E1000_RSSRK_WORDS, read: "plain", write: "plain" },
  // Transmit.
  { at: E1000_TCTL, read: "plain", write: "special" },
  { at: E1000_TIPG, read: "plain", write: "plain", init: TIPG_INIT },
  { at: 0x0458, read: "plain", write: "plain", mask: U16 }, // AIT
  { at: 0x3820, read: "none", write: "plain", mask: U16 }, // TIDV (QEMU does not read it back)
  { at: 0x382c, read: "plain", write: "plain", mask: U16 }, // TADV
  { at: 0x3410, count: 4, stride: 8, read: "plain", write: "plain", mask: U13, init: TX_FIFO_INIT },
  { at: 0x3430, read: "plain", write: "plain", mask: U13 }, // TDFPC
  ...Array.from({ length: E1000E_QUEUES }, (_, n) => queueSpecs(n)).flat(),
  // Statistics.
  ...E1000_STAT_REGISTERS,
  { at: 0x4038, read: "plain", write: "none" }, // SEQEC
  { at: 0x403c, read: "plain", write: "none" }, // CEXTERR
  { at: 0x40fc, read: "plain", write: "none" }, // TSCTFC
];

/** The 82542-era register locations QEMU's e1000e still answers. */
export const E1000E_ALIASES: readonly RegisterAlias[] = [
  { at: 0x0040, target: E1000_RA, count: 32 },
  { at: 0x0600, target: E1000_VFTA, count: E1000_VFTA_WORDS },
  { at: 0x0108, target: 0x2820 }, // RDTR
  { at: 0x0110, target: E1000E_RX_QUEUE, count: 3 }, // RDBAL0, RDBAH0, RDLEN0
  { at: 0x0120, target: E1000E_RX_QUEUE + 0x10 }, // RDH0
  { at: 0x0128, target: E1000E_RX_QUEUE + QUEUE_TAIL }, // RDT0
  { at: 0x0420, target: E1000E_TX_QUEUE, count: 3 }, // TDBAL, TDBAH, TDLEN
  { at: 0x0430, target: E1000E_TX_QUEUE + 0x10 }, // TDH
  { at: 0x0438, target: E1000E_TX_QUEUE + QUEUE_TAIL }, // TDT
  { at: 0x0440, target: 0x3820 }, // TIDV
  { at: 0x8000, target: 0x2410, count: 2, stride: 8 }, // RDFH, RDFT
  { at: 0x8010, target: 0x3410, count: 2, stride: 8 }, // TDFH, TDFT
];
