/**
 * The SMMUv3 model: ID registers and facts, stream table / CD / stage-1 descriptors read straight
 * from physical memory, event records in the SMMUv3 format with Linux's log lines (F_TRANSLATION,
 * F_PERMISSION, C_BAD_STE, C_BAD_STREAMID, C_BAD_SUBSTREAMID, C_BAD_CD, F_ADDR_SIZE, F_ACCESS),
 * the IOTLB and its flushes, stage 2, the event queue, determinism.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ERRNO } from "../../ffi/errno.ts";
import { VirtualClock } from "../../sim/clock.ts";
import { PhysicalMemory } from "../../sim/memory.ts";
import { SmmuV3Iommu, type SmmuV3Options } from "../../sim/iommu/smmuv3/smmuv3.ts";
import { decodeSmmuEvent, SMMU_EVT, smmuEventDwords } from "../../sim/iommu/smmuv3/smmuv3_event.ts";
import {
  LPAE_DESC,
  lpaeDescAddress,
  lpaeIndex,
  lpaeStartLevel,
} from "../../sim/iommu/smmuv3/smmuv3_pgtable.ts";
import {
  idrField,
  SMMU_IDR0,
  SMMU_IDR1,
  SMMU_IDR5,
  SMMU_REG,
} from "../../sim/iommu/smmuv3/smmuv3_regs.ts";
import {
  decodeCd,
  decodeSte,
  encodeAbortSte,
  encodeBypassSte,
  readWords,
  STE_CONFIG,
} from "../../sim/iommu/smmuv3/smmuv3_ste.ts";

const RW = { read: true, write: true };
const RO = { read: true, write: false };
const SID = 0x0010; // 00:02.0
const K4 = 0x1000n;
const M2 = 0x20_0000n;
const G1 = 0x4000_0000n;
const RAM = 0x1_0000_0000n;

function unit(o: Partial<SmmuV3Options> = {}): {
  smmu: SmmuV3Iommu;
  memory: PhysicalMemory;
  log: string[];
} {
  const memory = new PhysicalMemory();
  const log: string[] = [];
  const smmu = new SmmuV3Iommu({
    memory,
    clock: new VirtualClock(),
    kernelLog: (l) => log.push(l),
    ...o,
  });
  return { smmu, memory, log };
}

/** The descriptor for `iova` at `level`, walking from `root` in memory. */
function descAt(memory: PhysicalMemory, root: bigint, iova: bigint, level: number): bigint {
  let table = root;
  for (let l = lpaeStartLevel(48); l < level; l++) {
    table = memory.readU64(lpaeDescAddress(table, lpaeIndex(iova, l)))! & LPAE_DESC.ADDR_MASK;
  }
  return memory.readU64(lpaeDescAddress(table, lpaeIndex(iova, level)))!;
}

/** The STE of `sid`, found from SMMU_STRTAB_BASE through the L1 descriptor, as hardware does. */
function steOf(smmu: SmmuV3Iommu, memory: PhysicalMemory, sid: number): bigint[] {
  const base = smmu.readRegister(SMMU_REG.STRTAB_BASE, 8) & (((1n << 52n) - 1n) & ~0x3fn);
  const cfg = Number(smmu.readRegister(SMMU_REG.STRTAB_BASE_CFG, 4));
  const split = (cfg >> 6) & 0x1f;
  const l1 = memory.readU64(base + BigInt((sid >> split) * 8))!;
  assert.equal(Number(l1 & 0x1fn), split + 1, "L1 SPAN");
  const l2 = l1 & (((1n << 52n) - 1n) & ~0x3fn);
  return readWords(memory, l2 + BigInt((sid & ((1 << split) - 1)) * 64), 8)!;
}

function eventOf(r: ReturnType<SmmuV3Iommu["translate"]>) {
  assert.equal(r.ok, false);
  if (r.ok) throw new Error("unreachable");
  return { fault: r.fault, event: decodeSmmuEvent(r.fault.raw) };
}

