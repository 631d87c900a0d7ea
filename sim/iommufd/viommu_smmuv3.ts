/**
 * The arm-smmu-v3 driver's iommufd side from Linux 6.13 on, as data and small functions: paging
 * HWPTs may be NEST_PARENT (a stage-2 domain), GET_HW_INFO reports IOMMU_HW_INFO_TYPE_ARM_SMMUV3
 * with the raw ID registers, and a vIOMMU of type ARM_SMMUV3 (a "vSMMU") over a nest parent
 * accepts nested HWPTs (`iommu_hwpt_arm_smmuv3`, the guest's STE words 0–1, checked by the SMMU
 * model) and forwards the guest's invalidation commands after fixing them.
 *
 * Behaviour read from Linux's arm-smmu-v3-iommufd.c (6.13 and later; written anew here):
 * - `viommu_alloc`: the SMMU must nest (IDR0.S1P and S2P: ARM_SMMU_FEAT_NESTING) else EOPNOTSUPP;
 *   the parent must be this SMMU's else EINVAL; the device must be coherent without cache
 *   maintenance (IORT CANWBS, here `facts.enforceCacheCoherency`) or the SMMU must force
 *   write-back at stage 2 (IDR3.FWB) else EOPNOTSUPP; the type must be ARM_SMMUV3 else EOPNOTSUPP.
 * - commands (`arm_vsmmu_convert_user_cmd`): CMD_TLBI_NH_{ALL,ASID,VA,VAA} get the vSMMU's VMID
 *   (the parent's), CMD_TLBI_NSNH_ALL becomes NH_ALL of that VMID; CMD_CFGI_CD, CMD_CFGI_CD_ALL
 *   and CMD_ATC_INV have their vSID (bits 63:32) replaced by the physical StreamID of the vDEVICE
 *   with that virtual id (none: EIO); anything else EIO.
 * - from 6.15 a nested HWPT whose vSTE translates (Config = S1) attaches only to a device with a
 *   vDEVICE on the vIOMMU (ENOENT otherwise); abort and bypass vSTEs attach without one.
 * - from 6.15 (`arm_vmaster_report_event`) events of a stream attached to a nested domain of the
 *   vIOMMU, when the host driver handles them (smmuv3.ts: the id set of `arm_smmu_handle_event`,
 *   S2 = 0, no stall) and the device has a vDEVICE, go to the vIOMMU's ARM_SMMUV3 vEVENTQ as the
 *   raw 32-byte record with the vSID in StreamID (dword 0 bits 63:32); with no such queue they are
 *   logged by the host as before.
 *
 * @module
 */

import { ERRNO } from "../../ffi/errno.ts";
import { SMMUV3_IOPF } from "./iopf.ts";
import { decode } from "../../ffi/uapi/layout.ts";
import {
  iommu_hw_info_arm_smmuv3,
  IOMMU_HWPT_DATA_ARM_SMMUV3,
  iommu_vevent_arm_smmuv3,
  IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
  IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3,
  IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
} from "../../ffi/uapi/post_6_12.ts";
import {
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
} from "../../ffi/uapi/iommufd.ts";
import type { IommuFacts } from "../iommu/model.ts";
import { forceVmid, SMMU_CMD, SMMU_CMD_BYTES, SMMU_CMD_FIELD } from "../iommu/smmuv3/smmuv3_cmd.ts";
import { SmmuV3NestedDomain } from "../iommu/smmuv3/smmuv3_nested.ts";
import { reportViommuEvent } from "./veventq.ts";
import { SMMU_IDR0, SMMU_IDR3 } from "../iommu/smmuv3/smmuv3_regs.ts";
import { STE, STE_CONFIG } from "../iommu/smmuv3/smmuv3_ste.ts";
import { getField } from "../iommu/reg_fields.ts";
import type { IommuDriverRow, ViommuDriver } from "./driver_ops.ts";
import type { ViommuObject } from "./objects.ts";

/** The SMMU's raw ID registers from its 6.13 hw_info report (zeros without one). */
function idrs(facts: IommuFacts): readonly number[] {
  const info = facts.laterHwInfo;
  if (info === undefined || info.data.length < iommu_hw_info_arm_smmuv3.size) {
    return [0, 0, 0, 0, 0, 0];
  }
  return decode(iommu_hw_info_arm_smmuv3, info.data).idr;
}

const bitOf = (reg: number, field: { shift: number; width: number }): number =>
  (reg >>> field.shift) & ((1 << field.width) - 1);

/** ARM_SMMU_FEAT_NESTING: both translation stages. */
export function smmuNests(facts: IommuFacts): boolean {
  const idr0 = idrs(facts)[0];
  return bitOf(idr0, SMMU_IDR0.S1P) === 1 && bitOf(idr0, SMMU_IDR0.S2P) === 1;
}

/** ARM_SMMU_FEAT_S2FWB. */
function smmuFwb(facts: IommuFacts): boolean {
  return bitOf(idrs(facts)[3], SMMU_IDR3.FWB) === 1;
}

/** vSID → physical StreamID through the vIOMMU's vDEVICEs (the SMMU model uses the RID). */
function physicalSid(viommu: ViommuObject, vsid: number): number | undefined {
  return viommu.vdevs.get(BigInt(vsid))?.dev.fn.requester;
}

const SID_MASK = ((1n << 32n) - 1n) << BigInt(SMMU_CMD_FIELD.CFGI_SID.shift);

