/**
 * The UDP NIC demo: a userspace NIC driver (virtio-net, e1000e or igb, picked by PCI id) plus the
 * project's own Ethernet/ARP/IPv4/ICMP/UDP stack, echoing every UDP datagram sent to its port. It
 * polls while traffic flows and sleeps on the NIC's receive interrupt when idle (`--poll`: the
 * busy-polling loop instead); at the end it prints the CPU time it used.
 *
 *   deno task demo                                   # simulator: VT-d + virtio-net, built-in client
 *   deno task demo --nic igb --iommu smmuv3          # the same with a simulated 82576 on SMMUv3
 *   deno task demo --fault --trace                   # the IOMMU's events, and a DMA fault
 *   deno task demo --bridge 127.0.0.1:9000           # simulator, reachable by real host clients
 *   deno run --allow-ffi --allow-write examples/udp_echo.ts --device 0000:00:03.0 \
 *     --ip 10.0.2.15/24 --pcap echo.pcap            # a real NIC, captured at the driver
 *
 * @module
 */

import process from "node:process";
import {
  CaptureNetDevice,
  formatMac,
  type IntelNicStats,
  NET_STACK_DROPS,
  type NetDevice,
  NetStack,
  type Nic,
  type NicDriver,
  openNic,
  parseCidr,
  parseIpv4,
  PcapWriter,
} from "../mod.ts";
import type { SimMachine } from "../sim/mod.ts";
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
import { builtInClient, provokeFault, type SimWorld, simWorld } from "./udp_echo_sim.ts";

const HELP = `udp_echo — a userspace NIC driver and UDP/IP stack that echoes datagrams

usage: deno task demo [options]
  --nic NAME          simulated NIC: virtio-net (default), e1000e (82574L), igb (82576)
  --bridge HOST:PORT  expose the simulated NIC's echo port on a real UDP socket of this host
                      (needs --allow-net; datagrams over the 1500-byte path MTU are refused)
  --count N           built-in client: datagrams to send when not bridging (default 1000)
  --fault             built-in client: then make the simulated NIC's next DMA write fault (as
                      to an unmapped IOVA) and print the IOMMU's fault line
  --pcap FILE         capture to FILE (pcap; tshark/Wireshark read it): the simulated wire, or
                      with --device every frame the driver receives and sends (needs --allow-write)
  --echoes N          stop once N datagrams have been echoed (with --device or --bridge)
  --duration S        stop after S seconds (default: until the built-in client is done, or forever
                      with --bridge or --device)
  --idle S            then stay S more seconds without traffic and print the CPU time they took
  --queues N          igb: N queue pairs with RSS, one MSI-X vector each (default 1)
  --poll              busy-poll (sleep 1 ms when idle) instead of sleeping on the interrupt
  --irq KIND          the interrupt to sleep on: auto (MSI-X, else MSI; default), msix, or msi
                      (the e1000e's MSI fallback; virtio-net has MSI-X only)
  --ip A.B.C.D/NN     the stack's address (default 10.0.2.15/24, QEMU user networking's guest)
  --gateway A.B.C.D   default gateway (default 10.0.2.2)
  --port N            UDP port to echo on (default 7)
${TARGET_HELP}`;

const OPTIONS = {
  ...TARGET_OPTIONS,
  nic: { type: "string" },
  bridge: { type: "string" },
  count: { type: "string" },
  fault: { type: "boolean", default: false },
  pcap: { type: "string" },
  echoes: { type: "string" },
  duration: { type: "string" },
  idle: { type: "string" },
  queues: { type: "string", default: "1" },
  poll: { type: "boolean", default: false },
  irq: { type: "string", default: "auto" },
  ip: { type: "string", default: "10.0.2.15/24" },
  gateway: { type: "string", default: "10.0.2.2" },
  port: { type: "string", default: "7" },
} as const;

/** What `--irq` takes. */
const IRQ_KINDS = ["auto", "msix", "msi"] as const;
/** NICs the simulator offers. */
const SIM_NICS: readonly NicDriver[] = ["virtio-net", "e1000e", "igb"];
/** Where the simulated NIC sits. */
const SIM_BDF = "0000:00:03.0";
/** Datagrams the built-in client sends by default. */
const DEFAULT_COUNT = 1000;
/** Wake at least this often when idle: counters, duration, the stack's ARP timers (ms). */
const REPORT_MS = 1000;
/** Simulated time for the last echoes to cross the wire once the demo stops serving (ms). */
const DRAIN_MS = 1;
/** Nanoseconds per millisecond (pcap timestamps). */
const NS_PER_MS = 1e6;
/** Most queue pairs `--queues` takes (the drivers check their own limit). */
const MAX_QUEUES = 64;