Deno.test({
  name: "smmuv3: ID registers from named fields; facts Linux derives from them",
  permissions: "none",
  fn() {
    const { smmu } = unit();
    const idr0 = Number(smmu.readRegister(SMMU_REG.IDR0, 4));
    assert.equal(idrField(idr0, SMMU_IDR0.S1P), 1);
    assert.equal(idrField(idr0, SMMU_IDR0.S2P), 1);
    assert.equal(idrField(idr0, SMMU_IDR0.TTF), 2); // AArch64
    assert.equal(idrField(idr0, SMMU_IDR0.COHACC), 1);
    assert.equal(idrField(idr0, SMMU_IDR0.ASID16), 1);
    assert.equal(idrField(idr0, SMMU_IDR0.VMID16), 1);
    assert.equal(idrField(idr0, SMMU_IDR0.HTTU), 0);
    assert.equal(idrField(idr0, SMMU_IDR0.ST_LEVEL), 1);
    const idr1 = Number(smmu.readRegister(SMMU_REG.IDR1, 4));
    assert.equal(idrField(idr1, SMMU_IDR1.SIDSIZE), 16);
    assert.equal(idrField(idr1, SMMU_IDR1.SSIDSIZE), 0);
    const idr5 = Number(smmu.readRegister(SMMU_REG.IDR5, 4));
    assert.equal(idrField(idr5, SMMU_IDR5.OAS), 5); // 48 bits
    assert.equal(idrField(idr5, SMMU_IDR5.GRAN4K), 1);
    assert.equal(smmu.readRegister(SMMU_REG.AIDR, 4), 1n);
    const f = smmu.facts;
    assert.equal(f.kind, "smmuv3");
    assert.equal(f.pgsizeBitmap, 0x40201000n);
    assert.deepEqual(f.aperture, { start: 0n, end: (1n << 48n) - 1n });
    assert.equal(f.cacheCoherency, true);
    assert.equal(f.enforceCacheCoherency, false);
    assert.equal(f.dirtyTracking, false);
    assert.equal(f.msiIsolated, true);
    assert.deepEqual(f.hwInfo, { type: 0, data: new Uint8Array(0) });
    assert.equal(f.maxPasidLog2, 0);
    assert.deepEqual(smmu.reservedRegions(SID), [
      { start: 0x8000000n, end: 0x80fffffn, type: "sw-msi" },
    ]);
    const pasid = unit({ ssidBits: 16, oasBits: 44 }).smmu;
    assert.equal(pasid.facts.maxPasidLog2, 16);
    assert.equal(idrField(pasid.idr.idr1, SMMU_IDR1.SSIDSIZE), 16);
    assert.equal(idrField(pasid.idr.idr5, SMMU_IDR5.OAS), 4);
  },
});

Deno.test({
  name: "smmuv3: attach writes Linux's STE and CD into memory; ASIDs from 1",
  permissions: "none",
  fn() {
    const { smmu, memory } = unit();
    const d = smmu.allocDomain();
    assert.equal(d.id, 1);
    assert.equal(smmu.allocDomain().id, 2);
    smmu.attach(SID, d);
    const ste = decodeSte(steOf(smmu, memory, SID));
    assert.equal(ste.valid, true);
    assert.equal(ste.config, STE_CONFIG.S1_TRANS);
    assert.equal(ste.s1cdmax, 0);
    assert.equal(ste.s1dss, 2); // SSID0
    const cdWords = readWords(memory, ste.s1ContextPtr, 8)!;
    const cd = decodeCd(cdWords);
    assert.deepEqual(
      { ...cd },
      {
        valid: true,
        t0sz: 16,
        tg0: 0,
        epd0: false,
        ips: 5,
        aa64: true,
        recordFaults: true,
        asid: 1,
        ttb0: BigInt(d.table.root),
      },
    );
    assert.equal(cdWords[3], 0xf404ff44n); // MAIR
    assert.equal((cdWords[0] >> 30n) & 1n, 1n); // EPD1
    assert.equal((cdWords[0] >> 46n) & 3n, 3n); // A, ASET
  },
});

