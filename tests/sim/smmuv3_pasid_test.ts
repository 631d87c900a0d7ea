/**
 * PASID attach through the VFIO cdev (Linux 6.15's VFIO_DEVICE_ATTACH_PASID) on the simulated
 * SMMUv3 with SubstreamIDs (IDR1.SSIDSIZE = 16, QEMU's `pasid=on`), driving the PASID DMA engine:
 * each attached PASID gets its stage-1 domain's CD at index SSID of the stream's CD table; two
 * PASIDs on different IOASes see different memory at the same IOVA while the RID keeps its own
 * space; a detached SSID faults with C_BAD_CD, one beyond S1CDMax with C_BAD_SUBSTREAMID; the
 * width, PASID-flag and stage rules; unbind detaches every PASID; memory returns to its baseline.
 */
import assert from "node:assert/strict";
import { attachIommufdPasid, attachIommufdPt, detachIommufdPasid } from "../../core/cdev.ts";
import { openPasidSession, PASID_SPACE_IOVA } from "../helpers/pasid_session.ts";
import { PasidDmaDriver } from "../../drivers/pasid_dma/pasid_dma.ts";
import { IOMMU_HWPT_ALLOC_NEST_PARENT } from "../../ffi/uapi/iommufd.ts";
import { IOMMU_HWPT_ALLOC_PASID } from "../../ffi/uapi/post_6_12.ts";
import { createMachine } from "../../sim/machine.ts";
import { PasidDmaDevice } from "../../sim/pci/pasid_dma.ts";
import { SmmuV3Iommu } from "../../sim/iommu/smmuv3/smmuv3.ts";
import { decodeSmmuEvent, SMMU_EVT } from "../../sim/iommu/smmuv3/smmuv3_event.ts";
import {
  decodeCd,
  decodeSte,
  readWords,
  STE_CONFIG,
  STE_S1DSS,
} from "../../sim/iommu/smmuv3/smmuv3_ste.ts";

const BDF = "0000:00:04.0";
/** StreamID of 00:04.0 (its requester id). */
const SID = 0x20;
const IOVA = PASID_SPACE_IOVA;
const SSID_BITS = 16;

function rig(o: { nesting?: boolean } = {}) {
  const machine = createMachine({
    iommu: "smmuv3",
    kernelVersion: "6.15.0",
    smmuSsidBits: SSID_BITS,
    ...(o.nesting ? { smmuNesting: { ssidBits: SSID_BITS } } : {}),
    devices: [{ model: "pasid-dma", bdf: BDF }],
    strict: true,
  });
  const baseline = machine.memory.usedBytes;
  const kernel = machine.kernel;
  const smmu = machine.iommu as SmmuV3Iommu;
  assert.ok(smmu instanceof SmmuV3Iommu);
  const session = openPasidSession(kernel, BDF);
  /** The STE the SMMU reads for the device. */
  const ste = () => {
    const loc = smmu.streamTable.locate(SID);
    assert.ok("addr" in loc);
    return decodeSte(readWords(machine.memory, loc.addr, 4)!);
  };
  /** Unmap the test's buffers; then memory must be back at the machine's baseline. */
  const release = () => {
    for (const m of session.buffers) assert.equal(kernel.munmap(m), 0);
    assert.equal(machine.memory.usedBytes, baseline, "no CD table, page table or buffer leaked");
  };
  return { machine, kernel, smmu, ...session, ste, release };
}

