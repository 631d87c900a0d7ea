/**
 * Typed client for the sPAPR TCE IOMMU ioctls of a VFIO container fd (POWER): window info,
 * memory preregistration, dynamic DMA windows, map/unmap and EEH. The container itself (open,
 * API version, CHECK_EXTENSION, SET_IOMMU) and groups are {@link VfioContainer} /
 * {@link VfioGroup} from core/type1.ts; this class adds the sPAPR-only calls on the same fd.
 *
 * IOVAs on sPAPR are PCI bus addresses inside a DMA window (the window is a filter, not an
 * offset): the default 32-bit window and up to one more dynamic window (DDW).
 *
 * @example
 * ```ts
 * const tce = new SpaprTceClient(kernel, container.fd);
 * const info = tce.getInfo();
 * tce.registerMemory(mem.address, BigInt(mem.length));
 * const start = tce.createWindow(16, 1n << 40n, 1); // 64 KiB TCEs, 1 TiB
 * tce.mapDma(mem.address, start, BigInt(mem.length), VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE);
 * ```
 *
 * @module
 */

import { ERRNO } from "../ffi/errno.ts";
import type { Kernel } from "../ffi/kernel.ts";
import { decode, encode } from "../ffi/uapi/layout.ts";
import {
  VFIO_EEH_PE_OP,
  vfio_eeh_pe_op,
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
} from "../ffi/uapi/mod.ts";
import { VfioError } from "./errors.ts";
import { HINTS, type HintTable, ioctlChecked } from "./syscall.ts";
import { hex } from "./iova_allocator.ts";

/** Dynamic DMA window capabilities (present with VFIO_IOMMU_SPAPR_INFO_DDW). */
export interface SpaprDdwInfo {
  /** Supported TCE page sizes (bit n set → 2^n bytes). */
  readonly pgsizes: bigint;
  /** How many windows may be created. */
  readonly maxDynamicWindowsSupported: number;
  /** Maximum TCE table levels. */
  readonly levels: number;
}

/** The decoded answer of VFIO_IOMMU_SPAPR_TCE_GET_INFO. */
export interface SpaprTceInfo {
  /** Info flags. */
  readonly flags: number;
  /** Bus address of the default 32-bit DMA window. */
  readonly dma32WindowStart: number;
  /** Size of the default 32-bit DMA window in bytes. */
  readonly dma32WindowSize: number;
  /** DDW capabilities, or undefined on platforms (or v1 containers) without DDW. */
  readonly ddw: SpaprDdwInfo | undefined;
}

/** Optional error injection data of VFIO_EEH_PE_OP (VFIO_EEH_PE_INJECT_ERR). */
export interface EehError {
  /** Error type. */
  readonly type: number;
  /** Error function. */
  readonly func: number;
  /** Address. */
  readonly addr: bigint;
  /** Address mask. */
  readonly mask: bigint;
}

const MAP_HINTS: HintTable = {
  ENXIO: "the IOVA is not inside any DMA window (the 32-bit window or a created DDW)",
  EINVAL: "size or vaddr is not a multiple of the window's TCE page size, or the memory was " +
    "not registered with VFIO_IOMMU_SPAPR_REGISTER_MEMORY",
  EPERM: "memory must be registered (v2) or the container enabled (v1) before mapping; or the " +
    "host page backing the memory is smaller than the TCE page",
  ENOMEM: HINTS.memlock,
};

/** The sPAPR TCE ioctls on a container fd that has an sPAPR IOMMU type set. */
export class SpaprTceClient {
  /** The container fd. */
  readonly fd: number;
  readonly #kernel: Kernel;
  readonly #name: string;

  /** Wrap a container fd (the caller keeps ownership of the fd). */
  constructor(kernel: Kernel, fd: number, name = "/dev/vfio/vfio") {
    this.#kernel = kernel;
    this.fd = fd;
    this.#name = name;
  }

