/**
 * The SMMUv3's stream configuration as Linux 6.12's arm-smmu-v3 driver programs it: each stream's
 * STE in the stream table, its CD table (CD 0 for the RID's stage-1 domain, CD SSID for a stage-1
 * domain on a SubstreamID, as `arm_smmu_set_pasid` does), stage-2 and nested STEs, blocking, the
 * quiet CDs of a PASID being torn down, and each master's SSID bits. The {@link SmmuV3Iommu}
 * (smmuv3.ts) owns it, translates from what it wrote, and keeps the configuration cache.
 *
 * Behaviour choices (documented deviations):
 * - A blocked stream (`attach(sid, null)`) gets an invalid STE (V = 0), so a DMA while blocked
 *   leaves a C_BAD_STE record. Linux 6.12 writes an abort STE there, after which the hardware
 *   terminates silently; an abort STE written by hand behaves that way here too. A stream never
 *   attached has a zero (invalid) STE on bus 0, whose level-2 table exists from the start, and
 *   no level-2 table elsewhere (C_BAD_STREAMID); Linux would have written abort STEs at probe.
 * - A stream's CD table is freed when it leaves stage 1 (Linux keeps it until device release),
 *   so memory use returns to the probe-time baseline (stream table, event queue).
 * - S1CDMax of a stream is its master's SSID bits (`probeMaster`, which the machine calls with
 *   the PCIe PASID width); a stream never probed uses SSIDSIZE.
 * - A stage-2 or nested RID attach while SSIDs are in use is EBUSY (`arm_smmu_attach_dev`),
 *   answered by `attachCheck`, which the kernel asks before `attach`.
 *
 * @module
 */

import { ERRNO } from "../../../ffi/errno.ts";
import type { PhysicalMemory } from "../../memory.ts";
import { checkPasidAttach, type IommuDomain, type IommuFacts } from "../model.ts";
import type { VtdIotlb } from "../vtd/vtd_iotlb.ts";
import type { SmmuV3Domain } from "./smmuv3_domain.ts";
import { SmmuV3NestedDomain } from "./smmuv3_nested.ts";
import { LPAE_LINUX_MAIR } from "./smmuv3_pgtable.ts";
import { SMMU_OAS_BITS } from "./smmuv3_regs.ts";
import {
  CdTable,
  encodeInvalidCd,
  encodeInvalidSte,
  encodeQuietCd,
  encodeS1Cd,
  encodeS1Ste,
  encodeS2Ste,
  type S1CdOptions,
  STE_S1DSS,
  type StreamTable,
} from "./smmuv3_ste.ts";

/**
 * What the stream configuration uses of its SMMU (`SmmuV3Iommu`, ./smmuv3.ts, which implements
 * it): declared here so that this module does not import the one that owns it.
 */
export interface StreamsUnit {
  /** The facts Linux derives from the SMMU (PASID width). */
  readonly facts: IommuFacts;
  /** Physical memory (CD tables). */
  readonly memory: PhysicalMemory;
  /** Output address size in bits. */
  readonly oasBits: number;
  /** SubstreamID bits (IDR1.SSIDSIZE). */
  readonly ssidBits: number;
  /** The stream table in memory. */
  readonly streamTable: StreamTable;
  /** The IOTLB. */
  readonly iotlb: VtdIotlb;
  /** Drop cached STEs and CDs of one stream, or of all. */
  invalidateConfig(requester?: number): void;
  /** Append a line to the machine trace. */
  traceLine(line: string): void;
}

/** A domain of the SMMU a stream can be attached to. */
type StreamDomain = SmmuV3Domain | SmmuV3NestedDomain;

/** The streams' STEs and CD tables; see the module doc. */
export class SmmuV3Streams {
  /** The domain each attached stream is on (the SMMU's translation reads the same map). */
  readonly streams: Map<number, StreamDomain> = new Map();
  /** Stage-1 domains on SubstreamIDs other than 0, per stream. */
  readonly pasids: Map<number, Map<number, SmmuV3Domain>> = new Map();
  readonly #u: StreamsUnit;
  readonly #own: (domain: IommuDomain) => StreamDomain;
  readonly #dropCd: (sid: number, ssid: number) => void;
  readonly #cdTables = new Map<number, CdTable>();
  /** SSID bits of each probed master. */
  readonly #masterSsidBits = new Map<number, number>();
  /** SubstreamIDs torn down with a quiet CD, per stream. */
  readonly #quiet = new Map<number, Set<number>>();

