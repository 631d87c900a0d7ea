/**
 * The VFIO subsystem of the simulated kernel: the vfio-pci driver (probe creates the VFIO device,
 * its group object and its cdev; remove tears them down), and the device nodes under /dev:
 * /dev/vfio/vfio, /dev/vfio/N, /dev/vfio/devices/vfioN, /dev/iommu.
 *
 * @module
 */

import { ERRNO } from "../../ffi/errno.ts";
import type { SimFile, SimProcess } from "../kernel/file.ts";
import { type PciDriver, VFIO_PCI_DRIVER } from "../kernel/pci_bus.ts";
import type { SimIommuGroup, SimPciFunction } from "../kernel/pci_function.ts";
import { dynamicDir, type VfsCharDev, type VfsDir, type VfsNode } from "../kernel/vfs.ts";
import { VfioContainer } from "./container.ts";
import { IrqRouter, VfioPciDevice } from "./device.ts";
import { VfioDeviceFile } from "./device_file.ts";
import type { HotResetPeers } from "./device_ioctl.ts";
import type { VfioEnv } from "./env.ts";
import type { ScheduledEvent } from "../clock.ts";
import { VfioGroup, VfioGroupFile } from "./group.ts";

/** Options of the VFIO subsystem. */
export interface VfioSubsystemOptions {
  /** The environment every VFIO object gets. */
  readonly env: VfioEnv;
  /** The machine's IOMMU groups. */
  readonly groups: readonly SimIommuGroup[];
  /** Per function, where its device model's interrupts go. */
  readonly routers: ReadonlyMap<SimPciFunction, IrqRouter>;
  /** CONFIG_VFIO_DEVICE_CDEV: /dev/vfio/devices/vfioN. */
  readonly cdev: boolean;
  /** Open /dev/iommu (undefined: no iommufd). */
  readonly openIommufd?: (process: SimProcess) => SimFile | number;
  /** Other character devices under /dev, by name (e.g. the proposed /dev/ioasid). */
  readonly otherDevices?: ReadonlyMap<string, (process: SimProcess) => SimFile | number>;
  /** Open /dev/vfio/vfio when iommufd provides it (CONFIG_IOMMUFD_VFIO_CONTAINER). */
  readonly openCompatContainer?: (process: SimProcess) => SimFile | number;
}

/** The VFIO subsystem. */
export class VfioSubsystem {
  readonly #devices = new Map<SimPciFunction, VfioPciDevice>();
  /** Devices being unregistered (surprise removal): still open, no longer reachable. */
  readonly #leaving = new Set<SimPciFunction>();
  readonly #groups = new Map<SimIommuGroup, VfioGroup>();
  readonly #cdevIndexes = new Set<number>();
  /** Hot-reset scope and lookups shared by every device. */
  readonly peers: HotResetPeers;

  /** The subsystem over a machine's groups. */
  constructor(private readonly options: VfioSubsystemOptions) {
    this.peers = {
      resetScope: (fn) => resetScope(options.env.bus.functions, fn),
      device: (fn) => this.#devices.get(fn),
      groupIdOfFile: (process, fd) => {
        const file = process.fget(fd);
        if (file === undefined) return "ebadf";
        return file instanceof VfioGroupFile ? file.group.id : undefined;
      },
    };
    for (const g of options.groups) {
      this.#groups.set(
        g,
        new VfioGroup(g, options.env, () => this.#devicesOf(g), this.peers),
      );
    }
  }

  /** The vfio-pci device of a function, while bound. */
  device(fn: SimPciFunction): VfioPciDevice | undefined {
    return this.#devices.get(fn);
  }

  /** The VFIO group object of an IOMMU group. */
  group(g: SimIommuGroup): VfioGroup {
    return this.#groups.get(g)!;
  }

  #devicesOf(g: SimIommuGroup): VfioPciDevice[] {
    return g.functions.filter((fn) => !this.#leaving.has(fn)).map((fn) => this.#devices.get(fn))
      .filter((d) => d !== undefined);
  }

