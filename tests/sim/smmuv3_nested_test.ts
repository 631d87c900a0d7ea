/**
 * SMMUv3 nested translation at the IommuModel level: a stage-2 parent maps guest-physical memory,
 * the "guest" writes a CD table and VMSAv8-64 stage-1 tables into it, and a nested domain built
 * from its STE words translates through both stages — with a stale IOTLB until CMD_TLBI_*, stage-1
 * and stage-2 event records (S2, CLASS), SSIDs, commands and the allocation checks.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ERRNO } from "../../ffi/errno.ts";
import { VirtualClock } from "../../sim/clock.ts";
import { PhysicalMemory } from "../../sim/memory.ts";
import type { IommuFault, PageRequest, TranslateResult } from "../../sim/iommu/model.ts";
import { SmmuV3Iommu } from "../../sim/iommu/smmuv3/smmuv3.ts";
import { decodeSmmuEvent, SMMU_EVT, SMMU_EVT_CLASS } from "../../sim/iommu/smmuv3/smmuv3_event.ts";
import { encodeSmmuCmd, SMMU_CMD } from "../../sim/iommu/smmuv3/smmuv3_cmd.ts";
import { SmmuV3NestedDomain } from "../../sim/iommu/smmuv3/smmuv3_nested.ts";
import { IOMMU_HWPT_DATA_ARM_SMMUV3 } from "../../ffi/uapi/post_6_12.ts";
import { LPAE_DESC, LPAE_LINUX_MAIR, lpaeIndex } from "../../sim/iommu/smmuv3/smmuv3_pgtable.ts";
import {
  decodeSte,
  encodeS1Cd,
  readWords,
  STE_CONFIG,
  STE_S1DSS,
  writeWords,
} from "../../sim/iommu/smmuv3/smmuv3_ste.ts";

const SID = 0x0010;
const RW = { read: true, write: true };
const GUEST_RAM = 0x4000_0000n; // GPA of the guest's RAM
const GUEST_RAM_SIZE = 0x20_0000n; // 2 MiB, backed by stage 2
const CD_TABLE = GUEST_RAM; // linear, 4 CDs
const DATA = GUEST_RAM + 0x10_0000n; // data pages
const IOVA = 0x1234_5000n;

/** A machine: SMMU with nesting, a stage-2 parent mapping the guest's RAM, and guest helpers. */
function setup(o: { ssidBits?: number } = {}) {
  const memory = new PhysicalMemory();
  const log: string[] = [];
  const smmu = new SmmuV3Iommu({
    memory,
    clock: new VirtualClock(),
    kernelLog: (l) => log.push(l),
    ssidBits: o.ssidBits ?? 4,
    nesting: true,
  });
  const nesting = smmu.nesting!;
  const s2 = smmu.allocDomain(2);
  const ram = memory.allocate(Number(GUEST_RAM_SIZE), Number(GUEST_RAM_SIZE))!;
  assert.equal(s2.map(GUEST_RAM, BigInt(ram.base), GUEST_RAM_SIZE, RW), 0);
  /** Host PA of a guest-physical address (through the kernel's stage 2). */
  const pa = (gpa: bigint): bigint => {
    const l = s2.lookup(gpa);
    assert.ok(l, `GPA 0x${gpa.toString(16)} is backed`);
    return l.phys;
  };
  let nextPage = GUEST_RAM + 0x1000n; // guest page allocator for its tables
  const guestPage = () => (nextPage += 0x1000n) - 0x1000n;
  const readGpa = (gpa: bigint) => memory.readU64(pa(gpa))!;
  const writeGpa = (gpa: bigint, v: bigint) => memory.writeU64(pa(gpa), v);
  /** Guest side: map one 4 KiB page `iova` → `gpa` in the stage-1 tables at `root` (48-bit). */
  const s1map = (root: bigint, iova: bigint, gpa: bigint, write = true): bigint => {
    let table = root;
    for (let level = 0; level < 3; level++) {
      const at = table + BigInt(lpaeIndex(iova, level) * 8);
      let desc = readGpa(at);
      if ((desc & LPAE_DESC.VALID) === 0n) {
        desc = guestPage() | LPAE_DESC.TABLE_OR_PAGE | LPAE_DESC.VALID;
        writeGpa(at, desc);
      }
      table = desc & LPAE_DESC.ADDR_MASK;
    }
    const leafAt = table + BigInt(lpaeIndex(iova, 3) * 8);
    writeGpa(
      leafAt,
      gpa | LPAE_DESC.AF | LPAE_DESC.AP_UNPRIV | (write ? 0n : LPAE_DESC.AP_RDONLY) |
        LPAE_DESC.TABLE_OR_PAGE | LPAE_DESC.VALID,
    );
    return leafAt;
  };
  /** Guest side: CD `ssid` with `asid` and stage-1 root `root`. */
  const writeCd = (ssid: number, asid: number, root: bigint) => {
    const cd = encodeS1Cd({ asid, ttb0: root, inputBits: 48, ips: 5, mair: LPAE_LINUX_MAIR });
    writeWords(memory, pa(CD_TABLE + BigInt(ssid * 64)), cd);
  };
  return { memory, log, smmu, nesting, s2, pa, guestPage, readGpa, writeGpa, s1map, writeCd };
}

