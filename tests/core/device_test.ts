/**
 * VfioDevice, regions and ConfigSpace against a scripted device: the exact GET_INFO /
 * GET_REGION_INFO / hot-reset / feature bytes (offsets from shared/reference/vfio.md §7 and §10),
 * the argsz protocol with a sparse-mmap capability, mmap versus pread/pwrite, capability walks
 * (including a looping list) and bus-master enabling.
 */

import assert from "node:assert/strict";
import { ERRNO } from "../../ffi/errno.ts";
import { VfioDevice } from "../../core/device.ts";
import { ConfigSpace } from "../../core/config_space.ts";
import {
  CONFIG_OFFSET,
  DEVICE_FD,
  DeviceKernel,
  FEATURE,
  GET_INFO,
  GET_REGION_INFO,
  HOT_RESET_INFO,
  RESET,
  setConfig,
} from "./device_stub.ts";
import { expectVfioError, le, put, u32At } from "./vfio_test_helpers.ts";

const BDF = "0000:00:02.0";
const BAR2_OFFSET = 2n << 40n;
const READ_WRITE_MMAP = 0x7;

function openDevice(k: DeviceKernel): VfioDevice {
  return new VfioDevice(k, DEVICE_FD, BDF);
}

function ioctls(k: DeviceKernel, request: number): Uint8Array[] {
  return k.callsOf("ioctl").filter((c) => c.request === request).map((c) => c.argIn!);
}

/** SPARSE_MMAP cap (id 1, v1, next 0) with two areas, laid out from byte 32 of the reply. */
function sparseCap(): Uint8Array {
  return le(48, [
    [0, 2, 1],
    [2, 2, 1],
    [4, 4, 0],
    [8, 4, 2], // nr_areas
    [16, 8, 0n], // area 0: [0, 0x1000)
    [24, 8, 0x1000n],
    [32, 8, 0x3000n], // area 1: [0x3000, 0x4000)
    [40, 8, 0x1000n],
  ]);
}

Deno.test("getInfo: one GET_INFO with argsz 24, decoded", () => {
  const k = new DeviceKernel();
  const dev = openDevice(k);
  const info = dev.getInfo();
  assert.deepEqual(ioctls(k, GET_INFO), [le(24, [[0, 4, 24]])]);
  assert.equal(info.numRegions, 9);
  assert.equal(info.numIrqs, 5);
  assert.equal(info.resetWorks, true);
  assert.equal(info.pci, true);
  assert.deepEqual(info.caps, []);
});

Deno.test("regionInfo: argsz protocol fetches a sparse-mmap cap on the second call", () => {
  const k = new DeviceKernel();
  k.regions.set(2, {
    flags: READ_WRITE_MMAP,
    size: 0x4000n,
    offset: BAR2_OFFSET,
    caps: sparseCap(),
  });
  const dev = openDevice(k);
  const info = dev.regionInfo(2);
  assert.deepEqual(ioctls(k, GET_REGION_INFO), [
    le(32, [[0, 4, 32], [8, 4, 2]]),
    le(80, [[0, 4, 80], [8, 4, 2]]),
  ]);
  assert.equal(info.flags, 0xf);
  assert.equal(info.offset, BAR2_OFFSET);
  assert.equal(info.size, 0x4000n);
  assert.equal(info.mmap, true);
  assert.deepEqual(info.sparseAreas, [
    { offset: 0n, size: 0x1000n },
    { offset: 0x3000n, size: 0x1000n },
  ]);
  assert.deepEqual(info.caps.map((c) => [c.id, c.offset]), [[1, 32]]);
});

Deno.test("region: sparse areas are mmapped, the rest goes through pread/pwrite", () => {
  const k = new DeviceKernel();
  k.regions.set(2, {
    flags: READ_WRITE_MMAP,
    size: 0x4000n,
    offset: BAR2_OFFSET,
    caps: sparseCap(),
  });
  const dev = openDevice(k);
  const bar = dev.region(2);
  assert.equal(dev.regionMode(2), "sparse");
  assert.deepEqual(k.maps.map((m) => [m.offset, m.length]), [
    [BAR2_OFFSET, 0x1000],
    [BAR2_OFFSET + 0x3000n, 0x1000],
  ]);
  bar.write32(0x10, 0xdeadbeef);
  bar.write32(0x3004, 7);
  bar.write32(0x2000, 0x11223344);
  assert.deepEqual(k.maps[0].mmio.accesses, [{ op: "w32", offset: 0x10, value: 0xdeadbeef }]);
  assert.deepEqual(k.maps[1].mmio.accesses, [{ op: "w32", offset: 4, value: 7 }]);
  const writes = k.callsOf("pwrite");
  assert.equal(writes.length, 1);
  assert.equal(writes[0].offset, BAR2_OFFSET + 0x2000n);
  assert.deepEqual(writes[0].argIn, le(4, [[0, 4, 0x11223344]]));
  assert.equal(bar.read32(0x2000), 0x11223344);
  assert.equal(dev.region(2), bar, "regions are cached");
  dev.close();
  assert.deepEqual(k.unmapped, k.maps.map((m) => m.mmio));
  assert.equal(k.openFds.has(DEVICE_FD), false);
});

