/**
 * `IommufdContext`: one open /dev/iommu (or iommufd-served /dev/vfio/vfio) — the simulated
 * `struct iommufd_ctx` as a {@link SimFile}: the ioctl dispatch with iommufd's generic rules
 * (iommufd.md §2), the command table of Linux 6.12 (nr 0x80–0x8e; from 6.13 also the vIOMMU and
 * vDEVICE commands 0x90–0x91, viommu.ts; from 6.15 IOMMU_VEVENTQ_ALLOC 0x93, veventq.ts), the VFIO-compat fallback, the
 * leaf-first teardown on close, and the kernel-internal API the simulated VFIO uses (bind,
 * attach, detach, unbind, compat IOAS).
 *
 * @example
 * ```ts
 * const ctx = new IommufdContext({ allowUnsafeInterrupts: false, pageSize: 4096, memory });
 * const devid = ctx.bindDevice(fn, process);      // 1
 * const ioas = ctx.compatIoasId(true);            // 2
 * const hwpt = ctx.attachDevice(devid, ioas);     // 3 (auto HWPT)
 * ```
 *
 * @module
 */

import { ERRNO } from "../../ffi/errno.ts";
import type { KernelVersion } from "../kernel_version.ts";
import type { IoctlArch } from "../../ffi/ioctl.ts";
import { type IoctlDecl, ioctlNumber } from "../../ffi/uapi/common.ts";
import type { StructLayout } from "../../ffi/uapi/layout.ts";
import type { SimFile, SimProcess } from "../kernel/file.ts";
import type { FileRefs } from "../kernel/process.ts";
import type { SimPciFunction } from "../kernel/pci_function.ts";
import type { PhysicalMemory } from "../memory.ts";
import { compatIoctl } from "./compat.ts";
import { IommufdCore } from "./core.ts";
import { IOMMUFD_OBJECT_OPS } from "./object_ops.ts";
import { attachDevice, bindDevice, detachDevice, unbindDevice } from "./device.ts";
import { attachDevicePasid, detachDevicePasid, revokePasid } from "./pasid.ts";
import type { PasidAttachPolicy } from "../kernel/pasid_allocators.ts";
import { kernelAtLeast } from "../kernel_version.ts";
import {
  IOMMU_VDEVICE_ALLOC,
  iommu_vdevice_alloc,
  IOMMU_VEVENTQ_ALLOC,
  iommu_veventq_alloc,
  IOMMU_VIOMMU_ALLOC,
  iommu_viommu_alloc,
  iommu_viommu_alloc_data,
  PASID_ATTACH_MIN_KERNEL,
  VEVENTQ_MIN_KERNEL,
  VIOMMU_MIN_KERNEL,
  VIOMMU_USER_DATA_MIN_KERNEL,
} from "../../ffi/uapi/post_6_12.ts";
import { cmdVdeviceAlloc, cmdViommuAlloc } from "./viommu.ts";
import { cmdVeventqAlloc } from "./veventq.ts";
import {
  cmdFaultAlloc,
  cmdGetDirtyBitmap,
  cmdGetHwInfo,
  cmdHwptAlloc,
  cmdInvalidate,
  cmdSetDirtyTracking,
} from "./hwpt_cmds.ts";
import type { FaultFdHooks } from "./fault.ts";
import {
  cmdAllowIovas,
  cmdCopy,
  cmdDestroy,
  cmdIoasAlloc,
  cmdIovaRanges,
  cmdMap,
  cmdOption,
  cmdUnmap,
  cmdVfioIoas,
} from "./ioas_cmds.ts";
import type { IommufdObject } from "./objects.ts";
import { copyStructFromUser, Ucmd, userArg } from "./ucmd.ts";
import { cmdTest } from "./selftest_cmd.ts";
import {
  IOMMU_TEST_CMD,
  iommu_test_cmd,
  IOMMU_TEST_CMD_MIN_SIZE,
} from "../../ffi/uapi/iommufd_test.ts";
import * as uapi from "../../ffi/uapi/mod.ts";