const SMMUV3_VIOMMU: ViommuDriver = {
  alloc(iommu, type, parent) {
    const facts = iommu.facts;
    if (!smmuNests(facts) || iommu.nesting === undefined) return -ERRNO.EOPNOTSUPP;
    if (parent.iommu !== iommu) return -ERRNO.EINVAL;
    if (!facts.enforceCacheCoherency && !smmuFwb(facts)) return -ERRNO.EOPNOTSUPP;
    if (type !== IOMMU_VIOMMU_TYPE_ARM_SMMUV3) return -ERRNO.EOPNOTSUPP;
    return 0;
  },
  nestedFormat: { type: IOMMU_HWPT_DATA_ARM_SMMUV3, minLen: 16, size: 16 },
  needsVdevice(data) {
    const w0 = new DataView(data.buffer, data.byteOffset, 8).getBigUint64(0, true);
    return getField(w0, STE.W0.V) === 1 && getField(w0, STE.W0.CONFIG) === STE_CONFIG.S1_TRANS;
  },
  invalidateType: IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3,
  entrySize: SMMU_CMD_BYTES,
  convert(viommu, entry) {
    const c0 = new DataView(entry.buffer, entry.byteOffset, 8).getBigUint64(0, true);
    switch (getField(c0, SMMU_CMD_FIELD.OP)) {
      case SMMU_CMD.TLBI_NSNH_ALL:
      case SMMU_CMD.TLBI_NH_ALL:
      case SMMU_CMD.TLBI_NH_ASID:
      case SMMU_CMD.TLBI_NH_VA:
      case SMMU_CMD.TLBI_NH_VAA:
        return forceVmid(entry, viommu.hwpt.domain.id);
      case SMMU_CMD.ATC_INV:
      case SMMU_CMD.CFGI_CD:
      case SMMU_CMD.CFGI_CD_ALL: {
        const sid = physicalSid(viommu, getField(c0, SMMU_CMD_FIELD.CFGI_SID));
        if (sid === undefined) return -ERRNO.EIO;
        const out = entry.slice(0, SMMU_CMD_BYTES);
        const v = new DataView(out.buffer);
        v.setBigUint64(0, (c0 & ~SID_MASK) | (BigInt(sid) << 32n), true);
        return out;
      }
      default:
        return -ERRNO.EIO;
    }
  },
  forwardEvents(domain, viommu) {
    if (!(domain instanceof SmmuV3NestedDomain)) return;
    domain.eventReporter = (raw) => {
      const vsid = virtualSid(viommu, rawSid(raw));
      if (vsid === undefined) return false;
      return reportViommuEvent(viommu, IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, withStreamId(raw, vsid));
    };
  },
};

/** EVTQ dword 0 bits 63:32: the StreamID. */
const EVT_SID_SHIFT = 32n;
const EVT_SID_MASK = 0xffff_ffffn << EVT_SID_SHIFT;

/** The StreamID of a raw 32-byte event. */
function rawSid(raw: Uint8Array): number {
  const d0 = new DataView(raw.buffer, raw.byteOffset, 8).getBigUint64(0, true);
  return Number((d0 & EVT_SID_MASK) >> EVT_SID_SHIFT);
}

/**
 * The vSID of the device with physical StreamID `sid` on `viommu` (`iommufd_viommu_get_vdev_id`).
 * Linux records it in the master's `vmaster` when the nested domain is attached; here it is looked
 * up when the event is drained (same answer unless the vDEVICE changed while attached).
 */
function virtualSid(viommu: ViommuObject, sid: number): bigint | undefined {
  for (const v of viommu.vdevs.values()) if (v.dev.fn.requester === sid) return v.virtId;
  return undefined;
}

/** `arm_vmaster_report_event`'s record: the raw event with the vSID in place of the StreamID. */
function withStreamId(raw: Uint8Array, vsid: bigint): Uint8Array {
  const out = raw.slice(0, iommu_vevent_arm_smmuv3.size);
  const v = new DataView(out.buffer);
  const d0 = v.getBigUint64(0, true);
  v.setBigUint64(0, (d0 & ~EVT_SID_MASK) | (BigInt.asUintN(32, vsid) << EVT_SID_SHIFT), true);
  return out;
}

/** The arm-smmu-v3 driver row of Linux 6.13 and later. */
export const SMMUV3_VIOMMU_ROW: IommuDriverRow = {
  name: "arm-smmu-v3",
  domainAllocUser: true,
  pagingAlloc(facts, flags, userData) {
    if (flags & ~(IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_DIRTY_TRACKING)) {
      return -ERRNO.EOPNOTSUPP;
    }
    if (userData) return -ERRNO.EOPNOTSUPP;
    if ((flags & IOMMU_HWPT_ALLOC_NEST_PARENT) && !smmuNests(facts)) return -ERRNO.EOPNOTSUPP;
    if ((flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING) && !facts.dirtyTracking) return -ERRNO.EOPNOTSUPP;
    return 0;
  },
  // Nested HWPTs only on a vIOMMU: a paging parent as pt_id is refused by the driver.
  nestedAlloc: () => -ERRNO.EOPNOTSUPP,
  nestedFormat: undefined,
  hwInfo: (facts) => facts.laterHwInfo,
  invalidateFormat: undefined,
  checkInvalidation: () => -ERRNO.EOPNOTSUPP,
  viommu: SMMUV3_VIOMMU,
  iopf: SMMUV3_IOPF,
};
