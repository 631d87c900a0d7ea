/**
 * iommufd without a device, as tools/testing/selftests/iommu/iommufd.c checks it in its
 * `no_domain` variants (the `iommufd` and `iommufd_ioas` fixtures): command dispatch and sizes,
 * global options, IOAS areas, automatic IOVAs, copies, the huge-pages option, and the VFIO-compat
 * ioctls of a bare /dev/iommu. Every test of the file that needs the mock domain, the mock device
 * or the test access objects (`IOMMU_TEST_OP_MOCK_DOMAIN`, `…_CREATE_ACCESS`, the whole
 * `iommufd_mock_domain`, `iommufd_dirty_tracking` and `vfio_compat_mock_domain` fixtures) is
 * skipped: real devices stand in for the mock one in iommufd_scenarios.ts and
 * device_scenarios.ts. The selftest's `buffer` is 16 pages of anonymous memory here; IOVAs the
 * kernel chooses are recorded as facts (alignment, placement), never as numbers.
 *
 * @module
 */

import { decode } from "../../ffi/uapi/layout.ts";
import { scenario, type ScenarioContext, type ScenarioDef } from "./scenario.ts";
import {
  allowIovas,
  destroy,
  idOf,
  IOAS_FIXED_RW,
  IOAS_RW,
  ioasAlloc,
  ioasMap,
  ioasOption,
  ioasUnmap,
  struct,
  U64_MAX,
} from "./steps.ts";
import * as uapi from "./uapi.ts";
import {
  IOMMU_IOAS_COPY,
  iommu_ioas_copy,
  IOMMU_IOAS_MAP,
  iommu_ioas_map,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_OPTION_HUGE_PAGES,
  IOMMU_OPTION_OP_GET,
  IOMMU_OPTION_OP_SET,
} from "./uapi.ts";

const RW = IOAS_RW;
const FIXED_RW = IOAS_FIXED_RW;
/** The selftest's `MOCK_APERTURE_START`: only a base IOVA when there is no domain. */
const BASE_IOVA = 1n << 24n;
/** Pages in the selftest's `buffer`. */
const BUFFER_PAGES = 16;

/** /dev/iommu, one IOAS, and the selftest's buffer. */
function ioasFixture(t: ScenarioContext) {
  const fd = t.must(t.open("setup: open /dev/iommu", "/dev/iommu"), { ret: "fd" }).raw;
  const ioas = idOf(t.must(ioasAlloc(t, "setup: IOAS_ALLOC", fd), { ret: 0 }), "out_ioas_id");
  const page = BigInt(t.kernel.pageSize);
  const buffer = t.mem(BUFFER_PAGES * t.kernel.pageSize).address;
  return { fd, ioas, page, buffer };
}

/** IOAS_MAP at a fixed IOVA. */
function mapFixed(
  t: ScenarioContext,
  label: string,
  fd: number,
  ioas: number,
  a: { va: bigint; length: bigint; iova: bigint; flags?: number },
) {
  const flags = a.flags ?? FIXED_RW;
  return ioasMap(t, label, fd, {
    flags,
    ioas_id: ioas,
    user_va: a.va,
    length: a.length,
    iova: a.iova,
  });
}

/** IOAS_MAP with a kernel-chosen IOVA; returns the call and the IOVA (0 on failure). */
function mapAuto(
  t: ScenarioContext,
  label: string,
  fd: number,
  ioas: number,
  va: bigint,
  length: bigint,
) {
  const arg = struct(iommu_ioas_map, { size: 40, flags: RW, ioas_id: ioas, user_va: va, length });
  const obs = t.ioctl(label, fd, IOMMU_IOAS_MAP, arg);
  return { obs, iova: obs.raw === 0 ? decode(iommu_ioas_map, arg).iova : 0n };
}

/** `1 << (ffs(length) - 1)`: the alignment the selftest expects of an automatic IOVA. */
function lowestBit(length: bigint): bigint {
  return length & -length;
}

