/**
 * The simulated iommufd's devices and HWPTs against shared/reference/iommufd.md (§8): bind and
 * attach, HWPT_ALLOC, hw info, dirty tracking, invalidation and fault queues.
 *
 * @module
 */

import assert from "node:assert/strict";
import { decode, encode } from "../../ffi/uapi/layout.ts";
import * as u from "../../ffi/uapi/mod.ts";
import { err, PAGE, U64_MAX, world } from "./iommufd_fixture.ts";
import {
  ATTACHED,
  bind,
  destroy,
  ioasAlloc,
  map,
  MSI,
  NEST_ECAP,
  ranges,
  unmap,
} from "./iommufd_ops.ts";

Deno.test({
  name:
    "iommufd bind: EINVAL without coherency, EPERM without MSI isolation, EBUSY for another owner",
  permissions: "none",
  fn() {
    const nc = world({ facts: { cacheCoherency: false } });
    assert.equal(nc.ctx.bindDevice(nc.fns[0], nc.process), err("EINVAL"));
    const noIr = world({ vtd: { intremap: false } });
    assert.equal(noIr.ctx.bindDevice(noIr.fns[0], noIr.process), err("EPERM"));
    const unsafe = world({ vtd: { intremap: false }, ctx: { allowUnsafeInterrupts: true } });
    assert.equal(unsafe.ctx.bindDevice(unsafe.fns[0], unsafe.process), 1);
    const w = world({ functions: 2 });
    w.group.dmaOwner = "vfio-container";
    w.group.dmaOwnerCookie = {};
    assert.equal(w.ctx.bindDevice(w.fns[0], w.process), err("EBUSY"));
    w.group.dmaOwner = undefined;
    w.group.dmaOwnerCookie = undefined;
    const a = bind(w, 0);
    assert.equal(w.group.dmaOwner, "iommufd");
    assert.equal(w.group.dmaOwnerCookie, w.ctx);
    assert.equal(w.other().bindDevice(w.fns[1], w.process), err("EBUSY"));
    const b = bind(w, 1);
    w.ctx.unbindDevice(a);
    assert.equal(w.group.dmaOwner, "iommufd", "the group's other device still owns it");
    w.ctx.unbindDevice(b);
    assert.equal(w.group.dmaOwner, undefined);
    assert.equal(w.group.dmaOwnerCookie, undefined);
  },
});

