/**
 * Registers and bits the simulated Intel 82574L (e1000e) and 82576 (igb) share — the e1000
 * family's register map, read from the Intel 82574 GbE Controller Family Datasheet (chapter 10,
 * "Programming Interface", §10.2.x) and the 82576EB GbE Controller Datasheet (chapter 8,
 * "Programming Interface", §8.x). Both parts keep these at the same offsets; where a register or
 * bit exists in one part only it lives in igb_regs.ts or e1000e_regs.ts.
 *
 * Offsets are byte offsets into BAR 0 (memory, 128 KiB). Written independently of the drivers in
 * drivers/ (the real devices in the VM bench referee both).
 *
 * @module
 */

/** Size of the register BAR (BAR 0) of both parts: 128 KiB (82574 §10.1.1, 82576 §8.1). */
export const E1000_MMIO_SIZE = 0x2_0000;
/** 32-bit registers in the register BAR. */
export const E1000_REG_WORDS = E1000_MMIO_SIZE / 4;
/** Size of the flash BAR (BAR 1) QEMU gives both parts: 128 KiB, no registers behind it. */
export const E1000_FLASH_SIZE = 0x2_0000;
/** Size of the I/O BAR (BAR 2): IOADDR at 0, IODATA at 4 (82574 §10.1.2, 82576 §8.1.2). */
export const E1000_IO_SIZE = 32;
/** Size of the MSI-X BAR (BAR 3): table at 0, PBA at 0x2000. */
export const E1000_MSIX_BAR_SIZE = 0x4000;
/** Offset of the MSI-X pending-bit array in BAR 3. */
export const E1000_MSIX_PBA_OFFSET = 0x2000;
/** BAR numbers. */
export const E1000_BAR = { mmio: 0, flash: 1, io: 2, msix: 3 } as const;
/** I/O BAR registers: IOADDR selects a register, IODATA reads or writes it. */
export const E1000_IOADDR = 0x00;
/** I/O BAR data window. */
export const E1000_IODATA = 0x04;

// ---- General registers (82574 §10.2.2, 82576 §8.2) ----
/** Device Control. */
export const E1000_CTRL = 0x0000;
/** Alias of CTRL (QEMU keeps both). */
export const E1000_CTRL_DUP = 0x0004;
/** Device Status (read only). */
export const E1000_STATUS = 0x0008;
/** EEPROM/Flash Control (EEC). */
export const E1000_EECD = 0x0010;
/** EEPROM Read. */
export const E1000_EERD = 0x0014;
/** Extended Device Control. */
export const E1000_CTRL_EXT = 0x0018;
/** Flash Access. */
export const E1000_FLA = 0x001c;
/** MDI (PHY) Control. */
export const E1000_MDIC = 0x0020;
/** Flow Control Address Low / High, Type. */
export const E1000_FCAL = 0x0028;
/** Flow Control Address High. */
export const E1000_FCAH = 0x002c;
/** Flow Control Type. */
export const E1000_FCT = 0x0030;
/** VLAN EtherType. */
export const E1000_VET = 0x0038;
/** VET: the EtherType of an 802.1Q tag (bits 15:0; igb keeps the outer one in 31:16). */
export const VET_TPID_MASK = 0xffff;
/** Flow Control Transmit Timer Value. */
export const E1000_FCTTV = 0x0170;
/** LED Control. */
export const E1000_LEDCTL = 0x0e00;
/** Management EEPROM Control. */
export const E1000_EEMNGCTL = 0x1010;
/** PCIe Control (GCR). */
export const E1000_GCR = 0x5b00;
/** Software Semaphore. */
export const E1000_SWSM = 0x5b50;
/** Firmware Semaphore. */
export const E1000_FWSM = 0x5b54;
/** Software–firmware synchronisation. */
export const E1000_SW_FW_SYNC = 0x5b5c;
/** MSI-X PBA Clear: writing 1 clears a vector's pending bit. */
export const E1000_PBACLR = 0x5b68;

