/**
 * {@link DmaBackend} over iommufd: one `/dev/iommu` context with one IOAS; each device is
 * opened through its VFIO cdev, bound to the context and attached to the IOAS (the kernel picks
 * or creates the HW page table). IOVA ranges and alignment come from IOMMU_IOAS_IOVA_RANGES,
 * re-read lazily after every attach or detach.
 *
 * @example
 * ```ts
 * const backend = IommufdBackend.open(kernel);
 * const fd = backend.openDevice({ bdf: "0000:00:03.0", group: 5, cdev: "/dev/vfio/devices/vfio0" });
 * backend.iovaRanges(); // e.g. [0, 0xfedfffff], [0xfef00000, 2^48 - 1]
 * ```
 *
 * @module
 */

import type { Kernel } from "../ffi/kernel.ts";
import { attachIommufdPt, bindIommufd, detachIommufdPt } from "./cdev.ts";
import type { DeviceTarget, DmaBackend, DmaProtection, Iova, IovaRange } from "./dma_backend.ts";
import { VfioError } from "./errors.ts";
import { hex } from "./iova_allocator.ts";
import { type IoasIovaRanges, Iommufd } from "./iommufd.ts";
import { closeChecked, closeQuietly, openChecked, runAll } from "./syscall.ts";

/** One device opened through its cdev. */
export interface IommufdDevice {
  /** The PCI address. */
  readonly bdf: string;
  /** The cdev fd. */
  readonly fd: number;
  /** The iommufd device object id (from BIND). */
  readonly devId: number;
  /** The HW page table the device is attached to (written back by ATTACH). */
  readonly hwptId: number;
}

/** An iommufd IOAS backend. */
export class IommufdBackend implements DmaBackend {
  /** Always "iommufd". */
  readonly kind = "iommufd" as const;
  /** The iommufd client (for HWPT, HW info, options). */
  readonly iommufd: Iommufd;
  /** The IOAS every device is attached to. */
  readonly ioasId: number;
  readonly #kernel: Kernel;
  readonly #devices: Map<number, IommufdDevice> = new Map();
  readonly #mappings: Map<bigint, bigint> = new Map();
  #ranges: IoasIovaRanges | undefined;
  #closed = false;

  /** Open `/dev/iommu` and allocate the IOAS (closing the fd again if that fails). */
  static open(kernel: Kernel): IommufdBackend {
    const iommufd = Iommufd.open(kernel);
    try {
      return new IommufdBackend(kernel, iommufd, iommufd.ioasAlloc());
    } catch (e) {
      closeQuietly(kernel, iommufd.fd);
      throw e;
    }
  }

  private constructor(kernel: Kernel, iommufd: Iommufd, ioasId: number) {
    this.#kernel = kernel;
    this.iommufd = iommufd;
    this.ioasId = ioasId;
  }

  /** The devices opened into this IOAS. */
  devices(): IommufdDevice[] {
    return [...this.#devices.values()];
  }

  /** IOMMU_IOAS_IOVA_RANGES (cached until a device attaches or detaches). */
  iovaRanges(): IovaRange[] {
    return this.#query().ranges;
  }

  /** `out_iova_alignment` of IOMMU_IOAS_IOVA_RANGES. */
  minPageSize(): bigint {
    return this.#query().alignment;
  }

  /** iommufd has no mapping count limit. */
  mappingsAvailable(): number | undefined {
    return undefined;
  }

  /** IOMMU_IOAS_MAP at a fixed IOVA. */
  map(vaddr: bigint, iova: Iova, size: bigint, prot: DmaProtection): void {
    this.#assertOpen("map");
    this.iommufd.ioasMap(this.ioasId, vaddr, size, prot, iova);
    this.#mappings.set(iova, size);
  }

  /** IOMMU_IOAS_UNMAP of exactly one mapping; checks the length the kernel reports. */
  unmap(iova: Iova, size: bigint): void {
    this.#assertOpen("unmap");
    if (this.#mappings.get(iova) !== size) {
      throw new VfioError({
        operation: "unmap",
        message: `no mapping of ${hex(size)} bytes at IOVA ${hex(iova)}`,
      });
    }
    const unmapped = this.iommufd.ioasUnmap(this.ioasId, iova, size);
    this.#mappings.delete(iova);
    if (unmapped !== size) {
      throw new VfioError({
        operation: "IOMMU_IOAS_UNMAP",
        device: "/dev/iommu",
        message: `unmapped ${hex(unmapped)} bytes at IOVA ${hex(iova)}, expected ${hex(size)}`,
      });
    }
  }

  /**
   * Open `target.cdev`, VFIO_DEVICE_BIND_IOMMUFD, VFIO_DEVICE_ATTACH_IOMMUFD_PT to the IOAS.
   * Closing the cdev undoes the bind, so a failure closes it and nothing is left behind.
   */
  openDevice(target: DeviceTarget): number {
    this.#assertOpen("openDevice");
    if (target.cdev === undefined) {
      throw new VfioError({
        operation: "openDevice",
        device: target.bdf,
        message: "the device has no VFIO cdev (/dev/vfio/devices/vfioN)",
        hint:
          "bind it to vfio-pci on a kernel with CONFIG_VFIO_DEVICE_CDEV, or use the type1 backend",
      });
    }
    const fd = openChecked(this.#kernel, target.cdev, {
      ENOENT: `${target.cdev} does not exist: is ${target.bdf} bound to vfio-pci?`,
      EBUSY: `${target.bdf} is already open`,
    }, target.bdf);
    try {
      const devId = bindIommufd(this.#kernel, fd, this.iommufd.fd, target.bdf);
      const hwptId = attachIommufdPt(this.#kernel, fd, this.ioasId, target.bdf);
      this.#devices.set(fd, { bdf: target.bdf, fd, devId, hwptId });
      this.#ranges = undefined;
      return fd;
    } catch (e) {
      closeQuietly(this.#kernel, fd);
      throw e;
    }
  }

  /** VFIO_DEVICE_DETACH_IOMMUFD_PT, then close the cdev (which unbinds it). */
  closeDevice(fd: number): void {
    const device = this.#devices.get(fd);
    if (device === undefined) {
      throw new VfioError({
        operation: "closeDevice",
        message: `fd ${fd} is not a device of this backend`,
      });
    }
    this.#devices.delete(fd);
    this.#ranges = undefined;
    runAll([
      () => detachIommufdPt(this.#kernel, fd, device.bdf),
      () => closeChecked(this.#kernel, fd, device.bdf),
    ]);
  }

  /** Unmap everything, close every device, destroy the IOAS, close `/dev/iommu`. */
  close(): void {
    if (this.#closed) return;
    const steps: (() => void)[] = [];
    for (const [iova, size] of [...this.#mappings].reverse()) {
      steps.push(() => this.unmap(iova as Iova, size));
    }
    for (const fd of [...this.#devices.keys()].reverse()) steps.push(() => this.closeDevice(fd));
    steps.push(
      () => {
        this.#closed = true;
        this.iommufd.destroy(this.ioasId);
      },
      () => this.iommufd.close(),
    );
    runAll(steps);
  }

  #query(): IoasIovaRanges {
    this.#ranges ??= this.iommufd.ioasIovaRanges(this.ioasId);
    return this.#ranges;
  }

  #assertOpen(operation: string): void {
    if (this.#closed) {
      throw new VfioError({ operation, message: "the iommufd backend is closed" });
    }
  }
}