Deno.test({
  name:
    "iommufd attach: group semantics, auto HWPT reuse, replace, EADDRINUSE for areas in the way",
  permissions: "none",
  fn() {
    const w = world({ functions: 2 });
    const d1 = bind(w, 0);
    const d2 = bind(w, 1);
    const ioas = ioasAlloc(w);
    const other = ioasAlloc(w);
    assert.equal(w.ctx.attachDevice(d1, 99), err("ENOENT"));
    assert.equal(w.ctx.attachDevice(d1, d2), err("EINVAL"));
    assert.equal(w.ctx.attachDevice(99, ioas), err("ENOENT"));
    const h = w.ctx.attachDevice(d1, ioas);
    assert.equal(h, 5);
    assert.equal(
      w.vtd.attached(0x10),
      w.vtd.attached(0x11),
      "the whole group follows the first device",
    );
    assert.ok(w.vtd.attached(0x11));
    assert.equal(w.ctx.attachDevice(d2, other), err("EINVAL"), "a group uses one HWPT");
    assert.equal(w.ctx.attachDevice(d2, ioas), h, "compatible auto HWPT reused");
    assert.equal(w.ctx.attachDevice(d1, ioas), h, "replace with the same HWPT is a no-op");
    // Replace the group's HWPT by an auto HWPT of another IOAS: reservations move along.
    const h2 = w.ctx.attachDevice(d1, other);
    assert.equal(h2, 6);
    assert.deepEqual(ranges(w, other).list, ATTACHED);
    assert.deepEqual(ranges(w, ioas).list, ["0x0-0xffffffffffffffff"]);
    assert.equal(destroy(w, h), err("ENOENT"), "the old auto HWPT died");
    w.ctx.detachDevice(d1);
    w.ctx.detachDevice(d2);
    assert.equal(w.vtd.attached(0x10), undefined);
    assert.equal(w.vtd.domainIds.length, 0, "no domain left");
    // Areas in the way of the attach.
    const m = w.mem(0x4000);
    assert.equal(map(w, { ioas_id: ioas, user_va: m.address, length: 0x1000n, iova: MSI }).rc, 0);
    assert.equal(w.ctx.attachDevice(d1, ioas), err("EADDRINUSE"), "area over the MSI window");
    assert.equal(unmap(w, ioas, 0n, U64_MAX).rc, 0);
    assert.equal(
      map(w, { ioas_id: ioas, user_va: m.address, length: 0x1000n, iova: 1n << 48n }).rc,
      0,
    );
    assert.equal(w.ctx.attachDevice(d1, ioas), err("EADDRINUSE"), "area beyond the aperture");
    assert.equal(unmap(w, ioas, 0n, U64_MAX).rc, 0);
    assert.equal(
      map(w, { ioas_id: ioas, user_va: m.address + 0x800n, length: 0x800n, iova: 0x100800n }).rc,
      0,
    );
    assert.equal(w.ctx.attachDevice(d1, ioas), err("EADDRINUSE"), "area violating the alignment");
    assert.equal(unmap(w, ioas, 0n, U64_MAX).rc, 0);
    assert.equal(w.ctx.attachDevice(d1, ioas), 5, "lowest free id again");
    assert.equal(w.vtd.domainIds.length, 1);
  },
});

