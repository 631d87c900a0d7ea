/**
 * VFIO groups (`/dev/vfio/N`, drivers/vfio/group.c; vfio.md §6): one kernel object per IOMMU group
 * that has a function bound to vfio-pci, and the single open file it allows. GET_STATUS,
 * SET_CONTAINER (a VFIO container, or an iommufd → compat IOAS), UNSET_CONTAINER, GET_DEVICE_FD.
 *
 * @module
 */

import { ERRNO } from "../../ffi/errno.ts";
import { offsetOfEnd } from "../../ffi/uapi/layout.ts";
import type { SimFile, SimProcess } from "../kernel/file.ts";
import type { SimIommuGroup } from "../kernel/pci_function.ts";
import { copyIn, readStruct, userBytes, writeStruct } from "../kernel/user.ts";
import { VfioContainer } from "./container.ts";
import type { VfioPciDevice } from "./device.ts";
import type { HotResetPeers } from "./device_ioctl.ts";
import { type DeviceFileGroup, VfioDeviceFile } from "./device_file.ts";
import { ioctlTable, type VfioEnv } from "./env.ts";
import { asIommufd, type IommufdFile } from "./iommufd_link.ts";
import {
  VFIO_GROUP_FLAGS_CONTAINER_SET,
  VFIO_GROUP_FLAGS_VIABLE,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_GET_STATUS,
  VFIO_GROUP_SET_CONTAINER,
  vfio_group_status,
  VFIO_GROUP_UNSET_CONTAINER,
} from "../../ffi/uapi/mod.ts";

/** Longest device name GET_DEVICE_FD copies (`strndup_user(arg, PAGE_SIZE)`). */
const DEVICE_NAME_MAX = 4096;
/** Bytes of the container fd SET_CONTAINER reads (`get_user(fd, (int __user *)arg)`). */
const FD_ARG_SIZE = 4;

/**
 * Errno of claiming a group's DMA ownership while a kernel driver uses it
 * (`iommu_group_claim_dma_owner`: `owner_cnt != 0` → EPERM). vfio.md §6 says EBUSY; the 6.x
 * iommu core returns EPERM for this case (EBUSY is for a group attached to a non-default domain).
 */
export const CLAIM_DMA_OWNER_BUSY = ERRNO.EPERM;

/** The kernel's `struct vfio_group`. */
export class VfioGroup implements DeviceFileGroup {
  /** The open group file, if any (only one is allowed). */
  openedFile: VfioGroupFile | undefined;
  /** The container set with SET_CONTAINER. */
  container: VfioContainer | undefined;
  /** The iommufd set with SET_CONTAINER (compat path). */
  iommufd: IommufdFile | undefined;
  /** `container_users`: 1 for the group, +1 per device in use. */
  containerUsers = 0;
  /** Devices of the group bound through their cdev (`cdev_device_open_cnt`). */
  cdevDeviceOpenCount = 0;

  /** The VFIO group of an IOMMU group; `devices()` lists its functions bound to vfio-pci. */
  constructor(
    readonly iommuGroup: SimIommuGroup,
    readonly env: VfioEnv,
    readonly devices: () => VfioPciDevice[],
    readonly peers: HotResetPeers,
  ) {}

  /** Group number. */
  get id(): number {
    return this.iommuGroup.id;
  }

  /** A container or an iommufd is set. */
  hasIommu(): boolean {
    return this.container !== undefined || this.iommufd !== undefined;
  }

  /** `iommu_group_dma_owner_claimed`: a kernel driver or a user owner holds the group. */
  dmaOwnerClaimed(): boolean {
    const g = this.iommuGroup;
    if (g.dmaOwner !== undefined) return true;
    return g.functions.some((fn) => this.env.bus.kernelDriversInGroup(fn) > 0);
  }

  /** open() of /dev/vfio/N. */
  open(): SimFile | number {
    if (this.devices().length === 0) return -ERRNO.ENODEV;
    if (this.cdevDeviceOpenCount > 0) return -ERRNO.EBUSY;
    if (this.openedFile !== undefined) return -ERRNO.EBUSY;
    const file = new VfioGroupFile(this);
    this.openedFile = file;
    return file;
  }

  /** `vfio_group_detach_container`. */
  detachContainer(): void {
    const container = this.container;
    if (container === undefined) return;
    container.detachGroup(this.iommuGroup);
    this.#releaseDmaOwner();
    this.container = undefined;
    this.containerUsers = 0;
    this.env.refs.put(container);
  }

  /** Drop the iommufd reference of the compat path. */
  detachIommufd(): void {
    if (this.iommufd === undefined) return;
    const ictx = this.iommufd;
    this.iommufd = undefined;
    this.env.refs.put(ictx);
  }

  #claimDmaOwner(cookie: unknown): number {
    if (this.dmaOwnerClaimed()) return -CLAIM_DMA_OWNER_BUSY;
    const g = this.iommuGroup;
    g.dmaOwner = "vfio-container";
    g.dmaOwnerCookie = cookie;
    for (const fn of g.functions) g.iommu.attach(fn.requester, null);
    return 0;
  }

  #releaseDmaOwner(): void {
    this.iommuGroup.dmaOwner = undefined;
    this.iommuGroup.dmaOwnerCookie = undefined;
  }

  /** SET_CONTAINER with a VFIO container (`vfio_container_attach_group`). */
  attachContainer(container: VfioContainer): number {
    const r = this.#claimDmaOwner(this);
    if (r < 0) return r;
    const a = container.attachGroup(this.iommuGroup);
    if (a < 0) {
      this.#releaseDmaOwner();
      return a;
    }
    this.env.refs.get(container);
    this.container = container;
    this.containerUsers = 1;
    return 0;
  }
}

