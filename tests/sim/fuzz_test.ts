/**
 * Seeded fuzzing of the simulated kernel on every IOMMU model (tests/sim/fuzz_config.ts: seed,
 * rounds and models come from DENO_VFIO_FUZZ_SEED / _ROUNDS / _IOMMU): random system calls on
 * every fd type (container before/after SET_IOMMU, group, device via group, cdev before/after
 * bind, iommufd, eventfd, fault and vEVENTQ fds), random and nearby-real ioctl numbers in both
 * encodings, random argsz, flags, lengths, bytes, short and long buffers, random pread/pwrite
 * offsets, and structure-aware calls: valid objects and ids from earlier answers with one field
 * mutated (fuzz_deep_templates.ts), which reach HWPT and nested allocation, vIOMMU / vDEVICE /
 * vEVENTQ, IOAS_COPY, SET_IRQS and PASID attach. No call may throw; after every round the
 * locking invariants hold; at the end every machine's IOMMU holds what it held before (domains,
 * attachments, windows), physical memory is back to its baseline, and a normal session works.
 * The output has a table of calls and successes per ioctl.
 *
 * A failure names the seed and the call index to replay.
 *
 * @module
 */

import { createMachine, MmioFault, type SimMachine } from "../../sim/mod.ts";
import type { Kernel } from "../../ffi/kernel.ts";
import { O_RDWR } from "../../ffi/kernel.ts";
import { ioctlEncode } from "../../ffi/ioctl.ts";
import type { Rng } from "../helpers/rng.ts";
import { type FdKind, FUZZ_TEMPLATES, type FuzzTemplate } from "./fuzz_templates.ts";
import { DEEP_TEMPLATES } from "./fuzz_deep_templates.ts";
import { SPAPR_TEMPLATES } from "./fuzz_spapr_templates.ts";
import { FUZZ_DEVICES, type FuzzModel, fuzzSettings } from "./fuzz_config.ts";
import { IoctlStats } from "./fuzz_stats.ts";
import {
  assertFreshSession,
  newWorld,
  type PoolEntry,
  remember,
  req,
  roundDevices,
  setUpRound,
  u32At,
  vmLckPages,
  type World,
} from "./fuzz_world.ts";

const CALLS_PER_ROUND = 3_000;
const MAX_FD = 512;
const REARM_EVERY = 150;
/** The templates built from earlier answers. */
const STRUCTURED: readonly FuzzTemplate[] = [...DEEP_TEMPLATES, ...SPAPR_TEMPLATES];
const TEMPLATES: readonly FuzzTemplate[] = [...FUZZ_TEMPLATES, ...STRUCTURED];

function callCheck(what: string, r: number): void {
  if (!Number.isInteger(r) || r < -4095) throw new Error(`${what} returned ${r}`);
}

/** A random request number: nearby real ones in both encodings, other types, or anything. */
function randomRequest(rng: Rng): number {
  const nr = rng.chance(0.8) ? rng.int(0x60, 0xa1) : rng.int(0, 256);
  switch (rng.int(0, 6)) {
    case 0:
    case 1:
      return ioctlEncode("generic", "none", 0x3b, nr, 0);
    case 2:
      return ioctlEncode("powerpc", "none", 0x3b, nr, 0);
    case 3:
      return ioctlEncode(
        rng.pick(["generic", "powerpc"]),
        rng.pick(["read", "write", "readwrite"]),
        0x3b,
        nr,
        rng.int(0, 1 << 13),
      );
    case 4:
      return ioctlEncode("generic", "none", rng.int(0, 256), nr, 0);
    default:
      return rng.u32();
  }
}

/** A random integer argument. */
function randomInt(rng: Rng): number | bigint {
  return rng.pick<() => number | bigint>([
    () => rng.int(-4, 16),
    () => rng.u32(),
    () => rng.int(-0x8000_0000, 0x7fff_ffff),
    () => rng.u64(),
    () => 0,
  ])();
}

/** Random bytes of a random length, sometimes with a plausible argsz/size first word. */
function randomBuffer(rng: Rng): Uint8Array {
  const len = rng.chance(0.9) ? rng.int(0, 97) : rng.int(0, 4097);
  const b = rng.chance(0.5) ? rng.bytes(len) : new Uint8Array(len);
  if (len >= 4 && rng.chance(0.6)) u32At(b, 0, rng.chance(0.5) ? len : rng.int(0, 128));
  return b;
}

