/**
 * Registers and bits of the Intel 82574L (QEMU's `e1000e`, 8086:10d3) that its sibling the 82576
 * does not share, from the 82574 GbE Controller Family Datasheet: interrupt registers (§10.2.4:
 * ICR, IMS, IMC, EIAC, IVAR), receive filter control (§10.2: RFCTL, which selects the extended
 * receive descriptor of §7.1), the queue register blocks, and the legacy transmit descriptor
 * (§7.2). The shared ones are in drivers/e1000/registers.ts.
 *
 * @module
 */

/** PCI device id of the 82574L. */
export const E1000E_DEVICE_ID = 0x10d3;

// Queue register blocks (§10.2): queue n's registers at base + n × stride.
/** Receive queue 0's block (RDBAL0 … RXDCTL0). */
export const E1000E_RX_QUEUE_BASE = 0x02800;
/** Transmit queue 0's block (TDBAL0 … TXDCTL0). */
export const E1000E_TX_QUEUE_BASE = 0x03800;
/** Distance between queue blocks. */
export const E1000E_QUEUE_STRIDE = 0x100;

/** Receive Filter Control. */
export const E1000E_RFCTL = 0x05008;
/** RFCTL.EXSTEN (bit 15): extended receive descriptors (status/length write-back in words 2-3). */
export const E1000E_RFCTL_EXSTEN = 1 << 15;

/** CTRL_EXT.PBA_support (bit 31): MSI-X pending bits; required with MSI-X. */
export const E1000E_CTRL_EXT_PBA_CLR = 1 << 31;

// Interrupts (§10.2.4).
/** Interrupt Cause Read (read clears; writing 1s clears). */
export const E1000E_ICR = 0x000c0;
/** Interrupt Cause Set: software raises causes, as the hardware would. */
export const E1000E_ICS = 0x000c8;
/** Interrupt Mask Set/Read. */
export const E1000E_IMS = 0x000d0;
/** Interrupt Mask Clear. */
export const E1000E_IMC = 0x000d8;
/** Extended Interrupt Auto Clear: ICR bits 24:20 cleared when their MSI-X message is sent. */
export const E1000E_EIAC = 0x000dc;
/** Interrupt Vector Allocation: MSI-X vector per queue cause. */
export const E1000E_IVAR = 0x000e4;
/** ICR bit 0, TXDW: a transmit descriptor was written back. */
export const E1000E_ICR_TXDW = 1 << 0;
/** ICR bit 4, RXDMT0: the receive ring fell below its minimum threshold. */
export const E1000E_ICR_RXDMT0 = 1 << 4;
/** ICR bit 6, RXO: receiver overrun (no room). */
export const E1000E_ICR_RXO = 1 << 6;
/** ICR bit 7, RXT0: receiver timer (a frame was written). */
export const E1000E_ICR_RXT0 = 1 << 7;
/** ICR bit 20, RXQ0: receive queue 0 wrote back (MSI-X mode). */
export const E1000E_ICR_RXQ0 = 1 << 20;
/** IVAR field of receive queue 0: bits 3:0 (vector in 2:0, valid in 3). */
export const E1000E_IVAR_RXQ0_SHIFT = 0;
/** IVAR entry: the vector is valid. */
export const E1000E_IVAR_VALID = 0x8;
/** The receive causes the MSI fallback unmasks. */
export const E1000E_MSI_RX_CAUSES = E1000E_ICR_RXT0 | E1000E_ICR_RXO | E1000E_ICR_RXDMT0;
