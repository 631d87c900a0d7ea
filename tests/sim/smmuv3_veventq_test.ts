/**
 * IOMMU_VEVENTQ_ALLOC (Linux 6.15+) on an SMMUv3 vIOMMU in the simulator: ENOTTY before 6.15, the
 * errno table, stage-1 events of a nested domain delivered through the fd as header + raw event
 * with the vSID in StreamID (stage-2 events stay in the host log), LOST_EVENTS on overflow, the
 * sequence wrap at INT_MAX, the destroy rules and the fd's references.
 */
import assert from "node:assert/strict";
import { raw, userBytes } from "../helpers/raw_ioctl.ts";
import { attachIommufdPt } from "../../core/cdev.ts";
import { IommufdBackend } from "../../core/iommufd_backend.ts";
import type { IommufdVeventq } from "../../core/iommufd.ts";
import { openPciDevice, type PciDevice } from "../../core/pci_device.ts";
import { SmmuV3Stage1Tables } from "../../core/smmuv3_stage1.ts";
import { EduDriver } from "../../drivers/edu/edu.ts";
import { ERRNO } from "../../ffi/errno.ts";
import { POLLIN, POLLOUT } from "../../ffi/kernel.ts";
import {
  IOMMU_DESTROY,
  iommu_destroy,
  IOMMU_HWPT_ALLOC,
  iommu_hwpt_alloc,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
} from "../../ffi/uapi/iommufd.ts";
import {
  IOMMU_HWPT_DATA_ARM_SMMUV3,
  IOMMU_VDEVICE_ALLOC,
  iommu_vdevice_alloc,
  IOMMU_VEVENTQ_ALLOC,
  iommu_veventq_alloc,
  IOMMU_VEVENTQ_FLAG_LOST_EVENTS,
  IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
  IOMMU_VEVENTQ_TYPE_DEFAULT,
  IOMMU_VIOMMU_ALLOC,
  iommu_viommu_alloc,
  IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
} from "../../ffi/uapi/post_6_12.ts";
import type { IommufdContext } from "../../sim/iommufd/context.ts";
import { userLockedPages } from "../../sim/iommufd/mod.ts";
import type { VeventqObject } from "../../sim/iommufd/objects.ts";
import { VeventQueue } from "../../sim/iommufd/vevent_queue.ts";
import { SMMU_EVT } from "../../sim/iommu/smmuv3/smmuv3_event.ts";
import { createMachine, type SimMachine } from "../../sim/machine.ts";
import type { SimKernel } from "../../sim/kernel/sim_kernel.ts";

const BDF = "0000:00:02.0";
/** A stage-1 address inside the edu's 28-bit DMA mask. */
const VA = 0x100_0000n;
const PAGE = 4096n;
const ASID = 7;
const VSID = 0x42;
const RECORD = 8 + 32;

interface Rig {
  machine: SimMachine;
  k: SimKernel;
  fd: number;
  dev: PciDevice;
  devId: number;
  cdevFd: number;
  ioasId: number;
  ctx: IommufdContext;
  backend: IommufdBackend;
  parent: number;
  viommu: number;
  destroy(id: number): number;
  /** Destroy the vIOMMU and its parent, then close the device (and the iommufd). */
  close(): void;
  veventq(values: Record<string, unknown>, size?: number): { rc: number; id: number; fd: number };
}

/** An SMMUv3 machine (nesting) with the edu through iommufd, a nest parent and a vIOMMU. */
function rig(kernelVersion: string): Rig {
  const machine = createMachine({
    iommu: "smmuv3",
    kernelVersion,
    smmuNesting: true,
    devices: [{ model: "edu", bdf: BDF }],
    strict: true,
  });
  const k = machine.kernel;
  const dev = openPciDevice(BDF, { kernel: k, iommu: "iommufd" });
  const backend = dev.dma.backend;
  assert.ok(backend instanceof IommufdBackend);
  const { devId, fd: cdevFd } = backend.devices()[0];
  const fd = backend.iommufd.fd;
  const parent = raw(k, fd, IOMMU_HWPT_ALLOC, iommu_hwpt_alloc, {
    dev_id: devId,
    pt_id: backend.ioasId,
    flags: IOMMU_HWPT_ALLOC_NEST_PARENT,
  });
  assert.equal(parent.rc, 0);
  const v = raw(k, fd, IOMMU_VIOMMU_ALLOC, iommu_viommu_alloc, {
    type: IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
    dev_id: devId,
    hwpt_id: parent.out.out_hwpt_id,
  });
  assert.equal(v.rc, 0);
  return {
    machine,
    k,
    fd,
    dev,
    devId,
    cdevFd,
    ioasId: backend.ioasId,
    ctx: k.process.fget(fd) as IommufdContext,
    backend,
    parent: Number(parent.out.out_hwpt_id),
    viommu: Number(v.out.out_viommu_id),
    destroy: (id) => raw(k, fd, IOMMU_DESTROY, iommu_destroy, { id }).rc,
    close() {
      assert.equal(this.destroy(this.viommu), 0);
      assert.equal(this.destroy(this.parent), 0);
      dev.close();
    },
    veventq(values, size) {
      const r = raw(k, fd, IOMMU_VEVENTQ_ALLOC, iommu_veventq_alloc, values, size);
      return { rc: r.rc, id: Number(r.out.out_veventq_id), fd: Number(r.out.out_veventq_fd) };
    },
  };
}

