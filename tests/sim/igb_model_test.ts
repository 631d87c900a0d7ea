/**
 * The simulated 82576 (igb) driven through the simulated kernel like a driver would: raw
 * register writes to BAR 0 (offsets written out from the 82576 datasheet here, not imported from
 * the model), descriptors built by hand in DMA memory from core's DmaSpace, frames on the
 * machine's Ethernet segment.
 */
import assert from "node:assert/strict";
import type { DmaBuffer } from "../../core/dma_space.ts";
import type { IommuModelName } from "../../sim/machine.ts";
import {
  BROADCAST,
  NIC_MAC,
  type NicRig,
  openNic,
  rawFrame,
  udpChecksumsOk,
  udpFrame,
} from "../helpers/nic_rig.ts";

/** Registers (82576 datasheet §8; QEMU answers ICR…IAM at the e1000 offsets). */
const R = {
  CTRL: 0x0000,
  STATUS: 0x0008,
  EERD: 0x0014,
  MDIC: 0x0020,
  ICR: 0x00c0,
  ICS: 0x00c8,
  IMS: 0x00d0,
  IMC: 0x00d8,
  RCTL: 0x0100,
  TCTL: 0x0400,
  GPIE: 0x1514,
  EICS: 0x1520,
  EIMS: 0x1524,
  EIAC: 0x152c,
  EICR: 0x1580,
  IVAR0: 0x1700,
  IVAR_MISC: 0x1740,
  RXCSUM: 0x5000,
  RAL0: 0x5400,
  RAH0: 0x5404,
  MRQC: 0x5818,
  RETA: 0x5c00,
  RSSRK: 0x5c80,
  MPC: 0x4010,
  GPRC: 0x4074,
  GPTC: 0x4080,
  GORCL: 0x4088,
  GORCH: 0x408c,
  RNBC: 0x40a0,
  RUC: 0x40a4,
  TPR: 0x40d0,
  TPT: 0x40d4,
} as const;
const rxq = (n: number): number => 0xc000 + 0x40 * n;
const txq = (n: number): number => 0xe000 + 0x40 * n;
const Q = { BAL: 0x00, BAH: 0x04, LEN: 0x08, SRRCTL: 0x0c, HEAD: 0x10, TAIL: 0x18, DCTL: 0x28 };
const QUEUE_ENABLE = 1 << 25;
const CTRL_RST = 1 << 26;
const STATUS_LU = 1 << 1;
const RCTL_EN = 1 << 1;
const RCTL_BAM = 1 << 15;
const RCTL_SECRC = 1 << 26;
const TCTL_EN = 1 << 1;
const ICR_LSC = 1 << 2;
const ICR_RXT0 = 1 << 7;
const ICR_TXDW = 1 << 0;
const ICR_ASSERTED = 1 << 31;
const GPIE_MSIX_MODE = 1 << 4;
const IVAR_VALID = 0x80;
/** Advanced TX data descriptor: DTYP 0011b, DCMD EOP|IFCS|RS|DEXT. */
const TXD_DATA = (0x3 << 20) | (1 << 24) | (1 << 25) | (1 << 27) | (1 << 29);
const TXD_CTXT = (0x2 << 20) | (1 << 29);
const POPTS_IXSM = 1 << 8;
const POPTS_TXSM = 1 << 9;
const RXD_DD = 1 << 0;
const RXD_EOP = 1 << 1;
/** MDIC: write PHY 1 register 0 (BMCR) = AUTOEN | RESTART_AN | 1000 Mb/s FD. */
const MDIC_RESTART_AUTONEG = (1 << 26) | (1 << 21) | (0 << 16) | 0x1340;
const AUTONEG_NS = 600_000_000;

function u32(buf: DmaBuffer, at: number): number {
  return new DataView(buf.bytes.buffer, buf.bytes.byteOffset).getUint32(at, true);
}

