/**
 * Nesting and PASID ioctls on a device whose IOMMU offers neither (every emulated IOMMU of the VM
 * bench): HWPT_ALLOC of a nest parent, of a nested HWPT and with post-6.12 flags, HWPT_INVALIDATE,
 * dirty tracking, and PASID attach through the cdev (shared/reference/iommufd.md §8, vfio.md §7.6).
 * The real 6.12 kernel's answers are recorded in the goldens; the simulator must give the same.
 *
 * @module
 */

import { scenario, type ScenarioContext, type ScenarioDef } from "./scenario.ts";
import { fieldsOf, iommufdSession, struct } from "./steps.ts";
import {
  IOMMU_HWPT_ALLOC,
  iommu_hwpt_alloc,
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_DATA_VTD_S1,
  IOMMU_HWPT_INVALIDATE,
  iommu_hwpt_invalidate,
  IOMMU_HWPT_INVALIDATE_DATA_VTD_S1,
  IOMMU_HWPT_SET_DIRTY_TRACKING,
  iommu_hwpt_set_dirty_tracking,
  iommu_hwpt_vtd_s1,
  iommu_hwpt_vtd_s1_invalidate,
  VFIO_DEVICE_ATTACH_IOMMUFD_PT,
  VFIO_DEVICE_DETACH_IOMMUFD_PT,
} from "./uapi.ts";
import { encode } from "../../ffi/uapi/layout.ts";
import {
  iommu_hwpt_arm_smmuv3,
  IOMMU_HWPT_DATA_ARM_SMMUV3,
  IOMMU_VDEVICE_ALLOC,
  iommu_vdevice_alloc,
  IOMMU_VEVENTQ_ALLOC,
  iommu_veventq_alloc,
  IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
  IOMMU_VIOMMU_ALLOC,
  iommu_viommu_alloc,
  iommu_viommu_arm_smmuv3_invalidate,
  IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3,
  IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
} from "../../ffi/uapi/post_6_12.ts";

/** `IOMMU_HWPT_ALLOC_PASID` (1 << 3): a post-6.12 flag (6.15), unknown to 6.12. */
const HWPT_ALLOC_PASID_6_15 = 1 << 3;
/** `VFIO_DEVICE_ATTACH_PASID` / `VFIO_DEVICE_DETACH_PASID` (1 << 0), 6.15; 6.12 knows no flags. */
const DEVICE_PASID_FLAG_6_15 = 1 << 0;
/** The PASID the post-6.12 attach names. */
const SOME_PASID = 1;
/** A 4-level first-stage configuration (VT-d S1 data): address width 48. */
const S1_ADDR_WIDTH = 48;

interface HwptAllocArgs {
  readonly flags?: number;
  readonly ptId: number;
  readonly dataType?: number;
  readonly data?: Uint8Array;
}

/** IOMMU_HWPT_ALLOC; `data` is placed in mapped user memory. */
function hwptAlloc(
  t: ScenarioContext,
  label: string,
  iommufd: number,
  devId: number,
  a: HwptAllocArgs,
) {
  let uptr = 0n;
  if (a.data !== undefined) {
    const mem = t.mem(0x1000);
    mem.bytes.set(a.data);
    uptr = mem.address;
  }
  const arg = struct(iommu_hwpt_alloc, {
    size: iommu_hwpt_alloc.size,
    flags: a.flags ?? 0,
    dev_id: devId,
    pt_id: a.ptId,
    data_type: a.dataType ?? 0,
    data_len: a.data?.length ?? 0,
    data_uptr: uptr,
  });
  return t.ioctl(label, iommufd, IOMMU_HWPT_ALLOC, arg, {
    out: fieldsOf(iommu_hwpt_alloc, ["out_hwpt_id"]),
  });
}

