/**
 * One error type for everything the framework reports: which operation failed, the errno, the
 * device, and what to do about it.
 *
 * @module
 */

import { errnoName } from "../ffi/errno.ts";

/** Fields of a {@link VfioError}. */
export interface VfioErrorInit {
  /** The failed operation: an ioctl macro name ("VFIO_IOMMU_MAP_DMA"), a syscall ("open"), … */
  operation: string;
  /** The errno (positive), or undefined for a failure that is not a kernel error. */
  errno?: number;
  /** The device or file concerned: a PCI address ("0000:00:02.0") or a path. */
  device?: string;
  /** What went wrong, in words (without the hint). */
  message: string;
  /** What the user can do about it. */
  hint?: string;
}

/**
 * An error from the kernel or from the framework's own checks.
 *
 * @example
 * ```ts
 * try { space.map(mem, { iova: 0xfee00000n }); } catch (e) {
 *   if (e instanceof VfioError && e.errnoName === "EINVAL") console.error(e.hint);
 * }
 * ```
 */
export class VfioError extends Error {
  /** The failed operation (ioctl macro name or syscall). */
  readonly operation: string;
  /** The errno (positive) or undefined. */
  readonly errno: number | undefined;
  /** The errno's name ("EINVAL") or undefined. */
  readonly errnoName: string | undefined;
  /** The device or path concerned. */
  readonly device: string | undefined;
  /** What to do about it. */
  readonly hint: string | undefined;

  /** Build the error; the message reads "device: operation failed: ENAME: message. hint". */
  constructor(init: VfioErrorInit) {
    const name = init.errno === undefined ? undefined : errnoName(init.errno);
    const where = init.device ? `${init.device}: ` : "";
    const what = name ? `${init.operation} failed with ${name}` : `${init.operation} failed`;
    super(`${where}${what}: ${init.message}${init.hint ? `. ${init.hint}` : ""}`);
    this.name = "VfioError";
    this.operation = init.operation;
    this.errno = init.errno;
    this.errnoName = name;
    this.device = init.device;
    this.hint = init.hint;
  }
}

/**
 * Return a non-negative kernel result, or throw a {@link VfioError} for `-errno`.
 *
 * @example
 * ```ts
 * const fd = check(kernel.open("/dev/vfio/vfio", O_RDWR), { operation: "open", device: "/dev/vfio/vfio" });
 * ```
 */
export function check(
  result: number,
  context: Omit<VfioErrorInit, "errno" | "message"> & { message?: string },
): number {
  if (result >= 0) return result;
  throw new VfioError({
    ...context,
    errno: -result,
    message: context.message ?? errnoDescription(-result),
  });
}

const DESCRIPTIONS: Record<string, string> = {
  EPERM: "operation not permitted",
  ENOENT: "no such file, object or mapping",
  EBADF: "bad file descriptor",
  ENOMEM: "out of memory or over the locked-memory limit",
  EACCES: "permission denied",
  EFAULT: "bad address",
  EBUSY: "device or resource busy",
  EEXIST: "overlaps an existing mapping",
  ENODEV: "no such device",
  EINVAL: "invalid argument",
  ENOTTY: "the file does not support this ioctl",
  ENOSPC: "no space left",
  EOVERFLOW: "value too large",
  EOPNOTSUPP: "operation not supported",
  EADDRINUSE: "address range in use",
  ENXIO: "no such device or address",
};

/** A short description of an errno, for messages. */
export function errnoDescription(errno: number): string {
  return DESCRIPTIONS[errnoName(errno)] ?? errnoName(errno);
}
