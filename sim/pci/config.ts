/**
 * A PCI configuration space for simulated functions: a type-0 header, BARs that size themselves
 * the way hardware does (write all-ones, read back the size mask), a capability list (MSI, MSI-X,
 * PCI Express, Power Management), extended space for PCIe functions, and per-byte write masks and
 * RW1C masks so read-only fields stay read-only. Register names and sections: ./pci_regs.ts.
 *
 * The read helpers at the end ({@link msiState}, {@link msixState}, {@link findCapability}, …)
 * work on any {@link PciConfig}, so the simulated kernel can use them on every device model.
 *
 * @example
 * ```ts
 * const cfg = new PciConfigSpace({ vendorId: 0x1234, deviceId: 0x11e8, classCode: 0x00ff00 });
 * cfg.addBar({ index: 0, size: 0x100000, kind: "mem32", prefetchable: false });
 * cfg.addMsi({ vectors: 1, address64: true, perVectorMask: false });
 * cfg.write(PCI_BASE_ADDRESS_0, 4, 0xffffffff);
 * cfg.read(PCI_BASE_ADDRESS_0, 4); // 0xfff00000: a 1 MiB BAR
 * ```
 *
 * @module
 */

import type { BarDecl, PciConfig } from "./device.ts";
import {
  PCI_BASE_ADDRESS_0,
  PCI_BASE_ADDRESS_IO_MASK,
  PCI_BASE_ADDRESS_MEM_MASK,
  PCI_BASE_ADDRESS_MEM_PREFETCH,
  PCI_BASE_ADDRESS_MEM_TYPE_64,
  PCI_BASE_ADDRESS_SPACE_IO,
  PCI_CACHE_LINE_SIZE,
  PCI_CAP_EXP_ENDPOINT_SIZEOF_V1,
  PCI_CAP_EXP_ENDPOINT_SIZEOF_V2,
  PCI_CAP_ID_EXP,
  PCI_CAP_ID_MSI,
  PCI_CAP_ID_MSIX,
  PCI_CAP_ID_PM,
  PCI_CAP_ID_VNDR,
  PCI_CAP_LIST_NEXT,
  PCI_CAP_MSIX_SIZEOF,
  PCI_CAPABILITY_LIST,
  PCI_CFG_SPACE_EXP_SIZE,
  PCI_CFG_SPACE_SIZE,
  PCI_CLASS_PROG,
  PCI_COMMAND,
  PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_IO,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_COMMAND_PARITY,
  PCI_COMMAND_SERR,
  PCI_DEVICE_ID,
  PCI_EXP_DEVCAP,
  PCI_EXP_DEVCAP_FLR,
  PCI_EXP_DEVCTL,
  PCI_EXP_DEVCTL_WRITABLE,
  PCI_EXP_DEVSTA,
  PCI_EXP_DEVSTA_ERRORS,
  PCI_EXP_FLAGS,
  PCI_EXP_FLAGS_TYPE_SHIFT,
  PCI_EXP_FLAGS_VERS_1,
  PCI_EXP_FLAGS_VERS_2,
  PCI_EXP_LNKCTL,
  PCI_EXP_TYPE_ENDPOINT,
  PCI_EXP_TYPE_RC_END,
  PCI_HEADER_TYPE,
  PCI_HEADER_TYPE_NORMAL,
  PCI_INTERRUPT_LINE,
  PCI_INTERRUPT_PIN,
  PCI_LATENCY_TIMER,
  PCI_MSI_ADDRESS_HI,
  PCI_MSI_ADDRESS_LO,
  PCI_MSI_ADDRESS_LO_MASK,
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
  PCI_MSI_VECTORS_MAX,
  PCI_MSIX_FLAGS,
  PCI_MSIX_FLAGS_ENABLE,
  PCI_MSIX_FLAGS_MASKALL,
  PCI_MSIX_FLAGS_QSIZE,
  PCI_MSIX_PBA,
  PCI_MSIX_TABLE,
  PCI_PM_CAP_VER_1_2,
  PCI_PM_CTRL,
  PCI_PM_CTRL_NO_SOFT_RESET,
  PCI_PM_CTRL_PME_ENABLE,
  PCI_PM_CTRL_PME_STATUS,
  PCI_PM_CTRL_STATE_MASK,
  PCI_PM_PMC,
  PCI_PM_SIZEOF,
  PCI_REVISION_ID,
  PCI_STATUS,
  PCI_STATUS_CAP_LIST,
  PCI_STATUS_DETECTED_PARITY,
  PCI_STATUS_PARITY,
  PCI_STATUS_REC_MASTER_ABORT,
  PCI_STATUS_REC_TARGET_ABORT,
  PCI_STATUS_SIG_SYSTEM_ERROR,
  PCI_STATUS_SIG_TARGET_ABORT,
  PCI_STD_HEADER_SIZEOF,
  PCI_STD_NUM_BARS,
  PCI_SUBSYSTEM_ID,
  PCI_SUBSYSTEM_VENDOR_ID,
  PCI_VENDOR_ID,
} from "./pci_regs.ts";

