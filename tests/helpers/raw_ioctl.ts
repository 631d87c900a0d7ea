/**
 * Raw struct ioctls for errno tables: the call as user space makes it, with the struct written
 * back, and user memory holding data an ioctl reads by address (`data_uptr`).
 *
 * @module
 */

import type { Kernel } from "../../ffi/kernel.ts";
import { type IoctlDecl, ioctlNumber } from "../../ffi/uapi/common.ts";
import { decode, encode, type StructLayout } from "../../ffi/uapi/layout.ts";

/**
 * A raw ioctl with a struct argument (`size` defaults to the whole struct): -errno or the result,
 * and the struct as the kernel wrote it back.
 */
export function raw<L extends StructLayout>(
  k: Kernel,
  fd: number,
  decl: IoctlDecl,
  layout: L,
  values: Record<string, unknown>,
  size: number = layout.size,
): { rc: number; out: Record<string, number | bigint> } {
  const arg = encode(layout, { size, ...values } as never);
  const rc = k.ioctl(fd, ioctlNumber(k.ioctlArch, decl), arg);
  return { rc, out: decode(layout, arg) as Record<string, number | bigint> };
}

/** Anonymous user memory (at least a page) holding `bytes`; its address. */
export function userBytes(k: Kernel, bytes: Uint8Array): bigint {
  const m = k.mmapAnonymous(Math.max(4096, bytes.length));
  if (typeof m === "number") throw new Error(`mmap: ${m}`);
  m.bytes.set(bytes);
  return m.address;
}
