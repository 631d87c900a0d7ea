/**
 * iommufd with the real device under test, where the selftests use a mock one:
 * tools/testing/selftests/vfio/vfio_iommufd_setup_test.c (bind, attach, detach, bad ids),
 * vfio_dma_mapping_test.c's `vfio_dma_map_limit_test` in iommufd mode (the last page of the last
 * usable range, and overflow), and iommufd.c's `alloc_hwpt` over the real IOMMU driver: an
 * explicitly allocated paging HWPT, whose aperture comes from the driver (`domainAperture` of the
 * expectation row: virtio-iommu finalises a domain's geometry only at its first attach).
 *
 * @module
 */

import { decode } from "../../ffi/uapi/layout.ts";
import { scenario, type ScenarioContext, type ScenarioDef } from "./scenario.ts";
import {
  attachPt,
  bindIommufd,
  destroy,
  expectedRanges,
  fieldsOf,
  idOf,
  IOAS_FIXED_RW,
  IOAS_RW,
  ioasAlloc,
  ioasMap,
  ioasUnmap,
  iommufdSession,
  iovaRanges,
  struct,
  U64_MAX,
} from "./steps.ts";
import {
  IOMMU_HWPT_ALLOC,
  iommu_hwpt_alloc,
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_IOAS_MAP,
  iommu_ioas_map,
  iommu_iova_range,
  VFIO_DEVICE_DETACH_IOMMUFD_PT,
  vfio_device_detach_iommufd_pt,
  VFIO_DEVICE_GET_INFO,
  vfio_device_info,
} from "./uapi.ts";

const RW = IOAS_RW;
const FIXED_RW = IOAS_FIXED_RW;

function hwptAlloc(
  t: ScenarioContext,
  label: string,
  fd: number,
  a: { flags?: number; dev_id: number; pt_id: number },
) {
  return t.ioctl(label, fd, IOMMU_HWPT_ALLOC, struct(iommu_hwpt_alloc, { size: 48, ...a }), {
    out: fieldsOf(iommu_hwpt_alloc, ["out_hwpt_id"]),
  });
}

function detach(t: ScenarioContext, label: string, device: number) {
  return t.ioctl(
    label,
    device,
    VFIO_DEVICE_DETACH_IOMMUFD_PT,
    struct(vfio_device_detach_iommufd_pt, { argsz: 8 }),
  );
}

const explicitHwpt = scenario(
  "iommufd/hwpt-alloc-explicit",
  { paths: ["iommufd"], needs: ["cdev"] },
  (t) => {
    const s = iommufdSession(t, false);
    const fd = s.iommufd;
    const mem = t.mem(0x1000);
    const base = { dev_id: s.devid, pt_id: s.ioas };
    t.expect(
      hwptAlloc(t, "HWPT_ALLOC flags ~NEST_PARENT", fd, {
        ...base,
        flags: ~IOMMU_HWPT_ALLOC_NEST_PARENT,
      }),
      {
        errno: "EOPNOTSUPP",
      },
    );
    t.expect(hwptAlloc(t, "HWPT_ALLOC unknown dev_id", fd, { dev_id: 99, pt_id: s.ioas }), {
      errno: "ENOENT",
    });
    // iommufd_hwpt_alloc turns a failed pt_id look-up into EINVAL.
    t.expect(hwptAlloc(t, "HWPT_ALLOC unknown pt_id", fd, { dev_id: s.devid, pt_id: 99 }), {
      errno: "EINVAL",
    });
    hwptAlloc(t, "HWPT_ALLOC NEST_PARENT", fd, { ...base, flags: IOMMU_HWPT_ALLOC_NEST_PARENT });
    hwptAlloc(t, "HWPT_ALLOC DIRTY_TRACKING", fd, {
      ...base,
      flags: IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
    });
    const alloc = hwptAlloc(t, "HWPT_ALLOC paging", fd, base);
    t.must(alloc, { ret: 0 });
    const hwpt = idOf(alloc, "out_hwpt_id");
    // virtio-iommu: the domain has no geometry before its first attach, so the IOAS keeps [0, 0].
    const empty = t.env.iommu.domainAperture === "first-attach";
    t.expect(iovaRanges(t, "IOVA_RANGES with the HWPT, before attach", fd, s.ioas, 8, mem), {
      ret: 0,
      ...(empty ? { fields: { ranges: ["0x0-0x0"] } } : {}),
    });
    t.expect(attachPt(t, "ATTACH the HWPT", s.device, hwpt), { ret: 0, fields: { pt_id: hwpt } });
    t.expect(iovaRanges(t, "IOVA_RANGES attached", fd, s.ioas, 8, mem), {
      ret: 0,
      fields: { ranges: empty ? ["0x0-0x0"] : expectedRanges(t) },
    });
    const va = t.mem(0x2000).address;
    t.expect(
      ioasMap(t, "IOAS_MAP fixed 0x100000", fd, {
        flags: FIXED_RW,
        ioas_id: s.ioas,
        user_va: va,
        length: 0x1000n,
        iova: 0x100000n,
      }),
      { errno: empty ? "EINVAL" : null },
    );
    const auto = struct(iommu_ioas_map, {
      size: 40,
      flags: RW,
      ioas_id: s.ioas,
      user_va: va,
      length: 0x1000n,
    });
    t.expect(t.ioctl("IOAS_MAP automatic IOVA", fd, IOMMU_IOAS_MAP, auto), {
      errno: empty ? "ENOSPC" : null,
    });
    t.expect(destroy(t, "DESTROY the attached HWPT", fd, hwpt), { errno: "EBUSY" });
    t.expect(ioasUnmap(t, "IOAS_UNMAP all", fd, { ioas_id: s.ioas, iova: 0n, length: U64_MAX }), {
      ret: 0,
    });
    t.expect(detach(t, "DETACH", s.device), { ret: 0 });
    t.expect(destroy(t, "DESTROY the HWPT", fd, hwpt), { ret: 0 });
    t.expect(iovaRanges(t, "IOVA_RANGES after DESTROY", fd, s.ioas, 8, mem), { ret: 0 });
    // Attaching the IOAS itself makes an automatic domain, finalised by its immediate attach.
    t.expect(attachPt(t, "ATTACH the IOAS (automatic HWPT)", s.device, s.ioas), { ret: 0 });
    t.expect(iovaRanges(t, "IOVA_RANGES with the automatic HWPT", fd, s.ioas, 8, mem), {
      ret: 0,
      fields: { ranges: expectedRanges(t) },
    });
  },
);

