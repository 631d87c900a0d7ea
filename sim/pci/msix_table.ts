/**
 * An MSI-X table and pending-bit array living in a device BAR (PCI Local Bus 3.0 §6.8.2), written
 * once for every device model that has MSI-X:
 * - each entry is four dwords: message address low/high, message data, vector control (bit 0 =
 *   mask; §6.8.2.6–9); at power-on and reset every entry is masked and zero (§6.8.2.9);
 * - a vector is sent only when MSI-X is enabled, the function is not masked (Message Control
 *   Function Mask) and its entry is not masked; otherwise its pending bit is set (§6.8.2.10) and
 *   the message is sent, and the bit cleared, as soon as none of the masks applies any more —
 *   after an entry unmask, a Function Mask clear or an enable in config space;
 * - an MSI-X message is a memory write, so with Command.BusMaster clear nothing is sent (and
 *   nothing becomes pending), as QEMU's `msix_notify`;
 * - the pending-bit array is read-only (writes are ignored).
 *
 * Table accesses are 4 or 8 bytes (an 8-byte access is two dwords); other widths read 0 and are
 * ignored, and nothing written anywhere throws.
 *
 * @example
 * ```ts
 * const table = new MsixTable(config, { bar: 3, tableOffset: 0, pbaOffset: 0x2000, vectors: 10 });
 * table.connect(irq);
 * if (table.owns(3, offset)) return table.read(offset, 4);
 * table.notify(2); // "sent", "pending", "disabled", "no-bus-master" or "bad-vector"
 * ```
 *
 * @module
 */

import type { DeviceConfig } from "./config_irq.ts";
import { busMasterEnabled, findCapability } from "./config_irq.ts";
import type { InterruptSink } from "./device.ts";
import {
  PCI_CAP_ID_MSIX,
  PCI_MSIX_ENTRY_SIZE,
  PCI_MSIX_FLAGS,
  PCI_MSIX_FLAGS_ENABLE,
  PCI_MSIX_FLAGS_MASKALL,
} from "./pci_regs.ts";

/** Entry dword: message address bits 31:0 (§6.8.2.6). */
const ENTRY_ADDR_LO = 0;
/** Entry dword: message address bits 63:32 (§6.8.2.7). */
const ENTRY_ADDR_HI = 1;
/** Entry dword: message data (§6.8.2.8). */
const ENTRY_DATA = 2;
/** Entry dword: vector control (§6.8.2.9). */
const ENTRY_VECTOR_CTRL = 3;
/** Vector control: Mask Bit. */
const VECTOR_CTRL_MASK = 0x1;
/** Dwords per entry. */
const ENTRY_DWORDS = PCI_MSIX_ENTRY_SIZE / 4;
/** Pending bits per PBA qword (§6.8.2.10). */
const PBA_BITS_PER_QWORD = 64;

/** Where a table lives and how big it is. */
export interface MsixTableLayout {
  /** BAR holding the table and the PBA. */
  readonly bar: number;
  /** Offset of the table in the BAR. */
  readonly tableOffset: number;
  /** Offset of the pending-bit array in the BAR. */
  readonly pbaOffset: number;
  /** Table entries (the capability's Table Size + 1). */
  readonly vectors: number;
}

/** What became of a vector the device wanted to send. */
export type MsixOutcome = "sent" | "pending" | "disabled" | "no-bus-master" | "bad-vector";

/** An MSI-X table and PBA in a BAR, with the masking rules of §6.8.2. */
export class MsixTable {
  /** The layout. */
  readonly layout: MsixTableLayout;
  readonly #config: DeviceConfig;
  readonly #entries: Uint32Array;
  readonly #pending: Uint8Array;
  readonly #capOffset: number;
  readonly #tableEnd: number;
  readonly #pbaEnd: number;
  #sink: InterruptSink | undefined;

