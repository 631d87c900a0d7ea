/**
 * PCI configuration space through the VFIO config region: 8/16/32-bit accesses as pread/pwrite
 * at the CONFIG region's `region_info.offset`, identity registers, the command register and bus
 * mastering, and loop-safe walks of the standard and extended capability lists with MSI/MSI-X
 * decoding.
 *
 * Register offsets and bits cite the PCI Local Bus Specification 3.0 ("PCI 3.0") and the PCI
 * Express Base Specification 4.0 ("PCIe 4.0"); capability ids are from the PCI Code and ID
 * Assignment Specification.
 *
 * @example
 * ```ts
 * const config = ConfigSpace.open(device);
 * console.log(config.vendorId().toString(16), config.deviceId().toString(16));
 * config.enableBusMaster();
 * const msix = config.msix(); // { tableSize, tableBar, tableOffset, … } or undefined
 * ```
 *
 * @module
 */

import type { Mmio } from "../ffi/kernel.ts";
import type { VfioDevice } from "./device.ts";
import { VFIO_PCI_CONFIG_REGION_INDEX } from "../ffi/uapi/mod.ts";
import { VfioError } from "./errors.ts";
import { PreadMmio } from "./region.ts";

/** Vendor ID register (PCI 3.0 §6.2.1), 16 bits. */
export const PCI_VENDOR_ID = 0x00;
/** Device ID register (PCI 3.0 §6.2.1), 16 bits. */
export const PCI_DEVICE_ID = 0x02;
/** Command register (PCI 3.0 §6.2.2), 16 bits. */
export const PCI_COMMAND = 0x04;
/** Status register (PCI 3.0 §6.2.3), 16 bits. */
export const PCI_STATUS = 0x06;
/** Revision ID (PCI 3.0 §6.2.1), 8 bits; the class code follows in bytes 0x09–0x0b. */
export const PCI_REVISION_ID = 0x08;
/** Header Type (PCI 3.0 §6.2.1), 8 bits. */
export const PCI_HEADER_TYPE = 0x0e;
/** Capabilities Pointer (PCI 3.0 §6.7), 8 bits. */
export const PCI_CAPABILITY_LIST = 0x34;
/** Interrupt Pin (PCI 3.0 §6.2.4), 8 bits: 0 = no INTx. */
export const PCI_INTERRUPT_PIN = 0x3d;

/** Command: I/O Space enable (PCI 3.0 §6.2.2, bit 0). */
export const PCI_COMMAND_IO = 1 << 0;
/** Command: Memory Space enable (bit 1). */
export const PCI_COMMAND_MEMORY = 1 << 1;
/** Command: Bus Master enable (bit 2): the device may issue DMA (and MSI writes). */
export const PCI_COMMAND_MASTER = 1 << 2;
/** Command: Interrupt Disable (bit 10): INTx assertion disabled. */
export const PCI_COMMAND_INTX_DISABLE = 1 << 10;
/** Status: Capabilities List present (PCI 3.0 §6.2.3, bit 4). */
export const PCI_STATUS_CAP_LIST = 1 << 4;

/** End of the standard header: capabilities live at or above it (PCI 3.0 §6.7). */
export const PCI_STD_HEADER_SIZEOF = 0x40;
/** Size of legacy PCI config space. */
export const PCI_CFG_SPACE_SIZE = 0x100;
/** Size of PCIe extended config space; extended capabilities start at 0x100 (PCIe 4.0 §7.6). */
export const PCI_CFG_SPACE_EXP_SIZE = 0x1000;

/** Capability id: Power Management. */
export const PCI_CAP_ID_PM = 0x01;
/** Capability id: MSI (PCI 3.0 §6.8.1). */
export const PCI_CAP_ID_MSI = 0x05;
/** Capability id: vendor specific (virtio uses it). */
export const PCI_CAP_ID_VNDR = 0x09;
/** Capability id: PCI Express. */
export const PCI_CAP_ID_EXP = 0x10;
/** Capability id: MSI-X (PCI 3.0 §6.8.2). */
export const PCI_CAP_ID_MSIX = 0x11;

/** Extended capability id of PASID (PCIe 4.0 §7.8.8). */
export const PCI_EXT_CAP_ID_PASID = 0x001b;
/** PASID Capability register (16 bits). */
export const PCI_PASID_CAP = 0x04;
/** PASID Capability: Max PASID Width, bits 12:8. */
export const PCI_PASID_CAP_WIDTH = 0x1f00;
/** Shift of the Max PASID Width field. */
export const PCI_PASID_CAP_WIDTH_SHIFT = 8;
/** PASID Control register (16 bits). */
export const PCI_PASID_CTRL = 0x06;
/** PASID Control: PASID Enable. */
export const PCI_PASID_CTRL_ENABLE = 0x0001;

