/**
 * What the kernel reads from a function's config space to answer VFIO (PCI Local Bus 3.0 §6.7,
 * §6.8; PCIe 6.0 §7.7): the capability list, and the MSI and MSI-X capability fields.
 *
 * @module
 */

import type { PciConfig } from "../pci/device.ts";

/** Standard config-space offsets and bits. */
export const PCI = {
  COMMAND: 0x04,
  COMMAND_IO: 0x1,
  COMMAND_MEMORY: 0x2,
  COMMAND_MASTER: 0x4,
  STATUS: 0x06,
  STATUS_CAP_LIST: 0x10,
  CAPABILITY_LIST: 0x34,
  INTERRUPT_PIN: 0x3d,
  CAP_ID_MSI: 0x05,
  CAP_ID_EXP: 0x10,
  CAP_ID_MSIX: 0x11,
} as const;

/** MSI capability layout (PCI 3.0 §6.8.1). */
export const MSI = {
  FLAGS: 0x02,
  FLAGS_ENABLE: 0x0001,
  FLAGS_QMASK: 0x000e,
  FLAGS_QSIZE: 0x0070,
  FLAGS_QSIZE_SHIFT: 4,
  FLAGS_64BIT: 0x0080,
  FLAGS_MASKBIT: 0x0100,
  ADDRESS_LO: 0x04,
  ADDRESS_HI: 0x08,
  DATA_32: 0x08,
  DATA_64: 0x0c,
  MASK_32: 0x0c,
  MASK_64: 0x10,
} as const;

/** MSI-X capability layout (PCI 3.0 §6.8.2). */
export const MSIX = {
  FLAGS: 0x02,
  FLAGS_QSIZE: 0x07ff,
  FLAGS_MASKALL: 0x4000,
  FLAGS_ENABLE: 0x8000,
  TABLE: 0x04,
  TABLE_BIR: 0x7,
  TABLE_OFFSET: 0xffff_fff8,
  ENTRY_SIZE: 16,
  ENTRY_LOWER_ADDR: 0x0,
  ENTRY_UPPER_ADDR: 0x4,
  ENTRY_DATA: 0x8,
  ENTRY_VECTOR_CTRL: 0xc,
  ENTRY_CTRL_MASKBIT: 0x1,
} as const;

/** Capabilities walked before giving up on a looping list (`PCI_FIND_CAP_TTL`). */
const FIND_CAP_TTL = 48;
/** Lowest valid capability pointer (after the standard header). */
const CAP_MIN_POINTER = 0x40;

/** `pci_find_capability`: the offset of capability `id`, or 0. */
export function findCapability(config: PciConfig, id: number): number {
  if ((config.read(PCI.STATUS, 2) & PCI.STATUS_CAP_LIST) === 0) return 0;
  let pos = config.read(PCI.CAPABILITY_LIST, 1) & ~3;
  for (let ttl = FIND_CAP_TTL; ttl > 0 && pos >= CAP_MIN_POINTER; ttl--) {
    const header = config.read(pos, 2);
    if ((header & 0xff) === 0xff) break;
    if ((header & 0xff) === id) return pos;
    pos = (header >> 8) & ~3;
  }
  return 0;
}

/** `pci_is_pcie`. */
export function isPcie(config: PciConfig): boolean {
  return findCapability(config, PCI.CAP_ID_EXP) !== 0;
}

/** Where a function's MSI-X table lives. */
export interface MsixTable {
  /** Capability offset. */
  readonly cap: number;
  /** BAR holding the table. */
  readonly bar: number;
  /** Table offset in the BAR. */
  readonly offset: number;
  /** Entries. */
  readonly entries: number;
}

/** The MSI-X table of a function, or undefined without the capability. */
export function msixTable(config: PciConfig): MsixTable | undefined {
  const cap = findCapability(config, PCI.CAP_ID_MSIX);
  if (cap === 0) return undefined;
  const table = config.read(cap + MSIX.TABLE, 4) >>> 0;
  return {
    cap,
    bar: table & MSIX.TABLE_BIR,
    offset: (table & MSIX.TABLE_OFFSET) >>> 0,
    entries: (config.read(cap + MSIX.FLAGS, 2) & MSIX.FLAGS_QSIZE) + 1,
  };
}

/** Vectors the MSI capability can do (`1 << MMC`), 0 without it. */
export function msiVectorCount(config: PciConfig): number {
  const cap = findCapability(config, PCI.CAP_ID_MSI);
  if (cap === 0) return 0;
  return 1 << ((config.read(cap + MSI.FLAGS, 2) & MSI.FLAGS_QMASK) >> 1);
}
