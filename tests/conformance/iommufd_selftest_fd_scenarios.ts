/**
 * A bare /dev/iommu, as tools/testing/selftests/iommu/iommufd.c checks it in its `iommufd`
 * fixture (no IOAS, no device): `cmd_fail`, `cmd_length` (every 6.12 command's size rules),
 * `cmd_ex_fail`, `global_options`, and the VFIO-compat ioctls before any IOAS (`simple_ioctls`,
 * `unmap_cmd`, `map_cmd`, `info_cmd`, `set_iommu_cmd`, `vfio_ioas`).
 *
 * @module
 */

import { ioctlEncode } from "../../ffi/ioctl.ts";
import { scenario, type ScenarioDef } from "./scenario.ts";
import { destroy, fieldsOf, idOf, ioasAlloc, ioasOption, struct } from "./steps.ts";
import * as uapi from "./uapi.ts";
import {
  IOMMU_OPTION_HUGE_PAGES,
  IOMMU_OPTION_OP_GET,
  IOMMU_OPTION_OP_SET,
  IOMMU_OPTION_RLIMIT_MODE,
  IOMMU_VFIO_IOAS,
  iommu_vfio_ioas,
  IOMMU_VFIO_IOAS_CLEAR,
  IOMMU_VFIO_IOAS_GET,
  IOMMU_VFIO_IOAS_SET,
  VFIO_CHECK_EXTENSION,
  VFIO_GET_API_VERSION,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_MAP_DMA,
  vfio_iommu_type1_dma_map,
  vfio_iommu_type1_dma_unmap,
  vfio_iommu_type1_info,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_SET_IOMMU,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1v2_IOMMU,
} from "./uapi.ts";

/** The selftest's `MOCK_APERTURE_START`: only an IOVA here (no domain). */
const BASE_IOVA = 1n << 24n;

const cmdFail = scenario("iommufd/selftest-cmd-fail", { paths: ["iommufd"] }, (t) => {
  const fd = t.must(t.open("open /dev/iommu", "/dev/iommu"), { ret: "fd" }).raw;
  t.expect(destroy(t, "DESTROY id 0", fd, 0), { errno: "ENOENT" });
  t.expect(t.ioctl("DESTROY NULL", fd, uapi.IOMMU_DESTROY, 0), { errno: "EFAULT" });
  const unknown = ioctlEncode(t.kernel.ioctlArch, "none", 0x3b, 0x7f, 0);
  t.expect(t.ioctl("_IO(';', 0x7f)", fd, unknown, struct(uapi.iommu_destroy, { size: 8 })), {
    errno: "ENOTTY",
  });
  // cmd_ex_fail: a struct 8 bytes longer than the kernel's.
  const longer = (future: number, size: number) => {
    const b = new Uint8Array(16);
    b.set(struct(uapi.iommu_destroy, { size, id: 0 }));
    b[8] = future;
    return b;
  };
  t.expect(t.ioctl("DESTROY size 16", fd, uapi.IOMMU_DESTROY, longer(0, 16)), { errno: "ENOENT" });
  t.expect(t.ioctl("DESTROY size 16, future 1", fd, uapi.IOMMU_DESTROY, longer(1, 16)), {
    errno: "E2BIG",
  });
  t.expect(t.ioctl("DESTROY size 8, future 1", fd, uapi.IOMMU_DESTROY, longer(1, 8)), {
    errno: "ENOENT",
  });
  t.expect(t.ioctl("DESTROY size 7", fd, uapi.IOMMU_DESTROY, longer(1, 7)), { errno: "EINVAL" });
});