/** Offset of a capability's next pointer (PCI 3.0 §6.7). */
export const PCI_CAP_LIST_NEXT = 1;
/** Offset of the Message Control register in MSI and MSI-X capabilities (§6.8.1.3, §6.8.2.3). */
export const PCI_MSI_FLAGS = 2;
/** MSI Message Control: MSI Enable (bit 0). */
export const PCI_MSI_FLAGS_ENABLE = 1 << 0;
/** MSI Message Control: Multiple Message Capable, bits 3:1 (log2 of the vectors). */
export const PCI_MSI_FLAGS_QMASK = 0x7 << 1;
/** MSI Message Control: Multiple Message Enable, bits 6:4. */
export const PCI_MSI_FLAGS_QSIZE = 0x7 << 4;
/** MSI Message Control: 64-bit address capable (bit 7). */
export const PCI_MSI_FLAGS_64BIT = 1 << 7;
/** MSI Message Control: per-vector masking capable (bit 8). */
export const PCI_MSI_FLAGS_MASKBIT = 1 << 8;
/** MSI-X Message Control: Table Size − 1, bits 10:0 (§6.8.2.3). */
export const PCI_MSIX_FLAGS_QSIZE = 0x7ff;
/** MSI-X Message Control: Function Mask (bit 14). */
export const PCI_MSIX_FLAGS_MASKALL = 1 << 14;
/** MSI-X Message Control: MSI-X Enable (bit 15). */
export const PCI_MSIX_FLAGS_ENABLE = 1 << 15;
/** MSI-X Table Offset/Table BIR register (§6.8.2.4). */
export const PCI_MSIX_TABLE = 4;
/** MSI-X PBA Offset/PBA BIR register (§6.8.2.5). */
export const PCI_MSIX_PBA = 8;
/** BIR field of the MSI-X table/PBA registers (bits 2:0). */
export const PCI_MSIX_BIR_MASK = 0x7;

const CAP_HEADER_SIZE = 2; // id byte and next byte
const MSI_QMASK_SHIFT = 1;
const MSI_QSIZE_SHIFT = 4;
const CAP_POINTER_MASK = 0xfc; // the low two bits of a capability pointer are reserved
const CAP_ID_END = 0xff; // an all-ones id: no device behind (or the end)
const STD_CAP_TTL = 48; // at most 48 capabilities fit in 192 bytes (Linux PCI_FIND_CAP_TTL)
const EXT_CAP_HEADER_SIZE = 8;
const EXT_CAP_TTL = (PCI_CFG_SPACE_EXP_SIZE - PCI_CFG_SPACE_SIZE) / EXT_CAP_HEADER_SIZE;
const EXT_ID_MASK = 0xffff; // PCIe 4.0 §7.6.3: id bits 15:0, version 19:16, next 31:20
const EXT_VERSION_SHIFT = 16;
const EXT_VERSION_MASK = 0xf;
const EXT_NEXT_SHIFT = 20;
const EXT_NEXT_MASK = 0xffc;
const NO_EXT_CONFIG = 0xffff_ffff;
const CLASS_SHIFT = 8;
const BYTE_MASK = 0xff;
const HALF_MASK = 0xffff;

/** A standard capability: its id and the config-space offset of its header. */
export interface PciCapability {
  /** The capability id (PCI_CAP_ID_*). */
  readonly id: number;
  /** Offset of the capability header in config space. */
  readonly offset: number;
}

/** An extended (PCIe) capability. */
export interface PciExtCapability extends PciCapability {
  /** The capability version (header bits 19:16). */
  readonly version: number;
}

/** The MSI capability, decoded (PCI 3.0 §6.8.1). */
export interface MsiCapability {
  /** Offset of the capability. */
  readonly offset: number;
  /** MSI Enable is set. */
  readonly enabled: boolean;
  /** Vectors the function can request (2^Multiple Message Capable). */
  readonly vectors: number;
  /** Vectors currently enabled (2^Multiple Message Enable). */
  readonly enabledVectors: number;
  /** 64-bit message address capable. */
  readonly is64Bit: boolean;
  /** Per-vector masking capable. */
  readonly perVectorMasking: boolean;
}

