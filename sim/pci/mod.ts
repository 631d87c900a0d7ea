/**
 * Writing a simulated PCI function: the device-model contract ({@link PciDeviceModel},
 * {@link DeviceHost}, {@link DmaPort}, {@link InterruptSink}), the config-space builder the
 * project's own models use ({@link PciConfigSpace} with MSI, MSI-X, PCI Express, PM and vendor
 * capabilities) and its interrupt rules ({@link sendMsi}, {@link IntxPin}), MMIO dispatch
 * ({@link BarMap}, {@link RegisterBlock}), a base class that wires them together
 * ({@link PciFunctionModel}), the PCI register names, a device's path to memory on its own for a
 * model's unit test ({@link createDmaPort} over a machine's `iommu` and `memory`), and the byte
 * copies the project's models use on their per-packet paths ({@link byteViews}, {@link copyBytes}).
 *
 * A model plugs into a simulated machine beside the built-in ones, and the same driver code that
 * runs on real VFIO drives it:
 *
 * @example
 * ```ts
 * import { createMachine } from "@deno-vfio/deno-vfio/sim";
 * import { PciFunctionModel, RegisterBlock } from "@deno-vfio/deno-vfio/sim/pci";
 *
 * class Scratch extends PciFunctionModel {
 *   readonly model = "scratch";
 *   constructor() {
 *     super({
 *       config: { vendorId: 0x1234, deviceId: 0x5678, classCode: 0xff0000 },
 *       bars: [{ index: 0, size: 0x1000, kind: "mem32", prefetchable: false }],
 *     });
 *     this.mmio.route(0, 0, 0x1000, new RegisterBlock({ name: "scratch" }).define(0, { name: "X" }));
 *   }
 *   protected onReset(): void {}
 * }
 * const machine = createMachine({ iommu: "vtd", devices: [{ model: new Scratch() }] });
 * ```
 *
 * A NIC model also implements {@link LinkControl} so tests can take its link down and up
 * (`machine.inject(bdf).setLink(false)`); DMA faults, hangs, lost interrupts and removal need no
 * help from the model. examples/custom_device.ts is a whole device (a CRC-32 offload engine), its
 * driver and its test.
 *
 * @module
 */

export * from "./device.ts";
export * from "./config.ts";
export * from "./pci_regs.ts";
export { findExtCapability } from "./ext_cap.ts";
export * from "./mmio_regs.ts";
export * from "./model_base.ts";
export { type MsixOutcome, MsixTable, type MsixTableLayout } from "./msix_table.ts";
export { createDmaPort, DMA_PAGE_SIZE, type DmaPortOptions } from "./dma_port.ts";
export { type ByteViews, byteViews, copyBytes } from "../bytes.ts";
export type { ClockTarget, ScheduledEvent } from "../clock.ts";
