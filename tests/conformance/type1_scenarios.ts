/**
 * The native VFIO type1 container: the errno table of shared/reference/vfio.md §3, §5, §6 and §8
 * (API version, extensions, SET_IOMMU, group status and SET_CONTAINER, GET_DEVICE_FD, GET_INFO with
 * its capability chain, MAP_DMA and UNMAP_DMA rows, unknown ioctls).
 *
 * @module
 */

import type { ErrnoName } from "../../ffi/errno.ts";
import { scenario, type ScenarioContext, type ScenarioDef } from "./scenario.ts";
import {
  BAD_FD,
  containerSession,
  cString,
  expectedRanges,
  fieldsOf,
  getDeviceFd,
  groupNode,
  mapDma,
  setContainer,
  setIommu,
  struct,
  type1GetInfo,
  U64_MAX,
  UNKNOWN_DEVICE,
  UNKNOWN_VFIO_IOCTL,
  unmapDma,
  UNMAPPED_VA,
} from "./steps.ts";
import {
  VFIO_CHECK_EXTENSION,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_VADDR,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP,
  VFIO_GET_API_VERSION,
  VFIO_GROUP_FLAGS_CONTAINER_SET,
  VFIO_GROUP_FLAGS_VIABLE,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_GET_STATUS,
  vfio_group_status,
  VFIO_GROUP_UNSET_CONTAINER,
  VFIO_SPAPR_TCE_IOMMU,
  VFIO_TYPE1_NESTING_IOMMU,
  VFIO_TYPE1v2_IOMMU,
} from "./uapi.ts";

const RW = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;

/** Extension ids probed, with their C names (11 and 1000 are unknown ids). */
const EXTENSION_IDS: readonly [number, string][] = [
  [1, "TYPE1"],
  [2, "SPAPR_TCE"],
  [3, "TYPE1v2"],
  [4, "DMA_CC"],
  [5, "EEH"],
  [6, "TYPE1_NESTING"],
  [7, "SPAPR_TCE_v2"],
  [8, "NOIOMMU"],
  [9, "UNMAP_ALL"],
  [10, "UPDATE_VADDR"],
  [11, "unknown 11"],
  [1000, "unknown 1000"],
];

/**
 * type1 CHECK_EXTENSION answers (vfio.md §3): with no IOMMU driver set every registered driver
 * is polled with no iommu (DMA_CC and UPDATE_VADDR are 0); once TYPE1v2 is set, DMA_CC is the
 * domain's enforced coherency and UPDATE_VADDR is 1. "cc" stands for the IOMMU's value.
 */
const EXTENSIONS_UNSET: readonly number[] = [1, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 0];
const EXTENSIONS_TYPE1V2: readonly (number | "cc")[] = [1, 0, 1, "cc", 0, 1, 0, 0, 1, 1, 0, 0];

function checkExtensions(
  t: ScenarioContext,
  container: number,
  stage: string,
  answers: readonly (number | "cc")[],
): void {
  EXTENSION_IDS.forEach(([id, name], i) => {
    const want = answers[i] === "cc" ? t.env.iommu.dmaCc : answers[i] as number;
    const obs = t.ioctl(`CHECK_EXTENSION(${name}) ${stage}`, container, VFIO_CHECK_EXTENSION, id);
    t.expect(obs, { ret: want });
  });
}

function groupStatus(t: ScenarioContext, label: string, group: number, argsz = 8) {
  const arg = struct(vfio_group_status, { argsz, flags: 0xff });
  return t.ioctl(label, group, VFIO_GROUP_GET_STATUS, arg, {
    out: fieldsOf(vfio_group_status, ["flags"]),
  });
}

