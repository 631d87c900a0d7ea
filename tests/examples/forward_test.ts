/**
 * examples/forward.ts on the simulator, run as a user runs it: frames cross both ways between two
 * simulated NICs on two wires, every generated frame is counted by the other wire's sink (less
 * the ones still in flight), and bad command lines exit 2 with one line naming the flag
 * (--help, the missing permission and the shared flags are checked in tests/examples_test.ts).
 */

import assert from "node:assert/strict";
import { assertOneLine, exampleTest, runExample } from "../helpers/run_example.ts";

for (const nic of ["igb", "virtio-net"]) {
  exampleTest(`forward: ${nic} on the simulator forwards both ways without loss`, async () => {
    const r = await runExample("forward.ts", [
      "--nic",
      nic,
      "--duration",
      "1",
      "--batch",
      "8",
      "--window",
      "24",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const summary = /0->1 forwarded (\d+) .* dropped (\d+); 1->0 forwarded (\d+) .* dropped (\d+);/
      .exec(r.stdout);
    assert.ok(summary, r.stdout);
    const [ab, dropAb, ba, dropBa] = summary.slice(1).map(Number);
    assert.ok(ab > 0 && ba > 0, r.stdout);
    assert.equal(dropAb + dropBa, 0);
    const wires = /generators sent (\d+)\/(\d+), sinks counted (\d+)\/(\d+), lost on the way 0\/0/
      .exec(r.stdout);
    assert.ok(wires, r.stdout);
    const [sent0, sent1, got0, got1] = wires.slice(1).map(Number);
    assert.equal(got0, ab, "the sink behind port 1 counted every frame forwarded 0->1");
    assert.equal(got1, ba);
    assert.ok(sent0 - got0 <= 24 && sent1 - got1 <= 24, "at most a window in flight");
  });
}

exampleTest("forward: a bad command line exits 2 with one line naming the flag", async () => {
  const cases: [string[], RegExp][] = [
    [["--batch", "0"], /^forward: --batch 0: want an integer from 1 to 256/],
    [["--frobnicate"], /^forward: --frobnicate: unknown option/],
    [["--device", "0000:00:04.0"], /^forward: --device: given once; give it twice/],
    [["--device", "a", "--device", "b", "--device", "c"], /^forward: --device: given 3 times/],
    [["--device", "a", "--device", "b", "--window", "8"], /^forward: --window: drives the sim/],
    [["--nic", "e1000"], /^forward: --nic e1000: want igb, e1000e or virtio-net/],
    [["--duration", "0"], /^forward: --duration 0: want a number of seconds above 0/],
  ];
  for (const [args, pattern] of cases) {
    assertOneLine(await runExample("forward.ts", args), "forward.ts", 2, pattern);
  }
});
