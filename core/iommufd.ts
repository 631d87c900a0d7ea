/**
 * Typed client for `/dev/iommu` (iommufd): IOAS alloc/map/unmap/copy/IOVA ranges/allowed IOVAs,
 * options, HWPT allocation and invalidation, GET_HW_INFO, DESTROY, (Linux 6.13+) vIOMMU and
 * vDEVICE allocation, and (6.15+) vIOMMU event queues ({@link IommufdVeventq}). One method per ioctl; failures throw a
 * {@link VfioError} naming the ioctl, the errno and a hint.
 *
 * Several iommufd ioctls take a *user pointer* to an array (allowed_iovas, data_uptr). The
 * kernel reads and writes that memory by address, so the arrays live in a scratch page from
 * `kernel.mmapAnonymous` (a JS buffer has no stable address), never in a JS-heap buffer.
 *
 * @example
 * ```ts
 * const iommufd = Iommufd.open(kernel);
 * const ioas = iommufd.ioasAlloc();
 * const { ranges, alignment } = iommufd.ioasIovaRanges(ioas);
 * const iova = iommufd.ioasMap(ioas, mem.address, BigInt(mem.length), { read: true, write: true });
 * iommufd.ioasUnmap(ioas, iova, BigInt(mem.length));
 * iommufd.close();
 * ```
 *
 * @module
 */

import type { Kernel, MappedMemory } from "../ffi/kernel.ts";
import { decode, encode, encodeInto } from "../ffi/uapi/layout.ts";
import {
  IOMMU_DESTROY,
  iommu_destroy,
  IOMMU_GET_HW_INFO,
  iommu_hw_info,
  IOMMU_HW_INFO_TYPE_INTEL_VTD,
  iommu_hw_info_vtd,
  IOMMU_HWPT_ALLOC,
  iommu_hwpt_alloc,
  IOMMU_HWPT_INVALIDATE,
  iommu_hwpt_invalidate,
  IOMMU_IOAS_ALLOC,
  iommu_ioas_alloc,
  IOMMU_IOAS_ALLOW_IOVAS,
  iommu_ioas_allow_iovas,
  IOMMU_IOAS_COPY,
  iommu_ioas_copy,
  IOMMU_IOAS_IOVA_RANGES,
  iommu_ioas_iova_ranges,
  IOMMU_IOAS_MAP,
  iommu_ioas_map,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_IOAS_UNMAP,
  iommu_ioas_unmap,
  iommu_iova_range,
  IOMMU_OPTION,
  iommu_option,
} from "../ffi/uapi/mod.ts";
import { ERRNO } from "../ffi/errno.ts";
import type { DmaProtection, IovaRange } from "./dma_backend.ts";
import { check, VfioError } from "./errors.ts";
import {
  closeChecked,
  HINTS,
  type HintTable,
  ioctlChecked,
  openChecked,
  requestOf,
  throwErrno,
} from "./syscall.ts";
import { decodeVtdRegisters, type VtdRegisters } from "./vtd_info.ts";
import { IOVA_MAX } from "./iova_allocator.ts";
import {
  iommu_hw_info_arm_smmuv3,
  IOMMU_HW_INFO_TYPE_ARM_SMMUV3,
  IOMMU_VDEVICE_ALLOC,
  iommu_vdevice_alloc,
  iommu_vevent_arm_smmuv3,
  IOMMU_VEVENTQ_ALLOC,
  iommu_veventq_alloc,
  IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
  IOMMU_VIOMMU_ALLOC,
  iommu_viommu_alloc,
} from "../ffi/uapi/post_6_12.ts";
import { IommufdVeventq } from "./iommufd_veventq.ts";
import { decodeSmmuV3Registers, type SmmuV3Registers } from "./smmuv3_info.ts";

export { IommufdVeventq, type VeventRecord } from "./iommufd_veventq.ts";

/** The iommufd node. */
export const IOMMUFD_PATH = "/dev/iommu";
/** `U64_MAX`: IOAS_UNMAP with iova 0 and this length unmaps everything. */
export const IOMMUFD_UNMAP_ALL_LENGTH: bigint = IOVA_MAX;
/** How many times IOVA_RANGES is retried when the ranges change between calls. */
const IOVA_RANGES_ATTEMPTS = 4;