const destroyAreas = scenario("iommufd/selftest-ioas-destroy", { paths: ["iommufd"] }, (t) => {
  const { fd, ioas, page, buffer } = ioasFixture(t);
  t.expect(destroy(t, "DESTROY a fresh IOAS", fd, ioas), { ret: 0 });
  const second = idOf(t.must(ioasAlloc(t, "IOAS_ALLOC", fd), { ret: 0 }), "out_ioas_id");
  t.expect(
    mapFixed(t, "IOAS_MAP one page", fd, second, { va: buffer, length: page, iova: BASE_IOVA }),
    {
      ret: 0,
    },
  );
  t.expect(destroy(t, "DESTROY the IOAS with an area", fd, second), { ret: 0 });
  // ioas_area_auto_destroy: ten areas left for close() to free.
  const third = idOf(t.must(ioasAlloc(t, "IOAS_ALLOC third", fd), { ret: 0 }), "out_ioas_id");
  for (let i = 0n; i < 10n; i++) {
    t.expect(
      mapFixed(t, `IOAS_MAP page ${i}`, fd, third, {
        va: buffer,
        length: page,
        iova: BASE_IOVA + i * page,
      }),
      { ret: 0 },
    );
  }
  t.expect(t.close("close /dev/iommu with ten areas", fd), { ret: 0 });
});

const area = scenario("iommufd/selftest-area", { paths: ["iommufd"] }, (t) => {
  const { fd, ioas, page, buffer } = ioasFixture(t);
  const unmap = (label: string, iova: bigint, length: bigint) =>
    ioasUnmap(t, `IOAS_UNMAP ${label}`, fd, { ioas_id: ioas, iova, length });
  const map = (label: string, length: bigint, iova: bigint) =>
    mapFixed(t, `IOAS_MAP ${label}`, fd, ioas, { va: buffer, length, iova });
  for (let i = 0n; i < 10n; i++) {
    t.expect(unmap(`nothing at page ${i}`, i * page, page), { errno: "ENOENT" });
  }
  for (let i = 0n; i < 10n; i++) t.expect(map(`page ${i}`, page, BASE_IOVA + i * page), { ret: 0 });
  for (let i = 0n; i < 10n; i++) {
    t.expect(unmap(`page ${i}`, BASE_IOVA + i * page, page), { ret: 0, fields: { length: page } });
  }
  t.expect(map("two pages at 16", 2n * page, BASE_IOVA + 16n * page), { ret: 0 });
  t.expect(unmap("first half (split)", BASE_IOVA + 16n * page, page), { errno: "ENOENT" });
  t.expect(unmap("second half (split)", BASE_IOVA + 17n * page, page), { errno: "ENOENT" });
  const over: [string, bigint, bigint][] = [
    ["two pages at 16 again", 2n, 16n],
    ["one page at 16", 1n, 16n],
    ["one page at 17", 1n, 17n],
    ["two pages at 15", 2n, 15n],
    ["three pages at 15", 3n, 15n],
  ];
  for (const [label, n, at] of over) {
    t.expect(map(`over ${label}`, n * page, BASE_IOVA + at * page), { errno: "EEXIST" });
  }
  t.expect(unmap("all", 0n, U64_MAX), { ret: 0, fields: { length: 2n * page } });
  t.expect(unmap("all, empty", 0n, U64_MAX), { ret: 0, fields: { length: 0n } });
});

const fullyContained = scenario(
  "iommufd/selftest-unmap-fully-contained",
  { paths: ["iommufd"] },
  (t) => {
    const { fd, ioas, page, buffer } = ioasFixture(t);
    const base = BASE_IOVA + 4n * page;
    for (let i = 0n; i < 4n; i++) {
      t.expect(
        mapFixed(t, `IOAS_MAP 8 pages at ${16n * i}`, fd, ioas, {
          va: buffer,
          length: 8n * page,
          iova: base + i * 16n * page,
        }),
        { ret: 0 },
      );
    }
    const unmap = (label: string, iova: bigint, length: bigint) =>
      ioasUnmap(t, `IOAS_UNMAP ${label}`, fd, { ioas_id: ioas, iova, length });
    t.expect(unmap("straddling the first area's start", base - 4n * page, 8n * page), {
      errno: "ENOENT",
    });
    t.expect(unmap("straddling the last area's end", base + 52n * page, 8n * page), {
      errno: "ENOENT",
    });
    t.expect(unmap("covering all four", base - 4n * page, 60n * page), {
      ret: 0,
      fields: { length: 32n * page },
    });
  },
);

