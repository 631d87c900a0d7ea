/**
 * iommufd through /dev/iommu and the VFIO cdev: the rules of shared/reference/iommufd.md §2, §6,
 * §7, §8 and vfio.md §7.6 (object ids, generic dispatch errno, IOVA_RANGES, IOAS_MAP/UNMAP,
 * DESTROY, ALLOW_IOVAS, BIND/ATTACH/DETACH, GET_HW_INFO, fault queues).
 *
 * @module
 */

import { ioctlEncode } from "../../ffi/ioctl.ts";
import { decode } from "../../ffi/uapi/layout.ts";
import type { ErrnoName } from "../../ffi/errno.ts";
import { scenario, type ScenarioContext, type ScenarioDef } from "./scenario.ts";
import { hex } from "./expectations.ts";
import {
  allowIovas,
  attachPt,
  BAD_FD,
  bindIommufd,
  destroy,
  expectedRanges,
  fieldsOf,
  groupNode,
  idOf,
  IOAS_FIXED_RW,
  IOAS_RW,
  ioasAlloc,
  ioasMap,
  type IoasMapArgs,
  ioasUnmap,
  iommufdSession,
  iovaRanges,
  rangeText,
  struct,
  U64_MAX,
  UNKNOWN_VFIO_IOCTL,
  UNMAPPED_VA,
} from "./steps.ts";
import {
  iommu_fault_alloc,
  IOMMU_FAULT_QUEUE_ALLOC,
  IOMMU_GET_HW_INFO,
  iommu_hw_info,
  IOMMU_IOAS_ALLOC,
  iommu_ioas_alloc,
  IOMMU_IOAS_MAP,
  iommu_ioas_map,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  VFIO_DEVICE_DETACH_IOMMUFD_PT,
  vfio_device_detach_iommufd_pt,
  VFIO_DEVICE_GET_INFO,
  vfio_device_info,
  VFIO_GET_API_VERSION,
} from "./uapi.ts";

const RW = IOAS_RW;
const FIXED_RW = IOAS_FIXED_RW;

const idsAndDispatch = scenario("iommufd/ioas-alloc-ids-dispatch", { paths: ["iommufd"] }, (t) => {
  const fd = t.must(t.open("open /dev/iommu", "/dev/iommu"), { ret: "fd" }).raw;
  t.expect(ioasAlloc(t, "IOAS_ALLOC", fd), { ret: 0, fields: { out_ioas_id: 1 } });
  t.expect(ioasAlloc(t, "IOAS_ALLOC second", fd), { ret: 0, fields: { out_ioas_id: 2 } });
  t.expect(destroy(t, "DESTROY 1", fd, 1), { ret: 0 });
  t.expect(ioasAlloc(t, "IOAS_ALLOC reuses the lowest free id", fd), {
    ret: 0,
    fields: { out_ioas_id: 1 },
  });
  const alloc = (label: string, bytes: Uint8Array) =>
    t.ioctl(label, fd, IOMMU_IOAS_ALLOC, bytes, {
      out: fieldsOf(iommu_ioas_alloc, ["out_ioas_id"]),
    });
  t.expect(alloc("IOAS_ALLOC flags 1", struct(iommu_ioas_alloc, { size: 12, flags: 1 })), {
    errno: "EOPNOTSUPP",
  });
  t.expect(alloc("IOAS_ALLOC size 8", struct(iommu_ioas_alloc, { size: 8 })), { errno: "EINVAL" });
  const long = struct(iommu_ioas_alloc, { size: 16 }, 16);
  t.expect(alloc("IOAS_ALLOC size 16, zero tail", long), { ret: 0, fields: { out_ioas_id: 3 } });
  const dirty = struct(iommu_ioas_alloc, { size: 16 }, 16);
  dirty[13] = 1;
  t.expect(alloc("IOAS_ALLOC size 16, non-zero tail", dirty), { errno: "E2BIG" });
  t.expect(ioasAlloc(t, "IOAS_ALLOC after failures", fd), { ret: 0, fields: { out_ioas_id: 4 } });
  t.expect(t.ioctl("IOAS_ALLOC NULL argument", fd, IOMMU_IOAS_ALLOC, 0), { errno: "EFAULT" });
  t.expect(destroy(t, "DESTROY size 4", fd, 4, 4), { errno: "EINVAL" });
  t.expect(destroy(t, "DESTROY unknown id", fd, 99), { errno: "ENOENT" });
  const buf = new Uint8Array(64);
  buf[0] = 12;
  const arch = t.kernel.ioctlArch;
  t.expect(t.ioctl("nr 0x8f (not in 6.12)", fd, ioctlEncode(arch, "none", 0x3b, 0x8f, 0), buf), {
    errno: "ENOTTY",
  });
  t.expect(t.ioctl("nr 0xff", fd, ioctlEncode(arch, "none", 0x3b, 0xff, 0), buf), {
    errno: "ENOTTY",
  });
  t.expect(
    t.ioctl(
      "IOAS_ALLOC encoded _IOW(';', 0x81, 12)",
      fd,
      ioctlEncode(arch, "write", 0x3b, 0x81, 12),
      buf,
    ),
    { errno: "ENOTTY" },
  );
  t.expect(t.ioctl("VFIO_GET_API_VERSION on /dev/iommu", fd, VFIO_GET_API_VERSION), { ret: 0 });
});