/** The structs `cmd_length` walks (Linux 6.12's list). */
const LENGTH_CHECKED: readonly [uapi.IoctlDecl, uapi.StructLayout][] = [
  [uapi.IOMMU_DESTROY, uapi.iommu_destroy],
  [uapi.IOMMU_GET_HW_INFO, uapi.iommu_hw_info],
  [uapi.IOMMU_HWPT_ALLOC, uapi.iommu_hwpt_alloc],
  [uapi.IOMMU_HWPT_INVALIDATE, uapi.iommu_hwpt_invalidate],
  [uapi.IOMMU_IOAS_ALLOC, uapi.iommu_ioas_alloc],
  [uapi.IOMMU_IOAS_IOVA_RANGES, uapi.iommu_ioas_iova_ranges],
  [uapi.IOMMU_IOAS_ALLOW_IOVAS, uapi.iommu_ioas_allow_iovas],
  [uapi.IOMMU_IOAS_MAP, uapi.iommu_ioas_map],
  [uapi.IOMMU_IOAS_COPY, uapi.iommu_ioas_copy],
  [uapi.IOMMU_IOAS_UNMAP, uapi.iommu_ioas_unmap],
  [uapi.IOMMU_OPTION, uapi.iommu_option],
  [uapi.IOMMU_VFIO_IOAS, uapi.iommu_vfio_ioas],
];

const cmdLength = scenario("iommufd/selftest-cmd-length", { paths: ["iommufd"] }, (t) => {
  const fd = t.must(t.open("open /dev/iommu", "/dev/iommu"), { ret: "fd" }).raw;
  for (const [decl, layout] of LENGTH_CHECKED) {
    const min = uapi.IOMMUFD_MIN_SIZE[decl.name];
    // The struct (all zero but size), then one extra byte.
    const call = (label: string, size: number, extra: number) => {
      const b = new Uint8Array(layout.size + 1);
      new DataView(b.buffer).setUint32(0, size, true);
      b[layout.size] = extra;
      return t.ioctl(`${decl.name} ${label}`, fd, decl, b);
    };
    t.expect(call(`size ${min - 1}`, min - 1, 0xff), { errno: "EINVAL" });
    t.expect(call(`size ${layout.size + 1}, extra 0xff`, layout.size + 1, 0xff), {
      errno: "E2BIG",
    });
    const exact = call(`size ${layout.size}`, layout.size, 0xff);
    t.expect(call(`size ${layout.size + 1}, extra 0`, layout.size + 1, 0), {
      ret: exact.ret,
      errno: exact.errno as never,
    });
  }
});

const globalOptions = scenario("iommufd/selftest-global-options", { paths: ["iommufd"] }, (t) => {
  const fd = t.must(t.open("open /dev/iommu", "/dev/iommu"), { ret: "fd" }).raw;
  const rlimit = (label: string, op: number, val64: bigint) =>
    ioasOption(t, `RLIMIT_MODE ${label}`, fd, { option_id: IOMMU_OPTION_RLIMIT_MODE, op, val64 });
  t.expect(rlimit("GET", IOMMU_OPTION_OP_GET, 1n), { ret: 0, fields: { val64: 0n } });
  t.expect(rlimit("SET 1 (root)", IOMMU_OPTION_OP_SET, 1n), { ret: 0 });
  t.expect(rlimit("SET 2", IOMMU_OPTION_OP_SET, 2n), { errno: "EINVAL" });
  t.expect(rlimit("GET after SET 1", IOMMU_OPTION_OP_GET, 2n), { ret: 0, fields: { val64: 1n } });
  t.expect(rlimit("SET 0", IOMMU_OPTION_OP_SET, 0n), { ret: 0 });
  const huge = (label: string, op: number) =>
    ioasOption(t, `HUGE_PAGES ${label}`, fd, { option_id: IOMMU_OPTION_HUGE_PAGES, op, val64: 0n });
  t.expect(huge("GET, object 0", IOMMU_OPTION_OP_GET), { errno: "ENOENT" });
  t.expect(huge("SET, object 0", IOMMU_OPTION_OP_SET), { errno: "ENOENT" });
});

