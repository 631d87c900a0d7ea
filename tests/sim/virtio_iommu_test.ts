/**
 * virtio-iommu: the device fed raw requests in the wire format (the spec's UNMAP examples, every
 * normative status), PROBE's RESV_MEM bytes, bypass rules, fault records; then the Linux driver
 * side (facts, domain ids, PROBE-derived reserved regions, MAP splitting and replay, errno
 * mapping, fault log lines) and determinism.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ERRNO } from "../../ffi/errno.ts";
import { VirtualClock } from "../../sim/clock.ts";
import { VirtioIommu, type VirtioIommuOptions } from "../../sim/iommu/virtio_iommu/virtio_iommu.ts";
import {
  VirtioIommuDevice,
  type VirtioIommuDeviceOptions,
} from "../../sim/iommu/virtio_iommu/virtio_iommu_device.ts";
import {
  decodeConfig,
  decodeFault,
  encodeAttach,
  encodeDetach,
  encodeMap,
  encodeProbe,
  encodeUnmap,
  parseProbeProperties,
  requestStatus,
  splitRequest,
  viommuStatusErrno,
  VIRTIO_IOMMU_ATTACH_F_BYPASS,
  VIRTIO_IOMMU_F,
  VIRTIO_IOMMU_MAP_F,
  VIRTIO_IOMMU_S as S,
  VIRTIO_IOMMU_SIZE,
} from "../../sim/iommu/virtio_iommu/virtio_iommu_wire.ts";

const RW = VIRTIO_IOMMU_MAP_F.READ | VIRTIO_IOMMU_MAP_F.WRITE;
const EP = 0x10; // 00:02.0
const RAM = 0x1_0000_0000n;
const K4 = 0x1000n;

/** Send one whole request to the device, as the driver would; returns the status (−1: none). */
function send(dev: VirtioIommuDevice, req: Uint8Array): number {
  const { readable, writable } = splitRequest(req, dev.config.probeSize);
  return dev.process(readable, writable) === 0 ? -1 : requestStatus(req);
}

/** A device with domain 1 holding endpoint EP. */
function device(o: VirtioIommuDeviceOptions = {}): VirtioIommuDevice {
  const dev = new VirtioIommuDevice(o);
  assert.equal(send(dev, encodeAttach({ domain: 1, endpoint: EP })), S.OK);
  return dev;
}

function map(dev: VirtioIommuDevice, start: bigint, end: bigint, phys = start, flags = RW): number {
  return send(
    dev,
    encodeMap({ domain: 1, virtStart: start, virtEnd: end, physStart: phys, flags }),
  );
}

function unmap(dev: VirtioIommuDevice, start: bigint, end: bigint): number {
  return send(dev, encodeUnmap({ domain: 1, virtStart: start, virtEnd: end }));
}

function ranges(dev: VirtioIommuDevice, domain = 1): string[] {
  return dev.mappings(domain).map((m) => `${m.start}-${m.end}`);
}

function driver(o: Partial<VirtioIommuOptions> = {}): {
  viommu: VirtioIommu;
  trace: string[];
  log: string[];
} {
  const trace: string[] = [];
  const log: string[] = [];
  const viommu = new VirtioIommu({
    clock: new VirtualClock(),
    trace: (l) => trace.push(l),
    kernelLog: (l) => log.push(l),
    ...o,
  });
  return { viommu, trace, log };
}