const autoIova = scenario("iommufd/selftest-area-auto-iova", { paths: ["iommufd"] }, (t) => {
  const { fd, ioas, page, buffer } = ioasFixture(t);
  const unmap = (label: string, iova: bigint, length: bigint) =>
    ioasUnmap(t, `IOAS_UNMAP ${label}`, fd, { ioas_id: ioas, iova, length });
  const simple = Array.from(
    { length: 10 },
    (_, i) => mapAuto(t, `IOAS_MAP page ${i}`, fd, ioas, buffer, page),
  );
  t.expect(
    t.note("simple IOVAs distinct", { distinct: new Set(simple.map((m) => m.iova)).size === 10 }),
    {
      fields: { distinct: true },
    },
  );
  simple.forEach((m, i) => t.expect(unmap(`page ${i}`, m.iova, page), { ret: 0 }));
  // No domain: nothing is pinned, so an address with nothing mapped there is accepted.
  const aligned: boolean[] = [];
  const sized: bigint[] = [];
  for (let i = 1n; i <= 10n; i++) {
    const m = mapAuto(t, `IOAS_MAP ${i} pages at VA 2 GiB`, fd, ioas, 1n << 31n, i * page);
    t.expect(m.obs, { ret: 0 });
    aligned.push(m.iova % lowestBit(i * page) === 0n);
    sized.push(m.iova);
  }
  // iopt_alloc_iova caps the alignment at HPAGE_SIZE with transparent huge pages, else at
  // PAGE_SIZE: only lengths whose lowest bit is within the cap are sure to be aligned to it.
  const cap = BigInt(t.env.hugePmdSize ?? t.kernel.pageSize);
  t.expect(t.note("IOVAs aligned to ffs(length)", { aligned }), {
    fields: { aligned: aligned.map((a, i) => lowestBit(BigInt(i + 1) * page) <= cap || a) },
  });
  sized.forEach((iova, i) =>
    t.expect(unmap(`${i + 1} pages`, iova, BigInt(i + 1) * page), { ret: 0 })
  );
  t.expect(
    allowIovas(t, "ALLOW_IOVAS [200, 600) pages", fd, ioas, [[200n * page, 600n * page - 1n]]),
    {
      ret: 0,
    },
  );
  const inside: boolean[] = [];
  for (let i = 1n; i <= 10n; i++) {
    const length = i * page;
    const m = mapAuto(t, `IOAS_MAP ${i} pages, allowed`, fd, ioas, buffer, length);
    t.expect(m.obs, { ret: 0 });
    inside.push(
      m.iova % lowestBit(length) === 0n && m.iova >= 200n * page && m.iova + length <= 600n * page,
    );
    t.expect(unmap(`${i} pages, allowed`, m.iova, length), { ret: 0 });
  }
  t.expect(t.note("IOVAs inside the allowed range", { inside }), {
    fields: { inside: inside.map(() => true) },
  });
});

function copy(
  t: ScenarioContext,
  label: string,
  fd: number,
  a: { flags?: number; dst: number; src: number; length: bigint; dstIova: bigint; srcIova: bigint },
) {
  const arg = struct(iommu_ioas_copy, {
    size: 40,
    flags: a.flags ?? IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE,
    dst_ioas_id: a.dst,
    src_ioas_id: a.src,
    length: a.length,
    dst_iova: a.dstIova,
    src_iova: a.srcIova,
  });
  return t.ioctl(label, fd, IOMMU_IOAS_COPY, arg);
}