/** The kernel object behind a vEVENTQ id. */
function veventqObject(r: Rig, id: number): VeventqObject {
  const obj = r.ctx.objects.find((o) => o.id === id);
  assert.ok(obj?.type === "veventq");
  return obj;
}

Deno.test("smmuv3 veventq: 6.13 and 6.14 answer ENOTTY; 6.15 allocates", () => {
  for (const version of ["6.13", "6.14"]) {
    const r = rig(version);
    const q = r.veventq({ viommu_id: r.viommu, type: 1, veventq_depth: 4 });
    assert.equal(q.rc, -ERRNO.ENOTTY, version);
    r.close();
  }
  const r = rig("6.15");
  const q = r.veventq({ viommu_id: r.viommu, type: 1, veventq_depth: 4 });
  assert.equal(q.rc, 0);
  assert.ok(q.id > r.viommu);
  assert.equal(r.k.process.fget(q.fd)?.kind, "iommufd-viommu-event");
  assert.equal(r.k.close(q.fd), 0);
  assert.equal(r.destroy(q.id), 0);
  r.close();
  assert.equal(r.ctx.objects.length, 0);
});

Deno.test("smmuv3 veventq: IOMMU_VEVENTQ_ALLOC errno table (6.15)", () => {
  const r = rig("6.15");
  const ok = { viommu_id: r.viommu, type: IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, veventq_depth: 2 };
  const before = r.k.process.openFds().length;
  // size below offsetofend(__reserved): EINVAL; trailing non-zero bytes: E2BIG.
  assert.equal(r.veventq(ok, 28).rc, -ERRNO.EINVAL);
  assert.equal(r.veventq({ ...ok, flags: 1 }).rc, -ERRNO.EOPNOTSUPP);
  assert.equal(r.veventq({ ...ok, __reserved: 1 }).rc, -ERRNO.EOPNOTSUPP);
  assert.equal(r.veventq({ ...ok, type: IOMMU_VEVENTQ_TYPE_DEFAULT }).rc, -ERRNO.EOPNOTSUPP);
  // Flags are checked before the depth, the depth before the vIOMMU.
  assert.equal(r.veventq({ ...ok, flags: 1, veventq_depth: 0 }).rc, -ERRNO.EOPNOTSUPP);
  assert.equal(r.veventq({ ...ok, veventq_depth: 0, viommu_id: 999 }).rc, -ERRNO.EINVAL);
  assert.equal(r.veventq({ ...ok, viommu_id: 999 }).rc, -ERRNO.ENOENT);
  assert.equal(r.veventq({ ...ok, viommu_id: r.parent }).rc, -ERRNO.ENOENT, "a HWPT id");
  assert.equal(r.k.process.openFds().length, before, "no fd left by a failure");
  const types = r.ctx.objects.map((o) => o.type);
  const q = r.veventq({ ...ok, veventq_depth: 0xffff_ffff });
  assert.equal(q.rc, 0, "any non-zero depth");
  assert.equal(r.veventq(ok).rc, -ERRNO.EEXIST, "one queue per type per vIOMMU");
  // Linux 6.15 does not check the type against the driver: another type gets its own queue.
  const other = r.veventq({ ...ok, type: 2 });
  assert.equal(other.rc, 0);
  assert.deepEqual(
    r.ctx.objects.map((o) => o.type),
    [...types, "veventq", "veventq"],
    "failed allocations consumed no object",
  );
  for (const x of [q, other]) {
    assert.equal(r.k.close(x.fd), 0);
    assert.equal(r.destroy(x.id), 0);
  }
  r.close();
  assert.equal(r.ctx.objects.length, 0);
});