/** The user's STE words 0–1 as bytes (`iommu_hwpt_arm_smmuv3`). */
function guestSte(o: {
  v?: boolean;
  config?: number;
  cdTable?: bigint;
  s1cdmax?: number;
  s1dss?: number;
  extra0?: bigint;
  extra1?: bigint;
} = {}): Uint8Array {
  const w0 = ((o.v ?? true) ? 1n : 0n) | (BigInt(o.config ?? STE_CONFIG.S1_TRANS) << 1n) |
    ((o.cdTable ?? CD_TABLE) & (((1n << 52n) - 1n) & ~0x3fn)) |
    (BigInt(o.s1cdmax ?? 2) << 59n) | (o.extra0 ?? 0n);
  const w1 = BigInt(o.s1dss ?? STE_S1DSS.SSID0) | (o.extra1 ?? 0n);
  const raw = new Uint8Array(16);
  const v = new DataView(raw.buffer);
  v.setBigUint64(0, w0, true);
  v.setBigUint64(8, w1, true);
  return raw;
}

function nested(
  m: ReturnType<typeof setup>,
  data = guestSte(),
): SmmuV3NestedDomain {
  const d = m.nesting.allocNested(m.s2, { dataType: IOMMU_HWPT_DATA_ARM_SMMUV3, data });
  assert.ok(d instanceof SmmuV3NestedDomain, `allocNested: ${d}`);
  return d;
}

function ok(r: TranslateResult): bigint {
  assert.ok(r.ok, r.ok ? "" : r.fault.message);
  return r.phys;
}

function faultOf(r: TranslateResult): IommuFault {
  assert.ok(!r.ok, "expected a fault");
  return r.fault;
}

Deno.test({
  name: "smmuv3 nested: translation through stage 1 and stage 2; nested STE in the stream table",
  permissions: "none",
  fn() {
    const m = setup();
    const root = m.guestPage();
    m.writeCd(0, 7, root);
    m.s1map(root, IOVA, DATA);
    const d = nested(m);
    m.smmu.attach(SID, d);
    assert.equal(m.smmu.attached(SID), d);
    const ste = decodeSte(readSte(m, SID));
    assert.equal(ste.config, STE_CONFIG.NESTED);
    assert.equal(ste.s1ContextPtr, CD_TABLE);
    assert.equal(ste.s2vmid, m.s2.id);
    assert.equal(ste.s2ttb, BigInt(m.s2.table.root));
    const want = m.pa(DATA) + 0x10n;
    assert.equal(ok(m.smmu.translate(SID, undefined, IOVA + 0x10n, "read", 4)), want);
    assert.equal(ok(m.smmu.translate(SID, undefined, IOVA + 0x10n, "write", 4)), want);
    assert.deepEqual(d.lookup(IOVA + 0x10n), { phys: want, prot: RW });
    assert.equal(d.map(0n, 0n, 0x1000n, RW), -ERRNO.EOPNOTSUPP);
    assert.equal(d.unmap(0n, 0x1000n), 0n);
    assert.deepEqual(m.smmu.faults, []);
  },
});

