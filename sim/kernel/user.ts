/**
 * copy_from_user / copy_to_user for ioctl arguments.
 *
 * An ioctl argument passed by pointer reaches a handler as the caller's bytes: either the
 * `Uint8Array` the caller passed to `Kernel.ioctl`, or — when the caller passed a number where the
 * kernel expects a pointer — the simulated process memory at that address, up to the end of its
 * mapping. Reading or writing past the end of those bytes is a fault: the handler answers -EFAULT,
 * exactly as a short user buffer would make Linux's copy fail.
 *
 * @module
 */

import type { StructLayout, StructValues } from "../../ffi/uapi/layout.ts";
import { decode, encodeInto, type FieldMap } from "../../ffi/uapi/layout.ts";
import type { SimProcess } from "./file.ts";
import type { PhysicalChunk } from "../memory.ts";

/**
 * The user bytes behind a pointer argument, or undefined when the pointer does not point into
 * mapped memory (the handler answers -EFAULT).
 */
export function userBytes(process: SimProcess, arg: Uint8Array | bigint): Uint8Array | undefined {
  if (arg instanceof Uint8Array) return arg;
  const mapping = process.memory.mappingAt(arg);
  if (mapping === undefined) return undefined;
  const start = Number(arg) - mapping.address;
  const chunk = mapping.chunk.bytes;
  return chunk.subarray(start, mapping.length);
}

/**
 * copy_from_user of `length` bytes at `offset`: a view, or undefined when the user buffer is too
 * short (EFAULT).
 */
export function copyIn(user: Uint8Array, offset: number, length: number): Uint8Array | undefined {
  if (offset < 0 || length < 0 || offset + length > user.length) return undefined;
  return user.subarray(offset, offset + length);
}

/**
 * Decode the first `minsz` bytes of a struct the way the kernel does (`copy_from_user(&s, arg,
 * minsz)` into a zeroed struct): fields past `minsz` read as zero. Undefined when fewer than
 * `minsz` bytes are there (EFAULT).
 */
export function readStruct<F extends FieldMap>(
  user: Uint8Array,
  layout: StructLayout<F>,
  minsz: number,
  offset = 0,
): StructValues<F> | undefined {
  const bytes = copyIn(user, offset, minsz);
  if (bytes === undefined) return undefined;
  const kernelCopy = new Uint8Array(layout.size);
  kernelCopy.set(bytes.subarray(0, Math.min(minsz, layout.size)));
  return decode(layout, kernelCopy);
}

/**
 * copy_to_user of the first `length` bytes of a struct: false (nothing written) when the user
 * buffer is too short (EFAULT).
 */
export function writeStruct<F extends FieldMap>(
  user: Uint8Array,
  layout: StructLayout<F>,
  values: Partial<StructValues<F>>,
  length: number = layout.size,
  offset = 0,
): boolean {
  if (offset < 0 || offset + length > user.length) return false;
  const kernelCopy = new Uint8Array(layout.size);
  encodeInto(layout, kernelCopy, values);
  user.set(kernelCopy.subarray(0, Math.min(length, layout.size)), offset);
  return true;
}

/** copy_to_user of raw bytes at `offset`: false (nothing written) when the buffer is too short. */
export function copyOut(user: Uint8Array, offset: number, data: Uint8Array): boolean {
  if (offset < 0 || offset + data.length > user.length) return false;
  user.set(data, offset);
  return true;
}

/** A physically contiguous run of a user range: bytes `[offset, offset + length)` of it. */
export interface UserRun {
  /** Offset of the run from the start of the range. */
  readonly offset: bigint;
  /** Physical address of its first byte. */
  readonly phys: bigint;
  /** Length in bytes. */
  readonly length: bigint;
  /** The physical chunk behind it (pinning takes a reference on it). */
  readonly chunk: PhysicalChunk;
}

/**
 * The physical runs behind `[vaddr, vaddr + size)` of a process (what `pin_user_pages` finds),
 * without taking references; or the offset of the first unmapped byte.
 */
export function userRuns(
  process: SimProcess,
  vaddr: bigint,
  size: bigint,
): UserRun[] | { unmappedAt: bigint } {
  const runs: UserRun[] = [];
  let done = 0n;
  while (done < size) {
    const m = process.memory.mappingAt(vaddr + done);
    if (m === undefined) return { unmappedAt: done };
    const inMapping = vaddr + done - BigInt(m.address);
    const left = BigInt(m.length) - inMapping;
    const length = left < size - done ? left : size - done;
    runs.push({ offset: done, phys: BigInt(m.chunk.base) + inMapping, length, chunk: m.chunk });
    done += length;
  }
  return runs;
}
