/**
 * Registers of Intel's e1000-family gigabit controllers that the e1000 controller code uses, by
 * the names and offsets of the datasheets' register summaries: the 82574 GbE Controller Family
 * Datasheet (QEMU's `e1000e`, 8086:10d3) and the 82576EB GbE Controller Datasheet (QEMU's `igb`,
 * 8086:10c9). The general registers (CTRL, STATUS, EERD, RAL/RAH) sit at the same offsets in
 * both; the interrupt registers differ, so each model names its own in {@link E1000_MODELS}. The
 * host test (tests/host/e1000_test.ts) checks every one of them against QEMU's devices.
 *
 * @module
 */

/** Intel's PCI vendor id. */
export const INTEL_VENDOR_ID = 0x8086;
/** BAR 0: the memory-mapped register space (128 KiB on both controllers). */
export const E1000_REGS_BAR = 0;

/** Device Control. */
export const E1000_CTRL = 0x00000;
/** CTRL.RST (bit 26): software reset of the MAC; self-clearing when the reset is done. */
export const E1000_CTRL_RST = 1 << 26;

/** Device Status, read-only. */
export const E1000_STATUS = 0x00008;
/** STATUS.FD (bit 0): full duplex. */
export const E1000_STATUS_FD = 1 << 0;
/** STATUS.LU (bit 1): link up. */
export const E1000_STATUS_LU = 1 << 1;

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

/** Receive Address Low 0: MAC bytes 0..3, little endian. */
export const E1000_RAL0 = 0x05400;
/** Receive Address High 0: MAC bytes 4..5 in bits 15:0. */
export const E1000_RAH0 = 0x05404;
/** RAH.AV (bit 31): the address is valid (filtering uses it). */
export const E1000_RAH_AV = 1 << 31;

/** NVM words 0..2: the Ethernet address, low byte first. */
export const NVM_MAC_WORD = 0x00;
/** Number of NVM words the checksum covers: 0x00..0x3f. */
export const NVM_CHECKSUM_WORDS = 0x40;
/** The 16-bit sum of NVM words 0x00..0x3f, checksum word included, on a valid image. */
export const NVM_SUM = 0xbaba;

/** 82574 legacy interrupt registers: cause read, cause set, mask set, mask clear. */
export const E1000E_ICR = 0x000c0;
/** Interrupt Cause Set: software raises causes, as the hardware would. */
export const E1000E_ICS = 0x000c8;
/** Interrupt Mask Set/Read. */
export const E1000E_IMS = 0x000d0;
/** Interrupt Mask Clear. */
export const E1000E_IMC = 0x000d8;
/** ICR/ICS/IMS bit 0, TXDW (transmit descriptor written back): the cause the self test raises. */
export const E1000E_ICR_TXDW = 1 << 0;

/** 82576 General Purpose Interrupt Enable. */
export const IGB_GPIE = 0x01514;
/** GPIE.Multiple_MSIX (bit 4): EICR bits name MSI-X vectors. */
export const IGB_GPIE_MSIX_MODE = 1 << 4;
/** 82576 Extended Interrupt Cause Set. */
export const IGB_EICS = 0x01520;
/** Extended Interrupt Mask Set/Read. */
export const IGB_EIMS = 0x01524;
/** Extended Interrupt Mask Clear. */
export const IGB_EIMC = 0x01528;
/** Extended Interrupt Cause Read; writing 1s clears. */
export const IGB_EICR = 0x01580;
/** Legacy Interrupt Mask Clear, masks the ICR causes. */
export const IGB_IMC = 0x0150c;

/** How a model raises a software interrupt and which vector type carries it. */
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
  /** Mask clear registers (all written with all-ones on close). */
  readonly maskClear: readonly number[];
  /** The cause bit the self test raises (routed to MSI/MSI-X vector 0). */
  readonly cause: number;
}

/** One controller model. */
export interface E1000Model {
  /** Name, as QEMU calls the device. */
  readonly name: "e1000e" | "igb";
  /** Controller. */
  readonly chip: string;
  /** PCI device id. */
  readonly deviceId: number;
  /** Interrupt registers. */
  readonly interrupts: E1000InterruptRegs;
}

/** The supported controllers, by PCI device id: the per-model differences as data. */
export const E1000_MODELS: readonly E1000Model[] = [
  {
    name: "e1000e",
    chip: "82574L",
    deviceId: 0x10d3,
    interrupts: {
      kind: "msi",
      causeSet: E1000E_ICS,
      causeRead: E1000E_ICR,
      causeWriteClears: false,
      maskSet: E1000E_IMS,
      maskClear: [E1000E_IMC],
      cause: E1000E_ICR_TXDW,
    },
  },
  {
    name: "igb",
    chip: "82576",
    deviceId: 0x10c9,
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
  },
];
