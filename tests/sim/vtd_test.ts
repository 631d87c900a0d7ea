/**
 * The VT-d model: register values, second-stage tables read back from physical memory, faults in
 * the hardware's record format with Linux's DMAR lines, the IOTLB, splitting, domain ids.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ERRNO } from "../../ffi/errno.ts";
import { VirtualClock } from "../../sim/clock.ts";
import { PhysicalMemory } from "../../sim/memory.ts";
import { VtdIommu, type VtdOptions } from "../../sim/iommu/vtd/vtd.ts";
import { decodeVtdFaultRecord } from "../../sim/iommu/vtd/vtd_fault.ts";
import {
  SecondStageTable,
  VTD_PTE_ADDR_MASK,
  VTD_PTE_PS,
  VTD_PTE_R,
  VTD_PTE_W,
} from "../../sim/iommu/vtd/vtd_pgtable.ts";
import { VTD_FSTS, VTD_REG } from "../../sim/iommu/vtd/vtd_regs.ts";

const RW = { read: true, write: true };
const RO = { read: true, write: false };
const WO = { read: false, write: true };
const EDU_RID = 0x0010; // 00:02.0
const K4 = 0x1000n;
const M2 = 0x20_0000n;
const G1 = 0x4000_0000n;

function unit(o: Partial<VtdOptions> = {}): { iommu: VtdIommu; memory: PhysicalMemory } {
  const memory = new PhysicalMemory();
  return { iommu: new VtdIommu({ memory, clock: new VirtualClock(), ...o }), memory };
}

/** Read the PTE for `iova` at `level` straight from physical memory, walking from the root. */
function pteAt(memory: PhysicalMemory, root: number, levels: number, iova: bigint, level: number) {
  let table = root;
  for (let l = levels; l > level; l--) {
    const pte = memory.readU64(
      SecondStageTable.entryAddress(table, SecondStageTable.indexOf(iova, l)),
    )!;
    table = Number(pte & VTD_PTE_ADDR_MASK);
  }
  return memory.readU64(
    SecondStageTable.entryAddress(table, SecondStageTable.indexOf(iova, level)),
  )!;
}

Deno.test({
  name: "vtd: CAP/ECAP are QEMU intel-iommu's, facts and hw_info follow from them",
  permissions: "none",
  fn() {
    const { iommu } = unit();
    assert.equal(iommu.cap, 0xd2008c222f0606n);
    assert.equal(iommu.ecap, 0xf00f4an);
    const f = iommu.facts;
    assert.equal(f.kind, "vtd");
    assert.equal(f.pgsizeBitmap, 0x40201000n);
    assert.deepEqual(f.aperture, { start: 0n, end: (1n << 48n) - 1n });
    assert.equal(f.cacheCoherency, true);
    assert.equal(f.enforceCacheCoherency, false); // ECAP.SC clear
    assert.equal(f.dirtyTracking, false); // ECAP.SLADS clear
    assert.equal(f.msiIsolated, true);
    assert.equal(f.maxPasidLog2, 0);
    assert.equal(f.hwInfo.type, 1);
    const hex = Array.from(f.hwInfo.data, (b) => b.toString(16).padStart(2, "0")).join("");
    assert.equal(hex, "01000000" + "00000000" + "06062f228c00d200" + "4a0ff00000000000");
    assert.equal(iommu.levels, 4);
    assert.equal(iommu.readRegister(VTD_REG.VER, 4), 0x10n);
    assert.equal(iommu.readRegister(VTD_REG.CAP, 8), 0xd2008c222f0606n);
  },
});