const apiAndExtensions = scenario("type1/api-extensions-unknown-ioctls", {
  paths: ["type1"],
}, (t) => {
  const c = t.must(t.open("open /dev/vfio/vfio", "/dev/vfio/vfio"), { ret: "fd" }).raw;
  t.expect(t.ioctl("GET_API_VERSION", c, VFIO_GET_API_VERSION), { ret: 0 });
  checkExtensions(t, c, "fresh", EXTENSIONS_UNSET);
  t.expect(t.ioctl("unknown ioctl, no IOMMU driver", c, UNKNOWN_VFIO_IOCTL), { errno: "EINVAL" });
  t.expect(type1GetInfo(t, "GET_INFO, no IOMMU driver", c, 24), { errno: "EINVAL" });
  const g = t.must(t.open("open group", groupNode(t)), { ret: "fd" }).raw;
  t.must(setContainer(t, "SET_CONTAINER", g, c), { ret: 0 });
  checkExtensions(t, c, "group set", EXTENSIONS_UNSET);
  t.must(setIommu(t, "SET_IOMMU(TYPE1v2)", c, VFIO_TYPE1v2_IOMMU), { ret: 0 });
  checkExtensions(t, c, "TYPE1v2 set", EXTENSIONS_TYPE1V2);
  t.expect(t.ioctl("GET_API_VERSION with TYPE1v2", c, VFIO_GET_API_VERSION), { ret: 0 });
  t.expect(t.ioctl("unknown ioctl on type1 container", c, UNKNOWN_VFIO_IOCTL), { errno: "ENOTTY" });
  t.expect(t.ioctl("unknown ioctl on group", g, UNKNOWN_VFIO_IOCTL), { errno: "ENOTTY" });
  const d = t.must(getDeviceFd(t, "GET_DEVICE_FD", g, t.env.bdf), { ret: "fd" }).raw;
  t.expect(t.ioctl("unknown ioctl on device", d, UNKNOWN_VFIO_IOCTL), { errno: "ENOTTY" });
});

