/**
 * A small world for the iommufd tests: physical memory, a VT-d unit (or a variant with other
 * capabilities), one IOMMU group with one or more PCI functions, a process, and an
 * {@link IommufdContext} — plus helpers to issue iommufd ioctls by struct layout.
 *
 * @module
 */

import { ERRNO, errnoName } from "../../ffi/errno.ts";
import { ioctlNumber } from "../../ffi/uapi/common.ts";
import type { IoctlDecl } from "../../ffi/uapi/common.ts";
import {
  decode,
  encode,
  type FieldMap,
  type StructLayout,
  type StructValues,
} from "../../ffi/uapi/layout.ts";
import { VirtualClock } from "../../sim/clock.ts";
import { VtdIommu, type VtdOptions } from "../../sim/iommu/vtd/vtd.ts";
import { vtdNestingSupported } from "../../sim/iommufd/drivers.ts";
import type {
  DmaAccess,
  IommuDomain,
  IommuFacts,
  IommuModel,
  IommuNesting,
  ReservedRegion,
  TranslateResult,
} from "../../sim/iommu/model.ts";
import type { SimIommuGroup, SimPciFunction } from "../../sim/kernel/pci_function.ts";
import { KernelProcess } from "../../sim/kernel/process.ts";
import { PhysicalMemory, ProcessMemory } from "../../sim/memory.ts";
import type { PciDeviceModel } from "../../sim/pci/device.ts";
import { IommufdContext, type IommufdContextOptions } from "../../sim/iommufd/mod.ts";

/** PAGE_SIZE. */
export const PAGE = 4096;
/** `U64_MAX`. */
export const U64_MAX = (1n << 64n) - 1n;

/** An IommuModel that forwards to a VT-d unit but reports other facts (e.g. nesting, dirty). */
export class VariantIommu implements IommuModel {
  /** The facts reported instead of the unit's. */
  readonly facts: IommuFacts;
  /** Dirty pages the domains report (IOVA list), for GET_DIRTY_BITMAP tests. */
  dirty: bigint[] = [];
  /** Whether dirty tracking was last enabled. */
  tracking = false;

  /** Forward to `inner`, overriding facts with `over`. */
  constructor(readonly inner: VtdIommu, over: Partial<IommuFacts>) {
    this.facts = { ...inner.facts, ...over };
  }

  /** Forwarded. */
  reservedRegions(requester: number): ReservedRegion[] {
    return this.inner.reservedRegions(requester);
  }

  /** The unit's domain, with dirty operations added. */
  allocDomain(): IommuDomain {
    const domain = this.inner.allocDomain();
    return Object.assign(domain, {
      setDirtyTracking: (enable: boolean): number => {
        this.tracking = enable;
        return 0;
      },
      readAndClearDirty: (_i: bigint, _l: bigint, _p: bigint, noClear: boolean): bigint[] => {
        const out = this.dirty;
        if (!noClear) this.dirty = [];
        return out;
      },
    });
  }

  /** Forwarded. */
  freeDomain(domain: IommuDomain): void {
    this.inner.freeDomain(domain);
  }

  /** Forwarded. */
  attach(requester: number, domain: IommuDomain | null): void {
    this.inner.attach(requester, domain);
  }

  /** Forwarded. */
  attachPasid(requester: number, pasid: number, domain: IommuDomain | null): number {
    return this.inner.attachPasid(requester, pasid, domain);
  }

  /** Forwarded. */
  translate(
    requester: number,
    pasid: number | undefined,
    iova: bigint,
    access: DmaAccess,
    length: number,
  ): TranslateResult {
    return this.inner.translate(requester, pasid, iova, access, length);
  }

  /** Forwarded. */
  get faults(): VtdIommu["faults"] {
    return this.inner.faults;
  }

  /** Forwarded (present when the unit runs in scalable mode with nesting). */
  get nesting(): IommuNesting | undefined {
    return this.inner.nesting;
  }
}