// CTRL bits.
/** CTRL: Full Duplex. */
export const CTRL_FD = 1 << 0;
/** CTRL: Link Reset. */
export const CTRL_LRST = 1 << 3;
/** CTRL: Set Link Up. */
export const CTRL_SLU = 1 << 6;
/** CTRL: Speed selection field (bits 9:8). */
export const CTRL_SPEED_MASK = 3 << 8;
/** CTRL: Speed 10 / 100 / 1000 values of that field. */
export const CTRL_SPEED_10 = 0;
/** CTRL: 100 Mb/s. */
export const CTRL_SPEED_100 = 1 << 8;
/** CTRL: 1000 Mb/s. */
export const CTRL_SPEED_1000 = 2 << 8;
/** CTRL: Force Speed. */
export const CTRL_FRCSPD = 1 << 11;
/** CTRL: Force Duplex. */
export const CTRL_FRCDPX = 1 << 12;
/** CTRL: GIO Master Disable. */
export const CTRL_GIO_MASTER_DISABLE = 1 << 2;
/** CTRL: SW-definable pin 0 data (82574). */
export const CTRL_SWDPIN0 = 1 << 18;
/** CTRL: Advertise D3cold wake-up (82576) / SW-definable pin 2 (82574). */
export const CTRL_ADVD3WUC = 1 << 20;
/** CTRL: Device Reset (self-clearing). */
export const CTRL_RST = 1 << 26;
/** CTRL: Receive / Transmit Flow Control Enable. */
export const CTRL_RFCE = 1 << 27;
/** CTRL: Transmit Flow Control Enable. */
export const CTRL_TFCE = 1 << 28;
/** CTRL: VLAN Mode Enable (strip/insert tags). */
export const CTRL_VME = 1 << 30;
/** CTRL: PHY Reset. */
export const CTRL_PHY_RST = 1 << 31;

// STATUS bits.
/** STATUS: Full Duplex. */
export const STATUS_FD = 1 << 0;
/** STATUS: Link Up. */
export const STATUS_LU = 1 << 1;
/** STATUS: Speed field (bits 7:6): 10, 100, 1000 Mb/s. */
export const STATUS_SPEED_10 = 0;
/** STATUS: 100 Mb/s. */
export const STATUS_SPEED_100 = 1 << 6;
/** STATUS: 1000 Mb/s. */
export const STATUS_SPEED_1000 = 2 << 6;
/** STATUS: Auto-Speed Detection Value 1000 (82574, bits 9:8). */
export const STATUS_ASDV_1000 = 2 << 8;
/** STATUS: PHY Reset Asserted (cleared by writing 0). */
export const STATUS_PHYRA = 1 << 10;
/** STATUS: GIO Master Enable. */
export const STATUS_GIO_MASTER_ENABLE = 1 << 19;

// EECD / EERD bits (82574 §10.2.2.3–4, 82576 §8.2.x).
/** EECD: NVM Present. */
export const EECD_PRES = 1 << 8;
/** EECD: NVM Auto Read Done. */
export const EECD_AUTO_RD = 1 << 9;
/** EECD: NVM size field (bits 14:11, 82576). */
export const EECD_SIZE_EX_MASK = 0xf << 11;
/** EECD: NVM size field shift. */
export const EECD_SIZE_EX_SHIFT = 11;
/** EECD: Flash Write Enable control, write disabled (bits 5:4 = 01b). */
export const EECD_FWE_DIS = 1 << 4;
/** EERD: Start Read. */
export const EERD_START = 1 << 0;
/** EERD: Read Done. */
export const EERD_DONE = 1 << 1;
/** EERD: word address field shift (bits 15:2). */
export const EERD_ADDR_SHIFT = 2;
/** EERD: word address field mask (after the shift). */
export const EERD_ADDR_MASK = 0x3fff;
/** EERD: read data field shift (bits 31:16). */
export const EERD_DATA_SHIFT = 16;

