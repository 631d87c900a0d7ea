/**
 * The VFIO container API on both of its implementations: the native type1 container
 * (/dev/vfio/vfio) and the iommufd compat container (/dev/iommu given to SET_CONTAINER). One
 * scenario body runs on both paths; where Linux answers differently (shared/reference/iommufd.md
 * §9 against vfio.md §5–§8) the answer is a row of {@link CONTAINER_RULES}, not a branch.
 *
 * @module
 */

import { type Expectation, scenario, type ScenarioContext, type ScenarioDef } from "./scenario.ts";
import {
  containerNode,
  containerSession,
  expectedRanges,
  fieldsOf,
  getDeviceFd,
  groupNode,
  mapDma,
  setContainer,
  setIommu,
  struct,
  type1GetInfo,
  UNKNOWN_VFIO_IOCTL,
  unmapDma,
} from "./steps.ts";
import {
  IOMMU_VFIO_IOAS,
  iommu_vfio_ioas,
  VFIO_CHECK_EXTENSION,
  VFIO_DMA_CC_IOMMU,
  VFIO_DMA_MAP_FLAG_VADDR,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_DMA_UNMAP_FLAG_VADDR,
  VFIO_GET_API_VERSION,
  VFIO_IOMMU_DIRTY_PAGES,
  VFIO_IOMMU_DIRTY_PAGES_FLAG_START,
  VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP,
  vfio_iommu_type1_dirty_bitmap,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1v2_IOMMU,
} from "./uapi.ts";

const RW = 3;
/** Extension ids 1..10 in order. */
const EXTENSION_NAMES = [
  "TYPE1",
  "SPAPR_TCE",
  "TYPE1v2",
  "DMA_CC",
  "EEH",
  "TYPE1_NESTING",
  "SPAPR_TCE_v2",
  "NOIOMMU",
  "UNMAP_ALL",
  "UPDATE_VADDR",
];

/** Bytes each type1 info capability occupies in the chain (16 + 16 per range for IOVA_RANGE). */
const CAP_BYTES: Record<string, (ranges: number) => number> = {
  MIGRATION: () => 32,
  DMA_AVAIL: () => 16,
  IOVA_RANGE: (n) => 16 + 16 * n,
};

/** How one container implementation answers where the two differ. */
export interface ContainerRules {
  /** SET_IOMMU(TYPE1v2) on a container without a group. */
  readonly setIommuNoGroup: Expectation;
  /** CHECK_EXTENSION(DMA_CC) without a group (compat: no compat IOAS yet). */
  readonly dmaCcNoGroup: Expectation;
  /** CHECK_EXTENSION(DMA_CC) with the group but no device/domain yet. */
  readonly dmaCcGroupOnly: Expectation;
  /** An unknown ioctl on the container before SET_IOMMU. */
  readonly unknownIoctlNoIommu: Expectation;
  /** GET_INFO with the group set but before SET_IOMMU and before any device is open. */
  readonly getInfoGroupOnly: Expectation;
  /** UNMAP_DMA ALL before SET_IOMMU. */
  readonly unmapBeforeSetIommu: Expectation;
  /** GET_DEVICE_FD before SET_IOMMU. */
  readonly getDeviceFdBeforeSetIommu: Expectation;
  /** SET_IOMMU with an unknown type (0x55) once the group is attached. */
  readonly setIommuUnknownType: Expectation;
  /** SET_IOMMU(TYPE1v2) a second time. */
  readonly setIommuTwice: Expectation;
  /** CHECK_EXTENSION of ids 1..10 once set up ("cc": the IOMMU's DMA_CC answer). */
  readonly extensions: readonly (number | "cc")[];
  /** GET_INFO capabilities in chain order. */
  readonly infoCaps: readonly string[];
  /** DMA_AVAIL value on a fresh container. */
  readonly dmaAvail: number;
  /** GET_INFO with a larger argsz: "passed" (left alone) or "needed" (overwritten). */
  readonly infoArgsz: "passed" | "needed";
  /** MAP_DMA with neither READ nor WRITE, group set, no domain yet. */
  readonly mapNoRw: Expectation;
  /** UNMAP_DMA ALL right after that map. */
  readonly unmapNoRwArea: Expectation;
  /** MAP_DMA with only VADDR on an unmapped IOVA. */
  readonly mapVaddr: Expectation;
  /** UNMAP_DMA with VADDR on an empty range. */
  readonly unmapVaddr: Expectation;
  /** UNMAP_DMA of a range with no mapping. */
  readonly unmapEmpty: Expectation;
  /** DIRTY_PAGES with START|STOP. */
  readonly dirtyPagesTwoFlags: Expectation;
}

