/**
 * The PCI config space of a modern virtio device (virtio 1.2 §4.1.2, §4.1.4): virtio vendor id,
 * device id 0x1040 + type, revision 1, and one vendor-specific capability per structure (common,
 * notify with its multiplier, ISR, device), all in one memory BAR, plus a PCI Express capability,
 * and optionally MSI-X with its table in a second BAR.
 *
 * @module
 */

import { PciConfigSpace } from "./config.ts";

/** PCI vendor id of virtio (§4.1.2). */
const VIRTIO_VENDOR = 0x1af4;
/** Modern virtio devices have revision id 1 or higher (§4.1.2.1). */
const VIRTIO_REVISION = 1;
/** cfg_type values (§4.1.4). */
const CFG_COMMON = 1;
const CFG_NOTIFY = 2;
const CFG_ISR = 3;
const CFG_DEVICE = 4;
/** Length of `struct virtio_pci_cap`, and of the notify capability with its multiplier. */
const CAP_LEN = 16;
const NOTIFY_CAP_LEN = 20;
/** Size given to each structure (one page, as QEMU does). */
const REGION_SIZE = 0x1000;

/** What {@link buildVirtioConfigSpace} needs. */
export interface VirtioConfigOptions {
  /** PCI device id (0x1040 + virtio device type). */
  deviceId: number;
  /** 24-bit class code. */
  classCode: number;
  /** The BAR holding every structure. */
  bar: number;
  /** Its size. */
  barSize: number;
  /** Offsets of the structures in the BAR. */
  regions: { common: number; isr: number; device: number; notify: number };
  /** notify_off_multiplier. */
  notifyMultiplier: number;
  /** An MSI-X capability with its table and PBA in their own memory BAR (QEMU: BAR 1). */
  msix?: { bar: number; barSize: number; vectors: number; tableOffset: number; pbaOffset: number };
}

function virtioCap(
  type: number,
  bar: number,
  offset: number,
  length: number,
  extra?: number,
): Uint8Array {
  const cap = new Uint8Array(extra === undefined ? CAP_LEN : NOTIFY_CAP_LEN);
  const v = new DataView(cap.buffer);
  // bytes 0-1 (cap_vndr, cap_next) are filled by the config space; cap_len at 2
  cap[2] = cap.length;
  cap[3] = type;
  cap[4] = bar;
  cap[5] = 0; // id
  v.setUint32(8, offset, true);
  v.setUint32(12, length, true);
  if (extra !== undefined) v.setUint32(16, extra, true);
  return cap;
}

/** Build the config space. */
export function buildVirtioConfigSpace(o: VirtioConfigOptions): PciConfigSpace {
  const c = new PciConfigSpace({
    vendorId: VIRTIO_VENDOR,
    deviceId: o.deviceId,
    revision: VIRTIO_REVISION,
    classCode: o.classCode,
    subsystemVendorId: VIRTIO_VENDOR,
    subsystemId: o.deviceId - 0x1040,
    interruptPin: 1,
    express: true,
  });
  c.addBar({ index: o.bar, size: o.barSize, kind: "mem64", prefetchable: true });
  c.addPciExpress({ flr: true });
  c.addVendorCapability(virtioCap(CFG_COMMON, o.bar, o.regions.common, REGION_SIZE));
  c.addVendorCapability(virtioCap(CFG_ISR, o.bar, o.regions.isr, REGION_SIZE));
  c.addVendorCapability(virtioCap(CFG_DEVICE, o.bar, o.regions.device, REGION_SIZE));
  c.addVendorCapability(
    virtioCap(CFG_NOTIFY, o.bar, o.regions.notify, REGION_SIZE, o.notifyMultiplier),
  );
  if (o.msix) {
    c.addBar({ index: o.msix.bar, size: o.msix.barSize, kind: "mem32", prefetchable: false });
    c.addMsix({
      tableSize: o.msix.vectors,
      tableBar: o.msix.bar,
      tableOffset: o.msix.tableOffset,
      pbaBar: o.msix.bar,
      pbaOffset: o.msix.pbaOffset,
    });
  }
  return c;
}
