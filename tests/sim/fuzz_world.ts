/**
 * The fuzzer's world: the fds a round holds, the object ids and mapped ranges earlier answers
 * handed out, how a round opens its fds (type1, iommufd compat, cdev, sPAPR v1/v2), and the
 * normal session that must still work after fuzzing.
 *
 * @module
 */

import type { Kernel, MappedMemory } from "../../ffi/kernel.ts";
import { O_RDWR } from "../../ffi/kernel.ts";
import { ioctlEncode } from "../../ffi/ioctl.ts";
import { Rng } from "../helpers/rng.ts";
import type { FdKind, IdKind, MappedRange, TemplateWorld } from "./fuzz_templates.ts";
import type { SetupMode } from "./fuzz_config.ts";
import type { IoctlStats } from "./fuzz_stats.ts";

/** An fd the fuzzer holds, with what it is. */
export interface PoolEntry {
  fd: number;
  kind: FdKind;
  /** Opened by the round's setup: kept open unless a random close picks it. */
  fixed?: boolean;
}

/** The device a round works on. */
export interface RoundDevice {
  readonly bdf: string;
  readonly group: number;
  readonly cdev: string | undefined;
}

/** What a round works with. */
export interface World extends TemplateWorld {
  readonly kernel: Kernel;
  readonly rng: Rng;
  pool: PoolEntry[];
  readonly buffers: MappedMemory[];
  readonly scratch: MappedMemory;
  readonly devices: readonly RoundDevice[];
  /** The device of this round. */
  device: RoundDevice;
  readonly ids: Map<IdKind, number[]>;
  mapped: MappedRange[];
  readonly stats: IoctlStats;
  /** Re-establishes the round's setup state (errors ignored), run every REARM_EVERY calls. */
  rearm: () => void;
}

/** The _IO request number of VFIO/iommufd command `nr` on this kernel's architecture. */
export function req(k: Kernel, nr: number): number {
  return ioctlEncode(k.ioctlArch, "none", 0x3b, nr, 0);
}

/** A little-endian u32 into `bytes` at `off`. */
export function u32At(bytes: Uint8Array, off: number, value: number): void {
  new DataView(bytes.buffer, bytes.byteOffset).setUint32(off, value >>> 0, true);
}

function u32Of(bytes: Uint8Array, off: number): number {
  return new DataView(bytes.buffer, bytes.byteOffset).getUint32(off, true);
}

/** Pages locked by the process (/proc/self/status VmLck). */
export function vmLckPages(kernel: Kernel): number {
  const text = kernel.readFile("/proc/self/status");
  if (typeof text !== "string") throw new Error(`/proc/self/status: ${text}`);
  const m = /VmLck:\s+(\d+) kB/.exec(text);
  if (!m) throw new Error("no VmLck line in /proc/self/status");
  return (Number(m[1]) * 1024) / kernel.pageSize;
}

/** The devices of a machine: group and cdev from sysfs. */
export function roundDevices(k: Kernel, bdfs: readonly string[]): RoundDevice[] {
  return bdfs.map((bdf) => {
    const link = k.readlink(`/sys/bus/pci/devices/${bdf}/iommu_group`);
    if (typeof link === "number") throw new Error(`${bdf}: no IOMMU group`);
    const cdevs = k.readdir(`/sys/bus/pci/devices/${bdf}/vfio-dev`);
    return {
      bdf,
      group: Number(link.split("/").pop()),
      cdev: typeof cdevs === "number" ? undefined : `/dev/vfio/devices/${cdevs[0]}`,
    };
  });
}

/** Record an id the kernel handed out. */
export function remember(w: World, kind: IdKind, id: number): void {
  const list = w.ids.get(kind) ?? [];
  list.push(id);
  w.ids.set(kind, list);
}

/** VFIO_SPAPR_TCE_v2_IOMMU and VFIO_SPAPR_TCE_IOMMU, VFIO_TYPE1_IOMMU and TYPE1v2. */
const SPAPR_V2 = 7;
const SPAPR_V1 = 2;