/** The two container implementations, per shared/reference/iommufd.md §9 and vfio.md. */
export const CONTAINER_RULES: Readonly<Record<"type1" | "compat", ContainerRules>> = {
  type1: {
    setIommuNoGroup: { errno: "EINVAL" },
    dmaCcNoGroup: { ret: 0 },
    dmaCcGroupOnly: { ret: 0 },
    unknownIoctlNoIommu: { errno: "EINVAL" },
    getInfoGroupOnly: { errno: "EINVAL" },
    unmapBeforeSetIommu: { errno: "EINVAL" },
    getDeviceFdBeforeSetIommu: { errno: "EINVAL" },
    setIommuUnknownType: { errno: "ENODEV" },
    setIommuTwice: { errno: "EINVAL" },
    extensions: [1, 0, 1, "cc", 0, 1, 0, 0, 1, 1],
    infoCaps: ["MIGRATION", "DMA_AVAIL", "IOVA_RANGE"],
    dmaAvail: 65535,
    infoArgsz: "passed",
    mapNoRw: { errno: "EINVAL" },
    unmapNoRwArea: { errno: "EINVAL" },
    mapVaddr: { errno: "ENOENT" },
    unmapVaddr: { ret: 0, fields: { size: 0n } },
    unmapEmpty: { ret: 0, fields: { size: 0n } },
    dirtyPagesTwoFlags: { errno: "EINVAL" },
  },
  compat: {
    setIommuNoGroup: { errno: "ENODEV" },
    dmaCcNoGroup: { errno: "ENODEV" },
    // vfio_compat.c iommufd_vfio_cc_iommu(): 1 unless some HWPT of the compat IOAS lacks it.
    dmaCcGroupOnly: { ret: 1 },
    unknownIoctlNoIommu: { errno: "ENOTTY" },
    // No domain yet: nothing reserved, page sizes folded from ULONG_MAX.
    getInfoGroupOnly: {
      ret: 0,
      fields: {
        iova_pgsizes: 0xfffffffffffff000n,
        "IOVA_RANGE.ranges": ["0x0-0xffffffffffffffff"],
      },
    },
    unmapBeforeSetIommu: { ret: 0, fields: { size: 0n } },
    getDeviceFdBeforeSetIommu: { ret: "fd" },
    setIommuUnknownType: { errno: "EINVAL" },
    setIommuTwice: { ret: 0 },
    extensions: [1, 0, 1, "cc", 0, 0, 0, 0, 1, 0],
    infoCaps: ["DMA_AVAIL", "IOVA_RANGE"],
    dmaAvail: 0xffffffff,
    infoArgsz: "needed",
    mapNoRw: { ret: 0 },
    unmapNoRwArea: { ret: 0, fields: { size: 0x1000n } },
    mapVaddr: { errno: "EINVAL" },
    unmapVaddr: { errno: "EINVAL" },
    // Success with size 0 (iommufd.md §9): only IOMMU_IOAS_UNMAP turns "nothing unmapped" into
    // ENOENT. Settled by the VM bench (Linux 6.12.117, arm64-smmuv3-iommufd).
    unmapEmpty: { ret: 0, fields: { size: 0n } },
    dirtyPagesTwoFlags: { errno: "ENOTTY" },
  },
};

function rules(t: ScenarioContext): ContainerRules {
  return CONTAINER_RULES[t.path === "compat" ? "compat" : "type1"];
}

