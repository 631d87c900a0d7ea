/**
 * The type1 container/group client and Type1Backend through DmaSpace, against a scripted
 * kernel: the exact ioctl sequence, request numbers and argument bytes (built from the offsets
 * in shared/reference/vfio.md §2, §8 and §10), error hints, and clean unwinding.
 */

import assert from "node:assert/strict";
import { ERRNO } from "../../ffi/errno.ts";
import type { MappedMemory } from "../../ffi/kernel.ts";
import { DmaSpace } from "../../core/dma_space.ts";
import { Type1Backend } from "../../core/type1_backend.ts";
import { VfioContainer } from "../../core/type1.ts";
import { type IoctlHandler, RecordingKernel } from "../helpers/recording_kernel.ts";
import {
  adoptFd,
  cstr,
  expectVfioError,
  io,
  le,
  put,
  summarize,
  u32At,
  u64At,
} from "./vfio_test_helpers.ts";

// vfio.md §2: container, group and type1 ioctls.
const GET_API_VERSION = io(0x64);
const CHECK_EXTENSION = io(0x65);
const SET_IOMMU = io(0x66);
const GROUP_GET_STATUS = io(0x67);
const GROUP_SET_CONTAINER = io(0x68);
const GROUP_UNSET_CONTAINER = io(0x69);
const GROUP_GET_DEVICE_FD = io(0x6a);
const IOMMU_GET_INFO = io(0x70);
const IOMMU_MAP_DMA = io(0x71);
const IOMMU_UNMAP_DMA = io(0x72);
const TYPE1_IOMMU = 1;
const TYPE1V2_IOMMU = 3;
const BDF = "0000:00:02.0";
const GROUP = 7;
const DEVICE_FD = 100;
const PGSIZES = 0x4020_1000n; // 4 KiB | 2 MiB | 1 GiB
const INFO_FULL_SIZE = 120; // vfio.md §8.2 worked example: 24 + 32 + 16 + 48

interface StubOptions {
  viable?: boolean;
  v2?: boolean;
  fail?: Partial<Record<number, number>>; // request → -errno
  dmaAvail?: number;
}

/** A kernel answering like a 6.12 type1 host with one VT-d group (MSI window cut out). */
function type1Kernel(options: StubOptions = {}, first?: IoctlHandler): RecordingKernel {
  const k = new RecordingKernel();
  if (first !== undefined) k.onIoctl(first);
  k.files.set("/dev/vfio/vfio", "");
  k.files.set(`/dev/vfio/${GROUP}`, "");
  k.files.set("/dev/vfio/8", "");
  let nextDeviceFd = DEVICE_FD;
  k.onIoctl((c) => {
    const failure = options.fail?.[c.request!];
    if (failure !== undefined) return failure;
    switch (c.request) {
      case GET_API_VERSION:
        return 0;
      case CHECK_EXTENSION:
        return c.value === BigInt(TYPE1V2_IOMMU) ? (options.v2 === false ? 0 : 1) : 1;
      case GROUP_GET_STATUS:
        put(c.arg!, [[4, 4, options.viable === false ? 0 : 1]]);
        return 0;
      case GROUP_SET_CONTAINER:
      case SET_IOMMU:
      case GROUP_UNSET_CONTAINER:
      case IOMMU_MAP_DMA:
        return 0;
      case GROUP_GET_DEVICE_FD:
        return adoptFd(k, nextDeviceFd++, "vfio-device");
      case IOMMU_GET_INFO:
        return answerGetInfo(c.arg!, options.dmaAvail ?? 65535);
      case IOMMU_UNMAP_DMA:
        return 0; // size is left as passed: exactly the requested bytes were unmapped
    }
    return undefined;
  });
  return k;
}

