/**
 * SMMUv3 commands as 16-byte command-queue entries (SMMUv3 §4): the opcodes a vIOMMU may pass on,
 * their field positions, the encoder a guest driver would use, and the VMID Linux forces into a
 * user's TLBI. What each command does to the model is smmuv3_nesting.ts's.
 *
 * @module
 */

import { fieldMask, getField, type RegField } from "../reg_fields.ts";

/** Bytes of one command (`struct iommu_viommu_arm_smmuv3_invalidate`, cmd[2]). */
export const SMMU_CMD_BYTES = 16;

/** Command opcodes (SMMUv3 §4.3, §4.4, §4.5; Linux `CMDQ_OP_*`). */
export const SMMU_CMD = {
  CFGI_CD: 0x05,
  CFGI_CD_ALL: 0x06,
  TLBI_NH_ALL: 0x10,
  TLBI_NH_ASID: 0x11,
  TLBI_NH_VA: 0x12,
  TLBI_NH_VAA: 0x13,
  TLBI_NSNH_ALL: 0x30,
  ATC_INV: 0x40,
} as const;

/** The command's name for the trace (`CMD_TLBI_NH_VA`), or its opcode. */
export function commandName(op: number): string {
  const name = Object.entries(SMMU_CMD).find(([, v]) => v === op)?.[0];
  return name === undefined ? `op 0x${op.toString(16)}` : `CMD_${name}`;
}

/** A 64-bit command word as 16 hex digits, for the trace. */
export function hex64(x: bigint): string {
  return `0x${x.toString(16).padStart(16, "0")}`;
}

function f(shift: number, width = 1): RegField {
  return { shift, width };
}

/** Command fields (Linux `CMDQ_0_OP`, `CMDQ_CFGI_*`, `CMDQ_TLBI_*`). */
export const SMMU_CMD_FIELD = {
  /** cmd[0]: opcode. */
  OP: f(0, 8),
  /** cmd[0], CFGI: SubstreamID. */
  CFGI_SSID: f(12, 20),
  /** cmd[0], CFGI: StreamID. */
  CFGI_SID: f(32, 32),
  /** cmd[1], CFGI: Leaf. */
  CFGI_LEAF: f(0),
  /** cmd[0], TLBI: range NUM. */
  TLBI_NUM: f(12, 5),
  /** cmd[0], TLBI: range SCALE. */
  TLBI_SCALE: f(20, 5),
  /** cmd[0], TLBI: VMID. */
  TLBI_VMID: f(32, 16),
  /** cmd[0], TLBI: ASID. */
  TLBI_ASID: f(48, 16),
  /** cmd[1], TLBI: Leaf. */
  TLBI_LEAF: f(0),
  /** cmd[1], TLBI: TTL. */
  TLBI_TTL: f(8, 2),
  /** cmd[1], TLBI: TG (0 = not a range). */
  TLBI_TG: f(10, 2),
} as const;
/** cmd[1] Address bits 63:12 of a TLBI by VA. */
export const TLBI_ADDR_MASK = ((1n << 64n) - 1n) & ~0xfffn;

/** Fields of {@link encodeSmmuCmd}; absent fields are zero. */
export interface SmmuCmdFields {
  readonly sid?: number;
  readonly ssid?: number;
  readonly asid?: number;
  readonly vmid?: number;
  readonly address?: bigint;
  readonly leaf?: boolean;
  readonly tg?: number;
  readonly num?: number;
  readonly scale?: number;
}

/** A 16-byte command as a guest driver writes it into its command queue. */
export function encodeSmmuCmd(op: number, o: SmmuCmdFields = {}): Uint8Array {
  const put = (v: bigint, field: RegField, x: number | undefined) =>
    v | ((BigInt(x ?? 0) & ((1n << BigInt(field.width)) - 1n)) << BigInt(field.shift));
  const F = SMMU_CMD_FIELD;
  let c0 = put(0n, F.OP, op);
  let c1 = 0n;
  if (op === SMMU_CMD.CFGI_CD || op === SMMU_CMD.CFGI_CD_ALL) {
    c0 = put(put(c0, F.CFGI_SSID, o.ssid), F.CFGI_SID, o.sid);
    c1 = put(c1, F.CFGI_LEAF, o.leaf ? 1 : 0);
  } else {
    c0 = put(
      put(put(put(c0, F.TLBI_NUM, o.num), F.TLBI_SCALE, o.scale), F.TLBI_VMID, o.vmid),
      F.TLBI_ASID,
      o.asid,
    );
    c1 = put(put(c1, F.TLBI_LEAF, o.leaf ? 1 : 0), F.TLBI_TG, o.tg);
    c1 |= (o.address ?? 0n) & TLBI_ADDR_MASK;
  }
  const raw = new Uint8Array(SMMU_CMD_BYTES);
  const v = new DataView(raw.buffer);
  v.setBigUint64(0, c0, true);
  v.setBigUint64(8, c1, true);
  return raw;
}

/** TLBI TG → granule bytes. */
export const TG_GRANULE: Readonly<Record<number, bigint>> = { 1: 0x1000n, 2: 0x4000n, 3: 0x10000n };

/**
 * A user's TLBI command with the VMID Linux writes into it (NSNH_ALL narrowed to NH_ALL of the
 * VMID); other commands unchanged. `entry` is 16 bytes.
 */
export function forceVmid(entry: Uint8Array, vmid: number): Uint8Array {
  const out = entry.slice();
  const v = new DataView(out.buffer);
  const F = SMMU_CMD_FIELD;
  let c0 = v.getBigUint64(0, true);
  const op = getField(c0, F.OP);
  const vmidMask = fieldMask(F.TLBI_VMID);
  if (op === SMMU_CMD.TLBI_NSNH_ALL) {
    c0 = BigInt(SMMU_CMD.TLBI_NH_ALL);
    v.setBigUint64(8, 0n, true);
  } else if (
    op !== SMMU_CMD.TLBI_NH_ALL && op !== SMMU_CMD.TLBI_NH_ASID &&
    op !== SMMU_CMD.TLBI_NH_VA && op !== SMMU_CMD.TLBI_NH_VAA
  ) {
    return out;
  }
  c0 = (c0 & ~vmidMask) | (BigInt(vmid) << BigInt(F.TLBI_VMID.shift));
  v.setBigUint64(0, c0, true);
  return out;
}