Deno.test("smmuv3 pasid: two PASIDs of one device see different memory at the same IOVA", async () => {
  const r = rig();
  const ridHwpt = r.pasidReadyRid();
  const pdma = PasidDmaDriver.open(r.dev);
  const x = r.mem();
  const y = r.mem();
  const sx = r.space(x);
  const sy = r.space(y);
  assert.equal(attachIommufdPasid(r.kernel, r.device.fd, 1, sx.hwpt, BDF), sx.hwpt);
  assert.equal(attachIommufdPasid(r.kernel, r.device.fd, 2, sy.hwpt, BDF), sy.hwpt);
  // The RID is stage 1 on SSID 0 (S1DSS = SSID0); the PASIDs' CDs name their own ASIDs.
  const ste = r.ste();
  assert.equal(ste.config, STE_CONFIG.S1_TRANS);
  assert.equal(ste.s1dss, STE_S1DSS.SSID0);
  assert.equal(ste.s1cdmax, SSID_BITS);
  const a1 = r.smmu.attachedPasid(SID, 1)!;
  const a2 = r.smmu.attachedPasid(SID, 2)!;
  const rid = r.smmu.attached(SID);
  assert.ok(a1 && a2 && rid && a1 !== a2 && a1 !== rid);
  const table = r.smmu.cdTable(SID)!;
  assert.equal(table.base, ste.s1ContextPtr);

  assert.equal((await pdma.fill(IOVA, 4096, 0x11, 1)).status, "ok");
  assert.equal((await pdma.fill(IOVA, 4096, 0x22, 2)).status, "ok");
  assert.ok(x.bytes.subarray(0, 4096).every((b) => b === 0x11), "PASID 1 wrote its own memory");
  assert.ok(y.bytes.subarray(0, 4096).every((b) => b === 0x22), "PASID 2 wrote its own memory");
  assert.equal((await pdma.memcpy(IOVA, IOVA + 4096n, 4096, 2)).status, "ok");
  assert.ok(y.bytes.subarray(4096).every((b) => b === 0x22));
  assert.ok(x.bytes.subarray(4096).every((b) => b === 0));
  // The RID (no SubstreamID) translates through CD 0: IOVA 0x400000 is not in its IOAS.
  const onRid = await pdma.fill(IOVA, 16, 0x33);
  assert.equal(onRid.status, "fault");
  let f = r.machine.faults().at(-1)!;
  assert.equal(f.pasid, undefined);
  assert.equal(f.reason, SMMU_EVT.F_TRANSLATION);

  // Detach: the CD goes invalid, so the next DMA on SSID 1 is C_BAD_CD with SSV = 1, SSID = 1.
  detachIommufdPasid(r.kernel, r.device.fd, 1, BDF);
  assert.equal(r.smmu.attachedPasid(SID, 1), undefined);
  const gone = await pdma.fill(IOVA, 16, 0x44, 1);
  assert.equal(gone.status, "fault");
  f = r.machine.faults().at(-1)!;
  assert.equal(f.reason, SMMU_EVT.C_BAD_CD);
  const e = decodeSmmuEvent(f.raw);
  assert.equal(e.ssv, true);
  assert.equal(e.ssid, 1);
  assert.equal(e.sid, SID);
  assert.match(
    f.message,
    /event 0x0a received: 0x000000200000180a /,
    "Linux logs StreamID, SSID, SSV",
  );
  assert.ok(x.bytes.subarray(0, 16).every((b) => b === 0x11), "nothing written after detach");
  // An SSID never attached, in a CD leaf that exists: C_BAD_CD too; beyond S1CDMax (the device
  // issues 20-bit PASIDs, the SMMU has 16 SSID bits): C_BAD_SUBSTREAMID.
  assert.equal((await pdma.fill(IOVA, 16, 0x55, 7)).status, "fault");
  assert.equal(r.machine.faults().at(-1)!.reason, SMMU_EVT.C_BAD_CD);
  assert.equal((await pdma.fill(IOVA, 16, 0x55, 1 << SSID_BITS)).status, "fault");
  assert.equal(r.machine.faults().at(-1)!.reason, SMMU_EVT.C_BAD_SUBSTREAMID);
  // PASID 2 is untouched by PASID 1's detach.
  assert.equal((await pdma.fill(IOVA, 16, 0x66, 2)).status, "ok");
  assert.equal(y.bytes[0], 0x66);

  detachIommufdPasid(r.kernel, r.device.fd, 2, BDF);
  r.dropPasidSetup(ridHwpt, [sx, sy]);
  pdma.close();
  r.dev.close();
  r.release();
});