Deno.test({
  name: "virtio-iommu device: config space and the spec's UNMAP examples on a 1-byte granule",
  permissions: "none",
  fn() {
    const cfg = decodeConfig(new VirtioIommuDevice().readConfig());
    assert.deepEqual(cfg, {
      pageSizeMask: 0xfffffffffffff000n,
      inputRange: { start: 0n, end: 0xffffffffffffffffn },
      domainRange: { start: 0, end: 0xffffffff },
      probeSize: 512,
      bypass: 0,
    });
    const byte = { pageSizeMask: (1n << 64n) - 1n };
    // (1) unmap on empty space succeeds and removes nothing.
    let dev = device(byte);
    assert.equal(unmap(dev, 0n, 4n), S.OK);
    // (2) map(0,9); unmap(0,9).
    assert.equal(map(dev, 0n, 9n), S.OK);
    assert.equal(unmap(dev, 0n, 9n), S.OK);
    assert.deepEqual(ranges(dev), []);
    // (3) map(0,4); map(5,9); unmap(0,9) removes both.
    assert.equal(map(dev, 0n, 4n), S.OK);
    assert.equal(map(dev, 5n, 9n), S.OK);
    assert.equal(unmap(dev, 0n, 9n), S.OK);
    assert.deepEqual(ranges(dev), []);
    // (4) map(0,9); unmap(0,4) fails with RANGE and removes nothing.
    dev = device(byte);
    assert.equal(map(dev, 0n, 9n), S.OK);
    assert.equal(unmap(dev, 0n, 4n), S.RANGE);
    assert.deepEqual(ranges(dev), ["0-9"]);
    // (5) map(0,4); map(5,9); unmap(0,4) removes only the first.
    dev = device(byte);
    assert.equal(map(dev, 0n, 4n), S.OK);
    assert.equal(map(dev, 5n, 9n), S.OK);
    assert.equal(unmap(dev, 0n, 4n), S.OK);
    assert.deepEqual(ranges(dev), ["5-9"]);
    // (6) map(0,4); unmap(0,9): holes are fine.
    dev = device(byte);
    assert.equal(map(dev, 0n, 4n), S.OK);
    assert.equal(unmap(dev, 0n, 9n), S.OK);
    assert.deepEqual(ranges(dev), []);
    // (7) map(0,4); map(10,14); unmap(0,14).
    assert.equal(map(dev, 0n, 4n), S.OK);
    assert.equal(map(dev, 10n, 14n), S.OK);
    assert.equal(unmap(dev, 0n, 14n), S.OK);
    assert.deepEqual(ranges(dev), []);
  },
});

Deno.test({
  name: "virtio-iommu device: MAP rules (RANGE misaligned/outside, INVAL overlap/flags, NOENT)",
  permissions: "none",
  fn() {
    const dev = device({ inputRange: { start: 0n, end: (1n << 39n) - 1n } });
    assert.equal(map(dev, 0x1000n, 0x1fffn, RAM), S.OK);
    assert.equal(map(dev, 0x2800n, 0x37ffn, RAM), S.RANGE); // virt_start
    assert.equal(map(dev, 0x2000n, 0x2fffn, RAM + 0x800n), S.RANGE); // phys_start
    assert.equal(map(dev, 0x2000n, 0x27ffn, RAM), S.RANGE); // virt_end + 1
    assert.equal(map(dev, 0x1000n, 0x2fffn, RAM), S.INVAL); // overlaps 0x1000-0x1fff
    assert.equal(map(dev, 0x0n, 0x1fffn, RAM), S.INVAL);
    assert.equal(map(dev, 0x3000n, 0x2fffn, RAM), S.INVAL); // end before start
    assert.equal(map(dev, 0x3000n, 0x3fffn, RAM, 1 << 3), S.INVAL); // unknown flag
    assert.equal(map(dev, 0x3000n, 0x3fffn, RAM, VIRTIO_IOMMU_MAP_F.MMIO), S.OK); // F_MMIO
    assert.equal(map(dev, 1n << 39n, (1n << 39n) + 0xfffn, RAM), S.RANGE); // input_range
    const bad = encodeMap({ domain: 7, virtStart: 0n, virtEnd: 0xfffn, physStart: RAM, flags: RW });
    assert.equal(send(dev, bad), S.NOENT);
    assert.equal(send(dev, encodeUnmap({ domain: 7, virtStart: 0n, virtEnd: 0xfffn })), S.NOENT);
    assert.deepEqual(ranges(dev), ["4096-8191", "12288-16383"]);
    // Without F_MMIO negotiated the MMIO flag is unknown.
    const plain = new VirtioIommuDevice();
    plain.negotiate(plain.offered & ~(1n << BigInt(VIRTIO_IOMMU_F.MMIO)));
    assert.equal(send(plain, encodeAttach({ domain: 1, endpoint: EP })), S.OK);
    assert.equal(map(plain, 0n, 0xfffn, RAM, VIRTIO_IOMMU_MAP_F.MMIO), S.INVAL);
    // A MAP over a RESV_MEM region is refused; UNMAP with reserved bytes set removes nothing.
    const x86 = device({ reservedRegions: [{ subtype: 1, start: 0xfee00000n, end: 0xfeefffffn }] });
    assert.equal(map(x86, 0xfee00000n, 0xfee00fffn, RAM), S.INVAL);
    assert.equal(map(x86, 0x1000n, 0x1fffn, RAM), S.OK);
    const reserved = encodeUnmap({ domain: 1, virtStart: 0n, virtEnd: 0xffffn, reserved: 1 });
    assert.equal(send(x86, reserved), S.INVAL);
    assert.deepEqual(ranges(x86), ["4096-8191"]);
    // NOMEM beyond the mapping limit.
    const small = device({ maxMappings: 1 });
    assert.equal(map(small, 0n, 0xfffn, RAM), S.OK);
    assert.equal(map(small, 0x1000n, 0x1fffn, RAM), S.NOMEM);
  },
});