// CTRL_EXT bits.
/** CTRL_EXT: ASD Check (self-clearing). */
export const CTRL_EXT_ASDCHK = 1 << 12;
/** CTRL_EXT: EEPROM Reset (self-clearing). */
export const CTRL_EXT_EE_RST = 1 << 13;
/** CTRL_EXT: Speed Select Bypass. */
export const CTRL_EXT_SPD_BYPS = 1 << 15;

// MDIC (82574 §10.2.2.7, 82576 §8.2.x).
/** MDIC: data field (bits 15:0). */
export const MDIC_DATA_MASK = 0xffff;
/** MDIC: PHY register address (bits 20:16). */
export const MDIC_REG_SHIFT = 16;
/** MDIC: PHY register address mask (after the shift). */
export const MDIC_REG_MASK = 0x1f;
/** MDIC: PHY address (bits 25:21). */
export const MDIC_PHY_SHIFT = 21;
/** MDIC: PHY address mask (after the shift). */
export const MDIC_PHY_MASK = 0x1f;
/** MDIC: opcode write (bits 27:26 = 01b). */
export const MDIC_OP_WRITE = 1 << 26;
/** MDIC: opcode read (bits 27:26 = 10b). */
export const MDIC_OP_READ = 2 << 26;
/** MDIC: Ready. */
export const MDIC_READY = 1 << 28;
/** MDIC: Interrupt Enable (raise ICR.MDAC when done). */
export const MDIC_INT_EN = 1 << 29;
/** MDIC: Error. */
export const MDIC_ERROR = 1 << 30;
/** The one PHY address both parts answer on. */
export const MDIC_PHY_ADDRESS = 1;

// ---- Interrupt registers (82574 §10.2.4, 82576 §8.8; igb answers these at the e1000 offsets) ----
/** Interrupt Cause Read (read clears, see the models). */
export const E1000_ICR = 0x00c0;
/** Interrupt Throttling Rate. */
export const E1000_ITR = 0x00c4;
/** Interrupt Cause Set (write only; reads return ICR on the 82574 model). */
export const E1000_ICS = 0x00c8;
/** Interrupt Mask Set/Read. */
export const E1000_IMS = 0x00d0;
/** Interrupt Mask Clear. */
export const E1000_IMC = 0x00d8;
/** Interrupt Acknowledge Auto Mask. */
export const E1000_IAM = 0x00e0;

// ICR / ICS / IMS / IMC bits.
/** Transmit Descriptor Written Back. */
export const ICR_TXDW = 1 << 0;
/** Transmit Queue Empty. */
export const ICR_TXQE = 1 << 1;
/** Link Status Change. */
export const ICR_LSC = 1 << 2;
/** Receive Descriptor Minimum Threshold reached. */
export const ICR_RXDMT0 = 1 << 4;
/** Receiver Overrun (a frame was dropped). */
export const ICR_RXO = 1 << 6;
/** Receiver Timer Interrupt (a frame was written back). */
export const ICR_RXT0 = 1 << 7;
/** MDI access complete. */
export const ICR_MDAC = 1 << 9;
/** Interrupt asserted (set whenever another ICR bit is set). */
export const ICR_INT_ASSERTED = 1 << 31;

