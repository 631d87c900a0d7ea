/**
 * I/O page-fault enablement of a device (`iommu_dev_enable_feature(dev, IOMMU_DEV_FEAT_IOPF)`),
 * which iommufd asks for when a device attaches a fault-capable HWPT, per IOMMU driver of Linux
 * 6.12 (iommufd.md §8; drivers/iommu/intel/iommu.c, arm-smmu-v3.c, iommu.c):
 *
 * - VT-d (`intel_iommu_enable_iopf`): the device needs ATS *enabled* and PRI *supported*, else
 *   ENODEV; PRI already enabled → EBUSY; PASID enabled on the device but its PRI capability
 *   without "PRG Response PASID Required" → EINVAL; otherwise PRI is reset and enabled.
 *   ATS is supported with ECAP.DT and an ATS capability; PRI with that plus scalable mode,
 *   ECAP.PRS, ECAP.PDS and a PRI capability; PASID is enabled at probe in scalable mode with
 *   ECAP.PASID and a PASID capability. ATS is enabled when the device is attached to a paging
 *   domain (page-aligned requests required) and disabled when translation is blocked — which
 *   also happens first in a nested attach — so in 6.12 a blocked device (just bound, or
 *   detached) cannot enable IOPF; one on a paging HWPT can, and keeps PRI while nested.
 * - SMMUv3 (`arm_smmu_dev_enable_feature`): only stall-capable masters, never a PCI function →
 *   EINVAL.
 * - Drivers without `dev_enable_feat` (virtio-iommu, unknown kinds) → ENODEV.
 *
 * The driver's state lives with the PCI function (kernel-wide, as `dev_iommu_priv`), and the
 * enables are written into the function's ATS and PRI capabilities, as the PCI core does.
 *
 * @module
 */

import { ERRNO } from "../../ffi/errno.ts";
import type { IommuFacts } from "../iommu/model.ts";
import type { SimPciFunction } from "../kernel/pci_function.ts";
import type { PciConfig } from "../pci/device.ts";
import { findExtCapability } from "../pci/ext_cap.ts";
import { VTD_ECAP } from "../iommu/vtd/vtd_regs.ts";
import { getField, type RegField } from "../iommu/reg_fields.ts";
import {
  PCI_ATS_CAP,
  PCI_ATS_CAP_PAGE_ALIGNED,
  PCI_ATS_CTRL,
  PCI_ATS_CTRL_ENABLE,
  PCI_EXT_CAP_ID_ATS,
  PCI_EXT_CAP_ID_PASID,
  PCI_EXT_CAP_ID_PRI,
  PCI_PRI_ALLOC_REQ,
  PCI_PRI_CTRL,
  PCI_PRI_CTRL_ENABLE,
  PCI_PRI_CTRL_RESET,
  PCI_PRI_MAX_REQ,
  PCI_PRI_STATUS,
  PCI_PRI_STATUS_PASID,
} from "../pci/pci_regs.ts";

/** What the IOMMU driver does to a device's PCI capabilities when its domain changes. */
export type DomainKind = "paging" | "nested" | "blocked";

/** An IOMMU driver's IOPF feature (`dev_enable_feat` / `dev_disable_feat`). */
export interface IopfOps {
  /** Enable I/O page faults for the function: 0 or -errno. */
  enable(facts: IommuFacts, fn: SimPciFunction): number;
  /** Disable them again (nothing when they are not enabled). */
  disable(facts: IommuFacts, fn: SimPciFunction): void;
  /** The driver's attach side effects on the function (VT-d: ATS on paging domains only). */
  domainChanged?(facts: IommuFacts, fn: SimPciFunction, kind: DomainKind): void;
}

/** SMMUv3: PCI functions are never stall-capable masters. */
export const SMMUV3_IOPF: IopfOps = {
  enable: () => -ERRNO.EINVAL,
  disable: () => {},
};

/** VT-d's per-device state (`device_domain_info`: ats_enabled, pri_enabled). */
interface VtdDeviceInfo {
  atsEnabled: boolean;
  priEnabled: boolean;
}

const vtdInfos = new WeakMap<SimPciFunction, VtdDeviceInfo>();

function vtdInfo(fn: SimPciFunction): VtdDeviceInfo {
  let info = vtdInfos.get(fn);
  if (!info) {
    info = { atsEnabled: false, priEnabled: false };
    vtdInfos.set(fn, info);
  }
  return info;
}

