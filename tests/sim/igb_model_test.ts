/**
 * The simulated 82576 (igb) driven through the simulated kernel like a driver would: raw
 * register writes to BAR 0 (offsets written out from the 82576 datasheet in
 * tests/helpers/igb_rig.ts, not imported from the model), descriptors built by hand in DMA
 * memory from core's DmaSpace, frames on the machine's Ethernet segment. Where a test says
 * "QEMU", the expected bytes were recorded from QEMU 10.0.13's igb for the same register writes
 * and frames (qtest + a dgram netdev). Interrupts, RSS and fuzzing: igb_irq_test.ts.
 */
import assert from "node:assert/strict";
import { simTest } from "../../testing/mod.ts";
import {
  BROADCAST,
  NIC_BDF,
  NIC_MAC,
  openNic,
  rawFrame,
  sendRecordedFrames,
  udpChecksumsOk,
  udpFrame,
} from "../helpers/nic_rig.ts";
import {
  AUTONEG_NS,
  CTRL_RST,
  dwords,
  GPIE_MSIX_MODE,
  ICR_LSC,
  IVAR_VALID,
  linkUp,
  POPTS_IXSM,
  POPTS_TXSM,
  Q,
  R,
  RCTL_BAM,
  RCTL_EN,
  RCTL_SECRC,
  receiving,
  RXD_DD,
  RXD_EOP,
  rxq,
  setU32,
  STATUS_LU,
  TXD_CTXT,
  txq,
  txRing,
  u32,
} from "../helpers/igb_rig.ts";

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

/** The fixture's machines: an igb where the rig expects it. */
const IGB = { machine: { devices: [{ model: "igb" as const, bdf: NIC_BDF }] } };

simTest("igb model: a frame sent lands on the wire; DD is written back; GPTC counts", (ctx) => {
  const rig = openNic("igb", ctx);
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
}, IGB);

simTest("igb model: a frame from the wire lands in a buffer with DD, EOP, length", (ctx) => {
  const { rig, rx } = receiving(ctx);
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
}, IGB);

Deno.test({
  name: "igb model: advanced RX write-back (IP id, checksums, RSS type and hash) as QEMU wrote",
  permissions: "none",
  fn() {
    const { rig, rx } = receiving("vtd", 8);
    // RSS: MRQC = 010b; the vector's hash picks queue 0 (RETA entry 0x78 & 3 with 0,1,2,3…).
    sendRecordedFrames(rig, 0x0302_0100, 2);
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
  name:
    "igb model: a burst bigger than the FIFO's 64 slots arriving at one instant loses nothing " +
    "while descriptors are free (QEMU writes frames as they arrive)",
  permissions: "none",
  fn() {
    const { rig } = receiving("vtd", 128);
    for (let k = 0; k < 100; k++) rig.peer.send(rawFrame(NIC_MAC, 64));
    rig.settle();
    assert.equal(rig.r(R.MPC), 0, "no frame missed with 127 descriptors free");
    assert.equal(rig.nic.counters.rxMissed, 0);
    assert.equal(rig.r(R.GPRC), 100);
    assert.equal(rig.r(rxq(0) + Q.HEAD), 100);
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