/** The answer of IOMMU_IOAS_IOVA_RANGES. */
export interface IoasIovaRanges {
  /** Usable IOVA ranges (inclusive). */
  readonly ranges: IovaRange[];
  /** Every IOVA and length must be a multiple of this (`out_iova_alignment`). */
  readonly alignment: bigint;
}

/** Arguments of IOMMU_HWPT_ALLOC. */
export interface HwptAllocArgs {
  /** The device (from VFIO_DEVICE_BIND_IOMMUFD). */
  readonly devId: number;
  /** The IOAS (paging HWPT) or the parent HWPT (nested). */
  readonly ptId: number;
  /** IOMMU_HWPT_ALLOC_* flags. */
  readonly flags?: number;
  /** IOMMU_HWPT_DATA_* type of `data` (0 = none). */
  readonly dataType?: number;
  /** Driver-specific data (e.g. `iommu_hwpt_vtd_s1`), copied to a scratch page. */
  readonly data?: Uint8Array;
  /** A fault queue id (with IOMMU_HWPT_FAULT_ID_VALID). */
  readonly faultId?: number;
}

/** The answer of IOMMU_GET_HW_INFO. */
export interface HwInfo {
  /** IOMMU_HW_INFO_TYPE_* of `data`. */
  readonly type: number;
  /** The driver data the kernel wrote (`data_len` bytes). */
  readonly data: Uint8Array;
  /** IOMMU_HW_CAP_* bits. */
  readonly capabilities: bigint;
  /** log2 of the PASID count the device supports (0: none, or a kernel before 6.12.32). */
  readonly maxPasidLog2: number;
  /** The decoded VT-d registers when `type` is IOMMU_HW_INFO_TYPE_INTEL_VTD. */
  readonly vtd: VtdRegisters | undefined;
  /** The decoded SMMUv3 ID registers when `type` is IOMMU_HW_INFO_TYPE_ARM_SMMUV3 (6.13+). */
  readonly smmuv3: SmmuV3Registers | undefined;
}

/** Room for the driver data of GET_HW_INFO (larger than every 6.12 data struct). */
const HW_INFO_DATA_MAX = 256;

/** An open `/dev/iommu` context. All its objects die with the fd. */
export class Iommufd {
  /** The iommufd fd. */
  readonly fd: number;
  readonly #kernel: Kernel;
  #scratch: MappedMemory | undefined;

  /** Open `/dev/iommu` (ENOENT → a hint that the kernel has no iommufd). */
  static open(kernel: Kernel): Iommufd {
    return new Iommufd(kernel, openChecked(kernel, IOMMUFD_PATH, { ENOENT: HINTS.noIommufd }));
  }

  /** Wrap an open iommufd fd (the object takes ownership). */
  constructor(kernel: Kernel, fd: number) {
    this.#kernel = kernel;
    this.fd = fd;
  }

  /** IOMMU_IOAS_ALLOC: a new, empty IOAS; returns its id. */
  ioasAlloc(): number {
    const layout = iommu_ioas_alloc;
    const arg = encode(layout, { size: layout.size });
    this.#ioctl(IOMMU_IOAS_ALLOC, arg);
    return decode(layout, arg).out_ioas_id;
  }

