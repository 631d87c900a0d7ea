/**
 * The shared radix walker and table (sim/iommu/pgtable.ts) with the vendor formats plugged in:
 * the same map/split/unmap sequence read back through VT-d's second-stage format and VMSAv8-64's
 * stage-2 format, the walker's own stops (not present, reserved encoding, no memory behind a
 * table), and a hook fault carrying the height and address where the walk stopped.
 */
import assert from "node:assert/strict";
import { PhysicalMemory } from "../../sim/memory.ts";
import { RadixTable, walkRadix } from "../../sim/iommu/pgtable.ts";
import { VTD_SL_FORMAT } from "../../sim/iommu/vtd/vtd_pgtable.ts";
import { LPAE_DESC, LPAE_FORMAT, LPAE_S2_FORMAT } from "../../sim/iommu/smmuv3/smmuv3_pgtable.ts";

const MIB2 = 0x20_0000n;
const RW = { read: true, write: true };

for (
  const [name, format] of [["VT-d", VTD_SL_FORMAT], ["VMSAv8-64 stage 2", LPAE_S2_FORMAT]] as const
) {
  Deno.test(`pgtable ${name}: a 2 MiB leaf, split by a partial unmap, walks as the hardware sees it`, () => {
    const memory = new PhysicalMemory();
    const table = new RadixTable(memory, format, 4, 3);
    assert.equal(table.map(MIB2, 0x4000_0000n, MIB2, RW), 0);
    const big = walkRadix(memory, format, BigInt(table.root), 4, MIB2 + 0x1234n);
    assert.ok(big.ok);
    assert.equal(big.height, 2);
    assert.equal(big.out, 0x4000_1234n);
    assert.equal(table.tablePages, 3); // root, level 3 table, level 2 table holding the leaf
    assert.equal(table.unmap(MIB2 + 0x1000n, 0x1000n), 0x1000n);
    const hole = walkRadix(memory, format, BigInt(table.root), 4, MIB2 + 0x1000n);
    assert.deepEqual(hole.ok ? "mapped" : hole.fault, "not-present");
    const after = walkRadix(memory, format, BigInt(table.root), 4, MIB2 + 0x2345n);
    assert.ok(after.ok);
    assert.equal(after.height, 1);
    assert.equal(after.out, 0x4000_2345n);
    assert.equal(table.unmap(MIB2, MIB2), MIB2 - 0x1000n);
    assert.equal(table.tablePages, 1, "empty tables are freed");
    table.destroy();
    assert.equal(memory.usedBytes, 0);
  });
}

Deno.test("pgtable: reserved encodings, missing memory and hook faults stop the walk where they occur", () => {
  const memory = new PhysicalMemory();
  const root = memory.allocate(4096, 4096)!;
  // A level-0 block (height 4) is reserved with the 4 KiB granule.
  memory.writeU64(root.base, LPAE_DESC.VALID | LPAE_DESC.AF);
  const reserved = walkRadix(memory, LPAE_FORMAT, BigInt(root.base), 4, 0n);
  assert.deepEqual(reserved, { ok: false, fault: "reserved", height: 4, phys: BigInt(root.base) });
  // A table entry pointing where no memory is.
  const nowhere = 0x7_0000_0000n;
  memory.writeU64(root.base, nowhere | LPAE_DESC.TABLE_OR_PAGE | LPAE_DESC.VALID);
  const missing = walkRadix(memory, LPAE_FORMAT, BigInt(root.base), 4, 0n);
  assert.deepEqual(missing, { ok: false, fault: "no-memory", height: 3, phys: nowhere });
  // A hook's fault on the table entry itself.
  const hooked = walkRadix<string>(memory, LPAE_FORMAT, BigInt(root.base), 4, 0n, {
    check: (_entry, height, leaf, next) =>
      !leaf && next >= 1n << 32n ? `address-size at ${height}` : undefined,
  });
  assert.deepEqual(hooked.ok ? "ok" : hooked.fault, "address-size at 4");
  memory.release(root);
});