Deno.test({
  name: "virtio-iommu device: ATTACH/DETACH rules, domain lifetime, unparsable requests",
  permissions: "none",
  fn() {
    const dev = new VirtioIommuDevice({
      endpoints: [EP, 0x18],
      domainRange: { start: 0, end: 99 },
    });
    assert.equal(send(dev, encodeAttach({ domain: 1, endpoint: EP, reserved: 1 })), S.INVAL);
    assert.equal(send(dev, encodeAttach({ domain: 1, endpoint: EP, flags: 2 })), S.INVAL);
    assert.equal(send(dev, encodeAttach({ domain: 1, endpoint: 0x20 })), S.NOENT);
    assert.equal(send(dev, encodeAttach({ domain: 100, endpoint: EP })), S.RANGE);
    assert.equal(dev.domainIds().length, 0);
    assert.equal(send(dev, encodeAttach({ domain: 1, endpoint: EP })), S.OK);
    assert.equal(map(dev, 0n, 0xfffn, RAM), S.OK);
    // Inconsistent BYPASS flag: refused, the endpoint stays where it was.
    const bypass = encodeAttach({ domain: 1, endpoint: 0x18, flags: VIRTIO_IOMMU_ATTACH_F_BYPASS });
    assert.equal(send(dev, bypass), S.INVAL);
    assert.equal(dev.endpointDomain(0x18), undefined);
    // Attaching elsewhere detaches first; the old domain dies with its mappings.
    assert.equal(send(dev, encodeAttach({ domain: 2, endpoint: EP })), S.OK);
    assert.deepEqual(dev.domainIds(), [2]);
    assert.equal(send(dev, encodeDetach({ domain: 1, endpoint: EP })), S.INVAL);
    assert.equal(send(dev, encodeDetach({ domain: 2, endpoint: 0x18 })), S.NOENT);
    assert.equal(send(dev, encodeDetach({ domain: 2, endpoint: EP })), S.OK);
    assert.deepEqual(dev.domainIds(), []);
    // Unknown type: nothing written, used length 0. Too short: INVAL. No tail: used 0.
    const unknown = encodeAttach({ domain: 1, endpoint: EP });
    unknown[0] = 9;
    unknown[unknown.length - 4] = 0xaa;
    assert.equal(send(dev, unknown), -1);
    assert.equal(unknown[unknown.length - 4], 0xaa);
    const short = encodeMap({ domain: 1, virtStart: 0n, virtEnd: 0xfffn, physStart: 0n, flags: 3 });
    assert.equal(dev.process(short.subarray(0, 20), new Uint8Array(4)), 4);
    const tail = new Uint8Array(4);
    dev.process(short.subarray(0, 20), tail);
    assert.equal(tail[0], S.INVAL);
    assert.equal(dev.process(short.subarray(0, 36), new Uint8Array(2)), 0);
    assert.equal(dev.process(new Uint8Array(0), new Uint8Array(4)), 0);
  },
});

