/**
 * Conformance scenarios of the sPAPR TCE container (POWER; vfio.md §9): extensions and
 * SET_IOMMU, GET_INFO, preregistration, MAP/UNMAP errno in `tce_iommu_ioctl`'s order with the
 * returns-1 quirk, dynamic DMA windows, EEH PE operations, and the v1 flavour with ENABLE.
 * Expected values come from the row's `spapr` data.
 *
 * @module
 */

import type { ErrnoName } from "../../ffi/errno.ts";
import { type Observed, scenario, type ScenarioContext, type ScenarioDef } from "./scenario.ts";
import {
  containerSession,
  fieldsOf,
  groupNode,
  mapDma,
  setContainer,
  setIommu,
  struct,
  UNKNOWN_VFIO_IOCTL,
  unmapDma,
  UNMAPPED_VA,
} from "./steps.ts";
import {
  VFIO_CHECK_EXTENSION,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_EEH,
  VFIO_EEH_PE_CONFIGURE,
  VFIO_EEH_PE_GET_STATE,
  VFIO_EEH_PE_INJECT_ERR,
  VFIO_EEH_PE_OP,
  vfio_eeh_pe_op,
  VFIO_EEH_PE_RESET_DEACTIVATE,
  VFIO_EEH_PE_RESET_HOT,
  VFIO_EEH_PE_STATE_NORMAL,
  VFIO_EEH_PE_STATE_STOPPED,
  VFIO_IOMMU_DISABLE,
  VFIO_IOMMU_ENABLE,
  VFIO_IOMMU_SPAPR_INFO_DDW,
  VFIO_IOMMU_SPAPR_REGISTER_MEMORY,
  vfio_iommu_spapr_register_memory,
  VFIO_IOMMU_SPAPR_TCE_CREATE,
  vfio_iommu_spapr_tce_create,
  VFIO_IOMMU_SPAPR_TCE_GET_INFO,
  vfio_iommu_spapr_tce_info,
  VFIO_IOMMU_SPAPR_TCE_REMOVE,
  vfio_iommu_spapr_tce_remove,
  VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY,
  VFIO_SPAPR_TCE_IOMMU,
  VFIO_SPAPR_TCE_v2_IOMMU,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1_NESTING_IOMMU,
  VFIO_TYPE1v2_IOMMU,
} from "./uapi.ts";

const RW = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
/** IOVAs inside the default window used below (64 KiB aligned: any TCE page up to 64 KiB). */
const IOVA = 0x100000n;
const TCE_4K = 0x1000n;

/** The row's sPAPR facts (the scenario only runs on models with the spapr path). */
function facts(t: ScenarioContext) {
  const s = t.env.iommu.spapr;
  if (s === undefined) throw new Error(`no spapr facts for ${t.env.iommu.model}`);
  return s;
}

function getInfo(t: ScenarioContext, label: string, c: number, argsz: number): Observed {
  const arg = struct(vfio_iommu_spapr_tce_info, { argsz });
  return t.ioctl(label, c, VFIO_IOMMU_SPAPR_TCE_GET_INFO, arg, {
    out: (a) => {
      const full = new Uint8Array(vfio_iommu_spapr_tce_info.size);
      full.set(a.subarray(0, full.length));
      const v = fieldsOf(vfio_iommu_spapr_tce_info, [
        "flags",
        "dma32_window_start",
        "dma32_window_size",
      ])(full);
      const ddw = (fieldsOf(vfio_iommu_spapr_tce_info, ["ddw"])(full).ddw ?? {}) as Record<
        string,
        unknown
      >;
      return {
        ...v,
        ddw_pgsizes: ddw.pgsizes as bigint,
        ddw_max_windows: ddw.max_dynamic_windows_supported as number,
        ddw_levels: ddw.levels as number,
      };
    },
  });
}

function memOp(
  t: ScenarioContext,
  label: string,
  c: number,
  register: boolean,
  a: { argsz?: number; flags?: number; vaddr: bigint; size: bigint },
): Observed {
  const arg = struct(vfio_iommu_spapr_register_memory, { argsz: 24, flags: 0, ...a });
  const decl = register ? VFIO_IOMMU_SPAPR_REGISTER_MEMORY : VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY;
  return t.ioctl(label, c, decl, arg);
}

