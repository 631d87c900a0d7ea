/**
 * A fail-nth sweep of an open path — `openPciDevice`, a driver's open, or both — on the
 * simulator: one clean run counts the system calls of each kind the open makes; then for every
 * kind and every N up to that count, a fresh machine runs the open with the Nth call of that kind
 * failing. Each run must end cleanly: the open throws a VfioError (or copes and succeeds), every
 * resource is back at its baseline (fds, mappings, locked pages, machine memory, IOMMU domains),
 * and a clean open on the same machine works afterwards.
 *
 * @example
 * ```ts
 * const result = await sweepFailNth(
 *   () => createMachine({ iommu: "vtd" }),
 *   (kernel) => openPciDevice("0000:00:02.0", { kernel, iommu: "iommufd" }),
 * );
 * assertEquals(result.problems, []);
 * ```
 *
 * @module
 */

import { VfioError } from "../core/errors.ts";
import type { PciDevice } from "../core/pci_device.ts";
import { ERRNO } from "../ffi/errno.ts";
import type { Kernel } from "../ffi/kernel.ts";
import type { SimMachine } from "../sim/machine.ts";
import { FailNthKernel, type FailNthRule, SYSCALL_KINDS, type SyscallKind } from "./fail_nth.ts";
import { LeakCheck } from "./leaks.ts";
import { type MachineResources, machineResources } from "../sim/resources.ts";

/** Something an open returns: closing it must release everything the open took. */
export interface Closeable {
  /** Release everything. */
  close(): void;
}

/** The open under test, on `kernel` (a fail-nth kernel over `machine.kernel`). */
export type OpenUnderTest = (
  kernel: Kernel,
  machine: SimMachine,
) => Closeable | Promise<Closeable>;

/** The errno each kind fails with by default: what the kernel answers when it runs short. */
export const DEFAULT_FAIL_ERRNO: Readonly<Record<SyscallKind, number>> = {
  open: ERRNO.ENOMEM,
  close: ERRNO.EIO,
  ioctl: ERRNO.ENOMEM,
  pread: ERRNO.EIO,
  pwrite: ERRNO.EIO,
  read: ERRNO.EIO,
  write: ERRNO.EIO,
  eventfd: ERRNO.EMFILE,
  poll: ERRNO.ENOMEM,
  mmapAnonymous: ERRNO.ENOMEM,
  mmapDevice: ERRNO.ENOMEM,
  munmap: ERRNO.ENOMEM,
  readlink: ERRNO.ENOMEM,
  readdir: ERRNO.ENOMEM,
  readFile: ERRNO.ENOMEM,
  writeFile: ERRNO.EIO,
};

/**
 * The kinds swept by default: every call of the seam except munmap, whose failure leaves the
 * mapping in place by definition (nothing can unwind it).
 */
export const SWEEP_KINDS: readonly SyscallKind[] = SYSCALL_KINDS.filter((k) => k !== "munmap");

/** Options of {@link sweepFailNth}. */
export interface SweepOptions {
  /** Kinds to fail (default {@link SWEEP_KINDS}). */
  readonly kinds?: readonly SyscallKind[];
  /** The errno per kind (default {@link DEFAULT_FAIL_ERRNO}). */
  readonly errno?: Partial<Record<SyscallKind, number>>;
  /**
   * Sweep every Nth value only (1, 1 + every, …, and always the last); default 1: every N. For
   * short runs.
   */
  readonly every?: number;
  /**
   * Which part to fail: "open" (default) the open, or "close" the close of what opened cleanly
   * (it must throw a VfioError or succeed, and leave nothing behind either way).
   */
  readonly phase?: "open" | "close";
}

/** What a sweep did and found. */
export interface SweepResult {
  /** Calls of each kind one clean open makes (kinds with none left out). */
  readonly calls: Partial<Record<SyscallKind, number>>;
  /** Opens run with a failure injected. */
  readonly runs: number;
  /** Of those, opens that coped with the failure and succeeded (then closed). */
  readonly coped: number;
  /** Everything that went wrong, one line each (empty: every run ended cleanly). */
  readonly problems: readonly string[];
}

/**
 * A driver's open on a device opened for it, as an application does it: when the driver's open
 * fails, the application closes the device. The sweep checks more than the end state here: right
 * after a failed driver open (before the device is closed), the driver must have released what it
 * took — it may leave no more than a driver that opened and closed successfully leaves in the
 * device (the device keeps BAR mappings and its DMA space keeps state it set up once, such as a
 * sPAPR window or iommufd's scratch page, until the device is closed).
 */
export interface DriverUnderTest {
  /** Open the device on `kernel` (a fail-nth kernel over `machine.kernel`). */
  openDevice(kernel: Kernel, machine: SimMachine): PciDevice;
  /** Open the driver on it. */
  openDriver(dev: PciDevice): Closeable | Promise<Closeable>;
}

/** Run the sweep (see the module doc). */
export async function sweepFailNth(
  makeMachine: () => SimMachine,
  target: OpenUnderTest | DriverUnderTest,
  options: SweepOptions = {},
): Promise<SweepResult> {
  const problems: string[] = [];
  const phase = options.phase ?? "open";
  const { calls, closeCalls, allowance } = await cleanRun(makeMachine, target, problems);
  const open = typeof target === "function" ? target : checkedDriverOpen(target, allowance);
  const counted = phase === "open" ? calls : closeCalls;
  const errnos = { ...DEFAULT_FAIL_ERRNO, ...options.errno };
  const every = Math.max(1, Math.floor(options.every ?? 1));
  let runs = 0;
  let coped = 0;
  for (const kind of options.kinds ?? SWEEP_KINDS) {
    const count = counted[kind] ?? 0;
    for (let nth = 1; nth <= count; nth++) {
      if ((nth - 1) % every !== 0 && nth !== count) continue;
      runs++;
      const rule = { call: kind, nth, errno: errnos[kind] };
      const outcome = await injectedRun(makeMachine, open, rule, phase);
      if (outcome === "coped") coped++;
      else if (outcome !== "failed") problems.push(outcome);
    }
  }
  return { calls: counted, runs, coped, problems };
}

