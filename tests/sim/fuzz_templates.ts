/**
 * Templates of valid-looking VFIO and iommufd calls for the simulator fuzzer: for each ioctl its
 * command number, struct size, the fd types it belongs to, and a generator per field that mostly
 * yields plausible values (buffers the process owns, page-aligned IOVAs, small object ids, open
 * fds) and sometimes edge values. The fuzzer then mutates them.
 *
 * @module
 */

import type { MappedMemory } from "../../ffi/kernel.ts";
import type { Rng } from "../helpers/rng.ts";

/** What an fd is, as far as the fuzzer knows. */
export type FdKind =
  | "container"
  | "group"
  | "device"
  | "cdev"
  | "iommufd"
  | "eventfd"
  | "fault"
  | "veventq"
  | "other";

/** Kinds of object ids the kernel hands out (iommufd objects). */
export type IdKind =
  | "ioas"
  | "hwpt"
  | "parent"
  | "nested"
  | "device"
  | "viommu"
  | "vdevice"
  | "fault"
  | "veventq";

/** An IOVA range a successful IOAS_MAP or COPY mapped (for calls that need mapped areas). */
export interface MappedRange {
  readonly ioas: number;
  readonly iova: bigint;
  readonly length: bigint;
}

/** What generators may draw from. */
export interface TemplateWorld {
  /** The seeded generator. */
  readonly rng: Rng;
  /** Open fds. */
  readonly pool: readonly { readonly fd: number; readonly kind: FdKind }[];
  /** Anonymous buffers usable as DMA memory. */
  readonly buffers: readonly MappedMemory[];
  /** A page for pointer arguments (ranges, bitmaps, hw_info data). */
  readonly scratch: MappedMemory;
  /** Object ids earlier answers handed out this round, by kind. */
  readonly ids: Map<IdKind, number[]>;
  /** Ranges mapped this round. */
  readonly mapped: MappedRange[];
}

/** One field of a template. */
export interface FuzzField {
  /** Byte offset. */
  readonly offset: number;
  /** Width in bytes. */
  readonly width: 2 | 4 | 8;
  /** Value generator. */
  readonly gen: (w: TemplateWorld) => number | bigint;
}

/** A valid-looking ioctl. */
export interface FuzzTemplate {
  /** The C macro. */
  readonly name: string;
  /** `_IOC_NR`. */
  readonly nr: number;
  /** Buffer size (the first u32 is set to it: argsz/size). */
  readonly size: number;
  /** The fd types it is meant for. */
  readonly kinds: readonly FdKind[];
  /** Field generators. */
  readonly fields: readonly FuzzField[];
  /** It returns a new fd of this kind. */
  readonly returnsFd?: FdKind;
  /**
   * Structure-aware: a valid call built from what earlier answers gave (object ids, mapped
   * ranges, open fds); the fuzzer then mutates one of `fields`. Undefined when nothing to build
   * from exists yet.
   */
  readonly valid?: (w: TemplateWorld) => Uint8Array | undefined;
  /** Ids a successful call hands out: the u32 at `offset` is a new object of `kind`. */
  readonly yields?: readonly { readonly offset: number; readonly kind: IdKind }[];
  /** Bookkeeping after a successful call (e.g. the range it mapped). */
  readonly after?: (w: TemplateWorld, arg: Uint8Array) => void;
  /** An fd the call returns in the struct (u32 at `offset`) and its kind. */
  readonly fdOut?: { readonly offset: number; readonly kind: FdKind };
}

const U64_MAX = (1n << 64n) - 1n;

/** A field at `offset` of `width` bytes filled by `gen`. */
export function f(
  offset: number,
  width: 2 | 4 | 8,
  gen: (w: TemplateWorld) => number | bigint,
): FuzzField {
  return { offset, width, gen };
}

const small = (max: number) => (w: TemplateWorld): number => w.rng.int(0, max);
const bits = (n: number) => (w: TemplateWorld): number =>
  w.rng.chance(0.7) ? w.rng.int(0, 1 << n) : w.rng.u32();
/** Map permissions: mostly READ|WRITE (type1) or READABLE|WRITEABLE(|FIXED_IOVA) (iommufd). */
const rw = (w: TemplateWorld): number => w.rng.chance(0.7) ? 3 : w.rng.int(0, 8);
const ioasRw = (w: TemplateWorld): number =>
  w.rng.chance(0.7) ? w.rng.pick([6, 7]) : w.rng.int(0, 16);