/** The command line, checked. */
interface Options {
  readonly nic: NicDriver;
  readonly bridge?: { hostname: string; port: number };
  readonly count: number;
  readonly fault: boolean;
  readonly pcap?: string;
  readonly echoes?: number;
  readonly durationS?: number;
  readonly idleS?: number;
  readonly queues: number;
  readonly poll: boolean;
  /** `interrupts` for openNic: true (auto), "msix" or "msi"; false with --poll. */
  readonly interrupts: boolean | "msix" | "msi";
  readonly ip: string;
  readonly nicIp: number;
  readonly gateway: string;
  readonly gatewayIp: number;
  readonly port: number;
}

/** `parse(text)`, or a {@link UsageError} naming the flag with the parser's complaint. */
function addressFlag<T>(flag: string, text: string, parse: (t: string) => T): T {
  try {
    return parse(text);
  } catch (e) {
    throw new UsageError(`${flag} ${text}: ${(e as Error).message}`);
  }
}

/** The demo's own flags (the target flags are checked by commonFlags). */
function demoOptions(
  values: ReturnType<typeof parseFlags<typeof OPTIONS>>["values"],
  real: boolean,
): Options {
  const simOnly: [string, unknown][] = [
    ["--nic", values.nic],
    ["--bridge", values.bridge],
    ["--count", values.count],
    ["--fault", values.fault || undefined],
  ];
  for (const [flag, value] of simOnly) {
    if (real && value !== undefined) {
      throw new UsageError(`${flag}: drives the simulator; leave it out with --device`);
    }
  }
  if (values.fault && values.bridge !== undefined) {
    throw new UsageError("--fault: runs after the built-in client; leave out --bridge");
  }
  let bridge: Options["bridge"];
  if (values.bridge !== undefined) {
    const m = /^([^:]+):(\d+)$/.exec(values.bridge);
    if (!m) throw new UsageError(`--bridge ${values.bridge}: want HOST:PORT like 127.0.0.1:9000`);
    bridge = { hostname: m[1], port: integerFlag("--bridge port", m[2], 0, 65535) };
  }
  const optional = (flag: string, text: string | undefined, max: number): number | undefined =>
    text === undefined ? undefined : integerFlag(flag, text, 0, max);
  const irq = oneOf("--irq", values.irq, IRQ_KINDS);
  if (values.poll && irq !== "auto") {
    throw new UsageError(`--irq ${irq}: picks the interrupt to sleep on; leave it out with --poll`);
  }
  return {
    nic: oneOf("--nic", values.nic ?? "virtio-net", SIM_NICS) as NicDriver,
    bridge,
    count: integerFlag("--count", values.count ?? `${DEFAULT_COUNT}`, 1, 1e9),
    fault: values.fault,
    pcap: values.pcap,
    echoes: optional("--echoes", values.echoes, 1e9),
    durationS: optional("--duration", values.duration, 1e9),
    idleS: optional("--idle", values.idle, 1e6),
    queues: integerFlag("--queues", values.queues, 1, MAX_QUEUES),
    poll: values.poll,
    interrupts: values.poll ? false : irq === "auto" ? true : irq as "msix" | "msi",
    ip: values.ip,
    nicIp: addressFlag("--ip", values.ip, parseCidr).address,
    gateway: values.gateway,
    gatewayIp: addressFlag("--gateway", values.gateway, parseIpv4),
    port: integerFlag("--port", values.port, 1, 65535),
  };
}

/** The `--pcap` capture: the device the stack uses, and the end of it. */
interface Capture {
  /** The NIC, or the wrapper that shows its frames to the capture. */
  readonly dev: NetDevice;
  /** Close the file; returns "captured N frames to FILE (where)", or undefined without one. */
  close(): string | undefined;
}

/**
 * `--pcap`: on the simulator the wire (every frame on the NIC's segment, at virtual time); on a
 * real NIC the driver (a {@link CaptureNetDevice} the stack uses instead of the NIC, at wall-clock
 * time: every frame received, every frame the NIC took for transmit).
 */
