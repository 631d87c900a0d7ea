/**
 * The shared MSI-X table (sim/pci/msix_table.ts) by its rules from PCI 3.0 §6.8.2, and its use
 * in the simulated virtio-net (QEMU's virtio-net-pci: 4 vectors in BAR 1, table at 0, PBA at
 * 0x800; queue and config vectors routed through the table).
 */
import assert from "node:assert/strict";
import { PciConfigSpace } from "../../sim/pci/config.ts";
import { MsixTable } from "../../sim/pci/msix_table.ts";
import type { InterruptSink } from "../../sim/pci/device.ts";
import { VirtualClock } from "../../sim/clock.ts";
import { PhysicalMemory } from "../../sim/memory.ts";
import { VtdIommu } from "../../sim/iommu/vtd.ts";
import { createDmaPort } from "../../sim/pci/dma_port.ts";
import { EthernetSegment } from "../../sim/net/segment.ts";
import { VIRTIO_NET_BAR, VIRTIO_REGION, VirtioNetDevice } from "../../sim/pci/virtio_net.ts";
import { capabilities } from "../../sim/pci/config.ts";
import { E1000Device } from "../../sim/pci/e1000_device.ts";

const MSIX_FLAGS_ENABLE = 0x8000;
const MSIX_FLAGS_MASKALL = 0x4000;
const COMMAND = 0x04;
const COMMAND_MASTER = 0x4;

function recorder(): InterruptSink & { sent: number[] } {
  const sent: number[] = [];
  return { sent, msi() {}, msix: (v) => void sent.push(v), intx() {} };
}

function rig() {
  const config = new PciConfigSpace({ vendorId: 0x1234, deviceId: 0x5678, classCode: 0 });
  config.addBar({ index: 2, size: 0x4000, kind: "mem32", prefetchable: false });
  const cap = config.addMsix({
    tableSize: 3,
    tableBar: 2,
    tableOffset: 0,
    pbaBar: 2,
    pbaOffset: 0x2000,
  });
  const table = new MsixTable(config, { bar: 2, tableOffset: 0, pbaOffset: 0x2000, vectors: 3 });
  const sink = recorder();
  table.connect(sink);
  const flags = (v: number) => config.write(cap + 2, 2, v);
  return { config, table, sink, flags };
}

Deno.test({
  name: "MSI-X table: entries start masked; a masked vector becomes pending, sent on unmask",
  permissions: "none",
  fn() {
    const { config, table, sink, flags } = rig();
    assert.equal(table.notify(0), "disabled");
    flags(MSIX_FLAGS_ENABLE);
    assert.equal(table.notify(0), "no-bus-master");
    config.write(COMMAND, 2, COMMAND_MASTER);
    assert.equal(table.read(12, 4), 1, "vector control: masked at reset");
    assert.equal(table.notify(1), "pending");
    assert.equal(table.read(0x2000, 4), 0b010, "PBA bit 1");
    table.write(16 + 12, 4, 0); // unmask entry 1
    assert.deepEqual(sink.sent, [1]);
    assert.equal(table.read(0x2000, 4), 0);
    assert.equal(table.notify(1), "sent");
    assert.deepEqual(sink.sent, [1, 1]);
    assert.equal(table.notify(3), "bad-vector");
  },
});

Deno.test({
  name: "MSI-X table: Function Mask holds every vector; clearing it sends what is pending",
  permissions: "none",
  fn() {
    const { config, table, sink, flags } = rig();
    config.write(COMMAND, 2, COMMAND_MASTER);
    for (let v = 0; v < 3; v++) table.write(16 * v + 12, 4, 0);
    flags(MSIX_FLAGS_ENABLE | MSIX_FLAGS_MASKALL);
    assert.equal(table.notify(0), "pending");
    assert.equal(table.notify(2), "pending");
    assert.deepEqual(sink.sent, []);
    flags(MSIX_FLAGS_ENABLE);
    assert.deepEqual(sink.sent, [0, 2]);
    assert.equal(table.read(0x2000, 4), 0);
  },
});

Deno.test({
  name: "MSI-X table: 8-byte accesses, the read-only PBA, odd widths are harmless",
  permissions: "none",
  fn() {
    const { table } = rig();
    table.write(16, 8, 0x0000_0001_fee0_0000n);
    assert.equal(table.read(16, 8), 0x0000_0001_fee0_0000n);
    assert.equal(table.read(20, 4), 1);
    table.write(0x2000, 4, 0xffff_ffff);
    assert.equal(table.read(0x2000, 4), 0, "PBA writes ignored");
    table.write(16, 2, 0x1234);
    assert.equal(table.read(16, 2), 0);
    assert.equal(table.owns(2, 0x2fff), false);
    assert.equal(table.owns(1, 0), false);
  },
});

