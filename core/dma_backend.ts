/**
 * Types shared by the IOMMU backends (VFIO type1 container, sPAPR TCE container, iommufd IOAS)
 * and the {@link DmaSpace} built on them.
 *
 * @module
 */

/**
 * An I/O virtual address: what a device puts on the bus. Branded so the type checker catches an
 * IOVA passed where a process address is expected, or the reverse.
 */
export type Iova = bigint & { readonly __brand: "Iova" };

/** Brand a bigint as an {@link Iova}. */
export function iova(value: bigint): Iova {
  return value as Iova;
}

/** An inclusive IOVA range, as the kernel reports them. */
export interface IovaRange {
  /** First usable IOVA. */
  readonly start: bigint;
  /** Last usable IOVA (inclusive). */
  readonly end: bigint;
}

/** Permissions of a DMA mapping, from the device's point of view. */
export interface DmaProtection {
  /** The device may read the memory (VFIO_DMA_MAP_FLAG_READ / IOMMU_IOAS_MAP_READABLE). */
  readonly read: boolean;
  /** The device may write the memory (VFIO_DMA_MAP_FLAG_WRITE / IOMMU_IOAS_MAP_WRITEABLE). */
  readonly write: boolean;
}

/** Which kernel interface a {@link DmaBackend} drives. */
export type DmaBackendKind = "type1" | "iommufd" | "spapr";

/** Where a device can be opened from, found through sysfs. */
export interface DeviceTarget {
  /** PCI address, "0000:00:02.0". */
  readonly bdf: string;
  /** IOMMU group number (/dev/vfio/N). */
  readonly group: number;
  /** The VFIO cdev node (/dev/vfio/devices/vfioN) when the kernel has one. */
  readonly cdev?: string;
}

/**
 * One IOMMU address space seen from user space: maps process memory at IOVAs and opens devices
 * into itself. Every method throws `VfioError` on failure and leaves nothing half-done.
 */
export interface DmaBackend {
  /** The kernel interface in use. */
  readonly kind: DmaBackendKind;
  /** Usable IOVA ranges as the kernel reports them now (they shrink as devices attach). */
  iovaRanges(): IovaRange[];
  /** Every IOVA and size must be a multiple of this (the minimum IOMMU page size). */
  minPageSize(): bigint;
  /** Mappings the kernel still allows (type1 DMA_AVAIL), or undefined when unlimited. */
  mappingsAvailable(): number | undefined;
  /** Map `size` bytes of process memory at `vaddr` to `iova`. */
  map(vaddr: bigint, iova: Iova, size: bigint, prot: DmaProtection): void;
  /** Unmap exactly one earlier mapping. */
  unmap(iova: Iova, size: bigint): void;
  /** Open a device into this address space; returns the VFIO device fd. */
  openDevice(target: DeviceTarget): number;
  /** Close a device fd returned by {@link openDevice} and detach it. */
  closeDevice(fd: number): void;
  /** Unmap everything, detach every device, close every fd the backend opened. */
  close(): void;
}
