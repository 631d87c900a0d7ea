/**
 * Registers and descriptor format of the simulated PASID DMA engine, as its specification (the
 * module doc of sim/pci/pasid_dma.ts: "BAR0", "Ring", "Processing", "Completion") states them.
 * This is the driver's own copy, kept apart from the model's sim/pci/pasid_dma_regs.ts so that
 * the two are written against the document rather than against each other. The PASID capability
 * layout is from the PCI Express Base Specification 4.0 ("PCIe 4.0") §7.8.8, named as Linux's
 * include/uapi/linux/pci_regs.h names it.
 *
 * @module
 */

/** PCI vendor id ("PCI": 1234:11f0). */
export const PASID_DMA_VENDOR_ID = 0x1234;
/** PCI device id (simulator-only). */
export const PASID_DMA_DEVICE_ID = 0x11f0;
/** BAR holding the registers ("BAR0: 4 KiB"). */
export const PASID_DMA_BAR = 0;

/** 0x00 (RO) identification: device id in bits 31:16, version in bits 15:0. */
export const PDMA_REG_ID = 0x00;
/** Shift of the device id in the identification register. */
export const PDMA_ID_DEVICE_SHIFT = 16;
/** 0x04 (RO) capabilities. */
export const PDMA_REG_CAPS = 0x04;
/** CAPS bits 4:0: log2 of the largest ring. */
export const PDMA_CAPS_RING_LOG2 = 0x1f;
/** CAPS bits 12:8: log2 of the largest transfer (shift). */
export const PDMA_CAPS_XFER_LOG2_SHIFT = 8;
/** CAPS transfer field mask after the shift. */
export const PDMA_CAPS_XFER_LOG2 = 0x1f;
/** 0x08 (RO) status. */
export const PDMA_REG_STATUS = 0x08;
/** STATUS bit 0: enabled. */
export const PDMA_STATUS_ENABLED = 0x1;
/** STATUS bit 1: busy. */
export const PDMA_STATUS_BUSY = 0x2;
/** STATUS bit 2: halted on a ring error. */
export const PDMA_STATUS_HALTED = 0x4;
/** 0x0c (RW) control. */
export const PDMA_REG_CONTROL = 0x0c;
/** CONTROL bit 0: enable. */
export const PDMA_CONTROL_ENABLE = 0x1;
/** CONTROL bit 1: reset the engine (self-clearing). */
export const PDMA_CONTROL_RESET = 0x2;
/** CONTROL bit 2: MSI on completion. */
export const PDMA_CONTROL_INT_ENABLE = 0x4;
/** 0x10 (RW while disabled) ring base, bits 31:0. */
export const PDMA_REG_RING_BASE_LO = 0x10;
/** 0x14 (RW while disabled) ring base, bits 63:32. */
export const PDMA_REG_RING_BASE_HI = 0x14;
/** 0x18 (RW while disabled) ring size in descriptors (a power of two, at least 2). */
export const PDMA_REG_RING_SIZE = 0x18;
/** Smallest ring. */
export const PDMA_RING_MIN = 2;
/** 0x20 (RO) head: the next descriptor the device processes. */
export const PDMA_REG_HEAD = 0x20;
/** 0x24 (RW) tail doorbell. */
export const PDMA_REG_TAIL = 0x24;
/** 0x28 (RO) descriptors completed since enable. */
export const PDMA_REG_COMPLETED = 0x28;
/** 0x30 last error code; any write clears the error block. */
export const PDMA_REG_ERROR = 0x30;
/** 0x34 (RO) PASID of the failed request, descriptor dword-0 format. */
export const PDMA_REG_ERROR_PASID = 0x34;
/** 0x38 (RO) address of the failed request, bits 31:0. */
export const PDMA_REG_ERROR_ADDR_LO = 0x38;
/** 0x3c (RO) address of the failed request, bits 63:32. */
export const PDMA_REG_ERROR_ADDR_HI = 0x3c;
/** 0x40 (RO) ring index of the failed descriptor. */
export const PDMA_REG_ERROR_DESC = 0x40;
/** 0x44 (RO) interrupt status. */
export const PDMA_REG_INT_STATUS = 0x44;
/** 0x48 (WO) interrupt acknowledge (write 1s to clear). */
export const PDMA_REG_INT_ACK = 0x48;

/** Descriptor size in bytes; the ring base must be aligned to it. */
export const PDMA_DESC_SIZE = 32;
/** Descriptor dword 0: flags (PASID valid, PASID). */
export const PDMA_DESC_FLAGS = 0x00;
/** Descriptor dword 1: opcode. */
export const PDMA_DESC_OPCODE = 0x04;
/** Descriptor qword at 0x08: source address or fill pattern byte. */
export const PDMA_DESC_SRC = 0x08;
/** Descriptor qword at 0x10: destination address. */
export const PDMA_DESC_DST = 0x10;
/** Descriptor dword at 0x18: length in bytes. */
export const PDMA_DESC_LENGTH = 0x18;
/** Descriptor dword at 0x1c: completion, status in bits 7:0 (driver writes 0). */
export const PDMA_DESC_COMPLETION = 0x1c;
/** Flags bit 31: PASID valid. */
export const PDMA_FLAG_PASID_VALID = 0x8000_0000;
/** Flags bits 19:0: the PASID. */
export const PDMA_FLAG_PASID_MASK = 0x000f_ffff;
/** Completion status byte mask. */
export const PDMA_COMPLETION_STATUS = 0xff;
/** Opcode 1: memcpy. */
export const PDMA_OP_MEMCPY = 1;
/** Opcode 2: fill with the byte in SRC bits 7:0. */
export const PDMA_OP_FILL = 2;

/** Completion status 0: not done yet. */
export const PDMA_CS_NONE = 0x00;
/** Completion status 1: success. */
export const PDMA_CS_SUCCESS = 0x01;
/** Completion status 2: unknown opcode. */
export const PDMA_CS_BAD_OPCODE = 0x02;
/** Completion status 3: length beyond the transfer limit. */
export const PDMA_CS_BAD_LENGTH = 0x03;
/** Completion status 4: PASID valid while PASID Enable is clear. */
export const PDMA_CS_PASID_DISABLED = 0x04;
/** Completion status 5: PASID beyond Max PASID Width. */
export const PDMA_CS_BAD_PASID = 0x05;
/** Completion status 6: reserved flag bits set. */
export const PDMA_CS_BAD_FLAGS = 0x06;
/** Completion status 7: a source read failed. */
export const PDMA_CS_READ_FAULT = 0x07;
/** Completion status 8: a destination write failed. */
export const PDMA_CS_WRITE_FAULT = 0x08;
/** ERROR code 0x10: a descriptor fetch failed (engine halted). */
export const PDMA_ERR_RING_FETCH_FAULT = 0x10;
/** ERROR code 0x11: a completion write failed (engine halted). */
export const PDMA_ERR_COMPLETION_FAULT = 0x11;
/** ERROR code 0x12: bad ring base or size at enable. */
export const PDMA_ERR_BAD_RING_CONFIG = 0x12;