/** Options of an {@link IommufdContext}. */
export interface IommufdContextOptions {
  /** `iommufd.allow_unsafe_interrupts`. */
  readonly allowUnsafeInterrupts: boolean;
  /** PAGE_SIZE. */
  readonly pageSize: number;
  /** The machine's physical memory (pinned chunks are retained in it). */
  readonly memory: PhysicalMemory;
  /** Opened as /dev/vfio/vfio (IOMMUFD_VFIO_CONTAINER): "mm" rlimit accounting by default. */
  readonly compatMode?: boolean;
  /** ioctl number encoding (default "generic"). */
  readonly ioctlArch?: IoctlArch;
  /** The opener has CAP_SYS_RESOURCE (IOMMU_OPTION RLIMIT_MODE SET); default false. */
  readonly capSysResource?: boolean;
  /** The Linux version answered as (default 6.12.107; post-6.12 commands only when later). */
  readonly kernelVersion?: KernelVersion;
  /**
   * **Proposal**: PASID attach only for PASIDs the caller owns (EACCES otherwise), and PASID
   * attachments dropped when their PASID is torn down. Undefined: Linux's rules.
   */
  readonly pasidPolicy?: PasidAttachPolicy;
  /** CONFIG_IOMMUFD_TEST: IOMMU_TEST_CMD (0xa0) is in the command table (default false). */
  readonly iommufdTest?: boolean;
  /** CONFIG_TRANSPARENT_HUGEPAGE (default true; see {@link CoreSettings}). */
  readonly transparentHugepage?: boolean;
}

/** One command of the table: its ioctl, kernel struct and handler. */
interface Command {
  readonly decl: IoctlDecl;
  readonly layout: StructLayout;
  readonly minSize: number;
  run(core: IommufdCore, ucmd: Ucmd<StructLayout["fields"]>, hooks: FaultFdHooks): number;
}

function command<L extends StructLayout>(
  decl: IoctlDecl,
  layout: L,
  run: (core: IommufdCore, ucmd: never, hooks: FaultFdHooks) => number,
  minSize: number = uapi.IOMMUFD_MIN_SIZE[decl.name],
): Command {
  return { decl, layout, minSize, run } as Command;
}

/**
 * The commands of a kernel answering as `version`, indexed by `nr - 0x80`: 6.12's, IOMMU_TEST_CMD
 * (0xa0) with CONFIG_IOMMUFD_TEST (selftest_cmd.ts), plus from 6.13
 * IOMMU_VIOMMU_ALLOC (0x90) and IOMMU_VDEVICE_ALLOC (0x91), and from 6.15 IOMMU_VEVENTQ_ALLOC
 * (0x93). The other numbers of later kernels (0x8f IOAS_MAP_FILE, 0x92 IOAS_CHANGE_PROCESS, …) are
 * not modelled and stay ENOTTY. Minimum sizes: `offsetofend(out_viommu_id)` and
 * `offsetofend(virt_id)`, both 24; `offsetofend(__reserved)`, 32, for VEVENTQ_ALLOC.
 */
function commandsOf(
  version: KernelVersion | undefined,
  iommufdTest: boolean,
): readonly (Command | undefined)[] {
  const table: (Command | undefined)[] = [...COMMANDS];
  if (iommufdTest) {
    table[IOMMU_TEST_CMD.nr - uapi.IOMMUFD_CMD_BASE] = command(
      IOMMU_TEST_CMD,
      iommu_test_cmd,
      cmdTest,
      IOMMU_TEST_CMD_MIN_SIZE,
    );
  }
  if (version === undefined || !kernelAtLeast(version, VIOMMU_MIN_KERNEL)) return table;
  const viommuLayout = kernelAtLeast(version, VIOMMU_USER_DATA_MIN_KERNEL)
    ? iommu_viommu_alloc_data
    : iommu_viommu_alloc;
  table[IOMMU_VIOMMU_ALLOC.nr - uapi.IOMMUFD_CMD_BASE] = command(
    IOMMU_VIOMMU_ALLOC,
    viommuLayout,
    cmdViommuAlloc,
    iommu_viommu_alloc.size,
  );
  table[IOMMU_VDEVICE_ALLOC.nr - uapi.IOMMUFD_CMD_BASE] = command(
    IOMMU_VDEVICE_ALLOC,
    iommu_vdevice_alloc,
    cmdVdeviceAlloc,
    iommu_vdevice_alloc.size,
  );
  if (kernelAtLeast(version, VEVENTQ_MIN_KERNEL)) {
    table[IOMMU_VEVENTQ_ALLOC.nr - uapi.IOMMUFD_CMD_BASE] = command(
      IOMMU_VEVENTQ_ALLOC,
      iommu_veventq_alloc,
      cmdVeventqAlloc,
      iommu_veventq_alloc.size,
    );
  }
  return table;
}

