/**
 * The VFIO container API (native type1 and iommufd's compat container) as the selftests drive
 * it, with the real device where they use a mock one: vfio_dma_mapping_test.c's
 * `vfio_dma_map_limit_test` (the last page of the last IOVA range, UNMAP of a range and of all,
 * overflow) and iommufd.c's `vfio_compat_mock_domain` tests `get_info` (every argsz from the bare
 * struct to the full capability chain, nothing written past argsz), `map` (single pages unmapped
 * in a shuffled order, UNMAP_FLAG_ALL needs iova and size 0) and `huge_map` (type1 v1 may cut a
 * mapping up, v2 may not).
 *
 * @module
 */

import { decode } from "../../ffi/uapi/layout.ts";
import { scenario, type ScenarioContext, type ScenarioDef, type VfioPath } from "./scenario.ts";
import { containerSession, mapDma, struct, type1InfoCaps, unmapDma } from "./steps.ts";
import {
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_INFO_CAPS,
  VFIO_IOMMU_INFO_PGSIZES,
  vfio_iommu_type1_info,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1v2_IOMMU,
} from "./uapi.ts";

const CONTAINER_PATHS: readonly VfioPath[] = ["type1", "compat"];
const RW = 3;
const U64_MAX = (1n << 64n) - 1n;
/** A fixed order of 16 page indexes, standing in for the selftest's `shuffle_array`. */
const SHUFFLED = [11, 3, 14, 0, 7, 9, 1, 15, 5, 12, 2, 8, 13, 6, 10, 4];
/** What the selftest fills the buffer with past argsz. */
const FILL = 0xaa;

/** GET_INFO into a buffer of `argsz` plus slack, without recording (for a sweep). */
function rawInfo(
  t: ScenarioContext,
  container: number,
  argsz: number,
): { r: number; arg: Uint8Array } {
  const arg = new Uint8Array(Math.max(argsz, vfio_iommu_type1_info.size) + 256).fill(FILL);
  arg.set(struct(vfio_iommu_type1_info, { argsz }).subarray(0, 4));
  arg.fill(0, 4, argsz);
  return { r: t.kernel.ioctl(container, t.req(VFIO_IOMMU_GET_INFO), arg), arg };
}

const mapLimit = scenario("container/dma-map-limit", { paths: CONTAINER_PATHS }, (t) => {
  const { container: c } = containerSession(t);
  const page = BigInt(t.kernel.pageSize);
  const { r, arg } = rawInfo(t, c, 4096);
  const ranges = (r === 0 ? type1InfoCaps(arg)["IOVA_RANGE.ranges"] : []) as string[];
  const lastRange = ranges.at(-1) ?? "0x0-0x0";
  const last = BigInt(lastRange.split("-")[1]);
  t.note("last IOVA range", { range: lastRange });
  const iova = last & ~(page - 1n);
  const vaddr = t.mem(2 * t.kernel.pageSize).address;
  t.expect(mapDma(t, "MAP_DMA the last page", c, { flags: RW, vaddr, iova, size: page }), {
    ret: 0,
  });
  t.expect(unmapDma(t, "UNMAP_DMA the last page", c, { iova, size: page }), {
    ret: 0,
    fields: { size: page },
  });
  t.expect(mapDma(t, "MAP_DMA the last page again", c, { flags: RW, vaddr, iova, size: page }), {
    ret: 0,
  });
  t.expect(
    unmapDma(t, "UNMAP_DMA ALL", c, { flags: VFIO_DMA_UNMAP_FLAG_ALL, iova: 0n, size: 0n }),
    { ret: 0, fields: { size: page } },
  );
  const top = U64_MAX & ~(page - 1n);
  mapDma(t, "MAP_DMA 2 pages at the top of 64 bits", c, {
    flags: RW,
    vaddr,
    iova: top,
    size: 2n * page,
  });
  unmapDma(t, "UNMAP_DMA 2 pages at the top of 64 bits", c, { iova: top, size: 2n * page });
});

