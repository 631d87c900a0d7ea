/**
 * Registers, bits and descriptor formats of the Intel 82576 (igb) that the 82574 does not share,
 * from the 82576EB GbE Controller Datasheet (§8 register descriptions, §7.1.5 advanced receive
 * descriptors, §7.2.2 transmit descriptors, §7.3 interrupts), and the register map of the
 * simulated part as data: every register QEMU 10's igb implements that a physical-function
 * driver can reach, with its read/write behaviour and power-on value (checked against a dump of
 * QEMU's BAR 0 in tests/sim/goldens/qemu_e1000_bar0_reset.json).
 *
 * QEMU choices a driver can see, kept here: ICR/ICS/IMS/IMC/IAM answer at the e1000 offsets
 * (0xC0…0xE0), not at 0x1500; the queue registers live at 0xC000 + 0x40·n (RX) and 0xE000 +
 * 0x40·n (TX), with queues 0–3 also at the legacy 0x2800/0x3800 + 0x100·n.
 *
 * @module
 */

import {
  E1000_RA,
  E1000_RA_LEGACY,
  E1000_VFTA,
  E1000_VFTA_LEGACY,
  E1000_VFTA_WORDS,
  TCTL_PSP,
} from "./e1000_regs.ts";
import type { RegisterAlias, RegisterSpec } from "./e1000_regfile.ts";
import { commonRegisters } from "./e1000_common_regs.ts";

/** Receive and transmit queues of the 82576. */
export const IGB_QUEUES = 16;
/** MSI-X vectors QEMU gives the physical function (table size 10). */
export const IGB_MSIX_VECTORS = 10;
/** Interrupt causes in EICR with MSI-X: 25 (EITR0…EITR24). */
export const IGB_EICR_CAUSES = 25;

// ---- Extended interrupt registers (§8.8) ----
/** General Purpose Interrupt Enable. */
export const IGB_GPIE = 0x1514;
/** Extended Interrupt Cause Set (write only). */
export const IGB_EICS = 0x1520;
/** Extended Interrupt Mask Set/Read. */
export const IGB_EIMS = 0x1524;
/** Extended Interrupt Mask Clear. */
export const IGB_EIMC = 0x1528;
/** Extended Interrupt Auto Clear. */
export const IGB_EIAC = 0x152c;
/** Extended Interrupt Auto Mask. */
export const IGB_EIAM = 0x1530;
/** Extended Interrupt Cause Read (read clears, write 1 clears). */
export const IGB_EICR = 0x1580;
/** Extended Interrupt Throttle n (0–24) at 0x1680 + 4n. */
export const IGB_EITR = 0x1680;
/** Interrupt Vector Allocation 0–7 at 0x1700 + 4n. */
export const IGB_IVAR0 = 0x1700;
/** Interrupt Vector Allocation for the "other" causes. */
export const IGB_IVAR_MISC = 0x1740;
/** IVAR dwords. */
export const IGB_IVAR_WORDS = 8;

/** GPIE: Non Selective Interrupt Clear on Read. */
export const GPIE_NSICR = 1 << 0;
/** GPIE: MSI-X mode (EICR bits are vectors). */
export const GPIE_MSIX_MODE = 1 << 4;
/** GPIE: Extended Interrupt Auto Mask Enable. */
export const GPIE_EIAME = 1 << 30;
/** GPIE: PBA support. */
export const GPIE_PBA = 1 << 31;
/** IVAR entry: valid. */
export const IVAR_VALID = 0x80;
/** IVAR entry: vector number. */
export const IVAR_VECTOR_MASK = 0x1f;
/** IVAR_MISC: byte holding the vector of the "other" causes (byte 1). */
export const IVAR_MISC_OTHER_SHIFT = 8;
/** EICR: the "other causes" bit without MSI-X. */
export const EICR_OTHER = 1 << 31;
/** EICR bits that exist in MSI-X mode (one per vector). */
export const EICR_MSIX_MASK = 0x01ff_ffff;
/** EICR bits that exist without MSI-X (RX/TX queue bits, TCP timer, other). */
export const EICR_LEGACY_MASK = 0x4000_ffff;
/** ICR: Device Reset Asserted. */
export const ICR_DRSTA = 1 << 30;
/** IMS bits that exist. */
export const IGB_IMS_VALID = 0x77d4_fbfd;
/** EITR: counter-ignore bit (not stored). */
export const EITR_CNT_IGNR = 1 << 31;
/** EITR: interval bits stored. */
export const EITR_INTERVAL_MASK = 0x7ffe;

