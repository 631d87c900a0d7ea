/**
 * The VFIO container's IOMMU drivers (`struct vfio_iommu_driver_ops`, drivers/vfio/container.c):
 * the registered backends a container polls with CHECK_EXTENSION and opens with SET_IOMMU —
 * type1 on x86 and arm64, sPAPR TCE on POWER. Which drivers a machine registers is data chosen
 * with its IOMMU model (sim/machine_models.ts).
 *
 * @module
 */

import type { SimProcess } from "../kernel/file.ts";
import type { SimIommuGroup } from "../kernel/pci_function.ts";
import type { VfioEnv } from "./env.ts";

/** An open IOMMU driver instance of a container (`iommu_data` with its ops). */
export interface VfioIommuDriver {
  /** `VFIO_CHECK_EXTENSION` answered by this instance. */
  checkExtension(ext: bigint): number;
  /**
   * A container ioctl other than the container's own: the result or -errno, or undefined when
   * the driver does not know the request (the container answers ENOTTY). `arg` is the raw
   * argument; drivers copy user memory themselves.
   */
  ioctl(process: SimProcess, request: number, arg: Uint8Array | bigint): number | undefined;
  /** `attach_group`: 0 or -errno. */
  attachGroup(group: SimIommuGroup): number;
  /** `detach_group`. */
  detachGroup(group: SimIommuGroup): void;
  /** `release`: the last group left (or the container closed); free everything. */
  release(): void;
}

/** A registered IOMMU driver (`vfio_register_iommu_driver`). */
export interface VfioIommuDriverSpec {
  /** Module name, e.g. "vfio_iommu_type1". */
  readonly name: string;
  /** `VFIO_CHECK_EXTENSION` without an instance (the container polls before SET_IOMMU). */
  checkExtension(ext: bigint): number;
  /** `open(arg)`: an instance for the IOMMU type, or -errno. */
  open(type: bigint, env: VfioEnv): VfioIommuDriver | number;
}