function tceCreate(
  t: ScenarioContext,
  label: string,
  c: number,
  a: { argsz?: number; flags?: number; page_shift: number; window_size: bigint; levels: number },
): Observed {
  const arg = struct(vfio_iommu_spapr_tce_create, { argsz: 40, flags: 0, ...a });
  return t.ioctl(label, c, VFIO_IOMMU_SPAPR_TCE_CREATE, arg, {
    out: fieldsOf(vfio_iommu_spapr_tce_create, ["start_addr"]),
  });
}

function tceRemove(t: ScenarioContext, label: string, c: number, start: bigint): Observed {
  const arg = struct(vfio_iommu_spapr_tce_remove, { argsz: 16, flags: 0, start_addr: start });
  return t.ioctl(label, c, VFIO_IOMMU_SPAPR_TCE_REMOVE, arg);
}

function eehOp(
  t: ScenarioContext,
  label: string,
  c: number,
  op: number,
  extra: { argsz?: number; flags?: number; type?: number; func?: number } = {},
): Observed {
  const arg = struct(vfio_eeh_pe_op, {
    argsz: extra.argsz ?? 40,
    flags: extra.flags ?? 0,
    op,
    err: { type: extra.type ?? 0, func: extra.func ?? 0, addr: 0n, mask: 0n },
  });
  return t.ioctl(label, c, VFIO_EEH_PE_OP, arg);
}

const extensions = scenario("spapr/extensions-set-iommu-get-info", {
  paths: ["spapr"],
}, (t) => {
  const s = facts(t);
  const c = t.must(t.open("open /dev/vfio/vfio", "/dev/vfio/vfio"), { ret: "fd" }).raw;
  const answers: [string, number, number][] = [
    ["TYPE1", VFIO_TYPE1_IOMMU, 0],
    ["SPAPR_TCE", VFIO_SPAPR_TCE_IOMMU, 1],
    ["TYPE1v2", VFIO_TYPE1v2_IOMMU, 0],
    ["EEH", VFIO_EEH, 1],
    ["TYPE1_NESTING", VFIO_TYPE1_NESTING_IOMMU, 0],
    ["SPAPR_TCE_v2", VFIO_SPAPR_TCE_v2_IOMMU, 1],
  ];
  for (const [name, id, ret] of answers) {
    t.expect(t.ioctl(`CHECK_EXTENSION(${name})`, c, VFIO_CHECK_EXTENSION, id), { ret });
  }
  t.expect(getInfo(t, "GET_INFO, no IOMMU driver", c, 32), { errno: "EINVAL" });
  const g = t.must(t.open("open group", groupNode(t)), { ret: "fd" }).raw;
  t.must(setContainer(t, "SET_CONTAINER", g, c), { ret: 0 });
  t.expect(setIommu(t, "SET_IOMMU(TYPE1v2)", c, VFIO_TYPE1v2_IOMMU), { errno: "ENODEV" });
  t.expect(setIommu(t, "SET_IOMMU(EEH)", c, VFIO_EEH), { errno: "EINVAL" });
  t.expect(setIommu(t, "SET_IOMMU(SPAPR_TCE_v2)", c, VFIO_SPAPR_TCE_v2_IOMMU), { ret: 0 });
  t.expect(getInfo(t, "GET_INFO argsz 15", c, 15), { errno: "EINVAL" });
  const window = {
    dma32_window_start: Number(s.dma32Start),
    dma32_window_size: Number(s.dma32Size),
  };
  t.expect(getInfo(t, "GET_INFO argsz 16 (no ddw copied)", c, 16), {
    ret: 0,
    fields: { flags: VFIO_IOMMU_SPAPR_INFO_DDW, ...window, ddw_pgsizes: 0n, ddw_levels: 0 },
  });
  t.expect(getInfo(t, "GET_INFO argsz 32", c, 32), {
    ret: 0,
    fields: {
      flags: VFIO_IOMMU_SPAPR_INFO_DDW,
      ...window,
      ddw_pgsizes: s.pgsizes,
      ddw_max_windows: s.maxWindows,
      ddw_levels: s.levels,
    },
  });
  t.expect(t.ioctl("unknown ioctl", c, UNKNOWN_VFIO_IOCTL), { errno: "ENOTTY" });
  t.expect(t.ioctl("ENABLE (v1 only)", c, VFIO_IOMMU_ENABLE), { errno: "ENOTTY" });
});

