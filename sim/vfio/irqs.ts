/**
 * vfio-pci interrupts (drivers/vfio/pci/vfio_pci_intrs.c; vfio.md §7.3): GET_IRQ_INFO, SET_IRQS
 * with the generic validation of `vfio_set_irqs_validate_and_prepare` and the per-index dispatch,
 * and the wiring from the device model's interrupt outputs to the user's eventfds. Enabling MSI or
 * MSI-X programs the function's capability (and MSI-X table) the way the kernel's MSI code does.
 *
 * @module
 */

import { ERRNO } from "../../ffi/errno.ts";
import { offsetOfEnd } from "../../ffi/uapi/layout.ts";
import { EventFd } from "../kernel/eventfd.ts";
import type { SimProcess } from "../kernel/file.ts";
import type { SimPciFunction } from "../kernel/pci_function.ts";
import type { InterruptSink } from "../pci/device.ts";
import { copyIn, readStruct, writeStruct } from "../kernel/user.ts";
import type { VfioEnv } from "./env.ts";
import { findCapability, isPcie, MSI, msiVectorCount, MSIX, msixTable, PCI } from "./pci_caps.ts";
import {
  vfio_irq_info,
  VFIO_IRQ_INFO_AUTOMASKED,
  VFIO_IRQ_INFO_EVENTFD,
  VFIO_IRQ_INFO_MASKABLE,
  VFIO_IRQ_INFO_NORESIZE,
  vfio_irq_set,
  VFIO_IRQ_SET_ACTION_MASK,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_ACTION_TYPE_MASK,
  VFIO_IRQ_SET_ACTION_UNMASK,
  VFIO_IRQ_SET_DATA_BOOL,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
  VFIO_IRQ_SET_DATA_TYPE_MASK,
  VFIO_PCI_ERR_IRQ_INDEX,
  VFIO_PCI_INTX_IRQ_INDEX,
  VFIO_PCI_MSI_IRQ_INDEX,
  VFIO_PCI_MSIX_IRQ_INDEX,
  VFIO_PCI_NUM_IRQS,
  VFIO_PCI_REQ_IRQ_INDEX,
} from "../../ffi/uapi/mod.ts";

/** x86 MSI address of the local APIC window (what the kernel programs, destination 0). */
export const X86_MSI_ADDRESS = 0xfee0_0000;
/** First APIC vector the simulated kernel hands to a device's MSI messages. */
export const MSI_DATA_BASE = 0x30;
const U32_MAX = 0xffff_ffff;
const EVENTFD_ARG = 4;

/** The active interrupt mode (`vdev->irq_type`). */
export type IrqMode = "none" | "intx" | "msi" | "msix";

const MODE_OF_INDEX: Record<number, IrqMode> = {
  [VFIO_PCI_INTX_IRQ_INDEX]: "intx",
  [VFIO_PCI_MSI_IRQ_INDEX]: "msi",
  [VFIO_PCI_MSIX_IRQ_INDEX]: "msix",
};

/** Bytes per element of each SET_IRQS data type. */
const DATA_SIZE = new Map<number, number>([
  [VFIO_IRQ_SET_DATA_NONE, 0],
  [VFIO_IRQ_SET_DATA_BOOL, 1],
  [VFIO_IRQ_SET_DATA_EVENTFD, 4],
]);

/** `eventfd_ctx_fdget`: the eventfd behind an fd, EBADF / EINVAL otherwise. */
export function eventfdFromFd(process: SimProcess, fd: number): EventFd | number {
  const file = process.fget(fd);
  if (file === undefined) return -ERRNO.EBADF;
  return file instanceof EventFd ? file : -ERRNO.EINVAL;
}

interface SetIrqs {
  readonly flags: number;
  readonly index: number;
  readonly start: number;
  readonly count: number;
  readonly data: Uint8Array;
}

/** Virtual time from an unmask eventfd's signal to the re-sent INTx (a work item's latency). */
const INTX_RESEND_NS = 1_000;

