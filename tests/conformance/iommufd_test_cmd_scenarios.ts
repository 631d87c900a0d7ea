/**
 * IOMMU_TEST_CMD, the selftest command of a kernel built with CONFIG_IOMMUFD_TEST (the VM bench's
 * own 6.12 kernels are; Debian's are not, and a kernel without it answers ENOTTY): its size rules
 * (`IOCTL_OP(…, last)`: shorter than offsetofend(last) is EINVAL, a non-zero tail E2BIG), unknown
 * ops, and the device-less tests of tools/testing/selftests/iommu/iommufd.c that use it:
 * `iova_ranges`, `area_allowed` and the reserved-region part of `area_auto_iova`
 * (IOMMU_TEST_OP_ADD_RESERVED). What `t.env.iommufdTest` says decides the expectation.
 *
 * @module
 */

import { decode } from "../../ffi/uapi/layout.ts";
import {
  IOMMU_TEST_CMD,
  iommu_test_cmd,
  IOMMU_TEST_CMD_MIN_SIZE,
  IOMMU_TEST_OP_ADD_RESERVED,
  IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT,
} from "../../ffi/uapi/iommufd_test.ts";
import { scenario, type ScenarioContext, type ScenarioDef } from "./scenario.ts";
import {
  allowIovas,
  idOf,
  IOAS_FIXED_RW,
  IOAS_RW,
  ioasAlloc,
  ioasMap,
  ioasUnmap,
  iovaRanges,
  rangeText,
  struct,
  U64_MAX,
} from "./steps.ts";
import { IOMMU_IOAS_MAP, iommu_ioas_map } from "./uapi.ts";

/** The command with `size` and `op`; a longer buffer gets `tail` in its first extra byte. */
function testCmd(
  t: ScenarioContext,
  label: string,
  fd: number,
  a: { size?: number; op: number; id?: number; start?: bigint; length?: bigint; bytes?: number },
  tail = 0,
) {
  const bytes = a.bytes ?? iommu_test_cmd.size;
  const b = struct(iommu_test_cmd, {
    size: a.size ?? iommu_test_cmd.size,
    op: a.op,
    id: a.id ?? 0,
    add_reserved_start: a.start ?? 0n,
    add_reserved_length: a.length ?? 0n,
  }, bytes);
  if (bytes > iommu_test_cmd.size) b[iommu_test_cmd.size] = tail;
  return t.ioctl(label, fd, IOMMU_TEST_CMD, b);
}

/** ENOTTY on a kernel without CONFIG_IOMMUFD_TEST, else `errno`. */
function onTestKernel(t: ScenarioContext, errno: "EINVAL" | "E2BIG" | "EOPNOTSUPP" | "ENOENT") {
  return t.env.iommufdTest ? errno : "ENOTTY";
}

const sizes = scenario("iommufd/test-cmd-sizes", { paths: ["iommufd"] }, (t) => {
  const fd = t.must(t.open("open /dev/iommu", "/dev/iommu"), { ret: "fd" }).raw;
  const min = IOMMU_TEST_CMD_MIN_SIZE;
  t.expect(testCmd(t, "size 8", fd, { size: 8, op: IOMMU_TEST_OP_ADD_RESERVED }), {
    errno: onTestKernel(t, "EINVAL"),
  });
  t.expect(testCmd(t, `size ${min - 1}`, fd, { size: min - 1, op: 0 }), {
    errno: onTestKernel(t, "EINVAL"),
  });
  t.expect(testCmd(t, `size ${min}, op 0`, fd, { size: min, op: 0 }), {
    errno: onTestKernel(t, "EOPNOTSUPP"),
  });
  t.expect(testCmd(t, "op 0x7fff", fd, { op: 0x7fff }), { errno: onTestKernel(t, "EOPNOTSUPP") });
  const long = iommu_test_cmd.size + 8;
  t.expect(testCmd(t, `size ${long}, tail 1`, fd, { size: long, op: 0, bytes: long }, 1), {
    errno: onTestKernel(t, "E2BIG"),
  });
  t.expect(testCmd(t, `size ${long}, tail 0`, fd, { size: long, op: 0, bytes: long }), {
    errno: onTestKernel(t, "EOPNOTSUPP"),
  });
  t.expect(
    testCmd(t, "ADD_RESERVED unknown IOAS", fd, {
      op: IOMMU_TEST_OP_ADD_RESERVED,
      id: 99,
      start: 0x1000n,
      length: 0x1000n,
    }),
    { errno: onTestKernel(t, "ENOENT") },
  );
  t.expect(
    testCmd(t, "ADD_RESERVED length 0", fd, { op: IOMMU_TEST_OP_ADD_RESERVED, id: 99 }),
    { errno: onTestKernel(t, "EINVAL") },
  );
  t.expect(testCmd(t, "SET_TEMP_MEMORY_LIMIT 0", fd, { op: IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT }), {
    errno: onTestKernel(t, "EINVAL"),
  });
});