Deno.test({
  name: "smmuv3: 4K/2M/1G stage-1 descriptors in memory; translate; read-only is AP[2]",
  permissions: "none",
  fn() {
    const { smmu, memory } = unit();
    const d = smmu.allocDomain();
    const root = BigInt(d.table.root);
    assert.equal(d.map(G1, RAM, G1 + M2 + K4, RW), 0);
    const g = descAt(memory, root, G1, 1);
    assert.equal(g & 3n, 1n); // block
    assert.equal(g & LPAE_DESC.ADDR_MASK, RAM);
    assert.equal(g & LPAE_DESC.AF, LPAE_DESC.AF);
    assert.equal(g & LPAE_DESC.AP_UNPRIV, LPAE_DESC.AP_UNPRIV);
    assert.equal(g & LPAE_DESC.AP_RDONLY, 0n);
    assert.equal(g & LPAE_DESC.NG, LPAE_DESC.NG);
    const m = descAt(memory, root, 2n * G1, 2);
    assert.equal(m & 3n, 1n);
    assert.equal(m & LPAE_DESC.ADDR_MASK, RAM + G1);
    const k = descAt(memory, root, 2n * G1 + M2, 3);
    assert.equal(k & 3n, 3n); // page
    assert.equal(k & LPAE_DESC.ADDR_MASK, RAM + G1 + M2);
    assert.equal(descAt(memory, root, 0n, 0) & 3n, 3n); // level-0 table descriptor
    assert.equal(d.map(0x100000n, RAM + 0x5000n, K4, RO), 0);
    const ro = descAt(memory, root, 0x100000n, 3);
    assert.equal(ro & LPAE_DESC.AP_RDONLY, LPAE_DESC.AP_RDONLY);
    smmu.attach(SID, d);
    assert.deepEqual(smmu.translate(SID, undefined, G1 + 0x1234n, "write", 4), {
      ok: true,
      phys: RAM + 0x1234n,
    });
    assert.deepEqual(smmu.translate(SID, undefined, 2n * G1 + M2 + 8n, "read", 4), {
      ok: true,
      phys: RAM + G1 + M2 + 8n,
    });
    assert.deepEqual(smmu.translate(SID, undefined, 0x100010n, "read", 4), {
      ok: true,
      phys: RAM + 0x5010n,
    });
    assert.deepEqual(d.lookup(0x100000n), { phys: RAM + 0x5000n, prot: RO });
    // A write-only mapping is read/write at stage 1 (no write-only encoding), as Linux maps it.
    assert.equal(d.map(0x200000n, RAM, K4, { read: false, write: true }), 0);
    assert.deepEqual(d.lookup(0x200000n)?.prot, RW);
  },
});

Deno.test({
  name: "smmuv3: map rules (EINVAL/EEXIST/ERANGE) and unmap splits a 2M block",
  permissions: "none",
  fn() {
    const { smmu, memory } = unit();
    const d = smmu.allocDomain();
    assert.equal(d.map(0x1000n, RAM, 0x800n, RW), -ERRNO.EINVAL);
    assert.equal(d.map(0x1000n, RAM, K4, { read: false, write: false }), -ERRNO.EINVAL);
    assert.equal(d.map(1n << 48n, RAM, K4, RW), -ERRNO.EINVAL);
    assert.equal(d.map(0x1000n, 1n << 48n, K4, RW), -ERRNO.ERANGE);
    assert.equal(d.map(M2, RAM, M2, RW), 0);
    assert.equal(d.map(M2 + K4, RAM, K4, RW), -ERRNO.EEXIST);
    assert.equal(d.unmap(M2 + K4, K4), K4);
    const root = BigInt(d.table.root);
    assert.equal(descAt(memory, root, M2, 2) & 3n, 3n); // now a table
    assert.equal(descAt(memory, root, M2, 3) & LPAE_DESC.ADDR_MASK, RAM);
    assert.equal(descAt(memory, root, M2 + K4, 3), 0n);
    assert.equal(d.lookup(M2 + 2n * K4)?.phys, RAM + 2n * K4);
    assert.equal(d.unmap(0n, 4n * M2), M2 - K4);
    assert.equal(d.table.tablePages, 1);
  },
});