/** Set one field of `b` to a random value of its width. */
function mutateField(w: World, t: FuzzTemplate, b: Uint8Array): void {
  const fld = w.rng.pick(t.fields);
  const view = new DataView(b.buffer, b.byteOffset);
  if (fld.offset + fld.width > b.length) return;
  const v = w.rng.chance(0.5) ? fld.gen(w) : fld.width === 8 ? w.rng.u64() : w.rng.u32();
  if (fld.width === 8) view.setBigUint64(fld.offset, BigInt.asUintN(64, BigInt(v)), true);
  else if (fld.width === 4) view.setUint32(fld.offset, Number(BigInt.asUintN(32, BigInt(v))), true);
  else view.setUint16(fld.offset, Number(v) & 0xffff, true);
}

/**
 * A call from a template: the structure-aware valid call when the template can build one (then
 * mostly as is or with one field mutated), else its field generators; then maybe argsz, a bit,
 * the length.
 */
function fromTemplate(w: World, t: FuzzTemplate): Uint8Array {
  const rng = w.rng;
  let b = t.valid && rng.chance(0.85) ? t.valid(w) : undefined;
  if (b !== undefined) {
    const r = rng.float();
    if (r < 0.6) return b;
    if (r < 0.9 && t.fields.length > 0) {
      mutateField(w, t, b);
      return b;
    }
  } else {
    b = new Uint8Array(t.size);
    const view = new DataView(b.buffer);
    u32At(b, 0, t.size);
    for (const fld of t.fields) {
      const v = fld.gen(w);
      if (fld.width === 8) view.setBigUint64(fld.offset, BigInt.asUintN(64, BigInt(v)), true);
      else if (fld.width === 4) {
        view.setUint32(fld.offset, Number(BigInt.asUintN(32, BigInt(v))), true);
      } else view.setUint16(fld.offset, Number(v) & 0xffff, true);
    }
    if (rng.float() < 0.4) return b;
  }
  const r = rng.float();
  if (r < 0.1 && t.fields.length > 0) mutateField(w, t, b);
  else if (r < 0.35) {
    u32At(b, 0, rng.pick([0, 4, t.size - 1, t.size + 8, rng.int(0, 64), rng.u32()]));
  } else if (r < 0.6) b[rng.int(0, b.length)] ^= 1 << rng.int(0, 8);
  else if (r < 0.85) return b.slice(0, rng.int(0, t.size)); // shorter than the struct
  else {
    const longer = new Uint8Array(t.size + rng.int(1, 32));
    longer.set(b.subarray(0, t.size));
    if (rng.chance(0.5)) longer[t.size + rng.int(0, longer.length - t.size)] = rng.int(1, 256);
    return longer;
  }
  return b;
}

/** After a successful template call: ids and fds it handed out, its own bookkeeping. */
function harvest(w: World, t: FuzzTemplate, arg: Uint8Array, r: number): void {
  if (r < 0 || !(arg instanceof Uint8Array) || arg.length < t.size) return;
  const view = new DataView(arg.buffer, arg.byteOffset);
  for (const y of t.yields ?? []) remember(w, y.kind, view.getUint32(y.offset, true));
  if (t.fdOut) w.pool.push({ fd: view.getInt32(t.fdOut.offset, true), kind: t.fdOut.kind });
  t.after?.(w, arg);
}

/** One counted ioctl. */
function ioctl(w: World, entry: PoolEntry, request: number, arg?: Uint8Array | number | bigint) {
  const r = w.kernel.ioctl(entry.fd, request, arg);
  w.stats.count(w.stats.nameOf(entry.kind, request), r);
  return r;
}