const mapLimit = scenario(
  "iommufd/dma-map-limit",
  { paths: ["iommufd"], needs: ["cdev"] },
  (t) => {
    const s = iommufdSession(t);
    const fd = s.iommufd;
    const page = BigInt(t.kernel.pageSize);
    const mem = t.mem(0x1000);
    const ranges = iovaRanges(t, "IOVA_RANGES", fd, s.ioas, 8, mem);
    t.must(ranges, { ret: 0 });
    const n = Number(ranges.out?.num_iovas ?? 1);
    const last = decode(iommu_iova_range, mem.bytes, 16 * Math.min(n - 1, 7)).last;
    const iova = last & ~(page - 1n);
    const buf = t.mem(2 * t.kernel.pageSize).address;
    const map = (label: string, at: bigint, length: bigint) =>
      ioasMap(t, `IOAS_MAP ${label}`, fd, {
        flags: FIXED_RW,
        ioas_id: s.ioas,
        user_va: buf,
        length,
        iova: at,
      });
    t.expect(map("the last page", iova, page), { ret: 0 });
    t.expect(
      ioasUnmap(t, "IOAS_UNMAP the last page", fd, { ioas_id: s.ioas, iova, length: page }),
      {
        ret: 0,
        fields: { length: page },
      },
    );
    t.expect(map("the last page again", iova, page), { ret: 0 });
    t.expect(ioasUnmap(t, "IOAS_UNMAP all", fd, { ioas_id: s.ioas, iova: 0n, length: U64_MAX }), {
      ret: 0,
      fields: { length: page },
    });
    const top = U64_MAX & ~(page - 1n);
    t.expect(map("2 pages at the top of 64 bits", top, 2n * page), { errno: "EOVERFLOW" });
    t.expect(
      ioasUnmap(t, "IOAS_UNMAP 2 pages at the top", fd, {
        ioas_id: s.ioas,
        iova: top,
        length: 2n * page,
      }),
      {
        errno: "EOVERFLOW",
      },
    );
  },
);

const cdevSetup = scenario(
  "iommufd/cdev-setup-selftest",
  { paths: ["iommufd"], needs: ["cdev"] },
  (t) => {
    const d = t.must(t.open("open cdev", t.env.cdev ?? "/nonexistent"), { ret: "fd" }).raw;
    const fd = t.must(t.open("open /dev/iommu", "/dev/iommu"), { ret: "fd" }).raw;
    const info = () => struct(vfio_device_info, { argsz: vfio_device_info.size });
    t.expect(t.ioctl("GET_INFO without bind", d, VFIO_DEVICE_GET_INFO, info()), {
      errno: "EINVAL",
    });
    t.expect(bindIommufd(t, "BIND_IOMMUFD iommufd -2", d, -2), { errno: "EINVAL" });
    t.expect(bindIommufd(t, "BIND_IOMMUFD", d, fd), { ret: 0 });
    t.expect(bindIommufd(t, "BIND_IOMMUFD repeated", d, fd), { errno: "EINVAL" });
    t.expect(t.ioctl("GET_INFO after bind", d, VFIO_DEVICE_GET_INFO, info()), { ret: 0 });
    t.expect(attachPt(t, "ATTACH pt_id UINT32_MAX", d, 0xffff_ffff), { errno: "ENOENT" });
    const ioas = idOf(t.must(ioasAlloc(t, "IOAS_ALLOC", fd), { ret: 0 }), "out_ioas_id");
    t.expect(attachPt(t, "ATTACH the IOAS", d, ioas), { ret: 0 });
    t.expect(detach(t, "DETACH", d), { ret: 0 });
  },
);

/** iommufd with the device under test, after the selftests. */
export const IOMMUFD_DEVICE_SCENARIOS: readonly ScenarioDef[] = [explicitHwpt, mapLimit, cdevSetup];