Deno.test({
  name: "smmuv3: DMA to an unmapped IOVA: F_TRANSLATION record, Linux's event lines",
  permissions: "none",
  fn() {
    const { smmu, log } = unit();
    const d = smmu.allocDomain();
    smmu.attach(SID, d);
    const { fault, event } = eventOf(smmu.translate(SID, undefined, 0x800000n, "write", 4));
    const dw = smmuEventDwords(fault.raw);
    assert.equal(fault.raw.length, 32);
    assert.equal(dw[0], (BigInt(SID) << 32n) | 0x10n);
    assert.equal((dw[1] >> 35n) & 1n, 0n); // RnW: write
    assert.equal((dw[1] >> 40n) & 3n, 2n); // CLASS: IN
    assert.equal(dw[2], 0x800000n);
    assert.equal(dw[3], 0n);
    assert.equal(event.id, SMMU_EVT.F_TRANSLATION);
    assert.equal(fault.reason, 0x10);
    assert.equal(fault.reasonName, "F_TRANSLATION");
    assert.equal(fault.format, "smmuv3-evt");
    assert.match(fault.message, /^arm-smmu-v3 9050000\.smmuv3: event 0x10 received: /);
    assert.equal(
      fault.message,
      "arm-smmu-v3 9050000.smmuv3: event 0x10 received: 0x0000001000000010 " +
        "0x0000020000000000 0x0000000000800000 0x0000000000000000",
    );
    assert.deepEqual(log, [
      "arm-smmu-v3 9050000.smmuv3: event 0x10 received:",
      "arm-smmu-v3 9050000.smmuv3: \t0x0000001000000010",
      "arm-smmu-v3 9050000.smmuv3: \t0x0000020000000000",
      "arm-smmu-v3 9050000.smmuv3: \t0x0000000000800000",
      "arm-smmu-v3 9050000.smmuv3: \t0x0000000000000000",
    ]);
    // A read sets RnW; beyond the 48-bit input range is F_TRANSLATION too (stage 1, §3.4).
    const read = eventOf(smmu.translate(SID, undefined, 1n << 48n, "read", 4)).event;
    assert.equal(read.id, SMMU_EVT.F_TRANSLATION);
    assert.equal(read.rnw, true);
    assert.equal(read.inputAddr, 1n << 48n);
    assert.equal(smmu.faults.length, 2);
  },
});

Deno.test({
  name: "smmuv3: write to read-only is F_PERMISSION; AF clear is F_ACCESS; big output F_ADDR_SIZE",
  permissions: "none",
  fn() {
    const { smmu, memory } = unit();
    const d = smmu.allocDomain();
    assert.equal(d.map(0x100000n, RAM, 2n * K4, RO), 0);
    smmu.attach(SID, d);
    assert.equal(smmu.translate(SID, undefined, 0x100000n, "read", 4).ok, true);
    const perm = eventOf(smmu.translate(SID, undefined, 0x100004n, "write", 4)).event;
    assert.equal(perm.id, SMMU_EVT.F_PERMISSION);
    assert.equal(perm.rnw, false);
    assert.equal(perm.inputAddr, 0x100004n);
    assert.equal(perm.s2, false);
    // Hand-edit the second page's descriptor: AF clear, then an output address beyond 48 bits.
    const root = BigInt(d.table.root);
    const leaf = descAt(memory, root, 0x101000n, 3);
    const table = descAt(memory, root, 0x101000n, 2) & LPAE_DESC.ADDR_MASK;
    const at = lpaeDescAddress(table, lpaeIndex(0x101000n, 3));
    memory.writeU64(at, leaf & ~LPAE_DESC.AF);
    assert.equal(eventOf(smmu.translate(SID, undefined, 0x101000n, "read", 4)).event.id, 0x12);
    memory.writeU64(at, leaf | (1n << 48n));
    assert.equal(eventOf(smmu.translate(SID, undefined, 0x101000n, "read", 4)).event.id, 0x11);
  },
});