/** What a driver that opened and closed cleanly leaves in its device, per figure. */
type Allowance = Partial<Record<keyof MachineResources, number>>;

/**
 * One open and close without injection: the calls per kind the open makes, what a driver's
 * open-and-close leaves in the device, and any leak.
 */
async function cleanRun(
  makeMachine: () => SimMachine,
  target: OpenUnderTest | DriverUnderTest,
  problems: string[],
): Promise<{ calls: Counts; closeCalls: Counts; allowance: Allowance }> {
  const machine = makeMachine();
  const leaks = new LeakCheck(machine);
  const kernel = new FailNthKernel(machine.kernel);
  let allowance: Allowance = {};
  let calls: Counts;
  if (typeof target === "function") {
    const handle = await target(kernel, machine);
    calls = countsOf(kernel);
    kernel.arm(NEVER);
    handle.close();
  } else {
    const dev = target.openDevice(kernel, machine);
    const before = machineResources(machine);
    const driver = await target.openDriver(dev);
    calls = countsOf(kernel);
    kernel.arm(NEVER);
    driver.close();
    allowance = growth(before, machineResources(machine));
    dev.close();
  }
  const closeCalls = countsOf(kernel);
  const changes = leaks.changes();
  if (changes.length > 0) problems.push(`clean open and close: ${changes.join("; ")}`);
  return { calls, closeCalls, allowance };
}

/** Calls per kind. */
type Counts = Partial<Record<SyscallKind, number>>;

/** A rule that never fires (arming it restarts the counts). */
const NEVER = { call: "open" as const, nth: Number.MAX_SAFE_INTEGER, errno: ERRNO.EIO };

function countsOf(kernel: FailNthKernel): Counts {
  const out: Counts = {};
  for (const k of SYSCALL_KINDS) if (kernel.counts[k] > 0) out[k] = kernel.counts[k];
  return out;
}

/** How much each figure grew from `a` to `b` (figures that did not grow left out). */
function growth(a: MachineResources, b: MachineResources): Allowance {
  const out: Allowance = {};
  for (const key of Object.keys(a) as (keyof MachineResources)[]) {
    if (b[key] > a[key]) out[key] = b[key] - a[key];
  }
  return out;
}

/**
 * The open of a {@link DriverUnderTest}: a failed driver open may leave no more than `allowance`
 * before the device is closed; more is reported as an Error (a problem for the sweep).
 */
function checkedDriverOpen(target: DriverUnderTest, allowance: Allowance): OpenUnderTest {
  return async (kernel, machine) => {
    const dev = target.openDevice(kernel, machine);
    const before = machineResources(machine);
    let driver: Closeable;
    try {
      driver = await target.openDriver(dev);
    } catch (e) {
      const grew = growth(before, machineResources(machine));
      const over = (Object.keys(grew) as (keyof MachineResources)[])
        .filter((k) => grew[k]! > (allowance[k] ?? 0))
        .map((k) => `${k} +${grew[k]} (a clean open and close leaves +${allowance[k] ?? 0})`);
      dev.close();
      if (over.length > 0) {
        throw new Error(`the driver's failed open left ${over.join(", ")}: ${String(e)}`);
      }
      throw e;
    }
    return {
      close(): void {
        try {
          driver.close();
        } finally {
          dev.close();
        }
      },
    };
  };
}

/**
 * One open and close with the rule's call failing in the `phase` asked for: "failed" or "coped"
 * when the run ended cleanly, else the problem.
 */
async function injectedRun(
  makeMachine: () => SimMachine,
  open: OpenUnderTest,
  rule: FailNthRule,
  phase: "open" | "close",
): Promise<string> {
  const machine = makeMachine();
  const leaks = new LeakCheck(machine);
  const kernel = new FailNthKernel(machine.kernel);
  const where = `${phase}: ${rule.call} #${rule.nth}`;
  if (phase === "open") kernel.arm(rule);
  let outcome = "coped";
  try {
    const handle = await open(kernel, machine);
    if (phase === "open") kernel.disarm();
    else kernel.arm(rule); // counting starts with the close
    handle.close();
  } catch (e) {
    if (!(e instanceof VfioError)) {
      return `${where}: the ${phase} threw ${e instanceof Error ? `${e.name}: ${e.message}` : e}`;
    }
    outcome = "failed";
  }
  kernel.disarm();
  if (!kernel.fired) return `${where}: the ${phase} made fewer such calls than the clean run`;
  return afterRun(machine, open, leaks, where, kernel, outcome);
}

/** The end checks of an injected run: nothing left, and a clean open works afterwards. */
async function afterRun(
  machine: SimMachine,
  open: OpenUnderTest,
  leaks: LeakCheck,
  where: string,
  kernel: FailNthKernel,
  outcome: string,
): Promise<string> {
  const changes = leaks.changes();
  if (changes.length > 0) return `${where} (${kernel.firedAt}): left ${changes.join("; ")}`;
  try {
    (await open(machine.kernel, machine)).close();
  } catch (e) {
    return `${where}: a clean open afterwards failed: ${e instanceof Error ? e.message : e}`;
  }
  const after = leaks.changes();
  if (after.length > 0) return `${where}: the clean open afterwards left ${after.join("; ")}`;
  return outcome;
}