function readSte(m: ReturnType<typeof setup>, sid: number): bigint[] {
  const at = m.smmu.streamTable.locate(sid);
  assert.ok("addr" in at);
  return readWords(m.memory, at.addr, 4)!;
}

Deno.test({
  name: "smmuv3 nested: a changed stage-1 PTE is stale until CMD_TLBI_NH_VA for its ASID",
  permissions: "none",
  fn() {
    const m = setup();
    const root = m.guestPage();
    m.writeCd(0, 7, root);
    const leaf = m.s1map(root, IOVA, DATA);
    const d = nested(m);
    m.smmu.attach(SID, d);
    assert.equal(ok(m.smmu.translate(SID, undefined, IOVA, "read", 4)), m.pa(DATA));
    m.s1map(root, IOVA, DATA + 0x1000n); // the guest remaps without invalidating
    assert.equal(m.readGpa(leaf) & LPAE_DESC.ADDR_MASK, DATA + 0x1000n);
    assert.equal(ok(m.smmu.translate(SID, undefined, IOVA, "read", 4)), m.pa(DATA));
    // Another ASID, or another VA, leaves the entry.
    const other = encodeSmmuCmd(SMMU_CMD.TLBI_NH_VA, { asid: 8, address: IOVA, leaf: true });
    assert.equal(m.nesting.invalidateNested(d, other), 0);
    const elsewhere = encodeSmmuCmd(SMMU_CMD.TLBI_NH_VA, { asid: 7, address: IOVA + 0x1000n });
    assert.equal(m.nesting.invalidateNested(d, elsewhere), 0);
    assert.equal(ok(m.smmu.translate(SID, undefined, IOVA, "read", 4)), m.pa(DATA));
    const tlbi = encodeSmmuCmd(SMMU_CMD.TLBI_NH_VA, { asid: 7, address: IOVA, leaf: true });
    assert.equal(m.nesting.invalidateNested(d, tlbi), 0);
    assert.equal(ok(m.smmu.translate(SID, undefined, IOVA, "read", 4)), m.pa(DATA + 0x1000n));
    // A range TLBI (TG 4 KiB, NUM 1: two pages from IOVA − 4K), NH_ASID and NH_ALL also work.
    m.s1map(root, IOVA, DATA + 0x2000n);
    const range = encodeSmmuCmd(SMMU_CMD.TLBI_NH_VA, {
      asid: 7,
      address: IOVA - 0x1000n,
      tg: 1,
      num: 1,
    });
    assert.equal(m.nesting.invalidateNested(d, range), 0);
    assert.equal(ok(m.smmu.translate(SID, undefined, IOVA, "read", 4)), m.pa(DATA + 0x2000n));
    m.s1map(root, IOVA, DATA + 0x3000n);
    const byAsid = encodeSmmuCmd(SMMU_CMD.TLBI_NH_ASID, { asid: 7 });
    assert.equal(m.nesting.invalidateNested(d, byAsid), 0);
    assert.equal(ok(m.smmu.translate(SID, undefined, IOVA, "read", 4)), m.pa(DATA + 0x3000n));
    m.s1map(root, IOVA, DATA);
    assert.equal(m.nesting.invalidateNested(d, encodeSmmuCmd(SMMU_CMD.TLBI_NH_ALL)), 0);
    assert.equal(ok(m.smmu.translate(SID, undefined, IOVA, "read", 4)), m.pa(DATA));
    // The kernel unmapping the parent flushes the combined entries (S12_VMALL): stage-2 fault.
    assert.equal(m.s2.unmap(DATA, 0x1000n), 0x1000n);
    const f = faultOf(m.smmu.translate(SID, undefined, IOVA, "read", 4));
    assert.equal(f.stage, 2);
    assert.equal(decodeSmmuEvent(f.raw).s2, true);
  },
});

