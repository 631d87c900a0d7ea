/**
 * VFIO info capability chains, decoded from the declared layouts: an INFO ioctl that sets its
 * `FLAG_CAPS` bit puts a chain of capabilities after the fixed struct, each starting with
 * `struct vfio_info_cap_header { __u16 id; __u16 version; __u32 next; }`, where `next` is the
 * offset of the following header from the start of the buffer (0 ends the chain). See
 * include/uapi/linux/vfio.h ("Capability chains") and vfio.md §4.
 *
 * @module
 */

import { decode } from "./layout.ts";
import { vfio_info_cap_header } from "./vfio.ts";

/** One capability header of a VFIO info chain. */
export interface VfioCapHeader {
  /** Capability id (its namespace is the INFO ioctl's). */
  readonly id: number;
  /** Capability version. */
  readonly version: number;
  /** Byte offset of the header from the start of the info buffer. */
  readonly offset: number;
  /** Offset of the next header, 0 for the last. */
  readonly next: number;
}

/**
 * More headers than this means a loop in the chain (a `next` pointing backwards): the walk stops
 * there instead of spinning. Linux's chains hold a handful of capabilities.
 */
const MAX_CAPS = 64;

/**
 * The headers of the chain that starts at `first` (an offset from the start of `bytes`, the
 * struct's `cap_offset`), in order. A header that does not fit in `bytes` ends the walk, so a
 * truncated buffer yields the capabilities that are complete.
 *
 * @example
 * ```ts
 * // After VFIO_DEVICE_GET_REGION_INFO with FLAG_CAPS set in `info.flags`:
 * for (const cap of readCapChain(bytes, info.cap_offset)) {
 *   if (cap.id === VFIO_REGION_INFO_CAP_SPARSE_MMAP) decode(vfio_region_info_cap_sparse_mmap, bytes, cap.offset);
 * }
 * ```
 */
export function readCapChain(bytes: Uint8Array, first: number): VfioCapHeader[] {
  const out: VfioCapHeader[] = [];
  let at = first;
  while (at !== 0 && at + vfio_info_cap_header.size <= bytes.byteLength && out.length < MAX_CAPS) {
    const h = decode(vfio_info_cap_header, bytes, at);
    out.push({ id: h.id, version: h.version, offset: at, next: h.next });
    at = h.next;
  }
  return out;
}
