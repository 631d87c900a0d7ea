/**
 * Open files for the plain nodes of the namespace: an attribute opened with open(2) (read at a
 * position, write stores), and a directory opened for reading (EISDIR on read).
 *
 * @module
 */

import { ERRNO } from "../../ffi/errno.ts";
import type { SimFile, SimProcess } from "./file.ts";
import type { VfsFile } from "./vfs.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** An open sysfs/procfs attribute. */
export class AttributeFile implements SimFile {
  /** fd type tag. */
  readonly kind = "attribute";
  #pos = 0;
  #snapshot: Uint8Array | undefined;

  /** An open file on `node`. */
  constructor(private readonly node: VfsFile) {}

  #content(): Uint8Array | number {
    if (!this.node.read) return -ERRNO.EACCES;
    this.#snapshot ??= encoder.encode(this.node.read());
    return this.#snapshot;
  }

  /** read(2) at the file position. */
  read(process: SimProcess, buffer: Uint8Array): number {
    const n = this.pread(process, buffer, BigInt(this.#pos));
    if (n > 0) this.#pos += n;
    return n;
  }

  /** pread(2): the attribute text from `offset`. */
  pread(_process: SimProcess, buffer: Uint8Array, offset: bigint): number {
    const content = this.#content();
    if (typeof content === "number") return content;
    if (offset < 0n) return -ERRNO.EINVAL;
    if (offset >= BigInt(content.length)) return 0;
    const part = content.subarray(Number(offset), Number(offset) + buffer.length);
    buffer.set(part);
    return part.length;
  }

  /** write(2): one store of the whole buffer as text. */
  write(_process: SimProcess, buffer: Uint8Array): number {
    if (!this.node.write) return -ERRNO.EACCES;
    return this.node.write(decoder.decode(buffer));
  }

  /** pwrite(2): sysfs ignores the position for a store. */
  pwrite(process: SimProcess, buffer: Uint8Array): number {
    return this.write(process, buffer);
  }
}

/** A directory opened with open(2): reading it is EISDIR. */
export class DirectoryFile implements SimFile {
  /** fd type tag. */
  readonly kind = "directory";
  /** read(2): EISDIR. */
  read(): number {
    return -ERRNO.EISDIR;
  }
  /** pread(2): EISDIR. */
  pread(): number {
    return -ERRNO.EISDIR;
  }
  /** write(2): EBADF (directories open read-only). */
  write(): number {
    return -ERRNO.EBADF;
  }
}
