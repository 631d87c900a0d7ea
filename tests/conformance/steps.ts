/**
 * Steps shared by the conformance scenarios: argument builders, recorders of output fields, and
 * the usual setup sequences (container + group + device, iommufd + cdev), all over
 * {@link ScenarioContext}. Only `Kernel` and the uAPI declarations are used, so every step runs
 * unchanged on LinuxKernel.
 *
 * @module
 */

import { defineIoctl, type IoctlDecl, VFIO_TYPE } from "../../ffi/uapi/common.ts";
import {
  decode,
  encode,
  type FieldMap,
  type StructLayout,
  type StructValues,
} from "../../ffi/uapi/layout.ts";
import type { FieldInput, Observed, ScenarioContext } from "./scenario.ts";
import {
  IOMMU_DESTROY,
  iommu_destroy,
  IOMMU_IOAS_ALLOC,
  iommu_ioas_alloc,
  IOMMU_IOAS_ALLOW_IOVAS,
  iommu_ioas_allow_iovas,
  IOMMU_IOAS_IOVA_RANGES,
  iommu_ioas_iova_ranges,
  IOMMU_IOAS_MAP,
  iommu_ioas_map,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_IOAS_UNMAP,
  iommu_ioas_unmap,
  iommu_iova_range,
  IOMMU_OPTION,
  iommu_option,
  VFIO_DEVICE_ATTACH_IOMMUFD_PT,
  vfio_device_attach_iommufd_pt,
  VFIO_DEVICE_BIND_IOMMUFD,
  vfio_device_bind_iommufd,
  VFIO_DEVICE_SET_IRQS,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_SET_CONTAINER,
  vfio_info_cap_header,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_MAP_DMA,
  vfio_iommu_type1_dma_map,
  vfio_iommu_type1_dma_unmap,
  vfio_iommu_type1_info,
  VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
  vfio_iommu_type1_info_cap_iova_range,
  VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION,
  vfio_iommu_type1_info_cap_migration,
  VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
  vfio_iommu_type1_info_dma_avail,
  VFIO_IOMMU_UNMAP_DMA,
  vfio_iova_range,
  vfio_irq_set,
  VFIO_IRQ_SET_DATA_BOOL,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_SET_IOMMU,
  VFIO_TYPE1v2_IOMMU,
} from "./uapi.ts";

/** An fd number that is never open (beyond any fd table): EBADF. */
export const BAD_FD = 999_999;
/** A process address that is never mapped (below mmap_min_addr): EFAULT when pinned. */
export const UNMAPPED_VA = 0x1000n;
/** 2^64 − 1. */
export const U64_MAX = (1n << 64n) - 1n;
/** `_IO(';', 127)`: a VFIO-range ioctl number that no fd type implements. */
export const UNKNOWN_VFIO_IOCTL: IoctlDecl = defineIoctl("unknown VFIO_BASE+27", VFIO_TYPE, 127);
/** A device name no PCI device has. */
export const UNKNOWN_DEVICE = "0000:ff:1f.7";

/** Record these fields of `layout` from the argument buffer after the call. */
export function fieldsOf<F extends FieldMap>(
  layout: StructLayout<F>,
  names: readonly (keyof F & string)[],
): (arg: Uint8Array) => Record<string, FieldInput> {
  return (arg) => {
    const values = decode(layout, arg) as Record<string, unknown>;
    return Object.fromEntries(names.map((n) => [n, values[n] as FieldInput]));
  };
}

/** A zeroed buffer holding `values`, `length` bytes long (default: the struct's size). */
export function struct<F extends FieldMap>(
  layout: StructLayout<F>,
  values: Partial<StructValues<F>>,
  length = layout.size,
): Uint8Array {
  const full = encode(layout, values, Math.max(0, length - layout.size));
  return length < layout.size ? full.slice(0, length) : full;
}

/** A 4-byte `int` (SET_CONTAINER's argument). */
export function int32(value: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, value, true);
  return b;
}

/** A NUL-terminated C string. */
export function cString(text: string): Uint8Array {
  const bytes = new TextEncoder().encode(text);
  const b = new Uint8Array(bytes.length + 1);
  b.set(bytes);
  return b;
}