const nestingWithoutSupport = scenario("iommufd/nesting-pasid-unsupported", {
  paths: ["iommufd"],
  needs: ["cdev"],
}, (t) => {
  const s = iommufdSession(t, true);
  const s1 = encode(iommu_hwpt_vtd_s1, { pgtbl_addr: 0x10000n, addr_width: S1_ADDR_WIDTH });
  const paging = hwptAlloc(t, "HWPT_ALLOC paging over the IOAS", s.iommufd, s.devid, {
    ptId: s.ioas,
  });
  t.expect(paging, { ret: 0 });
  const pagingId = typeof paging.out?.out_hwpt_id === "number" ? paging.out.out_hwpt_id : -1;
  t.expect(
    hwptAlloc(t, "HWPT_ALLOC NEST_PARENT", s.iommufd, s.devid, {
      ptId: s.ioas,
      flags: IOMMU_HWPT_ALLOC_NEST_PARENT,
    }),
    { errno: "EOPNOTSUPP" },
  );
  t.expect(
    hwptAlloc(t, "HWPT_ALLOC DIRTY_TRACKING", s.iommufd, s.devid, {
      ptId: s.ioas,
      flags: IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
    }),
    { errno: "EOPNOTSUPP" },
  );
  t.expect(
    hwptAlloc(t, "HWPT_ALLOC with the 6.15 PASID flag", s.iommufd, s.devid, {
      ptId: s.ioas,
      flags: HWPT_ALLOC_PASID_6_15,
    }),
    { errno: "EOPNOTSUPP" },
  );
  t.expect(
    hwptAlloc(t, "HWPT_ALLOC VTD_S1 data over the IOAS", s.iommufd, s.devid, {
      ptId: s.ioas,
      dataType: IOMMU_HWPT_DATA_VTD_S1,
      data: s1,
    }),
    { errno: "EOPNOTSUPP" },
  );
  t.expect(
    hwptAlloc(
      t,
      "HWPT_ALLOC nested over a paging HWPT that is no nest parent",
      s.iommufd,
      s.devid,
      {
        ptId: pagingId,
        dataType: IOMMU_HWPT_DATA_VTD_S1,
        data: s1,
      },
    ),
    { errno: t.env.iommu.nestedOverPlainParent },
  );
  t.expect(
    hwptAlloc(t, "HWPT_ALLOC nested without data", s.iommufd, s.devid, { ptId: pagingId }),
    { errno: "EOPNOTSUPP" },
  );

  const mem = t.mem(0x1000);
  mem.bytes.set(encode(iommu_hwpt_vtd_s1_invalidate, { addr: 0n, npages: 1n }));
  const invalidate = (label: string, hwptId: number, entryNum: number) =>
    t.ioctl(
      label,
      s.iommufd,
      IOMMU_HWPT_INVALIDATE,
      struct(iommu_hwpt_invalidate, {
        size: iommu_hwpt_invalidate.size,
        hwpt_id: hwptId,
        data_uptr: mem.address,
        data_type: IOMMU_HWPT_INVALIDATE_DATA_VTD_S1,
        entry_len: iommu_hwpt_vtd_s1_invalidate.size,
        entry_num: entryNum,
      }),
      { out: fieldsOf(iommu_hwpt_invalidate, ["entry_num"]) },
    );
  t.expect(invalidate("HWPT_INVALIDATE a paging HWPT", pagingId, 1), { errno: "ENOENT" });
  t.expect(invalidate("HWPT_INVALIDATE the auto HWPT, entry_num 0", s.hwpt, 0), {
    errno: "ENOENT",
  });
  t.expect(invalidate("HWPT_INVALIDATE the IOAS", s.ioas, 1), { errno: "ENOENT" });

  const dirty = (label: string, hwptId: number, flags: number) =>
    t.ioctl(
      label,
      s.iommufd,
      IOMMU_HWPT_SET_DIRTY_TRACKING,
      struct(iommu_hwpt_set_dirty_tracking, { size: 16, flags, hwpt_id: hwptId }),
    );
  t.expect(dirty("SET_DIRTY_TRACKING enable on a HWPT without dirty ops", pagingId, 1), {
    errno: "EOPNOTSUPP",
  });
  t.expect(dirty("SET_DIRTY_TRACKING on the IOAS", s.ioas, 1), { errno: "ENOENT" });
  t.expect(dirty("SET_DIRTY_TRACKING unknown flag", pagingId, 2), { errno: "EOPNOTSUPP" });

  const pasidAttach = new Uint8Array(16);
  const view = new DataView(pasidAttach.buffer);
  view.setUint32(0, 16, true);
  view.setUint32(4, DEVICE_PASID_FLAG_6_15, true);
  view.setUint32(8, pagingId, true);
  view.setUint32(12, SOME_PASID, true);
  t.expect(
    t.ioctl(
      "ATTACH_IOMMUFD_PT with the 6.15 PASID flag",
      s.device,
      VFIO_DEVICE_ATTACH_IOMMUFD_PT,
      pasidAttach,
    ),
    { errno: "EINVAL" },
  );
  const pasidDetach = new Uint8Array(12);
  const dview = new DataView(pasidDetach.buffer);
  dview.setUint32(0, 12, true);
  dview.setUint32(4, DEVICE_PASID_FLAG_6_15, true);
  dview.setUint32(8, SOME_PASID, true);
  t.expect(
    t.ioctl(
      "DETACH_IOMMUFD_PT with the 6.15 PASID flag",
      s.device,
      VFIO_DEVICE_DETACH_IOMMUFD_PT,
      pasidDetach,
    ),
    { errno: "EINVAL" },
  );
});

