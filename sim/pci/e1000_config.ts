/**
 * PCI config spaces of the simulated Intel NICs, laid out as QEMU 10 lays out its e1000e and igb
 * on a q35 root bus (checked byte for byte against tests/sim/goldens/qemu_nic_config.json):
 *
 * | | e1000e (82574L) | igb (82576) |
 * |---|---|---|
 * | ids, revision | 8086:10d3 rev 0, subsystem 8086:0000 | 8086:10c9 rev 1, subsystem 1af4:1100 |
 * | BAR 0 | 128 KiB memory (registers) | same |
 * | BAR 1 | 128 KiB memory (flash, nothing behind it) | same |
 * | BAR 2 | 32 bytes I/O (IOADDR/IODATA) | same |
 * | BAR 3 | 16 KiB memory, 32-bit: MSI-X table 0, PBA 0x2000 | 16 KiB memory, 64-bit |
 * | capabilities | PM 0xC8 → MSI 0xD0 (64-bit, 1 vector) → PCIe v1 0xE0 → MSI-X 0xA0 (5) | PM 0x40 → MSI 0x50 (64-bit, masking) → MSI-X 0x70 (10) → PCIe v2 0xA0 (FLR) |
 *
 * Both are root-complex integrated endpoints (QEMU's PCIe capability on a root bus), with PM
 * 1.1 and D3hot Device Specific Initialization. The extended capabilities QEMU adds (AER, DSN,
 * ARI, SR-IOV) are not modelled.
 *
 * @module
 */

import { PciConfigSpace } from "./config.ts";
import {
  E1000_BAR,
  E1000_FLASH_SIZE,
  E1000_IO_SIZE,
  E1000_MMIO_SIZE,
  E1000_MSIX_BAR_SIZE,
  E1000_MSIX_PBA_OFFSET,
} from "./e1000_regs.ts";
import {
  PCI_EXP_DEVCAP,
  PCI_EXP_DEVCAP2,
  PCI_EXP_LNKCAP,
  PCI_EXP_LNKSTA,
  PCI_PM_PMC,
} from "./pci_regs.ts";

/** Intel's PCI vendor id. */
export const INTEL_VENDOR_ID = 0x8086;
/** PCI class code of an Ethernet controller. */
const CLASS_ETHERNET = 0x020000;
/** PM capability: version 1.1 with Device Specific Initialization (QEMU's PMC 0x0022). */
const PMC_VER_1_1_DSI = 0x0022;
/** PCIe Device Capabilities: 256-byte max payload, role-based error reporting (0x8020). */
const DEVCAP_QEMU = 0x0000_8020;
/** Device Capabilities with Function Level Reset (igb). */
const DEVCAP_FLR = 1 << 28;
/** Link capabilities: 2.5 GT/s, x1, L0s exit latency field as QEMU. */
const LNKCAP_QEMU = 0x0000_0411;
/** Link status: 2.5 GT/s, x1. */
const LNKSTA_QEMU = 0x0011;
/** Device Capabilities 2 of QEMU's version-2 capability. */
const DEVCAP2_QEMU = 0x0030_0000;

/** A part's identity and capability layout. */
interface NicLayout {
  readonly deviceId: number;
  readonly revision: number;
  readonly subsystemVendorId: number;
  readonly subsystemId: number;
  readonly msixBar64: boolean;
  readonly msixVectors: number;
  readonly pm: number;
  readonly msi: { readonly at: number; readonly perVectorMask: boolean };
  readonly msix: number;
  readonly pcie: { readonly at: number; readonly version: 1 | 2; readonly flr: boolean };
  /** Order the capabilities are linked in. */
  readonly order: readonly ("pm" | "msi" | "msix" | "pcie")[];
}

