/**
 * The virtio 1.x PCI transport (virtio 1.2 §4.1): finds the vendor capabilities in config space,
 * reaches the common, notify, ISR and device structures in the BARs they name, negotiates
 * features and sets queues up. Every register is accessed at its natural width.
 *
 * @module
 */

import type { Mmio } from "../../ffi/kernel.ts";
import type { PciDevice } from "../../core/pci_device.ts";
import { VfioError } from "../../core/errors.ts";
import { pollUntil } from "../../core/poll_until.ts";
import {
  COMMON_CONFIG_MSIX_VECTOR,
  COMMON_DEVICE_FEATURE,
  COMMON_DEVICE_FEATURE_SELECT,
  COMMON_DEVICE_STATUS,
  COMMON_DRIVER_FEATURE,
  COMMON_DRIVER_FEATURE_SELECT,
  COMMON_NUM_QUEUES,
  COMMON_QUEUE_DESC,
  COMMON_QUEUE_DEVICE,
  COMMON_QUEUE_DRIVER,
  COMMON_QUEUE_ENABLE,
  COMMON_QUEUE_MSIX_VECTOR,
  COMMON_QUEUE_NOTIFY_OFF,
  COMMON_QUEUE_SELECT,
  COMMON_QUEUE_SIZE,
  PCI_CAP_ID_VNDR,
  VIRTIO_CAP_BAR,
  VIRTIO_CAP_CFG_TYPE,
  VIRTIO_CAP_LENGTH,
  VIRTIO_CAP_NOTIFY_MULTIPLIER,
  VIRTIO_CAP_OFFSET,
  VIRTIO_MSI_NO_VECTOR,
  VIRTIO_PCI_CAP_COMMON_CFG,
  VIRTIO_PCI_CAP_DEVICE_CFG,
  VIRTIO_PCI_CAP_ISR_CFG,
  VIRTIO_PCI_CAP_NOTIFY_CFG,
  VIRTIO_STATUS_FAILED,
  VIRTIO_STATUS_FEATURES_OK,
} from "./registers.ts";
import type { SplitQueue } from "./virtqueue.ts";

/** A structure a capability points at: a BAR and an offset range in it. */
interface Structure {
  mmio: Mmio;
  offset: number;
  length: number;
}

/** How long a reset may take before the driver gives up (virtual or real ms). */
const RESET_TIMEOUT_MS = 1000;
/** Poll interval while waiting for the reset (milliseconds). */
const RESET_POLL_MS = 1;

/** The transport over one PCI function. */
export class VirtioPciTransport {
  readonly #dev: PciDevice;
  readonly #common: Structure;
  readonly #notify: Structure;
  readonly #notifyMultiplier: number;
  readonly #isr: Structure;
  readonly #device: Structure | undefined;

  private constructor(
    dev: PciDevice,
    s: {
      common: Structure;
      notify: Structure;
      multiplier: number;
      isr: Structure;
      device?: Structure;
    },
  ) {
    this.#dev = dev;
    this.#common = s.common;
    this.#notify = s.notify;
    this.#notifyMultiplier = s.multiplier;
    this.#isr = s.isr;
    this.#device = s.device;
  }

  /** Find the virtio structures of `dev`; throws a VfioError naming what is missing. */
  static open(dev: PciDevice): VirtioPciTransport {
    const found = new Map<number, { structure: Structure; cap: number }>();
    const used = [
      VIRTIO_PCI_CAP_COMMON_CFG,
      VIRTIO_PCI_CAP_NOTIFY_CFG,
      VIRTIO_PCI_CAP_ISR_CFG,
      VIRTIO_PCI_CAP_DEVICE_CFG,
    ];
    for (const cap of dev.config.capabilities()) {
      if (cap.id !== PCI_CAP_ID_VNDR) continue;
      const type = dev.config.read8(cap.offset + VIRTIO_CAP_CFG_TYPE);
      // Skip other structures (the PCI-config access window names an unimplemented BAR 0 on
      // QEMU) and later duplicates: the first capability of a type is the preferred one.
      if (!used.includes(type) || found.has(type)) continue;
      const bar = dev.config.read8(cap.offset + VIRTIO_CAP_BAR);
      if (bar > 5) continue;
      found.set(type, {
        structure: {
          mmio: dev.bar(bar),
          offset: dev.config.read32(cap.offset + VIRTIO_CAP_OFFSET),
          length: dev.config.read32(cap.offset + VIRTIO_CAP_LENGTH),
        },
        cap: cap.offset,
      });
    }
    const need = (type: number, what: string): { structure: Structure; cap: number } => {
      const f = found.get(type);
      if (!f) {
        throw new VfioError({
          operation: "virtio transport",
          device: dev.bdf,
          message: `no virtio ${what} capability: not a modern (virtio 1.x) device`,
          hint: "QEMU: use -device virtio-net-pci,disable-legacy=on (or a q35 PCIe slot)",
        });
      }
      return f;
    };
    const notify = need(VIRTIO_PCI_CAP_NOTIFY_CFG, "notify");
    return new VirtioPciTransport(dev, {
      common: need(VIRTIO_PCI_CAP_COMMON_CFG, "common configuration").structure,
      notify: notify.structure,
      multiplier: dev.config.read32(notify.cap + VIRTIO_CAP_NOTIFY_MULTIPLIER),
      isr: need(VIRTIO_PCI_CAP_ISR_CFG, "ISR").structure,
      device: found.get(VIRTIO_PCI_CAP_DEVICE_CFG)?.structure,
    });
  }

  /** The device status byte. */
  status(): number {
    return this.#common.mmio.read8(this.#common.offset + COMMON_DEVICE_STATUS);
  }

