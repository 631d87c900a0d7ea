/**
 * The simulated 82576 (igb): interrupts (ICR, MSI, MSI-X through IVAR with table masking and
 * PBA), RSS over four queues, statistics, and random register and descriptor writes — driven
 * through the simulated kernel like a driver would (see igb_model_test.ts).
 */
import assert from "node:assert/strict";
import {
  BROADCAST,
  fuzzNic,
  NIC_MAC,
  openNic,
  rawFrame,
  udpFrame,
  writeRssKey,
} from "../helpers/nic_rig.ts";
import {
  AUTONEG_NS,
  GPIE_MSIX_MODE,
  ICR_ASSERTED,
  ICR_LSC,
  ICR_RXT0,
  ICR_TXDW,
  IVAR_VALID,
  linkUp,
  Q,
  R,
  RCTL_BAM,
  RCTL_EN,
  receiving,
  RXD_DD,
  rxq,
  rxRing,
  txq,
  txRing,
  u32,
} from "../helpers/igb_rig.ts";

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
    writeRssKey(rig);
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
    fuzzNic(rig, 0x1234_5678);
    const model = rig.nic;
    assert.equal(Number(model.mmioRead(0, R.CTRL, 4)), 0x0010_0209, "still answers after a reset");
    rig.dev.close();
  },
});
