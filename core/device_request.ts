/**
 * The VFIO device-request interrupt (VFIO_PCI_REQ_IRQ_INDEX): the kernel signals it when it
 * wants the device back — its driver is being unbound, or the device was surprise-removed
 * (`vfio_pci_core_request`, repeated every 10 s while the device stays open). A driver that
 * watches it can stop touching the device and close it instead of blocking the removal.
 *
 * @example
 * ```ts
 * using dev = openPciDevice(bdf, { kernel });
 * using request = DeviceRequest.watch(dev.device);
 * // … in the driver's idle loop:
 * if (request.pending()) dev.close(); // the device is being removed
 * ```
 *
 * @module
 */

import { ERRNO } from "../ffi/errno.ts";
import { EFD_CLOEXEC, EFD_NONBLOCK, type PollFd, POLLIN } from "../ffi/kernel.ts";
import { encode } from "../ffi/uapi/layout.ts";
import type { VfioDevice } from "./device.ts";
import {
  VFIO_DEVICE_SET_IRQS,
  vfio_irq_set,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_PCI_REQ_IRQ_INDEX,
} from "../ffi/uapi/mod.ts";
import { check } from "./errors.ts";
import { closeQuietly, ioctlChecked, runAll } from "./syscall.ts";

/** Bytes of an eventfd counter. */
const COUNTER_SIZE = 8;
/** Bytes of one s32 fd in SET_IRQS data. */
const FD_SIZE = 4;
/** The fd that un-registers an eventfd trigger. */
const NO_FD = -1;

/** A registered device-request eventfd (see the module doc). */
export class DeviceRequest {
  readonly #device: VfioDevice;
  readonly #fd: number;
  readonly #counter = new Uint8Array(COUNTER_SIZE);
  #requests = 0;
  #closed = false;

  private constructor(device: VfioDevice, fd: number) {
    this.#device = device;
    this.#fd = fd;
  }

  /** Register an eventfd on the device's request index; throws a VfioError when refused. */
  static watch(device: VfioDevice): DeviceRequest {
    const kernel = device.kernel;
    const fd = check(kernel.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), {
      operation: "eventfd",
      device: device.name,
    });
    try {
      setTrigger(device, fd);
    } catch (e) {
      closeQuietly(kernel, fd);
      throw e;
    }
    return new DeviceRequest(device, fd);
  }

  /** Requests seen so far (each read of the eventfd adds what it counted). */
  get requests(): number {
    return this.#requests;
  }

  /** Whether the kernel has asked for the device (since the watch began); does not block. */
  pending(): boolean {
    this.#drain();
    return this.#requests > 0;
  }

  /** Wait up to `timeoutMs` for a request; true when one came. */
  async wait(timeoutMs: number): Promise<boolean> {
    if (this.pending()) return true;
    const fds: PollFd[] = [{ fd: this.#fd, events: POLLIN, revents: 0 }];
    const r = await this.#device.kernel.pollAsync(fds, Math.max(0, timeoutMs));
    check(r < 0 && r !== -ERRNO.EINTR ? r : 0, { operation: "poll", device: this.#device.name });
    return this.pending();
  }

  /** Unregister the eventfd and close it. Cleanup continues past errors; the first is thrown. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    runAll([
      () => setTrigger(this.#device, NO_FD),
      () => check(this.#device.kernel.close(this.#fd), { operation: "close eventfd" }),
    ]);
  }

  /** Same as {@link close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  #drain(): void {
    if (this.#closed) return;
    const n = this.#device.kernel.read(this.#fd, this.#counter);
    if (n === -ERRNO.EAGAIN) return;
    check(n, { operation: "read eventfd", device: this.#device.name });
    this.#requests += Number(new DataView(this.#counter.buffer).getBigUint64(0, true));
  }
}

/** SET_IRQS on the request index: DATA_EVENTFD | ACTION_TRIGGER with `fd` (-1 unregisters). */
function setTrigger(device: VfioDevice, fd: number): void {
  const layout = vfio_irq_set;
  const bytes = encode(layout, {
    argsz: layout.size + FD_SIZE,
    flags: VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
    index: VFIO_PCI_REQ_IRQ_INDEX,
    start: 0,
    count: 1,
  }, FD_SIZE);
  new DataView(bytes.buffer).setInt32(layout.size, fd, true);
  ioctlChecked(device.kernel, device.fd, VFIO_DEVICE_SET_IRQS, bytes, device.name, {
    EINVAL: "the device has no request interrupt (VFIO_PCI_REQ_IRQ_INDEX)",
  });
}
