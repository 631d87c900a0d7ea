/**
 * The built-in device models `createMachine` knows by name.
 *
 * @module
 */

import type { PciDeviceModel } from "./pci/device.ts";

/** Names of built-in models. */
export type DeviceModelName = "edu";

/** A new instance of a built-in model. */
export function createDeviceModel(name: DeviceModelName): PciDeviceModel {
  throw new Error(`createMachine: the "${name}" model is not available yet`);
}
