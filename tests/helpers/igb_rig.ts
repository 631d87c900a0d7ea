/**
 * Register offsets and bits of the 82576 (igb) written out from its datasheet for the model
 * tests, and the rings those tests build by hand in DMA memory.
 */
import assert from "node:assert/strict";
import type { DmaBuffer } from "../../core/dma_space.ts";
import type { IommuModelName } from "../../sim/machine.ts";
import type { SimTestContext } from "../../testing/mod.ts";
import { E1000_TEST_REGS, type NicRig, openNic } from "./nic_rig.ts";

/** Registers (82576 datasheet §8; QEMU answers ICR…IAM at the e1000 offsets). */
export const R = {
  ...E1000_TEST_REGS,
  GPIE: 0x1514,
  EICS: 0x1520,
  EIMS: 0x1524,
  EIAC: 0x152c,
  EICR: 0x1580,
  IVAR0: 0x1700,
  IVAR_MISC: 0x1740,
} as const;
export const rxq = (n: number): number => 0xc000 + 0x40 * n;
export const txq = (n: number): number => 0xe000 + 0x40 * n;
export const Q = {
  BAL: 0x00,
  BAH: 0x04,
  LEN: 0x08,
  SRRCTL: 0x0c,
  HEAD: 0x10,
  TAIL: 0x18,
  DCTL: 0x28,
};
export const QUEUE_ENABLE = 1 << 25;
export const CTRL_RST = 1 << 26;
export const STATUS_LU = 1 << 1;
export const RCTL_EN = 1 << 1;
export const RCTL_BAM = 1 << 15;
export const RCTL_SECRC = 1 << 26;
export const TCTL_EN = 1 << 1;
export const ICR_LSC = 1 << 2;
export const ICR_RXT0 = 1 << 7;
export const ICR_TXDW = 1 << 0;
export const ICR_ASSERTED = 1 << 31;
export const GPIE_MSIX_MODE = 1 << 4;
export const IVAR_VALID = 0x80;
/** Advanced TX data descriptor: DTYP 0011b, DCMD EOP|IFCS|RS|DEXT. */
export const TXD_DATA = (0x3 << 20) | (1 << 24) | (1 << 25) | (1 << 27) | (1 << 29);
export const TXD_CTXT = (0x2 << 20) | (1 << 29);
export const POPTS_IXSM = 1 << 8;
export const POPTS_TXSM = 1 << 9;
export const RXD_DD = 1 << 0;
export const RXD_EOP = 1 << 1;
/** MDIC: write PHY 1 register 0 (BMCR) = AUTOEN | RESTART_AN | 1000 Mb/s FD. */
export const MDIC_RESTART_AUTONEG = (1 << 26) | (1 << 21) | (0 << 16) | 0x1340;
export const AUTONEG_NS = 600_000_000;

export function u32(buf: DmaBuffer, at: number): number {
  return new DataView(buf.bytes.buffer, buf.bytes.byteOffset).getUint32(at, true);
}

export function setU32(buf: DmaBuffer, at: number, v: number): void {
  new DataView(buf.bytes.buffer, buf.bytes.byteOffset).setUint32(at, v >>> 0, true);
}

/** Restart autonegotiation and wait for the link (QEMU's igb starts with the link down). */
export function linkUp(rig: NicRig): void {
  rig.w(R.MDIC, MDIC_RESTART_AUTONEG);
  rig.settle(AUTONEG_NS);
  assert.notEqual(rig.r(R.STATUS) & STATUS_LU, 0, "link up after autonegotiation");
}

/** A receive ring of `count` descriptors with `bufKiB` KiB buffers on queue `n`. */
export function rxRing(rig: NicRig, n: number, count: number, bufKiB = 2) {
  const ring = rig.dev.dma.allocate(count * 16);
  const bufs = rig.dev.dma.allocate(count * bufKiB * 1024);
  const post = (i: number): void => {
    const addr = bufs.iova + BigInt(i * bufKiB * 1024);
    setU32(ring, i * 16, Number(addr & 0xffff_ffffn));
    setU32(ring, i * 16 + 4, Number(addr >> 32n));
    setU32(ring, i * 16 + 8, 0);
    setU32(ring, i * 16 + 12, 0);
  };
  for (let i = 0; i < count; i++) post(i);
  rig.w(rxq(n) + Q.BAL, ring.iovaLow);
  rig.w(rxq(n) + Q.BAH, ring.iovaHigh);
  rig.w(rxq(n) + Q.LEN, count * 16);
  rig.w(rxq(n) + Q.SRRCTL, bufKiB | (1 << 25));
  rig.w(rxq(n) + Q.HEAD, 0);
  rig.w(rxq(n) + Q.DCTL, QUEUE_ENABLE);
  /** Status dword and length of descriptor i's write-back. */
  const wb = (i: number) => ({
    status: u32(ring, i * 16 + 8),
    length: u32(ring, i * 16 + 12) & 0xffff,
  });
  const data = (i: number, len: number) =>
    bufs.bytes.subarray(i * bufKiB * 1024, i * bufKiB * 1024 + len);
  return { ring, bufs, post, wb, data };
}

/** A transmit ring of `count` descriptors with 2 KiB buffers on queue `n`. */
export function txRing(rig: NicRig, n: number, count: number) {
  const ring = rig.dev.dma.allocate(count * 16);
  const bufs = rig.dev.dma.allocate(count * 2048);
  rig.w(txq(n) + Q.BAL, ring.iovaLow);
  rig.w(txq(n) + Q.BAH, ring.iovaHigh);
  rig.w(txq(n) + Q.LEN, count * 16);
  rig.w(txq(n) + Q.HEAD, 0);
  rig.w(txq(n) + Q.TAIL, 0);
  rig.w(txq(n) + Q.DCTL, QUEUE_ENABLE);
  rig.w(R.TCTL, rig.r(R.TCTL) | TCTL_EN);
  /** Put `frame` in slot i as one advanced data descriptor with `popts`. */
  const put = (i: number, frame: Uint8Array, popts = 0, cmd = TXD_DATA): void => {
    bufs.bytes.set(frame, i * 2048);
    const addr = bufs.iova + BigInt(i * 2048);
    setU32(ring, i * 16, Number(addr & 0xffff_ffffn));
    setU32(ring, i * 16 + 4, Number(addr >> 32n));
    setU32(ring, i * 16 + 8, cmd | frame.length);
    setU32(ring, i * 16 + 12, (frame.length << 14) | popts);
  };
  return { ring, bufs, put };
}

/** The NIC with the link up, receiving broadcast and its own address on queue 0. */
export function receiving(
  on: IommuModelName | SimTestContext = "vtd",
  count = 8,
  rctl = RCTL_EN | RCTL_BAM,
) {
  const rig = openNic("igb", on);
  linkUp(rig);
  const rx = rxRing(rig, 0, count);
  rig.w(rxq(0) + Q.TAIL, count - 1);
  rig.w(R.RCTL, rctl);
  return { rig, rx };
}

/** Dwords of descriptor k as the QEMU recordings print them. */
export function dwords(ring: DmaBuffer, k: number): string {
  return [0, 4, 8, 12].map((o) => u32(ring, 16 * k + o).toString(16).padStart(8, "0")).join(" ");
}
