/**
 * openPciDevice against a scripted kernel with a sysfs tree and /dev nodes: backend choice,
 * actionable errors for unusable devices (bound to another driver, group not viable), shared
 * DMA spaces, and cleanup — every fd opened is closed again, on success and on every error path.
 */

import assert from "node:assert/strict";
import { ERRNO } from "../../ffi/errno.ts";
import { DmaSpace } from "../../core/dma_space.ts";
import { openPciDevice } from "../../core/pci_device.ts";
import { DeviceKernel, GET_REGION_INFO, SET_IRQS } from "./device_stub.ts";
import { adoptFd, expectVfioError, io, put } from "./vfio_test_helpers.ts";

// vfio.md §2 and iommufd.md: container, group and iommufd ioctls the backends issue.
const GET_API_VERSION = io(0x64);
const CHECK_EXTENSION = io(0x65);
const SET_IOMMU = io(0x66);
const GROUP_GET_STATUS = io(0x67);
const GROUP_SET_CONTAINER = io(0x68);
const GROUP_UNSET_CONTAINER = io(0x69);
const GROUP_GET_DEVICE_FD = io(0x6a);
const IOMMU_GET_INFO = io(0x70);
const BIND_IOMMUFD = io(0x76);
const ATTACH_IOMMUFD_PT = io(0x77);
const DETACH_IOMMUFD_PT = io(0x78);
const IOMMU_DESTROY = io(0x80);
const IOMMU_IOAS_ALLOC = io(0x81);
const TYPE1V2_IOMMU = 3n;
const SPAPR_TCE_V2_IOMMU = 7n;

const BDF = "0000:00:02.0";
const OTHER = "0000:00:02.1";
const GROUP = 7;
const DEVICE_FD = 90;

interface MachineOptions {
  driver?: string;
  groupMembers?: { bdf: string; driver?: string }[];
  iommufd?: boolean;
  viable?: boolean;
  spapr?: boolean;
}

/** A host with one device at 00:02.0 in IOMMU group 7, its sysfs tree and /dev nodes. */
function machine(options: MachineOptions = {}): DeviceKernel {
  const k = new DeviceKernel();
  k.openFds.clear(); // the device fd is handed out by the backend here
  const devices = [
    { bdf: BDF, driver: options.driver ?? "vfio-pci" },
    ...(options.groupMembers ?? []),
  ];
  for (const d of devices) {
    const dir = `/sys/bus/pci/devices/${d.bdf}`;
    k.files.set(`${dir}/vendor`, "0x1234\n");
    k.files.set(`${dir}/device`, "0x11e8\n");
    k.files.set(`${dir}/class`, "0x00ff00\n");
    k.files.set(`${dir}/driver_override`, "(null)\n");
    k.links.set(`${dir}/iommu_group`, `../../../../kernel/iommu_groups/${GROUP}`);
    if (d.driver) k.links.set(`${dir}/driver`, `../../../../bus/pci/drivers/${d.driver}`);
    k.dirs.set(dir, ["class", "device", "driver", "driver_override", "iommu_group", "vendor"]);
  }
  k.dirs.set("/sys/bus/pci/devices", devices.map((d) => d.bdf));
  k.dirs.set(`/sys/kernel/iommu_groups/${GROUP}/devices`, devices.map((d) => d.bdf));
  for (const d of devices) {
    const link = `/sys/kernel/iommu_groups/${GROUP}/devices/${d.bdf}/driver`;
    if (d.driver) k.links.set(link, `../../../../bus/pci/drivers/${d.driver}`);
  }
  k.files.set(
    `/sys/kernel/iommu_groups/${GROUP}/reserved_regions`,
    "0x00000000fee00000 0x00000000feefffff msi\n",
  );
  k.files.set(`/sys/kernel/iommu_groups/${GROUP}/type`, "DMA-FQ\n");
  k.dirs.set("/sys/kernel/iommu_groups", [String(GROUP)]);
  k.files.set("/dev/vfio/vfio", "");
  k.files.set(`/dev/vfio/${GROUP}`, "");
  const devVfio = ["vfio", String(GROUP)];
  const dev = ["vfio"];
  if (options.iommufd) {
    const vfioDev = `/sys/bus/pci/devices/${BDF}/vfio-dev`;
    k.dirs.set(vfioDev, ["vfio0"]);
    k.files.set(`${vfioDev}/vfio0/dev`, "511:0\n");
    k.files.set("/dev/iommu", "");
    k.files.set("/dev/vfio/devices/vfio0", "");
    k.dirs.set("/dev/vfio/devices", ["vfio0"]);
    devVfio.push("devices");
    dev.push("iommu");
  }
  k.dirs.set("/dev/vfio", devVfio);
  k.dirs.set("/dev", dev);
  k.onIoctl((c) => {
    switch (c.request) {
      case GET_API_VERSION:
        return 0;
      case CHECK_EXTENSION:
        if (c.value === SPAPR_TCE_V2_IOMMU || c.value === 2n) return options.spapr ? 1 : 0;
        return c.value === TYPE1V2_IOMMU ? 1 : 0;
      case GROUP_GET_STATUS:
        put(c.arg!, [[4, 4, options.viable === false ? 0 : 1]]);
        return 0;
      case GROUP_SET_CONTAINER:
      case GROUP_UNSET_CONTAINER:
      case SET_IOMMU:
        return 0;
      case IOMMU_GET_INFO:
        put(c.arg!, [[4, 4, 1], [8, 8, 0x1000n], [16, 4, 0]]);
        return 0;
      case GROUP_GET_DEVICE_FD:
        return adoptFd(k, DEVICE_FD, "vfio-device");
      case IOMMU_IOAS_ALLOC:
        put(c.arg!, [[8, 4, 2]]);
        return 0;
      case BIND_IOMMUFD:
        put(c.arg!, [[12, 4, 3]]);
        return 0;
      case ATTACH_IOMMUFD_PT:
        put(c.arg!, [[8, 4, 4]]);
        return 0;
      case DETACH_IOMMUFD_PT:
      case IOMMU_DESTROY:
        return 0;
    }
    return undefined;
  });
  return k;
}