const groupAndSetIommu = scenario("type1/group-set-container-set-iommu", {
  paths: ["type1"],
}, (t) => {
  const c = t.must(t.open("open /dev/vfio/vfio", "/dev/vfio/vfio"), { ret: "fd" }).raw;
  t.expect(setIommu(t, "SET_IOMMU(TYPE1v2) without group", c, VFIO_TYPE1v2_IOMMU), {
    errno: "EINVAL",
  });
  const g = t.must(t.open("open group", groupNode(t)), { ret: "fd" }).raw;
  t.expect(t.open("open group a second time", groupNode(t)), { errno: "EBUSY" });
  t.expect(groupStatus(t, "GET_STATUS", g), {
    ret: 0,
    fields: { flags: VFIO_GROUP_FLAGS_VIABLE },
  });
  t.expect(groupStatus(t, "GET_STATUS argsz 7", g, 7), { errno: "EINVAL" });
  t.expect(getDeviceFd(t, "GET_DEVICE_FD without container", g, t.env.bdf), { errno: "EINVAL" });
  t.expect(getDeviceFd(t, "GET_DEVICE_FD unknown name", g, UNKNOWN_DEVICE), { errno: "ENODEV" });
  t.expect(t.ioctl("UNSET_CONTAINER, none set", g, VFIO_GROUP_UNSET_CONTAINER), {
    errno: "EINVAL",
  });
  t.expect(setContainer(t, "SET_CONTAINER(bad fd)", g, BAD_FD), { errno: "EBADF" });
  const e = t.must(t.eventfd("eventfd"), { ret: "fd" }).raw;
  t.expect(setContainer(t, "SET_CONTAINER(eventfd)", g, e), { errno: "EBADFD" });
  t.expect(setContainer(t, "SET_CONTAINER", g, c), { ret: 0 });
  t.expect(groupStatus(t, "GET_STATUS with container", g), {
    ret: 0,
    fields: { flags: VFIO_GROUP_FLAGS_VIABLE | VFIO_GROUP_FLAGS_CONTAINER_SET },
  });
  t.expect(setContainer(t, "SET_CONTAINER again", g, c), { errno: "EINVAL" });
  t.expect(getDeviceFd(t, "GET_DEVICE_FD before SET_IOMMU", g, t.env.bdf), { errno: "EINVAL" });
  t.expect(setIommu(t, "SET_IOMMU(SPAPR_TCE)", c, VFIO_SPAPR_TCE_IOMMU), { errno: "ENODEV" });
  t.expect(setIommu(t, "SET_IOMMU(0x55)", c, 0x55), { errno: "ENODEV" });
  t.expect(setIommu(t, "SET_IOMMU(TYPE1v2)", c, VFIO_TYPE1v2_IOMMU), { ret: 0 });
  t.expect(setIommu(t, "SET_IOMMU(TYPE1v2) again", c, VFIO_TYPE1v2_IOMMU), { errno: "EINVAL" });
  t.expect(getDeviceFd(t, "GET_DEVICE_FD unknown name, IOMMU set", g, UNKNOWN_DEVICE), {
    errno: "ENODEV",
  });
  t.expect(
    t.ioctl("GET_DEVICE_FD empty name", g, VFIO_GROUP_GET_DEVICE_FD, cString(""), {
      returnsFd: true,
    }),
    { errno: "ENODEV" },
  );
  const d1 = getDeviceFd(t, "GET_DEVICE_FD", g, t.env.bdf);
  t.expect(d1, { ret: "fd" });
  const d2 = getDeviceFd(t, "GET_DEVICE_FD a second time", g, t.env.bdf);
  t.expect(d2, { ret: "fd" });
  t.expect(t.ioctl("UNSET_CONTAINER with devices open", g, VFIO_GROUP_UNSET_CONTAINER), {
    errno: "EBUSY",
  });
  if (d2.raw >= 0) t.close("close second device fd", d2.raw);
  if (d1.raw >= 0) t.close("close device fd", d1.raw);
  t.expect(t.ioctl("UNSET_CONTAINER", g, VFIO_GROUP_UNSET_CONTAINER), { ret: 0 });
  t.expect(groupStatus(t, "GET_STATUS after UNSET_CONTAINER", g), {
    ret: 0,
    fields: { flags: VFIO_GROUP_FLAGS_VIABLE },
  });
  t.expect(t.ioctl("UNSET_CONTAINER again", g, VFIO_GROUP_UNSET_CONTAINER), { errno: "EINVAL" });
  t.expect(setIommu(t, "SET_IOMMU after the last group left", c, VFIO_TYPE1v2_IOMMU), {
    errno: "EINVAL",
  });
});

const nesting = scenario("type1/set-iommu-nesting", { paths: ["type1"] }, (t) => {
  const c = t.must(t.open("open /dev/vfio/vfio", "/dev/vfio/vfio"), { ret: "fd" }).raw;
  const g = t.must(t.open("open group", groupNode(t)), { ret: "fd" }).raw;
  t.must(setContainer(t, "SET_CONTAINER", g, c), { ret: 0 });
  const want: ErrnoName | null = t.env.iommu.nestingSetIommu;
  t.expect(setIommu(t, "SET_IOMMU(TYPE1_NESTING)", c, VFIO_TYPE1_NESTING_IOMMU), { errno: want });
});

/** The native GET_INFO capability chain: MIGRATION (32), DMA_AVAIL (16), IOVA_RANGE (16+16n). */
function nativeInfoSize(t: ScenarioContext): number {
  return 24 + 32 + 16 + 16 + 16 * t.env.iommu.iovaRanges.length;
}