const copyArea = scenario("iommufd/selftest-copy-area", { paths: ["iommufd"] }, (t) => {
  const { fd, ioas, page, buffer } = ioasFixture(t);
  t.expect(
    mapFixed(t, "IOAS_MAP one page", fd, ioas, { va: buffer, length: page, iova: BASE_IOVA }),
    {
      ret: 0,
    },
  );
  t.expect(
    copy(t, "COPY inside one IOAS", fd, {
      dst: ioas,
      src: ioas,
      length: page,
      dstIova: BASE_IOVA + page,
      srcIova: BASE_IOVA,
    }),
    { ret: 0 },
  );
  const other = idOf(t.must(ioasAlloc(t, "IOAS_ALLOC destination", fd), { ret: 0 }), "out_ioas_id");
  t.expect(
    copy(t, "COPY to another IOAS at 0", fd, {
      dst: other,
      src: ioas,
      length: page,
      dstIova: 0n,
      srcIova: BASE_IOVA,
    }),
    { ret: 0 },
  );
  t.expect(
    copy(t, "COPY onto the copy (EEXIST)", fd, {
      dst: other,
      src: ioas,
      length: page,
      dstIova: 0n,
      srcIova: BASE_IOVA,
    }),
    { errno: "EEXIST" },
  );
  t.expect(
    copy(t, "COPY from nothing", fd, {
      dst: other,
      src: ioas,
      length: page,
      dstIova: 8n * page,
      srcIova: 0n,
    }),
    { errno: "ENOENT" },
  );
  t.expect(
    copy(t, "COPY unknown flags", fd, {
      flags: 1 << 5,
      dst: other,
      src: ioas,
      length: page,
      dstIova: 8n * page,
      srcIova: BASE_IOVA,
    }),
    { errno: "EOPNOTSUPP" },
  );
  const auto = copy(t, "COPY with an automatic IOVA", fd, {
    flags: RW,
    dst: other,
    src: ioas,
    length: page,
    dstIova: 0n,
    srcIova: BASE_IOVA,
  });
  t.expect(auto, { ret: 0 });
  t.expect(
    copy(t, "COPY from an unknown IOAS", fd, {
      dst: other,
      src: 99,
      length: page,
      dstIova: 0n,
      srcIova: 0n,
    }),
    { errno: "ENOENT" },
  );
});

const copySweep = scenario("iommufd/selftest-copy-sweep", { paths: ["iommufd"] }, (t) => {
  const { fd, ioas, page, buffer } = ioasFixture(t);
  const dst = idOf(t.must(ioasAlloc(t, "IOAS_ALLOC destination", fd), { ret: 0 }), "out_ioas_id");
  const half = page / 2n; // the selftest's MOCK_PAGE_SIZE
  const last = BASE_IOVA + BigInt(BUFFER_PAGES) * page - 2n;
  t.expect(
    mapFixed(t, "IOAS_MAP buffer minus one byte", fd, ioas, {
      va: buffer,
      length: last - BASE_IOVA + 1n,
      iova: BASE_IOVA,
    }),
    { ret: 0 },
  );
  // One observation per step would be ~140; the sweep is recorded as one line of answers.
  const answers: string[] = [];
  let wrong = 0;
  for (let iova = BASE_IOVA - page; iova <= last; iova += 511n) {
    const arg = struct(iommu_ioas_copy, {
      size: 40,
      flags: IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE,
      dst_ioas_id: dst,
      src_ioas_id: ioas,
      length: half,
      dst_iova: BASE_IOVA,
      src_iova: iova,
    });
    const r = t.kernel.ioctl(fd, t.req(IOMMU_IOAS_COPY), arg);
    const outside = iova < BASE_IOVA || iova + half - 1n > last;
    answers.push(r === 0 ? "0" : String(-r));
    if ((r === 0) === outside) wrong++;
    if (r === 0) {
      const u = struct(uapi.iommu_ioas_unmap, {
        size: 24,
        ioas_id: dst,
        iova: BASE_IOVA,
        length: half,
      });
      if (t.kernel.ioctl(fd, t.req(uapi.IOMMU_IOAS_UNMAP), u) !== 0) wrong++;
    }
  }
  t.expect(t.note("COPY sweep (step 511 bytes)", { answers: answers.join(","), wrong }), {
    fields: { wrong: 0 },
  });
  t.expect(destroy(t, "DESTROY destination", fd, dst), { ret: 0 });
});

