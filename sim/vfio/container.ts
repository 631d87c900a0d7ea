/**
 * The VFIO container (`/dev/vfio/vfio`, drivers/vfio/container.c; vfio.md §3, §5): API version,
 * CHECK_EXTENSION, SET_IOMMU, and every other ioctl passed to the IOMMU driver once one is set
 * (EINVAL before). The only IOMMU driver registered on this machine is type1 (x86: no sPAPR, and
 * CONFIG_VFIO_NOIOMMU is unset as in Debian's kernels).
 *
 * @module
 */

import { ERRNO } from "../../ffi/errno.ts";
import type { SimFile, SimProcess } from "../kernel/file.ts";
import type { SimIommuGroup } from "../kernel/pci_function.ts";
import { userBytes } from "../kernel/user.ts";
import type { VfioEnv } from "./env.ts";
import { ioctlTable } from "./env.ts";
import { Type1Iommu } from "./type1.ts";
import { type1DirtyPages, type1GetInfo, type1MapDma, type1UnmapDma } from "./type1_ioctl.ts";
import {
  VFIO_API_VERSION,
  VFIO_CHECK_EXTENSION,
  VFIO_DMA_CC_IOMMU,
  VFIO_GET_API_VERSION,
  VFIO_IOMMU_DIRTY_PAGES,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_SET_IOMMU,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1_NESTING_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  VFIO_UNMAP_ALL,
  VFIO_UPDATE_VADDR,
} from "./uapi.ts";

/** How type1 answers one extension id. */
export type ExtensionAnswer = (t1: Type1Iommu | undefined) => number;

/**
 * `vfio_iommu_type1_check_extension`: the answer of type1 for an extension id, with or without an
 * instance (before SET_IOMMU the container polls the driver without one).
 */
export const TYPE1_EXTENSIONS: ReadonlyMap<bigint, ExtensionAnswer> = new Map<
  bigint,
  ExtensionAnswer
>([
  [BigInt(VFIO_TYPE1_IOMMU), () => 1],
  [BigInt(VFIO_TYPE1v2_IOMMU), () => 1],
  [BigInt(VFIO_TYPE1_NESTING_IOMMU), () => 1],
  [BigInt(VFIO_UNMAP_ALL), () => 1],
  [BigInt(VFIO_UPDATE_VADDR), (t1) => (t1 ? 1 : 0)],
  [BigInt(VFIO_DMA_CC_IOMMU), (t1) => (t1 ? t1.enforcesCacheCoherency() : 0)],
]);

/** type1 `open()`: the flavour for an accepted type, undefined (EINVAL) otherwise. */
export const TYPE1_FLAVOURS: ReadonlyMap<bigint, { v2: boolean; nesting: boolean }> = new Map([
  [BigInt(VFIO_TYPE1_IOMMU), { v2: false, nesting: false }],
  [BigInt(VFIO_TYPE1v2_IOMMU), { v2: true, nesting: false }],
  [BigInt(VFIO_TYPE1_NESTING_IOMMU), { v2: true, nesting: true }],
]);

/** A value-argument as the kernel sees it (a buffer passed by pointer is some large address). */
function argValue(arg: Uint8Array | bigint): bigint {
  return typeof arg === "bigint" ? arg : -1n;
}

type ContainerHandler = (process: SimProcess, arg: Uint8Array | bigint) => number;

/** An open VFIO container. */
export class VfioContainer implements SimFile {
  /** fd type tag. */
  readonly kind = "vfio-container";
  /** The groups attached, in attach order. */
  readonly groups: SimIommuGroup[] = [];
  /** The IOMMU driver instance once SET_IOMMU succeeded. */
  driver: Type1Iommu | undefined;
  readonly #base: Map<number, ContainerHandler>;
  readonly #type1: Map<number, (t1: Type1Iommu, p: SimProcess, user: Uint8Array) => number>;