  /**
   * The configuration of `unit`'s streams; `own` checks that a domain is the SMMU's, `dropCd`
   * drops one cached CD (CMD_CFGI_CD).
   */
  constructor(
    unit: StreamsUnit,
    own: (domain: IommuDomain) => StreamDomain,
    dropCd: (sid: number, ssid: number) => void,
  ) {
    this.#u = unit;
    this.#own = own;
    this.#dropCd = dropCd;
  }

  /** `arm_smmu_attach_dev`: EBUSY for a stage-2 or nested domain while SubstreamIDs are in use. */
  attachCheck(requester: number, domain: IommuDomain): number {
    const d = this.#own(domain);
    const needsCdTable = d instanceof SmmuV3NestedDomain || d.stage !== 1;
    return this.#ssidsInUse(requester) && needsCdTable ? -ERRNO.EBUSY : 0;
  }

  /** `SmmuV3Iommu.attach`: program the stream's STE (and CD 0 for stage 1); `null` blocks it. */
  attach(requester: number, domain: IommuDomain | null): void {
    const d = domain === null ? undefined : this.#own(domain);
    if (d?.freed) throw new Error(`SMMUv3: attach of freed domain ${d.id}`);
    const ssidsInUse = this.#ssidsInUse(requester);
    if (d !== undefined && this.attachCheck(requester, d) < 0) {
      // The kernel asks attachCheck first (iommufd's attach and replace); reaching this is a bug.
      throw new Error(
        `SMMUv3: EBUSY: sid=0x${requester.toString(16)} has SubstreamIDs in use; ` +
          "a stage-2 or nested RID domain needs them detached first",
      );
    }
    const old = this.streams.get(requester);
    if (old) this.#flush(old);
    if (d === undefined && ssidsInUse) {
      // Blocked RID with PASIDs in use: a CD-table STE, S1DSS = terminate, CD 0 cleared.
      this.streams.delete(requester);
      const table = this.#cdTableOf(requester);
      table.writeCd(0, encodeInvalidCd());
      this.#u.streamTable.writeSte(requester, this.#cdTableSte(table, STE_S1DSS.TERMINATE));
    } else if (d === undefined) {
      this.streams.delete(requester);
      this.#u.streamTable.writeSte(requester, encodeInvalidSte());
    } else {
      this.streams.set(requester, d);
      const ste = d instanceof SmmuV3NestedDomain
        ? d.ste
        : d.stage === 1
        ? this.#s1Ste(requester, d)
        : this.#s2Ste(d);
      this.#u.streamTable.writeSte(requester, ste);
      this.#flush(d);
    }
    if (!ssidsInUse && (d instanceof SmmuV3NestedDomain || d?.stage !== 1)) {
      // The stream no longer uses stage 1: its CD table goes (Linux keeps it until release).
      this.#cdTables.get(requester)?.destroy();
      this.#cdTables.delete(requester);
    }
    this.#u.invalidateConfig(requester);
    const now = this.streams.get(requester);
    this.#u.traceLine(
      `smmuv3 attach sid=0x${requester.toString(16)} ` +
        (now === undefined
          ? "blocked"
          : now instanceof SmmuV3NestedDomain
          ? `nested=${now.id}`
          : `${now.stage === 1 ? "asid" : "vmid"}=${now.id}`),
    );
  }

  /** `SmmuV3Iommu.attachPasid`: a stage-1 domain's CD at index `pasid` of the stream's CD table. */
  attachPasid(requester: number, pasid: number, domain: IommuDomain | null): number {
    const rc = checkPasidAttach(this.#u.facts, pasid);
    if (rc < 0) return rc;
    if (pasid === 0 || pasid >= 2 ** this.masterSsidBits(requester)) return -ERRNO.EINVAL;
    const ssids = this.pasids.get(requester);
    const old = ssids?.get(pasid);
    if (domain === null) {
      if (!old) return 0;
      ssids!.delete(pasid);
      this.#cdTables.get(requester)?.writeCd(pasid, encodeInvalidCd());
      this.#dropCd(requester, pasid);
      this.#u.iotlb.flushDomain(old.tag);
      if (ssids!.size === 0) {
        this.pasids.delete(requester);
        // Linux downgrades a blocked RID's CD-table STE once no SubstreamID is in use.
        if (!this.#ssidsInUse(requester) && !this.streams.has(requester)) {
          this.attach(requester, null);
        }
      }
      this.#u.traceLine(
        `smmuv3 detach sid=0x${requester.toString(16)} ssid=0x${pasid.toString(16)}`,
      );
      return 0;
    }
    const d = this.#own(domain);
    if (d instanceof SmmuV3NestedDomain) return -ERRNO.EOPNOTSUPP;
    if (d.freed) throw new Error(`SMMUv3: PASID attach of freed domain ${d.id}`);
    if (d.stage !== 1) return -ERRNO.EINVAL;
    const rid = this.streams.get(requester);
    if (rid !== undefined && (rid instanceof SmmuV3NestedDomain || rid.stage !== 1)) {
      return -ERRNO.EINVAL;
    }
    const table = this.#cdTableOf(requester);
    table.writeCd(pasid, this.#s1Cd(d));
    this.#dropCd(requester, pasid);
    this.#quiet.get(requester)?.delete(pasid);
    if (old) this.#u.iotlb.flushDomain(old.tag);
    this.#u.iotlb.flushDomain(d.tag);
    if (ssids) ssids.set(pasid, d);
    else this.pasids.set(requester, new Map([[pasid, d]]));
    if (rid === undefined) {
      // A blocked RID: its STE becomes a CD-table one whose SSID-less traffic is terminated.
      this.#u.streamTable.writeSte(requester, this.#cdTableSte(table, STE_S1DSS.TERMINATE));
      this.#u.invalidateConfig(requester);
    }
    this.#u.traceLine(
      `smmuv3 attach sid=0x${requester.toString(16)} ssid=0x${pasid.toString(16)} asid=${d.id}`,
    );
    return 0;
  }

  /** `SmmuV3Iommu.silencePasid`: quiet CDs for `pasid` on every stream; returns the streams. */
  silencePasid(pasid: number): number[] {
    const out: number[] = [];
    for (const [sid, ssids] of this.pasids) {
      const d = ssids.get(pasid);
      if (d === undefined) continue;
      ssids.delete(pasid);
      if (ssids.size === 0) this.pasids.delete(sid);
      this.#cdTables.get(sid)?.writeCd(pasid, encodeQuietCd(this.#s1CdOptions(d)));
      this.#dropCd(sid, pasid);
      this.#u.iotlb.flushDomain(d.tag);
      let quiet = this.#quiet.get(sid);
      if (!quiet) this.#quiet.set(sid, quiet = new Set());
      quiet.add(pasid);
      out.push(sid);
      this.#u.traceLine(
        `smmuv3 teardown sid=0x${sid.toString(16)} ssid=0x${pasid.toString(16)}: quiet CD`,
      );
    }
    return out;
  }

  /** `SmmuV3Iommu.clearSilencedPasid`: the quiet CDs of `pasid` become invalid ones. */
  clearSilencedPasid(pasid: number): void {
    for (const [sid, quiet] of [...this.#quiet]) {
      if (!quiet.delete(pasid)) continue;
      if (quiet.size === 0) this.#quiet.delete(sid);
      this.#cdTables.get(sid)?.writeCd(pasid, encodeInvalidCd());
      this.#dropCd(sid, pasid);
      if (!this.#ssidsInUse(sid) && !this.streams.has(sid)) this.attach(sid, null);
      this.#u.traceLine(
        `smmuv3 teardown sid=0x${sid.toString(16)} ssid=0x${pasid.toString(16)}: CD cleared`,
      );
    }
  }

  /** Whether a stream has SubstreamIDs in use (attached or quiet): its STE needs the CD table. */
  #ssidsInUse(sid: number): boolean {
    return this.pasids.has(sid) || this.#quiet.has(sid);
  }

  /** `SmmuV3Iommu.probeMaster`: a master's SSID bits (S1CDMax of its CD table). */
  probeMaster(requester: number, pciPasidWidth: number): void {
    this.#masterSsidBits.set(requester, Math.max(0, Math.min(this.#u.ssidBits, pciPasidWidth)));
  }

  /** SSID bits of a master (S1CDMax of its CD table). */
  masterSsidBits(requester: number): number {
    return this.#masterSsidBits.get(requester) ?? this.#u.ssidBits;
  }

  /** The domain on SubstreamID `pasid` of a stream, if one is attached there. */
  attachedPasid(requester: number, pasid: number): SmmuV3Domain | undefined {
    return this.pasids.get(requester)?.get(pasid);
  }

  /** The streams' and substreams' attachments, one line each (for `liveDomains`). */
  liveStreams(): string[] {
    const name = (d: StreamDomain): string =>
      d instanceof SmmuV3NestedDomain
        ? `nested=${d.id}`
        : `${d.stage === 1 ? "asid" : "vmid"}=${d.id}`;
    const out: string[] = [];
    for (const [sid, d] of this.streams) out.push(`sid=0x${sid.toString(16)} → ${name(d)}`);
    for (const [sid, ssids] of this.pasids) {
      for (const [ssid, d] of ssids) {
        out.push(`sid=0x${sid.toString(16)} ssid=${ssid} → ${name(d)}`);
      }
    }
    return out;
  }

  /** The CD table of a stream (allocated at its first stage-1 attach). */
  cdTable(requester: number): CdTable | undefined {
    return this.#cdTables.get(requester);
  }

  #flush(d: SmmuV3Domain | SmmuV3NestedDomain): void {
    if (d instanceof SmmuV3NestedDomain) d.flushTlb();
    else this.#u.iotlb.flushDomain(d.tag);
  }

  #s1Ste(sid: number, d: SmmuV3Domain): bigint[] {
    const table = this.#cdTableOf(sid);
    table.writeCd(0, this.#s1Cd(d));
    return this.#cdTableSte(table, STE_S1DSS.SSID0);
  }

  /** The stream's CD table, allocated on first use with S1CDMax = the master's SSID bits. */
  #cdTableOf(sid: number): CdTable {
    let table = this.#cdTables.get(sid);
    if (table === undefined) {
      table = new CdTable(this.#u.memory, this.masterSsidBits(sid));
      this.#cdTables.set(sid, table);
    }
    return table;
  }

  /** The CD of a stage-1 domain (Linux's `arm_smmu_make_s1_cd`). */
  #s1Cd(d: SmmuV3Domain): bigint[] {
    return encodeS1Cd(this.#s1CdOptions(d));
  }

  #s1CdOptions(d: SmmuV3Domain): S1CdOptions {
    return {
      asid: d.id,
      ttb0: BigInt(d.table.root),
      inputBits: d.table.inputBits,
      ips: SMMU_OAS_BITS.indexOf(this.#u.oasBits),
      mair: LPAE_LINUX_MAIR,
    };
  }

  /** A stage-1 STE over `table` (Linux's `arm_smmu_make_cdtable_ste`). */
  #cdTableSte(table: CdTable, s1dss: number): bigint[] {
    return encodeS1Ste({
      cdTable: table.base,
      s1cdmax: table.s1cdmax,
      s1fmt: table.s1fmt,
      s1dss,
    });
  }

  #s2Ste(d: SmmuV3Domain): bigint[] {
    return encodeS2Ste({
      vmid: d.id,
      ttb: BigInt(d.table.root),
      inputBits: d.table.inputBits,
      ps: SMMU_OAS_BITS.indexOf(this.#u.oasBits),
    });
  }
}