const mapErrno = scenario("spapr/register-map-unmap-errno", { paths: ["spapr"] }, (t) => {
  const { container: c } = containerSession(t, { type: VFIO_SPAPR_TCE_v2_IOMMU, device: false });
  const page = BigInt(t.kernel.pageSize);
  const mem = t.mem(Number(4n * page));
  const va = mem.address;
  const map = (label: string, a: Partial<Parameters<typeof mapDma>[3]>) =>
    mapDma(t, `MAP_DMA ${label}`, c, { flags: RW, vaddr: va, iova: IOVA, size: page, ...a });
  t.expect(map("before REGISTER_MEMORY", {}), { errno: "EPERM" });
  t.expect(unmapDma(t, "UNMAP_DMA before REGISTER_MEMORY", c, { iova: IOVA, size: page }), {
    errno: "EPERM",
  });
  t.expect(
    memOp(t, "UNREGISTER before the container has an mm", c, false, { vaddr: va, size: page }),
    {
      errno: "EPERM",
    },
  );
  const regRows: [string, Parameters<typeof memOp>[4], ErrnoName][] = [
    ["argsz 23", { argsz: 23, vaddr: va, size: page }, "EINVAL"],
    ["flags 1", { flags: 1, vaddr: va, size: page }, "EINVAL"],
    ["vaddr misaligned", { vaddr: va + 0x1000n, size: page }, "EINVAL"],
    ["size misaligned", { vaddr: va, size: page + 0x1000n }, "EINVAL"],
    ["unmapped vaddr", { vaddr: UNMAPPED_VA * page, size: page }, "EFAULT"],
  ];
  for (const [label, args, errno] of regRows) {
    t.expect(memOp(t, `REGISTER ${label}`, c, true, args), { errno });
  }
  t.expect(memOp(t, "REGISTER 2 pages", c, true, { vaddr: va, size: 2n * page }), { ret: 0 });
  t.expect(memOp(t, "UNREGISTER never registered", c, false, { vaddr: va, size: page }), {
    errno: "ENOENT",
  });
  t.expect(memOp(t, "REGISTER the same again", c, true, { vaddr: va, size: 2n * page }), {
    errno: "EBUSY",
  });
  t.expect(memOp(t, "REGISTER overlapping", c, true, { vaddr: va + page, size: 2n * page }), {
    errno: "EINVAL",
  });
  const rows: [string, Partial<Parameters<typeof mapDma>[3]>, ErrnoName | 1][] = [
    ["argsz 31", { argsz: 31 }, "EINVAL"],
    ["flag VADDR", { flags: RW | 4 }, "EINVAL"],
    ["iova outside every window", { iova: facts(t).dma32Size + IOVA }, "ENXIO"],
    ["size not a TCE page multiple", { size: TCE_4K / 2n }, "EINVAL"],
    ["vaddr not TCE-page aligned", { vaddr: va + 0x800n }, "EINVAL"],
    ["no READ/WRITE", { flags: 0 }, "EINVAL"],
    ["iova misaligned (returns 1)", { iova: IOVA + 0x800n }, 1],
    ["vaddr not registered", { vaddr: va + 2n * page }, "EINVAL"],
  ];
  for (const [label, args, want] of rows) {
    t.expect(map(label, args), want === 1 ? { ret: 1 } : { errno: want });
  }
  t.expect(map("2 pages", { size: 2n * page }), { ret: 0 });
  t.expect(map("over an existing mapping (overwrites)", { vaddr: va + page }), { ret: 0 });
  t.expect(map("read-only", { flags: VFIO_DMA_MAP_FLAG_READ, iova: IOVA + 4n * page }), { ret: 0 });
  t.expect(memOp(t, "UNREGISTER while mapped", c, false, { vaddr: va, size: 2n * page }), {
    errno: "EBUSY",
  });
  const unmap = (label: string, a: { flags?: number; iova?: bigint; size?: bigint }) =>
    unmapDma(t, `UNMAP_DMA ${label}`, c, { iova: IOVA, size: 2n * page, ...a });
  t.expect(unmap("flags 1", { flags: 1 }), { errno: "EINVAL" });
  t.expect(unmap("outside every window", { iova: facts(t).dma32Size + IOVA }), {
    errno: "ENXIO",
  });
  t.expect(unmap("size not a TCE page multiple", { size: 0x800n }), { errno: "EINVAL" });
  t.expect(unmap("iova misaligned (returns 1)", { iova: IOVA + 0x800n }), { ret: 1 });
  t.expect(
    unmap("past the window's end (returns 1)", {
      iova: facts(t).dma32Size - page,
      size: 2n * page,
    }),
    { ret: 1 },
  );
  t.expect(unmap("nothing mapped there", { iova: IOVA + 64n * page }), {
    ret: 0,
    fields: { size: 2n * page },
  });
  t.expect(unmap("the mapping", {}), { ret: 0, fields: { size: 2n * page } });
  t.expect(unmap("the read-only page", { iova: IOVA + 4n * page, size: page }), { ret: 0 });
  t.expect(memOp(t, "UNREGISTER", c, false, { vaddr: va, size: 2n * page }), { ret: 0 });
  t.expect(memOp(t, "UNREGISTER again", c, false, { vaddr: va, size: 2n * page }), {
    errno: "ENOENT",
  });
});

