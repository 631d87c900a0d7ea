/**
 * What every example program shares, so they all behave alike:
 *
 * - exit codes: 0 done, 1 a runtime error, 2 a usage error; every error is ONE line on stderr,
 *   `program: what went wrong — what to do`, never a stack trace (set DENO_VFIO_DEBUG=1 to see
 *   one). A missing Deno permission names the `--allow-*` flag to add.
 * - the flags of programs that open a device: `--device BDF` (a real device instead of the simulator), `--iommu
 *   vtd|smmuv3|virtio-iommu|spapr` (the simulated IOMMU), `--vfio auto|type1|iommufd` (the VFIO
 *   path), `--trace [FILE]` (the simulated IOMMU's events as they happen: maps, unmaps,
 *   invalidations, faults with the vendor's kernel-log line; to stdout, or to FILE), `--help`.
 * - building the simulated machine for an IOMMU model (with the module options each platform
 *   needs), or opening the real kernel (`LinuxKernel`, loaded only then, so the simulator needs
 *   no `--allow-ffi`).
 *
 * @example
 * ```ts
 * const OPTIONS = { ...TARGET_OPTIONS, rounds: { type: "string", default: "3" } } as const;
 * async function main(args: string[]): Promise<number> {
 *   const { values } = parseFlags(args, OPTIONS);
 *   if (values.help) return help(HELP);
 *   await using target = await openTarget(commonFlags(values));
 *   // … target.kernel, target.machine …
 *   return 0;
 * }
 * if (import.meta.main) await runProgram("my_tool", main);
 * ```
 *
 * @module
 */

import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import { type IommuChoice, type Kernel, VfioError } from "../mod.ts";
import {
  createMachine,
  type IommuModelName,
  type MachineOptions,
  type SimMachine,
} from "../sim/mod.ts";

/** Exit code of a run that did what it was asked. */
export const EXIT_OK = 0;
/** Exit code of a runtime error (device, kernel, permission, I/O). */
export const EXIT_FAILURE = 1;
/** Exit code of a usage error (a bad flag or argument). */
export const EXIT_USAGE = 2;

/** A bad flag or argument; the message names it. Exits with {@link EXIT_USAGE}. */
export class UsageError extends Error {
  /** `--flag value: what is wrong`. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** The simulated IOMMU models, in `--iommu` order. */
export const SIM_IOMMUS: readonly IommuModelName[] = ["vtd", "smmuv3", "virtio-iommu", "spapr"];

/**
 * What each simulated platform needs beyond the defaults: x86 with virtio-iommu has no interrupt
 * remapping, so (as on such a guest) VFIO runs only with `allow_unsafe_interrupts=1`.
 */
const PLATFORM_OPTIONS: Readonly<Record<IommuModelName, Partial<MachineOptions>>> = {
  vtd: {},
  smmuv3: {},
  "virtio-iommu": { allowUnsafeInterrupts: { type1: true, iommufd: true } },
  spapr: {},
};

/** The VFIO paths `--vfio` offers (`auto`: iommufd with a VFIO cdev, else the container). */
export const VFIO_PATHS: readonly string[] = ["auto", "type1", "iommufd"];

/** The flags of a program that opens a device: where it runs and how it is traced. */
export const TARGET_OPTIONS = {
  device: { type: "string" },
  iommu: { type: "string" },
  vfio: { type: "string" },
  trace: { type: "string" },
} as const satisfies ParseArgsOptionsConfig;

/** The `--help` lines of {@link TARGET_OPTIONS} and `--help`. */
export const TARGET_HELP =
  `  --device BDF     drive a real device bound to vfio-pci instead of the simulator
  --iommu MODEL    simulated IOMMU: vtd (default), smmuv3, virtio-iommu, spapr
  --vfio PATH      VFIO path: auto (default: iommufd when the kernel has it), type1, iommufd
  --trace [FILE]   print the simulated IOMMU's events as they happen (maps, unmaps,
                   invalidations, faults), or write them to FILE
  --help           this text`;

/** Marks `--trace` given without a file: trace to stdout. */
const TRACE_STDOUT = "-";

/** `--trace` without a value (last, or followed by another flag) means stdout. */
function withTraceDefault(args: readonly string[]): string[] {
  return args.map((a, i) =>
    a === "--trace" && (i + 1 === args.length || args[i + 1].startsWith("-"))
      ? `--trace=${TRACE_STDOUT}`
      : a
  );
}

/**
 * Parse `args` with the program's options and `--help`; an unknown flag or a missing value is a
 * {@link UsageError} naming it.
 */
export function parseFlags<O extends ParseArgsOptionsConfig>(
  args: readonly string[],
  options: O,
  allowPositionals = false,
) {
  try {
    return parseArgs({
      args: withTraceDefault(args),
      options: { ...options, help: { type: "boolean", short: "h", default: false } } as const,
      allowPositionals,
      strict: true,
    });
  } catch (e) {
    throw new UsageError(parseArgsMessage(e));
  }
}

/** node:util's parse errors, said in one short line. */
function parseArgsMessage(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  const unknown = /^Unknown option '([^']+)'/.exec(message);
  if (unknown) return `${unknown[1]}: unknown option`;
  const missing = /^Option '(--[\w-]+)[^']*' argument missing/.exec(message);
  if (missing) return `${missing[1]}: needs a value`;
  const positional = /^Unexpected argument '([^']+)'/.exec(message);
  if (positional) return `${positional[1]}: unexpected argument`;
  return message.split("\n")[0];
}