/** One random call; returns a description for failure messages. */
function oneCall(w: World): string {
  const { kernel: k, rng, pool } = w;
  const fixed = pool.filter((e) => e.fixed);
  const entry = fixed.length > 0 && rng.chance(0.6)
    ? rng.pick(fixed)
    : pool.length > 0 && rng.chance(0.9)
    ? rng.pick(pool)
    : { fd: rng.int(-2, 64), kind: "other" as FdKind };
  const op = rng.float();
  if (op < 0.5) {
    // Mostly a structure-aware template (they build on the round's objects).
    const deep = STRUCTURED.filter((t) => t.kinds.includes(entry.kind));
    const candidates = deep.length > 0 && rng.chance(0.7)
      ? deep
      : TEMPLATES.filter((t) => t.kinds.includes(entry.kind));
    const t = candidates.length > 0 && rng.chance(0.9) ? rng.pick(candidates) : rng.pick(TEMPLATES);
    const arg = rng.chance(0.95) ? fromTemplate(w, t) : randomInt(rng);
    const what = `ioctl(${entry.kind} fd ${entry.fd}, ${t.name}, ${
      arg instanceof Uint8Array ? `${arg.length} bytes` : String(arg)
    })`;
    const r = ioctl(w, entry, req(k, t.nr), arg);
    callCheck(what, r);
    if (r >= 0 && t.returnsFd && r > 2) pool.push({ fd: r, kind: t.returnsFd });
    if (arg instanceof Uint8Array) harvest(w, t, arg, r);
    return what;
  }
  if (op < 0.56) {
    // By-value ioctls and GET_DEVICE_FD's string argument.
    const nr = rng.pick([100, 101, 101, 102, 102, 105, 106, 106, 111, 115, 116]);
    const name = rng.pick([
      w.device.bdf,
      `${w.device.bdf} vf_token=00000000-0000-0000-0000-000000000000`,
      "",
      "0000:00:02",
      w.device.bdf + w.device.bdf,
    ]);
    const arg = nr === 106 && rng.chance(0.9)
      ? new TextEncoder().encode(rng.chance(0.9) ? `${name}\0` : name)
      : rng.chance(0.7)
      ? rng.int(0, 12)
      : randomInt(rng);
    const what = `ioctl(${entry.kind} fd ${entry.fd}, nr ${nr}, ${
      arg instanceof Uint8Array ? JSON.stringify(name) : String(arg)
    })`;
    const r = ioctl(w, entry, req(k, nr), arg);
    callCheck(what, r);
    if (nr === 106 && r > 2) pool.push({ fd: r, kind: "device" });
    return what;
  }
  if (op < 0.7) {
    const request = randomRequest(rng);
    const arg = rng.chance(0.7) ? randomBuffer(rng) : rng.chance(0.8) ? randomInt(rng) : undefined;
    const what = `ioctl(${entry.kind} fd ${entry.fd}, 0x${request.toString(16)}, ${
      arg instanceof Uint8Array ? `${arg.length} bytes` : String(arg)
    })`;
    callCheck(what, ioctl(w, entry, request, arg));
    return what;
  }
  if (op < 0.82) {
    const offset = rng.chance(0.7)
      ? (BigInt(rng.int(0, 12)) << 40n) |
        BigInt(rng.chance(0.5) ? rng.int(0, 0x110) : rng.int(0, 1 << 21))
      : rng.u64();
    const buf = rng.chance(0.5) ? new Uint8Array(rng.int(0, 17)) : rng.bytes(rng.int(0, 4097));
    const write = rng.chance(0.4);
    const what = `${write ? "pwrite" : "pread"}(${entry.kind} fd ${entry.fd}, ${buf.length}, 0x${
      offset.toString(16)
    })`;
    callCheck(what, write ? k.pwrite(entry.fd, buf, offset) : k.pread(entry.fd, buf, offset));
    return what;
  }
  if (op < 0.9) {
    const buf = rng.chance(0.5)
      ? rng.bytes(rng.pick([0, 1, 3, 8, 40, 80, rng.int(0, 200)]))
      : new Uint8Array(8);
    const write = rng.chance(0.5);
    const what = `${write ? "write" : "read"}(${entry.kind} fd ${entry.fd}, ${buf.length})`;
    callCheck(what, write ? k.write(entry.fd, buf) : k.read(entry.fd, buf));
    return what;
  }
  if (op < 0.93) {
    const offset = BigInt(rng.int(0, 10)) << 40n;
    const length = rng.pick([4096, 0x1000 * rng.int(0, 300), rng.int(0, 0x2000)]);
    const what = `mmapDevice(${entry.kind} fd ${entry.fd}, 0x${offset.toString(16)}, ${length})`;
    const m = k.mmapDevice(entry.fd, offset, length);
    if (typeof m === "number") callCheck(what, m);
    else {
      for (let i = 0; i < 4; i++) {
        const at = rng.int(0, Math.floor(m.length / 4)) * 4;
        try {
          if (rng.chance(0.5)) m.read32(at);
          else m.write32(at, rng.u32());
        } catch (e) {
          // The signal Linux would raise (SIGBUS with memory decoding off): modelled, not a bug.
          if (!(e instanceof MmioFault)) throw e;
        }
      }
      callCheck(`munmap after ${what}`, k.munmap(m));
    }
    return what;
  }
  if (op < 0.945) {
    const d = w.device;
    const path = rng.pick([
      "/dev/vfio/vfio",
      "/dev/iommu",
      `/dev/vfio/${d.group}`,
      d.cdev ?? "/dev/vfio/devices/vfio0",
      "/dev/vfio/devices/vfio99",
      "/dev/vfio/999",
      `/sys/bus/pci/devices/${d.bdf}/config`,
      "/nonexistent",
    ]);
    const flags = rng.pick([O_RDWR, 0, 1, rng.u32() & 0x7fff_ffff]);
    const what = `open(${path}, 0x${flags.toString(16)})`;
    const fd = k.open(path, flags);
    callCheck(what, fd);
    const kinds: Record<string, FdKind> = {
      "/dev/vfio/vfio": "container",
      "/dev/iommu": "iommufd",
    };
    if (fd >= 0) {
      pool.push({
        fd,
        kind: kinds[path] ??
          (path === d.cdev ? "cdev" : path.startsWith("/dev/vfio/") ? "group" : "other"),
      });
    }
    return what;
  }
  const i = pool.indexOf(entry as PoolEntry);
  if (i < 0 || (pool[i].fixed && rng.chance(0.97))) return "close skipped";
  const what = `close(${entry.kind} fd ${entry.fd})`;
  callCheck(what, k.close(entry.fd));
  if (i >= 0) pool.splice(i, 1);
  return what;
}

