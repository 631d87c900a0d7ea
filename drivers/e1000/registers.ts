/**
 * Registers and descriptor formats that Intel's 82574 (QEMU's `e1000e`, 8086:10d3) and 82576
 * (QEMU's `igb`, 8086:10c9) gigabit controllers share: same offsets, same bits. Sources: the
 * 82574 GbE Controller Family Datasheet (register descriptions §10.2, receive §7.1, transmit §7.2,
 * initialization §4.6) and the 82576EB GbE Controller Datasheet (general registers §8.2, EEPROM
 * §8.4, receive §8.10, transmit §8.12, statistics §8.19; receive §7.1, transmit §7.2,
 * initialization §4.5). What differs between the two lives in drivers/e1000e/registers.ts and
 * drivers/igb/registers.ts, and the per-model table in models.ts. The host test
 * (tests/host/e1000_test.ts) and the VM bench check them against QEMU's devices.
 *
 * @module
 */

/** Intel's PCI vendor id. */
export const INTEL_VENDOR_ID = 0x8086;
/** BAR 0: the memory-mapped register space (128 KiB on both controllers). */
export const E1000_REGS_BAR = 0;

// General registers (82576 §8.2, 82574 §10.2).
/** Device Control. */
export const E1000_CTRL = 0x00000;
/** CTRL.GIO_MASTER_DISABLE (bit 2): stop issuing new bus-master requests (before a reset). */
export const E1000_CTRL_GIO_MASTER_DISABLE = 1 << 2;
/** CTRL.SLU (bit 6): set link up (enables the MAC/PHY link). */
export const E1000_CTRL_SLU = 1 << 6;
/** CTRL.RST (bit 26): software reset of the MAC; self-clearing when the reset is done. */
export const E1000_CTRL_RST = 1 << 26;

/** Device Status, read-only. */
export const E1000_STATUS = 0x00008;
/** STATUS.FD (bit 0): full duplex. */
export const E1000_STATUS_FD = 1 << 0;
/** STATUS.LU (bit 1): link up. */
export const E1000_STATUS_LU = 1 << 1;
/** STATUS.GIO_MASTER_ENABLE (bit 19): bus-master requests may still be pending. */
export const E1000_STATUS_GIO_MASTER_ENABLE = 1 << 19;

/** Extended Device Control. */
export const E1000_CTRL_EXT = 0x00018;

/** MDI Control: access to the PHY's registers (82576 §8.2.4, 82574 §10.2). */
export const E1000_MDIC = 0x00020;
/** MDIC.DATA: bits 15:0. */
export const E1000_MDIC_DATA_MASK = 0xffff;
/** MDIC.REGADD starts at bit 16 (PHY register number). */
export const E1000_MDIC_REG_SHIFT = 16;
/** MDIC.PHYADD starts at bit 21. */
export const E1000_MDIC_PHY_SHIFT = 21;
/** The internal PHY's MDIO address. */
export const E1000_PHY_ADDRESS = 1;
/** MDIC.OP = 01b: write. */
export const E1000_MDIC_OP_WRITE = 1 << 26;
/** MDIC.OP = 10b: read. */
export const E1000_MDIC_OP_READ = 1 << 27;
/** MDIC.R (bit 28): the access is done. */
export const E1000_MDIC_READY = 1 << 28;
/** MDIC.E (bit 30): the PHY did not answer. */
export const E1000_MDIC_ERROR = 1 << 30;

/** PHY register 0, Control (IEEE 802.3 clause 22). */
export const PHY_CONTROL = 0;
/** PHY Control: restart auto-negotiation (self-clearing). */
export const PHY_CONTROL_RESTART_AN = 1 << 9;
/** PHY Control: auto-negotiation enable. */
export const PHY_CONTROL_AN_ENABLE = 1 << 12;

// EEPROM / NVM (82576 §8.4, 82574 §10.2).
/** EEPROM Read: one 16-bit word per request. */
export const E1000_EERD = 0x00014;
/** EERD.START (bit 0): write 1 with the word address to start a read. */
export const E1000_EERD_START = 1 << 0;
/** EERD.DONE (bit 1): set by the device when DATA holds the word. */
export const E1000_EERD_DONE = 1 << 1;
/** EERD.ADDR starts at bit 2. */
export const E1000_EERD_ADDR_SHIFT = 2;
/** EERD.DATA is bits 31:16. */
export const E1000_EERD_DATA_SHIFT = 16;
/** NVM words 0..2: the Ethernet address, low byte first. */
export const NVM_MAC_WORD = 0x00;
/** Number of NVM words the checksum covers: 0x00..0x3f. */
export const NVM_CHECKSUM_WORDS = 0x40;
/** The 16-bit sum of NVM words 0x00..0x3f, checksum word included, on a valid image. */
export const NVM_SUM = 0xbaba;

