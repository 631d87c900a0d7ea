/**
 * Reading a function's config space the way the kernel and device models need it — capability
 * walk, MSI and MSI-X state, bus master — and the interrupt rules a function obeys: MSI only when
 * enabled, unmasked and allowed to master the bus (a masked vector sets its pending bit), INTx
 * gated by the Interrupt Disable bit and reflected in Status.Interrupt, and INTx dropped when
 * MSI or MSI-X gets enabled (PCI 3.0 §6.8.3.3: the three are mutually exclusive).
 *
 * The readers take any {@link PciConfig}; the interrupt helpers need the device-side view
 * ({@link DeviceConfig}), which {@link PciConfigSpace} provides.
 *
 * @module
 */

import type { InterruptSink, PciConfig } from "./device.ts";
import {
  PCI_CAP_ID_MSI,
  PCI_CAP_ID_MSIX,
  PCI_CAP_LIST_ID,
  PCI_CAP_LIST_NEXT,
  PCI_CAPABILITY_LIST,
  PCI_COMMAND,
  PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_MASTER,
  PCI_INTERRUPT_PIN,
  PCI_MSI_ADDRESS_HI,
  PCI_MSI_ADDRESS_LO,
  PCI_MSI_DATA_32,
  PCI_MSI_DATA_64,
  PCI_MSI_FLAGS,
  PCI_MSI_FLAGS_64BIT,
  PCI_MSI_FLAGS_ENABLE,
  PCI_MSI_FLAGS_MASKBIT,
  PCI_MSI_FLAGS_QMASK,
  PCI_MSI_FLAGS_QSIZE,
  PCI_MSI_MASK_32,
  PCI_MSI_MASK_64,
  PCI_MSI_PENDING_32,
  PCI_MSI_PENDING_64,
  PCI_MSIX_FLAGS,
  PCI_MSIX_FLAGS_ENABLE,
  PCI_MSIX_FLAGS_MASKALL,
  PCI_MSIX_FLAGS_QSIZE,
  PCI_MSIX_PBA,
  PCI_MSIX_TABLE,
  PCI_MSIX_TABLE_BIR,
  PCI_MSIX_TABLE_OFFSET,
  PCI_STATUS,
  PCI_STATUS_CAP_LIST,
  PCI_STATUS_INTERRUPT,
  PCI_STD_HEADER_SIZEOF,
} from "./pci_regs.ts";

/** Most capabilities a walk visits (Linux `PCI_FIND_CAP_TTL`): a loop guard for bad lists. */
const PCI_FIND_CAP_TTL = 48;
/** A capability id read as all-ones: nothing is there (a removed or absent function). */
const CAP_ID_ABSENT = 0xff;
/** Capability pointers are dword aligned: the low two bits are reserved. */
const CAP_POINTER_MASK = 0xfc;
/** QSIZE/QMASK field shifts in MSI message control. */
const MSI_QMASK_SHIFT = 1;
const MSI_QSIZE_SHIFT = 4;

/** One entry of the capability list. */
export interface CapabilityEntry {
  /** Capability id. */
  readonly id: number;
  /** Offset in config space. */
  readonly offset: number;
}

/** The capability list, in list order (empty when Status.CapList is clear). */
export function capabilities(config: PciConfig): CapabilityEntry[] {
  const out: CapabilityEntry[] = [];
  if ((config.read(PCI_STATUS, 2) & PCI_STATUS_CAP_LIST) === 0) return out;
  let at = config.read(PCI_CAPABILITY_LIST, 1) & CAP_POINTER_MASK;
  for (let ttl = PCI_FIND_CAP_TTL; ttl > 0 && at >= PCI_STD_HEADER_SIZEOF; ttl--) {
    const id = config.read(at + PCI_CAP_LIST_ID, 1);
    if (id === CAP_ID_ABSENT) break;
    out.push({ id, offset: at });
    at = config.read(at + PCI_CAP_LIST_NEXT, 1) & CAP_POINTER_MASK;
  }
  return out;
}

/** Offset of the first capability with `id`, or undefined (Linux `pci_find_capability`). */
export function findCapability(config: PciConfig, id: number): number | undefined {
  return capabilities(config).find((c) => c.id === id)?.offset;
}

/** Whether the function may master the bus (Command.Master). */
export function busMasterEnabled(config: PciConfig): boolean {
  return (config.read(PCI_COMMAND, 2) & PCI_COMMAND_MASTER) !== 0;
}