// ---- Queue registers (§8.10 receive, §8.12 transmit) ----
/** RX queue n block at 0xC000 + 0x40·n. */
export const IGB_RX_QUEUE = 0xc000;
/** TX queue n block at 0xE000 + 0x40·n. */
export const IGB_TX_QUEUE = 0xe000;
/** Bytes between queue blocks. */
export const IGB_QUEUE_STRIDE = 0x40;
/** Legacy locations of queues 0–3: 0x2800 / 0x3800 + 0x100·n. */
export const IGB_RX_QUEUE_LEGACY = 0x2800;
/** Legacy TX block. */
export const IGB_TX_QUEUE_LEGACY = 0x3800;
/** Bytes between legacy queue blocks. */
export const IGB_LEGACY_STRIDE = 0x100;
/** Queues reachable at the legacy locations. */
export const IGB_LEGACY_QUEUES = 4;
/** Offsets inside a queue block. */
export const Q = {
  bal: 0x00,
  bah: 0x04,
  len: 0x08,
  srrctl: 0x0c,
  head: 0x10,
  dcaCtl: 0x14,
  tail: 0x18,
  dctl: 0x28,
  rqdpc: 0x30,
  tdwbal: 0x38,
  tdwbah: 0x3c,
} as const;

/** SRRCTL: packet buffer size in 1 KiB units (bits 6:0; 0 = use RCTL.BSIZE). */
export const SRRCTL_BSIZEPACKET_MASK = 0x7f;
/** SRRCTL: 1 KiB units. */
export const SRRCTL_BSIZEPACKET_SHIFT = 10;
/** SRRCTL: minimum-threshold field (bits 24:20), in 16-descriptor units. */
export const SRRCTL_RDMTS_SHIFT = 20;
/** SRRCTL: RDMTS mask (after the shift). */
export const SRRCTL_RDMTS_MASK = 0x1f;
/** SRRCTL: descriptor type (bits 27:25); QEMU writes advanced one-buffer descriptors always. */
export const SRRCTL_DESCTYPE_MASK = 7 << 25;
/** SRRCTL: advanced, one buffer. */
export const SRRCTL_DESCTYPE_ADV_ONEBUF = 1 << 25;
/** RXDCTL / TXDCTL: queue enable. */
export const DCTL_ENABLE = 1 << 25;
/** TDWBAL bit 0: head write-back enable. */
export const TDWBAL_ENABLE = 1 << 0;
/** TDWBAL: address bits (dword aligned). */
export const TDWBAL_ADDR_MASK = ~3;

// ---- Other igb registers ----
/** RX Long Packet Maximum Length. */
export const IGB_RLPML = 0x5004;
/** Second bank of receive addresses: RAL/RAH 16–23. */
export const IGB_RA2 = 0x54e0;
/** RX / TX packet buffer sizes (KB). */
export const IGB_RXPBS = 0x2404;
/** TX packet buffer size. */
export const IGB_TXPBS = 0x3404;
/** Transmit Control Extended. */
export const IGB_TCTL_EXT = 0x0404;
/** DMA TX Control. */
export const IGB_DTXCTL = 0x3590;
/** VMDq control, per-pool offload and enable registers (kept for reads; VMDq not modelled). */
const IGB_VT_CTL = 0x581c;
const IGB_VMOLR = 0x5ad0;
const IGB_RPLOLR = 0x5af0;
const IGB_VFRE = 0x0c8c;
const IGB_VFTE = 0x0c90;
const IGB_MBVFIMR = 0x0c84;
const IGB_P2VMAILBOX = 0x0c00;
const IGB_V2PMAILBOX = 0x0c40;
const IGB_HTCBDPC = 0x4124;
/** PF mailbox registers of the 8 VFs; VF reset indication at power-on. */
const IGB_VFS = 8;
const V2PMAILBOX_RSTI = 0x40;
/** One bit per VF: VFRE/VFTE/MBVFIMR power-on value. */
const ALL_VFS = (1 << IGB_VFS) - 1;
/** VMOLR power-on value: RLPML 0x2600 and CRC strip. */
const VMOLR_INIT = 0x8000_2600;

