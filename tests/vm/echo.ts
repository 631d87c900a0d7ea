/**
 * The host side of the VM bench's echo runs: the guest (tests/vm/guest/suite-host.sh) runs the UDP
 * echo demo over real VFIO on every NIC and VFIO path, one after the other, and the host answers
 * each with a UDP client on that NIC's forwarded port (QEMU user networking, one netdev per NIC).
 * It also reads the CPU time the demo printed for its idle seconds (`--idle`), when it did, and
 * the frames its `--pcap` capture at the driver wrote.
 *
 * Console protocol (in addition to tests/vm/results.ts):
 *   `@@DV ECHO <nic> <path> [<irq>]` … the demo's "echoing UDP port" line … (its "idle: cpu" line) …
 *   (its "captured N frames" line) …
 *   `@@DV ECHO-END <nic> <path> <code>`
 *
 * @module
 */

import dgram from "node:dgram";

/** Datagrams the host client sends to each echo run. */
export const ECHO_DATAGRAMS = 20;
/** Spacing of the client's datagrams (slow TCG guests keep up). */
const SEND_INTERVAL_MS = 25;
/** How long the client waits for the first echo before it sends the rest anyway. */
const FIRST_ECHO_WAIT_MS = 2000;
/**
 * The demo's line that says it is serving, with its NIC name and how it runs ("sleeping on
 * MSI-X, 4 queue pairs with RSS"; examples/udp_echo.ts).
 */
const ECHO_READY = /udp_echo: (\S+) \S+ \(([^)]*)\) .*echoing UDP port/;
/** The demo's CPU line for its idle seconds. */
const IDLE_LINE = /udp_echo: idle: cpu ([\d.]+) s .* over ([\d.]+) s wall clock, (.*)$/;
/** The demo's count of interrupts its driver found lost (examples/udp_echo.ts). */
const LOST_LINE = /udp_echo: echoed \d+ datagrams; .*, (\d+) lost interrupts$/;
/** The demo's line about its `--pcap` capture (examples/udp_echo.ts). */
const CAPTURE_LINE = /udp_echo: captured (\d+) frames to \S+ \(at the driver\)/;
const MARK = /@@DV (ECHO|ECHO-END) (\S+) (\S+)(?: (\S+))?/;

/** One echo run: a NIC over a VFIO path. */
export interface EchoRun {
  /** Driver name (virtio-net, e1000e, igb). */
  readonly nic: string;
  /** VFIO path (type1, iommufd, compat). */
  readonly path: string;
  /** Datagrams sent. */
  sent: number;
  /** Datagrams that came back. */
  echoed: number;
  /** The interrupt the run asked for with `--irq` (msix, msi), if it did. */
  readonly irq: string | undefined;
  /** How the demo said it runs ("sleeping on MSI", …), once it said so. */
  mode: string | undefined;
  /** Interrupts the driver found lost (an interrupt-driven run), once the demo said so. */
  lostInterrupts: number | undefined;
  /** The demo's exit code, once it ended. */
  exit: number | undefined;
  /** Frames the demo's capture at the driver wrote, once it said so. */
  captured: number | undefined;
}

/** One idle CPU measurement (at the end of an echo run). */
export interface IdleRun {
  /** Driver name. */
  readonly nic: string;
  /** VFIO path. */
  readonly path: string;
  /** "interrupt" or "poll". */
  readonly mode: string;
  /** CPU seconds (user + sys) the demo used while idle. */
  readonly cpuS: number;
  /** Wall seconds it was idle. */
  readonly wallS: number;
}

/** Follows one guest's console and runs the host clients. */
export class EchoBench {
  /** Echo runs, in order. */
  readonly echoes: EchoRun[] = [];
  /** Idle runs, in order. */
  readonly idle: IdleRun[] = [];
  readonly #ports: Readonly<Record<string, number>>;
  readonly #sockets: dgram.Socket[] = [];
  readonly #timers: (ReturnType<typeof setInterval> | ReturnType<typeof setTimeout>)[] = [];
  #current: { run: EchoRun; started: boolean } | undefined;

  /** Clients for the forwarded UDP ports, by driver name. */
  constructor(ports: Readonly<Record<string, number>>) {
    this.#ports = ports;
  }

  /** Feed one console line. */
  onLine(text: string): void {
    const m = MARK.exec(text);
    if (m) {
      const [, kind, nic, arg, extra] = m;
      if (kind === "ECHO") {
        const run: EchoRun = {
          nic,
          path: arg,
          sent: 0,
          echoed: 0,
          irq: extra,
          mode: undefined,
          lostInterrupts: undefined,
          exit: undefined,
          captured: undefined,
        };
        this.echoes.push(run);
        this.#current = { run, started: false };
      } else if (this.#current !== undefined) {
        this.#current.run.exit = Number(extra);
        this.#current = undefined;
      }
      return;
    }
    const cur = this.#current;
    if (cur === undefined) return;
    const ready = cur.started ? null : ECHO_READY.exec(text);
    if (ready && ready[1] === cur.run.nic) {
      cur.started = true;
      cur.run.mode = ready[2];
      this.#start(cur.run);
      return;
    }
    const lost = LOST_LINE.exec(text);
    if (lost) {
      cur.run.lostInterrupts = Number(lost[1]);
      return;
    }
    const captured = CAPTURE_LINE.exec(text);
    if (captured) {
      cur.run.captured = Number(captured[1]);
      return;
    }
    const idle = IDLE_LINE.exec(text);
    if (idle) {
      this.idle.push({
        nic: cur.run.nic,
        path: cur.run.path,
        mode: idle[3].startsWith("busy polling") ? "poll" : "interrupt",
        cpuS: Number(idle[1]),
        wallS: Number(idle[2]),
      });
    }
  }

  /** Stop sending and close every client socket. */
  close(): void {
    for (const t of this.#timers) clearTimeout(t);
    for (const s of this.#sockets) s.close();
  }

  /**
   * Send one datagram and, once it came back (the guest has resolved the host's address with
   * ARP, holding only a few frames meanwhile) or after {@link FIRST_ECHO_WAIT_MS}, the rest
   * {@link SEND_INTERVAL_MS} apart.
   */
  #start(run: EchoRun): void {
    const port = this.#ports[run.nic];
    const socket = dgram.createSocket("udp4");
    this.#sockets.push(socket);
    const send = (): void => {
      socket.send(`deno_vfio vm echo ${run.nic} ${run.path} ${run.sent}`, port, "127.0.0.1");
      run.sent++;
    };
    const rest = (): void => {
      if (run.sent !== 1) return;
      const timer = setInterval(() => {
        send();
        if (run.sent === ECHO_DATAGRAMS) clearInterval(timer);
      }, SEND_INTERVAL_MS);
      this.#timers.push(timer);
    };
    socket.on("message", () => {
      run.echoed++;
      rest();
    });
    send();
    const firstTimer = setTimeout(rest, FIRST_ECHO_WAIT_MS);
    this.#timers.push(firstTimer);
  }
}
