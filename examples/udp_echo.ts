/**
 * The UDP NIC demo: a userspace NIC driver (virtio-net, e1000e or igb, picked by PCI id) plus the
 * project's own Ethernet/ARP/IPv4/ICMP/UDP stack, echoing every UDP datagram sent to its port. It
 * polls while traffic flows and sleeps on the NIC's receive interrupt when idle (`--poll`: the
 * busy-polling loop instead); at the end it prints the CPU time it used.
 *
 *   deno task demo                                   # simulator: VT-d + virtio-net, built-in client
 *   deno task demo --nic igb --iommu smmuv3          # the same with a simulated 82576 on SMMUv3
 *   deno task demo --bridge 127.0.0.1:9000           # simulator, reachable by real host clients
 *   deno run --allow-ffi examples/udp_echo.ts --device 0000:00:03.0 --ip 10.0.2.15/24
 *
 * @module
 */

import { parseArgs } from "node:util";
import process from "node:process";
import type { Kernel } from "../ffi/kernel.ts";
import type { IommuChoice } from "../core/pci_device.ts";
import { type Nic, type NicDriver, openNic } from "../drivers/open_nic.ts";
import { NetStack } from "../net/stack.ts";
import { parseCidr, parseIpv4 } from "../net/ipv4.ts";
import { formatMac } from "../net/ethernet.ts";
import {
  createMachine,
  type MachineDevice,
  type MachineOptions,
  type SimMachine,
} from "../sim/machine.ts";
import { SimPeer } from "../sim/net/peer.ts";
import { PcapWriter } from "../sim/net/pcap.ts";
import { UdpBridge } from "../sim/net/bridge.ts";

const HELP = `udp_echo — a userspace NIC driver and UDP/IP stack that echoes datagrams

usage: deno task demo [options]
  --nic NAME          simulated NIC: virtio-net (default), e1000e (82574L), igb (82576)
  --iommu MODEL       simulated IOMMU: vtd (default), smmuv3, virtio-iommu, spapr
  --vfio PATH         VFIO path: auto (default), type1 (container), iommufd (cdev)
  --bridge HOST:PORT  expose the simulated NIC's echo port on a real UDP socket of this host
  --pcap FILE         write the simulated wire's traffic to FILE (pcap; tshark/Wireshark read it)
  --count N           built-in client: datagrams to send when not bridging (default 1000)
  --echoes N          stop once N datagrams have been echoed (with --device or --bridge)
  --duration S        stop after S seconds (default: until the built-in client is done, or forever
                      with --bridge or --device)
  --idle S            then stay S more seconds without traffic and print the CPU time they took
  --device BDF        drive a real NIC bound to vfio-pci (virtio-net, e1000e or igb, by PCI id)
  --queues N          igb: N queue pairs with RSS, one MSI-X vector each (default 1)
  --poll              busy-poll (sleep 1 ms when idle) instead of sleeping on the interrupt
  --ip A.B.C.D/NN     the stack's address (default 10.0.2.15/24, QEMU user networking's guest)
  --gateway A.B.C.D   default gateway (default 10.0.2.2)
  --port N            UDP port to echo on (default 7)
  --help              this text`;

/** NICs the simulator offers. */
const SIM_NICS: readonly NicDriver[] = ["virtio-net", "e1000e", "igb"];
/** VFIO paths the demo takes. */
const VFIO_PATHS: readonly string[] = ["auto", "type1", "iommufd"];
/** Wake at least this often when idle: counters, duration, the stack's ARP timers (ms). */
const REPORT_MS = 1000;

/** Where the simulated NIC sits. */
const SIM_BDF = "0000:00:03.0";

/** Simulated IOMMU models the demo offers, with the machine options each needs. */
const SIM_IOMMUS: Record<string, Partial<MachineOptions>> = {
  vtd: {},
  smmuv3: {},
  // x86 with virtio-iommu has no interrupt remapping: VFIO needs allow_unsafe_interrupts.
  "virtio-iommu": { allowUnsafeInterrupts: { type1: true, iommufd: true } },
  // POWER9 PowerNV: the sPAPR TCE container (DMA windows, 64 KiB pages).
  spapr: {},
};

/** Parsed options. */
interface Options {
  nic: NicDriver;
  iommu: string;
  vfio: IommuChoice;
  poll: boolean;
  queues: number;
  echoes?: number;
  idleS?: number;
  bridge?: { hostname: string; port: number };
  pcap?: string;
  count: number;
  durationS?: number;
  device?: string;
  ip: string;
  gateway: string;
  port: number;
}

