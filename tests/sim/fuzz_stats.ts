/**
 * Which ioctls the fuzzer called and how many of them succeeded, by the C name of the request
 * (resolved from the request number as the kernel would: the full number must match the
 * declaration's encoding on the machine's architecture, and VFIO numbers shared by the
 * container and the device are told apart by the fd they went to).
 *
 * @module
 */

import type { IoctlArch } from "../../ffi/ioctl.ts";
import { type IoctlDecl, ioctlNumber } from "../../ffi/uapi/common.ts";
import * as vfio from "../../ffi/uapi/vfio.ts";
import * as iommufd from "../../ffi/uapi/iommufd.ts";
import * as later from "../../ffi/uapi/post_6_12.ts";
import * as selftest from "../../ffi/uapi/iommufd_test.ts";
import type { FdKind } from "./fuzz_templates.ts";

function isIoctl(v: unknown): v is IoctlDecl {
  return typeof v === "object" && v !== null && "nr" in v && "type" in v && "name" in v &&
    !("fields" in v);
}

const DECLS: readonly IoctlDecl[] = [vfio, iommufd, later, selftest].flatMap((m) =>
  Object.values(m).filter(isIoctl)
);

/** Which declarations an fd kind may mean, when one number has several (VFIO container/device). */
function family(kind: FdKind, name: string): number {
  const device = name.startsWith("VFIO_DEVICE_");
  const group = name.startsWith("VFIO_GROUP_");
  if (kind === "device" || kind === "cdev") return device ? 0 : 1;
  if (kind === "group") return group ? 0 : 1;
  return device || group ? 1 : 0;
}

/** Calls and successes per ioctl name. */
export class IoctlStats {
  readonly #byNumber = new Map<number, IoctlDecl[]>();
  readonly #counts = new Map<string, { calls: number; ok: number }>();

  /** Stats for a kernel of `arch` (request numbers are encoded per architecture). */
  constructor(readonly arch: IoctlArch) {
    for (const d of DECLS) {
      const n = ioctlNumber(arch, d) >>> 0;
      const list = this.#byNumber.get(n) ?? [];
      list.push(d);
      this.#byNumber.set(n, list);
    }
  }

  /** The C name of `request` sent to an fd of `kind`, or "(unknown request)". */
  nameOf(kind: FdKind, request: number): string {
    const list = this.#byNumber.get(request >>> 0);
    if (list === undefined) return "(unknown request)";
    return [...list].sort((a, b) => family(kind, a.name) - family(kind, b.name))[0].name;
  }

  /** Count one call of `name` that returned `r`. */
  count(name: string, r: number): void {
    const c = this.#counts.get(name) ?? { calls: 0, ok: 0 };
    c.calls++;
    if (r >= 0) c.ok++;
    this.#counts.set(name, c);
  }

  /** Add another run's counts. */
  merge(other: IoctlStats): void {
    for (const [name, c] of other.#counts) {
      const mine = this.#counts.get(name) ?? { calls: 0, ok: 0 };
      this.#counts.set(name, { calls: mine.calls + c.calls, ok: mine.ok + c.ok });
    }
  }

  /** Calls and successes of `name`. */
  of(name: string): { calls: number; ok: number } {
    return this.#counts.get(name) ?? { calls: 0, ok: 0 };
  }

  /** Names called at least once that never succeeded. */
  neverSucceeded(): string[] {
    return [...this.#counts].filter(([n, c]) => c.ok === 0 && !n.startsWith("(")).map(([n]) => n)
      .sort();
  }

  /** A text table: name, calls, successes, share. */
  table(): string {
    const rows = [...this.#counts].sort(([a], [b]) => a.localeCompare(b));
    const width = Math.max(...rows.map(([n]) => n.length), 8);
    return rows.map(([n, c]) =>
      `${n.padEnd(width)} ${String(c.calls).padStart(8)} calls ${String(c.ok).padStart(7)} ok ` +
      `(${(100 * c.ok / c.calls).toFixed(1).padStart(5)}%)`
    ).join("\n");
  }
}