function opened(k: DeviceKernel): string[] {
  return [...k.openFds.values()];
}

Deno.test("auto without /dev/iommu: type1, device info, BARs; close closes every fd", () => {
  const k = machine();
  k.regions.set(0, { flags: 0x7, size: 0x10_0000n, offset: 0n });
  const dev = openPciDevice(BDF, { kernel: k, iommu: "auto" });
  assert.equal(dev.bdf, BDF);
  assert.equal(dev.kernel, k);
  assert.deepEqual(dev.info, {
    vendor: 0x1234,
    device: 0x11e8,
    driver: "vfio-pci",
    group: GROUP,
    cdev: undefined,
    backend: "type1",
  });
  assert.equal(dev.dma.kind, "type1");
  assert.equal(dev.device.fd, DEVICE_FD);
  assert.equal(dev.bar(0), dev.bar(0));
  expectVfioError(() => dev.bar(6), "BAR 6 does not exist");
  dev.irqs.enableMsi(1);
  assert.deepEqual(opened(k).sort(), [
    "/dev/vfio/7",
    "/dev/vfio/vfio",
    "anon_inode:[eventfd]",
    "vfio-device",
  ]);
  dev.close();
  assert.deepEqual(opened(k), []);
  assert.equal(k.unmapped.length, 1);
  assert.equal(k.callsOf("ioctl").filter((c) => c.request === SET_IRQS).length, 2);
  dev.close(); // idempotent
});

Deno.test("auto with /dev/iommu and the device's cdev: iommufd", () => {
  const k = machine({ iommufd: true });
  {
    using dev = openPciDevice(BDF, { kernel: k });
    assert.equal(dev.info.backend, "iommufd");
    assert.equal(dev.info.cdev, "/dev/vfio/devices/vfio0");
    assert.deepEqual(opened(k).sort(), ["/dev/iommu", "/dev/vfio/devices/vfio0"]);
  }
  assert.deepEqual(opened(k), []);
  using forced = openPciDevice(BDF, { kernel: k, iommu: "type1" });
  assert.equal(forced.info.backend, "type1");
});

