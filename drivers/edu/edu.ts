/**
 * A driver for QEMU's edu device: identification, liveness, factorial, interrupts (MSI or INTx
 * polling) and the DMA engine, over any {@link PciDevice} — real VFIO or the simulator.
 *
 * @example
 * ```ts
 * using dev = openPciDevice("0000:00:02.0", { kernel, iommu: "auto" });
 * const edu = await EduDriver.open(dev, { interrupts: "msi" });
 * const buf = dev.dma.allocate(4096, { iovaLimit: EDU_DMA_MASK });
 * buf.bytes.fill(0x5a, 0, 100);
 * await edu.dmaToDevice(buf, 0, 0, 100);
 * await edu.dmaFromDevice(buf, 2048, 0, 100);
 * ```
 *
 * @module
 */

import { type Mmio, MMIO_ALL_ONES } from "../../ffi/kernel.ts";
import type { PciDevice } from "../../core/pci_device.ts";
import type { DmaBuffer } from "../../core/dma_space.ts";
import { VfioError } from "../../core/errors.ts";
import { pollUntil } from "../../core/poll_until.ts";
import { PCI_DEVICE_ID, PCI_VENDOR_ID } from "../../core/config_space.ts";
import {
  EDU_BAR,
  EDU_DEVICE_ID,
  EDU_DMA_BUFFER,
  EDU_DMA_BUFFER_SIZE,
  EDU_DMA_CMD_IRQ,
  EDU_DMA_CMD_START,
  EDU_DMA_CMD_TO_RAM,
  EDU_DMA_MASK,
  EDU_ID_MAGIC,
  EDU_IRQ_DMA,
  EDU_REG_DMA_CMD,
  EDU_REG_DMA_COUNT,
  EDU_REG_DMA_DST,
  EDU_REG_DMA_SRC,
  EDU_REG_FACTORIAL,
  EDU_REG_ID,
  EDU_REG_IRQ_ACK,
  EDU_REG_IRQ_RAISE,
  EDU_REG_IRQ_STATUS,
  EDU_REG_LIVENESS,
  EDU_REG_STATUS,
  EDU_STATUS_COMPUTING,
  EDU_VENDOR_ID,
} from "./registers.ts";

/**
 * Largest transfer the driver issues. QEMU 7.2's edu rejects a 4096-byte transfer at the buffer's
 * start with a fatal range error (an off-by-one in its bounds check), so one byte less is the
 * largest size that works on every QEMU version.
 */
export const EDU_MAX_TRANSFER = EDU_DMA_BUFFER_SIZE - 1;

/** How the driver learns that the device finished something. */
export type EduCompletion = "msi" | "poll";

/** Options of {@link EduDriver.open}. */
export interface EduOptions {
  /** "msi": wait for the device's MSI on its eventfd; "poll": poll registers (default). */
  interrupts?: EduCompletion;
  /** Give up waiting for the device after this many milliseconds (default 5000). */
  timeoutMs?: number;
  /** Milliseconds between register polls (default 1). */
  pollIntervalMs?: number;
}

/** What the driver has done so far. */
export interface EduCounters {
  /** DMA transfers completed. */
  dmaTransfers: number;
  /** Bytes moved by DMA. */
  dmaBytes: number;
  /** Interrupts received through the eventfd. */
  interrupts: number;
}

const DEFAULT_TIMEOUT_MS = 5000;
const DEFAULT_POLL_MS = 1;
/** While waiting for an MSI, check this often that the device still answers MMIO. */
const PRESENCE_CHECK_MS = 10;

/** The edu driver. */
export class EduDriver {
  /** Counters of completed work. */
  readonly counters: EduCounters = { dmaTransfers: 0, dmaBytes: 0, interrupts: 0 };
  readonly #dev: PciDevice;
  readonly #regs: Mmio;
  readonly #completion: EduCompletion;
  readonly #timeoutMs: number;
  readonly #pollMs: number;

  private constructor(dev: PciDevice, regs: Mmio, options: EduOptions) {
    this.#dev = dev;
    this.#regs = regs;
    this.#completion = options.interrupts ?? "poll";
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#pollMs = options.pollIntervalMs ?? DEFAULT_POLL_MS;
  }

