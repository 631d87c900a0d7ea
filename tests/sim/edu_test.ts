/**
 * The edu model on a small machine: a VT-d unit, physical memory, a DMA port and a recording
 * interrupt sink. Register behaviour as QEMU's hw/misc/edu.c, DMA through the IOMMU, faults,
 * bus mastering, QEMU 7.2's range-check off-by-one, determinism.
 *
 * @module
 */

import assert from "node:assert/strict";
import { VirtualClock } from "../../sim/clock.ts";
import { VtdIommu } from "../../sim/iommu/vtd/vtd.ts";
import { PhysicalMemory } from "../../sim/memory.ts";
import { findCapability, msiState } from "../../sim/pci/config.ts";
import type { InterruptSink } from "../../sim/pci/device.ts";
import { createDmaPort } from "../../sim/pci/dma_port.ts";
import {
  EDU_DMA_DELAY_NS,
  EDU_FACTORIAL_DELAY_NS,
  EDU_REG,
  EduDevice,
  type EduOptions,
  factorialU32,
} from "../../sim/pci/edu.ts";
import {
  PCI_BASE_ADDRESS_0,
  PCI_CAP_ID_MSI,
  PCI_CLASS_PROG,
  PCI_COMMAND,
  PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_MSI_ADDRESS_HI,
  PCI_MSI_ADDRESS_LO,
  PCI_MSI_DATA_64,
  PCI_MSI_FLAGS,
  PCI_STATUS,
  PCI_STATUS_INTERRUPT,
  PCI_VENDOR_ID,
} from "../../sim/pci/pci_regs.ts";

const RID = 0x0010; // 00:02.0, as in the VM bench
const IOVA = 0x100000n;
const MAPPED = 0x2000;

function machine(o: EduOptions = {}) {
  const clock = new VirtualClock();
  const memory = new PhysicalMemory();
  const iommu = new VtdIommu({ memory, clock });
  const edu = new EduDevice(o);
  const trace: string[] = [];
  const events: string[] = [];
  const at = (what: string): number => events.push(`${clock.nowNs} ${what}`);
  const irq: InterruptSink = {
    msi: (v) => void at(`msi ${v}`),
    msix: (v) => void at(`msix ${v}`),
    intx: (a) => void at(`intx ${a}`),
  };
  const dma = createDmaPort({
    iommu,
    memory,
    requester: RID,
    config: edu.config,
    clock,
    trace: (l) => trace.push(l),
  });
  edu.connect({ clock, dma, irq, random: () => 0.5, trace: (l) => trace.push(l) });
  const domain = iommu.allocDomain();
  iommu.attach(RID, domain);
  const ram = memory.allocate(0x4000)!;
  assert.equal(domain.map(IOVA, BigInt(ram.base), BigInt(MAPPED), { read: true, write: true }), 0);
  edu.config.write(PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
  const r32 = (off: number): number => edu.mmioRead(0, off, 4) as number;
  const r64 = (off: number): bigint => edu.mmioRead(0, off, 8) as bigint;
  const w32 = (off: number, v: number): void => edu.mmioWrite(0, off, 4, v);
  const w64 = (off: number, v: bigint): void => edu.mmioWrite(0, off, 8, v);
  return { clock, memory, iommu, edu, trace, events, ram, r32, r64, w32, w64 };
}

function pattern(n: number, seed = 7): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * seed + 3) & 0xff);
}

function enableMsi(edu: EduDevice): void {
  const at = findCapability(edu.config, PCI_CAP_ID_MSI)!;
  edu.config.write(at + PCI_MSI_ADDRESS_LO, 4, 0xfee00000);
  edu.config.write(at + PCI_MSI_ADDRESS_HI, 4, 0);
  edu.config.write(at + PCI_MSI_DATA_64, 2, 0x4041);
  edu.config.write(at + PCI_MSI_FLAGS, 2, 1);
}

