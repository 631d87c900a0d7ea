/**
 * The built-in device models `createMachine` knows by name.
 *
 * @module
 */

import { EduDevice } from "./pci/edu.ts";
import type { PciDeviceModel } from "./pci/device.ts";

/** Names of built-in models. */
export type DeviceModelName = "edu";

/** Factories of the built-in models. */
const MODELS: Record<DeviceModelName, () => PciDeviceModel> = {
  edu: () => new EduDevice(),
};

/** A new instance of a built-in model. */
export function createDeviceModel(name: DeviceModelName): PciDeviceModel {
  const make = MODELS[name];
  if (make === undefined) throw new Error(`createMachine: unknown device model "${name}"`);
  return make();
}
