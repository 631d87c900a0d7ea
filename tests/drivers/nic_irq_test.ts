/**
 * The NIC drivers' interrupt wait and their IOMMU faults on the simulated devices, on every IOMMU
 * model × VFIO path of the testing fixture (each step ends with its leak check): waitForWork times
 * out on silence, wakes on traffic at the interrupt (not at the next poll), misses no frame that
 * lands between the last poll and the re-arm, and ends on abort; a receive buffer the device may
 * only read, or one at an IOVA nothing is mapped at, gives the IOMMU's fault record, and the driver
 * neither hangs nor leaks. A NIC whose simulated model does not exist yet is ignored.
 */
import assert from "node:assert/strict";
import { VFIO_PCI_MSIX_IRQ_INDEX } from "../../ffi/uapi/mod.ts";
import { type DmaAllocator, PacketPool } from "../../drivers/packet_pool.ts";
import type { DmaBuffer } from "../../core/dma_space.ts";
import { iova } from "../../core/dma_backend.ts";
import type { PciDevice } from "../../core/pci_device.ts";
import { openNic } from "../../drivers/open_nic.ts";
import type { SimTestContext } from "../../testing/mod.ts";
import {
  ECHO_PORT,
  NIC_BDF,
  NIC_IP,
  NIC_KINDS,
  type NicRig,
  nicRig,
  nicSimTest,
} from "../helpers/nic_driver_rig.ts";

const CLIENT_PORT = 5000;
/** PCI_COMMAND's offset in config space (PCI 3.0 §6.2.2). */
const PCI_COMMAND = 0x04;
const NS_PER_MS = 1_000_000;
/** Virtual time the wait's own register accesses may take (the models charge MMIO time). */
const MMIO_SLACK_MS = 0.01;
const encoder = new TextEncoder();

function datagram(r: NicRig, text: string): void {
  r.peer.sendUdp(NIC_IP, ECHO_PORT, CLIENT_PORT, encoder.encode(text));
}

/** Where the unmapped pool claims its buffers are: far above everything the space maps. */
const UNMAPPED_SHIFT = 1n << 28n;

/**
 * A pool the device cannot write into: its buffers mapped read-only, or handed to the device at
 * IOVAs nothing is mapped at (the memory behind them is real, the addresses are not).
 */
function faultyPool(dev: PciDevice, headroom: number, how: "read-only" | "unmapped"): PacketPool {
  const real = new Map<DmaBuffer, DmaBuffer>();
  const allocator: DmaAllocator = how === "read-only"
    ? {
      allocate: (size) => dev.dma.allocate(size, { read: true, write: false }),
      free: (b) => dev.dma.free(b),
    }
    : {
      allocate(size) {
        const mapped = dev.dma.allocate(size, { read: true, write: true });
        const at = mapped.iova + UNMAPPED_SHIFT;
        const fake: DmaBuffer = {
          ...mapped,
          iova: iova(at),
          iovaLow: Number(at & 0xffff_ffffn),
          iovaHigh: Number(at >> 32n),
        };
        real.set(fake, mapped);
        return fake;
      },
      free: (b) => dev.dma.free(real.get(b) ?? b),
    };
  return new PacketPool(allocator, 128, 2048, headroom);
}

/**
 * The wait scenario: with `interrupts` "msi" the NIC must run on MSI, otherwise on MSI-X when the
 * device has it.
 */
