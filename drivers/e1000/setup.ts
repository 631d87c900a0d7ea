/**
 * Queue and interrupt setup of the e1000-family driver (nic.ts), per the datasheets' receive and
 * transmit initialization (82576 §4.5.7/§4.5.8, 82574 §4.6.6/§4.6.7): ring sizes, ring memory,
 * base/length/head/tail, the model's queue-enable bit, the queues started over their ring memory
 * (at open, and again after a reset), the interrupt mode, and the stop that ends all DMA.
 *
 * @module
 */

import type { Mmio } from "../../ffi/kernel.ts";
import type { PciDevice } from "../../core/pci_device.ts";
import type { DmaBuffer } from "../../core/dma_space.ts";
import { VfioError } from "../../core/errors.ts";
import { pollUntil } from "../../core/poll_until.ts";
import { VFIO_PCI_MSI_IRQ_INDEX, VFIO_PCI_MSIX_IRQ_INDEX } from "../../ffi/uapi/mod.ts";
import type { NetDeviceStats } from "../net_device.ts";
import type { PacketPool } from "../packet_pool.ts";
import type { E1000IrqScheme, E1000Model } from "./model.ts";
import { RxRing, TxRing } from "./rings.ts";
import {
  DESC_SIZE,
  E1000_COLLISION_DISTANCE_FD,
  E1000_COLLISION_THRESHOLD,
  E1000_CTRL,
  E1000_CTRL_RST,
  E1000_RCTL,
  E1000_TCTL,
  E1000_TCTL_COLD_SHIFT,
  E1000_TCTL_CT_SHIFT,
  E1000_TCTL_EN,
  E1000_TCTL_PSP,
  E1000_TCTL_RTLC,
  QUEUE_DBAH,
  QUEUE_DBAL,
  QUEUE_DCTL,
  QUEUE_DH,
  QUEUE_DLEN,
  QUEUE_DT,
  RING_ALIGN_DESCRIPTORS,
  RING_BASE_ALIGN,
} from "./registers.ts";

/** Default descriptors per ring. */
export const E1000_DEFAULT_RING_SIZE = 256;
/** Largest ring the driver sets up. */
export const E1000_MAX_RING_SIZE = 4096;
/** How long a queue may take to report RXDCTL/TXDCTL.ENABLE (ms). */
const QUEUE_ENABLE_TIMEOUT_MS = 100;
const POLL_MS = 1;
const TWO_POW_32 = 0x1_0000_0000;

/** A usage error of the driver, naming the device. */
export function usage(dev: PciDevice, message: string): VfioError {
  return new VfioError({ operation: "IntelNic", device: dev.bdf, message });
}

/** A ring size option checked: a power of two from 8 to 4096 (default 256). */
export function ringSize(dev: PciDevice, what: string, size: number | undefined): number {
  const n = size ?? E1000_DEFAULT_RING_SIZE;
  if (
    !Number.isInteger(n) || n < RING_ALIGN_DESCRIPTORS || n > E1000_MAX_RING_SIZE ||
    (n & (n - 1)) !== 0
  ) {
    throw usage(
      dev,
      `${what} ${n}: a power of two from ${RING_ALIGN_DESCRIPTORS} to ${E1000_MAX_RING_SIZE}`,
    );
  }
  return n;
}

/** Ring memory for `size` descriptors, recorded in `rings` (to free on error). */
export function allocRing(dev: PciDevice, rings: DmaBuffer[], size: number): DmaBuffer {
  const mem = dev.dma.allocate(Math.max(size * DESC_SIZE, RING_BASE_ALIGN), {
    read: true,
    write: true,
  });
  rings.push(mem);
  return mem;
}

/** Base, length, head = tail = 0 (82576 §4.5.7/§4.5.8, 82574 §4.6.6/§4.6.7). */
export function programRing(regs: Mmio, block: number, mem: DmaBuffer, size: number): void {
  const iova = Number(mem.iova);
  regs.write32(block + QUEUE_DBAL, iova >>> 0);
  regs.write32(block + QUEUE_DBAH, (iova / TWO_POW_32) >>> 0);
  regs.write32(block + QUEUE_DLEN, size * DESC_SIZE);
  regs.write32(block + QUEUE_DH, 0);
  regs.write32(block + QUEUE_DT, 0);
}

/** Set the model's queue-enable bit and wait until it reads back (82576: before the tail). */
export async function enableQueue(
  dev: PciDevice,
  regs: Mmio,
  model: E1000Model,
  block: number,
  what: string,
  queue: number,
): Promise<void> {
  if (model.queueEnable === 0) return;
  regs.write32(block + QUEUE_DCTL, regs.read32(block + QUEUE_DCTL) | model.queueEnable);
  await pollUntil(dev, () => (regs.read32(block + QUEUE_DCTL) & model.queueEnable) !== 0, {
    timeoutMs: QUEUE_ENABLE_TIMEOUT_MS,
    pollMs: POLL_MS,
    operation: `${model.name} ${what} queue ${queue} enable`,
  });
}

