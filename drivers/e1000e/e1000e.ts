/**
 * The e1000e packet driver: the Intel 82574L (QEMU's `e1000e`) through the shared e1000-family
 * driver (drivers/e1000/nic.ts) with the 82574's row of the model table (./model.ts): extended
 * receive descriptors, legacy transmit descriptors, the receive queue on MSI-X vector 0 (MSI
 * when the device offers no MSI-X).
 *
 * @example
 * ```ts
 * using dev = openPciDevice("0000:00:04.0", { kernel, iommu: "auto" });
 * const nic = await openE1000e(dev);
 * console.log(nic.name, nic.interruptMode, nic.linkUp());
 * nic.close();
 * ```
 *
 * @module
 */

import type { PciDevice } from "../../core/pci_device.ts";
import { IntelNic, type IntelNicOptions } from "../e1000/nic.ts";
import { E1000E_MODEL } from "./model.ts";

/** Options of {@link openE1000e} (one queue pair: the 82574 driver uses no RSS). */
export type E1000eOptions = Omit<IntelNicOptions, "expect" | "queues">;

/** Open an 82574L as a {@link IntelNic}; another device is refused with the supported ids. */
export function openE1000e(dev: PciDevice, options: E1000eOptions = {}): Promise<IntelNic> {
  return IntelNic.open(dev, { ...options, expect: E1000E_MODEL });
}