/** The node opened as the "container" on a container path. */
export function containerNode(t: ScenarioContext): string {
  return t.path === "type1" || t.path === "spapr" ? "/dev/vfio/vfio" : "/dev/iommu";
}

/** /dev/vfio/N of the device's group. */
export function groupNode(t: ScenarioContext): string {
  return `/dev/vfio/${t.env.group}`;
}

/** VFIO_GROUP_SET_CONTAINER(fd). */
export function setContainer(
  t: ScenarioContext,
  label: string,
  group: number,
  fd: number,
): Observed {
  return t.ioctl(label, group, VFIO_GROUP_SET_CONTAINER, int32(fd));
}

/** VFIO_SET_IOMMU(type). */
export function setIommu(
  t: ScenarioContext,
  label: string,
  container: number,
  type: number,
): Observed {
  return t.ioctl(label, container, VFIO_SET_IOMMU, type);
}

/** VFIO_GROUP_GET_DEVICE_FD(name). */
export function getDeviceFd(
  t: ScenarioContext,
  label: string,
  group: number,
  name: string,
): Observed {
  return t.ioctl(label, group, VFIO_GROUP_GET_DEVICE_FD, cString(name), { returnsFd: true });
}

/** A container-path session: container fd, group fd and (optionally) device fd. */
export interface ContainerSession {
  /** The container (/dev/vfio/vfio, or /dev/iommu on the compat path). */
  readonly container: number;
  /** The group fd. */
  readonly group: number;
  /** The device fd, or -1 when not requested. */
  readonly device: number;
}

/** Open container and group, SET_CONTAINER, SET_IOMMU(type) and optionally open the device. */
export function containerSession(
  t: ScenarioContext,
  options: { type?: number; device?: boolean } = {},
): ContainerSession {
  const container = t.must(t.open("setup: open container", containerNode(t)), { ret: "fd" }).raw;
  const group = t.must(t.open("setup: open group", groupNode(t)), { ret: "fd" }).raw;
  t.must(setContainer(t, "setup: SET_CONTAINER", group, container), { ret: 0 });
  t.must(setIommu(t, "setup: SET_IOMMU", container, options.type ?? VFIO_TYPE1v2_IOMMU), {
    ret: 0,
  });
  const device = options.device === false
    ? -1
    : t.must(getDeviceFd(t, "setup: GET_DEVICE_FD", group, t.env.bdf), { ret: "fd" }).raw;
  return { container, group, device };
}

/** Arguments of a MAP_DMA call (argsz defaults to 32). */
export interface DmaMapArgs {
  argsz?: number;
  flags: number;
  vaddr: bigint;
  iova: bigint;
  size: bigint;
}

/** VFIO_IOMMU_MAP_DMA. */
export function mapDma(
  t: ScenarioContext,
  label: string,
  container: number,
  a: DmaMapArgs,
): Observed {
  const arg = struct(vfio_iommu_type1_dma_map, { argsz: 32, ...a });
  return t.ioctl(label, container, VFIO_IOMMU_MAP_DMA, arg);
}

/** VFIO_IOMMU_UNMAP_DMA; records `size` (bytes unmapped, or what the kernel left there). */
export function unmapDma(
  t: ScenarioContext,
  label: string,
  container: number,
  a: { argsz?: number; flags?: number; iova: bigint; size: bigint },
): Observed {
  const arg = struct(vfio_iommu_type1_dma_unmap, { argsz: 24, flags: 0, ...a });
  return t.ioctl(label, container, VFIO_IOMMU_UNMAP_DMA, arg, {
    out: fieldsOf(vfio_iommu_type1_dma_unmap, ["size"]),
  });
}

const CAP_NAMES: Record<number, string> = {
  [VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE]: "IOVA_RANGE",
  [VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION]: "MIGRATION",
  [VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL]: "DMA_AVAIL",
};

/** "0x…-0x…" for a range. */
export function rangeText(start: bigint, end: bigint): string {
  return `0x${start.toString(16)}-0x${end.toString(16)}`;
}

/**
 * Walk a type1 info capability chain: `caps` (names in chain order) and per capability
 * `<NAME>.offset`, `<NAME>.version`, `<NAME>.next` and its values.
 */