Deno.test("smmuv3 pasid: CD at index SSID, replace, and a blocked RID's CD-table STE", () => {
  const r = rig();
  const s = r.space(r.mem());
  const t = r.space(r.mem());
  const ridHwpt = r.pasidReadyRid(r.fd.ioasAlloc());
  assert.equal(attachIommufdPasid(r.kernel, r.device.fd, 5, s.hwpt, BDF), s.hwpt);
  const d = r.smmu.attachedPasid(SID, 5)!;
  const ste = r.ste();
  // The CD the SMMU finds at SSID 5 (a 2-level table: 16 SSID bits) names the domain's ASID/TTB0.
  const leaf = r.machine.memory.readU64(ste.s1ContextPtr)!;
  const cdAddr = (leaf & 0xf_ffff_ffff_f000n) + 5n * 64n;
  const cd = decodeCd(readWords(r.machine.memory, cdAddr, 2)!);
  assert.equal(cd.valid, true);
  assert.equal(cd.asid, d.asid);
  assert.equal(cd.ttb0, BigInt(d.table.root));
  // Attaching an attached PASID replaces its domain.
  assert.equal(attachIommufdPasid(r.kernel, r.device.fd, 5, t.hwpt, BDF), t.hwpt);
  assert.notEqual(r.smmu.attachedPasid(SID, 5), d);
  assert.equal(
    decodeCd(readWords(r.machine.memory, cdAddr, 2)!).asid,
    r.smmu.attachedPasid(SID, 5)!.asid,
  );
  // The RID blocked (the model's attach(null), as iommufd does on detach) with a PASID in use:
  // the STE stays a CD-table one, S1DSS = terminate, CD 0 invalid; the PASID keeps working.
  r.smmu.attach(SID, null);
  const blocked = r.ste();
  assert.equal(blocked.valid, true);
  assert.equal(blocked.config, STE_CONFIG.S1_TRANS);
  assert.equal(blocked.s1dss, STE_S1DSS.TERMINATE);
  assert.equal(r.smmu.translate(SID, 5, IOVA, "read", 4).ok, true);
  const noSsid = r.smmu.translate(SID, undefined, IOVA, "read", 4);
  assert.ok(!noSsid.ok && noSsid.fault.reason === SMMU_EVT.F_STREAM_DISABLED);
  // The last PASID leaving a blocked RID takes the STE back to invalid and frees the CD table.
  assert.equal(r.smmu.attachPasid(SID, 5, null), 0);
  assert.equal(r.ste().valid, false);
  assert.equal(r.smmu.cdTable(SID), undefined);
  // Back to the RID's HWPT so iommufd's bookkeeping and the SMMU agree again.
  assert.equal(attachIommufdPt(r.kernel, r.device.fd, ridHwpt, BDF), ridHwpt);
  detachIommufdPasid(r.kernel, r.device.fd, 5, BDF);
  r.dev.close();
  r.release();
});

Deno.test("smmuv3 pasid: attach rules — width, PASID flag, stage 2, unbind detaches all", () => {
  const r = rig({ nesting: true });
  const s = r.space(r.mem());
  const noFlag = r.space(r.mem(), 0);
  const s2 = r.space(r.mem(), IOMMU_HWPT_ALLOC_PASID | IOMMU_HWPT_ALLOC_NEST_PARENT);
  assert.throws(
    () => attachIommufdPasid(r.kernel, r.device.fd, 3, s.hwpt, BDF),
    /EINVAL/,
    "the RID is on the automatic HWPT, which is not PASID-compatible",
  );
  // The RID on a PASID-compatible stage-2 HWPT (a nest parent): its STE has no CD table, so a
  // stage-1 PASID cannot go next to it (arm_smmu_set_pasid: EINVAL).
  assert.equal(attachIommufdPt(r.kernel, r.device.fd, s2.hwpt, BDF), s2.hwpt);
  assert.equal(r.ste().config, STE_CONFIG.S2_TRANS);
  assert.throws(() => attachIommufdPasid(r.kernel, r.device.fd, 3, s.hwpt, BDF), /EINVAL/);
  assert.equal(r.smmu.attachedPasid(SID, 3), undefined);

  const ridHwpt = r.pasidReadyRid(r.fd.ioasAlloc());
  // SSIDSIZE 16 below the device's 20-bit PASID capability: 1 << 16 is beyond the width.
  assert.throws(
    () => attachIommufdPasid(r.kernel, r.device.fd, 1 << SSID_BITS, s.hwpt, BDF),
    /EINVAL/,
  );
  assert.throws(() => attachIommufdPasid(r.kernel, r.device.fd, 3, noFlag.hwpt, BDF), /EINVAL/);
  assert.throws(() => attachIommufdPasid(r.kernel, r.device.fd, 3, s.ioas, BDF), /EINVAL/);
  // A stage-2 domain cannot serve a PASID (arm_smmu_s1_set_dev_pasid: EINVAL).
  assert.throws(() => attachIommufdPasid(r.kernel, r.device.fd, 3, s2.hwpt, BDF), /EINVAL/);
  const top = (1 << SSID_BITS) - 1;
  assert.equal(attachIommufdPasid(r.kernel, r.device.fd, top, s.hwpt, BDF), s.hwpt);
  assert.equal(attachIommufdPasid(r.kernel, r.device.fd, 3, s.hwpt, BDF), s.hwpt);
  assert.ok(r.smmu.attachedPasid(SID, top) !== undefined);
  assert.equal(
    r.smmu.attachedPasid(SID, 3),
    r.smmu.attachedPasid(SID, top),
    "one domain, two SSIDs",
  );
  // While PASIDs are attached the RID cannot leave for a HWPT without the PASID flag (iommufd:
  // EINVAL), nor for a stage-2 one even with the flag (arm_smmu_attach_dev: EBUSY); it stays on
  // its stage-1 HWPT with its CD table.
  assert.throws(() => attachIommufdPt(r.kernel, r.device.fd, noFlag.hwpt, BDF), /EINVAL/);
  assert.throws(() => attachIommufdPt(r.kernel, r.device.fd, s2.hwpt, BDF), /EBUSY/);
  assert.ok(r.smmu.cdTable(SID) !== undefined);
  assert.equal(attachIommufdPt(r.kernel, r.device.fd, ridHwpt, BDF), ridHwpt);
  r.dev.close(); // closing the cdev unbinds the device: every PASID is detached
  assert.equal(r.smmu.attachedPasid(SID, top), undefined);
  assert.equal(r.smmu.attachedPasid(SID, 3), undefined);
  assert.equal(r.smmu.cdTable(SID), undefined);
  r.release();
});

