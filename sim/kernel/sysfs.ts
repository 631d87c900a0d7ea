/**
 * /sys for the simulated machine: what deno_vfio's discovery and the bind helper read and write.
 *
 * - /sys/bus/pci/devices/<bdf> → ../../../devices/pci<dddd:bb>/<bdf> with vendor, device,
 *   subsystem_vendor, subsystem_device, class, revision, driver (link, absent when unbound),
 *   driver_override, iommu_group (link), vfio-dev/vfioN/dev (while bound to vfio-pci with cdev);
 * - /sys/bus/pci/drivers/<name>/{bind,unbind,<bdf> links}, /sys/bus/pci/drivers_probe;
 * - /sys/kernel/iommu_groups/N/{devices/<bdf>, reserved_regions, type};
 * - /sys/class/vfio-dev/vfioN;
 * - /sys/bus/iommufd_mock/{devices,drivers} (empty) on a kernel with CONFIG_IOMMUFD_TEST;
 * - /sys/kernel/mm/transparent_hugepage/hpage_pmd_size on a kernel with transparent huge pages.
 *
 * Every function sits directly under its root bus here (no bridges), so the canonical device path
 * is `/sys/devices/pci0000:00/<bdf>`.
 *
 * @module
 */

import { ERRNO } from "../../ffi/errno.ts";
import type { PciBus } from "./pci_bus.ts";
import type { SimIommuGroup, SimPciFunction } from "./pci_function.ts";
import { reservedRegionsText } from "./iommu_group.ts";
import {
  dynamicDir,
  roFile,
  rwFile,
  staticDir,
  symlink,
  type VfsDir,
  type VfsNode,
  woFile,
} from "./vfs.ts";

/** Config-space offsets of the identification registers (PCI 3.0 §6.2.1). */
const CFG = {
  vendor: 0x00,
  device: 0x02,
  revisionClass: 0x08,
  subsystemVendor: 0x2c,
  subsystemDevice: 0x2e,
} as const;
/** Longest text a sysfs store accepts (`PATH_MAX` for driver_override). */
const SYSFS_STORE_MAX = 4096;

/** What the sysfs tree is built from. */
export interface SysfsSource {
  /** The PCI bus (functions, drivers, overrides). */
  readonly bus: PciBus;
  /** The IOMMU groups. */
  readonly groups: readonly SimIommuGroup[];
  /** /sys/kernel/iommu_groups/N/type, e.g. "DMA-FQ". */
  readonly defaultDomainType: string;
  /** Major number of the vfio cdevs (vfio-dev/vfioN/dev). */
  readonly cdevMajor: number;
  /**
   * CONFIG_IOMMUFD_TEST: the selftest's `iommufd_mock` bus is registered (with no device until a
   * test creates a mock one), so /sys/bus/iommufd_mock exists.
   */
  readonly iommufdMockBus?: boolean;
  /** HPAGE_PMD_SIZE with CONFIG_TRANSPARENT_HUGEPAGE (/sys/kernel/mm/transparent_hugepage). */
  readonly hugePmdSize?: number;
}

/** The root-bus directory name of a function, "pci0000:00". */
export function pciRootName(bdf: string): string {
  return `pci${bdf.slice(0, 7)}`;
}

/** The canonical sysfs path of a function's device directory. */
export function deviceSysfsPath(bdf: string): string {
  return `/sys/devices/${pciRootName(bdf)}/${bdf}`;
}

const hex = (value: number, digits: number): string =>
  `0x${value.toString(16).padStart(digits, "0")}\n`;

function withDriverNameCheck(store: (fn: SimPciFunction) => number, bus: PciBus) {
  return (text: string): number => {
    const fn = bus.find(text);
    if (fn === undefined) return -ERRNO.ENODEV;
    const r = store(fn);
    return r < 0 ? r : text.length;
  };
}

function deviceDir(src: SysfsSource, fn: SimPciFunction): VfsDir {
  const cfg = fn.model.config;
  const entries: Record<string, VfsNode> = {
    vendor: roFile(() => hex(cfg.read(CFG.vendor, 2), 4)),
    device: roFile(() => hex(cfg.read(CFG.device, 2), 4)),
    subsystem_vendor: roFile(() => hex(cfg.read(CFG.subsystemVendor, 2), 4)),
    subsystem_device: roFile(() => hex(cfg.read(CFG.subsystemDevice, 2), 4)),
    class: roFile(() => hex(cfg.read(CFG.revisionClass, 4) >>> 8, 6)),
    revision: roFile(() => hex(cfg.read(CFG.revisionClass, 1), 2)),
    driver_override: rwFile(
      () => `${src.bus.override(fn) ?? "(null)"}\n`,
      (text) => {
        if (text.length > SYSFS_STORE_MAX) return -ERRNO.EINVAL;
        src.bus.setOverride(fn, text);
        return text.length;
      },
    ),
    iommu_group: symlink(() => `../../../kernel/iommu_groups/${fn.group.id}`),
  };
  const fixed = new Map(Object.entries(entries));
  return dynamicDir(() => {
    const map = new Map(fixed);
    if (fn.driver !== "") map.set("driver", symlink(() => `../../../bus/pci/drivers/${fn.driver}`));
    if (fn.cdevIndex !== undefined) {
      const name = `vfio${fn.cdevIndex}`;
      const major = src.cdevMajor;
      const index = fn.cdevIndex;
      map.set(
        "vfio-dev",
        staticDir({ [name]: staticDir({ dev: roFile(() => `${major}:${index}\n`) }) }),
      );
    }
    return map;
  });
}