Deno.test({
  name: "iommufd HWPT_ALLOC: the errno table, explicit HWPTs, nesting on a NEST-capable VT-d",
  permissions: "none",
  fn() {
    const w = world();
    const devid = bind(w);
    const ioas = ioasAlloc(w);
    const alloc = (v: Record<string, number | bigint>) =>
      w.call(u.IOMMU_HWPT_ALLOC, u.iommu_hwpt_alloc, {
        size: 48,
        dev_id: devid,
        pt_id: ioas,
        ...v,
      });
    const rows: [Record<string, number | bigint>, string][] = [
      [{ __reserved: 1 }, "EOPNOTSUPP"],
      [{ data_len: 24 }, "EINVAL"],
      [{ data_type: u.IOMMU_HWPT_DATA_VTD_S1 }, "EINVAL"],
      [{ dev_id: ioas }, "ENOENT"],
      [{ pt_id: 99 }, "EINVAL"],
      [{ pt_id: devid }, "EINVAL"],
      [{ flags: u.IOMMU_HWPT_FAULT_ID_VALID }, "EOPNOTSUPP"],
      [{ flags: 1 << 3 }, "EOPNOTSUPP"],
      [{ flags: u.IOMMU_HWPT_ALLOC_DIRTY_TRACKING }, "EOPNOTSUPP"],
      [{ flags: u.IOMMU_HWPT_ALLOC_NEST_PARENT }, "EOPNOTSUPP"],
      [{ data_type: u.IOMMU_HWPT_DATA_VTD_S1, data_len: 24 }, "EOPNOTSUPP"],
    ];
    for (const [over, errno] of rows) {
      assert.equal(w.name(alloc(over).rc), errno, JSON.stringify(over));
    }
    const explicit = alloc({});
    assert.deepEqual([explicit.rc, explicit.out.out_hwpt_id], [0, 3]);
    assert.deepEqual(ranges(w, ioas).list, ["0x0-0xffffffffffff"], "aperture reserved by the HWPT");
    assert.equal(ranges(w, ioas).align, 0x1000n);
    assert.equal(
      w.ctx.attachDevice(devid, ioas),
      4,
      "explicit HWPTs are never reused automatically",
    );
    assert.equal(w.ctx.attachDevice(devid, 3), 3, "replace with the explicit HWPT");
    assert.equal(destroy(w, 4), err("ENOENT"));
    assert.equal(destroy(w, 3), err("EBUSY"));
    w.ctx.detachDevice(devid);
    assert.equal(destroy(w, 3), 0);
    assert.deepEqual(ranges(w, ioas).list, ["0x0-0xffffffffffffffff"]);

    // Nesting needs ECAP.NEST (and scalable mode).
    const vtdInfo = (ecap: bigint) =>
      encode(u.iommu_hw_info_vtd, { cap_reg: 0xd2008c222f0606n, ecap_reg: ecap });
    const n = world({
      facts: { hwInfo: { type: 1, data: vtdInfo(NEST_ECAP) }, dirtyTracking: true },
    });
    const dev = bind(n);
    const io = ioasAlloc(n);
    const nalloc = (v: Record<string, number | bigint>) =>
      n.call(u.IOMMU_HWPT_ALLOC, u.iommu_hwpt_alloc, { size: 48, dev_id: dev, pt_id: io, ...v });
    const parent = nalloc({
      flags: u.IOMMU_HWPT_ALLOC_NEST_PARENT | u.IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
    });
    assert.equal(parent.rc, 0);
    const pid = parent.out.out_hwpt_id;
    const plain = nalloc({}).out.out_hwpt_id;
    const s1 = n.mem(PAGE);
    s1.bytes.set(encode(u.iommu_hwpt_vtd_s1, { pgtbl_addr: 0x1000n, addr_width: 48 }));
    const auto = n.ctx.attachDevice(dev, io);
    const nrows: [Record<string, number | bigint>, string][] = [
      [
        { pt_id: pid, data_type: 1, data_len: 24, flags: u.IOMMU_HWPT_ALLOC_NEST_PARENT },
        "EOPNOTSUPP",
      ],
      [{ pt_id: pid, data_type: 1, data_len: 0 }, "EINVAL"],
      [{ pt_id: plain, data_type: 1, data_len: 24, data_uptr: s1.address }, "EINVAL"],
      [{ pt_id: auto, data_type: 1, data_len: 24, data_uptr: s1.address }, "EINVAL"],
      [{ pt_id: pid, data_type: 7, data_len: 24, data_uptr: s1.address }, "EOPNOTSUPP"],
      [{ pt_id: pid, data_type: 1, data_len: 16, data_uptr: s1.address }, "EINVAL"],
      [{ pt_id: pid, data_type: 1, data_len: 32, data_uptr: s1.address }, "EINVAL"],
      [{ pt_id: pid, data_type: 1, data_len: 24, data_uptr: 0x10n }, "EFAULT"],
      [{
        pt_id: pid,
        data_type: 1,
        data_len: 24,
        data_uptr: s1.address,
        flags: u.IOMMU_HWPT_FAULT_ID_VALID,
        fault_id: 99,
      }, "ENOENT"],
    ];
    for (const [over, errno] of nrows) {
      assert.equal(
        n.name(nalloc(over).rc),
        errno,
        JSON.stringify(over, (_, v) => typeof v === "bigint" ? `${v}` : v),
      );
    }
    const nested = nalloc({ pt_id: pid, data_type: 1, data_len: 24, data_uptr: s1.address });
    assert.equal(nested.rc, 0);
    const nid = nested.out.out_hwpt_id;
    assert.equal(destroy(n, pid), err("EBUSY"), "the nested HWPT holds its parent");
    n.ctx.detachDevice(dev);
    assert.equal(n.ctx.attachDevice(dev, nid), nid);
    assert.deepEqual(ranges(n, io).list, ATTACHED, "device regions go to the parent's IOAS");
    n.ctx.detachDevice(dev);
    assert.equal(destroy(n, nid), 0);
    assert.equal(destroy(n, pid), 0);
  },
});

