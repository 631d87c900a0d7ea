/**
 * A process-bound PASID (issue 15, items 2 and 4; the allocator proposal, not Linux ABI): a
 * simulated process shares its address space with a device through one PASID
 * (`iommu_sva_bind_device`); when it is killed its PASID goes through the same teardown as an
 * fd-bound one — entries silenced, the driver's stop callback called but never waited for (it may
 * never settle), the DMA in flight drained and dropped — and the exit itself returns at once. The
 * process's PASID must fit every device it binds (EOVERFLOW otherwise), and a narrow device never
 * gets a number it cannot carry (ENOSPC when none is left below its width).
 */
import assert from "node:assert/strict";
import { PasidSpace } from "../../core/pasid.ts";
import { VfioError } from "../../core/errors.ts";
import { ERRNO } from "../../ffi/errno.ts";
import { createMachine } from "../../sim/machine.ts";
import type { VtdIommu } from "../../sim/iommu/vtd/vtd.ts";
import { PasidDmaDevice } from "../../sim/pci/pasid_dma.ts";
import { closeRig, PASID_BDF, type PasidRig, pasidRig, settle } from "../helpers/pasid_rig.ts";

/** The process's virtual address of its shared buffer. */
const VA = 0x7f00_0000_0000n;
const BIG = 1 << 20;
const NARROW = "0000:00:05.0";

function rig(): PasidRig {
  return pasidRig("vtd", {
    devices: [
      { model: "pasid-dma", bdf: PASID_BDF },
      { model: new PasidDmaDevice({ pasidWidth: 4 }), bdf: NARROW },
    ],
  });
}

Deno.test("sva (proposal): a killed process's PASID is torn down without waiting for its driver", async () => {
  const r = rig();
  const vtd = r.machine.iommu as VtdIommu;
  const pasids = r.machine.pasids!;
  const dids = vtd.domainIds.length;
  const chunk = r.machine.memory.allocate(BIG + 4096)!;
  const proc = pasids.spawnProcess("worker");
  assert.equal(proc.map(VA, BigInt(chunk.base), BigInt(BIG + 4096)), 0);
  let stops = 0;
  const pasid = proc.bind(PASID_BDF, () => {
    stops++;
    return new Promise(() => {}); // a driver that never finishes stopping
  });
  assert.equal(pasid, 1, "the process's PASID, from the system-wide space");
  assert.equal(proc.bind(PASID_BDF), 1, "one PASID per process, whatever the device");
  assert.equal((await r.driver.fill(VA, 64, 0xab, pasid)).status, "ok");
  assert.ok(chunk.bytes.subarray(0, 64).every((b) => b === 0xab), "DMA into the process's memory");

  const faults = r.machine.faults().length;
  const inflight = r.driver.fill(VA + 4096n, BIG, 0xcd, pasid);
  await settle(r.machine);
  proc.exit("killed (SIGKILL, the OOM killer)");
  assert.equal(proc.alive, false, "the exit returned at once");
  assert.equal(stops, 1, "the driver was told, and not waited for");
  assert.equal(vtd.domainIds.length, dids, "the process's page tables are gone already");
  assert.equal(proc.bind(PASID_BDF), -ERRNO.ESRCH);
  const ev = pasids.teardown.eventsOf(pasid);
  assert.deepEqual(ev.map((e) => e.step), ["silenced", "stop"], "the drain is still running");
  assert.match(ev[0].detail, /^worker\[\d+\]: killed \(SIGKILL, the OOM killer\): 1 entry/);
  const result = await inflight;
  assert.equal(result.status, "fault");
  assert.ok(chunk.bytes.subarray(4096).every((b) => b === 0), "the DMA in flight never landed");
  assert.equal(r.machine.faults().length, faults, "and was not reported (FPD)");
  assert.deepEqual(
    pasids.teardown.eventsOf(pasid).map((e) => e.step),
    ["silenced", "stop", "drained", "quarantined"],
  );
  assert.equal(pasids.space.state(pasid), "quarantined");
  closeRig(r);
});

Deno.test("sva and widths (proposal): EOVERFLOW for a device that cannot carry the PASID", () => {
  const r = rig();
  const k = r.machine.kernel;
  const pasids = r.machine.pasids!;
  // Take PASIDs 1..16 so the next one needs 5 bits.
  const holder = PasidSpace.open(k);
  const held = Array.from({ length: 16 }, () => holder.allocate().value);
  assert.deepEqual([held[0], held[15]], [1, 16]);
  const wide = pasids.spawnProcess("wide");
  assert.equal(wide.bind(PASID_BDF), 17);
  assert.equal(wide.bind(NARROW), -ERRNO.EOVERFLOW, "PASID 17 does not fit 4 bits");
  const narrow = pasids.spawnProcess("narrow");
  assert.equal(narrow.bind(NARROW), -ERRNO.ENOSPC, "nothing left below 16 for a 4-bit device");
  holder.free(3);
  assert.equal(narrow.bind(NARROW), -ERRNO.ENOSPC, "PASID 3 is in quarantine");
  assert.throws(
    () => holder.allocate({ max: 15 }),
    (e: unknown) => e instanceof VfioError && e.errnoName === "ENOSPC",
    "/dev/ioasid obeys the same space",
  );
  wide.exit();
  narrow.exit();
  holder.close();
  closeRig(r);
});

Deno.test("sva (proposal): a device or IOMMU without PASIDs is EOPNOTSUPP", () => {
  const legacy = createMachine({
    iommu: "vtd",
    pasidAllocatorProposal: true,
    devices: [{ model: "pasid-dma", bdf: PASID_BDF }, { model: "edu", bdf: "0000:00:02.0" }],
  });
  const proc = legacy.pasids!.spawnProcess("p");
  assert.equal(proc.bind(PASID_BDF), -ERRNO.EOPNOTSUPP, "VT-d in legacy mode has no PASIDs");
  const sm = createMachine({
    iommu: "vtd",
    vtdScalableMode: true,
    pasidAllocatorProposal: true,
    devices: [{ model: "edu", bdf: "0000:00:02.0" }],
  });
  assert.equal(
    sm.pasids!.spawnProcess("q").bind("0000:00:02.0"),
    -ERRNO.EOPNOTSUPP,
    "the edu has no PCIe PASID capability",
  );
  assert.equal(sm.pasidSpace?.allocated, 0, "nothing was allocated for the failed binds");
});
