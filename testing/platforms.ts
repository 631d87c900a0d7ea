/**
 * The simulated platforms a driver test runs on: every IOMMU model the simulator has, the VFIO
 * paths Linux offers on its platform (the type1 container and iommufd with the VFIO cdev on x86
 * and arm64; the sPAPR TCE container only on POWER), and the machine options each needs.
 *
 * The models and paths come from the simulator's own platform table, so a new IOMMU model or
 * path shows up in every test that iterates {@link SIM_PLATFORMS}.
 *
 * @module
 */

import type { DmaBackendKind } from "../core/dma_backend.ts";
import type { MachineOptions } from "../sim/machine.ts";
import { IOMMU_PLATFORMS, type IommuModelName } from "../sim/machine_models.ts";
import { SPAPR_TCE_DRIVER } from "../sim/vfio/spapr_ioctl.ts";

/** One simulated platform. */
export interface SimPlatform {
  /** The IOMMU model ("vtd", "smmuv3", "virtio-iommu", "spapr"). */
  readonly iommu: IommuModelName;
  /** The VFIO paths a driver can open a device through on it. */
  readonly paths: readonly DmaBackendKind[];
  /** Machine options the platform needs for a driver test (beside `iommu`). */
  readonly options: Partial<MachineOptions>;
}

/**
 * Options a platform needs so that ordinary drivers work: x86 with virtio-iommu has no interrupt
 * remapping, so VFIO refuses MSI unless `allow_unsafe_interrupts` is set (the VM bench sets it
 * too).
 */
const PLATFORM_OPTIONS: Partial<Record<IommuModelName, Partial<MachineOptions>>> = {
  "virtio-iommu": { allowUnsafeInterrupts: { type1: true, iommufd: true } },
};

function pathsOf(iommu: IommuModelName): DmaBackendKind[] {
  const p = IOMMU_PLATFORMS[iommu];
  const container = p.iommuDrivers.map((d): DmaBackendKind =>
    d === SPAPR_TCE_DRIVER ? "spapr" : "type1"
  );
  return p.vfioCdev ? [...container, "iommufd"] : container;
}

/** Every simulated platform, in the simulator's order. */
export const SIM_PLATFORMS: readonly SimPlatform[] = (Object.keys(
  IOMMU_PLATFORMS,
) as IommuModelName[]).map((iommu) => ({
  iommu,
  paths: pathsOf(iommu),
  options: PLATFORM_OPTIONS[iommu] ?? {},
}));

/** The platform of an IOMMU model (throws for an unknown name, listing the known ones). */
export function simPlatform(iommu: IommuModelName): SimPlatform {
  const p = SIM_PLATFORMS.find((x) => x.iommu === iommu);
  if (p === undefined) {
    throw new RangeError(
      `unknown IOMMU model "${iommu}" (want one of ${
        SIM_PLATFORMS.map((x) => x.iommu).join(", ")
      })`,
    );
  }
  return p;
}

/** Every (platform, path) pair, in order. */
export function platformPaths(): { platform: SimPlatform; path: DmaBackendKind }[] {
  return SIM_PLATFORMS.flatMap((platform) => platform.paths.map((path) => ({ platform, path })));
}

/** The environment variable that asks for the long fault battery and fail-nth sweeps. */
export const LONG_FAULTS_ENV = "DENO_VFIO_FAULTS";

/**
 * Whether the long version of the fault battery and the fail-nth sweeps was asked for
 * (`DENO_VFIO_FAULTS=long`); false when the variable is unset or cannot be read.
 */
export function longFaultRuns(): boolean {
  try {
    return Deno.env.get(LONG_FAULTS_ENV) === "long";
  } catch {
    return false;
  }
}
