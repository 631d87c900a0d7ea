/**
 * The simulated iommufd against shared/reference/iommufd.md: dispatch rules (§2), object IDs and
 * DESTROY (§2, §6), the teardown on close, and hostile bytes. The IOAS commands are in
 * iommufd_ioas_test.ts, devices and HWPTs in iommufd_hwpt_test.ts.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ioctlEncode } from "../../ffi/ioctl.ts";
import { decode, encode } from "../../ffi/uapi/layout.ts";
import { userLockedPages } from "../../sim/iommufd/mod.ts";
import * as u from "../../ffi/uapi/mod.ts";
import { err, PAGE, U64_MAX, world } from "./iommufd_fixture.ts";
import { bind, destroy, ioasAlloc, map, RW } from "./iommufd_ops.ts";

Deno.test({
  name: "iommufd dispatch: EFAULT, ENOTTY, EINVAL below min_size, E2BIG tail, min(size) copy-out",
  permissions: "none",
  fn() {
    const w = world();
    assert.equal(w.raw(u.IOMMU_IOAS_ALLOC, 0n), err("EFAULT"));
    assert.equal(w.raw(u.IOMMU_IOAS_ALLOC, new Uint8Array(3)), err("EFAULT"));
    const buf = new Uint8Array(64);
    buf[0] = 12;
    assert.equal(w.raw(ioctlEncode("generic", "none", 0x3b, 0x8f, 0), buf), err("ENOTTY"));
    assert.equal(w.raw(ioctlEncode("generic", "none", 0x3b, 0xff, 0), buf), err("ENOTTY"));
    assert.equal(w.raw(ioctlEncode("generic", "write", 0x3b, 0x81, 12), buf), err("ENOTTY"));
    assert.equal(w.raw(ioctlEncode("generic", "none", 0x3c, 0x81, 0), buf), err("ENOTTY"));
    assert.equal(w.call(u.IOMMU_IOAS_ALLOC, u.iommu_ioas_alloc, { size: 8 }).rc, err("EINVAL"));
    const dirty = encode(u.iommu_ioas_alloc, { size: 16 }, 4);
    dirty[14] = 1;
    assert.equal(w.raw(u.IOMMU_IOAS_ALLOC, dirty), err("E2BIG"));
    // A size larger than the buffer faults while checking the tail.
    assert.equal(
      w.raw(u.IOMMU_IOAS_ALLOC, encode(u.iommu_ioas_alloc, { size: 13 })),
      err("EFAULT"),
    );
    const zeroTail = encode(u.iommu_ioas_alloc, { size: 16 }, 4);
    assert.equal(w.raw(u.IOMMU_IOAS_ALLOC, zeroTail), 0);
    assert.equal(decode(u.iommu_ioas_alloc, zeroTail).out_ioas_id, 1);
    assert.deepEqual([...zeroTail.subarray(12)], [0, 0, 0, 0]);
    // A bigint argument is a user pointer.
    const m = w.mem(PAGE);
    m.bytes.set(encode(u.iommu_ioas_alloc, { size: 12 }));
    assert.equal(w.raw(u.IOMMU_IOAS_ALLOC, m.address), 0);
    assert.equal(decode(u.iommu_ioas_alloc, m.bytes).out_ioas_id, 2);
    // HWPT_ALLOC's min_size is 24: a 24-byte struct is zero-extended, out_hwpt_id (16) copied.
    const short = w.call(u.IOMMU_HWPT_ALLOC, u.iommu_hwpt_alloc, { size: 20 });
    assert.equal(short.rc, err("EINVAL"));
    // GET_HW_INFO with size 32 (pre-capabilities): out_capabilities is not copied out.
    const devid = bind(w);
    const info = w.call(u.IOMMU_GET_HW_INFO, u.iommu_hw_info, {
      size: 32,
      dev_id: devid,
      out_capabilities: 0x5a5an,
    });
    assert.equal(info.rc, 0);
    assert.equal(info.out.out_capabilities, 0x5a5an);
    assert.equal(info.out.data_len, 24);
  },
});

Deno.test({
  name:
    "iommufd ids: lowest free, reused, failed creations consume none; bind 1, IOAS 2, auto HWPT 3",
  permissions: "none",
  fn() {
    const w = world();
    const devid = bind(w);
    const ioas = ioasAlloc(w);
    assert.deepEqual([devid, ioas], [1, 2]);
    assert.equal(w.ctx.attachDevice(devid, ioas), 3);
    assert.equal(
      w.call(u.IOMMU_IOAS_ALLOC, u.iommu_ioas_alloc, { size: 12, flags: 1 }).rc,
      err("EOPNOTSUPP"),
    );
    // A failed HWPT allocation (no nesting on QEMU's VT-d) gives its reserved id back.
    const nest = w.call(u.IOMMU_HWPT_ALLOC, u.iommu_hwpt_alloc, {
      size: 48,
      flags: u.IOMMU_HWPT_ALLOC_NEST_PARENT,
      dev_id: devid,
      pt_id: ioas,
    });
    assert.equal(nest.rc, err("EOPNOTSUPP"));
    assert.equal(ioasAlloc(w), 4);
    assert.equal(ioasAlloc(w), 5);
    assert.equal(destroy(w, 4), 0);
    assert.equal(destroy(w, 4), err("ENOENT"));
    assert.equal(ioasAlloc(w), 4);
    assert.equal(destroy(w, 99), err("ENOENT"));
    assert.equal(destroy(w, ioas), err("EBUSY"), "the auto HWPT holds the IOAS");
    assert.equal(destroy(w, 3), err("EBUSY"), "the device holds the HWPT");
    assert.equal(destroy(w, devid), err("EBUSY"), "devices are never destroyable");
    w.ctx.detachDevice(devid);
    assert.equal(destroy(w, 3), err("ENOENT"), "the auto HWPT died with its last device");
    assert.equal(destroy(w, ioas), 0);
    assert.equal(destroy(w, devid), err("EBUSY"));
    w.ctx.unbindDevice(devid);
    assert.equal(destroy(w, devid), err("ENOENT"));
    assert.equal(ioasAlloc(w), 1);
  },
});

Deno.test({
  name: "iommufd close: every object destroyed, pins released, locked pages and ownership back",
  permissions: "none",
  fn() {
    const w = world({ functions: 2 });
    const baseline = w.memory.usedBytes;
    const d1 = bind(w, 0);
    bind(w, 1);
    const ioas = ioasAlloc(w);
    const second = ioasAlloc(w);
    assert.ok(w.ctx.attachDevice(d1, ioas) > 0);
    const m = w.process.memory.mmap(0x8000)!;
    const va = BigInt(m.address);
    assert.equal(map(w, { ioas_id: ioas, user_va: va, length: 0x8000n, iova: 0x100000n }).rc, 0);
    const copy = w.call(u.IOMMU_IOAS_COPY, u.iommu_ioas_copy, {
      size: 40,
      flags: RW,
      dst_ioas_id: second,
      src_ioas_id: ioas,
      length: 0x4000n,
      src_iova: 0x100000n,
    });
    assert.equal(copy.rc, 0);
    w.call(u.IOMMU_HWPT_ALLOC, u.iommu_hwpt_alloc, { size: 48, dev_id: d1, pt_id: second });
    w.call(u.IOMMU_FAULT_QUEUE_ALLOC, u.iommu_fault_alloc, { size: 16 });
    assert.equal(userLockedPages(w.process), 8, "COPY shares the pinned pages");
    // The process unmaps its buffer: the pinned chunk stays alive (device may still DMA).
    assert.ok(w.process.memory.munmap(m.address));
    assert.ok(w.memory.usedBytes > baseline);
    assert.ok(w.vtd.domainIds.length === 2);
    // Close every fd: the fault fd first, then the iommufd (as process exit would).
    for (const fd of w.process.openFds()) w.process.closeFd(fd);
    assert.equal(w.process.liveFiles, 0);
    assert.equal(userLockedPages(w.process), 0);
    assert.equal(w.process.lockedPages, 0);
    assert.equal(w.memory.usedBytes, baseline);
    assert.deepEqual(w.vtd.domainIds, []);
    assert.equal(w.vtd.attached(0x10), undefined);
    assert.equal(w.group.dmaOwner, undefined);
    assert.equal(w.ctx.objects.length, 0);
  },
});

Deno.test({
  name: "iommufd hostile bytes: random command structs never throw",
  permissions: "none",
  fn() {
    const w = world({ functions: 2 });
    bind(w, 0);
    bind(w, 1);
    ioasAlloc(w);
    const m = w.mem(0x10000);
    let seed = 0x1234567;
    const rand = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed >>> 8;
    };
    const ptrs = [0n, m.address, m.address + 0xff00n, U64_MAX - 7n, 0x1000n];
    for (let i = 0; i < 20000; i++) {
      const nr = 0x80 + (rand() % 16);
      const buf = new Uint8Array(64);
      const sizes = [8, 12, 24, 40, 32, 40, 24, 24, 12, 48, 40, 16, 48, 32, 16, 16];
      const size = rand() % 8 === 0 ? rand() % 72 : sizes[nr - 0x80];
      for (let j = 0; j < size && j < buf.length; j++) {
        buf[j] = rand() % 4 === 0 ? rand() & 0xff : 0;
      }
      const view = new DataView(buf.buffer);
      view.setUint32(0, size, true);
      for (const off of [4, 8, 12]) if (rand() % 2) view.setUint32(off, rand() % 8, true);
      for (const off of [16, 24, 32, 40]) {
        if (rand() % 2) {
          view.setBigUint64(off, ptrs[rand() % ptrs.length] + BigInt(rand() % 3) * 0x1000n, true);
        }
      }
      const rc = w.raw(ioctlEncode("generic", "none", 0x3b, nr, 0), buf);
      assert.equal(typeof rc, "number");
      if (i % 1000 === 0) w.ctx.attachDevice(1 + (rand() % 6), 1 + (rand() % 6));
    }
    for (const fd of w.process.openFds()) w.process.closeFd(fd);
    assert.equal(w.process.lockedPages, 0);
    assert.equal(userLockedPages(w.process), 0);
    assert.deepEqual(w.vtd.domainIds, []);
  },
});
