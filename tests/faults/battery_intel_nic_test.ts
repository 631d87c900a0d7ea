/**
 * The fault battery for the e1000-family drivers (e1000e on the 82574L, igb on the 82576), in the
 * middle of UDP echo traffic with a peer on the wire, the application's loop polling NAPI-style
 * (waitForWork when idle) and calling `check()` when a poll finds nothing:
 *
 * - DMA faults — the next N transfers, a transmit ring's descriptor fetch and write-back, a
 *   receive ring's descriptor fetch, a receive or transmit buffer: the frame they hit is lost; a
 *   completion that never comes is found by the transmit watchdog and the device is reset and
 *   resumed; the echo carries on. On sPAPR the fault freezes the PE and the check is a clear
 *   error.
 * - fail-nth over the reset-and-resume: a clear error, and nothing left after the close.
 * - A hang: the watchdog resets and resumes the device (igb with four RSS queues too).
 * - Lost interrupts: the wait finds the frames on its own (never waits forever); spurious ones
 *   wake it for nothing.
 * - Link down and up: frames lost while down, no reset, the echo back when up.
 * - Surprise removal and an EEH freeze: a clear VfioError from `check()`, a normal close.
 *
 * After each, every packet buffer is back in the pool and the fixture's leak check passes.
 */
import assert from "node:assert/strict";
import { DeviceRequest } from "../../core/device_request.ts";
import { IntelNic } from "../../drivers/e1000/nic.ts";
import { QUEUE_DBAH, QUEUE_DBAL, QUEUE_DLEN } from "../../drivers/e1000/registers.ts";
import type { NicDriver } from "../../drivers/open_nic.ts";
import { LOST_IRQ_RESCAN_MS } from "../../drivers/wait_for_work.ts";
import { VfioError } from "../../core/errors.ts";
import { createMachine } from "../../sim/machine.ts";
import {
  DEFAULT_FAIL_ERRNO,
  FailNthKernel,
  LeakCheck,
  longFaultRuns,
  simTest,
  type SimTestContext,
  type SimTestOptions,
  SWEEP_KINDS,
  type SyscallKind,
} from "../../testing/mod.ts";
import { openNic } from "../../drivers/open_nic.ts";
import { NIC_BDF, NIC_IP, nicDevices, nicRig, PEER_IP } from "../helpers/nic_driver_rig.ts";
import { battery, clearError, hangRecovered } from "./battery.ts";

const INTEL: readonly NicDriver[] = ["e1000e", "igb"];
const TX_TIMEOUT_MS = 50;
/** The application's wait when a poll finds nothing. */
const IDLE_WAIT_MS = 10;
const NS_PER_MS = 1_000_000;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The NIC with a UDP echo, a peer that has resolved it, an application loop and the injector. */
async function rig(ctx: SimTestContext, queues?: number) {
  const base = await nicRig(ctx, { txTimeoutMs: TX_TIMEOUT_MS, queues });
  assert.ok(base.nic instanceof IntelNic);
  const nic = base.nic;
  const { stack, peer } = base;
  const kernel = ctx.kernel;
  const health: string[] = [];
  /** The application's loop: poll; when idle, check the device, then wait for work. */
  const run = async (until: () => boolean, maxMs = 500): Promise<void> => {
    const end = kernel.now() + maxMs;
    while (!until() && kernel.now() < end) {
      if (stack.poll() > 0) continue;
      const h = await nic.check();
      if (h !== "ok") health.push(h);
      await nic.waitForWork(Math.min(IDLE_WAIT_MS, Math.max(0, end - kernel.now())));
    }
  };
  const echoes = new Map<string, number>();
  const onEcho = (d: { data: Uint8Array }): void => {
    const round = decoder.decode(d.data).split(":")[0];
    echoes.set(round, (echoes.get(round) ?? 0) + 1);
  };
  let rounds = 0;
  /**
   * Send n datagrams (from n source ports, so RSS spreads them) and run until they are echoed
   * (or maxMs pass); this round's echoes.
   */
  const exchange = async (n: number, maxMs = 500): Promise<number> => {
    const round = `r${rounds++}`;
    for (let i = 0; i < n; i++) {
      const port = 5000 + (i % 64);
      peer.onUdp(port, onEcho);
      peer.sendUdp(NIC_IP, 7, port, encoder.encode(`${round}:${i}`));
    }
    await run(() => echoes.get(round) === n, maxMs);
    return echoes.get(round) ?? 0;
  };
  peer.ping(NIC_IP, 1, 1);
  await run(() => peer.echoReplies.length === 1);
  assert.equal(peer.echoReplies.length, 1, "the echo works before the fault");
  assert.equal(await exchange(20), 20);
  const faults = ctx.machine.inject(NIC_BDF);
  return { ...base, nic, run, exchange, health, faults };
}