Deno.test({
  name: "smmuv3: blocked stream → C_BAD_STE; unknown StreamID → C_BAD_STREAMID; abort STE silent",
  permissions: "none",
  fn() {
    const { smmu, memory } = unit();
    const baseline = memory.usedBytes; // stream table (L1 + bus 0's L2) and event queue
    const d = smmu.allocDomain();
    assert.equal(d.map(0x100000n, RAM, K4, RW), 0);
    smmu.attach(SID, d);
    assert.ok(smmu.cdTable(SID) !== undefined);
    smmu.attach(SID, null);
    assert.equal(smmu.cdTable(SID), undefined);
    assert.equal(decodeSte(steOf(smmu, memory, SID)).valid, false);
    const bad = eventOf(smmu.translate(SID, undefined, 0x100000n, "read", 4));
    assert.equal(bad.event.id, SMMU_EVT.C_BAD_STE);
    assert.equal(bad.event.sid, SID);
    assert.equal(bad.event.inputAddr, 0n); // configuration errors carry no address
    assert.match(bad.fault.message, /event 0x04 received: 0x0000001000000004 /);
    // Outside every level-2 table (none for StreamIDs 0x100–0x1ff) and beyond SIDSIZE.
    assert.equal(eventOf(smmu.translate(0x0110, undefined, 0n, "read", 4)).event.id, 0x02);
    assert.equal(eventOf(smmu.translate(1 << 16, undefined, 0n, "read", 4)).event.id, 0x02);
    assert.equal(eventOf(smmu.translate(-1, undefined, 0n, "read", 4)).event.id, 0x02);
    // Linux's abort STE terminates without an event.
    smmu.streamTable.writeSte(SID, encodeAbortSte());
    smmu.invalidateConfig(SID);
    const before = smmu.faults.length;
    const aborted = smmu.translate(SID, undefined, 0x100000n, "read", 4);
    assert.equal(aborted.ok, false);
    assert.equal(smmu.faults.length, before);
    smmu.freeDomain(d);
    assert.equal(memory.usedBytes, baseline, "tables and CD table released");
  },
});

Deno.test({
  name: "smmuv3: PASIDs: beyond S1CDMax → C_BAD_SUBSTREAMID, invalid CD → C_BAD_CD, 2-level CDs",
  permissions: "none",
  fn() {
    const none = unit();
    const d0 = none.smmu.allocDomain();
    none.smmu.attach(SID, d0);
    const e0 = eventOf(none.smmu.translate(SID, 1, 0x1000n, "read", 4)).event;
    assert.equal(e0.id, SMMU_EVT.C_BAD_SUBSTREAMID);
    assert.equal(e0.ssid, 1);

    const { smmu, memory } = unit({ ssidBits: 4 });
    const d = smmu.allocDomain();
    assert.equal(d.map(0x1000n, RAM, K4, RW), 0);
    smmu.attach(SID, d);
    assert.equal(decodeSte(steOf(smmu, memory, SID)).s1cdmax, 4);
    const beyond = eventOf(smmu.translate(SID, 16, 0x1000n, "read", 4));
    assert.equal(beyond.event.id, SMMU_EVT.C_BAD_SUBSTREAMID);
    assert.equal(beyond.event.ssid, 16);
    assert.equal(beyond.fault.pasid, 16);
    assert.equal(eventOf(smmu.translate(SID, 3, 0x1000n, "read", 4)).event.id, SMMU_EVT.C_BAD_CD);
    // SSID 0 is reserved for traffic without PASID (S1DSS = SSID0).
    assert.equal(eventOf(smmu.translate(SID, 0, 0x1000n, "read", 4)).event.id, 0x08);
    assert.equal(smmu.translate(SID, undefined, 0x1000n, "read", 4).ok, true);

    const wide = unit({ ssidBits: 12 });
    const dw = wide.smmu.allocDomain();
    assert.equal(dw.map(0x1000n, RAM, K4, RW), 0);
    wide.smmu.attach(SID, dw);
    assert.equal(decodeSte(steOf(wide.smmu, wide.memory, SID)).s1fmt, 1); // 2-level CD table
    assert.equal(wide.smmu.translate(SID, undefined, 0x1000n, "write", 4).ok, true);
    assert.equal(eventOf(wide.smmu.translate(SID, 2000, 0x1000n, "read", 4)).event.id, 0x08);
  },
});

