/**
 * How `createMachine` wires the **proposed** PASID lifecycle (not Linux ABI; on only with
 * `pasidAllocatorProposal`) and its several IOMMU instances:
 *
 * - one {@link SystemPasidSpace} for the machine, shared by every IOMMU instance;
 * - its {@link PasidTeardown} over every instance (silence, stop, drain, quarantine);
 * - the kernel's list of allocators (seeds/000): on a virtio-iommu machine every instance, in
 *   order, each offering ALLOC_PASID; elsewhere the kernel's own;
 * - /dev/ioasid files, the iommufd attach policy (EACCES for a PASID the caller does not own) and
 *   simulated SVA processes.
 *
 * Several instances: only virtio-iommu is modelled with more than one (each its own device and
 * endpoints). Mixing kinds is refused for the reason seeds/000 gives: a vIOMMU that offers the
 * PASID allocator may be removed at runtime, and then an instance of another kind (VT-d, whose
 * guest would take its PASIDs from that allocator) could no longer get any, so one machine's
 * IOMMUs are one kind.
 *
 * @module
 */

import type { IoctlArch } from "../ffi/ioctl.ts";
import type { VirtualClock } from "./clock.ts";
import type { IommuModel } from "./iommu/model.ts";
import { VirtioIommu } from "./iommu/virtio_iommu/virtio_iommu.ts";
import type { SimProcess } from "./kernel/file.ts";
import { ioasidAttachPolicy, IoasidFile } from "./kernel/ioasid.ts";
import {
  nativeAllocator,
  type PasidAllocator,
  PasidAllocators,
  type PasidAttachPolicy,
  viommuAllocator,
} from "./kernel/pasid_allocators.ts";
import { type PasidDrainSource, PasidTeardown } from "./kernel/pasid_teardown.ts";
import type { SystemPasidSpace } from "./kernel/pasid_space.ts";
import type { SimPciFunction } from "./kernel/pci_function.ts";
import { SvaProcess } from "./kernel/sva.ts";
import type { IommuModelName } from "./machine_models.ts";

/** The kinds of a machine's IOMMU instances, checked (see the module doc). */
export function iommuKinds(
  first: IommuModelName,
  more: readonly IommuModelName[] | undefined,
  devices: readonly { readonly iommu?: number; readonly group?: number }[],
): IommuModelName[] {
  const kinds = [first, ...(more ?? [])];
  const other = kinds.find((k) => k !== first);
  if (other !== undefined) {
    throw new Error(
      `createMachine: additionalIommus mixes "${first}" and "${other}": refused, as seeds/000 ` +
        "argues — a virtio-iommu that offers the PASID allocator can be removed at runtime, and " +
        "then an IOMMU of another kind could no longer get PASIDs; give every instance one kind " +
        '(several "virtio-iommu" share the PASID space)',
    );
  }
  if (kinds.length > 1 && first !== "virtio-iommu") {
    throw new Error(
      `createMachine: several "${first}" instances: only virtio-iommu is modelled with more ` +
        "than one instance; leave additionalIommus out",
    );
  }
  const groupIommu = new Map<number, number>();
  for (const d of devices) {
    const i = d.iommu ?? 0;
    if (!Number.isInteger(i) || i < 0 || i >= kinds.length) {
      throw new Error(
        `createMachine: device iommu ${i}: want 0..${kinds.length - 1} (0 is \`iommu\`, 1… ` +
          "are additionalIommus)",
      );
    }
    if (d.group === undefined) continue;
    const seen = groupIommu.get(d.group);
    if (seen !== undefined && seen !== i) {
      throw new Error(
        `createMachine: group ${d.group} has devices behind IOMMUs ${seen} and ${i}: a group ` +
          "sits behind one IOMMU",
      );
    }
    groupIommu.set(d.group, i);
  }
  return kinds;
}

/** Everything of the proposal a machine exposes. */
export interface MachinePasids {
  /** The system-wide space. */
  readonly space: SystemPasidSpace;
  /** Its teardown (events, watchers). */
  readonly teardown: PasidTeardown;
  /** A new simulated process whose address space devices can share (SVA). */
  spawnProcess(name: string): SvaProcess;
}

/** The machine's own handles on the proposal (the kernel side). */
export interface MachinePasidWiring {
  /** What the machine exposes. */
  readonly pasids: MachinePasids;
  /** The kernel's list of allocators. */
  readonly allocators: PasidAllocators;
  /** The iommufd attach rule. */
  readonly policy: PasidAttachPolicy;
  /** Open /dev/ioasid for `process`. */
  openIoasid(process: SimProcess): IoasidFile;
}

/** What {@link machinePasids} is built with. */
export interface MachinePasidsOptions {
  /** The space the IOMMUs were built with. */
  readonly space: SystemPasidSpace;
  /** The machine's clock. */
  readonly clock: VirtualClock;
  /** ioctl encoding. */
  readonly arch: IoctlArch;
  /** Every IOMMU instance. */
  readonly iommus: readonly IommuModel[];
  /** The machine's functions. */
  readonly functions: () => readonly SimPciFunction[];
  /** Longest drain of a teardown. */
  readonly drainTimeoutNs?: number;
  /** Trace sink. */
  readonly trace: (line: string) => void;
}

/** Wire the proposal's pieces for one machine. */
export function machinePasids(o: MachinePasidsOptions): MachinePasidWiring {
  const { space } = o;
  const byRequester = (r: number): SimPciFunction | undefined =>
    o.functions().find((f) => f.requester === r);
  const teardown = new PasidTeardown({
    clock: o.clock,
    space,
    iommus: () => o.iommus,
    drainSource: (r) => {
      const model = byRequester(r)?.model as Partial<PasidDrainSource> | undefined;
      return typeof model?.pasidRequestsInFlight === "function"
        ? model as PasidDrainSource
        : undefined;
    },
    drainTimeoutNs: o.drainTimeoutNs,
    trace: o.trace,
  });
  const viommus = o.iommus.filter((i) => i instanceof VirtioIommu);
  const list: PasidAllocator[] = viommus.length > 0
    ? viommus.map((v) =>
      viommuAllocator(space, {
        name: v.name,
        allocPasid: (max) => v.allocPasid(max),
        freePasid: (pasid) => v.freePasid(pasid),
        get removed(): boolean {
          return v.device.removed;
        },
      })
    )
    : [nativeAllocator(space)];
  const allocators = new PasidAllocators(space, list);
  const policy = ioasidAttachPolicy(space, teardown);
  let nextPid = 1000;
  const fn = (bdf: string): SimPciFunction => {
    const f = o.functions().find((x) => x.bdf === bdf);
    if (f === undefined) throw new Error(`no PCI function ${bdf} in this machine`);
    return f;
  };
  return {
    pasids: {
      space,
      teardown,
      spawnProcess: (name) => new SvaProcess({ pid: nextPid++, name, allocators, teardown, fn }),
    },
    allocators,
    policy,
    openIoasid: (process) => new IoasidFile({ space, allocators, teardown, arch: o.arch }, process),
  };
}