/** The guest StreamID the vDEVICE allocation names. */
const SOME_VSID = 0x10n;
/** Records of the vEVENTQ the 6.15 allocation asks for. */
const SOME_VEVENTQ_DEPTH = 16;

/**
 * The 6.13 vIOMMU uAPI (SMMUv3 nesting) and 6.15's vEVENTQ on a 6.12 kernel: the ioctl numbers are
 * unknown (ENOTTY, before any argument is read), the SMMUv3 data types are refused as unsupported,
 * and HWPT_INVALIDATE on an IOAS id is ENOENT (6.13 makes that EINVAL, a vIOMMU id being valid
 * there).
 */
const viommuWithoutSupport = scenario("iommufd/viommu-unsupported", {
  paths: ["iommufd"],
  needs: ["cdev"],
}, (t) => {
  const s = iommufdSession(t, true);
  const paging = hwptAlloc(t, "HWPT_ALLOC paging over the IOAS", s.iommufd, s.devid, {
    ptId: s.ioas,
  });
  t.expect(paging, { ret: 0 });
  const pagingId = typeof paging.out?.out_hwpt_id === "number" ? paging.out.out_hwpt_id : -1;
  t.expect(
    t.ioctl(
      "VIOMMU_ALLOC ARM_SMMUV3 over the paging HWPT",
      s.iommufd,
      IOMMU_VIOMMU_ALLOC,
      struct(iommu_viommu_alloc, {
        size: iommu_viommu_alloc.size,
        type: IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
        dev_id: s.devid,
        hwpt_id: pagingId,
      }),
    ),
    { errno: "ENOTTY" },
  );
  t.expect(
    t.ioctl(
      "VDEVICE_ALLOC",
      s.iommufd,
      IOMMU_VDEVICE_ALLOC,
      struct(iommu_vdevice_alloc, {
        size: iommu_vdevice_alloc.size,
        viommu_id: pagingId,
        dev_id: s.devid,
        virt_id: SOME_VSID,
      }),
    ),
    { errno: "ENOTTY" },
  );
  t.expect(
    t.ioctl(
      "VEVENTQ_ALLOC ARM_SMMUV3 (6.15)",
      s.iommufd,
      IOMMU_VEVENTQ_ALLOC,
      struct(iommu_veventq_alloc, {
        size: iommu_veventq_alloc.size,
        viommu_id: pagingId,
        type: IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
        veventq_depth: SOME_VEVENTQ_DEPTH,
      }),
    ),
    { errno: "ENOTTY" },
  );
  t.expect(
    hwptAlloc(t, "HWPT_ALLOC ARM_SMMUV3 data over the IOAS", s.iommufd, s.devid, {
      ptId: s.ioas,
      dataType: IOMMU_HWPT_DATA_ARM_SMMUV3,
      data: new Uint8Array(iommu_hwpt_arm_smmuv3.size),
    }),
    { errno: "EOPNOTSUPP" },
  );
  const cmds = t.mem(0x1000);
  t.expect(
    t.ioctl(
      "HWPT_INVALIDATE with SMMUv3 commands on the IOAS",
      s.iommufd,
      IOMMU_HWPT_INVALIDATE,
      struct(iommu_hwpt_invalidate, {
        size: iommu_hwpt_invalidate.size,
        hwpt_id: s.ioas,
        data_uptr: cmds.address,
        data_type: IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3,
        entry_len: iommu_viommu_arm_smmuv3_invalidate.size,
        entry_num: 1,
      }),
      { out: fieldsOf(iommu_hwpt_invalidate, ["entry_num"]) },
    ),
    { errno: "ENOENT" },
  );
});

/** Every nesting and PASID scenario. */
export const NESTING_SCENARIOS: readonly ScenarioDef[] = [
  nestingWithoutSupport,
  viommuWithoutSupport,
];
