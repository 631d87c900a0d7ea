/**
 * The fault battery for the virtio-net driver, in the middle of UDP echo traffic with a peer on the
 * wire: a DMA fault (the device sets DEVICE_NEEDS_RESET) and a hang (transmit stalls) are recovered
 * by `check()` — reset and resume — and the echo carries on; lost and spurious interrupts do not
 * touch a polling driver, and a NAPI wait finds a frame whose interrupt was lost on its own; link
 * down loses frames and link up brings the echo back; surprise removal and an EEH freeze are clear
 * errors. After each, every packet buffer is back in the pool and the fixture's leak check passes.
 */
import assert from "node:assert/strict";
import { DeviceRequest } from "../../core/device_request.ts";
import { VirtioNet } from "../../drivers/virtio/net.ts";
import { LOST_IRQ_RESCAN_MS } from "../../drivers/wait_for_work.ts";
import { parseIpv4 } from "../../net/ipv4.ts";
import { NetStack } from "../../net/stack.ts";
import { SimPeer } from "../../sim/net/peer.ts";
import { simTest, type SimTestContext } from "../../testing/mod.ts";
import { battery, clearError, hangRecovered } from "./battery.ts";

const BDF = "0000:00:03.0";
const NIC_IP = parseIpv4("10.0.2.15");
const PEER_IP = parseIpv4("10.0.2.2");
const TX_TIMEOUT_MS = 50;
const machine = { devices: [{ model: "virtio-net" as const, bdf: BDF }] };

/** The NIC with a UDP echo on port 7, a peer that has resolved it, and a traffic loop. */
async function rig(ctx: SimTestContext) {
  const dev = ctx.openDevice(BDF);
  const nic = await VirtioNet.open(dev, { queueSize: 64, txTimeoutMs: TX_TIMEOUT_MS });
  const stack = new NetStack(nic, {
    address: "10.0.2.15/24",
    gateway: "10.0.2.2",
    now: () => ctx.kernel.now(),
  });
  const echo = stack.udpBind(7, (d, off, len, ip, port) => echo.sendTo(ip, port, d, off, len));
  const peer = new SimPeer(ctx.machine.segment, {
    name: "peer",
    mac: new Uint8Array([0x52, 0x55, 0x0a, 0, 2, 2]),
    ip: PEER_IP,
  });
  const health: string[] = [];
  /** Poll like an application: when idle, check the device, then sleep a little. */
  const run = async (until: () => boolean, maxMs = 500): Promise<void> => {
    const end = ctx.kernel.now() + maxMs;
    while (!until() && ctx.kernel.now() < end) {
      if (stack.poll() > 0) continue;
      const h = await nic.check();
      if (h !== "ok") health.push(h);
      await ctx.kernel.sleep(0.1);
    }
  };
  const echoes = new Map<string, number>();
  peer.onUdp(5000, (d) => {
    const round = new TextDecoder().decode(d.data).split(":")[0];
    echoes.set(round, (echoes.get(round) ?? 0) + 1);
  });
  let rounds = 0;
  /** Send n datagrams and run until they are echoed (or maxMs pass); this round's echoes. */
  const exchange = async (n: number, maxMs = 500): Promise<number> => {
    const round = `r${rounds++}`;
    for (let i = 0; i < n; i++) {
      peer.sendUdp(NIC_IP, 7, 5000, new TextEncoder().encode(`${round}:${i}`));
    }
    await run(() => echoes.get(round) === n, maxMs);
    return echoes.get(round) ?? 0;
  };
  peer.ping(NIC_IP, 1, 1);
  await run(() => peer.echoReplies.length === 1);
  assert.equal(peer.echoReplies.length, 1, "the echo works before the fault");
  ctx.keepPool(nic.pool);
  const faults = ctx.machine.inject(BDF);
  const close = (): void => {
    nic.close();
    dev.close();
  };
  return { dev, nic, stack, peer, run, exchange, health, faults, close };
}

