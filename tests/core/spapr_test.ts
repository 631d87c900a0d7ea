/**
 * The sPAPR TCE client and SpaprBackend through DmaSpace on a scripted ppc64 kernel (powerpc
 * ioctl encoding, 64 KiB pages): window discovery, DDW creation, preregistration, maps inside
 * windows only, the return-1 quirk, and unwinding. Offsets from shared/reference/vfio.md §9–§10.
 */

import assert from "node:assert/strict";
import { ERRNO } from "../../ffi/errno.ts";
import { DmaSpace } from "../../core/dma_space.ts";
import { SpaprBackend } from "../../core/spapr_backend.ts";
import { SpaprTceClient } from "../../core/spapr.ts";
import { RecordingKernel } from "../helpers/recording_kernel.ts";
import { adoptFd, cstr, expectVfioError, ioPpc, le, put, summarize } from "./vfio_test_helpers.ts";

const GET_API_VERSION = ioPpc(0x64);
const CHECK_EXTENSION = ioPpc(0x65);
const SET_IOMMU = ioPpc(0x66);
const GROUP_GET_STATUS = ioPpc(0x67);
const GROUP_SET_CONTAINER = ioPpc(0x68);
const GROUP_UNSET_CONTAINER = ioPpc(0x69);
const GROUP_GET_DEVICE_FD = ioPpc(0x6a);
const TCE_GET_INFO = ioPpc(0x70);
const MAP_DMA = ioPpc(0x71);
const UNMAP_DMA = ioPpc(0x72);
const ENABLE = ioPpc(0x73);
const REGISTER_MEMORY = ioPpc(0x75);
const UNREGISTER_MEMORY = ioPpc(0x76);
const TCE_CREATE = ioPpc(0x77);
const TCE_REMOVE = ioPpc(0x78);
const EEH_PE_OP = ioPpc(0x79);
const SPAPR_TCE_IOMMU = 1n + 1n; // VFIO_SPAPR_TCE_IOMMU = 2
const SPAPR_TCE_V2_IOMMU = 7n;
const PAGE = 0x1_0000; // 64 KiB host pages
const GiB = 1n << 30n;
const TiB = 1n << 40n;
const DMA32_SIZE = 2n * GiB;
const DDW_START = 1n << 59n; // PowerNV window #1 (iommu-models.md §3)
const DDW_PGSIZES = 0x1000n | 0x1_0000n | 0x100_0000n; // 4 KiB | 64 KiB | 16 MiB
const BDF = "0001:00:01.0";
const DEVICE_FD = 100;

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

interface StubOptions {
  v2?: boolean;
  fail?: Partial<Record<number, number>>;
}

function spaprKernel(options: StubOptions = {}): RecordingKernel {
  const k = new RecordingKernel("powerpc", PAGE);
  k.files.set("/dev/vfio/vfio", "");
  k.files.set("/dev/vfio/1", "");
  k.onIoctl((c) => {
    const failure = options.fail?.[c.request!];
    if (failure !== undefined) return failure;
    switch (c.request) {
      case GET_API_VERSION:
        return 0;
      case CHECK_EXTENSION:
        return c.value === SPAPR_TCE_V2_IOMMU ? (options.v2 === false ? 0 : 1) : 1;
      case GROUP_GET_STATUS:
        put(c.arg!, [[4, 4, 1]]);
        return 0;
      case TCE_GET_INFO:
        // flags DDW, dma32 [0, 2 GiB), ddw {pgsizes, max windows 2, levels 5}
        put(c.arg!, [
          [4, 4, options.v2 === false ? 0 : 1],
          [8, 4, 0],
          [12, 4, Number(DMA32_SIZE)],
          [
            16,
            8,
            DDW_PGSIZES,
          ],
          [24, 4, 2],
          [28, 4, 5],
        ]);
        return 0;
      case TCE_CREATE:
        put(c.arg!, [[32, 8, DDW_START]]);
        return 0;
      case GROUP_GET_DEVICE_FD:
        return adoptFd(k, DEVICE_FD, "vfio-device");
      case GROUP_SET_CONTAINER:
      case GROUP_UNSET_CONTAINER:
      case SET_IOMMU:
      case ENABLE:
      case REGISTER_MEMORY:
      case UNREGISTER_MEMORY:
      case MAP_DMA:
      case UNMAP_DMA:
      case TCE_REMOVE:
        return 0;
      case EEH_PE_OP:
        return 2; // GET_STATE → STOPPED
    }
    return undefined;
  });
  return k;
}

