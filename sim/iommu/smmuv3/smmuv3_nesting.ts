/**
 * The SMMU's {@link IommuNesting}: nested domains (smmuv3_nested.ts) over its stage-2 domains,
 * and the commands a vIOMMU passes on.
 *
 * Allocation ({@link SmmuV3Nesting.allocNested}) checks what Linux 6.13's `arm_smmu_validate_vste`
 * checks, with the same errnos (these deviate from a plain "-EINVAL for a bad STE"):
 * - parent not a live stage-2 domain of this SMMU: -EINVAL; `dataType` ≠ 2
 *   (IOMMU_HWPT_DATA_ARM_SMMUV3): -EOPNOTSUPP; `data` not 16 bytes: -EINVAL;
 * - STE.V = 0: accepted, the STE is zeroed (whatever Config says) and the stream aborts — Linux
 *   does exactly this;
 * - any bit outside word 0 {V, Config, S1Fmt, S1ContextPtr, S1CDMax} or word 1 {S1DSS, S1CIR,
 *   S1COR, S1CSH, S1STALLD, EATS} (`STRTAB_STE_{0,1}_NESTING_ALLOWED`): -EIO;
 * - Config other than abort (0b000), bypass (0b100) or stage-1 translate (0b101): -EIO;
 * - EATS other than 0b00 (abort) or 0b01 (full ATS): -EIO; EATS is then cleared (Linux keeps it
 *   aside for ATS, which the model does not have).
 * S1CDMax beyond the SMMU's SSIDSIZE or an unknown S1Fmt is not an allocation error: the
 * hardware reports C_BAD_STE at the first transaction, as for any STE.
 *
 * Commands ({@link SmmuV3Nesting.executeCommand}): one 16-byte command (cmd[0], cmd[1],
 * little-endian) as the kernel writes it into the command queue, field positions per SMMUv3 §4.1
 * (opcode 7:0), §4.3 (CMD_CFGI_*: SSID 31:12, StreamID 63:32, Leaf cmd[1] bit 0) and §4.4
 * (CMD_TLBI_*: NUM 16:12, SCALE 24:20, VMID 47:32, ASID 63:48; cmd[1] Leaf 0, TTL 9:8, TG 11:10,
 * Address 63:12). The set is the one Linux 6.13's `arm_vsmmu_convert_user_cmd` lets a vIOMMU
 * pass on:
 * - CMD_TLBI_NH_ALL 0x10: every entry of the VMID; CMD_TLBI_NSNH_ALL 0x30: every nested entry of
 *   every VMID; CMD_TLBI_NH_ASID 0x11: the (VMID, ASID) entries — in every nested domain on that
 *   VMID; CMD_TLBI_NH_VA 0x12: the (VMID, ASID) entries covering Address (TG = 0), or the range
 *   (NUM + 1)·2^SCALE granules of TG (1 4 KiB, 2 16 KiB, 3 64 KiB) from Address;
 *   CMD_TLBI_NH_VAA 0x13: the same for every ASID of the VMID;
 * - CMD_CFGI_CD 0x05: the cached CD (StreamID, SSID); CMD_CFGI_CD_ALL 0x06: every cached CD of the
 *   StreamID; CMD_ATC_INV 0x40: accepted, nothing to do (no ATS modelled);
 * - any other opcode: -EIO; an entry not 16 bytes: -EINVAL.
 * {@link SmmuV3Nesting.invalidateNested} is the same with the VMID forced to the domain's parent
 * and NSNH_ALL narrowed to NH_ALL, as Linux converts a user's command; the StreamID of CFGI
 * commands is the physical one there (the vSID → SID conversion is iommufd's, sim/iommufd).
 *
 * @module
 */

import { ERRNO } from "../../../ffi/errno.ts";
import { IOMMU_HWPT_DATA_ARM_SMMUV3 } from "../../../ffi/uapi/post_6_12.ts";
import type { IommuDomain, IommuNesting, NestedStage1, PageRequestHandler } from "../model.ts";
import { fieldMask, getField } from "../reg_fields.ts";
import {
  commandName,
  forceVmid,
  hex64,
  SMMU_CMD,
  SMMU_CMD_BYTES,
  SMMU_CMD_FIELD,
  TG_GRANULE,
  TLBI_ADDR_MASK,
} from "./smmuv3_cmd.ts";
import {
  flushVmid,
  nestedTag,
  type NestingUnit,
  type NestParent,
  SmmuV3NestedDomain,
} from "./smmuv3_nested.ts";
import { type CdView, STE, STE_CONFIG } from "./smmuv3_ste.ts";

/** Bytes of `struct iommu_hwpt_arm_smmuv3` (ste[2]). */
export const SMMU_NESTED_STE_BYTES = 16;

