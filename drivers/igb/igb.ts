/**
 * The igb packet driver: the Intel 82576 (QEMU's `igb`) through the shared e1000-family driver
 * (drivers/e1000/nic.ts) with the 82576's row of the model table (./model.ts): advanced receive
 * and transmit descriptors, one queue pair by default or up to eight with RSS, one MSI-X vector
 * per queue.
 *
 * @example
 * ```ts
 * using dev = openPciDevice("0000:00:05.0", { kernel, iommu: "auto" });
 * const nic = await openIgb(dev, { queues: 4 });
 * console.log(nic.name, nic.interruptMode, nic.stats().hardware.goodPacketsReceived);
 * nic.close();
 * ```
 *
 * @module
 */

import type { PciDevice } from "../../core/pci_device.ts";
import { IntelNic, type IntelNicOptions } from "../e1000/nic.ts";
import { IGB_MODEL } from "./model.ts";

/** Options of {@link openIgb}. */
export type IgbOptions = Omit<IntelNicOptions, "expect">;

/** Open an 82576 as a {@link IntelNic}; another device is refused with the supported ids. */
export function openIgb(dev: PciDevice, options: IgbOptions = {}): Promise<IntelNic> {
  return IntelNic.open(dev, { ...options, expect: IGB_MODEL });
}