/** The expected IOAS ranges once the device is attached. */
function attachedRanges(t: ScenarioContext): string[] {
  return expectedRanges(t);
}

const ranges = scenario("iommufd/iova-ranges", { paths: ["iommufd"], needs: ["cdev"] }, (t) => {
  const s = iommufdSession(t, false);
  const mem = t.mem(0x1000);
  const all = rangeText(0n, U64_MAX);
  t.expect(iovaRanges(t, "IOVA_RANGES fresh, num_iovas 0", s.iommufd, s.ioas, 0, mem), {
    errno: "EMSGSIZE",
    fields: { num_iovas: 1, out_iova_alignment: 1n, ranges: [] },
  });
  t.expect(iovaRanges(t, "IOVA_RANGES fresh", s.iommufd, s.ioas, 4, mem), {
    ret: 0,
    fields: { num_iovas: 1, out_iova_alignment: 1n, ranges: [all] },
  });
  t.expect(iovaRanges(t, "IOVA_RANGES __reserved", s.iommufd, s.ioas, 4, mem, { __reserved: 1 }), {
    errno: "EOPNOTSUPP",
  });
  t.expect(iovaRanges(t, "IOVA_RANGES unknown id", s.iommufd, 99, 4, mem), { errno: "ENOENT" });
  t.expect(iovaRanges(t, "IOVA_RANGES on the device id", s.iommufd, s.devid, 4, mem), {
    errno: "ENOENT",
  });
  t.must(attachPt(t, "ATTACH_IOMMUFD_PT", s.device, s.ioas), { ret: 0 });
  const want = attachedRanges(t);
  const n = want.length;
  const align = t.env.iommu.iovaAlignment;
  t.expect(iovaRanges(t, "IOVA_RANGES attached, num_iovas 0", s.iommufd, s.ioas, 0, mem), {
    errno: "EMSGSIZE",
    fields: { num_iovas: n, out_iova_alignment: align, ranges: [] },
  });
  t.expect(iovaRanges(t, "IOVA_RANGES attached, room for 1", s.iommufd, s.ioas, 1, mem), {
    errno: n > 1 ? "EMSGSIZE" : null,
    fields: { num_iovas: n, ranges: want.slice(0, 1) },
  });
  t.expect(iovaRanges(t, "IOVA_RANGES attached", s.iommufd, s.ioas, 8, mem), {
    ret: 0,
    fields: { num_iovas: n, out_iova_alignment: align, ranges: want },
  });
});