function parseOptions(argv: string[]): Options | "help" {
  const { values } = parseArgs({
    args: argv,
    options: {
      nic: { type: "string", default: "virtio-net" },
      iommu: { type: "string", default: "vtd" },
      vfio: { type: "string", default: "auto" },
      poll: { type: "boolean", default: false },
      queues: { type: "string", default: "1" },
      echoes: { type: "string" },
      idle: { type: "string" },
      bridge: { type: "string" },
      pcap: { type: "string" },
      count: { type: "string", default: "1000" },
      duration: { type: "string" },
      device: { type: "string" },
      ip: { type: "string", default: "10.0.2.15/24" },
      gateway: { type: "string", default: "10.0.2.2" },
      port: { type: "string", default: "7" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) return "help";
  if (!(values.iommu in SIM_IOMMUS)) {
    throw new RangeError(`--iommu ${values.iommu}: one of ${Object.keys(SIM_IOMMUS).join(", ")}`);
  }
  if (!SIM_NICS.includes(values.nic as NicDriver)) {
    throw new RangeError(`--nic ${values.nic}: one of ${SIM_NICS.join(", ")}`);
  }
  if (!VFIO_PATHS.includes(values.vfio)) {
    throw new RangeError(`--vfio ${values.vfio}: one of ${VFIO_PATHS.join(", ")}`);
  }
  parseCidr(values.ip);
  parseIpv4(values.gateway);
  const num = (name: string, text: string, max: number): number => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < 0 || n > max) {
      throw new RangeError(`--${name} ${text}: expected an integer 0..${max}`);
    }
    return n;
  };
  let bridge: Options["bridge"];
  if (values.bridge !== undefined) {
    const m = /^([^:]+):(\d+)$/.exec(values.bridge);
    if (!m) {
      throw new RangeError(`--bridge ${values.bridge}: expected HOST:PORT like 127.0.0.1:9000`);
    }
    bridge = { hostname: m[1], port: num("bridge port", m[2], 65535) };
  }
  return {
    nic: values.nic as NicDriver,
    iommu: values.iommu,
    vfio: values.vfio as IommuChoice,
    poll: values.poll,
    queues: num("queues", values.queues, 64),
    echoes: values.echoes === undefined ? undefined : num("echoes", values.echoes, 1e9),
    idleS: values.idle === undefined ? undefined : num("idle", values.idle, 1e6),
    bridge,
    pcap: values.pcap,
    count: num("count", values.count, 1e9),
    durationS: values.duration === undefined ? undefined : num("duration", values.duration, 1e9),
    device: values.device,
    ip: values.ip,
    gateway: values.gateway,
    port: num("port", values.port, 65535),
  };
}

/** The simulated world around the NIC: the gateway host, optional pcap and bridge. */
interface SimWorld {
  machine: SimMachine;
  gateway: SimPeer;
  bridge?: UdpBridge;
  closePcap?: () => void;
}

async function simWorld(o: Options, nicIp: number): Promise<SimWorld> {
  const machine = createMachine({
    iommu: o.iommu as MachineOptions["iommu"],
    ...SIM_IOMMUS[o.iommu],
    devices: [{ model: o.nic as MachineDevice["model"], bdf: SIM_BDF }],
    seed: 1,
    realtime: o.bridge !== undefined,
  });
  const gateway = new SimPeer(machine.segment, {
    name: "gateway",
    mac: new Uint8Array([0x52, 0x55, 0x0a, 0x00, 0x02, 0x02]),
    ip: parseIpv4(o.gateway),
  });
  let closePcap: (() => void) | undefined;
  if (o.pcap) {
    const file = Deno.openSync(o.pcap, { write: true, create: true, truncate: true });
    const pcap = new PcapWriter((bytes) => void file.writeSync(bytes));
    machine.segment.tap((t, frame) => pcap.write(t, frame));
    closePcap = () => file.close();
  }
  const bridge = o.bridge
    ? await UdpBridge.open({ ...o.bridge, peer: gateway, targetIp: nicIp, targetPort: o.port })
    : undefined;
  return { machine, gateway, bridge, closePcap };
}

async function main(): Promise<number> {
  let o: Options;
  try {
    const parsed = parseOptions(Deno.args);
    if (parsed === "help") {
      console.log(HELP);
      return 0;
    }
    o = parsed;
  } catch (e) {
    console.error(`udp_echo: ${(e as Error).message} (see --help)`);
    return 2;
  }
  const nicIp = parseCidr(o.ip).address;
  let kernel: Kernel;
  let world: SimWorld | undefined;
  if (o.device) {
    const { LinuxKernel } = await import("../ffi/linux.ts");
    kernel = LinuxKernel.open();
  } else {
    world = await simWorld(o, nicIp);
    kernel = world.machine.kernel;
  }
  const bdf = o.device ?? SIM_BDF;
  const nic = await openNic(bdf, {
    kernel,
    iommu: o.vfio,
    queues: o.queues,
    interrupts: !o.poll,
  });
  try {
    const stack = new NetStack(nic, { address: o.ip, gateway: o.gateway, now: () => kernel.now() });
    let echoed = 0;
    const echo = stack.udpBind(o.port, (d, off, len, ip, port) => {
      if (echo.sendTo(ip, port, d, off, len)) echoed++;
    });
    console.log(
      `udp_echo: ${nic.name} (${describeNic(nic, o.poll)}) mac ${formatMac(nic.mac)} ip ${o.ip} ` +
        `echoing UDP port ${o.port}` + (world ? ` (simulated ${o.iommu})` : "") +
        (world?.bridge
          ? `; host clients: ${world.bridge.address.hostname}:${world.bridge.address.port}`
          : ""),
    );
    // The built-in client ends the idle wait when its last echo is back.
    const finished = new AbortController();
    const client = world && !world.bridge
      ? builtInClient(world, nicIp, o, () => finished.abort())
      : undefined;
    const started = kernel.now();
    /** Serve until `done()` or `durationMs` of wall clock; reports every second. */
    const serve = async (done: () => boolean, durationMs: number): Promise<void> => {
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
          report(stack, nic.stats(), world, kernel.now() - started);
        }
        if (n > 0) continue;
        if (o.poll) await kernel.sleep(world?.bridge || !world ? 1 : 0.05);
        else {
          const waitMs = Math.max(0, Math.min(leftMs, REPORT_MS - (now - lastReport)));
          await nic.waitForWork(waitMs, finished.signal);
        }
      }
    };
    const wallStart = performance.now();
    const cpuStart = process.cpuUsage();
    await serve(
      () => client?.done() === true || (o.echoes !== undefined && echoed >= o.echoes),
      o.durationS === undefined ? Infinity : o.durationS * 1000,
    );
    report(stack, nic.stats(), world, kernel.now() - started);
    const wallS = (performance.now() - wallStart) / 1000;
    console.log(
      `udp_echo: echoed ${echoed} datagrams; ${cpuLine(process.cpuUsage(cpuStart), wallS)}, ` +
        `${idleMode(nic, o.poll)} when idle`,
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
    if (client) {
      const c = client.summary();
      console.log(
        `udp_echo: client sent ${c.sent}, echoed ${c.echoed}, pings answered ${c.pings}; ` +
          `${(c.echoed / wallS).toFixed(0)} echoes/s wall clock`,
      );
      return c.echoed === c.sent && c.pings > 0 ? 0 : 1;
    }
    return 0;
  } finally {
    nic.close();
    world?.bridge?.close();
    world?.closePcap?.();
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

/** "sleeping on MSI-X, 4 queue pairs with RSS": how the NIC runs. */
function describeNic(nic: Nic, poll: boolean): string {
  const parts = [idleMode(nic, poll)];
  if ("queues" in nic && nic.queues > 1) parts.push(`${nic.queues} queue pairs with RSS`);
  return parts.join(", ");
}

/**
 * A client on the simulated gateway: pings the NIC, then keeps a window of datagrams in flight
 * and counts the echoes.
 */
function builtInClient(world: SimWorld, nicIp: number, o: Options, onDone: () => void): {
  step(): void;
  done(): boolean;
  summary(): { sent: number; echoed: number; pings: number };
} {
  const srcPort = 5000;
  let sent = 0;
  let echoed = 0;
  const window = 32;
  const payload = new TextEncoder().encode("deno_vfio echo ".repeat(4));
  const step = (): void => {
    while (sent < o.count && sent - echoed < window) {
      world.gateway.sendUdp(nicIp, o.port, srcPort, payload);
      sent++;
    }
  };
  // Each echo makes room in the window at once (on the wire, in virtual time), so the NIC's
  // interrupt is the only thing the demo's loop waits for.
  world.gateway.onUdp(srcPort, () => {
    echoed++;
    step();
    if (echoed === o.count) onDone();
  });
  world.gateway.ping(nicIp, 1, 1);
  return {
    step,
    done: () => echoed >= o.count && world.gateway.echoReplies.length > 0,
    summary: () => ({ sent, echoed, pings: world.gateway.echoReplies.length }),
  };
}

function report(
  stack: NetStack,
  nic: { rxPackets: number; txPackets: number; rxDropped: number; txDropped: number },
  world: SimWorld | undefined,
  elapsedMs: number,
): void {
  const s = stack.stats;
  console.log(
    `udp_echo: t=${(elapsedMs / 1000).toFixed(4)}s${world ? " (virtual)" : ""} ` +
      `rx ${nic.rxPackets} tx ${nic.txPackets} ` +
      `udp ${s.udpDelivered} arp ${s.arpReplies} ping ${s.echoReplies} ` +
      `dropped malformed=${s.malformed} checksum=${s.badChecksum} nosocket=${s.udpNoSocket} ` +
      `rx=${nic.rxDropped} tx=${nic.txDropped + s.txDropped}` +
      (world?.bridge ? ` bridge in ${world.bridge.fromHost} out ${world.bridge.toHost}` : "") +
      (world ? ` faults ${world.machine.faults().length}` : ""),
  );
}

if (import.meta.main) {
  try {
    Deno.exit(await main());
  } catch (e) {
    console.error(`udp_echo: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