  /**
   * Surprise removal of a function (pciehp lost its presence): the hardware is gone at once
   * (`removed`), and vfio-pci's remove runs as `vfio_unregister_group_dev` does — the device
   * leaves its group's device list and its cdev disappears (new opens fail: GET_DEVICE_FD
   * ENODEV, the cdev ENOENT), the request eventfd is signalled now and every 10 s while user space
   * keeps a device fd, and once the last one is closed the function leaves the bus and sysfs.
   */
  surpriseRemove(fn: SimPciFunction): void {
    if (fn.removed) return;
    fn.removed = true;
    this.options.env.trace(`pcieport: ${fn.bdf}: Link Down; Card not present`);
    const device = this.#devices.get(fn);
    const bus = this.options.env.bus;
    if (device === undefined) {
      bus.unplug(fn);
      return;
    }
    this.#leaving.add(fn);
    if (fn.cdevIndex !== undefined) this.#cdevIndexes.delete(fn.cdevIndex);
    fn.cdevIndex = undefined; // vfio_device_del: the cdev goes at once
    let relay: ScheduledEvent | undefined;
    const finish = (): void => {
      relay?.cancel();
      device.onLastFile = undefined;
      this.#leaving.delete(fn);
      this.#devices.delete(fn);
      fn.driver = "";
      bus.unplug(fn);
      this.options.env.trace(`vfio-pci ${fn.bdf}: removed`);
    };
    if (device.files === 0) {
      finish();
      return;
    }
    let count = 0;
    const ask = (): void => {
      device.request(count++);
      relay = this.options.env.clock.schedule(REQUEST_RETRY_NS, ask);
    };
    ask();
    device.onLastFile = finish;
  }

  /** The vfio-pci driver (registered on the PCI bus). */
  driver(): PciDriver {
    return {
      name: VFIO_PCI_DRIVER,
      managesDma: true,
      probe: (fn) => this.#probe(fn),
      remove: (fn) => this.#remove(fn),
    };
  }

  #probe(fn: SimPciFunction): number {
    const router = this.options.routers.get(fn);
    if (router === undefined) return -ERRNO.ENODEV;
    this.#devices.set(fn, new VfioPciDevice(fn, this.options.env, router));
    if (this.options.cdev) {
      let n = 0;
      while (this.#cdevIndexes.has(n)) n++;
      this.#cdevIndexes.add(n);
      fn.cdevIndex = n;
    }
    this.options.env.trace(`vfio-pci ${fn.bdf}: bound (group ${fn.group.id})`);
    return 0;
  }

  /**
   * vfio-pci remove. Linux blocks the unbinding writer, signalling the device-request eventfd,
   * until user space closes the device; the simulator signals it and answers EBUSY instead.
   */
  #remove(fn: SimPciFunction): number {
    const device = this.#devices.get(fn);
    if (device === undefined) return 0;
    if (device.openCount > 0) {
      device.irqs.reqTrigger?.signal();
      return -ERRNO.EBUSY;
    }
    this.#devices.delete(fn);
    if (fn.cdevIndex !== undefined) this.#cdevIndexes.delete(fn.cdevIndex);
    fn.cdevIndex = undefined;
    this.options.env.trace(`vfio-pci ${fn.bdf}: unbound`);
    return 0;
  }

  /** The /dev tree: vfio/{vfio, N, devices/vfioN} and iommu. */
  devDir(): VfsDir {
    const container: VfsCharDev = {
      kind: "chardev",
      open: (process) =>
        this.options.openCompatContainer
          ? this.options.openCompatContainer(process)
          : new VfioContainer(this.options.env),
    };
    const cdevs = dynamicDir(() => {
      const map = new Map<string, VfsNode>();
      for (const [fn, device] of this.#devices) {
        if (fn.cdevIndex === undefined) continue;
        const vgroup = this.group(fn.group);
        map.set(`vfio${fn.cdevIndex}`, {
          kind: "chardev",
          open: () => new VfioDeviceFile(device, vgroup, undefined, this.peers),
        });
      }
      return map;
    });
    const vfio = dynamicDir(() => {
      const map = new Map<string, VfsNode>([["vfio", container]]);
      for (const [g, vgroup] of this.#groups) {
        if (this.#devicesOf(g).length === 0) continue;
        map.set(String(g.id), { kind: "chardev", open: () => vgroup.open() });
      }
      if (this.options.cdev && this.#devices.size > 0) map.set("devices", cdevs);
      return map;
    });
    return dynamicDir(() => {
      const map = new Map<string, VfsNode>([["vfio", vfio]]);
      const openIommufd = this.options.openIommufd;
      if (openIommufd) map.set("iommu", { kind: "chardev", open: (p) => openIommufd(p) });
      for (const [name, open] of this.options.otherDevices ?? []) {
        map.set(name, { kind: "chardev", open: (p) => open(p) });
      }
      return map;
    });
  }
}

/** `vfio_unregister_group_dev` asks user space for the device again every 10 s (HZ * 10). */
const REQUEST_RETRY_NS = 10_000_000_000;

/**
 * The functions a hot reset of `fn` resets: everything on its bus when the bus sits behind a
 * bridge (bus ≠ 0); a function on the root bus has no slot or bus reset (ENODEV).
 */
function resetScope(
  all: readonly SimPciFunction[],
  fn: SimPciFunction,
): SimPciFunction[] | undefined {
  const busOf = (f: SimPciFunction): string => f.bdf.slice(0, 7);
  if (parseInt(fn.bdf.slice(5, 7), 16) === 0) return undefined;
  return all.filter((f) => busOf(f) === busOf(fn));
}