Deno.test({
  name: "vtd: 39- and 57-bit widths, no interrupt remapping, reserved regions with RMRRs",
  permissions: "none",
  fn() {
    const w39 = unit({ addressWidth: 39 }).iommu;
    assert.equal(w39.levels, 3);
    assert.equal(w39.facts.aperture.end, (1n << 39n) - 1n);
    assert.equal((w39.cap >> 8n) & 0x1fn, 0b10n); // SAGAW: 39-bit only
    const w57 = unit({ addressWidth: 57 }).iommu;
    assert.equal(w57.levels, 5);
    assert.equal(w57.facts.aperture.end, (1n << 57n) - 1n);
    const noIr = unit({ intremap: false }).iommu;
    assert.equal(noIr.ecap, 0xf00f42n);
    assert.equal(noIr.facts.msiIsolated, false);
    const { iommu } = unit({
      rmrrs: [
        { start: 0xbf800000n, end: 0xbfffffffn, requesters: [EDU_RID] },
        { start: 0x1000n, end: 0x1fffn, requesters: [EDU_RID], relaxable: true },
        { start: 0x5000n, end: 0x5fffn, requesters: [0x0018] },
      ],
    });
    assert.deepEqual(iommu.reservedRegions(EDU_RID), [
      { start: 0x1000n, end: 0x1fffn, type: "direct-relaxable" },
      { start: 0xbf800000n, end: 0xbfffffffn, type: "direct" },
      { start: 0xfee00000n, end: 0xfeefffffn, type: "msi" },
    ]);
    assert.deepEqual(unit().iommu.reservedRegions(EDU_RID), [
      { start: 0xfee00000n, end: 0xfeefffffn, type: "msi" },
    ]);
  },
});

Deno.test({
  name: "vtd: 4K/2M/1G leaves in real second-stage format, largest page that fits",
  permissions: "none",
  fn() {
    const { iommu, memory } = unit();
    const d = iommu.allocDomain();
    const root = d.table.root;
    // 1 GiB + 2 MiB + 4 KiB in one call, everything aligned: one leaf of each size.
    const phys = 0x40_0000_0000n;
    assert.equal(d.map(G1, phys, G1 + M2 + K4, RW), 0);
    const g = pteAt(memory, root, 4, G1, 3);
    assert.equal(g & (VTD_PTE_R | VTD_PTE_W | VTD_PTE_PS), VTD_PTE_R | VTD_PTE_W | VTD_PTE_PS);
    assert.equal(g & VTD_PTE_ADDR_MASK, phys);
    const m = pteAt(memory, root, 4, 2n * G1, 2);
    assert.equal(m & VTD_PTE_PS, VTD_PTE_PS);
    assert.equal(m & VTD_PTE_ADDR_MASK, phys + G1);
    const k = pteAt(memory, root, 4, 2n * G1 + M2, 1);
    assert.equal(k, (phys + G1 + M2) | VTD_PTE_R | VTD_PTE_W);
    // Non-leaf entries carry R|W and no PS.
    const top = memory.readU64(SecondStageTable.entryAddress(root, 0))!;
    assert.equal(top & 0xfffn, VTD_PTE_R | VTD_PTE_W);
    assert.deepEqual(d.lookup(G1 + 0x1234n), { phys: phys + 0x1234n, prot: RW });
    // Misaligned physical address: only 4 KiB pages.
    assert.equal(d.map(0x8000_0000_0000n - M2, 0x1000n, M2, RO), 0);
    const leaf = pteAt(memory, root, 4, 0x8000_0000_0000n - M2 + K4, 1);
    assert.equal(leaf, 0x2000n | VTD_PTE_R);
    assert.deepEqual(d.lookup(0x8000_0000_0000n - 1n), { phys: 0x200fffn, prot: RO });
  },
});

Deno.test({
  name: "vtd: map rules: EINVAL misaligned/empty/no permission/beyond aperture, EEXIST overlap",
  permissions: "none",
  fn() {
    const { iommu } = unit();
    const d = iommu.allocDomain();
    assert.equal(d.map(0x1000n, 0x1000n, 0x1000n, { read: false, write: false }), -ERRNO.EINVAL);
    assert.equal(d.map(0x1800n, 0x1000n, 0x1000n, RW), -ERRNO.EINVAL);
    assert.equal(d.map(0x1000n, 0x1000n, 0n, RW), -ERRNO.EINVAL);
    assert.equal(d.map(1n << 48n, 0x1000n, 0x1000n, RW), -ERRNO.EINVAL);
    assert.equal(d.map((1n << 48n) - K4, 0x1000n, K4, RW), 0);
    assert.equal(d.map(0x10000n, 0x1000n, 0x4000n, RW), 0);
    assert.equal(d.map(0x13000n, 0x9000n, 0x2000n, RW), -ERRNO.EEXIST);
    assert.equal(d.lookup(0x14000n), undefined); // nothing of the failed map stayed
  },
});