/** The MSI-X capability, decoded (PCI 3.0 §6.8.2). */
export interface MsixCapability {
  /** Offset of the capability. */
  readonly offset: number;
  /** MSI-X Enable is set. */
  readonly enabled: boolean;
  /** Function Mask is set. */
  readonly functionMasked: boolean;
  /** Number of table entries (vectors). */
  readonly tableSize: number;
  /** The BAR holding the table. */
  readonly tableBar: number;
  /** Offset of the table in that BAR. */
  readonly tableOffset: number;
  /** The BAR holding the pending-bit array. */
  readonly pbaBar: number;
  /** Offset of the PBA in that BAR. */
  readonly pbaOffset: number;
}

/** A device's configuration space, accessed through VFIO. */
export class ConfigSpace {
  /** Config space size in bytes (256, or 4096 for PCIe). */
  readonly size: number;
  readonly #access: Mmio;
  readonly #name: string;

  /** The config space of `device`: pread/pwrite at its CONFIG region's `region_info.offset`. */
  static open(device: VfioDevice): ConfigSpace {
    const info = device.regionInfo(VFIO_PCI_CONFIG_REGION_INDEX);
    const size = Number(info.size);
    const access = new PreadMmio(
      device.kernel,
      device.fd,
      info.offset,
      size,
      device.name,
      VFIO_PCI_CONFIG_REGION_INDEX,
    );
    return new ConfigSpace(access, device.name);
  }

  /** Config space over any accessor of 8/16/32-bit reads and writes (its length is the size). */
  constructor(access: Mmio, name: string) {
    this.#access = access;
    this.size = access.length;
    this.#name = name;
  }

  /** One 8-bit read. */
  read8(offset: number): number {
    return this.#access.read8(offset);
  }
  /** One 16-bit read. */
  read16(offset: number): number {
    return this.#access.read16(offset);
  }
  /** One 32-bit read. */
  read32(offset: number): number {
    return this.#access.read32(offset);
  }
  /** One 8-bit write. */
  write8(offset: number, value: number): void {
    this.#access.write8(offset, value);
  }
  /** One 16-bit write. */
  write16(offset: number, value: number): void {
    this.#access.write16(offset, value);
  }
  /** One 32-bit write. */
  write32(offset: number, value: number): void {
    this.#access.write32(offset, value);
  }

  /** Vendor ID. */
  vendorId(): number {
    return this.read16(PCI_VENDOR_ID);
  }
  /** Device ID. */
  deviceId(): number {
    return this.read16(PCI_DEVICE_ID);
  }
  /** Revision ID. */
  revision(): number {
    return this.read32(PCI_REVISION_ID) & BYTE_MASK;
  }
  /** Class code (base class, sub-class, programming interface: 24 bits). */
  classCode(): number {
    return this.read32(PCI_REVISION_ID) >>> CLASS_SHIFT;
  }
  /** Header type. */
  headerType(): number {
    return this.read8(PCI_HEADER_TYPE);
  }
  /** Command register. */
  command(): number {
    return this.read16(PCI_COMMAND);
  }
  /** Write the command register. */
  setCommand(value: number): void {
    this.write16(PCI_COMMAND, value & HALF_MASK);
  }
  /** Status register. */
  status(): number {
    return this.read16(PCI_STATUS);
  }

  /**
   * Set Bus Master and Memory Space in the command register (one 16-bit write, skipped when both
   * are already set), then read it back: a device must be a bus master before it can DMA or send
   * MSIs. Throws a VfioError when the bits do not stick.
   */
  enableBusMaster(): void {
    const want = PCI_COMMAND_MASTER | PCI_COMMAND_MEMORY;
    const before = this.command();
    if ((before & want) !== want) this.setCommand(before | want);
    const after = this.command();
    if ((after & want) !== want) {
      throw new VfioError({
        operation: "enableBusMaster",
        device: this.#name,
        message: `PCI_COMMAND reads 0x${after.toString(16)} after setting bus master and ` +
          "memory space",
        hint: "the device may be in a low-power state or gone from the bus",
      });
    }
  }

  /**
   * The standard capability list from the pointer at 0x34, in list order. The walk is
   * bounds-checked (pointers below 0x40 or past the config space end it) and loop-safe (a
   * pointer seen before, or more than 48 entries, ends it).
   */
  capabilities(): PciCapability[] {
    const out: PciCapability[] = [];
    if ((this.status() & PCI_STATUS_CAP_LIST) === 0) return out;
    const seen = new Set<number>();
    let at = this.read8(PCI_CAPABILITY_LIST) & CAP_POINTER_MASK;
    while (at !== 0 && out.length < STD_CAP_TTL) {
      if (
        at < PCI_STD_HEADER_SIZEOF || at + CAP_HEADER_SIZE > Math.min(this.size, PCI_CFG_SPACE_SIZE)
      ) break;
      if (seen.has(at)) break;
      seen.add(at);
      const id = this.read8(at);
      if (id === CAP_ID_END) break;
      out.push({ id, offset: at });
      at = this.read8(at + PCI_CAP_LIST_NEXT) & CAP_POINTER_MASK;
    }
    return out;
  }