Deno.test({
  name:
    "iommufd GET_HW_INFO: VT-d registers with the erratum flag, zero-filled tail, data_len = kernel length",
  permissions: "none",
  fn() {
    const w = world();
    const devid = bind(w);
    const ioas = ioasAlloc(w);
    const m = w.mem(PAGE);
    const get = (dataLen: number, v: Record<string, number | bigint> = {}) => {
      m.bytes.fill(0xff, 0, 128);
      return w.call(u.IOMMU_GET_HW_INFO, u.iommu_hw_info, {
        size: 40,
        dev_id: devid,
        data_len: dataLen,
        data_uptr: m.address,
        ...v,
      });
    };
    const r = get(64);
    assert.equal(r.rc, 0);
    assert.deepEqual(
      [r.out.out_data_type, r.out.data_len, r.out.out_capabilities, r.out.out_max_pasid_log2],
      [u.IOMMU_HW_INFO_TYPE_INTEL_VTD, 24, 0n, 0],
    );
    const vtd = decode(u.iommu_hw_info_vtd, m.bytes);
    assert.deepEqual([vtd.flags, vtd.cap_reg, vtd.ecap_reg], [1, w.vtd.cap, w.vtd.ecap]);
    assert.ok(m.bytes.subarray(24, 64).every((b) => b === 0), "zero-filled up to data_len");
    assert.ok(m.bytes.subarray(64, 128).every((b) => b === 0xff), "untouched beyond");
    const short = get(8);
    assert.deepEqual([short.rc, short.out.data_len], [0, 24]);
    assert.ok(m.bytes.subarray(8, 128).every((b) => b === 0xff));
    assert.equal(get(64, { flags: 1 }).rc, err("EOPNOTSUPP"));
    const reserved = encode(u.iommu_hw_info, { size: 40, dev_id: devid });
    reserved[30] = 1;
    assert.equal(w.raw(u.IOMMU_GET_HW_INFO, reserved), err("EOPNOTSUPP"));
    assert.equal(get(64, { dev_id: ioas }).rc, err("ENOENT"));
    assert.equal(get(64, { data_uptr: 0x10n }).rc, err("EFAULT"));
    assert.equal(get(0, { data_uptr: 0n }).rc, 0, "no data requested: no pointer needed");
    const d = world({
      facts: {
        dirtyTracking: true,
        maxPasidLog2: 20,
        hwInfo: { type: 0, data: new Uint8Array(0) },
        kind: "virtio-iommu",
      },
    });
    const dd = bind(d);
    const info = d.call(u.IOMMU_GET_HW_INFO, u.iommu_hw_info, {
      size: 40,
      dev_id: dd,
      data_len: 0,
    });
    assert.deepEqual(
      [
        info.out.out_data_type,
        info.out.data_len,
        info.out.out_capabilities,
        info.out.out_max_pasid_log2,
      ],
      [0, 0, u.IOMMU_HW_CAP_DIRTY_TRACKING, 20],
    );
  },
});

