/**
 * core/pasid.ts, the client of the proposed PASID allocator (issue 15, item 5; not Linux ABI), on
 * the simulator: open (and the hint when /dev/ioasid is absent), allocate with `using`, free, bind
 * a device PASID to a HWPT, the stop notice delivered once to the handler (never awaited, its
 * errors kept out), close delivering the notices it causes, no fd left behind; and the PASID DMA
 * driver using it.
 */
import assert from "node:assert/strict";
import { VfioError } from "../../core/errors.ts";
import { openPciDevice } from "../../core/pci_device.ts";
import { PasidSpace } from "../../core/pasid.ts";
import { createMachine } from "../../sim/machine.ts";
import { closeRig, PASID_BDF, pasidRig } from "../helpers/pasid_rig.ts";
import { PASID_SPACE_IOVA } from "../helpers/pasid_session.ts";

const errno = (name: string) => (e: unknown) => e instanceof VfioError && e.errnoName === name;

Deno.test("PasidSpace: open without the proposal names the machine option", () => {
  const { kernel } = createMachine({ iommu: "vtd" });
  assert.throws(
    () => PasidSpace.open(kernel),
    (e: unknown) =>
      e instanceof VfioError && e.errnoName === "ENOENT" &&
      /pasidAllocatorProposal: true/.test(e.hint ?? ""),
  );
});

Deno.test("PasidSpace: allocate with using, free, and errors", () => {
  const r = pasidRig("vtd");
  const k = r.machine.kernel;
  const fds = k.process.openFds().length;
  const space = PasidSpace.open(k);
  {
    using p = space.allocate({ device: r.dev });
    assert.equal(p.value, 1);
    assert.equal(r.machine.pasidSpace?.state(1), "allocated");
  }
  assert.equal(r.machine.pasidSpace?.state(1), "quarantined", "disposed: freed, torn down");
  const q = space.allocate({ min: 5, max: 5 });
  assert.equal(q.value, 5);
  q.free();
  q.free();
  assert.equal(q.freed, true);
  assert.throws(() => space.free(5), errno("ENOENT"), "not held any more");
  assert.throws(() => space.allocate({ min: 6, max: 5 }), errno("EINVAL"));
  assert.throws(() => space.allocate({ min: 1, max: 1 }), errno("ENOSPC"), "1 is quarantined");
  space.close();
  space.close();
  assert.throws(() => space.allocate(), errno("EBADF"));
  assert.equal(k.process.openFds().length, fds, "no fd left behind");
  closeRig(r, []);
});

Deno.test("PasidSpace: bind, the stop notice once per binding, never awaited", async () => {
  const r = pasidRig("smmuv3");
  const k = r.machine.kernel;
  const fds = k.process.openFds().length;
  const m = r.mem();
  const s = r.space(m);
  const space = PasidSpace.open(k);
  const p = space.allocate({ device: r.dev });
  const stops: number[] = [];
  const binding = space.bind(r.dev, p, s.hwpt, (pasid) => {
    stops.push(pasid);
    throw new Error("a handler's failure stays its own");
  });
  assert.equal(binding.hwptId, s.hwpt);
  assert.equal((await r.driver.fill(PASID_SPACE_IOVA, 32, 0x61, p.value)).status, "ok");
  assert.ok(m.bytes.subarray(0, 32).every((b) => b === 0x61));
  assert.equal(space.pollStops(), 0, "nothing to tell yet");
  p.free();
  assert.deepEqual(stops, [], "the notice waits for the next poll: the kernel never calls in");
  assert.equal(space.pollStops(), 1);
  assert.deepEqual(stops, [p.value]);
  assert.equal(space.pollStops(), 0, "once");
  assert.equal(binding.stopped, true);
  binding.unbind(); // the kernel already dropped the attachment; this detaches nothing
  binding.unbind();
  // A binding to a PASID the process does not own: EACCES, and nothing left open.
  assert.throws(() => space.bind(r.dev, 9, s.hwpt), errno("EACCES"));
  space.close();
  assert.equal(k.process.openFds().length, fds, "eventfds and the allocator closed");
  closeRig(r, [s]);
});

Deno.test("PasidSpace: close tears down what it holds and delivers the notices", () => {
  const r = pasidRig("virtio-iommu");
  const k = r.machine.kernel;
  const m = r.mem();
  const s = r.space(m);
  const space = PasidSpace.open(k);
  const a = space.allocate({ device: r.dev });
  const b = space.allocate({ device: r.dev });
  const told: number[] = [];
  space.bind(r.dev, a, s.hwpt, (p) => told.push(p));
  space.bind(r.dev, b, s.hwpt, (p) => told.push(p));
  space.close();
  assert.deepEqual(told.sort(), [a.value, b.value]);
  assert.equal(a.freed && b.freed, true);
  assert.equal(r.machine.pasidSpace?.allocated, 0);
  closeRig(r, [s]);
});

Deno.test("PasidSpace: a device not open through iommufd is refused with the fix", () => {
  const r = pasidRig("vtd");
  const k = r.machine.kernel;
  const space = PasidSpace.open(k);
  r.driver.close();
  r.dropPasidSetup(r.ridHwpt, []);
  r.dev.close();
  using type1 = openPciDevice(PASID_BDF, { kernel: k, iommu: "type1" });
  assert.throws(
    () => space.widthOf(type1),
    (e: unknown) =>
      e instanceof VfioError && /not iommufd/.test(e.message) && /iommufd/.test(e.hint!),
  );
  assert.throws(() => space.bind(type1, 1, 1), /open through type1/);
  space.close();
});

Deno.test("PasidDmaDriver.usePasid: the driver stops using a torn-down PASID", async () => {
  const r = pasidRig("vtd");
  const k = r.machine.kernel;
  const m = r.mem();
  const s = r.space(m);
  const space = PasidSpace.open(k);
  const p = space.allocate({ device: r.dev });
  r.driver.usePasid(space, p, s.hwpt);
  assert.equal((await r.driver.fill(PASID_SPACE_IOVA, 16, 0x21, p.value)).status, "ok");
  space.free(p.value);
  await assert.rejects(
    r.driver.fill(PASID_SPACE_IOVA, 16, 0x22, p.value),
    (e: unknown) => e instanceof VfioError && /PASID 1 was stopped/.test(e.message),
  );
  assert.deepEqual([...r.driver.stoppedPasids], [1]);
  const rid = r.dev.dma.allocate(4096);
  assert.equal((await r.driver.fill(rid.iova, 16, 0x23)).status, "ok", "the RID's work goes on");
  r.dev.dma.free(rid);
  const q = space.allocate({ device: r.dev });
  r.driver.usePasid(space, q, s.hwpt);
  assert.equal((await r.driver.fill(PASID_SPACE_IOVA, 16, 0x24, q.value)).status, "ok");
  r.driver.close(); // unbinds
  assert.equal(
    r.machine.iommu.translate(0x20, q.value, PASID_SPACE_IOVA, "write", 4).ok,
    false,
    "the driver's close detached its PASID",
  );
  space.close();
  closeRig(r, [s]);
});
