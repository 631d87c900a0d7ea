/**
 * The set-up both PASID-attach tests share (VT-d in scalable mode and SMMUv3): a device opened
 * through iommufd, its RID moved to a PASID-compatible HWPT on demand, anonymous buffers, and
 * "spaces" (an IOAS with a buffer at a fixed IOVA and a HWPT on it) to attach on PASIDs.
 *
 * @module
 */

import assert from "node:assert/strict";
import { attachIommufdPt } from "../../core/cdev.ts";
import { IommufdBackend } from "../../core/iommufd_backend.ts";
import { openPciDevice, type PciDevice } from "../../core/pci_device.ts";
import type { Iommufd } from "../../core/iommufd.ts";
import type { Kernel, MappedMemory } from "../../ffi/kernel.ts";
import { IOMMU_HWPT_ALLOC_PASID } from "../../ffi/uapi/post_6_12.ts";

/** Where each space maps its buffer. */
export const PASID_SPACE_IOVA = 0x40_0000n;
/** Bytes of each buffer. */
export const PASID_SPACE_BYTES = 8192;

/** A device opened through iommufd, with helpers for PASID tests. */
export interface PasidSession {
  /** The opened device. */
  readonly dev: PciDevice;
  /** Its iommufd backend. */
  readonly backend: IommufdBackend;
  /** The bound device (devId, cdev fd). */
  readonly device: ReturnType<IommufdBackend["devices"]>[number];
  /** The iommufd client. */
  readonly fd: Iommufd;
  /**
   * Move the RID from the automatic HWPT to a PASID-compatible one on `ioas` (by default the
   * backend's, where the driver's rings live): Linux refuses PASID attach while the RID sits on a
   * HWPT without IOMMU_HWPT_ALLOC_PASID. Returns the HWPT id.
   */
  pasidReadyRid(ioas?: number): number;
  /** A new anonymous buffer of {@link PASID_SPACE_BYTES} (recorded in `buffers`). */
  mem(): MappedMemory;
  /** A new IOAS with `m` at {@link PASID_SPACE_IOVA} and a HWPT with `flags` on it. */
  space(m: MappedMemory, flags?: number): { ioas: number; hwpt: number };
  /**
   * Undo {@link pasidReadyRid} and {@link space} once no PASID is attached: the RID back on the
   * backend's IOAS (an automatic HWPT), then `ridHwpt` and every space destroyed, so the backend
   * can close its IOAS.
   */
  dropPasidSetup(ridHwpt: number, spaces: readonly { ioas: number; hwpt: number }[]): void;
  /** Every buffer `mem` made, for the test to unmap. */
  readonly buffers: MappedMemory[];
}

/** Open `bdf` through iommufd on `kernel` and return the PASID-test helpers. */
export function openPasidSession(kernel: Kernel, bdf: string): PasidSession {
  const dev = openPciDevice(bdf, { kernel, iommu: "iommufd" });
  const backend = dev.dma.backend;
  assert.ok(backend instanceof IommufdBackend);
  const [device] = backend.devices();
  const fd = backend.iommufd;
  const buffers: MappedMemory[] = [];
  return {
    dev,
    backend,
    device,
    fd,
    buffers,
    pasidReadyRid(ioas = backend.ioasId) {
      const hwpt = fd.hwptAlloc({ devId: device.devId, ptId: ioas, flags: IOMMU_HWPT_ALLOC_PASID });
      assert.equal(attachIommufdPt(kernel, device.fd, hwpt, bdf), hwpt);
      return hwpt;
    },
    mem() {
      const m = kernel.mmapAnonymous(PASID_SPACE_BYTES);
      if (typeof m === "number") throw new Error(`mmap: ${m}`);
      buffers.push(m);
      return m;
    },
    dropPasidSetup(ridHwpt, spaces) {
      attachIommufdPt(kernel, device.fd, backend.ioasId, bdf);
      fd.destroy(ridHwpt);
      for (const s of spaces) {
        fd.destroy(s.hwpt);
        fd.destroy(s.ioas);
      }
    },
    space(m, flags = IOMMU_HWPT_ALLOC_PASID) {
      const ioas = fd.ioasAlloc();
      fd.ioasMap(ioas, m.address, BigInt(m.length), { read: true, write: true }, PASID_SPACE_IOVA);
      return { ioas, hwpt: fd.hwptAlloc({ devId: device.devId, ptId: ioas, flags }) };
    },
  };
}