type GroupHandler = (process: SimProcess, arg: Uint8Array | bigint) => number;

/** An open /dev/vfio/N. */
export class VfioGroupFile implements SimFile {
  /** fd type tag. */
  readonly kind = "vfio-group";
  readonly #handlers: Map<number, GroupHandler>;

  /** The open file of `group`. */
  constructor(readonly group: VfioGroup) {
    this.#handlers = ioctlTable<GroupHandler>(group.env.arch, [
      [VFIO_GROUP_GET_STATUS, (p, arg) => this.#getStatus(p, arg)],
      [VFIO_GROUP_SET_CONTAINER, (p, arg) => this.#setContainer(p, arg)],
      [VFIO_GROUP_UNSET_CONTAINER, () => this.#unsetContainer()],
      [VFIO_GROUP_GET_DEVICE_FD, (p, arg) => this.#getDeviceFd(p, arg)],
    ]);
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

  /** ioctl on the group fd (ENOTTY for anything else). */
  ioctl(process: SimProcess, request: number, arg: Uint8Array | bigint): number {
    const handler = this.#handlers.get(request);
    return handler ? handler(process, arg) : -ERRNO.ENOTTY;
  }

  /** Closing the group detaches its container or iommufd. */
  release(): void {
    const group = this.group;
    group.detachContainer();
    group.detachIommufd();
    group.openedFile = undefined;
  }

  #getStatus(process: SimProcess, arg: Uint8Array | bigint): number {
    const user = userBytes(process, arg);
    if (user === undefined) return -ERRNO.EFAULT;
    const minsz = offsetOfEnd(vfio_group_status, "flags");
    const status = readStruct(user, vfio_group_status, minsz);
    if (status === undefined) return -ERRNO.EFAULT;
    if (status.argsz < minsz) return -ERRNO.EINVAL;
    status.flags = 0;
    if (this.group.hasIommu()) {
      status.flags = VFIO_GROUP_FLAGS_VIABLE | VFIO_GROUP_FLAGS_CONTAINER_SET;
    } else if (!this.group.dmaOwnerClaimed()) {
      status.flags = VFIO_GROUP_FLAGS_VIABLE;
    }
    return writeStruct(user, vfio_group_status, status, minsz) ? 0 : -ERRNO.EFAULT;
  }

  #setContainer(process: SimProcess, arg: Uint8Array | bigint): number {
    const user = userBytes(process, arg);
    const raw = user === undefined ? undefined : copyIn(user, 0, FD_ARG_SIZE);
    if (raw === undefined) return -ERRNO.EFAULT;
    const fd = new DataView(raw.buffer, raw.byteOffset, FD_ARG_SIZE).getInt32(0, true);
    const file = process.fget(fd);
    if (file === undefined) return -ERRNO.EBADF;
    const group = this.group;
    if (group.hasIommu()) return -ERRNO.EINVAL;
    if (file instanceof VfioContainer) return group.attachContainer(file);
    const ictx = asIommufd(file);
    if (ictx === undefined) return -ERRNO.EBADFD;
    const ioas = ictx.compatIoasId(true);
    if (ioas < 0) return ioas;
    group.env.refs.get(ictx);
    group.iommufd = ictx;
    return 0;
  }

  #unsetContainer(): number {
    const group = this.group;
    if (!group.hasIommu()) return -ERRNO.EINVAL;
    if (group.container !== undefined) {
      if (group.containerUsers !== 1) return -ERRNO.EBUSY;
      group.detachContainer();
    }
    group.detachIommufd();
    return 0;
  }

  #getDeviceFd(process: SimProcess, arg: Uint8Array | bigint): number {
    const user = userBytes(process, arg);
    if (user === undefined) return -ERRNO.EFAULT;
    const name = readCString(user, DEVICE_NAME_MAX);
    if (typeof name === "number") return name;
    let device: VfioPciDevice | undefined;
    for (const d of this.group.devices()) {
      const m = d.matchName(name);
      if (m < 0) return m;
      if (m > 0) {
        device = d;
        break;
      }
    }
    if (device === undefined) return -ERRNO.ENODEV;
    const file = new VfioDeviceFile(device, this.group, this, this.group.peers);
    const r = file.openFromGroup(process);
    if (r < 0) {
      file.release();
      return r;
    }
    const fd = process.installFd(file);
    if (fd < 0) file.release();
    return fd;
  }
}

/** `strndup_user`: the NUL-terminated string, EFAULT past the buffer, EINVAL when too long. */
function readCString(user: Uint8Array, max: number): string | number {
  const limit = Math.min(user.length, max);
  const nul = user.subarray(0, limit).indexOf(0);
  if (nul < 0) return limit < max ? -ERRNO.EFAULT : -ERRNO.EINVAL;
  return new TextDecoder().decode(user.subarray(0, nul));
}
