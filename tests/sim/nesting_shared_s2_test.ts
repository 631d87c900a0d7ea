/**
 * The nesting rows of seeds 001 and 004 (issue 15, item 6), on VT-d as on SMMUv3, through iommufd:
 * two devices share one stage-2 parent (a NEST_PARENT HWPT over one IOAS: "containers share stage
 * 2"), each with its own user-owned stage 1 (VT-d: its own first-stage tables; SMMUv3: its own CD
 * table and ASID under one vIOMMU, i.e. one VMID). A stage-1 invalidation — IOMMU_HWPT_INVALIDATE
 * with VT-d S1 data on one nested HWPT, or a CMD_TLBI_NH_VA for one ASID through the vIOMMU — reaches
 * only that device's stage 1 (the other keeps its stale entry); a stage-2 unmap (the IOAS) reaches
 * both.
 */
import assert from "node:assert/strict";
import { attachIommufdPt } from "../../core/cdev.ts";
import type { DmaBuffer } from "../../core/dma_space.ts";
import { IommufdBackend } from "../../core/iommufd_backend.ts";
import { openPciDevice, type PciDevice } from "../../core/pci_device.ts";
import { smmuCommand, SmmuV3Stage1Tables } from "../../core/smmuv3_stage1.ts";
import { VtdFirstStageTables } from "../../core/vtd_stage1.ts";
import { EduDriver } from "../../drivers/edu/edu.ts";
import {
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_DATA_VTD_S1,
  IOMMU_HWPT_INVALIDATE_DATA_VTD_S1,
} from "../../ffi/uapi/iommufd.ts";
import {
  IOMMU_HWPT_DATA_ARM_SMMUV3,
  IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3,
  IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
} from "../../ffi/uapi/post_6_12.ts";
import { createMachine, type SimMachine } from "../../sim/machine.ts";

const BDFS = ["0000:00:02.0", "0000:00:03.0"] as const;
/** The stage-1 address both devices use (inside edu's 28-bit DMA mask). */
const VA = 0x100_0000n;
const PAGE = 4096n;
const PAYLOADS = ["AAAA", "BBBB"];

/** One IOMMU's way to build a device's stage 1 and to invalidate it. */
interface Stage1 {
  /** Point VA at `ipa` (an IOVA of the shared IOAS) in this device's stage 1. */
  map(ipa: bigint): void;
  /** Invalidate VA in this device's stage 1 only; returns the entries handled. */
  invalidate(): number;
  /** The nested HWPT of the device. */
  readonly hwpt: number;
  /** Objects to destroy after the HWPT, in order. */
  readonly extra: number[];
}

interface Rig {
  machine: SimMachine;
  devs: PciDevice[];
  edus: EduDriver[];
  x: DmaBuffer;
  y: DmaBuffer;
  stage1: Stage1[];
  close(): void;
}

