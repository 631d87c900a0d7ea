/**
 * IOMMU_TEST_CMD of a kernel built with CONFIG_IOMMUFD_TEST (drivers/iommu/iommufd/selftest.c,
 * `iommufd_test`). The dispatcher's size rules (shorter than offsetofend(last) is EINVAL, a
 * non-zero tail E2BIG) come from the command table; here are the ops.
 *
 * Modelled: IOMMU_TEST_OP_ADD_RESERVED (`iopt_reserve_iova` with no owner, so it lasts as long
 * as the IOAS) and IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT (its check; the limit only sizes the
 * kernel's pinning batches, which the simulator does not have). Unknown ops answer EOPNOTSUPP as
 * Linux does. Documented deviation: the ops built on the selftest's mock IOMMU driver, mock
 * devices and test access objects (MOCK_DOMAIN, CREATE_ACCESS, ACCESS_PAGES/RW, MD_CHECK_*,
 * DIRTY, TRIGGER_IOPF, …) are not modelled and also answer EOPNOTSUPP: the simulated machines have
 * no mock IOMMU, and the conformance scenarios use real devices where the selftests use it.
 *
 * @module
 */

import { ERRNO } from "../../ffi/errno.ts";
import {
  type iommu_test_cmd,
  IOMMU_TEST_OP_ADD_RESERVED,
  IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT,
} from "../../ffi/uapi/iommufd_test.ts";
import type { IommufdCore } from "./core.ts";
import type { CmdOf } from "./ucmd.ts";

const U64_MAX = (1n << 64n) - 1n;
/** `sizeof(unsigned long) + sizeof(u32)`: the smallest temporary memory limit accepted. */
const MIN_TEMP_MEMORY_LIMIT = 12;
/** Owner of test reservations: never removed before the IOAS (Linux passes NULL). */
const TEST_RESERVATION = Symbol("IOMMU_TEST_OP_ADD_RESERVED");

/** `iommufd_test`: 0 or -errno. */
export function cmdTest(core: IommufdCore, u: CmdOf<typeof iommu_test_cmd>): number {
  const c = u.cmd;
  switch (c.op) {
    case IOMMU_TEST_OP_ADD_RESERVED: {
      const start = c.add_reserved_start;
      const length = c.add_reserved_length;
      if (length === 0n) return -ERRNO.EINVAL;
      if (start + length - 1n > U64_MAX) return -ERRNO.EOVERFLOW;
      const ioas = core.lookup(c.id, "ioas");
      if (!ioas) return -ERRNO.ENOENT;
      return ioas.iopt.reserve(start, start + length - 1n, TEST_RESERVATION);
    }
    case IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT:
      // memory_limit.limit shares the union's first word with add_reserved.start.
      return Number(c.add_reserved_start & 0xffff_ffffn) < MIN_TEMP_MEMORY_LIMIT
        ? -ERRNO.EINVAL
        : 0;
    default:
      return -ERRNO.EOPNOTSUPP;
  }
}