type Rig = Awaited<ReturnType<typeof rig>>;

/** The IOVA and bytes of queue 0's receive or transmit ring, from its base registers. */
function ringAt(r: Rig, which: "rx" | "tx"): { iova: bigint; length: number } {
  const regs = r.dev.bar(0);
  const q = r.nic.model.queues;
  const block = which === "rx" ? q.rxBase : q.txBase;
  const iova = (BigInt(regs.read32(block + QUEUE_DBAH)) << 32n) |
    BigInt(regs.read32(block + QUEUE_DBAL));
  return { iova, length: regs.read32(block + QUEUE_DLEN) };
}

/** The battery's selection of platforms for one NIC. */
function on(kind: NicDriver, options: Omit<SimTestOptions, "machine"> = {}): SimTestOptions {
  return battery({ ...options, machine: { devices: nicDevices(kind) } });
}

for (const kind of INTEL) {
  simTest(
    `${kind} × DMA fault on the next 3 transfers mid-traffic: the echo carries on`,
    async (ctx) => {
      const r = await rig(ctx);
      r.faults.failDma({ next: 3 });
      if (ctx.iommu === "spapr") {
        await clearError(r.exchange(20), /stopped answering MMIO/); // the fault froze the PE
      } else {
        assert.ok(await r.exchange(20) >= 17, "the faulting transfers cost a frame each at most");
        assert.equal(await r.exchange(20), 20, "after the faults every datagram is echoed");
        assert.equal(ctx.machine.faults().length, 3);
      }
      assert.equal(r.faults.counters.dmaFaults, 3);
      r.close();
    },
    on(kind),
  );

  simTest(
    `${kind} × DMA fault on the transmit ring's write-back: the watchdog resets it`,
    async (ctx) => {
      const r = await rig(ctx);
      const tx = ringAt(r, "tx");
      r.faults.failDma({ iova: tx.iova, length: tx.length, access: "write", times: 1 });
      if (ctx.iommu === "spapr") {
        await clearError(r.exchange(5), /stopped answering MMIO/); // the fault froze the PE
        r.close();
        return;
      }
      const before = r.nic.stats().txPackets;
      assert.equal(await r.exchange(5), 5, "the frames went out; one completion never came");
      await r.run(() => r.health.length > 0, 4 * TX_TIMEOUT_MS); // the ring stopped there
      assert.deepEqual(r.health, ["recovered"], "the transmit watchdog saw the stuck ring");
      assert.equal(r.nic.recoveries, 1);
      const s = r.nic.stats();
      assert.ok(s.txDropped >= 1, "the frames the ring held at the reset are counted dropped");
      assert.equal(s.txPackets + s.txDropped, before + 5, "every frame is counted once");
      assert.equal(await r.exchange(20), 20, "after the reset every datagram is echoed");
      assert.equal(ctx.machine.faults().length, 1);
      assert.equal(ctx.machine.faults()[0].access, "write");
      r.close();
    },
    on(kind),
  );

  simTest(`${kind} × DMA fault on a receive descriptor fetch: one frame lost`, async (ctx) => {
    const r = await rig(ctx);
    const rx = ringAt(r, "rx");
    r.faults.failDma({ iova: rx.iova, length: rx.length, access: "read", times: 1 });
    assert.equal(await r.exchange(10), 9, "the frame whose descriptor fetch faulted is lost");
    assert.equal(await r.exchange(20), 20);
    assert.deepEqual(r.health, [], "the device carries on: no reset needed");
    assert.equal(ctx.machine.faults()[0].access, "read");
    r.close();
  }, on(kind, { iommus: ["vtd"] }));

  simTest(`${kind} × DMA fault on a receive buffer: one frame lost`, async (ctx) => {
    const r = await rig(ctx);
    const pool = r.nic.pool;
    const first = pool.buffer(0).iova;
    r.faults.failDma({
      iova: BigInt(first),
      length: pool.capacity * pool.bufferSize,
      access: "write",
      times: 1,
    });
    assert.equal(await r.exchange(10), 9, "the frame written into the faulting buffer is lost");
    assert.equal(await r.exchange(20), 20);
    assert.deepEqual(r.health, []);
    assert.equal(ctx.machine.faults().length, 1);
    r.close();
  }, on(kind, { iommus: ["vtd"] }));

  simTest(
    `${kind} × DMA fault on a transmit descriptor fetch: the watchdog resets it`,
    async (ctx) => {
      const r = await rig(ctx);
      const tx = ringAt(r, "tx");
      r.faults.failDma({ iova: tx.iova, length: tx.length, access: "read", times: 1 });
      r.stack.sendUdp(9, PEER_IP, 9, new Uint8Array(8)); // the device cannot fetch its descriptor
      await r.run(() => r.health.length > 0, 4 * TX_TIMEOUT_MS);
      assert.deepEqual(r.health, ["recovered"], "the frame never completed: the watchdog reset it");
      assert.equal(await r.exchange(20), 20);
      assert.equal(ctx.machine.faults().length, 1);
      assert.equal(ctx.machine.faults()[0].access, "read");
      r.close();
    },
    on(kind, { iommus: ["vtd"] }),
  );

  simTest(`${kind} × DMA fault on a transmit buffer: one echo lost`, async (ctx) => {
    const r = await rig(ctx);
    const pool = r.nic.pool;
    r.faults.failDma({
      iova: BigInt(pool.buffer(0).iova),
      length: pool.capacity * pool.bufferSize,
      access: "read",
      times: 1,
    });
    assert.equal(await r.exchange(10), 9, "the echo read from the faulting buffer is lost");
    assert.equal(await r.exchange(20), 20);
    assert.deepEqual(r.health, [], "the device carries on: no reset needed");
    assert.equal(ctx.machine.faults().length, 1);
    r.close();
  }, on(kind, { iommus: ["vtd"] }));

  simTest(`${kind} × hang: the transmit watchdog resets it; the echo carries on`, async (ctx) => {
    const r = await rig(ctx);
    await hangRecovered(r, TX_TIMEOUT_MS, PEER_IP);
    assert.equal(ctx.machine.faults().length, 0);
    r.close();
  }, on(kind));

  simTest(
    `${kind} × lost interrupts: the wait finds the frames on its own, never waits forever`,
    async (ctx) => {
      const r = await rig(ctx);
      r.faults.loseInterrupts();
      assert.equal(await r.exchange(30), 30);
      assert.ok(r.nic.missedInterrupts > 0, "the wait found frames without their interrupt");
      // Even a wait without a timeout ends when a frame lands and its interrupt is lost.
      assert.equal(r.stack.poll(), 0);
      ctx.machine.clock.schedule(
        NS_PER_MS,
        () => r.peer.sendUdp(NIC_IP, 7, 5000, encoder.encode("late:0")),
      );
      const t0 = ctx.kernel.now();
      assert.equal(await r.nic.waitForWork(Infinity), "ready");
      assert.ok(ctx.kernel.now() - t0 <= LOST_IRQ_RESCAN_MS + 1, "found at the next rescan");
      assert.equal(r.stack.poll(), 1);
      assert.ok(r.faults.counters.lostInterrupts > 0);
      r.faults.restoreInterrupts();
      assert.equal(await r.exchange(10), 10);
      assert.deepEqual(r.health, []);
      r.close();
    },
    on(kind),
  );

  simTest(`${kind} × spurious interrupts: a wake-up for nothing, then traffic`, async (ctx) => {
    const r = await rig(ctx);
    assert.equal(r.stack.poll(), 0);
    ctx.machine.clock.schedule(NS_PER_MS, () => r.faults.spuriousInterrupt("msix", 0));
    const t0 = ctx.kernel.now();
    assert.equal(await r.nic.waitForWork(1000), "ready", "the spurious vector wakes the wait");
    assert.ok(ctx.kernel.now() - t0 < 2, "at the interrupt");
    assert.equal(r.stack.poll(), 0, "nothing was there");
    ctx.machine.clock.schedule(NS_PER_MS, () => r.faults.spuriousInterrupt("intx"));
    assert.equal(await r.nic.waitForWork(5), "timeout", "INTx is off while MSI-X is on");
    assert.equal(await r.exchange(20), 20);
    assert.deepEqual(r.health, []);
    assert.equal(r.faults.counters.spuriousInterrupts, 2);
    r.close();
  }, on(kind));

  simTest(`${kind} × link down/up mid-traffic: frames lost while down, no reset`, async (ctx) => {
    const r = await rig(ctx);
    r.faults.setLink(false);
    ctx.machine.clock.advance(NS_PER_MS);
    assert.equal(r.nic.linkUp(), false);
    assert.equal(await r.exchange(10, 50), 0);
    r.stack.sendUdp(9, PEER_IP, 9, new Uint8Array(8)); // the device drops it: nothing stuck
    await r.run(() => false, 4 * TX_TIMEOUT_MS);
    r.faults.setLink(true);
    await r.run(() => r.nic.linkUp(), 2000); // auto-negotiation
    assert.equal(r.nic.linkUp(), true);
    assert.equal(await r.exchange(20), 20);
    assert.deepEqual(r.health, [], "no reset needed");
    r.close();
  }, on(kind));

  simTest(
    `${kind} × surprise removal: a clear error, the request eventfd, a normal close`,
    async (ctx) => {
      const r = await rig(ctx);
      const request = DeviceRequest.watch(r.dev.device);
      const counted = r.nic.stats().hardware;
      r.faults.surpriseRemove();
      assert.equal(await request.wait(10), true);
      await clearError(r.run(() => false, 50), /stopped answering MMIO/);
      assert.deepEqual(r.nic.stats().hardware, counted, "all-ones registers are not counts");
      request.close();
      r.close();
    },
    on(kind),
  );

  simTest(`${kind} × EEH freeze (sPAPR): a clear error`, async (ctx) => {
    const r = await rig(ctx);
    r.faults.freezeEeh();
    await clearError(r.run(() => false, 50), /EEH/);
    r.close();
  }, on(kind, { iommus: ["spapr"] }));
}

