/**
 * The life of a PASID under the proposed system-wide allocator (/dev/ioasid and virtio-iommu's
 * ALLOC_PASID: proposals, not Linux ABI, offered only by the simulator), walked on a simulated
 * machine with the PASID DMA engine: allocate → DMA tagged with the PASID → the owner closes →
 * teardown (entry not present with faults unreported, the driver's stop notice, the drain of the
 * DMA in flight) → quarantine (DMA tagged with it faults, nothing lands) → reuse. Each step is
 * printed with its virtual time.
 *
 *   deno run examples/pasid_lifecycle.ts [--machine vtd|virtio|both]
 *
 * `vtd`: VT-d in scalable mode, Linux 6.15's VFIO_DEVICE_ATTACH_PASID. `virtio`: two virtio-iommu
 * instances, the engine behind the second, the PASIDs allocated through the first (ALLOC_PASID),
 * and at the end the first one unplugged: its PASIDs are released through the same teardown while
 * the second keeps serving (../shared/seeds/000).
 *
 * @module
 */

import {
  attachIommufdPt,
  IommufdBackend,
  openPciDevice,
  PasidDmaDriver,
  type PasidDmaResult,
  PasidSpace,
  type PciDevice,
  VfioError,
} from "../mod.ts";
import { IOMMU_HWPT_ALLOC_PASID } from "../viommu.ts";
import { describeError, EXIT_OK, oneOf, parseFlags } from "./cli.ts";
import { createMachine, type SimMachine } from "../sim/mod.ts";

const HELP = `pasid_lifecycle — a PASID's life under the proposed system-wide allocator (simulator)

usage: deno run examples/pasid_lifecycle.ts [options]
  --machine M   vtd (VT-d scalable mode), virtio (two virtio-iommu instances) or both (default)
  --help        this text

/dev/ioasid, its teardown and quarantine, and virtio-iommu's ALLOC_PASID are proposals (not Linux
ABI); the simulator offers them with createMachine({ pasidAllocatorProposal: true }).`;

/** The engine's address. */
const BDF = "0000:00:04.0";
/** Where each PASID address space maps its buffer. */
const IOVA = 0x40_0000n;
/** The long transfer that is in flight when the owner closes, and the short one queued behind it. */
const BIG = 1 << 20;
const SMALL = 4096;
/** The driver polls every 20 µs of virtual time, so the walk can act while the engine works. */
const POLL_MS = 0.02;
/** The quarantine: 2 ms of virtual time. */
const QUARANTINE_NS = 2_000_000;

/** A bad command line (exit 2). */

/** One walk's context. */
interface Walk {
  readonly machine: SimMachine;
  readonly dev: PciDevice;
  readonly backend: IommufdBackend;
  readonly driver: PasidDmaDriver;
  /** A line with the virtual time. */
  readonly say: (line: string) => void;
  /** A line as it is. */
  readonly print: (line: string) => void;
  /** Undo steps, run last first. */
  readonly undo: (() => void)[];
}

function buildMachine(kind: "vtd" | "virtio"): SimMachine {
  const proposal = { quarantineNs: QUARANTINE_NS };
  if (kind === "vtd") {
    return createMachine({
      iommu: "vtd",
      vtdScalableMode: true,
      kernelVersion: "6.15",
      pasidAllocatorProposal: proposal,
      devices: [{ model: "pasid-dma", bdf: BDF }],
    });
  }
  return createMachine({
    iommu: "virtio-iommu",
    additionalIommus: ["virtio-iommu"],
    kernelVersion: "6.15",
    allowUnsafeInterrupts: { iommufd: true },
    pasidAllocatorProposal: proposal,
    devices: [{ model: "edu", bdf: "0000:00:02.0", iommu: 0 }, {
      model: "pasid-dma",
      bdf: BDF,
      iommu: 1,
    }],
  });
}

