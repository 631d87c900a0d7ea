/**
 * The sPAPR TCE container ioctls decoded as `tce_iommu_ioctl` decodes them (vfio.md §9), with
 * its errno in check order and its quirks: a misaligned or out-of-window IOVA caught by
 * `iommu_tce_put_param_check` / `iommu_tce_clear_param_check` makes MAP/UNMAP return **1**
 * (the macros evaluate to a boolean), not -EINVAL. Also the driver registration
 * ({@link SPAPR_TCE_DRIVER}) and VFIO_EEH_PE_OP (`vfio_spapr_ioctl_eeh_pe_op`).
 *
 * @module
 */

import { ERRNO } from "../../ffi/errno.ts";
import { type IoctlDecl, ioctlNumber } from "../../ffi/uapi/common.ts";
import { offsetOfEnd } from "../../ffi/uapi/layout.ts";
import type { SimProcess } from "../kernel/file.ts";
import { resetFunction, type SimIommuGroup } from "../kernel/pci_function.ts";
import { readStruct, userBytes, writeStruct } from "../kernel/user.ts";
import { SpaprTceIommu } from "../iommu/spapr/spapr_tce.ts";
import type { TceTable } from "../iommu/spapr/spapr_tce_table.ts";
import { ioctlTable, type VfioEnv, type VfioIommuDriver, type VfioIommuDriverSpec } from "./env.ts";
import { SpaprTceContainer } from "./spapr.ts";
import { preregGet, preregNew } from "./spapr_prereg.ts";
import {
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_EEH,
  VFIO_EEH_PE_CONFIGURE,
  VFIO_EEH_PE_DISABLE,
  VFIO_EEH_PE_ENABLE,
  VFIO_EEH_PE_GET_STATE,
  VFIO_EEH_PE_INJECT_ERR,
  VFIO_EEH_PE_OP,
  vfio_eeh_pe_op,
  VFIO_EEH_PE_RESET_DEACTIVATE,
  VFIO_EEH_PE_RESET_FUNDAMENTAL,
  VFIO_EEH_PE_RESET_HOT,
  VFIO_EEH_PE_UNFREEZE_DMA,
  VFIO_EEH_PE_UNFREEZE_IO,
  VFIO_IOMMU_DISABLE,
  VFIO_IOMMU_ENABLE,
  VFIO_IOMMU_MAP_DMA,
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
  vfio_iommu_type1_dma_map,
  vfio_iommu_type1_dma_unmap,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_SPAPR_TCE_IOMMU,
  VFIO_SPAPR_TCE_v2_IOMMU,
} from "../../ffi/uapi/mod.ts";

/** `IOMMU_TABLE_GROUP_MAX_TABLES`: window slots of a container. */
const MAX_TABLES = 2;
/** `EEH_ERR_TYPE_32` / `EEH_ERR_TYPE_64` (asm/eeh.h): the injectable error types. */
const EEH_ERR_TYPES = new Set([0, 1]);
/** `EEH_ERR_FUNC_MIN` .. `EEH_ERR_FUNC_MAX` (asm/eeh.h). */
const EEH_ERR_FUNC_MAX = 19;

/** `tce_iommu_ioctl`'s CHECK_EXTENSION (EEH is enabled on PowerNV). */
function spaprCheckExtension(ext: bigint): number {
  if (ext === BigInt(VFIO_SPAPR_TCE_IOMMU) || ext === BigInt(VFIO_SPAPR_TCE_v2_IOMMU)) return 1;
  return ext === BigInt(VFIO_EEH) ? 1 : 0;
}

/** `iommu_tce_check_ioba`: true (the quirk's 1) when `pages` TCEs from `ioba` leave the table. */
function iobaBad(table: TceTable, ioba: bigint, pages: bigint): boolean {
  if ((ioba & (table.pageSize - 1n)) !== 0n) return true;
  const first = (ioba - table.start) / table.pageSize;
  return first < 0n || first + pages > table.geometry.entries;
}

type Handler = (c: SpaprTceContainer, p: SimProcess, user: Uint8Array) => number;