const mapErrno = scenario(
  "iommufd/ioas-map-unmap-errno",
  { paths: ["iommufd"], needs: ["cdev"] },
  (t) => {
    const s = iommufdSession(t);
    const fd = s.iommufd;
    const mem = t.mem(0x10000);
    const va = mem.address;
    const base: IoasMapArgs = {
      flags: FIXED_RW,
      ioas_id: s.ioas,
      user_va: va,
      length: 0x2000n,
      iova: 0x100000n,
    };
    const rows: [string, Partial<IoasMapArgs>, ErrnoName][] = [
      ["unknown flag 1<<3", { flags: FIXED_RW | 8 }, "EOPNOTSUPP"],
      ["__reserved", { __reserved: 1 }, "EOPNOTSUPP"],
      ["iova U64_MAX", { iova: U64_MAX }, "EOVERFLOW"],
      ["length U64_MAX", { length: U64_MAX }, "EOVERFLOW"],
      ["no READ/WRITE", { flags: IOMMU_IOAS_MAP_FIXED_IOVA }, "EINVAL"],
      ["unknown ioas id", { ioas_id: 99 }, "ENOENT"],
      ["ioas id of the HWPT", { ioas_id: s.hwpt }, "ENOENT"],
      ["length 0", { length: 0n }, "EINVAL"],
      ["user_va + length overflows", { user_va: U64_MAX - 0xfffn }, "EOVERFLOW"],
      ["length misaligned", { length: 0x1800n }, "EINVAL"],
      ["iova misaligned", { iova: 0x100800n }, "EINVAL"],
      ["iova + length overflows", { iova: U64_MAX - 0xfffn }, "EOVERFLOW"],
      ["reserved (MSI) window", { iova: t.env.iommu.reservedIova, length: 0x1000n }, "EINVAL"],
      ["user_va misaligned", { user_va: va + 0x800n }, "EINVAL"],
      ["unmapped user_va", { user_va: UNMAPPED_VA, iova: 0x400000n, length: 0x1000n }, "EFAULT"],
    ];
    for (const [label, over, errno] of rows) {
      t.expect(ioasMap(t, `IOAS_MAP ${label}`, fd, { ...base, ...over }), { errno });
    }
    t.expect(ioasMap(t, "IOAS_MAP fixed A", fd, base), { ret: 0 });
    t.expect(
      ioasMap(t, "IOAS_MAP fixed overlap", fd, { ...base, iova: 0x101000n, user_va: va + 0x4000n }),
      {
        errno: "EEXIST",
      },
    );
    t.expect(ioasMap(t, "IOAS_MAP fixed B", fd, { ...base, iova: 0x110000n, length: 0x1000n }), {
      ret: 0,
    });
    const autoArg = struct(iommu_ioas_map, {
      size: 40,
      flags: RW,
      ioas_id: s.ioas,
      user_va: va + 0x8000n,
      length: 0x2000n,
    });
    const auto = t.ioctl("IOAS_MAP auto IOVA", fd, IOMMU_IOAS_MAP, autoArg);
    t.expect(auto, { ret: 0 });
    const iova = decode(iommu_ioas_map, autoArg).iova;
    const usable = t.env.iommu.iovaRanges.some((r) => iova >= r.start && iova + 0x1fffn <= r.end);
    t.expect(
      t.note("auto IOVA", {
        nonzero: iova !== 0n,
        aligned: iova % t.env.iommu.iovaAlignment === 0n,
        usable,
        clearOfA: iova + 0x2000n <= 0x100000n || iova >= 0x102000n,
      }),
      { fields: { nonzero: true, aligned: true, usable: true, clearOfA: true } },
    );
    // UNMAP rows
    const unmap = (label: string, a: { iova: bigint; length: bigint; ioas_id?: number }) =>
      ioasUnmap(t, `IOAS_UNMAP ${label}`, fd, { ioas_id: s.ioas, ...a });
    t.expect(unmap("unknown ioas id", { ioas_id: 99, iova: 0x100000n, length: 0x2000n }), {
      errno: "ENOENT",
    });
    t.expect(unmap("empty range", { iova: 0x800000n, length: 0x1000n }), { errno: "ENOENT" });
    t.expect(unmap("inside A", { iova: 0x101000n, length: 0x1000n }), { errno: "ENOENT" });
    t.expect(unmap("head of A", { iova: 0x100000n, length: 0x1000n }), { errno: "ENOENT" });
    t.expect(unmap("length 0", { iova: 0x100000n, length: 0n }), { errno: "EINVAL" });
    t.expect(unmap("iova U64_MAX", { iova: U64_MAX, length: 0x1000n }), { errno: "EOVERFLOW" });
    t.expect(unmap("iova + length overflows", { iova: U64_MAX - 0xfffn, length: 0x2000n }), {
      errno: "EOVERFLOW",
    });
    t.expect(unmap("exact A", { iova: 0x100000n, length: 0x2000n }), {
      ret: 0,
      fields: { length: 0x2000n },
    });
    t.expect(unmap("B with holes", { iova: 0x10f000n, length: 0x10000n }), {
      ret: 0,
      fields: { length: 0x1000n },
    });
    t.expect(unmap("all", { iova: 0n, length: U64_MAX }), { ret: 0, fields: { length: 0x2000n } });
    t.expect(unmap("all, empty", { iova: 0n, length: U64_MAX }), {
      ret: 0,
      fields: { length: 0n },
    });
  },
);

