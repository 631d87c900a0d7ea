/**
 * The real-kernel backend: `LinuxKernel` issues VFIO and iommufd ioctls through libc with Deno
 * FFI. Kept out of mod.ts so that only programs that drive real hardware need `--allow-ffi`.
 *
 * @module
 */

export { LinuxKernel } from "./ffi/linux.ts";