const getInfo = scenario("type1/get-info-capabilities", { paths: ["type1"] }, (t) => {
  const s = containerSession(t, { device: false });
  const pgsizes = t.env.iommu.pgsizes;
  const minPage = pgsizes & -pgsizes;
  const needed = nativeInfoSize(t);
  t.expect(type1GetInfo(t, "GET_INFO argsz 15", s.container, 15), { errno: "EINVAL" });
  t.expect(type1GetInfo(t, "GET_INFO argsz 16", s.container, 16, 0xee), {
    ret: 0,
    fields: { argsz: needed, flags: 3, iova_pgsizes: pgsizes, cap_offset: 0xeeeeeeee },
  });
  t.expect(type1GetInfo(t, "GET_INFO argsz 24", s.container, 24, 0xee), {
    ret: 0,
    fields: { argsz: needed, flags: 3, iova_pgsizes: pgsizes, cap_offset: 0, caps: [] },
  });
  const full = needed + 40;
  const n = t.env.iommu.iovaRanges.length;
  t.expect(type1GetInfo(t, "GET_INFO full", s.container, full), {
    ret: 0,
    fields: {
      argsz: full,
      flags: 3,
      iova_pgsizes: pgsizes,
      cap_offset: 24,
      caps: ["MIGRATION", "DMA_AVAIL", "IOVA_RANGE"],
      "MIGRATION.offset": 24,
      "MIGRATION.version": 1,
      "MIGRATION.next": 56,
      "MIGRATION.flags": 0,
      "MIGRATION.pgsize_bitmap": minPage,
      "MIGRATION.max_dirty_bitmap_size": 0x10000000n,
      "DMA_AVAIL.offset": 56,
      "DMA_AVAIL.version": 1,
      "DMA_AVAIL.next": 72,
      "DMA_AVAIL.avail": 65535,
      "IOVA_RANGE.offset": 72,
      "IOVA_RANGE.version": 1,
      "IOVA_RANGE.next": 0,
      "IOVA_RANGE.nr_iovas": n,
      "IOVA_RANGE.ranges": expectedRanges(t),
    },
  });
  t.expect(type1GetInfo(t, "GET_INFO exact size", s.container, needed), {
    ret: 0,
    fields: { argsz: needed, cap_offset: 24 },
  });
  const mem = t.mem(0x1000);
  t.must(
    mapDma(t, "MAP_DMA one page", s.container, {
      flags: RW,
      vaddr: mem.address,
      iova: 0x100000n,
      size: 0x1000n,
    }),
    { ret: 0 },
  );
  t.expect(type1GetInfo(t, "GET_INFO with one mapping", s.container, full), {
    ret: 0,
    fields: { "DMA_AVAIL.avail": 65534 },
  });
  t.expect(unmapDma(t, "UNMAP_DMA the page", s.container, { iova: 0x100000n, size: 0x1000n }), {
    ret: 0,
    fields: { size: 0x1000n },
  });
  t.expect(type1GetInfo(t, "GET_INFO after unmap", s.container, full), {
    ret: 0,
    fields: { "DMA_AVAIL.avail": 65535 },
  });
});