const destroyAllow = scenario("iommufd/destroy-allow-iovas", {
  paths: ["iommufd"],
  needs: ["cdev"],
}, (t) => {
  const s = iommufdSession(t);
  const fd = s.iommufd;
  t.expect(t.note("ids", { ioas: s.ioas, devid: s.devid, hwpt: s.hwpt }), {
    fields: { ioas: 1, devid: 2, hwpt: 3 },
  });
  t.expect(destroy(t, "DESTROY the IOAS (HWPT holds it)", fd, s.ioas), { errno: "EBUSY" });
  t.expect(destroy(t, "DESTROY the attached HWPT", fd, s.hwpt), { errno: "EBUSY" });
  t.expect(destroy(t, "DESTROY the device", fd, s.devid), { errno: "EBUSY" });
  const msi = t.env.iommu.reservedIova;
  t.expect(
    allowIovas(t, "ALLOW_IOVAS over the reserved window", fd, s.ioas, [[msi, msi + 0xfffn]]),
    {
      errno: "EADDRINUSE",
    },
  );
  t.expect(allowIovas(t, "ALLOW_IOVAS start == last", fd, s.ioas, [[0x100000n, 0x100000n]]), {
    errno: "EINVAL",
  });
  t.expect(
    allowIovas(t, "ALLOW_IOVAS overlapping ranges", fd, s.ioas, [[0x100000n, 0x1fffffn], [
      0x180000n,
      0x2fffffn,
    ]]),
    { errno: "EINVAL" },
  );
  t.expect(allowIovas(t, "ALLOW_IOVAS", fd, s.ioas, [[0x100000n, 0x1fffffn]]), { ret: 0 });
  const mem = t.mem(0x1000);
  const arg = struct(iommu_ioas_map, {
    size: 40,
    flags: RW,
    ioas_id: s.ioas,
    user_va: mem.address,
    length: 0x1000n,
  });
  t.expect(t.ioctl("IOAS_MAP auto IOVA inside the allowed range", fd, IOMMU_IOAS_MAP, arg), {
    ret: 0,
  });
  const iova = decode(iommu_ioas_map, arg).iova;
  t.expect(
    t.note("auto IOVA allowed", { inside: iova >= 0x100000n && iova + 0xfffn <= 0x1fffffn }),
    {
      fields: { inside: true },
    },
  );
  t.expect(allowIovas(t, "ALLOW_IOVAS none (clear)", fd, s.ioas, []), { ret: 0 });
  const detach = struct(vfio_device_detach_iommufd_pt, { argsz: 8 });
  t.expect(t.ioctl("DETACH_IOMMUFD_PT", s.device, VFIO_DEVICE_DETACH_IOMMUFD_PT, detach), {
    ret: 0,
  });
  t.expect(destroy(t, "DESTROY the auto HWPT after detach", fd, s.hwpt), { errno: "ENOENT" });
  t.expect(destroy(t, "DESTROY the IOAS (with a mapping)", fd, s.ioas), { ret: 0 });
  t.expect(destroy(t, "DESTROY the IOAS again", fd, s.ioas), { errno: "ENOENT" });
  t.expect(destroy(t, "DESTROY the device, still bound", fd, s.devid), { errno: "EBUSY" });
});

