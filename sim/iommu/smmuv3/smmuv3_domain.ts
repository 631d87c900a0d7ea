/**
 * A paging domain of the simulated SMMUv3 (smmuv3.ts): stage 1 (an ASID, installed through a CD)
 * or stage 2 (a VMID, a nest parent), with its VMSAv8-64 table in physical memory; map and unmap
 * with io-pgtable-arm's errnos, and the IOTLB invalidation of an unmap.
 *
 * @module
 */

import { ERRNO } from "../../../ffi/errno.ts";
import type { IommuDomain, MapProtection } from "../model.ts";
import type { NestingUnit } from "./smmuv3_nested.ts";
import { LPAE_PAGE_SIZE, type LpaeStage, type LpaeTable, lpaeWalk } from "./smmuv3_pgtable.ts";

/** IOTLB tag space of stage-2 entries (above every VMID·2^16 + ASID of stage 1). */
export const S2_TAG_BASE = 2 ** 32;

/**
 * What a domain uses of its SMMU (`SmmuV3Iommu`, ./smmuv3.ts, which implements it): declared here
 * so that this module does not import the one that owns it.
 */
export interface SmmuDomainUnit extends NestingUnit {
  /** A stage-2 domain changed: flush the nested translations built on it. */
  nestedParentChanged(parent: SmmuV3Domain): void;
}

/** A paging domain: stage 1 (an ASID and a CD) or stage 2 (a VMID), with its table. */
export class SmmuV3Domain implements IommuDomain {
  /** @internal the owning SMMU. */
  readonly unit: SmmuDomainUnit;
  /** The translation table (root at `table.root`). */
  readonly table: LpaeTable;
  /** Set once freed. */
  freed = false;

  /** Use {@link SmmuV3Iommu.allocDomain}. */
  constructor(
    unit: SmmuDomainUnit,
    readonly stage: LpaeStage,
    readonly id: number,
    table: LpaeTable,
  ) {
    this.unit = unit;
    this.table = table;
  }

  /** The ASID (stage 1) or VMID (stage 2). */
  get asid(): number | undefined {
    return this.stage === 1 ? this.id : undefined;
  }

  /** IOTLB tag of the domain's entries. */
  get tag(): number {
    return this.stage === 1 ? this.id : S2_TAG_BASE + this.id;
  }

  /**
   * Map; 0, -EINVAL (misaligned, empty, no permission, beyond the input size), -ERANGE (output
   * beyond the OAS, as io-pgtable-arm), -EEXIST (overlap), -ENOMEM.
   */
  map(iova: bigint, phys: bigint, size: bigint, prot: MapProtection): number {
    const page = BigInt(LPAE_PAGE_SIZE);
    if (this.freed || size <= 0n || iova < 0n || phys < 0n) return -ERRNO.EINVAL;
    if (iova % page !== 0n || phys % page !== 0n || size % page !== 0n) return -ERRNO.EINVAL;
    if (!prot.read && !prot.write) return -ERRNO.EINVAL;
    if (iova + size - 1n >= 1n << BigInt(this.table.inputBits)) return -ERRNO.EINVAL;
    if (phys + size > 1n << BigInt(this.unit.oasBits)) return -ERRNO.ERANGE;
    if (this.table.anyMapped(iova, iova + size)) return -ERRNO.EEXIST;
    const r = this.table.map(iova, phys, size, prot);
    this.unit.traceLine(
      `smmuv3 map ${this.#name()} iova=0x${iova.toString(16)} size=0x${size.toString(16)} ` +
        `phys=0x${phys.toString(16)} ${prot.read ? "r" : "-"}${prot.write ? "w" : "-"}` +
        (r < 0 ? ` -> ${r}` : ""),
    );
    return r;
  }

  /** Unmap exactly the range (blocks are split); invalidates the IOTLB for it (TLBI by VA). */
  unmap(iova: bigint, size: bigint): bigint {
    const page = BigInt(LPAE_PAGE_SIZE);
    if (this.freed || size <= 0n || iova < 0n || iova % page !== 0n || size % page !== 0n) {
      return 0n;
    }
    const removed = this.table.unmap(iova, size);
    this.unit.iotlb.flushRange(this.tag, iova, iova + size);
    if (this.stage === 2) this.unit.nestedParentChanged(this);
    this.unit.traceLine(
      `smmuv3 unmap ${this.#name()} iova=0x${iova.toString(16)} size=0x${size.toString(16)} ` +
        `-> 0x${removed.toString(16)}`,
    );
    return removed;
  }

  /** Table walk without caching or faulting. */
  lookup(iova: bigint): { phys: bigint; prot: MapProtection } | undefined {
    if (this.freed || iova < 0n || iova >= 1n << BigInt(this.table.inputBits)) return undefined;
    const w = lpaeWalk(this.unit.memory, this.walkConfig(), iova);
    return w.ok ? { phys: w.phys, prot: w.prot } : undefined;
  }

  /** @internal how the hardware walks this domain's table. */
  walkConfig(): { stage: LpaeStage; root: bigint; inputBits: number; outputBits: number } {
    return {
      stage: this.stage,
      root: BigInt(this.table.root),
      inputBits: this.table.inputBits,
      outputBits: this.unit.oasBits,
    };
  }

  #name(): string {
    return this.stage === 1 ? `asid=${this.id}` : `vmid=${this.id}`;
  }
}
