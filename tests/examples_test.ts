/**
 * The example programs as a user meets them, run as subprocesses: `--help` exits 0; a usage error
 * exits 2 and a runtime error (a missing Deno permission included) exits 1, each with exactly one
 * line on stderr naming the flag or what to add, never a stack trace; edu_dma runs on all four
 * simulated IOMMUs and reports the vendor's fault line; `--trace` shows maps and the fault.
 */
import assert from "node:assert/strict";
import { assertOneLine, exampleTest as test, runExample as run } from "./helpers/run_example.ts";

/** Each program, and the arguments that make it open the real kernel (through libc). */
const PROGRAMS: Readonly<Record<string, readonly string[]>> = {
  "edu_dma.ts": ["--device", "0000:00:02.0"],
  "user_viommu.ts": ["--device", "0000:00:02.0"],
  "user_vsmmu.ts": ["--device", "0000:00:02.0"],
  "inventory.ts": [],
  "bind.ts": ["0000:00:02.0"],
  "udp_echo.ts": ["--device", "0000:00:03.0"],
  "forward.ts": ["--device", "0000:00:04.0", "--device", "0000:00:05.0"],
};

for (const [program, real] of Object.entries(PROGRAMS)) {
  test(`examples ${program}: --help, a bad flag (exit 2), a missing permission (exit 1)`, async () => {
    const helped = await run(program, ["--help"]);
    assert.equal(helped.code, 0);
    assert.match(helped.stdout, /^usage: /m);
    assertOneLine(await run(program, ["--bogus"]), program, 2, /--bogus: unknown option/);
    // The real kernel is reached through libc: without --allow-ffi, one line says to add it.
    assertOneLine(await run(program, [...real]), program, 1, /run again with --allow-ffi$/);
  });
}

for (const program of ["pasid_lifecycle.ts", "custom_device.ts"]) {
  test(`examples ${program} (simulator only): --help, a bad flag (exit 2)`, async () => {
    const helped = await run(program, ["--help"]);
    assert.equal(helped.code, 0);
    assert.match(helped.stdout, /^usage: /m);
    assertOneLine(await run(program, ["--bogus"]), program, 2, /--bogus: unknown option/);
  });
}

test("examples: usage errors name the flag", async () => {
  assertOneLine(
    await run("edu_dma.ts", ["--iommu", "amd"]),
    "edu_dma.ts",
    2,
    /^edu_dma: --iommu amd: want vtd, smmuv3, virtio-iommu or spapr/,
  );
  assertOneLine(
    await run("edu_dma.ts", ["--vfio", "x"]),
    "edu_dma.ts",
    2,
    /--vfio x: want auto, type1 or iommufd/,
  );
  assertOneLine(await run("edu_dma.ts", ["--rounds"]), "edu_dma.ts", 2, /--rounds: needs a value/);
  assertOneLine(await run("bind.ts", ["--sim"]), "bind.ts", 2, /BDF missing/);
  assertOneLine(await run("inventory.ts", ["--iommu", "smmuv3"]), "inventory.ts", 2, /add --sim/);
  assertOneLine(
    await run("user_viommu.ts", ["--iommu", "smmuv3"]),
    "user_viommu.ts",
    2,
    /user_vsmmu/,
  );
  assertOneLine(
    await run("user_vsmmu.ts", ["--kernel", "6.12"]),
    "user_vsmmu.ts",
    2,
    /at least 6\.13/,
  );
  assertOneLine(
    await run("edu_dma.ts", ["--trace", "--device", "0000:00:02.0"]),
    "edu_dma.ts",
    2,
    /^edu_dma: --trace: /,
  );
  assertOneLine(
    await run("edu_dma.ts", ["--trace", "/tmp/no-write.trace"]),
    "edu_dma.ts",
    1,
    /run again with --allow-write$/,
  );
});

for (const iommu of ["vtd", "smmuv3", "virtio-iommu", "spapr"]) {
  test(`examples edu_dma.ts --iommu ${iommu}: round trips and the vendor's fault line`, async () => {
    const r = await run("edu_dma.ts", ["--iommu", iommu, "--rounds", "1", "--fault"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`on simulated ${iommu} via`));
    assert.match(r.stdout, /24 transfers, 21044 bytes, 24 interrupts, 0 mismatches/);
    const fault = {
      vtd: /DMAR: \[DMA Write NO_PASID\] Request device \[00:02\.0\] fault addr/,
      smmuv3: /arm-smmu-v3 9050000\.smmuv3: event 0x10 received/,
      "virtio-iommu": /virtio_iommu virtio0: page fault from EP 16/,
      spapr: /PHB#0-PE#2: DMA write at 0x[0-9a-f]+: invalid TCE; EEH: Frozen PHB#0-PE#2/,
    }[iommu]!;
    assert.match(r.stdout, fault);
  });
}

test("examples edu_dma.ts --trace: maps, unmaps and the fault as they happen", async () => {
  const r = await run("edu_dma.ts", ["--iommu", "smmuv3", "--rounds", "1", "--fault", "--trace"]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.split("\n");
  const at = (re: RegExp): number => lines.findIndex((l) => re.test(l));
  const map = at(/^\[\s+[\d.]+ ms\] iommu {2}smmuv3 map asid=1 iova=0x1000 size=0x2000/);
  const unmap = at(/\] iommu {2}smmuv3 unmap asid=1 /);
  const fault = at(/\] iommu {2}smmuv3 event arm-smmu-v3 9050000\.smmuv3: event 0x10 received/);
  assert.ok(map >= 0 && unmap > map && fault > unmap, r.stdout);
});