/** The function's config space (test fixtures may have functions without a model). */
function configOf(fn: SimPciFunction): PciConfig | undefined {
  return (fn.model as { config?: PciConfig } | undefined)?.config;
}

const bit = (ecap: bigint, field: RegField): boolean => getField(ecap, field) === 1;
/** Outstanding page requests the VT-d driver allocates (its page request queue depth). */
const VTD_PRQ_DEPTH = 2048;

/** The VT-d driver's IOPF feature; `ecapOf` reads the unit's ECAP register. */
export function vtdIopf(ecapOf: (facts: IommuFacts) => bigint): IopfOps {
  const atsSupported = (facts: IommuFacts, config: PciConfig | undefined): config is PciConfig =>
    bit(ecapOf(facts), VTD_ECAP.DT) && findExtCapability(config, PCI_EXT_CAP_ID_ATS) !== 0;
  const scalable = (facts: IommuFacts): boolean => bit(ecapOf(facts), VTD_ECAP.SMTS);
  const priSupported = (facts: IommuFacts, config: PciConfig | undefined): config is PciConfig => {
    const ecap = ecapOf(facts);
    return atsSupported(facts, config) && scalable(facts) && bit(ecap, VTD_ECAP.PRS) &&
      bit(ecap, VTD_ECAP.PDS) && findExtCapability(config, PCI_EXT_CAP_ID_PRI) !== 0;
  };
  const pasidEnabled = (facts: IommuFacts, config: PciConfig): boolean =>
    scalable(facts) && bit(ecapOf(facts), VTD_ECAP.PASID) &&
    findExtCapability(config, PCI_EXT_CAP_ID_PASID) !== 0;
  const setCtrl = (config: PciConfig, reg: number, flag: number, on: boolean): void => {
    const v = config.read(reg, 2);
    config.write(reg, 2, on ? v | flag : v & ~flag);
  };
  return {
    enable(facts, fn) {
      const config = configOf(fn);
      const info = vtdInfo(fn);
      if (!info.atsEnabled || !priSupported(facts, config)) return -ERRNO.ENODEV;
      if (info.priEnabled) return -ERRNO.EBUSY;
      const pri = findExtCapability(config, PCI_EXT_CAP_ID_PRI);
      const pasidRequired = (config.read(pri + PCI_PRI_STATUS, 2) & PCI_PRI_STATUS_PASID) !== 0;
      if (pasidEnabled(facts, config) && !pasidRequired) return -ERRNO.EINVAL;
      config.write(pri + PCI_PRI_CTRL, 2, PCI_PRI_CTRL_RESET);
      const capacity = config.read(pri + PCI_PRI_MAX_REQ, 4) >>> 0;
      config.write(pri + PCI_PRI_ALLOC_REQ, 4, Math.min(capacity, VTD_PRQ_DEPTH));
      config.write(pri + PCI_PRI_CTRL, 2, PCI_PRI_CTRL_ENABLE);
      info.priEnabled = true;
      return 0;
    },
    disable(_facts, fn) {
      const info = vtdInfo(fn);
      if (!info.priEnabled) return;
      const config = configOf(fn);
      const pri = findExtCapability(config, PCI_EXT_CAP_ID_PRI);
      if (config && pri) setCtrl(config, pri + PCI_PRI_CTRL, PCI_PRI_CTRL_ENABLE, false);
      info.priEnabled = false;
    },
    domainChanged(facts, fn, kind) {
      const config = configOf(fn);
      const info = vtdInfo(fn);
      const ats = findExtCapability(config, PCI_EXT_CAP_ID_ATS);
      if (kind === "paging") {
        if (info.atsEnabled || !atsSupported(facts, config)) return;
        if ((config.read(ats + PCI_ATS_CAP, 2) & PCI_ATS_CAP_PAGE_ALIGNED) === 0) return;
        // Smallest Translation Unit 0: 4 KiB, the VT-d page.
        config.write(ats + PCI_ATS_CTRL, 2, PCI_ATS_CTRL_ENABLE);
        info.atsEnabled = true;
      } else if (info.atsEnabled) {
        if (config && ats) setCtrl(config, ats + PCI_ATS_CTRL, PCI_ATS_CTRL_ENABLE, false);
        info.atsEnabled = false;
      }
    },
  };
}

/** VT-d's view of a function, for tests and diagnostics: ATS and PRI enabled. */
export function vtdDeviceState(fn: SimPciFunction): { ats: boolean; pri: boolean } {
  const info = vtdInfo(fn);
  return { ats: info.atsEnabled, pri: info.priEnabled };
}