/** VFIO_IOMMU_SPAPR_TCE_GET_INFO. */
function getInfo(c: SpaprTceContainer, _p: SimProcess, user: Uint8Array): number {
  const pe = c.firstPe;
  if (pe === undefined) return -ERRNO.ENXIO;
  const layout = vfio_iommu_spapr_tce_info;
  const minsz = offsetOfEnd(layout, "dma32_window_size");
  const info = readStruct(user, layout, minsz);
  if (info === undefined) return -ERRNO.EFAULT;
  if (info.argsz < minsz) return -ERRNO.EINVAL;
  const p = pe.platform;
  info.dma32_window_start = Number(p.tce32Start);
  info.dma32_window_size = Number(p.tce32Size);
  info.flags = 0;
  info.ddw = { pgsizes: 0n, max_dynamic_windows_supported: 0, levels: 0 };
  if (p.maxWindows > 0 && c.v2) {
    info.flags |= VFIO_IOMMU_SPAPR_INFO_DDW;
    info.ddw = {
      pgsizes: p.pgsizes,
      max_dynamic_windows_supported: p.maxWindows,
      levels: p.maxLevels,
    };
  }
  const copy = info.argsz >= layout.size ? layout.size : minsz;
  return writeStruct(user, layout, info, copy) ? 0 : -ERRNO.EFAULT;
}

/** VFIO_IOMMU_MAP_DMA on a sPAPR container. */
function mapDma(c: SpaprTceContainer, p: SimProcess, user: Uint8Array): number {
  if (!c.enabled) return -ERRNO.EPERM;
  const layout = vfio_iommu_type1_dma_map;
  const minsz = offsetOfEnd(layout, "size");
  const map = readStruct(user, layout, minsz);
  if (map === undefined) return -ERRNO.EFAULT;
  if (map.argsz < minsz) return -ERRNO.EINVAL;
  if ((map.flags & ~(VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE)) !== 0) {
    return -ERRNO.EINVAL;
  }
  const r = c.createDefaultWindow();
  if (r < 0) return r;
  const hit = c.findTable(map.iova);
  if (hit === undefined) return -ERRNO.ENXIO;
  const { table } = hit;
  const mask = table.pageSize - 1n;
  if ((map.size & mask) !== 0n || (map.vaddr & mask) !== 0n) return -ERRNO.EINVAL;
  const read = (map.flags & VFIO_DMA_MAP_FLAG_READ) !== 0;
  const write = (map.flags & VFIO_DMA_MAP_FLAG_WRITE) !== 0;
  if (!read && !write) return -ERRNO.EINVAL;
  if (iobaBad(table, map.iova, 1n)) return 1; // iommu_tce_put_param_check: a boolean
  const first = (map.iova - table.start) / table.pageSize;
  const ret = c.build(p, table, first, map.vaddr, map.size / table.pageSize, { read, write });
  if (ret === 0) {
    c.env.trace(`spapr: map iova 0x${map.iova.toString(16)} size 0x${map.size.toString(16)}`);
  }
  return ret;
}

/** VFIO_IOMMU_UNMAP_DMA on a sPAPR container (no `size` written back). */
function unmapDma(c: SpaprTceContainer, _p: SimProcess, user: Uint8Array): number {
  if (!c.enabled) return -ERRNO.EPERM;
  const layout = vfio_iommu_type1_dma_unmap;
  const minsz = offsetOfEnd(layout, "size");
  const unmap = readStruct(user, layout, minsz);
  if (unmap === undefined) return -ERRNO.EFAULT;
  if (unmap.argsz < minsz || unmap.flags !== 0) return -ERRNO.EINVAL;
  const r = c.createDefaultWindow();
  if (r < 0) return r;
  const hit = c.findTable(unmap.iova);
  if (hit === undefined) return -ERRNO.ENXIO;
  const { table } = hit;
  if ((unmap.size & (table.pageSize - 1n)) !== 0n) return -ERRNO.EINVAL;
  const pages = unmap.size / table.pageSize;
  if (iobaBad(table, unmap.iova, pages)) return 1; // iommu_tce_clear_param_check: a boolean
  c.clear(table, (unmap.iova - table.start) / table.pageSize, pages);
  c.env.trace(`spapr: unmap iova 0x${unmap.iova.toString(16)} size 0x${unmap.size.toString(16)}`);
  return 0;
}

/** VFIO_IOMMU_SPAPR_REGISTER_MEMORY (v2). */
function registerMemory(c: SpaprTceContainer, p: SimProcess, user: Uint8Array): number {
  const layout = vfio_iommu_spapr_register_memory;
  const minsz = offsetOfEnd(layout, "size");
  const r = c.mmSet(p);
  if (r < 0) return r;
  const reg = readStruct(user, layout, minsz);
  if (reg === undefined) return -ERRNO.EFAULT;
  if (reg.argsz < minsz || reg.flags !== 0) return -ERRNO.EINVAL;
  const page = BigInt(c.env.pageSize);
  const { vaddr, size } = reg;
  if ((vaddr & (page - 1n)) !== 0n || (size & (page - 1n)) !== 0n) return -ERRNO.EINVAL;
  if (vaddr + size > (1n << 64n) - 1n) return -ERRNO.EINVAL; // wraps
  const existing = preregGet(p, vaddr, size);
  if (existing !== undefined) {
    if (c.prereg.includes(existing)) return -ERRNO.EBUSY;
    existing.used++;
    c.prereg.push(existing);
  } else {
    const region = preregNew(p, c.env.physical, c.env.pageSize, vaddr, size);
    if (typeof region === "number") return region;
    c.prereg.push(region);
  }
  c.enabled = true;
  c.env.trace(`spapr: registered 0x${size.toString(16)} bytes of user memory`);
  return 0;
}

/** VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY (v2). */
function unregisterMemory(c: SpaprTceContainer, p: SimProcess, user: Uint8Array): number {
  if (c.mm === undefined) return -ERRNO.EPERM;
  const layout = vfio_iommu_spapr_register_memory;
  const minsz = offsetOfEnd(layout, "size");
  const reg = readStruct(user, layout, minsz);
  if (reg === undefined) return -ERRNO.EFAULT;
  if (reg.argsz < minsz || reg.flags !== 0) return -ERRNO.EINVAL;
  const page = BigInt(c.env.pageSize);
  if ((reg.vaddr & (page - 1n)) !== 0n || (reg.size & (page - 1n)) !== 0n) return -ERRNO.EINVAL;
  const region = preregGet(p, reg.vaddr, reg.size);
  if (region === undefined || !c.prereg.includes(region)) return -ERRNO.ENOENT;
  return c.preregFree(region);
}

/** VFIO_IOMMU_SPAPR_TCE_CREATE (v2). */
function tceCreate(c: SpaprTceContainer, p: SimProcess, user: Uint8Array): number {
  const r = c.mmSet(p);
  if (r < 0) return r;
  if (c.groups.length === 0) return -ERRNO.ENXIO;
  const layout = vfio_iommu_spapr_tce_create;
  const minsz = offsetOfEnd(layout, "start_addr");
  const create = readStruct(user, layout, minsz);
  if (create === undefined) return -ERRNO.EFAULT;
  if (create.argsz < minsz || create.flags !== 0) return -ERRNO.EINVAL;
  const d = c.createDefaultWindow();
  if (d < 0) return d;
  const start = c.createWindow(create.page_shift, create.window_size, create.levels);
  if (typeof start === "number") return start;
  create.start_addr = start;
  return writeStruct(user, layout, create, minsz) ? 0 : -ERRNO.EFAULT;
}

/** VFIO_IOMMU_SPAPR_TCE_REMOVE (v2). */
function tceRemove(c: SpaprTceContainer, p: SimProcess, user: Uint8Array): number {
  const r = c.mmSet(p);
  if (r < 0) return r;
  if (c.groups.length === 0) return -ERRNO.ENXIO;
  const layout = vfio_iommu_spapr_tce_remove;
  const minsz = offsetOfEnd(layout, "start_addr");
  const remove = readStruct(user, layout, minsz);
  if (remove === undefined) return -ERRNO.EFAULT;
  if (remove.argsz < minsz || remove.flags !== 0) return -ERRNO.EINVAL;
  if (c.defWindowPending && remove.start_addr === 0n) {
    c.defWindowPending = false;
    return 0;
  }
  return c.removeWindow(remove.start_addr);
}

/**
 * VFIO_EEH_PE_OP: `vfio_spapr_ioctl_eeh_pe_op` on every group's PE in turn, stopping at the
 * first non-zero answer (so GET_STATE returns the first PE's state unless it is NORMAL); 0
 * without groups.
 */
function eehPeOp(c: SpaprTceContainer, _p: SimProcess, user: Uint8Array): number {
  for (const group of c.groups) {
    const r = eehPeOpOne(group, user);
    if (r !== 0) return r;
  }
  return 0;
}