Deno.test("region: FLAG_MMAP maps the whole region at region_info.offset", () => {
  const k = new DeviceKernel();
  const offset = 0x1234_0000_0000n; // any offset the kernel reports, not index << 40
  k.regions.set(0, { flags: READ_WRITE_MMAP, size: 0x10_0000n, offset });
  const dev = openDevice(k);
  const bar = dev.region(0);
  assert.equal(dev.regionMode(0), "mmap");
  assert.deepEqual(k.maps.map((m) => [m.offset, m.length]), [[offset, 0x10_0000]]);
  assert.equal(bar, k.maps[0].mmio);
  assert.equal(k.callsOf("pread").length, 0);
  dev.close();
  assert.deepEqual(k.unmapped, [k.maps[0].mmio]);
});

Deno.test("region: without FLAG_MMAP, or when mmap fails, accesses are exact-width pread/pwrite", () => {
  const k = new DeviceKernel();
  k.regions.set(4, { flags: 0x3, size: 0x20n, offset: 4n << 40n }); // an I/O BAR
  k.regions.set(0, { flags: READ_WRITE_MMAP, size: 0x1000n, offset: 0n });
  k.mmapError = -ERRNO.EINVAL;
  const dev = openDevice(k);
  const io = dev.region(4);
  assert.equal(dev.regionMode(4), "pread");
  io.write16(0x2, 0xbeef);
  assert.equal(io.read8(0x3), 0xbe);
  io.write64(0x8, 0x0102030405060708n);
  assert.equal(io.read64(0x8), 0x0102030405060708n);
  const bar0 = dev.region(0);
  assert.equal(dev.regionMode(0), "pread");
  assert.equal(bar0.read32(0x10), 0);
  const accesses = k.calls.filter((c) => c.op === "pread" || c.op === "pwrite").map((
    c,
  ) => [c.op, c.offset, c.arg!.length]);
  assert.deepEqual(accesses, [
    ["pwrite", (4n << 40n) + 2n, 2],
    ["pread", (4n << 40n) + 3n, 1],
    ["pwrite", (4n << 40n) + 8n, 8],
    ["pread", (4n << 40n) + 8n, 8],
    ["pread", 0x10n, 4],
  ]);
  expectVfioError(() => io.read32(0x1e), "outside region 4");
  dev.close();
  assert.equal(k.unmapped.length, 0);
});

Deno.test("region: an unimplemented BAR (size 0) is an error naming the region", () => {
  const k = new DeviceKernel();
  k.regions.set(1, { flags: 0, size: 0n, offset: 1n << 40n });
  const dev = openDevice(k);
  expectVfioError(() => dev.region(1), "region 1 is not implemented");
  expectVfioError(() => dev.regionInfo(9), "VFIO_DEVICE_GET_REGION_INFO", "EINVAL");
});

Deno.test("reset: EINVAL says the device has no usable reset", () => {
  const k = new DeviceKernel();
  const dev = openDevice(k);
  dev.reset();
  k.fail.set(RESET, -ERRNO.EINVAL);
  const e = expectVfioError(
    () => dev.reset(),
    "VFIO_DEVICE_RESET",
    "EINVAL",
    "device has no usable reset",
  );
  assert.equal(e.device, BDF);
});

