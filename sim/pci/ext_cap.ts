/**
 * The walk of a function's PCIe extended-capability list (PCIe base spec §7.6: headers from
 * offset 0x100, capability id in bits 15:0, next pointer in bits 31:20), as the kernel's
 * `pci_find_ext_capability` does it for the IOMMU drivers (PASID width, ATS, PRI), and the PASID
 * capability's Max PASID Width.
 *
 * @module
 */

import type { PciConfig } from "./device.ts";
import {
  PCI_CFG_SPACE_EXT_START,
  PCI_EXT_CAP_ID_PASID,
  PCI_EXT_CAP_NEXT_SHIFT,
  PCI_PASID_CAP,
  PCI_PASID_CAP_WIDTH,
  PCI_PASID_CAP_WIDTH_SHIFT,
} from "./pci_regs.ts";

/** Extended capability header: capability id (bits 15:0). */
const EXT_CAP_ID_MASK = 0xffff;
/** End of PCIe configuration space. */
const CONFIG_SPACE_END = 0x1000;
/** Bound on the walk (a looping list ends it). */
const EXT_CAP_MAX_HOPS = 256;

/** Offset of a function's PCIe extended capability `id`, 0 without one (or without a config). */
export function findExtCapability(config: PciConfig | undefined, id: number): number {
  if (!config) return 0;
  let at = PCI_CFG_SPACE_EXT_START;
  for (
    let hops = 0;
    at >= PCI_CFG_SPACE_EXT_START && at < CONFIG_SPACE_END && hops < EXT_CAP_MAX_HOPS;
    hops++
  ) {
    const header = config.read(at, 4) >>> 0;
    if (header === 0 || header === 0xffff_ffff) return 0;
    if ((header & EXT_CAP_ID_MASK) === id) return at;
    at = header >>> PCI_EXT_CAP_NEXT_SHIFT;
  }
  return 0;
}

/** Max PASID Width of a function's PCIe PASID capability, 0 without one. */
export function devicePasidWidth(config: PciConfig): number {
  const at = findExtCapability(config, PCI_EXT_CAP_ID_PASID);
  if (at === 0) return 0;
  const cap = config.read(at + PCI_PASID_CAP, 2);
  return (cap & PCI_PASID_CAP_WIDTH) >> PCI_PASID_CAP_WIDTH_SHIFT;
}