Deno.test("smmuv3 pasid: the SMMU model alone — no SSIDs, PASID 0, freeing a domain on a PASID", () => {
  const none = createMachine({ iommu: "smmuv3", kernelVersion: "6.15.0" });
  const plain = none.iommu as SmmuV3Iommu;
  const d0 = plain.allocDomain();
  assert.equal(plain.attachPasid(SID, 1, d0), -95, "EOPNOTSUPP without IDR1.SSIDSIZE");
  plain.freeDomain(d0);

  const m = createMachine({ iommu: "smmuv3", smmuSsidBits: 8 });
  const smmu = m.iommu as SmmuV3Iommu;
  const d = smmu.allocDomain();
  assert.equal(smmu.attachPasid(SID, 0, d), -22, "PASID 0 is the RID's (IOMMU_NO_PASID)");
  assert.equal(smmu.attachPasid(SID, 256, d), -22, "beyond SSIDSIZE");
  assert.equal(smmu.attachPasid(SID, 9, d), 0);
  assert.throws(() => smmu.freeDomain(d), /freed while on a PASID/);
  // A stage-2 RID domain while an SSID is in use: attachCheck answers EBUSY (as Linux's
  // arm_smmu_attach_dev), and attach without asking first is a kernel bug, so it throws.
  const s2 = smmu.allocDomain(2);
  assert.equal(smmu.attachCheck(SID, s2), -16);
  assert.equal(smmu.attachCheck(SID, d), 0);
  assert.throws(() => smmu.attach(SID, s2), /EBUSY/);
  smmu.freeDomain(s2);
  assert.equal(smmu.attachPasid(SID, 9, null), 0);
  assert.equal(smmu.attachPasid(SID, 9, null), 0, "detaching a detached PASID does nothing");
  smmu.freeDomain(d);
  assert.throws(
    () => createMachine({ iommu: "vtd", smmuSsidBits: 8 }),
    /smmuSsidBits with iommu "vtd"/,
  );
});

Deno.test("smmuv3 pasid: S1CDMax is the master's SSID bits (its PASID capability, capped by SSIDSIZE)", () => {
  const m = createMachine({
    iommu: "smmuv3",
    kernelVersion: "6.15.0",
    smmuSsidBits: SSID_BITS,
    devices: [{ model: new PasidDmaDevice({ pasidWidth: 8 }), bdf: BDF }],
  });
  const smmu = m.iommu as SmmuV3Iommu;
  assert.equal(smmu.masterSsidBits(SID), 8);
  assert.equal(smmu.masterSsidBits(0x28), SSID_BITS, "a stream never probed: SSIDSIZE");
  const baseline = m.memory.usedBytes;
  const rid = smmu.allocDomain();
  const d = smmu.allocDomain();
  smmu.attach(SID, rid);
  const loc = smmu.streamTable.locate(SID);
  assert.ok("addr" in loc);
  const ste = decodeSte(readWords(m.memory, loc.addr, 4)!);
  assert.equal(ste.s1cdmax, 8);
  assert.equal(smmu.cdTable(SID)!.s1fmt, 0, "256 CDs: a linear CD table");
  assert.equal(smmu.attachPasid(SID, 256, d), -22, "beyond the master's 8 bits");
  assert.equal(smmu.attachPasid(SID, 255, d), 0);
  d.map(0x1000n, 0x10_0000n, 0x1000n, { read: true, write: true });
  const ok = smmu.translate(SID, 255, 0x1010n, "read", 4);
  assert.ok(ok.ok && ok.phys === 0x10_0010n);
  const bad = smmu.translate(SID, 256, 0x1010n, "read", 4);
  assert.ok(!bad.ok && bad.fault.reason === SMMU_EVT.C_BAD_SUBSTREAMID);
  assert.equal(smmu.attachPasid(SID, 255, null), 0);
  smmu.attach(SID, null);
  smmu.freeDomain(d);
  smmu.freeDomain(rid);
  assert.equal(m.memory.usedBytes, baseline);
});