Deno.test("hotResetInfo: ENOSPC gives the count, the second call fetches the devices", () => {
  const k = new DeviceKernel();
  k.onIoctl((c) => {
    if (c.request !== HOT_RESET_INFO) return undefined;
    const argsz = u32At(c.arg!, 0);
    put(c.arg!, [[4, 4, 0], [8, 4, 2]]);
    if (argsz < 12 + 2 * 8) return -ERRNO.ENOSPC;
    put(c.arg!, [
      [12, 4, 7],
      [16, 2, 0],
      [18, 1, 0],
      [19, 1, 0x10], // 00:02.0
      [20, 4, 7],
      [24, 2, 0],
      [26, 1, 0],
      [27, 1, 0x11], // 00:02.1
    ]);
    return 0;
  });
  const dev = openDevice(k);
  const info = dev.hotResetInfo();
  assert.deepEqual(ioctls(k, HOT_RESET_INFO), [le(12, [[0, 4, 12]]), le(28, [[0, 4, 28]])]);
  assert.equal(info.devIds, false);
  assert.deepEqual(info.devices, [
    { groupOrDevId: 7, notOwned: false, bdf: "0000:00:02.0" },
    { groupOrDevId: 7, notOwned: false, bdf: "0000:00:02.1" },
  ]);
  k.fail.set(HOT_RESET_INFO, -ERRNO.ENODEV);
  expectVfioError(() => dev.hotResetInfo(), "ENODEV", "neither a slot nor a bus reset");
});

Deno.test("probeFeature: PROBE|GET and PROBE|SET; ENOTTY and EINVAL mean unsupported", () => {
  const k = new DeviceKernel();
  k.onIoctl((c) => {
    if (c.request !== FEATURE) return undefined;
    return (u32At(c.arg!, 4) & (1 << 16)) !== 0 ? 0 : -ERRNO.EINVAL;
  });
  const dev = openDevice(k);
  assert.deepEqual(dev.probeFeature(1), { get: true, set: false });
  assert.deepEqual(ioctls(k, FEATURE), [
    le(8, [[0, 4, 8], [4, 4, 1 | (1 << 18) | (1 << 16)]]),
    le(8, [[0, 4, 8], [4, 4, 1 | (1 << 18) | (1 << 17)]]),
  ]);
});

Deno.test("close: unmaps and closes the fd even when an unmap fails; the error is thrown", () => {
  const k = new DeviceKernel();
  k.regions.set(0, { flags: READ_WRITE_MMAP, size: 0x1000n, offset: 0n });
  const closed: number[] = [];
  const dev = new VfioDevice(k, DEVICE_FD, BDF, { closeFd: (fd) => closed.push(fd) });
  dev.region(0);
  k.munmapError = -ERRNO.EINVAL;
  expectVfioError(() => dev.close(), "munmap", "EINVAL");
  assert.deepEqual(closed, [DEVICE_FD]);
  dev.close(); // a second close does nothing
  assert.deepEqual(closed, [DEVICE_FD]);
  expectVfioError(() => dev.region(0), "the device is closed");
});

// ---- config space ----

/** Config space with PM at 0x40 → MSI at 0x50 → MSI-X at 0x70 (PCI 3.0 §6.7, §6.8). */
function configWithCaps(k: DeviceKernel): void {
  setConfig(k, 0x00, 2, 0x1af4);
  setConfig(k, 0x02, 2, 0x1041);
  setConfig(k, 0x08, 4, 0x0200_0001); // class 0x020000, revision 1
  setConfig(k, 0x06, 2, 0x10); // status: capabilities list
  setConfig(k, 0x34, 1, 0x40);
  setConfig(k, 0x40, 1, 0x01);
  setConfig(k, 0x41, 1, 0x50);
  setConfig(k, 0x50, 1, 0x05);
  setConfig(k, 0x51, 1, 0x70);
  setConfig(k, 0x52, 2, (2 << 1) | (1 << 7)); // MSI: 4 vectors capable, 64-bit
  setConfig(k, 0x70, 1, 0x11);
  setConfig(k, 0x71, 1, 0x00);
  setConfig(k, 0x72, 2, 0x0f | (1 << 15)); // MSI-X: 16 entries, enabled
  setConfig(k, 0x74, 4, 0x2000 | 1); // table in BAR1 at 0x2000
  setConfig(k, 0x78, 4, 0x3000 | 1); // PBA in BAR1 at 0x3000
}

