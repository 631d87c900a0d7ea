/**
 * examples/forward.ts on the simulator, run as a user runs it: frames cross both ways between two
 * simulated NICs on two wires, every generated frame is counted by the other wire's sink (less
 * the ones still in flight), and bad command lines exit 2 with one line.
 */

import assert from "node:assert/strict";

const FORWARD = new URL("../../examples/forward.ts", import.meta.url).pathname;

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", FORWARD, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const d = new TextDecoder();
  return { code: r.code, out: d.decode(r.stdout), err: d.decode(r.stderr) };
}

for (const nic of ["igb", "virtio-net"]) {
  Deno.test(`forward: ${nic} on the simulator forwards both ways without loss`, async () => {
    const r = await run(["--nic", nic, "--duration", "1", "--batch", "8", "--window", "24"]);
    assert.equal(r.code, 0, r.err);
    const summary = /0->1 forwarded (\d+) .* dropped (\d+); 1->0 forwarded (\d+) .* dropped (\d+);/
      .exec(r.out);
    assert.ok(summary, r.out);
    const [ab, dropAb, ba, dropBa] = summary.slice(1).map(Number);
    assert.ok(ab > 0 && ba > 0, r.out);
    assert.equal(dropAb + dropBa, 0);
    const wires = /generators sent (\d+)\/(\d+), sinks counted (\d+)\/(\d+), lost on the way 0\/0/
      .exec(r.out);
    assert.ok(wires, r.out);
    const [sent0, sent1, got0, got1] = wires.slice(1).map(Number);
    assert.equal(got0, ab, "the sink behind port 1 counted every frame forwarded 0->1");
    assert.equal(got1, ba);
    assert.ok(sent0 - got0 <= 24 && sent1 - got1 <= 24, "at most a window in flight");
  });
}

Deno.test("forward: a bad command line exits 2 with one line, --help exits 0", async () => {
  for (const args of [["--batch", "0"], ["--frobnicate"], ["--device", "0000:00:04.0"]]) {
    const r = await run(args);
    assert.equal(r.code, 2, args.join(" "));
    assert.equal(r.err.trim().split("\n").length, 1, r.err);
    assert.match(r.err, /^forward: .*\(see --help\)\n$/);
  }
  const help = await run(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.out, /--batch N/);
});

Deno.test("forward: real devices without --allow-ffi fail with one line, exit 1", async () => {
  const r = await run(["--device", "0000:00:04.0", "--device", "0000:00:05.0"]);
  assert.equal(r.code, 1);
  assert.match(r.err, /^forward: Requires ffi access.*--allow-ffi/);
  assert.equal(r.err.trim().split("\n").length, 1, r.err);
});
