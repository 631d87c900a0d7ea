/**
 * The VM bench: boots every machine of tests/vm/machines.ts under QEMU (TCG), runs the host tests
 * and the conformance scenarios over real VFIO inside, and compares the kernel's answers with the
 * goldens in tests/goldens/.
 *
 *   deno run -A tests/vm/run.ts [--machine NAME]… [--update-goldens] [--timeout SECONDS]
 *
 * Artifacts (guest kernels, QEMU, busybox, deno for arm64) are cached outside the repository in
 * $DENO_VFIO_CACHE (default ~/.cache/deno_vfio), keyed by version.
 *
 * @module
 */

import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import dgram from "node:dgram";
import { IDLE_SECONDS, VM_MACHINES, VM_NICS, vmDevices, type VmMachine } from "./machines.ts";
import { integerFlag, parseFlags, runProgram, UsageError } from "../../examples/cli.ts";
import { compareGolden, type GoldenBlock, goldenPath, parseMarkers } from "./results.ts";
import { ECHO_DATAGRAMS, EchoBench } from "./echo.ts";
import { ForwardBench } from "./forward.ts";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, "..", "..");
const OUT = join(HERE, "out");
const DEFAULT_TIMEOUT_S = 900;
/**
 * Seconds a guest may take to print its first marker (@@DV BOOTED). Boots take 4-15 s under TCG;
 * a fresh-clone CI run once saw an x86 guest stop after "Booting from ROM" and print nothing for
 * 900 s (a TCG boot hang before the kernel's first line). Such a boot is killed and tried again,
 * once, and the machine's report says so.
 */
const BOOT_STALL_S = 180;
/** How often a stalled boot is tried again. */
const BOOT_RETRIES = 1;
/** The guest's first marker (tests/vm/guest/init). */
const BOOTED_MARKER = "@@DV BOOTED";

/** A free UDP port on 127.0.0.1 for the forwarded echo port. */
function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket("udp4");
    s.once("error", reject);
    s.bind(0, "127.0.0.1", () => {
      const port = s.address().port;
      s.close(() => resolve(port));
    });
  });
}

/** What one machine's run produced. */
interface MachineResult {
  machine: string;
  ok: boolean;
  bootS: number | undefined;
  totalS: number;
  summary: string;
  problems: string[];
  /** One line per echo run (NIC × VFIO path) and idle measurement. */
  echoLines: string[];
}

