/**
 * The iommufd client, the cdev binding and IommufdBackend through DmaSpace, against a scripted
 * kernel: exact ioctl sequence and argument bytes (offsets from shared/reference/iommufd.md §4
 * and vfio.md §10), user arrays in mmap'ed scratch memory, EMSGSIZE retry, hints, unwinding.
 */

import assert from "node:assert/strict";
import { ERRNO } from "../../ffi/errno.ts";
import type { MappedMemory } from "../../ffi/kernel.ts";
import { DmaSpace } from "../../core/dma_space.ts";
import { IommufdBackend } from "../../core/iommufd_backend.ts";
import { Iommufd } from "../../core/iommufd.ts";
import type { IoctlHandler, RecordedCall } from "../helpers/recording_kernel.ts";
import { RecordingKernel } from "../helpers/recording_kernel.ts";
import { expectVfioError, io, le, put, summarize, u32At, u64At } from "./vfio_test_helpers.ts";

// iommufd.md §3 and vfio.md §2.
const IOMMU_DESTROY = io(0x80);
const IOMMU_IOAS_ALLOC = io(0x81);
const IOMMU_IOAS_ALLOW_IOVAS = io(0x82);
const IOMMU_IOAS_COPY = io(0x83);
const IOMMU_IOAS_IOVA_RANGES = io(0x84);
const IOMMU_IOAS_MAP = io(0x85);
const IOMMU_IOAS_UNMAP = io(0x86);
const IOMMU_OPTION = io(0x87);
const IOMMU_HWPT_ALLOC = io(0x89);
const IOMMU_GET_HW_INFO = io(0x8a);
const BIND_IOMMUFD = io(0x76);
const ATTACH_IOMMUFD_PT = io(0x77);
const DETACH_IOMMUFD_PT = io(0x78);
const CDEV = "/dev/vfio/devices/vfio0";
const BDF = "0000:00:03.0";
const DEV_ID = 1;
const IOAS_ID = 2;
const HWPT_ID = 3;
const FIRST_MMAP = 0x7f00_0000_0000n; // RecordingKernel's first anonymous mapping
const ADDRESS_WIDTH = 48n;
const X86_RANGES: [bigint, bigint][] = [[0n, 0xfedf_ffffn], [
  0xfef0_0000n,
  (1n << ADDRESS_WIDTH) - 1n,
]];

interface StubOptions {
  ranges?: [bigint, bigint][];
  fail?: Partial<Record<number, number>>;
}

/** The anonymous mapping of the stub that contains `address` (what the kernel dereferences). */
function userMemory(k: RecordingKernel, address: bigint): MappedMemory {
  for (const m of k.mappings) {
    if (address >= m.address && address < m.address + BigInt(m.length)) return m;
  }
  throw new Error(`no user memory at 0x${address.toString(16)}`);
}

function iommufdKernel(options: StubOptions = {}, first?: IoctlHandler): RecordingKernel {
  const k = new RecordingKernel();
  if (first !== undefined) k.onIoctl(first);
  k.files.set("/dev/iommu", "");
  k.files.set(CDEV, "");
  const ranges = options.ranges ?? X86_RANGES;
  k.onIoctl((c) => {
    const failure = options.fail?.[c.request!];
    if (failure !== undefined) return failure;
    switch (c.request) {
      case IOMMU_IOAS_ALLOC:
        put(c.arg!, [[8, 4, IOAS_ID]]);
        return 0;
      case BIND_IOMMUFD:
        put(c.arg!, [[12, 4, DEV_ID]]);
        return 0;
      case ATTACH_IOMMUFD_PT:
        put(c.arg!, [[8, 4, HWPT_ID]]);
        return 0;
      case IOMMU_IOAS_IOVA_RANGES:
        return answerRanges(k, c, ranges);
      case IOMMU_IOAS_MAP:
      case IOMMU_IOAS_UNMAP: // length stays as passed: exactly that much was unmapped
      case DETACH_IOMMUFD_PT:
      case IOMMU_DESTROY:
        return 0;
    }
    return undefined;
  });
  return k;
}