/** QEMU's e1000e. */
const E1000E_LAYOUT: NicLayout = {
  deviceId: 0x10d3,
  revision: 0,
  subsystemVendorId: INTEL_VENDOR_ID,
  subsystemId: 0,
  msixBar64: false,
  msixVectors: 5,
  pm: 0xc8,
  msi: { at: 0xd0, perVectorMask: false },
  msix: 0xa0,
  pcie: { at: 0xe0, version: 1, flr: false },
  order: ["pm", "msi", "pcie", "msix"],
};

/** QEMU's igb. */
const IGB_LAYOUT: NicLayout = {
  deviceId: 0x10c9,
  revision: 1,
  subsystemVendorId: 0x1af4,
  subsystemId: 0x1100,
  msixBar64: true,
  msixVectors: 10,
  pm: 0x40,
  msi: { at: 0x50, perVectorMask: true },
  msix: 0x70,
  pcie: { at: 0xa0, version: 2, flr: true },
  order: ["pm", "msi", "msix", "pcie"],
};

function build(l: NicLayout): PciConfigSpace {
  const c = new PciConfigSpace({
    vendorId: INTEL_VENDOR_ID,
    deviceId: l.deviceId,
    revision: l.revision,
    classCode: CLASS_ETHERNET,
    subsystemVendorId: l.subsystemVendorId,
    subsystemId: l.subsystemId,
    interruptPin: 1,
    express: true,
  });
  c.addBar({ index: E1000_BAR.mmio, size: E1000_MMIO_SIZE, kind: "mem32", prefetchable: false });
  c.addBar({ index: E1000_BAR.flash, size: E1000_FLASH_SIZE, kind: "mem32", prefetchable: false });
  c.addBar({ index: E1000_BAR.io, size: E1000_IO_SIZE, kind: "io", prefetchable: false });
  c.addBar({
    index: E1000_BAR.msix,
    size: E1000_MSIX_BAR_SIZE,
    kind: l.msixBar64 ? "mem64" : "mem32",
    prefetchable: false,
  });
  for (const cap of l.order) {
    if (cap === "pm") {
      const at = c.addPowerManagement({ offset: l.pm });
      c.setPowerOn(at + PCI_PM_PMC, 2, PMC_VER_1_1_DSI);
    } else if (cap === "msi") {
      c.addMsi({
        vectors: 1,
        address64: true,
        perVectorMask: l.msi.perVectorMask,
        offset: l.msi.at,
      });
    } else if (cap === "msix") {
      c.addMsix({
        tableSize: l.msixVectors,
        tableBar: E1000_BAR.msix,
        tableOffset: 0,
        pbaBar: E1000_BAR.msix,
        pbaOffset: E1000_MSIX_PBA_OFFSET,
        offset: l.msix,
      });
    } else {
      const at = c.addPciExpress({
        type: "rc-integrated",
        version: l.pcie.version,
        flr: l.pcie.flr,
        offset: l.pcie.at,
      });
      c.setPowerOn(at + PCI_EXP_DEVCAP, 4, DEVCAP_QEMU | (l.pcie.flr ? DEVCAP_FLR : 0));
      c.setPowerOn(at + PCI_EXP_LNKCAP, 4, LNKCAP_QEMU);
      c.setPowerOn(at + PCI_EXP_LNKSTA, 2, LNKSTA_QEMU);
      if (l.pcie.version === 2) c.setPowerOn(at + PCI_EXP_DEVCAP2, 4, DEVCAP2_QEMU);
    }
  }
  return c;
}

/** The config space of a simulated 82574L (QEMU's e1000e). */
export function e1000eConfigSpace(): PciConfigSpace {
  return build(E1000E_LAYOUT);
}

/** The config space of a simulated 82576 (QEMU's igb). */
export function igbConfigSpace(): PciConfigSpace {
  return build(IGB_LAYOUT);
}

/** MSI-X vectors of each part. */
export const MSIX_VECTORS = { e1000e: E1000E_LAYOUT.msixVectors, igb: IGB_LAYOUT.msixVectors };
