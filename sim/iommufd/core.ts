/**
 * The state of one iommufd context (`struct iommufd_ctx`) and the object lifecycle: typed
 * look-ups (a wrong type is "not found", as `iommufd_get_object` answers), IOAS creation,
 * IOMMU_DESTROY (ENOENT / EBUSY), type-specific destruction, and the leaf-first teardown of
 * `iommufd_fops_release`.
 *
 * @module
 */

import { ERRNO } from "../../ffi/errno.ts";
import type { SimProcess } from "../kernel/file.ts";
import type { SimIommuGroup } from "../kernel/pci_function.ts";
import type { PhysicalMemory } from "../memory.ts";
import { destroyHwpt } from "./hwpt.ts";
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
import { destroyVdevice, destroyViommu } from "./viommu.ts";
import { destroyVeventq } from "./veventq.ts";
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
}

type ByType = {
  "ioas": IoasObject;
  "hwpt-paging": HwptPaging;
  "hwpt-nested": HwptNested;
  "device": DeviceObject;
  "fault": FaultObject;
  "viommu": ViommuObject;
  "vdevice": VdeviceObject;
  "veventq": VeventqObject;
};

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
    switch (obj.type) {
      case "ioas":
        obj.iopt.destroy();
        if (this.compatIoas === obj) this.compatIoas = undefined;
        return;
      case "hwpt-paging":
      case "hwpt-nested":
        destroyHwpt(this, obj);
        return;
      case "device":
        this.releaseOwnership(obj);
        return;
      case "fault":
        obj.queue.shutdown();
        return;
      case "viommu":
        destroyViommu(obj);
        return;
      case "vdevice":
        destroyVdevice(obj);
        return;
      case "veventq":
        destroyVeventq(obj);
        return;
    }
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