/** Open the fds of a round; `mode` decides who owns the group. */
export function setUpRound(w: World, mode: SetupMode): void {
  const k = w.kernel;
  const r = (nr: number) => req(k, nr);
  w.ids.clear();
  w.mapped = [];
  w.device = w.rng.pick(w.devices);
  const add = (fd: number, kind: FdKind) => {
    if (fd >= 0) w.pool.push({ fd, kind, fixed: true });
    return fd;
  };
  const arg32 = (v: number) => {
    const b = new Uint8Array(4);
    u32At(b, 0, v);
    return b;
  };
  add(k.open("/dev/vfio/vfio", O_RDWR), "container");
  add(k.eventfd(0, 0), "eventfd");
  const spapr = mode === "spapr-v2" || mode === "spapr-v1";
  const iommufd = spapr ? -1 : add(k.open("/dev/iommu", O_RDWR), "iommufd");
  if (iommufd >= 0) {
    for (let i = 0; i < 2; i++) {
      const a = new Uint8Array(12);
      u32At(a, 0, 12);
      if (k.ioctl(iommufd, r(0x81), a) === 0) remember(w, "ioas", u32Of(a, 8));
    }
    const fa = new Uint8Array(16);
    u32At(fa, 0, 16);
    if (k.ioctl(iommufd, r(0x8e), fa) === 0) {
      remember(w, "fault", u32Of(fa, 8));
      add(u32Of(fa, 12), "fault");
    }
  }
  if (mode === "cdev" && w.device.cdev !== undefined) {
    const d = add(k.open(w.device.cdev, O_RDWR), "cdev");
    const bind = new Uint8Array(16);
    u32At(bind, 0, 16);
    u32At(bind, 8, iommufd);
    if (k.ioctl(d, r(118), bind) === 0) remember(w, "device", u32Of(bind, 12));
    const at = new Uint8Array(12);
    u32At(at, 0, 12);
    u32At(at, 8, w.ids.get("ioas")?.[0] ?? 1);
    if (k.ioctl(d, r(119), at) === 0) remember(w, "hwpt", u32Of(at, 8));
    w.rearm = () => {
      k.ioctl(d, r(118), bind);
      k.ioctl(d, r(119), at);
    };
    return;
  }
  const type = mode === "spapr-v2" ? SPAPR_V2 : mode === "spapr-v1" ? SPAPR_V1 : w.rng.pick([1, 3]);
  const container = mode === "compat"
    ? add(k.open("/dev/iommu", O_RDWR), "iommufd")
    : add(k.open("/dev/vfio/vfio", O_RDWR), "container");
  const g = add(k.open(`/dev/vfio/${w.device.group}`, O_RDWR), "group");
  const attach = () => {
    k.ioctl(g, r(104), arg32(container));
    k.ioctl(container, r(102), type);
  };
  attach();
  add(k.ioctl(g, r(106), new TextEncoder().encode(`${w.device.bdf}\0`)), "device");
  if (w.device.cdev !== undefined) add(k.open(w.device.cdev, O_RDWR), "cdev");
  w.rearm = attach;
}

/** A fresh world for a machine's kernel. */
export function newWorld(
  k: Kernel,
  seed: number,
  devices: RoundDevice[],
  stats: IoctlStats,
): World {
  const buffers = [k.mmapAnonymous(0x10000), k.mmapAnonymous(0x200000, { hugePages: true })];
  const scratch = k.mmapAnonymous(0x1000);
  if (buffers.some((b) => typeof b === "number") || typeof scratch === "number") {
    throw new Error("mmap failed");
  }
  return {
    kernel: k,
    rng: new Rng(seed),
    pool: [],
    buffers: buffers as MappedMemory[],
    scratch,
    devices,
    device: devices[0],
    ids: new Map(),
    mapped: [],
    stats,
    rearm: () => {},
  };
}

/**
 * A normal session on `device` after the fuzzing (map, GET_INFO, unmap; no DMA): type1 v2, or
 * the sPAPR v2 container with preregistered memory. `buffer` is the memory mapped for DMA.
 */
export function assertFreshSession(
  k: Kernel,
  device: RoundDevice,
  buffer: MappedMemory,
  spapr: boolean,
): void {
  const r = (nr: number) => req(k, nr);
  const must = (what: string, rc: number) => {
    if (rc < 0) throw new Error(`fresh session on ${device.bdf}: ${what} failed (${rc})`);
    return rc;
  };
  const c = must("open container", k.open("/dev/vfio/vfio", O_RDWR));
  const g = must("open group", k.open(`/dev/vfio/${device.group}`, O_RDWR));
  const fdArg = new Uint8Array(4);
  u32At(fdArg, 0, c);
  must("SET_CONTAINER", k.ioctl(g, r(104), fdArg));
  must("SET_IOMMU", k.ioctl(c, r(102), spapr ? SPAPR_V2 : 3));
  const d = must(
    "GET_DEVICE_FD",
    k.ioctl(g, r(106), new TextEncoder().encode(`${device.bdf}\0`)),
  );
  const size = BigInt(buffer.length);
  const prereg = new Uint8Array(24);
  const pv = new DataView(prereg.buffer);
  pv.setUint32(0, 24, true);
  pv.setBigUint64(8, buffer.address, true);
  pv.setBigUint64(16, size, true);
  if (spapr) must("REGISTER_MEMORY", k.ioctl(c, r(117), prereg));
  const map = new Uint8Array(32);
  const v = new DataView(map.buffer);
  v.setUint32(0, 32, true);
  v.setUint32(4, 3, true);
  v.setBigUint64(8, buffer.address, true);
  v.setBigUint64(16, 0x100000n, true);
  v.setBigUint64(24, size, true);
  must("MAP_DMA", k.ioctl(c, r(113), map));
  if (!spapr && vmLckPages(k) !== Number(size) / k.pageSize) {
    throw new Error(
      `fresh session: VmLck ${vmLckPages(k)} pages, expected ${Number(size) / k.pageSize}`,
    );
  }
  const info = new Uint8Array(512);
  u32At(info, 0, spapr ? 48 : 512);
  must("GET_INFO", k.ioctl(c, r(112), info));
  const unmap = new Uint8Array(24);
  const uv = new DataView(unmap.buffer);
  uv.setUint32(0, 24, true);
  uv.setBigUint64(8, 0x100000n, true);
  uv.setBigUint64(16, size, true);
  must("UNMAP_DMA", k.ioctl(c, r(114), unmap));
  if (uv.getBigUint64(16, true) !== size) throw new Error("fresh session: UNMAP_DMA size");
  if (spapr) must("UNREGISTER_MEMORY", k.ioctl(c, r(118), prereg));
  for (const fd of [d, g, c]) must("close", k.close(fd));
  if (vmLckPages(k) !== 0) throw new Error("fresh session: pages still locked");
}
