/**
 * The three {@link DmaBackend}s and one way to open any of them by kind. Per-backend
 * differences are in the backends' data (ranges, page sizes, mapping budget), not in callers.
 *
 * | kind | kernel interface | devices opened through |
 * |---|---|---|
 * | `"type1"` | `/dev/vfio/vfio`, VFIO_TYPE1v2_IOMMU (or TYPE1) | `/dev/vfio/<group>` |
 * | `"iommufd"` | `/dev/iommu`, one IOAS | `/dev/vfio/devices/vfioN` (cdev) |
 * | `"spapr"` | `/dev/vfio/vfio`, VFIO_SPAPR_TCE_v2_IOMMU (or v1) | `/dev/vfio/<group>` |
 *
 * @module
 */

import type { Kernel } from "../ffi/kernel.ts";
import type { DmaBackend, DmaBackendKind } from "./dma_backend.ts";
import { IommufdBackend } from "./iommufd_backend.ts";
import { SpaprBackend, type SpaprBackendOptions } from "./spapr_backend.ts";
import { Type1Backend, type Type1BackendOptions } from "./type1_backend.ts";

export { IommufdBackend } from "./iommufd_backend.ts";
export { SpaprBackend, type SpaprBackendOptions, type SpaprWindow } from "./spapr_backend.ts";
export { Type1Backend, type Type1BackendOptions } from "./type1_backend.ts";

/** Per-backend options; only the entry for the chosen kind is used. */
export interface DmaBackendOptions {
  /** Options of the type1 backend. */
  type1?: Type1BackendOptions;
  /** Options of the sPAPR backend. */
  spapr?: SpaprBackendOptions;
}

/**
 * Open a backend of `kind`. Throws a VfioError (ioctl, errno, hint) when the kernel refuses;
 * nothing stays open on failure.
 *
 * @example
 * ```ts
 * const backend = openDmaBackend(kernel, "type1");
 * ```
 */
export function openDmaBackend(
  kernel: Kernel,
  kind: DmaBackendKind,
  options: DmaBackendOptions = {},
): DmaBackend {
  switch (kind) {
    case "type1":
      return Type1Backend.open(kernel, options.type1);
    case "iommufd":
      return IommufdBackend.open(kernel);
    case "spapr":
      return SpaprBackend.open(kernel, options.spapr);
  }
}