Deno.test({
  name: "virtio-iommu device: PROBE returns the RESV_MEM MSI property in the wire layout",
  permissions: "none",
  fn() {
    const msi = { subtype: 1, start: 0xfee00000n, end: 0xfeefffffn };
    const dev = new VirtioIommuDevice({ reservedRegions: [msi], endpoints: [EP] });
    const req = encodeProbe(EP, 512);
    assert.equal(req.length, 72 + 512 + 4);
    assert.equal(send(dev, req), S.OK);
    const props = req.subarray(72, 72 + 512);
    const v = new DataView(props.buffer, props.byteOffset);
    assert.equal(v.getUint16(0, true), 1); // RESV_MEM
    assert.equal(v.getUint16(2, true), 20); // bytes after the header
    assert.equal(props[4], 1); // MSI
    assert.equal(v.getBigUint64(8, true), 0xfee00000n);
    assert.equal(v.getBigUint64(16, true), 0xfeefffffn);
    assert.ok(props.subarray(24).every((b) => b === 0));
    const parsed = parseProbeProperties(props);
    assert.equal(parsed.length, 1);
    assert.equal(parsed[0].type, 1);
    assert.equal(send(dev, encodeProbe(0x18, 512)), S.NOENT);
    // A properties buffer smaller than probe_size is INVAL.
    const small = encodeProbe(EP, 64);
    const at = small.length - 4 - 64;
    assert.equal(dev.process(small.subarray(0, at), small.subarray(at)), 68);
    assert.equal(requestStatus(small), S.INVAL);
    // Without F_PROBE the device writes nothing.
    const noProbe = new VirtioIommuDevice({ features: dev.offered & ~(1n << 4n) });
    assert.equal(send(noProbe, encodeProbe(EP, 512)), -1);
  },
});

Deno.test({
  name: "virtio-iommu device: translation, bypass rules and virtio_iommu_fault records",
  permissions: "none",
  fn() {
    const events: Uint8Array[] = [];
    const dev = device();
    dev.onEvent = (raw) => events.push(raw);
    assert.equal(map(dev, 0x1000n, 0x1fffn, RAM, VIRTIO_IOMMU_MAP_F.READ), S.OK);
    assert.deepEqual(dev.translate(EP, undefined, 0x1010n, "read"), {
      ok: true,
      phys: RAM + 0x10n,
    });
    const w = dev.translate(EP, undefined, 0x1010n, "write");
    assert.equal(w.ok, false);
    assert.deepEqual(decodeFault(events[0]), {
      reason: 2,
      flags: 0x100 | 0x2,
      endpoint: EP,
      address: 0x1010n,
    });
    assert.equal(events[0].length, VIRTIO_IOMMU_SIZE.FAULT);
    dev.translate(EP, undefined, 0x5000n, "write"); // unmapped: ADDRESS only
    assert.equal(decodeFault(events[1])?.flags, 0x100);
    dev.translate(0x18, undefined, 0x1000n, "read"); // never attached: UNKNOWN
    assert.equal(decodeFault(events[2])?.reason, 0);
    assert.equal(send(dev, encodeDetach({ domain: 1, endpoint: EP })), S.OK);
    dev.translate(EP, undefined, 0x1000n, "read"); // detached: DOMAIN
    assert.equal(decodeFault(events[3])?.reason, 1);
    // config.bypass = 1 (BYPASS_CONFIG): unattached endpoints pass through; 2 is refused.
    assert.equal(dev.writeBypass(2), false);
    assert.equal(dev.writeBypass(1), true);
    assert.deepEqual(dev.translate(0x18, undefined, 0x1234n, "write"), { ok: true, phys: 0x1234n });
    // A bypass domain: identity, and MAP on it is INVAL.
    const flags = VIRTIO_IOMMU_ATTACH_F_BYPASS;
    assert.equal(send(dev, encodeAttach({ domain: 5, endpoint: EP, flags })), S.OK);
    const m = encodeMap({ domain: 5, virtStart: 0n, virtEnd: 0xfffn, physStart: 0n, flags: RW });
    assert.equal(send(dev, m), S.INVAL);
    assert.deepEqual(dev.translate(EP, undefined, 0x7000n, "read"), { ok: true, phys: 0x7000n });
    dev.systemReset();
    assert.equal(dev.config.bypass, 0);
    assert.equal(dev.translate(EP, undefined, 0x7000n, "read").ok, false);
  },
});