/** An object id: mostly one the kernel handed out this round (any kind), else small or random. */
export function id(w: TemplateWorld): number {
  const all = [...w.ids.values()].flat();
  if (all.length > 0 && w.rng.chance(0.7)) return w.rng.pick(all);
  return w.rng.chance(0.9) ? w.rng.int(0, 7) : w.rng.u32();
}

/** An id of `kind` from earlier answers (sometimes one of another kind, or a small number). */
export function idOf(kind: IdKind): (w: TemplateWorld) => number {
  return (w) => {
    const list = w.ids.get(kind) ?? [];
    if (list.length > 0 && w.rng.chance(0.9)) return w.rng.pick(list);
    return id(w);
  };
}

/** A process address: mostly inside a buffer, sometimes misaligned or unmapped. */
export function va(w: TemplateWorld): bigint {
  const b = w.rng.pick(w.buffers);
  const r = w.rng.float();
  if (r < 0.8) return b.address + BigInt(w.rng.int(0, b.length / 4096) * 4096);
  if (r < 0.9) return b.address + 0x800n;
  return w.rng.pick([0n, 0x1000n, U64_MAX - 0xfffn, w.rng.u64()]);
}

/** A length: page multiples, zero, sub-page, huge, random. */
export function len(w: TemplateWorld): bigint {
  if (w.rng.chance(0.6)) return BigInt(w.rng.int(1, 9) * 4096);
  return w.rng.pick([
    0x1000n,
    0x2000n,
    0x10000n,
    0x200000n,
    0n,
    0x800n,
    U64_MAX,
    BigInt(w.rng.int(1, 64) * 4096),
  ]);
}

/** An IOVA: low, usual, in the MSI window, at the top of the address width, random. */
export function iova(w: TemplateWorld): bigint {
  if (w.rng.chance(0.6)) return 0x100000n + (BigInt(w.rng.int(0, 64)) << 12n);
  return w.rng.pick([
    0n,
    0x1000n,
    0x100000n,
    0x101000n,
    0xfee00000n,
    1n << 48n,
    U64_MAX - 0xfffn,
    BigInt(w.rng.int(0, 1 << 20)) << 12n,
    w.rng.u64(),
  ]);
}

/** An fd: one the process holds, or -1, or one it does not. */
export function fd(w: TemplateWorld): number {
  if (w.pool.length > 0 && w.rng.chance(0.8)) return w.rng.pick(w.pool).fd;
  return w.rng.pick([-1, 999, 0]);
}

/** The scratch page (sometimes a bad pointer); its content is random iova ranges. */
export function ptr(w: TemplateWorld): bigint {
  if (w.rng.chance(0.1)) return w.rng.pick([0n, 0x1000n, w.rng.u64()]);
  const view = new DataView(w.scratch.bytes.buffer, w.scratch.bytes.byteOffset);
  for (let i = 0; i < 8; i++) {
    const start = iova(w);
    view.setBigUint64(16 * i, start, true);
    view.setBigUint64(16 * i + 8, w.rng.chance(0.7) ? start + 0xfffffn : w.rng.u64(), true);
  }
  return w.scratch.address;
}

/** After a successful IOAS_MAP: remember the range (ioas_id at 8, length at 24, iova at 32). */
export function recordMapped(w: TemplateWorld, arg: Uint8Array): void {
  if (arg.length < 40) return;
  const v = new DataView(arg.buffer, arg.byteOffset);
  w.mapped.push({
    ioas: v.getUint32(8, true),
    iova: v.getBigUint64(32, true),
    length: v.getBigUint64(24, true),
  });
}

const regionOffset = (w: TemplateWorld): bigint =>
  (BigInt(w.rng.int(0, 10)) << 40n) | BigInt(w.rng.int(0, 0x100) * 4);

const CONTAINER: readonly FdKind[] = ["container", "iommufd"];
const DEVICE: readonly FdKind[] = ["device", "cdev"];
const IOMMUFD: readonly FdKind[] = ["iommufd"];

