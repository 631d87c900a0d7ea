/**
 * The common configuration structure of a modern virtio PCI device (virtio 1.2 §4.1.4.3): feature
 * selection and negotiation words, the device status, the configuration vector and generation, and
 * the selected queue's size, MSI-X vector, enable bit and ring addresses. The device model owns it
 * and decides what a status write means; this file decodes the register offsets.
 *
 * @module
 */

import { NOT_SAFE, type SplitRing } from "./virtio_split_ring.ts";

/** "No vector" in config_msix_vector / queue_msix_vector (§4.1.4.3). */
export const VIRTIO_MSI_NO_VECTOR = 0xffff;
/** Device status FEATURES_OK (§2.1): the driver may no longer change its features. */
export const VIRTIO_S_FEATURES_OK = 8;

/** A queue as the transport and the device see it. */
export interface VirtioQueue extends SplitRing {
  /** queue_enable was written 1. */
  enabled: boolean;
  /** queue_msix_vector. */
  msixVector: number;
  /** The next available-ring index the device takes. */
  lastAvail: number;
}

/** What the device tells its {@link VirtioCommonCfg}. */
export interface VirtioCommonCfgOptions {
  /** The features the device offers. */
  readonly offered: bigint;
  /** num_queues. */
  readonly numQueues: number;
  /** Largest queue size the device offers (the size a queue starts with). */
  readonly queueMax: number;
  /** MSI-X vectors of the device (a larger vector number reads back as none). */
  readonly vectors: number;
  /** The driver wrote device_status (the low 8 bits of the write). */
  readonly writeStatus: (status: number) => void;
}

/** The common configuration of one device; see the module doc. */
export class VirtioCommonCfg {
  /** The device's queues (new ones at every reset). */
  queues: VirtioQueue[];
  /** device_status. */
  status = 0;
  /** The features the driver wrote (changes refused once FEATURES_OK is set). */
  driverFeatures = 0n;
  /** config_msix_vector. */
  configVector = VIRTIO_MSI_NO_VECTOR;
  /** config_generation (the device changes it; a reset keeps it). */
  generation = 0;
  #deviceFeatureSelect = 0;
  #driverFeatureSelect = 0;
  #queueSelect = 0;
  readonly #o: VirtioCommonCfgOptions;

  /** The structure of a device described by `o`, as after a reset. */
  constructor(o: VirtioCommonCfgOptions) {
    this.#o = o;
    this.queues = this.#freshQueues();
  }

  /** Device reset (§2.4): fresh queues, status and selections cleared, no configuration vector. */
  reset(): void {
    this.queues = this.#freshQueues();
    this.status = 0;
    this.#deviceFeatureSelect = 0;
    this.#driverFeatureSelect = 0;
    this.driverFeatures = 0n;
    this.#queueSelect = 0;
    this.configVector = VIRTIO_MSI_NO_VECTOR;
  }

  /** Read `size` bytes at offset `off` of the structure. */
  read(off: number, size: number): number | bigint {
    const q = this.queues[this.#queueSelect];
    switch (off) {
      case 0x00:
        return this.#deviceFeatureSelect;
      case 0x04: {
        const word = this.#deviceFeatureSelect < 2
          ? (this.#o.offered >> BigInt(32 * this.#deviceFeatureSelect)) & 0xffffffffn
          : 0n;
        return Number(word);
      }
      case 0x08:
        return this.#driverFeatureSelect;
      case 0x0c:
        return this.#driverFeatureSelect < 2
          ? Number((this.driverFeatures >> BigInt(32 * this.#driverFeatureSelect)) & 0xffffffffn)
          : 0;
      case 0x10:
        return this.configVector;
      case 0x12:
        return this.#o.numQueues;
      case 0x14:
        return this.status;
      case 0x15:
        return this.generation; // config_generation: changes with the link status
      case 0x16:
        return this.#queueSelect;
      case 0x18:
        return q ? q.size : 0;
      case 0x1a:
        return q ? q.msixVector : 0xffff;
      case 0x1c:
        return q?.enabled ? 1 : 0;
      case 0x1e:
        return q ? this.#queueSelect : 0;
      case 0x20:
      case 0x28:
      case 0x30: {
        const v = !q ? 0n : off === 0x20 ? q.desc : off === 0x28 ? q.driver : q.device;
        return size === 8 ? v : Number(v & 0xffffffffn);
      }
      case 0x24:
      case 0x2c:
      case 0x34: {
        const v = !q ? 0n : off === 0x24 ? q.desc : off === 0x2c ? q.driver : q.device;
        return Number(v >> 32n);
      }
      default:
        return 0;
    }
  }

  /** Write `size` bytes at offset `off` of the structure. */
  write(off: number, size: number, value: number | bigint): void {
    const v = typeof value === "bigint" ? value : BigInt(value >>> 0);
    const n = Number(v & 0xffffffffn);
    const q = this.queues[this.#queueSelect];
    switch (off) {
      case 0x00:
        this.#deviceFeatureSelect = n;
        return;
      case 0x08:
        this.#driverFeatureSelect = n;
        return;
      case 0x0c:
        if (this.#driverFeatureSelect < 2 && (this.status & VIRTIO_S_FEATURES_OK) === 0) {
          const shift = BigInt(32 * this.#driverFeatureSelect);
          this.driverFeatures = (this.driverFeatures & ~(0xffffffffn << shift)) |
            (BigInt(n) << shift);
        }
        return;
      case 0x14:
        this.#o.writeStatus(n & 0xff);
        return;
      case 0x10:
        this.configVector = this.vector(n);
        return;
      case 0x16:
        this.#queueSelect = n & 0xffff;
        return;
      case 0x18:
        if (q && !q.enabled && n > 0 && n <= this.#o.queueMax && (n & (n - 1)) === 0) {
          q.size = n;
        }
        return;
      case 0x1a:
        if (q) q.msixVector = this.vector(n);
        return;
      case 0x1c:
        if (q && (n & 1) === 1) q.enabled = true; // §4.1.4.3.2: the driver cannot disable a queue
        return;
      case 0x20:
      case 0x28:
      case 0x30:
      case 0x24:
      case 0x2c:
      case 0x34: {
        if (!q || q.enabled) return;
        const base = off & ~0x7;
        const high = (off & 0x4) !== 0;
        const field = base === 0x20 ? "desc" : base === 0x28 ? "driver" : "device";
        const old = q[field];
        q[field] = size === 8
          ? v
          : high
          ? (old & 0xffffffffn) | (v << 32n)
          : (old & ~0xffffffffn) | v;
        return;
      }
      default:
        return;
    }
  }

  /** A vector number as QEMU stores it: one the table does not have reads back as none. */
  vector(n: number): number {
    const v = n & 0xffff;
    return v < this.#o.vectors ? v : VIRTIO_MSI_NO_VECTOR;
  }

  #freshQueues(): VirtioQueue[] {
    return Array.from({ length: this.#o.numQueues }, () => this.#freshQueue());
  }

  #freshQueue(): VirtioQueue {
    return {
      size: this.#o.queueMax,
      enabled: false,
      msixVector: 0xffff,
      desc: 0n,
      driver: 0n,
      device: 0n,
      lastAvail: 0,
      usedIdx: 0,
      descN: NOT_SAFE,
      driverN: NOT_SAFE,
      deviceN: NOT_SAFE,
      numeric: false,
    };
  }
}