/** A device's interrupt state and the sink its model raises interrupts into. */
export class VfioIrqs implements InterruptSink {
  /** Active mode. */
  mode: IrqMode = "none";
  /** Per-vector triggers of the active MSI/MSI-X mode (index = vector). */
  vectors: (EventFd | undefined)[] = [];
  /** INTx trigger. */
  intxTrigger: EventFd | undefined;
  /** INTx masked (by the kernel on delivery, or by the user). */
  intxMasked = false;
  /** Current level of the device's INTx line. */
  intxAsserted = false;
  /** AER error trigger. */
  errTrigger: EventFd | undefined;
  /** Device request trigger (signalled when the kernel wants the device back). */
  reqTrigger: EventFd | undefined;
  #unmaskFd: { efd: EventFd; stop: () => void } | undefined;
  #resendPending = false;
  #stormTraced = false;

  /** The interrupts of `fn`. */
  constructor(private readonly fn: SimPciFunction, private readonly env: VfioEnv) {}

  get #config() {
    return this.fn.model.config;
  }

  /**
   * `vdev->has_dyn_msix`: the device has an MSI-X capability and the platform's MSI domain can
   * add vectors while MSI-X is enabled (`pci_msix_can_alloc_dyn`); false without MSI-X.
   */
  get #hasDynMsix(): boolean {
    return msixTable(this.#config) !== undefined && this.env.dynamicMsix;
  }

  /** `vfio_pci_get_irq_count`. */
  count(index: number): number {
    const cfg = this.#config;
    switch (index) {
      case VFIO_PCI_INTX_IRQ_INDEX:
        return cfg.read(PCI.INTERRUPT_PIN, 1) !== 0 ? 1 : 0;
      case VFIO_PCI_MSI_IRQ_INDEX:
        return msiVectorCount(cfg);
      case VFIO_PCI_MSIX_IRQ_INDEX:
        return msixTable(cfg)?.entries ?? 0;
      case VFIO_PCI_ERR_IRQ_INDEX:
        return isPcie(cfg) ? 1 : 0;
      case VFIO_PCI_REQ_IRQ_INDEX:
        return 1;
      default:
        return 0;
    }
  }

  /** VFIO_DEVICE_GET_IRQ_INFO. */
  getInfo(user: Uint8Array): number {
    const minsz = offsetOfEnd(vfio_irq_info, "count");
    const info = readStruct(user, vfio_irq_info, minsz);
    if (info === undefined) return -ERRNO.EFAULT;
    if (info.argsz < minsz || info.index >= VFIO_PCI_NUM_IRQS) return -ERRNO.EINVAL;
    if (info.index === VFIO_PCI_ERR_IRQ_INDEX && !isPcie(this.#config)) return -ERRNO.EINVAL;
    info.flags = VFIO_IRQ_INFO_EVENTFD;
    info.count = this.count(info.index);
    if (info.index === VFIO_PCI_INTX_IRQ_INDEX) {
      info.flags |= VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED;
    } else if (info.index !== VFIO_PCI_MSIX_IRQ_INDEX || !this.#hasDynMsix) {
      info.flags |= VFIO_IRQ_INFO_NORESIZE;
    }
    return writeStruct(user, vfio_irq_info, info, minsz) ? 0 : -ERRNO.EFAULT;
  }

  /** VFIO_DEVICE_SET_IRQS: validation, data copy, dispatch (vfio.md §7.3). */
  setIrqs(process: SimProcess, user: Uint8Array): number {
    const minsz = offsetOfEnd(vfio_irq_set, "count");
    const hdr = readStruct(user, vfio_irq_set, minsz);
    if (hdr === undefined) return -ERRNO.EFAULT;
    const max = this.count(hdr.index);
    const known = VFIO_IRQ_SET_DATA_TYPE_MASK | VFIO_IRQ_SET_ACTION_TYPE_MASK;
    if (
      hdr.argsz < minsz || hdr.index >= VFIO_PCI_NUM_IRQS || hdr.count >= U32_MAX - hdr.start ||
      (hdr.flags & ~known) !== 0
    ) return -ERRNO.EINVAL;
    if (hdr.start >= max || hdr.start + hdr.count > max) return -ERRNO.EINVAL;
    const size = DATA_SIZE.get(hdr.flags & VFIO_IRQ_SET_DATA_TYPE_MASK);
    if (size === undefined) return -ERRNO.EINVAL;
    let data = new Uint8Array(0);
    if (size > 0) {
      if (hdr.argsz - minsz < hdr.count * size) return -ERRNO.EINVAL;
      const bytes = copyIn(user, minsz, hdr.count * size);
      if (bytes === undefined) return -ERRNO.EFAULT;
      data = bytes.slice();
    }
    return this.#dispatch(process, { ...hdr, data });
  }

  #dispatch(process: SimProcess, req: SetIrqs): number {
    const action = req.flags & VFIO_IRQ_SET_ACTION_TYPE_MASK;
    switch (req.index) {
      case VFIO_PCI_INTX_IRQ_INDEX:
        if (action === VFIO_IRQ_SET_ACTION_MASK) return this.#intxMask(req);
        if (action === VFIO_IRQ_SET_ACTION_UNMASK) return this.#intxUnmask(process, req);
        if (action === VFIO_IRQ_SET_ACTION_TRIGGER) return this.#intxTrigger(process, req);
        break;
      case VFIO_PCI_MSI_IRQ_INDEX:
      case VFIO_PCI_MSIX_IRQ_INDEX:
        if (action === VFIO_IRQ_SET_ACTION_TRIGGER) return this.#msiTrigger(process, req);
        break;
      case VFIO_PCI_ERR_IRQ_INDEX:
        if (action === VFIO_IRQ_SET_ACTION_TRIGGER && isPcie(this.#config)) {
          return this.#single(process, req, "errTrigger");
        }
        break;
      case VFIO_PCI_REQ_IRQ_INDEX:
        if (action === VFIO_IRQ_SET_ACTION_TRIGGER) return this.#single(process, req, "reqTrigger");
        break;
    }
    return -ERRNO.ENOTTY;
  }

  #fdAt(req: SetIrqs, i: number): number {
    return new DataView(req.data.buffer, req.data.byteOffset).getInt32(i * EVENTFD_ARG, true);
  }

  #boolAt(req: SetIrqs, i: number): boolean {
    return req.data[i] !== 0;
  }

  #type(req: SetIrqs): number {
    return req.flags & VFIO_IRQ_SET_DATA_TYPE_MASK;
  }

  // ---- INTx ----

  #intxMask(req: SetIrqs): number {
    if (this.mode !== "intx" || req.start !== 0 || req.count !== 1) return -ERRNO.EINVAL;
    const type = this.#type(req);
    if (type === VFIO_IRQ_SET_DATA_EVENTFD) return -ERRNO.ENOTTY;
    if (type === VFIO_IRQ_SET_DATA_NONE || this.#boolAt(req, 0)) this.intxMasked = true;
    return 0;
  }

  #intxUnmask(process: SimProcess, req: SetIrqs): number {
    if (this.mode !== "intx" || req.start !== 0 || req.count !== 1) return -ERRNO.EINVAL;
    const type = this.#type(req);
    if (
      type === VFIO_IRQ_SET_DATA_NONE || (type === VFIO_IRQ_SET_DATA_BOOL && this.#boolAt(req, 0))
    ) {
      this.#unmaskIntx();
      return 0;
    }
    if (type !== VFIO_IRQ_SET_DATA_EVENTFD) return 0;
    const fd = this.#fdAt(req, 0);
    this.#unmaskFd?.stop();
    this.#unmaskFd = undefined;
    if (fd < 0) return 0;
    const efd = eventfdFromFd(process, fd);
    if (typeof efd === "number") return efd;
    const onSignal = (e: EventFd): void => {
      e.consume();
      this.#unmaskFromEventfd();
    };
    this.#unmaskFd = { efd, stop: efd.listen(onSignal) };
    this.#stormTraced = false;
    if (efd.count > 0n) onSignal(efd);
    return 0;
  }

  #unmaskIntx(): void {
    if (!this.intxMasked) return;
    if (this.intxAsserted) {
      this.intxTrigger?.signal();
      return;
    }
    this.intxMasked = false;
  }

  /**
   * The unmask eventfd's virqfd: `vfio_pci_intx_unmask_handler` runs in the eventfd's wake-up,
   * but a still-asserted INTx is re-sent by its work item (`vfio_send_intx_eventfd` after
   * `schedule_work`, a no-op while one is pending), not from the signalling context.
   *
   * Documented deviation: when the unmask eventfd is the trigger eventfd, Linux's virqfd and
   * work item feed each other for as long as the device asserts INTx (a kernel-side storm no
   * reader ever sees, as the virqfd consumes every count); the simulator re-sends once, traces
   * the loop and leaves INTx masked, instead of running the storm forever.
   */
  #unmaskFromEventfd(): void {
    if (!this.intxMasked) return;
    if (!this.intxAsserted) {
      this.intxMasked = false;
      return;
    }
    if (this.#resendPending) return;
    this.#resendPending = true;
    this.env.clock.schedule(INTX_RESEND_NS, () => {
      this.#resendPending = false;
      if (this.mode !== "intx" || !this.intxMasked || !this.intxAsserted) return;
      if (this.#unmaskFd?.efd === this.intxTrigger) {
        if (this.#stormTraced) return;
        this.#stormTraced = true;
        this.env.trace(`vfio-pci ${this.fn.bdf}: INTx unmask eventfd is the trigger eventfd`);
      }
      this.intxTrigger?.signal();
    });
  }

  #intxTrigger(process: SimProcess, req: SetIrqs): number {
    const type = this.#type(req);
    if (this.mode === "intx" && req.count === 0 && type === VFIO_IRQ_SET_DATA_NONE) {
      this.#intxDisable();
      return 0;
    }
    if (!(this.mode === "intx" || this.mode === "none") || req.start !== 0 || req.count !== 1) {
      return -ERRNO.EINVAL;
    }
    if (type === VFIO_IRQ_SET_DATA_EVENTFD) {
      const fd = this.#fdAt(req, 0);
      let trigger: EventFd | undefined;
      if (fd >= 0) {
        const efd = eventfdFromFd(process, fd);
        if (typeof efd === "number") return efd;
        trigger = efd;
      }
      if (this.mode === "none") {
        this.mode = "intx";
        this.intxMasked = false;
      }
      this.intxTrigger = trigger;
      if (this.intxAsserted) this.intx(true);
      return 0;
    }
    if (this.mode !== "intx") return -ERRNO.EINVAL;
    if (type === VFIO_IRQ_SET_DATA_NONE || this.#boolAt(req, 0)) this.intxTrigger?.signal();
    return 0;
  }

  #intxDisable(): void {
    this.#unmaskFd?.stop();
    this.#unmaskFd = undefined;
    this.intxTrigger = undefined;
    this.intxMasked = false;
    this.mode = "none";
  }

  // ---- MSI / MSI-X ----

  #msiTrigger(process: SimProcess, req: SetIrqs): number {
    const mode = MODE_OF_INDEX[req.index];
    const type = this.#type(req);
    if (this.mode === mode && req.count === 0 && type === VFIO_IRQ_SET_DATA_NONE) {
      this.#msiDisable();
      return 0;
    }
    if (!(this.mode === mode || this.mode === "none")) return -ERRNO.EINVAL;
    if (type === VFIO_IRQ_SET_DATA_EVENTFD) {
      if (this.mode === mode) return this.#setBlock(process, req);
      this.#msiEnable(mode, req.start + req.count);
      const r = this.#setBlock(process, req);
      if (r < 0) this.#msiDisable();
      return r;
    }
    if (this.mode !== mode) return -ERRNO.EINVAL;
    for (let i = req.start; i < req.start + req.count; i++) {
      const trigger = this.vectors[i];
      if (trigger === undefined) continue;
      if (type === VFIO_IRQ_SET_DATA_NONE || this.#boolAt(req, i - req.start)) trigger.signal();
    }
    return 0;
  }

  #setBlock(process: SimProcess, req: SetIrqs): number {
    let i = 0;
    for (; i < req.count; i++) {
      const r = this.#setVector(process, req.start + i, this.#fdAt(req, i));
      if (r < 0) {
        for (let j = req.start; j < req.start + i; j++) this.#setVector(process, j, -1);
        return r;
      }
    }
    return 0;
  }

  /** `vfio_msi_set_vector_signal`. */
  #setVector(process: SimProcess, vector: number, fd: number): number {
    const allocated = vector < this.vectors.length;
    if (this.vectors[vector] !== undefined) {
      this.vectors[vector] = undefined;
      this.#maskMsixEntry(vector, true);
    }
    if (fd < 0) return 0;
    if (!allocated) {
      if (this.mode !== "msix" || !this.#hasDynMsix) return -ERRNO.EINVAL;
      this.#programVectors(vector + 1);
    }
    const efd = eventfdFromFd(process, fd);
    if (typeof efd === "number") return efd;
    this.vectors[vector] = efd;
    this.#maskMsixEntry(vector, false);
    return 0;
  }

  /** `vfio_msi_enable`: allocate `nvec` vectors and program the capability. */
  #msiEnable(mode: IrqMode, nvec: number): void {
    this.mode = mode;
    this.vectors = [];
    const cfg = this.#config;
    if (mode === "msi") {
      const cap = findCapability(cfg, PCI.CAP_ID_MSI);
      const flags = cfg.read(cap + MSI.FLAGS, 2);
      const is64 = (flags & MSI.FLAGS_64BIT) !== 0;
      cfg.write(cap + MSI.ADDRESS_LO, 4, X86_MSI_ADDRESS);
      if (is64) cfg.write(cap + MSI.ADDRESS_HI, 4, 0);
      cfg.write(cap + (is64 ? MSI.DATA_64 : MSI.DATA_32), 2, MSI_DATA_BASE);
      const mme = Math.ceil(Math.log2(Math.max(1, nvec)));
      const next = (flags & ~MSI.FLAGS_QSIZE) | (mme << MSI.FLAGS_QSIZE_SHIFT) | MSI.FLAGS_ENABLE;
      cfg.write(cap + MSI.FLAGS, 2, next);
      this.vectors.length = nvec;
    } else {
      const table = msixTable(cfg)!;
      const flags = cfg.read(table.cap + MSIX.FLAGS, 2);
      cfg.write(table.cap + MSIX.FLAGS, 2, (flags | MSIX.FLAGS_ENABLE) & ~MSIX.FLAGS_MASKALL);
      for (let i = 0; i < table.entries; i++) this.#maskMsixEntry(i, true, true);
      this.#programVectors(nvec);
    }
    this.env.trace(`vfio-pci ${this.fn.bdf}: ${mode} enabled, ${nvec} vector(s)`);
  }

  #programVectors(nvec: number): void {
    const table = msixTable(this.#config);
    for (let i = this.vectors.length; i < nvec; i++) {
      if (table !== undefined && i < table.entries) {
        const entry = table.offset + i * MSIX.ENTRY_SIZE;
        const model = this.fn.model;
        model.mmioWrite(table.bar, entry + MSIX.ENTRY_LOWER_ADDR, 4, X86_MSI_ADDRESS);
        model.mmioWrite(table.bar, entry + MSIX.ENTRY_UPPER_ADDR, 4, 0);
        model.mmioWrite(table.bar, entry + MSIX.ENTRY_DATA, 4, MSI_DATA_BASE + i);
      }
    }
    if (this.vectors.length < nvec) this.vectors.length = nvec;
  }

  #maskMsixEntry(vector: number, masked: boolean, force = false): void {
    if (this.mode !== "msix" && !force) return;
    const table = msixTable(this.#config);
    if (table === undefined || vector >= table.entries) return;
    const at = table.offset + vector * MSIX.ENTRY_SIZE + MSIX.ENTRY_VECTOR_CTRL;
    this.fn.model.mmioWrite(table.bar, at, 4, masked ? MSIX.ENTRY_CTRL_MASKBIT : 0);
  }

  /** `vfio_msi_disable`. */
  #msiDisable(): void {
    const cfg = this.#config;
    if (this.mode === "msi") {
      const cap = findCapability(cfg, PCI.CAP_ID_MSI);
      const flags = cfg.read(cap + MSI.FLAGS, 2);
      cfg.write(cap + MSI.FLAGS, 2, flags & ~(MSI.FLAGS_ENABLE | MSI.FLAGS_QSIZE));
    } else if (this.mode === "msix") {
      for (let i = 0; i < this.vectors.length; i++) this.#maskMsixEntry(i, true);
      const table = msixTable(cfg)!;
      const flags = cfg.read(table.cap + MSIX.FLAGS, 2);
      cfg.write(table.cap + MSIX.FLAGS, 2, flags & ~MSIX.FLAGS_ENABLE);
    }
    this.vectors = [];
    this.mode = "none";
  }

  // ---- ERR / REQ ----

  #single(process: SimProcess, req: SetIrqs, slot: "errTrigger" | "reqTrigger"): number {
    if (req.start !== 0 || req.count > 1) return -ERRNO.EINVAL;
    const type = this.#type(req);
    if (type === VFIO_IRQ_SET_DATA_NONE) {
      const current = this[slot];
      if (current === undefined) return -ERRNO.EINVAL;
      if (req.count > 0) current.signal();
      else this[slot] = undefined;
      return 0;
    }
    if (req.count === 0) return -ERRNO.EINVAL;
    if (type === VFIO_IRQ_SET_DATA_BOOL) {
      if (this.#boolAt(req, 0)) this[slot]?.signal();
      return 0;
    }
    const fd = this.#fdAt(req, 0);
    if (fd === -1) {
      this[slot] = undefined;
      return 0;
    }
    if (fd < -1) return -ERRNO.EINVAL; // neither an eventfd nor -1 (disable)
    const efd = eventfdFromFd(process, fd);
    if (typeof efd === "number") return efd;
    this[slot] = efd;
    return 0;
  }

  /** Disable everything (device close / reset). */
  disableAll(): void {
    if (this.mode === "intx") this.#intxDisable();
    else if (this.mode !== "none") this.#msiDisable();
    this.errTrigger = undefined;
    this.reqTrigger = undefined;
  }

  /** Re-program the capability of the active MSI/MSI-X mode (after a function reset). */
  reprogram(): void {
    if (this.mode !== "msi" && this.mode !== "msix") return;
    const vectors = this.vectors;
    const mode = this.mode;
    this.#msiEnable(mode, vectors.length);
    this.vectors = vectors;
    vectors.forEach((efd, i) => {
      if (efd !== undefined) this.#maskMsixEntry(i, false);
    });
  }

  // ---- InterruptSink: the device model raises interrupts here ----

  /** MSI message `vector` from the device. */
  msi(vector: number): void {
    if (this.mode === "msi") this.vectors[vector]?.signal();
  }

  /** MSI-X entry `vector` from the device. */
  msix(vector: number): void {
    if (this.mode === "msix") this.vectors[vector]?.signal();
  }

  /** INTx level change from the device: deliver and auto-mask on assertion. */
  intx(asserted: boolean): void {
    this.intxAsserted = asserted;
    if (!asserted || this.mode !== "intx" || this.intxMasked) return;
    this.intxMasked = true;
    this.intxTrigger?.signal();
  }
}