/** The 6.12 command table, indexed by `nr - 0x80` (`iommufd_ioctl_ops`). */
const COMMANDS: readonly Command[] = [
  command(uapi.IOMMU_DESTROY, uapi.iommu_destroy, cmdDestroy),
  command(uapi.IOMMU_IOAS_ALLOC, uapi.iommu_ioas_alloc, cmdIoasAlloc),
  command(uapi.IOMMU_IOAS_ALLOW_IOVAS, uapi.iommu_ioas_allow_iovas, cmdAllowIovas),
  command(uapi.IOMMU_IOAS_COPY, uapi.iommu_ioas_copy, cmdCopy),
  command(uapi.IOMMU_IOAS_IOVA_RANGES, uapi.iommu_ioas_iova_ranges, cmdIovaRanges),
  command(uapi.IOMMU_IOAS_MAP, uapi.iommu_ioas_map, cmdMap),
  command(uapi.IOMMU_IOAS_UNMAP, uapi.iommu_ioas_unmap, cmdUnmap),
  command(uapi.IOMMU_OPTION, uapi.iommu_option, cmdOption),
  command(uapi.IOMMU_VFIO_IOAS, uapi.iommu_vfio_ioas, cmdVfioIoas),
  command(uapi.IOMMU_HWPT_ALLOC, uapi.iommu_hwpt_alloc, cmdHwptAlloc),
  command(uapi.IOMMU_GET_HW_INFO, uapi.iommu_hw_info, cmdGetHwInfo),
  command(
    uapi.IOMMU_HWPT_SET_DIRTY_TRACKING,
    uapi.iommu_hwpt_set_dirty_tracking,
    cmdSetDirtyTracking,
  ),
  command(uapi.IOMMU_HWPT_GET_DIRTY_BITMAP, uapi.iommu_hwpt_get_dirty_bitmap, cmdGetDirtyBitmap),
  command(uapi.IOMMU_HWPT_INVALIDATE, uapi.iommu_hwpt_invalidate, cmdInvalidate),
  command(uapi.IOMMU_FAULT_QUEUE_ALLOC, uapi.iommu_fault_alloc, cmdFaultAlloc),
];

/** An open iommufd. */
export class IommufdContext implements SimFile {
  /** fd type tag. */
  readonly kind = "iommufd";
  readonly #options: IommufdContextOptions;
  readonly #core: IommufdCore;
  readonly #arch: IoctlArch;
  readonly #commands: readonly (Command | undefined)[];
  readonly #unwatch: (() => void) | undefined;