/** Address bits 51:6 (S1ContextPtr). */
const ADDR_51_6 = ((1n << 52n) - 1n) & ~0x3fn;

/** Bits of a 64-bit word. */
const U64 = (1n << 64n) - 1n;

/** STE word 0 bits a user may set (Linux `STRTAB_STE_0_NESTING_ALLOWED`). */
export const STE_0_NESTING_ALLOWED = fieldMask(STE.W0.V) | fieldMask(STE.W0.CONFIG) |
  fieldMask(STE.W0.S1FMT) |
  ADDR_51_6 | fieldMask(STE.W0.S1CDMAX);
/** STE word 1 bits a user may set (Linux `STRTAB_STE_1_NESTING_ALLOWED`). */
export const STE_1_NESTING_ALLOWED = fieldMask(STE.W1.S1DSS) | fieldMask(STE.W1.S1CIR) |
  fieldMask(STE.W1.S1COR) | fieldMask(STE.W1.S1CSH) | fieldMask(STE.W1.S1STALLD) |
  fieldMask(STE.W1.EATS);

/** Nested domains the model numbers (its own ids, not hardware ones). */
const MAX_NESTED_DOMAINS = 2 ** 16;
/** STE word 1 EATS values Linux accepts from a user: abort, full ATS. */
const EATS_ACCEPTED: ReadonlySet<number> = new Set([0, 1]);

/**
 * The SMMU's {@link IommuNesting}: nested domains over its stage-2 domains. Owned by
 * `SmmuV3Iommu` (constructed with `nesting: true`), which routes attach, free and translation of
 * nested domains here; `cds` is the SMMU's CD cache.
 */
export class SmmuV3Nesting implements IommuNesting {
  readonly #ids = new Set<number>();
  readonly #children = new Map<NestParent, Set<SmmuV3NestedDomain>>();
  readonly #asids = new Map<number, Set<number>>();

  /** Nested domains allocated and not freed. */
  get domainCount(): number {
    return this.#ids.size;
  }

  /** Nesting for `unit`, sharing its CD cache. */
  constructor(private readonly unit: NestingUnit, private readonly cds: Map<string, CdView>) {}