const setupDifferences = scenario("container/setup-differences", {
  paths: ["type1", "compat"],
}, (t) => {
  const r = rules(t);
  const c = t.must(t.open("open container", containerNode(t)), { ret: "fd" }).raw;
  t.expect(t.ioctl("GET_API_VERSION", c, VFIO_GET_API_VERSION), { ret: 0 });
  t.expect(
    setIommu(t, "SET_IOMMU(TYPE1v2) without group", c, VFIO_TYPE1v2_IOMMU),
    r.setIommuNoGroup,
  );
  t.expect(
    t.ioctl("CHECK_EXTENSION(DMA_CC) without group", c, VFIO_CHECK_EXTENSION, VFIO_DMA_CC_IOMMU),
    r.dmaCcNoGroup,
  );
  t.expect(t.ioctl("unknown ioctl before SET_IOMMU", c, UNKNOWN_VFIO_IOCTL), r.unknownIoctlNoIommu);
  const g = t.must(t.open("open group", groupNode(t)), { ret: "fd" }).raw;
  t.must(setContainer(t, "SET_CONTAINER", g, c), { ret: 0 });
  t.expect(setContainer(t, "SET_CONTAINER again", g, c), { errno: "EINVAL" });
  t.expect(
    t.ioctl("CHECK_EXTENSION(DMA_CC) group only", c, VFIO_CHECK_EXTENSION, VFIO_DMA_CC_IOMMU),
    r.dmaCcGroupOnly,
  );
  t.expect(type1GetInfo(t, "GET_INFO group only", c, 512), r.getInfoGroupOnly);
  t.expect(
    unmapDma(t, "UNMAP_DMA ALL before SET_IOMMU", c, {
      flags: VFIO_DMA_UNMAP_FLAG_ALL,
      iova: 0n,
      size: 0n,
    }),
    r.unmapBeforeSetIommu,
  );
  // Before any domain exists, so the IOMMU driver's own checks cannot answer for the layer.
  const mem = t.mem(0x1000);
  t.expect(
    mapDma(t, "MAP_DMA without READ/WRITE, no domain", c, {
      flags: 0,
      vaddr: mem.address,
      iova: 0x100000n,
      size: 0x1000n,
    }),
    r.mapNoRw,
  );
  t.expect(
    unmapDma(t, "UNMAP_DMA ALL after it", c, {
      flags: VFIO_DMA_UNMAP_FLAG_ALL,
      iova: 0n,
      size: 0n,
    }),
    r.unmapNoRwArea,
  );
  let d = getDeviceFd(t, "GET_DEVICE_FD before SET_IOMMU", g, t.env.bdf);
  t.expect(d, r.getDeviceFdBeforeSetIommu);
  t.expect(setIommu(t, "SET_IOMMU(0x55)", c, 0x55), r.setIommuUnknownType);
  t.must(setIommu(t, "SET_IOMMU(TYPE1v2)", c, VFIO_TYPE1v2_IOMMU), { ret: 0 });
  t.expect(setIommu(t, "SET_IOMMU(TYPE1v2) again", c, VFIO_TYPE1v2_IOMMU), r.setIommuTwice);
  if (d.raw < 0) d = t.must(getDeviceFd(t, "GET_DEVICE_FD", g, t.env.bdf), { ret: "fd" });
  EXTENSION_NAMES.forEach((name, i) => {
    const want = r.extensions[i] === "cc" ? t.env.iommu.dmaCc : r.extensions[i] as number;
    t.expect(t.ioctl(`CHECK_EXTENSION(${name}) set up`, c, VFIO_CHECK_EXTENSION, i + 1), {
      ret: want,
    });
  });
  t.expect(t.ioctl("unknown ioctl, set up", c, UNKNOWN_VFIO_IOCTL), { errno: "ENOTTY" });
});

