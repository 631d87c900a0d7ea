/**
 * A function bound to vfio-pci (`struct vfio_pci_core_device`): its open count, its interrupt
 * state, its ioeventfds, and what the kernel does on first open and last close (enable the
 * device; on close disable interrupts, drop ioeventfds, stop bus mastering, reset if it can).
 *
 * @module
 */

import { ERRNO } from "../../ffi/errno.ts";
import { resetFunction, type SimPciFunction } from "../kernel/pci_function.ts";
import type { InterruptSink } from "../pci/device.ts";
import type { VfioEnv } from "./env.ts";
import type { IommufdFile } from "./iommufd_link.ts";
import { VfioIrqs } from "./irqs.ts";
import { PCI } from "./pci_caps.ts";
import type { EventFd } from "../kernel/eventfd.ts";

/** One registered ioeventfd (`struct vfio_pci_ioeventfd`). */
export interface IoEventFd {
  /** BAR index. */
  readonly bar: number;
  /** Offset in the BAR. */
  readonly pos: number;
  /** Value written. */
  readonly data: bigint;
  /** Access size (1, 2, 4, 8). */
  readonly count: 1 | 2 | 4 | 8;
  /** The eventfd. */
  readonly efd: EventFd;
  /** Stop listening. */
  readonly stop: () => void;
}

/** Where a device model's interrupts go: re-pointed when VFIO takes or releases the device. */
export class IrqRouter implements InterruptSink {
  /** The current receiver, or undefined (interrupts are dropped). */
  target: InterruptSink | undefined;
  /** MSI. */
  msi(vector: number): void {
    this.target?.msi(vector);
  }
  /** MSI-X. */
  msix(vector: number): void {
    this.target?.msix(vector);
  }
  /** INTx. */
  intx(asserted: boolean): void {
    this.target?.intx(asserted);
  }
}

/** A vfio-pci device. */
export class VfioPciDevice {
  /** `open_count`. */
  openCount = 0;
  /** Opened through its cdev (`cdev_opened`). */
  cdevOpened = false;
  /** The iommufd the open device is bound to, and its devid. */
  iommufd: { ctx: IommufdFile; devid: number } | undefined;
  /** Interrupt state. */
  readonly irqs: VfioIrqs;
  /** Registered ioeventfds. */
  readonly ioeventfds: IoEventFd[] = [];
  /** Runtime low-power state entered through DEVICE_FEATURE. */
  lowPower = false;
  /** Device files referring to the device (each holds its registration, as on Linux). */
  files = 0;
  /** Called once the last device file is released, while the device is being unregistered. */
  onLastFile: (() => void) | undefined;

  /** The vfio-pci device of `fn`; `router` is where its model raises interrupts. */
  constructor(
    readonly fn: SimPciFunction,
    readonly env: VfioEnv,
    private readonly router: IrqRouter,
  ) {
    this.irqs = new VfioIrqs(fn, env);
  }

  /** `vfio_pci_core_match`: 1 match, 0 no match, -EINVAL for bad options. */
  matchName(name: string): number {
    const own = this.fn.bdf;
    if (!name.startsWith(own)) return 0;
    if (name.length === own.length) return 1;
    const rest = name.slice(own.length);
    if (rest[0] !== " ") return 0;
    // Options after the name: only `vf_token=` exists, and this function is neither PF nor VF.
    return rest.trim() === "" ? 1 : -ERRNO.EINVAL;
  }

  /**
   * `vfio_pci_core_request`: the kernel wants the device back (it is being removed); relay the
   * request to user space through the request eventfd. `count` numbers the attempts (Linux
   * repeats every 10 s and notes every tenth).
   */
  request(count: number): void {
    const trigger = this.irqs.reqTrigger;
    if (trigger !== undefined) {
      if (count % REQUEST_NOTICE_EVERY === 0) {
        this.env.trace(`vfio-pci ${this.fn.bdf}: Relaying device request to user (#${count})`);
      }
      trigger.signal();
    } else if (count === 0) {
      this.env.trace(
        `vfio-pci ${this.fn.bdf}: No device request channel registered, blocked until released by user`,
      );
    }
  }

  /** `vfio_pci_open_device` (first open): enable decoding for the BARs it has. */
  enable(): void {
    const cfg = this.fn.model.config;
    if (this.fn.model.resetWorks) resetFunction(this.fn);
    let cmd = cfg.read(PCI.COMMAND, 2);
    for (const bar of this.fn.model.bars) {
      if (bar.size === 0) continue;
      cmd |= bar.kind === "io" ? PCI.COMMAND_IO : PCI.COMMAND_MEMORY;
    }
    cfg.write(PCI.COMMAND, 2, cmd);
    this.router.target = this.irqs;
    this.fn.group.iommu.changeOwner?.(this.fn.requester); // vfio_pci_core_finish_enable
    this.env.trace(`vfio-pci ${this.fn.bdf}: enabled`);
  }

  /** `vfio_pci_close_device` (last close). */
  disable(): void {
    this.irqs.disableAll();
    for (const io of this.ioeventfds.splice(0)) io.stop();
    const cfg = this.fn.model.config;
    cfg.write(PCI.COMMAND, 2, cfg.read(PCI.COMMAND, 2) & ~PCI.COMMAND_MASTER);
    if (this.fn.model.resetWorks) resetFunction(this.fn);
    this.router.target = undefined;
    this.lowPower = false;
    this.fn.group.iommu.changeOwner?.(this.fn.requester); // eeh_dev_release
    this.env.trace(`vfio-pci ${this.fn.bdf}: disabled`);
  }

  /** Function reset keeping the kernel's interrupt programming (`pci_try_reset_function`). */
  resetFunction(): void {
    const cfg = this.fn.model.config;
    const command = cfg.read(PCI.COMMAND, 2);
    const slots = this.fn.model.bars.flatMap((b) =>
      b.kind === "mem64" ? [b.index, b.index + 1] : [b.index]
    );
    const saved = slots.map((i) => cfg.read(BAR0 + BAR_STRIDE * i, 4));
    resetFunction(this.fn);
    slots.forEach((i, n) => cfg.write(BAR0 + BAR_STRIDE * i, 4, saved[n]));
    cfg.write(PCI.COMMAND, 2, command);
    this.irqs.reprogram();
  }
}

/** `vfio_pci_core_request` notes every tenth relayed request. */
const REQUEST_NOTICE_EVERY = 10;
/** Offset of BAR0 in config space. */
const BAR0 = 0x10;
/** Bytes per BAR register. */
const BAR_STRIDE = 4;
