/**
 * The few helpers every VFIO/iommufd client in core/ uses to issue a system call and turn
 * `-errno` into a {@link VfioError} that names the ioctl, the errno, the device and what to do.
 * The hint texts live here so the type1, sPAPR and iommufd paths word them the same way.
 *
 * @module
 */

import { ERRNO, type ErrnoName, errnoName } from "../ffi/errno.ts";
import type { Kernel } from "../ffi/kernel.ts";
import { O_CLOEXEC, O_RDWR } from "../ffi/kernel.ts";
import { type IoctlDecl, ioctlNumber } from "../ffi/uapi/common.ts";
import { check, VfioError, type VfioErrorInit } from "./errors.ts";

/** Hints by errno name for one call site. */
export type HintTable = Partial<Record<ErrnoName, string>>;

/** Shared hint texts. */
export const HINTS = {
  /** ENOSPC from VFIO_IOMMU_MAP_DMA. */
  dmaEntryLimit:
    "mapping limit reached (dma_entry_limit, 65535 by default): use fewer, larger mappings",
  /** ENOMEM from a map that pins memory. */
  memlock:
    "over the locked-memory limit (RLIMIT_MEMLOCK): raise it with `ulimit -l` (or in limits.conf), " +
    "or run with CAP_IPC_LOCK",
  /** EEXIST from a map. */
  overlap: "the IOVA range overlaps an existing mapping: unmap it first or pick another IOVA",
  /** EPERM from type1 SET_CONTAINER / SET_IOMMU. */
  type1Interrupts:
    "the platform has no interrupt remapping (MSI isolation); enable it (intel_iommu=on, " +
    "amd_iommu=on) or, accepting the risk, load vfio_iommu_type1 with " +
    "allow_unsafe_interrupts=1 (`modprobe vfio_iommu_type1 allow_unsafe_interrupts=1`)",
  /** EPERM from VFIO_DEVICE_BIND_IOMMUFD. */
  iommufdInterrupts:
    "the platform has no interrupt remapping (MSI isolation); enable it or, accepting the " +
    "risk, load iommufd with allow_unsafe_interrupts=1 (`modprobe iommufd allow_unsafe_interrupts=1`)",
  /** ENOENT on /dev/vfio/vfio. */
  noVfio: "no VFIO: modprobe vfio-pci",
  /** ENOENT on /dev/iommu. */
  noIommufd:
    "no iommufd: the kernel lacks CONFIG_IOMMUFD (or run `modprobe iommufd`); use the type1 backend",
  /** EACCES/EPERM on a /dev node. */
  permission: (path: string): string =>
    `no permission to open ${path}: run as root, or give your user access ` +
    `(chown $USER ${path}, or a udev rule), and raise RLIMIT_MEMLOCK`,
} as const;

/** Open a path read/write (close-on-exec) or throw a VfioError with a hint for the errno. */
export function openChecked(
  kernel: Kernel,
  path: string,
  hints: HintTable = {},
  device: string = path,
): number {
  const fd = kernel.open(path, O_RDWR | O_CLOEXEC);
  if (fd >= 0) return fd;
  const name = errnoName(fd) as ErrnoName;
  const hint = hints[name] ??
    (fd === -ERRNO.EACCES || fd === -ERRNO.EPERM ? HINTS.permission(path) : undefined);
  return check(fd, { operation: `open ${path}`, device, hint });
}

/** The request number of an ioctl on this kernel. */
export function requestOf(kernel: Kernel, decl: IoctlDecl): number {
  return ioctlNumber(kernel.ioctlArch, decl);
}

/**
 * Issue an ioctl and return its non-negative result, or throw a VfioError naming the ioctl, the
 * errno, the device and the hint for that errno.
 */
export function ioctlChecked(
  kernel: Kernel,
  fd: number,
  decl: IoctlDecl,
  arg: Uint8Array | number | bigint | undefined,
  device: string,
  hints: HintTable = {},
): number {
  const result = kernel.ioctl(fd, requestOf(kernel, decl), arg);
  if (result >= 0) return result;
  return check(result, {
    operation: decl.name,
    device,
    hint: hints[errnoName(result) as ErrnoName],
  });
}

/** Throw the VfioError for a `-errno` result (for calls that return objects or numbers). */
export function throwErrno(
  result: number,
  context: Omit<VfioErrorInit, "errno" | "message"> & { message?: string },
): never {
  check(result < 0 ? result : -ERRNO.EINVAL, context);
  throw new VfioError({ ...context, message: context.message ?? "failed" });
}

/** Close an fd, ignoring errors (for cleanup on an error path that is already throwing). */
export function closeQuietly(kernel: Kernel, fd: number): void {
  if (fd >= 0) kernel.close(fd);
}

/** Close an fd or throw a VfioError (for regular teardown). */
export function closeChecked(kernel: Kernel, fd: number, device: string): void {
  check(kernel.close(fd), { operation: "close", device });
}

/** Run every cleanup step even if some throw; rethrow the first error at the end. */
export function runAll(steps: readonly (() => void)[]): void {
  let first: unknown;
  let failed = false;
  for (const step of steps) {
    try {
      step();
    } catch (e) {
      if (!failed) first = e;
      failed = true;
    }
  }
  if (failed) throw first;
}

/** A VfioError for a framework check that is not a kernel errno. */
export function usageError(operation: string, message: string, hint?: string): VfioError {
  return new VfioError({ operation, message, hint });
}

/** A NUL-terminated C string. */
export function cString(text: string): Uint8Array {
  const encoded = new TextEncoder().encode(text);
  const out = new Uint8Array(encoded.length + 1);
  out.set(encoded);
  return out;
}
