/**
 * Kernel-side objects shared by the simulated VFIO (sim/vfio/) and iommufd (sim/iommufd/) code:
 * an IOMMU group and a PCI function as the kernel knows them (`struct iommu_group`,
 * `struct pci_dev` + its bound driver).
 *
 * @module
 */

import type { IommuModel } from "../iommu/model.ts";
import type { PciDeviceModel } from "../pci/device.ts";

/** Who has claimed DMA ownership of a group (`iommu_group_claim_dma_owner`). */
export type DmaOwner = "vfio-container" | "iommufd";

/** An IOMMU group: the unit of isolation; all its functions share one IOMMU domain. */
export interface SimIommuGroup {
  /** Group number: /dev/vfio/N and /sys/kernel/iommu_groups/N. */
  readonly id: number;
  /** The IOMMU translating this group's DMA. */
  readonly iommu: IommuModel;
  /** The functions in the group. */
  readonly functions: readonly SimPciFunction[];
  /** The current user DMA owner, or undefined (kernel default domain). */
  dmaOwner: DmaOwner | undefined;
  /** The iommufd context (or VFIO container) object that owns DMA, for identity checks. */
  dmaOwnerCookie: unknown;
}

/** A PCI function as the kernel sees it. */
export interface SimPciFunction {
  /** PCI address, "0000:00:02.0". */
  readonly bdf: string;
  /** Requester id: bus << 8 | device << 3 | function. */
  readonly requester: number;
  /** Its IOMMU group. */
  readonly group: SimIommuGroup;
  /** The device model behind it. */
  readonly model: PciDeviceModel;
  /** Name of the bound driver ("vfio-pci", "igb", …) or "" when unbound. */
  driver: string;
  /** The vfio cdev index N (/dev/vfio/devices/vfioN) while bound to vfio-pci with cdev support. */
  cdevIndex: number | undefined;
  /**
   * Surprise-removed (pciehp lost presence; `pci_dev_is_disconnected`): the hardware no longer
   * answers — MMIO and config reads through VFIO are all-ones, writes go nowhere, resets fail.
   */
  removed?: boolean;
  /** Told after every function reset the kernel performs (fault injection lifts a hang). */
  afterReset?: () => void;
}

/** Reset a function as the kernel does (FLR / PM reset / PE reset) and tell its listener. */
export function resetFunction(fn: SimPciFunction): void {
  fn.model.reset();
  fn.afterReset?.();
}