  /** See the module doc for the checks and errnos. */
  allocNested(parent: IommuDomain, stage1: NestedStage1): SmmuV3NestedDomain | number {
    const p = parent as Partial<NestParent>;
    if (p.unit !== this.unit || p.stage !== 2 || p.freed !== false) return -ERRNO.EINVAL;
    if (stage1.dataType !== IOMMU_HWPT_DATA_ARM_SMMUV3) return -ERRNO.EOPNOTSUPP;
    if (stage1.data.length !== SMMU_NESTED_STE_BYTES) return -ERRNO.EINVAL;
    const v = new DataView(stage1.data.buffer, stage1.data.byteOffset, SMMU_NESTED_STE_BYTES);
    let w: [bigint, bigint] = [v.getBigUint64(0, true), v.getBigUint64(8, true)];
    if (getField(w[0], STE.W0.V) === 0) {
      w = [0n, 0n];
    } else {
      if ((w[0] & ~STE_0_NESTING_ALLOWED & U64) !== 0n) return -ERRNO.EIO;
      if ((w[1] & ~STE_1_NESTING_ALLOWED & U64) !== 0n) return -ERRNO.EIO;
      const cfg = getField(w[0], STE.W0.CONFIG);
      if (cfg !== STE_CONFIG.ABORT && cfg !== STE_CONFIG.BYPASS && cfg !== STE_CONFIG.S1_TRANS) {
        return -ERRNO.EIO;
      }
      if (!EATS_ACCEPTED.has(getField(w[1], STE.W1.EATS))) return -ERRNO.EIO;
      w = [w[0], w[1] & ~fieldMask(STE.W1.EATS)];
    }
    let id = 1;
    while (this.#ids.has(id)) id++;
    if (id >= MAX_NESTED_DOMAINS) return -ERRNO.ENOSPC;
    this.#ids.add(id);
    const s2 = parent as NestParent;
    const d = new SmmuV3NestedDomain(id, s2, w, this.#asids);
    let set = this.#children.get(s2);
    if (set === undefined) this.#children.set(s2, set = new Set());
    set.add(d);
    this.unit.traceLine(
      `smmuv3 nested domain alloc nested=${id} parent vmid=${s2.id} ` +
        `ste=0x${w[0].toString(16)},0x${w[1].toString(16)}`,
    );
    return d;
  }

  /**
   * One 16-byte command for `domain`, converted as Linux converts a user's command: the VMID is
   * forced to the parent's and CMD_TLBI_NSNH_ALL becomes CMD_TLBI_NH_ALL (see the module doc).
   */
  invalidateNested(domain: IommuDomain, entry: Uint8Array): number {
    const d = this.own(domain);
    if (entry.length !== SMMU_CMD_BYTES) return -ERRNO.EINVAL;
    return this.executeCommand(forceVmid(entry, d.parent.id));
  }

  /** One command from the kernel's command queue (see the module doc): 0, -EIO or -EINVAL. */
  executeCommand(command: Uint8Array): number {
    if (command.length !== SMMU_CMD_BYTES) return -ERRNO.EINVAL;
    const v = new DataView(command.buffer, command.byteOffset, SMMU_CMD_BYTES);
    const c0 = v.getBigUint64(0, true);
    const c1 = v.getBigUint64(8, true);
    const F = SMMU_CMD_FIELD;
    const iotlb = this.unit.iotlb;
    const vmid = getField(c0, F.TLBI_VMID);
    this.unit.traceLine(`smmuv3 cmd ${commandName(getField(c0, F.OP))} ${hex64(c0)} ${hex64(c1)}`);
    switch (getField(c0, F.OP)) {
      case SMMU_CMD.TLBI_NH_ALL:
        flushVmid(this.unit, this.#asids, vmid);
        return 0;
      case SMMU_CMD.TLBI_NSNH_ALL:
        for (const id of [...this.#asids.keys()]) flushVmid(this.unit, this.#asids, id);
        return 0;
      case SMMU_CMD.TLBI_NH_ASID:
        iotlb.flushDomain(nestedTag(vmid, getField(c0, F.TLBI_ASID)));
        return 0;
      case SMMU_CMD.TLBI_NH_VA:
      case SMMU_CMD.TLBI_NH_VAA: {
        const start = c1 & TLBI_ADDR_MASK;
        const granule = TG_GRANULE[getField(c1, F.TLBI_TG)];
        const pages = BigInt(getField(c0, F.TLBI_NUM) + 1) << BigInt(getField(c0, F.TLBI_SCALE));
        const end = granule === undefined ? start + 1n : start + pages * granule;
        const asids = getField(c0, F.OP) === SMMU_CMD.TLBI_NH_VA
          ? [getField(c0, F.TLBI_ASID)]
          : [...this.#asids.get(vmid) ?? []];
        for (const asid of asids) iotlb.flushRange(nestedTag(vmid, asid), start, end);
        return 0;
      }
      case SMMU_CMD.CFGI_CD:
        this.unit.translationEpoch.bump();
        this.cds.delete(`${getField(c0, F.CFGI_SID)}:${getField(c0, F.CFGI_SSID)}`);
        return 0;
      case SMMU_CMD.CFGI_CD_ALL: {
        this.unit.translationEpoch.bump();
        const prefix = `${getField(c0, F.CFGI_SID)}:`;
        for (const k of [...this.cds.keys()]) if (k.startsWith(prefix)) this.cds.delete(k);
        return 0;
      }
      case SMMU_CMD.ATC_INV:
        return 0;
      default:
        return -ERRNO.EIO;
    }
  }

  /** Route `domain`'s recoverable stage-1 faults to `handler` (or stop with undefined). */
  setPageRequestHandler(domain: IommuDomain, handler: PageRequestHandler | undefined): void {
    this.own(domain).pageRequest = handler;
  }

  /** `domain` as a live nested domain of this SMMU; throws otherwise. */
  own(domain: IommuDomain): SmmuV3NestedDomain {
    if (
      !(domain instanceof SmmuV3NestedDomain) || domain.parent.unit !== this.unit ||
      !this.#ids.has(domain.id) || domain.freed
    ) {
      throw new TypeError("SMMUv3: not a nested domain of this SMMU");
    }
    return domain;
  }

  /** Whether `parent` has nested children (it must not be freed then). */
  hasChildren(parent: NestParent): boolean {
    return (this.#children.get(parent)?.size ?? 0) > 0;
  }

  /** The parent's stage 2 changed: drop every combined translation of its children. */
  parentChanged(parent: NestParent): void {
    for (const d of this.#children.get(parent) ?? []) d.flushTlb();
  }

  /** Ids of the nested domains alive. */
  liveIds(): number[] {
    return [...this.#ids].sort((a, b) => a - b);
  }

  /** Free a nested domain (not attached: the caller checks). */
  free(d: SmmuV3NestedDomain): void {
    d.flushTlb();
    d.freed = true;
    const set = this.#children.get(d.parent);
    set?.delete(d);
    if (set?.size === 0) this.#children.delete(d.parent);
    this.#ids.delete(d.id);
    this.unit.traceLine(`smmuv3 nested domain free nested=${d.id}`);
  }
}
