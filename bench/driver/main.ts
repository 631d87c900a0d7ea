/**
 * The driver bench: ixy's forwarding loop per packet, the Deno driver against C, in one run.
 *
 *   deno task bench:driver [--windows N] [--window-ms MS] [--batches 1,8,32,256]
 *
 * Two ports forward to each other (receive a batch, touch one byte per packet, transmit on the
 * other port, both directions) on the driver's own rings — the igb RxRing/TxRing and the
 * virtio-net split rings — while a C device thread completes their descriptors concurrently, as
 * a NIC does. The same loop written in C (bench/driver/native/, gcc -O2) runs on rings of the
 * same layout against the same device thread, called from Deno through FFI and timed the same
 * way (measure.ts). It prints ns/packet for both and the ratio at each batch size, and writes
 * the figures as a chart to bench/out/driver.svg and as JSON to bench/out/driver.json.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type LoadedNative, loadNative } from "./native.ts";
import { igbBench } from "./igb.ts";
import { virtioBench } from "./virtio.ts";
import { type BatchResult, measureBatch } from "./measure.ts";
import type { RingBench } from "./side.ts";
import { driverChart, type Series } from "./chart.ts";
import { LinuxKernel } from "../../linux.ts";

const OUT = new URL("../out/", import.meta.url);
/** The bench's rings: ixy's sizes (512 descriptors), 60-byte frames, a pool per side. */
const SHAPE = { ringSize: 512, poolSize: 4096, frameLength: 60 };
const KINDS: { name: string; make: typeof igbBench }[] = [
  { name: "igb (82576 advanced descriptors)", make: igbBench },
  { name: "virtio-net (split virtqueues)", make: virtioBench },
];

/** The machine the figures come from. */
function machine(kernel: LinuxKernel): { cpu: string; cpus: number; load: string } {
  const info = kernel.readFile("/proc/cpuinfo");
  const cpu = typeof info === "string"
    ? /^model name\s*:\s*(.*)$/m.exec(info)?.[1].trim() ?? "unknown CPU"
    : "unknown CPU";
  const load = kernel.readFile("/proc/loadavg");
  return {
    cpu,
    cpus: navigator.hardwareConcurrency,
    load: typeof load === "string" ? load.split(" ").slice(0, 3).join(" ") : "?",
  };
}

function fmt(n: number, digits = 1): string {
  return Number.isFinite(n) ? n.toFixed(digits) : "—";
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      windows: { type: "string", default: "300" },
      "window-ms": { type: "string", default: "1" },
      batches: { type: "string", default: "1,8,32,256" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(
      "usage: deno task bench:driver [--windows N] [--window-ms MS] [--batches 1,8,32,256]",
    );
    return 0;
  }
  const windows = Number(values.windows);
  const windowMs = Number(values["window-ms"]);
  const batches = values.batches.split(",").map(Number);
  if (
    !(Number.isInteger(windows) && windows > 0) || !(windowMs > 0) ||
    !batches.every((b) => Number.isInteger(b) && b >= 1 && b <= SHAPE.ringSize / 2)
  ) {
    console.error(
      `driver bench: --windows must be a positive integer, --window-ms positive, --batches ` +
        `integers from 1 to ${SHAPE.ringSize / 2}`,
    );
    return 2;
  }
  const native: LoadedNative | string = await loadNative();
  if (typeof native === "string") {
    console.log(`driver bench: skipped: ${native}`);
    return 0;
  }
  const clock = (): number => native.lib.bench_thread_cpu_ns();
  const kernel = LinuxKernel.open();
  const m = machine(kernel);
  console.log(
    `driver bench: ixy's forwarder loop, 2 ports, ${SHAPE.ringSize}-entry rings, ` +
      `${SHAPE.frameLength}-byte frames, a C device thread completing descriptors concurrently`,
  );
  console.log(
    `  Deno ${Deno.version.deno} (V8 ${Deno.version.v8}) against C (${native.gcc}, -O2) on ` +
      `${m.cpu}, ${m.cpus} CPUs, load average ${m.load}`,
  );
  console.log(
    `  ns per forwarded packet: driver-thread CPU time, median of the ${windows} ${windowMs}-ms ` +
      `windows per side in which the device never kept the driver waiting (see measure.ts)`,
  );
  const results: { kind: string; rows: BatchResult[] }[] = [];
  for (const kind of KINDS) {
    const bench: RingBench = kind.make(native.lib, SHAPE);
    const rows: BatchResult[] = [];
    try {
      console.log(
        `\n  ${kind.name}\n  batch   Deno ns/pkt   C ns/pkt   Deno/C   Deno Mpps   C Mpps   ` +
          `clean windows`,
      );
      for (const batch of batches) {
        const r = measureBatch(bench, batch, { windows, windowMs }, clock);
        rows.push(r);
        console.log(
          `  ${String(batch).padStart(5)}   ${fmt(r.deno.clean).padStart(11)}   ` +
            `${fmt(r.c.clean).padStart(8)}   ${fmt(r.deno.clean / r.c.clean, 2).padStart(6)}   ` +
            `${fmt(1000 / r.deno.clean, 2).padStart(9)}   ${
              fmt(1000 / r.c.clean, 2).padStart(6)
            }   ` +
            `${r.deno.cleanWindows}/${r.c.cleanWindows}`,
        );
      }
    } finally {
      bench.close();
    }
    results.push({ kind: kind.name, rows });
  }
  await Deno.mkdir(OUT, { recursive: true });
  const series: Series[] = results.flatMap((r, i) =>
    (["deno", "c"] as const).map((side) => ({
      label: `${side === "deno" ? "Deno" : "C"} ${r.kind.split(" ")[0]}`,
      color: side === "deno" ? "#1b9e77" : "#555555",
      dashed: i > 0,
      points: r.rows.map((row): [number, number] => [row.batch, 1000 / row[side].clean]),
    }))
  );
  const svg = driverChart(
    "Forwarding rate on one core, Deno driver vs C, by batch size",
    `${m.cpu}, ${m.cpus} CPUs (shared machine); Deno ${Deno.version.deno}, ${native.gcc} -O2`,
    series,
  );
  await Deno.writeTextFile(new URL("driver.svg", OUT), svg);
  await Deno.writeTextFile(
    new URL("driver.json", OUT),
    JSON.stringify({ machine: m, deno: Deno.version, gcc: native.gcc, shape: SHAPE, results }),
  );
  console.log(`\n  chart: bench/out/driver.svg, figures: bench/out/driver.json`);
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main());
  } catch (e) {
    console.error(`driver bench: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