simTest(
  "igb × hang with 4 RSS queues: the reset rebuilds every queue, RSS and the MSI-X routing",
  async (ctx) => {
    const r = await rig(ctx, 4);
    r.faults.hang();
    r.stack.sendUdp(9, PEER_IP, 9, new Uint8Array(8));
    await r.run(() => r.health.length > 0, 4 * TX_TIMEOUT_MS);
    assert.deepEqual(r.health, ["recovered"]);
    const before = [...r.nic.stats().rxQueuePackets];
    assert.equal(await r.exchange(64), 64, "every flow echoed after the reset");
    const after = r.nic.stats().rxQueuePackets.map((n, q) => n - before[q]);
    assert.ok(after.filter((n) => n > 0).length >= 2, `RSS spreads again (${after})`);
    assert.equal(r.nic.interruptMode, "msix");
    r.close();
  },
  on("igb"),
);

/**
 * The reset-and-resume of a hung NIC with the Nth system call of a kind failing (fail-nth over
 * the recovery, as over an open): `check()` throws a VfioError or recovers, and the close after it
 * leaves nothing behind — every pool buffer back, no fd, mapping or locked page.
 */
async function recoveryRun(
  kind: NicDriver,
  iommu: SimTestContext["iommu"],
  path: SimTestContext["path"],
  options: SimTestContext["platform"]["options"],
  rule?: { call: SyscallKind; nth: number },
): Promise<{ calls: Partial<Record<SyscallKind, number>>; outcome: string }> {
  const machine = createMachine({ ...options, iommu, devices: nicDevices(kind), strict: true });
  const leaks = new LeakCheck(machine);
  const kernel = new FailNthKernel(machine.kernel);
  const nic = await openNic(NIC_BDF, {
    kernel,
    iommu: path,
    txTimeoutMs: TX_TIMEOUT_MS,
    queues: kind === "igb" ? 4 : 1,
  });
  assert.ok(nic instanceof IntelNic);
  leaks.keepPool(nic.pool);
  machine.inject(NIC_BDF).hang();
  const frame = nic.pool.alloc()!;
  frame.length = 60;
  assert.equal(nic.txBatch([frame], 1), 1);
  assert.equal(await nic.check(), "ok");
  await kernel.sleep(2 * TX_TIMEOUT_MS);
  kernel.arm(rule === undefined ? NEVER : { ...rule, errno: DEFAULT_FAIL_ERRNO[rule.call] });
  let outcome = "recovered";
  try {
    assert.equal(await nic.check(), "recovered");
  } catch (e) {
    if (!(e instanceof VfioError)) throw e;
    outcome = "failed";
  }
  const calls = Object.fromEntries(SWEEP_KINDS.map((k) => [k, kernel.counts[k]]));
  if (rule !== undefined) assert.ok(kernel.fired, `${rule.call} #${rule.nth} was made`);
  kernel.disarm();
  nic.close();
  assert.deepEqual(leaks.changes(), [], `after ${outcome} (${kernel.firedAt ?? "clean"})`);
  return { calls, outcome };
}

/** A rule that never fires (arming it restarts the counts). */
const NEVER = { call: "open" as const, nth: Number.MAX_SAFE_INTEGER, errno: 5 };

for (const kind of INTEL) {
  simTest(
    `${kind} × fail-nth over the reset-and-resume: a clear error or a recovery, nothing left`,
    async (ctx) => {
      const { calls } = await recoveryRun(kind, ctx.iommu, ctx.path, ctx.platform.options);
      let runs = 0;
      for (const call of SWEEP_KINDS) {
        for (let nth = 1; nth <= (calls[call] ?? 0); nth++) {
          await recoveryRun(kind, ctx.iommu, ctx.path, ctx.platform.options, { call, nth });
          runs++;
        }
      }
      assert.ok(runs > 0, "the recovery makes system calls");
      console.log(
        `fail-nth ${kind} reset-and-resume on ${ctx.iommu}/${ctx.path}: ${runs} injected runs`,
      );
    },
    on(kind, longFaultRuns() ? {} : { iommus: ["vtd"] }),
  );
}
