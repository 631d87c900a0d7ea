/**
 * The machine's topology (the rules in machine.ts's module doc): PCI addresses for the devices,
 * IOMMU group numbers as QEMU q35 with intel-iommu gives them, and requester ids.
 *
 * @module
 */

import type { MachineDevice } from "./machine_options.ts";

/** Default device: QEMU's edu at 00:02.0. */
export const DEFAULT_DEVICES: readonly MachineDevice[] = [{ model: "edu", bdf: "0000:00:02.0" }];
/** First slot handed out on bus 0 (00:00.0 host bridge and 00:01.0 VGA exist on q35). */
const FIRST_FREE_SLOT = 2;
/** Group numbers for functions off bus 0 start here (above every bus-0 slot). */
const OFF_ROOT_GROUP_BASE = 32;
const BDF_RE = /^([0-9a-f]{4}):([0-9a-f]{2}):([0-1][0-9a-f])\.([0-7])$/;

/** Bus, slot and function of a PCI address `dddd:bb:ss.f`; throws for a malformed one. */
export function parseBdf(bdf: string): { bus: number; slot: number; func: number } {
  const m = BDF_RE.exec(bdf);
  if (!m) throw new Error(`createMachine: bad PCI address "${bdf}" (want dddd:bb:ss.f)`);
  const slot = parseInt(m[3], 16);
  if (slot > 0x1f) throw new Error(`createMachine: slot of "${bdf}" out of range`);
  return { bus: parseInt(m[2], 16), slot, func: parseInt(m[4], 10) };
}

/** Requester id (bus << 8 | devfn) of a PCI address. */
export function requesterOf(bdf: string): number {
  const { bus, slot, func } = parseBdf(bdf);
  return (bus << 8) | (slot << 3) | func;
}

function slotBdf(slot: number): string {
  return `0000:00:${slot.toString(16).padStart(2, "0")}.0`;
}

/** Assign addresses and group numbers (the rules in machine.ts's module doc). */
export function layout(devices: readonly MachineDevice[]): { bdf: string; group: number }[] {
  const taken = new Set(devices.map((d) => d.bdf).filter((b) => b !== undefined));
  let next = FIRST_FREE_SLOT;
  const bdfs = devices.map((d) => {
    if (d.bdf !== undefined) return d.bdf;
    while (taken.has(slotBdf(next))) next++;
    const bdf = slotBdf(next);
    taken.add(bdf);
    return bdf;
  });
  if (new Set(bdfs).size !== bdfs.length) throw new Error("createMachine: duplicate PCI address");
  const used = new Set(devices.map((d) => d.group).filter((g) => g !== undefined));
  return bdfs.map((bdf, i) => {
    const explicit = devices[i].group;
    if (explicit !== undefined) return { bdf, group: explicit };
    const { bus, slot } = parseBdf(bdf);
    let group = bus === 0 ? slot : OFF_ROOT_GROUP_BASE;
    while (used.has(group)) group = group < OFF_ROOT_GROUP_BASE ? OFF_ROOT_GROUP_BASE : group + 1;
    used.add(group);
    return { bdf, group };
  });
}
