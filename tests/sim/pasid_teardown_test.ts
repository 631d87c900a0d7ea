/**
 * Teardown as seed 003 describes it (issue 15, item 2; the allocator proposal, not Linux ABI), on
 * VT-d scalable mode, SMMUv3 and virtio-iommu: when the owner closes /dev/ioasid (or frees) while
 * DMA tagged with the PASID is in flight, every device entry goes not present with fault reporting
 * suppressed (the in-flight DMA is dropped without a fault record and never lands), the driver is
 * told to stop through a notice that never waits for it, the teardown waits for the outstanding
 * request to complete, and only then does the quarantine start: DMA tagged with the PASID then
 * faults visibly (VT-d 0x59, SMMUv3 C_BAD_CD, virtio-iommu DOMAIN) and still never lands, and the
 * number is not handed out again until the quarantine is over. A dead or failing driver cannot hold
 * the teardown; a drain that outlives the PCIe completion timeout gives up.
 */
import assert from "node:assert/strict";
import { PasidSpace } from "../../core/pasid.ts";
import { VfioError } from "../../core/errors.ts";
import { EFD_NONBLOCK } from "../../ffi/kernel.ts";
import { ERRNO } from "../../ffi/errno.ts";
import { ioctlNumber } from "../../ffi/uapi/common.ts";
import { encode } from "../../ffi/uapi/layout.ts";
import { IOASID_PROPOSAL_WATCH, ioasid_proposal_watch } from "../../ffi/uapi/proposals.ts";
import { openPasidSession } from "../helpers/pasid_session.ts";
import { IOMMU_HWPT_ALLOC_PASID } from "../../ffi/uapi/post_6_12.ts";
import { SMMU_EVT } from "../../sim/iommu/smmuv3/smmuv3_event.ts";
import { VIRTIO_IOMMU_FAULT_R } from "../../sim/iommu/virtio_iommu/virtio_iommu_wire.ts";
import { VTD_FR } from "../../sim/iommu/vtd/vtd_fault.ts";
import type { PasidDmaDevice } from "../../sim/pci/pasid_dma.ts";
import {
  closeRig,
  PASID_BDF,
  PASID_IOMMUS,
  PASID_REQUESTER,
  type PasidIommu,
  type PasidRig,
  pasidRig,
  RIG_QUARANTINE_NS,
  settle,
} from "../helpers/pasid_rig.ts";

const IOVA = 0x40_0000n;
/** The fill in flight when the owner goes: 262 µs at the engine's 0.25 ns per byte. */
const BIG = 1 << 20;
/** The fill queued behind it (4 µs). */
const QUEUED = 16 << 10;

/** The reason each IOMMU reports for DMA tagged with a torn-down (quarantined) PASID. */
const QUARANTINE_REASON: Record<PasidIommu, number> = {
  vtd: VTD_FR.SM_PASID_ENTRY_P,
  smmuv3: SMMU_EVT.C_BAD_CD,
  "virtio-iommu": VIRTIO_IOMMU_FAULT_R.DOMAIN,
};

/** An IOAS with `bytes` at {@link IOVA} and a HWPT on it that PASIDs can take. */
function bigSpace(r: PasidRig, bytes: number): { ioas: number; hwpt: number; bytes: Uint8Array } {
  const k = r.machine.kernel;
  const m = k.mmapAnonymous(bytes);
  if (typeof m === "number") throw new Error(`mmap: ${m}`);
  r.buffers.push(m);
  const ioas = r.fd.ioasAlloc();
  r.fd.ioasMap(ioas, m.address, BigInt(bytes), { read: true, write: true }, IOVA);
  const hwpt = r.fd.hwptAlloc({ devId: r.device.devId, ptId: ioas, flags: IOMMU_HWPT_ALLOC_PASID });
  return { ioas, hwpt, bytes: m.bytes };
}

