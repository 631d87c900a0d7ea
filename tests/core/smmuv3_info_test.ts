/**
 * core's decoding of the SMMUv3 ID registers IOMMU_GET_HW_INFO returns from Linux 6.13 on, read
 * through the iommufd client from a simulated SMMUv3; each decoded field is compared with the
 * model's registers read through the simulator's own field table (sim/iommu/smmuv3/smmuv3_regs.ts), so
 * the two independent readings of the specification must agree.
 */
import assert from "node:assert/strict";
import { openPciDevice } from "../../core/pci_device.ts";
import { IommufdBackend } from "../../core/iommufd_backend.ts";
import { IOMMU_HW_INFO_TYPE_ARM_SMMUV3 } from "../../ffi/uapi/post_6_12.ts";
import { createMachine } from "../../sim/machine.ts";
import type { SmmuV3Iommu } from "../../sim/iommu/smmuv3/smmuv3.ts";
import { getField } from "../../sim/iommu/reg_fields.ts";
import {
  SMMU_IDR0,
  SMMU_IDR1,
  SMMU_IDR3,
  SMMU_IDR5,
  SMMU_OAS_BITS,
} from "../../sim/iommu/smmuv3/smmuv3_regs.ts";

const BDF = "0000:00:02.0";
const SSID_BITS = 8;

function hwInfo(kernelVersion: string, smmuNesting: boolean) {
  const machine = createMachine({
    iommu: "smmuv3",
    kernelVersion,
    strict: true,
    ...(smmuNesting ? { smmuNesting: { ssidBits: SSID_BITS } } : {}),
  });
  const dev = openPciDevice(BDF, { kernel: machine.kernel, iommu: "iommufd" });
  const backend = dev.dma.backend;
  assert.ok(backend instanceof IommufdBackend);
  const info = backend.iommufd.getHwInfo(backend.devices()[0].devId);
  dev.close();
  return { info, smmu: machine.iommu as SmmuV3Iommu };
}

Deno.test("smmuv3 hw_info: 6.13 reports IDR0..5, decoded like the model's registers", () => {
  const { info, smmu } = hwInfo("6.13", true);
  assert.equal(info.type, IOMMU_HW_INFO_TYPE_ARM_SMMUV3);
  const r = info.smmuv3;
  assert.ok(r, "decoded");
  const { idr0, idr1, idr3, idr5 } = smmu.idr;
  const b = (reg: number, f: Parameters<typeof getField>[1]) => getField(BigInt(reg), f);
  assert.deepEqual(r.idr.filter((_, i) => [0, 1, 3, 5].includes(i)), [idr0, idr1, idr3, idr5]);
  assert.equal(r.stage1, b(idr0, SMMU_IDR0.S1P) === 1);
  assert.equal(r.stage2, b(idr0, SMMU_IDR0.S2P) === 1);
  assert.ok(r.stage1 && r.stage2, "a nesting-capable SMMU has both stages");
  assert.equal(r.ssidBits, SSID_BITS);
  assert.equal(r.ssidBits, b(idr1, SMMU_IDR1.SSIDSIZE));
  assert.equal(r.sidBits, b(idr1, SMMU_IDR1.SIDSIZE));
  assert.equal(r.fwb, true, "FWB: Linux 6.13 refuses a vIOMMU without it");
  assert.equal(r.fwb, b(idr3, SMMU_IDR3.FWB) === 1);
  assert.equal(r.oasBits, SMMU_OAS_BITS[b(idr5, SMMU_IDR5.OAS)]);
  assert.ok(r.tableFormats.includes("aarch64"));
  assert.equal(r.granules.includes(0x1000), b(idr5, SMMU_IDR5.GRAN4K) === 1);
  assert.equal(r.granules.includes(0x10000), b(idr5, SMMU_IDR5.GRAN64K) === 1);
});

Deno.test("smmuv3 hw_info: 6.12 reports type NONE and nothing to decode", () => {
  const { info } = hwInfo("6.12", false);
  assert.equal(info.type, 0);
  assert.equal(info.data.length, 0);
  assert.equal(info.smmuv3, undefined);
});