async function sh(script: string, ...args: string[]): Promise<string[]> {
  const out = await new Deno.Command("bash", {
    args: [join(HERE, script), ...args],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`${script} ${args.join(" ")} failed (exit ${out.code})`);
  return new TextDecoder().decode(out.stdout).trim().split("\n");
}

async function prepare(machine: VmMachine): Promise<{ kernel: string; initrd: string }> {
  // Each step says what it is; the scripts add download and build progress (tests/vm/progress.sh).
  const step = (text: string): void => console.log(`vm: ${machine.name}: ${text}`);
  step("QEMU (Debian trixie's, unpacked once into the cache)");
  await sh("fetch-qemu.sh");
  step(`guest kernel ${machine.kernel} (downloaded or built once)`);
  const [kernel, modules] = await sh("artifacts.sh", "kernel", machine.kernel);
  const deno = machine.arch === "x86_64"
    ? Deno.execPath()
    : (await sh("artifacts.sh", "deno", machine.arch))[0];
  await Deno.mkdir(OUT, { recursive: true });
  const initrd = join(OUT, `initrd-${machine.arch}-${machine.kernel}.cpio`);
  step("initrd");
  await sh("mkinitrd.sh", machine.arch, initrd, modules, deno);
  step(`booting ${machine.arch} under QEMU (TCG) and running the suite`);
  return { kernel, initrd };
}

async function boot(
  machine: VmMachine,
  kernel: string,
  initrd: string,
  timeoutS: number,
  onLine: (text: string) => void,
  echoPorts: Readonly<Record<string, number>>,
): Promise<
  { log: string; lines: { t: number; text: string }[]; timedOut: boolean; stalled: boolean }
> {
  const cmdline = [
    machine.cmdline,
    "quiet loglevel=1 panic=-1",
    "dv.suite=host",
    `dv.paths=${machine.paths.join(",")}`,
    machine.unsafeInterrupts ? "dv.unsafe=1" : "",
    machine.idleCpu ? `dv.idle=${IDLE_SECONDS}` : "",
  ].join(" ");
  const args = [
    machine.arch,
    ...machine.machineArgs,
    "-kernel",
    kernel,
    "-initrd",
    initrd,
    "-append",
    cmdline,
    "-nographic",
    "-no-reboot",
    ...vmDevices(echoPorts),
  ];
  const started = performance.now();
  const child = new Deno.Command("bash", {
    args: [join(HERE, "qemu.sh"), ...args],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  let timedOut = false;
  let booted = false;
  let stalled = false;
  const kill = (): void => {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
  };
  const timer = setTimeout(() => {
    timedOut = true;
    kill();
  }, timeoutS * 1000);
  // Only when the watchdog is shorter than the whole run's timeout.
  const stallTimer = BOOT_STALL_S < timeoutS
    ? setTimeout(() => {
      if (booted) return;
      stalled = true;
      kill();
    }, BOOT_STALL_S * 1000)
    : undefined;
  const lines: { t: number; text: string }[] = [];
  let pending = "";
  const decoder = new TextDecoder();
  const reader = child.stdout.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    pending += decoder.decode(value, { stream: true });
    const parts = pending.split(/\r?\n/);
    pending = parts.pop() ?? "";
    const t = (performance.now() - started) / 1000;
    for (const text of parts) {
      lines.push({ t, text });
      if (!booted && text.includes(BOOTED_MARKER)) {
        booted = true;
        clearTimeout(stallTimer);
      }
      onLine(text);
    }
  }
  if (pending) lines.push({ t: (performance.now() - started) / 1000, text: pending });
  const stderr = decoder.decode(await new Response(child.stderr).arrayBuffer());
  await child.status;
  clearTimeout(timer);
  clearTimeout(stallTimer);
  const log = lines.map((l) => `[${l.t.toFixed(2)}] ${l.text}`).join("\n") + "\n" + stderr;
  await Deno.writeTextFile(join(OUT, `${machine.name}.log`), log);
  return { log, lines, timedOut: timedOut && !stalled, stalled };
}

async function runMachine(
  machine: VmMachine,
  timeoutS: number,
  updateGoldens: boolean,
): Promise<MachineResult> {
  const t0 = performance.now();
  const { kernel, initrd } = await prepare(machine);
  const notes: string[] = [];
  let attempt = 0;
  for (;;) {
    const echoPorts: Record<string, number> = {};
    for (const nic of VM_NICS) echoPorts[nic.driver] = await freeUdpPort();
    const bench = new EchoBench(echoPorts);
    const forward = new ForwardBench(echoPorts);
    const booted = await boot(
      machine,
      kernel,
      initrd,
      timeoutS,
      (text) => {
        bench.onLine(text);
        forward.onLine(text);
      },
      echoPorts,
    );
    bench.close();
    forward.close();
    if (booted.stalled && attempt < BOOT_RETRIES) {
      attempt++;
      const note = `boot ${attempt} stalled: no ${BOOTED_MARKER} within ${BOOT_STALL_S} s ` +
        `(a TCG boot hang); booting again`;
      console.log(`vm: ${machine.name}: ${note}`);
      notes.push(note);
      // Keep the stalled boot's console for a look later.
      const log = join(OUT, `${machine.name}.log`);
      await Deno.rename(log, join(OUT, `${machine.name}.stalled-${attempt}.log`));
      continue;
    }
    return report(machine, t0, timeoutS, booted, bench, forward, notes, updateGoldens);
  }
}

async function report(
  machine: VmMachine,
  t0: number,
  timeoutS: number,
  booted: { lines: { t: number; text: string }[]; timedOut: boolean; stalled: boolean },
  bench: EchoBench,
  forward: ForwardBench,
  notes: string[],
  updateGoldens: boolean,
): Promise<MachineResult> {
  const { lines, timedOut, stalled } = booted;
  const totalS = (performance.now() - t0) / 1000;
  const parsed = parseMarkers(lines);
  const problems: string[] = [];
  if (timedOut) problems.push(`timed out after ${timeoutS} s`);
  if (stalled) {
    problems.push(`no ${BOOTED_MARKER} within ${BOOT_STALL_S} s, ${BOOT_RETRIES + 1} boots`);
  }
  if (parsed.exit === undefined) problems.push("the guest never reported an exit code");
  const echoLines: string[] = [...notes];
  let echoesOk = 0;
  for (const nic of VM_NICS) {
    for (const path of machine.paths) {
      const run = bench.echoes.find((r) => r.nic === nic.driver && r.path === path);
      // The capture at the driver holds each datagram and its echo (and the ARP exchanges).
      const captureOk = run !== undefined && (run.captured ?? 0) >= 2 * run.echoed;
      // A run that asked for an interrupt kind (--irq) must say it sleeps on that one.
      const irqOk = run?.irq === undefined ||
        run.mode?.split(",")[0] === `sleeping on ${run.irq === "msi" ? "MSI" : "MSI-X"}`;
      // An interrupt-driven run: every wake came from the interrupt, none from the rescan.
      const sleeping = run?.mode?.startsWith("sleeping on") === true;
      const lostOk = !sleeping || run?.lostInterrupts === 0;
      const ok = run !== undefined && run.sent === ECHO_DATAGRAMS && run.echoed === run.sent &&
        captureOk && irqOk && lostOk;
      if (ok) echoesOk++;
      echoLines.push(
        `echo ${machine.name} ${nic.driver} ${path}: ` + (run === undefined
          ? "not run"
          : `${run.echoed}/${run.sent} datagrams echoed, ${
            run.captured ?? "no"
          } frames captured at the driver, ${run.mode ?? "mode unknown"}${
            run.irq === undefined ? "" : ` (--irq ${run.irq})`
          }${sleeping ? `, ${run.lostInterrupts ?? "?"} lost interrupts` : ""} (demo exit ${
            run.exit ?? "?"
          })`) +
          (ok ? "" : " FAILED"),
      );
      if (!ok) {
        problems.push(`echo over real VFIO on ${nic.driver} ${path} failed`);
      }
    }
  }
  for (const r of bench.idle) {
    echoLines.push(
      `idle ${machine.name} ${r.nic} ${r.path} ${r.mode}: cpu ${r.cpuS} s over ${r.wallS} s`,
    );
  }
  const modes = new Set(bench.idle.map((r) => r.mode));
  if (machine.idleCpu && !(modes.has("interrupt") && modes.has("poll"))) {
    problems.push("no idle CPU figure for both the interrupt-driven and the polling demo");
  }
  const forwarded = forward.report(machine.name);
  echoLines.push(...forwarded.lines);
  problems.push(...forwarded.problems);
  if (parsed.exit !== 0) problems.push(`guest suite exited ${parsed.exit}`);
  for (const block of parsed.blocks) {
    const file = goldenPath(ROOT, machine.name, block.name);
    problems.push(...await checkGolden(file, block, parsed.kernelRelease, updateGoldens));
  }
  return {
    machine: machine.name,
    ok: problems.length === 0,
    bootS: parsed.readyAt,
    totalS,
    summary: (parsed.testSummary ?? "(no test summary)") +
      `; echo ${echoesOk}/${VM_NICS.length * machine.paths.length} NIC × path runs`,
    problems,
    echoLines,
  };
}

async function checkGolden(
  file: string,
  block: GoldenBlock,
  kernelRelease: string | undefined,
  update: boolean,
): Promise<string[]> {
  let data: unknown;
  try {
    data = JSON.parse(block.text);
  } catch (e) {
    return [`${block.name}: the guest printed no valid JSON (${(e as Error).message})`];
  }
  const golden = { kernel: kernelRelease ?? "unknown", observations: data };
  if (update) {
    await Deno.mkdir(dirname(file), { recursive: true });
    await Deno.writeTextFile(file, JSON.stringify(golden, null, 1) + "\n");
    return [];
  }
  let expected: unknown;
  try {
    expected = JSON.parse(await Deno.readTextFile(file));
  } catch {
    return [`${block.name}: no golden at ${file} (run with --update-goldens to record one)`];
  }
  return compareGolden(block.name, expected, golden);
}

async function main(): Promise<number> {
  const { values } = parseFlags(Deno.args, {
    machine: { type: "string", multiple: true },
    "update-goldens": { type: "boolean", default: false },
    timeout: { type: "string", default: String(DEFAULT_TIMEOUT_S) },
  });
  if (values.help) {
    console.log(
      `usage: deno run -A tests/vm/run.ts [--machine NAME]… [--update-goldens] [--timeout S]\nmachines: ${
        VM_MACHINES.map((m) => m.name).join(", ")
      }`,
    );
    return 0;
  }
  const timeout = integerFlag("--timeout", values.timeout, 1, 24 * 3600);
  const wanted = values.machine ?? VM_MACHINES.map((m) => m.name);
  const machines = wanted.map((name) => {
    const m = VM_MACHINES.find((x) => x.name === name);
    if (!m) {
      throw new UsageError(
        `--machine ${name}: want one of ${VM_MACHINES.map((x) => x.name).join(", ")}`,
      );
    }
    return m;
  });
  const results: MachineResult[] = [];
  for (const machine of machines) {
    console.log(`vm: ${machine.name} …`);
    const r = await runMachine(machine, timeout, values["update-goldens"]);
    results.push(r);
    console.log(
      `vm: ${r.machine}: ${r.ok ? "ok" : "FAILED"} boot ${r.bootS?.toFixed(1) ?? "?"} s, total ${
        r.totalS.toFixed(1)
      } s; ${r.summary}`,
    );
    for (const line of r.echoLines) console.log(`vm:   ${line}`);
    for (const p of r.problems) console.log(`vm:   ${p}`);
  }
  const failed = results.filter((r) => !r.ok).length;
  console.log(`${results.length - failed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}

if (import.meta.main) await runProgram("vm", main);