  /**
   * Check that `dev` is an edu, enable bus mastering (needed before any DMA) and, with
   * `interrupts: "msi"`, its MSI vector.
   */
  static open(dev: PciDevice, options: EduOptions = {}): EduDriver {
    const vendor = dev.config.read16(PCI_VENDOR_ID);
    const device = dev.config.read16(PCI_DEVICE_ID);
    if (vendor !== EDU_VENDOR_ID || device !== EDU_DEVICE_ID) {
      throw new VfioError({
        operation: "EduDriver.open",
        device: dev.bdf,
        message: `device is ${hex4(vendor)}:${hex4(device)}, not an edu (${hex4(EDU_VENDOR_ID)}:${
          hex4(EDU_DEVICE_ID)
        })`,
        hint: "pass the address of an edu device (QEMU: -device edu)",
      });
    }
    const regs = dev.bar(EDU_BAR);
    const id = regs.read32(EDU_REG_ID);
    if ((id & 0xff) !== EDU_ID_MAGIC) {
      throw new VfioError({
        operation: "EduDriver.open",
        device: dev.bdf,
        message: `identification register reads 0x${id.toString(16)}, expected 0xRRrr00ed`,
      });
    }
    dev.config.enableBusMaster();
    if (options.interrupts === "msi") dev.irqs.enableMsi(1);
    return new EduDriver(dev, regs, options);
  }

  /** The device's version from the identification register. */
  get version(): { major: number; minor: number } {
    const id = this.#regs.read32(EDU_REG_ID);
    return { major: id >>> 24, minor: (id >>> 16) & 0xff };
  }

  /** Write `value` to the liveness register; true when the device answers with its inverse. */
  liveness(value: number): boolean {
    this.#regs.write32(EDU_REG_LIVENESS, value);
    return this.#regs.read32(EDU_REG_LIVENESS) === (~value >>> 0);
  }

  /** Compute `n!` (modulo 2^32) on the device. */
  async factorial(n: number): Promise<number> {
    this.#regs.write32(EDU_REG_FACTORIAL, n);
    await this.#until(
      () => (this.#register(EDU_REG_STATUS) & EDU_STATUS_COMPUTING) === 0,
      "factorial",
    );
    return this.#regs.read32(EDU_REG_FACTORIAL);
  }

  /** Raise interrupt `value` on the device and wait for it (MSI mode); returns the status seen. */
  async raiseInterrupt(value: number): Promise<number> {
    this.#regs.write32(EDU_REG_IRQ_RAISE, value);
    return await this.#takeInterrupt(value);
  }

  /** DMA `length` bytes from `buffer` at `offset` into the device buffer at `deviceOffset`. */
  async dmaToDevice(
    buffer: DmaBuffer,
    offset: number,
    deviceOffset: number,
    length: number,
  ): Promise<void> {
    this.#checkTransfer(buffer, offset, deviceOffset, length);
    await this.#dma(buffer.iova + BigInt(offset), BigInt(EDU_DMA_BUFFER + deviceOffset), length, 0);
  }

