/**
 * Shared set-up of the host tests: the real kernel through LinuxKernel, the devices to test, and
 * the VFIO paths this kernel has. When there is no VFIO (no /dev/vfio, not Linux, or no
 * --allow-ffi) every host test is registered as ignored, with the reason in its name, so the run
 * reports it as ignored rather than passed.
 *
 * @module
 */

import type { Kernel } from "../../ffi/kernel.ts";
import { describePciDevice, listPciDevices } from "../../core/sysfs.ts";

/** The kernel and why host tests cannot run, if they cannot. */
export interface HostEnv {
  /** The real kernel, when usable. */
  readonly kernel: Kernel | undefined;
  /** Why the host tests are skipped. */
  readonly skip: string | undefined;
}

let cached: HostEnv | undefined;

/** Open the real kernel once; reports why not. */
export async function hostEnv(): Promise<HostEnv> {
  if (cached) return cached;
  if (Deno.build.os !== "linux") return (cached = { kernel: undefined, skip: "not Linux" });
  if ((await Deno.permissions.query({ name: "ffi" })).state !== "granted") {
    return (cached = { kernel: undefined, skip: "no --allow-ffi" });
  }
  const { LinuxKernel } = await import("../../ffi/linux.ts");
  const kernel = LinuxKernel.open();
  if (typeof kernel.readdir("/dev/vfio") === "number") {
    return (cached = { kernel: undefined, skip: "/dev/vfio is absent (no VFIO on this machine)" });
  }
  return (cached = { kernel, skip: undefined });
}

/** PCI addresses of the devices with this vendor:device that are bound to vfio-pci. */
export function vfioDevices(kernel: Kernel, vendor: number, device: number): string[] {
  return listPciDevices(kernel).filter((bdf) => {
    const d = describePciDevice(kernel, bdf);
    return d.vendor === vendor && d.device === device && d.driver === "vfio-pci";
  });
}

/**
 * The VFIO paths this kernel offers for a device. "type1" is the VFIO container API on
 * /dev/vfio/vfio: vfio_iommu_type1 behind it, or on a kernel built with IOMMUFD_VFIO_CONTAINER
 * iommufd's compat container (see {@link containerBackend}); the driver code is the same.
 */
export function vfioPaths(kernel: Kernel, bdf: string): ("type1" | "iommufd")[] {
  const d = describePciDevice(kernel, bdf);
  const out: ("type1" | "iommufd")[] = [];
  if (d.hasVfioContainer) out.push("type1");
  if (d.hasIommufd && d.cdev !== undefined) out.push("iommufd");
  return out;
}

/** What serves /dev/vfio/vfio: the type1 driver, or iommufd's compat container. */
export function containerBackend(kernel: Kernel): "vfio_iommu_type1" | "iommufd compat" {
  // vfio_iommu_type1 has module parameters, so /sys/module lists it built in or loaded.
  return typeof kernel.readdir("/sys/module/vfio_iommu_type1") === "number"
    ? "iommufd compat"
    : "vfio_iommu_type1";
}

/** Open fds of this process (for leak checks). */
export function openFds(kernel: Kernel): number {
  const fds = kernel.readdir("/proc/self/fd");
  return typeof fds === "number" ? -1 : fds.length;
}

/** VmLck of this process in kB (locked memory charged by VFIO pinning). */
export function lockedKb(kernel: Kernel): number {
  const status = kernel.readFile("/proc/self/status");
  if (typeof status === "number") return -1;
  const m = /VmLck:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) : -1;
}

/** The kernel log (dmesg), for IOMMU fault lines; empty when it cannot be read. */
export async function kernelLog(): Promise<string> {
  try {
    const out = await new Deno.Command("dmesg", { stdout: "piped", stderr: "null" }).output();
    return new TextDecoder().decode(out.stdout);
  } catch {
    return "";
  }
}

/** Why host tests cannot run here (undefined: they can), decided once when this module loads. */
const ENV: HostEnv = await hostEnv();

/**
 * Register a host test; without VFIO it is reported as ignored, its name saying why
 * ("… [ignored: /dev/vfio is absent (no VFIO on this machine)]").
 */
export function hostTest(name: string, fn: (kernel: Kernel) => Promise<void> | void): void {
  const kernel = ENV.kernel;
  if (kernel === undefined) {
    Deno.test({ name: `${name} [ignored: ${ENV.skip}]`, ignore: true, fn: () => {} });
    return;
  }
  Deno.test(name, async (t) => {
    await t.step(name, () => fn(kernel));
  });
}

/** virtio-iommu's PCI device id (0x1040 + virtio device type 23). */
const VIRTIO_IOMMU_PCI_ID = 0x1057;

/** The IOMMU model behind a device, from its sysfs `iommu` link: "vtd", "smmuv3", "virtio-iommu". */
export function iommuKind(kernel: Kernel, bdf: string): string {
  const name = describePciDevice(kernel, bdf).iommu ?? "unknown";
  if (name.startsWith("dmar")) return "vtd";
  if (name.includes("smmu")) return "smmuv3";
  const id = kernel.readFile(`/sys/bus/pci/devices/${name}/device`);
  if (typeof id === "string" && parseInt(id, 16) === VIRTIO_IOMMU_PCI_ID) return "virtio-iommu";
  return name;
}