export * from "./config_irq.ts";

/** Identity of a function (the read-only header fields). */
export interface PciConfigOptions {
  /** Vendor id. */
  readonly vendorId: number;
  /** Device id. */
  readonly deviceId: number;
  /** Revision id (default 0). */
  readonly revision?: number;
  /** 24-bit class code: base class << 16 | subclass << 8 | programming interface. */
  readonly classCode: number;
  /** Subsystem vendor id (default 0). */
  readonly subsystemVendorId?: number;
  /** Subsystem id (default 0). */
  readonly subsystemId?: number;
  /** Interrupt pin: 0 none, 1 INTA … 4 INTD (default 0). */
  readonly interruptPin?: number;
  /** A PCI Express function: 4096 bytes of config space (default false: 256). */
  readonly express?: boolean;
}

/** MSI capability options (PCI 3.0 §6.8.1). */
export interface MsiCapOptions {
  /** Vectors the function requests: 1, 2, 4, 8, 16 or 32. */
  readonly vectors: number;
  /** 64-bit message address. */
  readonly address64: boolean;
  /** Per-vector mask and pending bits. */
  readonly perVectorMask: boolean;
  /** Config-space offset of the capability (default: the next free dword after the last one). */
  readonly offset?: number;
}

/** MSI-X capability options (PCI 3.0 §6.8.2). */
export interface MsixCapOptions {
  /** Table entries (1–2048). */
  readonly tableSize: number;
  /** BAR holding the table. */
  readonly tableBar: number;
  /** Offset of the table in that BAR (8-byte aligned). */
  readonly tableOffset: number;
  /** BAR holding the pending-bit array. */
  readonly pbaBar: number;
  /** Offset of the PBA in that BAR (8-byte aligned). */
  readonly pbaOffset: number;
  /** Config-space offset of the capability (default: the next free dword after the last one). */
  readonly offset?: number;
}

/** PCI Express capability options (PCIe 4.0 §7.5.3). */
export interface ExpressCapOptions {
  /** Device/port type (default "endpoint"). */
  readonly type?: "endpoint" | "rc-integrated";
  /** Function-level reset capable (default false). */
  readonly flr?: boolean;
  /** Capability version: 2 (default, 60 bytes) or 1 (20 bytes, as QEMU's `pcie_endpoint_cap_v1_init`). */
  readonly version?: 1 | 2;
  /** Config-space offset of the capability (default: the next free dword after the last one). */
  readonly offset?: number;
}

/** Called after every config write, with the written offset, size and value. */
export type ConfigWriteListener = (offset: number, size: 1 | 2 | 4, value: number) => void;

/** Bytes per dword: capabilities are dword aligned. */
const DWORD = 4;
/** What a read outside the config space returns, per access size. */
const ALL_ONES: Readonly<Record<1 | 2 | 4, number>> = { 1: 0xff, 2: 0xffff, 4: 0xffff_ffff };

/** The config space of one simulated function. */
export class PciConfigSpace implements PciConfig {
  /** 256 or 4096. */
  readonly size: number;
  /** BARs declared with {@link addBar}. */
  readonly bars: BarDecl[] = [];
  readonly #bytes: Uint8Array;
  readonly #wmask: Uint8Array;
  readonly #w1c: Uint8Array;
  #powerOn: Uint8Array;
  #nextCap = PCI_STD_HEADER_SIZEOF;
  #lastCap = 0;
  readonly #listeners: ConfigWriteListener[] = [];