/** ADD_RESERVED of `[start, start + length)` in IOAS `id`. */
function addReserved(
  t: ScenarioContext,
  label: string,
  fd: number,
  id: number,
  start: bigint,
  length: bigint,
) {
  return testCmd(t, label, fd, { op: IOMMU_TEST_OP_ADD_RESERVED, id, start, length });
}

const reserved = scenario("iommufd/selftest-reserved-ranges", { paths: ["iommufd"] }, (t) => {
  const fd = t.must(t.open("open /dev/iommu", "/dev/iommu"), { ret: "fd" }).raw;
  const ioas = idOf(t.must(ioasAlloc(t, "IOAS_ALLOC", fd), { ret: 0 }), "out_ioas_id");
  const page = BigInt(t.kernel.pageSize);
  const mem = t.mem(t.kernel.pageSize);
  // iova_ranges
  t.expect(iovaRanges(t, "IOVA_RANGES", fd, ioas, 8, mem), {
    ret: 0,
    fields: { num_iovas: 1, out_iova_alignment: 1n, ranges: [rangeText(0n, U64_MAX)] },
  });
  if (!t.env.iommufdTest) {
    t.expect(addReserved(t, "ADD_RESERVED (no CONFIG_IOMMUFD_TEST)", fd, ioas, page, page), {
      errno: "ENOTTY",
    });
    return;
  }
  t.expect(addReserved(t, "ADD_RESERVED page 1", fd, ioas, page, page), { ret: 0 });
  t.expect(iovaRanges(t, "IOVA_RANGES, 2 ranges", fd, ioas, 8, mem), {
    ret: 0,
    fields: { num_iovas: 2, ranges: [rangeText(0n, page - 1n), rangeText(2n * page, U64_MAX)] },
  });
  t.expect(iovaRanges(t, "IOVA_RANGES room for 1", fd, ioas, 1, mem), {
    errno: "EMSGSIZE",
    fields: { num_iovas: 2, ranges: [rangeText(0n, page - 1n)] },
  });
  // area_allowed: a reservation inside an allowed range, and the other way round.
  const other = idOf(t.must(ioasAlloc(t, "IOAS_ALLOC second", fd), { ret: 0 }), "out_ioas_id");
  const base = 1n << 24n;
  t.expect(allowIovas(t, "ALLOW_IOVAS 600 pages", fd, other, [[base, base + 600n * page]]), {
    ret: 0,
  });
  t.expect(addReserved(t, "ADD_RESERVED inside the allowed range", fd, other, base + page, page), {
    errno: "EADDRINUSE",
  });
  t.expect(allowIovas(t, "ALLOW_IOVAS none", fd, other, []), { ret: 0 });
  t.expect(addReserved(t, "ADD_RESERVED", fd, other, base + page, page), { ret: 0 });
  t.expect(
    allowIovas(t, "ALLOW_IOVAS over the reservation", fd, other, [[base, base + 600n * page]]),
    {
      errno: "EADDRINUSE",
    },
  );
  // area_auto_iova: automatic IOVAs avoid a reservation of pages [4, 104).
  const third = idOf(t.must(ioasAlloc(t, "IOAS_ALLOC third", fd), { ret: 0 }), "out_ioas_id");
  t.expect(addReserved(t, "ADD_RESERVED pages 4..103", fd, third, 4n * page, 100n * page), {
    ret: 0,
  });
  const buffer = t.mem(16 * t.kernel.pageSize).address;
  const avoided: boolean[] = [];
  for (let i = 1n; i <= 10n; i++) {
    const length = i * page;
    const arg = struct(iommu_ioas_map, {
      size: 40,
      flags: IOAS_RW,
      ioas_id: third,
      user_va: buffer,
      length,
    });
    t.expect(t.ioctl(`IOAS_MAP ${i} pages`, fd, IOMMU_IOAS_MAP, arg), { ret: 0 });
    const iova = decode(iommu_ioas_map, arg).iova;
    avoided.push(!(iova > 4n * page && iova < 104n * page));
    ioasUnmap(t, `IOAS_UNMAP ${i} pages`, fd, { ioas_id: third, iova, length });
  }
  t.expect(t.note("automatic IOVAs avoid the reservation", { avoided }), {
    fields: { avoided: avoided.map(() => true) },
  });
  t.expect(allowIovas(t, "ALLOW_IOVAS across the reservation", fd, third, [[page, 600n * page]]), {
    errno: "EADDRINUSE",
  });
  const fixed = {
    flags: IOAS_FIXED_RW,
    ioas_id: third,
    user_va: buffer,
    length: page,
    iova: 200n * page,
  };
  t.expect(ioasMap(t, "IOAS_MAP page 200", fd, fixed), { ret: 0 });
  t.expect(addReserved(t, "ADD_RESERVED over the mapping", fd, third, 200n * page, page), {
    errno: "EADDRINUSE",
  });
  t.expect(addReserved(t, "ADD_RESERVED beside the mapping", fd, third, 201n * page, page), {
    ret: 0,
  });
});

/** IOMMU_TEST_CMD and the selftests that need it. */
export const IOMMUFD_TEST_CMD_SCENARIOS: readonly ScenarioDef[] = [sizes, reserved];