/** The target flags, checked. */
export interface CommonFlags {
  /** A real device's PCI address, or undefined for the simulator. */
  readonly device?: string;
  /** The simulated IOMMU model. */
  readonly iommu: IommuModelName;
  /** The VFIO path to open devices with. */
  readonly vfio: IommuChoice;
  /** Where to trace IOMMU events: "-" for stdout, a file, or undefined. */
  readonly trace?: string;
}

/**
 * Check the target flags' values (`--iommu` defaults to `defaultIommu`); a bad one is a
 * {@link UsageError} naming the flag.
 */
export function commonFlags(
  values: { device?: string; iommu?: string; vfio?: string; trace?: string },
  defaultIommu: IommuModelName = "vtd",
): CommonFlags {
  const iommu = oneOf("--iommu", values.iommu ?? defaultIommu, SIM_IOMMUS) as IommuModelName;
  const vfio = oneOf("--vfio", values.vfio ?? "auto", VFIO_PATHS) as IommuChoice;
  if (values.device !== undefined && values.trace !== undefined) {
    throw new UsageError(
      "--trace: the IOMMU events come from the simulator; on a real device follow the kernel " +
        "log instead (dmesg -w)",
    );
  }
  if (values.device !== undefined && values.iommu !== undefined) {
    throw new UsageError("--iommu: picks the simulated IOMMU; a real device uses the host's");
  }
  return { device: values.device, iommu, vfio, trace: values.trace };
}

/** `value` if it is one of `choices`, else a {@link UsageError} naming the flag. */
export function oneOf(flag: string, value: string, choices: readonly string[]): string {
  if (choices.includes(value)) return value;
  const list = choices.length > 1
    ? `${choices.slice(0, -1).join(", ")} or ${choices.at(-1)}`
    : choices[0];
  throw new UsageError(`${flag} ${value}: want ${list}`);
}

/** An integer in `[min, max]` from a flag's text, else a {@link UsageError} naming the flag. */
export function integerFlag(flag: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (text.trim() === "" || !Number.isInteger(n) || n < min || n > max) {
    throw new UsageError(`${flag} ${text}: want an integer from ${min} to ${max}`);
  }
  return n;
}

/** Print the help text; returns {@link EXIT_OK}. */
export function help(text: string): number {
  console.log(text);
  return EXIT_OK;
}

/** Where a program runs: the simulated machine or the real kernel, and what to close at the end. */
export interface Target extends AsyncDisposable {
  /** The kernel to open devices with. */
  readonly kernel: Kernel;
  /** The simulated machine, or undefined on real hardware. */
  readonly machine?: SimMachine;
  /** The device to open: `--device`, or `fallback` on the simulator. */
  readonly bdf: string;
}

/**
 * The kernel a program runs on: the real one for `--device` (through `LinuxKernel`, which needs
 * `--allow-ffi`), else a simulated machine with `--iommu`'s model, `machine` options on top, and
 * `--trace` following its events.
 */