const cdevBind = scenario("iommufd/cdev-bind-attach-detach", {
  paths: ["iommufd"],
  needs: ["cdev"],
}, (t) => {
  const fd = t.must(t.open("open /dev/iommu", "/dev/iommu"), { ret: "fd" }).raw;
  const g = t.must(t.open("open group", groupNode(t)), { ret: "fd" }).raw;
  const d = t.must(t.open("open cdev", t.env.cdev ?? "/nonexistent"), { ret: "fd" }).raw;
  t.expect(bindIommufd(t, "BIND_IOMMUFD while the group is open", d, fd), { errno: "EBUSY" });
  t.close("close group", g);
  const info = struct(vfio_device_info, { argsz: 24 });
  t.expect(t.ioctl("DEVICE_GET_INFO before bind", d, VFIO_DEVICE_GET_INFO, info), {
    errno: "EINVAL",
  });
  t.expect(t.pread("pread before bind", d, 4, 7n << 40n), { errno: "EINVAL" });
  t.expect(t.ioctl("unknown ioctl before bind", d, UNKNOWN_VFIO_IOCTL, 0), { errno: "EINVAL" });
  t.expect(bindIommufd(t, "BIND_IOMMUFD argsz 12", d, fd, { argsz: 12 }), { errno: "EINVAL" });
  t.expect(bindIommufd(t, "BIND_IOMMUFD flags 1", d, fd, { flags: 1 }), { errno: "EINVAL" });
  t.expect(bindIommufd(t, "BIND_IOMMUFD iommufd -1", d, -1), { errno: "EINVAL" });
  t.expect(bindIommufd(t, "BIND_IOMMUFD bad fd", d, BAD_FD), { errno: "EBADF" });
  const e = t.must(t.eventfd("eventfd"), { ret: "fd" }).raw;
  t.expect(bindIommufd(t, "BIND_IOMMUFD eventfd", d, e), { errno: "EBADFD" });
  const bound = bindIommufd(t, "BIND_IOMMUFD", d, fd);
  t.expect(bound, { ret: 0, fields: { out_devid: 1 } });
  const devid = idOf(bound, "out_devid");
  t.expect(t.open("open group while bound", groupNode(t)), { errno: "EBUSY" });
  t.expect(bindIommufd(t, "BIND_IOMMUFD again", d, fd), { errno: "EINVAL" });
  t.expect(
    t.ioctl("DEVICE_GET_INFO after bind", d, VFIO_DEVICE_GET_INFO, info, {
      out: fieldsOf(vfio_device_info, ["flags", "num_regions", "num_irqs"]),
    }),
    { ret: 0 },
  );
  t.expect(t.ioctl("unknown ioctl after bind", d, UNKNOWN_VFIO_IOCTL, 0), { errno: "ENOTTY" });
  const ioas = idOf(
    t.must(ioasAlloc(t, "IOAS_ALLOC", fd), { ret: 0, fields: { out_ioas_id: 2 } }),
    "out_ioas_id",
  );
  t.expect(attachPt(t, "ATTACH flags 1", d, ioas, 1), { errno: "EINVAL" });
  t.expect(attachPt(t, "ATTACH unknown id", d, 99), { errno: "ENOENT" });
  t.expect(attachPt(t, "ATTACH the device id", d, devid), { errno: "EINVAL" });
  const attached = attachPt(t, "ATTACH the IOAS", d, ioas);
  t.expect(attached, { ret: 0, fields: { pt_id: 3 } });
  t.expect(attachPt(t, "ATTACH the IOAS again (replace)", d, ioas), {
    ret: 0,
    fields: { pt_id: 3 },
  });
  const detach = (label: string, flags = 0) =>
    t.ioctl(
      label,
      d,
      VFIO_DEVICE_DETACH_IOMMUFD_PT,
      struct(vfio_device_detach_iommufd_pt, { argsz: 8, flags }),
    );
  t.expect(detach("DETACH flags 1", 1), { errno: "EINVAL" });
  t.expect(detach("DETACH"), { ret: 0 });
  t.expect(detach("DETACH again"), { ret: 0 });
  t.expect(destroy(t, "DESTROY the IOAS after detach", fd, ioas), { ret: 0 });
  t.expect(attachPt(t, "ATTACH the destroyed IOAS", d, ioas), { errno: "ENOENT" });
  t.close("close cdev", d);
  t.expect(t.open("open group after the cdev closed", groupNode(t)), { ret: "fd" });
});

