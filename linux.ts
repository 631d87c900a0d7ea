/**
 * The real-kernel backend: {@link LinuxKernel} issues VFIO and iommufd ioctls, mmap, eventfd and
 * poll through libc with Deno FFI. Kept out of the main entry so that only programs that drive
 * real hardware need `--allow-ffi` (and import this module, lazily if they also run on the
 * simulator).
 *
 * @example
 * ```ts
 * import { openPciDevice } from "@deno-vfio/deno-vfio";
 * import { LinuxKernel } from "@deno-vfio/deno-vfio/linux";
 *
 * // deno run --allow-ffi … : 0000:03:00.0 bound to vfio-pci, /dev/vfio readable
 * using dev = openPciDevice("0000:03:00.0", { kernel: LinuxKernel.open(), iommu: "auto" });
 * console.log(dev.info.backend); // "iommufd" or "type1"
 * ```
 *
 * @module
 */

export { LinuxKernel } from "./ffi/linux.ts";
export type { AnonymousMapOptions, Kernel, MappedMemory, Mmio, PollFd } from "./ffi/kernel.ts";
export type { IoctlArch } from "./ffi/ioctl.ts";