function openCapture(path: string | undefined, nic: Nic, machine: SimMachine | undefined): Capture {
  if (path === undefined) return { dev: nic, close: () => undefined };
  const file = Deno.openSync(path, { write: true, create: true, truncate: true });
  const pcap = new PcapWriter((bytes) => void file.writeSync(bytes));
  const close = (where: string) => (): string => {
    file.close();
    return `captured ${pcap.count} frames to ${path} (${where})`;
  };
  if (machine !== undefined) {
    machine.segment.tap((timeNs, frame) => pcap.write(timeNs, frame));
    return { dev: nic, close: close("the simulated wire") };
  }
  const wallNs = (): number => (performance.timeOrigin + performance.now()) * NS_PER_MS;
  const dev = new CaptureNetDevice(nic, (_direction, frame, offset, length) => {
    pcap.write(wallNs(), frame, offset, length);
  });
  return { dev, close: close("at the driver") };
}

async function main(args: string[]): Promise<number> {
  const { values } = parseFlags(args, OPTIONS);
  if (values.help) return help(HELP);
  const flags = commonFlags(values);
  const o = demoOptions(values, flags.device !== undefined);
  await using target = await openTarget(
    flags,
    { devices: [{ model: o.nic, bdf: SIM_BDF }], seed: 1, realtime: o.bridge !== undefined },
    SIM_BDF,
  );
  const { kernel, machine, bdf } = target;
  const world = machine === undefined ? undefined : await simWorld(machine, o);
  const nic = await openNic(bdf, {
    kernel,
    iommu: flags.vfio,
    queues: o.queues,
    interrupts: o.interrupts,
  }).catch((e) => {
    world?.close();
    throw e;
  });
  let capture: Capture | undefined;
  try {
    capture = openCapture(o.pcap, nic, machine);
    const stack = new NetStack(capture.dev, {
      address: o.ip,
      gateway: o.gateway,
      now: () => kernel.now(),
    });
    let echoed = 0;
    const echo = stack.udpBind(o.port, (d, off, len, ip, port) => {
      if (echo.sendTo(ip, port, d, off, len)) echoed++;
    });
    console.log(
      `udp_echo: ${nic.name} (${describeNic(nic, o.poll)}) mac ${formatMac(nic.mac)} ip ${o.ip} ` +
        `echoing UDP port ${o.port}` + (machine ? ` (simulated ${flags.iommu})` : "") +
        (world?.bridge
          ? `; host clients: ${world.bridge.address.hostname}:${world.bridge.address.port}`
          : ""),
    );
    // The built-in client ends the idle wait when its last echo is back.
    const finished = new AbortController();
    const client = world && !world.bridge
      ? builtInClient(world.gateway, o.nicIp, o.port, o.count, () => finished.abort())
      : undefined;
    const started = kernel.now();
    const reportNow = (): void => report(stack, nic, world, machine, kernel.now() - started);
    /**
     * Serve until `done()` or `durationMs` of wall clock; reports every second; `signal` ends an
     * interrupt wait early.
     */
    const serve = async (
      done: () => boolean,
      durationMs: number,
      signal?: AbortSignal,
    ): Promise<void> => {
      const from = performance.now();
      let lastReport = from;
      for (;;) {
        const n = stack.poll();
        client?.step();
        if (done()) return;
        const now = performance.now();
        const leftMs = durationMs - (now - from);
        if (leftMs <= 0) return;
        if (now - lastReport >= REPORT_MS) {
          lastReport = now;
          reportNow();
        }
        if (n > 0) continue;
        if (o.poll) await kernel.sleep(world?.bridge || !world ? 1 : 0.05);
        else {
          const waitMs = Math.max(0, Math.min(leftMs, REPORT_MS - (now - lastReport)));
          await nic.waitForWork(waitMs, signal);
        }
      }
    };
    const wallStart = performance.now();
    const cpuStart = process.cpuUsage();
    await serve(
      () => client?.done() === true || (o.echoes !== undefined && echoed >= o.echoes),
      o.durationS === undefined ? Infinity : o.durationS * 1000,
      finished.signal,
    );
    if (machine) await kernel.sleep(DRAIN_MS);
    reportNow();
    const wallS = (performance.now() - wallStart) / 1000;
    console.log(
      `udp_echo: echoed ${echoed} datagrams; ${cpuLine(process.cpuUsage(cpuStart), wallS)}, ` +
        `${idleMode(nic, o.poll)} when idle${lostInterrupts(nic)}`,
    );
    if (o.idleS !== undefined) {
      const idleFrom = performance.now();
      const idleCpu = process.cpuUsage();
      await serve(() => false, o.idleS * 1000);
      const idleWallS = (performance.now() - idleFrom) / 1000;
      console.log(
        `udp_echo: idle: ${cpuLine(process.cpuUsage(idleCpu), idleWallS)}, ` +
          `${idleMode(nic, o.poll)}`,
      );
    }
    if (!client || !world || !machine) return 0;
    const c = client.summary();
    console.log(
      `udp_echo: client sent ${c.sent}, echoed ${c.echoed}, pings answered ${c.pings}; ` +
        `${(c.echoed / wallS).toFixed(0)} echoes/s wall clock`,
    );
    let faulted = true;
    if (o.fault) {
      const r = await provokeFault(
        machine,
        bdf,
        world.gateway,
        o.nicIp,
        o.port,
        (done) => serve(done, REPORT_MS),
      );
      faulted = r.fault !== undefined;
      console.log(
        `udp_echo: DMA fault injected on the NIC's next write → ${r.fault ?? "no fault?!"}` +
          (r.then === undefined ? "" : ` (then: ${r.then})`),
      );
      reportNow();
    }
    return c.echoed === c.sent && c.pings > 0 && faulted ? 0 : 1;
  } finally {
    nic.close();
    const captured = capture?.close();
    if (captured !== undefined) console.log(`udp_echo: ${captured}`);
    world?.close();
  }
}