Deno.test({
  name:
    "edu: config space as QEMU's: 1234:11e8 rev 0x10 class 0x00ff, 1 MiB BAR0, 64-bit MSI at 0x40",
  permissions: "none",
  fn() {
    const fresh = new EduDevice();
    assert.equal(fresh.config.size, 256);
    assert.equal(fresh.config.read(PCI_VENDOR_ID, 4), 0x11e81234);
    assert.equal(fresh.config.read(PCI_CLASS_PROG - 1, 4), 0x00ff0010);
    assert.equal(fresh.config.read(PCI_STATUS, 2), 0x0010);
    assert.equal(fresh.config.read(PCI_COMMAND, 2), 0);
    fresh.config.write(PCI_BASE_ADDRESS_0, 4, 0xffffffff);
    assert.equal(fresh.config.read(PCI_BASE_ADDRESS_0, 4), 0xfff00000);
    const msi = msiState(fresh.config)!;
    assert.deepEqual(
      [msi.offset, msi.address64, msi.perVectorMask, msi.vectorsCapable],
      [0x40, true, false, 1],
    );
    assert.equal(fresh.config.read(0x41, 1), 0); // the only capability
    assert.equal(fresh.resetWorks, false);
    assert.deepEqual(fresh.bars, [{
      index: 0,
      size: 0x100000,
      kind: "mem32",
      prefetchable: false,
    }]);
  },
});

Deno.test({
  name: "edu: identification, liveness, and edu.c's access-width rules",
  permissions: "none",
  fn() {
    const { edu, r32, r64, w32, w64 } = machine();
    assert.equal(r32(EDU_REG.ID), 0x010000ed);
    w32(EDU_REG.LIVENESS, 0x12345678);
    assert.equal(r32(EDU_REG.LIVENESS), 0xedcba987);
    assert.equal(r64(EDU_REG.ID), 0xffff_ffff_ffff_ffffn); // 8-byte below 0x80: invalid
    assert.equal(edu.mmioRead(0, EDU_REG.ID, 1), 0xff);
    assert.equal(edu.mmioRead(0, EDU_REG.ID, 2), 0xffff);
    edu.mmioWrite(0, EDU_REG.LIVENESS, 2, 0);
    edu.mmioWrite(0, EDU_REG.LIVENESS, 8, 0n);
    assert.equal(r32(EDU_REG.LIVENESS), 0xedcba987);
    assert.equal(r32(0x06), 0xffffffff); // unaligned
    assert.equal(r32(0x10), 0xffffffff); // unimplemented
    assert.equal(r32(0x40000), 0xffffffff); // the DMA buffer is not MMIO-visible
    assert.equal(edu.mmioRead(1, 0, 4), 0xffffffff);
    w64(EDU_REG.DMA_SRC, 0x1_2345_6789n);
    assert.equal(r64(EDU_REG.DMA_SRC), 0x1_2345_6789n);
    assert.equal(r32(EDU_REG.DMA_SRC), 0x23456789);
    assert.equal(r32(EDU_REG.DMA_SRC + 4), 0xffffffff); // no register at 0x84
    w32(EDU_REG.DMA_SRC, 0x1000); // a 4-byte write stores the zero-extended value
    assert.equal(r64(EDU_REG.DMA_SRC), 0x1000n);
    w32(EDU_REG.DMA_SRC + 4, 0x1); // ignored
    assert.equal(r64(EDU_REG.DMA_SRC), 0x1000n);
  },
});

Deno.test({
  name: "edu: factorial: busy bit while computing, n! mod 2^32, interrupt 0x1 with status bit 7",
  permissions: "none",
  fn() {
    const { clock, events, r32, w32 } = machine();
    w32(EDU_REG.FACTORIAL, 5);
    assert.equal(r32(EDU_REG.STATUS), 0x01);
    w32(EDU_REG.FACTORIAL, 10); // ignored while computing
    clock.advance(EDU_FACTORIAL_DELAY_NS);
    assert.equal(r32(EDU_REG.STATUS), 0);
    assert.equal(r32(EDU_REG.FACTORIAL), 120);
    w32(EDU_REG.STATUS, 0x80);
    w32(EDU_REG.FACTORIAL, 13);
    assert.equal(r32(EDU_REG.STATUS), 0x81);
    clock.advance(EDU_FACTORIAL_DELAY_NS);
    assert.equal(r32(EDU_REG.FACTORIAL), 1932053504); // 13! mod 2^32
    assert.equal(r32(EDU_REG.IRQ_STATUS), 0x1);
    assert.deepEqual(events, [`${2 * EDU_FACTORIAL_DELAY_NS} intx true`]);
    let f = 1n;
    for (let n = 0; n <= 40; n++) {
      if (n > 0) f *= BigInt(n);
      assert.equal(factorialU32(n), Number(f % (1n << 32n)), `${n}!`);
    }
  },
});