Deno.test({
  name: "iommufd dirty tracking: validation order, bitmap bits written to user memory",
  permissions: "none",
  fn() {
    const w = world({ facts: { dirtyTracking: true } });
    const devid = bind(w);
    const ioas = ioasAlloc(w);
    const plain = w.call(u.IOMMU_HWPT_ALLOC, u.iommu_hwpt_alloc, {
      size: 48,
      dev_id: devid,
      pt_id: ioas,
    });
    const dirty = w.call(u.IOMMU_HWPT_ALLOC, u.iommu_hwpt_alloc, {
      size: 48,
      dev_id: devid,
      pt_id: ioas,
      flags: u.IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
    });
    assert.deepEqual([plain.rc, dirty.rc], [0, 0]);
    const hp = plain.out.out_hwpt_id;
    const hd = dirty.out.out_hwpt_id;
    const set = (hwpt_id: number, flags: number) =>
      w.call(u.IOMMU_HWPT_SET_DIRTY_TRACKING, u.iommu_hwpt_set_dirty_tracking, {
        size: 16,
        hwpt_id,
        flags,
      }).rc;
    assert.equal(set(hd, 2), err("EOPNOTSUPP"));
    assert.equal(set(ioas, 1), err("ENOENT"));
    assert.equal(set(hp, 1), err("EOPNOTSUPP"));
    assert.equal(set(hd, 1), 0);
    const bm = w.mem(PAGE);
    const get = (v: Record<string, number | bigint>) =>
      w.call(u.IOMMU_HWPT_GET_DIRTY_BITMAP, u.iommu_hwpt_get_dirty_bitmap, {
        size: 48,
        hwpt_id: hd,
        iova: 0x100000n,
        length: 0x10000n,
        page_size: 0x1000n,
        data: bm.address,
        ...v,
      }).rc;
    const rows: [Record<string, number | bigint>, string][] = [
      [{ flags: 2 }, "EOPNOTSUPP"],
      [{ __reserved: 1 }, "EOPNOTSUPP"],
      [{ hwpt_id: ioas }, "ENOENT"],
      [{ iova: U64_MAX - 0xfffn, length: 0x2000n }, "EOVERFLOW"],
      [{ iova: 0x100800n }, "EINVAL"],
      [{ page_size: 0n }, "EINVAL"],
      [{ page_size: 0x200000n }, "EINVAL"],
      [{ hwpt_id: hp }, "EOPNOTSUPP"],
      [{ data: 0x10n }, "EFAULT"],
    ];
    for (const [over, errno] of rows) {
      assert.equal(
        w.name(get(over)),
        errno,
        JSON.stringify(over, (_, v) => typeof v === "bigint" ? `${v}` : v),
      );
    }
    const variant = w.iommu as unknown as { dirty: bigint[]; tracking: boolean };
    assert.equal(variant.tracking, true);
    variant.dirty = [0x100000n, 0x103000n, 0x10f000n];
    assert.equal(get({ flags: u.IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR }), 0);
    assert.deepEqual([...bm.bytes.subarray(0, 2)], [0b1001, 0b1000_0000]);
    bm.bytes.fill(0, 0, 8);
    assert.equal(get({}), 0);
    assert.deepEqual([...bm.bytes.subarray(0, 2)], [0b1001, 0b1000_0000]);
    bm.bytes.fill(0, 0, 8);
    assert.equal(get({}), 0);
    assert.deepEqual([...bm.bytes.subarray(0, 2)], [0, 0], "cleared by the previous read");
    assert.equal(set(hd, 0), 0);
    assert.equal(variant.tracking, false);
  },
});

