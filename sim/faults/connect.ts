/**
 * Plugging a device model into the machine with its fault-injection layer in between: the model
 * gets a DMA port, an interrupt sink and a clock that fault injection can make fail, lose or
 * stop, and the machine keeps the {@link DeviceFaults} controller of the function.
 *
 * @module
 */

import type { VirtualClock } from "../clock.ts";
import type { DmaAccess, IommuModel } from "../iommu/model.ts";
import { SpaprTceIommu } from "../iommu/spapr/spapr_tce.ts";
import type { SimPciFunction } from "../kernel/pci_function.ts";
import type { PhysicalMemory } from "../memory.ts";
import type { InterruptSink } from "../pci/device.ts";
import { createDmaPort } from "../pci/dma_port.ts";
import { DeviceFaults } from "./device_faults.ts";
import { DmaFaults } from "./dma_faults.ts";
import { GatedClock } from "./gated_clock.ts";
import { InterruptFaults } from "./irq_faults.ts";

/** What {@link connectWithFaults} needs from the machine. */
export interface FaultWiring {
  /** The function (its model is connected). */
  readonly fn: SimPciFunction;
  /** The IOMMU translating its DMA. */
  readonly iommu: IommuModel;
  /** Physical memory. */
  readonly memory: PhysicalMemory;
  /** The machine clock. */
  readonly clock: VirtualClock;
  /** Where the model's interrupts go (the kernel's router). */
  readonly router: InterruptSink;
  /** The machine's random source. */
  readonly random: () => number;
  /** The machine's trace of device events (the function's address and model are prefixed). */
  readonly deviceLog: (line: string) => void;
  /** The machine's trace of DMA events (refused and faulting transfers). */
  readonly dmaLog: (line: string) => void;
  /** The kernel side of a surprise removal. */
  readonly remove: () => void;
}

/** Connect `w.fn.model` through the fault layer; returns the function's controller. */
export function connectWithFaults(w: FaultWiring): DeviceFaults {
  const { fn, iommu } = w;
  const model = fn.model;
  const deviceLog = (line: string): void => w.deviceLog(`${fn.bdf} ${model.model}: ${line}`);
  const port = createDmaPort({
    iommu,
    memory: w.memory,
    requester: fn.requester,
    config: model.config,
    clock: w.clock,
    trace: w.dmaLog,
  });
  const record = iommu.injectFault
    ? (iova: bigint, access: DmaAccess, pasid: number | undefined) =>
      iommu.injectFault!(fn.requester, pasid, iova, access)
    : undefined;
  const dma = new DmaFaults(port, record, deviceLog);
  const irq = new InterruptFaults(w.router);
  const clock = new GatedClock(w.clock);
  const faults = new DeviceFaults({
    bdf: fn.bdf,
    model,
    dma,
    irq,
    clock,
    remove: w.remove,
    freezeEeh: eehFreezer(iommu, fn.requester),
  });
  fn.afterReset = () => faults.functionReset();
  model.connect({ clock, dma: dma.port, irq, random: w.random, trace: deviceLog });
  return faults;
}

/** sPAPR: freeze the PE of a requester as VFIO_EEH_PE_INJECT_ERR does; undefined elsewhere. */
function eehFreezer(iommu: IommuModel, requester: number): (() => void) | undefined {
  if (!(iommu instanceof SpaprTceIommu)) return undefined;
  return () => {
    const pe = iommu.peOfRequester(requester);
    if (pe === undefined) throw new Error("sPAPR: the function has no PE");
    iommu.injectError(pe);
  };
}