Deno.test({
  name:
    "virtio-net model: MSI-X as QEMU's virtio-net-pci — 4 vectors in BAR 1, queue vector routed",
  permissions: "none",
  fn() {
    const clock = new VirtualClock();
    const memory = new PhysicalMemory(64 * 1024 * 1024);
    const iommu = new VtdIommu({ memory, clock });
    const segment = new EthernetSegment(clock);
    const dev = new VirtioNetDevice({ segment });
    const sink = recorder();
    const requester = 0x18;
    dev.config.write(COMMAND, 2, 0x6);
    dev.connect({
      clock,
      dma: createDmaPort({ iommu, memory, requester, config: dev.config, clock }),
      irq: sink,
      random: () => 0.5,
      trace() {},
    });
    const msix = capabilities(dev.config).find((c) => c.id === 0x11)!;
    assert.ok(msix, "an MSI-X capability");
    assert.equal(dev.config.read(msix.offset + 2, 2) & 0x7ff, 3, "table size 4");
    assert.equal(dev.config.read(msix.offset + 4, 4), 0x0000_0001, "table in BAR 1 at 0");
    assert.equal(dev.config.read(msix.offset + 8, 4), 0x0000_0801, "PBA in BAR 1 at 0x800");
    assert.deepEqual(dev.bars.map((b) => [b.index, b.size, b.kind]), [
      [4, 0x4000, "mem64"],
      [1, 0x1000, "mem32"],
    ]);
    const domain = iommu.allocDomain();
    iommu.attach(requester, domain);
    const ram = memory.allocate(1024 * 1024)!;
    domain.map(0x100000n, BigInt(ram.base), BigInt(ram.length), { read: true, write: true });
    const w = (off: number, size: 1 | 2 | 4 | 8, v: number | bigint) =>
      dev.mmioWrite(VIRTIO_NET_BAR, off, size, v);
    const C = VIRTIO_REGION.common;
    w(C + 0x14, 1, 1 | 2);
    w(C + 0x08, 4, 1);
    w(C + 0x0c, 4, 3);
    w(C + 0x14, 1, 1 | 2 | 8);
    w(C + 0x10, 2, 7);
    assert.equal(Number(dev.mmioRead(VIRTIO_NET_BAR, C + 0x10, 2)), 0xffff, "vector 7 > 3: none");
    w(C + 0x16, 2, 0);
    w(C + 0x18, 2, 8);
    w(C + 0x1a, 2, 2);
    assert.equal(Number(dev.mmioRead(VIRTIO_NET_BAR, C + 0x1a, 2)), 2);
    w(C + 0x20, 8, 0x100000n);
    w(C + 0x28, 8, 0x100080n);
    w(C + 0x30, 8, 0x100100n);
    w(C + 0x1c, 2, 1);
    w(C + 0x14, 1, 1 | 2 | 8 | 4);
    const v = new DataView(ram.bytes.buffer);
    const post = (slot: number, n: number) => {
      v.setBigUint64(16 * slot, 0x101000n + BigInt(2048 * slot), true);
      v.setUint32(16 * slot + 8, 2048, true);
      v.setUint16(16 * slot + 12, 2, true);
      v.setUint16(0x80 + 4 + 2 * slot, slot, true);
      v.setUint16(0x80 + 2, n, true);
    };
    post(0, 1);
    const cap = msix.offset;
    dev.config.write(cap + 2, 2, 0x8000); // MSI-X enable; entry 2 still masked (reset state)
    const peer = segment.attach({ name: "peer", receive() {} });
    peer.send(new Uint8Array(60).fill(0xff, 0, 6));
    clock.advance(100_000);
    assert.equal(v.getUint16(0x100 + 2, true), 1, "frame delivered");
    assert.deepEqual(sink.sent, [], "entry 2 masked: held");
    assert.equal(Number(dev.mmioRead(1, 0x800, 4)), 0b100, "PBA bit 2");
    dev.mmioWrite(1, 2 * 16 + 12, 4, 0);
    assert.deepEqual(sink.sent, [2], "sent when unmasked");
    post(1, 2);
    peer.send(new Uint8Array(60).fill(0xff, 0, 6));
    clock.advance(100_000);
    assert.deepEqual(sink.sent, [2, 2]);
  },
});

Deno.test({
  name: "NIC models: odd values and widths written to any BAR never throw",
  permissions: "none",
  fn() {
    for (const model of ["igb", "e1000e"] as const) {
      const nic = new E1000Device(model);
      for (const bar of [0, 1, 2, 3, 4, 5, -1]) {
        for (const v of [1.5, NaN, -1, 2 ** 60, -(2n ** 70n), Infinity]) {
          for (const size of [1, 2, 4, 8] as const) {
            nic.mmioWrite(bar, 0x10, size, v);
            nic.mmioWrite(bar, 0.5, size, v);
            nic.mmioRead(bar, 0x1_0000_0000, size);
          }
        }
      }
      assert.equal(Number(nic.mmioRead(0, 0x5400, 4)), 0x1200_5452, "RAL0 untouched");
    }
  },
});