/** A new IOAS holding `bytes` at {@link IOVA} and a HWPT on it that PASIDs can take. */
function addressSpace(w: Walk, bytes: number): { ioas: number; hwpt: number; mem: Uint8Array } {
  const k = w.machine.kernel;
  const m = k.mmapAnonymous(bytes);
  if (typeof m === "number") throw new Error(`mmap of ${bytes} bytes failed (${m})`);
  w.undo.push(() => void k.munmap(m));
  const fd = w.backend.iommufd;
  const ioas = fd.ioasAlloc();
  w.undo.push(() => fd.destroy(ioas));
  fd.ioasMap(ioas, m.address, BigInt(bytes), { read: true, write: true }, IOVA);
  const devId = w.backend.devices()[0].devId;
  const hwpt = fd.hwptAlloc({ devId, ptId: ioas, flags: IOMMU_HWPT_ALLOC_PASID });
  w.undo.push(() => fd.destroy(hwpt));
  return { ioas, hwpt, mem: m.bytes };
}

function verdict(r: PasidDmaResult): string {
  return r.status === "ok" ? "ok" : `${r.status} (${r.reason})`;
}

async function walk(kind: "vtd" | "virtio", print: (line: string) => void): Promise<void> {
  const machine = buildMachine(kind);
  const k = machine.kernel;
  const say = (line: string): void => print(`[${k.now().toFixed(3).padStart(8)} ms] ${line}`);
  print(
    kind === "vtd"
      ? `== VT-d scalable mode, pasid-dma at ${BDF} ==`
      : `== two virtio-iommu instances: pasid-dma at ${BDF} behind virtio1 ==`,
  );
  using dev = openPciDevice(BDF, { kernel: k, iommu: "iommufd" });
  const backend = dev.dma.backend as IommufdBackend;
  const [cdev] = backend.devices();
  const undo: (() => void)[] = [];
  try {
    // Linux (6.15) wants the device's own requests on a HWPT that PASIDs may share.
    const ridHwpt = backend.iommufd.hwptAlloc({
      devId: cdev.devId,
      ptId: backend.ioasId,
      flags: IOMMU_HWPT_ALLOC_PASID,
    });
    undo.push(() => backend.iommufd.destroy(ridHwpt));
    attachIommufdPt(k, cdev.fd, ridHwpt, BDF);
    undo.push(() => void attachIommufdPt(k, cdev.fd, backend.ioasId, BDF));
    const driver = PasidDmaDriver.open(dev, { pollIntervalMs: POLL_MS });
    undo.push(() => driver.close());
    await lifecycle({ machine, dev, backend, driver, say, print, undo }, kind);
  } finally {
    for (const step of undo.reverse()) step();
  }
}