Deno.test({
  name: "smmuv3: IOTLB caches by ASID; unmap and attach flush it; stale entries show until then",
  permissions: "none",
  fn() {
    const { smmu, memory } = unit();
    const d = smmu.allocDomain();
    assert.equal(d.map(0x100000n, RAM, K4, RW), 0);
    smmu.attach(SID, d);
    smmu.translate(SID, undefined, 0x100000n, "read", 4);
    const hits = smmu.iotlb.stats.hits;
    assert.deepEqual(smmu.translate(SID, undefined, 0x100008n, "read", 4), {
      ok: true,
      phys: RAM + 8n,
    });
    assert.equal(smmu.iotlb.stats.hits, hits + 1);
    // A descriptor changed behind the SMMU's back: the IOTLB still answers the old page.
    const root = BigInt(d.table.root);
    const table = descAt(memory, root, 0x100000n, 2) & LPAE_DESC.ADDR_MASK;
    const at = lpaeDescAddress(table, lpaeIndex(0x100000n, 3));
    memory.writeU64(at, (memory.readU64(at)! & ~LPAE_DESC.ADDR_MASK) | (RAM + 0x7000n));
    assert.deepEqual(smmu.translate(SID, undefined, 0x100000n, "read", 4), { ok: true, phys: RAM });
    smmu.iotlb.flushDomain(d.id); // TLBI_NH_ASID
    assert.deepEqual(smmu.translate(SID, undefined, 0x100000n, "read", 4), {
      ok: true,
      phys: RAM + 0x7000n,
    });
    // unmap flushes: no stale hit afterwards.
    assert.equal(d.unmap(0x100000n, K4), K4);
    assert.equal(eventOf(smmu.translate(SID, undefined, 0x100000n, "read", 4)).event.id, 0x10);
    // attach flushes the old and the new domain.
    assert.equal(d.map(0x100000n, RAM, K4, RW), 0);
    smmu.translate(SID, undefined, 0x100000n, "read", 4);
    const size = smmu.iotlb.size;
    smmu.attach(SID, null);
    assert.equal(smmu.iotlb.size, size - 1);
  },
});

Deno.test({
  name: "smmuv3: stage-2 domain (VMID, S2AP), bypass STE and F_ADDR_SIZE beyond the OAS",
  permissions: "none",
  fn() {
    const { smmu, memory } = unit();
    const d = smmu.allocDomain(2);
    assert.equal(d.id, 1); // VMID
    assert.equal(d.map(0x100000n, RAM, K4, RO), 0);
    smmu.attach(SID, d);
    const ste = decodeSte(steOf(smmu, memory, SID));
    assert.equal(ste.config, STE_CONFIG.S2_TRANS);
    assert.equal(ste.s2vmid, 1);
    assert.equal(ste.s2t0sz, 16);
    assert.equal(ste.s2ttb, BigInt(d.table.root));
    const leaf = descAt(memory, BigInt(d.table.root), 0x100000n, 3);
    assert.equal(leaf & (LPAE_DESC.S2AP_READ | LPAE_DESC.S2AP_WRITE), LPAE_DESC.S2AP_READ);
    assert.deepEqual(smmu.translate(SID, undefined, 0x100040n, "read", 4), {
      ok: true,
      phys: RAM + 0x40n,
    });
    const perm = eventOf(smmu.translate(SID, undefined, 0x100040n, "write", 4)).event;
    assert.equal(perm.id, SMMU_EVT.F_PERMISSION);
    assert.equal(perm.s2, true);
    assert.equal(perm.addr2, 0x100000n); // IPA, bits 51:12
    // Bypass: identity, an input beyond the 48-bit OAS is an address-size fault.
    smmu.streamTable.writeSte(SID, encodeBypassSte());
    smmu.invalidateConfig(SID);
    assert.deepEqual(smmu.translate(SID, undefined, 0x1234n, "write", 4), {
      ok: true,
      phys: 0x1234n,
    });
    const big = eventOf(smmu.translate(SID, undefined, 1n << 48n, "read", 4)).event;
    assert.equal(big.id, SMMU_EVT.F_ADDR_SIZE);
    assert.equal(big.inputAddr, 1n << 48n);
  },
});

