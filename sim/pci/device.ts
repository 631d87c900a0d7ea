/**
 * The device-model contract: what a simulated PCI function (the project's edu, virtio-net and
 * PASID DMA engine, or a model of your own device) implements, and what the machine gives it.
 *
 * - A model owns its config space ({@link PciConfig}; build one with `PciConfigSpace` and its
 *   `addMsi`/`addMsix`/`addPciExpress`/… helpers) and declares its BARs ({@link BarDecl}).
 * - The kernel calls {@link PciDeviceModel.mmioRead} / {@link PciDeviceModel.mmioWrite} for every
 *   access the driver makes to a BAR (through the mmap'ed `Mmio` or pread/pwrite), and
 *   {@link PciDeviceModel.reset} for a function reset (VFIO_DEVICE_RESET, first open, last close)
 *   when {@link PciDeviceModel.resetWorks} says the function can be reset.
 * - The model reaches memory only through {@link DeviceHost.dma}, which translates every access
 *   through the machine's IOMMU for the function's requester id: a DMA to an address the driver
 *   did not map fails (`false`) and the IOMMU records its vendor-format fault, as on hardware.
 * - It raises interrupts only through {@link DeviceHost.irq} (after its own enable and mask
 *   checks: `sendMsi`, `IntxPin` and an MSI-X table do them), and the kernel routes them to the
 *   user's VFIO eventfds.
 * - Work that takes time is scheduled on {@link DeviceHost.clock} (virtual nanoseconds); it runs
 *   while the driver touches MMIO or waits, so a driver's ordinary polling loop makes progress.
 *
 * `createMachine({ devices: [{ model: new MyDevice() }] })` (or a factory, `model: (ctx) => …`)
 * plugs a model in beside the built-in ones; the built-in models go through exactly this contract.
 * sim/pci/mod.ts gathers what a model author needs (this contract, the config-space builder,
 * the interrupt helpers, MMIO dispatch and a base class).
 *
 * @module
 */

import type { ClockTarget, ScheduledEvent } from "../clock.ts";

/** A PCI config space: 256 bytes (conventional) or 4096 (PCIe), with the device's write rules. */
export interface PciConfig {
  /** 256 or 4096. */
  readonly size: number;
  /** Read 1, 2 or 4 bytes at `offset` (little-endian); out of range reads all-ones. */
  read(offset: number, size: 1 | 2 | 4): number;
  /**
   * Write 1, 2 or 4 bytes: read-only bits keep their value, RW1C bits clear where 1 is written,
   * as the device's register definitions say.
   */
  write(offset: number, size: 1 | 2 | 4, value: number): void;
}

/** One BAR of a device model. */
export interface BarDecl {
  /** BAR index 0–5. */
  readonly index: number;
  /** Size in bytes (a power of two). */
  readonly size: number;
  /** Memory (32- or 64-bit) or I/O space. */
  readonly kind: "mem32" | "mem64" | "io";
  /** Prefetchable memory BAR. */
  readonly prefetchable: boolean;
}

/** What {@link DmaPort.read16} and {@link DmaPort.read32} return for a refused or faulting access. */
export const DMA_FAULT: number = -1;

/**
 * How a device reaches memory: every access is translated by the IOMMU for this device's
 * requester id, one 4 KiB IOVA page at a time. A failed access (bus mastering off, or an IOMMU
 * fault, which the IOMMU model has recorded) stops at the faulting page: the pages before it
 * were transferred, nothing at or after it. No method throws for a refused or faulting access.
 *
 * Two families of methods:
 * - `read`/`write` take a bigint IOVA and a whole buffer (setup paths, any 64-bit address);
 * - the number-address methods are for a device model's per-packet path and allocate nothing
 *   once the port's translation cache holds the page: `readInto`/`writeFrom` copy `length` bytes
 *   between `iova` and a range of the model's own buffer; `read16`/`read32` return the
 *   little-endian value, or {@link DMA_FAULT} (-1) when the access failed (test `< 0`);
 *   `write16`/`write32` store a little-endian value and return false when the access failed.
 *   Their `iova` must be a non-negative safe integer (below 2^53): compose it from the two 32-bit
 *   halves a descriptor holds as `hi * 2 ** 32 + lo` while `hi < 2 ** 21`, and use the bigint
 *   methods above that (anything else is a RangeError: a model bug, not a DMA failure).
 */