Deno.test({
  name: "smmuv3 nested: stage-1 miss F_TRANSLATION and read-only write F_PERMISSION (S2 = 0)",
  permissions: "none",
  fn() {
    const m = setup();
    const root = m.guestPage();
    m.writeCd(0, 7, root);
    m.s1map(root, IOVA, DATA, false);
    m.smmu.attach(SID, nested(m));
    const miss = faultOf(m.smmu.translate(SID, undefined, IOVA + 0x1000n, "read", 4));
    assert.equal(miss.reason, SMMU_EVT.F_TRANSLATION);
    assert.equal(miss.stage, 1);
    assert.equal(miss.format, "smmuv3-evt");
    const e = decodeSmmuEvent(miss.raw);
    assert.equal(e.s2, false);
    assert.equal(e.class, SMMU_EVT_CLASS.IN);
    assert.equal(e.inputAddr, IOVA + 0x1000n);
    assert.equal(e.rnw, true);
    assert.equal(e.sid, SID);
    assert.equal(e.addr2, 0n);
    assert.equal(m.log[0], "arm-smmu-v3 9050000.smmuv3: event 0x10 received:");
    assert.equal(m.log.length, 5);
    assert.equal(ok(m.smmu.translate(SID, undefined, IOVA, "read", 4)), m.pa(DATA));
    const perm = faultOf(m.smmu.translate(SID, undefined, IOVA, "write", 4));
    assert.equal(perm.reason, SMMU_EVT.F_PERMISSION);
    assert.equal(perm.stage, 1);
    assert.equal(decodeSmmuEvent(perm.raw).s2, false);
    assert.equal(decodeSmmuEvent(perm.raw).rnw, false);
    assert.equal(m.log[5], "arm-smmu-v3 9050000.smmuv3: event 0x13 received:");
  },
});

