/**
 * The state of one iommufd context (`struct iommufd_ctx`) and the object lifecycle: typed
 * look-ups (a wrong type is "not found", as `iommufd_get_object` answers), IOAS creation,
 * IOMMU_DESTROY (ENOENT / EBUSY), type-specific destruction through a per-type ops table (as
 * Linux's `iommufd_object_ops[]`; the table is ./object_ops.ts, so this module imports none of
 * the object modules that import it), and the leaf-first teardown of `iommufd_fops_release`.
 *
 * @module
 */

import { ERRNO } from "../../ffi/errno.ts";
import type { SimProcess } from "../kernel/file.ts";
import type { SimIommuGroup } from "../kernel/pci_function.ts";
import type { PhysicalMemory } from "../memory.ts";
import { IoPagetable } from "./io_pagetable.ts";
import {
  type DeviceObject,
  type FaultObject,
  type HwptNested,
  type HwptPaging,
  type IoasObject,
  type IommufdGroup,
  type IommufdObject,
  ObjectTable,
  type ObjectType,
  type VdeviceObject,
  type VeventqObject,
  type ViommuObject,
} from "./objects.ts";
import type { KernelVersion } from "../kernel_version.ts";
import type { PasidAttachPolicy } from "../kernel/pasid_allocators.ts";
import { type AccountMode, Pages } from "./pages.ts";

/** Static settings of a context. */
export interface CoreSettings {
  /** `iommufd.allow_unsafe_interrupts`. */
  readonly allowUnsafeInterrupts: boolean;
  /** PAGE_SIZE. */
  readonly pageSize: number;
  /** Physical memory (pins retain its chunks). */
  readonly memory: PhysicalMemory;
  /** Default rlimit accounting: "mm" for /dev/vfio/vfio, "user" for /dev/iommu. */
  readonly accountMode: "user" | "mm";
  /** CAP_SYS_RESOURCE (RLIMIT_MODE SET). */
  readonly capSysResource: boolean;
  /** CONFIG_TRANSPARENT_HUGEPAGE (default true): caps automatic IOVA alignment at HPAGE_SIZE. */
  readonly transparentHugepage?: boolean;
  /** The kernel has PASID attach and IOMMU_HWPT_ALLOC_PASID (6.15+). */
  readonly pasidAttach?: boolean;
  /** The Linux version answered as (undefined: the 6.12 baseline). */
  readonly kernel?: KernelVersion;
  /** **Proposal** (`pasidAllocatorProposal`): who may attach which PASID; undefined: Linux's rules. */
  readonly pasidPolicy?: PasidAttachPolicy;
  /** What destroying an object of each type does (./object_ops.ts). */
  readonly objectOps: ObjectOps;
}

/** The object of each type tag. */
export type ByType = {
  "ioas": IoasObject;
  "hwpt-paging": HwptPaging;
  "hwpt-nested": HwptNested;
  "device": DeviceObject;
  "fault": FaultObject;
  "viommu": ViommuObject;
  "vdevice": VdeviceObject;
  "veventq": VeventqObject;
};

/** One object type's operations (`struct iommufd_object_ops`). */
export interface ObjectTypeOps<T extends IommufdObject> {
  /** Undo the object's references and free what it holds; its ID is already released. */
  destroy(core: IommufdCore, obj: T): void;
}

/** The operations of every object type (`iommufd_object_ops[]`). */
export type ObjectOps = { readonly [T in ObjectType]: ObjectTypeOps<ByType[T]> };

/** The objects and state of one context. */
export class IommufdCore {
  /** The object table. */
  readonly objects: ObjectTable = new ObjectTable();
  /** Per-group state (`ictx->groups`). */
  readonly groups: Map<SimIommuGroup, IommufdGroup> = new Map();
  /** The VFIO-compat IOAS (`ictx->vfio_ioas`). */
  compatIoas: IoasObject | undefined;
  /** `ictx->account_mode`. */
  accountMode: "user" | "mm";
  /** Static settings. */
  readonly settings: CoreSettings;

  /** An empty context. */
  constructor(settings: CoreSettings) {
    this.settings = settings;
    this.accountMode = settings.accountMode;
  }

  /** The object with `id` if it has `type`, else undefined. */
  lookup<T extends ObjectType>(id: number, type: T): ByType[T] | undefined {
    const obj = this.objects.get(id);
    return obj?.type === type ? obj as ByType[T] : undefined;
  }

  /** The object with `id` of any type. */
  any(id: number): IommufdObject | undefined {
    return this.objects.get(id);
  }

  /** `iommufd_ioas_alloc` + finalize: a new IOAS or -errno. */
  allocIoas(): IoasObject | number {
    const id = this.objects.reserve();
    if (id < 0) return id;
    const ioas: IoasObject = {
      id,
      type: "ioas",
      users: 1,
      iopt: new IoPagetable(this.settings.pageSize, this.settings.transparentHugepage ?? true),
      hwpts: [],
    };
    this.objects.finalize(ioas);
    return ioas;
  }

  /** A pages object for `length` bytes at user address `uptr` (`iopt_alloc_pages`). */
  newPages(process: SimProcess, uptr: bigint, writable: boolean): Pages {
    const mode: AccountMode = process.capIpcLock ? "none" : this.accountMode;
    const size = BigInt(this.settings.pageSize);
    return new Pages({
      base: uptr - (uptr % size),
      writable,
      process,
      mode,
      pageSize: this.settings.pageSize,
      physical: this.settings.memory,
    });
  }

  /** Destroy an object whose last user is the table, and free its ID. */
  destroy(obj: IommufdObject): void {
    this.objects.release(obj.id);
    const ops = this.settings.objectOps[obj.type] as ObjectTypeOps<IommufdObject>;
    ops.destroy(this, obj);
  }

  /** `iommu_device_release_dma_owner` for a device leaving the context. */
  releaseOwnership(dev: DeviceObject): void {
    const ig = dev.igroup;
    ig.bound = Math.max(0, ig.bound - 1);
    if (ig.bound > 0) return;
    if (ig.group.dmaOwnerCookie === this.ownerCookie) {
      ig.group.dmaOwner = undefined;
      ig.group.dmaOwnerCookie = undefined;
    }
    if (ig.attached.length === 0) this.groups.delete(ig.group);
  }

  /** The identity compared by DMA-ownership claims (the context file). */
  ownerCookie: unknown = this;

  /** IOMMU_DESTROY: ENOENT for an unknown ID, EBUSY while anything references the object. */
  remove(id: number): number {
    const obj = this.objects.get(id);
    if (!obj) return -ERRNO.ENOENT;
    if (obj.users !== 1) return -ERRNO.EBUSY;
    obj.users = 0;
    this.destroy(obj);
    return 0;
  }

  /** Put a reference and destroy the object if only the table's is left (auto HWPTs). */
  putAndTryDestroy(obj: IommufdObject): void {
    obj.users--;
    if (obj.users === 1 && this.objects.get(obj.id) === obj) this.remove(obj.id);
  }

  /** `iommufd_fops_release`: destroy leaf-first until nothing is left. */
  releaseAll(): void {
    for (;;) {
      const objs = this.objects.objects();
      if (objs.length === 0) return;
      let destroyed = 0;
      for (const obj of objs) {
        if (this.objects.get(obj.id) !== obj || obj.users !== 1) continue;
        obj.users = 0;
        this.destroy(obj);
        destroyed++;
      }
      if (destroyed === 0) {
        // References the simulator could not unwind (a bug elsewhere): force them down.
        for (const obj of this.objects.objects()) obj.users = 1;
      }
    }
  }
}
