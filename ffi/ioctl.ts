/**
 * ioctl request-number encoding (include/uapi/asm-generic/ioctl.h and
 * arch/powerpc/include/uapi/asm/ioctl.h).
 *
 * @module
 */

/**
 * How an architecture encodes ioctl numbers: `"generic"` (x86-64, arm64, riscv: 2 direction bits
 * at bit 30, 14 size bits) or `"powerpc"` (3 direction bits at bit 29, 13 size bits, NONE = 1).
 */
export type IoctlArch = "generic" | "powerpc";

/** Transfer direction of an ioctl (the `_IOC_*` values are per architecture). */
export type IoctlDirection = "none" | "read" | "write" | "readwrite";

interface ArchEncoding {
  readonly dirShift: number;
  readonly sizeBits: number;
  readonly dir: Record<IoctlDirection, number>;
}

const ENCODINGS: Record<IoctlArch, ArchEncoding> = {
  generic: { dirShift: 30, sizeBits: 14, dir: { none: 0, write: 1, read: 2, readwrite: 3 } },
  powerpc: { dirShift: 29, sizeBits: 13, dir: { none: 1, read: 2, write: 4, readwrite: 6 } },
};

const NR_SHIFT = 0;
const TYPE_SHIFT = 8;
const SIZE_SHIFT = 16;

/**
 * `_IOC(dir, type, nr, size)` for an architecture, as an unsigned 32-bit number.
 *
 * @example
 * ```ts
 * ioctlEncode("generic", "none", 0x3b, 100, 0); // 0x3b64, VFIO_GET_API_VERSION
 * ioctlEncode("powerpc", "none", 0x3b, 100, 0); // 0x20003b64
 * ```
 */
export function ioctlEncode(
  arch: IoctlArch,
  dir: IoctlDirection,
  type: number,
  nr: number,
  size: number,
): number {
  const enc = ENCODINGS[arch];
  if (size < 0 || size >= 1 << enc.sizeBits) {
    throw new RangeError(`ioctl size ${size} does not fit in ${enc.sizeBits} bits on ${arch}`);
  }
  const value = enc.dir[dir] * 2 ** enc.dirShift + size * 2 ** SIZE_SHIFT +
    (type << TYPE_SHIFT) + (nr << NR_SHIFT);
  return value >>> 0;
}

/** `_IO(type, nr)`: an ioctl without a size or direction (every VFIO and iommufd ioctl). */
export function ioctlNone(arch: IoctlArch, type: number, nr: number): number {
  return ioctlEncode(arch, "none", type, nr, 0);
}

/** `_IOC_NR(request)`: the command number in the low 8 bits. */
export function ioctlNr(request: number): number {
  return request & 0xff;
}

/** `_IOC_TYPE(request)`: the type byte. */
export function ioctlType(request: number): number {
  return (request >>> TYPE_SHIFT) & 0xff;
}

/** The ioctl encoding of the machine Deno runs on. */
export function hostIoctlArch(): IoctlArch {
  return Deno.build.arch === "x86_64" || Deno.build.arch === "aarch64" ? "generic" : "powerpc";
}