const getInfo = scenario("container/get-info-differences", { paths: ["type1", "compat"] }, (t) => {
  const r = rules(t);
  const s = containerSession(t);
  const n = t.env.iommu.iovaRanges.length;
  const offsets: number[] = [];
  let total = 24;
  for (const cap of r.infoCaps) {
    offsets.push(total);
    total += CAP_BYTES[cap](n);
  }
  t.expect(type1GetInfo(t, "GET_INFO argsz 24", s.container, 24), {
    ret: 0,
    fields: { argsz: total, flags: 3, iova_pgsizes: t.env.iommu.pgsizes, cap_offset: 0 },
  });
  const big = total + 64;
  const fields: Record<string, unknown> = {
    argsz: r.infoArgsz === "passed" ? big : total,
    flags: 3,
    iova_pgsizes: t.env.iommu.pgsizes,
    cap_offset: 24,
    caps: [...r.infoCaps],
    "DMA_AVAIL.avail": r.dmaAvail,
    "IOVA_RANGE.nr_iovas": n,
    "IOVA_RANGE.ranges": expectedRanges(t),
  };
  r.infoCaps.forEach((cap, i) => {
    fields[`${cap}.offset`] = offsets[i];
    fields[`${cap}.version`] = 1;
    fields[`${cap}.next`] = offsets[i + 1] ?? 0;
  });
  t.expect(type1GetInfo(t, "GET_INFO large argsz", s.container, big), {
    ret: 0,
    fields: fields as Expectation["fields"],
  });
});

const mapUnmap = scenario(
  "container/map-unmap-differences",
  { paths: ["type1", "compat"] },
  (t) => {
    const r = rules(t);
    const s = containerSession(t);
    const c = s.container;
    const mem = t.mem(0x4000);
    t.expect(
      mapDma(t, "MAP_DMA VADDR only", c, {
        flags: VFIO_DMA_MAP_FLAG_VADDR,
        vaddr: mem.address,
        iova: 0x400000n,
        size: 0x1000n,
      }),
      r.mapVaddr,
    );
    t.expect(
      unmapDma(t, "UNMAP_DMA VADDR on an empty range", c, {
        flags: VFIO_DMA_UNMAP_FLAG_VADDR,
        iova: 0x800000n,
        size: 0x1000n,
      }),
      r.unmapVaddr,
    );
    t.expect(
      unmapDma(t, "UNMAP_DMA empty range", c, { iova: 0x800000n, size: 0x1000n }),
      r.unmapEmpty,
    );
    const dirty = struct(vfio_iommu_type1_dirty_bitmap, {
      argsz: 8,
      flags: VFIO_IOMMU_DIRTY_PAGES_FLAG_START | VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP,
    });
    t.expect(
      t.ioctl("DIRTY_PAGES START|STOP", c, VFIO_IOMMU_DIRTY_PAGES, dirty),
      r.dirtyPagesTwoFlags,
    );
    t.expect(
      mapDma(t, "MAP_DMA read/write", c, {
        flags: RW,
        vaddr: mem.address,
        iova: 0x100000n,
        size: 0x2000n,
      }),
      { ret: 0 },
    );
    t.expect(
      mapDma(t, "MAP_DMA overlap", c, {
        flags: RW,
        vaddr: mem.address,
        iova: 0x101000n,
        size: 0x2000n,
      }),
      { errno: "EEXIST" },
    );
    t.expect(
      mapDma(t, "MAP_DMA reserved window", c, {
        flags: RW,
        vaddr: mem.address,
        iova: t.env.iommu.reservedIova,
        size: 0x1000n,
      }),
      { errno: "EINVAL" },
    );
    t.expect(unmapDma(t, "UNMAP_DMA exact", c, { iova: 0x100000n, size: 0x2000n }), {
      ret: 0,
      fields: { size: 0x2000n },
    });
  },
);

/** Partial unmaps per path and type1 version (native v1 walks, v2 refuses; compat v1 cuts). */
interface UnmapSemantics {
  readonly inside: Expectation;
  readonly head: Expectation;
  readonly rest: Expectation;
  readonly dirtyStart: Expectation;
}

const UNMAP_SEMANTICS: Readonly<Record<"type1" | "compat", Record<"v1" | "v2", UnmapSemantics>>> = {
  type1: {
    v1: {
      inside: { ret: 0, fields: { size: 0n } },
      head: { ret: 0, fields: { size: 0x2000n } },
      rest: { ret: 0, fields: { size: 0n } },
      dirtyStart: { errno: "EACCES" },
    },
    v2: {
      inside: { errno: "EINVAL", fields: { size: 0x1000n } },
      head: { errno: "EINVAL", fields: { size: 0x1000n } },
      rest: { ret: 0, fields: { size: 0x2000n } },
      dirtyStart: { ret: 0 },
    },
  },
  compat: {
    v1: {
      inside: { ret: 0, fields: { size: 0x1000n } },
      head: { ret: 0, fields: { size: 0x1000n } },
      rest: { ret: 0, fields: { size: 0n } },
      dirtyStart: { errno: "ENOTTY" },
    },
    v2: {
      inside: { errno: "ENOENT", fields: { size: 0n } },
      head: { errno: "ENOENT", fields: { size: 0n } },
      rest: { ret: 0, fields: { size: 0x2000n } },
      dirtyStart: { errno: "ENOTTY" },
    },
  },
};