/** VFIO_IOMMU_GET_INFO as vfio.md §8.2 describes it (caps: MIGRATION, DMA_AVAIL, IOVA_RANGE). */
function answerGetInfo(arg: Uint8Array, avail: number): number {
  const argsz = u32At(arg, 0);
  put(arg, [[4, 4, 3], [8, 8, PGSIZES]]);
  if (argsz < INFO_FULL_SIZE) {
    put(arg, [[0, 4, INFO_FULL_SIZE], [16, 4, 0]]);
    return 0;
  }
  put(arg, [
    [16, 4, 24],
    // MIGRATION (id 2, v1) at 24, next 56
    [24, 2, 2],
    [26, 2, 1],
    [28, 4, 56],
    [32, 4, 0],
    [40, 8, 0x1000n],
    [48, 8, 0x1000_0000n],
    // DMA_AVAIL (id 3, v1) at 56, next 72
    [56, 2, 3],
    [58, 2, 1],
    [60, 4, 72],
    [64, 4, avail],
    // IOVA_RANGE (id 1, v1) at 72, next 0, two ranges
    [72, 2, 1],
    [74, 2, 1],
    [76, 4, 0],
    [80, 4, 2],
    [88, 8, 0n],
    [96, 8, 0xfedf_ffffn],
    [104, 8, 0xfef0_0000n],
    [112, 8, (1n << 48n) - 1n],
  ]);
  return 0;
}

function int32(value: number): Uint8Array {
  return le(4, [[0, 4, value]]);
}

Deno.test("type1: setup, map, unmap and close issue the exact ioctls and bytes", () => {
  const k = type1Kernel();
  const space = DmaSpace.open(k, "type1");
  const fd = space.backend.openDevice({ bdf: BDF, group: GROUP });
  assert.equal(fd, DEVICE_FD);
  const buffer = space.allocate(8192, { read: true, write: true });
  assert.equal(buffer.iova, 0x1000n); // lowest page above 0
  assert.equal(buffer.iovaLow, 0x1000);
  assert.equal(buffer.iovaHigh, 0);
  assert.equal(buffer.size, 8192);
  const vaddr = buffer.vaddr;
  space.free(buffer);
  space.backend.closeDevice(fd);
  space.close();

  assert.deepEqual(summarize(k.calls), [
    ["open", "/dev/vfio/vfio", 3],
    ["ioctl", 3, "0x3b64", undefined],
    ["ioctl", 3, "0x3b65", BigInt(TYPE1V2_IOMMU)],
    ["open", "/dev/vfio/7", 4],
    ["ioctl", 4, "0x3b67", le(8, [[0, 4, 8]])],
    ["ioctl", 4, "0x3b68", int32(3)],
    ["ioctl", 3, "0x3b66", BigInt(TYPE1V2_IOMMU)],
    ["ioctl", 3, "0x3b70", le(24, [[0, 4, 24]])],
    ["ioctl", 3, "0x3b70", le(INFO_FULL_SIZE, [[0, 4, INFO_FULL_SIZE]])],
    ["ioctl", 4, "0x3b6a", cstr(BDF)],
    ["mmap"],
    // vfio_iommu_type1_dma_map: argsz@0, flags@4 (READ|WRITE), vaddr@8, iova@16, size@24
    [
      "ioctl",
      3,
      "0x3b71",
      le(32, [[0, 4, 32], [4, 4, 3], [8, 8, vaddr], [16, 8, 0x1000n], [
        24,
        8,
        0x2000n,
      ]]),
    ],
    // vfio_iommu_type1_dma_unmap: argsz@0, flags@4, iova@8, size@16
    ["ioctl", 3, "0x3b72", le(24, [[0, 4, 24], [8, 8, 0x1000n], [16, 8, 0x2000n]])],
    ["munmap"],
    ["close", DEVICE_FD],
    ["ioctl", 4, "0x3b69", undefined],
    ["close", 4],
    ["close", 3],
  ]);
  assert.equal(k.openFds.size, 0);
  assert.equal(k.mappings.size, 0);
});

Deno.test("type1: GET_INFO decodes page sizes, IOVA ranges, DMA_AVAIL and migration", () => {
  const k = type1Kernel({ dmaAvail: 1000 });
  const backend = Type1Backend.open(k);
  backend.openDevice({ bdf: BDF, group: GROUP });
  const info = backend.info!;
  assert.equal(info.pgsizes, PGSIZES);
  assert.equal(info.minPageSize, 0x1000n);
  assert.deepEqual(info.iovaRanges, [
    { start: 0n, end: 0xfedf_ffffn },
    { start: 0xfef0_0000n, end: (1n << 48n) - 1n },
  ]);
  assert.equal(info.dmaAvailable, 1000);
  assert.deepEqual(info.migration, {
    flags: 0,
    pgsizeBitmap: 0x1000n,
    maxDirtyBitmapSize: 0x1000_0000n,
  });
  assert.equal(backend.mappingsAvailable(), 1000);
  backend.close();
  assert.equal(k.openFds.size, 0);
});