const hwInfo = scenario("iommufd/get-hw-info", { paths: ["iommufd"], needs: ["cdev"] }, (t) => {
  const s = iommufdSession(t, false);
  const want = t.env.iommu.hwInfo;
  const kernelLen = want.dataHex.length / 2;
  const mem = t.mem(0x1000);
  const call = (label: string, dataLen: number, extra: Record<string, number> = {}, size = 40) => {
    mem.bytes.fill(0xff, 0, 128);
    const arg = struct(iommu_hw_info, {
      size,
      dev_id: s.devid,
      data_len: dataLen,
      data_uptr: mem.address,
      ...extra,
    });
    return t.ioctl(label, s.iommufd, IOMMU_GET_HW_INFO, arg, {
      out: (a) => {
        const v = decode(iommu_hw_info, a);
        const copied = Math.min(dataLen, kernelLen);
        return {
          out_data_type: v.out_data_type,
          data_len: v.data_len,
          out_capabilities: v.out_capabilities,
          out_max_pasid_log2: v.out_max_pasid_log2,
          data: hex(mem.bytes.subarray(0, copied)),
          zeroFilled: mem.bytes.subarray(copied, dataLen).every((b) => b === 0),
          untouchedBeyond: mem.bytes.subarray(Math.max(dataLen, 0), 128).every((b) => b === 0xff),
        };
      },
    });
  };
  t.expect(call("GET_HW_INFO data_len 64", 64), {
    ret: 0,
    fields: {
      out_data_type: want.type,
      data_len: kernelLen,
      out_capabilities: t.env.iommu.hwCapabilities,
      out_max_pasid_log2: 0,
      data: want.dataHex,
      zeroFilled: true,
      untouchedBeyond: true,
    },
  });
  t.expect(call("GET_HW_INFO data_len 8", 8), {
    ret: 0,
    fields: { data_len: kernelLen, data: want.dataHex.slice(0, 16), untouchedBeyond: true },
  });
  t.expect(call("GET_HW_INFO data_len 0", 0), {
    ret: 0,
    fields: { data_len: kernelLen, untouchedBeyond: true },
  });
  t.expect(call("GET_HW_INFO flags 1", 64, { flags: 1 }), { errno: "EOPNOTSUPP" });
  const reserved = struct(iommu_hw_info, { size: 40, dev_id: s.devid, data_len: 0 });
  reserved[30] = 1;
  t.expect(t.ioctl("GET_HW_INFO __reserved", s.iommufd, IOMMU_GET_HW_INFO, reserved), {
    errno: "EOPNOTSUPP",
  });
  t.expect(call("GET_HW_INFO unknown dev_id", 64, { dev_id: 99 }), { errno: "ENOENT" });
  t.expect(call("GET_HW_INFO dev_id of the IOAS", 64, { dev_id: s.ioas }), { errno: "ENOENT" });
  t.expect(call("GET_HW_INFO size 24", 64, {}, 24), { errno: "EINVAL" });
});

const faultQueue = scenario("iommufd/fault-queue", { paths: ["iommufd"] }, (t) => {
  const fd = t.must(t.open("open /dev/iommu", "/dev/iommu"), { ret: "fd" }).raw;
  const alloc = (label: string, flags: number) => {
    const arg = struct(iommu_fault_alloc, { size: 16, flags });
    const obs = t.ioctl(label, fd, IOMMU_FAULT_QUEUE_ALLOC, arg, {
      out: fieldsOf(iommu_fault_alloc, ["out_fault_id"]),
    });
    const faultFd = obs.raw === 0 ? decode(iommu_fault_alloc, arg).out_fault_fd : -1;
    t.adopt(faultFd);
    return { obs, faultFd };
  };
  t.expect(alloc("FAULT_QUEUE_ALLOC flags 1", 1).obs, { errno: "EOPNOTSUPP" });
  const q = alloc("FAULT_QUEUE_ALLOC", 0);
  t.expect(q.obs, { ret: 0, fields: { out_fault_id: 1 } });
  if (q.faultFd < 0) return;
  t.expect(t.read("read 10 bytes", q.faultFd, 10), { errno: "ESPIPE" });
  t.expect(t.read("read one record, queue empty", q.faultFd, 40), { ret: 0 });
  t.expect(t.write("write 3 bytes", q.faultFd, new Uint8Array(3)), { errno: "ESPIPE" });
  const response = new Uint8Array(8);
  response[0] = 0x77; // cookie 0x77, code SUCCESS: no such fault group
  t.expect(t.write("write a response to an unknown cookie", q.faultFd, response), {
    errno: "EINVAL",
  });
});

/** Every iommufd scenario. */
export const IOMMUFD_SCENARIOS: readonly ScenarioDef[] = [
  idsAndDispatch,
  ranges,
  mapErrno,
  destroyAllow,
  cdevBind,
  hwInfo,
  faultQueue,
];