Deno.test({
  name: "virtio-iommu driver: facts, reserved regions from PROBE, domain ids from 1",
  permissions: "none",
  fn() {
    const { viommu, trace } = driver();
    assert.deepEqual(viommu.facts, {
      kind: "virtio-iommu",
      pgsizeBitmap: 0xfffffffffffff000n,
      aperture: { start: 0n, end: (1n << 39n) - 1n },
      cacheCoherency: true,
      enforceCacheCoherency: false,
      dirtyTracking: false,
      msiIsolated: false,
      hwInfo: { type: 0, data: new Uint8Array(0) },
      maxPasidLog2: 0,
    });
    assert.deepEqual(viommu.reservedRegions(EP), [
      { start: 0xfee00000n, end: 0xfeefffffn, type: "msi" },
    ]);
    assert.equal(trace[0], "viommu req PROBE ep=0x10 -> OK");
    assert.equal(viommu.identityDomainId, 0);
    assert.equal(viommu.allocDomain().id, 1);
    assert.equal(viommu.allocDomain().id, 2);
    const arm = driver({ platform: "arm64" }).viommu;
    assert.equal(arm.facts.msiIsolated, true);
    assert.equal(arm.facts.aperture.end, (1n << 48n) - 1n);
    assert.deepEqual(arm.reservedRegions(EP), [
      { start: 0x8000000n, end: 0x80fffffn, type: "sw-msi" },
    ]);
    // QEMU ≤ 8.2 (64-bit input range), and a granule larger than PAGE_SIZE (Linux: ENODEV).
    const old = driver({ deviceOptions: { inputRange: { start: 0n, end: (1n << 64n) - 1n } } });
    assert.equal(old.viommu.facts.aperture.end, (1n << 64n) - 1n);
    const big = driver({ deviceOptions: { pageSizeMask: ~0xffffn & ((1n << 64n) - 1n) } });
    assert.throws(() => big.viommu.allocDomain(), /granule 0x10000 larger than system page size/);
  },
});

Deno.test({
  name: "virtio-iommu driver: MAP requests per iommu_pgsize chunk, replay on attach, unmap",
  permissions: "none",
  fn() {
    const { viommu, trace } = driver();
    const d = viommu.allocDomain();
    // Before any endpoint: kept in the driver's tree only.
    assert.equal(d.map(0x100000n, RAM, 3n * K4, { read: true, write: true }), 0);
    assert.deepEqual(viommu.device.mappings(d.id), []);
    assert.equal(viommu.attach(EP, d), 0);
    assert.deepEqual(
      viommu.device.mappings(d.id).map((m) => [m.start, m.end, m.phys, m.flags]),
      [[0x100000n, 0x101fffn, RAM, RW], [0x102000n, 0x102fffn, RAM + 0x2000n, RW]],
    );
    assert.deepEqual(trace.slice(-4), [
      "viommu req ATTACH domain=1 ep=0x10 flags=0 -> OK",
      "viommu req MAP domain=1 0x100000-0x101fff -> 0x100000000 rw -> OK",
      "viommu req MAP domain=1 0x102000-0x102fff -> 0x100002000 rw -> OK",
      "viommu attach ep=0x10 domain=1",
    ]);
    // 2 MiB aligned: one MAP of 2 MiB.
    assert.equal(d.map(0x20_0000n, RAM + 0x20_0000n, 0x20_0000n, { read: true, write: false }), 0);
    assert.equal(trace.at(-1), "viommu req MAP domain=1 0x200000-0x3fffff -> 0x100200000 r- -> OK");
    assert.deepEqual(d.lookup(0x20_0010n), {
      phys: RAM + 0x20_0010n,
      prot: { read: true, write: false },
    });
    assert.equal(d.map(0x101000n, RAM, K4, { read: true, write: true }), -ERRNO.EEXIST);
    assert.equal(d.map(0x1800n, RAM, K4, { read: true, write: true }), -ERRNO.EINVAL);
    assert.equal(d.map(1n << 39n, RAM, K4, { read: true, write: true }), -ERRNO.EINVAL);
    // Unmap: whole mappings starting in each chunk; a range starting inside one removes nothing.
    assert.equal(d.unmap(0x101000n, K4), 0n);
    assert.equal(d.unmap(0x100000n, K4), 0x2000n); // the whole first MAP, as Linux does
    // A hole stops the walk (Linux returns 0); what the chunk removed is gone from the device too.
    assert.equal(d.unmap(0x102000n, 0x1fe000n + 0x20_0000n), 0n);
    assert.deepEqual(viommu.device.mappings(d.id).map((m) => m.start), [0x20_0000n]);
    assert.equal(d.unmap(0x20_0000n, 0x20_0000n), 0x20_0000n);
    assert.deepEqual(viommu.device.mappings(d.id), []);
    assert.equal(d.mappings.size, 0);
  },
});

