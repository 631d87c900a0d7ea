/**
 * vfio_iommu_type1 as a registered container IOMMU driver: its CHECK_EXTENSION answers, `open`
 * for the three type1 flavours, and its container ioctls (vfio.md §3, §8).
 *
 * @module
 */

import type { SimProcess } from "../kernel/file.ts";
import type { SimIommuGroup } from "../kernel/pci_function.ts";
import { userBytes } from "../kernel/user.ts";
import { ERRNO } from "../../ffi/errno.ts";
import { ioctlTable, type VfioEnv, type VfioIommuDriver, type VfioIommuDriverSpec } from "./env.ts";
import { type Type1Flavour, Type1Iommu } from "./type1.ts";
import { type1DirtyPages, type1GetInfo, type1MapDma, type1UnmapDma } from "./type1_ioctl.ts";
import {
  VFIO_DMA_CC_IOMMU,
  VFIO_IOMMU_DIRTY_PAGES,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1_NESTING_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  VFIO_UNMAP_ALL,
  VFIO_UPDATE_VADDR,
} from "../../ffi/uapi/mod.ts";

/** How type1 answers one extension id, with or without an instance. */
type ExtensionAnswer = (t1: Type1Iommu | undefined) => number;

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
export const TYPE1_FLAVOURS: ReadonlyMap<bigint, Type1Flavour> = new Map([
  [BigInt(VFIO_TYPE1_IOMMU), { v2: false, nesting: false }],
  [BigInt(VFIO_TYPE1v2_IOMMU), { v2: true, nesting: false }],
  [BigInt(VFIO_TYPE1_NESTING_IOMMU), { v2: true, nesting: true }],
]);

type Type1Handler = (t1: Type1Iommu, process: SimProcess, user: Uint8Array) => number;

/** An open type1 instance behind the container. */
class Type1Driver implements VfioIommuDriver {
  readonly #handlers: Map<number, Type1Handler>;

  constructor(readonly t1: Type1Iommu, env: VfioEnv) {
    this.#handlers = ioctlTable<Type1Handler>(env.arch, [
      [VFIO_IOMMU_GET_INFO, (t, _p, u) => type1GetInfo(t, u)],
      [VFIO_IOMMU_MAP_DMA, type1MapDma],
      [VFIO_IOMMU_UNMAP_DMA, type1UnmapDma],
      [VFIO_IOMMU_DIRTY_PAGES, type1DirtyPages],
    ]);
  }

  checkExtension(ext: bigint): number {
    return TYPE1_EXTENSIONS.get(ext)?.(this.t1) ?? 0;
  }

  ioctl(process: SimProcess, request: number, arg: Uint8Array | bigint): number | undefined {
    const handler = this.#handlers.get(request);
    if (handler === undefined) return undefined;
    const user = userBytes(process, arg);
    return user === undefined ? -ERRNO.EFAULT : handler(this.t1, process, user);
  }

  attachGroup(group: SimIommuGroup): number {
    return this.t1.attachGroup(group);
  }

  detachGroup(group: SimIommuGroup): void {
    this.t1.detachGroup(group);
  }

  release(): void {
    this.t1.release();
  }
}

/** vfio_iommu_type1, registered on x86 and arm64 machines. */
export const TYPE1_DRIVER: VfioIommuDriverSpec = {
  name: "vfio_iommu_type1",
  checkExtension: (ext) => TYPE1_EXTENSIONS.get(ext)?.(undefined) ?? 0,
  open(type: bigint, env: VfioEnv): VfioIommuDriver | number {
    const flavour = TYPE1_FLAVOURS.get(type);
    if (flavour === undefined) return -ERRNO.EINVAL;
    const t1 = new Type1Iommu(flavour, {
      pageSize: env.pageSize,
      allowUnsafeInterrupts: env.type1.allowUnsafeInterrupts,
      dmaEntryLimit: env.type1.dmaEntryLimit,
      physical: env.physical,
      trace: (line) => env.trace(line),
    });
    return new Type1Driver(t1, env);
  },
};