Deno.test({
  name: "smmuv3 nested: GPAs missing in stage 2 give S2 = 1 events (CLASS IN, TT, CD), stage 2",
  permissions: "none",
  fn() {
    const m = setup();
    const root = m.guestPage();
    m.writeCd(0, 7, root);
    const outside = GUEST_RAM + GUEST_RAM_SIZE + 0x5000n; // not mapped by the kernel
    m.s1map(root, IOVA, outside); // output GPA outside stage 2
    // A table descriptor (level 2 → level 3) pointing outside stage 2.
    const iova2 = 0x7654_0000_0000n;
    const leaf2 = m.s1map(root, iova2, DATA);
    const l3 = leaf2 & ~0xfffn;
    let table = root;
    let l2At = 0n;
    for (let level = 0; level < 3; level++) {
      l2At = table + BigInt(lpaeIndex(iova2, level) * 8);
      table = m.readGpa(l2At) & LPAE_DESC.ADDR_MASK;
    }
    assert.equal(table, l3);
    m.writeGpa(l2At, outside | LPAE_DESC.TABLE_OR_PAGE | LPAE_DESC.VALID);
    m.smmu.attach(SID, nested(m));

    const out = faultOf(m.smmu.translate(SID, undefined, IOVA + 0x20n, "write", 4));
    assert.equal(out.reason, SMMU_EVT.F_TRANSLATION);
    assert.equal(out.stage, 2);
    let e = decodeSmmuEvent(out.raw);
    assert.equal(e.s2, true);
    assert.equal(e.class, SMMU_EVT_CLASS.IN);
    assert.equal(e.addr2, outside); // the IPA, bits 51:12
    assert.equal(e.inputAddr, IOVA + 0x20n);
    assert.equal(e.rnw, false);

    const walk = faultOf(m.smmu.translate(SID, undefined, iova2, "read", 4));
    assert.equal(walk.reason, SMMU_EVT.F_TRANSLATION);
    assert.equal(walk.stage, 2);
    e = decodeSmmuEvent(walk.raw);
    assert.equal(e.s2, true);
    assert.equal(e.class, SMMU_EVT_CLASS.TT);
    assert.equal(e.addr2, outside); // the descriptor's IPA (page)

    // A CD table outside stage 2: S2 = 1 with CLASS = CD.
    const m2 = setup();
    m2.smmu.attach(SID, nested(m2, guestSte({ cdTable: outside })));
    const cd = faultOf(m2.smmu.translate(SID, undefined, IOVA, "read", 4));
    assert.equal(cd.reason, SMMU_EVT.F_TRANSLATION);
    assert.equal(cd.stage, 2);
    e = decodeSmmuEvent(cd.raw);
    assert.equal(e.s2, true);
    assert.equal(e.class, SMMU_EVT_CLASS.CD);
    assert.equal(e.addr2, outside);
    // An invalid CD is C_BAD_CD, the user's (stage 1).
    const m3 = setup();
    m3.smmu.attach(SID, nested(m3));
    const bad = faultOf(m3.smmu.translate(SID, undefined, IOVA, "read", 4));
    assert.equal(bad.reason, SMMU_EVT.C_BAD_CD);
    assert.equal(bad.stage, 1);
  },
});

Deno.test({
  name: "smmuv3 nested: stage-2 read-only GPA written through stage 1 is F_PERMISSION with S2 = 1",
  permissions: "none",
  fn() {
    const m = setup();
    const root = m.guestPage();
    m.writeCd(0, 7, root);
    const roGpa = GUEST_RAM + GUEST_RAM_SIZE;
    const page = m.memory.allocate(0x1000)!;
    assert.equal(m.s2.map(roGpa, BigInt(page.base), 0x1000n, { read: true, write: false }), 0);
    m.s1map(root, IOVA, roGpa);
    const d = nested(m);
    m.smmu.attach(SID, d);
    assert.equal(ok(m.smmu.translate(SID, undefined, IOVA, "read", 4)), BigInt(page.base));
    const f = faultOf(m.smmu.translate(SID, undefined, IOVA, "write", 4));
    assert.equal(f.reason, SMMU_EVT.F_PERMISSION);
    assert.equal(f.stage, 2);
    const e = decodeSmmuEvent(f.raw);
    assert.equal(e.s2, true);
    assert.equal(e.class, SMMU_EVT_CLASS.IN);
    assert.equal(e.addr2, roGpa);
    assert.deepEqual(d.lookup(IOVA), {
      phys: BigInt(page.base),
      prot: { read: true, write: false },
    });
  },
});