Deno.test({
  name: "virtio-iommu driver: device statuses become errnos like viommu_get_req_errno",
  permissions: "none",
  fn() {
    assert.deepEqual(
      [S.OK, S.IOERR, S.UNSUPP, S.DEVERR, S.INVAL, S.RANGE, S.NOENT, S.FAULT, S.NOMEM, 99].map(
        viommuStatusErrno,
      ),
      [0, -5, -38, -5, -22, -34, -2, -14, -12, -5],
    );
    const { viommu } = driver({ deviceOptions: { endpoints: [EP] } });
    const d = viommu.allocDomain();
    assert.equal(viommu.attach(EP, d), 0);
    assert.equal(d.map(0x100000n, RAM, 2n * K4, { read: true, write: true }), 0);
    const split = encodeUnmap({ domain: d.id, virtStart: 0x100000n, virtEnd: 0x100fffn });
    assert.equal(viommu.sendRequest(split), -ERRNO.ERANGE);
    assert.equal(viommu.device.mappings(d.id).length, 1);
    const none = encodeMap({ domain: 42, virtStart: 0n, virtEnd: 0xfffn, physStart: 0n, flags: 1 });
    assert.equal(viommu.sendRequest(none), -ERRNO.ENOENT);
    const unknown = encodeDetach({ domain: 1, endpoint: EP });
    unknown[0] = 0x7f;
    assert.equal(viommu.sendRequest(unknown), -ERRNO.EIO); // used length 0 → IOERR
    assert.equal(requestStatus(unknown), S.IOERR);
    assert.equal(viommu.attach(0x18, d), -ERRNO.ENOENT); // not behind this IOMMU
    assert.equal(d.nrEndpoints, 1);
    assert.throws(() => viommu.freeDomain(d), /freed while attached/);
  },
});

Deno.test({
  name: "virtio-iommu driver: faults give the virtio record and Linux's log line",
  permissions: "none",
  fn() {
    const { viommu, log } = driver();
    const d = viommu.allocDomain();
    assert.equal(d.map(0x100000n, RAM, K4, { read: true, write: false }), 0);
    assert.equal(viommu.attach(EP, d), 0);
    const r = viommu.translate(EP, undefined, 0x800000n, "write", 4);
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.equal(r.fault.format, "virtio-iommu-fault");
    assert.equal(r.fault.reason, 2);
    assert.equal(r.fault.reasonName, "page");
    assert.equal(r.fault.message, "virtio_iommu virtio0: page fault from EP 16 at 0x800000 []");
    const raw = Array.from(r.fault.raw);
    assert.deepEqual(raw.slice(0, 12), [2, 0, 0, 0, 0, 1, 0, 0, 0x10, 0, 0, 0]);
    assert.deepEqual(decodeFault(r.fault.raw)?.address, 0x800000n);
    viommu.translate(EP, undefined, 0x100000n, "write", 4);
    viommu.translate(EP, undefined, 0n, "read", 4);
    viommu.translate(EP, 3, 0x100000n, "read", 4); // no PASID support
    assert.equal(viommu.attach(EP, null), 0); // blocking domain
    viommu.translate(EP, undefined, 0x100000n, "read", 4);
    assert.equal(viommu.detach(EP), 0);
    viommu.translate(EP, undefined, 0x100000n, "read", 4);
    viommu.translate(0x18, undefined, 0x100000n, "read", 4);
    assert.deepEqual(log, [
      "virtio_iommu virtio0: page fault from EP 16 at 0x800000 []",
      "virtio_iommu virtio0: page fault from EP 16 at 0x100000 [W]",
      "virtio_iommu virtio0: page fault from EP 16 at 0 []",
      "virtio_iommu virtio0: unknown fault from EP 16 at 0x100000 []",
      "virtio_iommu virtio0: page fault from EP 16 at 0x100000 []",
      "virtio_iommu virtio0: domain fault from EP 16 at 0x100000 []",
      "virtio_iommu virtio0: unknown fault from EP 24 at 0x100000 []",
    ]);
    assert.deepEqual(viommu.faults.map((f) => f.message), log);
    // MSI window on x86: the doorbell passes through untranslated (not RAM, not a fault).
    assert.deepEqual(viommu.translate(0x18, undefined, 0xfee00000n, "write", 4).ok, false);
    assert.equal(viommu.attach(0x18, d), 0);
    assert.deepEqual(viommu.translate(0x18, undefined, 0xfee00000n, "write", 4), {
      ok: true,
      phys: 0xfee00000n,
    });
  },
});