  /** DMA `length` bytes from the device buffer at `deviceOffset` into `buffer` at `offset`. */
  async dmaFromDevice(
    buffer: DmaBuffer,
    offset: number,
    deviceOffset: number,
    length: number,
  ): Promise<void> {
    this.#checkTransfer(buffer, offset, deviceOffset, length);
    await this.#dma(
      BigInt(EDU_DMA_BUFFER + deviceOffset),
      buffer.iova + BigInt(offset),
      length,
      EDU_DMA_CMD_TO_RAM,
    );
  }

  /**
   * DMA `length` bytes of the device buffer to an arbitrary IOVA, unchecked — for showing what
   * the IOMMU does with a DMA to memory that was never mapped (a fault, memory untouched).
   */
  async dmaFromDeviceToIova(iova: bigint, length: number): Promise<void> {
    if (length <= 0 || length > EDU_MAX_TRANSFER) {
      throw new VfioError({
        operation: "edu DMA",
        device: this.#dev.bdf,
        message: `length ${length} is outside 1..${EDU_MAX_TRANSFER}`,
      });
    }
    await this.#dma(BigInt(EDU_DMA_BUFFER), iova, length, EDU_DMA_CMD_TO_RAM);
  }

  /** Disable the interrupts this driver enabled. The PciDevice stays open. */
  close(): void {
    if (this.#completion === "msi") this.#dev.irqs.disableMsi();
  }

  #checkTransfer(buffer: DmaBuffer, offset: number, deviceOffset: number, length: number): void {
    const problem = length <= 0 || length > EDU_MAX_TRANSFER
      ? `length ${length} is outside 1..${EDU_MAX_TRANSFER}`
      : offset < 0 || offset + length > buffer.size
      ? `[${offset}, ${offset + length}) is outside the ${buffer.size}-byte DMA buffer`
      : deviceOffset < 0 || deviceOffset + length > EDU_DMA_BUFFER_SIZE
      ? `device range [${deviceOffset}, ${
        deviceOffset + length
      }) is outside its ${EDU_DMA_BUFFER_SIZE}-byte buffer`
      : buffer.iova + BigInt(offset + length - 1) > EDU_DMA_MASK
      ? `IOVA 0x${buffer.iova.toString(16)} is above the device's 28-bit DMA mask`
      : undefined;
    if (problem) {
      throw new VfioError({
        operation: "edu DMA",
        device: this.#dev.bdf,
        message: problem,
        hint: problem.includes("mask")
          ? "allocate the buffer with { iovaLimit: EDU_DMA_MASK }"
          : undefined,
      });
    }
  }

  async #dma(src: bigint, dst: bigint, length: number, direction: number): Promise<void> {
    const irq = this.#completion === "msi" ? EDU_DMA_CMD_IRQ : 0;
    this.#regs.write64(EDU_REG_DMA_SRC, src);
    this.#regs.write64(EDU_REG_DMA_DST, dst);
    this.#regs.write32(EDU_REG_DMA_COUNT, length);
    this.#regs.write32(EDU_REG_DMA_CMD, EDU_DMA_CMD_START | direction | irq);
    if (irq) await this.#takeInterrupt(EDU_IRQ_DMA);
    await this.#until(() => (this.#register(EDU_REG_DMA_CMD) & EDU_DMA_CMD_START) === 0, "DMA");
    this.counters.dmaTransfers++;
    this.counters.dmaBytes += length;
  }

  /**
   * Wait for an interrupt whose status carries a bit of `expected`, then read and acknowledge the
   * status (every bit seen) and return it. In MSI mode an MSI whose status lacks `expected` (a
   * spurious one, or a late one of an earlier operation) is ignored, and a device that stops
   * answering MMIO is reported as such rather than as a missing MSI.
   */
  async #takeInterrupt(expected: number): Promise<number> {
    if (this.#completion === "msi") {
      const deadline = this.#dev.kernel.now() + this.#timeoutMs;
      for (;;) {
        const left = deadline - this.#dev.kernel.now();
        const got = left <= 0 ? "timeout" : await this.#dev.irqs.wait(0, {
          timeoutMs: Math.min(left, PRESENCE_CHECK_MS),
        });
        const status = this.#register(EDU_REG_IRQ_STATUS);
        if (got === "cancelled" || (got === "timeout" && left <= 0)) {
          throw new VfioError({
            operation: "edu interrupt",
            device: this.#dev.bdf,
            message: `no MSI within ${this.#timeoutMs} ms (${got})`,
            hint: "check that MSI is enabled and the IOMMU passes the MSI window",
          });
        }
        if (got !== "timeout" && (status & expected) !== 0) break;
      }
      this.counters.interrupts++;
    } else {
      await this.#until(
        () => (this.#register(EDU_REG_IRQ_STATUS) & expected) !== 0,
        "interrupt status",
      );
    }
    const status = this.#regs.read32(EDU_REG_IRQ_STATUS);
    this.#regs.write32(EDU_REG_IRQ_ACK, status);
    return status;
  }

  /**
   * A register the driver waits on. All-ones there and in the identification register means the
   * function no longer answers MMIO (it was removed, or on POWER EEH froze its PE after a bad
   * DMA): a VfioError saying so instead of a wait that can only time out.
   */
  #register(offset: number): number {
    const value = this.#regs.read32(offset);
    if (value !== MMIO_ALL_ONES || this.#regs.read32(EDU_REG_ID) !== MMIO_ALL_ONES) return value;
    throw new VfioError({
      operation: "edu",
      device: this.#dev.bdf,
      message: "the device reads all-ones: it stopped answering MMIO",
      hint: "the device was removed, or on POWER EEH froze its PE after a DMA fault " +
        "(VFIO_EEH_PE_OP: unfreeze or reset the PE)",
    });
  }

  #until(done: () => boolean, what: string): Promise<void> {
    return pollUntil(this.#dev, done, {
      timeoutMs: this.#timeoutMs,
      pollMs: this.#pollMs,
      operation: `edu ${what}`,
    });
  }
}

function hex4(n: number): string {
  return n.toString(16).padStart(4, "0");
}
