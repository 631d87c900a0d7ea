/**
 * {@link DmaBackend} over a sPAPR TCE container (POWER). IOVAs are PCI bus addresses inside DMA
 * windows: the default 32-bit window and dynamic windows (DDW) created with
 * {@link SpaprBackend.createWindow}. The usable IOVA ranges are exactly those windows.
 *
 * TCE v2 (preferred): memory is preregistered with VFIO_IOMMU_SPAPR_REGISTER_MEMORY before it
 * is mapped (counted per region, so one region may back several mappings) and unregistered
 * after its last unmap. TCE v1 (fallback): VFIO_IOMMU_ENABLE after SET_IOMMU, no
 * preregistration, no DDW.
 *
 * @example
 * ```ts
 * const backend = SpaprBackend.open(kernel, { window: { pageShift: 16, size: 1n << 40n } });
 * const fd = backend.openDevice({ bdf: "0001:00:01.0", group: 1 });
 * backend.iovaRanges(); // [0, 2 GiB) and the new 1 TiB window at 1 << 59
 * ```
 *
 * @module
 */

import type { Kernel } from "../ffi/kernel.ts";
import {
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_SPAPR_TCE_IOMMU,
  VFIO_SPAPR_TCE_v2_IOMMU,
} from "../ffi/uapi/mod.ts";
import { ContainerBackend } from "./container_backend.ts";
import type { DmaProtection, IovaRange } from "./dma_backend.ts";
import { VfioError } from "./errors.ts";
import { formatRange, hex } from "./iova_allocator.ts";
import { SpaprTceClient, type SpaprTceInfo } from "./spapr.ts";
import { closeQuietly, type HintTable } from "./syscall.ts";
import { VfioContainer } from "./type1.ts";

/** TCE page shift of the default 32-bit window as VFIO creates it (4 KiB TCEs). */
export const DEFAULT_WINDOW_PAGE_SHIFT = 12;
/** Table levels used for a created window when none are given (bounded by the platform). */
const DEFAULT_LEVELS = 2;

/** One DMA window: an inclusive bus-address range with its TCE page size. */
export interface SpaprWindow extends IovaRange {
  /** TCE page size in bytes. */
  readonly pageSize: bigint;
  /** True for the default 32-bit window, false for a created (DDW) one. */
  readonly isDefault: boolean;
}

/** A dynamic window to create when the first device is opened. */
export interface SpaprWindowRequest {
  /** log2 of the TCE page size (12, 16, 24, …). */
  pageShift: number;
  /** Window size in bytes (a power of two). */
  size: bigint;
  /** TCE table levels (default 2, bounded by what the platform allows). */
  levels?: number;
}

/** Options of {@link SpaprBackend.open}. */
export interface SpaprBackendOptions {
  /** Create this DDW once the first group is attached (v2 containers on DDW platforms). */
  window?: SpaprWindowRequest;
}

/** A sPAPR TCE container backend. */
export class SpaprBackend extends ContainerBackend {
  /** Always "spapr". */
  readonly kind = "spapr" as const;
  /** VFIO_SPAPR_TCE_v2_IOMMU or VFIO_SPAPR_TCE_IOMMU. */
  readonly iommuType: number;
  /** The sPAPR ioctls on the container fd. */
  readonly tce: SpaprTceClient;
  readonly #options: SpaprBackendOptions;
  #info: SpaprTceInfo | undefined;
  #windows: SpaprWindow[] = [];
  #ranges: IovaRange[] = [];
  readonly #registered: Map<string, number> = new Map();
  readonly #vaddrs: Map<bigint, bigint> = new Map();