Deno.test("type1: TYPE1 is the fallback when TYPE1v2 is missing", () => {
  const k = type1Kernel({ v2: false });
  const backend = Type1Backend.open(k);
  assert.equal(backend.iommuType, TYPE1_IOMMU);
  backend.openDevice({ bdf: BDF, group: GROUP });
  const ext = k.callsOf("ioctl").filter((c) => c.request === CHECK_EXTENSION).map((c) => c.value);
  assert.deepEqual(ext, [BigInt(TYPE1V2_IOMMU), BigInt(TYPE1_IOMMU)]);
  const set = k.callsOf("ioctl").find((c) => c.request === SET_IOMMU)!;
  assert.equal(set.value, BigInt(TYPE1_IOMMU));
  backend.close();
});

Deno.test("type1: one group open per group, SET_IOMMU once, ranges re-read per group", () => {
  const k = type1Kernel();
  const backend = Type1Backend.open(k);
  const a = backend.openDevice({ bdf: BDF, group: GROUP });
  const b = backend.openDevice({ bdf: "0000:00:02.1", group: GROUP });
  const c = backend.openDevice({ bdf: "0000:00:03.0", group: 8 });
  const opens = k.callsOf("open").map((x) => x.path);
  assert.deepEqual(opens, ["/dev/vfio/vfio", "/dev/vfio/7", "/dev/vfio/8"]);
  assert.equal(k.callsOf("ioctl").filter((x) => x.request === SET_IOMMU).length, 1);
  assert.equal(k.callsOf("ioctl").filter((x) => x.request === IOMMU_GET_INFO).length, 4);
  const from = k.calls.length;
  backend.closeDevice(a); // the group still has a device: stays attached
  assert.deepEqual(summarize(k.calls, from), [["close", a]]);
  backend.close();
  assert.deepEqual(summarize(k.calls, from + 1).map((x) => x.slice(0, 3)), [
    ["close", c],
    ["ioctl", 5, "0x3b69"],
    ["close", 5],
    ["ioctl", 3, "0x3b70"], // group 7 remains: ranges re-read (they may grow again)
    ["ioctl", 3, "0x3b70"],
    ["close", b],
    ["ioctl", 4, "0x3b69"],
    ["close", 4],
    ["close", 3],
  ]);
  assert.equal(k.openFds.size, 0);
});

Deno.test("type1: a group that is not viable names the group and what to bind", () => {
  const k = type1Kernel({ viable: false });
  k.dirs.set(`/sys/kernel/iommu_groups/${GROUP}/devices`, [BDF, "0000:00:02.1"]);
  const space = DmaSpace.open(k, "type1");
  const e = expectVfioError(
    () => space.backend.openDevice({ bdf: BDF, group: GROUP }),
    "IOMMU group 7 is not viable",
    "0000:00:02.1",
    "bind every device of /sys/kernel/iommu_groups/7/devices to vfio-pci",
  );
  assert.equal(e.device, BDF);
  assert.deepEqual([...k.openFds.values()], ["/dev/vfio/vfio"]); // the group fd was closed
  space.close();
  assert.equal(k.openFds.size, 0);
});

Deno.test("type1: EPERM on SET_IOMMU hints at interrupt remapping and unwinds the group", () => {
  const k = type1Kernel({ fail: { [SET_IOMMU]: -ERRNO.EPERM } });
  const space = DmaSpace.open(k, "type1");
  const e = expectVfioError(
    () => space.backend.openDevice({ bdf: BDF, group: GROUP }),
    "VFIO_SET_IOMMU failed with EPERM",
    "interrupt remapping",
    "allow_unsafe_interrupts=1",
  );
  assert.equal(e.errnoName, "EPERM");
  assert.ok(e.hint?.includes("vfio_iommu_type1"));
  const tail = summarize(k.calls).slice(-3);
  assert.deepEqual(tail, [
    ["ioctl", 3, "0x3b66", BigInt(TYPE1V2_IOMMU)],
    ["ioctl", 4, "0x3b69", undefined],
    ["close", 4],
  ]);
  space.close();
  assert.equal(k.openFds.size, 0);
});

Deno.test("type1: EPERM on SET_CONTAINER gets the same hint", () => {
  const k = type1Kernel({ fail: { [GROUP_SET_CONTAINER]: -ERRNO.EPERM } });
  const backend = Type1Backend.open(k);
  expectVfioError(
    () => backend.openDevice({ bdf: BDF, group: GROUP }),
    "VFIO_GROUP_SET_CONTAINER failed with EPERM",
    "vfio_iommu_type1 allow_unsafe_interrupts=1",
  );
  assert.deepEqual([...k.openFds.values()], ["/dev/vfio/vfio"]);
  backend.close();
});

