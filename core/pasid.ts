/**
 * **Proposal, not Linux ABI.** A client of the proposed system-wide PASID allocator
 * (`/dev/ioasid`, ffi/uapi/proposals.ts; ../shared/seeds/000 and 003): PASIDs that belong to this
 * process's open file rather than to a process address space, bound to a device's PASID with
 * Linux 6.15's VFIO_DEVICE_ATTACH_PASID, and a stop notice when the kernel tears one down. No
 * released Linux has /dev/ioasid: only the simulator offers it, on machines created with
 * `pasidAllocatorProposal` (open fails with ENOENT elsewhere, with a hint saying so).
 *
 * Lifetime, as the proposal defines it: a PASID lives until it is freed ({@link Pasid} is
 * `Disposable`) or until the {@link PasidSpace} that allocated it is closed; then the kernel makes
 * every device entry of it not present with faults unreported, tells each binding to stop (its
 * `onStop` runs at the next {@link PasidSpace.pollStops}, or during {@link PasidSpace.close}; the
 * kernel never waits for it), drains the DMA in flight and only then quarantines the number before
 * handing it out again. The attach takes only a PASID this process owns (EACCES otherwise).
 *
 * @example
 * ```ts
 * using space = PasidSpace.open(kernel);
 * using pasid = space.allocate({ device: dev }); // fits the device's PASID width
 * const binding = space.bind(dev, pasid, hwptId, (p) => console.log(`stop using PASID ${p}`));
 * // … DMA tagged with pasid.value …
 * binding.unbind();
 * ```
 *
 * @module
 */

import { EFD_CLOEXEC, EFD_NONBLOCK, type Kernel } from "../ffi/kernel.ts";
import { ERRNO } from "../ffi/errno.ts";
import { decode, encode } from "../ffi/uapi/layout.ts";
import {
  IOASID_PROPOSAL_ALLOC,
  ioasid_proposal_alloc,
  IOASID_PROPOSAL_FREE,
  ioasid_proposal_free,
  IOASID_PROPOSAL_PATH,
  IOASID_PROPOSAL_WATCH,
  ioasid_proposal_watch,
} from "../ffi/uapi/proposals.ts";
import { attachIommufdPasid, detachIommufdPasid } from "./cdev.ts";
import { VfioError } from "./errors.ts";
import { IommufdBackend, type IommufdDevice } from "./iommufd_backend.ts";
import type { PciDevice } from "./pci_device.ts";
import { closeQuietly, ioctlChecked, openChecked, requestOf, throwErrno } from "./syscall.ts";

/** PCIe's PASID width: PASIDs are below 2^20. */
export const PASID_WIDTH_MAX = 20;
/** Bytes of an eventfd counter. */
const EVENTFD_BYTES = 8;

/** Told that the kernel is tearing a PASID down: stop using it. Not awaited; errors ignored. */
export type PasidStopHandler = (pasid: number) => unknown;

/** Options of {@link PasidSpace.allocate}. */
export interface PasidAllocateOptions {
  /** A device the PASID is for: the result fits its PASID width (IOMMU's and PCIe's). */
  readonly device?: PciDevice;
  /** Lowest acceptable PASID (default 1; PASID 0 is the device's own requests). */
  readonly min?: number;
  /** Highest acceptable PASID (default 2^20 − 1). */
  readonly max?: number;
}

/** An allocated PASID; disposing of it frees it. */
export class Pasid implements Disposable {
  #freed = false;

  /** Use {@link PasidSpace.allocate}. */
  constructor(private readonly space: PasidSpace, readonly value: number) {}

  /** Whether it was freed (by this object or by closing its space). */
  get freed(): boolean {
    return this.#freed || this.space.closed;
  }

  /** Free it: the kernel tears it down, then quarantines it. A second call does nothing. */
  free(): void {
    if (this.freed) return;
    this.#freed = true;
    this.space.free(this.value);
  }

  /** Same as {@link free}, for `using`. */
  [Symbol.dispose](): void {
    this.free();
  }
}

/** One device PASID bound to a page table, with its stop channel. */
export class PasidBinding implements Disposable {
  #stopped = false;
  #unbound = false;

