/**
 * examples/pasid_lifecycle.ts (issue 15, item 5): the walk on both machines prints every step
 * in order — allocate, DMA, the owner closes, teardown (silenced, stop, drained), quarantine with
 * DMA faulting and nothing landing, reuse — and on the virtio machine the unplug of virtio0; the
 * command line: --help (0), a usage error (2, one line), no stack trace anywhere.
 */
import assert from "node:assert/strict";
import { pasidLifecycle } from "../../examples/pasid_lifecycle.ts";

async function run(args: string[]): Promise<{ rc: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const rc = await pasidLifecycle(args, (l) => out.push(l), (l) => err.push(l));
  return { rc, out, err };
}

/** Index of the first line matching each pattern, in order (fails if one is missing). */
function inOrder(lines: string[], patterns: RegExp[]): void {
  let at = -1;
  for (const p of patterns) {
    const i = lines.findIndex((l, j) => j > at && p.test(l));
    assert.ok(i > at, `missing, or out of order: ${p}\n${lines.join("\n")}`);
    at = i;
  }
}

const WALK = [
  /allocate: PASID 1 from \/dev\/ioasid/,
  /bind: PASID 1 of 0000:00:04\.0/,
  /DMA tagged with PASID 1: fill 4096 bytes → ok, landed/,
  /owner closes \/dev\/ioasid/,
  /teardown silenced: .*1 entry not present, faults not reported/,
  /teardown stop: stop sent to 1 driver/,
  /driver: told to stop PASID 1: true/,
  /teardown drained: 1 outstanding request\(s\) completed/,
  /teardown quarantined/,
  /the fill in flight → fault \(WRITE_FAULT\); nothing landed, 0 fault reported/,
  /the fill queued behind it ran in quarantine → fault \(WRITE_FAULT\); nothing landed/,
  /IOMMU: /,
  /quarantine: PASID 1 not handed out \(ENOSPC\)/,
  /reuse: after the quarantine PASID 1 is handed out again; bound, DMA → ok, landed/,
];

Deno.test("example pasid_lifecycle: the walk on VT-d scalable mode", async () => {
  const { rc, out, err } = await run(["--machine", "vtd"]);
  assert.deepEqual(err, []);
  assert.equal(rc, 0);
  inOrder(out, [/== VT-d scalable mode/, ...WALK]);
  assert.ok(out.some((l) => /\[fault reason 0x59\]/.test(l)));
});

Deno.test("example pasid_lifecycle: the walk on two virtio-iommu instances, then an unplug", async () => {
  const { rc, out, err } = await run(["--machine", "virtio"]);
  assert.deepEqual(err, []);
  assert.equal(rc, 0);
  inOrder(out, [
    /== two virtio-iommu instances/,
    /through virtio0's ALLOC_PASID/,
    ...WALK.slice(1),
    /virtio0 unplugged/,
    /teardown silenced: the vIOMMU that allocated it was removed/,
    /driver: told to stop PASID 1: true/,
    /virtio1 keeps serving: PASID 2 allocated through it, DMA → ok/,
  ]);
  assert.ok(out.some((l) => /virtio_iommu virtio1: domain fault from EP 32/.test(l)));
});

Deno.test("example pasid_lifecycle: --help, usage errors", async () => {
  const help = await run(["--help"]);
  assert.equal(help.rc, 0);
  assert.match(help.out.join("\n"), /usage: deno run examples\/pasid_lifecycle\.ts/);
  for (const args of [["--machine", "spapr"], ["--bogus"], ["--machine"]]) {
    const r = await run(args);
    assert.equal(r.rc, 2, args.join(" "));
    assert.equal(r.err.length, 1, "one line");
    assert.match(
      r.err[0],
      /^pasid_lifecycle: --machine.* \(--help for usage\)$|^pasid_lifecycle: --bogus: unknown option/,
    );
    assert.deepEqual(r.out, []);
  }
});
