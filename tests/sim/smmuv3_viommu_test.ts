/**
 * SMMUv3 nesting through iommufd vIOMMUs (Linux 6.13+ uAPI) on the simulator: a NEST_PARENT HWPT
 * over the IOAS (stage 2, a VMID), IOMMU_VIOMMU_ALLOC on it, IOMMU_VDEVICE_ALLOC (the guest's
 * vSID), a nested HWPT from the guest's STE words on the vIOMMU, the edu device attached to it
 * with a CD table and stage-1 tables built in TypeScript, and the guest's commands through
 * IOMMU_HWPT_INVALIDATE on the vIOMMU. Also the errno table of the new ioctls, and 6.12 answering
 * as it always did.
 */
import assert from "node:assert/strict";
import { raw, userBytes } from "../helpers/raw_ioctl.ts";
import { attachIommufdPt } from "../../core/cdev.ts";
import type { DmaBuffer } from "../../core/dma_space.ts";
import { IommufdBackend } from "../../core/iommufd_backend.ts";
import { openPciDevice, type PciDevice } from "../../core/pci_device.ts";
import { smmuCommand, SmmuV3Stage1Tables } from "../../core/smmuv3_stage1.ts";
import { EduDriver } from "../../drivers/edu/edu.ts";
import { PasidDmaDriver } from "../../drivers/pasid_dma/pasid_dma.ts";
import { ERRNO } from "../../ffi/errno.ts";
import { ioctlNumber } from "../../ffi/uapi/common.ts";
import { decode } from "../../ffi/uapi/layout.ts";
import {
  IOMMU_DESTROY,
  iommu_destroy,
  IOMMU_GET_HW_INFO,
  iommu_hw_info,
  IOMMU_HWPT_ALLOC,
  iommu_hwpt_alloc,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_INVALIDATE,
  iommu_hwpt_invalidate,
} from "../../ffi/uapi/iommufd.ts";
import {
  iommu_hw_info_arm_smmuv3,
  IOMMU_HW_INFO_TYPE_ARM_SMMUV3,
  IOMMU_HWPT_DATA_ARM_SMMUV3,
  IOMMU_VDEVICE_ALLOC,
  iommu_vdevice_alloc,
  IOMMU_VIOMMU_ALLOC,
  iommu_viommu_alloc,
  iommu_viommu_alloc_data,
  IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3,
  IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
} from "../../ffi/uapi/post_6_12.ts";
import { VFIO_DEVICE_ATTACH_IOMMUFD_PT } from "../../ffi/uapi/vfio.ts";
import type { IommufdContext } from "../../sim/iommufd/context.ts";
import { userLockedPages } from "../../sim/iommufd/mod.ts";
import type { SmmuV3Iommu } from "../../sim/iommu/smmuv3/smmuv3.ts";
import { SMMU_EVT } from "../../sim/iommu/smmuv3/smmuv3_event.ts";
import { SMMU_REG } from "../../sim/iommu/smmuv3/smmuv3_regs.ts";
import { createMachine, type SimMachine } from "../../sim/machine.ts";
import type { SimKernel } from "../../sim/kernel/sim_kernel.ts";

const BDF = "0000:00:02.0";
const BDF2 = "0000:00:03.0";
/** A stage-1 address inside the edu's 28-bit DMA mask. */
const VA = 0x100_0000n;
const PAGE = 4096n;
const ASID = 7;
/** The vSIDs the guest gives the two devices. */
const VSID = 0x42;
const VSID2 = 0x43;

/** The guest's STE words as `iommu_hwpt_arm_smmuv3`. */
function ste(w0: bigint, w1 = 0n): Uint8Array {
  const out = new Uint8Array(16);
  const v = new DataView(out.buffer);
  v.setBigUint64(0, w0, true);
  v.setBigUint64(8, w1, true);
  return out;
}

interface Rig {
  machine: SimMachine;
  k: SimKernel;
  fd: number;
  devs: { dev: PciDevice; devId: number; cdevFd: number; bdf: string }[];
  ioasId: number;
  ctx: IommufdContext;
  hwptAlloc(o: Record<string, unknown>, data?: Uint8Array): { rc: number; id: number };
  invalidate(id: number, entries: Uint8Array[], o?: Record<string, unknown>): {
    rc: number;
    done: number;
  };
  destroy(id: number): number;
  /** Back to the IOAS, destroy `ids` in order, close the devices (last first). */
  teardown(ids: number[]): void;
}