Deno.test("smmuv3 veventq: destroy rules — the queue holds the vIOMMU, the fd holds the queue", () => {
  const r = rig("6.15");
  const q = r.veventq({ viommu_id: r.viommu, type: 1, veventq_depth: 8 });
  assert.equal(q.rc, 0);
  assert.equal(r.destroy(r.viommu), -ERRNO.EBUSY, "the vEVENTQ holds a user on its vIOMMU");
  assert.equal(r.destroy(q.id), -ERRNO.EBUSY, "the open fd holds a user on the vEVENTQ");
  // Closing the fd leaves the object; its events stay queued (nobody can read them).
  const obj = veventqObject(r, q.id);
  obj.queue.report(new Uint8Array(32));
  assert.equal(r.k.close(q.fd), 0);
  assert.equal(obj.users, 1);
  assert.equal(obj.queue.pending, 1);
  assert.equal(r.k.read(q.fd, new Uint8Array(64)), -ERRNO.EBADF);
  assert.equal(r.destroy(q.id), 0);
  assert.equal(obj.queue.pending, 0, "destroy drops the queued events");
  assert.equal(r.destroy(q.id), -ERRNO.ENOENT);
  // A new queue of the same type may now be made.
  const again = r.veventq({ viommu_id: r.viommu, type: 1, veventq_depth: 8 });
  assert.equal(again.rc, 0);
  assert.equal(again.id, q.id, "the freed id is reused");
  const process = r.k.process;
  assert.equal(r.destroy(r.parent), -ERRNO.EBUSY, "the vIOMMU holds its parent");
  assert.equal(r.k.close(again.fd), 0);
  assert.equal(r.destroy(again.id), 0);
  r.close();
  assert.equal(r.ctx.objects.length, 0);
  assert.equal(userLockedPages(process), 0);
});

Deno.test("smmuv3 veventq: read(2) — whole records, short buffers read 0, write EINVAL, poll", () => {
  const r = rig("6.15");
  const q = r.veventq({ viommu_id: r.viommu, type: 1, veventq_depth: 8 });
  const queue = veventqObject(r, q.id).queue;
  const poll = () => {
    const fds = [{ fd: q.fd, events: POLLIN | POLLOUT, revents: 0 }];
    r.k.poll(fds, 0);
    return fds[0].revents;
  };
  assert.equal(poll(), 0, "empty: not readable, never writable");
  assert.equal(r.k.read(q.fd, new Uint8Array(RECORD)), 0, "empty: 0, no blocking");
  const ev = (n: number) => new Uint8Array(32).fill(n);
  queue.report(ev(1));
  queue.report(ev(2));
  queue.report(ev(3));
  assert.equal(poll() & POLLIN, POLLIN);
  assert.equal(r.k.read(q.fd, new Uint8Array(RECORD - 1)), 0, "a record that does not fit: 0");
  assert.equal(r.k.read(q.fd, new Uint8Array(8)), 0, "a header alone is not enough for an event");
  assert.equal(r.k.pread(q.fd, new Uint8Array(RECORD), 8n), -ERRNO.ESPIPE);
  assert.equal(r.k.write(q.fd, new Uint8Array(8)), -ERRNO.EINVAL, "no write operation");
  const buf = new Uint8Array(2 * RECORD + 20);
  assert.equal(r.k.read(q.fd, buf), 2 * RECORD, "two whole records; the third does not fit");
  const v = new DataView(buf.buffer);
  assert.deepEqual([v.getUint32(0, true), v.getUint32(4, true)], [0, 0]);
  assert.equal(buf[8], 1);
  assert.deepEqual([v.getUint32(RECORD, true), v.getUint32(RECORD + 4, true)], [0, 1]);
  assert.equal(buf[RECORD + 8], 2);
  assert.equal(r.k.read(q.fd, buf), RECORD);
  assert.equal(v.getUint32(4, true), 2);
  assert.equal(poll(), 0);
  assert.equal(r.k.close(q.fd), 0);
  assert.equal(r.destroy(q.id), 0);
  r.close();
});