const infoSweep = scenario("container/get-info-argsz-sweep", { paths: CONTAINER_PATHS }, (t) => {
  const { container: c } = containerSession(t);
  const bare = 16; // offsetof(cap_offset): the pre-capability ABI
  const first = rawInfo(t, c, bare);
  const head = (arg: Uint8Array) => decode(vfio_iommu_type1_info, arg);
  t.expect(
    t.note("GET_INFO argsz 16", {
      ret: first.r,
      flags: head(first.arg).flags,
      pgsizesNonZero: head(first.arg).iova_pgsizes !== 0n,
      untouched: first.arg.subarray(bare).every((b) => b === FILL),
    }),
    { fields: { ret: 0, flags: VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS, untouched: true } },
  );
  const sizing = rawInfo(t, c, vfio_iommu_type1_info.size);
  const full = head(sizing.arg).argsz;
  t.expect(
    t.note("GET_INFO argsz 24 (sizing)", {
      ret: sizing.r,
      capOffset: head(sizing.arg).cap_offset,
      fullArgszLarger: full > vfio_iommu_type1_info.size,
    }),
    { fields: { ret: 0, capOffset: 0, fullArgszLarger: true } },
  );
  // Every argsz up to the full chain: flags always set, nothing written past argsz, and a chain
  // (when there is one) that stays inside argsz.
  const problems: string[] = [];
  let withCaps = 0;
  for (let argsz = vfio_iommu_type1_info.size; argsz < full; argsz++) {
    const { r, arg } = rawInfo(t, c, argsz);
    const h = head(arg);
    if (r !== 0) problems.push(`${argsz}: ${r}`);
    if (h.flags !== (VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS)) {
      problems.push(`${argsz}: flags`);
    }
    if (!arg.subarray(argsz).every((b) => b === FILL)) problems.push(`${argsz}: wrote past argsz`);
    if (h.cap_offset === 0) continue;
    withCaps++;
    const caps = type1InfoCaps(arg);
    for (const name of caps.caps as string[]) {
      const next = Number(caps[`${name}.next`]);
      if (Number(caps[`${name}.offset`]) + 8 > argsz || (next !== 0 && next + 8 > argsz)) {
        problems.push(`${argsz}: ${name} outside argsz`);
      }
    }
  }
  t.expect(t.note("GET_INFO every argsz below the full chain", { full, withCaps, problems }), {
    fields: { problems: [] },
  });
});

function shuffledPages(version: "v1" | "v2", type: number): ScenarioDef {
  return scenario(`container/map-pages-shuffled-${version}`, { paths: CONTAINER_PATHS }, (t) => {
    const { container: c } = containerSession(t, { type });
    const page = BigInt(t.kernel.pageSize);
    const buffer = t.mem(16 * t.kernel.pageSize).address;
    const base = 1n << 24n;
    const size = 16n * page;
    t.expect(mapDma(t, "MAP_DMA buffer", c, { flags: RW, vaddr: buffer, iova: base, size }), {
      ret: 0,
    });
    t.expect(unmapDma(t, "UNMAP_DMA buffer", c, { iova: base, size }), {
      ret: 0,
      fields: { size },
    });
    t.expect(mapDma(t, "MAP_DMA buffer again", c, { flags: RW, vaddr: buffer, iova: base, size }), {
      ret: 0,
    });
    t.expect(
      unmapDma(t, "UNMAP_DMA ALL with an iova", c, {
        flags: VFIO_DMA_UNMAP_FLAG_ALL,
        iova: base,
        size,
      }),
      { errno: "EINVAL" },
    );
    t.expect(
      unmapDma(t, "UNMAP_DMA ALL", c, { flags: VFIO_DMA_UNMAP_FLAG_ALL, iova: 0n, size: 0n }),
      { ret: 0, fields: { size } },
    );
    for (let i = 0n; i < 16n; i++) {
      t.expect(
        mapDma(t, `MAP_DMA page ${i}`, c, {
          flags: RW,
          vaddr: buffer + i * page,
          iova: base + i * page,
          size: page,
        }),
        { ret: 0 },
      );
    }
    for (const i of SHUFFLED) {
      const iova = base + BigInt(i) * page;
      t.expect(unmapDma(t, `UNMAP_DMA page ${i}`, c, { iova, size: page }), {
        ret: 0,
        fields: { size: page },
      });
    }
  });
}

function hugeMapSplit(version: "v1" | "v2", type: number): ScenarioDef {
  return scenario(`container/huge-map-split-${version}`, { paths: CONTAINER_PATHS }, (t) => {
    const { container: c } = containerSession(t, { type });
    const huge = 2n << 20n;
    const size = 2n * huge;
    const buffer = t.mem(Number(size)).address;
    const base = 1n << 24n;
    t.expect(mapDma(t, "MAP_DMA 4 MiB", c, { flags: RW, vaddr: buffer, iova: base, size }), {
      ret: 0,
    });
    const piece = size / 16n;
    // type1 v1 may unmap a piece of a larger mapping; v2 refuses (the selftest's huge_map).
    for (const i of SHUFFLED) {
      unmapDma(t, `UNMAP_DMA piece ${i}`, c, { iova: base + BigInt(i) * piece, size: piece });
    }
    unmapDma(t, "UNMAP_DMA ALL", c, { flags: VFIO_DMA_UNMAP_FLAG_ALL, iova: 0n, size: 0n });
  });
}

/** The container API after the selftests. */
export const CONTAINER_SELFTEST_SCENARIOS: readonly ScenarioDef[] = [
  mapLimit,
  infoSweep,
  shuffledPages("v1", VFIO_TYPE1_IOMMU),
  shuffledPages("v2", VFIO_TYPE1v2_IOMMU),
  hugeMapSplit("v1", VFIO_TYPE1_IOMMU),
  hugeMapSplit("v2", VFIO_TYPE1v2_IOMMU),
];