/** Options of {@link world}. */
export interface WorldOptions {
  /** Functions in the one group (default 1). */
  readonly functions?: number;
  /** RLIMIT_MEMLOCK (default 8 MiB). */
  readonly memlockLimit?: number;
  /** CAP_IPC_LOCK (default false). */
  readonly capIpcLock?: boolean;
  /** VT-d options. */
  readonly vtd?: Partial<VtdOptions>;
  /** Replace the IOMMU facts (wraps the unit in a {@link VariantIommu}). */
  readonly facts?: Partial<IommuFacts>;
  /** Context options. */
  readonly ctx?: Partial<IommufdContextOptions>;
}

/** The test world. */
export interface World {
  /** Physical memory. */
  readonly memory: PhysicalMemory;
  /** The VT-d unit. */
  readonly vtd: VtdIommu;
  /** The group's IOMMU (the unit or a variant). */
  readonly iommu: IommuModel;
  /** The group. */
  readonly group: SimIommuGroup;
  /** Its functions (requesters 0x10, 0x11, …). */
  readonly fns: SimPciFunction[];
  /** The process. */
  readonly process: KernelProcess;
  /** The iommufd under test. */
  readonly ctx: IommufdContext;
  /** A second context on the same machine. */
  other(): IommufdContext;
  /** Fresh process memory. */
  mem(length: number): { address: bigint; bytes: Uint8Array };
  /** An iommufd ioctl with a struct argument; returns the result and the decoded struct. */
  call<F extends FieldMap>(
    decl: IoctlDecl,
    layout: StructLayout<F>,
    values: Partial<StructValues<F>>,
    extra?: number,
  ): { rc: number; out: StructValues<F>; bytes: Uint8Array };
  /** A raw ioctl. */
  raw(decl: IoctlDecl | number, arg: Uint8Array | bigint): number;
  /** The errno name of a result ("OK" for >= 0). */
  name(rc: number): string;
}

/** Build a world. */
export function world(o: WorldOptions = {}): World {
  const memory = new PhysicalMemory();
  const clock = new VirtualClock();
  // Facts that claim nesting get a unit that has it (scalable mode), so nested HWPTs work.
  const nest = o.facts?.hwInfo !== undefined && vtdNestingSupported(o.facts as IommuFacts);
  const vtd = new VtdIommu({ memory, clock, ...(nest ? { scalableMode: {} } : {}), ...o.vtd });
  const iommu: IommuModel = o.facts ? new VariantIommu(vtd, o.facts) : vtd;
  const fns: SimPciFunction[] = [];
  const group: SimIommuGroup = {
    id: 7,
    iommu,
    functions: fns,
    dmaOwner: undefined,
    dmaOwnerCookie: undefined,
  };
  for (let i = 0; i < (o.functions ?? 1); i++) {
    fns.push({
      bdf: `0000:00:02.${i}`,
      requester: 0x10 + i,
      group,
      model: {} as unknown as PciDeviceModel,
      driver: "vfio-pci",
      cdevIndex: i,
    });
  }
  const process = new KernelProcess(new ProcessMemory(memory, PAGE), clock, {
    memlockLimit: o.memlockLimit ?? 8 * 1024 * 1024,
    capIpcLock: o.capIpcLock ?? false,
  });
  const options: IommufdContextOptions = {
    allowUnsafeInterrupts: false,
    pageSize: PAGE,
    memory,
    ...o.ctx,
  };
  const ctx = new IommufdContext(options);
  process.installFd(ctx);
  const raw = (decl: IoctlDecl | number, arg: Uint8Array | bigint): number =>
    ctx.ioctl(process, typeof decl === "number" ? decl : ioctlNumber("generic", decl), arg);
  return {
    memory,
    vtd,
    iommu,
    group,
    fns,
    process,
    ctx,
    other: () => new IommufdContext(options),
    mem(length) {
      const m = process.memory.mmap(length);
      if (!m) throw new Error("out of simulated memory");
      return { address: BigInt(m.address), bytes: m.chunk.bytes };
    },
    call(decl, layout, values, extra = 0) {
      const bytes = encode(layout, values, extra);
      const rc = raw(decl, bytes);
      return { rc, out: decode(layout, bytes), bytes };
    },
    raw,
    name: (rc) => (rc >= 0 ? "OK" : errnoName(rc)),
  };
}

/** `-ERRNO[name]`. */
export function err(name: keyof typeof ERRNO): number {
  return -ERRNO[name];
}
