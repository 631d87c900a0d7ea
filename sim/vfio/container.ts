/**
 * The VFIO container (`/dev/vfio/vfio`, drivers/vfio/container.c; vfio.md §3, §5): API version,
 * CHECK_EXTENSION, SET_IOMMU, and every other ioctl passed to the IOMMU driver once one is set
 * (EINVAL before). The IOMMU drivers are those the machine registered (`env.iommuDrivers`): type1
 * on x86 and arm64, sPAPR TCE on POWER; CONFIG_VFIO_NOIOMMU is unset as in Debian's kernels.
 *
 * @module
 */

import { ERRNO } from "../../ffi/errno.ts";
import type { SimFile, SimProcess } from "../kernel/file.ts";
import type { SimIommuGroup } from "../kernel/pci_function.ts";
import { ioctlTable, type VfioEnv, type VfioIommuDriver } from "./env.ts";
import {
  VFIO_API_VERSION,
  VFIO_CHECK_EXTENSION,
  VFIO_GET_API_VERSION,
  VFIO_SET_IOMMU,
} from "../../ffi/uapi/mod.ts";

/** A value-argument as the kernel sees it (a buffer passed by pointer is some large address). */
function argValue(arg: Uint8Array | bigint): bigint {
  return typeof arg === "bigint" ? arg : -1n;
}

type ContainerHandler = (process: SimProcess, arg: Uint8Array | bigint) => number;

/** An open VFIO container. */
export class VfioContainer implements SimFile {
  /** fd type tag. */
  readonly kind = "vfio-container";
  /** The groups attached, in attach order. */
  readonly groups: SimIommuGroup[] = [];
  /** The IOMMU driver instance once SET_IOMMU succeeded. */
  driver: VfioIommuDriver | undefined;
  readonly #base: Map<number, ContainerHandler>;

  /** A fresh container. */
  constructor(private readonly env: VfioEnv) {
    this.#base = ioctlTable<ContainerHandler>(env.arch, [
      [VFIO_GET_API_VERSION, () => VFIO_API_VERSION],
      [VFIO_CHECK_EXTENSION, (_p, arg) => this.checkExtension(argValue(arg))],
      [VFIO_SET_IOMMU, (_p, arg) => this.#setIommu(argValue(arg))],
    ]);
  }

  /** VFIO_CHECK_EXTENSION: the chosen driver's answer, or the first positive registered one. */
  checkExtension(ext: bigint): number {
    if (this.driver) return this.driver.checkExtension(ext);
    let ret = 0;
    for (const spec of this.env.iommuDrivers) {
      ret = spec.checkExtension(ext);
      if (ret > 0) break;
    }
    return ret;
  }

  /**
   * `vfio_ioctl_set_iommu`: each registered driver that reports the type is opened and given
   * every group; the first that takes them all wins; otherwise the last error (ENODEV if none).
   */
  #setIommu(type: bigint): number {
    if (this.groups.length === 0 || this.driver !== undefined) return -ERRNO.EINVAL;
    let ret = -ERRNO.ENODEV;
    for (const spec of this.env.iommuDrivers) {
      if (spec.checkExtension(type) <= 0) continue;
      const driver = spec.open(type, this.env);
      if (typeof driver === "number") {
        ret = driver;
        continue;
      }
      ret = this.#attachAll(driver);
      if (ret < 0) {
        driver.release();
        continue;
      }
      this.driver = driver;
      return 0;
    }
    return ret;
  }

  /** `__vfio_container_attach_groups`: all groups or none. */
  #attachAll(driver: VfioIommuDriver): number {
    for (let i = 0; i < this.groups.length; i++) {
      const r = driver.attachGroup(this.groups[i]);
      if (r < 0) {
        for (let j = 0; j < i; j++) driver.detachGroup(this.groups[j]);
        return r;
      }
    }
    return 0;
  }

  /** read(2): a char device without a read op (EINVAL). */
  read(): number {
    return -ERRNO.EINVAL;
  }

  /** write(2): EINVAL. */
  write(): number {
    return -ERRNO.EINVAL;
  }

  /** pread(2): EINVAL (opened by path, so positioned I/O is allowed but there is no read op). */
  pread(): number {
    return -ERRNO.EINVAL;
  }

  /** pwrite(2): EINVAL. */
  pwrite(): number {
    return -ERRNO.EINVAL;
  }

  /** ioctl on the container fd. */
  ioctl(process: SimProcess, request: number, arg: Uint8Array | bigint): number {
    const base = this.#base.get(request);
    if (base) return base(process, arg);
    const driver = this.driver;
    if (driver === undefined) return -ERRNO.EINVAL;
    return driver.ioctl(process, request, arg) ?? -ERRNO.ENOTTY;
  }

  /**
   * `vfio_container_attach_group` after DMA ownership was claimed: attach to the IOMMU driver if
   * one is set; 0 or its -errno.
   */
  attachGroup(group: SimIommuGroup): number {
    if (this.driver) {
      const r = this.driver.attachGroup(group);
      if (r < 0) return r;
    }
    this.groups.push(group);
    return 0;
  }

  /** `vfio_container_detach_group`: the last group out releases the IOMMU driver. */
  detachGroup(group: SimIommuGroup): void {
    const i = this.groups.indexOf(group);
    if (i < 0) return;
    this.driver?.detachGroup(group);
    this.groups.splice(i, 1);
    if (this.groups.length === 0 && this.driver) {
      this.driver.release();
      this.driver = undefined;
    }
  }

  /** Whether the IOMMU driver is set (GET_DEVICE_FD needs it). */
  get iommuSet(): boolean {
    return this.driver !== undefined;
  }
}
