/**
 * Every conformance scenario, in report order.
 *
 * @module
 */

import type { ScenarioDef } from "./scenario.ts";
import { TYPE1_SCENARIOS } from "./type1_scenarios.ts";
import { IOMMUFD_SCENARIOS } from "./iommufd_scenarios.ts";
import { COMPAT_SCENARIOS } from "./compat_scenarios.ts";
import { NESTING_SCENARIOS } from "./nesting_scenarios.ts";
import { SPAPR_SCENARIOS } from "./spapr_scenarios.ts";
import { DEVICE_SCENARIOS } from "./device_scenarios.ts";
import { IOMMUFD_SELFTEST_FD_SCENARIOS } from "./iommufd_selftest_fd_scenarios.ts";
import { IOMMUFD_SELFTEST_SCENARIOS } from "./iommufd_selftest_scenarios.ts";
import { IOMMUFD_TEST_CMD_SCENARIOS } from "./iommufd_test_cmd_scenarios.ts";
import { IOMMUFD_DEVICE_SCENARIOS } from "./iommufd_device_scenarios.ts";
import { CONTAINER_SELFTEST_SCENARIOS } from "./container_selftest_scenarios.ts";

/**
 * All scenarios: native type1, iommufd, the container API on both implementations, the sPAPR
 * TCE container (POWER), then the checklist of Linux's selftests (tools/testing/selftests/vfio
 * and iommu/iommufd.c) on the device fd, iommufd and the container.
 */
export const ALL_SCENARIOS: readonly ScenarioDef[] = [
  ...TYPE1_SCENARIOS,
  ...IOMMUFD_SCENARIOS,
  ...NESTING_SCENARIOS,
  ...COMPAT_SCENARIOS,
  ...SPAPR_SCENARIOS,
  ...DEVICE_SCENARIOS,
  ...IOMMUFD_SELFTEST_FD_SCENARIOS,
  ...IOMMUFD_SELFTEST_SCENARIOS,
  ...IOMMUFD_TEST_CMD_SCENARIOS,
  ...IOMMUFD_DEVICE_SCENARIOS,
  ...CONTAINER_SELFTEST_SCENARIOS,
];