function driverDir(src: SysfsSource, name: string): VfsDir {
  const bus = src.bus;
  const fixed: Record<string, VfsNode> = {
    bind: woFile(withDriverNameCheck((fn) => {
      if (!bus.matches(fn, name)) return -ERRNO.ENODEV;
      return bus.attach(fn, name);
    }, bus)),
    unbind: woFile(withDriverNameCheck((fn) => {
      if (fn.driver !== name) return -ERRNO.ENODEV;
      return bus.release(fn);
    }, bus)),
  };
  return dynamicDir(() => {
    const map = new Map(Object.entries(fixed));
    for (const fn of bus.functions) {
      if (fn.driver === name) {
        map.set(fn.bdf, symlink(() => `../../../../devices/${pciRootName(fn.bdf)}/${fn.bdf}`));
      }
    }
    return map;
  });
}

function groupDir(src: SysfsSource, group: SimIommuGroup): VfsDir {
  const devices = new Map<string, VfsNode>(
    group.functions.map((fn) => [
      fn.bdf,
      symlink(() => `../../../../devices/${pciRootName(fn.bdf)}/${fn.bdf}`),
    ]),
  );
  const present = (): Map<string, VfsNode> =>
    new Map([...devices].filter(([bdf]) => src.bus.find(bdf) !== undefined));
  return staticDir({
    devices: dynamicDir(present),
    reserved_regions: roFile(() => reservedRegionsText(group)),
    type: roFile(() => `${src.defaultDomainType}\n`),
  });
}

/** Build /sys from the machine's bus and groups. */
export function buildSysfs(src: SysfsSource): VfsDir {
  const bus = src.bus;
  const dirs = new Map(bus.functions.map((fn) => [fn, deviceDir(src, fn)]));
  const devicesDir = dynamicDir(() => {
    const roots = new Map<string, Map<string, VfsNode>>();
    for (const fn of bus.functions) {
      const root = pciRootName(fn.bdf);
      if (!roots.has(root)) roots.set(root, new Map());
      roots.get(root)!.set(fn.bdf, dirs.get(fn)!);
    }
    return new Map([...roots].map(([root, fns]) => [root, dynamicDir(() => fns)]));
  });
  const busDevices = dynamicDir(() =>
    new Map(bus.functions.map((fn) => [
      fn.bdf,
      symlink(() => `../../../devices/${pciRootName(fn.bdf)}/${fn.bdf}`),
    ]))
  );
  const drivers = dynamicDir(() => new Map(bus.driverNames().map((n) => [n, driverDir(src, n)])));
  const groupDirs = new Map(src.groups.map((g) => [g, groupDir(src, g)]));
  // A group whose last device left the bus is released (iommu_group_release) and goes too.
  const groups = dynamicDir(() =>
    new Map(
      [...groupDirs].filter(([g]) => g.functions.some((fn) => bus.find(fn.bdf) !== undefined))
        .map(([g, dir]) => [String(g.id), dir]),
    )
  );
  const vfioDevClass = dynamicDir(() => {
    const map = new Map<string, VfsNode>();
    for (const fn of bus.functions) {
      if (fn.cdevIndex === undefined) continue;
      const name = `vfio${fn.cdevIndex}`;
      map.set(
        name,
        symlink(() => `../../devices/${pciRootName(fn.bdf)}/${fn.bdf}/vfio-dev/${name}`),
      );
    }
    return map;
  });
  const buses: Record<string, VfsNode> = {
    pci: staticDir({
      devices: busDevices,
      drivers,
      drivers_probe: woFile(withDriverNameCheck((fn) => bus.probe(fn), bus)),
    }),
  };
  if (src.iommufdMockBus) {
    buses.iommufd_mock = staticDir({ devices: staticDir({}), drivers: staticDir({}) });
  }
  return staticDir({
    bus: staticDir(buses),
    devices: devicesDir,
    kernel: staticDir({
      iommu_groups: groups,
      ...(src.hugePmdSize === undefined ? {} : {
        mm: staticDir({
          transparent_hugepage: staticDir({
            hpage_pmd_size: roFile(() => `${src.hugePmdSize}\n`),
          }),
        }),
      }),
    }),
    class: staticDir({ "vfio-dev": vfioDevClass }),
  });
}
