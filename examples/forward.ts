/**
 * ixy's forwarder: two NIC ports, every frame received on one is sent out of the other, both
 * directions, zero-copy (one packet pool shared by both ports of one DMA space): receive a batch,
 * touch one byte per frame, transmit the batch on the other port, free what did not fit. It busy
 * polls, as ixy does, and prints Mpps and drops per direction once a second and a summary at the
 * end.
 *
 *   deno run examples/forward.ts --nic igb           # simulator: two 82576 on two wires, a UDP
 *                                                    # generator and a counting sink on each
 *   deno run --allow-ffi examples/forward.ts --device 0000:00:04.0 --device 0000:00:05.0
 *
 * @module
 */

import {
  type IommuChoice,
  type Kernel,
  type NetDeviceStats,
  type Nic,
  type NicDriver,
  openNic,
  openPciDevice,
  type PacketBuffer,
  PacketPool,
  type PciDevice,
} from "../mod.ts";
import { type EthernetSegment, TrafficPort } from "../sim/mod.ts";
import {
  commonFlags,
  help,
  integerFlag,
  oneOf,
  openTarget,
  parseFlags,
  runProgram,
  TARGET_HELP,
  TARGET_OPTIONS,
  UsageError,
} from "./cli.ts";

const HELP = `forward — ixy's forwarder: frames received on one port are sent out of the other

usage: deno run [--allow-ffi] examples/forward.ts [options]
  --nic NAME         simulated NICs: igb (default), e1000e, virtio-net
  --batch N          frames per receive batch, 1..256 (default 32)
  --duration S       stop after S seconds (default 5 on the simulator; with --device: until
                     interrupted)
  --window N         simulator: frames each generator keeps in flight, 1..255 (default 64; the
                     simulated Intel NICs hold 64 frames that arrive at once)
  --frame-size N     simulator: generated frame length without FCS, 60..1514 (default 60)
${TARGET_HELP}
                   (--device twice, once per port: two real NICs bound to vfio-pci, virtio-net,
                   e1000e or igb; needs --allow-ffi)

Simulated, each NIC sits on its own wire with a generator that sends UDP frames to it and a
sink that counts what the forwarder sends out; its Mpps are wall-clock rates of the simulator.`;

const OPTIONS = {
  ...TARGET_OPTIONS,
  device: { type: "string", multiple: true },
  nic: { type: "string" },
  batch: { type: "string", default: "32" },
  duration: { type: "string" },
  window: { type: "string" },
  "frame-size": { type: "string" },
} as const;

const SIM_NICS: readonly NicDriver[] = ["igb", "e1000e", "virtio-net"];
const SIM_BDFS = ["0000:00:03.0", "0000:00:04.0"];
const MAX_BATCH = 256;
/** Descriptors per ring (the drivers' default) and the pool that covers both NICs. */
const RING_SIZE = 256;
const REPORT_MS = 1000;
/** Rounds between clock reads while frames flow. */
const CHECK_ROUNDS = 256;
/** Simulated time one idle step lets pass (ms): a wire's latency is 10 µs. */
const SIM_IDLE_MS = 0.01;
/** Idle steps without progress after which frames in flight count as lost (1 ms simulated). */
const SIM_STALL_STEPS = 100;
/** Simulated time after the last round for sent frames to reach the sinks (ms). */
const SIM_DRAIN_MS = 1;
/** Seconds the simulator forwards when --duration is not given. */
const SIM_DEFAULT_DURATION_S = 5;
/** Frames each generator keeps in flight by default. */
const DEFAULT_WINDOW = 64;
/** Smallest and largest generated frame (no FCS). */
const MIN_FRAME = 60;
const MAX_FRAME = 1514;

/** Parsed options. */
interface Options {
  nic: NicDriver;
  batch: number;
  durationS: number | undefined;
  window: number;
  frameSize: number;
}