export function type1InfoCaps(arg: Uint8Array): Record<string, FieldInput> {
  const info = decode(vfio_iommu_type1_info, arg);
  const out: Record<string, FieldInput> = {};
  const names: string[] = [];
  let off = info.cap_offset;
  for (let guard = 0; off !== 0 && off + 8 <= arg.length && guard < 16; guard++) {
    const hdr = decode(vfio_info_cap_header, arg, off);
    const name = CAP_NAMES[hdr.id] ?? `CAP${hdr.id}`;
    names.push(name);
    out[`${name}.offset`] = off;
    out[`${name}.version`] = hdr.version;
    out[`${name}.next`] = hdr.next;
    if (hdr.id === VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION) {
      const m = decode(vfio_iommu_type1_info_cap_migration, arg, off);
      out[`${name}.flags`] = m.flags;
      out[`${name}.pgsize_bitmap`] = m.pgsize_bitmap;
      out[`${name}.max_dirty_bitmap_size`] = m.max_dirty_bitmap_size;
    } else if (hdr.id === VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL) {
      out[`${name}.avail`] = decode(vfio_iommu_type1_info_dma_avail, arg, off).avail;
    } else if (hdr.id === VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
      const c = decode(vfio_iommu_type1_info_cap_iova_range, arg, off);
      out[`${name}.nr_iovas`] = c.nr_iovas;
      const ranges: string[] = [];
      for (let i = 0; i < Math.min(c.nr_iovas, 64); i++) {
        const r = decode(vfio_iova_range, arg, off + 16 + 16 * i);
        ranges.push(rangeText(r.start, r.end));
      }
      out[`${name}.ranges`] = ranges;
    }
    off = hdr.next;
  }
  out.caps = names;
  return out;
}

/** VFIO_IOMMU_GET_INFO with `argsz` (buffer larger); records the header and the capability chain. */
export function type1GetInfo(
  t: ScenarioContext,
  label: string,
  container: number,
  argsz: number,
  fill = 0,
): Observed {
  // Slack past argsz: a kernel bug writing beyond argsz must not corrupt this process.
  const arg = new Uint8Array(Math.max(argsz, vfio_iommu_type1_info.size) + 256).fill(fill);
  arg.set(struct(vfio_iommu_type1_info, { argsz }).subarray(0, 4));
  return t.ioctl(label, container, VFIO_IOMMU_GET_INFO, arg, {
    out: (a) => ({
      ...fieldsOf(vfio_iommu_type1_info, ["argsz", "flags", "iova_pgsizes", "cap_offset"])(a),
      ...(argsz >= 24 ? type1InfoCaps(a) : {}),
    }),
  });
}

/** The expected type1 IOVA_RANGE list of the environment's IOMMU, as recorded. */
export function expectedRanges(t: ScenarioContext): string[] {
  return t.env.iommu.iovaRanges.map((r) => rangeText(r.start, r.end));
}

/** IOMMU_IOAS_ALLOC; records `out_ioas_id`. */
export function ioasAlloc(t: ScenarioContext, label: string, iommufd: number): Observed {
  return t.ioctl(label, iommufd, IOMMU_IOAS_ALLOC, struct(iommu_ioas_alloc, { size: 12 }), {
    out: fieldsOf(iommu_ioas_alloc, ["out_ioas_id"]),
  });
}

/** The id a successful allocation recorded (`out_ioas_id`, `out_devid`, `pt_id`, …). */
export function idOf(obs: Observed, field: string): number {
  const v = obs.out?.[field];
  return typeof v === "number" ? v : -1;
}

/** VFIO_DEVICE_BIND_IOMMUFD; records `out_devid`. */
export function bindIommufd(
  t: ScenarioContext,
  label: string,
  device: number,
  iommufd: number,
  extra: { argsz?: number; flags?: number } = {},
): Observed {
  const arg = struct(vfio_device_bind_iommufd, { argsz: 16, flags: 0, iommufd, ...extra });
  return t.ioctl(label, device, VFIO_DEVICE_BIND_IOMMUFD, arg, {
    out: fieldsOf(vfio_device_bind_iommufd, ["out_devid"]),
  });
}