const hugePages = scenario("iommufd/selftest-option-huge-pages", { paths: ["iommufd"] }, (t) => {
  const { fd, ioas, page, buffer } = ioasFixture(t);
  const huge = (label: string, op: number, val64: bigint) =>
    ioasOption(t, `HUGE_PAGES ${label}`, fd, {
      option_id: IOMMU_OPTION_HUGE_PAGES,
      op,
      val64,
      object_id: ioas,
    });
  t.expect(huge("GET", IOMMU_OPTION_OP_GET, 3n), { ret: 0, fields: { val64: 1n } });
  t.expect(huge("SET 0", IOMMU_OPTION_OP_SET, 0n), { ret: 0 });
  t.expect(huge("GET after SET 0", IOMMU_OPTION_OP_GET, 3n), { ret: 0, fields: { val64: 0n } });
  t.expect(huge("SET 2", IOMMU_OPTION_OP_SET, 2n), { errno: "EINVAL" });
  t.expect(huge("SET 1", IOMMU_OPTION_OP_SET, 1n), { ret: 0 });
  // ioas_align_change (no domain).
  const half = page / 2n;
  const map = (label: string, va: bigint, iova: bigint) =>
    mapFixed(t, `IOAS_MAP ${label}`, fd, ioas, { va, length: page, iova });
  t.expect(map("aligned", buffer, BASE_IOVA), { ret: 0 });
  t.expect(huge("SET 0 with an aligned area", IOMMU_OPTION_OP_SET, 0n), { ret: 0 });
  t.expect(map("misaligned VA after SET 0", buffer + half, BASE_IOVA + page), { errno: "EINVAL" });
  t.expect(huge("SET 0 again", IOMMU_OPTION_OP_SET, 0n), { ret: 0 });
  t.expect(huge("SET 1 (reduce alignment)", IOMMU_OPTION_OP_SET, 1n), { ret: 0 });
  t.expect(map("misaligned VA after SET 1", buffer + half, BASE_IOVA + page), { ret: 0 });
  t.expect(huge("SET 0 with a misaligned area", IOMMU_OPTION_OP_SET, 0n), { errno: "EADDRINUSE" });
  const unmap = (label: string, iova: bigint) =>
    ioasUnmap(t, `IOAS_UNMAP ${label}`, fd, { ioas_id: ioas, iova, length: page });
  t.expect(unmap("misaligned", BASE_IOVA + page), { ret: 0 });
  t.expect(unmap("aligned", BASE_IOVA), { ret: 0 });
});

const iovaAlloc = scenario("iommufd/selftest-iova-alloc", { paths: ["iommufd"] }, (t) => {
  const { fd, ioas, page, buffer } = ioasFixture(t);
  // The selftest maps every length from 1 to 2 pages - 1; these are its edges.
  for (const length of [1n, 2n, page / 2n - 1n, page - 1n, page, page + 1n, 2n * page - 1n]) {
    const m = mapAuto(t, `IOAS_MAP length ${length}`, fd, ioas, buffer, length);
    t.expect(m.obs, { ret: 0 });
    t.expect(
      ioasUnmap(t, `IOAS_UNMAP length ${length}`, fd, { ioas_id: ioas, iova: m.iova, length }),
      {
        ret: 0,
        fields: { length },
      },
    );
  }
});

/** The iommufd selftest's device-less checks. */
export const IOMMUFD_SELFTEST_SCENARIOS: readonly ScenarioDef[] = [
  destroyAreas,
  area,
  fullyContained,
  autoIova,
  copyArea,
  copySweep,
  hugePages,
  iovaAlloc,
];