Deno.test({
  name: "virtio-iommu: determinism (same calls, same request stream and records)",
  permissions: "none",
  fn() {
    const run = (): { trace: string[]; raws: number[][] } => {
      const { viommu, trace } = driver();
      const d = viommu.allocDomain();
      d.map(0x100000n, RAM, 5n * K4, { read: true, write: true });
      viommu.attach(EP, d);
      viommu.translate(EP, undefined, 0x900000n, "read", 4);
      d.unmap(0x100000n, 5n * K4);
      viommu.translate(EP, undefined, 0x100000n, "write", 4);
      return { trace, raws: viommu.faults.map((f) => Array.from(f.raw)) };
    };
    const a = run();
    assert.equal(a.raws.length, 2);
    assert.deepEqual(run(), a);
  },
});

Deno.test({
  name: "virtio-iommu device: hostile request bytes never throw, state stays consistent (seeded)",
  permissions: "none",
  fn() {
    let seed = 11;
    const rnd = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return Math.floor((seed / 2 ** 32) * n);
    };
    const dev = new VirtioIommuDevice({ endpoints: [EP, 0x18] });
    const templates = [
      () => encodeAttach({ domain: rnd(4), endpoint: rnd(2) ? EP : 0x18, flags: rnd(3) }),
      () => encodeDetach({ domain: rnd(4), endpoint: rnd(2) ? EP : rnd(0x40) }),
      () =>
        encodeMap({
          domain: rnd(4),
          virtStart: BigInt(rnd(64)) * 0x800n,
          virtEnd: BigInt(rnd(64)) * 0x800n + BigInt(rnd(2) ? 0x7ff : 0xfff),
          physStart: RAM + BigInt(rnd(16)) * K4,
          flags: rnd(9),
        }),
      () =>
        encodeUnmap({
          domain: rnd(4),
          virtStart: BigInt(rnd(64)) * K4,
          virtEnd: BigInt(rnd(64)) * K4 + 0xfffn,
        }),
      () => encodeProbe(rnd(2) ? EP : 0x30, rnd(2) ? 512 : rnd(600)),
    ];
    for (let i = 0; i < 5000; i++) {
      const req = templates[rnd(templates.length)]();
      for (let n = rnd(3); n > 0; n--) req[rnd(req.length)] = rnd(256); // corrupt a few bytes
      const cut = rnd(4) === 0 ? req.subarray(0, rnd(req.length + 1)) : req;
      const { readable, writable } = splitRequest(cut, 512);
      const used = dev.process(readable, writable);
      assert.ok(used === 0 || used === writable.length);
      dev.translate(rnd(2) ? EP : 0x18, undefined, BigInt(rnd(64)) * 0x800n, "read");
    }
    // Invariants: mappings sorted and disjoint, every endpoint's domain exists.
    for (const id of dev.domainIds()) {
      const m = dev.mappings(id);
      for (let i = 1; i < m.length; i++) assert.ok(m[i - 1].end < m[i].start);
    }
    for (const ep of [EP, 0x18]) {
      const d = dev.endpointDomain(ep);
      if (d !== undefined) assert.ok(dev.domainIds().includes(d));
    }
  },
});