// Receive (82576 §8.10, 82574 §10.2).
/** Receive Control. */
export const E1000_RCTL = 0x00100;
/** RCTL.EN (bit 1): receiver enable. */
export const E1000_RCTL_EN = 1 << 1;
/** RCTL.UPE (bit 3): unicast promiscuous. */
export const E1000_RCTL_UPE = 1 << 3;
/** RCTL.MPE (bit 4): multicast promiscuous. */
export const E1000_RCTL_MPE = 1 << 4;
/** RCTL.RDMTS = 00b (bits 9:8): minimum-threshold interrupt at half the ring free. */
export const E1000_RCTL_RDMTS_HALF = 0 << 8;
/** RCTL.MO (bits 13:12) = 00b: the multicast table is indexed by address bits 47:36. */
export const E1000_RCTL_MO_47_36 = 0 << 12;
/** RCTL.BAM (bit 15): accept broadcast. */
export const E1000_RCTL_BAM = 1 << 15;
/** RCTL.BSIZE (bits 17:16) = 00b with BSEX = 0: 2048-byte receive buffers. */
export const E1000_RCTL_BSIZE_2048 = 0 << 16;
/** RCTL.SECRC (bit 26): strip the Ethernet CRC from received frames. */
export const E1000_RCTL_SECRC = 1 << 26;
/** Receive Checksum Control. */
export const E1000_RXCSUM = 0x05000;
/** Multicast Table Array: 128 registers of 32 bits, one bit per 12-bit address hash. */
export const E1000_MTA = 0x05200;
/** Entries (registers) of the multicast table. */
export const E1000_MTA_REGISTERS = 128;
/** Receive Address Low 0: MAC bytes 0..3, little endian. */
export const E1000_RAL0 = 0x05400;
/** Receive Address High 0: MAC bytes 4..5 in bits 15:0. */
export const E1000_RAH0 = 0x05404;
/** RAH.AV (bit 31): the address is valid (filtering uses it). */
export const E1000_RAH_AV = 1 << 31;
/** The multicast hash with MO = 00b: destination address bits 47:36 (bytes 4 and 5). */
export const MTA_HASH_SHIFT = 4;
/** The hash is 12 bits wide. */
export const MTA_HASH_MASK = 0xfff;

// Transmit (82576 §8.12, 82574 §10.2).
/** Transmit Control. */
export const E1000_TCTL = 0x00400;
/** TCTL.EN (bit 1): transmitter enable. */
export const E1000_TCTL_EN = 1 << 1;
/** TCTL.PSP (bit 3): pad short packets to 64 bytes. */
export const E1000_TCTL_PSP = 1 << 3;
/** TCTL.CT starts at bit 4: collision threshold (retries in half duplex). */
export const E1000_TCTL_CT_SHIFT = 4;
/** The collision threshold the datasheets recommend: 15 (0x0f). */
export const E1000_COLLISION_THRESHOLD = 0x0f;
/** TCTL.COLD starts at bit 12: collision distance. */
export const E1000_TCTL_COLD_SHIFT = 12;
/** The collision distance for full duplex: 64 byte times (0x3f). */
export const E1000_COLLISION_DISTANCE_FD = 0x3f;
/** TCTL.RTLC (bit 24): retransmit on late collision. */
export const E1000_TCTL_RTLC = 1 << 24;

// One descriptor queue's registers, relative to the queue's block (same layout on both models;
// the blocks' base and stride are per model).
/** Descriptor ring base address, low 32 bits (128-byte aligned). */
export const QUEUE_DBAL = 0x00;
/** Descriptor ring base address, high 32 bits. */
export const QUEUE_DBAH = 0x04;
/** Ring length in bytes (a multiple of 128). */
export const QUEUE_DLEN = 0x08;
/** Head: the next descriptor the device processes. */
export const QUEUE_DH = 0x10;
/** Tail: one past the last descriptor software handed to the device. */
export const QUEUE_DT = 0x18;
/** Receive/Transmit Descriptor Control (RXDCTL / TXDCTL). */
export const QUEUE_DCTL = 0x28;
/** Descriptor ring lengths must be multiples of 128 bytes: 8 descriptors. */
export const RING_ALIGN_DESCRIPTORS = 8;
/** Ring base addresses must be 128-byte aligned. */
export const RING_BASE_ALIGN = 128;
/** Head and tail are 16-bit: at most 65536 − 8 descriptors per ring. */
export const RING_MAX_DESCRIPTORS = 0x10000 - RING_ALIGN_DESCRIPTORS;