/** Every template. */
export const FUZZ_TEMPLATES: readonly FuzzTemplate[] = [
  { name: "VFIO_GROUP_GET_STATUS", nr: 103, size: 8, kinds: ["group"], fields: [] },
  { name: "VFIO_GROUP_SET_CONTAINER", nr: 104, size: 4, kinds: ["group"], fields: [f(0, 4, fd)] },
  {
    name: "VFIO_IOMMU_GET_INFO",
    nr: 112,
    size: 256,
    kinds: CONTAINER,
    fields: [f(0, 4, (w) => w.rng.pick([16, 24, 120, 256, w.rng.int(0, 300)]))],
  },
  {
    name: "VFIO_IOMMU_MAP_DMA",
    nr: 113,
    size: 32,
    kinds: CONTAINER,
    fields: [f(4, 4, rw), f(8, 8, va), f(16, 8, iova), f(24, 8, len)],
  },
  {
    name: "VFIO_IOMMU_UNMAP_DMA",
    nr: 114,
    size: 48,
    kinds: CONTAINER,
    fields: [
      f(0, 4, (w) => w.rng.pick([24, 48])),
      f(4, 4, bits(3)),
      f(8, 8, iova),
      f(16, 8, len),
      f(24, 8, (w) => w.rng.pick([0x1000n, len(w)])),
      f(32, 8, len),
      f(40, 8, ptr),
    ],
  },
  {
    name: "VFIO_IOMMU_DIRTY_PAGES",
    nr: 117,
    size: 48,
    kinds: CONTAINER,
    fields: [
      f(4, 4, bits(3)),
      f(8, 8, iova),
      f(16, 8, len),
      f(24, 8, () => 0x1000n),
      f(32, 8, len),
      f(40, 8, ptr),
    ],
  },
  {
    name: "VFIO_DEVICE_GET_INFO",
    nr: 107,
    size: 64,
    kinds: DEVICE,
    fields: [f(0, 4, (w) => w.rng.pick([16, 24, 64]))],
  },
  {
    name: "VFIO_DEVICE_GET_REGION_INFO",
    nr: 108,
    size: 128,
    kinds: DEVICE,
    fields: [f(0, 4, (w) => w.rng.pick([32, 128])), f(8, 4, small(12))],
  },
  {
    name: "VFIO_DEVICE_GET_IRQ_INFO",
    nr: 109,
    size: 16,
    kinds: DEVICE,
    fields: [f(8, 4, small(7))],
  },
  {
    name: "VFIO_DEVICE_SET_IRQS",
    nr: 110,
    size: 28,
    kinds: DEVICE,
    fields: [
      f(4, 4, bits(6)),
      f(8, 4, small(6)),
      f(12, 4, small(3)),
      f(16, 4, small(3)),
      f(20, 4, fd),
      f(24, 4, fd),
    ],
  },
  { name: "VFIO_DEVICE_RESET", nr: 111, size: 4, kinds: DEVICE, fields: [] },
  {
    name: "VFIO_DEVICE_GET_PCI_HOT_RESET_INFO",
    nr: 112,
    size: 76,
    kinds: DEVICE,
    fields: [f(0, 4, (w) => w.rng.pick([12, 20, 76]))],
  },
  {
    name: "VFIO_DEVICE_PCI_HOT_RESET",
    nr: 113,
    size: 20,
    kinds: DEVICE,
    fields: [f(4, 4, bits(1)), f(8, 4, small(3)), f(12, 4, fd), f(16, 4, fd)],
  },
  {
    name: "VFIO_DEVICE_IOEVENTFD",
    nr: 116,
    size: 32,
    kinds: DEVICE,
    fields: [f(4, 4, bits(5)), f(8, 8, regionOffset), f(16, 8, (w) => w.rng.u64()), f(24, 4, fd)],
  },
  {
    name: "VFIO_DEVICE_FEATURE",
    nr: 117,
    size: 40,
    kinds: DEVICE,
    fields: [
      f(4, 4, (w) => w.rng.int(0, 13) | (w.rng.int(0, 8) << 16)),
      f(8, 8, (w) => w.rng.u64()),
    ],
  },
  {
    name: "VFIO_DEVICE_BIND_IOMMUFD",
    nr: 118,
    size: 16,
    kinds: DEVICE,
    fields: [f(4, 4, bits(1)), f(8, 4, fd)],
    yields: [{ offset: 12, kind: "device" }],
  },
  {
    name: "VFIO_DEVICE_ATTACH_IOMMUFD_PT",
    nr: 119,
    size: 12,
    kinds: DEVICE,
    fields: [f(4, 4, bits(1)), f(8, 4, id)],
  },
  {
    name: "VFIO_DEVICE_DETACH_IOMMUFD_PT",
    nr: 120,
    size: 8,
    kinds: DEVICE,
    fields: [f(4, 4, bits(1))],
  },
  { name: "IOMMU_DESTROY", nr: 0x80, size: 8, kinds: IOMMUFD, fields: [f(4, 4, id)] },
  {
    name: "IOMMU_IOAS_ALLOC",
    nr: 0x81,
    size: 12,
    kinds: IOMMUFD,
    fields: [f(4, 4, bits(1))],
    yields: [{ offset: 8, kind: "ioas" }],
  },
  {
    name: "IOMMU_IOAS_ALLOW_IOVAS",
    nr: 0x82,
    size: 24,
    kinds: IOMMUFD,
    fields: [f(4, 4, id), f(8, 4, small(5)), f(12, 4, bits(1)), f(16, 8, ptr)],
  },
  {
    name: "IOMMU_IOAS_COPY",
    nr: 0x83,
    size: 40,
    kinds: IOMMUFD,
    fields: [
      f(4, 4, bits(3)),
      f(8, 4, id),
      f(12, 4, id),
      f(16, 8, len),
      f(24, 8, iova),
      f(32, 8, iova),
    ],
  },
  {
    name: "IOMMU_IOAS_IOVA_RANGES",
    nr: 0x84,
    size: 32,
    kinds: IOMMUFD,
    fields: [f(4, 4, id), f(8, 4, small(9)), f(12, 4, bits(1)), f(16, 8, ptr)],
  },
  {
    name: "IOMMU_IOAS_MAP",
    nr: 0x85,
    size: 40,
    kinds: IOMMUFD,
    fields: [
      f(4, 4, ioasRw),
      f(8, 4, idOf("ioas")),
      f(12, 4, bits(1)),
      f(16, 8, va),
      f(24, 8, len),
      f(32, 8, iova),
    ],
    after: recordMapped,
  },
  {
    name: "IOMMU_IOAS_UNMAP",
    nr: 0x86,
    size: 24,
    kinds: IOMMUFD,
    fields: [f(4, 4, id), f(8, 8, iova), f(16, 8, len)],
  },
  {
    name: "IOMMU_OPTION",
    nr: 0x87,
    size: 24,
    kinds: IOMMUFD,
    fields: [
      f(4, 4, small(3)),
      f(8, 2, small(3)),
      f(10, 2, bits(1)),
      f(12, 4, id),
      f(16, 8, (w) => BigInt(w.rng.int(0, 3))),
    ],
  },
  {
    name: "IOMMU_VFIO_IOAS",
    nr: 0x88,
    size: 12,
    kinds: IOMMUFD,
    fields: [f(4, 4, id), f(8, 2, small(4)), f(10, 2, bits(1))],
  },
  {
    name: "IOMMU_HWPT_ALLOC",
    nr: 0x89,
    size: 48,
    kinds: IOMMUFD,
    fields: [
      f(4, 4, bits(3)),
      f(8, 4, id),
      f(12, 4, id),
      f(20, 4, bits(1)),
      f(24, 4, small(3)),
      f(28, 4, small(40)),
      f(32, 8, ptr),
      f(40, 4, id),
    ],
    yields: [{ offset: 16, kind: "hwpt" }],
  },
  {
    name: "IOMMU_GET_HW_INFO",
    nr: 0x8a,
    size: 40,
    kinds: IOMMUFD,
    fields: [
      f(4, 4, bits(1)),
      f(8, 4, id),
      f(12, 4, (w) => w.rng.pick([0, 8, 24, 64, 8192])),
      f(16, 8, ptr),
    ],
  },
  {
    name: "IOMMU_HWPT_SET_DIRTY_TRACKING",
    nr: 0x8b,
    size: 16,
    kinds: IOMMUFD,
    fields: [f(4, 4, bits(1)), f(8, 4, id)],
  },
  {
    name: "IOMMU_HWPT_GET_DIRTY_BITMAP",
    nr: 0x8c,
    size: 48,
    kinds: IOMMUFD,
    fields: [
      f(4, 4, id),
      f(8, 4, bits(1)),
      f(16, 8, iova),
      f(24, 8, len),
      f(32, 8, () => 0x1000n),
      f(40, 8, ptr),
    ],
  },
  {
    name: "IOMMU_HWPT_INVALIDATE",
    nr: 0x8d,
    size: 32,
    kinds: IOMMUFD,
    fields: [
      f(4, 4, id),
      f(8, 8, ptr),
      f(16, 4, small(2)),
      f(20, 4, (w) => w.rng.pick([0, 24, 32, 8192])),
      f(24, 4, small(4)),
    ],
  },
  {
    name: "IOMMU_FAULT_QUEUE_ALLOC",
    nr: 0x8e,
    size: 16,
    kinds: IOMMUFD,
    fields: [f(4, 4, bits(1))],
    yields: [{ offset: 8, kind: "fault" }],
    fdOut: { offset: 12, kind: "fault" },
  },
];
