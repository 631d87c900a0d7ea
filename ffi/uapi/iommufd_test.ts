/**
 * The iommufd selftest command of a kernel built with CONFIG_IOMMUFD_TEST
 * (drivers/iommu/iommufd/iommufd_test.h of Linux 6.12, the header
 * tools/testing/selftests/iommu includes). It is not in the exported uapi headers, so
 * tests/uapi/headers_test.ts does not see it; the layout below is the 6.12 header's: a 48-byte
 * union (its largest member is `dirty`: a u32 padded to 8 and five u64) between the fixed header
 * and `last`.
 *
 * @module
 */

import { defineIoctl, type IoctlDecl, IOMMUFD_TYPE } from "./common.ts";
import { defineStruct, u32, u64 } from "./layout.ts";

/** `IOMMU_TEST_CMD`: `_IO(IOMMUFD_TYPE, IOMMUFD_CMD_BASE + 32)`. */
export const IOMMU_TEST_CMD: IoctlDecl = defineIoctl("IOMMU_TEST_CMD", IOMMUFD_TYPE, 0xa0);

/** `IOMMU_TEST_OP_ADD_RESERVED`: reserve `[start, start + length)` of the IOAS `id`. */
export const IOMMU_TEST_OP_ADD_RESERVED = 1;
/** `IOMMU_TEST_OP_MOCK_DOMAIN`: a mock device and domain (needs the selftest's mock IOMMU). */
export const IOMMU_TEST_OP_MOCK_DOMAIN = 2;
/** `IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT`: the pinning batch limit (at least 12 bytes). */
export const IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT = 9;

/**
 * `struct iommu_test_cmd` with the members of the union the simulator answers: `add_reserved`
 * (start, length at 16) and `memory_limit.limit` (at 16).
 */
export const iommu_test_cmd = defineStruct("iommu_test_cmd", 72, {
  size: u32(0),
  op: u32(4),
  id: u32(8),
  __reserved: u32(12),
  add_reserved_start: u64(16),
  add_reserved_length: u64(24),
  last: u32(64),
});

/** `IOCTL_OP(IOMMU_TEST_CMD, …, last)`: the shortest accepted `size`, offsetofend(last). */
export const IOMMU_TEST_CMD_MIN_SIZE = 68;