Deno.test({
  name: "smmuv3: event queue in memory (PROD/CONS, overflow) when the host does not drain",
  permissions: "none",
  fn() {
    const { smmu, memory, log } = unit({ hostDrainsEvents: false, eventQueueShift: 1 });
    smmu.attach(SID, smmu.allocDomain());
    smmu.translate(SID, undefined, 0x1000n, "read", 4);
    smmu.translate(SID, undefined, 0x2000n, "write", 4);
    assert.equal(smmu.readRegister(SMMU_REG.EVTQ_PROD, 4), 2n); // index 0, wrap bit set
    const base = smmu.readRegister(SMMU_REG.EVTQ_BASE, 8) & ~0x1fn;
    const first = new Uint8Array(32);
    memory.read(base, first);
    assert.deepEqual(first, smmu.faults[0].raw);
    smmu.translate(SID, undefined, 0x3000n, "read", 4); // queue full: lost, OVFLG toggles
    assert.equal(smmu.readRegister(SMMU_REG.EVTQ_PROD, 4), 0x8000_0002n);
    assert.deepEqual(log, []);
    const lines = smmu.drainEvents();
    assert.equal(lines.length, 10);
    assert.equal(lines[5], "arm-smmu-v3 9050000.smmuv3: event 0x10 received:");
    assert.equal(smmu.readRegister(SMMU_REG.EVTQ_CONS, 4), 0x8000_0002n);
    assert.equal(smmu.faults.length, 3);
  },
});

Deno.test({
  name: "smmuv3: linear stream table; determinism (same calls, same records)",
  permissions: "none",
  fn() {
    const run = (): Uint8Array[] => {
      const { smmu } = unit({ linearStreamTable: true });
      const d = smmu.allocDomain();
      d.map(0x100000n, RAM, M2, RO);
      smmu.attach(SID, d);
      smmu.attach(0x18, null);
      smmu.translate(SID, undefined, 0x100000n, "write", 4);
      smmu.translate(SID, undefined, 0x900000n, "read", 4);
      smmu.translate(0x18, undefined, 0x100000n, "read", 4);
      smmu.translate(SID, 5, 0x100000n, "read", 4);
      assert.equal(Number(smmu.readRegister(SMMU_REG.STRTAB_BASE_CFG, 4)) >> 16, 0); // linear
      return smmu.faults.map((f) => f.raw);
    };
    const a = run();
    assert.deepEqual(a.map((r) => decodeSmmuEvent(r).id), [0x13, 0x10, 0x04, 0x08]);
    assert.deepEqual(run(), a);
  },
});

Deno.test({
  name: "smmuv3: hostile STEs, CDs and descriptors never throw (seeded)",
  permissions: "none",
  fn() {
    let seed = 7;
    const rnd = (): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 2 ** 32;
    };
    const word = (): bigint =>
      BigInt.asUintN(64, BigInt(Math.floor(rnd() * 2 ** 32)) << 32n) |
      BigInt(Math.floor(rnd() * 2 ** 32));
    const { smmu, memory } = unit({ ssidBits: 8 });
    const d = smmu.allocDomain();
    assert.equal(d.map(0n, RAM, M2, RW), 0);
    smmu.attach(SID, d);
    const cdTable = smmu.cdTable(SID)!.base;
    const steAt = smmu.streamTable.steAddress(SID)!;
    for (let i = 0; i < 2000; i++) {
      const ste = Array.from({ length: 8 }, word);
      // Keep some pointers plausible so the walk gets deep.
      if (rnd() < 0.5) ste[0] = (ste[0] & ~(((1n << 52n) - 1n) & ~0x3fn)) | cdTable;
      memory.writeU64(steAt, ste[0]);
      memory.writeU64(steAt + 8n, ste[1]);
      memory.writeU64(steAt + 16n, ste[2]);
      memory.writeU64(steAt + 24n, ste[3]);
      if (rnd() < 0.3) memory.writeU64(cdTable + BigInt(Math.floor(rnd() * 8)) * 8n, word());
      if (rnd() < 0.1) memory.writeU64(BigInt(d.table.root), word());
      smmu.invalidateConfig();
      smmu.iotlb.flushAll();
      const pasid = rnd() < 0.3 ? Math.floor(rnd() * 300) : undefined;
      const iova = rnd() < 0.5 ? BigInt(Math.floor(rnd() * 2 ** 22)) : word();
      const r = smmu.translate(SID, pasid, iova, rnd() < 0.5 ? "read" : "write", 4);
      if (!r.ok) assert.equal(typeof r.fault.message, "string");
    }
    assert.ok(smmu.faults.length > 100);
  },
});