  /**
   * IOMMU_IOAS_MAP: map `length` bytes of process memory at `userVa`. With `iova` the mapping is
   * placed there (IOMMU_IOAS_MAP_FIXED_IOVA); without, the kernel picks the IOVA. Returns the IOVA.
   */
  ioasMap(
    ioasId: number,
    userVa: bigint,
    length: bigint,
    prot: DmaProtection,
    iova?: bigint,
  ): bigint {
    const layout = iommu_ioas_map;
    const flags = (iova === undefined ? 0 : IOMMU_IOAS_MAP_FIXED_IOVA) |
      (prot.read ? IOMMU_IOAS_MAP_READABLE : 0) | (prot.write ? IOMMU_IOAS_MAP_WRITEABLE : 0);
    const arg = encode(layout, {
      size: layout.size,
      flags,
      ioas_id: ioasId,
      user_va: userVa,
      length,
      iova: iova ?? 0n,
    });
    this.#ioctl(IOMMU_IOAS_MAP, arg, {
      ENOMEM: HINTS.memlock,
      EEXIST: HINTS.overlap,
      ENOSPC: "no free IOVA hole large enough in the IOAS",
      EINVAL: "the IOVA or length is misaligned, or the range crosses a reserved region",
      ENOENT: `IOAS ${ioasId} does not exist`,
      EFAULT: "the process memory is not mapped",
    });
    return decode(layout, arg).iova;
  }

  /** IOMMU_IOAS_UNMAP: unmap whole mappings inside `[iova, iova + length)`; returns bytes unmapped. */
  ioasUnmap(ioasId: number, iova: bigint, length: bigint): bigint {
    const layout = iommu_ioas_unmap;
    const arg = encode(layout, { size: layout.size, ioas_id: ioasId, iova, length });
    this.#ioctl(IOMMU_IOAS_UNMAP, arg, {
      ENOENT: "nothing mapped there, or the range cuts through a mapping",
    });
    return decode(layout, arg).length;
  }

  /** IOMMU_IOAS_UNMAP of everything (iova 0, length U64_MAX); returns bytes unmapped. */
  ioasUnmapAll(ioasId: number): bigint {
    return this.ioasUnmap(ioasId, 0n, IOMMUFD_UNMAP_ALL_LENGTH);
  }

  /**
   * IOMMU_IOAS_IOVA_RANGES with the EMSGSIZE protocol: the ranges are read into the scratch
   * page; when the kernel reports more than fit, the call is repeated with a larger buffer.
   */
  ioasIovaRanges(ioasId: number): IoasIovaRanges {
    const layout = iommu_ioas_iova_ranges;
    const entry = iommu_iova_range.size;
    let capacity = Math.floor(this.#kernel.pageSize / entry);
    for (let attempt = 0; attempt < IOVA_RANGES_ATTEMPTS; attempt++) {
      const out = this.#withUserBuffer(capacity * entry, (mem): IoasIovaRanges | number => {
        const arg = encode(layout, {
          size: layout.size,
          ioas_id: ioasId,
          num_iovas: capacity,
          allowed_iovas: mem.address,
        });
        const r = this.#kernel.ioctl(this.fd, requestOf(this.#kernel, IOMMU_IOAS_IOVA_RANGES), arg);
        const values = decode(layout, arg);
        if (r === -ERRNO.EMSGSIZE) return values.num_iovas; // too small: the total is reported
        check(r, { operation: IOMMU_IOAS_IOVA_RANGES.name, device: IOMMUFD_PATH });
        const ranges: IovaRange[] = [];
        for (let i = 0; i < values.num_iovas; i++) {
          const range = decode(iommu_iova_range, mem.bytes, i * entry);
          ranges.push({ start: range.start, end: range.last });
        }
        return { ranges, alignment: values.out_iova_alignment };
      });
      if (typeof out !== "number") return out;
      capacity = out;
    }
    throw new VfioError({
      operation: IOMMU_IOAS_IOVA_RANGES.name,
      errno: ERRNO.EMSGSIZE,
      device: IOMMUFD_PATH,
      message: "the number of IOVA ranges kept changing",
    });
  }

  /** IOMMU_IOAS_ALLOW_IOVAS: restrict automatic IOVA allocation to `ranges` (empty clears). */
  ioasAllowIovas(ioasId: number, ranges: readonly IovaRange[]): void {
    const layout = iommu_ioas_allow_iovas;
    const entry = iommu_iova_range.size;
    this.#withUserBuffer(Math.max(ranges.length, 1) * entry, (mem) => {
      ranges.forEach((r, i) =>
        encodeInto(iommu_iova_range, mem.bytes, { start: r.start, last: r.end }, i * entry)
      );
      const arg = encode(layout, {
        size: layout.size,
        ioas_id: ioasId,
        num_iovas: ranges.length,
        allowed_iovas: mem.address,
      });
      this.#ioctl(IOMMU_IOAS_ALLOW_IOVAS, arg, {
        EADDRINUSE: "an allowed range intersects a reserved range",
        EINVAL: "ranges overlap or have start >= last",
      });
    });
  }

  /**
   * IOMMU_IOAS_COPY: map the pages behind `[srcIova, srcIova + length)` of one IOAS into another
   * (at `dstIova`, or a kernel-chosen IOVA); returns the destination IOVA.
   */
  ioasCopy(
    dstIoasId: number,
    srcIoasId: number,
    srcIova: bigint,
    length: bigint,
    prot: DmaProtection,
    dstIova?: bigint,
  ): bigint {
    const layout = iommu_ioas_copy;
    const flags = (dstIova === undefined ? 0 : IOMMU_IOAS_MAP_FIXED_IOVA) |
      (prot.read ? IOMMU_IOAS_MAP_READABLE : 0) | (prot.write ? IOMMU_IOAS_MAP_WRITEABLE : 0);
    const arg = encode(layout, {
      size: layout.size,
      flags,
      dst_ioas_id: dstIoasId,
      src_ioas_id: srcIoasId,
      length,
      dst_iova: dstIova ?? 0n,
      src_iova: srcIova,
    });
    this.#ioctl(IOMMU_IOAS_COPY, arg, {
      ENOENT: "the source range is not fully covered by mappings",
      EEXIST: HINTS.overlap,
      EPERM: "the source pages were mapped read-only",
    });
    return decode(layout, arg).dst_iova;
  }

  /** IOMMU_OPTION: get or set an option (IOMMU_OPTION_*); returns `val64` as the kernel left it. */
  option(optionId: number, op: number, objectId: number, value = 0n): bigint {
    const layout = iommu_option;
    const arg = encode(layout, {
      size: layout.size,
      option_id: optionId,
      op,
      object_id: objectId,
      val64: value,
    });
    this.#ioctl(IOMMU_OPTION, arg, {
      EPERM: "setting the rlimit mode needs CAP_SYS_RESOURCE",
      EBUSY: "the rlimit mode can only change while the context has no objects",
    });
    return decode(layout, arg).val64;
  }

  /** IOMMU_HWPT_ALLOC: a HW page table for a device over an IOAS or a parent HWPT; its id. */
  hwptAlloc(args: HwptAllocArgs): number {
    const layout = iommu_hwpt_alloc;
    const data = args.data ?? new Uint8Array(0);
    return this.#withUserBuffer(Math.max(data.length, 1), (mem) => {
      mem.bytes.set(data);
      const arg = encode(layout, {
        size: layout.size,
        flags: args.flags ?? 0,
        dev_id: args.devId,
        pt_id: args.ptId,
        data_type: args.dataType ?? 0,
        data_len: data.length,
        data_uptr: data.length === 0 ? 0n : mem.address,
        fault_id: args.faultId ?? 0,
      });
      this.#ioctl(IOMMU_HWPT_ALLOC, arg, {
        EOPNOTSUPP: "the IOMMU driver does not support these flags or this data type",
      });
      return decode(layout, arg).out_hwpt_id;
    });
  }

  /**
   * IOMMU_HWPT_INVALIDATE on a nested HWPT or (6.13+) a vIOMMU: `entries` of the vendor format
   * `dataType` (e.g. `iommu_hwpt_vtd_s1_invalidate`, or SMMUv3 commands from `smmuCommand`), all
   * of one length. Returns how many the kernel handled; a refused entry throws (the entries
   * before it were handled).
   */
  hwptInvalidate(hwptId: number, dataType: number, entries: readonly Uint8Array[]): number {
    const layout = iommu_hwpt_invalidate;
    const entryLen = entries[0]?.length ?? 0;
    if (entries.some((e) => e.length !== entryLen)) {
      throw new VfioError({
        operation: "IOMMU_HWPT_INVALIDATE",
        device: IOMMUFD_PATH,
        message: "invalidation entries of different lengths",
        hint: "encode every entry with the same vendor struct",
      });
    }
    return this.#withUserBuffer(Math.max(entryLen * entries.length, 1), (mem) => {
      entries.forEach((e, i) => mem.bytes.set(e, i * entryLen));
      const arg = encode(layout, {
        size: layout.size,
        hwpt_id: hwptId,
        data_uptr: entries.length === 0 ? 0n : mem.address,
        data_type: dataType,
        entry_len: entryLen,
        entry_num: entries.length,
      });
      this.#ioctl(IOMMU_HWPT_INVALIDATE, arg, {
        ENOENT: `no nested HWPT or vIOMMU with id ${hwptId}`,
        EINVAL: "the data type is not the nested HWPT's invalidation format, or an entry is " +
          "malformed (misaligned address, bad length)",
        EOPNOTSUPP: "an entry has unknown flags or non-zero reserved fields, or the HWPT takes " +
          "invalidations only through its vIOMMU",
        EIO: "the vIOMMU refused a command (not a forwardable opcode, or a vSID without vDEVICE)",
      });
      return decode(layout, arg).entry_num;
    });
  }

  /**
   * IOMMU_VIOMMU_ALLOC (Linux 6.13+): a vIOMMU of `type` (e.g. IOMMU_VIOMMU_TYPE_ARM_SMMUV3) for
   * the device's IOMMU over `hwptId`, a NEST_PARENT paging HWPT (the VM's stage 2); its id. Nested
   * HWPTs are then allocated with the vIOMMU id as `ptId`, and IOMMU_HWPT_INVALIDATE takes it.
   */
  viommuAlloc(
    args: { readonly devId: number; readonly hwptId: number; readonly type: number },
  ): number {
    const layout = iommu_viommu_alloc;
    const arg = encode(layout, {
      size: layout.size,
      type: args.type,
      dev_id: args.devId,
      hwpt_id: args.hwptId,
    });
    this.#ioctl(IOMMU_VIOMMU_ALLOC, arg, {
      ENOTTY: "the kernel has no vIOMMU objects (they came with Linux 6.13)",
      ENOENT: `no device ${args.devId} or no paging HWPT ${args.hwptId}`,
      EINVAL: "the HWPT was not allocated with IOMMU_HWPT_ALLOC_NEST_PARENT, or belongs to " +
        "another IOMMU",
      EOPNOTSUPP: "the IOMMU driver offers no vIOMMU of this type (no nesting, or no stage-2 " +
        "forced write-back / coherent device)",
    });
    return decode(layout, arg).out_viommu_id;
  }

  /**
   * IOMMU_VDEVICE_ALLOC (Linux 6.13+): give a device the virtual id `virtId` on a vIOMMU (an
   * SMMUv3 vSID: the StreamID the guest's commands name); its id.
   */
  vdeviceAlloc(
    args: { readonly viommuId: number; readonly devId: number; readonly virtId: bigint },
  ): number {
    const layout = iommu_vdevice_alloc;
    const arg = encode(layout, {
      size: layout.size,
      viommu_id: args.viommuId,
      dev_id: args.devId,
      virt_id: args.virtId,
    });
    this.#ioctl(IOMMU_VDEVICE_ALLOC, arg, {
      ENOTTY: "the kernel has no vDEVICE objects (they came with Linux 6.13)",
      ENOENT: `no vIOMMU ${args.viommuId} or no device ${args.devId}`,
      EINVAL: "the device is behind another IOMMU than the vIOMMU",
      EEXIST: `virtual id ${args.virtId} is taken on this vIOMMU (or the device has a vDEVICE)`,
    });
    return decode(layout, arg).out_vdevice_id;
  }

  /**
   * IOMMU_VEVENTQ_ALLOC (Linux 6.15+): an event queue of `type` (IOMMU_VEVENTQ_TYPE_ARM_SMMUV3) on
   * a vIOMMU holding at most `depth` unread events; the returned queue owns its fd (close or
   * dispose it, then IOMMU_DESTROY its id before the vIOMMU).
   */
  veventqAlloc(
    args: { readonly viommuId: number; readonly type: number; readonly depth: number },
  ): IommufdVeventq {
    const layout = iommu_veventq_alloc;
    const arg = encode(layout, {
      size: layout.size,
      viommu_id: args.viommuId,
      type: args.type,
      veventq_depth: args.depth,
    });
    this.#ioctl(IOMMU_VEVENTQ_ALLOC, arg, {
      ENOTTY: "the kernel has no vEVENTQs (they came with Linux 6.15)",
      ENOENT: `no vIOMMU ${args.viommuId}`,
      EINVAL: "the depth must be at least 1",
      EEXIST: "the vIOMMU already has a vEVENTQ of this type",
      EOPNOTSUPP: "type DEFAULT, or non-zero flags",
    });
    const out = decode(layout, arg);
    const eventSize = args.type === IOMMU_VEVENTQ_TYPE_ARM_SMMUV3
      ? iommu_vevent_arm_smmuv3.size
      : 0;
    return new IommufdVeventq(this.#kernel, out.out_veventq_id, out.out_veventq_fd, eventSize);
  }

  /** IOMMU_GET_HW_INFO: the IOMMU behind a device; VT-d and SMMUv3 registers are decoded. */
  getHwInfo(devId: number): HwInfo {
    const layout = iommu_hw_info;
    return this.#withUserBuffer(HW_INFO_DATA_MAX, (mem) => {
      const arg = encode(layout, {
        size: layout.size,
        dev_id: devId,
        data_len: HW_INFO_DATA_MAX,
        data_uptr: mem.address,
      });
      this.#ioctl(IOMMU_GET_HW_INFO, arg, { ENOENT: `device id ${devId} is not bound` });
      const info = decode(layout, arg);
      const data = mem.bytes.slice(0, Math.min(info.data_len, HW_INFO_DATA_MAX));
      const vtd = info.out_data_type === IOMMU_HW_INFO_TYPE_INTEL_VTD &&
          data.length >= iommu_hw_info_vtd.size
        ? decodeVtdRegisters(decode(iommu_hw_info_vtd, data))
        : undefined;
      const smmuv3 = info.out_data_type === IOMMU_HW_INFO_TYPE_ARM_SMMUV3 &&
          data.length >= iommu_hw_info_arm_smmuv3.size
        ? decodeSmmuV3Registers(data)
        : undefined;
      return {
        type: info.out_data_type,
        data,
        capabilities: info.out_capabilities,
        maxPasidLog2: info.out_max_pasid_log2,
        vtd,
        smmuv3,
      };
    });
  }

  /** IOMMU_DESTROY: destroy an object (IOAS, HWPT, fault queue, vIOMMU objects) by id. */
  destroy(id: number): void {
    const layout = iommu_destroy;
    this.#ioctl(IOMMU_DESTROY, encode(layout, { size: layout.size, id }), {
      EBUSY: `object ${id} is still in use (attached devices, HWPTs or mappings)`,
      ENOENT: `no object ${id}`,
    });
  }

  /** Release the scratch page and close the fd (destroying every object of the context). */
  close(): void {
    if (this.#scratch !== undefined) this.#kernel.munmap(this.#scratch);
    this.#scratch = undefined;
    closeChecked(this.#kernel, this.fd, IOMMUFD_PATH);
  }

  #ioctl(
    decl: typeof IOMMU_DESTROY,
    arg: Uint8Array,
    hints: HintTable = {},
  ): number {
    return ioctlChecked(this.#kernel, this.fd, decl, arg, IOMMUFD_PATH, hints);
  }

  /** Run `body` with zeroed user memory of at least `length` bytes (the scratch page if it fits). */
  #withUserBuffer<T>(length: number, body: (mem: MappedMemory) => T): T {
    if (length <= this.#kernel.pageSize) {
      this.#scratch ??= this.#map(this.#kernel.pageSize);
      this.#scratch.bytes.fill(0);
      return body(this.#scratch);
    }
    const mem = this.#map(length);
    try {
      return body(mem);
    } finally {
      this.#kernel.munmap(mem);
    }
  }

  #map(length: number): MappedMemory {
    const mem = this.#kernel.mmapAnonymous(length);
    if (typeof mem !== "number") return mem;
    throwErrno(mem, {
      operation: "mmap",
      device: IOMMUFD_PATH,
      message: "no memory for a user array",
    });
  }
}
