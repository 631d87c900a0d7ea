/**
 * examples/udp_echo.ts as a user runs it (--help, the missing --allow-ffi and the shared flags
 * are checked in tests/examples_test.ts): its own usage errors exit 2 naming the flag; a missing
 * --allow-net (--bridge) or --allow-write (--pcap) exits 1 with one line; `--fault --trace` shows
 * the IOMMU's fault line as it happens; a datagram over the path MTU sent through `--bridge` is
 * refused and counted (tooBig) while the next one is echoed, and the report names the wire's
 * drops; `--pcap` on the simulator writes the wire's frames.
 */

import assert from "node:assert/strict";
import dgram from "node:dgram";
import { assertOneLine, exampleCommand, exampleTest, runExample } from "../helpers/run_example.ts";

const PROGRAM = "udp_echo.ts";

exampleTest("udp_echo: a bad command line exits 2 with one line naming the flag", async () => {
  const cases: [string[], RegExp][] = [
    [["--nic", "e1000"], /^udp_echo: --nic e1000: want virtio-net, e1000e or igb/],
    [["--device", "0000:00:03.0", "--nic", "igb"], /^udp_echo: --nic: drives the simulator/],
    [["--device", "0000:00:03.0", "--fault"], /^udp_echo: --fault: drives the simulator/],
    [["--ip", "10.0.2/24"], /^udp_echo: --ip 10\.0\.2\/24: /],
    [["--gateway", "10.0.2.256"], /^udp_echo: --gateway 10\.0\.2\.256: /],
    [["--bridge", "9000"], /^udp_echo: --bridge 9000: want HOST:PORT/],
    [["--fault", "--bridge", "127.0.0.1:0"], /^udp_echo: --fault: runs after the built-in/],
    [["--queues", "0"], /^udp_echo: --queues 0: want an integer from 1 to 64/],
    [["--count", "many"], /^udp_echo: --count many: want an integer/],
    [["--pcap"], /^udp_echo: --pcap: needs a value/],
  ];
  for (const [args, pattern] of cases) {
    assertOneLine(await runExample(PROGRAM, args), PROGRAM, 2, pattern);
  }
});

exampleTest("udp_echo: a missing --allow-net or --allow-write is one line, exit 1", async () => {
  assertOneLine(
    await runExample(PROGRAM, ["--bridge", "127.0.0.1:9000"]),
    PROGRAM,
    1,
    /^udp_echo: Requires net access to "127\.0\.0\.1:9000": run again with --allow-net$/,
  );
  assertOneLine(
    await runExample(PROGRAM, ["--pcap", "/tmp/udp_echo_no_write.pcap"]),
    PROGRAM,
    1,
    /run again with --allow-write$/,
  );
});

for (
  const [iommu, fault] of [
    ["vtd", /\] iommu {2}vtd fault DMAR: \[DMA Write NO_PASID\] Request device \[00:03\.0\]/],
    [
      "spapr",
      /\] iommu {2}spapr: PHB#0-PE#\d+: DMA write at 0x[0-9a-f]+: invalid TCE; EEH: Frozen/,
    ],
  ] as const
) {
  exampleTest(`udp_echo --fault --trace on ${iommu}: the fault line as it happens`, async () => {
    const r = await runExample(PROGRAM, ["--iommu", iommu, "--count", "20", "--fault", "--trace"]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split("\n");
    const at = (re: RegExp): number => lines.findIndex((l) => re.test(l));
    // VT-d's map lines come from the IOMMU model, sPAPR's from the TCE container (vfio).
    const map = at(/^\[\s+[\d.]+ ms\] (iommu|vfio) {2,3}\S+ map /);
    const client = at(/^udp_echo: client sent 20, echoed 20, pings answered 1/);
    const traced = at(fault);
    const told = at(/^udp_echo: DMA fault injected on the NIC's next write → \S/);
    assert.ok(map >= 0 && client > map && traced > client && told > traced, r.stdout);
    assert.match(lines.find((l) => l.includes("faults 1")) ?? "", /; wire dropped 0; faults 1$/);
  });
}

/** The lines of a child's stdout, as they come. */
async function* linesOf(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let rest = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    const parts = (rest + chunk).split("\n");
    rest = parts.pop()!;
    yield* parts;
  }
  if (rest !== "") yield rest;
}

exampleTest("udp_echo --bridge: a datagram over the path MTU is refused and counted", async () => {
  const child = exampleCommand(PROGRAM, [
    "--bridge",
    "127.0.0.1:0",
    "--echoes",
    "1",
    "--duration",
    "30",
  ], ["--allow-net=127.0.0.1"]).spawn();
  const socket = dgram.createSocket("udp4");
  // Bound to loopback first: an unbound socket would bind 0.0.0.0, which the tests may not.
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  const echoes: number[] = [];
  socket.on("message", (m: Uint8Array) => echoes.push(m.length));
  const out: string[] = [];
  try {
    for await (const line of linesOf(child.stdout)) {
      out.push(line);
      const ready = /host clients: ([\d.]+):(\d+)$/.exec(line);
      if (ready) {
        const port = Number(ready[2]);
        socket.send(new Uint8Array(3000), port, ready[1]); // 3,028 bytes of IPv4: over 1500
        socket.send(new Uint8Array(1473), port, ready[1]); // 1,501: one byte over
        socket.send(new Uint8Array(1472), port, ready[1]); // 1,500: fits
      }
    }
  } finally {
    socket.close();
  }
  const status = await child.status;
  assert.equal(status.code, 0, out.join("\n"));
  const last = out.findLast((l) => l.includes("bridge in")) ?? "";
  assert.match(last, /; drops none; bridge in 1 out 1 tooBig 2; wire dropped 0; faults 0$/);
  assert.deepEqual(echoes, [1472]);
});

exampleTest("udp_echo --pcap on the simulator: the wire's frames in a pcap file", async () => {
  const file = await Deno.makeTempFile({ suffix: ".pcap" });
  try {
    const r = await runExample(PROGRAM, ["--count", "10", "--pcap", file], [
      `--allow-write=${file}`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    // ARP request and reply, ping and reply, ten datagrams and their echoes.
    assert.match(r.stdout, new RegExp(`captured 24 frames to ${file} \\(the simulated wire\\)`));
    const bytes = await Deno.readFile(file);
    const v = new DataView(bytes.buffer);
    assert.equal(v.getUint32(0, true), 0xa1b2c3d4);
    let records = 0;
    for (let at = 24; at < bytes.length; records++) at += 16 + v.getUint32(at + 8, true);
    assert.equal(records, 24);
  } finally {
    await Deno.remove(file);
  }
});
