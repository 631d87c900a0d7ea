/**
 * The PCI bus as the driver core sees it: which driver each function is bound to, driver_override,
 * and the bind/unbind/probe rules behind /sys/bus/pci (drivers/base/bus.c, dd.c, pci-driver.c).
 *
 * Drivers are data: a name, whether the driver manages DMA itself (vfio-pci: `driver_managed_dma`,
 * so binding it does not touch the group's DMA ownership), and optional probe/remove hooks (the
 * VFIO subsystem registers the vfio-pci hooks to create and remove its device).
 *
 * @module
 */

import { ERRNO } from "../../ffi/errno.ts";
import type { SimPciFunction } from "./pci_function.ts";

/** The VFIO PCI driver's name. */
export const VFIO_PCI_DRIVER = "vfio-pci";

/** A PCI driver the simulated kernel knows. */
export interface PciDriver {
  /** Driver name (/sys/bus/pci/drivers/<name>). */
  readonly name: string;
  /** The driver manages DMA itself (vfio-pci); others use the kernel's default domain. */
  readonly managesDma: boolean;
  /** Probe hook: 0 to accept the function, or -errno. */
  probe?(fn: SimPciFunction): number;
  /** Remove hook: 0 when the function is released, or -errno when it cannot be now. */
  remove?(fn: SimPciFunction): number;
}

/** The bus: functions, drivers, overrides. */
export class PciBus {
  readonly #functions: SimPciFunction[];
  readonly #drivers = new Map<string, PciDriver>();
  readonly #override = new Map<string, string>();
  readonly #native = new Map<string, string>();

  /** A bus with these functions; `native` names the driver whose id table matches each bdf. */
  constructor(functions: readonly SimPciFunction[], native: ReadonlyMap<string, string>) {
    this.#functions = [...functions];
    for (const [bdf, driver] of native) this.#native.set(bdf, driver);
  }

  /** The functions present on the bus, in bdf order. */
  get functions(): readonly SimPciFunction[] {
    return this.#functions;
  }

  /** `pci_stop_and_remove_bus_device` after a surprise removal: the function leaves the bus. */
  unplug(fn: SimPciFunction): void {
    const i = this.#functions.indexOf(fn);
    if (i >= 0) this.#functions.splice(i, 1);
  }

  /** Register a driver (its /sys/bus/pci/drivers directory appears). */
  registerDriver(driver: PciDriver): void {
    this.#drivers.set(driver.name, driver);
  }

  /** Registered driver names. */
  driverNames(): string[] {
    return [...this.#drivers.keys()];
  }

  /** A registered driver. */
  driver(name: string): PciDriver | undefined {
    return this.#drivers.get(name);
  }

  /** The function with this name (trailing newline tolerated, as `sysfs_streq`). */
  find(name: string): SimPciFunction | undefined {
    const wanted = name.endsWith("\n") ? name.slice(0, -1) : name;
    return this.functions.find((f) => f.bdf === wanted);
  }

  /** driver_override of a function, or undefined. */
  override(fn: SimPciFunction): string | undefined {
    return this.#override.get(fn.bdf);
  }

  /** Store driver_override: text up to the first newline; empty clears it. */
  setOverride(fn: SimPciFunction, text: string): void {
    const nl = text.indexOf("\n");
    const value = nl >= 0 ? text.slice(0, nl) : text;
    if (value === "") this.#override.delete(fn.bdf);
    else this.#override.set(fn.bdf, value);
  }

  /** Whether `driver` matches a function (`driver_override` wins over the id table). */
  matches(fn: SimPciFunction, driver: string): boolean {
    const forced = this.#override.get(fn.bdf);
    return forced !== undefined ? forced === driver : this.#native.get(fn.bdf) === driver;
  }

  /** Kernel (non-DMA-managing) drivers bound in a function's group. */
  kernelDriversInGroup(fn: SimPciFunction): number {
    return fn.group.functions.filter((f) => f.driver !== "" && !this.#managesDma(f.driver)).length;
  }

  #managesDma(name: string): boolean {
    return this.#drivers.get(name)?.managesDma ?? false;
  }

  /**
   * Attach a driver (`device_driver_attach`): EBUSY if bound, EBUSY for a kernel driver while user
   * space owns the group's DMA (`iommu_device_use_default_domain`), else the probe hook's answer.
   */
  attach(fn: SimPciFunction, name: string): number {
    const driver = this.#drivers.get(name);
    if (driver === undefined) return -ERRNO.ENODEV;
    if (fn.driver !== "") return -ERRNO.EBUSY;
    if (!driver.managesDma && fn.group.dmaOwner !== undefined) return -ERRNO.EBUSY;
    const r = driver.probe?.(fn) ?? 0;
    if (r < 0) return r;
    fn.driver = name;
    return 0;
  }

  /** Release the driver (`device_release_driver`); the remove hook may refuse (see VFIO). */
  release(fn: SimPciFunction): number {
    if (fn.driver === "") return 0;
    const r = this.#drivers.get(fn.driver)?.remove?.(fn) ?? 0;
    if (r < 0) return r;
    fn.driver = "";
    return 0;
  }

  /** drivers_probe: bind the matching driver if the function is unbound (no match is not an error). */
  probe(fn: SimPciFunction): number {
    if (fn.driver !== "") return 0;
    const name = this.#override.get(fn.bdf) ?? this.#native.get(fn.bdf);
    if (name === undefined || !this.#drivers.has(name)) return 0;
    this.attach(fn, name);
    return 0;
  }
}