// Advanced transmit descriptors (§7.2.2.2–3).
/** cmd_type_len: DTYP field (bits 23:20). */
export const ADVTXD_DTYP_MASK = 0xf << 20;
/** DTYP: context descriptor. */
export const ADVTXD_DTYP_CTXT = 0x2 << 20;
/** DTYP: data descriptor. */
export const ADVTXD_DTYP_DATA = 0x3 << 20;
/** cmd_type_len: TCP segmentation enable. */
export const ADVTXD_DCMD_TSE = 1 << 31;
/** olinfo_status: context index (bit 4). */
export const ADVTXD_IDX_SHIFT = 4;
/** olinfo_status POPTS: insert IP checksum. */
export const ADVTXD_POPTS_IXSM = 1 << 8;
/** olinfo_status POPTS: insert TCP/UDP checksum. */
export const ADVTXD_POPTS_TXSM = 1 << 9;
/** Context vlan_macip_lens: VLAN tag (bits 31:16). */
export const ADVTXD_VLAN_SHIFT = 16;

// Advanced receive descriptor write-back (§7.1.5.2): pkt_info packet-type bits (QEMU 10).
/** pkt_info: IPv4. */
export const ADVRXD_PKT_IP4 = 1 << 4;
/** pkt_info: IPv6. */
export const ADVRXD_PKT_IP6 = 1 << 6;
/** pkt_info: TCP. */
export const ADVRXD_PKT_TCP = 1 << 8;
/** pkt_info: UDP. */
export const ADVRXD_PKT_UDP = 1 << 9;

/** CTRL, STATUS, EECD power-on values of QEMU's igb. */
const CTRL_INIT = 0x0010_0209; // FD | LRST | SPEED_1000 | ADVD3WUC
const STATUS_INIT = 0x8000_0400; // PHYRA | bit 31 (link down until autonegotiation)
const EECD_INIT = 0x0000_1110; // FWE disabled, NVM present, size field 2
const GCR_INIT = 0x0685_0200;
const LEDCTL_INIT = 0x0706_8302;
const TCTL_INIT = (0xa << 28) | (1 << 26) | (0x40 << 12) | (0xf << 4) | TCTL_PSP;
const TCTL_EXT_INIT = (0x42 << 10) | 0x40;
const TIPG_INIT = (0x06 << 20) | (0x04 << 10) | 0x08;
const DTXCTL_INIT = 0x44;
const RLPML_INIT = 0x2600;
const RXPBS_INIT = 0x40;
const TXPBS_INIT = 0x28;
const VET_INIT = 0x8100_8100;
/** DCA TX control power-on value: descriptor, write-back and data relaxed ordering. */
const TXCTL_INIT = 0x2a00;
/** RX/TX descriptor control power-on values (queue 0 enabled; WTHRESH 1 for RX). */
const RXDCTL_INIT = 1 << 16;
/** DMA base-low masks (128-byte… QEMU keeps bits 31:5). */
const DBAL_MASK = 0xffff_ffe0;
/** Ring length bits (bits 19:4). */
const DLEN_MASK = 0x000f_fff0;
const U16_MASK = 0xffff;

/** Register specs of one queue pair. */
function queueSpecs(n: number): RegisterSpec[] {
  const rx = IGB_RX_QUEUE + IGB_QUEUE_STRIDE * n;
  const tx = IGB_TX_QUEUE + IGB_QUEUE_STRIDE * n;
  return [
    { at: rx + Q.bal, read: "plain", write: "plain", mask: DBAL_MASK },
    { at: rx + Q.bah, read: "plain", write: "plain" },
    { at: rx + Q.len, read: "plain", write: "plain", mask: DLEN_MASK },
    { at: rx + Q.srrctl, read: "plain", write: "plain" },
    { at: rx + Q.head, read: "plain", write: "plain", mask: U16_MASK },
    { at: rx + Q.dcaCtl, read: "plain", write: "plain" },
    { at: rx + Q.tail, read: "plain", write: "special", mask: U16_MASK },
    {
      at: rx + Q.dctl,
      read: "plain",
      write: "plain",
      init: RXDCTL_INIT | (n === 0 ? DCTL_ENABLE : 0),
    },
    { at: rx + Q.rqdpc, read: "clear", write: "none" },
    { at: tx + Q.bal, read: "plain", write: "plain", mask: DBAL_MASK },
    { at: tx + Q.bah, read: "plain", write: "plain" },
    { at: tx + Q.len, read: "plain", write: "plain", mask: DLEN_MASK },
    { at: tx + Q.head, read: "plain", write: "plain", mask: U16_MASK },
    { at: tx + Q.dcaCtl, read: "plain", write: "plain", init: TXCTL_INIT },
    { at: tx + Q.tail, read: "plain", write: "special", mask: U16_MASK },
    { at: tx + Q.dctl, read: "plain", write: "plain", init: n === 0 ? DCTL_ENABLE : 0 },
    { at: tx + Q.tdwbal, read: "plain", write: "plain" },
    { at: tx + Q.tdwbah, read: "plain", write: "plain" },
  ];
}

