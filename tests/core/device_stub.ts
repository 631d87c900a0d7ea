/**
 * A scripted VFIO device for the device, interrupt and openPciDevice tests: a RecordingKernel that
 * answers the device-fd ioctls from a region table (with raw capability chains), a config-space
 * byte array behind the CONFIG region, captured device mmaps, and eventfds with real counters
 * whose async polls stay pending until an eventfd is written (so a test can see that no poll is
 * left behind). Replies are written with the offsets of shared/reference/vfio.md §10 by hand.
 *
 * @module
 */

import { ERRNO } from "../../ffi/errno.ts";
import { type Mmio, type PollFd, POLLIN } from "../../ffi/kernel.ts";
import { RecordingKernel, RecordingMmio } from "../helpers/recording_kernel.ts";
import { io, put, u32At } from "./vfio_test_helpers.ts";

// vfio.md §2: device-fd ioctls.
/** VFIO_DEVICE_GET_INFO. */
export const GET_INFO = io(0x6b);
/** VFIO_DEVICE_GET_REGION_INFO. */
export const GET_REGION_INFO = io(0x6c);
/** VFIO_DEVICE_GET_IRQ_INFO. */
export const GET_IRQ_INFO = io(0x6d);
/** VFIO_DEVICE_SET_IRQS. */
export const SET_IRQS = io(0x6e);
/** VFIO_DEVICE_RESET. */
export const RESET = io(0x6f);
/** VFIO_DEVICE_GET_PCI_HOT_RESET_INFO. */
export const HOT_RESET_INFO = io(0x70);
/** VFIO_DEVICE_FEATURE. */
export const FEATURE = io(0x75);

/** The device fd the stub hands out. */
export const DEVICE_FD = 40;
/** vfio-pci's region offsets: index << 40 (a kernel convention the client must not assume). */
export const CONFIG_OFFSET = 7n << 40n;

/** One region the stub reports. */
export interface StubRegion {
  /** VFIO_REGION_INFO_FLAG_* bits (CAPS is added when `caps` is given). */
  flags: number;
  /** Size in bytes. */
  size: bigint;
  /** Offset in the device fd. */
  offset: bigint;
  /** A raw capability chain laid out as if it started at byte 32 of the reply. */
  caps?: Uint8Array;
}

interface PendingPoll {
  fds: PollFd[];
  resolve: (n: number) => void;
}

/** The scripted device kernel. */
export class DeviceKernel extends RecordingKernel {
  /** Regions by index. */
  readonly regions: Map<number, StubRegion> = new Map();
  /** Config space (256 or 4096 bytes). */
  config: Uint8Array = new Uint8Array(256);
  /** Vectors per IRQ index (INTx, MSI, MSI-X, ERR, REQ). */
  irqCounts: number[] = [1, 4, 16, 1, 1];
  /** Device info flags (PCI | RESET). */
  deviceFlags = 0x3;
  /** Errno per request (negative), to make an ioctl fail. */
  readonly fail: Map<number, number> = new Map();
  /** Make mmapDevice fail with this -errno. */
  mmapError: number | undefined;
  /** Device mappings made: offset, length and the Mmio. */
  readonly maps: { offset: bigint; length: number; mmio: RecordingMmio }[] = [];
  /** Mappings unmapped. */
  readonly unmapped: Mmio[] = [];
  /** Make munmap fail with this -errno. */
  munmapError: number | undefined;
  /** Eventfd counters by fd. */
  readonly counters: Map<number, bigint> = new Map();
  /** Results (-errno) the next async polls return before looking at any fd. */
  readonly pollErrors: number[] = [];
  /** Async polls still waiting. */
  readonly pending: Set<PendingPoll> = new Set();
  /** Bytes behind pread/pwrite of non-config regions, by absolute fd offset. */
  readonly barBytes: Map<bigint, number> = new Map();
  /** Config writes that the device ignores (bits forced to 0 on read-back), by offset. */
  readonly stuckZero: Map<number, number> = new Map();