/** A function's MSI capability state. */
export interface MsiState {
  /** Offset of the capability. */
  readonly offset: number;
  /** MSI Enable. */
  readonly enabled: boolean;
  /** Vectors requested (Multiple Message Capable). */
  readonly vectorsCapable: number;
  /** Vectors allocated by software (Multiple Message Enable, clamped to capable). */
  readonly vectorsEnabled: number;
  /** 64-bit address capable. */
  readonly address64: boolean;
  /** Per-vector masking capable. */
  readonly perVectorMask: boolean;
  /** Message address. */
  readonly address: bigint;
  /** Message data (16 bits). */
  readonly data: number;
  /** Mask bits (0 without per-vector masking). */
  readonly mask: number;
  /** Pending bits (0 without per-vector masking). */
  readonly pending: number;
  /** Offset of the mask register, when present. */
  readonly maskOffset: number | undefined;
  /** Offset of the pending register, when present. */
  readonly pendingOffset: number | undefined;
}

/** Read the MSI capability, or undefined when the function has none. */
export function msiState(config: PciConfig): MsiState | undefined {
  const at = findCapability(config, PCI_CAP_ID_MSI);
  if (at === undefined) return undefined;
  const flags = config.read(at + PCI_MSI_FLAGS, 2);
  const address64 = (flags & PCI_MSI_FLAGS_64BIT) !== 0;
  const perVectorMask = (flags & PCI_MSI_FLAGS_MASKBIT) !== 0;
  const mmc = (flags & PCI_MSI_FLAGS_QMASK) >> MSI_QMASK_SHIFT;
  const mme = Math.min((flags & PCI_MSI_FLAGS_QSIZE) >> MSI_QSIZE_SHIFT, mmc);
  const lo = BigInt(config.read(at + PCI_MSI_ADDRESS_LO, 4));
  const hi = address64 ? BigInt(config.read(at + PCI_MSI_ADDRESS_HI, 4)) : 0n;
  const maskOffset = perVectorMask
    ? at + (address64 ? PCI_MSI_MASK_64 : PCI_MSI_MASK_32)
    : undefined;
  const pendingOffset = perVectorMask
    ? at + (address64 ? PCI_MSI_PENDING_64 : PCI_MSI_PENDING_32)
    : undefined;
  return {
    offset: at,
    enabled: (flags & PCI_MSI_FLAGS_ENABLE) !== 0,
    vectorsCapable: 1 << mmc,
    vectorsEnabled: 1 << mme,
    address64,
    perVectorMask,
    address: (hi << 32n) | lo,
    data: config.read(at + (address64 ? PCI_MSI_DATA_64 : PCI_MSI_DATA_32), 2),
    mask: maskOffset === undefined ? 0 : config.read(maskOffset, 4),
    pending: pendingOffset === undefined ? 0 : config.read(pendingOffset, 4),
    maskOffset,
    pendingOffset,
  };
}

/** Whether MSI vector `vector` is masked. */
export function msiMasked(state: MsiState, vector: number): boolean {
  return ((state.mask >>> vector) & 1) === 1;
}

/** The message vector `vector` sends: the low data bits carry the vector number (PCI 3.0 §6.8.3.4). */
export function msiMessage(state: MsiState, vector: number): { address: bigint; data: number } {
  const low = state.vectorsEnabled - 1;
  return { address: state.address, data: (state.data & ~low) | (vector & low) };
}

/** A function's MSI-X capability state (the table itself lives in a BAR). */
export interface MsixState {
  /** Offset of the capability. */
  readonly offset: number;
  /** MSI-X Enable. */
  readonly enabled: boolean;
  /** Function Mask. */
  readonly functionMask: boolean;
  /** Table entries. */
  readonly tableSize: number;
  /** BAR and offset of the table. */
  readonly tableBar: number;
  /** Offset of the table in its BAR. */
  readonly tableOffset: number;
  /** BAR of the pending-bit array. */
  readonly pbaBar: number;
  /** Offset of the pending-bit array in its BAR. */
  readonly pbaOffset: number;
}

/** Read the MSI-X capability, or undefined when the function has none. */
export function msixState(config: PciConfig): MsixState | undefined {
  const at = findCapability(config, PCI_CAP_ID_MSIX);
  if (at === undefined) return undefined;
  const flags = config.read(at + PCI_MSIX_FLAGS, 2);
  const table = config.read(at + PCI_MSIX_TABLE, 4);
  const pba = config.read(at + PCI_MSIX_PBA, 4);
  return {
    offset: at,
    enabled: (flags & PCI_MSIX_FLAGS_ENABLE) !== 0,
    functionMask: (flags & PCI_MSIX_FLAGS_MASKALL) !== 0,
    tableSize: (flags & PCI_MSIX_FLAGS_QSIZE) + 1,
    tableBar: table & PCI_MSIX_TABLE_BIR,
    tableOffset: (table & PCI_MSIX_TABLE_OFFSET) >>> 0,
    pbaBar: pba & PCI_MSIX_TABLE_BIR,
    pbaOffset: (pba & PCI_MSIX_TABLE_OFFSET) >>> 0,
  };
}