/** An SMMUv3 machine with `count` edu devices opened through iommufd on one IOAS. */
function rig(kernelVersion: string, count = 1, smmuNesting = true): Rig {
  const machine = createMachine({
    iommu: "smmuv3",
    kernelVersion,
    ...(smmuNesting ? { smmuNesting: true } : {}),
    devices: ([{ model: "edu", bdf: BDF }, { model: "edu", bdf: BDF2 }] as const).slice(0, count),
    strict: true,
  });
  const k = machine.kernel;
  const first = openPciDevice(BDF, { kernel: k, iommu: "iommufd" });
  const backend = first.dma.backend;
  assert.ok(backend instanceof IommufdBackend);
  const devs = [{ dev: first, ...backend.devices()[0] }];
  if (count > 1) {
    const second = openPciDevice(BDF2, { kernel: k, iommu: "iommufd", dma: first.dma });
    devs.push({ dev: second, ...backend.devices()[1] });
  }
  const fd = backend.iommufd.fd;
  const ctx = k.process.fget(fd) as IommufdContext;
  return {
    machine,
    k,
    fd,
    devs: devs.map((d) => ({ dev: d.dev, devId: d.devId, cdevFd: d.fd, bdf: d.bdf })),
    ioasId: backend.ioasId,
    ctx,
    hwptAlloc(o, data) {
      const extra = data
        ? {
          data_len: data.length,
          data_uptr: userBytes(k, data),
          data_type: IOMMU_HWPT_DATA_ARM_SMMUV3,
        }
        : {};
      const r = raw(k, fd, IOMMU_HWPT_ALLOC, iommu_hwpt_alloc, { ...extra, ...o });
      return { rc: r.rc, id: Number(r.out.out_hwpt_id) };
    },
    invalidate(id, entries, o = {}) {
      const len = entries[0]?.length ?? 16;
      const all = new Uint8Array(len * entries.length);
      entries.forEach((e, i) => all.set(e, i * len));
      const r = raw(k, fd, IOMMU_HWPT_INVALIDATE, iommu_hwpt_invalidate, {
        hwpt_id: id,
        data_uptr: userBytes(k, all),
        data_type: IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3,
        entry_len: len,
        entry_num: entries.length,
        ...o,
      });
      return { rc: r.rc, done: Number(r.out.entry_num) };
    },
    destroy: (id) => raw(k, fd, IOMMU_DESTROY, iommu_destroy, { id }).rc,
    teardown(ids) {
      for (const d of devs) attachIommufdPt(k, d.fd, backend.ioasId, d.bdf);
      for (const id of ids) assert.equal(this.destroy(id), 0, `destroy ${id}`);
      for (const d of [...devs].reverse()) d.dev.close();
    },
  };
}

/** A NEST_PARENT HWPT and a vIOMMU on it for the rig's first device. */
function viommuOn(r: Rig): { parent: number; viommu: number } {
  const parent = r.hwptAlloc({
    dev_id: r.devs[0].devId,
    pt_id: r.ioasId,
    flags: IOMMU_HWPT_ALLOC_NEST_PARENT,
  });
  assert.equal(parent.rc, 0);
  const v = raw(r.k, r.fd, IOMMU_VIOMMU_ALLOC, iommu_viommu_alloc, {
    type: IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
    dev_id: r.devs[0].devId,
    hwpt_id: parent.id,
  });
  assert.equal(v.rc, 0);
  return { parent: parent.id, viommu: Number(v.out.out_viommu_id) };
}

function vdevice(r: Rig, viommu: number, devId: number, virtId: bigint): number {
  const v = raw(r.k, r.fd, IOMMU_VDEVICE_ALLOC, iommu_vdevice_alloc, {
    viommu_id: viommu,
    dev_id: devId,
    virt_id: virtId,
  });
  return v.rc < 0 ? v.rc : Number(v.out.out_vdevice_id);
}