/** IOMMU_IOAS_IOVA_RANGES as iommufd.md §7 says: fill what fits, report the total, EMSGSIZE. */
function answerRanges(k: RecordingKernel, c: RecordedCall, ranges: [bigint, bigint][]): number {
  const capacity = u32At(c.arg!, 8);
  const pointer = u64At(c.arg!, 16);
  const mem = userMemory(k, pointer);
  const base = Number(pointer - mem.address);
  const view = new DataView(mem.bytes.buffer, mem.bytes.byteOffset);
  ranges.slice(0, capacity).forEach(([start, last], i) => {
    view.setBigUint64(base + 16 * i, start, true);
    view.setBigUint64(base + 16 * i + 8, last, true);
  });
  put(c.arg!, [[8, 4, ranges.length], [24, 8, 0x1000n]]);
  return capacity < ranges.length ? -ERRNO.EMSGSIZE : 0;
}

Deno.test("iommufd: setup, map, unmap and close issue the exact ioctls and bytes", () => {
  const k = iommufdKernel();
  const space = DmaSpace.open(k, "iommufd");
  const fd = space.backend.openDevice({ bdf: BDF, group: 5, cdev: CDEV });
  assert.equal(fd, 4);
  const buffer = space.allocate(4096, { read: true, write: true });
  assert.equal(buffer.iova, 0x1000n);
  assert.equal(buffer.vaddr, FIRST_MMAP + 0x2000n); // after the scratch page and its guard
  space.free(buffer);
  space.backend.closeDevice(fd);
  space.close();

  assert.deepEqual(summarize(k.calls), [
    ["open", "/dev/iommu", 3],
    // iommu_ioas_alloc: size@0, flags@4, out_ioas_id@8
    ["ioctl", 3, "0x3b81", le(12, [[0, 4, 12]])],
    ["open", CDEV, 4],
    // vfio_device_bind_iommufd: argsz@0, flags@4, iommufd@8, out_devid@12
    ["ioctl", 4, "0x3b76", le(16, [[0, 4, 16], [8, 4, 3]])],
    // vfio_device_attach_iommufd_pt: argsz@0, flags@4, pt_id@8
    ["ioctl", 4, "0x3b77", le(12, [[0, 4, 12], [8, 4, IOAS_ID]])],
    ["mmap"], // the scratch page for the user array
    // iommu_ioas_iova_ranges: size@0, ioas_id@4, num_iovas@8, allowed_iovas@16
    ["ioctl", 3, "0x3b84", le(32, [[0, 4, 32], [4, 4, IOAS_ID], [8, 4, 256], [16, 8, FIRST_MMAP]])],
    ["mmap"],
    // iommu_ioas_map: size@0, flags@4 (FIXED|WRITEABLE|READABLE), ioas_id@8, user_va@16,
    // length@24, iova@32
    [
      "ioctl",
      3,
      "0x3b85",
      le(40, [
        [0, 4, 40],
        [4, 4, 7],
        [8, 4, IOAS_ID],
        [
          16,
          8,
          FIRST_MMAP + 0x2000n,
        ],
        [24, 8, 0x1000n],
        [32, 8, 0x1000n],
      ]),
    ],
    // iommu_ioas_unmap: size@0, ioas_id@4, iova@8, length@16
    [
      "ioctl",
      3,
      "0x3b86",
      le(24, [[0, 4, 24], [4, 4, IOAS_ID], [8, 8, 0x1000n], [16, 8, 0x1000n]]),
    ],
    ["munmap"],
    // vfio_device_detach_iommufd_pt: argsz@0, flags@4
    ["ioctl", 4, "0x3b78", le(8, [[0, 4, 8]])],
    ["close", 4],
    // iommu_destroy: size@0, id@4
    ["ioctl", 3, "0x3b80", le(8, [[0, 4, 8], [4, 4, IOAS_ID]])],
    ["munmap"],
    ["close", 3],
  ]);
  assert.equal(k.openFds.size, 0);
  assert.equal(k.mappings.size, 0);
});

