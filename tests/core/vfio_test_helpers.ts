/**
 * Helpers for the VFIO/iommufd client tests: argument bytes built by hand from the offsets in
 * shared/reference (deliberately not with ffi/uapi/layout.ts, so an encoder bug cannot cancel
 * itself out), request numbers from the reference tables, and assertions on VfioError.
 *
 * @module
 */

import assert from "node:assert/strict";
import { VfioError } from "../../core/errors.ts";
import type { RecordedCall, RecordingKernel } from "../helpers/recording_kernel.ts";

/** One field to write: byte offset, width in bytes (1, 2, 4, 8), value. */
export type Field = readonly [offset: number, width: 1 | 2 | 4 | 8, value: number | bigint];

/** A zeroed buffer of `size` bytes with little-endian fields written at the given offsets. */
export function le(size: number, fields: readonly Field[] = []): Uint8Array {
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  for (const [offset, width, value] of fields) {
    if (width === 1) view.setUint8(offset, Number(value));
    else if (width === 2) view.setUint16(offset, Number(value), true);
    else if (width === 4) view.setUint32(offset, Number(BigInt.asUintN(32, BigInt(value))), true);
    else view.setBigUint64(offset, BigInt(value), true);
  }
  return bytes;
}

/** Read a little-endian u32 from an argument buffer. */
export function u32At(bytes: Uint8Array, offset: number): number {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(offset, true);
}

/** Read a little-endian u64 from an argument buffer. */
export function u64At(bytes: Uint8Array, offset: number): bigint {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(offset, true);
}

/** Write little-endian fields into an argument buffer (what a stub kernel answers). */
export function put(bytes: Uint8Array, fields: readonly Field[]): void {
  const filled = le(bytes.length, fields);
  for (const [offset, width] of fields) bytes.set(filled.subarray(offset, offset + width), offset);
}

/** `_IO(';', nr)` on x86-64/arm64 (vfio.md §1): 0x3b00 | nr. */
export function io(nr: number): number {
  return 0x3b00 | nr;
}

/** `_IO(';', nr)` on ppc64 (vfio.md §1): 0x20000000 | 0x3b00 | nr. */
export function ioPpc(nr: number): number {
  return (0x2000_0000 | 0x3b00 | nr) >>> 0;
}

/** A compact view of a recorded call for sequence assertions. */
export type CallSummary =
  | ["open", string, number]
  | ["close", number]
  | ["ioctl", number, string, Uint8Array | bigint | undefined]
  | ["mmap"]
  | ["munmap"]
  | [string];

/** Summaries of the calls after the first `from`. ioctl requests are shown in hex. */
export function summarize(calls: readonly RecordedCall[], from = 0): CallSummary[] {
  return calls.slice(from).map((c): CallSummary => {
    switch (c.op) {
      case "open":
        return ["open", c.path!, c.result!];
      case "close":
        return ["close", c.fd];
      case "ioctl":
        return ["ioctl", c.fd, `0x${c.request!.toString(16)}`, c.argIn ?? c.value];
      case "mmap":
      case "munmap":
        return [c.op];
      default:
        return [c.op];
    }
  });
}

/** Call `fn`, expect a VfioError whose message contains every text; return it. */
export function expectVfioError(fn: () => unknown, ...texts: string[]): VfioError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof VfioError, `expected a VfioError, got ${e}`);
    for (const text of texts) {
      assert.ok(e.message.includes(text), `"${e.message}"\ndoes not contain "${text}"`);
    }
    return e;
  }
  throw new assert.AssertionError({ message: `expected a VfioError containing ${texts}` });
}

/** A NUL-terminated string's bytes. */
export function cstr(text: string): Uint8Array {
  return new TextEncoder().encode(`${text}\0`);
}

/** Register `fd` as an open fd of the stub (for fds an ioctl returns, e.g. GET_DEVICE_FD). */
export function adoptFd(k: RecordingKernel, fd: number, what: string): number {
  k.openFds.set(fd, what);
  return fd;
}
