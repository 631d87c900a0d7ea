/**
 * iommufd objects and the per-context object table (`ictx->objects`, drivers/iommu/iommufd/main.c).
 *
 * IDs are `1..INT_MAX`, the lowest free one is taken (xarray `XA_FLAGS_ALLOC1`, `xa_limit_31b`)
 * and reused after destroy; an ID is reserved when creation starts, so a failed creation does not
 * consume it. Every object has a `users` count: 1 for the table itself, plus one per reference
 * (a HWPT on its IOAS, a device on its HWPT, …). IOMMU_DESTROY succeeds only at exactly 1.
 *
 * @module
 */

import { ERRNO } from "../../ffi/errno.ts";
import type { IommuDomain, IommuFacts, IommuModel } from "../iommu/model.ts";
import type { SimProcess } from "../kernel/file.ts";
import type { SimIommuGroup, SimPciFunction } from "../kernel/pci_function.ts";
import type { FaultQueue } from "./fault.ts";
import type { IoPagetable } from "./io_pagetable.ts";
import type { VeventQueue } from "./vevent_queue.ts";

/** `INT_MAX`: the largest object ID. */
export const IOMMUFD_MAX_ID = 0x7fff_ffff;

/** Internal object types (not ABI). */
export type ObjectType =
  | "device"
  | "hwpt-paging"
  | "hwpt-nested"
  | "ioas"
  | "fault"
  | "viommu"
  | "vdevice"
  | "veventq";

/** Fields every object has. */
interface ObjectBase {
  /** The object ID (> 0). */
  readonly id: number;
  /** References: 1 for the table plus one per user. */
  users: number;
}

/** An IO address space (`struct iommufd_ioas`). */
export interface IoasObject extends ObjectBase {
  /** Type tag. */
  readonly type: "ioas";
  /** The IOVA → user memory map. */
  readonly iopt: IoPagetable;
  /** Kernel-managed HWPTs mirroring this IOAS (`ioas->hwpt_list`), oldest first. */
  readonly hwpts: HwptPaging[];
}

/** A kernel-managed paging HWPT (`struct iommufd_hwpt_paging`). */
export interface HwptPaging extends ObjectBase {
  /** Type tag. */
  readonly type: "hwpt-paging";
  /** The IOAS it mirrors (holds a user on it). */
  readonly ioas: IoasObject;
  /** The hardware paging domain. */
  readonly domain: IommuDomain;
  /** The IOMMU that owns the domain. */
  readonly iommu: IommuModel;
  /** Created automatically by attaching to an IOAS. */
  autoDomain: boolean;
  /** Allocated with IOMMU_HWPT_ALLOC_NEST_PARENT. */
  readonly nestParent: boolean;
  /** Allocated with IOMMU_HWPT_ALLOC_DIRTY_TRACKING (the domain has dirty ops). */
  readonly dirtyOps: boolean;
  /** Dirty tracking currently enabled. */
  dirtyEnabled: boolean;
  /** `enforce_cache_coherency`. */
  enforceCacheCoherency: boolean;
  /** Fault queue attached with FAULT_ID_VALID. */
  fault: FaultObject | undefined;
  /** Allocated with IOMMU_HWPT_ALLOC_PASID (6.15+): may be attached to PASIDs. */
  readonly pasidCompat: boolean;
}

/** A user-managed stage-1 HWPT nested on a NEST_PARENT paging HWPT. */
export interface HwptNested extends ObjectBase {
  /** Type tag. */
  readonly type: "hwpt-nested";
  /** The stage-2 parent (holds a user on it). */
  readonly parent: HwptPaging;
  /** `data_type` of the allocation (IOMMU_HWPT_DATA_VTD_S1). */
  readonly dataType: number;
  /** The vendor stage-1 configuration as the user passed it (e.g. iommu_hwpt_vtd_s1 bytes). */
  readonly data: Uint8Array;
  /** The IOMMU's stage-1 domain over the parent's (devices attached to the HWPT use it). */
  readonly domain: IommuDomain;
  /** Allocated with IOMMU_HWPT_ALLOC_PASID (6.15+): may be attached to PASIDs. */
  readonly pasidCompat: boolean;
  /** Fault queue attached with FAULT_ID_VALID. */
  fault: FaultObject | undefined;
  /** The vIOMMU it was allocated on (6.13+; holds a user on it instead of on `parent`). */
  readonly viommu?: ViommuObject;
}

/**
 * A vIOMMU (`struct iommufd_viommu`, Linux 6.13+): a slice of the physical IOMMU given to a VM,
 * over a nest-parent paging HWPT (the VM's stage 2; holds a user on it). Nested HWPTs allocated on
 * it and its vDEVICEs hold users on it.
 */