/** UNMAP ALL through the VFIO API, or every IOAS id through IOAS_UNMAP; bytes unmapped. */
function unmapEverything(k: Kernel, entry: PoolEntry): bigint {
  let total = 0n;
  const u = new Uint8Array(24);
  const view = new DataView(u.buffer);
  const unmapAll = (fd: number): void => {
    view.setUint32(0, 24, true);
    view.setUint32(4, 2, true); // VFIO_DMA_UNMAP_FLAG_ALL
    view.setBigUint64(8, 0n, true);
    view.setBigUint64(16, 0n, true);
    if (k.ioctl(fd, req(k, 114), u) === 0) total += view.getBigUint64(16, true);
  };
  if (entry.kind === "container") unmapAll(entry.fd);
  if (entry.kind === "iommufd") {
    unmapAll(entry.fd);
    for (let id = 1; id < 64; id++) {
      view.setUint32(0, 24, true);
      view.setUint32(4, id, true);
      view.setBigUint64(8, 0n, true);
      view.setBigUint64(16, (1n << 64n) - 1n, true);
      if (k.ioctl(entry.fd, req(k, 0x86), u) === 0) total += view.getBigUint64(16, true);
    }
  }
  return total;
}

/** Close every fd the process has. */
function closeAll(k: Kernel): void {
  for (let fd = 0; fd < MAX_FD; fd++) k.close(fd);
}

/** What the IOMMU holds, as names (every model of the simulator lists them). */
function liveDomains(machine: SimMachine): string[] {
  const list = machine.iommu.liveDomains?.();
  if (list === undefined) {
    throw new Error(`the ${machine.iommu.facts.kind} model cannot list its domains`);
  }
  return list;
}

