/**
 * The supported e1000-family controllers, by PCI device id: the per-model differences as data
 * (see model.ts for what a row holds).
 *
 * @module
 */

import type { E1000Model } from "./model.ts";
import { INTEL_VENDOR_ID } from "./registers.ts";
import { E1000E_MODEL } from "../e1000e/model.ts";
import { IGB_MODEL } from "../igb/model.ts";

/** The supported controllers: the 82574L (e1000e) and the 82576 (igb). */
export const E1000_MODELS: readonly E1000Model[] = [E1000E_MODEL, IGB_MODEL];

/** The model with this PCI vendor:device id, or undefined. */
export function findE1000Model(vendor: number, device: number): E1000Model | undefined {
  return vendor === INTEL_VENDOR_ID ? E1000_MODELS.find((m) => m.deviceId === device) : undefined;
}

/** "82574L 8086:10d3, 82576 8086:10c9", for error messages. */
export function describeE1000Models(): string {
  return E1000_MODELS.map((m) => `${m.chip} ${hex4(INTEL_VENDOR_ID)}:${hex4(m.deviceId)}`).join(
    ", ",
  );
}

function hex4(v: number): string {
  return v.toString(16).padStart(4, "0");
}