function setU32(buf: DmaBuffer, at: number, v: number): void {
  new DataView(buf.bytes.buffer, buf.bytes.byteOffset).setUint32(at, v >>> 0, true);
}

/** Restart autonegotiation and wait for the link (QEMU's igb starts with the link down). */
function linkUp(rig: NicRig): void {
  rig.w(R.MDIC, MDIC_RESTART_AUTONEG);
  rig.settle(AUTONEG_NS);
  assert.notEqual(rig.r(R.STATUS) & STATUS_LU, 0, "link up after autonegotiation");
}

/** A receive ring of `count` descriptors with `bufKiB` KiB buffers on queue `n`. */
function rxRing(rig: NicRig, n: number, count: number, bufKiB = 2) {
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
function txRing(rig: NicRig, n: number, count: number) {
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
function receiving(iommu: IommuModelName = "vtd", count = 8, rctl = RCTL_EN | RCTL_BAM) {
  const rig = openNic("igb", iommu);
  linkUp(rig);
  const rx = rxRing(rig, 0, count);
  rig.w(rxq(0) + Q.TAIL, count - 1);
  rig.w(R.RCTL, rctl);
  return { rig, rx };
}

Deno.test({
  name: "igb model: CTRL.RST self-clears and brings the registers back to reset values",
  permissions: "none",
  fn() {
    const rig = openNic("igb");
    rig.w(R.RCTL, RCTL_EN | RCTL_BAM);
    rig.w(R.IMS, ICR_LSC);
    rig.w(R.GPIE, GPIE_MSIX_MODE);
    const ctrl = rig.r(R.CTRL);
    rig.w(R.CTRL, ctrl | CTRL_RST);
    assert.equal(rig.r(R.CTRL) & CTRL_RST, 0, "RST reads back clear");
    assert.equal(rig.r(R.CTRL), 0x0010_0209, "CTRL reset value (QEMU 10)");
    assert.equal(rig.r(R.RCTL), 0);
    assert.equal(rig.r(R.IMS), 0);
    assert.equal(rig.r(R.GPIE), 0);
    assert.equal(rig.r(R.STATUS) & STATUS_LU, 0, "link down until autonegotiation, as QEMU");
    rig.dev.close();
  },
});

Deno.test({
  name: "igb model: NVM words 0x00–0x3F sum to 0xBABA and carry the MAC that RAL0/RAH0 hold",
  permissions: "none",
  fn() {
    const rig = openNic("igb");
    const word = (a: number): number => {
      rig.w(R.EERD, (a << 2) | 1);
      const v = rig.r(R.EERD);
      assert.notEqual(v & 2, 0, `EERD DONE for word ${a}`);
      return v >>> 16;
    };
    let sum = 0;
    for (let a = 0; a < 0x40; a++) sum = (sum + word(a)) & 0xffff;
    assert.equal(sum, 0xbaba);
    const mac = [0, 1, 2].flatMap((a) => [word(a) & 0xff, word(a) >> 8]);
    assert.deepEqual(mac, [...NIC_MAC]);
    assert.equal(word(0x0b), 0x10c9, "device id word");
    assert.equal(rig.r(R.RAL0), 0x1200_5452);
    assert.equal(rig.r(R.RAH0), 0x8000_5634, "AV | 56:34");
    rig.w(R.EERD, (0x400 << 2) | 1);
    assert.equal(rig.r(R.EERD) & 2, 0, "no DONE beyond the 1024-word NVM");
    rig.dev.close();
  },
});

Deno.test({
  name: "igb model: link — autonegotiation raises LU and LSC; setLink down/up raises LSC again",
  permissions: "none",
  fn() {
    const rig = openNic("igb");
    assert.equal(rig.r(R.STATUS) & STATUS_LU, 0);
    rig.w(R.CTRL, rig.r(R.CTRL) | (1 << 6)); // SLU does not bring QEMU's link up
    rig.settle(AUTONEG_NS);
    assert.equal(rig.r(R.STATUS) & STATUS_LU, 0);
    linkUp(rig);
    assert.equal(rig.r(R.ICR) & ICR_LSC, ICR_LSC, "LSC after autonegotiation");
    assert.equal(rig.r(R.ICR), 0, "ICR cleared by the read (IMS = 0)");
    rig.nic.setLink(false);
    assert.equal(rig.r(R.STATUS) & STATUS_LU, 0);
    assert.equal(rig.r(R.ICR) & ICR_LSC, ICR_LSC);
    rig.nic.setLink(true);
    assert.equal(rig.r(R.STATUS) & STATUS_LU, 0, "up again only after autonegotiation");
    rig.settle(AUTONEG_NS);
    assert.notEqual(rig.r(R.STATUS) & STATUS_LU, 0);
    assert.equal(rig.r(R.ICR) & ICR_LSC, ICR_LSC);
    rig.dev.close();
  },
});

for (const iommu of ["vtd", "smmuv3", "virtio-iommu", "spapr"] as const) {
  Deno.test({
    name: `igb model (${iommu}): a frame sent lands on the wire; DD is written back; GPTC counts`,
    permissions: "none",
    fn() {
      const rig = openNic("igb", iommu);
      const tx = txRing(rig, 0, 8);
      const frame = udpFrame({ dst: BROADCAST, payload: 100 });
      tx.put(0, frame);
      rig.w(txq(0) + Q.TAIL, 1);
      rig.settle();
      assert.equal(rig.wire.length, 1);
      assert.deepEqual(rig.wire[0], frame);
      assert.equal(u32(tx.ring, 12) & 1, 1, "DD in the status dword");
      assert.equal(rig.r(txq(0) + Q.HEAD), 1);
      assert.equal(rig.r(R.GPTC), 1);
      assert.equal(rig.r(R.GPTC), 0, "GPTC clears when read");
      assert.equal(rig.r(R.TPT), 1);
      rig.dev.close();
    },
  });

  Deno.test({
    name: `igb model (${iommu}): a frame from the wire lands in a buffer with DD, EOP, length`,
    permissions: "none",
    fn() {
      const { rig, rx } = receiving(iommu);
      const frame = udpFrame({ payload: 200 });
      rig.peer.send(frame);
      rig.settle();
      const wb = rx.wb(0);
      assert.equal(wb.status & (RXD_DD | RXD_EOP), RXD_DD | RXD_EOP);
      assert.equal(wb.length, frame.length + 4, "the length includes the FCS (RCTL.SECRC clear)");
      assert.deepEqual(rx.data(0, frame.length), frame);
      assert.equal(rig.r(rxq(0) + Q.HEAD), 1);
      assert.equal(rig.r(R.GPRC), 1);
      assert.equal(rig.r(R.GORCL), frame.length + 4);
      assert.equal(rig.r(R.GORCH), 0);
      assert.equal(rig.r(R.GORCL), 0, "reading GORCH cleared both halves");
      rig.dev.close();
    },
  });
}

const MS_KEY = [
  0x6d,
  0x5a,
  0x56,
  0xda,
  0x25,
  0x5b,
  0x0e,
  0xc2,
  0x41,
  0x67,
  0x25,
  0x3d,
  0x43,
  0xa3,
  0x8f,
  0xb0,
  0xd0,
  0xca,
  0x2b,
  0xcb,
  0xae,
  0x7b,
  0x30,
  0xb4,
  0x77,
  0xcb,
  0x2d,
  0xa3,
  0x80,
  0x30,
  0xf2,
  0x0c,
  0x6a,
  0x42,
  0xb7,
  0x3b,
  0xbe,
  0xac,
  0x01,
  0xfa,
];

/** Dwords of descriptor k as the QEMU recordings print them. */
function dwords(ring: DmaBuffer, k: number): string {
  return [0, 4, 8, 12].map((o) => u32(ring, 16 * k + o).toString(16).padStart(8, "0")).join(" ");
}

Deno.test({
  name: "igb model: advanced RX write-back (IP id, checksums, RSS type and hash) as QEMU wrote",
  permissions: "none",
  fn() {
    const { rig, rx } = receiving("vtd", 8);
    const f = udpFrame({ payload: 18 });
    rig.peer.send(f);
    rig.settle();
    const bad = f.slice();
    bad[40] ^= 0xff;
    rig.peer.send(bad);
    rig.settle();
    for (let i = 0; i < 10; i++) {
      const k = MS_KEY.slice(4 * i, 4 * i + 4);
      rig.w(R.RSSRK + 4 * i, k[0] | (k[1] << 8) | (k[2] << 16) | (k[3] << 24));
    }
    for (let i = 0; i < 32; i++) rig.w(R.RETA + 4 * i, 0x0302_0100);
    rig.w(R.RXCSUM, (1 << 13) | 0x300);
    rig.w(R.MRQC, 2 | (1 << 16) | (1 << 17) | (1 << 22));
    rig.w(rxq(2) + Q.DCTL, 0); // the vector's hash picks queue 0 (RETA entry 0x78 & 3)
    rig.peer.send(udpFrame({
      srcIp: 0x4209_95bb,
      dstIp: 0xa18e_6450,
      srcPort: 2794,
      dstPort: 1766,
      payload: 20,
      fill: () => 0,
    }));
    rig.settle();
    assert.deepEqual([0, 1, 2].map((k) => dwords(rx.ring, k)), [
      "00000210 00001234 00000273 00000040", // IPv4|UDP, IP id, IPIDV|IPCS|TCPCS|UDPCS|EOP|DD, 64
      "00000210 00001234 20000273 00000040", // TCPE
      "00000217 51ccc178 00000073 00000042", // RSS type UDP/IPv4 and Microsoft's hash
    ]);
    assert.equal(rig.r(R.ICR), 0x8000_0084, "ASSERTED | RXT0 | LSC (of the autonegotiation)");
    rig.dev.close();
  },
});

Deno.test({
  name: "igb model: a frame 2 bytes short of filling two buffers ends in a 0-length EOP (QEMU)",
  permissions: "none",
  fn() {
    const { rig, rx } = receiving("vtd", 8, RCTL_EN | RCTL_BAM | (1 << 5));
    rig.peer.send(rawFrame(NIC_MAC, 1020));
    rig.settle();
    rig.w(rxq(0) + Q.SRRCTL, 1 | (1 << 25)); // 1 KiB buffers
    rig.peer.send(rawFrame(NIC_MAC, 1022));
    rig.settle();
    assert.deepEqual([0, 1, 2].map((k) => [rx.wb(k).length, rx.wb(k).status & 3]), [
      [1024, 3], // 1020 + FCS in one 2 KiB buffer
      [1022, 1], // 1022 + 4 > 1 KiB: payload, no FCS, no EOP…
      [0, 3], // …then an empty EOP descriptor
    ]);
    rig.dev.close();
  },
});

Deno.test({
  name: "igb model: context + data with IXSM|TXSM, then a legacy frame that reuses them (QEMU)",
  permissions: "none",
  fn() {
    const rig = openNic("igb");
    rig.w(R.IVAR0, (IVAR_VALID | 0) << 8);
    const tx = txRing(rig, 0, 8);
    const udp = udpFrame({ payload: 22, checksums: false });
    setU32(tx.ring, 0, (14 << 9) | 20);
    setU32(tx.ring, 8, TXD_CTXT | (1 << 10));
    tx.put(1, udp, POPTS_IXSM | POPTS_TXSM);
    tx.put(2, udp, 0, (1 << 24) | (1 << 25) | (1 << 27)); // legacy: EOP | IFCS | RS
    setU32(tx.ring, 2 * 16 + 12, 0); // legacy status/CSS/special
    rig.w(txq(0) + Q.TAIL, 3);
    rig.settle();
    const hex = (f: Uint8Array) => [...f].map((b) => b.toString(16).padStart(2, "0")).join("");
    const sent = "52540012345602000000000908004500003212340000401150770a0002020a00020f04d2" +
      "0007001e744f000102030405060708090a0b0c0d0e0f101112131415";
    assert.deepEqual(rig.wire.map(hex), [sent, sent]);
    assert.deepEqual([1, 2].map((k) => dwords(tx.ring, k).slice(-8)), ["00100301", "00000001"]);
    assert.equal(rig.r(R.ICR), 0x8000_0001, "TXDW");
    rig.dev.close();
  },
});

Deno.test({
  name: "igb model: TX checksum offload (context + POPTS) fills IPv4 and UDP checksums",
  permissions: "none",
  fn() {
    const rig = openNic("igb");
    const tx = txRing(rig, 0, 8);
    const frame = udpFrame({ payload: 64, checksums: false });
    // Context descriptor: MACLEN 14, IPLEN 20, TUCMD IPv4 | UDP.
    setU32(tx.ring, 0, (14 << 9) | 20);
    setU32(tx.ring, 4, 0);
    setU32(tx.ring, 8, TXD_CTXT | (1 << 10));
    setU32(tx.ring, 12, 0);
    tx.put(1, frame, POPTS_IXSM | POPTS_TXSM);
    rig.w(txq(0) + Q.TAIL, 2);
    rig.settle();
    assert.equal(rig.wire.length, 1);
    assert.deepEqual(udpChecksumsOk(rig.wire[0]), { ip: true, udp: true });
    assert.equal(u32(tx.ring, 12) & 1, 0, "no RS on the context descriptor: no write-back");
    rig.dev.close();
  },
});

Deno.test({
  name: "igb model: ring wrap — 20 frames through an 8-descriptor ring as software reposts",
  permissions: "none",
  fn() {
    const { rig, rx } = receiving("vtd", 8, RCTL_EN | RCTL_BAM | RCTL_SECRC);
    let next = 0;
    for (let k = 0; k < 20; k++) {
      const frame = rawFrame(NIC_MAC, 60 + k);
      rig.peer.send(frame);
      rig.settle();
      const i = next;
      assert.equal(rx.wb(i).status & RXD_DD, RXD_DD, `frame ${k} in descriptor ${i}`);
      assert.equal(rx.wb(i).length, frame.length, "SECRC: no FCS bytes");
      assert.deepEqual(rx.data(i, frame.length), frame);
      rx.post(i); // give the descriptor back and move the tail past it
      rig.w(rxq(0) + Q.TAIL, i);
      next = (i + 1) % 8;
    }
    assert.equal(rig.r(R.GPRC), 20);
    rig.dev.close();
  },
});

Deno.test({
  name:
    "igb model: ring full — frames wait (RNBC) and arrive once buffers are posted; MPC on overflow",
  permissions: "none",
  fn() {
    const { rig, rx } = receiving("vtd", 4);
    for (let k = 0; k < 6; k++) rig.peer.send(rawFrame(NIC_MAC, 1000));
    rig.settle();
    assert.equal(rig.r(rxq(0) + Q.HEAD), 3, "three descriptors were free");
    assert.equal(rig.nic.rxWaiting, 3);
    assert.ok(rig.r(R.RNBC) >= 1, "RNBC counts a frame waiting for a descriptor");
    for (let i = 0; i < 3; i++) rx.post(i);
    rig.w(rxq(0) + Q.TAIL, 2); // descriptors 3, 0, 1 free
    rig.settle();
    assert.equal(rig.nic.rxWaiting, 0);
    assert.equal(rig.r(R.GPRC), 6);
    // 64 KiB of FIFO: 100 frames of 1000 bytes do not fit while no descriptor is free.
    for (let k = 0; k < 100; k++) rig.peer.send(rawFrame(NIC_MAC, 1000));
    rig.settle();
    assert.ok(rig.r(R.MPC) > 0, "missed packets counted");
    assert.equal(rig.nic.counters.rxMissed, rig.r(R.MPC));
    rig.dev.close();
  },
});

Deno.test({
  name: "igb model: a receive buffer outside the mapping faults in the IOMMU; memory untouched",
  permissions: "none",
  fn() {
    const { rig, rx } = receiving("vtd", 4);
    const outside = rx.bufs.iova + 0x100_0000n;
    setU32(rx.ring, 0, Number(outside & 0xffff_ffffn));
    setU32(rx.ring, 4, Number(outside >> 32n));
    const before = rx.bufs.bytes.slice();
    rig.peer.send(rawFrame(NIC_MAC, 200));
    rig.settle();
    const faults = rig.machine.faults();
    assert.equal(faults.length, 1);
    assert.equal(faults[0].access, "write");
    assert.equal(faults[0].address, outside);
    assert.match(faults[0].message, /DMAR: \[DMA Write NO_PASID\] Request device \[00:02\.0\]/);
    assert.deepEqual(rx.bufs.bytes, before, "no buffer written");
    assert.equal(rx.wb(0).status, 0, "descriptor not written back");
    assert.equal(rig.nic.counters.dmaFaults, 1);
    rig.dev.close();
  },
});

Deno.test({
  name: "igb model: ICR read-to-clear, ICS sets causes, INT_ASSERTED, LSC through MSI",
  permissions: "none",
  fn() {
    const rig = openNic("igb");
    rig.dev.irqs.enableMsi(1);
    rig.w(R.ICS, ICR_LSC);
    assert.equal(rig.r(R.ICR), (ICR_ASSERTED | ICR_LSC) >>> 0, "IMS = 0: set, no MSI (QEMU)");
    assert.equal(rig.dev.irqs.poll(0), 0);
    assert.equal(rig.r(R.ICR), 0, "and cleared by the read");
    rig.w(R.IMS, ICR_LSC);
    rig.w(R.ICS, ICR_LSC);
    assert.equal(rig.dev.irqs.poll(0), 1, "MSI sent");
    assert.equal(rig.r(R.ICR), (ICR_ASSERTED | ICR_LSC) >>> 0);
    assert.equal(rig.r(R.ICR), 0);
    rig.w(R.IMC, ICR_LSC);
    assert.equal(rig.r(R.IMS), 0);
    rig.dev.close();
  },
});

Deno.test({
  name: "igb model: MSI-X — each queue's cause on its own IVAR vector; masking sets PBA",
  permissions: "none",
  fn() {
    const rig = openNic("igb");
    linkUp(rig);
    rig.r(R.ICR); // the LSC of the autonegotiation
    rig.dev.irqs.enableMsix(4);
    rig.w(R.GPIE, GPIE_MSIX_MODE);
    // RX queue 0 → vector 1, TX queue 0 → vector 2, other causes → vector 0.
    rig.w(R.IVAR0, (IVAR_VALID | 1) | ((IVAR_VALID | 2) << 8));
    rig.w(R.IVAR_MISC, (IVAR_VALID | 0) << 8);
    rig.w(R.EIAC, 0x7);
    rig.w(R.EIMS, 0x7);
    rig.w(R.IMS, ICR_LSC);
    const rx = rxRing(rig, 0, 4);
    rig.w(rxq(0) + Q.TAIL, 3);
    rig.w(R.RCTL, RCTL_EN | RCTL_BAM);
    const tx = txRing(rig, 0, 4);
    rig.peer.send(rawFrame(NIC_MAC, 100));
    rig.settle();
    assert.equal(rx.wb(0).status & RXD_DD, RXD_DD);
    assert.deepEqual([0, 1, 2].map((v) => rig.dev.irqs.poll(v)), [0, 1, 0], "RX on vector 1");
    tx.put(0, rawFrame(BROADCAST, 80));
    rig.w(txq(0) + Q.TAIL, 1);
    rig.settle();
    assert.deepEqual([0, 1, 2].map((v) => rig.dev.irqs.poll(v)), [0, 0, 1], "TX on vector 2");
    rig.nic.setLink(false);
    assert.deepEqual([0, 1, 2].map((v) => rig.dev.irqs.poll(v)), [1, 0, 0], "LSC on vector 0");
    assert.equal(rig.r(R.EICR) & 0x7, 0, "EIAC auto-cleared the EICR bits");
    // Mask vector 1 in the table (BAR 3, entry 1 vector control) → pending, then unmask.
    const table = rig.dev.bar(3);
    table.write32(16 * 1 + 12, 1);
    rx.post(0);
    rig.w(rxq(0) + Q.TAIL, 0);
    rig.nic.setLink(true);
    rig.settle(AUTONEG_NS);
    rig.dev.irqs.poll(0);
    rig.peer.send(rawFrame(NIC_MAC, 100));
    rig.settle();
    assert.equal(rig.dev.irqs.poll(1), 0, "masked vector not sent");
    assert.equal(table.read32(0x2000) & 0b10, 0b10, "pending bit of vector 1 set");
    table.write32(16 * 1 + 12, 0);
    assert.equal(rig.dev.irqs.poll(1), 1, "sent on unmask");
    assert.equal(table.read32(0x2000) & 0b10, 0, "pending bit cleared");
    rig.dev.close();
  },
});

Deno.test({
  name: "igb model: legacy interrupts — RXT0 and TXDW (with a valid IVAR entry, as QEMU)",
  permissions: "none",
  fn() {
    const { rig } = receiving("vtd", 4);
    rig.dev.irqs.enableMsi(1);
    rig.w(R.IMS, ICR_RXT0 | ICR_TXDW);
    rig.peer.send(rawFrame(BROADCAST, 64));
    rig.settle();
    assert.equal(rig.dev.irqs.poll(0), 1);
    assert.equal(rig.r(R.ICR) & ICR_RXT0, ICR_RXT0);
    const tx = txRing(rig, 0, 4);
    tx.put(0, rawFrame(BROADCAST, 64));
    rig.w(txq(0) + Q.TAIL, 1);
    rig.settle();
    assert.equal(rig.dev.irqs.poll(0), 0, "no TXDW while TX queue 0 has no valid IVAR entry");
    rig.w(R.IVAR0, (IVAR_VALID | 0) << 8);
    tx.put(1, rawFrame(BROADCAST, 64));
    rig.w(txq(0) + Q.TAIL, 2);
    rig.settle();
    assert.equal(rig.dev.irqs.poll(0), 1);
    assert.equal(rig.r(R.ICR) & ICR_TXDW, ICR_TXDW);
    rig.dev.close();
  },
});

Deno.test({
  name: "igb model: RSS spreads UDP flows over four queues by the Toeplitz hash and RETA",
  permissions: "none",
  fn() {
    const rig = openNic("igb");
    linkUp(rig);
    const rings = [0, 1, 2, 3].map((n) => {
      const r = rxRing(rig, n, 32);
      rig.w(rxq(n) + Q.TAIL, 31);
      return r;
    });
    const key = [
      0x6d,
      0x5a,
      0x56,
      0xda,
      0x25,
      0x5b,
      0x0e,
      0xc2,
      0x41,
      0x67,
      0x25,
      0x3d,
      0x43,
      0xa3,
      0x8f,
      0xb0,
      0xd0,
      0xca,
      0x2b,
      0xcb,
      0xae,
      0x7b,
      0x30,
      0xb4,
      0x77,
      0xcb,
      0x2d,
      0xa3,
      0x80,
      0x30,
      0xf2,
      0x0c,
      0x6a,
      0x42,
      0xb7,
      0x3b,
      0xbe,
      0xac,
      0x01,
      0xfa,
    ];
    for (let i = 0; i < 10; i++) {
      rig.w(
        R.RSSRK + 4 * i,
        key[4 * i] | (key[4 * i + 1] << 8) | (key[4 * i + 2] << 16) | (key[4 * i + 3] << 24),
      );
    }
    for (let i = 0; i < 32; i++) rig.w(R.RETA + 4 * i, 0x0302_0100); // entries 0,1,2,3,0,1,…
    rig.w(R.RXCSUM, 1 << 13); // PCSD: the descriptor carries the hash
    rig.w(R.MRQC, 2 | (1 << 17) | (1 << 22)); // RSS, hash IPv4 and UDP/IPv4
    rig.w(R.RCTL, RCTL_EN | RCTL_BAM);
    const flows = 40;
    for (let p = 0; p < flows; p++) rig.peer.send(udpFrame({ srcPort: 1000 + p }));
    rig.settle(1_000_000);
    const per = [0, 1, 2, 3].map((n) => rig.r(rxq(n) + Q.HEAD));
    assert.equal(per.reduce((a, b) => a + b, 0), flows);
    assert.ok(per.every((c) => c > 0), `every queue got frames: ${per}`);
    // The hash in the descriptor picks the queue: low 7 bits index RETA, entry = index & 3.
    for (let n = 0; n < 4; n++) {
      for (let i = 0; i < per[n]; i++) {
        const hash = u32(rings[n].ring, i * 16 + 4);
        assert.equal(hash & 3, n, `queue ${n} frame ${i} hash ${hash.toString(16)}`);
        assert.equal(u32(rings[n].ring, i * 16) & 0xf, 7, "RSS type UDP/IPv4");
      }
    }
    rig.dev.close();
  },
});

Deno.test({
  name: "igb model: statistics clear on read; frames shorter than 60 bytes count in RUC",
  permissions: "none",
  fn() {
    const { rig } = receiving("vtd", 8);
    rig.peer.send(rawFrame(BROADCAST, 42));
    rig.peer.send(rawFrame(BROADCAST, 100));
    rig.settle();
    assert.equal(rig.r(R.TPR), 2);
    assert.equal(rig.r(R.TPR), 0);
    assert.equal(rig.r(R.RUC), 1);
    assert.equal(rig.r(R.RUC), 0);
    assert.equal(rig.r(R.GPRC), 2);
    assert.equal(rig.r(R.GPRC), 0);
    rig.dev.close();
  },
});

Deno.test({
  name: "igb model: random writes to every BAR and random descriptors never throw",
  permissions: "none",
  fn() {
    const rig = openNic("igb");
    let s = 0x1234_5678;
    const rand = (): number => {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      return s >>> 0;
    };
    const mem = rig.dev.dma.allocate(65536);
    for (let i = 0; i < mem.bytes.length; i++) mem.bytes[i] = rand() & 0xff;
    const model = rig.nic;
    for (let k = 0; k < 20_000; k++) {
      const bar = rand() % 4;
      const offset = (rand() % 0x2_0000) & ~3;
      const v = rand() % 3 === 0 ? (mem.iovaLow + (rand() % 65536)) >>> 0 : rand();
      model.mmioWrite(bar, offset, 4, v);
      if (k % 7 === 0) model.mmioRead(bar, offset, 4);
      if (k % 97 === 0) {
        rig.peer.send(rawFrame(rand() % 2 ? BROADCAST : NIC_MAC, 60 + (rand() % 1400)));
      }
      if (k % 101 === 0) rig.settle(10_000);
    }
    rig.settle(1_000_000);
    model.reset();
    assert.equal(Number(model.mmioRead(0, R.CTRL, 4)), 0x0010_0209, "still answers after a reset");
    rig.dev.close();
  },
});
