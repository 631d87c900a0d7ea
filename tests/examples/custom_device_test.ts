/**
 * examples/custom_device.ts keeps working: its CRC-32 engine, driver and self-test pass on a
 * VT-d and a sPAPR machine (the example itself runs every IOMMU model).
 */
import assert from "node:assert/strict";
import { testOn } from "../../examples/custom_device.ts";

Deno.test("the custom device example's own test passes (VT-d, sPAPR)", async () => {
  const vtd = await testOn("vtd", 1);
  assert.equal(vtd.length, 4, "two paths, two lines each");
  assert.match(vtd[0], /^vtd\/type1: 6 checksums match; injected DMA fault -> .*could not read/);
  assert.match(vtd[1], /DMAR: \[DMA Read NO_PASID\].*fault reason 0x06/);
  const spapr = await testOn("spapr", 1);
  assert.match(spapr[0], /^spapr\/spapr: 6 checksums match; .*all-ones/);
  assert.match(spapr[1], /PHB#0-PE#5: DMA read at 0x[0-9a-f]+: invalid TCE/);
});