export interface ViommuObject extends ObjectBase {
  /** Type tag. */
  readonly type: "viommu";
  /** `enum iommu_viommu_type` (IOMMU_VIOMMU_TYPE_ARM_SMMUV3). */
  readonly viommuType: number;
  /** The nest-parent HWPT. */
  readonly hwpt: HwptPaging;
  /** The physical IOMMU. */
  readonly iommu: IommuModel;
  /** vDEVICEs by virtual id (`viommu->vdevs`). */
  readonly vdevs: Map<bigint, VdeviceObject>;
  /** Attaching a translating nested HWPT needs the device's vDEVICE here (6.15+). */
  readonly vdeviceForTranslate: boolean;
  /** Whether a nested HWPT's (validated) data translates, so needs a vDEVICE to attach. */
  readonly translates: (data: Uint8Array) => boolean;
  /** vEVENTQs by `enum iommu_veventq_type` (`viommu->veventqs`; 6.15+, one per type). */
  readonly veventqs: Map<number, VeventqObject>;
}

/**
 * A vEVENTQ (`struct iommufd_veventq`, Linux 6.15+): a bounded queue of vIOMMU events read through
 * its fd; holds a user on its vIOMMU, and its open fd holds one on it.
 */
export interface VeventqObject extends ObjectBase {
  /** Type tag. */
  readonly type: "veventq";
  /** Its vIOMMU. */
  readonly viommu: ViommuObject;
  /** `enum iommu_veventq_type`. */
  readonly veventqType: number;
  /** The queue and its fd file. */
  readonly queue: VeventQueue;
}

/**
 * A vDEVICE (`struct iommufd_vdevice`, Linux 6.13+): a device's virtual id (an SMMUv3 vSID) on a
 * vIOMMU; holds a user on the vIOMMU. In 6.13–6.16 it keeps the device itself (not the device
 * object) alive, so the device may be unbound under it; from 6.17 unbinding destroys it.
 */
export interface VdeviceObject extends ObjectBase {
  /** Type tag. */
  readonly type: "vdevice";
  /** Its vIOMMU. */
  readonly viommu: ViommuObject;
  /** The bound device it was created for. */
  readonly dev: DeviceObject;
  /** The virtual id (vSID). */
  readonly virtId: bigint;
}

/** Either HWPT kind. */
export type Hwpt = HwptPaging | HwptNested;

/** Per (context, IOMMU group) state (`struct iommufd_group`). */
export interface IommufdGroup {
  /** The kernel group. */
  readonly group: SimIommuGroup;
  /** The HWPT every attached device of the group uses, or undefined. */
  hwpt: Hwpt | undefined;
  /** Attached devices (`igroup->device_list`). */
  readonly attached: DeviceObject[];
  /** Bound devices of this group in this context (DMA-ownership claims). */
  bound: number;
}

/** A bound device (`struct iommufd_device`). */
export interface DeviceObject extends ObjectBase {
  /** Type tag. */
  readonly type: "device";
  /** The PCI function. */
  readonly fn: SimPciFunction;
  /** The process that bound it. */
  readonly process: SimProcess;
  /** Its group state in this context. */
  readonly igroup: IommufdGroup;
  /** `idev->enforce_cache_coherency`. */
  readonly enforceCacheCoherency: boolean;
  /** Attached through the VFIO attach path (vdev->iommufd_attached). */
  attached: boolean;
  /** HWPTs attached to PASIDs of the device (6.15+ PASID attach). */
  readonly pasids: Map<number, Hwpt>;
  /** `idev->iopf_enabled`: fault-capable attachments holding the IOPF feature on. */
  iopfEnabled: number;
}

/** A page-fault queue object. */
export interface FaultObject extends ObjectBase {
  /** Type tag. */
  readonly type: "fault";
  /** The queue and its fd file. */
  readonly queue: FaultQueue;
}

/** Any object. */
export type IommufdObject =
  | IoasObject
  | HwptPaging
  | HwptNested
  | DeviceObject
  | FaultObject
  | ViommuObject
  | VdeviceObject
  | VeventqObject;

/** The facts of the IOMMU behind a device. */
export function deviceFacts(dev: DeviceObject): IommuFacts {
  return dev.fn.group.iommu.facts;
}

/** The object table of one context. */
export class ObjectTable {
  readonly #slots = new Map<number, IommufdObject | null>();
  #hint = 1;

  /** Number of slots in use (objects plus reservations): `xa_empty` is `size === 0`. */
  get size(): number {
    return this.#slots.size;
  }

  /** Reserve the lowest free ID; -EBUSY when all are taken (`xa_alloc`). */
  reserve(): number {
    let id = this.#hint;
    while (this.#slots.has(id)) id++;
    if (id > IOMMUFD_MAX_ID) return -ERRNO.EBUSY;
    this.#slots.set(id, null);
    this.#hint = id + 1;
    return id;
  }

  /** Make a reserved ID refer to its object (`iommufd_object_finalize`). */
  finalize(obj: IommufdObject): void {
    this.#slots.set(obj.id, obj);
  }

  /** Give a reserved or used ID back (`iommufd_object_abort`, destroy). */
  release(id: number): void {
    if (this.#slots.delete(id) && id < this.#hint) this.#hint = id;
  }

  /** The finalized object with this ID, or undefined. */
  get(id: number): IommufdObject | undefined {
    return this.#slots.get(id) ?? undefined;
  }

  /** Every finalized object, by ascending ID. */
  objects(): IommufdObject[] {
    return [...this.#slots.entries()]
      .filter((e): e is [number, IommufdObject] => e[1] !== null)
      .sort((a, b) => a[0] - b[0])
      .map((e) => e[1]);
  }
}
