/**
 * An open VFIO device (`struct vfio_device_file`), obtained through VFIO_GROUP_GET_DEVICE_FD or by
 * opening the cdev /dev/vfio/devices/vfioN (vfio.md §7, §7.6). A cdev gives no access until
 * VFIO_DEVICE_BIND_IOMMUFD: every other ioctl, read, write and mmap answer EINVAL before it.
 *
 * @module
 */

import { ERRNO } from "../../ffi/errno.ts";
import type { Mmio } from "../../ffi/kernel.ts";
import { ioctlNumber } from "../../ffi/uapi/common.ts";
import { offsetOfEnd } from "../../ffi/uapi/layout.ts";
import type { SimFile, SimProcess } from "../kernel/file.ts";
import { copyIn, readStruct, userBytes } from "../kernel/user.ts";
import type { VfioPciDevice } from "./device.ts";
import {
  deviceFeature,
  deviceGetInfo,
  deviceIoeventfd,
  deviceReset,
  hotReset,
  hotResetInfo,
  type HotResetPeers,
} from "./device_ioctl.ts";
import { ioctlTable } from "./env.ts";
import { kernelAtLeast } from "../kernel_version.ts";
import {
  PASID_ATTACH_MIN_KERNEL,
  vfio_device_attach_iommufd_pt_pasid,
  VFIO_DEVICE_ATTACH_PASID,
  vfio_device_detach_iommufd_pt_pasid,
  VFIO_DEVICE_DETACH_PASID,
} from "../../ffi/uapi/post_6_12.ts";
import { asIommufd, type IommufdFile } from "./iommufd_link.ts";
import { getRegionInfo, regionMmap, regionRw } from "./regions.ts";
import {
  VFIO_DEVICE_ATTACH_IOMMUFD_PT,
  vfio_device_attach_iommufd_pt,
  VFIO_DEVICE_BIND_IOMMUFD,
  vfio_device_bind_iommufd,
  VFIO_DEVICE_DETACH_IOMMUFD_PT,
  vfio_device_detach_iommufd_pt,
  VFIO_DEVICE_FEATURE,
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_GET_PCI_HOT_RESET_INFO,
  VFIO_DEVICE_GET_REGION_INFO,
  VFIO_DEVICE_IOEVENTFD,
  VFIO_DEVICE_PCI_HOT_RESET,
  VFIO_DEVICE_RESET,
  VFIO_DEVICE_SET_IRQS,
} from "../../ffi/uapi/mod.ts";

/** Bytes of the `__u32` output fields written back (out_devid, pt_id). */
const U32_SIZE = 4;

type DeviceHandler = (process: SimProcess, user: Uint8Array) => number;

/**
 * What a device file reads and counts on its VFIO group (`struct vfio_group`, ./group.ts, which
 * implements it): the group's side of the open rules. Declared here so that this module does not
 * import the group module, which creates device files.
 */
export interface DeviceFileGroup {
  /** `container_users`: 1 for the group, +1 per device in use through the container. */
  containerUsers: number;
  /** Devices of the group bound through their cdev (`cdev_device_open_cnt`). */
  cdevDeviceOpenCount: number;
  /** The container set with SET_CONTAINER, if any. */
  readonly container: { readonly iommuSet: boolean } | undefined;
  /** The iommufd set with SET_CONTAINER (compat path), if any. */
  readonly iommufd: IommufdFile | undefined;
  /** The open group file, if any. */
  readonly openedFile: SimFile | undefined;
  /** A container or an iommufd is set. */
  hasIommu(): boolean;
}

/** An open device fd. */
export class VfioDeviceFile implements SimFile {
  /** fd type tag. */
  readonly kind = "vfio-device";
  /** `access_granted`. */
  accessGranted = false;
  #pos = 0n;
  #bound = false;
  readonly #handlers: Map<number, DeviceHandler>;
  readonly #vgroup: DeviceFileGroup;
  readonly #req: { bind: number; attach: number; detach: number; reset: number };