Deno.test({
  name: "edu: INTx raise/ack: level follows the interrupt status, DisINTx masks the line",
  permissions: "none",
  fn() {
    const { edu, events, r32, w32 } = machine();
    w32(EDU_REG.IRQ_RAISE, 0x10);
    w32(EDU_REG.IRQ_RAISE, 0x2);
    assert.equal(r32(EDU_REG.IRQ_STATUS), 0x12);
    assert.equal(edu.config.read(PCI_STATUS, 2) & PCI_STATUS_INTERRUPT, PCI_STATUS_INTERRUPT);
    w32(EDU_REG.IRQ_STATUS, 0); // read-only
    w32(EDU_REG.IRQ_ACK, 0x10);
    assert.deepEqual(events, ["0 intx true"]);
    edu.config.write(PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_INTX_DISABLE);
    w32(EDU_REG.IRQ_ACK, 0x2);
    assert.equal(r32(EDU_REG.IRQ_STATUS), 0);
    w32(EDU_REG.IRQ_RAISE, 0x4); // level high, line held low by DisINTx
    edu.config.write(PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
    assert.deepEqual(events, ["0 intx true", "0 intx false", "0 intx true"]);
  },
});

Deno.test({
  name:
    "edu: MSI when enabled: every raise sends vector 0, ack never touches INTx, needs bus master",
  permissions: "none",
  fn() {
    const { edu, events, trace, r32, w32 } = machine();
    enableMsi(edu);
    w32(EDU_REG.IRQ_RAISE, 0x1);
    w32(EDU_REG.IRQ_RAISE, 0x100);
    w32(EDU_REG.IRQ_ACK, 0x101);
    assert.equal(r32(EDU_REG.IRQ_STATUS), 0);
    assert.deepEqual(events, ["0 msi 0", "0 msi 0"]);
    edu.config.write(PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
    w32(EDU_REG.IRQ_RAISE, 0x1);
    assert.equal(events.length, 2);
    assert.ok(trace.includes("edu: MSI not sent: no-bus-master"));
  },
});

Deno.test({
  name: "edu: DMA round trip through a VT-d domain, 100 ms per transfer on the virtual clock",
  permissions: "none",
  fn() {
    const { clock, edu, events, ram, iommu, r32, w32, w64 } = machine();
    const data = pattern(2048);
    ram.bytes.set(data);
    w64(EDU_REG.DMA_SRC, IOVA);
    w64(EDU_REG.DMA_DST, 0x40000n);
    w32(EDU_REG.DMA_COUNT, data.length);
    w32(EDU_REG.DMA_CMD, 0x1);
    assert.equal(r32(EDU_REG.DMA_CMD), 1);
    w64(EDU_REG.DMA_SRC, 0n); // frozen while running
    clock.advance(EDU_DMA_DELAY_NS - 1);
    assert.equal(r32(EDU_REG.DMA_CMD), 1);
    clock.advance(1);
    assert.equal(r32(EDU_REG.DMA_CMD), 0);
    assert.deepEqual(edu.buffer.subarray(0, data.length), data);
    w64(EDU_REG.DMA_SRC, 0x40000n);
    w64(EDU_REG.DMA_DST, IOVA + 0x1000n);
    w32(EDU_REG.DMA_CMD, 0x1 | 0x2 | 0x4);
    clock.advance(EDU_DMA_DELAY_NS);
    assert.deepEqual(ram.bytes.subarray(0x1000, 0x1000 + data.length), data);
    assert.equal(r32(EDU_REG.IRQ_STATUS), 0x100);
    assert.deepEqual(events, [`${2 * EDU_DMA_DELAY_NS} intx true`]);
    assert.equal(iommu.faults.length, 0);
  },
});

Deno.test({
  name:
    "edu: DMA to an unmapped IOVA faults as on the VM, leaves memory untouched, still completes",
  permissions: "none",
  fn() {
    const { clock, edu, iommu, ram, trace, r32, w32, w64 } = machine();
    edu.buffer.fill(0xaa);
    const before = ram.bytes.slice();
    w64(EDU_REG.DMA_SRC, 0x40000n);
    w64(EDU_REG.DMA_DST, 0x800000n);
    w32(EDU_REG.DMA_COUNT, 2048);
    w32(EDU_REG.DMA_CMD, 0x3);
    clock.advance(EDU_DMA_DELAY_NS);
    assert.equal(r32(EDU_REG.DMA_CMD), 0x2);
    assert.equal(iommu.faults.length, 1);
    assert.equal(
      iommu.faults[0].message,
      "DMAR: [DMA Write NO_PASID] Request device [00:02.0] fault addr 0x800000 " +
        "[fault reason 0x05] PTE Write access is not set",
    );
    assert.equal(iommu.faults[0].timeNs, EDU_DMA_DELAY_NS);
    assert.deepEqual(ram.bytes, before);
    assert.ok(trace.some((l) => l.includes("failed; edu cannot tell")));
    // A transfer crossing from a mapped into an unmapped page stops at the boundary.
    w64(EDU_REG.DMA_DST, IOVA + BigInt(MAPPED) - 0x100n);
    w32(EDU_REG.DMA_CMD, 0x3);
    clock.advance(EDU_DMA_DELAY_NS);
    assert.ok(ram.bytes.subarray(MAPPED - 0x100, MAPPED).every((b) => b === 0xaa));
    assert.ok(ram.bytes.subarray(MAPPED, MAPPED + 0x100).every((b) => b === 0));
    assert.equal(iommu.faults[1].address, IOVA + BigInt(MAPPED));
  },
});

Deno.test({
  name: "edu: bus master off: no DMA, no IOMMU fault, a trace line",
  permissions: "none",
  fn() {
    const { clock, edu, iommu, ram, trace, r32, w32, w64 } = machine();
    edu.config.write(PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
    edu.buffer.fill(0x55);
    w64(EDU_REG.DMA_SRC, 0x40000n);
    w64(EDU_REG.DMA_DST, IOVA);
    w32(EDU_REG.DMA_COUNT, 64);
    w32(EDU_REG.DMA_CMD, 0x3);
    clock.advance(EDU_DMA_DELAY_NS);
    assert.equal(r32(EDU_REG.DMA_CMD), 0x2);
    assert.equal(iommu.faults.length, 0);
    assert.ok(ram.bytes.every((b) => b === 0));
    assert.ok(trace.some((l) => l.includes("bus master disabled")));
  },
});

Deno.test({
  name: "edu: QEMU 7.2's range check refuses 4096 bytes (QEMU aborts) and 0; 'fixed' allows them",
  permissions: "none",
  fn() {
    const m = machine();
    m.ram.bytes.set(pattern(4096));
    m.w64(EDU_REG.DMA_SRC, IOVA);
    m.w64(EDU_REG.DMA_DST, 0x40000n);
    m.w32(EDU_REG.DMA_COUNT, 4096);
    m.w32(EDU_REG.DMA_CMD, 0x1 | 0x4);
    m.clock.advance(EDU_DMA_DELAY_NS);
    assert.deepEqual(m.edu.hwErrors, [
      "EDU: DMA range 0x0000000000040000-0x0000000000040fff out of bounds " +
      "(0x0000000000040000-0x0000000000040fff)!",
    ]);
    assert.ok(m.edu.buffer.every((b) => b === 0));
    assert.equal(m.r32(EDU_REG.DMA_CMD), 0x4);
    assert.equal(m.r32(EDU_REG.IRQ_STATUS), 0x100); // completes so a waiting driver wakes
    assert.ok(m.trace.some((l) => l.includes("QEMU 7.2 aborts the VM here")));
    m.w32(EDU_REG.DMA_COUNT, 4095);
    m.w32(EDU_REG.DMA_CMD, 0x1);
    m.clock.advance(EDU_DMA_DELAY_NS);
    assert.deepEqual(m.edu.buffer.subarray(0, 4095), pattern(4096).subarray(0, 4095));
    m.w32(EDU_REG.DMA_COUNT, 0);
    m.w32(EDU_REG.DMA_CMD, 0x1);
    m.clock.advance(EDU_DMA_DELAY_NS);
    assert.equal(m.edu.hwErrors.length, 2);

    const f = machine({ dmaRangeCheck: "fixed" });
    f.ram.bytes.set(pattern(4096));
    f.w64(EDU_REG.DMA_SRC, IOVA);
    f.w64(EDU_REG.DMA_DST, 0x40000n);
    f.w32(EDU_REG.DMA_COUNT, 4096);
    f.w32(EDU_REG.DMA_CMD, 0x1);
    f.clock.advance(EDU_DMA_DELAY_NS);
    assert.deepEqual(f.edu.hwErrors, []);
    assert.deepEqual(f.edu.buffer, pattern(4096));
    f.w64(EDU_REG.DMA_DST, 0x40800n);
    f.w32(EDU_REG.DMA_COUNT, 0x900);
    f.w32(EDU_REG.DMA_CMD, 0x1);
    f.clock.advance(EDU_DMA_DELAY_NS);
    assert.equal(f.edu.hwErrors.length, 1);
  },
});

Deno.test({
  name: "edu: bus addresses are masked to 28 bits (edu_clamp_addr); the mask is configurable",
  permissions: "none",
  fn() {
    const m = machine();
    m.ram.bytes.set(pattern(16));
    m.w64(EDU_REG.DMA_SRC, (1n << 32n) | IOVA);
    m.w64(EDU_REG.DMA_DST, 0x40000n);
    m.w32(EDU_REG.DMA_COUNT, 16);
    m.w32(EDU_REG.DMA_CMD, 0x1);
    m.clock.advance(EDU_DMA_DELAY_NS);
    assert.deepEqual(m.edu.buffer.subarray(0, 16), pattern(16));
    assert.ok(m.trace.includes("edu: EDU: clamping DMA 0x100100000 to 0x100000!"));
    const wide = machine({ dmaMask: (1n << 64n) - 1n });
    wide.w64(EDU_REG.DMA_SRC, (1n << 32n) | IOVA);
    wide.w64(EDU_REG.DMA_DST, 0x40000n);
    wide.w32(EDU_REG.DMA_COUNT, 16);
    wide.w32(EDU_REG.DMA_CMD, 0x1);
    wide.clock.advance(EDU_DMA_DELAY_NS);
    assert.equal(wide.iommu.faults[0].address, (1n << 32n) | IOVA); // unmapped IOVA
  },
});

Deno.test({
  name: "edu: reset returns registers, timers, config space and INTx to power-on",
  permissions: "none",
  fn() {
    const { clock, edu, events, r32, r64, w32, w64 } = machine();
    w32(EDU_REG.LIVENESS, 1);
    w32(EDU_REG.IRQ_RAISE, 0x8);
    w64(EDU_REG.DMA_DST, 0x40000n);
    w32(EDU_REG.DMA_CMD, 0x1 | 0x4);
    edu.reset();
    clock.advance(EDU_DMA_DELAY_NS);
    assert.equal(r32(EDU_REG.LIVENESS), 0);
    assert.equal(r32(EDU_REG.IRQ_STATUS), 0);
    assert.equal(r64(EDU_REG.DMA_DST), 0n);
    assert.equal(r32(EDU_REG.DMA_CMD), 0);
    assert.equal(edu.config.read(PCI_COMMAND, 2), 0);
    assert.deepEqual(events, ["0 intx true", "0 intx false"]);
  },
});

Deno.test({
  name: "edu: determinism: the same sequence gives the same events at the same virtual times",
  permissions: "none",
  fn() {
    const run = (): string[] => {
      const m = machine();
      enableMsi(m.edu);
      m.ram.bytes.set(pattern(512, 13));
      m.w32(EDU_REG.STATUS, 0x80);
      m.w32(EDU_REG.FACTORIAL, 9);
      m.clock.advance(1234);
      m.w64(EDU_REG.DMA_SRC, IOVA);
      m.w64(EDU_REG.DMA_DST, 0x40100n);
      m.w32(EDU_REG.DMA_COUNT, 512);
      m.w32(EDU_REG.DMA_CMD, 0x5);
      for (let t = m.clock.nextEventNs(); t !== undefined; t = m.clock.nextEventNs()) {
        m.clock.runUntil(t);
        m.w32(EDU_REG.IRQ_ACK, m.r32(EDU_REG.IRQ_STATUS));
      }
      m.w64(EDU_REG.DMA_SRC, 0x40100n);
      m.w64(EDU_REG.DMA_DST, 0x800000n);
      m.w32(EDU_REG.DMA_CMD, 0x7);
      m.clock.advance(EDU_DMA_DELAY_NS);
      return [...m.events, ...m.trace, `${m.clock.nowNs}`, `${m.r32(EDU_REG.FACTORIAL)}`];
    };
    const a = run();
    assert.deepEqual(run(), a);
    assert.deepEqual(a.slice(0, 3), [
      `${EDU_FACTORIAL_DELAY_NS} msi 0`,
      `${1234 + EDU_DMA_DELAY_NS} msi 0`,
      `${1234 + 2 * EDU_DMA_DELAY_NS} msi 0`,
    ]);
  },
});
