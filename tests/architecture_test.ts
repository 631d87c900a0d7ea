/**
 * The house plan's import rules (shared/DESIGN.md §2), checked on the source: every `import`,
 * `import type` and `export … from` of every module is read, and the test fails
 *  - on an arrow that points up a layer (core/, drivers/, net/ importing sim/ or ffi/linux.ts;
 *    sim/ importing core/, drivers/ or net/; ffi/ importing anything above it), and
 *  - on any import cycle among the package's modules (the simulator's above all), type-only
 *    imports included: a cycle means files that cannot be read, tested or split apart on their
 *    own — and on a cycle between the simulator's parts (sim/iommu ↔ sim/kernel, …).
 * Each failure names the files and the import that breaks the rule.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

/** The top folders whose code is the package (examples, tests and bench may import anything). */
const LAYERED = ["ffi", "core", "drivers", "net", "sim"] as const;
type Layer = typeof LAYERED[number];

/** For each layer, what it must never import (paths from the repository root, as prefixes). */
const FORBIDDEN: Readonly<Record<Layer, readonly string[]>> = {
  ffi: ["core/", "drivers/", "net/", "sim/", "examples/", "tests/", "bench/"],
  core: ["drivers/", "net/", "sim/", "ffi/linux.ts", "examples/", "tests/", "bench/"],
  drivers: ["net/", "sim/", "ffi/linux.ts", "examples/", "tests/", "bench/"],
  net: ["sim/", "ffi/linux.ts", "examples/", "tests/", "bench/"],
  sim: ["core/", "drivers/", "net/", "ffi/linux.ts", "examples/", "tests/", "bench/"],
};

/** `import … from "x"`, `import type … from "x"`, `export … from "x"`, `import "x"`, `import("x")`. */
const IMPORT =
  /(?:^|[;\n}])\s*(?:import|export)\s+(?:type\s+)?(?:[\w*{}\s,$]*?\s+from\s+)?["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)/g;

/** Every .ts file under `dir` (relative to the root), sorted. */
function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(ROOT + dir)) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) out.push(...tsFiles(path));
    else if (e.name.endsWith(".ts")) out.push(path);
  }
  return out.sort();
}

/** Source text without comments (so doc-comment examples are not read as imports). */
function stripComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
}

/** The relative imports of `file`, resolved to paths from the root. */
function importsOf(file: string): string[] {
  const text = stripComments(Deno.readTextFileSync(ROOT + file));
  const out: string[] = [];
  for (const m of text.matchAll(IMPORT)) {
    const spec = m[1] ?? m[2];
    if (!spec.startsWith(".")) continue; // node: built-ins
    const url = new URL(spec, `file:///${file}`);
    out.push(decodeURIComponent(url.pathname.slice(1)));
  }
  return out;
}

/** The graph of every package module: file → the files it imports. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const layer of LAYERED) for (const f of tsFiles(layer)) graph.set(f, importsOf(f));
  for (const f of ["mod.ts", "linux.ts"]) graph.set(f, importsOf(f));
  return graph;
}

/** Strongly connected components with more than one file (Tarjan), each sorted. */
function cycles(graph: Map<string, readonly string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) out.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return out;
}

Deno.test("architecture: no import points up a layer (DESIGN.md §2)", () => {
  const graph = importGraph();
  const violations: string[] = [];
  for (const [file, imports] of graph) {
    const layer = LAYERED.find((l) => file.startsWith(`${l}/`));
    if (layer === undefined) continue;
    for (const target of imports) {
      const rule = FORBIDDEN[layer].find((p) => target === p || target.startsWith(p));
      if (rule !== undefined) violations.push(`${file} imports ${target} (${layer}/ must not)`);
    }
  }
  assert.deepEqual(violations, []);
});

Deno.test("architecture: no import cycle in sim/ (nor in ffi/, core/, drivers/, net/), type-only imports included", () => {
  const found = cycles(importGraph()).map((scc) => scc.join(" ↔ "));
  assert.deepEqual(found, []);
});

/**
 * The simulator's parts as units: each subfolder (sim/iommu with its vendor folders, sim/kernel,
 * sim/vfio, …) is one node, each file directly in sim/ its own node.
 */
function simFolderGraph(graph: Map<string, readonly string[]>): Map<string, string[]> {
  const unit = (f: string): string => f.split("/").slice(0, 2).join("/");
  const out = new Map<string, string[]>();
  for (const [file, imports] of graph) {
    if (!file.startsWith("sim/")) continue;
    const from = unit(file);
    const targets = out.get(from) ?? [];
    for (const t of imports) {
      if (t.startsWith("sim/") && unit(t) !== from && !targets.includes(unit(t))) {
        targets.push(unit(t));
      }
    }
    out.set(from, targets);
  }
  return out;
}

Deno.test("architecture: no import cycle between sim/'s parts (sim/iommu, sim/kernel, …)", () => {
  const found = cycles(simFolderGraph(importGraph())).map((scc) => scc.join(" ↔ "));
  assert.deepEqual(found, []);
});

Deno.test("architecture: the checker sees imports and finds a planted cycle", () => {
  // The checker itself can fail: a two-file cycle and a three-file one are found, a chain is not.
  const graph = new Map<string, string[]>([
    ["a", ["b"]],
    ["b", ["a"]],
    ["c", ["d"]],
    ["d", ["e"]],
    ["e", ["c"]],
    ["f", ["g"]],
    ["g", []],
  ]);
  assert.deepEqual(cycles(graph), [["a", "b"], ["c", "d", "e"]]);
  const simGraph = importGraph();
  assert.ok((simGraph.get("sim/mod.ts") ?? []).includes("sim/machine.ts"));
  // `import type` counts: sim/iommu/model.ts is imported for types only by many files.
  const typeOnly = [...simGraph].filter(([, imps]) => imps.includes("sim/iommu/model.ts"));
  assert.ok(typeOnly.length > 5);
});