Deno.test("iommufd: IOVA ranges and alignment; re-read after attach", () => {
  const k = iommufdKernel();
  const backend = IommufdBackend.open(k);
  assert.deepEqual(backend.iovaRanges(), X86_RANGES.map(([start, end]) => ({ start, end })));
  assert.equal(backend.minPageSize(), 0x1000n);
  assert.equal(backend.mappingsAvailable(), undefined);
  backend.iovaRanges();
  const count = (): number =>
    k.callsOf("ioctl").filter((c) => c.request === IOMMU_IOAS_IOVA_RANGES).length;
  assert.equal(count(), 1); // cached
  backend.openDevice({ bdf: BDF, group: 5, cdev: CDEV });
  assert.deepEqual(backend.devices(), [{ bdf: BDF, fd: 4, devId: DEV_ID, hwptId: HWPT_ID }]);
  backend.iovaRanges();
  assert.equal(count(), 2); // attaching may have reserved more
  backend.close();
  assert.equal(k.openFds.size, 0);
});

Deno.test("iommufd: EMSGSIZE retry with a larger user buffer", () => {
  const many: [bigint, bigint][] = Array.from(
    { length: 300 },
    (_, i) => [BigInt(i) * 0x10_0000n, BigInt(i) * 0x10_0000n + 0x7_ffffn],
  );
  const k = iommufdKernel({ ranges: many });
  const iommufd = Iommufd.open(k);
  const got = iommufd.ioasIovaRanges(IOAS_ID);
  assert.equal(got.ranges.length, 300);
  assert.deepEqual(got.ranges[299], {
    start: 299n * 0x10_0000n,
    end: 299n * 0x10_0000n + 0x7_ffffn,
  });
  const calls = k.callsOf("ioctl").filter((c) => c.request === IOMMU_IOAS_IOVA_RANGES);
  assert.deepEqual(calls.map((c) => [u32At(c.argIn!, 8), c.result]), [[256, -ERRNO.EMSGSIZE], [
    300,
    0,
  ]]);
  // The second call used its own, larger mapping (released right after).
  assert.notEqual(u64At(calls[1].argIn!, 16), u64At(calls[0].argIn!, 16));
  assert.deepEqual(summarize(k.calls).map((c) => c[0]), [
    "open",
    "mmap",
    "ioctl",
    "mmap",
    "ioctl",
    "munmap",
  ]);
  iommufd.close();
  assert.equal(k.mappings.size, 0);
});

Deno.test("iommufd: EPERM on BIND hints at iommufd.allow_unsafe_interrupts; cdev closed", () => {
  const k = iommufdKernel({ fail: { [BIND_IOMMUFD]: -ERRNO.EPERM } });
  const space = DmaSpace.open(k, "iommufd");
  const e = expectVfioError(
    () => space.backend.openDevice({ bdf: BDF, group: 5, cdev: CDEV }),
    `${BDF}: VFIO_DEVICE_BIND_IOMMUFD failed with EPERM`,
    "allow_unsafe_interrupts=1",
    "modprobe iommufd",
  );
  assert.equal(e.operation, "VFIO_DEVICE_BIND_IOMMUFD");
  assert.deepEqual(summarize(k.calls).slice(-1), [["close", 4]]);
  space.close();
  assert.equal(k.openFds.size, 0);
});

Deno.test("iommufd: a failing ATTACH closes the cdev (which unbinds it)", () => {
  const k = iommufdKernel({ fail: { [ATTACH_IOMMUFD_PT]: -ERRNO.EINVAL } });
  const backend = IommufdBackend.open(k);
  expectVfioError(
    () => backend.openDevice({ bdf: BDF, group: 5, cdev: CDEV }),
    "VFIO_DEVICE_ATTACH_IOMMUFD_PT failed with EINVAL",
    "incompatible",
  );
  assert.deepEqual([...k.openFds.values()], ["/dev/iommu"]);
  backend.close();
  assert.equal(k.openFds.size, 0);
});

Deno.test("iommufd: open errors (no /dev/iommu, no cdev, IOAS_ALLOC failure)", () => {
  expectVfioError(() => IommufdBackend.open(new RecordingKernel()), "no iommufd", "CONFIG_IOMMUFD");
  const k = iommufdKernel({ fail: { [IOMMU_IOAS_ALLOC]: -ERRNO.ENOMEM } });
  expectVfioError(() => IommufdBackend.open(k), "IOMMU_IOAS_ALLOC failed with ENOMEM");
  assert.equal(k.openFds.size, 0);
  const ok = iommufdKernel();
  const backend = IommufdBackend.open(ok);
  expectVfioError(() => backend.openDevice({ bdf: BDF, group: 5 }), "CONFIG_VFIO_DEVICE_CDEV");
  backend.close();
});