for (const kind of PASID_IOMMUS) {
  Deno.test(`pasid teardown on ${kind}: silence, stop, drain, then quarantine and reuse`, async () => {
    const r = pasidRig(kind);
    const k = r.machine.kernel;
    const pasids = r.machine.pasids!;
    const s = bigSpace(r, BIG + QUEUED);
    const owner = PasidSpace.open(k);
    const p = owner.allocate({ device: r.dev }).value;
    r.driver.usePasid(owner, p, s.hwpt);
    assert.equal((await r.driver.fill(IOVA, 64, 0x5a, p)).status, "ok", "the PASID works");

    const faults = r.machine.faults().length;
    const inflight = r.driver.fill(IOVA, BIG, 0x77, p);
    const queued = r.driver.fill(IOVA + BigInt(BIG), QUEUED, 0x66, p);
    await settle(r.machine);
    const t0 = r.machine.clock.nowNs;
    const device = r.machine.fn(PASID_BDF).model as PasidDmaDevice;
    const [big] = device.pasidRequestsInFlight(p);
    assert.ok(big !== undefined && big.length === BIG, "the big fill is in flight");
    let done = Infinity; // when it completes, to 100 ns
    const watch = (): void => {
      if (device.pasidRequestsInFlight(p).includes(big)) r.machine.clock.schedule(100, watch);
      else done = r.machine.clock.nowNs;
    };
    watch();
    owner.close();

    // 1. Silenced at once; 2. the stop notice went out (the driver took it during close).
    const steps = () => pasids.teardown.eventsOf(p).map((e) => [e.step, e.timeNs - t0]);
    assert.deepEqual(steps(), [["silenced", 0], ["stop", 0]]);
    assert.match(
      pasids.teardown.eventsOf(p)[0].detail,
      /its \/dev\/ioasid file was closed|FREE_PASID/,
    );
    assert.match(pasids.teardown.eventsOf(p)[0].detail, /1 entry not present/);
    assert.match(pasids.teardown.eventsOf(p)[1].detail, /stop sent to 1 driver/);
    assert.ok(r.driver.stoppedPasids.has(p), "the driver was told to stop");
    assert.equal(pasids.space.state(p), "draining");
    const probe = r.machine.iommu.translate(PASID_REQUESTER, p, IOVA, "write", 4);
    assert.ok(!probe.ok, "the entry is not present");
    assert.equal(r.machine.faults().length, faults, "… and its faults are not reported");
    await assert.rejects(r.driver.fill(IOVA, 64, 1, p), /PASID \d+ was stopped/);

    // 3. The drain waits for the outstanding request; 4. then the quarantine.
    const [a, b] = await Promise.all([inflight, queued]);
    const ev = pasids.teardown.eventsOf(p);
    assert.deepEqual(ev.map((e) => e.step), ["silenced", "stop", "drained", "quarantined"]);
    assert.match(ev[2].detail, /^1 outstanding request\(s\) completed/);
    assert.ok(ev[2].timeNs >= done, "the quarantine starts after the DMA in flight completed");
    assert.ok(ev[2].timeNs <= done + 1000, "… within one drain poll");
    assert.ok(ev[2].timeNs - t0 > 200_000, "the drain lasted (262 µs of transfer)");
    assert.equal(ev[3].timeNs, ev[2].timeNs);
    assert.equal(pasids.space.quarantineEndsNs(p), ev[3].timeNs + RIG_QUARANTINE_NS);
    assert.equal(a.status, "fault", "the transfer in flight failed");
    assert.ok(s.bytes.subarray(64, BIG).every((x) => x === 0), "… and nothing of it landed");
    assert.equal(b.status, "fault", "the queued one ran in quarantine and faulted");
    assert.ok(s.bytes.subarray(BIG).every((x) => x === 0), "… nothing of it landed either");
    const reported = r.machine.faults().slice(faults);
    assert.equal(reported.length, 1, "only the DMA after the drain is reported");
    assert.deepEqual(
      [reported[0].pasid, reported[0].address, reported[0].reason],
      [p, IOVA + BigInt(BIG), QUARANTINE_REASON[kind]],
    );

    // Not handed out during the quarantine; reused after it.
    const next = PasidSpace.open(k);
    assert.throws(
      () => next.allocate({ max: p }),
      (e: unknown) => e instanceof VfioError && e.errnoName === "ENOSPC",
    );
    await k.sleep(RIG_QUARANTINE_NS / 1e6);
    assert.equal(pasids.space.state(p), "free");
    const again = next.allocate({ device: r.dev });
    assert.equal(again.value, p, "the number is reused after the quarantine");
    r.driver.usePasid(next, again, s.hwpt);
    assert.equal((await r.driver.fill(IOVA, 64, 0x3c, again.value)).status, "ok");
    assert.ok(s.bytes.subarray(0, 64).every((x) => x === 0x3c));
    r.driver.close();
    next.close();
    closeRig(r, [s]);
  });
}