Deno.test("smmuv3 viommu: Linux 6.12 answers ENOTTY, EOPNOTSUPP and type NONE as before", () => {
  const r = rig("6.12.107", 1, false);
  const dev = r.devs[0].devId;
  const viommu = raw(r.k, r.fd, IOMMU_VIOMMU_ALLOC, iommu_viommu_alloc, {
    type: IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
    dev_id: dev,
    hwpt_id: r.ioasId,
  });
  assert.equal(viommu.rc, -ERRNO.ENOTTY);
  const vdev = raw(r.k, r.fd, IOMMU_VDEVICE_ALLOC, iommu_vdevice_alloc, { viommu_id: 1 });
  assert.equal(vdev.rc, -ERRNO.ENOTTY);
  // NEST_PARENT and SMMUv3 user data: the 6.12 driver refuses both.
  assert.equal(
    r.hwptAlloc({ dev_id: dev, pt_id: r.ioasId, flags: IOMMU_HWPT_ALLOC_NEST_PARENT }).rc,
    -ERRNO.EOPNOTSUPP,
  );
  assert.equal(r.hwptAlloc({ dev_id: dev, pt_id: r.ioasId }, ste(1n)).rc, -ERRNO.EOPNOTSUPP);
  const info = raw(r.k, r.fd, IOMMU_GET_HW_INFO, iommu_hw_info, { dev_id: dev });
  assert.equal(info.rc, 0);
  assert.equal(info.out.out_data_type, 0);
  assert.equal(info.out.data_len, 0);
  // HWPT_INVALIDATE on a non-nested id stays ENOENT in 6.12.
  assert.equal(r.invalidate(r.ioasId, []).rc, -ERRNO.ENOENT);
  for (const d of r.devs) d.dev.close();
});

Deno.test("smmuv3 viommu: smmuNesting needs an SMMUv3 and Linux 6.13", () => {
  assert.throws(
    () => createMachine({ iommu: "smmuv3", smmuNesting: true }),
    /smmuNesting with kernelVersion 6\.12\.107: .*6\.13/,
  );
  assert.throws(
    () => createMachine({ iommu: "vtd", kernelVersion: "6.15", smmuNesting: true }),
    /smmuNesting with iommu "vtd"/,
  );
  const m = createMachine({ iommu: "smmuv3", kernelVersion: "6.13", smmuNesting: true });
  const smmu = m.iommu as SmmuV3Iommu;
  assert.ok(smmu.nesting, "the model nests");
  assert.equal(Number(smmu.readRegister(SMMU_REG.IDR3, 4) >> 8n) & 1, 1, "IDR3.FWB");
});

Deno.test("smmuv3 viommu: GET_HW_INFO from 6.13 reports ARM_SMMUV3 and the raw ID registers", () => {
  const r = rig("6.13");
  const smmu = r.machine.iommu as SmmuV3Iommu;
  const data = userBytes(r.k, new Uint8Array(64).fill(0xee));
  const info = raw(r.k, r.fd, IOMMU_GET_HW_INFO, iommu_hw_info, {
    dev_id: r.devs[0].devId,
    data_len: 64,
    data_uptr: data,
  });
  assert.equal(info.rc, 0);
  assert.equal(info.out.out_data_type, IOMMU_HW_INFO_TYPE_ARM_SMMUV3);
  assert.equal(info.out.data_len, iommu_hw_info_arm_smmuv3.size);
  const bytes = new Uint8Array(64);
  assert.equal(r.k.process.memory.copyFromUser(data, 64)?.length, 64);
  bytes.set(r.k.process.memory.copyFromUser(data, 64)!);
  const hw = decode(iommu_hw_info_arm_smmuv3, bytes.subarray(0, 40));
  const reg = (off: number) => Number(smmu.readRegister(off, 4));
  assert.deepEqual(hw.idr, [
    reg(SMMU_REG.IDR0),
    reg(SMMU_REG.IDR1),
    0,
    reg(SMMU_REG.IDR3),
    0,
    reg(SMMU_REG.IDR5),
  ]);
  assert.equal(hw.aidr, reg(SMMU_REG.AIDR));
  assert.ok(bytes.subarray(40).every((b) => b === 0), "the rest of the buffer is zeroed");
  for (const d of r.devs) d.dev.close();
});