  /** A fresh container. */
  constructor(private readonly env: VfioEnv) {
    this.#base = ioctlTable<ContainerHandler>(env.arch, [
      [VFIO_GET_API_VERSION, () => VFIO_API_VERSION],
      [VFIO_CHECK_EXTENSION, (_p, arg) => this.checkExtension(argValue(arg))],
      [VFIO_SET_IOMMU, (_p, arg) => this.#setIommu(argValue(arg))],
    ]);
    this.#type1 = ioctlTable(env.arch, [
      [VFIO_IOMMU_GET_INFO, (t1: Type1Iommu, _p: SimProcess, u: Uint8Array) => type1GetInfo(t1, u)],
      [VFIO_IOMMU_MAP_DMA, type1MapDma],
      [VFIO_IOMMU_UNMAP_DMA, type1UnmapDma],
      [VFIO_IOMMU_DIRTY_PAGES, type1DirtyPages],
    ]);
  }

  /** VFIO_CHECK_EXTENSION: the chosen driver's answer, or polled from every registered driver. */
  checkExtension(ext: bigint): number {
    return TYPE1_EXTENSIONS.get(ext)?.(this.driver) ?? 0;
  }

  #setIommu(type: bigint): number {
    if (this.groups.length === 0 || this.driver !== undefined) return -ERRNO.EINVAL;
    if ((TYPE1_EXTENSIONS.get(type)?.(undefined) ?? 0) <= 0) return -ERRNO.ENODEV;
    const flavour = TYPE1_FLAVOURS.get(type);
    if (flavour === undefined) return -ERRNO.EINVAL;
    const t1 = new Type1Iommu(flavour, {
      pageSize: this.env.pageSize,
      allowUnsafeInterrupts: this.env.type1.allowUnsafeInterrupts,
      dmaEntryLimit: this.env.type1.dmaEntryLimit,
      physical: this.env.physical,
      trace: (line) => this.env.trace(line),
    });
    for (const group of this.groups) {
      const r = t1.attachGroup(group);
      if (r < 0) {
        t1.release();
        return r;
      }
    }
    this.driver = t1;
    return 0;
  }

  /** read(2): a char device without a read op (EINVAL). */
  read(): number {
    return -ERRNO.EINVAL;
  }

  /** write(2): EINVAL. */
  write(): number {
    return -ERRNO.EINVAL;
  }

  /** pread(2): EINVAL (opened by path, so positioned I/O is allowed but there is no read op). */
  pread(): number {
    return -ERRNO.EINVAL;
  }

  /** pwrite(2): EINVAL. */
  pwrite(): number {
    return -ERRNO.EINVAL;
  }

  /** ioctl on the container fd. */
  ioctl(process: SimProcess, request: number, arg: Uint8Array | bigint): number {
    const base = this.#base.get(request);
    if (base) return base(process, arg);
    const t1 = this.driver;
    if (t1 === undefined) return -ERRNO.EINVAL;
    const handler = this.#type1.get(request);
    if (handler === undefined) return -ERRNO.ENOTTY;
    const user = userBytes(process, arg);
    if (user === undefined) return -ERRNO.EFAULT;
    return handler(t1, process, user);
  }

  /**
   * `vfio_container_attach_group` after DMA ownership was claimed: attach to the IOMMU driver if
   * one is set; 0 or its -errno.
   */
  attachGroup(group: SimIommuGroup): number {
    if (this.driver) {
      const r = this.driver.attachGroup(group);
      if (r < 0) return r;
    }
    this.groups.push(group);
    return 0;
  }

  /** `vfio_container_detach_group`: the last group out releases the IOMMU driver. */
  detachGroup(group: SimIommuGroup): void {
    const i = this.groups.indexOf(group);
    if (i < 0) return;
    this.driver?.detachGroup(group);
    this.groups.splice(i, 1);
    if (this.groups.length === 0 && this.driver) {
      this.driver.release();
      this.driver = undefined;
    }
  }

  /** Whether the IOMMU driver is set (GET_DEVICE_FD needs it). */
  get iommuSet(): boolean {
    return this.driver !== undefined;
  }
}