/** Every register of the simulated igb. */
export const IGB_REGISTERS: readonly RegisterSpec[] = [
  ...commonRegisters({
    ctrl: CTRL_INIT,
    status: STATUS_INIT,
    eecd: EECD_INIT,
    eerd: 0,
    vet: VET_INIT,
    vetMask: 0xffff_ffff,
    ledctl: LEDCTL_INIT,
    gcr: GCR_INIT,
    swsm: 0,
    tctl: TCTL_INIT,
    tipg: TIPG_INIT,
    flaKeepsOnSoftReset: false,
    imcReadsIms: true,
    tctlStartsTx: false,
  }),
  // Extended interrupts (§8.8).
  { at: IGB_GPIE, read: "plain", write: "plain" },
  { at: IGB_EICS, read: "none", write: "special" },
  { at: IGB_EIMS, read: "plain", write: "special" },
  { at: IGB_EIMC, read: "none", write: "special" },
  { at: IGB_EIAC, read: "plain", write: "special" },
  { at: IGB_EIAM, read: "plain", write: "special" },
  { at: IGB_EICR, read: "clear", write: "special" },
  {
    at: IGB_EITR,
    count: IGB_EICR_CAUSES,
    read: "special",
    write: "special",
    keepOnSoftReset: true,
  },
  { at: IGB_IVAR0, count: IGB_IVAR_WORDS, read: "plain", write: "plain" },
  { at: IGB_IVAR_MISC, read: "plain", write: "plain" },
  // Receive (§8.10).
  { at: IGB_RLPML, read: "plain", write: "plain", init: RLPML_INIT },
  { at: IGB_RA2, count: 16, read: "plain", write: "plain" },
  { at: IGB_RXPBS, read: "plain", write: "plain", init: RXPBS_INIT, keepOnSoftReset: true },
  // Transmit (§8.12).
  { at: IGB_TCTL_EXT, read: "plain", write: "plain", init: TCTL_EXT_INIT },
  { at: IGB_TXPBS, read: "plain", write: "plain", init: TXPBS_INIT, keepOnSoftReset: true },
  { at: IGB_DTXCTL, read: "plain", write: "plain", init: DTXCTL_INIT },
  ...Array.from({ length: IGB_QUEUES }, (_, n) => queueSpecs(n)).flat(),
  // Virtualisation registers a PF driver may read (VMDq/SR-IOV are not modelled).
  { at: IGB_VT_CTL, read: "plain", write: "plain" },
  { at: IGB_VMOLR, count: IGB_VFS, read: "plain", write: "plain", init: VMOLR_INIT },
  { at: IGB_RPLOLR, read: "plain", write: "plain", init: 1 << 31 },
  { at: IGB_VFRE, read: "plain", write: "plain", init: ALL_VFS },
  { at: IGB_VFTE, read: "plain", write: "plain", init: ALL_VFS },
  { at: IGB_MBVFIMR, read: "plain", write: "plain", init: ALL_VFS },
  { at: IGB_P2VMAILBOX, count: IGB_VFS, read: "plain", write: "none" },
  { at: IGB_V2PMAILBOX, count: IGB_VFS, read: "plain", write: "none", init: V2PMAILBOX_RSTI },
  // Statistics only the 82576 has.
  { at: IGB_HTCBDPC, read: "clear", write: "none" },
];

/** Legacy locations: queues 0–3 at 0x2800/0x3800 + 0x100·n, RA and VFTA's old places. */
export const IGB_ALIASES: readonly RegisterAlias[] = [
  ...Array.from({ length: IGB_LEGACY_QUEUES }, (_, n): RegisterAlias[] => [
    {
      at: IGB_RX_QUEUE_LEGACY + IGB_LEGACY_STRIDE * n,
      target: IGB_RX_QUEUE + IGB_QUEUE_STRIDE * n,
      count: IGB_QUEUE_STRIDE / 4,
    },
    {
      at: IGB_TX_QUEUE_LEGACY + IGB_LEGACY_STRIDE * n,
      target: IGB_TX_QUEUE + IGB_QUEUE_STRIDE * n,
      count: IGB_QUEUE_STRIDE / 4,
    },
  ]).flat(),
  { at: E1000_RA_LEGACY, target: E1000_RA, count: 32 },
  { at: E1000_VFTA_LEGACY, target: E1000_VFTA, count: E1000_VFTA_WORDS },
];
