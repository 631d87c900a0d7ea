/**
 * Registers of QEMU's "edu" educational PCI device, from QEMU's docs/specs/edu.rst
 * ("MMIO area spec", "IRQ controller", "DMA controller"). The simulator's model (sim/pci/edu.ts)
 * is written from the same document independently, so a shared misreading cannot pass unnoticed:
 * the real device in the VM bench is the referee.
 *
 * @module
 */

/** PCI vendor id of edu ("PCI specs": 1234:11e8). */
export const EDU_VENDOR_ID = 0x1234;
/** PCI device id of edu. */
export const EDU_DEVICE_ID = 0x11e8;
/** BAR holding the registers ("PCI Region 0", 1 MiB). */
export const EDU_BAR = 0;

/** 0x00 (RO) identification, `0xRRrr00ed`: RR major, rr minor version. */
export const EDU_REG_ID = 0x00;
/** Low byte of the identification register. */
export const EDU_ID_MAGIC = 0xed;
/** 0x04 (RW) liveness check: reads back the bitwise inverse of what was written. */
export const EDU_REG_LIVENESS = 0x04;
/** 0x08 (RW) factorial: the written value is replaced by its factorial. */
export const EDU_REG_FACTORIAL = 0x08;
/** 0x20 (RW) status register. */
export const EDU_REG_STATUS = 0x20;
/** Status bit: computing factorial (RO). */
export const EDU_STATUS_COMPUTING = 0x01;
/** Status bit: raise interrupt after finishing the factorial. */
export const EDU_STATUS_IRQ_FACTORIAL = 0x80;
/** 0x24 (RO) interrupt status: the values that raised the interrupt. */
export const EDU_REG_IRQ_STATUS = 0x24;
/** 0x60 (WO) interrupt raise: ORed into the interrupt status. */
export const EDU_REG_IRQ_RAISE = 0x60;
/** 0x64 (WO) interrupt acknowledge: clears these bits of the interrupt status. */
export const EDU_REG_IRQ_ACK = 0x64;
/** Interrupt status value raised when a factorial computation finishes. */
export const EDU_IRQ_FACTORIAL = 0x001;
/** Interrupt status value raised when a DMA finishes (command bit 0x04). */
export const EDU_IRQ_DMA = 0x100;
/** 0x80 (RW) DMA source address (8-byte register). */
export const EDU_REG_DMA_SRC = 0x80;
/** 0x88 (RW) DMA destination address (8-byte register). */
export const EDU_REG_DMA_DST = 0x88;
/** 0x90 (RW) DMA transfer count. */
export const EDU_REG_DMA_COUNT = 0x90;
/** 0x98 (RW) DMA command register. */
export const EDU_REG_DMA_CMD = 0x98;
/** DMA command: start transfer (reads 1 while the transfer runs). */
export const EDU_DMA_CMD_START = 0x01;
/** DMA command: direction, set = from EDU to RAM, clear = from RAM to EDU. */
export const EDU_DMA_CMD_TO_RAM = 0x02;
/** DMA command: raise interrupt 0x100 when the transfer finishes. */
export const EDU_DMA_CMD_IRQ = 0x04;
/** Offset of the device's DMA buffer in its address space ("DMA controller"). */
export const EDU_DMA_BUFFER = 0x40000;
/** Size of the device's DMA buffer. */
export const EDU_DMA_BUFFER_SIZE = 4096;
/**
 * The device only handles DMA addresses within its dma_mask, 28 bits by default ("Command line
 * switches"); higher bits are clamped away by the device.
 */
export const EDU_DMA_MASK = (1n << 28n) - 1n;
