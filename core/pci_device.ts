/**
 * `openPciDevice(bdf, { kernel })`: everything a driver needs to start on one PCI function —
 * its VFIO device fd, config space, BARs, interrupts and a DMA space — found through sysfs, with
 * the IOMMU backend picked for the machine, and every failure turned into an actionable error.
 *
 * Backend choice ("auto"): iommufd with the VFIO cdev when `/dev/iommu` and the device's
 * `/dev/vfio/devices/vfioN` exist; otherwise the VFIO container — sPAPR TCE when the container
 * reports the sPAPR extension (POWER), type1 everywhere else.
 *
 * @example
 * ```ts
 * using dev = openPciDevice("0000:00:02.0", { kernel, iommu: "auto" });
 * dev.config.enableBusMaster();
 * const regs = dev.bar(0);
 * const buf = dev.dma.allocate(4096);
 * dev.irqs.enableMsi(1);
 * ```
 *
 * Several devices can share one DMA space (one IOMMU address space):
 * ```ts
 * using space = DmaSpace.open(kernel, "type1");
 * using a = openPciDevice("0000:03:00.0", { kernel, dma: space });
 * using b = openPciDevice("0000:03:00.1", { kernel, dma: space });
 * ```
 *
 * @module
 */

import type { Kernel, Mmio } from "../ffi/kernel.ts";
import { ConfigSpace } from "./config_space.ts";
import { VfioDevice } from "./device.ts";
import { VFIO_PCI_BAR0_REGION_INDEX, VFIO_PCI_BAR5_REGION_INDEX } from "../ffi/uapi/mod.ts";
import type { DeviceTarget, DmaBackendKind } from "./dma_backend.ts";
import { DmaSpace, type DmaSpaceOptions } from "./dma_space.ts";
import { VFIO_SPAPR_TCE_IOMMU, VFIO_SPAPR_TCE_v2_IOMMU } from "../ffi/uapi/mod.ts";
import { VfioError } from "./errors.ts";
import { Interrupts } from "./irq.ts";
import { describePciDevice, explainUnusable, type PciDeviceDescription } from "./sysfs.ts";
import { runAll } from "./syscall.ts";
import { VfioContainer } from "./type1.ts";

/** Which IOMMU interface to use: "auto" picks one for the machine (see the module doc). */
export type IommuChoice = "auto" | DmaBackendKind;

/** Options of {@link openPciDevice}. */
export interface OpenPciDeviceOptions {
  /** The kernel: `LinuxKernel` on real hardware, the simulator's `SimKernel` otherwise. */
  kernel: Kernel;
  /** The IOMMU interface (default "auto"); ignored when `dma` is given, unless it disagrees. */
  iommu?: IommuChoice;
  /** A DMA space to open the device into (shared with other devices); not closed with it. */
  dma?: DmaSpace;
  /** Options of the DMA space created when `dma` is not given. */
  dmaOptions?: DmaSpaceOptions;
}

/** What sysfs says about the device. */
export interface PciDeviceInfo {
  /** PCI vendor id. */
  readonly vendor: number;
  /** PCI device id. */
  readonly device: number;
  /** The bound driver ("vfio-pci"). */
  readonly driver: string | undefined;
  /** The IOMMU group number. */
  readonly group: number;
  /** The VFIO cdev node, when the kernel has one. */
  readonly cdev: string | undefined;
  /** The IOMMU interface the device was opened through. */
  readonly backend: DmaBackendKind;
}

/** An open PCI function. */
export class PciDevice {
  /** PCI address, "0000:00:02.0". */
  readonly bdf: string;
  /** The kernel. */
  readonly kernel: Kernel;
  /** Identity, driver, group, backend. */
  readonly info: PciDeviceInfo;
  /** The VFIO device fd: regions, reset, features. */
  readonly device: VfioDevice;
  /** Configuration space. */
  readonly config: ConfigSpace;
  /** Interrupts (INTx, MSI, MSI-X). */
  readonly irqs: Interrupts;
  /** The DMA space the device is attached to. */
  readonly dma: DmaSpace;
  readonly #ownsDma: boolean;
  #closed = false;

  /** Assemble an opened device (use {@link openPciDevice}). */
  constructor(parts: {
    bdf: string;
    kernel: Kernel;
    info: PciDeviceInfo;
    device: VfioDevice;
    config: ConfigSpace;
    irqs: Interrupts;
    dma: DmaSpace;
    ownsDma: boolean;
  }) {
    this.bdf = parts.bdf;
    this.kernel = parts.kernel;
    this.info = parts.info;
    this.device = parts.device;
    this.config = parts.config;
    this.irqs = parts.irqs;
    this.dma = parts.dma;
    this.#ownsDma = parts.ownsDma;
  }