  /** Use {@link PasidSpace.bind}. */
  constructor(
    private readonly kernel: Kernel,
    /** The device. */
    readonly device: PciDevice,
    private readonly cdev: IommufdDevice,
    /** The PASID. */
    readonly pasid: number,
    /** The HWPT it is attached to. */
    readonly hwptId: number,
    /** The eventfd the kernel signals at teardown (-1 once closed). */
    public eventFd: number,
    private readonly onStop: PasidStopHandler | undefined,
  ) {}

  /** Whether the kernel told this binding to stop (its PASID was torn down). */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** @internal read the stop channel: true when a notice arrived now (the handler was called). */
  poll(): boolean {
    if (this.#stopped || this.eventFd < 0) return false;
    const buf = new Uint8Array(EVENTFD_BYTES);
    if (this.kernel.read(this.eventFd, buf) !== EVENTFD_BYTES) return false;
    this.#stopped = true;
    this.closeChannel();
    try {
      const r = this.onStop?.(this.pasid);
      if (r instanceof Promise) r.catch(() => {});
    } catch {
      // The handler's failure is the driver's own; the notice was delivered.
    }
    return true;
  }

  /** @internal close the stop channel. */
  closeChannel(): void {
    closeQuietly(this.kernel, this.eventFd);
    this.eventFd = -1;
  }

  /** Detach the PASID from the device (nothing after a teardown) and close the stop channel. */
  unbind(): void {
    if (this.#unbound) return;
    this.#unbound = true;
    this.closeChannel();
    detachIommufdPasid(this.kernel, this.cdev.fd, this.pasid, this.device.bdf);
  }

  /** Same as {@link unbind}, for `using`. */
  [Symbol.dispose](): void {
    this.unbind();
  }
}

/** An open /dev/ioasid: the PASIDs it allocates are this process's until freed or closed. */
export class PasidSpace implements Disposable {
  readonly #bindings = new Set<PasidBinding>();
  #closed = false;

  private constructor(readonly kernel: Kernel, readonly fd: number) {}

  /** Open the allocator; ENOENT (no /dev/ioasid: a proposal) is explained in the error's hint. */
  static open(kernel: Kernel): PasidSpace {
    const fd = openChecked(kernel, IOASID_PROPOSAL_PATH, {
      ENOENT: "/dev/ioasid is a proposal no Linux release has; the simulator offers it on " +
        "machines created with createMachine({ pasidAllocatorProposal: true })",
    });
    return new PasidSpace(kernel, fd);
  }

  /** Whether {@link close} ran. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * PASID bits `device` can use: the smaller of its IOMMU's (IOMMU_GET_HW_INFO's
   * `out_max_pasid_log2`) and its PCIe PASID capability's Max PASID Width; 0 when either lacks
   * PASIDs. The device must be open through iommufd.
   */
  widthOf(device: PciDevice): number {
    const { backend, cdev } = this.#cdevOf(device, "widthOf");
    const iommuBits = backend.iommufd.getHwInfo(cdev.devId).maxPasidLog2;
    return Math.min(iommuBits, device.config.pasidWidth(), PASID_WIDTH_MAX);
  }

  /**
   * Allocate the lowest free PASID in `[min, max]` that the device (if given) can carry. Throws
   * VfioError: ENOSPC when none is free (some may be in quarantine), ENODEV when no allocator is
   * left (every vIOMMU offering one was removed), EINVAL for an empty range.
   */
  allocate(o: PasidAllocateOptions = {}): Pasid {
    this.#assertOpen("allocate");
    let max = o.max ?? 2 ** PASID_WIDTH_MAX - 1;
    if (o.device !== undefined) {
      const bits = this.widthOf(o.device);
      if (bits === 0) {
        throw new VfioError({
          operation: "PasidSpace.allocate",
          device: o.device.bdf,
          message:
            "the device cannot carry PASIDs (no PCIe PASID capability, or its IOMMU has none)",
          hint:
            "use a PASID-capable device behind an IOMMU in PASID mode (e.g. VT-d scalable mode)",
        });
      }
      max = Math.min(max, 2 ** bits - 1);
    }
    const min = o.min ?? 1;
    const layout = ioasid_proposal_alloc;
    const arg = encode(layout, { argsz: layout.size, min, max });
    ioctlChecked(this.kernel, this.fd, IOASID_PROPOSAL_ALLOC, arg, IOASID_PROPOSAL_PATH, {
      ENOSPC: `no free PASID in [${min}, ${max}]: the others are allocated or in quarantine; ` +
        "free some, or wait for the quarantine to end",
      ENODEV: "no PASID allocator is left: every vIOMMU that offered one was removed",
      EINVAL: `the range [${min}, ${max}] is empty (a vIOMMU allocator also needs min = 1)`,
    });
    return new Pasid(this, decode(layout, arg).out_pasid);
  }

  /** Free a PASID of this space (prefer {@link Pasid.free}). ENOENT when it is not this space's. */
  free(pasid: Pasid | number): void {
    if (pasid instanceof Pasid) return pasid.free();
    this.#assertOpen("free");
    const layout = ioasid_proposal_free;
    ioctlChecked(
      this.kernel,
      this.fd,
      IOASID_PROPOSAL_FREE,
      encode(layout, { argsz: layout.size, pasid }),
      IOASID_PROPOSAL_PATH,
      { ENOENT: `PASID ${pasid} is not held by this space (already freed, or someone else's)` },
    );
  }

  /**
   * Attach `ptId` (a HWPT allocated with IOMMU_HWPT_ALLOC_PASID) on PASID `pasid` of `device`
   * (open through iommufd), and ask to be told when the kernel tears the PASID down: `onStop`
   * then runs from {@link pollStops} (or {@link close}); it must not block and is not awaited.
   * Throws VfioError (EACCES: the PASID is not this process's).
   */
  bind(
    device: PciDevice,
    pasid: Pasid | number,
    ptId: number,
    onStop?: PasidStopHandler,
  ): PasidBinding {
    this.#assertOpen("bind");
    const value = pasid instanceof Pasid ? pasid.value : pasid;
    const { cdev } = this.#cdevOf(device, "bind");
    const efd = this.kernel.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd < 0) throwErrno(efd, { operation: "eventfd", device: device.bdf });
    let hwpt: number;
    try {
      hwpt = attachIommufdPasid(this.kernel, cdev.fd, value, ptId, device.bdf);
    } catch (e) {
      closeQuietly(this.kernel, efd);
      throw e;
    }
    const layout = ioasid_proposal_watch;
    const rc = this.kernel.ioctl(
      this.fd,
      requestOf(this.kernel, IOASID_PROPOSAL_WATCH),
      encode(layout, { argsz: layout.size, pasid: value, eventfd: efd }),
    );
    const binding = new PasidBinding(this.kernel, device, cdev, value, hwpt, efd, onStop);
    if (rc < 0) {
      binding.unbind();
      throwErrno(rc, { operation: "IOASID_PROPOSAL_WATCH", device: device.bdf });
    }
    this.#bindings.add(binding);
    return binding;
  }

  /**
   * Deliver the stop notices the kernel has sent (non-blocking): each binding told to stop has its
   * handler called once. Returns how many were delivered.
   */
  pollStops(): number {
    let n = 0;
    for (const b of this.#bindings) {
      if (b.poll()) n++;
      if (b.eventFd < 0) this.#bindings.delete(b);
    }
    return n;
  }

  /**
   * Close the allocator: the kernel tears down every PASID this space still holds; the stop
   * notices that causes are delivered before the channels close. A second call does nothing.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeQuietly(this.kernel, this.fd);
    this.pollStops();
    for (const b of this.#bindings) b.closeChannel();
    this.#bindings.clear();
  }

  /** Same as {@link close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  #cdevOf(device: PciDevice, operation: string): { backend: IommufdBackend; cdev: IommufdDevice } {
    const backend = device.dma.backend;
    const cdev = backend instanceof IommufdBackend
      ? backend.devices().find((d) => d.bdf === device.bdf)
      : undefined;
    if (!(backend instanceof IommufdBackend) || cdev === undefined) {
      throw new VfioError({
        operation: `PasidSpace.${operation}`,
        device: device.bdf,
        message: `the device is open through ${backend.kind}, not iommufd`,
        hint: 'PASID attach is an iommufd feature: openPciDevice(bdf, { iommu: "iommufd" })',
      });
    }
    return { backend, cdev };
  }

  #assertOpen(operation: string): void {
    if (this.#closed) {
      throw new VfioError({
        operation: `PasidSpace.${operation}`,
        errno: ERRNO.EBADF,
        message: "the PASID space is closed",
      });
    }
  }
}