// Descriptors: 16 bytes, four little-endian 32-bit words.
/** Bytes per receive or transmit descriptor. */
export const DESC_SIZE = 16;
/** 32-bit words per descriptor. */
export const DESC_WORDS = DESC_SIZE / 4;

/**
 * Receive write-back, word 2 (82574 extended, §7.1; 82576 advanced, §7.1): the extended status in
 * bits 19:0, the extended errors in bits 31:20. Word 3: packet length in bits 15:0, VLAN tag
 * in 31:16. The read format is the buffer address in words 0-1 and zeros in words 2-3 (on the
 * 82576 that is the header-buffer address, whose bit 0 is where DD is written back).
 */
export const RX_WB_STATUS_WORD = 2;
/** Receive write-back word with the length. */
export const RX_WB_LENGTH_WORD = 3;
/** Status DD (bit 0): the device is done with the descriptor. */
export const RXD_STAT_DD = 1 << 0;
/** Status EOP (bit 1): last descriptor of a frame. */
export const RXD_STAT_EOP = 1 << 1;
/** Packet length mask in word 3. */
export const RXD_LENGTH_MASK = 0xffff;
/** Error CE (bit 24): CRC or alignment error. */
export const RXD_ERR_CE = 1 << 24;
/** Error SE (bit 25): symbol error. */
export const RXD_ERR_SE = 1 << 25;
/** Error SEQ (bit 26): sequence error. */
export const RXD_ERR_SEQ = 1 << 26;
/** Error CXE (bit 28): carrier extension error. */
export const RXD_ERR_CXE = 1 << 28;
/** Error RXE (bit 31): receive data error. */
export const RXD_ERR_RXE = 1 << 31;
/**
 * Errors that make a frame's data bad (the checksum-offload errors IPE/L4E are not among them:
 * the stack verifies checksums itself).
 */
export const RXD_FRAME_ERRORS = RXD_ERR_CE | RXD_ERR_SE | RXD_ERR_SEQ | RXD_ERR_CXE |
  RXD_ERR_RXE;

/**
 * Transmit descriptor, word 2: buffer length in bits 15:0, command in bits 31:24 (legacy on the
 * 82574, advanced data on the 82576; the same bit positions). Word 3 holds the status, DD in bit
 * 0, written back when RS is set.
 */
export const TX_CMD_WORD = 2;
/** Transmit word 3: status (and, on the 82576, PAYLEN). */
export const TX_STATUS_WORD = 3;
/** Buffer length mask of word 2. */
export const TXD_LENGTH_MASK = 0xffff;
/** Command EOP: last descriptor of the frame. */
export const TXD_CMD_EOP = 1 << 24;
/** Command IFCS: insert the Ethernet CRC. */
export const TXD_CMD_IFCS = 1 << 25;
/** Command RS: report status (write DD back). */
export const TXD_CMD_RS = 1 << 27;
/** Command DEXT: descriptor extension (advanced/extended format). */
export const TXD_CMD_DEXT = 1 << 29;
/** Status DD: the descriptor has been processed. */
export const TXD_STAT_DD = 1 << 0;

// Statistics (82576 §8.19, 82574 §10.2): all clear on read.
/** CRC Error Count. */
export const E1000_CRCERRS = 0x04000;
/** Missed Packets Count (no room in the receive FIFO). */
export const E1000_MPC = 0x04010;
/** Receive Length Error Count. */
export const E1000_RLEC = 0x04040;
/** Good Packets Received Count. */
export const E1000_GPRC = 0x04074;
/** Broadcast Packets Received Count. */
export const E1000_BPRC = 0x04078;
/** Multicast Packets Received Count. */
export const E1000_MPRC = 0x0407c;
/** Good Packets Transmitted Count. */
export const E1000_GPTC = 0x04080;
/** Good Octets Received Count, low 32 bits (read before the high half). */
export const E1000_GORCL = 0x04088;
/** Good Octets Received Count, high 32 bits (reading it clears both halves). */
export const E1000_GORCH = 0x0408c;
/** Good Octets Transmitted Count, low. */
export const E1000_GOTCL = 0x04090;
/** Good Octets Transmitted Count, high. */
export const E1000_GOTCH = 0x04094;
/** Receive No Buffers Count (the ring had no free descriptor). */
export const E1000_RNBC = 0x040a0;
/** Receive Undersize Count. */
export const E1000_RUC = 0x040a4;
/** Receive Oversize Count. */
export const E1000_ROC = 0x040ac;
/** Total Packets Received. */
export const E1000_TPR = 0x040d0;
/** Total Packets Transmitted. */
export const E1000_TPT = 0x040d4;
/** Multicast Packets Transmitted Count. */
export const E1000_MPTC = 0x040f0;
/** Broadcast Packets Transmitted Count. */
export const E1000_BPTC = 0x040f4;
