/**
 * Finding the device under test through sysfs, the same way on LinuxKernel and SimKernel: its
 * IOMMU group, its VFIO cdev, the IOMMU model behind it, and the kernel release.
 *
 * @module
 */

import type { Kernel } from "../../ffi/kernel.ts";
import { O_RDWR } from "../../ffi/kernel.ts";
import type { IommuExpectations } from "./expectations.ts";
import type { ScenarioEnv, VfioPath } from "./scenario.ts";
import { ioctlNumber } from "../../ffi/uapi/common.ts";
import { VFIO_CHECK_EXTENSION, VFIO_SPAPR_TCE_v2_IOMMU, VFIO_TYPE1v2_IOMMU } from "./uapi.ts";

const PCI_DEVICES = "/sys/bus/pci/devices";

function basename(path: string): string {
  return path.replace(/\/+$/, "").split("/").pop() ?? "";
}

/** The device's IOMMU group number, or undefined when it has none. */
export function iommuGroupOf(kernel: Kernel, bdf: string): number | undefined {
  const link = kernel.readlink(`${PCI_DEVICES}/${bdf}/iommu_group`);
  if (typeof link === "number") return undefined;
  const n = Number(basename(link));
  return Number.isInteger(n) ? n : undefined;
}

/** The device's VFIO cdev node (/dev/vfio/devices/vfioN), or undefined. */
export function cdevOf(kernel: Kernel, bdf: string): string | undefined {
  const names = kernel.readdir(`${PCI_DEVICES}/${bdf}/vfio-dev`);
  if (typeof names === "number") return undefined;
  const name = names.find((n) => /^vfio\d+$/.test(n));
  return name === undefined ? undefined : `/dev/vfio/devices/${name}`;
}

/** How sysfs names the IOMMU instance of each model (the `iommu` link's last component). */
const IOMMU_SYSFS_NAMES: readonly { readonly pattern: RegExp; readonly model: string }[] = [
  { pattern: /^dmar\d+$/, model: "vtd" },
  { pattern: /^smmu3\./, model: "smmuv3" },
  { pattern: /virtio/, model: "virtio-iommu" },
  { pattern: /^iommu-phb/, model: "spapr" }, // POWER: one iommu device per PHB
];

/** The IOMMU model translating a device, from its `iommu` link, or undefined. */
export function iommuModelOf(kernel: Kernel, bdf: string): string | undefined {
  const link = kernel.readlink(`${PCI_DEVICES}/${bdf}/iommu`);
  if (typeof link === "number") return undefined;
  const name = basename(link);
  return IOMMU_SYSFS_NAMES.find((e) => e.pattern.test(name) || e.pattern.test(link))?.model;
}

/** The first PCI device with the given vendor:device ids, e.g. QEMU's edu (0x1234:0x11e8). */
export function findPciDevice(kernel: Kernel, vendor: number, device: number): string | undefined {
  const names = kernel.readdir(PCI_DEVICES);
  if (typeof names === "number") return undefined;
  for (const bdf of names) {
    const v = kernel.readFile(`${PCI_DEVICES}/${bdf}/vendor`);
    const d = kernel.readFile(`${PCI_DEVICES}/${bdf}/device`);
    if (
      typeof v === "string" && typeof d === "string" && Number(v.trim()) === vendor &&
      Number(d.trim()) === device
    ) {
      return bdf;
    }
  }
  return undefined;
}

/** `uname -r` through procfs, or "unknown". */
export function kernelRelease(kernel: Kernel): string {
  const r = kernel.readFile("/proc/sys/kernel/osrelease");
  return typeof r === "string" ? r.trim() : "unknown";
}

function canOpen(kernel: Kernel, path: string): boolean {
  const fd = kernel.open(path, O_RDWR);
  if (fd < 0) return false;
  kernel.close(fd);
  return true;
}

/** Whether /dev/vfio/vfio reports an IOMMU type with VFIO_CHECK_EXTENSION. */
function containerOffers(kernel: Kernel, type: number): boolean {
  const fd = kernel.open("/dev/vfio/vfio", O_RDWR);
  if (fd < 0) return false;
  try {
    return kernel.ioctl(fd, ioctlNumber(kernel.ioctlArch, VFIO_CHECK_EXTENSION), type) > 0;
  } finally {
    kernel.close(fd);
  }
}

/** Why a path cannot run on this kernel (its device nodes are missing), or undefined. */
export function pathUnavailable(
  kernel: Kernel,
  env: ScenarioEnv,
  path: VfioPath,
): string | undefined {
  const container = path === "type1" || path === "spapr";
  if (container && !canOpen(kernel, "/dev/vfio/vfio")) return "no /dev/vfio/vfio";
  if (!container && !canOpen(kernel, "/dev/iommu")) return "no /dev/iommu";
  if (path === "spapr" && !containerOffers(kernel, VFIO_SPAPR_TCE_v2_IOMMU)) {
    return "the VFIO container has no sPAPR TCE IOMMU driver (not a POWER host)";
  }
  if (path === "type1" && !containerOffers(kernel, VFIO_TYPE1v2_IOMMU)) {
    return "the VFIO container has no type1 IOMMU driver (a POWER host)";
  }
  if (path === "iommufd" && env.cdev === undefined) return "no VFIO cdev for the device";
  return undefined;
}

/**
 * Whether the kernel has CONFIG_IOMMUFD_TEST: its selftest registers the `iommufd_mock` bus
 * (drivers/iommu/iommufd/selftest.c, `iommufd_test_init`).
 */
export function hasIommufdTest(kernel: Kernel): boolean {
  return typeof kernel.readdir("/sys/bus/iommufd_mock") !== "number";
}

/** The scenario environment of a device, or a sentence saying why there is none. */
export function discoverEnv(
  kernel: Kernel,
  bdf: string,
  iommu: IommuExpectations,
): ScenarioEnv | string {
  const group = iommuGroupOf(kernel, bdf);
  if (group === undefined) return `${bdf} has no IOMMU group (${PCI_DEVICES}/${bdf}/iommu_group)`;
  const driver = kernel.readlink(`${PCI_DEVICES}/${bdf}/driver`);
  if (typeof driver === "string" && basename(driver) !== "vfio-pci") {
    return `${bdf} is bound to ${basename(driver)}, not vfio-pci`;
  }
  const cdev = cdevOf(kernel, bdf);
  const thp = kernel.readFile("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size");
  return {
    bdf,
    group,
    iommu,
    iommufdTest: hasIommufdTest(kernel),
    ...(typeof thp === "string" ? { hugePmdSize: Number(thp.trim()) } : {}),
    ...(cdev === undefined ? {} : { cdev }),
  };
}