Deno.test("smmuv3 veventq: overflow — one LOST_EVENTS header, sequence numbers, INT_MAX wrap", () => {
  const q = new VeventQueue(2);
  const ev = (n: number) => new Uint8Array(32).fill(n);
  const proc = {} as never;
  const read = (bytes = 4 * RECORD) => {
    const buf = new Uint8Array(bytes);
    const n = q.read(proc, buf);
    const v = new DataView(buf.buffer);
    const out: { flags: number; seq: number; first?: number }[] = [];
    for (let at = 0; at < n;) {
      const flags = v.getUint32(at, true);
      const seq = v.getUint32(at + 4, true);
      at += 8;
      if (flags & IOMMU_VEVENTQ_FLAG_LOST_EVENTS) out.push({ flags, seq });
      else {
        out.push({ flags, seq, first: buf[at] });
        at += 32;
      }
    }
    return out;
  };
  for (let i = 0; i < 5; i++) q.report(ev(i));
  assert.equal(q.events, 2);
  assert.equal(q.pending, 3, "two events and one LOST_EVENTS header");
  // The header alone fits a buffer too short for an event.
  const lost = IOMMU_VEVENTQ_FLAG_LOST_EVENTS;
  assert.deepEqual(read(), [
    { flags: 0, seq: 0, first: 0 },
    { flags: 0, seq: 1, first: 1 },
    { flags: lost, seq: 4 },
  ], "the header carries the last lost sequence number");
  assert.deepEqual(read(), []);
  // Overflow, read one, then a new event overtakes (removes) the header at the tail.
  for (let i = 5; i < 8; i++) q.report(ev(i));
  assert.deepEqual(read(RECORD), [{ flags: 0, seq: 5, first: 5 }]);
  q.report(ev(8));
  assert.deepEqual(read(), [{ flags: 0, seq: 6, first: 6 }, { flags: 0, seq: 8, first: 8 }]);
  // A LOST_EVENTS header fits in 8 bytes where an event does not.
  for (let i = 9; i < 12; i++) q.report(ev(i));
  assert.deepEqual(read(RECORD + 8), [{ flags: 0, seq: 9, first: 9 }]);
  assert.deepEqual(read(8 + 4), [], "an event needs its 32 bytes");
  assert.deepEqual(read(RECORD), [{ flags: 0, seq: 10, first: 10 }]);
  assert.deepEqual(read(8), [{ flags: lost, seq: 11 }]);
  // Sequence numbers wrap from INT_MAX to 0.
  q.setNextSequence(0x7fff_fffe);
  for (let i = 0; i < 3; i++) q.report(ev(i));
  assert.deepEqual(read().map((x) => x.seq), [0x7fff_fffe, 0x7fff_ffff, 0]);
});

/** The rig with the edu, stage-1 tables, a vDEVICE and a nested HWPT attached. */
async function dmaRig(depth = 16) {
  const r = rig("6.15");
  const edu = EduDriver.open(r.dev, { interrupts: "poll" });
  const dma = r.dev.dma;
  const src = dma.allocate(4096);
  src.bytes.set(new TextEncoder().encode("smmu"));
  await edu.dmaToDevice(src, 0, 0, 4);
  dma.free(src);
  const s1 = new SmmuV3Stage1Tables(dma.allocate(16 * 4096));
  s1.setContext(0, { asid: ASID });
  const a = dma.allocate(4096);
  s1.map(0, VA, a.iova, PAGE, { write: true });
  const vdev = raw(r.k, r.fd, IOMMU_VDEVICE_ALLOC, iommu_vdevice_alloc, {
    viommu_id: r.viommu,
    dev_id: r.devId,
    virt_id: BigInt(VSID),
  });
  assert.equal(vdev.rc, 0);
  const data = s1.vste();
  const nested = raw(r.k, r.fd, IOMMU_HWPT_ALLOC, iommu_hwpt_alloc, {
    dev_id: r.devId,
    pt_id: r.viommu,
    data_type: IOMMU_HWPT_DATA_ARM_SMMUV3,
    data_len: data.length,
    data_uptr: userBytes(r.k, data),
  });
  assert.equal(nested.rc, 0);
  attachIommufdPt(r.k, r.cdevFd, Number(nested.out.out_hwpt_id), BDF);
  const q: IommufdVeventq = r.backend.iommufd.veventqAlloc({
    viommuId: r.viommu,
    type: IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
    depth,
  });
  const state = { q };
  const cleanup = () => {
    state.q.close();
    edu.close();
    attachIommufdPt(r.k, r.cdevFd, r.ioasId, BDF);
    for (
      const id of [state.q.id, Number(nested.out.out_hwpt_id), Number(vdev.out.out_vdevice_id)]
    ) {
      assert.equal(r.destroy(id), 0, `destroy ${id}`);
    }
    assert.equal(r.destroy(r.viommu), 0);
    assert.equal(r.destroy(r.parent), 0);
    const process = r.k.process;
    r.dev.close();
    assert.equal(r.ctx.objects.length, 0);
    assert.equal(userLockedPages(process), 0);
    assert.deepEqual(process.openFds(), [], "no fd left open");
  };
  return { r, edu, s1, a, q, state, cleanup };
}

