/**
 * Registers and descriptor bits of the Intel 82576 (QEMU's `igb`, 8086:10c9) that its sibling
 * the 82574 does not share, from the 82576EB GbE Controller Datasheet: interrupt registers
 * (§8.8), receive registers (§8.10: SRRCTL, RXDCTL, MRQC, RETA, RSSRK), transmit registers
 * (§8.12: TXDCTL), the advanced transmit data descriptor (§7.2.2.3) and RSS (§7.1.1). The shared
 * ones are in drivers/e1000/registers.ts.
 *
 * @module
 */

/** PCI device id of the 82576 (copper). */
export const IGB_DEVICE_ID = 0x10c9;

// Queue register blocks (§8.10, §8.12): queue n's registers at base + n × stride.
/** Receive queue 0's block (RDBAL0 … RXDCTL0). */
export const IGB_RX_QUEUE_BASE = 0x0c000;
/** Transmit queue 0's block (TDBAL0 … TXDCTL0). */
export const IGB_TX_QUEUE_BASE = 0x0e000;
/** Distance between queue blocks. */
export const IGB_QUEUE_STRIDE = 0x40;
/** Queue pairs the driver spreads receive traffic over with RSS (RETA entries name 0..7). */
export const IGB_MAX_RSS_QUEUES = 8;

/** Split and Replication Receive Control, relative to the receive queue block (§8.10). */
export const IGB_SRRCTL = 0x0c;
/** SRRCTL.BSIZEPACKET (bits 6:0): receive buffer size in 1 KiB units. */
export const IGB_SRRCTL_BSIZEPKT_SHIFT = 10;
/** SRRCTL.DESCTYPE (bits 27:25) = 001b: advanced descriptors, one buffer. */
export const IGB_SRRCTL_DESCTYPE_ADV_ONEBUF = 1 << 25;
/** RXDCTL/TXDCTL.ENABLE (bit 25): the queue is enabled (reads back 1 once it is). */
export const IGB_QUEUE_ENABLE = 1 << 25;

// Interrupts (§7.3, §8.8).
/** General Purpose Interrupt Enable. */
export const IGB_GPIE = 0x01514;
/** GPIE.NSICR (bit 0): clear ICR on read without conditions. */
export const IGB_GPIE_NSICR = 1 << 0;
/** GPIE.Multiple_MSIX (bit 4): EICR bits name MSI-X vectors. */
export const IGB_GPIE_MSIX_MODE = 1 << 4;
/** GPIE.PBA_support (bit 31): MSI-X pending bits work. */
export const IGB_GPIE_PBA = 1 << 31;
/** Extended Interrupt Cause Set. */
export const IGB_EICS = 0x01520;
/** Extended Interrupt Mask Set/Read. */
export const IGB_EIMS = 0x01524;
/** Extended Interrupt Mask Clear. */
export const IGB_EIMC = 0x01528;
/** Extended Interrupt Auto Clear: EICR bits cleared when their MSI-X message is sent. */
export const IGB_EIAC = 0x0152c;
/** Extended Interrupt Cause Read; writing 1s clears. */
export const IGB_EICR = 0x01580;
/**
 * Legacy Interrupt Mask Clear (masks the ICR causes): at the e1000 offset 0x00D8, as Linux's
 * e1000 register map and QEMU have it (nothing answers at 0x150C).
 */
export const IGB_IMC = 0x000d8;
/**
 * Interrupt Vector Allocation, 8 registers: IVAR[n] routes queue n (bytes 0 receive, 1 transmit)
 * and queue n + 8 (bytes 2 and 3).
 */
export const IGB_IVAR0 = 0x01700;
/** IVAR entries per register pair of queues: queues n and n + 8 share IVAR[n]. */
export const IGB_IVAR_QUEUES = 8;
/** Bits per IVAR entry. */
export const IGB_IVAR_ENTRY_BITS = 8;
/** IVAR entry: the vector is valid (bit 7). */
export const IGB_IVAR_VALID = 0x80;

// RSS (§7.1.1.2, §8.10).
/** Receive Checksum Control: PCSD (bit 13) puts the RSS hash into the descriptor. */
export const IGB_RXCSUM_PCSD = 1 << 13;
/** Multiple Receive Queues Command. */
export const IGB_MRQC = 0x05818;
/** MRQC.Multiple_Receive_Queues_Enable (bits 2:0) = 010b: RSS. */
export const IGB_MRQC_ENABLE_RSS = 0x2;
/** MRQC: hash TCP over IPv4. */
export const IGB_MRQC_RSS_TCP_IPV4 = 1 << 16;
/** MRQC: hash IPv4 addresses. */
export const IGB_MRQC_RSS_IPV4 = 1 << 17;
/** MRQC: hash UDP over IPv4. */
export const IGB_MRQC_RSS_UDP_IPV4 = 1 << 22;
/** Redirection Table: 32 registers of four 8-bit queue numbers (128 entries). */
export const IGB_RETA = 0x05c00;
/** RETA entries. */
export const IGB_RETA_ENTRIES = 128;
/** RSS Random Key: 10 registers (40 bytes). */
export const IGB_RSSRK = 0x05c80;
/** Registers of the RSS key. */
export const IGB_RSSRK_REGISTERS = 10;

// Advanced transmit data descriptor (§7.2.2.3).
/** DTYP (bits 23:20) = 0011b: advanced data descriptor. */
export const IGB_ADVTXD_DTYP_DATA = 0x3 << 20;
/** PAYLEN (bits 31:14 of word 3): bytes of the frame. */
export const IGB_ADVTXD_PAYLEN_SHIFT = 14;