Deno.test({
  name: "vtd: permission faults 0x05/0x06 with Linux's exact DMAR lines and FRR fields",
  permissions: "none",
  fn() {
    const log: string[] = [];
    const { iommu } = unit({ kernelLog: (l) => log.push(l) });
    const d = iommu.allocDomain();
    d.map(0x100000n, 0x1_0000_0000n, 0x1000n, RO);
    d.map(0x200000n, 0x1_0000_1000n, 0x1000n, WO);
    iommu.attach(EDU_RID, d);
    assert.deepEqual(iommu.translate(EDU_RID, undefined, 0x100010n, "read", 4), {
      ok: true,
      phys: 0x1_0000_0010n,
    });
    const w = iommu.translate(EDU_RID, undefined, 0x800000n, "write", 64);
    assert.equal(w.ok, false);
    if (w.ok) return;
    assert.equal(
      w.fault.message,
      "DMAR: [DMA Write NO_PASID] Request device [00:02.0] fault addr 0x800000 " +
        "[fault reason 0x05] PTE Write access is not set",
    );
    assert.equal(w.fault.format, "vtd-frr");
    assert.equal(w.fault.reason, 0x05);
    const rec = decodeVtdFaultRecord(w.fault.raw);
    assert.deepEqual(rec, {
      fi: 0x800000n,
      sid: EDU_RID,
      pp: false,
      fr: 5,
      pv: 0,
      read: false,
      valid: true,
    });
    const ro = iommu.translate(EDU_RID, undefined, 0x100abcn, "write", 4);
    assert.equal(!ro.ok && ro.fault.reason, 0x05);
    const wo = iommu.translate(EDU_RID, undefined, 0x200abcn, "read", 4);
    assert.equal(
      !wo.ok && wo.fault.message,
      "DMAR: [DMA Read NO_PASID] Request device [00:02.0] fault addr 0x200000 " +
        "[fault reason 0x06] PTE Read access is not set",
    );
    assert.equal(!wo.ok && wo.fault.address, 0x200abcn);
    assert.equal(iommu.faults.length, 3);
    // Linux's handler drained each fault as it came ("reg 2" = PPF).
    assert.equal(log[0], "DMAR: DRHD: handling fault status reg 2");
    assert.equal(log[1], w.fault.message);
    assert.equal(log.length, 6);
  },
});

Deno.test({
  name: "vtd: blocked device 0x02, aperture 0x04, PASID in legacy mode 0x31",
  permissions: "none",
  fn() {
    const { iommu } = unit();
    const blocked = iommu.translate(EDU_RID, undefined, 0x1000n, "read", 4);
    assert.equal(
      !blocked.ok && blocked.fault.message,
      "DMAR: [DMA Read NO_PASID] Request device [00:02.0] fault addr 0x1000 " +
        "[fault reason 0x02] Present bit in context entry is clear",
    );
    const d = iommu.allocDomain();
    iommu.attach(EDU_RID, d);
    const far = iommu.translate(EDU_RID, undefined, 1n << 48n, "write", 4);
    assert.equal(!far.ok && far.fault.reason, 0x04);
    assert.equal(!far.ok && far.fault.reasonName, "Access beyond MGAW");
    const p = iommu.translate(EDU_RID, 5, 0x1000n, "write", 4);
    assert.equal(
      !p.ok && p.fault.message,
      "DMAR: [DMA Write PASID 0x5] Request device [00:02.0] fault addr 0x1000 " +
        "[fault reason 0x31] SM: TTM 0 for request with PASID",
    );
    assert.equal(!p.ok && decodeVtdFaultRecord(p.fault.raw).pp, true);
    assert.equal(!p.ok && decodeVtdFaultRecord(p.fault.raw).pv, 5);
    iommu.attach(EDU_RID, null);
    assert.equal(iommu.translate(EDU_RID, undefined, 0x1000n, "read", 4).ok, false);
  },
});