Deno.test("auto on a container that reports the sPAPR extension: spapr", () => {
  const k = machine({ spapr: true });
  const dev = openPciDevice(BDF, { kernel: k });
  assert.equal(dev.info.backend, "spapr");
  dev.close();
  const extensions = k.callsOf("ioctl").filter((c) => c.request === CHECK_EXTENSION);
  assert.equal(extensions[0].value, SPAPR_TCE_V2_IOMMU);
  assert.ok(!extensions.some((c) => c.value === TYPE1V2_IOMMU), "type1 was never considered");
  assert.deepEqual(opened(k), []);
});

Deno.test("bound to ixgbe: the error names the driver and how to rebind; nothing is opened", () => {
  const k = machine({ driver: "ixgbe" });
  const e = expectVfioError(
    () => openPciDevice(BDF, { kernel: k }),
    `${BDF} is bound to ixgbe, not vfio-pci`,
    `echo vfio-pci > /sys/bus/pci/devices/${BDF}/driver_override`,
    `echo ${BDF} > /sys/bus/pci/drivers_probe`,
  );
  assert.equal(e.device, BDF);
  assert.equal(k.callsOf("open").length, 0);
  assert.deepEqual(opened(k), []);
});

Deno.test("group not viable: the error names the other device of the group", () => {
  const k = machine({ groupMembers: [{ bdf: OTHER, driver: "e1000e" }] });
  expectVfioError(
    () => openPciDevice(BDF, { kernel: k }),
    `IOMMU group ${GROUP} is not viable: ${OTHER} (bound to e1000e)`,
  );
  assert.deepEqual(opened(k), []);
});

Deno.test("a failure after the device fd is open closes the device and the space it created", () => {
  const k = machine();
  k.fail.set(GET_REGION_INFO, -ERRNO.EIO);
  expectVfioError(() => openPciDevice(BDF, { kernel: k }), "VFIO_DEVICE_GET_REGION_INFO", "EIO");
  assert.deepEqual(opened(k), []);
  assert.ok(k.callsOf("close").some((c) => c.fd === DEVICE_FD), "the device fd was closed");
});

Deno.test("a failure with a shared space leaves the space open; closing a device keeps it", () => {
  const k = machine();
  const space = DmaSpace.open(k, "type1");
  k.fail.set(GROUP_GET_DEVICE_FD, -ERRNO.EBUSY);
  expectVfioError(() => openPciDevice(BDF, { kernel: k, dma: space }), "EBUSY");
  assert.deepEqual(opened(k), ["/dev/vfio/vfio"]);
  k.fail.delete(GROUP_GET_DEVICE_FD);
  const dev = openPciDevice(BDF, { kernel: k, dma: space });
  assert.equal(dev.dma, space);
  expectVfioError(
    () => openPciDevice(BDF, { kernel: k, dma: space, iommu: "iommufd" }),
    'iommu "iommufd" asked for, but the DMA space given is type1',
  );
  dev.close();
  assert.deepEqual(opened(k), ["/dev/vfio/vfio"], "the shared space stays open");
  space.close();
  assert.deepEqual(opened(k), []);
});

Deno.test("no /dev/vfio: says to load vfio-pci; a short address is accepted", () => {
  const k = machine();
  k.dirs.delete("/dev/vfio");
  expectVfioError(
    () => openPciDevice("00:02.0", { kernel: k }),
    "/dev/vfio does not exist",
    "modprobe vfio-pci",
  );
  assert.deepEqual(opened(k), []);
  k.dirs.set("/dev/vfio", ["7", "vfio"]);
  using dev = openPciDevice("00:02.0", { kernel: k });
  assert.equal(dev.bdf, BDF);
});

Deno.test("iommufd asked for without a cdev: an error naming the missing cdev, nothing left open", () => {
  const k = machine();
  expectVfioError(
    () => openPciDevice(BDF, { kernel: k, iommu: "iommufd" }),
    "the device has no VFIO cdev",
  );
  assert.deepEqual(opened(k), []);
});