  /** A device with the given config size; the fd is registered as open. */
  constructor(configSize = 256) {
    super();
    this.config = new Uint8Array(configSize);
    this.openFds.set(DEVICE_FD, "vfio-device");
    this.regions.set(7, { flags: 0x3, size: BigInt(configSize), offset: CONFIG_OFFSET });
    this.onIoctl((c) => this.#answer(c.op, c.request, c.arg, c.offset));
  }

  /** Simulate an interrupt: add `n` to an eventfd and wake polls. */
  signal(fd: number, n = 1n): void {
    this.counters.set(fd, (this.counters.get(fd) ?? 0n) + n);
    this.#wake();
  }

  /** Resolve every pending poll as timed out. */
  expirePolls(): void {
    for (const p of this.pending) {
      for (const f of p.fds) f.revents = 0;
      p.resolve(0);
    }
    this.pending.clear();
  }

  /** The eventfds still open. */
  openEventfds(): number[] {
    return [...this.openFds].filter(([, what]) => what === "anon_inode:[eventfd]").map(([fd]) =>
      fd
    );
  }

  override eventfd(initialValue: number, flags: number): number {
    const fd = super.eventfd(initialValue, flags);
    this.counters.set(fd, BigInt(initialValue));
    return fd;
  }

  override close(fd: number): number {
    this.counters.delete(fd);
    return super.close(fd);
  }

  override read(fd: number, buffer: Uint8Array): number {
    const value = this.counters.get(fd);
    if (value === undefined) return super.read(fd, buffer);
    const result = value === 0n ? -ERRNO.EAGAIN : 8;
    if (value !== 0n) {
      new DataView(buffer.buffer, buffer.byteOffset).setBigUint64(0, value, true);
      this.counters.set(fd, 0n);
    }
    this.calls.push({ op: "read", fd, result });
    return result;
  }

  override write(fd: number, buffer: Uint8Array): number {
    const result = super.write(fd, buffer);
    if (this.counters.has(fd)) {
      this.signal(fd, new DataView(buffer.buffer, buffer.byteOffset).getBigUint64(0, true));
    }
    return result;
  }

  override poll(fds: PollFd[], _timeoutMs: number): number {
    this.calls.push({ op: "poll", fd: -1 });
    return this.#scan(fds);
  }

  override pollAsync(fds: PollFd[], timeoutMs: number): Promise<number> {
    this.calls.push({ op: "pollAsync", fd: -1 });
    const error = this.pollErrors.shift();
    if (error !== undefined) return Promise.resolve(error);
    const ready = this.#scan(fds);
    if (ready > 0 || timeoutMs === 0) return Promise.resolve(ready);
    return new Promise((resolve) => this.pending.add({ fds, resolve }));
  }

  override mmapDevice(fd: number, offset: bigint, length: number): Mmio | number {
    if (this.mmapError !== undefined) {
      this.calls.push({ op: "mmapDevice", fd, offset, result: this.mmapError });
      return this.mmapError;
    }
    const mmio = super.mmapDevice(fd, offset, length) as RecordingMmio;
    this.maps.push({ offset, length, mmio });
    return mmio;
  }

  override munmap(mapping: Parameters<RecordingKernel["munmap"]>[0]): number {
    if (this.munmapError !== undefined) return this.munmapError;
    if (!("address" in mapping)) this.unmapped.push(mapping);
    return super.munmap(mapping);
  }

  #scan(fds: PollFd[]): number {
    let ready = 0;
    for (const f of fds) {
      const value = this.counters.get(f.fd) ?? 0n;
      f.revents = value > 0n ? POLLIN & f.events : 0;
      if (f.revents !== 0) ready++;
    }
    return ready;
  }

  #wake(): void {
    for (const p of [...this.pending]) {
      const ready = this.#scan(p.fds);
      if (ready > 0) {
        this.pending.delete(p);
        p.resolve(ready);
      }
    }
  }

  #answer(
    op: string,
    request: number | undefined,
    arg: Uint8Array | undefined,
    offset: bigint | undefined,
  ): number | undefined {
    if (op === "pread" || op === "pwrite") return this.#rw(op, arg!, offset!);
    if (op !== "ioctl" || request === undefined) return undefined;
    const failure = this.fail.get(request);
    if (failure !== undefined) return failure;
    switch (request) {
      case GET_INFO:
        put(arg!, [[4, 4, this.deviceFlags], [8, 4, 9], [12, 4, 5], [16, 4, 0]]);
        return 0;
      case GET_REGION_INFO:
        return this.#regionInfo(arg!);
      case GET_IRQ_INFO: {
        const index = u32At(arg!, 8);
        if (index >= this.irqCounts.length) return -ERRNO.EINVAL;
        const flags = index === 0 ? 0x7 : 0x9; // INTx EVENTFD|MASKABLE|AUTOMASKED, else |NORESIZE
        put(arg!, [[4, 4, flags], [12, 4, this.irqCounts[index]]]);
        return 0;
      }
      case SET_IRQS:
      case RESET:
        return 0;
    }
    return undefined;
  }

  #regionInfo(arg: Uint8Array): number {
    const argsz = u32At(arg, 0);
    const region = this.regions.get(u32At(arg, 8));
    if (region === undefined) return -ERRNO.EINVAL;
    const caps = region.caps;
    const flags = region.flags | (caps ? 0x8 : 0);
    put(arg, [[4, 4, flags], [12, 4, 0], [16, 8, region.size], [24, 8, region.offset]]);
    if (caps !== undefined) {
      if (argsz < 32 + caps.length) put(arg, [[0, 4, 32 + caps.length]]);
      else {
        arg.set(caps, 32);
        put(arg, [[12, 4, 32]]);
      }
    }
    return 0;
  }

  #rw(op: string, buffer: Uint8Array, offset: bigint): number {
    if (offset >= CONFIG_OFFSET && offset < CONFIG_OFFSET + BigInt(this.config.length)) {
      const at = Number(offset - CONFIG_OFFSET);
      if (at + buffer.length > this.config.length) return -ERRNO.EINVAL;
      if (op === "pread") buffer.set(this.config.subarray(at, at + buffer.length));
      else {
        this.config.set(buffer, at);
        const stuck = this.stuckZero.get(at);
        if (stuck !== undefined) this.config[at] &= ~stuck;
      }
      return buffer.length;
    }
    for (let i = 0; i < buffer.length; i++) {
      const at = offset + BigInt(i);
      if (op === "pread") buffer[i] = this.barBytes.get(at) ?? 0;
      else this.barBytes.set(at, buffer[i]);
    }
    return buffer.length;
  }
}

/** Write a little-endian value into config space. */
export function setConfig(k: DeviceKernel, offset: number, width: 1 | 2 | 4, value: number): void {
  const view = new DataView(k.config.buffer);
  if (width === 1) view.setUint8(offset, value);
  else if (width === 2) view.setUint16(offset, value, true);
  else view.setUint32(offset, value >>> 0, true);
}
