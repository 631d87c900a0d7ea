/**
 * The built-in device models `createMachine` knows by name.
 *
 * @module
 */

import { EduDevice } from "./pci/edu.ts";
import type { PciDeviceModel } from "./pci/device.ts";
import { VirtioNetDevice } from "./pci/virtio_net.ts";
import type { EthernetSegment } from "./net/segment.ts";

/** Names of built-in models. */
export type DeviceModelName = "edu" | "virtio-net";

/** What a model may be plugged into besides the PCI bus. */
export interface ModelContext {
  /** The machine's Ethernet segment (NIC models attach their port to it). */
  readonly segment: EthernetSegment;
  /** How many models of this name were created before (distinct MACs for several NICs). */
  readonly instance: number;
}

/** QEMU's first NIC MAC, 52:54:00:12:34:56; later NICs count up in the last byte. */
const QEMU_MAC_PREFIX = [0x52, 0x54, 0x00, 0x12, 0x34];
const QEMU_FIRST_MAC_BYTE = 0x56;

/** Factories of the built-in models. */
const MODELS: Record<DeviceModelName, (ctx: ModelContext) => PciDeviceModel> = {
  edu: () => new EduDevice(),
  "virtio-net": (ctx) =>
    new VirtioNetDevice({
      segment: ctx.segment,
      mac: new Uint8Array([...QEMU_MAC_PREFIX, (QEMU_FIRST_MAC_BYTE + ctx.instance) & 0xff]),
    }),
};

/** A new instance of a built-in model. */
export function createDeviceModel(name: DeviceModelName, ctx: ModelContext): PciDeviceModel {
  const make = MODELS[name];
  if (make === undefined) throw new Error(`createMachine: unknown device model "${name}"`);
  return make(ctx);
}