Deno.test("iommufd: ENOMEM on IOAS_MAP points at RLIMIT_MEMLOCK; the memory is munmapped", () => {
  const k = iommufdKernel({ fail: { [IOMMU_IOAS_MAP]: -ERRNO.ENOMEM } });
  const space = DmaSpace.open(k, "iommufd");
  space.backend.openDevice({ bdf: BDF, group: 5, cdev: CDEV });
  expectVfioError(
    () => space.allocate(4096),
    "IOMMU_IOAS_MAP failed with ENOMEM",
    "RLIMIT_MEMLOCK",
  );
  assert.equal(k.mappings.size, 1); // only the client's scratch page
  space.close();
  assert.equal(k.mappings.size, 0);
  assert.equal(k.openFds.size, 0);
});

Deno.test("iommufd: auto-IOVA map, allow IOVAs, copy, option, destroy", () => {
  const k = iommufdKernel({}, (c) => {
    switch (c.request) {
      case IOMMU_IOAS_MAP:
        put(c.arg!, [[32, 8, 0x20_0000n]]);
        return 0;
      case IOMMU_IOAS_ALLOW_IOVAS:
      case IOMMU_IOAS_COPY:
        if (c.request === IOMMU_IOAS_COPY) put(c.arg!, [[24, 8, 0x40_0000n]]);
        return 0;
      case IOMMU_OPTION:
        put(c.arg!, [[16, 8, 1n]]);
        return 0;
    }
    return undefined;
  });
  const iommufd = Iommufd.open(k);
  const mem = k.mmapAnonymous(0x2000) as MappedMemory;
  const auto = iommufd.ioasMap(IOAS_ID, mem.address, 0x2000n, { read: true, write: false });
  assert.equal(auto, 0x20_0000n); // the IOVA the kernel chose, read back
  const map = k.callsOf("ioctl").at(-1)!;
  assert.equal(u32At(map.argIn!, 4), 4); // READABLE only, no FIXED_IOVA
  assert.equal(u64At(map.argIn!, 32), 0n);

  iommufd.ioasAllowIovas(IOAS_ID, [{ start: 0x1000n, end: 0xffff_ffffn }]);
  const allow = k.callsOf("ioctl").at(-1)!;
  assert.deepEqual(allow.argIn!.subarray(0, 16), le(16, [[0, 4, 24], [4, 4, IOAS_ID], [8, 4, 1]]));
  const array = userMemory(k, u64At(allow.argIn!, 16));
  assert.deepEqual(array.bytes.subarray(0, 16), le(16, [[0, 8, 0x1000n], [8, 8, 0xffff_ffffn]]));

  const dst = iommufd.ioasCopy(5, IOAS_ID, 0x20_0000n, 0x2000n, { read: true, write: true });
  assert.equal(dst, 0x40_0000n);
  const copy = k.callsOf("ioctl").at(-1)!;
  // iommu_ioas_copy: size@0, flags@4, dst_ioas_id@8, src_ioas_id@12, length@16, dst_iova@24,
  // src_iova@32
  assert.deepEqual(
    copy.argIn,
    le(40, [[0, 4, 40], [4, 4, 6], [8, 4, 5], [12, 4, IOAS_ID], [
      16,
      8,
      0x2000n,
    ], [32, 8, 0x20_0000n]]),
  );

  assert.equal(iommufd.option(1, 1, IOAS_ID), 1n); // HUGE_PAGES, GET
  const option = k.callsOf("ioctl").at(-1)!;
  // iommu_option: size@0, option_id@4, op@8 (u16), object_id@12, val64@16
  assert.deepEqual(option.argIn, le(24, [[0, 4, 24], [4, 4, 1], [8, 2, 1], [12, 4, IOAS_ID]]));

  iommufd.destroy(7);
  assert.deepEqual(k.callsOf("ioctl").at(-1)!.argIn, le(8, [[0, 4, 8], [4, 4, 7]]));
  iommufd.close();
  k.munmap(mem);
  assert.equal(k.mappings.size, 0);
});