Deno.test("pasid teardown: a dead, slow or failing driver cannot hold it", () => {
  const r = pasidRig("vtd");
  const k = r.machine.kernel;
  const pasids = r.machine.pasids!;
  const s = bigSpace(r, 8192);
  const owner = PasidSpace.open(k);
  const p = owner.allocate({ device: r.dev });
  r.driver.usePasid(owner, p, s.hwpt);
  // A dead driver: an eventfd nobody reads. A slow one: a callback whose promise never settles.
  // A failing one: a callback that throws.
  const efd = k.eventfd(0, EFD_NONBLOCK);
  const l = ioasid_proposal_watch;
  const watch = ioctlNumber(k.ioctlArch, IOASID_PROPOSAL_WATCH);
  assert.equal(
    k.ioctl(owner.fd, watch, encode(l, { argsz: l.size, pasid: p.value, eventfd: efd })),
    0,
  );
  assert.equal(
    k.ioctl(owner.fd, watch, encode(l, { argsz: l.size, pasid: 99, eventfd: efd })),
    -ERRNO.EACCES,
    "nobody holds PASID 99",
  );
  assert.equal(
    k.ioctl(owner.fd, watch, encode(l, { argsz: l.size, pasid: p.value, eventfd: 99 })),
    -ERRNO.EBADF,
  );
  let calls = 0;
  pasids.teardown.watch(p.value, () => {
    calls++;
    return new Promise(() => {});
  });
  pasids.teardown.watch(p.value, () => {
    calls++;
    throw new Error("driver bug");
  });
  p.free();
  assert.equal(calls, 2, "each callback was called once, none was waited for");
  assert.deepEqual(
    pasids.teardown.eventsOf(p.value).map((e) => e.step),
    ["silenced", "stop", "drained", "quarantined"],
    "nothing in flight: the whole teardown happened at once",
  );
  assert.match(pasids.teardown.eventsOf(p.value)[1].detail, /stop sent to 4 drivers/);
  const count = new Uint8Array(8);
  assert.equal(k.read(efd, count), 8, "the dead driver's eventfd was signalled");
  assert.equal(count[0], 1);
  assert.equal(pasids.space.state(p.value), "quarantined");
  assert.equal(k.close(efd), 0);
  owner.close();
  closeRig(r, [s]);
});

Deno.test("pasid teardown: a drain longer than the timeout gives up; late DMA faults", async () => {
  const r = pasidRig("vtd", {
    proposal: { quarantineNs: RIG_QUARANTINE_NS, drainTimeoutNs: 50_000 },
  });
  const k = r.machine.kernel;
  const pasids = r.machine.pasids!;
  const s = bigSpace(r, BIG);
  const owner = PasidSpace.open(k);
  const p = owner.allocate({ device: r.dev }).value;
  r.driver.usePasid(owner, p, s.hwpt);
  const faults = r.machine.faults().length;
  const inflight = r.driver.fill(IOVA, BIG, 0x77, p);
  await settle(r.machine);
  const t0 = r.machine.clock.nowNs;
  owner.close();
  const result = await inflight;
  const ev = pasids.teardown.eventsOf(p);
  assert.equal(ev[2].step, "drained");
  assert.equal(ev[2].timeNs - t0, 50_000);
  assert.match(ev[2].detail, /drain timed out after 50000 ns with 1 request\(s\) outstanding/);
  assert.equal(result.status, "fault");
  assert.ok(s.bytes.every((x) => x === 0), "the late transfer never landed");
  const reported = r.machine.faults().slice(faults);
  assert.equal(reported.length, 1, "after the drain gave up the late DMA faults visibly");
  assert.equal(reported[0].reason, VTD_FR.SM_PASID_ENTRY_P);
  closeRig(r, [s]);
});

Deno.test("pasid teardown reaches every device bound to the PASID", () => {
  const second = "0000:00:05.0";
  const r = pasidRig("vtd", {
    devices: [{ model: "pasid-dma", bdf: PASID_BDF }, { model: "pasid-dma", bdf: second }],
  });
  const k = r.machine.kernel;
  const s = bigSpace(r, 8192);
  const owner = PasidSpace.open(k);
  const p = owner.allocate({ device: r.dev }).value;
  r.driver.usePasid(owner, p, s.hwpt);
  const other = openPasidSession(k, second);
  const otherRid = other.pasidReadyRid();
  const m = other.mem();
  const os = other.space(m);
  const binding = owner.bind(other.dev, p, os.hwpt);
  owner.close();
  const ev = r.machine.pasids!.teardown.eventsOf(p);
  assert.match(ev[0].detail, /2 entries not present.*00:04\.0.*00:05\.0/);
  assert.match(ev[1].detail, /stop sent to 2 drivers/);
  assert.ok(binding.stopped && r.driver.stoppedPasids.has(p));
  binding.unbind();
  other.dropPasidSetup(otherRid, [os]);
  assert.equal(k.munmap(m), 0);
  other.dev.close();
  closeRig(r, [s]);
});