  /** VFIO_IOMMU_SPAPR_TCE_GET_INFO: the default window and, if present, DDW capabilities. */
  getInfo(): SpaprTceInfo {
    const layout = vfio_iommu_spapr_tce_info;
    const arg = encode(layout, { argsz: layout.size });
    ioctlChecked(this.#kernel, this.fd, VFIO_IOMMU_SPAPR_TCE_GET_INFO, arg, this.#name, {
      ENXIO: "no group is attached to the container yet",
    });
    const info = decode(layout, arg);
    return {
      flags: info.flags,
      dma32WindowStart: info.dma32_window_start,
      dma32WindowSize: info.dma32_window_size,
      ddw: (info.flags & VFIO_IOMMU_SPAPR_INFO_DDW) === 0 ? undefined : {
        pgsizes: info.ddw.pgsizes,
        maxDynamicWindowsSupported: info.ddw.max_dynamic_windows_supported,
        levels: info.ddw.levels,
      },
    };
  }

  /** VFIO_IOMMU_SPAPR_REGISTER_MEMORY (v2): pin and preregister `[vaddr, vaddr + size)`. */
  registerMemory(vaddr: bigint, size: bigint): void {
    this.#memory(VFIO_IOMMU_SPAPR_REGISTER_MEMORY, vaddr, size, {
      ENOMEM: HINTS.memlock,
      EBUSY: "this memory is already registered with this container",
      EINVAL: "vaddr/size not page-aligned, or the region partly overlaps a registered one",
    });
  }

  /** VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY (v2): undo {@link registerMemory} (exact region). */
  unregisterMemory(vaddr: bigint, size: bigint): void {
    this.#memory(VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY, vaddr, size, {
      ENOENT: "no region registered with exactly this address and size",
      EBUSY: "the region is still mapped by TCEs: unmap it first",
    });
  }

  /**
   * VFIO_IOMMU_SPAPR_TCE_CREATE (v2): create a DMA window of `windowSize` bytes (a power of
   * two) with TCE pages of 2^`pageShift` bytes and `levels` table levels; returns its bus
   * start address chosen by the platform.
   */
  createWindow(pageShift: number, windowSize: bigint, levels: number): bigint {
    const layout = vfio_iommu_spapr_tce_create;
    const arg = encode(layout, {
      argsz: layout.size,
      page_shift: pageShift,
      window_size: windowSize,
      levels,
    });
    ioctlChecked(this.#kernel, this.fd, VFIO_IOMMU_SPAPR_TCE_CREATE, arg, this.#name, {
      ENOSPC: "both DMA window slots are in use: remove a window first",
      EINVAL: "page_shift not in the supported page sizes, levels out of range, or the " +
        "window size is not a power of two",
      EPERM: "the platform cannot create dynamic DMA windows",
      ENOMEM: HINTS.memlock,
    });
    return decode(layout, arg).start_addr;
  }

  /** VFIO_IOMMU_SPAPR_TCE_REMOVE (v2): remove the window containing `startAddr`. */
  removeWindow(startAddr: bigint): void {
    const layout = vfio_iommu_spapr_tce_remove;
    const arg = encode(layout, { argsz: layout.size, start_addr: startAddr });
    ioctlChecked(this.#kernel, this.fd, VFIO_IOMMU_SPAPR_TCE_REMOVE, arg, this.#name, {
      EINVAL: `no DMA window contains ${hex(startAddr)}`,
    });
  }

  /** VFIO_IOMMU_ENABLE (v1): enable the container (needed before map on v1). */
  enable(): void {
    ioctlChecked(this.#kernel, this.fd, VFIO_IOMMU_ENABLE, undefined, this.#name, {
      ENOMEM: HINTS.memlock,
    });
  }

  /** VFIO_IOMMU_DISABLE (v1). */
  disable(): void {
    ioctlChecked(this.#kernel, this.fd, VFIO_IOMMU_DISABLE, undefined, this.#name);
  }

  /**
   * VFIO_IOMMU_MAP_DMA on an sPAPR container. The kernel returns 1 (not -EINVAL) for an IOVA
   * that is not aligned to the window's TCE page; that quirk is thrown as an EINVAL VfioError.
   */
  mapDma(vaddr: bigint, iova: bigint, size: bigint, flags: number): void {
    const layout = vfio_iommu_type1_dma_map;
    const arg = encode(layout, { argsz: layout.size, flags, vaddr, iova, size });
    const r = ioctlChecked(this.#kernel, this.fd, VFIO_IOMMU_MAP_DMA, arg, this.#name, MAP_HINTS);
    if (r !== 0) throw this.#quirk(VFIO_IOMMU_MAP_DMA.name, iova, r);
  }

  /** VFIO_IOMMU_UNMAP_DMA on an sPAPR container (per-TCE; the size is not written back). */
  unmapDma(iova: bigint, size: bigint): void {
    const layout = vfio_iommu_type1_dma_unmap;
    const arg = encode(layout, { argsz: layout.size, iova, size });
    const r = ioctlChecked(this.#kernel, this.fd, VFIO_IOMMU_UNMAP_DMA, arg, this.#name, {
      ENXIO: "the IOVA is not inside any DMA window",
      EINVAL: "the size is not a multiple of the window's TCE page size",
    });
    if (r !== 0) throw this.#quirk(VFIO_IOMMU_UNMAP_DMA.name, iova, r);
  }

  /** VFIO_EEH_PE_OP: run an EEH operation (VFIO_EEH_PE_*) on the PE; returns its result. */
  eehPeOp(op: number, err?: EehError): number {
    const layout = vfio_eeh_pe_op;
    const arg = encode(layout, {
      argsz: layout.size,
      op,
      err: err === undefined
        ? undefined
        : { type: err.type, func: err.func, addr: err.addr, mask: err.mask },
    });
    return ioctlChecked(this.#kernel, this.fd, VFIO_EEH_PE_OP, arg, this.#name, {
      ENODEV: "the group has no EEH PE",
      EINVAL: `unknown EEH operation ${op}`,
    });
  }

  #memory(
    decl: typeof VFIO_IOMMU_SPAPR_REGISTER_MEMORY,
    vaddr: bigint,
    size: bigint,
    hints: HintTable,
  ): void {
    const layout = vfio_iommu_spapr_register_memory;
    const arg = encode(layout, { argsz: layout.size, vaddr, size });
    ioctlChecked(this.#kernel, this.fd, decl, arg, this.#name, hints);
  }

  #quirk(operation: string, iova: bigint, result: number): VfioError {
    return new VfioError({
      operation,
      errno: ERRNO.EINVAL, // what the kernel meant
      device: this.#name,
      message: `the kernel returned ${result} instead of -EINVAL: IOVA ${
        hex(iova)
      } is not aligned to the window's TCE page size`,
      hint:
        "align IOVAs to the TCE page size of the window (sPAPR iommu_tce_put_param_check quirk)",
    });
  }
}