export interface DmaPort {
  /** DMA read (device reads memory at `iova` into `dst`). */
  read(iova: bigint, dst: Uint8Array, pasid?: number): boolean;
  /** DMA write (device writes `src` to memory at `iova`). */
  write(iova: bigint, src: Uint8Array, pasid?: number): boolean;
  /** DMA read of `length` bytes at `iova` into `dst[dstOffset, dstOffset + length)`. */
  readInto(
    iova: number,
    dst: Uint8Array,
    dstOffset: number,
    length: number,
    pasid?: number,
  ): boolean;
  /** DMA write of `src[srcOffset, srcOffset + length)` to memory at `iova`. */
  writeFrom(
    iova: number,
    src: Uint8Array,
    srcOffset: number,
    length: number,
    pasid?: number,
  ): boolean;
  /** DMA read of a little-endian u16; {@link DMA_FAULT} when refused or faulting. */
  read16(iova: number, pasid?: number): number;
  /** DMA read of a little-endian u32; {@link DMA_FAULT} when refused or faulting. */
  read32(iova: number, pasid?: number): number;
  /** DMA write of a little-endian u16 (`value` modulo 2^16); false when refused or faulting. */
  write16(iova: number, value: number, pasid?: number): boolean;
  /** DMA write of a little-endian u32 (`value` modulo 2^32); false when refused or faulting. */
  write32(iova: number, value: number, pasid?: number): boolean;
}

/** Where a device's interrupts go. */
export interface InterruptSink {
  /** The device sends MSI message `vector` (after checking its own MSI enable and mask bits). */
  msi(vector: number): void;
  /** The device sends MSI-X table entry `vector` (after checking enable, function and entry mask). */
  msix(vector: number): void;
  /** The device's INTx line changed level. */
  intx(asserted: boolean): void;
}

/** The virtual clock as a device model sees it (the machine's `VirtualClock` is one). */
export interface DeviceClock {
  /** Virtual time in nanoseconds. */
  readonly nowNs: number;
  /** Run `fn` after `delayNs` virtual nanoseconds; the handle cancels it. */
  schedule(delayNs: number, fn: () => void): ScheduledEvent;
  /**
   * Call `target.onClock(arg)` after `delayNs` virtual nanoseconds, without allocating (for work
   * posted per frame); it cannot be cancelled.
   */
  post(delayNs: number, target: ClockTarget, arg: number): void;
}

/** What the machine gives a device model when it is plugged in. */
export interface DeviceHost {
  /** The machine's virtual clock; device work is scheduled on it. */
  readonly clock: DeviceClock;
  /** The device's path to memory through the IOMMU. */
  readonly dma: DmaPort;
  /** The device's interrupt outputs. */
  readonly irq: InterruptSink;
  /** A deterministic random source in [0, 1) seeded by the machine. */
  readonly random: () => number;
  /** Append a line to the machine's trace (device events worth seeing). */
  trace(line: string): void;
}

/** A simulated PCI function. */
export interface PciDeviceModel {
  /** Short model name, e.g. "edu". */
  readonly model: string;
  /** The function's config space (vendor/device ids, BAR registers, capability list, …). */
  readonly config: PciConfig;
  /** Implemented BARs. */
  readonly bars: readonly BarDecl[];
  /** True when the function has a usable reset (FLR or PM reset): VFIO_DEVICE_INFO_FLAGS_RESET. */
  readonly resetWorks: boolean;
  /** Plug the device into a machine. Called once, before any other access. */
  connect(host: DeviceHost): void;
  /**
   * A register read of `size` bytes at `offset` in BAR `bar` (a bigint for size 8). Widths a
   * device does not support read as the hardware would (edu: all-ones for non-4/8-byte reads).
   */
  mmioRead(bar: number, offset: number, size: 1 | 2 | 4 | 8): number | bigint;
  /** A register write of `size` bytes at `offset` in BAR `bar`. */
  mmioWrite(bar: number, offset: number, size: 1 | 2 | 4 | 8, value: number | bigint): void;
  /** Function-level reset: registers and config space back to power-on values. */
  reset(): void;
}

/** A device model whose link can go down and up (NIC models). */
export interface LinkControl {
  /** Link up (true) or down (false), as a cable pulled and plugged back. */
  setLink(up: boolean): void;
}