const ddw = scenario("spapr/ddw-create-remove", { paths: ["spapr"] }, (t) => {
  const s = facts(t);
  const { container: c } = containerSession(t, { type: VFIO_SPAPR_TCE_v2_IOMMU, device: false });
  const page = BigInt(t.kernel.pageSize);
  const mem = t.mem(Number(page));
  t.must(memOp(t, "REGISTER", c, true, { vaddr: mem.address, size: page }), { ret: 0 });
  const shift = Math.log2(Number(page));
  const gib = 1n << 30n;
  const rows: [string, Parameters<typeof tceCreate>[3], ErrnoName][] = [
    ["argsz 39", { argsz: 39, page_shift: shift, window_size: gib, levels: 1 }, "EINVAL"],
    ["flags 1", { flags: 1, page_shift: shift, window_size: gib, levels: 1 }, "EINVAL"],
    ["page shift 13", { page_shift: 13, window_size: gib, levels: 1 }, "EINVAL"],
    ["levels 0", { page_shift: shift, window_size: gib, levels: 0 }, "EINVAL"],
    ["levels above the platform's", {
      page_shift: shift,
      window_size: gib,
      levels: s.levels + 1,
    }, "EINVAL"],
    ["size not a power of two", { page_shift: shift, window_size: 3n * gib, levels: 1 }, "EINVAL"],
  ];
  for (const [label, args, errno] of rows) {
    t.expect(tceCreate(t, `TCE_CREATE ${label}`, c, args), { errno });
  }
  const start = s.secondWindowStart;
  t.expect(
    tceCreate(t, "TCE_CREATE 1 GiB", c, { page_shift: shift, window_size: gib, levels: 2 }),
    { ret: 0, fields: { start_addr: start } },
  );
  t.expect(
    tceCreate(t, "TCE_CREATE a third window", c, {
      page_shift: shift,
      window_size: gib,
      levels: 1,
    }),
    { errno: "ENOSPC" },
  );
  const map = (label: string, iova: bigint) =>
    mapDma(t, `MAP_DMA ${label}`, c, { flags: RW, vaddr: mem.address, iova, size: page });
  t.expect(map("in the new window", start + gib - page), { ret: 0 });
  t.expect(map("past the new window", start + gib), { errno: "ENXIO" });
  t.expect(map("in the default window", IOVA), { ret: 0 });
  t.expect(tceRemove(t, "TCE_REMOVE outside every window", c, 0x1_0000_0000n), {
    errno: "EINVAL",
  });
  t.expect(tceRemove(t, "TCE_REMOVE the default window", c, 0n), { ret: 0 });
  t.expect(map("where the default window was", IOVA), { errno: "ENXIO" });
  t.expect(
    tceCreate(t, "TCE_CREATE into the freed slot", c, {
      page_shift: shift,
      window_size: 4n * gib,
      levels: 1,
    }),
    { ret: 0, fields: { start_addr: s.dma32Start } },
  );
  t.expect(map("in the re-created window above 2 GiB", 3n * gib), { ret: 0 });
  t.expect(tceRemove(t, "TCE_REMOVE by an address inside", c, start + page), { ret: 0 });
  t.expect(tceRemove(t, "TCE_REMOVE again", c, start), { errno: "EINVAL" });
  // Removing a window cleared its TCEs, so the memory is no longer mapped there.
  t.expect(unmapDma(t, "UNMAP_DMA in the re-created window", c, { iova: 3n * gib, size: page }), {
    ret: 0,
  });
  t.expect(memOp(t, "UNREGISTER", c, false, { vaddr: mem.address, size: page }), { ret: 0 });
});