const mapErrno = scenario("type1/map-dma-errno", { paths: ["type1"] }, (t) => {
  const s = containerSession(t, { device: false });
  const c = s.container;
  const mem = t.mem(0x10000);
  const va = mem.address;
  const rows: [string, Parameters<typeof mapDma>[3], ErrnoName][] = [
    ["argsz 31", { argsz: 31, flags: RW, vaddr: va, iova: 0x100000n, size: 0x1000n }, "EINVAL"],
    ["unknown flag 1<<3", { flags: RW | 8, vaddr: va, iova: 0x100000n, size: 0x1000n }, "EINVAL"],
    ["no READ/WRITE", { flags: 0, vaddr: va, iova: 0x100000n, size: 0x1000n }, "EINVAL"],
    ["VADDR|READ", {
      flags: VFIO_DMA_MAP_FLAG_VADDR | VFIO_DMA_MAP_FLAG_READ,
      vaddr: va,
      iova: 0x100000n,
      size: 0x1000n,
    }, "EINVAL"],
    ["size 0", { flags: RW, vaddr: va, iova: 0x100000n, size: 0n }, "EINVAL"],
    ["iova misaligned", { flags: RW, vaddr: va, iova: 0x100800n, size: 0x1000n }, "EINVAL"],
    [
      "vaddr misaligned",
      { flags: RW, vaddr: va + 0x800n, iova: 0x100000n, size: 0x1000n },
      "EINVAL",
    ],
    ["size misaligned", { flags: RW, vaddr: va, iova: 0x100000n, size: 0x1800n }, "EINVAL"],
    ["iova wraps", { flags: RW, vaddr: va, iova: U64_MAX - 0xfffn, size: 0x2000n }, "EINVAL"],
    [
      "vaddr wraps",
      { flags: RW, vaddr: U64_MAX - 0xfffn, iova: 0x100000n, size: 0x2000n },
      "EINVAL",
    ],
    ["VADDR, no mapping", {
      flags: VFIO_DMA_MAP_FLAG_VADDR,
      vaddr: va,
      iova: 0x100000n,
      size: 0x2000n,
    }, "ENOENT"],
  ];
  for (const [label, args, errno] of rows) {
    t.expect(mapDma(t, `MAP_DMA ${label}`, c, args), { errno });
  }
  t.expect(mapDma(t, "MAP_DMA A", c, { flags: RW, vaddr: va, iova: 0x100000n, size: 0x2000n }), {
    ret: 0,
  });
  const overlaps: [string, bigint, bigint][] = [
    ["same range", 0x100000n, 0x2000n],
    ["overlapping tail", 0x101000n, 0x2000n],
    ["covering", 0xff000n, 0x4000n],
  ];
  for (const [label, iova, size] of overlaps) {
    t.expect(mapDma(t, `MAP_DMA ${label}`, c, { flags: RW, vaddr: va + 0x4000n, iova, size }), {
      errno: "EEXIST",
    });
  }
  t.expect(
    mapDma(t, "MAP_DMA VADDR on a valid mapping", c, {
      flags: VFIO_DMA_MAP_FLAG_VADDR,
      vaddr: va,
      iova: 0x100000n,
      size: 0x2000n,
    }),
    { errno: "EINVAL" },
  );
  t.expect(
    mapDma(t, "MAP_DMA in the reserved (MSI) window", c, {
      flags: RW,
      vaddr: va,
      iova: t.env.iommu.reservedIova,
      size: 0x1000n,
    }),
    { errno: "EINVAL" },
  );
  const top = t.env.iommu.iovaRanges[t.env.iommu.iovaRanges.length - 1].end;
  if (top < U64_MAX) {
    t.expect(
      mapDma(t, "MAP_DMA above the last IOVA range", c, {
        flags: RW,
        vaddr: va,
        iova: top + 1n,
        size: 0x1000n,
      }),
      { errno: "EINVAL" },
    );
  }
  t.expect(
    mapDma(t, "MAP_DMA unmapped vaddr", c, {
      flags: RW,
      vaddr: UNMAPPED_VA,
      iova: 0x200000n,
      size: 0x1000n,
    }),
    { errno: "EFAULT" },
  );
  t.expect(
    mapDma(t, "MAP_DMA read-only B", c, {
      flags: VFIO_DMA_MAP_FLAG_READ,
      vaddr: va + 0x8000n,
      iova: 0x200000n,
      size: 0x1000n,
    }),
    { ret: 0 },
  );
  t.expect(
    unmapDma(t, "UNMAP_DMA all", c, { flags: VFIO_DMA_UNMAP_FLAG_ALL, iova: 0n, size: 0n }),
    {
      ret: 0,
      fields: { size: 0x3000n },
    },
  );
});