  /** A table for a function whose config space has an MSI-X capability pointing at `layout`. */
  constructor(config: DeviceConfig, layout: MsixTableLayout) {
    const cap = findCapability(config, PCI_CAP_ID_MSIX);
    if (cap === undefined) throw new Error("MsixTable: the config space has no MSI-X capability");
    this.layout = layout;
    this.#config = config;
    this.#capOffset = cap;
    this.#entries = new Uint32Array(layout.vectors * ENTRY_DWORDS);
    this.#pending = new Uint8Array(layout.vectors);
    this.#tableEnd = layout.tableOffset + layout.vectors * PCI_MSIX_ENTRY_SIZE;
    const pbaBytes = Math.ceil(layout.vectors / PBA_BITS_PER_QWORD) * 8;
    this.#pbaEnd = layout.pbaOffset + pbaBytes;
    this.reset();
    config.onWrite(() => this.#flush());
  }

  /** Where messages go. */
  connect(sink: InterruptSink): void {
    this.#sink = sink;
  }

  /** Power-on state: every entry zero and masked, nothing pending. */
  reset(): void {
    this.#entries.fill(0);
    for (let v = 0; v < this.layout.vectors; v++) {
      this.#entries[v * ENTRY_DWORDS + ENTRY_VECTOR_CTRL] = VECTOR_CTRL_MASK;
    }
    this.#pending.fill(0);
  }

  /** Whether an access at `offset` of BAR `bar` falls into the table or the PBA. */
  owns(bar: number, offset: number): boolean {
    if (bar !== this.layout.bar) return false;
    return (offset >= this.layout.tableOffset && offset < this.#tableEnd) ||
      (offset >= this.layout.pbaOffset && offset < this.#pbaEnd);
  }

  /** A read of the table or PBA (4 or 8 bytes; other widths read 0). */
  read(offset: number, size: 1 | 2 | 4 | 8): number | bigint {
    if (size === 8) {
      const lo = this.#read32(offset);
      const hi = this.#read32(offset + 4);
      return (BigInt(hi) << 32n) | BigInt(lo);
    }
    return size === 4 ? this.#read32(offset) : 0;
  }

  /** A write of the table (4 or 8 bytes); PBA writes and other widths are ignored. */
  write(offset: number, size: 1 | 2 | 4 | 8, value: number | bigint): void {
    if (size === 8) {
      const n = typeof value === "bigint"
        ? value
        : BigInt(Number.isFinite(value) ? Math.trunc(value) : 0);
      const v = BigInt.asUintN(64, n);
      this.#write32(offset, Number(v & 0xffff_ffffn));
      this.#write32(offset + 4, Number(v >> 32n));
    } else if (size === 4) {
      this.#write32(offset, Number(value) >>> 0);
    }
  }

  /** Send vector `vector` under the masking rules (see the module doc). */
  notify(vector: number): MsixOutcome {
    if (!Number.isInteger(vector) || vector < 0 || vector >= this.layout.vectors) {
      return "bad-vector";
    }
    const flags = this.#config.get(this.#capOffset + PCI_MSIX_FLAGS, 2);
    if ((flags & PCI_MSIX_FLAGS_ENABLE) === 0) return "disabled";
    if (!busMasterEnabled(this.#config)) return "no-bus-master";
    if ((flags & PCI_MSIX_FLAGS_MASKALL) !== 0 || this.entryMasked(vector)) {
      this.#pending[vector] = 1;
      return "pending";
    }
    this.#sink?.msix(vector);
    return "sent";
  }

  /** Whether entry `vector`'s Mask Bit is set. */
  entryMasked(vector: number): boolean {
    return (this.#entries[vector * ENTRY_DWORDS + ENTRY_VECTOR_CTRL] & VECTOR_CTRL_MASK) !== 0;
  }

  /** Whether vector `vector`'s pending bit is set. */
  isPending(vector: number): boolean {
    return this.#pending[vector] === 1;
  }

  /** Clear a pending bit without sending (the device's own pending-clear registers). */
  clearPending(vector: number): void {
    if (vector >= 0 && vector < this.layout.vectors) this.#pending[vector] = 0;
  }

  /** Whether MSI-X is enabled in the capability. */
  get enabled(): boolean {
    return (this.#config.get(this.#capOffset + PCI_MSIX_FLAGS, 2) & PCI_MSIX_FLAGS_ENABLE) !== 0;
  }

  #read32(offset: number): number {
    const o = offset & ~3;
    if (o >= this.layout.tableOffset && o < this.#tableEnd) {
      return this.#entries[(o - this.layout.tableOffset) >> 2];
    }
    if (o >= this.layout.pbaOffset && o < this.#pbaEnd) {
      const first = (o - this.layout.pbaOffset) * 8;
      let v = 0;
      for (let b = 0; b < 32 && first + b < this.layout.vectors; b++) {
        v |= this.#pending[first + b] << b;
      }
      return v >>> 0;
    }
    return 0;
  }

  #write32(offset: number, value: number): void {
    const o = offset & ~3;
    if (o < this.layout.tableOffset || o >= this.#tableEnd) return; // the PBA is read-only
    const dword = (o - this.layout.tableOffset) >> 2;
    const vector = Math.floor(dword / ENTRY_DWORDS);
    const wasMasked = this.entryMasked(vector);
    this.#entries[dword] = value;
    if (dword % ENTRY_DWORDS === ENTRY_VECTOR_CTRL && wasMasked && !this.entryMasked(vector)) {
      this.#sendPending(vector);
    }
  }

  /** After a config write: Function Mask cleared or MSI-X enabled → send what is pending. */
  #flush(): void {
    for (let v = 0; v < this.layout.vectors; v++) {
      if (this.#pending[v] === 1) this.#sendPending(v);
    }
  }

  #sendPending(vector: number): void {
    if (this.#pending[vector] === 0) return;
    const flags = this.#config.get(this.#capOffset + PCI_MSIX_FLAGS, 2);
    if ((flags & PCI_MSIX_FLAGS_ENABLE) === 0 || (flags & PCI_MSIX_FLAGS_MASKALL) !== 0) return;
    if (this.entryMasked(vector) || !busMasterEnabled(this.#config)) return;
    this.#pending[vector] = 0;
    this.#sink?.msix(vector);
  }
}

/** Message-address fields of an entry, for tests and traces. */
export const MSIX_ENTRY_FIELDS = {
  addressLo: ENTRY_ADDR_LO * 4,
  addressHi: ENTRY_ADDR_HI * 4,
  data: ENTRY_DATA * 4,
  vectorControl: ENTRY_VECTOR_CTRL * 4,
  maskBit: VECTOR_CTRL_MASK,
} as const;