Deno.test({
  name: "vtd: a DMA write into the MSI window is an interrupt request: refused, memory untouched",
  permissions: "none",
  fn() {
    const { iommu, memory } = unit();
    const d = iommu.allocDomain();
    const chunk = memory.allocate(0x1000)!;
    iommu.attach(EDU_RID, d);
    const r = iommu.translate(EDU_RID, undefined, 0xfee00000n, "write", 4);
    assert.equal(
      !r.ok && r.fault.message,
      "DMAR: [INTR-REMAP] Request device [00:02.0] fault index 0x0 " +
        "[fault reason 0x25] Blocked a compatibility format interrupt request",
    );
    const remappable = iommu.translate(EDU_RID, undefined, 0xfee00030n, "write", 4);
    assert.equal(!remappable.ok && remappable.fault.reason, 0x22);
    assert.match(!remappable.ok ? remappable.fault.message : "", /fault index 0x1 /);
    const bulk = iommu.translate(EDU_RID, undefined, 0xfee01000n, "write", 4096);
    assert.equal(!bulk.ok && bulk.fault.reason, 0x20);
    assert.ok(chunk.bytes.every((b) => b === 0));
    const noIr = unit({ intremap: false }).iommu;
    const plain = noIr.translate(EDU_RID, undefined, 0xfee00000n, "write", 64);
    assert.equal(plain.ok, false);
    assert.match(!plain.ok ? plain.fault.message : "", /interrupt window/);
  },
});

Deno.test({
  name: "vtd: fault registers: NFR=1 overflows to PFO, F and PFO are RW1C, drain as Linux",
  permissions: "none",
  fn() {
    const log: string[] = [];
    const { iommu } = unit({ hostDrainsFaults: false, kernelLog: (l) => log.push(l) });
    iommu.translate(EDU_RID, undefined, 0x5000n, "read", 4);
    iommu.translate(EDU_RID, undefined, 0x6000n, "write", 4);
    assert.equal(Number(iommu.readRegister(VTD_REG.FSTS, 4)), VTD_FSTS.PPF | VTD_FSTS.PFO);
    const fro = 0x220;
    const lo = iommu.readRegister(fro, 8);
    const hi = iommu.readRegister(fro + 8, 8);
    assert.equal(lo, 0x5000n);
    assert.equal(hi & 0xffffn, BigInt(EDU_RID));
    assert.equal((hi >> 32n) & 0xffn, 0x02n); // FR
    assert.equal((hi >> 62n) & 1n, 1n); // T = read
    assert.equal(hi >> 63n, 1n); // F
    assert.equal(iommu.faults.length, 2); // the log keeps what the registers dropped
    iommu.writeRegister(fro + 12, 4, 1n << 31n);
    iommu.writeRegister(VTD_REG.FSTS, 4, BigInt(VTD_FSTS.PFO));
    assert.equal(iommu.readRegister(VTD_REG.FSTS, 4), 0n);
    iommu.translate(EDU_RID, 3, 0x7000n, "read", 4);
    assert.deepEqual(iommu.drainFaults(), [
      "DMAR: DRHD: handling fault status reg 2",
      "DMAR: [DMA Read PASID 0x3] Request device [00:02.0] fault addr 0x7000 " +
      "[fault reason 0x31] SM: TTM 0 for request with PASID",
    ]);
    assert.equal(log.length, 2);
    assert.equal(iommu.readRegister(VTD_REG.FSTS, 4), 0n);
  },
});

Deno.test({
  name: "vtd: IOTLB hits, flush on unmap, and the cache is real (stale without a flush)",
  permissions: "none",
  fn() {
    const { iommu, memory } = unit();
    const d = iommu.allocDomain();
    d.map(0x100000n, 0x1_0000_0000n, M2, RW);
    iommu.attach(EDU_RID, d);
    const before = { ...iommu.iotlb.stats };
    assert.equal(iommu.translate(EDU_RID, undefined, 0x100000n, "read", 4).ok, true);
    assert.equal(iommu.translate(EDU_RID, undefined, 0x1ff000n, "write", 4).ok, true);
    assert.equal(iommu.iotlb.stats.misses - before.misses, 2);
    assert.equal(iommu.translate(EDU_RID, undefined, 0x100800n, "read", 4).ok, true);
    assert.equal(iommu.iotlb.stats.hits - before.hits, 1);
    // Clear the PTE behind the IOTLB's back: a real cache still translates.
    const addr = SecondStageTable.entryAddress(
      Number(pteAt(memory, d.table.root, 4, 0x100000n, 2) & VTD_PTE_ADDR_MASK),
      SecondStageTable.indexOf(0x100000n, 1),
    );
    const saved = memory.readU64(addr)!;
    memory.writeU64(addr, 0n);
    assert.equal(iommu.translate(EDU_RID, undefined, 0x100000n, "read", 4).ok, true);
    memory.writeU64(addr, saved);
    // unmap flushes: the next access walks and faults.
    assert.equal(d.unmap(0x100000n, K4), K4);
    assert.equal(iommu.translate(EDU_RID, undefined, 0x100000n, "read", 4).ok, false);
    assert.equal(iommu.translate(EDU_RID, undefined, 0x101000n, "read", 4).ok, true);
    // attach flushes the domain.
    iommu.attach(EDU_RID, d);
    assert.equal(iommu.iotlb.size, 0);
  },
});

