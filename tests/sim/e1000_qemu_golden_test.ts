/**
 * The simulated e1000e and igb against QEMU 10.0.13's devices, as recorded from the real thing
 * (tests/sim/goldens/*.json, read through QEMU's qtest interface with no guest driver): every
 * dword of BAR 0 after power-on, the whole standard config space, and the BAR size masks.
 */
import assert from "node:assert/strict";
import { createMachine } from "../../sim/machine.ts";
import type { PciDeviceModel } from "../../sim/pci/device.ts";

const BAR0 = JSON.parse(
  Deno.readTextFileSync(new URL("./goldens/qemu_e1000_bar0_reset.json", import.meta.url)),
) as Record<string, Record<string, string>>;
const CONFIG = JSON.parse(
  Deno.readTextFileSync(new URL("./goldens/qemu_nic_config.json", import.meta.url)),
) as Record<string, { config: string[]; barMasks: string[] }>;

const hex = (v: number, digits: number): string =>
  `0x${(v >>> 0).toString(16).padStart(digits, "0")}`;

/** The machine QEMU was recorded with: virtio-net 00:03.0, e1000e 00:04.0, igb 00:05.0. */
function recordedMachine(): Map<string, PciDeviceModel> {
  const m = createMachine({
    iommu: "vtd",
    devices: [
      { model: "virtio-net", bdf: "0000:00:03.0" },
      { model: "e1000e", bdf: "0000:00:04.0" },
      { model: "igb", bdf: "0000:00:05.0" },
    ],
  });
  return new Map([["e1000e", m.fn("0000:00:04.0").model], ["igb", m.fn("0000:00:05.0").model]]);
}

for (const name of ["e1000e", "igb"]) {
  Deno.test({
    name: `${name} model: BAR 0 after power-on is QEMU 10's, dword for dword`,
    permissions: "none",
    fn() {
      const model = recordedMachine().get(name)!;
      const got: Record<string, string> = {};
      for (let off = 0; off < 0x2_0000; off += 4) {
        const v = Number(model.mmioRead(0, off, 4));
        if (v !== 0) got[hex(off, 5)] = hex(v, 8);
      }
      assert.deepEqual(got, BAR0[name]);
    },
  });

  Deno.test({
    name: `${name} model: config space and BAR sizes are QEMU 10's`,
    permissions: "none",
    fn() {
      const model = recordedMachine().get(name)!;
      const config = Array.from({ length: 64 }, (_, i) => hex(model.config.read(4 * i, 4), 8));
      assert.deepEqual(config, CONFIG[name].config);
      const masks = Array.from({ length: 6 }, (_, b) => {
        const at = 0x10 + 4 * b;
        const old = model.config.read(at, 4);
        model.config.write(at, 4, 0xffff_ffff);
        const mask = model.config.read(at, 4);
        model.config.write(at, 4, old);
        return hex(mask, 8);
      });
      assert.deepEqual(masks, CONFIG[name].barMasks);
    },
  });
}

Deno.test({
  name: "NIC models take QEMU's MACs in device order across the machine (…56, …57, …58)",
  permissions: "none",
  fn() {
    const m = createMachine({
      iommu: "vtd",
      devices: [{ model: "virtio-net" }, { model: "e1000e" }, { model: "igb" }, { model: "igb" }],
    });
    const last = m.functions.map((f) => Number(f.model.mmioRead(0, 0x5404, 4)) & 0xff00);
    // virtio-net has no RAH; the Intel parts carry the MAC's last byte in RAH0 bits 15:8.
    assert.deepEqual(last.slice(1), [0x5700, 0x5800, 0x5900]);
  },
});