  /**
   * A device file: through `groupFile` (group path) or a cdev (`groupFile` undefined, `vgroup` the
   * device's VFIO group for the mutual exclusion with /dev/vfio/N).
   */
  constructor(
    readonly device: VfioPciDevice,
    vgroup: DeviceFileGroup,
    readonly groupFile: SimFile | undefined,
    private readonly peers: HotResetPeers,
  ) {
    this.#vgroup = vgroup;
    device.files++;
    const arch = device.env.arch;
    this.#req = {
      bind: ioctlNumber(arch, VFIO_DEVICE_BIND_IOMMUFD),
      attach: ioctlNumber(arch, VFIO_DEVICE_ATTACH_IOMMUFD_PT),
      detach: ioctlNumber(arch, VFIO_DEVICE_DETACH_IOMMUFD_PT),
      reset: ioctlNumber(arch, VFIO_DEVICE_RESET),
    };
    const d = device;
    this.#handlers = ioctlTable<DeviceHandler>(device.env.arch, [
      [VFIO_DEVICE_GET_INFO, (_p, u) => deviceGetInfo(d, u)],
      [VFIO_DEVICE_GET_REGION_INFO, (_p, u) => getRegionInfo(d.fn, u)],
      [VFIO_DEVICE_GET_IRQ_INFO, (_p, u) => d.irqs.getInfo(u)],
      [VFIO_DEVICE_SET_IRQS, (p, u) => d.irqs.setIrqs(p, u)],
      [VFIO_DEVICE_RESET, () => deviceReset(d)],
      [
        VFIO_DEVICE_GET_PCI_HOT_RESET_INFO,
        (_p, u) => this.#withPeers((x) => hotResetInfo(d, x, u)),
      ],
      [VFIO_DEVICE_PCI_HOT_RESET, (p, u) => this.#withPeers((x) => hotReset(d, x, p, u))],
      [VFIO_DEVICE_IOEVENTFD, (p, u) => deviceIoeventfd(d, p, u)],
      [VFIO_DEVICE_FEATURE, (p, u) => deviceFeature(d, p, u)],
    ]);
    if (groupFile !== undefined) device.env.refs.get(groupFile);
  }

  #withPeers(fn: (peers: HotResetPeers) => number): number {
    return fn(this.peers);
  }

  /** `vfio_df_open`: first open binds to the iommufd or uses the container, then enables. */
  #dfOpen(process: SimProcess): number {
    const device = this.device;
    const group = this.#vgroup;
    if (this.groupFile === undefined && device.openCount !== 0) return -ERRNO.EINVAL;
    if (device.openCount === 0) {
      const ictx = this.groupFile === undefined ? this.#cdevIommufd : group.iommufd;
      if (ictx !== undefined) {
        const devid = ictx.bindDevice(device.fn, process);
        if (devid < 0) return devid;
        device.iommufd = { ctx: ictx, devid };
      } else {
        if (!group.container?.iommuSet) return -ERRNO.EINVAL;
        group.containerUsers++;
      }
      device.enable();
    }
    device.openCount++;
    return 0;
  }

  #cdevIommufd: ReturnType<typeof asIommufd>;

  /** `vfio_df_close`. */
  #dfClose(): void {
    const device = this.device;
    if (--device.openCount > 0) return;
    device.disable();
    if (device.iommufd !== undefined) {
      device.iommufd.ctx.unbindDevice(device.iommufd.devid);
      device.iommufd = undefined;
    } else {
      this.#vgroup.containerUsers--;
    }
  }

  /** `vfio_df_group_open` (GET_DEVICE_FD): 0 or -errno; grants access. */
  openFromGroup(process: SimProcess): number {
    const group = this.#vgroup;
    if (!group.hasIommu()) return -ERRNO.EINVAL;
    const r = this.#dfOpen(process);
    if (r < 0) return r;
    const ictx = group.iommufd;
    const bound = this.device.iommufd;
    if (ictx !== undefined && bound !== undefined && this.device.openCount === 1) {
      const ioas = ictx.compatIoasId(false);
      const a = ioas < 0 ? ioas : ictx.attachDevice(bound.devid, ioas);
      if (a < 0) {
        this.#dfClose();
        return a;
      }
    }
    this.accessGranted = true;
    this.#bound = true;
    return 0;
  }

  /** ioctl: BIND first, then the access check, cdev-only ioctls, and the vfio-pci ioctls. */
  ioctl(process: SimProcess, request: number, arg: Uint8Array | bigint): number {
    const user = userBytes(process, arg);
    if (request === this.#req.bind) {
      return user === undefined ? -ERRNO.EFAULT : this.#bind(process, user);
    }
    if (!this.accessGranted) return -ERRNO.EINVAL;
    if (this.groupFile === undefined) {
      if (request === this.#req.attach) {
        return user === undefined ? -ERRNO.EFAULT : this.#attach(user, process);
      }
      if (request === this.#req.detach) {
        return user === undefined ? -ERRNO.EFAULT : this.#detach(user);
      }
    }
    const handler = this.#handlers.get(request);
    if (handler === undefined) return -ERRNO.ENOTTY;
    if (request === this.#req.reset) return handler(process, new Uint8Array(0));
    if (user === undefined) return -ERRNO.EFAULT;
    return handler(process, user);
  }

  #bind(process: SimProcess, user: Uint8Array): number {
    const layout = vfio_device_bind_iommufd;
    const minsz = offsetOfEnd(layout, "out_devid");
    const bind = readStruct(user, layout, minsz);
    if (bind === undefined) return -ERRNO.EFAULT;
    if (bind.argsz < minsz || bind.flags !== 0 || bind.iommufd < 0) return -ERRNO.EINVAL;
    if (this.groupFile !== undefined) return -ERRNO.EINVAL;
    const group = this.#vgroup;
    if (group.openedFile !== undefined) return -ERRNO.EBUSY;
    group.cdevDeviceOpenCount++;
    const r = this.#bindLocked(process, bind.iommufd, user, layout.fields.out_devid.offset);
    if (r < 0) group.cdevDeviceOpenCount--;
    return r;
  }

  #bindLocked(process: SimProcess, fd: number, user: Uint8Array, outAt: number): number {
    if (this.accessGranted) return -ERRNO.EINVAL;
    const file = process.fget(fd);
    if (file === undefined) return -ERRNO.EBADF;
    const ictx = asIommufd(file);
    if (ictx === undefined) return -ERRNO.EBADFD;
    this.#cdevIommufd = ictx;
    const r = this.#dfOpen(process);
    if (r < 0) {
      this.#cdevIommufd = undefined;
      return r;
    }
    const out = copyIn(user, outAt, U32_SIZE);
    if (out === undefined) {
      this.#dfClose();
      this.#cdevIommufd = undefined;
      return -ERRNO.EFAULT;
    }
    new DataView(out.buffer, out.byteOffset, U32_SIZE).setUint32(
      0,
      this.device.iommufd!.devid,
      true,
    );
    this.device.env.refs.get(ictx);
    this.device.cdevOpened = true;
    this.accessGranted = true;
    this.#bound = true;
    return 0;
  }

  /** Whether the kernel has the PASID variants of attach/detach (6.15+). */
  get #pasidUapi(): boolean {
    return kernelAtLeast(this.device.env.kernelVersion, PASID_ATTACH_MIN_KERNEL);
  }

  #attach(user: Uint8Array, process: SimProcess): number {
    const layout = vfio_device_attach_iommufd_pt;
    const minsz = offsetOfEnd(layout, "pt_id");
    const attach = readStruct(user, layout, minsz);
    if (attach === undefined) return -ERRNO.EFAULT;
    const known = this.#pasidUapi ? VFIO_DEVICE_ATTACH_PASID : 0;
    if (attach.argsz < minsz || (attach.flags & ~known) !== 0) return -ERRNO.EINVAL;
    const withPasid = (attach.flags & VFIO_DEVICE_ATTACH_PASID) !== 0;
    let pasid: number | undefined;
    if (withPasid) {
      const full = vfio_device_attach_iommufd_pt_pasid;
      if (attach.argsz < full.size) return -ERRNO.EINVAL;
      const v = readStruct(user, full, full.size);
      if (v === undefined) return -ERRNO.EFAULT;
      pasid = v.pasid;
    }
    const bound = this.device.iommufd;
    if (bound === undefined) return -ERRNO.EINVAL;
    const hwpt = pasid === undefined
      ? bound.ctx.attachDevice(bound.devid, attach.pt_id)
      : bound.ctx.attachDevicePasid(bound.devid, pasid, attach.pt_id, process);
    if (hwpt < 0) return hwpt;
    const out = copyIn(user, layout.fields.pt_id.offset, U32_SIZE);
    if (out === undefined) {
      if (pasid === undefined) bound.ctx.detachDevice(bound.devid);
      else bound.ctx.detachDevicePasid(bound.devid, pasid);
      return -ERRNO.EFAULT;
    }
    new DataView(out.buffer, out.byteOffset, U32_SIZE).setUint32(0, hwpt, true);
    return 0;
  }

  #detach(user: Uint8Array): number {
    const layout = vfio_device_detach_iommufd_pt;
    const minsz = offsetOfEnd(layout, "flags");
    const detach = readStruct(user, layout, minsz);
    if (detach === undefined) return -ERRNO.EFAULT;
    const known = this.#pasidUapi ? VFIO_DEVICE_DETACH_PASID : 0;
    if (detach.argsz < minsz || (detach.flags & ~known) !== 0) return -ERRNO.EINVAL;
    let pasid: number | undefined;
    if (detach.flags & VFIO_DEVICE_DETACH_PASID) {
      const full = vfio_device_detach_iommufd_pt_pasid;
      if (detach.argsz < full.size) return -ERRNO.EINVAL;
      const v = readStruct(user, full, full.size);
      if (v === undefined) return -ERRNO.EFAULT;
      pasid = v.pasid;
    }
    const bound = this.device.iommufd;
    if (bound === undefined) return 0;
    if (pasid === undefined) bound.ctx.detachDevice(bound.devid);
    else bound.ctx.detachDevicePasid(bound.devid, pasid);
    return 0;
  }

  /** pread on a region. */
  pread(_process: SimProcess, buffer: Uint8Array, offset: bigint): number {
    if (!this.accessGranted) return -ERRNO.EINVAL;
    return regionRw(this.device.fn, offset, buffer, false);
  }

  /** pwrite on a region. */
  pwrite(_process: SimProcess, buffer: Uint8Array, offset: bigint): number {
    if (!this.accessGranted) return -ERRNO.EINVAL;
    return regionRw(this.device.fn, offset, buffer, true);
  }

  /** read at the file position. */
  read(process: SimProcess, buffer: Uint8Array): number {
    const n = this.pread(process, buffer, this.#pos);
    if (n > 0) this.#pos += BigInt(n);
    return n;
  }

  /** write at the file position. */
  write(process: SimProcess, buffer: Uint8Array): number {
    const n = this.pwrite(process, buffer, this.#pos);
    if (n > 0) this.#pos += BigInt(n);
    return n;
  }

  /** mmap of a BAR. */
  mmap(_process: SimProcess, offset: bigint, length: number): Mmio | number {
    if (!this.accessGranted) return -ERRNO.EINVAL;
    return regionMmap(this.device.fn, this.device.env, offset, length);
  }

  /** Close: last close of the device disables it and leaves the container/iommufd. */
  release(): void {
    const env = this.device.env;
    if (this.#bound) {
      this.#dfClose();
      if (this.groupFile === undefined) {
        this.device.cdevOpened = false;
        this.#vgroup.cdevDeviceOpenCount--;
        if (this.#cdevIommufd !== undefined) env.refs.put(this.#cdevIommufd);
      }
      this.#bound = false;
      this.accessGranted = false;
    }
    if (this.groupFile !== undefined) env.refs.put(this.groupFile);
    if (--this.device.files === 0) this.device.onLastFile?.();
  }
}