simTest(
  "virtio-net × DMA fault mid-traffic: reset and resume; the echo carries on",
  async (ctx) => {
    const r = await rig(ctx);
    assert.equal(await r.exchange(20), 20);
    r.faults.failDma({ next: 1 });
    if (ctx.iommu === "spapr") {
      await clearError(r.exchange(20), /stopped answering MMIO/); // the fault froze the PE
    } else {
      await r.exchange(20); // some of these are lost with the rings
      assert.deepEqual(r.health, ["recovered"]);
      assert.equal(r.nic.recoveries, 1);
      assert.equal(await r.exchange(20), 20, "after the reset every datagram is echoed");
    }
    const [first, ...later] = ctx.machine.faults();
    assert.equal(r.faults.counters.dmaFaults, 1);
    assert.ok(first !== undefined, "the injected fault is in the IOMMU's log");
    // On sPAPR the frozen PE refuses the device's later DMA too (reason: PE frozen).
    assert.ok(later.every((f) => f.reasonName === "PE is frozen (DMA stopped)"));
    if (ctx.iommu !== "spapr") assert.equal(later.length, 0);
    r.close();
  },
  battery({ machine }),
);

simTest("virtio-net × DMA fault on one receive buffer: recovered once", async (ctx) => {
  const r = await rig(ctx);
  const buffer = r.nic.pool.buffer(0);
  r.faults.failDma({ iova: BigInt(buffer.iova), length: buffer.data.length, times: 1 });
  await r.exchange(70); // wraps the 64-entry receive ring: buffer 0 is written to again
  if (ctx.iommu !== "spapr") {
    assert.equal(r.nic.recoveries, 1);
    assert.equal(await r.exchange(20), 20);
  }
  r.close();
}, battery({ machine, iommus: ["vtd"] }));

simTest("virtio-net × hang: the transmit watchdog resets it; the echo carries on", async (ctx) => {
  const r = await rig(ctx);
  await hangRecovered(r, TX_TIMEOUT_MS, PEER_IP);
  r.close();
}, battery({ machine }));

simTest(
  "virtio-net × lost and spurious interrupts: a polling driver is not affected",
  async (ctx) => {
    const r = await rig(ctx);
    r.faults.loseInterrupts();
    r.faults.spuriousInterrupt("intx");
    assert.equal(await r.exchange(30), 30);
    assert.deepEqual(r.health, []);
    r.close();
  },
  battery({ machine }),
);

simTest(
  "virtio-net × lost interrupt under waitForWork: found at the next rescan, never a wait forever",
  async (ctx) => {
    const r = await rig(ctx);
    r.faults.loseInterrupts();
    assert.equal(r.stack.poll(), 0);
    ctx.machine.clock.schedule(1_000_000, () => {
      r.peer.sendUdp(NIC_IP, 7, 5000, new TextEncoder().encode("late:0"));
    });
    const t0 = ctx.kernel.now();
    assert.equal(await r.nic.waitForWork(Infinity), "ready");
    assert.ok(ctx.kernel.now() - t0 <= LOST_IRQ_RESCAN_MS + 1, "found at the next rescan");
    assert.equal(r.nic.missedInterrupts, 1);
    assert.equal(r.stack.poll(), 1);
    assert.equal(r.faults.counters.lostInterrupts, 1);
    r.close();
  },
  battery({ machine }),
);

simTest("virtio-net × link down/up: frames lost while down, the echo back when up", async (ctx) => {
  const r = await rig(ctx);
  r.faults.setLink(false);
  assert.equal(r.nic.linkUp(), false);
  assert.equal(await r.exchange(10, 50), 0);
  r.stack.sendUdp(9, PEER_IP, 9, new Uint8Array(8)); // returned unsent, not stuck
  await r.run(() => false, 20);
  r.faults.setLink(true);
  assert.equal(r.nic.linkUp(), true);
  assert.equal(await r.exchange(20), 20);
  assert.deepEqual(r.health, [], "no reset needed");
  r.close();
}, battery({ machine }));

simTest(
  "virtio-net × surprise removal: a clear error, the request eventfd, a normal close",
  async (ctx) => {
    const r = await rig(ctx);
    const request = DeviceRequest.watch(r.dev.device);
    r.faults.surpriseRemove();
    assert.equal(await request.wait(10), true);
    await clearError(r.run(() => false, 50), /stopped answering MMIO/);
    request.close();
    r.close();
  },
  battery({ machine }),
);

simTest("virtio-net × EEH freeze (sPAPR): a clear error", async (ctx) => {
  const r = await rig(ctx);
  r.faults.freezeEeh();
  await clearError(r.run(() => false, 50), /EEH/);
  r.close();
}, battery({ machine, iommus: ["spapr"] }));
