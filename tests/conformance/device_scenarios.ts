/**
 * The vfio-pci device fd on every path (through the group of a type1 or compat container, or the
 * bound cdev): what tools/testing/selftests/vfio/vfio_pci_device_test.c asserts —
 * `config_space_read_write`, `validate_bars`, `vfio_pci_irq_test` (MSI and MSI-X) — and the
 * interrupt rules of vfio.md §7.3 around it: GET_IRQ_INFO per index (NORESIZE follows the
 * device's MSI-X capability), the single-eventfd triggers of the ERR and REQ indexes
 * (`vfio_pci_set_ctx_trigger_single`: an fd below -1 is EINVAL), GET_INFO and reset.
 *
 * @module
 */

import { decode } from "../../ffi/uapi/layout.ts";
import { scenario, type ScenarioContext, type ScenarioDef, type VfioPath } from "./scenario.ts";
import { fieldsOf, pathDevice, readEventfd, setIrqs, struct } from "./steps.ts";
import {
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_GET_PCI_HOT_RESET_INFO,
  VFIO_DEVICE_GET_REGION_INFO,
  vfio_device_info,
  VFIO_DEVICE_RESET,
  vfio_irq_info,
  VFIO_IRQ_INFO_EVENTFD,
  VFIO_IRQ_INFO_NORESIZE,
  VFIO_IRQ_SET_ACTION_MASK,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_DATA_BOOL,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
  VFIO_PCI_CONFIG_REGION_INDEX,
  VFIO_PCI_ERR_IRQ_INDEX,
  vfio_pci_hot_reset_info,
  VFIO_PCI_MSI_IRQ_INDEX,
  VFIO_PCI_MSIX_IRQ_INDEX,
  VFIO_PCI_NUM_IRQS,
  VFIO_PCI_NUM_REGIONS,
  VFIO_PCI_REQ_IRQ_INDEX,
  vfio_region_info,
} from "./uapi.ts";

/** Every path with a vfio-pci device fd (not the sPAPR container: no device there in the VM). */
const DEVICE_PATHS: readonly VfioPath[] = ["type1", "iommufd", "compat"];
/** `VFIO_PCI_INDEX_TO_OFFSET`: regions sit at `index << 40` of the device fd. */
const REGION_SHIFT = 40n;
/** PCI config offsets (PCI 3.0 §6.2): vendor id, device id, command register. */
const PCI_VENDOR_ID = 0x00n;
const PCI_DEVICE_ID = 0x02n;
const PCI_COMMAND = 0x04n;
/** PCI_COMMAND_MASTER (bus mastering). */
const PCI_COMMAND_MASTER = 0x4;
const CONFIG = BigInt(VFIO_PCI_CONFIG_REGION_INDEX) << REGION_SHIFT;

const TRIGGER_EVENTFD = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
const TRIGGER_NONE = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER;
const TRIGGER_BOOL = VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_ACTION_TRIGGER;

function irqInfo(t: ScenarioContext, label: string, device: number, index: number, argsz = 16) {
  return t.ioctl(
    label,
    device,
    VFIO_DEVICE_GET_IRQ_INFO,
    struct(vfio_irq_info, { argsz, index }),
    { out: fieldsOf(vfio_irq_info, ["flags", "count"]) },
  );
}

const irqInfoScenario = scenario("device/irq-info", { paths: DEVICE_PATHS }, (t) => {
  const d = pathDevice(t);
  const names = ["INTX", "MSI", "MSIX", "ERR", "REQ"];
  const answers = names.map((name, index) => irqInfo(t, `GET_IRQ_INFO ${name}`, d, index));
  // A device without an MSI-X capability cannot grow MSI-X vectors: NORESIZE (has_dyn_msix false).
  const msix = answers[VFIO_PCI_MSIX_IRQ_INDEX];
  if (msix.out?.count === 0) {
    t.expect(msix, { ret: 0, fields: { flags: VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE } });
  }
  t.expect(answers[VFIO_PCI_REQ_IRQ_INDEX], {
    ret: 0,
    fields: { flags: VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE, count: 1 },
  });
  t.expect(irqInfo(t, "GET_IRQ_INFO index 5", d, VFIO_PCI_NUM_IRQS), { errno: "EINVAL" });
  t.expect(irqInfo(t, "GET_IRQ_INFO argsz 15", d, VFIO_PCI_MSI_IRQ_INDEX, 15), {
    errno: "EINVAL",
  });
  t.expect(irqInfo(t, "GET_IRQ_INFO argsz 64", d, VFIO_PCI_MSI_IRQ_INDEX, 64), { ret: 0 });
});

