/**
 * The simulated kernel's file namespace: a small tree of directories, text files (sysfs/procfs
 * attributes), symbolic links and character devices, resolved the way path lookup does it
 * (relative link targets, `..`, ELOOP after 40 links, ENOTDIR through a file).
 *
 * Nodes are computed on demand, so a listing or an attribute always reflects the machine's current
 * state (a driver bound a moment ago, a cdev created by that bind).
 *
 * @module
 */

import { ERRNO } from "../../ffi/errno.ts";
import type { SimFile, SimProcess } from "./file.ts";

/** Symbolic links followed in one lookup before ELOOP (Linux `MAXSYMLINKS`). */
export const MAX_SYMLINKS = 40;

/** A directory: its entry names and a lookup. */
export interface VfsDir {
  /** Node kind. */
  readonly kind: "dir";
  /** Entry names, in any order (readdir sorts them). */
  list(): string[];
  /** The entry with this name, or undefined. */
  get(name: string): VfsNode | undefined;
}

/** A text attribute (sysfs/procfs file). */
export interface VfsFile {
  /** Node kind. */
  readonly kind: "file";
  /** The content; absent for write-only attributes (open for reading: EACCES). */
  read?(): string;
  /** Store text; bytes consumed or -errno. Absent for read-only attributes (EACCES). */
  write?(text: string): number;
}

/** A symbolic link. */
export interface VfsLink {
  /** Node kind. */
  readonly kind: "link";
  /** The link text (relative to the link's directory, or absolute). */
  target(): string;
}

/** A character device node: opening it creates an open file (or fails with -errno). */
export interface VfsCharDev {
  /** Node kind. */
  readonly kind: "chardev";
  /** Open the device: the new file, or -errno. */
  open(process: SimProcess, flags: number): SimFile | number;
}

/** Any node of the namespace. */
export type VfsNode = VfsDir | VfsFile | VfsLink | VfsCharDev;

/** A directory whose entries come from a function evaluated at each lookup. */
export function dynamicDir(entries: () => ReadonlyMap<string, VfsNode>): VfsDir {
  return {
    kind: "dir",
    list: () => [...entries().keys()],
    get: (name) => entries().get(name),
  };
}

/** A directory with fixed entries (the entries themselves may be dynamic). */
export function staticDir(entries: Record<string, VfsNode>): VfsDir {
  const map = new Map(Object.entries(entries));
  return { kind: "dir", list: () => [...map.keys()], get: (name) => map.get(name) };
}

/** A read-only text attribute. */
export function roFile(read: () => string): VfsFile {
  return { kind: "file", read };
}

/** A write-only attribute (sysfs mode 0200: bind, unbind, drivers_probe). */
export function woFile(write: (text: string) => number): VfsFile {
  return { kind: "file", write };
}

/** A read-write attribute. */
export function rwFile(read: () => string, write: (text: string) => number): VfsFile {
  return { kind: "file", read, write };
}

/** A symbolic link with a computed target. */
export function symlink(target: () => string): VfsLink {
  return { kind: "link", target };
}

/** Where a lookup ended: the node and its canonical absolute path. */
export interface Resolved {
  /** The node. */
  readonly node: VfsNode;
  /** Canonical path of the node (links resolved). */
  readonly path: string;
}

function splitPath(path: string): string[] {
  return path.split("/").filter((c) => c !== "" && c !== ".");
}

/** The namespace: a root directory and path lookup over it. */
export class Vfs {
  /** The root directory. */
  constructor(readonly root: VfsDir) {}

  /**
   * Look a path up. `followLast` follows a symbolic link in the final component (stat vs lstat).
   * Returns the node or -errno (ENOENT, ENOTDIR, ELOOP).
   */
  resolve(path: string, followLast = true): Resolved | number {
    if (!path.startsWith("/")) return -ERRNO.ENOENT;
    let pending = splitPath(path);
    let dirs: VfsDir[] = [this.root];
    let names: string[] = [];
    let links = 0;
    while (pending.length > 0) {
      const [name, ...rest] = pending;
      pending = rest;
      if (name === "..") {
        if (dirs.length > 1) {
          dirs = dirs.slice(0, -1);
          names = names.slice(0, -1);
        }
        continue;
      }
      const parent = dirs[dirs.length - 1];
      const node = parent.get(name);
      if (node === undefined) return -ERRNO.ENOENT;
      if (node.kind === "link" && (rest.length > 0 || followLast)) {
        if (++links > MAX_SYMLINKS) return -ERRNO.ELOOP;
        const target = node.target();
        if (target.startsWith("/")) {
          dirs = [this.root];
          names = [];
        }
        pending = [...splitPath(target), ...rest];
        continue;
      }
      if (rest.length > 0 && node.kind !== "dir") return -ERRNO.ENOTDIR;
      if (rest.length === 0) {
        return { node, path: "/" + [...names, name].join("/") };
      }
      dirs = [...dirs, node as VfsDir];
      names = [...names, name];
    }
    return { node: dirs[dirs.length - 1], path: "/" + names.join("/") };
  }

  /** readlink(2): the link text, EINVAL if not a link. */
  readlink(path: string): string | number {
    const r = this.resolve(path, false);
    if (typeof r === "number") return r;
    return r.node.kind === "link" ? r.node.target() : -ERRNO.EINVAL;
  }

  /** Sorted names of a directory, or -errno (ENOTDIR for anything else). */
  readdir(path: string): string[] | number {
    const r = this.resolve(path);
    if (typeof r === "number") return r;
    if (r.node.kind !== "dir") return -ERRNO.ENOTDIR;
    return r.node.list().sort();
  }

  /** The text of an attribute, or -errno (EISDIR, EACCES for write-only, EINVAL for devices). */
  readFile(path: string): string | number {
    const r = this.resolve(path);
    if (typeof r === "number") return r;
    switch (r.node.kind) {
      case "dir":
        return -ERRNO.EISDIR;
      case "file":
        return r.node.read ? r.node.read() : -ERRNO.EACCES;
      default:
        return -ERRNO.EINVAL;
    }
  }

  /** Write an attribute: bytes written or -errno (EACCES for read-only, EISDIR). */
  writeFile(path: string, text: string): number {
    const r = this.resolve(path);
    if (typeof r === "number") return r;
    switch (r.node.kind) {
      case "dir":
        return -ERRNO.EISDIR;
      case "file":
        return r.node.write ? r.node.write(text) : -ERRNO.EACCES;
      default:
        return -ERRNO.EINVAL;
    }
  }
}