Deno.test("config: identity registers are 2/4-byte preads at the CONFIG region offset", () => {
  const k = new DeviceKernel();
  configWithCaps(k);
  const config = ConfigSpace.open(openDevice(k));
  assert.equal(config.vendorId(), 0x1af4);
  assert.equal(config.deviceId(), 0x1041);
  assert.equal(config.classCode(), 0x020000);
  assert.equal(config.revision(), 1);
  assert.deepEqual(k.callsOf("pread").map((c) => [c.offset, c.arg!.length]), [
    [CONFIG_OFFSET, 2],
    [CONFIG_OFFSET + 2n, 2],
    [CONFIG_OFFSET + 8n, 4],
    [CONFIG_OFFSET + 8n, 4],
  ]);
});

Deno.test("config: capability walk, findCapability, MSI and MSI-X decoding", () => {
  const k = new DeviceKernel();
  configWithCaps(k);
  const config = ConfigSpace.open(openDevice(k));
  assert.deepEqual(config.capabilities(), [
    { id: 0x01, offset: 0x40 },
    { id: 0x05, offset: 0x50 },
    { id: 0x11, offset: 0x70 },
  ]);
  assert.equal(config.findCapability(0x05), 0x50);
  assert.equal(config.findCapability(0x10), undefined);
  assert.deepEqual(config.msi(), {
    offset: 0x50,
    enabled: false,
    vectors: 4,
    enabledVectors: 1,
    is64Bit: true,
    perVectorMasking: false,
  });
  assert.deepEqual(config.msix(), {
    offset: 0x70,
    enabled: true,
    functionMasked: false,
    tableSize: 16,
    tableBar: 1,
    tableOffset: 0x2000,
    pbaBar: 1,
    pbaOffset: 0x3000,
  });
});

Deno.test("config: a looping or out-of-bounds capability list stops, no hang", () => {
  const k = new DeviceKernel();
  configWithCaps(k);
  setConfig(k, 0x71, 1, 0x40); // MSI-X points back to PM
  const config = ConfigSpace.open(openDevice(k));
  assert.deepEqual(config.capabilities().map((c) => c.offset), [0x40, 0x50, 0x70]);
  setConfig(k, 0x71, 1, 0x70); // a self loop
  assert.deepEqual(config.capabilities().map((c) => c.offset), [0x40, 0x50, 0x70]);
  setConfig(k, 0x51, 1, 0x20); // into the standard header: invalid
  assert.deepEqual(config.capabilities().map((c) => c.offset), [0x40, 0x50]);
  setConfig(k, 0x06, 2, 0); // no capabilities list bit: nothing is walked
  assert.deepEqual(config.capabilities(), []);
});

Deno.test("config: extended capabilities from 0x100 in a 4096-byte config region, loop-safe", () => {
  const k = new DeviceKernel(4096);
  const ext = (id: number, version: number, next: number): number =>
    (id | (version << 16) | (next << 20)) >>> 0;
  setConfig(k, 0x100, 4, ext(0x0001, 2, 0x140)); // AER v2
  setConfig(k, 0x140, 4, ext(0x0000, 0, 0x180)); // hidden by vfio-pci: followed, not listed
  setConfig(k, 0x180, 4, ext(0x000b, 1, 0x100)); // vendor-specific, loops back
  const config = ConfigSpace.open(openDevice(k));
  assert.deepEqual(config.extendedCapabilities(), [
    { id: 0x0001, version: 2, offset: 0x100 },
    { id: 0x000b, version: 1, offset: 0x180 },
  ]);
  assert.equal(config.findExtendedCapability(0x000b), 0x180);
  const small = new DeviceKernel(256);
  assert.deepEqual(ConfigSpace.open(openDevice(small)).extendedCapabilities(), []);
});

Deno.test("config: enableBusMaster writes exactly the command register, once", () => {
  const k = new DeviceKernel();
  setConfig(k, 0x04, 2, 0x0400); // INTx disabled, memory and bus master off
  const config = ConfigSpace.open(openDevice(k));
  config.enableBusMaster();
  const writes = k.callsOf("pwrite");
  assert.equal(writes.length, 1);
  assert.equal(writes[0].offset, CONFIG_OFFSET + 4n);
  assert.deepEqual(writes[0].argIn, le(2, [[0, 2, 0x0406]]));
  config.enableBusMaster(); // already set: no write
  assert.equal(k.callsOf("pwrite").length, 1);
});

Deno.test("config: enableBusMaster reports bits that do not stick", () => {
  const k = new DeviceKernel();
  k.stuckZero.set(0x04, 0x04);
  const config = ConfigSpace.open(openDevice(k));
  expectVfioError(() => config.enableBusMaster(), "enableBusMaster", "PCI_COMMAND reads 0x2");
});
