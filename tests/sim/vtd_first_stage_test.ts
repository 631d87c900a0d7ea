/**
 * The VT-d first-stage walk of nested domains at the model level: 5-level paging (addr_width 57,
 * CAP.FL5LP), a 2 MiB first-stage page, and the user-privilege and canonical-address rules, with
 * hand-written x86 paging entries in guest memory behind a second-stage domain.
 */
import assert from "node:assert/strict";
import { encode } from "../../ffi/uapi/layout.ts";
import { IOMMU_HWPT_DATA_VTD_S1, iommu_hwpt_vtd_s1 } from "../../ffi/uapi/iommufd.ts";
import { VirtualClock } from "../../sim/clock.ts";
import { VtdIommu } from "../../sim/iommu/vtd/vtd.ts";
import { FS_PTE, VTD_SM_FR } from "../../sim/iommu/vtd/vtd_first_stage.ts";
import { VTD_CAP } from "../../sim/iommu/vtd/vtd_regs.ts";
import { getField } from "../../sim/iommu/reg_fields.ts";
import { PhysicalMemory } from "../../sim/memory.ts";

const RID = 0x10;
/** Guest-physical window backed by one chunk through stage 2. */
const GPA_BASE = 0x100_0000n;
const GUEST_BYTES = 4 * 1024 * 1024;
const PAGE = 4096n;

function setup(addrWidth: 48 | 57) {
  const memory = new PhysicalMemory();
  const iommu = new VtdIommu({ memory, clock: new VirtualClock(), scalableMode: {} });
  const guest = memory.allocate(GUEST_BYTES, 2 * 1024 * 1024)!;
  const s2 = iommu.allocDomain();
  assert.equal(
    s2.map(GPA_BASE, BigInt(guest.base), BigInt(GUEST_BYTES), { read: true, write: true }),
    0,
  );
  let next = GPA_BASE;
  const table = (): bigint => {
    const gpa = next;
    next += PAGE;
    return gpa;
  };
  const write = (gpa: bigint, value: bigint): void => {
    assert.ok(memory.writeU64(BigInt(guest.base) + (gpa - GPA_BASE), value));
  };
  const read = (gpa: bigint): bigint => memory.readU64(BigInt(guest.base) + (gpa - GPA_BASE))!;
  const root = table();
  const s1 = iommu.nesting!.allocNested(s2, {
    dataType: IOMMU_HWPT_DATA_VTD_S1,
    data: encode(iommu_hwpt_vtd_s1, { pgtbl_addr: root, addr_width: addrWidth }),
  });
  assert.ok(typeof s1 !== "number");
  iommu.attach(RID, s1);
  const dir = FS_PTE.P | FS_PTE.RW | FS_PTE.US;
  /** Map `va` with leaves at `leafLevel` (1: 4 KiB, 2: 2 MiB) to `gpa`. */
  const map = (va: bigint, gpa: bigint, levels: number, leafLevel = 1, bits = dir): bigint => {
    let t = root;
    for (let level = levels; level > leafLevel; level--) {
      const at = t + ((va >> (12n + 9n * BigInt(level - 1))) & 511n) * 8n;
      let e = read(at);
      if ((e & FS_PTE.P) === 0n) {
        e = table() | dir;
        write(at, e);
      }
      t = e & ~0xfffn & ((1n << 52n) - 1n);
    }
    const at = t + ((va >> (12n + 9n * BigInt(leafLevel - 1))) & 511n) * 8n;
    write(at, gpa | bits | (leafLevel > 1 ? FS_PTE.PS : 0n));
    return at;
  };
  const gpaToPhys = (gpa: bigint): bigint => BigInt(guest.base) + (gpa - GPA_BASE);
  return { iommu, map, read, gpaToPhys };
}

Deno.test("vtd first stage: scalable mode offers 5-level first-stage paging (CAP.FL5LP)", () => {
  const { iommu } = setup(48);
  assert.equal(getField(iommu.cap, VTD_CAP.FL5LP), 1);
});

Deno.test("vtd first stage: a 5-level walk (addr_width 57) above 2^48", () => {
  const t = setup(57);
  const va = 0x12_3456_7890_0000n; // needs the PML5 index
  const data = GPA_BASE + 0x20_0000n;
  t.map(va, data, 5);
  const hit = t.iommu.translate(RID, undefined, va + 0x44n, "write", 4);
  assert.ok(hit.ok);
  assert.equal(hit.phys, t.gpaToPhys(data) + 0x44n);
});

Deno.test("vtd first stage: a 2 MiB page (PS in the PDE), U/S clear, non-canonical address", () => {
  const t = setup(48);
  const va = 0x4000_0000n;
  t.map(va, GPA_BASE + 0x20_0000n, 4, 2);
  const hit = t.iommu.translate(RID, undefined, va + 0x1f_f000n, "read", 4);
  assert.ok(hit.ok);
  assert.equal(hit.phys, t.gpaToPhys(GPA_BASE + 0x3f_f000n));
  const supervisor = 0x8000_0000n;
  t.map(supervisor, GPA_BASE + 0x10_0000n, 4, 1, FS_PTE.P | FS_PTE.RW); // no U/S
  const us = t.iommu.translate(RID, undefined, supervisor, "read", 4);
  assert.ok(!us.ok);
  assert.equal(us.fault.reason, VTD_SM_FR.FL_US_CLEAR);
  assert.equal(us.fault.stage, 1);
  const bad = t.iommu.translate(RID, undefined, 1n << 50n, "read", 4);
  assert.ok(!bad.ok);
  assert.equal(bad.fault.reason, VTD_SM_FR.NON_CANONICAL);
});
