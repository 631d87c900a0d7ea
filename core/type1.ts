/**
 * Typed clients for the VFIO container (`/dev/vfio/vfio`, type1 IOMMU) and group
 * (`/dev/vfio/N`) file descriptors: one method per ioctl, arguments encoded with the uAPI
 * layouts, outputs decoded, failures thrown as {@link VfioError} naming the ioctl, the errno,
 * the device and a hint. Nothing here keeps policy; the backends (core/type1_backend.ts,
 * core/spapr_backend.ts) decide the order of calls.
 *
 * @example
 * ```ts
 * const container = VfioContainer.open(kernel);
 * const group = VfioGroup.open(kernel, 7);
 * if (!group.isViable()) throw new Error("bind every device of group 7 to vfio-pci");
 * group.setContainer(container.fd);
 * container.setIommu(VFIO_TYPE1v2_IOMMU);
 * const info = container.getInfo();
 * ```
 *
 * @module
 */

import type { Kernel } from "../ffi/kernel.ts";
import { decode, encode } from "../ffi/uapi/layout.ts";
import {
  decodeArray,
  readCapChain,
  VFIO_API_VERSION,
  VFIO_CHECK_EXTENSION,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_GET_API_VERSION,
  VFIO_GROUP_FLAGS_VIABLE,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_GET_STATUS,
  VFIO_GROUP_SET_CONTAINER,
  vfio_group_status,
  VFIO_GROUP_UNSET_CONTAINER,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_INFO_CAPS,
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
  VFIO_SET_IOMMU,
} from "../ffi/uapi/mod.ts";
import type { IovaRange } from "./dma_backend.ts";
import { VfioError } from "./errors.ts";
import {
  closeChecked,
  closeQuietly,
  cString,
  HINTS,
  type HintTable,
  ioctlChecked,
  openChecked,
} from "./syscall.ts";

/** The container node. */
export const VFIO_CONTAINER_PATH = "/dev/vfio/vfio";

/** The group node of IOMMU group `group`. */
export function groupPath(group: number): string {
  return `/dev/vfio/${group}`;
}

/** The type1 migration capability (dirty-page tracking parameters). */
export interface Type1MigrationCap {
  /** Capability flags (0 in 6.12). */
  readonly flags: number;
  /** Page sizes dirty tracking supports. */
  readonly pgsizeBitmap: bigint;
  /** Largest dirty bitmap in bytes. */
  readonly maxDirtyBitmapSize: bigint;
}

/** The decoded answer of VFIO_IOMMU_GET_INFO. */
export interface Type1Info {
  /** Info flags (VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS). */
  readonly flags: number;
  /** Supported IOMMU page sizes (bit n set → 2^n bytes). */
  readonly pgsizes: bigint;
  /** The smallest supported page size (lowest set bit of `pgsizes`). */
  readonly minPageSize: bigint;
  /** Usable IOVA ranges (IOVA_RANGE cap); empty when the kernel sets no restriction. */
  readonly iovaRanges: IovaRange[];
  /** Mappings still allowed (DMA_AVAIL cap), or undefined when the cap is absent. */
  readonly dmaAvailable: number | undefined;
  /** The MIGRATION cap, or undefined when absent. */
  readonly migration: Type1MigrationCap | undefined;
}

/** Lowest set bit of a page-size bitmap (0 for an empty bitmap). */
export function lowestPageSize(bitmap: bigint): bigint {
  return bitmap === 0n ? 0n : bitmap & -bitmap;
}

const MAP_HINTS: HintTable = {
  ENOSPC: HINTS.dmaEntryLimit,
  ENOMEM: HINTS.memlock,
  EEXIST: HINTS.overlap,
  EINVAL: "the range is misaligned, outside the IOVA ranges, or crosses a reserved region",
  EFAULT: "the process memory is not mapped (or not writable for a device-writable mapping)",
};

/** A VFIO container fd (`/dev/vfio/vfio`) with the container and type1 ioctls. */
export class VfioContainer {
  /** The container fd. */
  readonly fd: number;
  readonly #kernel: Kernel;
  readonly #name: string;

  /**
   * Open `/dev/vfio/vfio` and check VFIO_GET_API_VERSION is VFIO_API_VERSION (0). Closes the
   * fd again if the check fails.
   */
  static open(kernel: Kernel): VfioContainer {
    const fd = openChecked(kernel, VFIO_CONTAINER_PATH, { ENOENT: HINTS.noVfio });
    const container = new VfioContainer(kernel, fd);
    try {
      const version = container.apiVersion();
      if (version !== VFIO_API_VERSION) {
        throw new VfioError({
          operation: VFIO_GET_API_VERSION.name,
          device: VFIO_CONTAINER_PATH,
          message: `API version ${version}, expected ${VFIO_API_VERSION}`,
          hint: "the kernel's VFIO API is not supported by this framework",
        });
      }
    } catch (e) {
      closeQuietly(kernel, fd);
      throw e;
    }
    return container;
  }