async function lifecycle(w: Walk, kind: "vtd" | "virtio"): Promise<void> {
  const { machine, driver, say, print } = w;
  const k = machine.kernel;
  const pasids = machine.pasids!;
  const owner = PasidSpace.open(k);
  const width = owner.widthOf(w.dev);
  const pasid = owner.allocate({ device: w.dev });
  const via = kind === "virtio" ? " through virtio0's ALLOC_PASID" : "";
  say(`allocate: PASID ${pasid.value} from /dev/ioasid${via} (the device carries ${width} bits)`);
  const space = addressSpace(w, BIG + SMALL);
  driver.usePasid(owner, pasid, space.hwpt);
  say(`bind: PASID ${pasid.value} of ${BDF} on HWPT ${space.hwpt} (IOAS ${space.ioas})`);
  const first = await driver.fill(IOVA, SMALL, 0x5a, pasid.value);
  const landed = space.mem.subarray(0, SMALL).every((b) => b === 0x5a);
  say(
    `DMA tagged with PASID ${pasid.value}: fill ${SMALL} bytes → ${verdict(first)}, ` +
      `${landed ? "landed" : "NOT landed"}`,
  );

  // A long fill in flight and a short one queued behind it when the owner goes.
  const faultsBefore = machine.faults().length;
  const big = driver.fill(IOVA, BIG, 0x77, pasid.value);
  const small = driver.fill(IOVA + BigInt(BIG), SMALL, 0x66, pasid.value);
  await k.sleep(0);
  say(`in flight: a ${BIG >> 10} KiB fill, and a ${SMALL >> 10} KiB fill queued behind it`);
  owner.close();
  say("owner closes /dev/ioasid");
  for (const e of pasids.teardown.eventsOf(pasid.value)) {
    if (e.step !== "quarantined" && e.step !== "drained") say(`teardown ${e.step}: ${e.detail}`);
  }
  say(`driver: told to stop PASID ${pasid.value}: ${driver.stoppedPasids.has(pasid.value)}`);
  const [r1, r2] = await Promise.all([big, small]);
  for (const e of pasids.teardown.eventsOf(pasid.value)) {
    if (e.step === "drained" || e.step === "quarantined") {
      print(`[${(e.timeNs / 1e6).toFixed(3).padStart(8)} ms] teardown ${e.step}: ${e.detail}`);
    }
  }
  const untouched = space.mem.subarray(0, BIG).every((b) => b !== 0x77);
  const reported = machine.faults().slice(faultsBefore);
  say(
    `the fill in flight → ${verdict(r1)}; ${untouched ? "nothing landed" : "DATA LANDED"}, ` +
      `${reported.filter((f) => f.address < IOVA + BigInt(BIG)).length} fault reported`,
  );
  say(
    `the fill queued behind it ran in quarantine → ${verdict(r2)}; ` +
      `${space.mem.subarray(BIG).every((b) => b !== 0x66) ? "nothing landed" : "DATA LANDED"}`,
  );
  for (const f of reported) say(`  IOMMU: ${f.message}`);

  const next = PasidSpace.open(k);
  try {
    try {
      next.allocate({ device: w.dev, max: pasid.value });
      say(`quarantine: PASID ${pasid.value} handed out again AT ONCE`);
    } catch (e) {
      say(`quarantine: PASID ${pasid.value} not handed out (${(e as VfioError).errnoName})`);
    }
    const end = pasids.space.quarantineEndsNs(pasid.value) ?? 0;
    await k.sleep((end - k.now() * 1e6) / 1e6);
    const again = next.allocate({ device: w.dev });
    driver.usePasid(next, again, space.hwpt);
    const r = await driver.fill(IOVA, SMALL, 0x3c, again.value);
    const ok = space.mem.subarray(0, SMALL).every((b) => b === 0x3c);
    say(
      `reuse: after the quarantine PASID ${again.value} is handed out again; bound, DMA → ` +
        `${verdict(r)}, ${ok ? "landed" : "NOT landed"}`,
    );
    if (kind === "virtio") await unplugFirst(w, next, space.hwpt, again.value);
  } finally {
    next.close();
  }
}

/** virtio: unplug virtio0; its PASIDs are released, virtio1 keeps serving (seed 000). */
async function unplugFirst(
  w: Walk,
  space: PasidSpace,
  hwpt: number,
  pasid: number,
): Promise<void> {
  const { machine, driver, say } = w;
  const teardown = machine.pasids!.teardown;
  const seen = teardown.events.length;
  machine.unplugIommu(0);
  say(`virtio0 unplugged: the PASIDs allocated through it are released`);
  for (const e of teardown.events.slice(seen)) say(`teardown ${e.step}: ${e.detail}`);
  space.pollStops();
  say(`driver: told to stop PASID ${pasid}: ${driver.stoppedPasids.has(pasid)}`);
  const p = space.allocate({ device: w.dev });
  driver.usePasid(space, p, hwpt);
  const r = await driver.fill(IOVA, SMALL, 0x42, p.value);
  say(`virtio1 keeps serving: PASID ${p.value} allocated through it, DMA → ${verdict(r)}`);
}

/** Run the walk(s) for `args`, printing with `print`; returns the exit status. */
export async function pasidLifecycle(
  args: string[],
  print: (line: string) => void,
  printError: (line: string) => void,
): Promise<number> {
  try {
    const { values } = parseFlags(args, { machine: { type: "string", default: "both" } });
    if (values.help) {
      print(HELP);
      return EXIT_OK;
    }
    const m = oneOf("--machine", values.machine, ["vtd", "virtio", "both"]);
    const machines = m === "both" ? ["vtd", "virtio"] as const : [m as "vtd" | "virtio"];
    for (const machine of machines) await walk(machine, print);
    return EXIT_OK;
  } catch (e) {
    const { line, code } = describeError(e);
    printError(`pasid_lifecycle: ${line}`);
    return code;
  }
}

if (import.meta.main) {
  Deno.exit(await pasidLifecycle(Deno.args, console.log, console.error));
}
