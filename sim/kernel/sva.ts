/**
 * **Proposal model, not Linux ABI.** A simulated process whose address space is shared with
 * devices (SVA): the process-bound PASID of seed 003, next to the fd-bound PASIDs of /dev/ioasid.
 *
 * As in Linux's `iommu_sva_bind_device`, a process has one PASID for every device it is bound to,
 * allocated at its first bind from the system-wide space (here the proposal's, through the
 * kernel's allocators, with the process as owner), and a second device that cannot carry it
 * (its PASID width, the smaller of the IOMMU's and its PCIe capability's) is refused with
 * EOVERFLOW; no PASID left is ENOSPC, a device or IOMMU without PASIDs EOPNOTSUPP. The process's
 * page tables are modelled as one paging domain per IOMMU mirroring its mappings ({@link
 * SvaProcess.map}), attached on the PASID of each bound device.
 *
 * When the process exits or is killed ({@link SvaProcess.exit}), its PASID is torn down as seed 003
 * argues (sim/kernel/pasid_teardown.ts): entries silenced, every bound driver's stop callback
 * called without waiting for it, DMA drained, then quarantine. `exit` itself returns at once,
 * whatever the drivers do: an OOM-killed process is never held by a slow driver.
 *
 * @module
 */

import { ERRNO } from "../../ffi/errno.ts";
import type { IommuDomain, IommuModel } from "../iommu/model.ts";
import { devicePasidWidth } from "../pci/ext_cap.ts";
import type { SimPciFunction } from "./pci_function.ts";
import type { PasidAllocators } from "./pasid_allocators.ts";
import type { PasidStopCallback, PasidTeardown } from "./pasid_teardown.ts";

/** What a {@link SvaProcess} is built with. */
export interface SvaProcessOptions {
  /** Process id (for traces). */
  readonly pid: number;
  /** Command name (for traces). */
  readonly name: string;
  /** The kernel's allocators (the space through them; a guest's come from its vIOMMUs). */
  readonly allocators: PasidAllocators;
  /** The teardown (stop callbacks). */
  readonly teardown: PasidTeardown;
  /** The PCI function at a bdf (throws for an unknown one). */
  readonly fn: (bdf: string) => SimPciFunction;
}

interface Mapping {
  readonly va: bigint;
  readonly phys: bigint;
  readonly size: bigint;
}

/** A simulated process with a shared virtual address space (see the module doc). */
export class SvaProcess {
  /** Process id. */
  readonly pid: number;
  /** Command name. */
  readonly name: string;
  readonly #o: SvaProcessOptions;
  readonly #mappings: Mapping[] = [];
  readonly #domains = new Map<IommuModel, IommuDomain>();
  readonly #bound = new Map<string, SimPciFunction>();
  #pasid: number | undefined;
  #alive = true;

  /** A live process with an empty address space. */
  constructor(o: SvaProcessOptions) {
    this.pid = o.pid;
    this.name = o.name;
    this.#o = o;
  }

  /** The process's PASID (after its first bind), or undefined. */
  get pasid(): number | undefined {
    return this.#pasid;
  }

  /** Whether the process is still running. */
  get alive(): boolean {
    return this.#alive;
  }

  /**
   * Map `[va, va + size)` of the process to physical memory, read-write (what its page tables
   * hold). 0 or -errno (EINVAL misaligned or overlapping, ESRCH after exit).
   */
  map(va: bigint, phys: bigint, size: bigint): number {
    if (!this.#alive) return -ERRNO.ESRCH;
    const overlap = this.#mappings.some((m) => va < m.va + m.size && m.va < va + size);
    if (size <= 0n || overlap) return -ERRNO.EINVAL;
    for (const d of this.#domains.values()) {
      const rc = d.map(va, phys, size, { read: true, write: true });
      if (rc < 0) return rc;
    }
    this.#mappings.push({ va, phys, size });
    return 0;
  }

  /**
   * Bind the device at `bdf` to this process's address space (`iommu_sva_bind_device`): returns
   * the process's PASID, or -errno (EOPNOTSUPP, ENOSPC, EOVERFLOW, ESRCH after exit, or the
   * IOMMU's refusal). `stop` is the driver's stop callback for the teardown; it must not block and
   * its result is ignored.
   */
  bind(bdf: string, stop?: PasidStopCallback): number {
    if (!this.#alive) return -ERRNO.ESRCH;
    const fn = this.#o.fn(bdf);
    const iommu = fn.group.iommu;
    const bits = Math.min(iommu.facts.maxPasidLog2, devicePasidWidth(fn.model.config));
    if (bits === 0) return -ERRNO.EOPNOTSUPP;
    let pasid = this.#pasid;
    if (pasid === undefined) {
      const got = this.#o.allocators.alloc(this, 1, 2 ** bits - 1);
      if (got < 0) return got;
      pasid = got;
    } else if (pasid >= 2 ** bits) {
      return -ERRNO.EOVERFLOW;
    }
    const domain = this.#domainOn(iommu);
    if (typeof domain === "number") return this.#undoFirst(pasid, domain);
    const rc = iommu.attachPasid(fn.requester, pasid, domain);
    if (rc < 0) return this.#undoFirst(pasid, rc);
    this.#pasid = pasid;
    this.#bound.set(bdf, fn);
    if (stop) this.#o.teardown.watch(pasid, stop);
    return pasid;
  }

  /**
   * The process exits (or is killed): its PASID is released — torn down and quarantined in
   * virtual time — and its page tables freed. Returns at once; never waits for a driver.
   */
  exit(reason = "process exited"): void {
    if (!this.#alive) return;
    this.#alive = false;
    this.#o.allocators.releaseOwner(this, `${this.name}[${this.pid}]: ${reason}`);
    // The teardown let go of every entry synchronously: the tables can go now.
    for (const [iommu, d] of this.#domains) iommu.freeDomain(d);
    this.#domains.clear();
    this.#bound.clear();
  }

  /** The domain mirroring the process's mappings on `iommu`, or -errno. */
  #domainOn(iommu: IommuModel): IommuDomain | number {
    const known = this.#domains.get(iommu);
    if (known) return known;
    const d = iommu.allocDomain(1);
    for (const m of this.#mappings) {
      const rc = d.map(m.va, m.phys, m.size, { read: true, write: true });
      if (rc < 0) {
        iommu.freeDomain(d);
        return rc;
      }
    }
    this.#domains.set(iommu, d);
    return d;
  }

  /** A failed first bind gives the PASID back (it was never used). */
  #undoFirst(pasid: number, rc: number): number {
    if (this.#pasid === undefined) this.#o.allocators.free(this, pasid);
    return rc;
  }
}