  /** Wrap an open container fd. */
  constructor(kernel: Kernel, fd: number, name: string = VFIO_CONTAINER_PATH) {
    this.#kernel = kernel;
    this.fd = fd;
    this.#name = name;
  }

  /** VFIO_GET_API_VERSION: the API version (0). */
  apiVersion(): number {
    return ioctlChecked(this.#kernel, this.fd, VFIO_GET_API_VERSION, undefined, this.#name);
  }

  /** VFIO_CHECK_EXTENSION: 0 if `extension` (VFIO_TYPE1v2_IOMMU, …) is unsupported, else > 0. */
  checkExtension(extension: number): number {
    return ioctlChecked(this.#kernel, this.fd, VFIO_CHECK_EXTENSION, extension, this.#name);
  }

  /** VFIO_SET_IOMMU: choose the IOMMU driver (needs a group attached first). */
  setIommu(type: number): void {
    ioctlChecked(this.#kernel, this.fd, VFIO_SET_IOMMU, type, this.#name, {
      EPERM: HINTS.type1Interrupts,
      EINVAL:
        "attach a group with VFIO_GROUP_SET_CONTAINER first (or the IOMMU type is already set)",
      ENODEV: `no IOMMU driver accepts type ${type}`,
    });
  }

  /**
   * VFIO_IOMMU_GET_INFO with the two-call argsz protocol: the first call learns the size of the
   * capability chain, the second fetches it. Decodes page sizes, IOVA ranges, DMA_AVAIL and the
   * migration cap.
   */
  getInfo(): Type1Info {
    const layout = vfio_iommu_type1_info;
    let bytes = encode(layout, { argsz: layout.size });
    ioctlChecked(this.#kernel, this.fd, VFIO_IOMMU_GET_INFO, bytes, this.#name, {
      EINVAL: "no IOMMU driver is set on the container yet (VFIO_SET_IOMMU)",
    });
    let info = decode(layout, bytes);
    if ((info.flags & VFIO_IOMMU_INFO_CAPS) !== 0 && info.argsz > layout.size) {
      bytes = encode(layout, { argsz: info.argsz }, info.argsz - layout.size);
      ioctlChecked(this.#kernel, this.fd, VFIO_IOMMU_GET_INFO, bytes, this.#name);
      info = decode(layout, bytes);
    }
    let iovaRanges: IovaRange[] = [];
    let dmaAvailable: number | undefined;
    let migration: Type1MigrationCap | undefined;
    if ((info.flags & VFIO_IOMMU_INFO_CAPS) !== 0 && info.cap_offset !== 0) {
      for (const cap of readCapChain(bytes, info.cap_offset)) {
        if (cap.id === VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
          const head = decode(vfio_iommu_type1_info_cap_iova_range, bytes, cap.offset);
          const at = cap.offset + vfio_iommu_type1_info_cap_iova_range.size;
          iovaRanges = decodeArray(vfio_iova_range, bytes, at, head.nr_iovas);
        } else if (cap.id === VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL) {
          dmaAvailable = decode(vfio_iommu_type1_info_dma_avail, bytes, cap.offset).avail;
        } else if (cap.id === VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION) {
          const m = decode(vfio_iommu_type1_info_cap_migration, bytes, cap.offset);
          migration = {
            flags: m.flags,
            pgsizeBitmap: m.pgsize_bitmap,
            maxDirtyBitmapSize: m.max_dirty_bitmap_size,
          };
        }
      }
    }
    return {
      flags: info.flags,
      pgsizes: info.iova_pgsizes,
      minPageSize: lowestPageSize(info.iova_pgsizes),
      iovaRanges,
      dmaAvailable,
      migration,
    };
  }

  /** VFIO_IOMMU_MAP_DMA: map `size` bytes at `vaddr` to `iova` with VFIO_DMA_MAP_FLAG_* flags. */
  mapDma(vaddr: bigint, iova: bigint, size: bigint, flags: number): void {
    const layout = vfio_iommu_type1_dma_map;
    const arg = encode(layout, { argsz: layout.size, flags, vaddr, iova, size });
    ioctlChecked(this.#kernel, this.fd, VFIO_IOMMU_MAP_DMA, arg, this.#name, MAP_HINTS);
  }

  /** VFIO_IOMMU_UNMAP_DMA: unmap `[iova, iova + size)`; returns the bytes the kernel unmapped. */
  unmapDma(iova: bigint, size: bigint, flags = 0): bigint {
    const layout = vfio_iommu_type1_dma_unmap;
    const arg = encode(layout, { argsz: layout.size, flags, iova, size });
    ioctlChecked(this.#kernel, this.fd, VFIO_IOMMU_UNMAP_DMA, arg, this.#name, {
      EINVAL: "the range is misaligned or cuts through a mapping (type1v2 cannot split one)",
    });
    return decode(layout, arg).size;
  }

  /** VFIO_IOMMU_UNMAP_DMA with VFIO_DMA_UNMAP_FLAG_ALL: unmap everything; returns bytes unmapped. */
  unmapAll(): bigint {
    return this.unmapDma(0n, 0n, VFIO_DMA_UNMAP_FLAG_ALL);
  }

  /** close(2) the container. */
  close(): void {
    closeChecked(this.#kernel, this.fd, this.#name);
  }
}

/** A VFIO group fd (`/dev/vfio/N`). */
export class VfioGroup {
  /** The IOMMU group number. */
  readonly group: number;
  /** The group fd. */
  readonly fd: number;
  readonly #kernel: Kernel;
  readonly #path: string;

  /** Open `/dev/vfio/<group>` with hints for a missing node, permissions and a busy group. */
  static open(kernel: Kernel, group: number, device?: string): VfioGroup {
    const path = groupPath(group);
    const fd = openChecked(kernel, path, {
      ENOENT: `${path} does not exist: bind the device${
        device ? ` ${device}` : ""
      } to vfio-pci (and check that the IOMMU is enabled)`,
      EBUSY: `${path} is already open (by another process, or a device of the group is open ` +
        `through its VFIO cdev)`,
    }, device ?? path);
    return new VfioGroup(kernel, group, fd);
  }

  /** Wrap an open group fd. */
  constructor(kernel: Kernel, group: number, fd: number) {
    this.#kernel = kernel;
    this.group = group;
    this.fd = fd;
    this.#path = groupPath(group);
  }

  /** VFIO_GROUP_GET_STATUS: the VFIO_GROUP_FLAGS_* bits. */
  status(): number {
    const layout = vfio_group_status;
    const arg = encode(layout, { argsz: layout.size });
    ioctlChecked(this.#kernel, this.fd, VFIO_GROUP_GET_STATUS, arg, this.#path);
    return decode(layout, arg).flags;
  }

  /** True when every device of the group is bound to vfio-pci (or unbound). */
  isViable(): boolean {
    return (this.status() & VFIO_GROUP_FLAGS_VIABLE) !== 0;
  }

  /**
   * VFIO_GROUP_SET_CONTAINER: attach the group to a container (or iommufd) fd. `hints` replace
   * the default (type1) hints per errno.
   */
  setContainer(containerFd: number, hints: HintTable = {}): void {
    const arg = new Uint8Array(Int32Array.BYTES_PER_ELEMENT);
    new DataView(arg.buffer).setInt32(0, containerFd, true);
    ioctlChecked(this.#kernel, this.fd, VFIO_GROUP_SET_CONTAINER, arg, this.#path, {
      EPERM: HINTS.type1Interrupts,
      EBUSY: `group ${this.group} is not viable: bind every device of ` +
        `/sys/kernel/iommu_groups/${this.group}/devices to vfio-pci`,
      EINVAL: `group ${this.group} is already attached to a container`,
      ...hints,
    });
  }

  /** VFIO_GROUP_UNSET_CONTAINER: detach the group (every device fd must be closed first). */
  unsetContainer(): void {
    ioctlChecked(this.#kernel, this.fd, VFIO_GROUP_UNSET_CONTAINER, undefined, this.#path, {
      EBUSY: "device fds of the group are still open: close them first",
    });
  }

  /** VFIO_GROUP_GET_DEVICE_FD: open device `name` ("0000:00:02.0"); returns its fd. */
  getDeviceFd(name: string): number {
    return ioctlChecked(this.#kernel, this.fd, VFIO_GROUP_GET_DEVICE_FD, cString(name), name, {
      ENODEV: `${name} is not in IOMMU group ${this.group} or not bound to vfio-pci`,
      EINVAL: "the group has no container with an IOMMU set (VFIO_SET_IOMMU)",
    });
  }

  /** close(2) the group (this also detaches it from its container). */
  close(): void {
    closeChecked(this.#kernel, this.fd, this.#path);
  }
}