/** Host log lines of SMMU events in the machine trace. */
const eventLines = (m: SimMachine) =>
  m.trace.filter((l) => /event 0x[0-9a-f]{2} received:$/.test(l));

Deno.test("smmuv3 veventq: a stage-1 F_TRANSLATION reaches the fd with the vSID; not logged", async () => {
  const { r, edu, q, cleanup } = await dmaRig();
  const logged = eventLines(r.machine).length;
  await edu.dmaFromDeviceToIova(VA + 64n * PAGE, 4);
  const f = r.machine.faults().at(-1)!;
  assert.equal(f.reason, SMMU_EVT.F_TRANSLATION);
  assert.equal(f.stage, 1);
  const fds = [{ fd: q.fd, events: POLLIN, revents: 0 }];
  assert.equal(r.k.poll(fds, 0), 1);
  const recs = q.read();
  assert.equal(recs.length, 1);
  const [rec] = recs;
  assert.equal(rec.lost, false);
  assert.equal(rec.sequence, 0);
  assert.ok(rec.event);
  const d0 = rec.event[0];
  assert.equal(Number(d0 & 0xffn), SMMU_EVT.F_TRANSLATION);
  assert.equal(Number(d0 >> 32n), VSID, "StreamID replaced by the vSID");
  assert.equal(rec.event[2], VA + 64n * PAGE, "the stage-1 input address");
  // The rest is the hardware record, the StreamID aside.
  const hw = f.raw!;
  const hwD0 = new DataView(hw.buffer, hw.byteOffset).getBigUint64(0, true);
  assert.equal(hwD0 >> 32n, BigInt(r.machine.fn(BDF).requester));
  assert.deepEqual(rec.data.subarray(8), hw.subarray(8));
  assert.deepEqual(rec.data.subarray(0, 4), hw.subarray(0, 4));
  assert.equal(eventLines(r.machine).length, logged, "taken by the vEVENTQ, not the host log");
  assert.deepEqual(q.read(), []);
  cleanup();
});

Deno.test("smmuv3 veventq: a stage-2 fault stays in the host log; no queue, no forwarding", async () => {
  const { r, edu, s1, q, state, cleanup } = await dmaRig();
  // Stage 1 maps VA2 to an IPA the IOAS never mapped: the stage-2 walk faults (S2 = 1).
  const VA2 = VA + 8n * PAGE;
  s1.map(0, VA2, 0x3000_0000n, PAGE, { write: true });
  const logged = eventLines(r.machine).length;
  await edu.dmaFromDeviceToIova(VA2, 4);
  const f = r.machine.faults().at(-1)!;
  assert.equal(f.stage, 2);
  assert.deepEqual(q.read(), [], "stage-2 events are the host's");
  assert.equal(eventLines(r.machine).length, logged + 1, "logged by the host");
  // Without a vEVENTQ (closed and destroyed) stage-1 events are logged too.
  q.close();
  assert.equal(r.destroy(q.id), 0);
  await edu.dmaFromDeviceToIova(VA + 64n * PAGE, 4);
  assert.equal(eventLines(r.machine).length, logged + 2);
  // A new queue (the freed id again) for the cleanup to close and destroy.
  state.q = r.backend.iommufd.veventqAlloc({
    viommuId: r.viommu,
    type: IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
    depth: 1,
  });
  assert.equal(state.q.id, q.id);
  cleanup();
});

Deno.test("smmuv3 veventq: DMA faults beyond the depth give a LOST_EVENTS record", async () => {
  const { r, edu, q, cleanup } = await dmaRig(2);
  for (let i = 0; i < 4; i++) await edu.dmaFromDeviceToIova(VA + BigInt(64 + i) * PAGE, 4);
  const recs = q.read();
  assert.deepEqual(recs.map((x) => [x.sequence, x.lost]), [[0, false], [1, false], [3, true]]);
  assert.equal(recs[2].flags, IOMMU_VEVENTQ_FLAG_LOST_EVENTS);
  assert.equal(recs[2].data.length, 0);
  assert.equal(recs[1].event?.[2], VA + 65n * PAGE);
  assert.equal(r.machine.faults().filter((f) => f.stage === 1).length, 4, "all four happened");
  cleanup();
});