Deno.test("smmuv3 viommu: IOMMU_VIOMMU_ALLOC and IOMMU_VDEVICE_ALLOC errno table (6.13)", () => {
  const r = rig("6.13", 2);
  const [d1, d2] = r.devs.map((d) => d.devId);
  const plain = r.hwptAlloc({ dev_id: d1, pt_id: r.ioasId });
  assert.equal(plain.rc, 0);
  const { parent, viommu } = viommuOn(r);
  const alloc = (o: Record<string, unknown>) =>
    raw(r.k, r.fd, IOMMU_VIOMMU_ALLOC, iommu_viommu_alloc, {
      type: IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
      dev_id: d1,
      hwpt_id: parent,
      ...o,
    }).rc;
  assert.equal(alloc({ flags: 1 }), -ERRNO.EOPNOTSUPP, "flags");
  assert.equal(alloc({ type: 0 }), -ERRNO.EOPNOTSUPP, "type DEFAULT");
  assert.equal(alloc({ dev_id: 999 }), -ERRNO.ENOENT, "no such device");
  assert.equal(alloc({ hwpt_id: r.ioasId }), -ERRNO.ENOENT, "an IOAS is not a paging HWPT");
  assert.equal(alloc({ hwpt_id: plain.id }), -ERRNO.EINVAL, "not NEST_PARENT");
  assert.equal(alloc({ type: 2 }), -ERRNO.EOPNOTSUPP, "TEGRA241_CMDQV is not this driver's");
  // A struct shorter than 6.13's is EINVAL; a longer one with a non-zero tail is E2BIG.
  const short = raw(r.k, r.fd, IOMMU_VIOMMU_ALLOC, iommu_viommu_alloc, {}, 20);
  assert.equal(short.rc, -ERRNO.EINVAL);

  assert.equal(vdevice(r, 999, d1, 1n), -ERRNO.ENOENT, "no such vIOMMU");
  assert.equal(vdevice(r, viommu, 999, 1n), -ERRNO.ENOENT, "no such device");
  assert.equal(vdevice(r, parent, d1, 1n), -ERRNO.ENOENT, "a HWPT is not a vIOMMU");
  const v1 = vdevice(r, viommu, d1, BigInt(VSID));
  assert.ok(v1 > 0);
  const next = vdevice(r, viommu, d2, BigInt(VSID));
  assert.equal(next, -ERRNO.EEXIST, "the vSID is taken on this vIOMMU");
  const v2 = vdevice(r, viommu, d2, BigInt(VSID2));
  assert.equal(v2, v1 + 1, "the failed allocation consumed no id");

  // Destroy: the vIOMMU holds its parent, vDEVICEs hold the vIOMMU.
  assert.equal(r.destroy(parent), -ERRNO.EBUSY);
  assert.equal(r.destroy(viommu), -ERRNO.EBUSY);
  assert.equal(r.destroy(v1), 0);
  assert.equal(r.destroy(v2), 0);
  assert.equal(r.destroy(viommu), 0);
  assert.equal(r.destroy(parent), 0);
  r.teardown([plain.id]);
});

Deno.test("smmuv3 viommu: without FWB (no smmuNesting) the vIOMMU is refused: EOPNOTSUPP", () => {
  const r = rig("6.13", 1, false);
  const parent = r.hwptAlloc({
    dev_id: r.devs[0].devId,
    pt_id: r.ioasId,
    flags: IOMMU_HWPT_ALLOC_NEST_PARENT,
  });
  assert.equal(parent.rc, 0, "S1P and S2P: Linux nests, so NEST_PARENT is a stage-2 domain");
  const v = raw(r.k, r.fd, IOMMU_VIOMMU_ALLOC, iommu_viommu_alloc, {
    type: IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
    dev_id: r.devs[0].devId,
    hwpt_id: parent.id,
  });
  assert.equal(v.rc, -ERRNO.EOPNOTSUPP);
  assert.equal(r.destroy(parent.id), 0);
  for (const d of r.devs) d.dev.close();
});

