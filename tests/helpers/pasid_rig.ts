/**
 * A machine for the PASID-lifecycle tests (the allocator proposal, not Linux ABI): the PASID DMA
 * engine at 0000:00:04.0, opened through iommufd on a kernel answering as 6.15 (PASID attach),
 * behind each IOMMU that takes PASIDs — VT-d in scalable mode, SMMUv3 with 16 SubstreamID bits, or
 * virtio-iommu with the proposal's PASID requests — with its RID on a PASID-compatible HWPT and
 * the driver polling every 10 µs of virtual time, so a test can act while a transfer is in flight.
 *
 * @module
 */

import assert from "node:assert/strict";
import { PasidDmaDriver } from "../../drivers/pasid_dma/pasid_dma.ts";
import { createMachine, type MachineDevice, type SimMachine } from "../../sim/machine.ts";
import { openPasidSession, type PasidSession } from "./pasid_session.ts";

/** The IOMMUs that take PASIDs. */
export const PASID_IOMMUS = ["vtd", "smmuv3", "virtio-iommu"] as const;
/** One of {@link PASID_IOMMUS}. */
export type PasidIommu = typeof PASID_IOMMUS[number];
/** The engine's address and requester id. */
export const PASID_BDF = "0000:00:04.0";
/** Requester id (StreamID, endpoint id) of {@link PASID_BDF}. */
export const PASID_REQUESTER = 0x20;
/** Quarantine of the rigs: 1 ms of virtual time. */
export const RIG_QUARANTINE_NS = 1_000_000;
/** Driver poll interval: 10 µs. */
export const RIG_POLL_MS = 0.01;

/** Options of {@link pasidRig}. */
export interface PasidRigOptions {
  /** `pasidAllocatorProposal` (default on with {@link RIG_QUARANTINE_NS}). */
  readonly proposal?: false | { readonly quarantineNs?: number; readonly drainTimeoutNs?: number };
  /** Devices (default: the engine at {@link PASID_BDF}). */
  readonly devices?: readonly MachineDevice[];
}

/** A machine, the engine's session and its driver. */
export interface PasidRig extends PasidSession {
  /** The machine. */
  readonly machine: SimMachine;
  /** The engine's driver. */
  readonly driver: PasidDmaDriver;
  /** The RID's PASID-compatible HWPT. */
  readonly ridHwpt: number;
}

/** The machine options of each IOMMU (6.15, the proposal as asked). */
export function pasidMachine(kind: PasidIommu, o: PasidRigOptions = {}): SimMachine {
  const proposal = o.proposal === false
    ? undefined
    : { quarantineNs: RIG_QUARANTINE_NS, ...(o.proposal ?? {}) };
  const devices = o.devices ?? [{ model: "pasid-dma", bdf: PASID_BDF }];
  const common = {
    kernelVersion: "6.15",
    devices,
    strict: true,
    ...(proposal ? { pasidAllocatorProposal: proposal } : {}),
  };
  switch (kind) {
    case "vtd":
      return createMachine({ iommu: "vtd", vtdScalableMode: true, ...common });
    case "smmuv3":
      return createMachine({ iommu: "smmuv3", smmuSsidBits: 16, ...common });
    case "virtio-iommu":
      return createMachine({
        iommu: "virtio-iommu",
        allowUnsafeInterrupts: { iommufd: true },
        ...common,
      });
  }
}

/** {@link pasidMachine}, the engine opened through iommufd, its RID ready for PASIDs, its driver. */
export function pasidRig(kind: PasidIommu, o: PasidRigOptions = {}): PasidRig {
  const machine = pasidMachine(kind, o);
  const session = openPasidSession(machine.kernel, PASID_BDF);
  const ridHwpt = session.pasidReadyRid();
  const driver = PasidDmaDriver.open(session.dev, { pollIntervalMs: RIG_POLL_MS });
  assert.equal(driver.pasid?.enabled, true);
  return { ...session, machine, driver, ridHwpt };
}

/**
 * Undo {@link pasidRig}: close the driver, the RID back on the backend's IOAS, `spaces` destroyed,
 * the test's buffers unmapped, the device closed.
 */
export function closeRig(
  r: PasidRig,
  spaces: readonly { ioas: number; hwpt: number }[] = [],
): void {
  r.driver.close();
  r.dropPasidSetup(r.ridHwpt, spaces);
  for (const m of r.buffers) assert.equal(r.machine.kernel.munmap(m), 0);
  r.dev.close();
}

/** Let the driver's continuations run (submissions) without advancing virtual time. */
export async function settle(machine: SimMachine): Promise<void> {
  await machine.kernel.sleep(0);
}