const unmapErrno = scenario("type1/unmap-dma-errno", { paths: ["type1"] }, (t) => {
  const s = containerSession(t, { device: false });
  const c = s.container;
  const mem = t.mem(0x10000);
  const va = mem.address;
  const maps: [bigint, bigint, bigint][] = [
    [0x100000n, 0x2000n, 0n],
    [0x110000n, 0x1000n, 0x2000n],
    [0x120000n, 0x1000n, 0x3000n],
  ];
  for (const [iova, size, off] of maps) {
    t.must(
      mapDma(t, `MAP_DMA 0x${iova.toString(16)}`, c, { flags: RW, vaddr: va + off, iova, size }),
      {
        ret: 0,
      },
    );
  }
  const rows: [string, Parameters<typeof unmapDma>[3], ErrnoName][] = [
    ["argsz 23", { argsz: 23, iova: 0x100000n, size: 0x2000n }, "EINVAL"],
    ["unknown flag 1<<3", { flags: 8, iova: 0x100000n, size: 0x2000n }, "EINVAL"],
    ["DIRTY_BITMAP|ALL", {
      flags: VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP | VFIO_DMA_UNMAP_FLAG_ALL,
      iova: 0n,
      size: 0n,
    }, "EINVAL"],
    ["iova misaligned", { iova: 0x100800n, size: 0x1000n }, "EINVAL"],
    ["size 0", { iova: 0x100000n, size: 0n }, "EINVAL"],
    ["size misaligned", { iova: 0x100000n, size: 0x800n }, "EINVAL"],
    ["wraps", { iova: U64_MAX - 0xfffn, size: 0x2000n }, "EINVAL"],
    ["ALL with iova", { flags: VFIO_DMA_UNMAP_FLAG_ALL, iova: 0x100000n, size: 0n }, "EINVAL"],
    ["ALL with size", { flags: VFIO_DMA_UNMAP_FLAG_ALL, iova: 0n, size: 0x1000n }, "EINVAL"],
  ];
  for (const [label, args, errno] of rows) {
    t.expect(unmapDma(t, `UNMAP_DMA ${label}`, c, args), { errno });
  }
  // v2 never splits a mapping; on error the size is not copied back.
  t.expect(unmapDma(t, "UNMAP_DMA inside a mapping", c, { iova: 0x101000n, size: 0x1000n }), {
    errno: "EINVAL",
    fields: { size: 0x1000n },
  });
  t.expect(unmapDma(t, "UNMAP_DMA head of a mapping", c, { iova: 0x100000n, size: 0x1000n }), {
    errno: "EINVAL",
    fields: { size: 0x1000n },
  });
  t.expect(unmapDma(t, "UNMAP_DMA hole", c, { iova: 0x200000n, size: 0x1000n }), {
    ret: 0,
    fields: { size: 0n },
  });
  t.expect(unmapDma(t, "UNMAP_DMA exact", c, { iova: 0x100000n, size: 0x2000n }), {
    ret: 0,
    fields: { size: 0x2000n },
  });
  t.expect(
    unmapDma(t, "UNMAP_DMA two mappings and holes", c, { iova: 0x10f000n, size: 0x20000n }),
    {
      ret: 0,
      fields: { size: 0x2000n },
    },
  );
  t.must(mapDma(t, "MAP_DMA D", c, { flags: RW, vaddr: va, iova: 0x300000n, size: 0x3000n }), {
    ret: 0,
  });
  t.expect(
    unmapDma(t, "UNMAP_DMA ALL", c, { flags: VFIO_DMA_UNMAP_FLAG_ALL, iova: 0n, size: 0n }),
    {
      ret: 0,
      fields: { size: 0x3000n },
    },
  );
  t.expect(
    unmapDma(t, "UNMAP_DMA ALL, empty", c, { flags: VFIO_DMA_UNMAP_FLAG_ALL, iova: 0n, size: 0n }),
    {
      ret: 0,
      fields: { size: 0n },
    },
  );
});

/** Every native type1 scenario. */
export const TYPE1_SCENARIOS: readonly ScenarioDef[] = [
  apiAndExtensions,
  groupAndSetIommu,
  nesting,
  getInfo,
  mapErrno,
  unmapErrno,
];
