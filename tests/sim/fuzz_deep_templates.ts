/**
 * Structure-aware fuzz templates: each builds a valid call from what earlier answers of the
 * round handed out (IOAS, device, HWPT, nest-parent, vIOMMU, vDEVICE, fault ids; mapped ranges;
 * open eventfds), so that random mutation of one field starts from a call that passes the
 * first checks and reaches the deep paths: HWPT paging and nested allocation (VT-d stage-1 and
 * SMMUv3 STE data), vIOMMU / vDEVICE / vEVENTQ allocation, HWPT invalidation, IOAS_COPY,
 * SET_IRQS with real eventfds, PASID attach and detach, and IOMMU_TEST_CMD (the sPAPR TCE
 * container's are in fuzz_spapr_templates.ts).
 *
 * @module
 */

import { encode, fieldSize, type StructLayout } from "../../ffi/uapi/layout.ts";
import * as I from "../../ffi/uapi/iommufd.ts";
import * as L from "../../ffi/uapi/post_6_12.ts";
import * as V from "../../ffi/uapi/vfio.ts";
import { iommu_test_cmd } from "../../ffi/uapi/iommufd_test.ts";
import {
  f,
  type FdKind,
  type FuzzField,
  type FuzzTemplate,
  type IdKind,
  idOf,
  iova,
  len,
  recordMapped,
  type TemplateWorld,
  va,
} from "./fuzz_templates.ts";

const IOMMUFD: readonly FdKind[] = ["iommufd"];
const DEVICE: readonly FdKind[] = ["device", "cdev"];
const RW = I.IOMMU_IOAS_MAP_READABLE | I.IOMMU_IOAS_MAP_WRITEABLE;
/** Where in the scratch page nested data, invalidation entries and hw_info output go. */
const SCRATCH_DATA = 0x400;
const SCRATCH_ENTRIES = 0x600;
const SCRATCH_INFO = 0x800;

/** A field of `layout` by name, filled by `gen`. */
export function fl<Lt extends StructLayout>(
  layout: Lt,
  name: keyof Lt["fields"] & string,
  gen: (w: TemplateWorld) => number | bigint,
): FuzzField {
  const decl = layout.fields[name];
  return f(decl.offset, fieldSize(decl) as 2 | 4 | 8, gen);
}

/** An id of one of `kinds` from earlier answers, or undefined when there is none. */
function some(w: TemplateWorld, ...kinds: IdKind[]): number | undefined {
  const all = kinds.flatMap((k) => w.ids.get(k) ?? []);
  return all.length > 0 ? w.rng.pick(all) : undefined;
}

/** The u32 at `offset` of an answer. */
function u32(arg: Uint8Array, offset: number): number {
  return arg.length >= offset + 4
    ? new DataView(arg.buffer, arg.byteOffset).getUint32(offset, true)
    : 0;
}

function push(w: TemplateWorld, kind: IdKind, id: number): void {
  const list = w.ids.get(kind) ?? [];
  list.push(id);
  w.ids.set(kind, list);
}

/** Bytes written into the scratch page at `offset`; returns their user address. */
function stash(w: TemplateWorld, offset: number, bytes: Uint8Array): bigint {
  w.scratch.bytes.set(bytes, offset);
  return w.scratch.address + BigInt(offset);
}

/** A page-aligned range inside one of the process's buffers. */
function bufferRange(w: TemplateWorld): { va: bigint; length: bigint } {
  const b = w.rng.pick(w.buffers);
  const pages = b.length / 4096;
  const first = w.rng.int(0, pages);
  const n = w.rng.int(1, Math.min(8, pages - first) + 1);
  return { va: b.address + BigInt(first * 4096), length: BigInt(n * 4096) };
}

const hwptFlags = (w: TemplateWorld): number =>
  w.rng.pick([
    0,
    0,
    I.IOMMU_HWPT_ALLOC_NEST_PARENT,
    I.IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
    L.IOMMU_HWPT_ALLOC_PASID,
    I.IOMMU_HWPT_ALLOC_NEST_PARENT | L.IOMMU_HWPT_ALLOC_PASID,
  ]);

