/**
 * Conformance scenarios: ioctl sequences written once against {@link Kernel}, run on the simulator
 * for every IOMMU model and on the real kernel in the VM bench.
 *
 * A scenario receives a {@link ScenarioContext} `t`. Its raw helpers (`t.open`, `t.ioctl`,
 * `t.pread`, …) never throw for anything the kernel answers: each returns an
 * {@link Observed} — the observation that was recorded plus the raw return value — and
 * `t.expect(obs, { ret, errno, fields })` checks it against the reference. Expected values that
 * depend on the IOMMU come from `t.env.iommu` (a row of `IOMMU_EXPECTATIONS`), never from a branch
 * on the model's name.
 *
 * ## Observation format (stable: recorded as goldens from the real kernel)
 *
 * One scenario run yields `{ name, observations: Observation[] }` (or `{ name, skipped }`), where
 * each observation is
 *
 * ```json
 * { "label": "MAP_DMA size 0", "ret": -1, "errno": "EINVAL", "out": { "size": "0x2000" } }
 * ```
 *
 * - `label`: the scenario's own words for the step (unique within the scenario);
 * - `ret`: what a C caller sees: the result, `-1` on failure, or the string `"fd"` for a call that
 *   returned a new file descriptor (fd numbers are never recorded);
 * - `errno`: the errno name on failure, `null` on success;
 * - `out` (optional): output fields the scenario chose to record, by C field name; integers that
 *   are u64 in C are hex strings (`"0x2000"`), others JSON numbers; process addresses and fd numbers
 *   are never recorded (scenarios record derived facts such as `"aligned": true` instead).
 *
 * Expectation failures are reported beside the observations, not inside them, so a golden holds
 * only the kernel's answers.
 *
 * @module
 */

import type { Kernel, MappedMemory } from "../../ffi/kernel.ts";
import { O_RDWR } from "../../ffi/kernel.ts";
import { type ErrnoName, errnoName } from "../../ffi/errno.ts";
import { type IoctlDecl, ioctlNumber } from "../../ffi/uapi/common.ts";
import type { IommuExpectations } from "./expectations.ts";

/**
 * The VFIO paths a scenario can run on: the type1 container, iommufd with the VFIO cdev, the
 * container API served by iommufd, and the container with the sPAPR TCE driver (POWER).
 */
export type VfioPath = "type1" | "iommufd" | "compat" | "spapr";

/** Every path, in report order. */
export const VFIO_PATHS: readonly VfioPath[] = ["type1", "iommufd", "compat", "spapr"];

/** What a scenario may need beyond its path. */
export type Need = "cdev";

/** A JSON value recorded in an observation's `out`. */
export type FieldValue = number | string | boolean | null | readonly FieldValue[];

/** Recorded output fields by name. */
export type Fields = Record<string, FieldValue>;

/** A field value as scenarios write it (bigints are turned into hex strings). */
export type FieldInput = FieldValue | bigint | readonly FieldInput[];

/** One recorded kernel answer (the golden format). */
export interface Observation {
  /** The scenario's name for the step. */
  readonly label: string;
  /** The result a C caller sees: value, -1 on failure, or "fd" for a new file descriptor. */
  readonly ret: number | "fd";
  /** errno name on failure, null on success. */
  readonly errno: string | null;
  /** Selected output fields. */
  readonly out?: Fields;
}

/** An observation plus the raw kernel return (fd numbers live only here, never in the record). */
export interface Observed extends Observation {
  /** The raw return value (the fd number, the result, or -errno). */
  readonly raw: number;
}

/** What a step is expected to answer; absent keys are not checked. */
export interface Expectation {
  /** Expected `ret` (a number, or "fd"). */
  ret?: number | "fd";
  /** Expected errno name, or null for success. */
  errno?: ErrnoName | null;
  /** Expected output fields (bigints compare with their hex form). */
  fields?: Record<string, FieldInput>;
}

/** Where a scenario runs: the device under test and what its IOMMU should answer. */
export interface ScenarioEnv {
  /** PCI address of the device, e.g. "0000:00:02.0" (also its VFIO device name). */
  readonly bdf: string;
  /** Its IOMMU group number (/dev/vfio/N). */
  readonly group: number;
  /** Its VFIO cdev, e.g. "/dev/vfio/devices/vfio0", when the kernel has one. */
  readonly cdev?: string;
  /** What the IOMMU model should answer. */
  readonly iommu: IommuExpectations;
  /**
   * The kernel is built with CONFIG_IOMMUFD_TEST (IOMMU_TEST_CMD exists; the selftest's mock bus
   * shows as /sys/bus/iommufd_mock).
   */
  readonly iommufdTest?: boolean;
  /** HPAGE_PMD_SIZE when the kernel has transparent huge pages (undefined: none). */
  readonly hugePmdSize?: number;
}