Deno.test("spapr: window setup, map inside the new window, out-of-window refused", () => {
  const k = spaprKernel();
  const space = DmaSpace.open(k, "spapr");
  const backend = space.backend as SpaprBackend;
  const fd = backend.openDevice({ bdf: BDF, group: 1 });
  assert.equal(fd, DEVICE_FD);
  const window = backend.createWindow(16, TiB);
  assert.deepEqual(window, {
    start: DDW_START,
    end: DDW_START + TiB - 1n,
    pageSize: 0x1_0000n,
    isDefault: false,
  });
  assert.deepEqual(space.ranges(), [
    { start: 0n, end: DMA32_SIZE - 1n },
    { start: DDW_START, end: DDW_START + TiB - 1n },
  ]);
  const buffer = space.allocate(PAGE, { iova: DDW_START + 0x10_0000n });
  assert.equal(buffer.iovaLow, 0x10_0000);
  assert.equal(buffer.iovaHigh, 0x0800_0000); // 1 << 59 >> 32

  const before = k.calls.length;
  expectVfioError(
    () => space.allocate(PAGE, { iova: 0x1_0000_0000n }), // between the two windows
    "not inside one usable IOVA range",
    "[0x0, 0x7fffffff]",
    "[0x800000000000000, 0x80000ffffffffff]",
  );
  assert.equal(k.calls.length, before); // refused before any system call
  space.free(buffer);
  backend.removeWindow(DDW_START);
  space.backend.closeDevice(fd);
  space.close();

  const vaddr = buffer.vaddr;
  assert.deepEqual(summarize(k.calls), [
    ["open", "/dev/vfio/vfio", 3],
    ["ioctl", 3, "0x20003b64", undefined],
    ["ioctl", 3, "0x20003b65", SPAPR_TCE_V2_IOMMU],
    ["open", "/dev/vfio/1", 4],
    ["ioctl", 4, "0x20003b67", le(8, [[0, 4, 8]])],
    ["ioctl", 4, "0x20003b68", le(4, [[0, 4, 3]])],
    ["ioctl", 3, "0x20003b66", SPAPR_TCE_V2_IOMMU],
    // vfio_iommu_spapr_tce_info: argsz@0 (32 bytes: room for ddw)
    ["ioctl", 3, "0x20003b70", le(32, [[0, 4, 32]])],
    ["ioctl", 4, "0x20003b6a", cstr(BDF)],
    // vfio_iommu_spapr_tce_create: argsz@0, flags@4, page_shift@8, window_size@16, levels@24
    ["ioctl", 3, "0x20003b77", le(40, [[0, 4, 40], [8, 4, 16], [16, 8, TiB], [24, 4, 2]])],
    ["mmap"],
    // vfio_iommu_spapr_register_memory: argsz@0, flags@4, vaddr@8, size@16
    ["ioctl", 3, "0x20003b75", le(24, [[0, 4, 24], [8, 8, vaddr], [16, 8, BigInt(PAGE)]])],
    // vfio_iommu_type1_dma_map on sPAPR: argsz@0, flags@4 (READ|WRITE), vaddr@8, iova@16, size@24
    [
      "ioctl",
      3,
      "0x20003b71",
      le(32, [[0, 4, 32], [4, 4, 3], [8, 8, vaddr], [
        16,
        8,
        DDW_START + 0x10_0000n,
      ], [24, 8, BigInt(PAGE)]]),
    ],
    [
      "ioctl",
      3,
      "0x20003b72",
      le(24, [[0, 4, 24], [8, 8, DDW_START + 0x10_0000n], [
        16,
        8,
        BigInt(PAGE),
      ]]),
    ],
    ["ioctl", 3, "0x20003b76", le(24, [[0, 4, 24], [8, 8, vaddr], [16, 8, BigInt(PAGE)]])],
    ["munmap"],
    // vfio_iommu_spapr_tce_remove: argsz@0, flags@4, start_addr@8
    ["ioctl", 3, "0x20003b78", le(16, [[0, 4, 16], [8, 8, DDW_START]])],
    ["close", DEVICE_FD],
    ["ioctl", 4, "0x20003b69", undefined],
    ["close", 4],
    ["close", 3],
  ]);
  assert.equal(k.openFds.size, 0);
  assert.equal(k.mappings.size, 0);
});

Deno.test("spapr: the DDW option creates the window on the first device; allocations use it", () => {
  const k = spaprKernel();
  const space = DmaSpace.open(k, "spapr", {
    backend: { spapr: { window: { pageShift: 24, size: TiB, levels: 3 } } },
  });
  space.backend.openDevice({ bdf: BDF, group: 1 });
  assert.equal(space.pageSize(), 0x100_0000n); // the largest TCE page of all windows
  const big = space.allocate(PAGE, { align: 4n * GiB }); // only the DDW has a 4 GiB boundary
  assert.equal(big.iova, DDW_START);
  const small = space.allocate(PAGE); // rounds up to one 16 MiB TCE page, in the 32-bit window
  assert.equal(small.iova, 0x100_0000n);
  assert.equal(small.size, 0x100_0000);
  const create = k.callsOf("ioctl").find((c) => c.request === TCE_CREATE)!;
  assert.deepEqual(create.argIn, le(40, [[0, 4, 40], [8, 4, 24], [16, 8, TiB], [24, 4, 3]]));
  space.close();
  assert.equal(k.openFds.size, 0);
  assert.equal(k.mappings.size, 0);
  const unregister = k.callsOf("ioctl").filter((c) => c.request === UNREGISTER_MEMORY);
  assert.equal(unregister.length, 2);
});

