/**
 * What destroying an iommufd object does, per object type (Linux's `iommufd_object_ops[]` in
 * drivers/iommu/iommufd/main.c): the table {@link IommufdCore.destroy} dispatches through. Kept
 * apart from ./core.ts so that the object modules (HWPT, vIOMMU, vEVENTQ), which need the core's
 * type, and the core do not import each other.
 *
 * @module
 */

import type { IommufdCore, ObjectOps } from "./core.ts";
import { destroyHwpt } from "./hwpt.ts";
import { destroyVdevice, destroyViommu } from "./viommu.ts";
import { destroyVeventq } from "./veventq.ts";

/** The destroy operation of every object type. */
export const IOMMUFD_OBJECT_OPS: ObjectOps = {
  ioas: {
    destroy(core, ioas) {
      ioas.iopt.destroy();
      if (core.compatIoas === ioas) core.compatIoas = undefined;
    },
  },
  "hwpt-paging": { destroy: destroyHwpt },
  "hwpt-nested": { destroy: destroyHwpt },
  device: { destroy: (core: IommufdCore, dev) => core.releaseOwnership(dev) },
  fault: { destroy: (_core, fault) => fault.queue.shutdown() },
  viommu: { destroy: (_core, viommu) => destroyViommu(viommu) },
  vdevice: { destroy: (_core, vdev) => destroyVdevice(vdev) },
  veventq: { destroy: (_core, veventq) => destroyVeventq(veventq) },
};
