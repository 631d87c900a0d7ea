/**
 * User-memory access for ioctl handlers, with `copy_from_user` / `copy_to_user` EFAULT semantics,
 * and the iommufd command context (`struct iommufd_ucmd`): the kernel copy of the user struct and
 * `iommufd_ucmd_respond` (outputs copied with `min(size, sizeof)`).
 *
 * An ioctl argument is either the caller's buffer (the Uint8Array is the memory the pointer points
 * at: bytes beyond its end fault) or a bigint pointer into the process's address space.
 *
 * @module
 */

import { ERRNO } from "../../ffi/errno.ts";
import {
  decode,
  encodeInto,
  type FieldMap,
  type StructLayout,
  type StructValues,
} from "../../ffi/uapi/layout.ts";
import type { SimProcess } from "../kernel/file.ts";

const U64_LIMIT = 1n << 64n;
/** Bytes read or written at a time when a length comes from user space. */
const CHUNK = 1 << 16;

/** A user pointer's target: reads and writes that fault like `copy_*_user`. */
export interface UserBuffer {
  /** `length` bytes at `offset`, or undefined (EFAULT). */
  read(offset: number, length: number): Uint8Array | undefined;
  /** Write `data` at `offset`; false (EFAULT) if any byte is not there. */
  write(offset: number, data: Uint8Array): boolean;
}

/** User memory at address `ptr` of `process`. */
export function userPointer(process: SimProcess, ptr: bigint): UserBuffer {
  return {
    read(offset, length) {
      const at = ptr + BigInt(offset);
      if (at + BigInt(length) > U64_LIMIT) return undefined;
      if (length === 0) return new Uint8Array(0);
      return process.memory.copyFromUser(at, length);
    },
    write(offset, data) {
      const at = ptr + BigInt(offset);
      if (at + BigInt(data.length) > U64_LIMIT) return false;
      if (data.length === 0) return true;
      return process.memory.copyToUser(at, data);
    },
  };
}

/** The memory an ioctl argument points at. */
export function userArg(process: SimProcess, arg: Uint8Array | bigint): UserBuffer {
  if (typeof arg === "bigint") return userPointer(process, BigInt.asUintN(64, arg));
  return {
    read(offset, length) {
      if (offset < 0 || offset + length > arg.length) return undefined;
      return arg.slice(offset, offset + length);
    },
    write(offset, data) {
      if (offset < 0 || offset + data.length > arg.length) return false;
      arg.set(data, offset);
      return true;
    },
  };
}

/** `check_zeroed_user`: 1 if all zero, 0 at the first non-zero byte, -EFAULT on a fault first. */
export function checkZeroed(user: UserBuffer, offset: number, length: number): number {
  for (let at = 0; at < length; at += CHUNK) {
    const bytes = user.read(offset + at, Math.min(CHUNK, length - at));
    if (!bytes) return -ERRNO.EFAULT;
    if (bytes.some((b) => b !== 0)) return 0;
  }
  return 1;
}

/** `clear_user` of `length` bytes: false on a fault (bytes before it are cleared). */
export function clearUser(user: UserBuffer, offset: number, length: number): boolean {
  for (let at = 0; at < length; at += CHUNK) {
    if (!user.write(offset + at, new Uint8Array(Math.min(CHUNK, length - at)))) return false;
  }
  return true;
}

/** One iommufd command being handled. */
export class Ucmd<F extends FieldMap> {
  /** The kernel copy of the command, zero-extended (handlers modify outputs in place). */
  readonly cmd: StructValues<F>;

  /** A command whose kernel copy is `kbuf` (`sizeof` bytes), from a user struct of `userSize`. */
  constructor(
    readonly process: SimProcess,
    readonly user: UserBuffer,
    readonly layout: StructLayout<F>,
    readonly userSize: number,
    kbuf: Uint8Array,
  ) {
    this.cmd = decode(layout, kbuf);
  }

  /** `iommufd_ucmd_respond`: copy `min(size, sizeof)` bytes of the command back; 0 or -EFAULT. */
  respond(): number {
    const kbuf = new Uint8Array(this.layout.size);
    encodeInto(this.layout, kbuf, this.cmd);
    const n = Math.min(this.userSize, this.layout.size);
    return this.user.write(0, kbuf.subarray(0, n)) ? 0 : -ERRNO.EFAULT;
  }
}

/** The command context of a struct layout. */
export type CmdOf<L> = L extends StructLayout<infer F> ? Ucmd<F> : never;

/**
 * `copy_struct_from_user` of a command: the zero-extended kernel copy, or -EFAULT / -E2BIG
 * (non-zero bytes past the kernel struct).
 */
export function copyStructFromUser(
  user: UserBuffer,
  ksize: number,
  usize: number,
): Uint8Array | number {
  const size = Math.min(ksize, usize);
  if (usize > ksize) {
    const z = checkZeroed(user, ksize, usize - ksize);
    if (z <= 0) return z === 0 ? -ERRNO.E2BIG : z;
  }
  const head = user.read(0, size);
  if (!head) return -ERRNO.EFAULT;
  const kbuf = new Uint8Array(ksize);
  kbuf.set(head);
  return kbuf;
}