function unmapSemantics(version: "v1" | "v2", type: number): ScenarioDef {
  return scenario(`container/unmap-semantics-${version}`, { paths: ["type1", "compat"] }, (t) => {
    const u = UNMAP_SEMANTICS[t.path === "compat" ? "compat" : "type1"][version];
    const s = containerSession(t, { type });
    const c = s.container;
    const mem = t.mem(0x2000);
    t.must(
      mapDma(t, "MAP_DMA 8 KiB", c, {
        flags: RW,
        vaddr: mem.address,
        iova: 0x100000n,
        size: 0x2000n,
      }),
      {
        ret: 0,
      },
    );
    t.expect(unmapDma(t, "UNMAP_DMA second page", c, { iova: 0x101000n, size: 0x1000n }), u.inside);
    t.expect(unmapDma(t, "UNMAP_DMA first page", c, { iova: 0x100000n, size: 0x1000n }), u.head);
    t.expect(
      unmapDma(t, "UNMAP_DMA ALL", c, { flags: VFIO_DMA_UNMAP_FLAG_ALL, iova: 0n, size: 0n }),
      u.rest,
    );
    const start = struct(vfio_iommu_type1_dirty_bitmap, {
      argsz: 8,
      flags: VFIO_IOMMU_DIRTY_PAGES_FLAG_START,
    });
    const stop = struct(vfio_iommu_type1_dirty_bitmap, {
      argsz: 8,
      flags: VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP,
    });
    const started = t.ioctl("DIRTY_PAGES START", c, VFIO_IOMMU_DIRTY_PAGES, start);
    t.expect(started, u.dirtyStart);
    if (started.raw === 0) {
      t.expect(t.ioctl("DIRTY_PAGES STOP", c, VFIO_IOMMU_DIRTY_PAGES, stop), { ret: 0 });
    }
  });
}

const vfioIoas = scenario("compat/vfio-ioas", { paths: ["compat"] }, (t) => {
  const c = t.must(t.open("open /dev/iommu", "/dev/iommu"), { ret: "fd" }).raw;
  const get = (label: string, extra: { op?: number; __reserved?: number } = {}) =>
    t.ioctl(label, c, IOMMU_VFIO_IOAS, struct(iommu_vfio_ioas, { size: 12, op: 0, ...extra }), {
      out: fieldsOf(iommu_vfio_ioas, ["ioas_id"]),
    });
  t.expect(get("IOMMU_VFIO_IOAS GET, none"), { errno: "ENODEV" });
  const g = t.must(t.open("open group", groupNode(t)), { ret: "fd" }).raw;
  t.must(setContainer(t, "SET_CONTAINER(iommufd)", g, c), { ret: 0 });
  t.expect(get("IOMMU_VFIO_IOAS GET"), { ret: 0, fields: { ioas_id: 1 } });
  t.expect(get("IOMMU_VFIO_IOAS op 3", { op: 3 }), { errno: "EOPNOTSUPP" });
  t.expect(get("IOMMU_VFIO_IOAS __reserved", { __reserved: 1 }), { errno: "EOPNOTSUPP" });
  t.expect(setIommu(t, "SET_IOMMU(TYPE1)", c, VFIO_TYPE1_IOMMU), { ret: 0 });
});

/** Every scenario of the container API on both implementations. */
export const COMPAT_SCENARIOS: readonly ScenarioDef[] = [
  setupDifferences,
  getInfo,
  mapUnmap,
  unmapSemantics("v1", VFIO_TYPE1_IOMMU),
  unmapSemantics("v2", VFIO_TYPE1v2_IOMMU),
  vfioIoas,
];
