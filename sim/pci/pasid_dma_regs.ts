/**
 * The layout of the simulated PASID DMA engine (sim/pci/pasid_dma.ts, whose module doc is the
 * device's specification): register and descriptor constants, the descriptor decoder, and the
 * config space with its extended capabilities. The PCIe extended capability constants are named
 * as Linux's include/uapi/linux/pci_regs.h names them, with the section of the PCI Express Base
 * Specification 4.0 ("PCIe 4.0") that defines them.
 *
 * @module
 */

import { PciConfigSpace } from "./config.ts";
import type { BarDecl, PciConfig } from "./device.ts";
import {
  PCI_ATS_CAP,
  PCI_ATS_CAP_PAGE_ALIGNED,
  PCI_ATS_CTRL,
  PCI_ATS_CTRL_ENABLE,
  PCI_ATS_CTRL_STU_MASK,
  PCI_CFG_SPACE_EXT_START,
  PCI_EXT_CAP_ATS_SIZEOF,
  PCI_EXT_CAP_DSN_SIZEOF,
  PCI_EXT_CAP_ID_ATS,
  PCI_EXT_CAP_ID_DSN,
  PCI_EXT_CAP_ID_PASID,
  PCI_EXT_CAP_ID_PRI,
  PCI_EXT_CAP_NEXT_SHIFT,
  PCI_EXT_CAP_PASID_SIZEOF,
  PCI_EXT_CAP_VER_SHIFT,
  PCI_PASID_CAP,
  PCI_PASID_CAP_WIDTH_SHIFT,
  PCI_PASID_CTRL,
  PCI_PASID_CTRL_ENABLE,
  PCI_PRI_ALLOC_REQ,
  PCI_PRI_CTRL,
  PCI_PRI_CTRL_ENABLE,
  PCI_PRI_MAX_REQ,
  PCI_PRI_STATUS,
  PCI_PRI_STATUS_PASID,
  PCI_PRI_STATUS_STOPPED,
} from "./pci_regs.ts";

/** PCI vendor id (QEMU's, as edu uses; this device exists only in the simulator). */
export const PASID_DMA_VENDOR_ID = 0x1234;
/** PCI device id: simulator-only, not assigned by anyone and not a QEMU device. */
export const PASID_DMA_DEVICE_ID = 0x11f0;
/** Revision id. */
export const PASID_DMA_REVISION = 0x01;
/** Class code: base 0x08 (system peripheral), subclass 0x80 (other), prog-if 0. */
export const PASID_DMA_CLASS_CODE = 0x088000;
/** Serial number in the Device Serial Number capability. */
export const PASID_DMA_SERIAL = 0x1234_11f0_0000_0001n;

/** BAR0 size: one 4 KiB register page. */
export const PASID_DMA_BAR0_SIZE = 0x1000;

/** BAR0 register offsets; every register is 32 bits wide and takes 4-byte accesses only. */
export const PDMA_REG = {
  /** RO: identification, {@link PDMA_ID_VALUE}. */
  ID: 0x00,
  /** RO: capabilities (ring and transfer limits, see PDMA_CAPS_*). */
  CAPS: 0x04,
  /** RO: engine status (PDMA_STATUS_*). */
  STATUS: 0x08,
  /** RW: engine control (PDMA_CONTROL_*). */
  CONTROL: 0x0c,
  /** RW while disabled: ring base bus address, bits 31:0 (32-byte aligned). */
  RING_BASE_LO: 0x10,
  /** RW while disabled: ring base bus address, bits 63:32. */
  RING_BASE_HI: 0x14,
  /** RW while disabled: ring size in descriptors (a power of two, 2 … 2^CAPS.RING_LOG2). */
  RING_SIZE: 0x18,
  /** RO: index of the next descriptor the device will process. */
  HEAD: 0x20,
  /** RW doorbell: index one past the last descriptor the driver has written. */
  TAIL: 0x24,
  /** RO: descriptors completed since the engine was enabled (modulo 2^32). */
  COMPLETED: 0x28,
  /** RO: code of the last error (PDMA_STATUS_* or PDMA_ERR_*); any write clears the error block. */
  ERROR: 0x30,
  /** RO: PASID of the failed request, in the descriptor's dword-0 format (0: no PASID). */
  ERROR_PASID: 0x34,
  /** RO: bus address of the failed request, bits 31:0. */
  ERROR_ADDR_LO: 0x38,
  /** RO: bus address of the failed request, bits 63:32. */
  ERROR_ADDR_HI: 0x3c,
  /** RO: ring index of the descriptor that failed. */
  ERROR_DESC: 0x40,
  /** RO: interrupt causes (PDMA_INT_*). */
  INT_STATUS: 0x44,
  /** WO: write 1s to clear interrupt causes. */
  INT_ACK: 0x48,
} as const;