  /** BAR `index` (0–5) as an {@link Mmio}: mmapped when allowed, pread/pwrite otherwise; cached. */
  bar(index: number): Mmio {
    if (
      !Number.isInteger(index) || index < VFIO_PCI_BAR0_REGION_INDEX ||
      index > VFIO_PCI_BAR5_REGION_INDEX
    ) {
      throw new VfioError({
        operation: "bar",
        device: this.bdf,
        message: `BAR ${index} does not exist`,
        hint: `BARs are numbered ${VFIO_PCI_BAR0_REGION_INDEX}–${VFIO_PCI_BAR5_REGION_INDEX}`,
      });
    }
    return this.device.region(index);
  }

  /**
   * Disable interrupts, unmap the BARs, close the device fd (detaching it from the DMA space),
   * and close the DMA space if this device created it. Every step runs; the first error is
   * thrown. A second call does nothing.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const steps = [() => this.irqs.close(), () => this.device.close()];
    if (this.#ownsDma) steps.push(() => this.dma.close());
    runAll(steps);
  }

  /** Same as {@link close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Open PCI function `bdf` for a userspace driver. Throws a VfioError saying what to do when the
 * device cannot be used (no VFIO, bound to another driver, no IOMMU group, group not viable, …)
 * or when the kernel refuses a step; everything opened so far is closed again.
 */
export function openPciDevice(bdf: string, options: OpenPciDeviceOptions): PciDevice {
  const { kernel } = options;
  const description = describePciDevice(kernel, bdf);
  const problem = explainUnusable(description);
  if (problem !== undefined) throw problem;
  return openDescribed(description, options);
}

/** The part of {@link openPciDevice} after sysfs said the device is usable. */
function openDescribed(
  description: PciDeviceDescription,
  options: OpenPciDeviceOptions,
): PciDevice {
  const { kernel } = options;
  const bdf = description.bdf;
  const group = description.group;
  if (group === undefined) {
    throw new VfioError({
      operation: "openPciDevice",
      device: bdf,
      message: "the device has no IOMMU group",
      hint: "enable the IOMMU (intel_iommu=on / amd_iommu=on) and bind the device to vfio-pci",
    });
  }
  const kind = options.dma?.kind ?? chooseBackend(kernel, description, options.iommu ?? "auto");
  if (options.dma && options.iommu && options.iommu !== "auto" && options.iommu !== kind) {
    throw new VfioError({
      operation: "openPciDevice",
      device: bdf,
      message: `iommu "${options.iommu}" asked for, but the DMA space given is ${kind}`,
      hint: "leave out iommu when passing dma",
    });
  }
  const target: DeviceTarget = kind === "iommufd"
    ? { bdf, group, cdev: requireCdev(description) }
    : { bdf, group };
  const ownsDma = options.dma === undefined;
  const space = options.dma ?? DmaSpace.open(kernel, kind, options.dmaOptions);
  let device: VfioDevice | undefined;
  try {
    const fd = space.backend.openDevice(target);
    device = new VfioDevice(kernel, fd, bdf, { closeFd: (f) => space.backend.closeDevice(f) });
    const config = ConfigSpace.open(device);
    const irqs = new Interrupts(device);
    const info: PciDeviceInfo = {
      vendor: description.vendor,
      device: description.device,
      driver: description.driver,
      group,
      cdev: description.cdev,
      backend: kind,
    };
    return new PciDevice({ bdf, kernel, info, device, config, irqs, dma: space, ownsDma });
  } catch (e) {
    const cleanup: (() => void)[] = [];
    if (device !== undefined) cleanup.push(() => device!.close());
    if (ownsDma) cleanup.push(() => space.close());
    try {
      runAll(cleanup);
    } catch {
      // The original failure is the one to report.
    }
    throw e;
  }
}

/** The backend "auto" (or an explicit choice) resolves to for this device. */
function chooseBackend(
  kernel: Kernel,
  description: PciDeviceDescription,
  choice: IommuChoice,
): DmaBackendKind {
  if (choice !== "auto") return choice;
  if (description.hasIommufd && description.cdev !== undefined) return "iommufd";
  if (!description.hasVfioContainer) return "type1"; // its backend explains the missing container
  return containerHasSpapr(kernel) ? "spapr" : "type1";
}

/** Does the VFIO container report a sPAPR TCE IOMMU (VFIO_CHECK_EXTENSION)? */
function containerHasSpapr(kernel: Kernel): boolean {
  const container = VfioContainer.open(kernel);
  try {
    return [VFIO_SPAPR_TCE_v2_IOMMU, VFIO_SPAPR_TCE_IOMMU].some((t) =>
      container.checkExtension(t) > 0
    );
  } finally {
    container.close();
  }
}

function requireCdev(description: PciDeviceDescription): string {
  if (description.cdev !== undefined) return description.cdev;
  throw new VfioError({
    operation: "openPciDevice",
    device: description.bdf,
    message: "iommufd asked for, but the device has no VFIO cdev (/dev/vfio/devices/vfioN)",
    hint: "the kernel lacks CONFIG_VFIO_DEVICE_CDEV (never built on POWER), or the device is not " +
      'bound to vfio-pci; use iommu: "auto" to take the VFIO container (type1, or sPAPR on POWER)',
  });
}
