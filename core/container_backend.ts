/**
 * What the type1 and sPAPR backends share: one VFIO container, the groups attached to it
 * (each `/dev/vfio/N` opened once, its devices counted), the device fds, and the mappings made,
 * with every step undone in reverse order when a later one fails.
 *
 * Subclasses supply the IOMMU-specific parts: which IOMMU type to set on the first group, how
 * to read the IOVA ranges, and how to map and unmap.
 *
 * @module
 */

import type { Kernel } from "../ffi/kernel.ts";
import type {
  DeviceTarget,
  DmaBackend,
  DmaBackendKind,
  DmaProtection,
  Iova,
  IovaRange,
} from "./dma_backend.ts";
import { VfioError } from "./errors.ts";
import { hex } from "./iova_allocator.ts";
import { closeChecked, closeQuietly, type HintTable, runAll } from "./syscall.ts";
import { type VfioContainer, VfioGroup } from "./type1.ts";
import { VFIO_GROUP_GET_STATUS } from "../ffi/uapi/mod.ts";

/** One mapping as the caller asked for it (kept so it can be replayed). */
export interface ContainerMapping {
  /** Process address. */
  readonly vaddr: bigint;
  /** Size in bytes. */
  readonly size: bigint;
  /** Device permissions. */
  readonly prot: DmaProtection;
}

interface GroupEntry {
  readonly group: VfioGroup;
  readonly devices: Set<number>;
}

/** sysfs directory listing the devices of an IOMMU group. */
export function iommuGroupDevicesPath(group: number): string {
  return `/sys/kernel/iommu_groups/${group}/devices`;
}

/** A DmaBackend over a VFIO container (type1 or sPAPR). */
export abstract class ContainerBackend implements DmaBackend {
  /** The backend kind. */
  abstract readonly kind: DmaBackendKind;
  /** The kernel. */
  protected readonly kernel: Kernel;
  /** The container. */
  protected readonly container: VfioContainer;
  /**
   * Mappings by IOVA. While the container has no IOMMU (its last group left, which makes the
   * kernel drop every mapping) they are only remembered, and replayed when a group attaches
   * again, so a DmaSpace's buffers survive closing and reopening its devices.
   */
  protected readonly mappings: Map<bigint, ContainerMapping> = new Map();
  readonly #groups: Map<number, GroupEntry> = new Map();
  readonly #devices: Map<number, { group: number; bdf: string }> = new Map();
  #iommuSet = false;
  #closed = false;

  /** A backend owning `container`. */
  protected constructor(kernel: Kernel, container: VfioContainer) {
    this.kernel = kernel;
    this.container = container;
  }

  /** Hints for errnos of VFIO_GROUP_SET_CONTAINER specific to the IOMMU type. */
  protected abstract setContainerHints(): HintTable;
  /** Set up the IOMMU once the first group is attached (SET_IOMMU, enable, …). */
  protected abstract setUpIommu(bdf: string): void;
  /** Re-read what the kernel reports (IOVA ranges, page sizes) after a group came or went. */
  protected abstract refresh(): void;
  /** Forget the IOMMU state after the last group left (the container is unset again). */
  protected abstract reset(): void;
  /** Map without bookkeeping. */
  protected abstract doMap(vaddr: bigint, iova: bigint, size: bigint, prot: DmaProtection): void;
  /** Unmap without bookkeeping. */
  protected abstract doUnmap(iova: bigint, size: bigint): void;

  /** Usable IOVA ranges (the same array until they change). */
  abstract iovaRanges(): IovaRange[];
  /** Minimum IOMMU page size. */
  abstract minPageSize(): bigint;
  /** Mappings still allowed, or undefined when unlimited. */
  abstract mappingsAvailable(): number | undefined;

  /** True once the first group is attached and the IOMMU type is set. */
  protected get iommuSet(): boolean {
    return this.#iommuSet;
  }

  /** Map, then remember the mapping so close() can undo it. */
  map(vaddr: bigint, iova: Iova, size: bigint, prot: DmaProtection): void {
    this.#assertOpen("map");
    if (!this.#iommuSet) {
      throw new VfioError({
        operation: "map",
        message: `the ${this.kind} container has no IOMMU yet`,
        hint: "open a device first: a container gets its IOMMU when its first group attaches",
      });
    }
    this.doMap(vaddr, iova, size, prot);
    this.mappings.set(iova, { vaddr, size, prot });
  }