/** A guest stage-1 description of the IOMMU's format: VT-d's first-stage or an SMMUv3 STE. */
function nestedData(w: TemplateWorld): { type: number; data: Uint8Array } {
  if (w.rng.chance(0.5)) {
    const data = encode(I.iommu_hwpt_vtd_s1, {
      flags: w.rng.chance(0.8) ? 0n : BigInt(w.rng.int(0, 8)),
      pgtbl_addr: BigInt(w.rng.int(1, 1 << 16)) << 12n,
      addr_width: w.rng.pick([48, 48, 57, 39]),
    });
    return { type: I.IOMMU_HWPT_DATA_VTD_S1, data };
  }
  // V, Config = stage-1 translate (0b101), S1ContextPtr page-aligned; sometimes V = 0 (abort).
  const w0 = (w.rng.chance(0.9) ? 1n : 0n) | (0b101n << 1n) |
    (BigInt(w.rng.int(0, 1 << 16)) << 12n);
  const data = encode(L.iommu_hwpt_arm_smmuv3, { ste: [w0, 0n] });
  return { type: L.IOMMU_HWPT_DATA_ARM_SMMUV3, data };
}

/** Structure-aware templates. */
export const DEEP_TEMPLATES: readonly FuzzTemplate[] = [
  {
    name: "IOMMU_HWPT_ALLOC paging",
    nr: I.IOMMU_HWPT_ALLOC.nr,
    size: I.iommu_hwpt_alloc.size,
    kinds: IOMMUFD,
    fields: [
      fl(I.iommu_hwpt_alloc, "flags", hwptFlags),
      fl(I.iommu_hwpt_alloc, "dev_id", idOf("device")),
      fl(I.iommu_hwpt_alloc, "pt_id", idOf("ioas")),
    ],
    valid: (w) => {
      const dev = some(w, "device");
      const ioas = some(w, "ioas");
      if (dev === undefined || ioas === undefined) return undefined;
      return encode(I.iommu_hwpt_alloc, {
        size: 48,
        flags: hwptFlags(w),
        dev_id: dev,
        pt_id: ioas,
      });
    },
    yields: [{ offset: 16, kind: "hwpt" }],
    after: (w, arg) => {
      if (u32(arg, 4) & I.IOMMU_HWPT_ALLOC_NEST_PARENT) push(w, "parent", u32(arg, 16));
    },
  },
  {
    name: "IOMMU_HWPT_ALLOC nested",
    nr: I.IOMMU_HWPT_ALLOC.nr,
    size: I.iommu_hwpt_alloc.size,
    kinds: IOMMUFD,
    fields: [
      fl(I.iommu_hwpt_alloc, "flags", (w) => w.rng.pick([0, I.IOMMU_HWPT_FAULT_ID_VALID])),
      fl(I.iommu_hwpt_alloc, "pt_id", idOf("parent")),
      fl(I.iommu_hwpt_alloc, "data_type", (w) => w.rng.int(0, 4)),
      fl(I.iommu_hwpt_alloc, "data_len", (w) => w.rng.pick([0, 8, 16, 24, 32])),
      fl(I.iommu_hwpt_alloc, "fault_id", idOf("fault")),
    ],
    valid: (w) => {
      const dev = some(w, "device");
      const parent = some(w, "parent", "viommu");
      if (dev === undefined || parent === undefined) return undefined;
      const { type, data } = nestedData(w);
      const fault = w.rng.chance(0.2) ? some(w, "fault") : undefined;
      return encode(I.iommu_hwpt_alloc, {
        size: 48,
        flags: fault === undefined ? 0 : I.IOMMU_HWPT_FAULT_ID_VALID,
        dev_id: dev,
        pt_id: parent,
        data_type: type,
        data_len: data.length,
        data_uptr: stash(w, SCRATCH_DATA, data),
        fault_id: fault ?? 0,
      });
    },
    yields: [{ offset: 16, kind: "nested" }],
  },
  {
    name: "IOMMU_VIOMMU_ALLOC",
    nr: L.IOMMU_VIOMMU_ALLOC.nr,
    size: L.iommu_viommu_alloc.size,
    kinds: IOMMUFD,
    fields: [
      fl(L.iommu_viommu_alloc, "type", (w) => w.rng.int(0, 3)),
      fl(L.iommu_viommu_alloc, "dev_id", idOf("device")),
      fl(L.iommu_viommu_alloc, "hwpt_id", idOf("parent")),
    ],
    valid: (w) => {
      const dev = some(w, "device");
      const parent = some(w, "parent");
      if (dev === undefined || parent === undefined) return undefined;
      return encode(L.iommu_viommu_alloc, {
        size: 24,
        type: w.rng.pick([L.IOMMU_VIOMMU_TYPE_ARM_SMMUV3, L.IOMMU_VIOMMU_TYPE_DEFAULT]),
        dev_id: dev,
        hwpt_id: parent,
      });
    },
    yields: [{ offset: 20, kind: "viommu" }],
  },
  {
    name: "IOMMU_VDEVICE_ALLOC",
    nr: L.IOMMU_VDEVICE_ALLOC.nr,
    size: L.iommu_vdevice_alloc.size,
    kinds: IOMMUFD,
    fields: [
      fl(L.iommu_vdevice_alloc, "viommu_id", idOf("viommu")),
      fl(L.iommu_vdevice_alloc, "dev_id", idOf("device")),
      fl(L.iommu_vdevice_alloc, "virt_id", (w) => BigInt(w.rng.int(0, 0x100))),
    ],
    valid: (w) => {
      const viommu = some(w, "viommu");
      const dev = some(w, "device");
      if (viommu === undefined || dev === undefined) return undefined;
      return encode(L.iommu_vdevice_alloc, {
        size: 24,
        viommu_id: viommu,
        dev_id: dev,
        virt_id: BigInt(w.rng.int(0, 0x80)),
      });
    },
    yields: [{ offset: 12, kind: "vdevice" }],
  },
  {
    name: "IOMMU_VEVENTQ_ALLOC",
    nr: L.IOMMU_VEVENTQ_ALLOC.nr,
    size: L.iommu_veventq_alloc.size,
    kinds: IOMMUFD,
    fields: [
      fl(L.iommu_veventq_alloc, "viommu_id", idOf("viommu")),
      fl(L.iommu_veventq_alloc, "type", (w) => w.rng.int(0, 3)),
      fl(L.iommu_veventq_alloc, "veventq_depth", (w) => w.rng.pick([0, 1, 64, 1 << 20])),
    ],
    valid: (w) => {
      const viommu = some(w, "viommu");
      if (viommu === undefined) return undefined;
      return encode(L.iommu_veventq_alloc, {
        size: 32,
        viommu_id: viommu,
        type: L.IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
        veventq_depth: w.rng.int(1, 65),
      });
    },
    yields: [{ offset: 20, kind: "veventq" }],
    fdOut: { offset: 24, kind: "veventq" },
  },
  {
    name: "IOMMU_HWPT_INVALIDATE",
    nr: I.IOMMU_HWPT_INVALIDATE.nr,
    size: I.iommu_hwpt_invalidate.size,
    kinds: IOMMUFD,
    fields: [
      fl(I.iommu_hwpt_invalidate, "hwpt_id", idOf("nested")),
      fl(I.iommu_hwpt_invalidate, "data_type", (w) => w.rng.int(0, 3)),
      fl(I.iommu_hwpt_invalidate, "entry_len", (w) => w.rng.pick([0, 16, 24, 32])),
      fl(I.iommu_hwpt_invalidate, "entry_num", (w) => w.rng.int(0, 4)),
    ],
    valid: (w) => {
      // A vIOMMU takes SMMUv3 commands; a nested HWPT of its own driver VT-d's entries.
      const viommu = w.rng.chance(0.5) ? some(w, "viommu") : undefined;
      const target = viommu ?? some(w, "nested");
      if (target === undefined) return undefined;
      const vtd = viommu === undefined;
      const num = w.rng.int(1, 3);
      const entries = new Uint8Array(num * 24);
      for (let i = 0; i < num; i++) {
        const entry = vtd
          ? encode(I.iommu_hwpt_vtd_s1_invalidate, {
            addr: BigInt(w.rng.int(0, 1 << 16)) << 12n,
            npages: BigInt(w.rng.int(1, 16)),
          })
          : encode(L.iommu_viommu_arm_smmuv3_invalidate, {
            // TLBI_NH_ALL/ASID/VA/VAA, CFGI_CD, CFGI_CD_ALL, CFGI_STE: what a vSMMU forwards.
            cmd: [BigInt(w.rng.pick([0x10, 0x11, 0x12, 0x13, 0x05, 0x06, 0x03])), 0n],
          });
        entries.set(entry, i * entry.length);
      }
      const entryLen = vtd ? I.iommu_hwpt_vtd_s1_invalidate.size : 16;
      return encode(I.iommu_hwpt_invalidate, {
        size: 32,
        hwpt_id: target,
        data_uptr: stash(w, SCRATCH_ENTRIES, entries),
        data_type: vtd
          ? I.IOMMU_HWPT_INVALIDATE_DATA_VTD_S1
          : L.IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3,
        entry_len: entryLen,
        entry_num: num,
      });
    },
  },
  {
    name: "IOMMU_IOAS_MAP valid",
    nr: I.IOMMU_IOAS_MAP.nr,
    size: I.iommu_ioas_map.size,
    kinds: IOMMUFD,
    fields: [
      fl(I.iommu_ioas_map, "flags", (w) => w.rng.int(0, 16)),
      fl(I.iommu_ioas_map, "ioas_id", idOf("ioas")),
      fl(I.iommu_ioas_map, "user_va", va),
      fl(I.iommu_ioas_map, "length", len),
      fl(I.iommu_ioas_map, "iova", iova),
    ],
    valid: (w) => {
      const ioas = some(w, "ioas");
      if (ioas === undefined) return undefined;
      const r = bufferRange(w);
      const fixed = w.rng.chance(0.6);
      return encode(I.iommu_ioas_map, {
        size: 40,
        flags: fixed ? I.IOMMU_IOAS_MAP_FIXED_IOVA | RW : RW,
        ioas_id: ioas,
        user_va: r.va,
        length: r.length,
        iova: fixed ? 0x100000n + (BigInt(w.rng.int(0, 256)) << 12n) : 0n,
      });
    },
    after: recordMapped,
  },
  {
    name: "IOMMU_IOAS_COPY valid",
    nr: I.IOMMU_IOAS_COPY.nr,
    size: I.iommu_ioas_copy.size,
    kinds: IOMMUFD,
    fields: [
      fl(I.iommu_ioas_copy, "flags", (w) => w.rng.int(0, 16)),
      fl(I.iommu_ioas_copy, "dst_ioas_id", idOf("ioas")),
      fl(I.iommu_ioas_copy, "src_ioas_id", idOf("ioas")),
      fl(I.iommu_ioas_copy, "length", len),
      fl(I.iommu_ioas_copy, "dst_iova", iova),
      fl(I.iommu_ioas_copy, "src_iova", iova),
    ],
    valid: (w) => {
      const dst = some(w, "ioas");
      if (w.mapped.length === 0 || dst === undefined) return undefined;
      const src = w.rng.pick(w.mapped);
      const fixed = w.rng.chance(0.5);
      return encode(I.iommu_ioas_copy, {
        size: 40,
        flags: (fixed ? I.IOMMU_IOAS_MAP_FIXED_IOVA : 0) | RW,
        dst_ioas_id: dst,
        src_ioas_id: src.ioas,
        length: w.rng.chance(0.7) ? src.length : 0x1000n,
        dst_iova: fixed ? 0x800000n + (BigInt(w.rng.int(0, 256)) << 12n) : 0n,
        src_iova: src.iova,
      });
    },
    after: (w, arg) => {
      const v = new DataView(arg.buffer, arg.byteOffset);
      w.mapped.push({
        ioas: v.getUint32(8, true),
        iova: v.getBigUint64(24, true),
        length: v.getBigUint64(16, true),
      });
    },
  },
  {
    name: "IOMMU_IOAS_UNMAP valid",
    nr: I.IOMMU_IOAS_UNMAP.nr,
    size: I.iommu_ioas_unmap.size,
    kinds: IOMMUFD,
    fields: [fl(I.iommu_ioas_unmap, "iova", iova), fl(I.iommu_ioas_unmap, "length", len)],
    valid: (w) => {
      if (w.mapped.length === 0) return undefined;
      const r = w.rng.pick(w.mapped);
      return encode(I.iommu_ioas_unmap, {
        size: 24,
        ioas_id: r.ioas,
        iova: r.iova,
        length: r.length,
      });
    },
  },
  {
    name: "VFIO_DEVICE_SET_IRQS valid",
    nr: V.VFIO_DEVICE_SET_IRQS.nr,
    size: V.vfio_irq_set.size + 8,
    kinds: DEVICE,
    fields: [
      fl(V.vfio_irq_set, "flags", (w) => w.rng.int(0, 64)),
      fl(V.vfio_irq_set, "index", (w) => w.rng.int(0, 6)),
      fl(V.vfio_irq_set, "start", (w) => w.rng.int(0, 3)),
      fl(V.vfio_irq_set, "count", (w) => w.rng.int(0, 3)),
      f(V.vfio_irq_set.size, 4, (w) => w.rng.int(-3, 16)),
    ],
    valid: (w) => {
      const fds = w.pool.filter((e) => e.kind === "eventfd").map((e) => e.fd);
      const index = w.rng.pick([
        V.VFIO_PCI_INTX_IRQ_INDEX,
        V.VFIO_PCI_MSI_IRQ_INDEX,
        V.VFIO_PCI_MSIX_IRQ_INDEX,
        V.VFIO_PCI_REQ_IRQ_INDEX,
      ]);
      const data = w.rng.pick([
        V.VFIO_IRQ_SET_DATA_EVENTFD,
        V.VFIO_IRQ_SET_DATA_EVENTFD,
        V.VFIO_IRQ_SET_DATA_NONE,
        V.VFIO_IRQ_SET_DATA_BOOL,
      ]);
      const action = index === V.VFIO_PCI_INTX_IRQ_INDEX
        ? w.rng.pick([
          V.VFIO_IRQ_SET_ACTION_TRIGGER,
          V.VFIO_IRQ_SET_ACTION_MASK,
          V.VFIO_IRQ_SET_ACTION_UNMASK,
        ])
        : V.VFIO_IRQ_SET_ACTION_TRIGGER;
      const count = data === V.VFIO_IRQ_SET_DATA_NONE ? w.rng.int(0, 2) : 1;
      const width = data === V.VFIO_IRQ_SET_DATA_EVENTFD
        ? 4
        : data === V.VFIO_IRQ_SET_DATA_BOOL
        ? 1
        : 0;
      const arg = new Uint8Array(V.vfio_irq_set.size + 8);
      arg.set(encode(V.vfio_irq_set, {
        argsz: V.vfio_irq_set.size + count * width,
        flags: data | action,
        index,
        start: 0,
        count,
      }));
      const fd = fds.length > 0 && w.rng.chance(0.9) ? w.rng.pick(fds) : -1;
      if (width === 4) new DataView(arg.buffer).setInt32(V.vfio_irq_set.size, fd, true);
      if (width === 1) arg[V.vfio_irq_set.size] = 1;
      return arg;
    },
  },
  {
    name: "VFIO_DEVICE_ATTACH_IOMMUFD_PT pasid",
    nr: V.VFIO_DEVICE_ATTACH_IOMMUFD_PT.nr,
    size: L.vfio_device_attach_iommufd_pt_pasid.size,
    kinds: ["cdev"],
    fields: [
      fl(L.vfio_device_attach_iommufd_pt_pasid, "flags", (w) => w.rng.int(0, 4)),
      fl(L.vfio_device_attach_iommufd_pt_pasid, "pt_id", idOf("hwpt")),
      fl(
        L.vfio_device_attach_iommufd_pt_pasid,
        "pasid",
        (w) => w.rng.pick([0, 1, 2, 255, 256, w.rng.u32()]),
      ),
    ],
    valid: (w) => {
      const pt = some(w, "hwpt", "ioas", "nested");
      if (pt === undefined) return undefined;
      const pasid = w.rng.chance(0.3) ? 0 : w.rng.int(1, 16);
      return encode(L.vfio_device_attach_iommufd_pt_pasid, {
        argsz: pasid === 0 ? 12 : 16,
        flags: pasid === 0 ? 0 : L.VFIO_DEVICE_ATTACH_PASID,
        pt_id: pt,
        pasid,
      });
    },
  },
  {
    name: "VFIO_DEVICE_DETACH_IOMMUFD_PT pasid",
    nr: V.VFIO_DEVICE_DETACH_IOMMUFD_PT.nr,
    size: L.vfio_device_detach_iommufd_pt_pasid.size,
    kinds: ["cdev"],
    fields: [
      fl(L.vfio_device_detach_iommufd_pt_pasid, "flags", (w) => w.rng.int(0, 4)),
      fl(L.vfio_device_detach_iommufd_pt_pasid, "pasid", (w) => w.rng.int(0, 20)),
    ],
    valid: (w) =>
      encode(L.vfio_device_detach_iommufd_pt_pasid, {
        argsz: 12,
        flags: L.VFIO_DEVICE_DETACH_PASID,
        pasid: w.rng.int(1, 16),
      }),
  },
  {
    name: "IOMMU_GET_HW_INFO valid",
    nr: I.IOMMU_GET_HW_INFO.nr,
    size: I.iommu_hw_info.size,
    kinds: IOMMUFD,
    fields: [
      fl(I.iommu_hw_info, "dev_id", idOf("device")),
      fl(I.iommu_hw_info, "data_len", (w) => w.rng.pick([0, 8, 40, 64, 1 << 20])),
    ],
    valid: (w) => {
      const dev = some(w, "device");
      if (dev === undefined) return undefined;
      return encode(I.iommu_hw_info, {
        size: 40,
        dev_id: dev,
        data_len: 64,
        data_uptr: w.scratch.address + BigInt(SCRATCH_INFO),
      });
    },
  },
  {
    name: "IOMMU_HWPT_SET_DIRTY_TRACKING valid",
    nr: I.IOMMU_HWPT_SET_DIRTY_TRACKING.nr,
    size: I.iommu_hwpt_set_dirty_tracking.size,
    kinds: IOMMUFD,
    fields: [fl(I.iommu_hwpt_set_dirty_tracking, "flags", (w) => w.rng.int(0, 3))],
    valid: (w) => {
      const hwpt = some(w, "hwpt");
      if (hwpt === undefined) return undefined;
      return encode(I.iommu_hwpt_set_dirty_tracking, {
        size: 16,
        flags: w.rng.int(0, 2),
        hwpt_id: hwpt,
      });
    },
  },
  {
    name: "IOMMU_TEST_CMD",
    nr: 0xa0,
    size: iommu_test_cmd.size,
    kinds: IOMMUFD,
    fields: [
      fl(iommu_test_cmd, "size", (w) => w.rng.pick([8, 67, 68, 72, 80])),
      fl(iommu_test_cmd, "op", (w) => w.rng.int(0, 20)),
      fl(iommu_test_cmd, "add_reserved_length", len),
    ],
    valid: (w) => {
      const ioas = some(w, "ioas");
      return encode(iommu_test_cmd, {
        size: 72,
        op: w.rng.pick([1, 1, 9, 2]), // ADD_RESERVED, SET_TEMP_MEMORY_LIMIT, MOCK_DOMAIN
        id: ioas ?? 0,
        add_reserved_start: BigInt(w.rng.int(0, 1 << 20)) << 12n,
        add_reserved_length: BigInt(w.rng.int(1, 16)) << 12n,
      });
    },
  },
  {
    name: "IOMMU_OPTION valid",
    nr: I.IOMMU_OPTION.nr,
    size: I.iommu_option.size,
    kinds: IOMMUFD,
    fields: [
      fl(I.iommu_option, "option_id", (w) => w.rng.int(0, 3)),
      fl(I.iommu_option, "op", (w) => w.rng.int(0, 3)),
      fl(I.iommu_option, "object_id", idOf("ioas")),
      fl(I.iommu_option, "val64", (w) => BigInt(w.rng.int(0, 3))),
    ],
    valid: (w) => {
      const huge = w.rng.chance(0.6);
      return encode(I.iommu_option, {
        size: 24,
        option_id: huge ? I.IOMMU_OPTION_HUGE_PAGES : I.IOMMU_OPTION_RLIMIT_MODE,
        op: w.rng.pick([I.IOMMU_OPTION_OP_GET, I.IOMMU_OPTION_OP_SET]),
        object_id: huge ? some(w, "ioas") ?? 0 : 0,
        val64: BigInt(w.rng.int(0, 2)),
      });
    },
  },
  {
    name: "VFIO_DEVICE_IOEVENTFD valid",
    nr: V.VFIO_DEVICE_IOEVENTFD.nr,
    size: V.vfio_device_ioeventfd.size,
    kinds: DEVICE,
    fields: [
      fl(V.vfio_device_ioeventfd, "flags", (w) => w.rng.int(0, 32)),
      fl(V.vfio_device_ioeventfd, "offset", (w) => BigInt(w.rng.int(0, 0x200))),
      fl(V.vfio_device_ioeventfd, "fd", (w) => w.rng.int(-2, 16)),
    ],
    valid: (w) => {
      const fds = w.pool.filter((e) => e.kind === "eventfd").map((e) => e.fd);
      return encode(V.vfio_device_ioeventfd, {
        argsz: V.vfio_device_ioeventfd.size,
        flags: w.rng.pick([
          V.VFIO_DEVICE_IOEVENTFD_8,
          V.VFIO_DEVICE_IOEVENTFD_16,
          V.VFIO_DEVICE_IOEVENTFD_32,
          V.VFIO_DEVICE_IOEVENTFD_64,
        ]),
        offset: (BigInt(V.VFIO_PCI_BAR0_REGION_INDEX) << 40n) + BigInt(w.rng.int(0, 0x40) * 8),
        data: BigInt(w.rng.u32()),
        fd: fds.length > 0 && w.rng.chance(0.8) ? w.rng.pick(fds) : -1,
      });
    },
  },
];