/** Fuzz one machine for `rounds` rounds; returns the number of calls. */
function fuzzMachine(
  machine: SimMachine,
  model: FuzzModel,
  rounds: number,
  seed: number,
  stats: IoctlStats,
): number {
  const k: Kernel = machine.kernel;
  const spapr = model.modes.some((m) => m.startsWith("spapr"));
  const memory = { used: machine.memory.usedBytes, top: machine.memory.topAddress };
  const devices = roundDevices(k, FUZZ_DEVICES.map((d) => d.bdf));
  const w = newWorld(k, seed, devices, stats);
  // Baseline after one normal session per device (the core's cached blocking domains exist).
  for (const d of devices) assertFreshSession(k, d, w.buffers[0], spapr);
  const domains = liveDomains(machine);
  let index = 0;
  for (let round = 0; round < rounds; round++) {
    setUpRound(w, w.rng.pick(model.modes));
    for (let i = 0; i < CALLS_PER_ROUND; i++, index++) {
      if (i % REARM_EVERY === REARM_EVERY - 1) w.rearm();
      if (w.pool.length > 32) {
        const extra = w.pool.filter((e) => !e.fixed).slice(0, 8);
        for (const e of extra) k.close(e.fd);
        w.pool = w.pool.filter((e) => !extra.includes(e));
      }
      let what = "?";
      try {
        what = oneCall(w);
      } catch (e) {
        throw new Error(
          `${model.iommu}: call #${index} (seed 0x${seed.toString(16)}) threw: ${what}\n${
            e instanceof Error ? e.stack : e
          }`,
        );
      }
    }
    // Invariants of the round: unmapping a type1 container's mappings releases exactly the
    // pages they pinned (VmLck); once every fd is closed nothing is locked. (A container whose
    // fd was closed lives on through its group, so not every mapping is reachable before; a
    // sPAPR container also charges its TCE tables and preregistered memory.)
    const lockedBefore = vmLckPages(k);
    let type1Bytes = 0n;
    for (const e of w.pool.filter((p) => p.kind === "container")) {
      type1Bytes += unmapEverything(k, e);
    }
    const lockedAfter = vmLckPages(k);
    if (!spapr && lockedBefore - lockedAfter !== Number(type1Bytes) / k.pageSize) {
      throw new Error(
        `${model.iommu} round ${round}: VmLck dropped ${lockedBefore - lockedAfter} pages when ` +
          `type1 unmapped ${type1Bytes} bytes`,
      );
    }
    for (const e of w.pool.filter((p) => p.kind === "iommufd")) unmapEverything(k, e);
    closeAll(k);
    w.pool = [];
    if (vmLckPages(k) !== 0) {
      throw new Error(
        `${model.iommu} round ${round}: ${vmLckPages(k)} pages locked after closing every fd`,
      );
    }
  }
  if (machine.kernel.bugs.length > 0) {
    throw new Error(`${model.iommu}: simulator bugs: ${machine.kernel.bugs.join("; ")}`);
  }
  const after = liveDomains(machine);
  if (after.join() !== domains.join()) {
    throw new Error(
      `${model.iommu}: the IOMMU holds [${after.join(", ")}] after closing every fd, ` +
        `before fuzzing [${domains.join(", ")}]`,
    );
  }
  for (const d of devices) assertFreshSession(k, d, w.buffers[0], spapr);
  for (const b of [...w.buffers, w.scratch]) k.munmap(b);
  if (machine.memory.usedBytes !== memory.used || machine.memory.topAddress !== memory.top) {
    throw new Error(
      `${model.iommu}: physical memory ${machine.memory.usedBytes} bytes up to ` +
        `0x${machine.memory.topAddress.toString(16)}, baseline ${memory.used} up to ` +
        `0x${memory.top.toString(16)}`,
    );
  }
  console.log(`fuzz ${model.iommu}: the IOMMU holds [${domains.join(", ")}] before and after`);
  return index;
}

const settings = fuzzSettings((name) => Deno.env.get(name));

for (const model of settings.models) {
  Deno.test({
    name: `simulator fuzz on ${model.iommu}: ${
      settings.rounds * CALLS_PER_ROUND
    } seeded calls (seed 0x${settings.seed.toString(16)})`,
    permissions: { env: ["DENO_VFIO_FUZZ_SEED", "DENO_VFIO_FUZZ_ROUNDS", "DENO_VFIO_FUZZ_IOMMU"] },
    fn() {
      const started = performance.now();
      let calls = 0;
      let stats: IoctlStats | undefined;
      model.machines.forEach((m, n) => {
        const rounds = Math.floor(settings.rounds / model.machines.length) +
          (n < settings.rounds % model.machines.length ? 1 : 0);
        if (rounds === 0) return;
        const machine = createMachine({ ...m.options, seed: settings.seed, devices: FUZZ_DEVICES });
        const mine = new IoctlStats(machine.kernel.ioctlArch);
        calls += fuzzMachine(machine, model, rounds, settings.seed + n, mine);
        if (stats === undefined) stats = mine;
        else stats.merge(mine);
      });
      const seconds = (performance.now() - started) / 1000;
      console.log(
        `fuzz ${model.iommu}: ${calls} calls in ${seconds.toFixed(1)} s (${
          Math.round(calls / seconds)
        } calls/s), seed 0x${settings.seed.toString(16)}, machines: ${
          model.machines.map((m) => m.name).join("; ")
        }\n${stats?.table() ?? ""}\nnever succeeded: ${
          stats?.neverSucceeded().join(", ") || "none"
        }`,
      );
    },
  });
}