  /** Open the container and pick TCE v2 (or v1) with VFIO_CHECK_EXTENSION. */
  static open(kernel: Kernel, options: SpaprBackendOptions = {}): SpaprBackend {
    const container = VfioContainer.open(kernel);
    try {
      const type = [VFIO_SPAPR_TCE_v2_IOMMU, VFIO_SPAPR_TCE_IOMMU]
        .find((t) => container.checkExtension(t) > 0);
      if (type === undefined) {
        throw new VfioError({
          operation: "VFIO_CHECK_EXTENSION",
          device: "/dev/vfio/vfio",
          message: "the container supports no sPAPR TCE IOMMU type",
          hint: "the sPAPR backend needs a POWER host (vfio_iommu_spapr_tce); elsewhere use type1",
        });
      }
      return new SpaprBackend(kernel, container, type, options);
    } catch (e) {
      closeQuietly(kernel, container.fd);
      throw e;
    }
  }

  private constructor(
    kernel: Kernel,
    container: VfioContainer,
    iommuType: number,
    options: SpaprBackendOptions,
  ) {
    super(kernel, container);
    this.iommuType = iommuType;
    this.tce = new SpaprTceClient(kernel, container.fd);
    this.#options = options;
  }

  /** The last SPAPR_TCE_GET_INFO answer (undefined before the first device). */
  get info(): SpaprTceInfo | undefined {
    return this.#info;
  }

  /** The DMA windows, lowest first. */
  windows(): SpaprWindow[] {
    return [...this.#windows];
  }

  /** The windows as IOVA ranges (the same array until a window comes or goes). */
  iovaRanges(): IovaRange[] {
    return this.#ranges;
  }

  /**
   * The largest TCE page size of all windows, so that any IOVA the allocator hands out is
   * aligned for whichever window it lands in (host page size before the first device).
   */
  minPageSize(): bigint {
    let page = BigInt(this.kernel.pageSize);
    for (const w of this.#windows) if (w.pageSize > page) page = w.pageSize;
    return page;
  }

  /** sPAPR has no mapping count limit. */
  mappingsAvailable(): number | undefined {
    return undefined;
  }

  /**
   * VFIO_IOMMU_SPAPR_TCE_CREATE: a new DMA window (v2 only, after the first device is open);
   * returns it. The window becomes part of {@link iovaRanges}.
   */
  createWindow(pageShift: number, size: bigint, levels?: number): SpaprWindow {
    const ddw = this.#info?.ddw;
    if (ddw === undefined) {
      const attached = this.#info !== undefined;
      throw new VfioError({
        operation: "VFIO_IOMMU_SPAPR_TCE_CREATE",
        device: "/dev/vfio/vfio",
        message: attached
          ? "this container or platform has no dynamic DMA windows"
          : "no group is attached yet",
        hint: attached ? "use the default 32-bit window" : "open a device first",
      });
    }
    const start = this.tce.createWindow(
      pageShift,
      size,
      levels ?? Math.min(DEFAULT_LEVELS, Math.max(1, ddw.levels)),
    );
    const window = {
      start,
      end: start + size - 1n,
      pageSize: 1n << BigInt(pageShift),
      isDefault: false,
    };
    this.#setWindows([...this.#windows, window]);
    return window;
  }

  /** VFIO_IOMMU_SPAPR_TCE_REMOVE: remove a window; refused while mappings lie inside it. */
  removeWindow(start: bigint): void {
    const window = this.#windows.find((w) => w.start === start);
    if (window === undefined) {
      throw new VfioError({
        operation: "removeWindow",
        message: `no window starts at ${hex(start)}`,
      });
    }
    for (const [iova] of this.mappings) {
      if (iova >= window.start && iova <= window.end) {
        throw new VfioError({
          operation: "removeWindow",
          message: `window ${formatRange(window)} still holds the mapping at IOVA ${hex(iova)}`,
          hint: "unmap (free) the buffers in the window first",
        });
      }
    }
    this.tce.removeWindow(start);
    this.#setWindows(this.#windows.filter((w) => w !== window));
  }

  /** Group attach errors on sPAPR. */
  protected setContainerHints(): HintTable {
    return { EPERM: "the group's IOMMU tables are incompatible with the container's groups" };
  }

  /** SET_IOMMU (+ ENABLE on v1), read the windows, create the requested DDW. */
  protected setUpIommu(): void {
    this.container.setIommu(this.iommuType);
    if (this.iommuType === VFIO_SPAPR_TCE_IOMMU) this.tce.enable();
    this.refresh();
    const request = this.#options.window;
    if (request !== undefined) this.createWindow(request.pageShift, request.size, request.levels);
  }

  /** SPAPR_TCE_GET_INFO: the default 32-bit window (created windows are kept). */
  protected refresh(): void {
    if (this.#info !== undefined) return; // windows do not change as more groups attach
    const info = this.tce.getInfo();
    this.#info = info;
    const start = BigInt(info.dma32WindowStart);
    this.#setWindows([{
      start,
      end: start + BigInt(info.dma32WindowSize) - 1n,
      pageSize: 1n << BigInt(DEFAULT_WINDOW_PAGE_SHIFT),
      isDefault: true,
    }]);
  }