const bareCompat = scenario("iommufd/selftest-compat-ioctls", { paths: ["iommufd"] }, (t) => {
  const fd = t.must(t.open("open /dev/iommu", "/dev/iommu"), { ret: "fd" }).raw;
  t.expect(t.ioctl("VFIO_GET_API_VERSION", fd, VFIO_GET_API_VERSION), { ret: 0 });
  t.expect(t.ioctl("CHECK_EXTENSION(TYPE1v2)", fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU), {
    ret: 1,
  });
  const buffer = t.mem(t.kernel.pageSize).address;
  const page = BigInt(t.kernel.pageSize);
  const unmap = (label: string, argsz: number, flags: number) =>
    t.ioctl(
      label,
      fd,
      VFIO_IOMMU_UNMAP_DMA,
      struct(vfio_iommu_type1_dma_unmap, { argsz, flags, iova: BASE_IOVA, size: page }),
    );
  t.expect(unmap("UNMAP_DMA argsz 1", 1, 0), { errno: "EINVAL" });
  t.expect(unmap("UNMAP_DMA flags 1<<31", 24, 1 << 31), { errno: "EINVAL" });
  t.expect(unmap("UNMAP_DMA without an IOAS", 24, 0), { errno: "ENODEV" });
  const map = (label: string, argsz: number, flags: number) =>
    t.ioctl(
      label,
      fd,
      VFIO_IOMMU_MAP_DMA,
      struct(vfio_iommu_type1_dma_map, {
        argsz,
        flags,
        vaddr: buffer,
        iova: BASE_IOVA,
        size: page,
      }),
    );
  t.expect(map("MAP_DMA argsz 1", 1, 0), { errno: "EINVAL" });
  t.expect(map("MAP_DMA flags 1<<31", 32, 1 << 31), { errno: "EINVAL" });
  t.expect(map("MAP_DMA without an IOAS", 32, 3), { errno: "ENODEV" });
  const info = (label: string, argsz: number) =>
    t.ioctl(label, fd, VFIO_IOMMU_GET_INFO, struct(vfio_iommu_type1_info, { argsz }));
  t.expect(info("GET_INFO argsz 1", 1), { errno: "EINVAL" });
  t.expect(info("GET_INFO without an IOAS", 24), { errno: "ENODEV" });
  t.expect(t.ioctl("SET_IOMMU(TYPE1v2) without an IOAS", fd, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), {
    errno: "ENODEV",
  });
  t.expect(t.ioctl("SET_IOMMU(TYPE1) without an IOAS", fd, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU), {
    errno: "ENODEV",
  });
  const vfioIoas = (label: string, op: number, ioasId = 0) =>
    t.ioctl(
      label,
      fd,
      IOMMU_VFIO_IOAS,
      struct(iommu_vfio_ioas, { size: 12, op, ioas_id: ioasId }),
      {
        out: fieldsOf(iommu_vfio_ioas, ["ioas_id"]),
      },
    );
  t.expect(vfioIoas("VFIO_IOAS GET, none", IOMMU_VFIO_IOAS_GET), { errno: "ENODEV" });
  t.expect(vfioIoas("VFIO_IOAS SET id 0", IOMMU_VFIO_IOAS_SET), { errno: "ENOENT" });
  const ioas = idOf(t.must(ioasAlloc(t, "IOAS_ALLOC", fd), { ret: 0 }), "out_ioas_id");
  t.expect(vfioIoas("VFIO_IOAS SET", IOMMU_VFIO_IOAS_SET, ioas), { ret: 0 });
  t.expect(vfioIoas("VFIO_IOAS GET", IOMMU_VFIO_IOAS_GET), { ret: 0, fields: { ioas_id: ioas } });
  t.expect(vfioIoas("VFIO_IOAS CLEAR", IOMMU_VFIO_IOAS_CLEAR), { ret: 0 });
  t.expect(vfioIoas("VFIO_IOAS GET after CLEAR", IOMMU_VFIO_IOAS_GET), { errno: "ENODEV" });
});

/** The selftest's checks of a bare /dev/iommu. */
export const IOMMUFD_SELFTEST_FD_SCENARIOS: readonly ScenarioDef[] = [
  cmdFail,
  cmdLength,
  globalOptions,
  bareCompat,
];