/** Identification register value: device id 0x11f0 in bits 31:16, version 1.0 in bits 15:0. */
export const PDMA_ID_VALUE = 0x11f0_0100;
/** CAPS bits 4:0: log2 of the largest ring. */
export const PDMA_CAPS_RING_LOG2_MASK = 0x1f;
/** CAPS bits 12:8: log2 of the largest transfer of one descriptor. */
export const PDMA_CAPS_XFER_LOG2_SHIFT = 8;
/** CAPS field mask of the transfer log2 (after the shift). */
export const PDMA_CAPS_XFER_LOG2_MASK = 0x1f;
/** log2 of the largest ring (4096 descriptors). */
export const PDMA_RING_LOG2_MAX = 12;
/** log2 of the largest transfer (1 MiB). */
export const PDMA_XFER_LOG2_MAX = 20;
/** Smallest ring. */
export const PDMA_RING_MIN = 2;

/** STATUS: the engine is enabled. */
export const PDMA_STATUS_ENABLED = 1 << 0;
/** STATUS: descriptors are pending (HEAD ≠ TAIL) or one is in flight. */
export const PDMA_STATUS_BUSY = 1 << 1;
/** STATUS: the engine halted on a ring error (see ERROR); re-enabling or CONTROL.RESET clears it. */
export const PDMA_STATUS_HALTED = 1 << 2;

/** CONTROL: enable the engine (checks the ring configuration; HEAD, TAIL, COMPLETED start at 0). */
export const PDMA_CONTROL_ENABLE = 1 << 0;
/** CONTROL: reset the engine registers (self-clearing; config space is untouched). */
export const PDMA_CONTROL_RESET = 1 << 1;
/** CONTROL: send MSI vector 0 when a descriptor completes. */
export const PDMA_CONTROL_INT_ENABLE = 1 << 2;

/** INT_STATUS: a descriptor completed (successfully or not). */
export const PDMA_INT_COMPLETION = 1 << 0;
/** INT_STATUS: an error was recorded in the ERROR block. */
export const PDMA_INT_ERROR = 1 << 1;

/** Descriptor size in bytes (and the ring base alignment). */
export const PDMA_DESC_SIZE = 32;
/** Descriptor field offsets (little-endian). */
export const PDMA_DESC = {
  /** u32: bit 31 PASID valid, bits 19:0 PASID; other bits reserved (must be 0). */
  FLAGS: 0x00,
  /** u32: PDMA_OP_*. */
  OPCODE: 0x04,
  /** u64: memcpy source address, or the fill pattern in bits 7:0. */
  SRC: 0x08,
  /** u64: destination address. */
  DST: 0x10,
  /** u32: bytes to transfer. */
  LENGTH: 0x18,
  /** u32: completion status, written by the device (bits 7:0; the driver writes 0). */
  COMPLETION: 0x1c,
} as const;
/** Descriptor flags: the data accesses carry the PASID in bits 19:0. */
export const PDMA_FLAG_PASID_VALID = 0x8000_0000;
/** Descriptor flags: the PASID field. */
export const PDMA_FLAG_PASID_MASK = 0x000f_ffff;
/** Descriptor flags: bits that must be zero. */
export const PDMA_FLAG_RESERVED = 0x7ff0_0000;
/** Completion dword: the status byte. */
export const PDMA_COMPLETION_STATUS_MASK = 0xff;

/** Opcode: copy LENGTH bytes from SRC to DST. */
export const PDMA_OP_MEMCPY = 1;
/** Opcode: write LENGTH copies of the byte SRC[7:0] at DST. */
export const PDMA_OP_FILL = 2;

/** Completion status (and ERROR code) values. */
export const PDMA_STATUS = {
  /** Not completed yet (what the driver writes). */
  NONE: 0x00,
  /** Done. */
  SUCCESS: 0x01,
  /** Unknown opcode; nothing accessed. */
  BAD_OPCODE: 0x02,
  /** LENGTH beyond the transfer limit; nothing accessed. */
  BAD_LENGTH: 0x03,
  /** PASID valid while PASID Enable is clear in config space; nothing accessed. */
  PASID_DISABLED: 0x04,
  /** PASID at or above 2^(Max PASID Width); nothing accessed. */
  BAD_PASID: 0x05,
  /** Reserved flag bits set; nothing accessed. */
  BAD_FLAGS: 0x06,
  /** A source read failed; the pages before it were transferred. */
  READ_FAULT: 0x07,
  /** A destination write failed; the pages before it were transferred. */
  WRITE_FAULT: 0x08,
} as const;