  /** Unmap exactly one earlier mapping. */
  unmap(iova: Iova, size: bigint): void {
    this.#assertOpen("unmap");
    const known = this.mappings.get(iova);
    if (known?.size !== size) {
      throw new VfioError({
        operation: "unmap",
        message: `no mapping of ${hex(size)} bytes at IOVA ${hex(iova)}`,
      });
    }
    if (this.#iommuSet) this.doUnmap(iova, size); // otherwise the kernel already dropped it
    this.mappings.delete(iova);
  }

  /**
   * Open a device: the group is opened once (viability checked, attached to the container, the
   * IOMMU set on the first group), then VFIO_GROUP_GET_DEVICE_FD. On failure every step taken
   * is undone in reverse order.
   */
  openDevice(target: DeviceTarget): number {
    this.#assertOpen("openDevice");
    let entry = this.#groups.get(target.group);
    const undo: (() => void)[] = [];
    try {
      if (entry === undefined) {
        const group = VfioGroup.open(this.kernel, target.group, target.bdf);
        undo.push(() => closeQuietly(this.kernel, group.fd));
        this.#checkViable(group, target.bdf);
        group.setContainer(this.container.fd, this.setContainerHints());
        undo.push(() => group.unsetContainer());
        const replay = !this.#iommuSet && this.mappings.size > 0;
        if (!this.#iommuSet) {
          try {
            this.setUpIommu(target.bdf);
          } catch (e) {
            this.reset();
            throw e;
          }
          this.#iommuSet = true;
          undo.push(() => {
            this.#iommuSet = false;
            this.reset();
          });
        }
        this.refresh();
        if (replay) this.#replay();
        entry = { group, devices: new Set() };
      }
      const fd = entry.group.getDeviceFd(target.bdf);
      this.#groups.set(target.group, entry);
      entry.devices.add(fd);
      this.#devices.set(fd, { group: target.group, bdf: target.bdf });
      return fd;
    } catch (e) {
      for (const step of undo.reverse()) {
        try {
          step();
        } catch { /* already failing: keep the first error */ }
      }
      throw e;
    }
  }

  /** Close a device fd; the last device of a group unsets and closes the group. */
  closeDevice(fd: number): void {
    const device = this.#devices.get(fd);
    if (device === undefined) {
      throw new VfioError({
        operation: "closeDevice",
        message: `fd ${fd} is not a device of this backend`,
      });
    }
    this.#devices.delete(fd);
    const entry = this.#groups.get(device.group)!;
    entry.devices.delete(fd);
    const steps: (() => void)[] = [() => closeChecked(this.kernel, fd, device.bdf)];
    if (entry.devices.size === 0) {
      this.#groups.delete(device.group);
      steps.push(() => entry.group.unsetContainer(), () => entry.group.close());
      if (this.#groups.size === 0) {
        steps.push(() => {
          this.#iommuSet = false; // the kernel dropped every mapping with the last group
          this.reset();
        });
      } else steps.push(() => this.refresh());
    }
    runAll(steps);
  }

  /** Unmap everything, close every device, unset and close every group, close the container. */
  close(): void {
    if (this.#closed) return;
    const steps: (() => void)[] = [];
    for (const [iova, m] of [...this.mappings].reverse()) {
      steps.push(() => this.unmap(iova as Iova, m.size));
    }
    for (const fd of [...this.#devices.keys()].reverse()) steps.push(() => this.closeDevice(fd));
    steps.push(() => {
      this.#closed = true;
      this.container.close();
    });
    runAll(steps);
  }

  /** Map again what the kernel dropped when the last group left (first group is back). */
  #replay(): void {
    for (const [iova, m] of this.mappings) this.doMap(m.vaddr, iova, m.size, m.prot);
  }

  #checkViable(group: VfioGroup, bdf: string): void {
    if (group.isViable()) return;
    const listing = this.kernel.readdir(iommuGroupDevicesPath(group.group));
    const members = typeof listing === "number" ? "" : ` (${listing.join(", ")})`;
    throw new VfioError({
      operation: VFIO_GROUP_GET_STATUS.name,
      device: bdf,
      message: `IOMMU group ${group.group} is not viable: some of its devices${members} are ` +
        "bound to a host driver",
      hint: `bind every device of ${iommuGroupDevicesPath(group.group)} to vfio-pci`,
    });
  }

  #assertOpen(operation: string): void {
    if (this.#closed) {
      throw new VfioError({ operation, message: `the ${this.kind} backend is closed` });
    }
  }
}
