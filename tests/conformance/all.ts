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

/**
 * All scenarios: native type1, iommufd, the container API on both implementations, then the
 * sPAPR TCE container (POWER).
 */
export const ALL_SCENARIOS: readonly ScenarioDef[] = [
  ...TYPE1_SCENARIOS,
  ...IOMMUFD_SCENARIOS,
  ...NESTING_SCENARIOS,
  ...COMPAT_SCENARIOS,
  ...SPAPR_SCENARIOS,
];