Deno.test("smmuv3 viommu: nested HWPT on a vIOMMU — data and vSTE checks (EINVAL, EIO)", () => {
  const r = rig("6.13");
  const dev = r.devs[0].devId;
  const { parent, viommu } = viommuOn(r);
  const nest = (data: Uint8Array, o: Record<string, unknown> = {}) =>
    r.hwptAlloc({ dev_id: dev, pt_id: viommu, ...o }, data);
  const s1 = 1n | (0b101n << 1n); // V, Config = stage-1 translate, CD table at 0
  assert.equal(nest(ste(s1), { data_type: 1 }).rc, -ERRNO.EINVAL, "VTD_S1 data on a vSMMU");
  assert.equal(nest(ste(s1).subarray(0, 8)).rc, -ERRNO.EINVAL, "data_len 8");
  assert.equal(nest(new Uint8Array(24)).rc, -ERRNO.EINVAL, "data_len 24");
  assert.equal(
    nest(ste(s1), { flags: IOMMU_HWPT_ALLOC_NEST_PARENT }).rc,
    -ERRNO.EOPNOTSUPP,
    "flags",
  );
  assert.equal(nest(ste(s1 | (1n << 58n))).rc, -ERRNO.EIO, "S2R is the kernel's bit");
  assert.equal(nest(ste(1n | (0b110n << 1n))).rc, -ERRNO.EIO, "Config = stage 2");
  assert.equal(nest(ste(s1, 2n << 28n)).rc, -ERRNO.EIO, "EATS = 0b10");
  assert.equal(nest(ste(s1, 1n << 19n)).rc, -ERRNO.EIO, "MEV is the kernel's bit");
  const invalid = nest(ste(0b110n << 1n)); // V = 0: accepted, becomes an abort STE
  assert.equal(invalid.rc, 0);
  const ok = nest(ste(s1, 1n << 28n)); // EATS = full ATS is accepted
  assert.equal(ok.rc, 0);
  // Through the paging parent (the 6.12 path) the SMMUv3 driver still refuses nesting.
  assert.equal(
    r.hwptAlloc({ dev_id: dev, pt_id: parent }, ste(s1)).rc,
    -ERRNO.EOPNOTSUPP,
  );
  assert.equal(r.destroy(viommu), -ERRNO.EBUSY, "nested HWPTs hold the vIOMMU");
  assert.equal(r.destroy(ok.id), 0);
  assert.equal(r.destroy(invalid.id), 0);
  assert.equal(r.destroy(viommu), 0);
  assert.equal(r.destroy(parent), 0);
  for (const d of r.devs) d.dev.close();
});

Deno.test("smmuv3 viommu: HWPT_INVALIDATE on a vIOMMU — type, EIO, E2BIG and entry_num", () => {
  const r = rig("6.13");
  const { parent, viommu } = viommuOn(r);
  const nested = r.hwptAlloc({ dev_id: r.devs[0].devId, pt_id: viommu }, ste(0n));
  const tlbi = smmuCommand("TLBI_NH_ASID", { asid: ASID });
  assert.deepEqual(r.invalidate(viommu, [tlbi, tlbi]), { rc: 0, done: 2 });
  assert.deepEqual(r.invalidate(viommu, [], { data_type: 0, entry_num: 0 }), {
    rc: -ERRNO.EINVAL,
    done: 0,
  });
  assert.deepEqual(r.invalidate(viommu, [tlbi], { data_type: 0 }), { rc: -ERRNO.EINVAL, done: 0 });
  // CMD_SYNC (0x46) is not forwarded: EIO at index 1, one counted as handled.
  assert.deepEqual(r.invalidate(viommu, [tlbi, smmuCommand(0x46), tlbi]), {
    rc: -ERRNO.EIO,
    done: 1,
  });
  // CFGI_CD naming a vSID without a vDEVICE: EIO.
  assert.deepEqual(r.invalidate(viommu, [smmuCommand("CFGI_CD", { vsid: VSID })]), {
    rc: -ERRNO.EIO,
    done: 0,
  });
  const v = vdevice(r, viommu, r.devs[0].devId, BigInt(VSID));
  assert.deepEqual(r.invalidate(viommu, [smmuCommand("CFGI_CD", { vsid: VSID })]), {
    rc: 0,
    done: 1,
  });
  // Longer entries must be zero past 16 bytes (E2BIG); shorter ones are zero-extended.
  const long = new Uint8Array(24);
  long.set(tlbi);
  assert.deepEqual(r.invalidate(viommu, [long]), { rc: 0, done: 1 });
  long[20] = 1;
  assert.deepEqual(r.invalidate(viommu, [long]), { rc: -ERRNO.E2BIG, done: 0 });
  assert.deepEqual(r.invalidate(viommu, [tlbi.subarray(0, 8)]), { rc: 0, done: 1 });
  // 6.13 looks the id up as any object: an IOAS is EINVAL, the SMMUv3 nested HWPT EOPNOTSUPP.
  assert.equal(r.invalidate(r.ioasId, [tlbi]).rc, -ERRNO.EINVAL);
  assert.equal(r.invalidate(nested.id, [tlbi]).rc, -ERRNO.EOPNOTSUPP);
  assert.equal(r.invalidate(999, [tlbi]).rc, -ERRNO.ENOENT);
  for (const id of [v, nested.id, viommu, parent]) assert.equal(r.destroy(id), 0);
  for (const d of r.devs) d.dev.close();
});