Deno.test("iommufd: GET_HW_INFO decodes VT-d CAP/ECAP; HWPT_ALLOC passes data by pointer", () => {
  const k = iommufdKernel();
  // CAP: ND=6, SAGAW=48-bit (bit 2), MGAW=47, SLLPS 2 MiB, PSI, NFR=7 (VT-d §11.4.2)
  const cap = 6n | (0b00100n << 8n) | (47n << 16n) | (1n << 34n) | (1n << 39n) | (7n << 40n);
  // ECAP: C, QI, IR, SC, NEST, PSS=19, PASID, SMTS, SLADS, SLTS, FLTS (VT-d §11.4.3)
  const ecap = 1n | 2n | 8n | 0x80n | (1n << 26n) | (19n << 35n) | (1n << 40n) | (1n << 43n) |
    (1n << 45n) | (1n << 46n) | (1n << 47n);
  k.onIoctl((c) => {
    if (c.request === IOMMU_GET_HW_INFO) {
      const data = userMemory(k, u64At(c.arg!, 16));
      const at = Number(u64At(c.arg!, 16) - data.address);
      data.bytes.set(le(24, [[0, 4, 1], [8, 8, cap], [16, 8, ecap]]), at);
      put(c.arg!, [[12, 4, 24], [24, 4, 1], [28, 1, 20], [32, 8, 1n]]);
      return 0;
    }
    if (c.request === IOMMU_HWPT_ALLOC) {
      put(c.arg!, [[16, 4, 9]]);
      return 0;
    }
    return undefined;
  });
  const iommufd = Iommufd.open(k);
  const info = iommufd.getHwInfo(DEV_ID);
  const call = k.callsOf("ioctl").at(-1)!;
  // iommu_hw_info: size@0, flags@4, dev_id@8, data_len@12, data_uptr@16
  assert.deepEqual(call.argIn!.subarray(0, 16), le(16, [[0, 4, 40], [8, 4, DEV_ID], [12, 4, 256]]));
  assert.equal(info.type, 1);
  assert.equal(info.data.length, 24);
  assert.equal(info.capabilities, 1n);
  assert.equal(info.maxPasidLog2, 20);
  const vtd = info.vtd!;
  assert.equal(vtd.flags, 1);
  assert.equal(vtd.domains, 65536);
  assert.deepEqual(vtd.secondStageWidths, [48]);
  assert.equal(vtd.maxGuestAddressWidth, 48);
  assert.deepEqual(vtd.secondStageLargePages, [2n * 1024n * 1024n]);
  assert.equal(vtd.faultRecordingRegisters, 8);
  assert.equal(vtd.pasidBits, 20);
  assert.ok(vtd.coherent && vtd.queuedInvalidation && vtd.interruptRemapping && vtd.snoopControl);
  assert.ok(vtd.nesting && vtd.scalableMode && vtd.dirtyTracking && vtd.firstStage);
  assert.ok(!vtd.cachingMode && !vtd.deviceTlb && !vtd.pageRequests);

  const s1 = le(24, [[0, 8, 1n], [8, 8, 0x1234_5000n], [16, 4, 48]]); // iommu_hwpt_vtd_s1
  assert.equal(iommufd.hwptAlloc({ devId: DEV_ID, ptId: 4, flags: 0, dataType: 1, data: s1 }), 9);
  const alloc = k.callsOf("ioctl").at(-1)!;
  // iommu_hwpt_alloc: size@0, flags@4, dev_id@8, pt_id@12, data_type@24, data_len@28,
  // data_uptr@32
  const pointer = u64At(alloc.argIn!, 32);
  assert.deepEqual(
    alloc.argIn,
    le(48, [[0, 4, 48], [8, 4, DEV_ID], [12, 4, 4], [24, 4, 1], [28, 4, 24], [32, 8, pointer]]),
  );
  const data = userMemory(k, pointer);
  const at = Number(pointer - data.address);
  assert.deepEqual(data.bytes.subarray(at, at + 24), s1);
  iommufd.close();
});
