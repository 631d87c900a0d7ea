/**
 * The host side of the VM bench's echo runs: the guest (tests/vm/guest/suite-host.sh) runs the UDP
 * echo demo over real VFIO on every NIC and VFIO path, one after the other, and the host answers
 * each with a UDP client on that NIC's forwarded port (QEMU user networking, one netdev per NIC).
 * It also reads the demo's CPU figure of the idle runs.
 *
 * Console protocol (in addition to tests/vm/results.ts):
 *   `@@DV ECHO <nic> <path>` … the demo's "echoing UDP port" line … `@@DV ECHO-END <nic> <path> <code>`
 *   `@@DV IDLE <nic> <mode>` … the demo's "cpu X s" line … `@@DV IDLE-END <nic> <mode> <code>`
 *
 * @module
 */

import dgram from "node:dgram";

/** Datagrams the host client sends to each echo run. */
export const ECHO_DATAGRAMS = 20;
/** Spacing of the client's datagrams (slow TCG guests keep up). */
const SEND_INTERVAL_MS = 50;
/** The demo's line that says it is serving, with its NIC name (examples/udp_echo.ts). */
const ECHO_READY = /udp_echo: (\S+) \S+ .*echoing UDP port/;
/** The demo's closing CPU line. */
const CPU_LINE = /udp_echo: echoed \d+ datagrams; cpu ([\d.]+) s .* over ([\d.]+) s wall clock/;
const MARK = /@@DV (ECHO|ECHO-END|IDLE|IDLE-END) (\S+) (\S+)(?: (\d+))?/;

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
  /** The demo's exit code, once it ended. */
  exit: number | undefined;
}

/** One idle CPU measurement. */
export interface IdleRun {
  /** Driver name. */
  readonly nic: string;
  /** "interrupt" or "poll". */
  readonly mode: string;
  /** CPU seconds (user + sys) the demo used while serving. */
  cpuS: number | undefined;
  /** Wall seconds it served. */
  wallS: number | undefined;
  /** The demo's exit code. */
  exit: number | undefined;
}

/** Follows one guest's console and runs the host clients. */
export class EchoBench {
  /** Echo runs, in order. */
  readonly echoes: EchoRun[] = [];
  /** Idle runs, in order. */
  readonly idle: IdleRun[] = [];
  readonly #ports: Readonly<Record<string, number>>;
  readonly #sockets: dgram.Socket[] = [];
  readonly #timers: ReturnType<typeof setInterval>[] = [];
  #current: { kind: "echo"; run: EchoRun; started: boolean } | {
    kind: "idle";
    run: IdleRun;
  } | undefined;

  /** Clients for the forwarded UDP ports, by driver name. */
  constructor(ports: Readonly<Record<string, number>>) {
    this.#ports = ports;
  }

  /** Feed one console line. */
  onLine(text: string): void {
    const m = MARK.exec(text);
    if (m) {
      const [, kind, nic, arg, code] = m;
      if (kind === "ECHO") {
        const run: EchoRun = { nic, path: arg, sent: 0, echoed: 0, exit: undefined };
        this.echoes.push(run);
        this.#current = { kind: "echo", run, started: false };
      } else if (kind === "IDLE") {
        const run: IdleRun = { nic, mode: arg, cpuS: undefined, wallS: undefined, exit: undefined };
        this.idle.push(run);
        this.#current = { kind: "idle", run };
      } else if (this.#current !== undefined) {
        this.#current.run.exit = Number(code);
        this.#current = undefined;
      }
      return;
    }
    const cur = this.#current;
    if (cur?.kind === "echo" && !cur.started) {
      const ready = ECHO_READY.exec(text);
      if (ready && ready[1] === cur.run.nic) {
        cur.started = true;
        this.#start(cur.run);
      }
    } else if (cur?.kind === "idle") {
      const cpu = CPU_LINE.exec(text);
      if (cpu) {
        cur.run.cpuS = Number(cpu[1]);
        cur.run.wallS = Number(cpu[2]);
      }
    }
  }

  /** Stop sending and close every client socket. */
  close(): void {
    for (const t of this.#timers) clearInterval(t);
    for (const s of this.#sockets) s.close();
  }

  #start(run: EchoRun): void {
    const port = this.#ports[run.nic];
    const socket = dgram.createSocket("udp4");
    this.#sockets.push(socket);
    socket.on("message", () => void run.echoed++);
    let i = 0;
    const timer = setInterval(() => {
      socket.send(`deno_vfio vm echo ${run.nic} ${run.path} ${i}`, port, "127.0.0.1");
      run.sent++;
      if (++i === ECHO_DATAGRAMS) clearInterval(timer);
    }, SEND_INTERVAL_MS);
    this.#timers.push(timer);
  }
}