Deno.test({
  name: "smmuv3 nested: SSIDs 1 and 2 use their own CDs and see different memory",
  permissions: "none",
  fn() {
    const m = setup();
    const root1 = m.guestPage();
    const root2 = m.guestPage();
    m.writeCd(1, 11, root1);
    m.writeCd(2, 12, root2);
    m.s1map(root1, IOVA, DATA);
    m.s1map(root2, IOVA, DATA + 0x4000n);
    m.smmu.attach(SID, nested(m));
    assert.equal(ok(m.smmu.translate(SID, 1, IOVA, "write", 4)), m.pa(DATA));
    assert.equal(ok(m.smmu.translate(SID, 2, IOVA, "write", 4)), m.pa(DATA + 0x4000n));
    // Cached now; still distinct.
    assert.equal(ok(m.smmu.translate(SID, 1, IOVA, "read", 4)), m.pa(DATA));
    assert.equal(ok(m.smmu.translate(SID, 2, IOVA, "read", 4)), m.pa(DATA + 0x4000n));
    // SSID 0 under S1DSS = SSID0 and an SSID beyond S1CDMax (2 bits) are C_BAD_SUBSTREAMID.
    const zero = faultOf(m.smmu.translate(SID, 0, IOVA, "read", 4));
    assert.equal(zero.reason, SMMU_EVT.C_BAD_SUBSTREAMID);
    assert.equal(zero.stage, 1);
    assert.equal(faultOf(m.smmu.translate(SID, 4, IOVA, "read", 4)).reason, 0x08);
    // Non-PASID traffic uses CD 0, which is invalid here.
    const none = faultOf(m.smmu.translate(SID, undefined, IOVA, "read", 4));
    assert.equal(none.reason, SMMU_EVT.C_BAD_CD);
    // A fault under SSID 2 carries SSV and the SSID.
    const miss = faultOf(m.smmu.translate(SID, 2, IOVA + 0x1000n, "read", 4));
    const e = decodeSmmuEvent(miss.raw);
    assert.equal(e.ssv, true);
    assert.equal(e.ssid, 2);
    assert.equal(miss.pasid, 2);
  },
});

Deno.test({
  name: "smmuv3 nested: CD cached until CMD_CFGI_CD; unknown commands refused with -EIO",
  permissions: "none",
  fn() {
    const m = setup();
    const root1 = m.guestPage();
    const root2 = m.guestPage();
    m.writeCd(1, 11, root1);
    m.s1map(root1, IOVA, DATA);
    m.s1map(root2, IOVA, DATA + 0x4000n);
    const d = nested(m);
    m.smmu.attach(SID, d);
    assert.equal(ok(m.smmu.translate(SID, 1, IOVA, "read", 4)), m.pa(DATA));
    m.writeCd(1, 13, root2); // new ASID and tables, no CFGI yet
    assert.equal(
      m.nesting.invalidateNested(d, encodeSmmuCmd(SMMU_CMD.TLBI_NH_ASID, { asid: 11 })),
      0,
    );
    // The old CD (ASID 11) is still cached: the walk uses root1 again.
    assert.equal(ok(m.smmu.translate(SID, 1, IOVA, "read", 4)), m.pa(DATA));
    const cfgi = encodeSmmuCmd(SMMU_CMD.CFGI_CD, { sid: SID, ssid: 1, leaf: true });
    assert.equal(m.nesting.invalidateNested(d, cfgi), 0);
    assert.equal(ok(m.smmu.translate(SID, 1, IOVA, "read", 4)), m.pa(DATA + 0x4000n));
    m.writeCd(1, 11, root1);
    assert.equal(
      m.nesting.invalidateNested(d, encodeSmmuCmd(SMMU_CMD.CFGI_CD_ALL, { sid: SID })),
      0,
    );
    assert.equal(ok(m.smmu.translate(SID, 1, IOVA, "read", 4)), m.pa(DATA));

    for (const op of [0x03, /* CFGI_STE */ 0x2a, /* TLBI_S2_IPA */ 0x46, /* CMD_SYNC */ 0xff]) {
      assert.equal(m.nesting.invalidateNested(d, encodeSmmuCmd(op)), -ERRNO.EIO, `op 0x${op}`);
    }
    assert.equal(m.nesting.invalidateNested(d, new Uint8Array(8)), -ERRNO.EINVAL);
    assert.equal(m.nesting.invalidateNested(d, encodeSmmuCmd(SMMU_CMD.TLBI_NSNH_ALL)), 0);
    assert.equal(m.nesting.invalidateNested(d, encodeSmmuCmd(SMMU_CMD.ATC_INV)), 0);
    assert.throws(() => m.nesting.invalidateNested(m.s2, encodeSmmuCmd(0x10)), TypeError);
  },
});