  /** Forget the windows: the last group left. */
  protected reset(): void {
    this.#info = undefined;
    this.#registered.clear();
    this.#vaddrs.clear();
    this.#setWindows([]);
  }

  /** Register (v2, counted per region) then VFIO_IOMMU_MAP_DMA; unregister again on failure. */
  protected doMap(vaddr: bigint, iova: bigint, size: bigint, prot: DmaProtection): void {
    const window = this.#windows.find((w) => iova >= w.start && iova + size - 1n <= w.end);
    if (window === undefined) {
      throw new VfioError({
        operation: "VFIO_IOMMU_MAP_DMA",
        device: "/dev/vfio/vfio",
        message: `[${hex(iova)}, ${hex(iova + size - 1n)}] is not inside one DMA window (${
          this.#windows.map(formatRange).join(", ") || "none"
        })`,
        hint: "allocate IOVAs from the windows, or create a larger window with createWindow",
      });
    }
    const v2 = this.iommuType === VFIO_SPAPR_TCE_v2_IOMMU;
    if (v2) this.#register(vaddr, size);
    try {
      const flags = (prot.read ? VFIO_DMA_MAP_FLAG_READ : 0) |
        (prot.write ? VFIO_DMA_MAP_FLAG_WRITE : 0);
      this.tce.mapDma(vaddr, iova, size, flags);
    } catch (e) {
      if (v2) this.#unregister(vaddr, size);
      throw e;
    }
    this.#vaddrs.set(iova, vaddr);
  }

  /** VFIO_IOMMU_UNMAP_DMA, then unregister the memory after its last mapping (v2). */
  protected doUnmap(iova: bigint, size: bigint): void {
    this.tce.unmapDma(iova, size);
    const vaddr = this.#vaddrs.get(iova);
    this.#vaddrs.delete(iova);
    if (vaddr !== undefined && this.iommuType === VFIO_SPAPR_TCE_v2_IOMMU) {
      this.#unregister(vaddr, size);
    }
  }

  #register(vaddr: bigint, size: bigint): void {
    const key = `${vaddr}:${size}`;
    const count = this.#registered.get(key) ?? 0;
    if (count === 0) this.tce.registerMemory(vaddr, size);
    this.#registered.set(key, count + 1);
  }

  #unregister(vaddr: bigint, size: bigint): void {
    const key = `${vaddr}:${size}`;
    const count = this.#registered.get(key) ?? 0;
    if (count <= 1) {
      this.#registered.delete(key);
      this.tce.unregisterMemory(vaddr, size);
    } else this.#registered.set(key, count - 1);
  }

  #setWindows(windows: SpaprWindow[]): void {
    this.#windows = windows.sort((a, b) => (a.start < b.start ? -1 : 1));
    this.#ranges = this.#windows.map((w) => ({ start: w.start, end: w.end }));
  }
}