function eehPeOpOne(group: SimIommuGroup, user: Uint8Array): number {
  const pe = SpaprTceContainer.peOf(group);
  if (pe === undefined) return -ERRNO.ENODEV;
  const layout = vfio_eeh_pe_op;
  const minsz = offsetOfEnd(layout, "op");
  const op = readStruct(user, layout, minsz);
  if (op === undefined) return -ERRNO.EFAULT;
  if (op.argsz < minsz || op.flags !== 0) return -ERRNO.EINVAL;
  switch (op.op) {
    case VFIO_EEH_PE_DISABLE:
    case VFIO_EEH_PE_ENABLE:
    case VFIO_EEH_PE_CONFIGURE:
      return 0;
    case VFIO_EEH_PE_UNFREEZE_IO:
      pe.thawMmio();
      return 0;
    case VFIO_EEH_PE_UNFREEZE_DMA:
      pe.thawDma();
      return 0;
    case VFIO_EEH_PE_GET_STATE:
      return pe.eehState;
    case VFIO_EEH_PE_RESET_DEACTIVATE:
      pe.reenable();
      return 0;
    case VFIO_EEH_PE_RESET_HOT:
    case VFIO_EEH_PE_RESET_FUNDAMENTAL:
      pe.freezeForReset();
      for (const fn of group.functions) resetFunction(fn);
      return 0;
    case VFIO_EEH_PE_INJECT_ERR: {
      const full = offsetOfEnd(layout, "err");
      if (op.argsz < full) return -ERRNO.EINVAL;
      const all = readStruct(user, layout, full);
      if (all === undefined) return -ERRNO.EFAULT;
      if (all.err.func > EEH_ERR_FUNC_MAX) return -ERRNO.EINVAL; // eeh_pe_inject_err
      if (!EEH_ERR_TYPES.has(all.err.type)) return -ERRNO.ERANGE; // pnv_eeh_err_inject
      const iommu = group.iommu;
      if (iommu instanceof SpaprTceIommu) iommu.injectError(pe);
      return 0;
    }
    default:
      return -ERRNO.EINVAL;
  }
}

/** An open sPAPR TCE container behind the VFIO container. */
class SpaprTceDriver implements VfioIommuDriver {
  readonly #handlers: Map<number, Handler>;
  readonly #noArg: Set<number>;

  constructor(readonly container: SpaprTceContainer, env: VfioEnv) {
    this.#noArg = new Set(
      [VFIO_IOMMU_ENABLE, VFIO_IOMMU_DISABLE].map((d) => ioctlNumber(env.arch, d)),
    );
    const v2Only = (h: Handler): Handler | undefined => (container.v2 ? h : undefined);
    const v1Only = (h: Handler): Handler | undefined => (container.v2 ? undefined : h);
    const entries: [IoctlDecl, Handler | undefined][] = [
      [VFIO_IOMMU_SPAPR_TCE_GET_INFO, getInfo],
      [VFIO_IOMMU_MAP_DMA, mapDma],
      [VFIO_IOMMU_UNMAP_DMA, unmapDma],
      [VFIO_IOMMU_ENABLE, v1Only((c, p) => c.enable(p))],
      [VFIO_IOMMU_DISABLE, v1Only((c) => (c.disable(), 0))],
      [VFIO_IOMMU_SPAPR_REGISTER_MEMORY, v2Only(registerMemory)],
      [VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY, v2Only(unregisterMemory)],
      [VFIO_IOMMU_SPAPR_TCE_CREATE, v2Only(tceCreate)],
      [VFIO_IOMMU_SPAPR_TCE_REMOVE, v2Only(tceRemove)],
      [VFIO_EEH_PE_OP, eehPeOp],
    ];
    this.#handlers = ioctlTable<Handler>(
      env.arch,
      entries.filter((e): e is [IoctlDecl, Handler] => e[1] !== undefined),
    );
  }

  checkExtension(ext: bigint): number {
    return spaprCheckExtension(ext);
  }

  ioctl(process: SimProcess, request: number, arg: Uint8Array | bigint): number | undefined {
    // Every request but CHECK_EXTENSION (answered by the container) is refused to another mm.
    if (this.container.mm !== undefined && this.container.mm !== process) return -ERRNO.EPERM;
    const handler = this.#handlers.get(request);
    if (handler === undefined) return undefined;
    // ENABLE and DISABLE take no argument (`_IO`): nothing is copied from the caller.
    const user = this.#noArg.has(request) ? new Uint8Array(0) : userBytes(process, arg);
    return user === undefined ? -ERRNO.EFAULT : handler(this.container, process, user);
  }

  attachGroup(group: SimIommuGroup): number {
    return this.container.attachGroup(group);
  }

  detachGroup(group: SimIommuGroup): void {
    this.container.detachGroup(group);
  }

  release(): void {
    this.container.release();
  }
}

/** vfio_iommu_spapr_tce, registered on POWER machines. */
export const SPAPR_TCE_DRIVER: VfioIommuDriverSpec = {
  name: "vfio_iommu_spapr_tce",
  checkExtension: spaprCheckExtension,
  open(type: bigint, env: VfioEnv): VfioIommuDriver | number {
    const v2 = type === BigInt(VFIO_SPAPR_TCE_v2_IOMMU);
    if (!v2 && type !== BigInt(VFIO_SPAPR_TCE_IOMMU)) return -ERRNO.EINVAL;
    return new SpaprTceDriver(new SpaprTceContainer(v2, env, MAX_TABLES), env);
  },
};