/** VFIO_DEVICE_ATTACH_IOMMUFD_PT; records `pt_id` (the HWPT id written back). */
export function attachPt(
  t: ScenarioContext,
  label: string,
  device: number,
  ptId: number,
  flags = 0,
): Observed {
  const arg = struct(vfio_device_attach_iommufd_pt, { argsz: 12, flags, pt_id: ptId });
  return t.ioctl(label, device, VFIO_DEVICE_ATTACH_IOMMUFD_PT, arg, {
    out: fieldsOf(vfio_device_attach_iommufd_pt, ["pt_id"]),
  });
}

/**
 * IOMMU_IOAS_IOVA_RANGES with room for `capacity` ranges in `mem`; records `num_iovas`,
 * `out_iova_alignment` and the ranges the kernel filled.
 */
export function iovaRanges(
  t: ScenarioContext,
  label: string,
  iommufd: number,
  ioasId: number,
  capacity: number,
  mem: { address: bigint; bytes: Uint8Array },
  extra: { __reserved?: number } = {},
): Observed {
  mem.bytes.fill(0xa5, 0, Math.min(mem.bytes.length, 16 * 8));
  const arg = struct(iommu_ioas_iova_ranges, {
    size: 32,
    ioas_id: ioasId,
    num_iovas: capacity,
    allowed_iovas: mem.address,
    ...extra,
  });
  return t.ioctl(label, iommufd, IOMMU_IOAS_IOVA_RANGES, arg, {
    out: (a) => {
      const v = decode(iommu_ioas_iova_ranges, a);
      const ranges: string[] = [];
      for (let i = 0; i < Math.min(capacity, v.num_iovas, 8); i++) {
        const r = decode(iommu_iova_range, mem.bytes, 16 * i);
        ranges.push(rangeText(r.start, r.last));
      }
      return { num_iovas: v.num_iovas, out_iova_alignment: v.out_iova_alignment, ranges };
    },
  });
}

/** Arguments of IOMMU_IOAS_MAP (size defaults to 40). */
export interface IoasMapArgs {
  size?: number;
  flags: number;
  ioas_id: number;
  __reserved?: number;
  user_va: bigint;
  length: bigint;
  iova?: bigint;
}

/** IOMMU_IOAS_MAP; records `iova` only when asked (auto-allocated IOVAs depend on addresses). */
export function ioasMap(
  t: ScenarioContext,
  label: string,
  iommufd: number,
  a: IoasMapArgs,
): Observed {
  const arg = struct(iommu_ioas_map, { size: 40, ...a });
  return t.ioctl(label, iommufd, IOMMU_IOAS_MAP, arg);
}

/** IOMMU_IOAS_UNMAP; records `length` (bytes unmapped). */
export function ioasUnmap(
  t: ScenarioContext,
  label: string,
  iommufd: number,
  a: { ioas_id: number; iova: bigint; length: bigint },
): Observed {
  const arg = struct(iommu_ioas_unmap, { size: 24, ...a });
  return t.ioctl(label, iommufd, IOMMU_IOAS_UNMAP, arg, {
    out: fieldsOf(iommu_ioas_unmap, ["length"]),
  });
}

/** An iommufd session through the cdev: iommufd fd, IOAS, device fd, devid, attached HWPT. */
export interface IommufdSession {
  /** /dev/iommu fd. */
  readonly iommufd: number;
  /** The IOAS id. */
  readonly ioas: number;
  /** The cdev fd. */
  readonly device: number;
  /** The iommufd device id. */
  readonly devid: number;
  /** The auto HWPT id (or -1 when not attached). */
  readonly hwpt: number;
}

/** Open /dev/iommu, allocate an IOAS, open and bind the cdev, and (optionally) attach it. */
export function iommufdSession(t: ScenarioContext, attach = true): IommufdSession {
  const iommufd = t.must(t.open("setup: open /dev/iommu", "/dev/iommu"), { ret: "fd" }).raw;
  const ioas = idOf(t.must(ioasAlloc(t, "setup: IOAS_ALLOC", iommufd), { ret: 0 }), "out_ioas_id");
  const device =
    t.must(t.open("setup: open cdev", t.env.cdev ?? "/nonexistent"), { ret: "fd" }).raw;
  const devid = idOf(
    t.must(bindIommufd(t, "setup: BIND_IOMMUFD", device, iommufd), { ret: 0 }),
    "out_devid",
  );
  const hwpt = attach
    ? idOf(t.must(attachPt(t, "setup: ATTACH_IOMMUFD_PT", device, ioas), { ret: 0 }), "pt_id")
    : -1;
  return { iommufd, ioas, device, devid, hwpt };
}

