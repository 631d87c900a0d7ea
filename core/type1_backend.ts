/**
 * {@link DmaBackend} over a VFIO type1 container: one `/dev/vfio/vfio`, every device's group
 * attached to it, TYPE1v2 preferred (TYPE1 as a fallback), IOVA ranges, page sizes and the
 * DMA mapping budget read with VFIO_IOMMU_GET_INFO after each group attaches.
 *
 * @example
 * ```ts
 * const backend = Type1Backend.open(kernel);
 * const fd = backend.openDevice({ bdf: "0000:03:00.0", group: 12 });
 * backend.map(mem.address, iova(0x10000n), BigInt(mem.length), { read: true, write: true });
 * ```
 *
 * @module
 */

import type { Kernel } from "../ffi/kernel.ts";
import {
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1v2_IOMMU,
} from "../ffi/uapi/mod.ts";
import { ContainerBackend } from "./container_backend.ts";
import type { DmaProtection, IovaRange } from "./dma_backend.ts";
import { VfioError } from "./errors.ts";
import { hex, IOVA_MAX } from "./iova_allocator.ts";
import { closeQuietly, HINTS, type HintTable } from "./syscall.ts";
import { type Type1Info, VfioContainer } from "./type1.ts";

/** Which type1 flavour to ask for. */
export type Type1Flavour = "auto" | "v2" | "v1";

/** Options of {@link Type1Backend.open}. */
export interface Type1BackendOptions {
  /** "auto" (default): TYPE1v2 when the kernel has it, else TYPE1. */
  flavour?: Type1Flavour;
}

/** A type1 container backend. */
export class Type1Backend extends ContainerBackend {
  /** Always "type1". */
  readonly kind = "type1" as const;
  /** The IOMMU type set on the container (VFIO_TYPE1v2_IOMMU or VFIO_TYPE1_IOMMU). */
  readonly iommuType: number;
  #info: Type1Info | undefined;
  #ranges: IovaRange[] = [];
  #mapsSinceInfo = 0;

  /**
   * Open the container, check the API version and pick the IOMMU type with
   * VFIO_CHECK_EXTENSION. Closes the container again on failure.
   */
  static open(kernel: Kernel, options: Type1BackendOptions = {}): Type1Backend {
    const container = VfioContainer.open(kernel);
    try {
      return new Type1Backend(kernel, container, pickType(container, options.flavour ?? "auto"));
    } catch (e) {
      closeQuietly(kernel, container.fd);
      throw e;
    }
  }

  private constructor(kernel: Kernel, container: VfioContainer, iommuType: number) {
    super(kernel, container);
    this.iommuType = iommuType;
  }

  /** The last VFIO_IOMMU_GET_INFO answer, or undefined before the first device. */
  get info(): Type1Info | undefined {
    return this.#info;
  }

  /** Usable IOVA ranges from the IOVA_RANGE cap (empty before the first device). */
  iovaRanges(): IovaRange[] {
    return this.#ranges;
  }

  /** Lowest set bit of the container's page-size bitmap (the host page before a device). */
  minPageSize(): bigint {
    return this.#info?.minPageSize ?? BigInt(this.kernel.pageSize);
  }

  /** DMA_AVAIL minus the mappings made since it was read, or undefined without the cap. */
  mappingsAvailable(): number | undefined {
    const avail = this.#info?.dmaAvailable;
    return avail === undefined ? undefined : Math.max(0, avail - this.#mapsSinceInfo);
  }

  /** EPERM on SET_CONTAINER means no MSI isolation. */
  protected setContainerHints(): HintTable {
    return { EPERM: HINTS.type1Interrupts };
  }

  /** VFIO_SET_IOMMU with the chosen type. */
  protected setUpIommu(): void {
    this.container.setIommu(this.iommuType);
  }

  /** VFIO_IOMMU_GET_INFO (two calls when there are caps). */
  protected refresh(): void {
    const info = this.container.getInfo();
    this.#info = info;
    this.#mapsSinceInfo = 0;
    this.#ranges = info.iovaRanges.length > 0 ? info.iovaRanges : [{ start: 0n, end: IOVA_MAX }]; // empty list: no restriction
  }

  /** Forget ranges and page sizes: the container has no IOMMU any more. */
  protected reset(): void {
    this.#info = undefined;
    this.#ranges = [];
  }

  /** VFIO_IOMMU_MAP_DMA. */
  protected doMap(vaddr: bigint, iova: bigint, size: bigint, prot: DmaProtection): void {
    const flags = (prot.read ? VFIO_DMA_MAP_FLAG_READ : 0) |
      (prot.write ? VFIO_DMA_MAP_FLAG_WRITE : 0);
    this.container.mapDma(vaddr, iova, size, flags);
    this.#mapsSinceInfo++;
  }

  /** VFIO_IOMMU_UNMAP_DMA of exactly one mapping; checks the size the kernel reports. */
  protected doUnmap(iova: bigint, size: bigint): void {
    const unmapped = this.container.unmapDma(iova, size);
    this.#mapsSinceInfo--;
    if (unmapped !== size) {
      throw new VfioError({
        operation: "VFIO_IOMMU_UNMAP_DMA",
        device: "/dev/vfio/vfio",
        message: `unmapped ${hex(unmapped)} bytes at IOVA ${hex(iova)}, expected ${hex(size)}`,
      });
    }
  }
}

function pickType(container: VfioContainer, flavour: Type1Flavour): number {
  const candidates = flavour === "v2"
    ? [VFIO_TYPE1v2_IOMMU]
    : flavour === "v1"
    ? [VFIO_TYPE1_IOMMU]
    : [VFIO_TYPE1v2_IOMMU, VFIO_TYPE1_IOMMU];
  for (const type of candidates) {
    if (container.checkExtension(type) > 0) return type;
  }
  throw new VfioError({
    operation: "VFIO_CHECK_EXTENSION",
    device: "/dev/vfio/vfio",
    message: `the container supports none of the IOMMU types ${candidates.join(", ")}`,
    hint: "load the type1 IOMMU driver: modprobe vfio_iommu_type1 (on POWER use the spapr backend)",
  });
}
