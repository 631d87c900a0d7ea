/**
 * `openNic()`: one way to open any supported NIC. It reads the PCI vendor:device id and starts the
 * matching driver — virtio-net (drivers/virtio/), e1000e (82574L) or igb (82576) (drivers/e1000/
 * with drivers/e1000e/ and drivers/igb/) — and refuses anything else with one error naming the
 * device and the supported ones. Given a PCI address it opens the device itself (and closes it
 * with the NIC); given a {@link PciDevice} it leaves the device to the caller.
 *
 * @example
 * ```ts
 * const nic = await openNic("0000:00:05.0", { kernel, iommu: "auto", queues: 4 });
 * console.log(nic.name, nic.interruptMode);
 * nic.close(); // closes the PCI device too
 * ```
 *
 * @module
 */

import type { Kernel } from "../ffi/kernel.ts";
import { type IommuChoice, openPciDevice, PciDevice } from "../core/pci_device.ts";
import { PCI_DEVICE_ID, PCI_VENDOR_ID } from "../core/config_space.ts";
import { VfioError } from "../core/errors.ts";
import { IntelNic, type IntelNicOptions } from "./e1000/nic.ts";
import { INTEL_VENDOR_ID } from "./e1000/registers.ts";
import { E1000E_DEVICE_ID } from "./e1000e/registers.ts";
import { openE1000e } from "./e1000e/e1000e.ts";
import { IGB_DEVICE_ID } from "./igb/registers.ts";
import { openIgb } from "./igb/igb.ts";
import { VirtioNet, type VirtioNetOptions } from "./virtio/net.ts";
import {
  VIRTIO_ID_NET,
  VIRTIO_PCI_MODERN_DEVICE_BASE,
  VIRTIO_PCI_TRANSITIONAL_NET,
  VIRTIO_PCI_VENDOR_ID,
} from "./virtio/registers.ts";

/** The drivers {@link openNic} picks from. */
export type NicDriver = "virtio-net" | "e1000e" | "igb";

/** A NIC {@link openNic} returns. */
export type Nic = VirtioNet | IntelNic;

/** Options of {@link openNic}: where to find the device, and the drivers' options. */
export interface OpenNicOptions
  extends VirtioNetOptions, Omit<IntelNicOptions, "expect" | "closeDevice"> {
  /** The kernel (needed when a PCI address is given). */
  kernel?: Kernel;
  /** The VFIO path when a PCI address is given (default "auto"). */
  iommu?: IommuChoice;
}

/** One supported PCI id. */
export interface SupportedNic {
  /** The driver. */
  readonly driver: NicDriver;
  /** PCI vendor id. */
  readonly vendor: number;
  /** PCI device id. */
  readonly device: number;
  /** What the id is. */
  readonly what: string;
}

/** Every PCI id {@link openNic} drives. */
export const SUPPORTED_NICS: readonly SupportedNic[] = [
  {
    driver: "virtio-net",
    vendor: VIRTIO_PCI_VENDOR_ID,
    device: VIRTIO_PCI_MODERN_DEVICE_BASE + VIRTIO_ID_NET,
    what: "virtio-net (modern)",
  },
  {
    driver: "virtio-net",
    vendor: VIRTIO_PCI_VENDOR_ID,
    device: VIRTIO_PCI_TRANSITIONAL_NET,
    what: "virtio-net (transitional)",
  },
  { driver: "e1000e", vendor: INTEL_VENDOR_ID, device: E1000E_DEVICE_ID, what: "Intel 82574L" },
  { driver: "igb", vendor: INTEL_VENDOR_ID, device: IGB_DEVICE_ID, what: "Intel 82576" },
];

/** The driver for a PCI id, or undefined. */
export function nicDriverFor(vendor: number, device: number): NicDriver | undefined {
  return SUPPORTED_NICS.find((n) => n.vendor === vendor && n.device === device)?.driver;
}

/**
 * Open the NIC at `target` (a PCI address, opened with `options.kernel` and `options.iommu`, or
 * an open {@link PciDevice}) with the driver its PCI id calls for. Throws a VfioError naming the
 * device and the supported ids when there is none; a device this call opened is closed again on
 * every error.
 */
export async function openNic(
  target: string | PciDevice,
  options: OpenNicOptions = {},
): Promise<Nic> {
  let dev: PciDevice;
  const opened = !(target instanceof PciDevice);
  if (target instanceof PciDevice) {
    dev = target;
  } else {
    if (options.kernel === undefined) {
      throw new VfioError({
        operation: "openNic",
        device: target,
        message: "a PCI address needs a kernel to open it with",
        hint: "pass options.kernel (LinuxKernel.open(), or a simulated machine's kernel)",
      });
    }
    dev = openPciDevice(target, { kernel: options.kernel, iommu: options.iommu ?? "auto" });
  }
  let vendor: number;
  let device: number;
  try {
    vendor = dev.config.read16(PCI_VENDOR_ID);
    device = dev.config.read16(PCI_DEVICE_ID);
  } catch (e) {
    if (opened) dev.close();
    throw e;
  }
  const driver = nicDriverFor(vendor, device);
  const fail = (message: string, hint: string): never => {
    if (opened) dev.close();
    throw new VfioError({ operation: "openNic", device: dev.bdf, message, hint });
  };
  if (driver === undefined) {
    return fail(
      `device ${hex4(vendor)}:${hex4(device)} is not a supported NIC (${
        SUPPORTED_NICS.map((n) => `${n.driver} ${hex4(n.vendor)}:${hex4(n.device)}`).join(", ")
      })`,
      "pass the address of a virtio-net, e1000e (82574L) or igb (82576) NIC bound to vfio-pci",
    );
  }
  const queues = options.queues ?? 1;
  if (queues !== 1 && driver !== "igb") {
    return fail(
      `${queues} queue pairs asked for; the ${driver} driver uses one`,
      "queues (RSS) is an igb option",
    );
  }
  const common = { ...options, closeDevice: opened };
  switch (driver) {
    case "virtio-net":
      return await VirtioNet.open(dev, common);
    case "e1000e":
      return await openE1000e(dev, common);
    case "igb":
      return await openIgb(dev, common);
  }
}

function hex4(v: number): string {
  return v.toString(16).padStart(4, "0");
}