// ---- Receive registers (82574 §10.2.5, 82576 §8.9) ----
/** Receive Control. */
export const E1000_RCTL = 0x0100;
/** Receive Checksum Control. */
export const E1000_RXCSUM = 0x5000;
/** Receive Filter Control. */
export const E1000_RFCTL = 0x5008;
/** Multicast Table Array: 128 dwords. */
export const E1000_MTA = 0x5200;
/** Entries of the MTA. */
export const E1000_MTA_WORDS = 128;
/** Receive Address Low/High pairs: RAL(n) = 0x5400 + 8n, RAH(n) = 0x5404 + 8n. */
export const E1000_RA = 0x5400;
/** The 82542-era location of the receive addresses, still answered by QEMU's models. */
export const E1000_RA_LEGACY = 0x0040;
/** VLAN Filter Table Array: 128 dwords. */
export const E1000_VFTA = 0x5600;
/** Entries of the VFTA. */
export const E1000_VFTA_WORDS = 128;
/** The 82542-era location of the VFTA, still answered by QEMU's models. */
export const E1000_VFTA_LEGACY = 0x0600;
/** Multiple Receive Queues Command. */
export const E1000_MRQC = 0x5818;
/** Redirection Table: 32 dwords, 128 one-byte entries. */
export const E1000_RETA = 0x5c00;
/** Dwords of RETA. */
export const E1000_RETA_WORDS = 32;
/** RSS Random Key: 10 dwords, 40 bytes. */
export const E1000_RSSRK = 0x5c80;
/** Dwords of RSSRK. */
export const E1000_RSSRK_WORDS = 10;

// RCTL bits.
/** RCTL: Receiver Enable. */
export const RCTL_EN = 1 << 1;
/** RCTL: Store Bad Packets. */
export const RCTL_SBP = 1 << 2;
/** RCTL: Unicast Promiscuous Enable. */
export const RCTL_UPE = 1 << 3;
/** RCTL: Multicast Promiscuous Enable. */
export const RCTL_MPE = 1 << 4;
/** RCTL: Long Packet Enable. */
export const RCTL_LPE = 1 << 5;
/** RCTL: Loopback mode field (bits 7:6); 01b = MAC loopback. */
export const RCTL_LBM_MASK = 3 << 6;
/** RCTL: MAC loopback. */
export const RCTL_LBM_MAC = 1 << 6;
/** RCTL: Receive Descriptor Minimum Threshold Size field (bits 9:8). */
export const RCTL_RDMTS_SHIFT = 8;
/** RCTL: Descriptor type field (bits 11:10; 01b = packet split on the 82574). */
export const RCTL_DTYP_MASK = 3 << 10;
/** RCTL: Multicast Offset field (bits 13:12). */
export const RCTL_MO_SHIFT = 12;
/** RCTL: Broadcast Accept Mode. */
export const RCTL_BAM = 1 << 15;
/** RCTL: Buffer size field (bits 17:16). */
export const RCTL_BSIZE_SHIFT = 16;
/** RCTL: VLAN Filter Enable. */
export const RCTL_VFE = 1 << 18;
/** RCTL: Buffer Size Extension (× 16). */
export const RCTL_BSEX = 1 << 25;
/** RCTL: Strip Ethernet CRC. */
export const RCTL_SECRC = 1 << 26;

// RXCSUM bits.
/** RXCSUM: IP checksum offload. */
export const RXCSUM_IPOFLD = 1 << 8;
/** RXCSUM: TCP/UDP checksum offload. */
export const RXCSUM_TUOFLD = 1 << 9;
/** RXCSUM: Packet Checksum Disable (the descriptor carries the RSS hash instead). */
export const RXCSUM_PCSD = 1 << 13;

/** RAH: Address Valid. */
export const RAH_AV = 1 << 31;

// Legacy / extended / advanced receive status and error bits (82574 §7.1.4–7.1.5, 82576 §7.1.5).
/** Descriptor Done. */
export const RXD_STAT_DD = 1 << 0;
/** End Of Packet. */
export const RXD_STAT_EOP = 1 << 1;
/** Frame was VLAN tagged (tag stripped into the descriptor). */
export const RXD_STAT_VP = 1 << 3;
/** UDP checksum calculated. */
export const RXD_STAT_UDPCS = 1 << 4;
/** TCP/UDP checksum calculated. */
export const RXD_STAT_TCPCS = 1 << 5;
/** IPv4 header checksum calculated. */
export const RXD_STAT_IPCS = 1 << 6;
/** IP identification valid (extended descriptors). */
export const RXD_STAT_IPIDV = 1 << 9;
/** TCP/UDP checksum error (extended status/error dword). */
export const RXD_ERR_TCPE = 1 << 29;
/** IPv4 header checksum error (extended status/error dword). */
export const RXD_ERR_IPE = 1 << 30;

