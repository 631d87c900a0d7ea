/**
 * The machine's trace ring: bounded (a long run keeps the newest lines only), every line seen by
 * subscribers as it happens, each tagged with its source, and `machine.trace` still the text.
 */
import assert from "node:assert/strict";
import { createMachine } from "../../sim/mod.ts";
import { TraceRing } from "../../sim/trace.ts";
import { openPciDevice } from "../../mod.ts";

Deno.test("trace ring: keeps the newest lines, counts the dropped, subscribers see every one", () => {
  let now = 0;
  const ring = new TraceRing(() => now, 3);
  const seen: string[] = [];
  const stop = ring.subscribe((e) => seen.push(`${e.seq}:${e.source}:${e.line}`));
  for (const line of ["a", "b", "c", "d", "e"]) {
    now += 10;
    ring.write("iommu", line);
  }
  stop();
  ring.write("vfio", "f");
  assert.deepEqual(ring.lines(), ["d", "e", "f"]);
  assert.deepEqual(ring.events().map((e) => [e.seq, e.nowNs]), [[3, 40], [4, 50], [5, 50]]);
  assert.equal(ring.dropped, 3);
  assert.deepEqual(seen, ["0:iommu:a", "1:iommu:b", "2:iommu:c", "3:iommu:d", "4:iommu:e"]);
  assert.throws(() => new TraceRing(() => 0, 0), /positive integer/);
});

Deno.test("machine trace: bounded over many open/close cycles, IOMMU events tagged", () => {
  const machine = createMachine({ iommu: "vtd", traceCapacity: 64 });
  const sources = new Set<string>();
  const maps: string[] = [];
  machine.tracer.subscribe((e) => {
    sources.add(e.source);
    if (e.source === "iommu" && e.line.startsWith("vtd map")) maps.push(e.line);
  });
  for (let i = 0; i < 50; i++) {
    using dev = openPciDevice("0000:00:02.0", { kernel: machine.kernel, iommu: "auto" });
    dev.dma.free(dev.dma.allocate(4096));
  }
  assert.equal(machine.trace.length, 64);
  assert.ok(machine.tracer.written > 350, `${machine.tracer.written} lines written`);
  assert.equal(maps.length, 50);
  assert.deepEqual([...sources].sort(), ["iommu", "vfio"]);
  assert.equal(machine.trace.at(-1), "vfio-pci 0000:00:02.0: disabled");
});