/** ERROR codes of ring-level errors (no completion can be written for them). */
export const PDMA_ERR = {
  /** A descriptor fetch failed: the engine halts. */
  RING_FETCH_FAULT: 0x10,
  /** Writing a completion failed: the engine halts. */
  COMPLETION_FAULT: 0x11,
  /** ENABLE with a bad ring base or size: the engine stays disabled. */
  BAD_RING_CONFIG: 0x12,
  /** TAIL written with an index outside the ring: the write is ignored. */
  BAD_TAIL: 0x13,
} as const;

/** Offset of the Device Serial Number capability (the first extended capability). */
export const PASID_DMA_DSN_OFFSET: number = PCI_CFG_SPACE_EXT_START;
/** Offset of the PASID capability (the second and last). */
export const PASID_DMA_PASID_OFFSET: number = PASID_DMA_DSN_OFFSET + PCI_EXT_CAP_DSN_SIZEOF;

const U32N = 0xffff_ffffn;
const HI_SHIFT = 32n;
const BYTE = 0xff;
const DWORD = 4;
const EXT_CAP_VERSION = 1;

/**
 * The device's config space: header, BAR0, PCI Express endpoint with FLR, one 64-bit MSI vector,
 * and the DSN and PASID extended capabilities (Max PASID Width `pasidWidth`). PciConfigSpace
 * keeps no write masks for extended capabilities it did not add, so a write listener applies
 * PASID Enable, the only writable bit of PASID Control; reset clears it.
 */
/** Offset of the ATS capability (present with the `pri` option), after PASID. */
export const PASID_DMA_ATS_OFFSET: number = PASID_DMA_PASID_OFFSET + PCI_EXT_CAP_PASID_SIZEOF;
/** Offset of the PRI capability (present with the `pri` option), after ATS. */
export const PASID_DMA_PRI_OFFSET: number = PASID_DMA_ATS_OFFSET + PCI_EXT_CAP_ATS_SIZEOF;
/** Outstanding Page Request Capacity of the PRI capability. */
export const PASID_DMA_PRI_CAPACITY = 32;

/** Page request options of {@link createPasidDmaConfig}. */
export interface PasidDmaPriConfig {
  /** PRG Response PASID Required in the PRI status register. */
  readonly pasidRequired: boolean;
}

/**
 * The config space: DSN, PASID and, with `pri`, ATS and PRI extended capabilities (see the
 * module doc of ./pasid_dma.ts).
 */