Deno.test({
  name:
    "smmuv3 nested: allocNested checks (parent, data type, reserved bits, Config); V = 0 aborts",
  permissions: "none",
  fn() {
    assert.equal(
      new SmmuV3Iommu({ memory: new PhysicalMemory(), clock: new VirtualClock() })
        .nesting,
      undefined,
    );
    const m = setup();
    const alloc = (
      data: Uint8Array,
      parent = m.s2 as Parameters<typeof m.nesting.allocNested>[0],
    ) => m.nesting.allocNested(parent, { dataType: IOMMU_HWPT_DATA_ARM_SMMUV3, data });
    assert.equal(alloc(guestSte(), m.smmu.allocDomain(1)), -ERRNO.EINVAL);
    assert.equal(
      m.nesting.allocNested(m.s2, { dataType: 1, data: guestSte() }),
      -ERRNO.EOPNOTSUPP,
    );
    assert.equal(alloc(new Uint8Array(8)), -ERRNO.EINVAL);
    assert.equal(alloc(guestSte({ extra0: 1n << 56n })), -ERRNO.EIO); // word 0 reserved
    assert.equal(alloc(guestSte({ extra1: 1n << 58n })), -ERRNO.EIO); // word 1 S2R: not the user's
    assert.equal(alloc(guestSte({ config: STE_CONFIG.NESTED })), -ERRNO.EIO);
    assert.equal(alloc(guestSte({ config: STE_CONFIG.S2_TRANS })), -ERRNO.EIO);
    // V = 0: accepted as Linux does (zeroed: abort), whatever else the words hold.
    const off = alloc(guestSte({ v: false, extra0: 1n << 56n }));
    assert.ok(off instanceof SmmuV3NestedDomain);
    m.smmu.attach(SID, off);
    const r = faultOf(m.smmu.translate(SID, undefined, IOVA, "read", 4));
    assert.equal(r.reason, 0); // terminated without an event
    assert.equal(m.smmu.faults.length, 0);
    // Bypass: stage 2 only.
    const byp = alloc(guestSte({ config: STE_CONFIG.BYPASS }));
    assert.ok(byp instanceof SmmuV3NestedDomain);
    m.smmu.attach(SID, byp);
    assert.equal(ok(m.smmu.translate(SID, undefined, DATA + 8n, "read", 4)), m.pa(DATA) + 8n);
    assert.deepEqual(byp.lookup(DATA), { phys: m.pa(DATA), prot: RW });
    // The parent cannot go while it has children; children go first.
    assert.throws(() => m.smmu.freeDomain(m.s2), /nested children/);
    assert.throws(() => m.smmu.freeDomain(byp), /while attached/);
    m.smmu.attach(SID, null);
    m.smmu.freeDomain(byp);
    m.smmu.freeDomain(off);
    m.smmu.freeDomain(m.s2);
    assert.equal(alloc(guestSte()), -ERRNO.EINVAL); // freed parent
  },
});

Deno.test({
  name: "smmuv3 nested: a page-request handler receives stage-1 faults; stage-2 faults still log",
  permissions: "none",
  fn() {
    const m = setup();
    const root = m.guestPage();
    m.writeCd(0, 7, root);
    const d = nested(m);
    m.smmu.attach(SID, d);
    const requests: PageRequest[] = [];
    m.nesting.setPageRequestHandler(d, (r) => requests.push(r));
    const f = faultOf(m.smmu.translate(SID, undefined, IOVA, "write", 4));
    assert.deepEqual(requests, [{
      requester: SID,
      pasid: undefined,
      address: IOVA,
      access: "write",
    }]);
    assert.equal(f.format, "smmuv3-page-request");
    assert.equal(f.stage, 1);
    assert.equal(decodeSmmuEvent(f.raw).stall, true);
    assert.deepEqual(m.log, []); // not in the event queue
    // The handler maps it; the retried DMA works.
    m.s1map(root, IOVA, DATA);
    assert.equal(ok(m.smmu.translate(SID, undefined, IOVA, "write", 4)), m.pa(DATA));
    // Stage-2 faults are the kernel's: recorded as events, not page requests.
    m.s1map(root, IOVA + 0x1000n, GUEST_RAM + GUEST_RAM_SIZE);
    const s2 = faultOf(m.smmu.translate(SID, undefined, IOVA + 0x1000n, "read", 4));
    assert.equal(s2.format, "smmuv3-evt");
    assert.equal(requests.length, 1);
    assert.equal(m.log[0], "arm-smmu-v3 9050000.smmuv3: event 0x10 received:");
    m.nesting.setPageRequestHandler(d, undefined);
    assert.equal(
      faultOf(m.smmu.translate(SID, undefined, IOVA + 0x2000n, "read", 4)).format,
      "smmuv3-evt",
    );
  },
});