/** A scenario: a name, the paths it runs on, and its body. */
export interface ScenarioDef {
  /** Unique name, e.g. "type1/map-dma-errno". */
  readonly name: string;
  /** Paths the scenario runs on. */
  readonly paths: readonly VfioPath[];
  /** Extra requirements; the scenario is skipped when one is missing. */
  readonly needs: readonly Need[];
  /** The body. */
  readonly run: (t: ScenarioContext) => void | Promise<void>;
}

/** Declare a scenario. */
export function scenario(
  name: string,
  options: { paths: readonly VfioPath[]; needs?: readonly Need[] },
  run: (t: ScenarioContext) => void | Promise<void>,
): ScenarioDef {
  return Object.freeze({ name, paths: options.paths, needs: options.needs ?? [], run });
}

/** Thrown by {@link ScenarioContext.must} to stop a scenario whose setup failed. */
export class ScenarioAbort extends Error {}

/** Turn a scenario-side value into its recorded form (bigint → "0x…"). */
export function toField(value: FieldInput): FieldValue {
  if (typeof value === "bigint") return `0x${value.toString(16)}`;
  if (Array.isArray(value)) return value.map((v) => toField(v as FieldInput));
  return value as FieldValue;
}

function canonical(value: FieldValue): string {
  if (typeof value === "number" && Number.isInteger(value)) return `n:${BigInt(value)}`;
  if (typeof value === "string" && /^0x[0-9a-f]+$/i.test(value)) return `n:${BigInt(value)}`;
  if (Array.isArray(value)) return `[${value.map((v) => canonical(v as FieldValue)).join(",")}]`;
  return JSON.stringify(value);
}

/** True when two recorded values mean the same (numbers and hex strings compare numerically). */
export function sameField(a: FieldValue, b: FieldValue): boolean {
  return canonical(a) === canonical(b);
}

/** Options of {@link ScenarioContext.ioctl}. */
export interface IoctlOptions {
  /** Fields to record from the argument buffer after the call. */
  out?: (arg: Uint8Array) => Record<string, FieldInput>;
  /** The ioctl returns a new fd on success (recorded as "fd" and closed at the end). */
  returnsFd?: boolean;
}

/** The `t` of a scenario: raw kernel helpers that record, and expectations. */
export class ScenarioContext {
  /** Observations in call order. */
  readonly observations: Observation[] = [];
  /** Expectation failures, one line each. */
  readonly failures: string[] = [];
  #fds: number[] = [];
  #mems: MappedMemory[] = [];
  #labels = new Map<string, number>();

  /**
   * A context over `kernel`; with `checkExpectations` false, `expect` records nothing (used when
   * the real kernel's IOMMU has no row in the expectation table: observations only).
   */
  constructor(
    readonly kernel: Kernel,
    readonly env: ScenarioEnv,
    readonly path: VfioPath,
    readonly checkExpectations = true,
  ) {}

  /** The request number of a declared ioctl on this kernel. */
  req(decl: IoctlDecl): number {
    return ioctlNumber(this.kernel.ioctlArch, decl);
  }