  /** A fresh context (no objects). */
  constructor(options: IommufdContextOptions) {
    this.#options = options;
    this.#arch = options.ioctlArch ?? "generic";
    this.#core = new IommufdCore({
      allowUnsafeInterrupts: options.allowUnsafeInterrupts,
      pageSize: options.pageSize,
      memory: options.memory,
      accountMode: options.compatMode ? "mm" : "user",
      capSysResource: options.capSysResource ?? false,
      transparentHugepage: options.transparentHugepage ?? true,
      pasidAttach: options.kernelVersion !== undefined &&
        kernelAtLeast(options.kernelVersion, PASID_ATTACH_MIN_KERNEL),
      kernel: options.kernelVersion,
      pasidPolicy: options.pasidPolicy,
      objectOps: IOMMUFD_OBJECT_OPS,
    });
    this.#commands = commandsOf(options.kernelVersion, options.iommufdTest ?? false);
    this.#core.ownerCookie = this;
    this.#unwatch = options.pasidPolicy?.teardown.onRevoke((pasid) =>
      revokePasid(this.#core, pasid)
    );
  }

  /** The options the context was opened with. */
  get options(): IommufdContextOptions {
    return this.#options;
  }

  /** The live objects, by ID (for diagnostics and tests). */
  get objects(): readonly IommufdObject[] {
    return this.#core.objects.objects();
  }

  /** ioctl(2): iommufd commands, else the VFIO container API; never throws. */
  ioctl(process: SimProcess, request: number, arg: Uint8Array | bigint): number {
    const nr = request & 0xff;
    const entry = nr >= uapi.IOMMUFD_CMD_BASE
      ? this.#commands[nr - uapi.IOMMUFD_CMD_BASE]
      : undefined;
    if (!entry) return compatIoctl(this.#core, this.#arch, process, request, arg);
    const user = userArg(process, arg);
    const head = user.read(0, 4);
    if (!head) return -ERRNO.EFAULT;
    if (request >>> 0 !== ioctlNumber(this.#arch, entry.decl)) return -ERRNO.ENOTTY;
    const size = new DataView(head.buffer, head.byteOffset, 4).getUint32(0, true);
    if (size < entry.minSize) return -ERRNO.EINVAL;
    const kbuf = copyStructFromUser(user, entry.layout.size, size);
    if (typeof kbuf === "number") return kbuf;
    const ucmd = new Ucmd(process, user, entry.layout, size, kbuf);
    return entry.run(this.#core, ucmd, this.#faultHooks(process));
  }

  /** File references a fault fd takes on this context. */
  #faultHooks(process: SimProcess): FaultFdHooks {
    const refs = process as Partial<FileRefs>;
    return {
      getContext: () => refs.get?.(this),
      putContext: () => refs.put?.(this),
    };
  }

  /** Last close: unbind what is still bound, then destroy every object leaf-first. */
  release(_process: SimProcess): void {
    this.#unwatch?.();
    for (const obj of this.#core.objects.objects()) {
      if (obj.type === "device") unbindDevice(this.#core, obj.id);
    }
    this.#core.releaseAll();
  }

  /** `iommufd_device_bind`: the new device ID (> 0) or -errno (EINVAL, EPERM, EBUSY). */
  bindDevice(fn: SimPciFunction, process: SimProcess): number {
    return bindDevice(this.#core, fn, process);
  }

  /** `iommufd_device_unbind`: detach if attached, release DMA ownership with the group's last device. */
  unbindDevice(devid: number): void {
    unbindDevice(this.#core, devid);
  }

  /**
   * Attach a bound device to an IOAS (auto HWPT) or HWPT; when already attached this is a
   * replace. Returns the attached HWPT ID (> 0) or -errno (ENOENT unknown ID, EINVAL wrong type
   * or incompatible, EADDRINUSE, EFAULT/ENOMEM from pinning).
   */
  attachDevice(devid: number, ptId: number): number {
    return attachDevice(this.#core, devid, ptId);
  }

  /** Detach a bound device (no-op when not attached). */
  detachDevice(devid: number): void {
    detachDevice(this.#core, devid);
  }

  /** Attach a PASID-compatible HWPT to one PASID of a device (6.15+): the HWPT ID or -errno. */
  attachDevicePasid(devid: number, pasid: number, ptId: number, process: SimProcess): number {
    return attachDevicePasid(this.#core, devid, pasid, ptId, process);
  }

  /** Detach one PASID of a device (no-op when not attached). */
  detachDevicePasid(devid: number, pasid: number): void {
    detachDevicePasid(this.#core, devid, pasid);
  }

  /** The VFIO-compat IOAS ID, creating it when `create`; -ENODEV if none and !create. */
  compatIoasId(create: boolean): number {
    const core = this.#core;
    if (core.compatIoas) return core.compatIoas.id;
    if (!create) return -ERRNO.ENODEV;
    const ioas = core.allocIoas();
    if (typeof ioas === "number") return ioas;
    core.compatIoas = ioas;
    return ioas.id;
  }
}
