/**
 * The Linux version the simulated kernel answers as. The baseline is 6.12 (Debian trixie's
 * 6.12.107); uAPI merged later (iommufd vIOMMU objects in 6.13, SMMUv3 nesting, PASID attach
 * through VFIO in 6.15, …) exists only when a machine asks for a later version explicitly.
 *
 * @example
 * ```ts
 * const v = parseKernelVersion("6.15");
 * kernelAtLeast(v, "6.13"); // true
 * ```
 *
 * @module
 */

/** A kernel version as major, minor and patch numbers. */
export interface KernelVersion {
  /** Major number (6). */
  readonly major: number;
  /** Minor number (12). */
  readonly minor: number;
  /** Stable patch level (107); 0 when not given. */
  readonly patch: number;
}

/** The version every machine answers as unless told otherwise. */
export const DEFAULT_KERNEL_VERSION = "6.12.107";

const VERSION_RE = /^(\d+)\.(\d+)(?:\.(\d+))?$/;

/** Parse "6.12" or "6.12.107"; throws with the expected form otherwise. */
export function parseKernelVersion(text: string): KernelVersion {
  const m = VERSION_RE.exec(text);
  if (m === null) {
    throw new Error(`kernel version "${text}" is not of the form 6.12 or 6.12.107`);
  }
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3] ?? 0) };
}

/** Whether `v` is `min` or later (`min` as text, e.g. "6.15" or "6.12.32"). */
export function kernelAtLeast(v: KernelVersion, min: string): boolean {
  const m = parseKernelVersion(min);
  if (v.major !== m.major) return v.major > m.major;
  if (v.minor !== m.minor) return v.minor > m.minor;
  return v.patch >= m.patch;
}