/** "cpu 0.123 s (user 0.100, sys 0.023) over 10.0 s wall clock". */
function cpuLine(cpu: { user: number; system: number }, wallS: number): string {
  return `cpu ${((cpu.user + cpu.system) / 1e6).toFixed(3)} s (user ${
    (cpu.user / 1e6).toFixed(3)
  }, sys ${(cpu.system / 1e6).toFixed(3)}) over ${wallS.toFixed(1)} s wall clock`;
}

/** What the loop does when a poll finds nothing. */
function idleMode(nic: Nic, poll: boolean): string {
  if (poll) return "busy polling";
  return nic.interruptMode === "none"
    ? "polling every ms (no interrupts)"
    : `sleeping on ${nic.interruptMode === "msix" ? "MSI-X" : "MSI"}`;
}

/**
 * ", N lost interrupts" on an interrupt-driven NIC: waits the interrupt did not end, in which the
 * driver's rescan (every LOST_IRQ_RESCAN_MS) found frames all the same.
 */
function lostInterrupts(nic: Nic): string {
  return nic.interruptMode === "none" ? "" : `, ${nic.missedInterrupts} lost interrupts`;
}

/** "sleeping on MSI-X, 4 queue pairs with RSS": how the NIC runs. */
function describeNic(nic: Nic, poll: boolean): string {
  const parts = [idleMode(nic, poll)];
  if ("queues" in nic && nic.queues > 1) parts.push(`${nic.queues} queue pairs with RSS`);
  return parts.join(", ");
}

/**
 * The drops that happened, named: the stack's reasons ({@link NET_STACK_DROPS}) and the NIC's
 * own (`nic.rxDropped`, `nic.txDropped`, an Intel NIC's `nic.missed`: frames its FIFO lost for
 * want of a receive descriptor); "none" when there were none.
 */
function drops(stack: NetStack, nic: Nic): string {
  const s = stack.stats;
  const n = nic.stats();
  const named: [string, number][] = NET_STACK_DROPS.map((k) => [k, s[k]]);
  named.push(["nic.rxDropped", n.rxDropped], ["nic.txDropped", n.txDropped]);
  if ("hardware" in n) named.push(["nic.missed", (n as IntelNicStats).hardware.missedPackets]);
  return named.filter(([, v]) => v > 0).map(([k, v]) => `${k}=${v}`).join(" ") || "none";
}

/**
 * One line of counters: the NIC's frames, what the stack answered, its drops by name; on the
 * simulator the frames the wire dropped (too long for it) and the IOMMU's faults; with the
 * bridge what crossed it and what it refused as too big for the path MTU.
 */
function report(
  stack: NetStack,
  nic: Nic,
  world: SimWorld | undefined,
  machine: SimMachine | undefined,
  elapsedMs: number,
): void {
  const s = stack.stats;
  const n = nic.stats();
  const b = world?.bridge;
  console.log(
    `udp_echo: t=${(elapsedMs / 1000).toFixed(4)}s${machine ? " (virtual)" : ""} ` +
      `rx ${n.rxPackets} tx ${n.txPackets} udp ${s.udpDelivered} arp ${s.arpReplies} ` +
      `ping ${s.echoReplies}; drops ${drops(stack, nic)}` +
      (b ? `; bridge in ${b.fromHost} out ${b.toHost} tooBig ${b.tooBig}` : "") +
      (machine
        ? `; wire dropped ${machine.segment.dropped}; faults ${machine.faults().length}`
        : ""),
  );
}

if (import.meta.main) await runProgram("udp_echo", main);
