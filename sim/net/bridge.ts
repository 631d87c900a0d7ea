/**
 * A bridge from real UDP sockets on the host to the simulated network: datagrams a real client
 * sends to the bridge's host port are re-sent on the simulated segment by a {@link SimPeer} (the
 * "gateway") to a target address and port, and the target's answers go back to that client.
 * Each client gets its own source port on the simulated side (a small NAT), so several clients
 * can talk at once. Needs `--allow-net` for the host socket; nothing else in the simulator does.
 *
 * A datagram whose IPv4 packet would exceed the simulated path's MTU is refused and counted
 * ({@link UdpBridge.tooBig}) instead of being handed to the peer, whose frame the segment would
 * drop: the host socket cannot tell its client, as a router that may not fragment cannot
 * either (the host's own stack would have fragmented it; the simulated peer does not).
 *
 * @module
 */

import dgram from "node:dgram";
import type { SimPeer } from "./peer.ts";

/** First simulated source port handed to a host client. */
export const BRIDGE_FIRST_PORT = 40000;
/** Number of simulated source ports (clients beyond this reuse the oldest mapping). */
export const BRIDGE_PORTS = 1024;

/** The path MTU the bridge assumes by default: Ethernet's 1500 bytes of IP (RFC 894). */
export const BRIDGE_DEFAULT_MTU = 1500;
/** The smallest MTU an IPv4 link may have (RFC 791: every host must take 68-byte packets). */
const IPV4_MIN_MTU = 68;
/** The largest IPv4 packet. */
const IPV4_MAX_PACKET = 65535;
/** Bytes of IPv4 (20, no options) and UDP (8) headers in front of a datagram's data. */
const IPV4_UDP_HEADERS = 28;

/** Options of {@link UdpBridge.open}. */
export interface UdpBridgeOptions {
  /** Host address to listen on, "127.0.0.1". */
  hostname: string;
  /** Host port (0 picks a free one). */
  port: number;
  /** The simulated host that relays. */
  peer: SimPeer;
  /** Simulated destination address (u32). */
  targetIp: number;
  /** Simulated destination port. */
  targetPort: number;
  /** The simulated path's MTU in bytes of IPv4 packet (default {@link BRIDGE_DEFAULT_MTU}). */
  mtu?: number;
}

interface Client {
  address: string;
  port: number;
}

/** The bridge. */
export class UdpBridge {
  /** Datagrams from host clients relayed into the simulation. */
  fromHost = 0;
  /** Datagrams from the simulation relayed back to host clients. */
  toHost = 0;
  /** Datagrams from host clients refused: their IPv4 packet would exceed the path MTU. */
  tooBig = 0;
  readonly #socket: dgram.Socket;
  readonly #options: UdpBridgeOptions;
  readonly #byClient = new Map<string, number>();
  readonly #byPort = new Map<number, Client>();
  #next = 0;

  private constructor(socket: dgram.Socket, options: UdpBridgeOptions) {
    this.#socket = socket;
    this.#options = options;
    socket.on("message", (msg: Uint8Array, rinfo: dgram.RemoteInfo) => this.#fromHost(msg, rinfo));
  }

  /**
   * Open the host socket; rejects with the OS error (e.g. EADDRINUSE) if it cannot bind, and
   * with `Deno.errors.NotCapable` without net permission for the address (checked first: node's
   * dgram would throw that error outside the promise, where no caller can catch it).
   */
  static open(options: UdpBridgeOptions): Promise<UdpBridge> {
    const mtu = options.mtu;
    if (
      mtu !== undefined && !(Number.isInteger(mtu) && mtu >= IPV4_MIN_MTU && mtu <= IPV4_MAX_PACKET)
    ) {
      return Promise.reject(
        new RangeError(
          `bridge mtu ${mtu}: want an integer from ${IPV4_MIN_MTU} to ${IPV4_MAX_PACKET}`,
        ),
      );
    }
    const host = options.port === 0 ? options.hostname : `${options.hostname}:${options.port}`;
    if (Deno.permissions.querySync({ name: "net", host }).state !== "granted") {
      return Promise.reject(
        new Deno.errors.NotCapable(
          `Requires net access to "${host}", run again with the --allow-net flag`,
        ),
      );
    }
    return new Promise((resolve, reject) => {
      const socket = dgram.createSocket("udp4");
      socket.once("error", reject);
      socket.bind(options.port, options.hostname, () => {
        socket.off("error", reject);
        resolve(new UdpBridge(socket, options));
      });
    });
  }

  /** The host address and port the bridge listens on. */
  get address(): { hostname: string; port: number } {
    const a = this.#socket.address();
    return { hostname: a.address, port: a.port };
  }

  /** Close the host socket. */
  close(): void {
    this.#socket.close();
  }

  #fromHost(msg: Uint8Array, rinfo: dgram.RemoteInfo): void {
    if (msg.length + IPV4_UDP_HEADERS > (this.#options.mtu ?? BRIDGE_DEFAULT_MTU)) {
      this.tooBig++;
      return;
    }
    const key = `${rinfo.address}:${rinfo.port}`;
    let port = this.#byClient.get(key);
    if (port === undefined) {
      port = BRIDGE_FIRST_PORT + (this.#next++ % BRIDGE_PORTS);
      const old = this.#byPort.get(port);
      if (old) this.#byClient.delete(`${old.address}:${old.port}`);
      this.#byClient.set(key, port);
      this.#byPort.set(port, { address: rinfo.address, port: rinfo.port });
      this.#options.peer.onUdp(port, (d) => {
        const client = this.#byPort.get(d.dstPort);
        if (!client) return;
        this.toHost++;
        this.#socket.send(d.data, client.port, client.address);
      });
    }
    this.fromHost++;
    const o = this.#options;
    o.peer.sendUdp(o.targetIp, o.targetPort, port, new Uint8Array(msg));
  }
}