  /** A header for a function with these ids; add BARs and capabilities next. */
  constructor(o: PciConfigOptions) {
    this.size = o.express ? PCI_CFG_SPACE_EXP_SIZE : PCI_CFG_SPACE_SIZE;
    this.#bytes = new Uint8Array(this.size);
    this.#wmask = new Uint8Array(this.size);
    this.#w1c = new Uint8Array(this.size);
    this.set(PCI_VENDOR_ID, 2, o.vendorId);
    this.set(PCI_DEVICE_ID, 2, o.deviceId);
    this.set(PCI_REVISION_ID, 1, o.revision ?? 0);
    this.set(PCI_CLASS_PROG, 1, o.classCode & 0xff);
    this.set(PCI_CLASS_PROG + 1, 2, (o.classCode >> 8) & 0xffff);
    this.set(PCI_HEADER_TYPE, 1, PCI_HEADER_TYPE_NORMAL);
    this.set(PCI_SUBSYSTEM_VENDOR_ID, 2, o.subsystemVendorId ?? 0);
    this.set(PCI_SUBSYSTEM_ID, 2, o.subsystemId ?? 0);
    this.set(PCI_INTERRUPT_PIN, 1, o.interruptPin ?? 0);
    this.#mask(
      PCI_COMMAND,
      2,
      PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_PARITY |
        PCI_COMMAND_SERR | PCI_COMMAND_INTX_DISABLE,
    );
    this.#rw1c(
      PCI_STATUS,
      2,
      PCI_STATUS_PARITY | PCI_STATUS_SIG_TARGET_ABORT | PCI_STATUS_REC_TARGET_ABORT |
        PCI_STATUS_REC_MASTER_ABORT | PCI_STATUS_SIG_SYSTEM_ERROR | PCI_STATUS_DETECTED_PARITY,
    );
    this.#mask(PCI_CACHE_LINE_SIZE, 1, 0xff);
    this.#mask(PCI_LATENCY_TIMER, 1, 0xff);
    this.#mask(PCI_INTERRUPT_LINE, 1, 0xff);
    this.#powerOn = this.#bytes.slice();
  }

  /** Read 1, 2 or 4 bytes (little-endian); out-of-range reads are all-ones. */
  read(offset: number, size: 1 | 2 | 4): number {
    if (!this.#inRange(offset, size)) return ALL_ONES[size] ?? ALL_ONES[4];
    return this.get(offset, size);
  }

  /** Write 1, 2 or 4 bytes through the write and RW1C masks; out-of-range writes are dropped. */
  write(offset: number, size: 1 | 2 | 4, value: number): void {
    if (!this.#inRange(offset, size)) return;
    for (let i = 0; i < size; i++) {
      const at = offset + i;
      const v = (value >>> (8 * i)) & 0xff;
      const old = this.#bytes[at];
      this.#bytes[at] = ((old & ~this.#wmask[at]) | (v & this.#wmask[at])) & ~(v & this.#w1c[at]);
    }
    for (const listener of this.#listeners) listener(offset, size, value >>> 0);
  }

  /** Device side: read raw bytes, ignoring masks. */
  get(offset: number, size: 1 | 2 | 4): number {
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + this.#bytes[offset + i];
    return v;
  }

  /** Device side: set raw bytes (status bits, pending bits, …), ignoring masks. */
  set(offset: number, size: 1 | 2 | 4, value: number): void {
    for (let i = 0; i < size; i++) this.#bytes[offset + i] = (value >>> (8 * i)) & 0xff;
  }

  /** Device side: set raw bytes that belong to the power-on image (identity, capability fields). */
  setPowerOn(offset: number, size: 1 | 2 | 4, value: number): void {
    this.set(offset, size, value);
    this.#commit();
  }

  /** Be told about every config write (after it took effect). */
  onWrite(listener: ConfigWriteListener): void {
    this.#listeners.push(listener);
  }

  /** Back to the power-on values (command 0, BARs 0, MSI/MSI-X disabled, …). */
  reset(): void {
    this.#bytes.set(this.#powerOn);
  }

  /** Declare a BAR; a 64-bit BAR also takes the next BAR slot. */
  addBar(bar: BarDecl): this {
    const reg = PCI_BASE_ADDRESS_0 + DWORD * bar.index;
    const size = BigInt(bar.size);
    const addressMask = ~(size - 1n) & 0xffff_ffff_ffff_ffffn;
    if (bar.kind === "io") {
      this.set(reg, 4, PCI_BASE_ADDRESS_SPACE_IO);
      this.#mask(reg, 4, Number(addressMask & 0xffff_ffffn) & PCI_BASE_ADDRESS_IO_MASK);
    } else {
      const type = (bar.kind === "mem64" ? PCI_BASE_ADDRESS_MEM_TYPE_64 : 0) |
        (bar.prefetchable ? PCI_BASE_ADDRESS_MEM_PREFETCH : 0);
      this.set(reg, 4, type);
      this.#mask(reg, 4, Number(addressMask & 0xffff_ffffn) & PCI_BASE_ADDRESS_MEM_MASK);
      if (bar.kind === "mem64" && bar.index + 1 < PCI_STD_NUM_BARS) {
        this.#mask(reg + DWORD, 4, Number(addressMask >> 32n));
      }
    }
    this.bars.push(bar);
    return this.#commit();
  }

  /** Add an MSI capability; returns its offset. */
  addMsi(o: MsiCapOptions): number {
    const vectors = Math.min(Math.max(1, o.vectors), PCI_MSI_VECTORS_MAX);
    const mmc = Math.round(Math.log2(vectors));
    const length = (o.address64 ? PCI_MSI_DATA_64 : PCI_MSI_DATA_32) + 2 +
      (o.perVectorMask ? 2 + 2 * DWORD : 0);
    const at = this.#addCap(PCI_CAP_ID_MSI, length, o.offset);
    let flags = mmc << 1;
    if (o.address64) flags |= PCI_MSI_FLAGS_64BIT;
    if (o.perVectorMask) flags |= PCI_MSI_FLAGS_MASKBIT;
    this.set(
      at + PCI_MSI_FLAGS,
      2,
      flags & (PCI_MSI_FLAGS_QMASK | PCI_MSI_FLAGS_64BIT |
        PCI_MSI_FLAGS_MASKBIT),
    );
    this.#mask(at + PCI_MSI_FLAGS, 2, PCI_MSI_FLAGS_ENABLE | PCI_MSI_FLAGS_QSIZE);
    this.#mask(at + PCI_MSI_ADDRESS_LO, 4, PCI_MSI_ADDRESS_LO_MASK);
    if (o.address64) this.#mask(at + PCI_MSI_ADDRESS_HI, 4, 0xffff_ffff);
    this.#mask(at + (o.address64 ? PCI_MSI_DATA_64 : PCI_MSI_DATA_32), 2, 0xffff);
    if (o.perVectorMask) {
      const maskBits = vectors === PCI_MSI_VECTORS_MAX ? 0xffff_ffff : (1 << vectors) - 1;
      this.#mask(at + (o.address64 ? PCI_MSI_MASK_64 : PCI_MSI_MASK_32), 4, maskBits);
    }
    this.#commit();
    return at;
  }

  /** Add an MSI-X capability; returns its offset. The table and PBA live in the device's BAR. */
  addMsix(o: MsixCapOptions): number {
    const at = this.#addCap(PCI_CAP_ID_MSIX, PCI_CAP_MSIX_SIZEOF, o.offset);
    this.set(at + PCI_MSIX_FLAGS, 2, (o.tableSize - 1) & PCI_MSIX_FLAGS_QSIZE);
    this.#mask(at + PCI_MSIX_FLAGS, 2, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
    this.set(at + PCI_MSIX_TABLE, 4, (o.tableOffset | o.tableBar) >>> 0);
    this.set(at + PCI_MSIX_PBA, 4, (o.pbaOffset | o.pbaBar) >>> 0);
    this.#commit();
    return at;
  }

  /** Add a PCI Express capability (endpoint, version 2 unless asked); returns its offset. */
  addPciExpress(o: ExpressCapOptions = {}): number {
    const v1 = o.version === 1;
    const length = v1 ? PCI_CAP_EXP_ENDPOINT_SIZEOF_V1 : PCI_CAP_EXP_ENDPOINT_SIZEOF_V2;
    const at = this.#addCap(PCI_CAP_ID_EXP, length, o.offset);
    const type = o.type === "rc-integrated" ? PCI_EXP_TYPE_RC_END : PCI_EXP_TYPE_ENDPOINT;
    const version = v1 ? PCI_EXP_FLAGS_VERS_1 : PCI_EXP_FLAGS_VERS_2;
    this.set(at + PCI_EXP_FLAGS, 2, version | (type << PCI_EXP_FLAGS_TYPE_SHIFT));
    this.set(at + PCI_EXP_DEVCAP, 4, o.flr ? PCI_EXP_DEVCAP_FLR : 0);
    this.#mask(at + PCI_EXP_DEVCTL, 2, PCI_EXP_DEVCTL_WRITABLE);
    this.#rw1c(at + PCI_EXP_DEVSTA, 2, PCI_EXP_DEVSTA_ERRORS);
    this.#mask(at + PCI_EXP_LNKCTL, 2, 0xffff);
    this.#commit();
    return at;
  }

  /** Add a PCI PM 1.2 capability (at `offset` when given); returns its offset. */
  addPowerManagement(
    o: { readonly noSoftReset?: boolean; readonly offset?: number } = {},
  ): number {
    const at = this.#addCap(PCI_CAP_ID_PM, PCI_PM_SIZEOF, o.offset);
    this.set(at + PCI_PM_PMC, 2, PCI_PM_CAP_VER_1_2);
    this.set(at + PCI_PM_CTRL, 2, o.noSoftReset ? PCI_PM_CTRL_NO_SOFT_RESET : 0);
    this.#mask(at + PCI_PM_CTRL, 2, PCI_PM_CTRL_STATE_MASK | PCI_PM_CTRL_PME_ENABLE);
    this.#rw1c(at + PCI_PM_CTRL, 2, PCI_PM_CTRL_PME_STATUS);
    this.#commit();
    return at;
  }

  /**
   * Add a vendor-specific capability (PCI 3.0 §6.7, id 0x09). `body` is the whole capability;
   * its first two bytes (id, next) are filled in here, the rest is copied as is and read-only.
   * Returns its offset.
   */
  addVendorCapability(body: Uint8Array): number {
    const at = this.#addCap(PCI_CAP_ID_VNDR, body.length);
    for (let i = PCI_CAP_LIST_NEXT + 1; i < body.length; i++) this.set(at + i, 1, body[i]);
    this.#commit();
    return at;
  }

  #addCap(id: number, length: number, offset?: number): number {
    const at = offset ?? this.#nextCap;
    if (at < PCI_STD_HEADER_SIZEOF || at % DWORD !== 0 || at + length > PCI_CFG_SPACE_SIZE) {
      throw new RangeError("PCI: no room for the capability");
    }
    this.set(at, 1, id);
    this.set(at + PCI_CAP_LIST_NEXT, 1, 0);
    if (this.#lastCap === 0) {
      this.set(PCI_CAPABILITY_LIST, 1, at);
      this.set(PCI_STATUS, 2, this.get(PCI_STATUS, 2) | PCI_STATUS_CAP_LIST);
    } else {
      this.set(this.#lastCap + PCI_CAP_LIST_NEXT, 1, at);
    }
    this.#lastCap = at;
    this.#nextCap = Math.max(this.#nextCap, at + Math.ceil(length / DWORD) * DWORD);
    return at;
  }

  #mask(offset: number, size: number, bits: number): void {
    for (let i = 0; i < size; i++) this.#wmask[offset + i] = (bits >>> (8 * i)) & 0xff;
  }

  #rw1c(offset: number, size: number, bits: number): void {
    for (let i = 0; i < size; i++) this.#w1c[offset + i] = (bits >>> (8 * i)) & 0xff;
  }

  #commit(): this {
    this.#powerOn = this.#bytes.slice();
    return this;
  }

  #inRange(offset: number, size: number): boolean {
    return Number.isInteger(offset) && offset >= 0 && offset + size <= this.size &&
      (size === 1 || size === 2 || size === 4);
  }
}