Deno.test({
  name: "iommufd HWPT_INVALIDATE: the validation table, entry_num always written back",
  permissions: "none",
  fn() {
    const vtdInfo = encode(u.iommu_hw_info_vtd, {
      cap_reg: 0xd2008c222f0606n,
      ecap_reg: NEST_ECAP,
    });
    const w = world({ facts: { hwInfo: { type: 1, data: vtdInfo } } });
    const dev = bind(w);
    const ioas = ioasAlloc(w);
    const parent = w.call(u.IOMMU_HWPT_ALLOC, u.iommu_hwpt_alloc, {
      size: 48,
      dev_id: dev,
      pt_id: ioas,
      flags: u.IOMMU_HWPT_ALLOC_NEST_PARENT,
    }).out.out_hwpt_id;
    const s1 = w.mem(PAGE);
    s1.bytes.set(encode(u.iommu_hwpt_vtd_s1, { addr_width: 48 }));
    const nested = w.call(u.IOMMU_HWPT_ALLOC, u.iommu_hwpt_alloc, {
      size: 48,
      dev_id: dev,
      pt_id: parent,
      data_type: 1,
      data_len: 24,
      data_uptr: s1.address,
    }).out.out_hwpt_id;
    const entries = w.mem(PAGE);
    const put = (list: Record<string, number | bigint>[]) =>
      list.forEach((e, i) => entries.bytes.set(encode(u.iommu_hwpt_vtd_s1_invalidate, e), i * 24));
    put([{ addr: 0x1000n, npages: 1n }, { addr: 0n, npages: U64_MAX }, {
      addr: 0x2000n,
      npages: 1n,
      flags: 2,
    }]);
    const inv = (v: Record<string, number | bigint>) => {
      const r = w.call(u.IOMMU_HWPT_INVALIDATE, u.iommu_hwpt_invalidate, {
        size: 32,
        hwpt_id: nested,
        data_uptr: entries.address,
        data_type: u.IOMMU_HWPT_INVALIDATE_DATA_VTD_S1,
        entry_len: 24,
        entry_num: 2,
        ...v,
      });
      return `${w.name(r.rc)}/${r.out.entry_num}`;
    };
    assert.equal(inv({}), "OK/2");
    assert.equal(inv({ entry_num: 3 }), "EOPNOTSUPP/2", "unknown entry flag stops at the third");
    assert.equal(inv({ __reserved: 1 }), "EOPNOTSUPP/0");
    assert.equal(inv({ data_uptr: 0n }), "EINVAL/0");
    assert.equal(inv({ entry_len: 0 }), "EINVAL/0");
    assert.equal(inv({ entry_len: PAGE + 1 }), "EINVAL/0");
    assert.equal(inv({ entry_num: (1 << 19) + 1 }), "EINVAL/0");
    assert.equal(inv({ hwpt_id: parent }), "ENOENT/0");
    assert.equal(inv({ data_type: 1 }), "EINVAL/0");
    assert.equal(inv({ entry_len: 16 }), "EINVAL/0");
    assert.equal(
      inv({ entry_len: 32 }),
      "EINVAL/0",
      "longer than the kernel struct: no E2BIG here",
    );
    assert.equal(inv({ entry_num: 0, data_uptr: 0n, entry_len: 0 }), "OK/0", "probe");
    assert.equal(inv({ data_uptr: 0x10n }), "EFAULT/0");
    put([{ addr: 0x1800n, npages: 1n }]);
    assert.equal(inv({ entry_num: 1 }), "EINVAL/0");
    put([{ addr: 0x1000n, npages: U64_MAX }]);
    assert.equal(inv({ entry_num: 1 }), "EINVAL/0");
    put([{ addr: 0n, npages: 1n, __reserved: 1 }]);
    assert.equal(inv({ entry_num: 1 }), "EOPNOTSUPP/0");
  },
});

Deno.test({
  name: "iommufd FAULT_QUEUE_ALLOC: fault fd read/write rules, EBUSY while open or used",
  permissions: "none",
  fn() {
    const w = world();
    const alloc = (flags = 0) =>
      w.call(u.IOMMU_FAULT_QUEUE_ALLOC, u.iommu_fault_alloc, { size: 16, flags });
    assert.equal(alloc(1).rc, err("EOPNOTSUPP"));
    const q = alloc();
    assert.equal(q.rc, 0);
    assert.equal(q.out.out_fault_id, 1);
    const fd = q.out.out_fault_fd;
    const file = w.process.fget(fd)!;
    assert.equal(file.kind, "iommufd-pgfault");
    assert.equal(file.read!(w.process, new Uint8Array(10)), err("ESPIPE"));
    assert.equal(file.read!(w.process, new Uint8Array(40)), 0);
    assert.equal(file.pread!(w.process, new Uint8Array(40), 40n), err("ESPIPE"));
    assert.equal(file.write!(w.process, new Uint8Array(3)), err("ESPIPE"));
    assert.equal(file.write!(w.process, new Uint8Array(0)), 0);
    assert.equal(
      file.write!(w.process, encode(u.iommu_hwpt_page_response, { cookie: 0x77 })),
      err("EINVAL"),
    );
    assert.equal(
      file.write!(w.process, encode(u.iommu_hwpt_page_response, { code: 2 })),
      err("EINVAL"),
    );
    assert.equal(file.pollEvents!() & 1, 0);
    assert.equal(destroy(w, 1), err("EBUSY"), "the fd holds the fault object");
    assert.equal(w.process.closeFd(fd), 0);
    assert.equal(destroy(w, 1), 0);
  },
});
