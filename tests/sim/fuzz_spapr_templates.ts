/**
 * Fuzz templates of the sPAPR TCE container (POWER): GET_INFO, memory preregistration, dynamic
 * DMA windows and EEH PE operations, each with a valid call the fuzzer mutates.
 *
 * @module
 */

import { encode } from "../../ffi/uapi/layout.ts";
import * as V from "../../ffi/uapi/vfio.ts";
import { fl } from "./fuzz_deep_templates.ts";
import { type FuzzTemplate, iova, len, type TemplateWorld, va } from "./fuzz_templates.ts";

const CONTAINER = ["container"] as const;

/** A preregistration (or its undoing) of one whole buffer. */
function wholeBuffer(w: TemplateWorld): Uint8Array {
  const b = w.rng.pick(w.buffers);
  return encode(V.vfio_iommu_spapr_register_memory, {
    argsz: V.vfio_iommu_spapr_register_memory.size,
    vaddr: b.address,
    size: BigInt(b.length),
  });
}

/** The sPAPR container's templates. */
export const SPAPR_TEMPLATES: readonly FuzzTemplate[] = [
  {
    name: "VFIO_IOMMU_SPAPR_TCE_GET_INFO",
    nr: V.VFIO_IOMMU_SPAPR_TCE_GET_INFO.nr,
    size: V.vfio_iommu_spapr_tce_info.size,
    kinds: CONTAINER,
    fields: [fl(V.vfio_iommu_spapr_tce_info, "argsz", (w) => w.rng.pick([12, 16, 32, 48]))],
  },
  {
    name: "VFIO_IOMMU_SPAPR_REGISTER_MEMORY",
    nr: V.VFIO_IOMMU_SPAPR_REGISTER_MEMORY.nr,
    size: V.vfio_iommu_spapr_register_memory.size,
    kinds: CONTAINER,
    fields: [
      fl(V.vfio_iommu_spapr_register_memory, "flags", (w) => w.rng.int(0, 2)),
      fl(V.vfio_iommu_spapr_register_memory, "vaddr", va),
      fl(V.vfio_iommu_spapr_register_memory, "size", len),
    ],
    valid: wholeBuffer,
  },
  {
    name: "VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY",
    nr: V.VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY.nr,
    size: V.vfio_iommu_spapr_register_memory.size,
    kinds: CONTAINER,
    fields: [fl(V.vfio_iommu_spapr_register_memory, "vaddr", va)],
    valid: wholeBuffer,
  },
  {
    name: "VFIO_IOMMU_SPAPR_TCE_CREATE",
    nr: V.VFIO_IOMMU_SPAPR_TCE_CREATE.nr,
    size: V.vfio_iommu_spapr_tce_create.size,
    kinds: CONTAINER,
    fields: [
      fl(V.vfio_iommu_spapr_tce_create, "page_shift", (w) => w.rng.int(0, 64)),
      fl(V.vfio_iommu_spapr_tce_create, "window_size", len),
      fl(V.vfio_iommu_spapr_tce_create, "levels", (w) => w.rng.int(0, 8)),
    ],
    valid: (w) =>
      encode(V.vfio_iommu_spapr_tce_create, {
        argsz: 40,
        page_shift: w.rng.pick([12, 16, 21, 24]),
        window_size: 1n << BigInt(w.rng.int(24, 34)),
        levels: w.rng.int(1, 4),
      }),
  },
  {
    name: "VFIO_IOMMU_SPAPR_TCE_REMOVE",
    nr: V.VFIO_IOMMU_SPAPR_TCE_REMOVE.nr,
    size: V.vfio_iommu_spapr_tce_remove.size,
    kinds: CONTAINER,
    fields: [fl(V.vfio_iommu_spapr_tce_remove, "start_addr", iova)],
    valid: (w) =>
      encode(V.vfio_iommu_spapr_tce_remove, { argsz: 16, start_addr: w.rng.pick([0n, 1n << 59n]) }),
  },
  {
    name: "VFIO_EEH_PE_OP",
    nr: V.VFIO_EEH_PE_OP.nr,
    size: V.vfio_eeh_pe_op.size,
    kinds: CONTAINER,
    fields: [
      fl(V.vfio_eeh_pe_op, "argsz", (w) => w.rng.pick([12, 16, 40])),
      fl(V.vfio_eeh_pe_op, "op", (w) => w.rng.int(0, 12)),
    ],
    valid: (w) =>
      encode(V.vfio_eeh_pe_op, {
        argsz: 40,
        op: w.rng.int(0, 11),
        err: { type: w.rng.int(0, 2), func: w.rng.int(0, 20), addr: 0n, mask: 0n },
      }),
  },
];