/** The forwarder's own flags; `real` when two devices were given. */
function forwardOptions(
  values: ReturnType<typeof parseFlags<typeof OPTIONS>>["values"],
  real: boolean,
): Options {
  for (const flag of ["nic", "window", "frame-size"] as const) {
    if (real && values[flag] !== undefined) {
      throw new UsageError(`--${flag}: drives the simulator; leave it out with --device`);
    }
  }
  const duration = values.duration ?? (real ? undefined : `${SIM_DEFAULT_DURATION_S}`);
  const durationS = duration === undefined ? undefined : Number(duration);
  if (durationS !== undefined && !(durationS > 0 && durationS <= 1e6)) {
    throw new UsageError(`--duration ${duration}: want a number of seconds above 0`);
  }
  return {
    nic: oneOf("--nic", values.nic ?? "igb", SIM_NICS) as NicDriver,
    batch: integerFlag("--batch", values.batch, 1, MAX_BATCH),
    durationS,
    window: integerFlag("--window", values.window ?? `${DEFAULT_WINDOW}`, 1, RING_SIZE - 1),
    frameSize: integerFlag(
      "--frame-size",
      values["frame-size"] ?? `${MIN_FRAME}`,
      MIN_FRAME,
      MAX_FRAME,
    ),
  };
}

/** One direction of traffic: frames from `from` go out of `to`. */
interface Direction {
  readonly label: string;
  readonly from: Nic;
  readonly to: Nic;
  /** Frames queued for transmit on `to`. */
  forwarded: number;
}

/**
 * ixy's forward(): a batch from one port, one byte touched per frame, out of the other; frames
 * the transmit ring had no room for go back to the pool. Returns the frames received.
 */
function forward(d: Direction, bufs: PacketBuffer[], batch: number): number {
  const n = d.from.rxBatch(bufs, batch);
  if (n === 0) return 0;
  for (let i = 0; i < n; i++) bufs[i].data[1]++;
  const sent = d.to.txBatch(bufs, n);
  for (let i = sent; i < n; i++) d.to.pool.free(bufs[i]);
  d.forwarded += sent;
  return n;
}

/** Frames a direction lost on the way: dropped by the receiving port, or no transmit room. */
function drops(from: NetDeviceStats, to: NetDeviceStats): number {
  const missed = "hardware" in from
    ? (from as { hardware: { missedPackets: number } }).hardware.missedPackets
    : 0;
  return from.rxDropped + missed + to.txDropped;
}

/** The simulated wires: a generator and sink per NIC, windows of frames in flight. */
interface SimTraffic {
  /** Top the generators up to their windows. */
  step(): void;
  /** Let simulated time pass (frames cross the wires); count frames stuck for too long. */
  idle(): Promise<void>;
  /** Let the frames already sent reach the sinks (the forwarder has stopped). */
  drain(): Promise<void>;
  /** "generators sent …, sinks counted …". */
  summary(): string;
}

function simTraffic(
  kernel: Kernel,
  segments: ReadonlyMap<number, EthernetSegment>,
  nics: Nic[],
  o: Options,
): SimTraffic {
  const ports = nics.map((nic, i) =>
    new TrafficPort(segments.get(i + 1)!, {
      name: `generator ${i}`,
      mac: new Uint8Array([0x02, 0, 0, 0, 0xf0, i]),
      to: nic.mac,
      frameLength: o.frameSize,
    })
  );
  // Frames generator i put on its wire come out at the sink of the other wire.
  const lost = [0, 0];
  const inFlight = (i: number): number => ports[i].sent - ports[1 - i].received - lost[i];
  let stalled = 0;
  let seen = 0;
  return {
    step(): void {
      for (let i = 0; i < 2; i++) {
        const room = o.window - inFlight(i);
        if (room > 0) ports[i].send(room);
      }
    },
    async idle(): Promise<void> {
      await kernel.sleep(SIM_IDLE_MS);
      const now = ports[0].received + ports[1].received;
      stalled = now === seen ? stalled + 1 : 0;
      seen = now;
      if (stalled >= SIM_STALL_STEPS) {
        for (let i = 0; i < 2; i++) lost[i] += inFlight(i);
        stalled = 0;
      }
    },
    drain: () => kernel.sleep(SIM_DRAIN_MS),
    summary: () =>
      `generators sent ${ports[0].sent}/${ports[1].sent}, sinks counted ` +
      `${ports[1].received}/${ports[0].received}, lost on the way ${lost[0]}/${lost[1]}`,
  };
}

/** Both ports opened into one DMA space with one shared pool; `close` undoes all of it. */
async function openPorts(
  kernel: Kernel,
  bdfs: readonly string[],
  vfio: IommuChoice,
  batch: number,
): Promise<{ nics: Nic[]; close(): void }> {
  const devs: PciDevice[] = [];
  const nics: Nic[] = [];
  let pool: PacketPool | undefined;
  const close = (): void => {
    for (const nic of nics.reverse()) nic.close();
    pool?.close();
    for (const dev of devs.reverse()) dev.close();
  };
  try {
    devs.push(openPciDevice(bdfs[0], { kernel, iommu: vfio }));
    devs.push(openPciDevice(bdfs[1], { kernel, dma: devs[0].dma }));
    pool = new PacketPool(devs[0].dma, 2 * 2 * RING_SIZE + 2 * batch + 64);
    for (const dev of devs) {
      nics.push(await openNic(dev, { pool, interrupts: false, promiscuous: true }));
    }
    return { nics, close };
  } catch (e) {
    close();
    throw e;
  }
}