export function createPasidDmaConfig(
  bar: BarDecl,
  pasidWidth: number,
  pri?: PasidDmaPriConfig,
): PciConfigSpace {
  const c = new PciConfigSpace({
    vendorId: PASID_DMA_VENDOR_ID,
    deviceId: PASID_DMA_DEVICE_ID,
    revision: PASID_DMA_REVISION,
    classCode: PASID_DMA_CLASS_CODE,
    express: true,
  });
  // Raw bytes first: the add* calls below make them part of the power-on state.
  const header = (id: number, next: number): number =>
    (id | (EXT_CAP_VERSION << PCI_EXT_CAP_VER_SHIFT) | (next << PCI_EXT_CAP_NEXT_SHIFT)) >>> 0;
  c.set(PASID_DMA_DSN_OFFSET, DWORD, header(PCI_EXT_CAP_ID_DSN, PASID_DMA_PASID_OFFSET));
  c.set(PASID_DMA_DSN_OFFSET + DWORD, DWORD, Number(PASID_DMA_SERIAL & U32N));
  c.set(PASID_DMA_DSN_OFFSET + 2 * DWORD, DWORD, Number(PASID_DMA_SERIAL >> HI_SHIFT));
  c.set(
    PASID_DMA_PASID_OFFSET,
    DWORD,
    header(PCI_EXT_CAP_ID_PASID, pri ? PASID_DMA_ATS_OFFSET : 0),
  );
  c.set(PASID_DMA_PASID_OFFSET + PCI_PASID_CAP, 2, pasidWidth << PCI_PASID_CAP_WIDTH_SHIFT);
  c.set(PASID_DMA_PASID_OFFSET + PCI_PASID_CTRL, 2, 0);
  // Registers whose writable bits the device latches after a config write.
  const latched: { reg: number; size: number; bits: number }[] = [
    { reg: PASID_DMA_PASID_OFFSET + PCI_PASID_CTRL, size: 2, bits: PCI_PASID_CTRL_ENABLE },
  ];
  if (pri) {
    const ats = PASID_DMA_ATS_OFFSET;
    c.set(ats, DWORD, header(PCI_EXT_CAP_ID_ATS, PASID_DMA_PRI_OFFSET));
    // Invalidate Queue Depth 0 (= 32), page-aligned requests; ATS disabled.
    c.set(ats + PCI_ATS_CAP, 2, PCI_ATS_CAP_PAGE_ALIGNED);
    c.set(ats + PCI_ATS_CTRL, 2, 0);
    latched.push({
      reg: ats + PCI_ATS_CTRL,
      size: 2,
      bits: PCI_ATS_CTRL_ENABLE | PCI_ATS_CTRL_STU_MASK,
    });
    const p = PASID_DMA_PRI_OFFSET;
    c.set(p, DWORD, header(PCI_EXT_CAP_ID_PRI, 0));
    c.set(p + PCI_PRI_CTRL, 2, 0);
    c.set(
      p + PCI_PRI_STATUS,
      2,
      PCI_PRI_STATUS_STOPPED | (pri.pasidRequired ? PCI_PRI_STATUS_PASID : 0),
    );
    c.set(p + PCI_PRI_MAX_REQ, DWORD, PASID_DMA_PRI_CAPACITY);
    c.set(p + PCI_PRI_ALLOC_REQ, DWORD, 0);
    latched.push({ reg: p + PCI_PRI_CTRL, size: 2, bits: PCI_PRI_CTRL_ENABLE });
    latched.push({ reg: p + PCI_PRI_ALLOC_REQ, size: DWORD, bits: 0xffff_ffff });
  }
  c.addBar(bar);
  c.addPciExpress({ flr: true });
  c.addMsi({ vectors: 1, address64: true, perVectorMask: false });
  c.onWrite((offset, size, value) => {
    for (const { reg, size: regSize, bits } of latched) {
      for (let i = 0; i < regSize; i++) {
        const at = reg + i;
        if (at < offset || at >= offset + size) continue;
        const mask = (bits >>> (8 * i)) & BYTE;
        const byte = (value >>> (8 * (at - offset))) & BYTE;
        c.set(at, 1, (c.get(at, 1) & ~mask) | (byte & mask));
      }
    }
    if (pri) {
      // Stopped follows Enable: no page request is ever left outstanding here.
      const status = PASID_DMA_PRI_OFFSET + PCI_PRI_STATUS;
      const enabled = (c.get(PASID_DMA_PRI_OFFSET + PCI_PRI_CTRL, 2) & PCI_PRI_CTRL_ENABLE) !== 0;
      c.set(
        status,
        2,
        (c.get(status, 2) & ~PCI_PRI_STATUS_STOPPED) | (enabled ? 0 : PCI_PRI_STATUS_STOPPED),
      );
    }
  });
  return c;
}

/** PASID Enable is set in the device's PASID capability. */
export function pasidEnabled(config: PciConfig): boolean {
  return (config.read(PASID_DMA_PASID_OFFSET + PCI_PASID_CTRL, 2) & PCI_PASID_CTRL_ENABLE) !== 0;
}

/** A decoded descriptor, with its ring index and bus address. */
export interface PasidDmaDescriptor {
  /** Ring index. */
  readonly index: number;
  /** Bus address of the descriptor (requester-id space). */
  readonly address: bigint;
  /** Dword 0: PASID valid and PASID. */
  readonly flags: number;
  /** PDMA_OP_*. */
  readonly opcode: number;
  /** Source address or fill pattern. */
  readonly src: bigint;
  /** Destination address. */
  readonly dst: bigint;
  /** Bytes to transfer. */
  readonly length: number;
}

/** Decode the 32 little-endian bytes of a descriptor fetched from ring slot `index`. */
export function decodePasidDmaDescriptor(
  raw: Uint8Array,
  index: number,
  address: bigint,
): PasidDmaDescriptor {
  const u32 = (at: number): number =>
    (raw[at] | (raw[at + 1] << 8) | (raw[at + 2] << 16) | (raw[at + 3] << 24)) >>> 0;
  const u64 = (at: number): bigint => BigInt(u32(at)) | (BigInt(u32(at + DWORD)) << HI_SHIFT);
  return {
    index,
    address,
    flags: u32(PDMA_DESC.FLAGS),
    opcode: u32(PDMA_DESC.OPCODE),
    src: u64(PDMA_DESC.SRC),
    dst: u64(PDMA_DESC.DST),
    length: u32(PDMA_DESC.LENGTH),
  };
}