const eeh = scenario("spapr/eeh-pe-op", { paths: ["spapr"] }, (t) => {
  const { container: c } = containerSession(t, { type: VFIO_SPAPR_TCE_v2_IOMMU });
  t.expect(eehOp(t, "GET_STATE", c, VFIO_EEH_PE_GET_STATE), { ret: VFIO_EEH_PE_STATE_NORMAL });
  t.expect(eehOp(t, "argsz 11", c, VFIO_EEH_PE_GET_STATE, { argsz: 11 }), { errno: "EINVAL" });
  t.expect(eehOp(t, "flags 1", c, VFIO_EEH_PE_GET_STATE, { flags: 1 }), { errno: "EINVAL" });
  t.expect(eehOp(t, "unknown op 10", c, 10), { errno: "EINVAL" });
  t.expect(eehOp(t, "INJECT_ERR argsz 12", c, VFIO_EEH_PE_INJECT_ERR, { argsz: 12 }), {
    errno: "EINVAL",
  });
  t.expect(eehOp(t, "INJECT_ERR type 2", c, VFIO_EEH_PE_INJECT_ERR, { type: 2 }), {
    errno: "ERANGE",
  });
  t.expect(eehOp(t, "INJECT_ERR func 20", c, VFIO_EEH_PE_INJECT_ERR, { func: 20 }), {
    errno: "EINVAL",
  });
  t.expect(eehOp(t, "CONFIGURE", c, VFIO_EEH_PE_CONFIGURE), { ret: 0 });
  t.expect(eehOp(t, "RESET_HOT", c, VFIO_EEH_PE_RESET_HOT), { ret: 0 });
  // PowerNV resets are edge-triggered (eeh_pe_reset freezes the PE, OPAL pulses the reset): the
  // PE stays frozen, not in reset, until RESET_DEACTIVATE re-enables it.
  t.expect(eehOp(t, "GET_STATE after RESET_HOT", c, VFIO_EEH_PE_GET_STATE), {
    ret: VFIO_EEH_PE_STATE_STOPPED,
  });
  t.expect(eehOp(t, "RESET_DEACTIVATE", c, VFIO_EEH_PE_RESET_DEACTIVATE), { ret: 0 });
  t.expect(eehOp(t, "GET_STATE after reset", c, VFIO_EEH_PE_GET_STATE), {
    ret: VFIO_EEH_PE_STATE_NORMAL,
  });
});

const v1 = scenario("spapr/v1-enable", { paths: ["spapr"] }, (t) => {
  const s = facts(t);
  const { container: c } = containerSession(t, { type: VFIO_SPAPR_TCE_IOMMU, device: false });
  const page = BigInt(t.kernel.pageSize);
  const mem = t.mem(Number(page));
  const map = (label: string) =>
    mapDma(t, `MAP_DMA ${label}`, c, { flags: RW, vaddr: mem.address, iova: IOVA, size: page });
  t.expect(getInfo(t, "GET_INFO (no DDW on v1)", c, 32), {
    ret: 0,
    fields: { flags: 0, dma32_window_size: Number(s.dma32Size), ddw_pgsizes: 0n },
  });
  t.expect(map("before ENABLE"), { errno: "EPERM" });
  t.expect(memOp(t, "REGISTER_MEMORY on v1", c, true, { vaddr: mem.address, size: page }), {
    errno: "ENOTTY",
  });
  t.expect(
    tceCreate(t, "TCE_CREATE on v1", c, { page_shift: 16, window_size: 1n << 30n, levels: 1 }),
    { errno: "ENOTTY" },
  );
  t.expect(t.ioctl("ENABLE", c, VFIO_IOMMU_ENABLE), { ret: 0 });
  t.expect(t.ioctl("ENABLE again", c, VFIO_IOMMU_ENABLE), { errno: "EBUSY" });
  t.expect(map("after ENABLE (pins the pages, no preregistration)"), { ret: 0 });
  t.expect(unmapDma(t, "UNMAP_DMA", c, { iova: IOVA, size: page }), { ret: 0 });
  t.expect(t.ioctl("DISABLE", c, VFIO_IOMMU_DISABLE), { ret: 0 });
  t.expect(map("after DISABLE"), { errno: "EPERM" });
});

/** The sPAPR TCE scenarios. */
export const SPAPR_SCENARIOS: readonly ScenarioDef[] = [extensions, mapErrno, ddw, eeh, v1];