function mpps(frames: number, ms: number): string {
  return (ms > 0 ? frames / ms / 1000 : 0).toFixed(4);
}

async function main(args: string[]): Promise<number> {
  const { values } = parseFlags(args, OPTIONS);
  if (values.help) return help(HELP);
  const devices = values.device ?? [];
  if (devices.length === 1) {
    throw new UsageError("--device: given once; give it twice, once per port");
  }
  if (devices.length > 2) {
    throw new UsageError(`--device: given ${devices.length} times; a forwarder has two ports`);
  }
  const flags = commonFlags({ ...values, device: devices[0] }, "vtd");
  const real = devices.length === 2;
  const o = forwardOptions(values, real);
  await using target = await openTarget(flags, {
    devices: SIM_BDFS.map((bdf, i) => ({ model: o.nic, bdf, segment: i + 1 })),
  });
  const { kernel, machine } = target;
  const ports = await openPorts(kernel, real ? devices : SIM_BDFS, flags.vfio, o.batch);
  let stop = false;
  const onSignal = (): void => void (stop = true);
  Deno.addSignalListener("SIGINT", onSignal);
  try {
    const [a, b] = ports.nics;
    const sim = machine ? simTraffic(kernel, machine.segments, ports.nics, o) : undefined;
    console.log(
      `forward: port 0 ${a.name} <-> port 1 ${b.name}, batch ${o.batch}` +
        (sim
          ? `, simulated ${flags.iommu}, generators keep ${o.window} frames in flight each`
          : "") +
        (o.durationS === undefined ? ", until interrupted" : `, ${o.durationS} s`),
    );
    const dirs: Direction[] = [
      { label: "0->1", from: a, to: b, forwarded: 0 },
      { label: "1->0", from: b, to: a, forwarded: 0 },
    ];
    const bufs: PacketBuffer[] = new Array(o.batch).fill(a.pool.buffer(0));
    const start = performance.now();
    let last = { t: start, forwarded: [0, 0], drops: [0, 0] };
    const report = (now: number): typeof last => {
      const sa = a.stats();
      const sb = b.stats();

      const next = {
        t: now,
        forwarded: dirs.map((d) => d.forwarded),
        drops: [drops(sa, sb), drops(sb, sa)],
      };
      console.log(
        `forward: ${((now - start) / 1000).toFixed(1)} s  ` +
          dirs.map((d, i) =>
            `${d.label} ${mpps(next.forwarded[i] - last.forwarded[i], now - last.t)} Mpps ` +
            `drops ${next.drops[i] - last.drops[i]}`
          ).join("  "),
      );
      return next;
    };
    const endAt = o.durationS === undefined ? Infinity : start + o.durationS * 1000;
    let rounds = 0;
    for (;;) {
      sim?.step();
      const got = forward(dirs[0], bufs, o.batch) + forward(dirs[1], bufs, o.batch);
      if (got === 0 && sim) await sim.idle();
      if (got !== 0 && ++rounds < CHECK_ROUNDS) continue;
      rounds = 0;
      const now = performance.now();
      if (now >= endAt || stop) break;
      if (now - last.t >= REPORT_MS) {
        last = report(now);
        // Let signal handlers and timers run.
        await new Promise((r) => setTimeout(r, 0));
      }
    }
    const end = performance.now();
    if (end - last.t >= REPORT_MS / 10) last = report(end);
    const total = dirs[0].forwarded + dirs[1].forwarded;
    console.log(
      `forward: ${((end - start) / 1000).toFixed(2)} s, batch ${o.batch}: ` + dirs.map((d, i) =>
        `${d.label} forwarded ${d.forwarded} (${mpps(d.forwarded, end - start)} Mpps), ` +
        `dropped ${last.drops[i]}`
      ).join("; ") + `; total ${mpps(total, end - start)} Mpps`,
    );
    if (sim) {
      await sim.drain();
      console.log(`forward: ${sim.summary()}`);
    }
    return 0;
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    ports.close();
  }
}

if (import.meta.main) await runProgram("forward", main);