async function waitScenario(ctx: SimTestContext, interrupts: true | "msi"): Promise<void> {
  const r = await nicRig(ctx, { interrupts });
  const k = r.machine.kernel;
  const msix = r.dev.irqs.irqInfo(VFIO_PCI_MSIX_IRQ_INDEX).count > 0;
  const expected = interrupts === "msi" ? "msi" : msix ? "msix" : "none";
  assert.equal(r.nic.interruptMode, expected, "MSI-X when the device has it, MSI when asked");
  const signalled = expected !== "none";
  r.peer.ping(NIC_IP, 1, 1);
  await r.run(() => r.peer.echoReplies.length === 1);

  // Silence: the full timeout passes in virtual time.
  let t0 = k.now();
  assert.equal(await r.nic.waitForWork(25), "timeout");
  const slept = k.now() - t0;
  assert.ok(slept >= 25 && slept < 25 + MMIO_SLACK_MS, `slept ${slept} ms`);

  // Traffic 5 ms into the wait wakes it at once (an interrupt), not at the timeout.
  r.machine.clock.schedule(5 * NS_PER_MS, () => datagram(r, "wake"));
  t0 = k.now();
  assert.equal(await r.nic.waitForWork(1000), "ready");
  const woke = k.now() - t0;
  assert.ok(woke > 5 && woke < (signalled ? 5.5 : 6.5), `woke after ${woke} ms`);
  assert.equal(r.stack.poll(), 1);

  // A frame written while the interrupt is masked (between the last poll and the re-arm)
  // is found by the look at the ring after the re-arm: no sleep.
  assert.equal(r.stack.poll(), 0);
  datagram(r, "between");
  r.machine.clock.advance(NS_PER_MS);
  t0 = k.now();
  assert.equal(await r.nic.waitForWork(1000), "ready");
  assert.equal(k.now() - t0, 0, "no sleep: the frame was already there");
  assert.equal(r.stack.poll(), 1);

  // Abort.
  const stop = new AbortController();
  r.machine.clock.schedule(3 * NS_PER_MS, () => stop.abort());
  assert.equal(await r.nic.waitForWork(1000, stop.signal), "cancelled");
  assert.equal(r.machine.faults().length, 0);
  r.close();
}

for (const kind of NIC_KINDS) {
  nicSimTest(
    kind,
    "waitForWork times out, wakes on the interrupt, loses no wake-up, aborts",
    (ctx) => waitScenario(ctx, true),
  );

  for (const how of ["read-only", "unmapped"] as const) {
    nicSimTest(
      kind,
      `a ${how} receive buffer gives the IOMMU's fault, no hang, no leak`,
      async (ctx) => {
        let pool: PacketPool | undefined;
        const r = await nicRig(ctx, {
          pool: (dev) => (pool = faultyPool(dev, kind === "virtio-net" ? 64 : 0, how)),
        });
        const k = r.machine.kernel;
        r.peer.ping(NIC_IP, 1, 1);
        const t0 = k.now();
        const got = await r.nic.waitForWork(50);
        assert.ok(k.now() - t0 < 50 + MMIO_SLACK_MS, `the wait ends (${got})`);
        r.stack.poll();
        assert.equal(r.peer.echoReplies.length, 0, `nothing was received into a ${how} buffer`);
        const faults = r.machine.faults();
        assert.ok(faults.length >= 1, "the IOMMU recorded the fault");
        const f = faults[0];
        assert.equal(f.access, "write");
        assert.ok(f.message.length > 0 && f.format.length > 0, "a vendor-format record");
        r.nic.close();
        pool!.close(); // the caller's pool, before its DMA space goes with the device
        r.dev.close();
        const status = k.readFile("/proc/self/status") as string;
        assert.match(status, /VmLck:\s+0 kB/, "no locked memory left");
        assert.equal(
          r.machine.memory.usedBytes,
          ctx.leaks.baseline.physicalBytes,
          "every page released",
        );
        assert.equal(k.process.openFds().length, ctx.leaks.baseline.fds, "every fd closed");
      },
    );
  }
}

// The 82574L's MSI fallback (what the driver takes when MSI-X is not there), asked for by name.
nicSimTest(
  "e1000e",
  "on MSI: waitForWork times out, wakes, loses no wake-up",
  (ctx) => waitScenario(ctx, "msi"),
);

/** An interrupt kind the driver or the device lacks, and the refusal it gets. */
const REFUSED: readonly { kind: "virtio-net" | "igb"; interrupts: "msi"; error: RegExp }[] = [
  { kind: "virtio-net", interrupts: "msi", error: /MSI-X \(or INTx\), never MSI/ },
  { kind: "igb", interrupts: "msi", error: /the 82576 driver takes MSI-X only/ },
];
for (const { kind, interrupts, error } of REFUSED) {
  nicSimTest(kind, `interrupts: "${interrupts}" is refused before the device is touched`, async (
    ctx,
  ) => {
    const dev = ctx.openDevice(NIC_BDF);
    const command = dev.config.read16(PCI_COMMAND);
    await assert.rejects(openNic(dev, { interrupts }), error);
    assert.equal(dev.config.read16(PCI_COMMAND), command, "bus mastering untouched");
    dev.close();
  });
}
