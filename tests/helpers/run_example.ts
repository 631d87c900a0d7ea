/**
 * Running an example program as a user does, in a subprocess: `deno run --no-prompt
 * [permissions] examples/<program> args…` without a terminal (a missing permission is refused,
 * not prompted for), and the checks every program's errors share.
 *
 * @module
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

/** The repository root. */
export const ROOT: string = fileURLToPath(new URL("../../", import.meta.url));

/** Without --allow-run the programs cannot be started: tests are then reported as ignored. */
export const NO_RUN: boolean = Deno.permissions.querySync({ name: "run" }).state !== "granted";

/** Register a test, ignored (saying why) when subprocesses cannot be started. */
export function exampleTest(name: string, fn: () => Promise<void>): void {
  Deno.test({ name: NO_RUN ? `${name} [ignored: needs --allow-run]` : name, ignore: NO_RUN, fn });
}

/** What a program run gave. */
export interface Run {
  /** Exit code. */
  readonly code: number;
  /** Everything on stdout. */
  readonly stdout: string;
  /** Everything on stderr. */
  readonly stderr: string;
}

/** The command that runs `examples/<program>` with `permissions` and `args`. */
export function exampleCommand(
  program: string,
  args: readonly string[],
  permissions: readonly string[] = [],
  io: "piped" | "null" = "piped",
): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "--no-prompt", ...permissions, `examples/${program}`, ...args],
    cwd: ROOT,
    stdin: "null",
    stdout: io,
    stderr: "piped",
    env: { NO_COLOR: "1" },
  });
}

/** Run `examples/<program>` to its end. */
export async function runExample(
  program: string,
  args: readonly string[],
  permissions: readonly string[] = [],
): Promise<Run> {
  const out = await exampleCommand(program, args, permissions).output();
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

/** Exactly one stderr line, starting with the program's name, no stack frames; the exit code. */
export function assertOneLine(r: Run, program: string, code: number, pattern: RegExp): void {
  const lines = r.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `${program}: want one stderr line, got:\n${r.stderr}`);
  assert.equal(r.code, code, `${program}: exit ${r.code}, stderr ${r.stderr}`);
  assert.ok(lines[0].startsWith(`${program.replace(".ts", "")}: `), lines[0]);
  assert.match(lines[0], pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
}