/** An edu rig with its buffer preloaded, a vIOMMU, vDEVICEs and stage-1 tables. */
async function dmaRig(kernelVersion = "6.13", count = 1) {
  const r = rig(kernelVersion, count);
  const edus = r.devs.map((d) => EduDriver.open(d.dev, { interrupts: "poll" }));
  const dma = r.devs[0].dev.dma;
  const src = dma.allocate(4096);
  src.bytes.set(new TextEncoder().encode("smmu"));
  for (const edu of edus) await edu.dmaToDevice(src, 0, 0, 4);
  dma.free(src);
  const { parent, viommu } = viommuOn(r);
  const s1 = new SmmuV3Stage1Tables(dma.allocate(16 * 4096));
  s1.setContext(0, { asid: ASID });
  const a = dma.allocate(4096);
  const b = dma.allocate(4096);
  return { r, edus, parent, viommu, s1, a, b };
}

const text = (b: DmaBuffer): string => new TextDecoder().decode(b.bytes.subarray(0, 4));

Deno.test("smmuv3 viommu: edu DMA through the user's CD and stage 1 over the IOAS; stale until TLBI_NH_VA", async () => {
  const { r, edus, parent, viommu, s1, a, b } = await dmaRig();
  const [edu] = edus;
  const [d] = r.devs;
  const vdev = vdevice(r, viommu, d.devId, BigInt(VSID));
  s1.map(0, VA, a.iova, PAGE, { write: true });
  const nested = r.hwptAlloc({ dev_id: d.devId, pt_id: viommu }, s1.vste());
  assert.equal(nested.rc, 0);
  attachIommufdPt(r.k, d.cdevFd, nested.id, d.bdf);
  await edu.dmaFromDeviceToIova(VA, 4);
  assert.equal(text(a), "smmu", "the DMA landed through stage 1 then stage 2");
  a.bytes.fill(0, 0, 4);
  s1.map(0, VA, b.iova, PAGE, { write: true }); // repoint, no invalidation
  await edu.dmaFromDeviceToIova(VA, 4);
  assert.equal(text(a), "smmu", "the stale IOTLB entry still points at A");
  assert.equal(text(b), "\0\0\0\0");
  // A TLBI for another ASID changes nothing; the right one does.
  const other = smmuCommand("TLBI_NH_VA", { asid: ASID + 1, address: VA, leaf: true });
  assert.deepEqual(r.invalidate(viommu, [other]), { rc: 0, done: 1 });
  a.bytes.fill(0, 0, 4);
  await edu.dmaFromDeviceToIova(VA, 4);
  assert.equal(text(a), "smmu");
  const tlbi = smmuCommand("TLBI_NH_VA", { asid: ASID, address: VA, leaf: true });
  assert.deepEqual(r.invalidate(viommu, [tlbi]), { rc: 0, done: 1 });
  a.bytes.fill(0, 0, 4);
  await edu.dmaFromDeviceToIova(VA, 4);
  assert.equal(text(b), "smmu", "after TLBI_NH_VA through the vIOMMU the new PTE is used");
  assert.equal(text(a), "\0\0\0\0");
  assert.equal(r.machine.faults().length, 0);

  // A DMA to a VA the user never mapped: a stage-1 F_TRANSLATION event.
  await edu.dmaFromDeviceToIova(VA + 64n * PAGE, 4);
  const f = r.machine.faults().at(-1)!;
  assert.equal(f.reason, SMMU_EVT.F_TRANSLATION);
  assert.equal(f.stage, 1);
  assert.equal(f.address, VA + 64n * PAGE);

  // Cleanup: back to the IOAS, destroy in order, close: no objects, no locked memory.
  attachIommufdPt(r.k, d.cdevFd, r.ioasId, d.bdf);
  for (const id of [nested.id, vdev, viommu, parent]) assert.equal(r.destroy(id), 0);
  assert.deepEqual(
    r.ctx.objects.map((o) => o.type).filter((t) => t !== "device"),
    ["ioas", "hwpt-paging"],
    "only the backend's IOAS and its automatic HWPT remain",
  );
  const process = r.k.process;
  edu.close();
  d.dev.close();
  assert.equal(r.ctx.objects.length, 0);
  assert.equal(userLockedPages(process), 0);
});