Deno.test("type1: a failing GET_DEVICE_FD unsets and closes the new group", () => {
  const k = type1Kernel({ fail: { [GROUP_GET_DEVICE_FD]: -ERRNO.ENODEV } });
  const backend = Type1Backend.open(k);
  expectVfioError(
    () => backend.openDevice({ bdf: BDF, group: GROUP }),
    "VFIO_GROUP_GET_DEVICE_FD failed with ENODEV",
    "not in IOMMU group 7",
  );
  assert.deepEqual(summarize(k.calls).slice(-2), [
    ["ioctl", 4, "0x3b69", undefined],
    ["close", 4],
  ]);
  backend.close();
  assert.equal(k.openFds.size, 0);
});

Deno.test("type1: ENOSPC on MAP_DMA names the mapping limit; the memory is munmapped", () => {
  const k = type1Kernel({ fail: { [IOMMU_MAP_DMA]: -ERRNO.ENOSPC } });
  const space = DmaSpace.open(k, "type1");
  space.backend.openDevice({ bdf: BDF, group: GROUP });
  const e = expectVfioError(
    () => space.allocate(4096),
    "VFIO_IOMMU_MAP_DMA failed with ENOSPC",
    "mapping limit reached (dma_entry_limit, 65535 by default): use fewer, larger mappings",
  );
  assert.equal(e.device, "/dev/vfio/vfio");
  assert.equal(k.mappings.size, 0);
  assert.deepEqual(summarize(k.calls).slice(-3).map((c) => c[0]), ["mmap", "ioctl", "munmap"]);
  assert.deepEqual(space.buffers(), []);
  space.close();
  assert.equal(k.openFds.size, 0);
});

Deno.test("type1: ENOMEM on MAP_DMA points at RLIMIT_MEMLOCK", () => {
  const k = type1Kernel({ fail: { [IOMMU_MAP_DMA]: -ERRNO.ENOMEM } });
  const space = DmaSpace.open(k, "type1");
  space.backend.openDevice({ bdf: BDF, group: GROUP });
  expectVfioError(() => space.allocate(4096), "RLIMIT_MEMLOCK", "ulimit -l", "CAP_IPC_LOCK");
  assert.equal(k.mappings.size, 0);
  space.close();
});

Deno.test("type1: open errors carry hints (no VFIO, permissions)", () => {
  const none = new RecordingKernel();
  expectVfioError(
    () => DmaSpace.open(none, "type1"),
    "/dev/vfio/vfio",
    "no VFIO: modprobe vfio-pci",
  );

  class DeniedKernel extends RecordingKernel {
    override open(path: string, flags: number): number {
      return path === "/dev/vfio/7" ? -ERRNO.EACCES : super.open(path, flags);
    }
  }
  const denied = new DeniedKernel();
  denied.files.set("/dev/vfio/vfio", "");
  denied.onIoctl((c) => (c.request === GET_API_VERSION ? 0 : 1));
  const backend = Type1Backend.open(denied);
  const e = expectVfioError(
    () => backend.openDevice({ bdf: BDF, group: GROUP }),
    "EACCES",
    "no permission to open /dev/vfio/7",
  );
  assert.equal(e.device, BDF);
  backend.close();
});

Deno.test("type1: no type1 IOMMU driver and a wrong API version are reported", () => {
  const k = new RecordingKernel();
  k.files.set("/dev/vfio/vfio", "");
  k.onIoctl((c) => (c.request === GET_API_VERSION ? 0 : c.request === CHECK_EXTENSION ? 0 : -25));
  expectVfioError(() => Type1Backend.open(k), "modprobe vfio_iommu_type1");
  assert.equal(k.openFds.size, 0);
  const old = new RecordingKernel();
  old.files.set("/dev/vfio/vfio", "");
  old.onIoctl(() => 1);
  expectVfioError(() => Type1Backend.open(old), "VFIO_GET_API_VERSION", "API version 1");
  assert.equal(old.openFds.size, 0);
});

Deno.test("type1: allocating before any device is open explains why it cannot", () => {
  const k = type1Kernel();
  const space = DmaSpace.open(k, "type1");
  expectVfioError(() => space.allocate(4096), "open a device first");
  assert.equal(k.mappings.size, 0);
  space.close();
});

