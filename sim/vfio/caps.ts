/**
 * VFIO info capability chains, kernel side (`vfio_info_cap_add` / `vfio_info_cap_shift`): each
 * capability starts with `{u16 id; u16 version; u32 next}`, its size is rounded up to 8 bytes, the
 * capabilities follow the fixed info struct back to back, and `next` is an offset from the start of
 * the user buffer (0 ends the chain).
 *
 * @module
 */

import { encodeInto } from "../../ffi/uapi/layout.ts";
import { vfio_info_cap_header } from "../../ffi/uapi/mod.ts";

/** Capability structs are padded to this alignment. */
const CAP_ALIGN = 8;

/** One capability: id, version and its complete struct bytes (header included, filled here). */
export interface InfoCap {
  /** Capability id (per INFO ioctl namespace). */
  readonly id: number;
  /** Capability version. */
  readonly version: number;
  /** The capability struct, header bytes included (they are overwritten). */
  readonly bytes: Uint8Array;
}

/**
 * The chain as the kernel copies it to user space at `base` (the fixed struct's size): the bytes
 * and their total length (a multiple of 8).
 */
export function buildCapChain(caps: readonly InfoCap[], base: number): Uint8Array {
  const sizes = caps.map((c) => Math.ceil(c.bytes.length / CAP_ALIGN) * CAP_ALIGN);
  const total = sizes.reduce((a, b) => a + b, 0);
  const out = new Uint8Array(total);
  let at = 0;
  caps.forEach((cap, i) => {
    out.set(cap.bytes, at);
    const next = i + 1 < caps.length ? base + at + sizes[i] : 0;
    encodeInto(vfio_info_cap_header, out, { id: cap.id, version: cap.version, next }, at);
    at += sizes[i];
  });
  return out;
}