/** The device-side view of a config space the interrupt helpers need. */
export interface DeviceConfig extends PciConfig {
  /** Raw read, ignoring masks. */
  get(offset: number, size: 1 | 2 | 4): number;
  /** Raw write, ignoring masks. */
  set(offset: number, size: 1 | 2 | 4, value: number): void;
  /** Be told about config writes. */
  onWrite(listener: (offset: number, size: 1 | 2 | 4, value: number) => void): void;
}

/** What became of an MSI the function wanted to send. */
export type MsiOutcome = "sent" | "masked" | "disabled" | "no-bus-master" | "bad-vector";

/**
 * Send MSI `vector` as the function would: nothing when MSI is disabled, when the vector is not
 * allocated, or when bus mastering is off (an MSI is a memory write); a masked vector sets its
 * pending bit instead (PCI 3.0 §6.8.3.4).
 */
export function sendMsi(config: DeviceConfig, irq: InterruptSink, vector: number): MsiOutcome {
  const s = msiState(config);
  if (s === undefined || !s.enabled) return "disabled";
  if (vector < 0 || vector >= s.vectorsEnabled) return "bad-vector";
  if (!busMasterEnabled(config)) return "no-bus-master";
  if (msiMasked(s, vector)) {
    if (s.pendingOffset !== undefined) config.set(s.pendingOffset, 4, s.pending | (1 << vector));
    return "masked";
  }
  irq.msi(vector);
  return "sent";
}

/**
 * Send every pending, now unmasked MSI vector and clear its pending bit (after software unmasks a
 * vector). Returns the vectors sent.
 */
export function flushPendingMsi(config: DeviceConfig, irq: InterruptSink): number[] {
  const s = msiState(config);
  if (s === undefined || s.pendingOffset === undefined || !s.enabled) return [];
  if (!busMasterEnabled(config)) return [];
  const sent: number[] = [];
  for (let v = 0; v < s.vectorsEnabled; v++) {
    if (((s.pending >>> v) & 1) === 0 || msiMasked(s, v)) continue;
    config.set(s.pendingOffset, 4, config.get(s.pendingOffset, 4) & ~(1 << v));
    irq.msi(v);
    sent.push(v);
  }
  return sent;
}

/**
 * A function's INTx pin: the level the device drives, Status.Interrupt mirroring it, and the
 * line seen outside — asserted only while the level is high and Command.InterruptDisable is
 * clear. Enabling MSI or MSI-X drops the level (as QEMU's `pci_device_deassert_intx`).
 */
export class IntxPin {
  #level = false;
  #line = false;
  #sink: InterruptSink | undefined;
  readonly #config: DeviceConfig;

  /** The pin of a function with this config space; listens to its config writes. */
  constructor(config: DeviceConfig) {
    this.#config = config;
    config.onWrite(() => {
      const msi = msiState(config);
      const msix = msixState(config);
      if (msi?.enabled || msix?.enabled) this.#level = false;
      this.#update();
    });
  }

  /** Where the line goes. */
  connect(sink: InterruptSink): void {
    this.#sink = sink;
  }

  /** The level the device drives. */
  get level(): boolean {
    return this.#level;
  }

  /** The line as the interrupt controller sees it. */
  get asserted(): boolean {
    return this.#line;
  }

  /** Drive the level. */
  set(level: boolean): void {
    this.#level = level;
    this.#update();
  }

  /** Recompute after a reset of the config space (the level drops). */
  reset(): void {
    this.#level = false;
    this.#update();
  }

  #update(): void {
    const c = this.#config;
    const status = c.get(PCI_STATUS, 2);
    c.set(
      PCI_STATUS,
      2,
      this.#level ? status | PCI_STATUS_INTERRUPT : status & ~PCI_STATUS_INTERRUPT,
    );
    const line = this.#level && c.get(PCI_INTERRUPT_PIN, 1) !== 0 &&
      (c.get(PCI_COMMAND, 2) & PCI_COMMAND_INTX_DISABLE) === 0;
    if (line === this.#line) return;
    this.#line = line;
    this.#sink?.intx(line);
  }
}
