/**
 * Bit fields of 64-bit IOMMU registers and in-memory structures (VT-d CAP/ECAP, SMMUv3 ID
 * registers, STEs, CDs, event records): a field is a first bit and a width, read and written on
 * a bigint value. Shared by every vendor model.
 *
 * @module
 */

/** A bit field of a 64-bit register: first bit and width. */
export interface RegField {
  /** Lowest bit. */
  readonly shift: number;
  /** Width in bits. */
  readonly width: number;
}

/** The field of `width` bits starting at bit `shift`. */
export function regField(shift: number, width = 1): RegField {
  return { shift, width };
}

/** The bits of `field` in place: a mask over a 64-bit register value. */
export function fieldMask(field: RegField): bigint {
  return ((1n << BigInt(field.width)) - 1n) << BigInt(field.shift);
}

/** Put `value` into `field` of a 64-bit register value. */
export function setField(reg: bigint, field: RegField, value: number | bigint): bigint {
  const mask = (1n << BigInt(field.width)) - 1n;
  return (reg & ~(mask << BigInt(field.shift))) | ((BigInt(value) & mask) << BigInt(field.shift));
}

/** Read `field` of a 64-bit register value. */
export function getField(reg: bigint, field: RegField): number {
  return Number((reg >> BigInt(field.shift)) & ((1n << BigInt(field.width)) - 1n));
}