const reqTrigger = scenario("device/set-irqs-req-err", { paths: DEVICE_PATHS }, (t) => {
  const d = pathDevice(t);
  const e = t.must(t.eventfd("eventfd"), { ret: "fd" }).raw;
  const req = (label: string, flags: number, data: number[], extra: object = {}) =>
    setIrqs(t, `REQ ${label}`, d, { flags, index: VFIO_PCI_REQ_IRQ_INDEX, data, ...extra });
  t.expect(req("eventfd -2", TRIGGER_EVENTFD, [-2]), { errno: "EINVAL" });
  t.expect(req("NONE count 1 without a trigger", TRIGGER_NONE, [], { count: 1 }), {
    errno: "EINVAL",
  });
  t.expect(req("eventfd", TRIGGER_EVENTFD, [e]), { ret: 0 });
  t.expect(req("BOOL true (loopback)", TRIGGER_BOOL, [1]), { ret: 0 });
  t.expect(readEventfd(t, "eventfd after BOOL", e), { ret: 8, fields: { value: 1n } });
  t.expect(req("BOOL false", TRIGGER_BOOL, [0]), { ret: 0 });
  t.expect(req("NONE count 1 (loopback)", TRIGGER_NONE, [], { count: 1 }), { ret: 0 });
  t.expect(readEventfd(t, "eventfd after NONE", e), { ret: 8, fields: { value: 1n } });
  t.expect(req("count 2", TRIGGER_EVENTFD, [e, e]), { errno: "EINVAL" });
  t.expect(req("start 1", TRIGGER_EVENTFD, [e], { start: 1 }), { errno: "EINVAL" });
  t.expect(req("MASK", VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_MASK, [], { count: 1 }), {});
  t.expect(req("BOOL count 0", TRIGGER_BOOL, [], { count: 0 }), {});
  t.expect(req("NONE count 0 (disable)", TRIGGER_NONE, [], { count: 0 }), { ret: 0 });
  t.expect(req("NONE count 1 after disable", TRIGGER_NONE, [], { count: 1 }), {
    errno: "EINVAL",
  });
  t.expect(req("eventfd again", TRIGGER_EVENTFD, [e]), { ret: 0 });
  t.expect(req("eventfd -1 (disable)", TRIGGER_EVENTFD, [-1]), { ret: 0 });
  const err = (label: string, flags: number, data: number[]) =>
    setIrqs(t, `ERR ${label}`, d, { flags, index: VFIO_PCI_ERR_IRQ_INDEX, data });
  t.expect(err("eventfd", TRIGGER_EVENTFD, [e]), {});
  t.expect(err("eventfd -2", TRIGGER_EVENTFD, [-2]), { errno: "EINVAL" });
  t.expect(err("eventfd -1", TRIGGER_EVENTFD, [-1]), {});
});

const msi = scenario("device/msi-enable-trigger-disable", { paths: DEVICE_PATHS }, (t) => {
  const d = pathDevice(t);
  const info = irqInfo(t, "GET_IRQ_INFO MSI", d, VFIO_PCI_MSI_IRQ_INDEX);
  const count = Number(info.out?.count ?? 0);
  const fds = Array.from(
    { length: Math.max(count, 1) },
    (_, i) => t.must(t.eventfd(`eventfd ${i}`), { ret: "fd" }).raw,
  );
  const msiSet = (label: string, flags: number, data: number[], extra: object = {}) =>
    setIrqs(t, `MSI ${label}`, d, { flags, index: VFIO_PCI_MSI_IRQ_INDEX, data, ...extra });
  t.expect(msiSet("trigger before enable", TRIGGER_NONE, [], { count: 1 }), { errno: "EINVAL" });
  t.expect(msiSet("enable count+1", TRIGGER_EVENTFD, [...fds, fds[0]]), { errno: "EINVAL" });
  t.expect(msiSet("enable", TRIGGER_EVENTFD, fds.slice(0, count)), { ret: 0 });
  for (let i = 0; i < count; i++) {
    t.expect(msiSet(`trigger ${i}`, TRIGGER_NONE, [], { start: i, count: 1 }), { ret: 0 });
    t.expect(readEventfd(t, `eventfd ${i} after trigger`, fds[i]), {
      ret: 8,
      fields: { value: 1n },
    });
  }
  t.expect(msiSet("BOOL trigger 0", TRIGGER_BOOL, [1]), { ret: 0 });
  t.expect(readEventfd(t, "eventfd 0 after BOOL", fds[0]), { ret: 8, fields: { value: 1n } });
  t.expect(
    setIrqs(t, "MSI-X enable while MSI is on", d, {
      flags: TRIGGER_EVENTFD,
      index: VFIO_PCI_MSIX_IRQ_INDEX,
      data: [fds[0]],
    }),
    { errno: "EINVAL" },
  );
  t.expect(msiSet("disable", TRIGGER_NONE, [], { count: 0 }), { ret: 0 });
  t.expect(msiSet("trigger after disable", TRIGGER_NONE, [], { count: 1 }), { errno: "EINVAL" });
  // Not enabled any more: vfio_pci_set_msi_trigger finds no MSI to disable.
  t.expect(msiSet("disable again", TRIGGER_NONE, [], { count: 0 }), { errno: "EINVAL" });
});