Deno.test({
  name: "smmuv3 nested: 2-level CD table through stage 2; memory missing behind stage 2 aborts",
  permissions: "none",
  fn() {
    const m = setup({ ssidBits: 12 });
    // S1Fmt = 2-level: L1 descriptors at CD_TABLE, each over a leaf of 1024 CDs (64 KiB); only
    // the first page of the leaf is used here (SSIDs 1024..1087).
    const leaf = m.guestPage();
    m.writeGpa(CD_TABLE + 8n, leaf | 1n); // L1 descriptor 1: SSIDs 1024..2047
    const root = m.guestPage();
    const ssid = 1024 + 5;
    const cd = encodeS1Cd({ asid: 9, ttb0: root, inputBits: 48, ips: 5, mair: LPAE_LINUX_MAIR });
    writeWords(m.memory, m.pa(leaf + 5n * 64n), cd);
    m.s1map(root, IOVA, DATA);
    const data = guestSte({ s1cdmax: 11 });
    data[0] |= 1 << 4; // S1Fmt = 1 (2-level, 4 KiB L2)
    m.smmu.attach(SID, nested(m, data));
    assert.equal(ok(m.smmu.translate(SID, ssid, IOVA, "read", 4)), m.pa(DATA));
    // An invalid L1 descriptor (SSIDs 0..1023) is C_BAD_SUBSTREAMID.
    assert.equal(faultOf(m.smmu.translate(SID, 5, IOVA, "read", 4)).reason, 0x08);

    // A GPA the kernel maps to a physical address with no memory: F_CD_FETCH / F_WALK_EABT.
    const hole = 0x2000_0000n; // below simulated RAM: unbacked
    const gpa = GUEST_RAM + GUEST_RAM_SIZE;
    const m2 = setup();
    assert.equal(m2.s2.map(gpa, hole, 0x1000n, RW), 0);
    m2.smmu.attach(SID, nested(m2, guestSte({ cdTable: gpa })));
    const fetch = faultOf(m2.smmu.translate(SID, undefined, IOVA, "read", 4));
    assert.equal(fetch.reason, SMMU_EVT.F_CD_FETCH);
    assert.equal(fetch.stage, 2);
    assert.equal(decodeSmmuEvent(fetch.raw).addr2, hole);
    const m3 = setup();
    assert.equal(m3.s2.map(gpa, hole, 0x1000n, RW), 0);
    m3.writeCd(0, 7, gpa); // stage-1 root in the unbacked page
    m3.smmu.attach(SID, nested(m3));
    const eabt = faultOf(m3.smmu.translate(SID, undefined, IOVA, "read", 4));
    assert.equal(eabt.reason, SMMU_EVT.F_WALK_EABT);
    assert.equal(eabt.stage, 2);
    const e = decodeSmmuEvent(eabt.raw);
    assert.equal(e.class, SMMU_EVT_CLASS.TT);
    assert.equal(e.addr2, hole + BigInt(lpaeIndex(IOVA, 0) * 8));
  },
});