/** Map the whole of `mem` read/write at a fixed IOVA through the type1 API. */
export function mapRw(
  t: ScenarioContext,
  label: string,
  container: number,
  vaddr: bigint,
  iova: bigint,
  size: bigint,
): Observed {
  return mapDma(t, label, container, { flags: 3, vaddr, iova, size });
}

/** IOMMU_DESTROY of object `id` (`size` defaults to the struct's 8 bytes). */
export function destroy(
  t: ScenarioContext,
  label: string,
  fd: number,
  id: number,
  size = 8,
): Observed {
  return t.ioctl(label, fd, IOMMU_DESTROY, struct(iommu_destroy, { size, id }));
}

/**
 * The device fd of this scenario's path: through the group of a type1/compat container
 * session, or the bound and attached cdev of an iommufd session.
 */
export function pathDevice(t: ScenarioContext): number {
  return t.path === "iommufd" ? iommufdSession(t).device : containerSession(t).device;
}

/**
 * VFIO_DEVICE_SET_IRQS with `flags` on `index` from `start`; `data` is the eventfds (DATA_EVENTFD)
 * or the booleans (DATA_BOOL, one byte each) of `count` vectors (default: as many as given).
 */
export function setIrqs(
  t: ScenarioContext,
  label: string,
  device: number,
  a: { flags: number; index: number; start?: number; count?: number; data?: readonly number[] },
): Observed {
  const data = a.data ?? [];
  const width = (a.flags & VFIO_IRQ_SET_DATA_EVENTFD) !== 0
    ? 4
    : (a.flags & VFIO_IRQ_SET_DATA_BOOL) !== 0
    ? 1
    : 0;
  const arg = new Uint8Array(vfio_irq_set.size + data.length * width);
  arg.set(struct(vfio_irq_set, {
    argsz: arg.length,
    flags: a.flags,
    index: a.index,
    start: a.start ?? 0,
    count: a.count ?? data.length,
  }));
  const view = new DataView(arg.buffer);
  data.forEach((v, i) => {
    if (width === 4) view.setInt32(vfio_irq_set.size + 4 * i, v, true);
    else arg[vfio_irq_set.size + i] = v;
  });
  return t.ioctl(label, device, VFIO_DEVICE_SET_IRQS, arg);
}

/** read(2) of an eventfd's 8-byte counter; records `value` (only call it once it was signalled). */
export function readEventfd(t: ScenarioContext, label: string, fd: number): Observed {
  return t.read(label, fd, 8, (d) => ({
    value: d.length === 8 ? new DataView(d.buffer, d.byteOffset).getBigUint64(0, true) : -1,
  }));
}

/** IOMMU_IOAS_MAP flags READABLE | WRITEABLE (an automatic IOVA). */
export const IOAS_RW = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;
/** IOMMU_IOAS_MAP flags FIXED_IOVA | READABLE | WRITEABLE. */
export const IOAS_FIXED_RW = IOMMU_IOAS_MAP_FIXED_IOVA | IOAS_RW;

/** IOMMU_IOAS_ALLOW_IOVAS with `list` of inclusive ranges (an empty list clears it). */
export function allowIovas(
  t: ScenarioContext,
  label: string,
  fd: number,
  ioas: number,
  list: readonly [bigint, bigint][],
): Observed {
  const m = t.mem(t.kernel.pageSize);
  list.forEach(([start, last], i) => {
    m.bytes.set(struct(iommu_iova_range, { start, last }), 16 * i);
  });
  const arg = struct(iommu_ioas_allow_iovas, {
    size: 24,
    ioas_id: ioas,
    num_iovas: list.length,
    allowed_iovas: m.address,
  });
  return t.ioctl(label, fd, IOMMU_IOAS_ALLOW_IOVAS, arg);
}

/** IOMMU_OPTION; records `val64`. */
export function ioasOption(
  t: ScenarioContext,
  label: string,
  fd: number,
  a: { option_id: number; op: number; val64: bigint; object_id?: number },
): Observed {
  return t.ioctl(label, fd, IOMMU_OPTION, struct(iommu_option, { size: 24, ...a }), {
    out: fieldsOf(iommu_option, ["val64"]),
  });
}