  #uniqueLabel(label: string): string {
    const n = this.#labels.get(label) ?? 0;
    this.#labels.set(label, n + 1);
    return n === 0 ? label : `${label} #${n + 1}`;
  }

  #record(label: string, raw: number, isFd: boolean, out?: Record<string, FieldInput>): Observed {
    const ok = raw >= 0;
    const obs: Observation = {
      label: this.#uniqueLabel(label),
      ret: ok ? (isFd ? "fd" : raw) : -1,
      errno: ok ? null : errnoName(raw),
      ...(out === undefined ? {} : {
        out: Object.fromEntries(Object.entries(out).map(([k, v]) => [k, toField(v)])),
      }),
    };
    this.observations.push(obs);
    if (ok && isFd) this.#fds.push(raw);
    return { ...obs, raw };
  }

  /** open(2); success is recorded as "fd". */
  open(label: string, path: string, flags = O_RDWR): Observed {
    return this.#record(label, this.kernel.open(path, flags), true);
  }

  /** close(2). */
  close(label: string, fd: number): Observed {
    const r = this.#record(label, this.kernel.close(fd), false);
    if (r.raw === 0) this.#fds = this.#fds.filter((f) => f !== fd);
    return r;
  }

  /** eventfd(2) (an fd that is neither VFIO nor iommufd). */
  eventfd(label: string): Observed {
    return this.#record(label, this.kernel.eventfd(0, 0), true);
  }

  /** Track an fd the kernel returned in an output field, so that it is closed at the end. */
  adopt(fd: number): void {
    if (fd >= 0) this.#fds.push(fd);
  }

  /** ioctl(2) with a declared ioctl (or a raw request number) and a buffer or integer argument. */
  ioctl(
    label: string,
    fd: number,
    request: IoctlDecl | number,
    arg?: Uint8Array | number | bigint,
    options: IoctlOptions = {},
  ): Observed {
    const number = typeof request === "number" ? request : this.req(request);
    const raw = this.kernel.ioctl(fd, number, arg);
    const out = options.out && arg instanceof Uint8Array ? options.out(arg) : undefined;
    return this.#record(label, raw, options.returnsFd ?? false, out);
  }

  /** pread(2) of `length` bytes at `offset`; `out` may record facts about the bytes read. */
  pread(
    label: string,
    fd: number,
    length: number,
    offset: bigint,
    out?: (data: Uint8Array) => Record<string, FieldInput>,
  ): Observed {
    const buffer = new Uint8Array(length);
    const raw = this.kernel.pread(fd, buffer, offset);
    return this.#record(
      label,
      raw,
      false,
      out && raw >= 0 ? out(buffer.subarray(0, raw)) : undefined,
    );
  }

  /** pwrite(2) of `data` at `offset`. */
  pwrite(label: string, fd: number, data: Uint8Array, offset: bigint): Observed {
    return this.#record(label, this.kernel.pwrite(fd, data, offset), false);
  }

  /** read(2) of `length` bytes; `out` may record facts about the bytes read. */
  read(
    label: string,
    fd: number,
    length: number,
    out?: (data: Uint8Array) => Record<string, FieldInput>,
  ): Observed {
    const buffer = new Uint8Array(length);
    const raw = this.kernel.read(fd, buffer);
    return this.#record(
      label,
      raw,
      false,
      out && raw >= 0 ? out(buffer.subarray(0, raw)) : undefined,
    );
  }

  /** write(2) of `data`. */
  write(label: string, fd: number, data: Uint8Array): Observed {
    return this.#record(label, this.kernel.write(fd, data), false);
  }

  /** Anonymous memory, unmapped at the end; a failure aborts the scenario. */
  mem(length: number): MappedMemory {
    const m = this.kernel.mmapAnonymous(length);
    if (typeof m === "number") {
      this.failures.push(`mmapAnonymous(${length}) failed: ${errnoName(m)}`);
      throw new ScenarioAbort(`mmapAnonymous failed`);
    }
    this.#mems.push(m);
    return m;
  }

  /** Record a derived fact (no kernel call), e.g. `{ aligned: true }` for an address. */
  note(label: string, out: Record<string, FieldInput>): Observed {
    return this.#record(label, 0, false, out);
  }

  /** Check an observation; records a failure line and returns false when it does not match. */
  expect(obs: Observation, exp: Expectation): boolean {
    if (!this.checkExpectations) return true;
    const problems: string[] = [];
    if (exp.errno !== undefined && obs.errno !== exp.errno) {
      problems.push(
        `errno ${obs.errno ?? "none"} (ret ${obs.ret}), expected ${exp.errno ?? "success"}`,
      );
    }
    if (exp.ret !== undefined && obs.ret !== exp.ret) {
      problems.push(`ret ${obs.ret}${obs.errno ? ` (${obs.errno})` : ""}, expected ${exp.ret}`);
    }
    for (const [name, want] of Object.entries(exp.fields ?? {})) {
      const got = obs.out?.[name];
      const expected = toField(want);
      if (got === undefined || !sameField(got, expected)) {
        problems.push(`${name} = ${JSON.stringify(got)}, expected ${JSON.stringify(expected)}`);
      }
    }
    if (problems.length === 0) return true;
    this.failures.push(`${obs.label}: ${problems.join("; ")}`);
    return false;
  }

  /** Like {@link expect}, but a mismatch stops the scenario (for setup steps). */
  must(obs: Observed, exp: Expectation): Observed {
    const ok = this.expect(obs, exp);
    const failed = exp.errno === null || exp.errno === undefined ? obs.raw < 0 : !ok;
    if (!ok || failed) {
      if (ok) this.failures.push(`${obs.label}: setup step failed with ${obs.errno}`);
      throw new ScenarioAbort(`setup step "${obs.label}" failed`);
    }
    return obs;
  }

  /** Close every fd and unmap every buffer the scenario left behind (newest first). */
  cleanup(): void {
    for (const fd of this.#fds.reverse()) this.kernel.close(fd);
    this.#fds = [];
    for (const m of this.#mems.reverse()) this.kernel.munmap(m);
    this.#mems = [];
  }
}