export async function openTarget(
  flags: CommonFlags,
  machine: Partial<MachineOptions> = {},
  fallbackBdf = "0000:00:02.0",
): Promise<Target> {
  if (flags.device !== undefined) {
    const kernel = await hostKernel();
    return { kernel, bdf: flags.device, [Symbol.asyncDispose]: () => Promise.resolve() };
  }
  const sim = simMachine(flags.iommu, machine);
  const stopTrace = flags.trace === undefined ? undefined : await traceEvents(sim, flags.trace);
  return {
    kernel: sim.kernel,
    machine: sim,
    bdf: fallbackBdf,
    [Symbol.asyncDispose]: async () => await stopTrace?.(),
  };
}

/** This machine's kernel through libc: loaded only when asked for, it needs `--allow-ffi`. */
export async function hostKernel(): Promise<Kernel> {
  const { LinuxKernel } = await import("../linux.ts");
  return LinuxKernel.open();
}

/** A simulated machine with `iommu` and the platform options it needs, `extra` on top. */
export function simMachine(iommu: IommuModelName, extra: Partial<MachineOptions> = {}): SimMachine {
  return createMachine({ ...PLATFORM_OPTIONS[iommu], ...extra, iommu });
}

/**
 * Follow a machine's trace: every event as `[  1.234567 ms] iommu  vtd map …` to stdout (`-`) or
 * to a file. Returns the function that stops it (and closes the file).
 */
export async function traceEvents(
  machine: SimMachine,
  to: string,
): Promise<() => Promise<void>> {
  const encoder = new TextEncoder();
  const file = to === TRACE_STDOUT
    ? undefined
    : await Deno.open(to, { write: true, create: true, truncate: true });
  const out = file ?? Deno.stdout;
  const stop = machine.tracer.subscribe((e) => {
    const ms = (e.nowNs / 1e6).toFixed(6).padStart(14);
    out.writeSync(encoder.encode(`[${ms} ms] ${e.source.padEnd(6)} ${e.line}\n`));
  });
  return () => {
    stop();
    file?.close();
    return Promise.resolve();
  };
}

/** The `--allow-*` flag a Deno permission error asks for, from its message. */
function permissionFlag(message: string): string | undefined {
  const named = /--allow-[a-z-]+/.exec(message);
  if (named) return named[0];
  const kind = /Requires (\w+) access/.exec(message);
  return kind ? `--allow-${kind[1]}` : undefined;
}

/** One line for an error, and the exit code it deserves. */
export function describeError(e: unknown): { line: string; code: number } {
  if (e instanceof UsageError) return { line: `${e.message} (--help for usage)`, code: EXIT_USAGE };
  if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
    const flag = permissionFlag(e.message);
    const what = e.message.split("\n")[0].replace(/, run again with.*$/, "");
    return {
      line: flag === undefined
        ? `${what}: the operating system refused it (run as a user who may, e.g. root)`
        : `${what}: run again with ${flag}`,
      code: EXIT_FAILURE,
    };
  }
  if (e instanceof VfioError) return { line: e.message, code: EXIT_FAILURE };
  if (e instanceof Error) {
    return { line: `${e.message.split("\n")[0]}`, code: EXIT_FAILURE };
  }
  return { line: String(e), code: EXIT_FAILURE };
}

/**
 * Run a program's `main` with the exit-code discipline: its result is the exit code; any error
 * becomes one line on stderr (`name: …`) and exit 1, a {@link UsageError} exit 2. With
 * DENO_VFIO_DEBUG=1 in the environment (and --allow-env) the stack is printed too.
 */
export async function runProgram(
  name: string,
  main: (args: string[]) => Promise<number | void>,
): Promise<never> {
  let code: number;
  try {
    code = (await main(Deno.args)) ?? EXIT_OK;
  } catch (e) {
    const { line, code: failure } = describeError(e);
    console.error(`${name}: ${line}`);
    if (debugRequested() && e instanceof Error) console.error(e.stack);
    code = failure;
  }
  Deno.exit(code);
}

function debugRequested(): boolean {
  // Ask only if granted: an unasked env read would prompt on a terminal.
  const env = { name: "env", variable: "DENO_VFIO_DEBUG" } as const;
  if (Deno.permissions.querySync(env).state !== "granted") return false;
  return Deno.env.get("DENO_VFIO_DEBUG") === "1";
}