// ---- Transmit registers (82574 §10.2.6, 82576 §8.10) ----
/** Transmit Control. */
export const E1000_TCTL = 0x0400;
/** Transmit IPG. */
export const E1000_TIPG = 0x0410;
/** TCTL: Transmit Enable. */
export const TCTL_EN = 1 << 1;
/** TCTL: Pad Short Packets. */
export const TCTL_PSP = 1 << 3;

// Legacy transmit descriptor (both parts; 82574 §7.2.10.1, 82576 §7.2.2.1).
/** Descriptor dword 2: length bits 15:0. */
export const TXD_LENGTH_MASK = 0xffff;
/** CMD.EOP (dword 2 bit 24). */
export const TXD_CMD_EOP = 1 << 24;
/** CMD.IFCS. */
export const TXD_CMD_IFCS = 1 << 25;
/** CMD.RS: report status (write DD back). */
export const TXD_CMD_RS = 1 << 27;
/** CMD.DEXT: extended (context/data or advanced) descriptor. */
export const TXD_CMD_DEXT = 1 << 29;
/** CMD.VLE: insert a VLAN tag. */
export const TXD_CMD_VLE = 1 << 30;
/** STA.DD in dword 3. */
export const TXD_STAT_DD = 1 << 0;

// ---- Statistics (82574 §10.2.7, 82576 §8.19): 0x4000–0x4124 ----
/** CRC Error Count. */
export const E1000_CRCERRS = 0x4000;
/** Missed Packets Count (frames dropped for lack of room in the receive FIFO). */
export const E1000_MPC = 0x4010;
/** Packets received of 64 / 65–127 / 128–255 / 256–511 / 512–1023 / 1024–1522 bytes. */
export const E1000_PRC64 = 0x405c;
/** Good Packets Received Count. */
export const E1000_GPRC = 0x4074;
/** Broadcast Packets Received Count. */
export const E1000_BPRC = 0x4078;
/** Multicast Packets Received Count. */
export const E1000_MPRC = 0x407c;
/** Good Packets Transmitted Count. */
export const E1000_GPTC = 0x4080;
/** Good Octets Received Count (low, high). */
export const E1000_GORCL = 0x4088;
/** Good Octets Received Count high. */
export const E1000_GORCH = 0x408c;
/** Good Octets Transmitted Count (low, high). */
export const E1000_GOTCL = 0x4090;
/** Good Octets Transmitted Count high. */
export const E1000_GOTCH = 0x4094;
/** Receive No Buffers Count. */
export const E1000_RNBC = 0x40a0;
/** Receive Undersize Count. */
export const E1000_RUC = 0x40a4;
/** Receive Oversize Count. */
export const E1000_ROC = 0x40ac;
/** Total Octets Received (low, high). */
export const E1000_TORL = 0x40c0;
/** Total Octets Received high. */
export const E1000_TORH = 0x40c4;
/** Total Octets Transmitted (low, high). */
export const E1000_TOTL = 0x40c8;
/** Total Octets Transmitted high. */
export const E1000_TOTH = 0x40cc;
/** Total Packets Received. */
export const E1000_TPR = 0x40d0;
/** Total Packets Transmitted. */
export const E1000_TPT = 0x40d4;
/** Packets transmitted of 64 … 1522 bytes (six counters). */
export const E1000_PTC64 = 0x40d8;
/** Multicast Packets Transmitted Count. */
export const E1000_MPTC = 0x40f0;
/** Broadcast Packets Transmitted Count. */
export const E1000_BPTC = 0x40f4;
/** TCP Segmentation Context Transmitted Count. */
export const E1000_TSCTC = 0x40f8;
/** Interrupt Assertion Count. */
export const E1000_IAC = 0x4100;
