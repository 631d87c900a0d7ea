/**
 * The host side of the VM bench's forwarder run: the guest (tests/vm/guest/suite-host.sh) runs
 * examples/forward.ts over real VFIO between its e1000e and its igb for a few seconds, and the
 * host feeds both ports with UDP datagrams through their forwarded ports (QEMU user networking,
 * one netdev per NIC; the frames the forwarder sends out of the other port leave through that
 * port's user network). The forwarder's summary line gives frames and Mpps per direction — TCG
 * figures, not speed claims.
 *
 * Console protocol (in addition to tests/vm/results.ts and tests/vm/echo.ts):
 *   `@@DV FORWARD <nic> <nic>` … the forwarder's "forward: port 0 …" line … its summary …
 *   `@@DV FORWARD-END <nic> <nic> <code>`
 *
 * @module
 */

import dgram from "node:dgram";

/** Datagrams sent to each port per tick, and the tick (ms). */
const BURST = 8;
const TICK_MS = 5;
const MARK = /@@DV (FORWARD|FORWARD-END) (\S+) (\S+)(?: (\d+))?/;
/** The forwarder's first line (examples/forward.ts). */
const READY = /^forward: port 0 /;
/** The forwarder's summary line. */
const SUMMARY =
  /forward: ([\d.]+) s, batch \d+: 0->1 forwarded (\d+) \(([\d.]+) Mpps\), dropped (\d+); 1->0 forwarded (\d+) \(([\d.]+) Mpps\), dropped (\d+); total ([\d.]+) Mpps/;

/** One forwarder run. */
export interface ForwardRun {
  /** The two NICs (port 0, port 1). */
  readonly nics: [string, string];
  /** Datagrams the host sent into the ports. */
  sent: number;
  /** The forwarder's summary line, once printed. */
  summary: string | undefined;
  /** Frames forwarded 0→1 and 1→0, and the total rate, from the summary. */
  forwarded: [number, number] | undefined;
  /** Total Mpps from the summary. */
  mpps: number | undefined;
  /** The forwarder's exit code. */
  exit: number | undefined;
}

/** Follows one guest's console and feeds its forwarder. */
export class ForwardBench {
  /** Runs, in order. */
  readonly runs: ForwardRun[] = [];
  readonly #ports: Readonly<Record<string, number>>;
  #current: { run: ForwardRun; timer?: ReturnType<typeof setInterval> } | undefined;
  #socket: dgram.Socket | undefined;

  /** Clients for the forwarded UDP ports, by driver name (the echo runs' ports). */
  constructor(ports: Readonly<Record<string, number>>) {
    this.#ports = ports;
  }

  /** Feed one console line. */
  onLine(text: string): void {
    const m = MARK.exec(text);
    if (m) {
      const [, kind, a, b, code] = m;
      if (kind === "FORWARD") {
        const run: ForwardRun = {
          nics: [a, b],
          sent: 0,
          summary: undefined,
          forwarded: undefined,
          mpps: undefined,
          exit: undefined,
        };
        this.runs.push(run);
        this.#current = { run };
      } else if (this.#current) {
        this.#current.run.exit = Number(code);
        this.#stop();
      }
      return;
    }
    const cur = this.#current;
    if (cur === undefined) return;
    if (cur.timer === undefined && READY.test(text)) cur.timer = this.#feed(cur.run);
    const s = SUMMARY.exec(text);
    if (s) {
      cur.run.summary = s[0];
      cur.run.forwarded = [Number(s[2]), Number(s[5])];
      cur.run.mpps = Number(s[8]);
    }
  }

  /** The report lines of a machine, and what went wrong. */
  report(machine: string): { lines: string[]; problems: string[] } {
    const lines: string[] = [];
    const problems: string[] = [];
    for (const r of this.runs) {
      const name = `${r.nics[0]}<->${r.nics[1]}`;
      lines.push(
        `forward ${machine} ${name}: ` +
          (r.forwarded === undefined
            ? `no summary (forwarder exit ${r.exit ?? "?"})`
            : `${r.forwarded[0]} + ${
              r.forwarded[1]
            } frames forwarded, ${r.mpps} Mpps (TCG, not a ` +
              `speed claim), ${r.sent} datagrams sent in (forwarder exit ${r.exit ?? "?"})`),
      );
      if (r.exit !== 0) problems.push(`forwarder ${name} exited ${r.exit ?? "?"}`);
      else if (r.forwarded === undefined || r.forwarded[0] + r.forwarded[1] === 0) {
        problems.push(`forwarder ${name} forwarded nothing`);
      }
    }
    return { lines, problems };
  }

  /** Stop sending and close the client. */
  close(): void {
    this.#stop();
    this.#socket?.close();
    this.#socket = undefined;
  }

  #feed(run: ForwardRun): ReturnType<typeof setInterval> {
    this.#socket ??= dgram.createSocket("udp4");
    const socket = this.#socket;
    const ports = run.nics.map((nic) => this.#ports[nic]).filter((p) => p !== undefined);
    const payload = new Uint8Array(18);
    return setInterval(() => {
      for (const port of ports) {
        for (let i = 0; i < BURST; i++) socket.send(payload, port, "127.0.0.1");
        run.sent += BURST;
      }
    }, TICK_MS);
  }

  #stop(): void {
    if (this.#current?.timer !== undefined) clearInterval(this.#current.timer);
    this.#current = undefined;
  }
}
