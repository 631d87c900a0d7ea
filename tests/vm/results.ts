/**
 * Reading what a VM-bench guest printed on its console, and comparing the kernel's answers with
 * the committed goldens.
 *
 * Console protocol (tests/vm/guest/init): `@@DV READY <uptime> <kernel release>`, framed blocks
 * `@@DV BEGIN <name>` … `@@DV END <name>` whose body is one JSON document, and
 * `@@DV EXIT <code>`.
 *
 * @module
 */

import { join } from "node:path";

/** A framed block of guest output. */
export interface GoldenBlock {
  /** Block name, e.g. "conformance-type1". */
  readonly name: string;
  /** The text between the markers. */
  readonly text: string;
}

/** What the markers of one guest run say. */
export interface ParsedRun {
  /** Host seconds from QEMU start to the guest's READY line. */
  readyAt: number | undefined;
  /** The guest suite's exit code. */
  exit: number | undefined;
  /** `uname -r` of the guest. */
  kernelRelease: string | undefined;
  /** Deno's closing test line ("ok | 12 passed | 0 failed (3s)"). */
  testSummary: string | undefined;
  /** Framed blocks in order. */
  blocks: GoldenBlock[];
}

const MARK = "@@DV ";
// Serial output may carry terminal control sequences before a marker.
// deno-lint-ignore no-control-regex
const CONTROL = /\x1b\[[0-9;?]*[a-zA-Z]|\x1bc/g;

/** Parse the guest's console lines (with host timestamps in seconds). */
export function parseMarkers(lines: readonly { t: number; text: string }[]): ParsedRun {
  const run: ParsedRun = {
    readyAt: undefined,
    exit: undefined,
    kernelRelease: undefined,
    testSummary: undefined,
    blocks: [],
  };
  let open: { name: string; body: string[] } | undefined;
  for (const { t, text: raw } of lines) {
    const text = raw.replace(CONTROL, "");
    const at = text.indexOf(MARK);
    if (at < 0) {
      if (open) open.body.push(text);
      else if (/^(ok|FAILED) \| \d+ passed/.test(text.trim())) run.testSummary = text.trim();
      continue;
    }
    const [kind, ...rest] = text.slice(at + MARK.length).trim().split(/\s+/);
    if (kind === "READY") {
      run.readyAt = t;
      run.kernelRelease = rest[1];
    } else if (kind === "EXIT") run.exit = Number(rest[0]);
    else if (kind === "BEGIN") open = { name: rest[0], body: [] };
    else if (kind === "END" && open) {
      run.blocks.push({ name: open.name, text: open.body.join("\n") });
      open = undefined;
    }
  }
  return run;
}

/** Where the golden of a machine's block lives. */
export function goldenPath(root: string, machine: string, block: string): string {
  return join(root, "tests", "goldens", machine, `${block}.json`);
}

/**
 * Compare a recorded golden with a fresh one; returns one line per difference (at most 10),
 * empty when the kernel answered the same.
 */
export function compareGolden(name: string, expected: unknown, actual: unknown): string[] {
  const out: string[] = [];
  diff(expected, actual, name, out);
  return out.length > 10 ? [...out.slice(0, 10), `${name}: … ${out.length - 10} more`] : out;
}

function diff(a: unknown, b: unknown, path: string, out: string[]): void {
  if (path.endsWith(".kernel")) return; // a new kernel build with the same answers is not drift
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) {
    if (a !== b) out.push(`${path}: golden ${JSON.stringify(a)}, kernel ${JSON.stringify(b)}`);
    return;
  }
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) {
    diff(
      (a as Record<string, unknown>)[k],
      (b as Record<string, unknown>)[k],
      `${path}.${k}`,
      out,
    );
  }
}