Deno.test("type1: unmap checks the size the kernel reports", () => {
  let reported: bigint | undefined;
  const k = type1Kernel({}, (c) => {
    if (c.request === IOMMU_UNMAP_DMA && reported !== undefined) {
      put(c.arg!, [[16, 8, reported]]);
      return 0;
    }
    return undefined;
  });
  const backend = Type1Backend.open(k);
  backend.openDevice({ bdf: BDF, group: GROUP });
  const mem = k.mmapAnonymous(8192) as MappedMemory;
  backend.map(mem.address, 0x10000n as never, 8192n, { read: true, write: false });
  const map = k.callsOf("ioctl").at(-1)!;
  assert.equal(u32At(map.argIn!, 4), 1); // READ only
  assert.equal(u64At(map.argIn!, 16), 0x10000n);
  expectVfioError(() => backend.unmap(0x20000n as never, 8192n), "no mapping of 0x2000 bytes");
  backend.map(mem.address, 0x20000n as never, 8192n, { read: true, write: true });
  reported = 0n; // the kernel unmapped nothing (type1v2 with no mapping there)
  expectVfioError(
    () => backend.unmap(0x20000n as never, 8192n),
    "unmapped 0x0 bytes at IOVA 0x20000, expected 0x2000",
  );
  reported = undefined;
  backend.close(); // unmaps the leftover mapping first
  const unmap = k.callsOf("ioctl").find((c) =>
    c.request === IOMMU_UNMAP_DMA && u64At(c.argIn!, 8) === 0x10000n
  )!;
  assert.deepEqual(unmap.argIn, le(24, [[0, 4, 24], [8, 8, 0x10000n], [16, 8, 8192n]]));
  assert.equal(k.openFds.size, 0);
});

Deno.test("type1: buffers survive closing the last device; they are replayed on reopen", () => {
  const k = type1Kernel();
  const space = DmaSpace.open(k, "type1");
  const first = space.backend.openDevice({ bdf: BDF, group: GROUP });
  const buffer = space.allocate(4096);
  const mapArg = k.callsOf("ioctl").find((c) => c.request === IOMMU_MAP_DMA)!.argIn!;
  space.backend.closeDevice(first); // last group leaves: the kernel drops every mapping
  const from = k.calls.length;
  const again = space.backend.openDevice({ bdf: BDF, group: GROUP });
  assert.deepEqual(summarize(k.calls, from).map((c) => c.slice(0, 3)), [
    ["open", "/dev/vfio/7", 5],
    ["ioctl", 5, "0x3b67"],
    ["ioctl", 5, "0x3b68"],
    ["ioctl", 3, "0x3b66"],
    ["ioctl", 3, "0x3b70"],
    ["ioctl", 3, "0x3b70"],
    ["ioctl", 3, "0x3b71"], // the buffer mapped again, same bytes
    ["ioctl", 5, "0x3b6a"],
  ]);
  assert.deepEqual(k.callsOf("ioctl").filter((c) => c.request === IOMMU_MAP_DMA)[1].argIn, mapArg);
  space.backend.closeDevice(again);
  const before = k.callsOf("ioctl").length;
  space.free(buffer); // nothing mapped in the kernel now: no UNMAP, just munmap
  assert.equal(k.callsOf("ioctl").length, before);
  assert.equal(k.mappings.size, 0);
  space.close();
  assert.equal(k.openFds.size, 0);
});

Deno.test("type1: VfioContainer.unmapAll sends UNMAP_ALL and returns the size", () => {
  const k = type1Kernel({}, (c) => {
    if (c.request !== IOMMU_UNMAP_DMA) return undefined;
    put(c.arg!, [[16, 8, 0x30000n]]);
    return 0;
  });
  const backend = Type1Backend.open(k);
  backend.openDevice({ bdf: BDF, group: GROUP });
  const container = new VfioContainer(k, 3);
  assert.equal(container.unmapAll(), 0x30000n);
  // vfio_iommu_type1_dma_unmap: argsz 24, flags VFIO_DMA_UNMAP_FLAG_ALL (1 << 1), iova 0, size 0
  assert.deepEqual(k.callsOf("ioctl").at(-1)!.argIn, le(24, [[0, 4, 24], [4, 4, 2]]));
  backend.close();
});
