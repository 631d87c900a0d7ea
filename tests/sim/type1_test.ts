/**
 * The VFIO container and type1 backend on the simulator, driven by raw ioctls (vfio.md §3, §5, §6,
 * §8): a whole session, the MAP/UNMAP errno tables, v1 versus v2 unmap, the DMA entry limit,
 * locked-memory accounting, MSI isolation, group viability, and release on close.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ERRNO } from "../../ffi/errno.ts";
import type { MappedMemory } from "../../ffi/kernel.ts";
import { O_RDWR } from "../../ffi/kernel.ts";
import { decode, encode } from "../../ffi/uapi/layout.ts";
import type { SimMachine } from "../../sim/mod.ts";
import * as U from "../../ffi/uapi/mod.ts";
import { FakeDevice } from "./fake_device.ts";
import { BDF, fdArg, io, machine, session } from "./vfio_fixture.ts";

const MiB = 1024 * 1024;

function cstr(s: string): Uint8Array {
  return new TextEncoder().encode(s + "\0");
}

function mapArg(vaddr: bigint, iova: bigint, size: bigint, flags = 3, argsz = 32): Uint8Array {
  return encode(U.vfio_iommu_type1_dma_map, { argsz, flags, vaddr, iova, size });
}

function unmapArg(iova: bigint, size: bigint, flags = 0): Uint8Array {
  return encode(U.vfio_iommu_type1_dma_unmap, { argsz: 24, flags, iova, size });
}

function buffer(m: SimMachine, bytes: number): MappedMemory {
  const mem = m.kernel.mmapAnonymous(bytes);
  assert.ok(typeof mem !== "number");
  return mem;
}

Deno.test({
  name: "type1 session: version, extensions, status, SET_IOMMU rules, GET_INFO caps",
  permissions: "none",
  fn() {
    const m = machine();
    const k = m.kernel;
    const container = k.open("/dev/vfio/vfio", O_RDWR);
    assert.equal(container, 3);
    assert.equal(io(m, container, U.VFIO_GET_API_VERSION), U.VFIO_API_VERSION);
    const ext = (id: number): number => io(m, container, U.VFIO_CHECK_EXTENSION, id);
    assert.deepEqual([1, 2, 3, 4, 6, 8, 9, 10, 99].map(ext), [1, 0, 1, 0, 1, 0, 1, 0, 0]);
    assert.equal(io(m, container, U.VFIO_IOMMU_GET_INFO, new Uint8Array(24)), -ERRNO.EINVAL);
    assert.equal(io(m, container, U.VFIO_SET_IOMMU, U.VFIO_TYPE1v2_IOMMU), -ERRNO.EINVAL);

    const group = k.open("/dev/vfio/2", O_RDWR);
    assert.equal(k.open("/dev/vfio/2", O_RDWR), -ERRNO.EBUSY);
    assert.equal(k.open("/dev/vfio/7", O_RDWR), -ERRNO.ENOENT);
    const status = encode(U.vfio_group_status, { argsz: 8 });
    assert.equal(io(m, group, U.VFIO_GROUP_GET_STATUS, status), 0);
    assert.equal(decode(U.vfio_group_status, status).flags, U.VFIO_GROUP_FLAGS_VIABLE);
    assert.equal(io(m, group, U.VFIO_GROUP_GET_STATUS, new Uint8Array(4)), -ERRNO.EFAULT);
    assert.equal(
      io(m, group, U.VFIO_GROUP_GET_STATUS, encode(U.vfio_group_status, { argsz: 7 })),
      -ERRNO.EINVAL,
    );
    assert.equal(io(m, group, U.VFIO_GROUP_GET_DEVICE_FD, cstr(BDF)), -ERRNO.EINVAL);
    assert.equal(io(m, group, U.VFIO_GROUP_UNSET_CONTAINER), -ERRNO.EINVAL);
    assert.equal(io(m, group, U.VFIO_GROUP_SET_CONTAINER, fdArg(99)), -ERRNO.EBADF);
    assert.equal(io(m, group, U.VFIO_GROUP_SET_CONTAINER, fdArg(group)), -ERRNO.EBADFD);
    assert.equal(io(m, group, U.VFIO_GROUP_SET_CONTAINER, new Uint8Array(2)), -ERRNO.EFAULT);
    assert.equal(io(m, group, U.VFIO_GROUP_SET_CONTAINER, fdArg(container)), 0);
    assert.equal(io(m, group, U.VFIO_GROUP_SET_CONTAINER, fdArg(container)), -ERRNO.EINVAL);
    assert.equal(io(m, group, U.VFIO_GROUP_GET_STATUS, status), 0);
    assert.equal(decode(U.vfio_group_status, status).flags, 3);
    assert.equal(io(m, group, U.VFIO_GROUP_GET_DEVICE_FD, cstr(BDF)), -ERRNO.EINVAL);
    assert.equal(m.kernel.ioctl(group, 0x3b99), -ERRNO.ENOTTY);
    assert.equal(io(m, container, U.VFIO_IOMMU_MAP_DMA, mapArg(0n, 0n, 4096n)), -ERRNO.EINVAL);

    assert.equal(io(m, container, U.VFIO_SET_IOMMU, U.VFIO_DMA_CC_IOMMU), -ERRNO.ENODEV);
    assert.equal(io(m, container, U.VFIO_SET_IOMMU, 42), -ERRNO.ENODEV);
    assert.equal(io(m, container, U.VFIO_SET_IOMMU, U.VFIO_UNMAP_ALL), -ERRNO.EINVAL);
    assert.equal(io(m, container, U.VFIO_SET_IOMMU, U.VFIO_TYPE1_NESTING_IOMMU), -ERRNO.EINVAL);
    assert.equal(io(m, container, U.VFIO_SET_IOMMU, U.VFIO_TYPE1v2_IOMMU), 0);
    assert.equal(io(m, container, U.VFIO_SET_IOMMU, U.VFIO_TYPE1v2_IOMMU), -ERRNO.EINVAL);
    const dmaCc = m.iommu.facts.enforceCacheCoherency ? 1 : 0;
    assert.deepEqual([1, 3, 4, 9, 10].map(ext), [1, 1, dmaCc, 1, 1]);
    assert.equal(m.kernel.ioctl(container, 0x3b99), -ERRNO.ENOTTY);

    // GET_INFO: short argsz reports the size needed, caps when it fits (vfio.md §8.2).
    const info = encode(U.vfio_iommu_type1_info, { argsz: 24 });
    assert.equal(io(m, container, U.VFIO_IOMMU_GET_INFO, info), 0);
    const short = decode(U.vfio_iommu_type1_info, info);
    assert.equal(short.flags, U.VFIO_IOMMU_INFO_PGSIZES | U.VFIO_IOMMU_INFO_CAPS);
    assert.equal(short.cap_offset, 0);
    assert.equal(short.argsz, 24 + 32 + 16 + 16 + 16 * 2);
    assert.equal(short.iova_pgsizes, m.iommu.facts.pgsizeBitmap);
    const full = encode(U.vfio_iommu_type1_info, { argsz: short.argsz }, short.argsz - 24);
    assert.equal(io(m, container, U.VFIO_IOMMU_GET_INFO, full), 0);
    const got = decode(U.vfio_iommu_type1_info, full);
    assert.equal(got.cap_offset, 24);
    assert.equal(got.argsz, short.argsz);
    const hdr = (at: number) => decode(U.vfio_info_cap_header, full, at);
    assert.deepEqual(hdr(24), { id: U.VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION, version: 1, next: 56 });
    assert.deepEqual(hdr(56), { id: U.VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, version: 1, next: 72 });
    assert.deepEqual(hdr(72), { id: U.VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, version: 1, next: 0 });
    const mig = decode(U.vfio_iommu_type1_info_cap_migration, full, 24);
    assert.equal(mig.pgsize_bitmap, 4096n);
    assert.equal(mig.max_dirty_bitmap_size, 0x1000_0000n);
    assert.equal(decode(U.vfio_iommu_type1_info_dma_avail, full, 56).avail, 65535);
    assert.equal(decode(U.vfio_iommu_type1_info_cap_iova_range, full, 72).nr_iovas, 2);
    const end = m.iommu.facts.aperture.end;
    assert.deepEqual(decode(U.vfio_iova_range, full, 88), { start: 0n, end: 0xfedf_ffffn });
    assert.deepEqual(decode(U.vfio_iova_range, full, 104), { start: 0xfef0_0000n, end });
    assert.equal(io(m, container, U.VFIO_IOMMU_GET_INFO, new Uint8Array(8)), -ERRNO.EFAULT);
    assert.equal(
      io(m, container, U.VFIO_IOMMU_GET_INFO, encode(U.vfio_iommu_type1_info, { argsz: 15 })),
      -ERRNO.EINVAL,
    );
    // 16 ≤ argsz < 24: only the first argsz bytes are written back.
    const partial = encode(U.vfio_iommu_type1_info, { argsz: 16, cap_offset: 0xabcd });
    assert.equal(io(m, container, U.VFIO_IOMMU_GET_INFO, partial), 0);
    assert.equal(decode(U.vfio_iommu_type1_info, partial).cap_offset, 0xabcd);
    assert.equal(decode(U.vfio_iommu_type1_info, partial).argsz, 120);
  },
});

Deno.test({
  name: "type1 MAP_DMA errno table in check order, UNMAP size write-back, ALL",
  permissions: "none",
  fn() {
    const m = machine();
    const { container } = session(m);
    const mem = buffer(m, 4 * MiB);
    const v = mem.address;
    const map = (arg: Uint8Array): number => io(m, container, U.VFIO_IOMMU_MAP_DMA, arg);
    assert.equal(map(new Uint8Array(31)), -ERRNO.EFAULT);
    assert.equal(map(mapArg(v, 0n, 4096n, 3, 31)), -ERRNO.EINVAL);
    assert.equal(map(mapArg(v, 0n, 4096n, 3 | 8)), -ERRNO.EINVAL);
    assert.equal(map(mapArg(v, 0n, 4096n, 0)), -ERRNO.EINVAL);
    assert.equal(map(mapArg(v, 0n, 4096n, 4 | 1)), -ERRNO.EINVAL);
    assert.equal(map(mapArg(v, 0n, 0n)), -ERRNO.EINVAL);
    assert.equal(map(mapArg(v, 0x800n, 4096n)), -ERRNO.EINVAL);
    assert.equal(map(mapArg(v + 1n, 0n, 4096n)), -ERRNO.EINVAL);
    assert.equal(map(mapArg(v, 0xffff_ffff_ffff_f000n, 0x2000n)), -ERRNO.EINVAL);
    assert.equal(map(mapArg(v, 0n, 4096n, 4)), -ERRNO.ENOENT);
    assert.equal(map(mapArg(v, 0x10_0000n, 0x20_0000n)), 0);
    assert.equal(map(mapArg(v, 0x20_0000n, 0x1000n)), -ERRNO.EEXIST);
    assert.equal(map(mapArg(v, 0x10_0000n, 0x1000n, 4)), -ERRNO.EINVAL); // not invalidated
    assert.equal(map(mapArg(v, 0xfee0_0000n, 0x1000n)), -ERRNO.EINVAL); // MSI window
    assert.equal(map(mapArg(v, 1n << 48n, 0x1000n)), -ERRNO.EINVAL); // beyond the aperture
    assert.equal(map(mapArg(0x1000n, 0x40_0000n, 0x1000n)), -ERRNO.EFAULT); // unmapped vaddr
    assert.equal(map(mapArg(v + 0x3f_f000n, 0x50_0000n, 0x2000n)), -ERRNO.EFAULT); // runs off
    // The mapping really translates.
    const t = m.iommu.translate(m.fn(BDF).requester, undefined, 0x10_0123n, "write", 4);
    assert.ok(t.ok);

    const unmap = (arg: Uint8Array): number => io(m, container, U.VFIO_IOMMU_UNMAP_DMA, arg);
    const probe = unmapArg(0x10_0000n, 0x1000n);
    assert.equal(unmap(probe), -ERRNO.EINVAL); // v2: would split
    assert.equal(decode(U.vfio_iommu_type1_dma_unmap, probe).size, 0x1000n); // not written back
    assert.equal(unmap(unmapArg(0x10_0000n, 0x1000n, 8)), -ERRNO.EINVAL);
    assert.equal(unmap(unmapArg(0x10_0800n, 0x1000n)), -ERRNO.EINVAL);
    assert.equal(unmap(unmapArg(0x10_0000n, 0x1000n, 2)), -ERRNO.EINVAL); // ALL needs 0/0
    const nothing = unmapArg(0x80_0000n, 0x1000n);
    assert.equal(unmap(nothing), 0);
    assert.equal(decode(U.vfio_iommu_type1_dma_unmap, nothing).size, 0n);
    const whole = unmapArg(0n, 0x100_0000n);
    assert.equal(unmap(whole), 0);
    assert.equal(decode(U.vfio_iommu_type1_dma_unmap, whole).size, 0x20_0000n);
    assert.ok(!m.iommu.translate(m.fn(BDF).requester, undefined, 0x10_0123n, "write", 4).ok);

    assert.equal(map(mapArg(v, 0x10_0000n, 0x1000n)), 0);
    assert.equal(map(mapArg(v + 0x1000n, 0x20_0000n, 0x1000n)), 0);
    const all = unmapArg(0n, 0n, U.VFIO_DMA_UNMAP_FLAG_ALL);
    assert.equal(unmap(all), 0);
    assert.equal(decode(U.vfio_iommu_type1_dma_unmap, all).size, 0x2000n);
  },
});

Deno.test({
  name: "type1 UNMAP: v1 removes whole mappings from their first byte, v2 refuses to split",
  permissions: "none",
  fn() {
    for (const [type, v2] of [[U.VFIO_TYPE1_IOMMU, false], [U.VFIO_TYPE1v2_IOMMU, true]] as const) {
      const m = machine();
      const { container } = session(m, type);
      const mem = buffer(m, 16 * 4096);
      const map = (iova: bigint, size: bigint): number =>
        io(m, container, U.VFIO_IOMMU_MAP_DMA, mapArg(mem.address, iova, size));
      const unmap = (iova: bigint, size: bigint): [number, bigint] => {
        const arg = unmapArg(iova, size);
        const r = io(m, container, U.VFIO_IOMMU_UNMAP_DMA, arg);
        return [r, decode(U.vfio_iommu_type1_dma_unmap, arg).size];
      };
      assert.equal(map(0x10000n, 0x4000n), 0);
      // A request starting inside the mapping.
      assert.deepEqual(unmap(0x11000n, 0x1000n), v2 ? [-ERRNO.EINVAL, 0x1000n] : [0, 0n]);
      // A request covering only the first page.
      assert.deepEqual(unmap(0x10000n, 0x1000n), v2 ? [-ERRNO.EINVAL, 0x1000n] : [0, 0x4000n]);
      if (v2) assert.deepEqual(unmap(0x10000n, 0x4000n), [0, 0x4000n]);
      // DIRTY_PAGES exists for v2 only.
      const dirty = encode(U.vfio_iommu_type1_dirty_bitmap, { argsz: 8, flags: 1 });
      assert.equal(io(m, container, U.VFIO_IOMMU_DIRTY_PAGES, dirty), v2 ? 0 : -ERRNO.EACCES);
    }
  },
});

Deno.test({
  name: "type1 DIRTY_PAGES: validation and an all-dirty bitmap for IOMMU-backed devices",
  permissions: "none",
  fn() {
    const m = machine();
    const { container } = session(m);
    const mem = buffer(m, 8 * 4096);
    const bitmap = buffer(m, 4096);
    assert.equal(io(m, container, U.VFIO_IOMMU_MAP_DMA, mapArg(mem.address, 0x4000n, 0x3000n)), 0);
    const dirty = (flags: number, extra?: Uint8Array, argsz = 8 + (extra?.length ?? 0)): number => {
      const arg = new Uint8Array(8 + (extra?.length ?? 0));
      arg.set(encode(U.vfio_iommu_type1_dirty_bitmap, { argsz, flags }));
      if (extra) arg.set(extra, 8);
      return io(m, container, U.VFIO_IOMMU_DIRTY_PAGES, arg);
    };
    const get = (iova: bigint, size: bigint, pgsize = 4096n, bsize = 8n): Uint8Array =>
      encode(U.vfio_iommu_type1_dirty_bitmap_get, {
        iova,
        size,
        bitmap: { pgsize, size: bsize, data: bitmap.address },
      });
    assert.equal(dirty(0), -ERRNO.EINVAL);
    assert.equal(dirty(3), -ERRNO.EINVAL);
    assert.equal(dirty(8), -ERRNO.EINVAL);
    assert.equal(dirty(4, get(0x4000n, 0x3000n)), -ERRNO.EINVAL); // not started
    assert.equal(dirty(1), 0);
    assert.equal(dirty(4), -ERRNO.EINVAL); // no range
    assert.equal(dirty(4, get(0x4000n, 0x3000n, 8192n)), -ERRNO.EINVAL);
    assert.equal(dirty(4, get(0x4000n, 0x3000n, 4096n, 0n)), -ERRNO.EINVAL);
    assert.equal(dirty(4, get(0x5000n, 0x1000n)), -ERRNO.EINVAL); // bisects
    assert.equal(dirty(4, get(0x2000n, 0x8000n)), 0);
    assert.equal(bitmap.bytes[0], 0b0001_1100); // pages 2..4 of the range
    assert.equal(dirty(2), 0);
  },
});

Deno.test({
  name: "dma_entry_limit: ENOSPC once the limit is reached, DMA_AVAIL counts down",
  permissions: "none",
  fn() {
    const m = machine({ dmaEntryLimit: 3 });
    const { container } = session(m);
    const mem = buffer(m, 4 * 4096);
    for (let i = 0n; i < 3n; i++) {
      const arg = mapArg(mem.address + i * 4096n, 0x1_0000n + i * 0x1000n, 4096n);
      assert.equal(io(m, container, U.VFIO_IOMMU_MAP_DMA, arg), 0);
    }
    const over = mapArg(mem.address, 0x2_0000n, 4096n);
    assert.equal(io(m, container, U.VFIO_IOMMU_MAP_DMA, over), -ERRNO.ENOSPC);
    // EEXIST is checked before the limit.
    const dup = mapArg(mem.address, 0x1_0000n, 4096n);
    assert.equal(io(m, container, U.VFIO_IOMMU_MAP_DMA, dup), -ERRNO.EEXIST);
    const info = encode(U.vfio_iommu_type1_info, { argsz: 256 }, 232);
    assert.equal(io(m, container, U.VFIO_IOMMU_GET_INFO, info), 0);
    assert.equal(decode(U.vfio_iommu_type1_info_dma_avail, info, 56).avail, 0);
    assert.equal(io(m, container, U.VFIO_IOMMU_UNMAP_DMA, unmapArg(0x1_0000n, 0x1000n)), 0);
    assert.equal(io(m, container, U.VFIO_IOMMU_MAP_DMA, over), 0);
  },
});

Deno.test({
  name: "locked memory: pins are charged to VmLck; ENOMEM over RLIMIT_MEMLOCK without CAP_IPC_LOCK",
  permissions: "none",
  fn() {
    const m = machine({ capIpcLock: false, memlockLimit: 64 * 1024 });
    const { container } = session(m);
    const mem = buffer(m, 32 * 4096);
    const map = (off: bigint, iova: bigint, size: bigint): number =>
      io(m, container, U.VFIO_IOMMU_MAP_DMA, mapArg(mem.address + off, iova, size));
    assert.equal(map(0n, 0x10_0000n, 0x8000n), 0);
    assert.equal(m.kernel.process.lockedPages, 8);
    assert.match(String(m.kernel.readFile("/proc/self/status")), /VmLck:\t {6}32 kB/);
    assert.equal(map(0x8000n, 0x20_0000n, 0x9000n), -ERRNO.ENOMEM);
    assert.equal(m.kernel.process.lockedPages, 8);
    // EFAULT wins when the unmapped page comes before the limit.
    assert.equal(
      io(m, container, U.VFIO_IOMMU_MAP_DMA, mapArg(0x1000n, 0x30_0000n, 0x1000n)),
      -ERRNO.EFAULT,
    );
    assert.equal(map(0x8000n, 0x20_0000n, 0x8000n), 0);
    assert.equal(m.kernel.process.lockedPages, 16);
    // The same pages mapped twice are charged twice, as type1 does.
    assert.equal(map(0n, 0x40_0000n, 0x1000n), -ERRNO.ENOMEM);
  },
});

Deno.test({
  name: "MSI isolation: SET_IOMMU EPERM without interrupt remapping unless allow_unsafe_interrupts",
  permissions: "none",
  fn() {
    for (const allow of [false, true]) {
      const m = machine({ intremap: false, allowUnsafeInterrupts: { type1: allow } });
      const container = m.kernel.open("/dev/vfio/vfio", O_RDWR);
      const group = m.kernel.open("/dev/vfio/2", O_RDWR);
      assert.equal(io(m, group, U.VFIO_GROUP_SET_CONTAINER, fdArg(container)), 0);
      const r = io(m, container, U.VFIO_SET_IOMMU, U.VFIO_TYPE1v2_IOMMU);
      assert.equal(r, allow ? 0 : -ERRNO.EPERM);
      // A failed SET_IOMMU leaves the container unset: GET_INFO answers EINVAL.
      if (!allow) {
        assert.equal(io(m, container, U.VFIO_IOMMU_GET_INFO, new Uint8Array(24)), -ERRNO.EINVAL);
      }
    }
  },
});

Deno.test({
  name: "group viability: a function bound to a host driver makes the group non-viable",
  permissions: "none",
  fn() {
    const m = machine({
      devices: [
        { model: new FakeDevice(), bdf: "0000:00:02.0", group: 5 },
        { model: new FakeDevice(), bdf: "0000:00:03.0", group: 5, driver: "e1000e" },
      ],
    });
    const k = m.kernel;
    const container = k.open("/dev/vfio/vfio", O_RDWR);
    const group = k.open("/dev/vfio/5", O_RDWR);
    const status = encode(U.vfio_group_status, { argsz: 8 });
    assert.equal(io(m, group, U.VFIO_GROUP_GET_STATUS, status), 0);
    assert.equal(decode(U.vfio_group_status, status).flags, 0);
    assert.equal(io(m, group, U.VFIO_GROUP_SET_CONTAINER, fdArg(container)), -ERRNO.EPERM);
    assert.equal(
      k.readlink("/sys/bus/pci/devices/0000:00:03.0/driver"),
      "../../../bus/pci/drivers/e1000e",
    );
    // The bind helper's steps: override, unbind, probe.
    assert.equal(k.writeFile("/sys/bus/pci/devices/0000:00:03.0/driver_override", "vfio-pci\n"), 9);
    assert.equal(
      k.writeFile("/sys/bus/pci/devices/0000:00:03.0/driver/unbind", "0000:00:03.0"),
      12,
    );
    assert.equal(k.readlink("/sys/bus/pci/devices/0000:00:03.0/driver"), -ERRNO.ENOENT);
    assert.equal(k.writeFile("/sys/bus/pci/drivers_probe", "0000:00:03.0\n"), 13);
    assert.equal(
      k.readlink("/sys/bus/pci/devices/0000:00:03.0/driver"),
      "../../../bus/pci/drivers/vfio-pci",
    );
    assert.equal(io(m, group, U.VFIO_GROUP_GET_STATUS, status), 0);
    assert.equal(decode(U.vfio_group_status, status).flags, U.VFIO_GROUP_FLAGS_VIABLE);
    assert.equal(io(m, group, U.VFIO_GROUP_SET_CONTAINER, fdArg(container)), 0);
    // A host driver cannot bind while user space owns the group's DMA.
    assert.equal(k.writeFile("/sys/bus/pci/devices/0000:00:03.0/driver_override", "\n"), 1);
    assert.equal(k.writeFile("/sys/bus/pci/drivers/vfio-pci/unbind", "0000:00:03.0"), 12);
    assert.equal(k.writeFile("/sys/bus/pci/drivers/e1000e/bind", "0000:00:03.0"), -ERRNO.EBUSY);
  },
});

Deno.test({
  name: "close releases everything: mappings, pins, locked pages, domains",
  permissions: "none",
  fn() {
    const m = machine();
    const k = m.kernel;
    const before = m.memory.usedBytes;
    const { container, group } = session(m);
    const mem = buffer(m, 8 * 4096);
    assert.equal(
      io(m, container, U.VFIO_IOMMU_MAP_DMA, mapArg(mem.address, 0x1_0000n, 0x8000n)),
      0,
    );
    const device = io(m, group, U.VFIO_GROUP_GET_DEVICE_FD, cstr(BDF));
    assert.ok(device > 0);
    assert.equal(k.process.lockedPages, 8);
    assert.equal(k.munmap(mem), 0); // pinned pages outlive munmap
    assert.ok(m.memory.usedBytes > before);
    assert.equal(io(m, group, U.VFIO_GROUP_UNSET_CONTAINER), -ERRNO.EBUSY);
    assert.equal(k.close(container), 0); // the group still holds the container
    assert.ok(m.iommu.translate(m.fn(BDF).requester, undefined, 0x1_0000n, "read", 4).ok);
    assert.equal(k.close(group), 0); // the device fd still holds the group
    assert.equal(k.open("/dev/vfio/2", O_RDWR), -ERRNO.EBUSY);
    assert.equal(k.close(device), 0);
    assert.equal(k.process.lockedPages, 0);
    assert.equal(k.process.liveFiles, 0);
    assert.deepEqual((m.iommu as unknown as { domainIds: number[] }).domainIds, []);
    assert.ok(!m.iommu.translate(m.fn(BDF).requester, undefined, 0x1_0000n, "read", 4).ok);
    const used = m.memory.usedBytes;
    assert.ok(used <= before, `physical memory back to ${before}, is ${used}`);
    assert.equal(m.fn(BDF).group.dmaOwner, undefined);
    const again = k.open("/dev/vfio/2", O_RDWR);
    assert.ok(again > 0);
  },
});