  /** Write the device status byte. */
  setStatus(status: number): void {
    this.#common.mmio.write8(this.#common.offset + COMMON_DEVICE_STATUS, status);
  }

  /** Reset the device (write 0) and wait until it reads back 0 (§4.1.4.3.2). */
  async reset(): Promise<void> {
    this.setStatus(0);
    await pollUntil(this.#dev, () => this.status() === 0, {
      timeoutMs: RESET_TIMEOUT_MS,
      pollMs: RESET_POLL_MS,
      operation: "virtio reset",
      timeoutMessage: () =>
        `device status still 0x${this.status().toString(16)} after ${RESET_TIMEOUT_MS} ms`,
    });
  }

  /** The 64 device feature bits. */
  deviceFeatures(): bigint {
    const c = this.#common;
    c.mmio.write32(c.offset + COMMON_DEVICE_FEATURE_SELECT, 0);
    const lo = c.mmio.read32(c.offset + COMMON_DEVICE_FEATURE);
    c.mmio.write32(c.offset + COMMON_DEVICE_FEATURE_SELECT, 1);
    const hi = c.mmio.read32(c.offset + COMMON_DEVICE_FEATURE);
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  /**
   * Accept `features`, set FEATURES_OK and check that the device kept it (§3.1.1 steps 5–6);
   * on refusal sets FAILED and throws.
   */
  acceptFeatures(features: bigint): void {
    const c = this.#common;
    c.mmio.write32(c.offset + COMMON_DRIVER_FEATURE_SELECT, 0);
    c.mmio.write32(c.offset + COMMON_DRIVER_FEATURE, Number(features & 0xffffffffn));
    c.mmio.write32(c.offset + COMMON_DRIVER_FEATURE_SELECT, 1);
    c.mmio.write32(c.offset + COMMON_DRIVER_FEATURE, Number(features >> 32n));
    this.setStatus(this.status() | VIRTIO_STATUS_FEATURES_OK);
    if ((this.status() & VIRTIO_STATUS_FEATURES_OK) === 0) {
      this.setStatus(this.status() | VIRTIO_STATUS_FAILED);
      throw new VfioError({
        operation: "virtio feature negotiation",
        device: this.#dev.bdf,
        message: `the device refused features 0x${features.toString(16)}`,
      });
    }
  }

  /** Number of queues the device has. */
  numQueues(): number {
    return this.#common.mmio.read16(this.#common.offset + COMMON_NUM_QUEUES);
  }

  /** Largest size of queue `index` (0 = queue not available). */
  maxQueueSize(index: number): number {
    const c = this.#common;
    c.mmio.write16(c.offset + COMMON_QUEUE_SELECT, index);
    return c.mmio.read16(c.offset + COMMON_QUEUE_SIZE);
  }

  /**
   * Tell the device where queue `index` lives and which MSI-X vector it signals (default: none),
   * and enable it. Returns the vector the device took: it reads back VIRTIO_MSI_NO_VECTOR when
   * the device could not map the one asked for (§4.1.5.1.2).
   */
  enableQueue(index: number, queue: SplitQueue, msixVector = VIRTIO_MSI_NO_VECTOR): number {
    const c = this.#common;
    const m = c.mmio;
    m.write16(c.offset + COMMON_QUEUE_SELECT, index);
    m.write16(c.offset + COMMON_QUEUE_SIZE, queue.size);
    m.write16(c.offset + COMMON_QUEUE_MSIX_VECTOR, msixVector);
    const taken = m.read16(c.offset + COMMON_QUEUE_MSIX_VECTOR);
    m.write64(c.offset + COMMON_QUEUE_DESC, queue.descIova);
    m.write64(c.offset + COMMON_QUEUE_DRIVER, queue.availIova);
    m.write64(c.offset + COMMON_QUEUE_DEVICE, queue.usedIova);
    m.write16(c.offset + COMMON_QUEUE_ENABLE, 1);
    return taken;
  }

  /** The MSI-X vector of configuration-change interrupts (VIRTIO_MSI_NO_VECTOR: none). */
  setConfigVector(vector: number): void {
    this.#common.mmio.write16(this.#common.offset + COMMON_CONFIG_MSIX_VECTOR, vector);
  }

  /** The notify register offset of queue `index` (read once at setup). */
  notifyOffset(index: number): number {
    const c = this.#common;
    c.mmio.write16(c.offset + COMMON_QUEUE_SELECT, index);
    const off = c.mmio.read16(c.offset + COMMON_QUEUE_NOTIFY_OFF);
    return this.#notify.offset + off * this.#notifyMultiplier;
  }

  /** Notify the device about queue `index` at a precomputed offset (a 16-bit write, §4.1.5.2). */
  notify(offset: number, index: number): void {
    this.#notify.mmio.write16(offset, index);
  }

  /** Read the ISR status (reading clears it). */
  isr(): number {
    return this.#isr.mmio.read8(this.#isr.offset);
  }

  /** Read a byte of the device-specific configuration. */
  deviceConfig8(offset: number): number {
    return this.#deviceCfg().mmio.read8(this.#deviceCfg().offset + offset);
  }

  /** Read a le16 of the device-specific configuration. */
  deviceConfig16(offset: number): number {
    return this.#deviceCfg().mmio.read16(this.#deviceCfg().offset + offset);
  }

  #deviceCfg(): Structure {
    if (!this.#device) {
      throw new VfioError({
        operation: "virtio device config",
        device: this.#dev.bdf,
        message: "the device has no device-specific configuration capability",
      });
    }
    return this.#device;
  }
}