Deno.test({
  name: "vtd: unmap of a sub-range splits a 2 MiB page; empty tables are freed",
  permissions: "none",
  fn() {
    const { iommu, memory } = unit();
    const d = iommu.allocDomain();
    const phys = 0x1_0020_0000n;
    assert.equal(d.map(M2, phys, M2, RW), 0);
    assert.equal(d.table.tablePages, 3); // root, L3, L2 (2 MiB leaf)
    assert.equal(d.unmap(M2 + 0x5000n, 0x2000n), 0x2000n);
    const l2 = pteAt(memory, d.table.root, 4, M2, 2);
    assert.equal(l2 & VTD_PTE_PS, 0n); // now a table pointer
    assert.equal(d.table.tablePages, 4);
    assert.equal(d.lookup(M2 + 0x5000n), undefined);
    assert.equal(d.lookup(M2 + 0x6fffn), undefined);
    assert.deepEqual(d.lookup(M2 + 0x4fffn), { phys: phys + 0x4fffn, prot: RW });
    assert.deepEqual(d.lookup(M2 + 0x7000n), { phys: phys + 0x7000n, prot: RW });
    assert.equal(pteAt(memory, d.table.root, 4, M2 + 0x7000n, 1), (phys + 0x7000n) | 3n);
    // Unmapping a range with holes reports only what was mapped.
    assert.equal(d.unmap(0n, 2n * M2), M2 - 0x2000n);
    assert.equal(d.table.tablePages, 1);
    // A 1 GiB page split twice down to 4 KiB.
    assert.equal(d.map(G1, 0x80_0000_0000n, G1, RO), 0);
    assert.equal(d.unmap(G1 + M2 + K4, K4), K4);
    assert.equal(d.table.tablePages, 4);
    assert.deepEqual(d.lookup(G1 + M2), { phys: 0x80_0000_0000n + M2, prot: RO });
    assert.deepEqual(d.lookup(G1 + 2n * M2), { phys: 0x80_0000_0000n + 2n * M2, prot: RO });
    assert.equal(d.unmap(G1, G1), G1 - K4);
    assert.equal(d.table.tablePages, 1);
  },
});

Deno.test({
  name: "vtd: domain ids from 2, lowest free reused; free releases the tables",
  permissions: "none",
  fn() {
    const { iommu, memory } = unit();
    const used = memory.usedBytes;
    const [a, b, c] = [iommu.allocDomain(), iommu.allocDomain(), iommu.allocDomain()];
    assert.deepEqual([a.id, b.id, c.id], [2, 3, 4]);
    b.map(0x1000n, 0x1000n, 0x1000n, RW);
    iommu.freeDomain(b);
    const b2 = iommu.allocDomain();
    assert.equal(b2.id, 3);
    iommu.attach(EDU_RID, a);
    assert.throws(() => iommu.freeDomain(a), /freed while attached/);
    iommu.attach(EDU_RID, null);
    iommu.freeDomain(a);
    const a2 = iommu.allocDomain();
    assert.equal(a2.id, 2);
    assert.deepEqual(iommu.domainIds, [2, 3, 4]);
    for (const d of [a2, b2, c]) iommu.freeDomain(d);
    assert.deepEqual(iommu.domainIds, []);
    assert.equal(memory.usedBytes, used); // every table page went back
  },
});