/** What {@link startQueues} builds the queues from. */
export interface QueueSetup {
  /** The device (for errors and its clock). */
  readonly dev: PciDevice;
  /** Its registers. */
  readonly regs: Mmio;
  /** The controller model. */
  readonly model: E1000Model;
  /** Ring memory of each receive queue (queue n at index n). */
  readonly rxMemory: readonly DmaBuffer[];
  /** Ring memory of each transmit queue. */
  readonly txMemory: readonly DmaBuffer[];
  /** Descriptors per receive ring. */
  readonly rxSize: number;
  /** Descriptors per transmit ring. */
  readonly txSize: number;
  /** Receive buffer bytes (RCTL/SRRCTL). */
  readonly bufferSize: number;
  /** Where buffers come from. */
  readonly pool: PacketPool;
  /** The counters the rings update. */
  readonly stats: NetDeviceStats;
}

/**
 * Start every queue pair over its (zeroed) ring memory: receive descriptor format and RSS, each
 * receive ring programmed, enabled and filled with pool buffers, each transmit ring programmed and
 * enabled, then TCTL (82576 §4.5.7/§4.5.8, 82574 §4.6.6/§4.6.7). Receive stays off until RCTL.EN
 * (the receive filter). Used at open and by the reset-and-resume, on a device just reset.
 *
 * Queue n's rings are stored at `rx[n]` and `tx[n]` as soon as they exist, so that when a later
 * step fails the caller still holds every ring that took buffers (to drain after stopping the
 * device).
 */
export async function startQueues(s: QueueSetup, rx: RxRing[], tx: TxRing[]): Promise<void> {
  const { dev, regs, model } = s;
  const queues = s.rxMemory.length;
  model.configureRx(regs, queues, s.bufferSize);
  for (let q = 0; q < queues; q++) {
    const block = model.queues.rxBase + q * model.queues.stride;
    programRing(regs, block, s.rxMemory[q], s.rxSize);
    await enableQueue(dev, regs, model, block, "receive", q);
    const ring = new RxRing(s.rxMemory[q], s.rxSize, regs, block + QUEUE_DT, s.pool, s.stats);
    rx[q] = ring;
    ring.refill();
  }
  for (let q = 0; q < queues; q++) {
    const block = model.queues.txBase + q * model.queues.stride;
    programRing(regs, block, s.txMemory[q], s.txSize);
    await enableQueue(dev, regs, model, block, "transmit", q);
    tx[q] = new TxRing(
      s.txMemory[q],
      s.txSize,
      regs,
      block + QUEUE_DT,
      s.pool,
      s.stats,
      model.txCmd,
      model.txPaylenShift,
    );
  }
  regs.write32(
    E1000_TCTL,
    E1000_TCTL_EN | E1000_TCTL_PSP | (E1000_COLLISION_THRESHOLD << E1000_TCTL_CT_SHIFT) |
      (E1000_COLLISION_DISTANCE_FD << E1000_TCTL_COLD_SHIFT) | E1000_TCTL_RTLC,
  );
}

/** Receive and transmit off, queues disabled, then a global reset: no DMA after this. */
export function stopDevice(regs: Mmio, model: E1000Model, queues: number): void {
  regs.write32(E1000_RCTL, 0);
  regs.write32(E1000_TCTL, 0);
  if (model.queueEnable !== 0) {
    for (let q = 0; q < queues; q++) {
      for (const base of [model.queues.rxBase, model.queues.txBase]) {
        const reg = base + q * model.queues.stride + QUEUE_DCTL;
        regs.write32(reg, regs.read32(reg) & ~model.queueEnable);
      }
    }
  }
  regs.write32(E1000_CTRL, regs.read32(E1000_CTRL) | E1000_CTRL_RST);
}

/**
 * The first interrupt mode of the model the device has enough vectors for (`want` true), or the
 * one asked for ("msix", "msi": a VfioError when the model or the device lacks it).
 */
export function pickIrqScheme(
  dev: PciDevice,
  model: E1000Model,
  queues: number,
  want: true | "msix" | "msi" = true,
): E1000IrqScheme | undefined {
  const vectorsOf = (kind: "msix" | "msi"): number =>
    dev.irqs.irqInfo(kind === "msix" ? VFIO_PCI_MSIX_IRQ_INDEX : VFIO_PCI_MSI_IRQ_INDEX).count;
  for (const scheme of model.irqSchemes) {
    if (want !== true && scheme.kind !== want) continue;
    if (vectorsOf(scheme.kind) >= scheme.vectors(queues)) return scheme;
  }
  if (want !== true) {
    const scheme = model.irqSchemes.find((s) => s.kind === want);
    const name = want === "msix" ? "MSI-X" : "MSI";
    if (scheme === undefined) {
      throw usage(
        dev,
        `interrupts: "${want}": the ${model.chip} driver takes ${
          model.irqSchemes.map((s) => (s.kind === "msix" ? "MSI-X" : "MSI")).join(" or ")
        } only`,
      );
    }
    throw usage(
      dev,
      `interrupts: "${want}" with ${queues} queue(s) needs ${scheme.vectors(queues)} ${name} ` +
        `vector(s); the device offers ${vectorsOf(want)}`,
    );
  }
  if (queues > 1) {
    throw usage(dev, `${queues} queues need ${queues} MSI-X vectors; the device has fewer`);
  }
  return undefined;
}
