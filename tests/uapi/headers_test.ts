/**
 * Every uAPI declaration in the code — struct sizes, field offsets and sizes, ioctl numbers and
 * flag/constant values — compared one by one with Linux 6.12's own headers (Debian trixie's
 * linux-libc-dev, fetched into a cache by linux-headers.sh), through a C program compiled with
 * gcc. Moving one field or changing one number in TypeScript makes this test fail.
 *
 * Declarations are found by shape in every module listed in UAPI_MODULES: a `defineStruct` layout,
 * a `defineIoctl` declaration, or an exported number whose name is a VFIO_/IOMMU_ macro or enum.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { type FieldDecl, fieldSize, type StructLayout } from "../../ffi/uapi/layout.ts";
import { type IoctlDecl, ioctlNumber } from "../../ffi/uapi/common.ts";

/** Modules that declare uAPI (paths from the repository root). */
const UAPI_MODULES = ["ffi/uapi/common.ts", "ffi/uapi/vfio.ts", "ffi/uapi/iommufd.ts"];

/**
 * Exported names that look like uAPI macros but are kernel-internal or project constants (not in
 * the uapi headers), with where they come from. Anything else missing from the headers fails.
 */
const NOT_IN_UAPI_HEADERS: Record<string, string> = {};

const ROOT = new URL("../../", import.meta.url);
const MACRO = /^_*(VFIO|IOMMU)_[A-Za-z0-9_]+$/;

interface Item {
  /** What is compared, e.g. "vfio_iommu_type1_dma_map.iova offset". */
  key: string;
  /** The C expression printing the value. */
  expr: string;
  /** The C identifier the expression needs (to drop it when the headers lack it). */
  needs: string;
  /** The TypeScript value. */
  value: bigint;
  /** Where it was declared. */
  where: string;
}

function isStruct(v: unknown): v is StructLayout {
  return typeof v === "object" && v !== null && "fields" in v && "size" in v && "name" in v;
}
function isIoctl(v: unknown): v is IoctlDecl {
  return typeof v === "object" && v !== null && "nr" in v && "type" in v && "name" in v &&
    !("fields" in v);
}

function collect(module: string, exports: Record<string, unknown>, out: Item[]): void {
  for (const [name, v] of Object.entries(exports)) {
    if (isStruct(v)) {
      out.push({
        key: `${v.name} sizeof`,
        expr: `sizeof(struct ${v.name})`,
        needs: v.name,
        value: BigInt(v.size),
        where: module,
      });
      for (const [field, decl] of Object.entries(v.fields) as [string, FieldDecl][]) {
        out.push({
          key: `${v.name}.${field} offset`,
          expr: `offsetof(struct ${v.name}, ${field})`,
          needs: `${v.name}.${field}`,
          value: BigInt(decl.offset),
          where: module,
        });
        out.push({
          key: `${v.name}.${field} size`,
          expr: `sizeof(((struct ${v.name} *)0)->${field})`,
          needs: `${v.name}.${field}`,
          value: BigInt(fieldSize(decl)),
          where: module,
        });
      }
    } else if (isIoctl(v)) {
      out.push({
        key: `${v.name} number`,
        expr: `(unsigned long long)${v.name}`,
        needs: v.name,
        value: BigInt(ioctlNumber("generic", v)),
        where: module,
      });
    } else if ((typeof v === "number" || typeof v === "bigint") && MACRO.test(name)) {
      if (name in NOT_IN_UAPI_HEADERS) continue;
      out.push({
        key: `${name} value`,
        expr: `(unsigned long long)(${name})`,
        needs: name,
        value: BigInt.asUintN(64, BigInt(v)),
        where: module,
      });
    }
  }
}

async function headers(): Promise<string> {
  const script = fileURLToPath(new URL("tests/uapi/linux-headers.sh", ROOT));
  const out = await new Deno.Command("bash", { args: [script], stdout: "piped", stderr: "inherit" })
    .output();
  assert.ok(out.success, "tests/uapi/linux-headers.sh failed (needs apt-get and dpkg-deb)");
  return new TextDecoder().decode(out.stdout).trim().split("\n").pop()!;
}

function program(items: Item[]): string {
  const lines = items.map((it, i) =>
    `  printf("%d %llu\\n", ${i}, (unsigned long long)(${it.expr}));`
  );
  return [
    "#include <stddef.h>",
    "#include <stdio.h>",
    "#include <linux/vfio.h>",
    "#include <linux/iommufd.h>",
    "#ifndef IOMMU_FAULT_QUEUE_ALLOC",
    '#error "these are not the Linux 6.12 headers"',
    "#endif",
    "int main(void) {",
    ...lines,
    "  return 0;",
    "}",
  ].join("\n");
}