Deno.test("smmuv3 viommu: TLBI_NH_ASID reaches every nested domain on the vIOMMU's VMID", async () => {
  const { r, edus, parent, viommu, s1, a, b } = await dmaRig("6.13", 2);
  s1.map(0, VA, a.iova, PAGE, { write: true });
  // Two nested HWPTs (two nested domains) from the same guest STE, one per device.
  const hwpts = r.devs.map((d) => r.hwptAlloc({ dev_id: d.devId, pt_id: viommu }, s1.vste()).id);
  r.devs.forEach((d, i) => attachIommufdPt(r.k, d.cdevFd, hwpts[i], d.bdf));
  for (const edu of edus) await edu.dmaFromDeviceToIova(VA, 4);
  s1.map(0, VA, b.iova, PAGE, { write: true });
  a.bytes.fill(0, 0, 4);
  for (const edu of edus) await edu.dmaFromDeviceToIova(VA, 4);
  assert.equal(text(b), "\0\0\0\0", "both domains hit their stale entry");
  assert.deepEqual(r.invalidate(viommu, [smmuCommand("TLBI_NH_ASID", { asid: ASID })]), {
    rc: 0,
    done: 1,
  });
  a.bytes.fill(0, 0, 4);
  await edus[1].dmaFromDeviceToIova(VA, 4);
  assert.equal(text(b), "smmu", "the second device's domain was flushed too");
  b.bytes.fill(0, 0, 4);
  await edus[0].dmaFromDeviceToIova(VA, 4);
  assert.equal(text(b), "smmu");
  assert.equal(text(a), "\0\0\0\0");
  for (const edu of edus) edu.close();
  r.teardown([...hwpts, viommu, parent]);
  assert.equal(r.ctx.objects.length, 0);
});

Deno.test("smmuv3 viommu: from 6.15 a translating nested HWPT attaches only with a vDEVICE", async () => {
  for (const version of ["6.13", "6.15"]) {
    const { r, edus, parent, viommu, s1 } = await dmaRig(version);
    const [d] = r.devs;
    const nested = r.hwptAlloc({ dev_id: d.devId, pt_id: viommu }, s1.vste());
    const bypass = r.hwptAlloc({ dev_id: d.devId, pt_id: viommu }, ste(1n | (0b100n << 1n)));
    const attach = (id: number) =>
      r.k.ioctl(d.cdevFd, ioctlNumber(r.k.ioctlArch, VFIO_DEVICE_ATTACH_IOMMUFD_PT), attachArg(id));
    if (version === "6.15") {
      assert.equal(attach(nested.id), -ERRNO.ENOENT, "6.15: no vDEVICE on the vIOMMU");
      assert.equal(attach(bypass.id), 0, "a bypass vSTE needs none");
    }
    const vdev = vdevice(r, viommu, d.devId, BigInt(VSID));
    assert.ok(vdev > 0);
    assert.equal(attach(nested.id), 0, version);
    for (const edu of edus) edu.close();
    r.teardown([nested.id, bypass.id, vdev, viommu, parent]);
    assert.equal(r.ctx.objects.length, 0);
  }
});

/** `vfio_device_attach_iommufd_pt` (argsz, flags, pt_id). */
function attachArg(ptId: number): Uint8Array {
  const arg = new Uint8Array(12);
  const v = new DataView(arg.buffer);
  v.setUint32(0, 12, true);
  v.setUint32(8, ptId, true);
  return arg;
}

