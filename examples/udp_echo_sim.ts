/**
 * The UDP echo demo's simulated world (examples/udp_echo.ts): the gateway host on the NIC's wire,
 * the bridge that lets real host clients reach the simulated NIC, the built-in client that pings
 * and sends datagrams when there is no bridge, and `--fault`, which makes the NIC's next DMA
 * write fault through the machine's fault injection so the IOMMU's fault line can be seen.
 *
 * @module
 */

import { type SimMachine, SimPeer, UdpBridge } from "../sim/mod.ts";

/** The simulated gateway's MAC (QEMU user networking's 10.0.2.2 has 52:55:0a:00:02:02). */
const GATEWAY_MAC = new Uint8Array([0x52, 0x55, 0x0a, 0x00, 0x02, 0x02]);
/** The built-in client's UDP source port. */
const CLIENT_PORT = 5000;
/** Datagrams the built-in client keeps in flight. */
const CLIENT_WINDOW = 32;
/** The built-in client's payload. */
const CLIENT_PAYLOAD = new TextEncoder().encode("deno_vfio echo ".repeat(4));

/** The world around the simulated NIC. */
export interface SimWorld {
  /** The gateway host on the NIC's wire. */
  readonly gateway: SimPeer;
  /** The bridge to real host clients, with `--bridge`. */
  readonly bridge?: UdpBridge;
  /** Close the bridge's socket. */
  close(): void;
}

/** Where the NIC's echo service lives, and what reaches it. */
export interface SimWorldOptions {
  /** The gateway's address (u32). */
  readonly gatewayIp: number;
  /** The NIC's address (u32). */
  readonly nicIp: number;
  /** The echo port. */
  readonly port: number;
  /** `--bridge HOST:PORT`: a real UDP socket of this host relayed to the NIC's echo port. */
  readonly bridge?: { readonly hostname: string; readonly port: number };
}

/** The gateway on the machine's wire and, when asked, the bridge (needs `--allow-net`). */
export async function simWorld(machine: SimMachine, o: SimWorldOptions): Promise<SimWorld> {
  const gateway = new SimPeer(machine.segment, {
    name: "gateway",
    mac: GATEWAY_MAC,
    ip: o.gatewayIp,
  });
  const bridge = o.bridge === undefined
    ? undefined
    : await UdpBridge.open({ ...o.bridge, peer: gateway, targetIp: o.nicIp, targetPort: o.port });
  return { gateway, bridge, close: () => bridge?.close() };
}

/** The built-in client: pings the NIC, keeps a window of datagrams in flight, counts echoes. */
export interface BuiltInClient {
  /** Top the window up. */
  step(): void;
  /** All datagrams echoed and the ping answered. */
  done(): boolean;
  /** What it sent and got back. */
  summary(): { sent: number; echoed: number; pings: number };
}

/** A client on the gateway sending `count` datagrams to `nicIp:port`; `onDone` when all came back. */
export function builtInClient(
  gateway: SimPeer,
  nicIp: number,
  port: number,
  count: number,
  onDone: () => void,
): BuiltInClient {
  let sent = 0;
  let echoed = 0;
  const step = (): void => {
    while (sent < count && sent - echoed < CLIENT_WINDOW) {
      gateway.sendUdp(nicIp, port, CLIENT_PORT, CLIENT_PAYLOAD);
      sent++;
    }
  };
  // Each echo makes room in the window at once (on the wire, in virtual time), so the NIC's
  // interrupt is the only thing the demo's loop waits for.
  gateway.onUdp(CLIENT_PORT, () => {
    echoed++;
    step();
    if (echoed === count) onDone();
  });
  gateway.ping(nicIp, 1, 1);
  return {
    step,
    done: () => echoed >= count && gateway.echoReplies.length > 0,
    summary: () => ({ sent, echoed, pings: gateway.echoReplies.length }),
  };
}

/**
 * `--fault`: the NIC's next DMA write faults (injected with `machine.inject(bdf).failDma`, and
 * recorded by the IOMMU model as its own fault: the vendor's kernel-log line, on sPAPR a frozen
 * PE), and the gateway sends one more datagram for the NIC to write into memory. `serve` runs the
 * demo's loop until its `done` says so. Returns the fault's line (undefined if none came) and
 * what the driver said next, if it gave up (sPAPR: the frozen PE stops answering MMIO).
 */
export async function provokeFault(
  machine: SimMachine,
  bdf: string,
  gateway: SimPeer,
  nicIp: number,
  port: number,
  serve: (done: () => boolean) => Promise<void>,
): Promise<{ fault?: string; then?: string }> {
  const before = machine.faults().length;
  machine.inject(bdf).failDma({ next: 1, access: "write" });
  gateway.sendUdp(nicIp, port, CLIENT_PORT, CLIENT_PAYLOAD);
  let then: string | undefined;
  try {
    await serve(() => machine.faults().length > before);
  } catch (e) {
    then = (e instanceof Error ? e.message : String(e)).split("\n")[0];
  }
  return { fault: machine.faults()[before]?.message, then };
}