  /**
   * The extended capability list from 0x100 (only when the config region is 4096 bytes), in
   * list order, loop-safe and bounds-checked like {@link capabilities}. Entries with id 0
   * (capabilities vfio-pci hides) are followed but not returned.
   */
  extendedCapabilities(): PciExtCapability[] {
    const out: PciExtCapability[] = [];
    if (this.size < PCI_CFG_SPACE_EXP_SIZE) return out;
    const seen = new Set<number>();
    let at = PCI_CFG_SPACE_SIZE;
    for (let ttl = EXT_CAP_TTL; ttl > 0 && at !== 0; ttl--) {
      if (at < PCI_CFG_SPACE_SIZE || at + EXT_CAP_HEADER_SIZE > this.size || seen.has(at)) break;
      seen.add(at);
      const header = this.read32(at);
      if (header === 0 || header === NO_EXT_CONFIG) break;
      const id = header & EXT_ID_MASK;
      if (id !== 0) {
        out.push({ id, version: (header >>> EXT_VERSION_SHIFT) & EXT_VERSION_MASK, offset: at });
      }
      at = (header >>> EXT_NEXT_SHIFT) & EXT_NEXT_MASK;
    }
    return out;
  }

  /** Offset of the first standard capability with `id`, or undefined. */
  findCapability(id: number): number | undefined {
    return this.capabilities().find((c) => c.id === id)?.offset;
  }

  /** Offset of the first extended capability with `id`, or undefined. */
  findExtendedCapability(id: number): number | undefined {
    return this.extendedCapabilities().find((c) => c.id === id)?.offset;
  }

  /** Max PASID Width of the PCIe PASID capability (PASIDs 0 … 2^width − 1), 0 without one. */
  pasidWidth(): number {
    const at = this.findExtendedCapability(PCI_EXT_CAP_ID_PASID);
    if (at === undefined) return 0;
    return (this.read16(at + PCI_PASID_CAP) & PCI_PASID_CAP_WIDTH) >>> PCI_PASID_CAP_WIDTH_SHIFT;
  }

  /** The MSI capability decoded, or undefined when the device has none. */
  msi(): MsiCapability | undefined {
    const offset = this.findCapability(PCI_CAP_ID_MSI);
    if (offset === undefined) return undefined;
    const control = this.read16(offset + PCI_MSI_FLAGS);
    return {
      offset,
      enabled: (control & PCI_MSI_FLAGS_ENABLE) !== 0,
      vectors: 1 << ((control & PCI_MSI_FLAGS_QMASK) >> MSI_QMASK_SHIFT),
      enabledVectors: 1 << ((control & PCI_MSI_FLAGS_QSIZE) >> MSI_QSIZE_SHIFT),
      is64Bit: (control & PCI_MSI_FLAGS_64BIT) !== 0,
      perVectorMasking: (control & PCI_MSI_FLAGS_MASKBIT) !== 0,
    };
  }

  /** The MSI-X capability decoded, or undefined when the device has none. */
  msix(): MsixCapability | undefined {
    const offset = this.findCapability(PCI_CAP_ID_MSIX);
    if (offset === undefined) return undefined;
    const control = this.read16(offset + PCI_MSI_FLAGS);
    const table = this.read32(offset + PCI_MSIX_TABLE);
    const pba = this.read32(offset + PCI_MSIX_PBA);
    return {
      offset,
      enabled: (control & PCI_MSIX_FLAGS_ENABLE) !== 0,
      functionMasked: (control & PCI_MSIX_FLAGS_MASKALL) !== 0,
      tableSize: (control & PCI_MSIX_FLAGS_QSIZE) + 1,
      tableBar: table & PCI_MSIX_BIR_MASK,
      tableOffset: (table & ~PCI_MSIX_BIR_MASK) >>> 0,
      pbaBar: pba & PCI_MSIX_BIR_MASK,
      pbaOffset: (pba & ~PCI_MSIX_BIR_MASK) >>> 0,
    };
  }

  /** The Interrupt Pin register: 0 when the device has no INTx, 1–4 for INTA–INTD. */
  interruptPin(): number {
    return this.read8(PCI_INTERRUPT_PIN);
  }
}