Deno.test("smmuv3 viommu: per-SSID stage 1 — PASID DMA uses the CD of its SSID", async () => {
  const machine = createMachine({
    iommu: "smmuv3",
    kernelVersion: "6.13",
    smmuNesting: { ssidBits: 4 },
    devices: [{ model: "pasid-dma", bdf: BDF }],
    strict: true,
  });
  const k = machine.kernel;
  const dev = openPciDevice(BDF, { kernel: k, iommu: "iommufd" });
  const backend = dev.dma.backend;
  assert.ok(backend instanceof IommufdBackend);
  const [device] = backend.devices();
  const fd = backend.iommufd;
  const pdma = PasidDmaDriver.open(dev);
  const parent = fd.hwptAlloc({
    devId: device.devId,
    ptId: backend.ioasId,
    flags: IOMMU_HWPT_ALLOC_NEST_PARENT,
  });
  const viommu = fd.viommuAlloc({
    devId: device.devId,
    hwptId: parent,
    type: IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
  });
  const vdev = fd.vdeviceAlloc({ viommuId: viommu, devId: device.devId, virtId: BigInt(VSID) });
  // Four CDs; DMA without a PASID (the ring) bypasses stage 1 (S1DSS = bypass: IPA = IOVA).
  const s1 = new SmmuV3Stage1Tables(dev.dma.allocate(16 * 4096), { cds: 4 });
  const x = dev.dma.allocate(4096);
  const y = dev.dma.allocate(4096);
  s1.setContext(1, { asid: 21 });
  s1.setContext(2, { asid: 22 });
  s1.map(1, VA, x.iova, PAGE, { write: true });
  s1.map(2, VA, y.iova, PAGE, { write: true });
  const nested = fd.hwptAlloc({
    devId: device.devId,
    ptId: viommu,
    dataType: IOMMU_HWPT_DATA_ARM_SMMUV3,
    data: s1.vste({ s1dss: "bypass" }),
  });
  attachIommufdPt(k, device.fd, nested, BDF);
  assert.equal((await pdma.fill(VA, 64, 0x11, 1)).status, "ok");
  assert.equal((await pdma.fill(VA, 64, 0x22, 2)).status, "ok");
  assert.ok(x.bytes.subarray(0, 64).every((v) => v === 0x11), "SSID 1 → CD 1 → X");
  assert.ok(y.bytes.subarray(0, 64).every((v) => v === 0x22), "SSID 2 → CD 2 → Y");
  // CD 3 is not valid: C_BAD_CD, a stage-1 (user) fault.
  assert.equal((await pdma.fill(VA, 16, 0x33, 3)).status, "fault");
  const f = machine.faults().at(-1)!;
  assert.equal(f.reason, SMMU_EVT.C_BAD_CD);
  assert.equal(f.pasid, 3);
  assert.equal(f.stage, 1);
  // A CD change needs CMD_CFGI_CD with the vSID (translated to the physical StreamID).
  s1.clearContext(1);
  assert.equal((await pdma.fill(VA, 16, 0x44, 1)).status, "ok", "the cached CD is still used");
  const cfgi = smmuCommand("CFGI_CD", { vsid: VSID, ssid: 1, leaf: true });
  assert.equal(fd.hwptInvalidate(viommu, IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3, [cfgi]), 1);
  assert.equal((await pdma.fill(VA, 16, 0x55, 1)).status, "fault", "CD 1 is now invalid");
  attachIommufdPt(k, device.fd, backend.ioasId, BDF);
  for (const id of [nested, vdev, viommu, parent]) fd.destroy(id);
  pdma.close();
  dev.close();
});

Deno.test("smmuv3 viommu: 6.17 — one vDEVICE per device, gone with the device; 40-byte VIOMMU_ALLOC", () => {
  const r = rig("6.17", 2);
  const [d1, d2] = r.devs.map((d) => d.devId);
  const { parent, viommu } = viommuOn(r);
  const v1 = vdevice(r, viommu, d1, 1n);
  assert.ok(v1 > 0);
  assert.equal(vdevice(r, viommu, d1, 2n), -ERRNO.EEXIST, "the device has a vDEVICE");
  assert.ok(vdevice(r, viommu, d2, 2n) > 0);
  const long = raw(r.k, r.fd, IOMMU_VIOMMU_ALLOC, iommu_viommu_alloc_data, {
    type: IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
    dev_id: d1,
    hwpt_id: parent,
  });
  assert.equal(long.rc, 0, "the 6.17 struct with its data tail");
  assert.equal(r.destroy(Number(long.out.out_viommu_id)), 0);
  // Closing the second device unbinds it: its vDEVICE goes, the vIOMMU is free of it.
  r.devs[1].dev.close();
  assert.equal(
    r.ctx.objects.filter((o) => o.type === "vdevice").length,
    1,
    "only the first device's vDEVICE is left",
  );
  assert.equal(r.destroy(viommu), -ERRNO.EBUSY);
  assert.equal(r.destroy(v1), 0);
  assert.equal(r.destroy(viommu), 0);
  assert.equal(r.destroy(parent), 0);
  r.devs[0].dev.close();
});