async function rig(kind: "vtd" | "smmuv3"): Promise<Rig> {
  const machine = kind === "vtd"
    ? createMachine({
      iommu: "vtd",
      vtdScalableMode: true,
      devices: BDFS.map((bdf) => ({ model: "edu", bdf })),
      strict: true,
    })
    : createMachine({
      iommu: "smmuv3",
      kernelVersion: "6.15",
      smmuNesting: true,
      devices: BDFS.map((bdf) => ({ model: "edu", bdf })),
      strict: true,
    });
  const k = machine.kernel;
  const first = openPciDevice(BDFS[0], { kernel: k, iommu: "iommufd" });
  const devs = [first, openPciDevice(BDFS[1], { kernel: k, iommu: "iommufd", dma: first.dma })];
  const edus = devs.map((d) => EduDriver.open(d, { interrupts: "poll" }));
  // Each edu's buffer holds its payload, loaded while it still translates through the IOAS.
  for (const [i, edu] of edus.entries()) {
    const src = first.dma.allocate(4096);
    src.bytes.set(new TextEncoder().encode(PAYLOADS[i]));
    await edu.dmaToDevice(src, 0, 0, 4);
    first.dma.free(src);
  }
  const backend = first.dma.backend;
  assert.ok(backend instanceof IommufdBackend);
  const fd = backend.iommufd;
  const ids = backend.devices();
  const parent = fd.hwptAlloc({
    devId: ids[0].devId,
    ptId: backend.ioasId,
    flags: IOMMU_HWPT_ALLOC_NEST_PARENT,
  });
  const x = first.dma.allocate(4096);
  const y = first.dma.allocate(4096);
  const shared: number[] = [];
  let stage1: Stage1[];
  if (kind === "vtd") {
    stage1 = ids.map((id) => {
      const t = new VtdFirstStageTables(first.dma.allocate(16 * 4096));
      const hwpt = fd.hwptAlloc({
        devId: id.devId,
        ptId: parent,
        dataType: IOMMU_HWPT_DATA_VTD_S1,
        data: t.hwptData(),
      });
      return {
        hwpt,
        extra: [],
        map: (ipa) => t.map(VA, ipa, PAGE, { write: true }),
        invalidate: () =>
          fd.hwptInvalidate(hwpt, IOMMU_HWPT_INVALIDATE_DATA_VTD_S1, [t.invalidation(VA, PAGE)]),
      };
    });
  } else {
    const viommu = fd.viommuAlloc({
      devId: ids[0].devId,
      hwptId: parent,
      type: IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
    });
    shared.push(viommu);
    stage1 = ids.map((id, i) => {
      const asid = i + 1;
      const t = new SmmuV3Stage1Tables(first.dma.allocate(16 * 4096));
      t.setContext(0, { asid });
      const vdev = fd.vdeviceAlloc({
        viommuId: viommu,
        devId: id.devId,
        virtId: 0x42n + BigInt(i),
      });
      const hwpt = fd.hwptAlloc({
        devId: id.devId,
        ptId: viommu,
        dataType: IOMMU_HWPT_DATA_ARM_SMMUV3,
        data: t.vste(),
      });
      return {
        hwpt,
        extra: [vdev],
        map: (ipa) => t.map(0, VA, ipa, PAGE, { write: true }),
        invalidate: () =>
          fd.hwptInvalidate(viommu, IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3, [
            smmuCommand("TLBI_NH_VA", { asid, address: VA, leaf: true }),
          ]),
      };
    });
  }
  ids.forEach((id, i) => attachIommufdPt(k, id.fd, stage1[i].hwpt, id.bdf));
  return {
    machine,
    devs,
    edus,
    x,
    y,
    stage1,
    close() {
      ids.forEach((id) => attachIommufdPt(k, id.fd, backend.ioasId, id.bdf));
      for (const s of stage1) for (const o of [s.hwpt, ...s.extra]) fd.destroy(o);
      for (const o of [...shared, parent]) fd.destroy(o);
      for (const e of edus) e.close();
      devs[1].close();
      devs[0].close();
    },
  };
}

/** Each device writes its payload at VA + 16·i; what lands where, as text. */
async function dma(r: Rig): Promise<{ x: string[]; y: string[] }> {
  r.x.bytes.fill(0, 0, 64);
  r.y.bytes.fill(0, 0, 64);
  for (const [i, edu] of r.edus.entries()) await edu.dmaFromDeviceToIova(VA + BigInt(16 * i), 4);
  const read = (b: DmaBuffer) =>
    [0, 16].map((o) => new TextDecoder().decode(b.bytes.subarray(o, o + 4)).replace(/\0/g, "."));
  return { x: read(r.x), y: read(r.y) };
}

for (const kind of ["vtd", "smmuv3"] as const) {
  Deno.test(`nesting on ${kind}: two stage 1s on one stage 2; an invalidation reaches only its own, a stage-2 unmap both`, async () => {
    const r = await rig(kind);
    for (const s of r.stage1) s.map(r.x.iova);
    assert.deepEqual(await dma(r), { x: ["AAAA", "BBBB"], y: ["....", "...."] });
    for (const s of r.stage1) s.map(r.y.iova); // repointed, not invalidated: both stale
    assert.deepEqual(await dma(r), { x: ["AAAA", "BBBB"], y: ["....", "...."] });
    assert.equal(r.stage1[0].invalidate(), 1, "device 0's stage 1 only");
    assert.deepEqual(
      await dma(r),
      { x: ["....", "BBBB"], y: ["AAAA", "...."] },
      "device 0 sees its new PTE; device 1 still uses its stale entry",
    );
    // A stage-2 unmap (the IOAS loses x) reaches both: device 1's stale entry goes too.
    const faults = r.machine.faults().length;
    r.devs[0].dma.free(r.x);
    r.y.bytes.fill(0, 0, 64);
    for (const [i, edu] of r.edus.entries()) await edu.dmaFromDeviceToIova(VA + BigInt(16 * i), 4);
    const text = (o: number) => new TextDecoder().decode(r.y.bytes.subarray(o, o + 4));
    assert.deepEqual([text(0), text(16)], ["AAAA", "BBBB"], "both walk their stage 1 again");
    assert.equal(r.machine.faults().length, faults, "nothing reached the unmapped IPA");
    r.close();
  });
}