const configSpace = scenario("device/config-space-read-write", { paths: DEVICE_PATHS }, (t) => {
  const d = pathDevice(t);
  const u16 = (data: Uint8Array) => data.length >= 2 ? data[0] | (data[1] << 8) : -1;
  const sysfsId = (name: string): number => {
    const text = t.kernel.readFile(`/sys/bus/pci/devices/${t.env.bdf}/${name}`);
    return typeof text === "string" ? Number(text.trim()) : -1;
  };
  const vendor = t.pread("pread vendor", d, 2, CONFIG + PCI_VENDOR_ID, (b) => ({ value: u16(b) }));
  const device = t.pread("pread device", d, 2, CONFIG + PCI_DEVICE_ID, (b) => ({ value: u16(b) }));
  t.expect(
    t.note("ids match sysfs", {
      vendor: vendor.out?.value === sysfsId("vendor"),
      device: device.out?.value === sysfsId("device"),
    }),
    { fields: { vendor: true, device: true } },
  );
  const readCommand = (label: string) =>
    t.pread(label, d, 2, CONFIG + PCI_COMMAND, (b) => ({
      master: (u16(b) & PCI_COMMAND_MASTER) !== 0,
      value: u16(b),
    }));
  const first = readCommand("pread COMMAND");
  t.expect(first, { ret: 2, fields: { master: false } });
  const command = Number(first.out?.value ?? 0);
  const writeCommand = (label: string, v: number) =>
    t.pwrite(label, d, new Uint8Array([v & 0xff, v >> 8]), CONFIG + PCI_COMMAND);
  t.expect(writeCommand("pwrite COMMAND | MASTER", command | PCI_COMMAND_MASTER), { ret: 2 });
  t.expect(readCommand("pread COMMAND after set"), { ret: 2, fields: { master: true } });
  t.expect(writeCommand("pwrite COMMAND & ~MASTER", command & ~PCI_COMMAND_MASTER), { ret: 2 });
  t.expect(readCommand("pread COMMAND after clear"), { ret: 2, fields: { master: false } });
  t.expect(t.pread("pread past config space", d, 4, CONFIG + 0x1000n), {});
});

const regions = scenario("device/region-info", { paths: DEVICE_PATHS }, (t) => {
  const d = pathDevice(t);
  const info = (label: string, index: number, argsz = 32) =>
    t.ioctl(label, d, VFIO_DEVICE_GET_REGION_INFO, struct(vfio_region_info, { argsz, index }), {
      out: (a) => {
        const v = decode(vfio_region_info, a);
        return {
          flags: v.flags,
          size: v.size,
          offsetIsIndexShift40: v.offset === BigInt(index) << REGION_SHIFT,
        };
      },
    });
  for (let index = 0; index < VFIO_PCI_NUM_REGIONS; index++) {
    const label = index < 6 ? `BAR${index}` : index === 6 ? "ROM" : index === 7 ? "CONFIG" : "VGA";
    t.expect(info(`GET_REGION_INFO ${label}`, index), {});
  }
  t.expect(info("GET_REGION_INFO index 9", VFIO_PCI_NUM_REGIONS), { errno: "EINVAL" });
  t.expect(info("GET_REGION_INFO argsz 15", 0, 15), { errno: "EINVAL" });
});

const infoReset = scenario("device/info-and-reset", { paths: DEVICE_PATHS }, (t) => {
  const d = pathDevice(t);
  const getInfo = (label: string, argsz: number) =>
    t.ioctl(label, d, VFIO_DEVICE_GET_INFO, struct(vfio_device_info, { argsz }, 32), {
      out: fieldsOf(vfio_device_info, ["argsz", "flags", "num_regions", "num_irqs"]),
    });
  t.expect(getInfo("GET_INFO argsz 16", 16), { ret: 0 });
  t.expect(getInfo("GET_INFO argsz 15", 15), { errno: "EINVAL" });
  t.expect(getInfo("GET_INFO argsz 32", 32), { ret: 0 });
  t.expect(t.ioctl("RESET", d, VFIO_DEVICE_RESET), {});
  t.expect(
    t.ioctl(
      "GET_PCI_HOT_RESET_INFO argsz 12",
      d,
      VFIO_DEVICE_GET_PCI_HOT_RESET_INFO,
      struct(vfio_pci_hot_reset_info, { argsz: 12 }),
      { out: fieldsOf(vfio_pci_hot_reset_info, ["flags", "count"]) },
    ),
    {},
  );
});

/** Every device-fd scenario. */
export const DEVICE_SCENARIOS: readonly ScenarioDef[] = [
  irqInfoScenario,
  reqTrigger,
  msi,
  configSpace,
  regions,
  infoReset,
];
