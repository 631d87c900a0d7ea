/**
 * Long-running machines stay flat: many open → DMA → close sessions on one simulated machine
 * (the sPAPR TCE container, whose default window's table is 4 MiB of simulated memory per
 * session, and VT-d through iommufd and the cdev) leave physical memory exactly where it was —
 * used bytes and the top of the used physical space back to their baseline after every session,
 * so freed ranges are reused — and the process's heap and RSS do not grow with the count.
 *
 * The default run is short (DENO_VFIO_CYCLES, default 300 sessions per model); the 10,000-cycle
 * run is `DENO_VFIO_CYCLES=10000 deno test --allow-env --v8-flags=--expose-gc
 * tests/sim/memory_cycles_test.ts`. The heap is compared after a full garbage collection (the
 * `gc` that `--v8-flags=--expose-gc` exposes, as `deno task test` passes it); without it the
 * tests are reported as ignored.
 *
 * @module
 */

import assert from "node:assert/strict";
import { openPciDevice } from "../../core/pci_device.ts";
import { EduDriver } from "../../drivers/edu/edu.ts";
import { createMachine, type MachineOptions } from "../../sim/machine.ts";
import { DEFAULT_TRACE_CAPACITY } from "../../sim/trace.ts";

const BDF = "0000:00:02.0";
const DEFAULT_CYCLES = 300;
/** The heap (after a full GC) may move this much between the first tenth of the run and its end. */
const HEAP_SLACK = 8 * 1024 ** 2;
/** RSS may move this much (the allocator keeps freed pages; a leak of tables costs far more). */
const RSS_SLACK = 96 * 1024 ** 2;
/** V8's collector, when the test runs with `--v8-flags=--expose-gc`. */
const gc = (globalThis as { gc?: () => void }).gc;

/** Heap (after a full collection) and RSS now. */
function footprint(): { heap: number; rss: number } {
  gc?.();
  const m = Deno.memoryUsage();
  return { heap: m.heapUsed, rss: m.rss };
}

function cycles(): number {
  const text = Deno.env.get("DENO_VFIO_CYCLES");
  if (text === undefined) return DEFAULT_CYCLES;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 10) {
    throw new Error(`DENO_VFIO_CYCLES=${text}: want a whole number of sessions, at least 10`);
  }
  return n;
}

const MACHINES: readonly { name: string; options: MachineOptions }[] = [
  { name: "spapr", options: { iommu: "spapr", strict: true } },
  {
    name: "vtd (iommufd + cdev)",
    options: { iommu: "vtd", iommufd: true, cdev: true, strict: true },
  },
];

const MiB = (n: number): string => `${(n / 1024 ** 2).toFixed(1)} MiB`;

for (const { name, options } of MACHINES) {
  Deno.test({
    name: `memory: open/DMA/close sessions on one ${name} machine leave memory flat`,
    ignore: gc === undefined, // the heap is only comparable after a full collection
    permissions: { env: ["DENO_VFIO_CYCLES"] },
    async fn() {
      const n = cycles();
      const machine = createMachine(options);
      const baseline = { used: machine.memory.usedBytes, top: machine.memory.topAddress };
      let early = footprint();
      const started = performance.now();
      for (let i = 0; i < n; i++) {
        const dev = openPciDevice(BDF, { kernel: machine.kernel });
        const edu = EduDriver.open(dev, { interrupts: "poll" });
        const buf = dev.dma.allocate(4096);
        buf.bytes[0] = i & 0xff;
        await edu.dmaToDevice(buf, 0, 0, 64);
        await edu.dmaFromDevice(buf, 2048, 0, 64);
        assert.equal(buf.bytes[2048], i & 0xff, `session ${i}: DMA round trip`);
        edu.close();
        dev.close();
        assert.equal(machine.memory.usedBytes, baseline.used, `session ${i}: used bytes`);
        assert.equal(
          machine.memory.topAddress,
          baseline.top,
          `session ${i}: physical ranges reused`,
        );
        if (i === Math.floor(n / 10)) early = footprint();
      }
      const end = footprint();
      const seconds = (performance.now() - started) / 1000;
      console.log(
        `memory ${name}: ${n} sessions in ${seconds.toFixed(1)} s; heap after GC ` +
          `${MiB(early.heap)} → ${MiB(end.heap)}, RSS ${MiB(early.rss)} → ${MiB(end.rss)}, trace ` +
          `${machine.trace.length} lines, physical used ${machine.memory.usedBytes} B (baseline)`,
      );
      assert.ok(machine.trace.length <= DEFAULT_TRACE_CAPACITY, "the trace is a bounded ring");
      assert.ok(end.rss - early.rss < RSS_SLACK, `RSS grew ${MiB(end.rss - early.rss)}`);
      assert.ok(
        end.heap - early.heap < HEAP_SLACK,
        `heap grew ${MiB(end.heap - early.heap)} over ${n} sessions`,
      );
    },
  });
}
