import assert from "node:assert/strict";
import { VirtualClock } from "../../sim/clock.ts";
import { PhysicalMemory } from "../../sim/memory.ts";
import { VtdIommu } from "../../sim/iommu/vtd/vtd.ts";
import { createDmaPort } from "../../sim/pci/dma_port.ts";
import { VIRTIO_NET_BAR, VIRTIO_REGION, VirtioNetDevice } from "../../sim/pci/virtio_net.ts";
import { EthernetSegment } from "../../sim/net/segment.ts";
import { SimPeer } from "../../sim/net/peer.ts";
import { capabilities } from "../../sim/pci/config.ts";

/**
 * Drives the device model register by register, the way virtio 1.2 §3.1.1 says a driver does,
 * with rings and buffers in IOMMU-mapped memory. Offsets are written out from the spec here
 * rather than imported from the driver.
 */
function rig() {
  const clock = new VirtualClock();
  const memory = new PhysicalMemory(64 * 1024 * 1024);
  const iommu = new VtdIommu({ memory, clock });
  const segment = new EthernetSegment(clock);
  const dev = new VirtioNetDevice({ segment });
  const requester = 0x18; // 00:03.0
  dev.config.write(0x04, 2, 0x6); // memory + bus master
  const trace: string[] = [];
  dev.connect({
    clock,
    dma: createDmaPort({ iommu, memory, requester, config: dev.config, clock }),
    irq: { msi() {}, msix() {}, intx() {} },
    random: () => 0.5,
    trace: (l) => trace.push(l),
  });
  const domain = iommu.allocDomain();
  iommu.attach(requester, domain);
  const ram = memory.allocate(1024 * 1024)!;
  const IOVA = 0x100000n;
  assert.equal(
    domain.map(IOVA, BigInt(ram.base), BigInt(ram.length), { read: true, write: true }),
    0,
  );
  const w = (off: number, size: 1 | 2 | 4 | 8, v: number | bigint) =>
    dev.mmioWrite(VIRTIO_NET_BAR, off, size, v);
  const r = (off: number, size: 1 | 2 | 4 | 8) => dev.mmioRead(VIRTIO_NET_BAR, off, size);
  return { clock, memory, iommu, segment, dev, ram, IOVA, w, r, trace };
}

Deno.test({
  name: "virtio-net model: config space carries the four virtio vendor capabilities",
  permissions: "none",
  fn() {
    const { dev } = rig();
    const vendor = capabilities(dev.config).filter((c) => c.id === 0x09);
    const types = vendor.map((c) => dev.config.read(c.offset + 3, 1));
    assert.deepEqual(types.sort(), [1, 2, 3, 4]);
    assert.equal(dev.config.read(0x00, 2), 0x1af4);
    assert.equal(dev.config.read(0x02, 2), 0x1041);
  },
});

Deno.test({
  name: "virtio-net model: feature negotiation refuses a driver without ACCESS_PLATFORM",
  permissions: "none",
  fn() {
    const { w, r } = rig();
    const C = VIRTIO_REGION.common;
    w(C + 0x14, 1, 1 | 2);
    w(C + 0x08, 4, 1);
    w(C + 0x0c, 4, 1); // VERSION_1 only (bit 32)
    w(C + 0x14, 1, 1 | 2 | 8);
    assert.equal(Number(r(C + 0x14, 1)) & 8, 0, "FEATURES_OK stays clear");
    w(C + 0x14, 1, 0);
    w(C + 0x14, 1, 1 | 2);
    w(C + 0x08, 4, 1);
    w(C + 0x0c, 4, 3); // VERSION_1 | ACCESS_PLATFORM
    w(C + 0x14, 1, 1 | 2 | 8);
    assert.equal(Number(r(C + 0x14, 1)) & 8, 8);
  },
});

Deno.test({
  name:
    "virtio-net model: a frame from the wire lands in a posted receive buffer through the IOMMU",
  permissions: "none",
  fn() {
    const { clock, segment, dev, ram, IOVA, w, r } = rig();
    const C = VIRTIO_REGION.common;
    w(C + 0x14, 1, 1 | 2);
    w(C + 0x08, 4, 1);
    w(C + 0x0c, 4, 3);
    w(C + 0x14, 1, 1 | 2 | 8);
    // rx queue 0, size 8: desc at +0, avail at +0x80, used at +0x100 (§2.7 layout)
    w(C + 0x16, 2, 0);
    w(C + 0x18, 2, 8);
    w(C + 0x20, 8, IOVA);
    w(C + 0x28, 8, IOVA + 0x80n);
    w(C + 0x30, 8, IOVA + 0x100n);
    w(C + 0x1c, 2, 1);
    w(C + 0x14, 1, 1 | 2 | 8 | 4);
    const v = new DataView(ram.bytes.buffer);
    v.setBigUint64(0, IOVA + 0x1000n, true); // desc 0 → buffer
    v.setUint32(8, 2048, true);
    v.setUint16(12, 2, true); // WRITE
    v.setUint16(0x80 + 4, 0, true); // avail ring[0] = 0
    v.setUint16(0x80 + 2, 1, true); // avail idx = 1
    w(VIRTIO_REGION.notify + 0, 2, 0);
    const peer = new SimPeer(segment, {
      name: "peer",
      mac: new Uint8Array([2, 0, 0, 0, 0, 9]),
      ip: 0x0a000202,
    });
    peer.ping(0x0a00020f, 1, 1); // broadcast ARP request reaches the NIC
    clock.advance(100_000);
    assert.equal(v.getUint16(0x100 + 2, true), 1, "used idx advanced");
    assert.equal(v.getUint32(0x100 + 4, true), 0, "used id 0");
    const len = v.getUint32(0x100 + 8, true);
    assert.equal(len, 12 + 60, "header + minimum ARP frame");
    assert.equal(
      ram.bytes[0x1000 + 12 + 12],
      0x08,
      "EtherType ARP high byte after the 12-byte header",
    );
    assert.equal(ram.bytes[0x1000 + 12 + 13], 0x06);
    assert.equal(dev.counters.rx, 1);
    assert.equal(Number(r(C + 0x14, 1)) & 64, 0, "no DEVICE_NEEDS_RESET");
  },
});

Deno.test({
  name: "virtio-net model: an unmapped ring makes the device fault in the IOMMU and need reset",
  permissions: "none",
  fn() {
    const { clock, iommu, w, r, trace } = rig();
    const C = VIRTIO_REGION.common;
    w(C + 0x14, 1, 1 | 2);
    w(C + 0x08, 4, 1);
    w(C + 0x0c, 4, 3);
    w(C + 0x14, 1, 1 | 2 | 8);
    w(C + 0x16, 2, 1);
    w(C + 0x18, 2, 8);
    w(C + 0x20, 8, 0x9000_0000n);
    w(C + 0x28, 8, 0x9000_0080n);
    w(C + 0x30, 8, 0x9000_0100n);
    w(C + 0x1c, 2, 1);
    w(C + 0x14, 1, 1 | 2 | 8 | 4);
    w(VIRTIO_REGION.notify + 4, 2, 1);
    clock.advance(100_000);
    assert.ok(iommu.faults.length >= 1);
    assert.match(
      iommu.faults[0].message,
      /DMAR: \[DMA Read NO_PASID\] Request device \[00:03\.0\] fault addr 0x90000000/,
    );
    assert.equal(Number(r(C + 0x14, 1)) & 64, 64, "DEVICE_NEEDS_RESET");
    assert.ok(trace.some((l) => l.includes("needs reset")));
  },
});