Deno.test("spapr: MAP returning 1 (misaligned IOVA quirk) is an EINVAL error; nothing leaks", () => {
  const k = spaprKernel({ fail: { [MAP_DMA]: 1 } });
  const space = DmaSpace.open(k, "spapr");
  space.backend.openDevice({ bdf: BDF, group: 1 });
  const e = expectVfioError(
    () => space.allocate(PAGE),
    "VFIO_IOMMU_MAP_DMA failed with EINVAL",
    "returned 1",
    "TCE page size",
  );
  assert.equal(e.errnoName, "EINVAL");
  assert.deepEqual(summarize(k.calls).slice(-4).map((c) => c.slice(0, 3)), [
    ["ioctl", 3, "0x20003b75"],
    ["ioctl", 3, "0x20003b71"],
    ["ioctl", 3, "0x20003b76"], // unregistered again
    ["munmap"],
  ]);
  space.close();
  assert.equal(k.openFds.size, 0);
  assert.equal(k.mappings.size, 0);
});

Deno.test("spapr: memory registration is counted per region", () => {
  const k = spaprKernel();
  const backend = SpaprBackend.open(k);
  backend.openDevice({ bdf: BDF, group: 1 });
  const mem = k.mmapAnonymous(PAGE) as { address: bigint };
  backend.map(mem.address, 0x1_0000n as never, BigInt(PAGE), { read: true, write: true });
  backend.map(mem.address, 0x2_0000n as never, BigInt(PAGE), { read: true, write: false });
  const count = (request: number): number =>
    k.callsOf("ioctl").filter((c) => c.request === request).length;
  assert.equal(count(REGISTER_MEMORY), 1);
  backend.unmap(0x1_0000n as never, BigInt(PAGE));
  assert.equal(count(UNREGISTER_MEMORY), 0);
  backend.unmap(0x2_0000n as never, BigInt(PAGE));
  assert.equal(count(UNREGISTER_MEMORY), 1);
  expectVfioError(
    () =>
      backend.map(mem.address, (DMA32_SIZE - 0x1_0000n) as never, 0x2_0000n, {
        read: true,
        write: true,
      }),
    "not inside one DMA window",
  );
  backend.close();
  assert.equal(k.openFds.size, 0);
});

Deno.test("spapr: TCE v1 fallback enables the container and skips registration", () => {
  const k = spaprKernel({ v2: false });
  const space = DmaSpace.open(k, "spapr");
  space.backend.openDevice({ bdf: BDF, group: 1 });
  const buffer = space.allocate(PAGE);
  assert.equal(buffer.iova, BigInt(PAGE));
  const requests = k.callsOf("ioctl").map((c) => hex(c.request!));
  assert.ok(requests.includes(hex(ENABLE)));
  assert.ok(!requests.includes(hex(REGISTER_MEMORY)));
  assert.equal(k.callsOf("ioctl").find((c) => c.request === SET_IOMMU)!.value, SPAPR_TCE_IOMMU);
  expectVfioError(
    () => (space.backend as SpaprBackend).createWindow(16, TiB),
    "no dynamic DMA windows",
  );
  space.close();
  assert.equal(k.openFds.size, 0);
});

Deno.test("spapr: window limits and EEH", () => {
  const k = spaprKernel({ fail: { [TCE_CREATE]: -ERRNO.ENOSPC } });
  const backend = SpaprBackend.open(k);
  expectVfioError(
    () => backend.createWindow(16, TiB),
    "no group is attached yet",
    "open a device first",
  );
  backend.openDevice({ bdf: BDF, group: 1 });
  expectVfioError(
    () => backend.createWindow(16, TiB),
    "TCE_CREATE failed with ENOSPC",
    "remove a window",
  );
  const tce = new SpaprTceClient(k, 3);
  assert.equal(tce.eehPeOp(4), 2); // VFIO_EEH_PE_GET_STATE → STOPPED
  const eeh = k.callsOf("ioctl").at(-1)!;
  // vfio_eeh_pe_op: argsz@0, flags@4, op@8
  assert.deepEqual(eeh.argIn, le(40, [[0, 4, 40], [8, 4, 4]]));
  backend.close();
  assert.equal(k.openFds.size, 0);
});
