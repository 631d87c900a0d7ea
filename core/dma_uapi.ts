/**
 * The uAPI names the DMA backends use (VFIO container/group/type1/sPAPR, cdev binding, iommufd),
 * in one place.
 *
 * @module
 */

export * from "../ffi/uapi/mod.ts";

/** One capability header in a chain. */
export interface CapEntry {
  id: number;
  version: number;
  offset: number;
  next: number;
}

/** Walk a VFIO capability chain from `first` (offsets from the start of `bytes`). */
export function parseCapChain(bytes: Uint8Array, first: number): CapEntry[] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: CapEntry[] = [];
  let at = first;
  while (at !== 0 && at + 8 <= bytes.length && out.length < 64) {
    const id = dv.getUint16(at, true),
      version = dv.getUint16(at + 2, true),
      next = dv.getUint32(at + 4, true);
    out.push({ id, version, offset: at, next });
    at = next;
  }
  return out;
}

/** Decode `vfio_iommu_type1_info_cap_iova_range` at `at`. */
export function decodeIovaRangeCap(
  bytes: Uint8Array,
  at: number,
): { start: bigint; end: bigint }[] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = dv.getUint32(at + 8, true);
  return Array.from(
    { length: n },
    (_, k) => ({
      start: dv.getBigUint64(at + 16 + 16 * k, true),
      end: dv.getBigUint64(at + 24 + 16 * k, true),
    }),
  );
}

/** Decode `vfio_iommu_type1_info_dma_avail` at `at`. */
export function decodeDmaAvailCap(bytes: Uint8Array, at: number): number {
  return new DataView(bytes.buffer, bytes.byteOffset).getUint32(at + 8, true);
}

/** Decode `vfio_iommu_type1_info_cap_migration` at `at`. */
export function decodeMigrationCap(
  bytes: Uint8Array,
  at: number,
): { flags: number; pgsize_bitmap: bigint; max_dirty_bitmap_size: bigint } {
  const dv = new DataView(bytes.buffer, bytes.byteOffset);
  return {
    flags: dv.getUint32(at + 8, true),
    pgsize_bitmap: dv.getBigUint64(at + 16, true),
    max_dirty_bitmap_size: dv.getBigUint64(at + 24, true),
  };
}