/** Compile and run; identifiers the headers lack are dropped and reported. */
async function measure(
  include: string,
  items: Item[],
): Promise<{ values: Map<number, bigint>; missing: Set<string> }> {
  const dir = await Deno.makeTempDir({ prefix: "uapi-layout-" });
  const missing = new Set<string>();
  try {
    for (let attempt = 0; attempt < 20; attempt++) {
      const gone = (it: Item): boolean =>
        missing.has(it.needs) || missing.has(it.needs.split(".")[0]);
      const live = items.map((it, i) => ({ it, i })).filter(({ it }) => !gone(it));
      const src = program(live.map(({ it }) => it)).replace(
        /printf\("%d %llu\\n", (\d+),/g,
        (_, k) => `printf("%d %llu\\n", ${live[Number(k)].i},`,
      );
      await Deno.writeTextFile(`${dir}/layout.c`, src);
      const cc = await new Deno.Command("gcc", {
        args: [
          "-I",
          include,
          "-I",
          `${include}/x86_64-linux-gnu`,
          "-o",
          `${dir}/layout`,
          `${dir}/layout.c`,
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const errors = new TextDecoder().decode(cc.stderr);
      if (!cc.success) {
        const q = "['\u2018\u2019]";
        const unknown = [
          ...[...errors.matchAll(new RegExp(`${q}([A-Za-z0-9_]+)${q} undeclared`, "g"))].map((m) =>
            m[1]
          ),
          ...[
            ...errors.matchAll(
              new RegExp(
                `${q}struct ([A-Za-z0-9_]+)${q} has no member named ${q}([A-Za-z0-9_]+)${q}`,
                "g",
              ),
            ),
          ]
            .map((m) => `${m[1]}.${m[2]}`),
          ...[
            ...errors.matchAll(
              new RegExp(
                `(?:incomplete type|invalid use of undefined type) ${q}struct ([A-Za-z0-9_]+)${q}`,
                "g",
              ),
            ),
          ]
            .map((m) => m[1]),
        ];
        const fresh = unknown.filter((u) => !missing.has(u));
        assert.ok(
          fresh.length > 0,
          `gcc failed on something other than a missing name:\n${errors.slice(0, 2000)}`,
        );
        for (const u of fresh) missing.add(u);
        continue;
      }
      const run = await new Deno.Command(`${dir}/layout`, { stdout: "piped" }).output();
      const values = new Map<number, bigint>();
      for (const line of new TextDecoder().decode(run.stdout).trim().split("\n")) {
        const [i, v] = line.split(" ");
        values.set(Number(i), BigInt(v));
      }
      return { values, missing };
    }
    throw new Error("could not compile the layout program");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** What this test needs that it lacks here (it is then reported as ignored, saying what). */
function missingTools(): string[] {
  if (Deno.permissions.querySync({ name: "run" }).state !== "granted") return ["--allow-run"];
  return ["gcc", "apt-get", "dpkg-deb", "bash"].filter((tool) => {
    try {
      const probe = new Deno.Command("sh", { args: ["-c", `command -v ${tool}`], stdout: "null" });
      return !probe.outputSync().success;
    } catch {
      return true; // no sh
    }
  });
}

const MISSING = missingTools();
const NAME = "uAPI declarations agree with the Linux 6.12 headers, item by item";

Deno.test({
  name: MISSING.length === 0 ? NAME : `${NAME} [ignored: needs ${MISSING.join(", ")}]`,
  ignore: MISSING.length > 0,
}, async (t) => {
  const items: Item[] = [];
  for (const module of UAPI_MODULES) {
    collect(module, await import(new URL(module, ROOT).href), items);
  }
  const include = await headers();
  const { values, missing } = await measure(include, items);
  const byModule = new Map<string, Item[]>();
  items.forEach((it) => byModule.set(it.where, [...(byModule.get(it.where) ?? []), it]));
  for (const [module, list] of byModule) {
    await t.step(`${module}: ${list.length} items`, () => {
      const wrong: string[] = [];
      for (const it of list) {
        const i = items.indexOf(it);
        if (missing.has(it.needs) || missing.has(it.needs.split(".")[0])) {
          wrong.push(`${it.key}: not in the 6.12 headers`);
        } else if (values.get(i) !== it.value) {
          wrong.push(`${it.key}: TypeScript ${it.value}, headers ${values.get(i)}`);
        }
      }
      assert.deepEqual(wrong, [], `${module} disagrees with Linux 6.12:\n${wrong.join("\n")}`);
    });
  }
  const structs = new Set(items.filter((i) => i.key.endsWith(" sizeof")).map((i) => i.needs));
  const ioctls = items.filter((i) => i.key.endsWith(" number")).length;
  console.log(
    `uapi: ${items.length} items checked (${structs.size} structs, ${ioctls} ioctl declarations) against ${include}`,
  );
});
