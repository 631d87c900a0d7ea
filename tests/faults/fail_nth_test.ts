/**
 * fail-nth over every open path, as the kernel's iommufd selftest checks its own unwinding:
 * `openPciDevice`, the open of each driver (edu with MSI, virtio-net, the PASID DMA engine), and
 * `openNic` given a PCI address (it opens the device, then virtio-net, e1000e or igb with four
 * queues) or an open device with a pool of the caller's (which must get every buffer back), on
 * each simulated IOMMU × VFIO path, failing the Nth system call of each kind for every N the
 * open makes, then the same for their close. Every run must end with a VfioError or a success,
 * nothing left behind (fds, mappings, locked pages, machine memory, IOMMU domains — and, for a
 * driver, nothing more than a driver that opened and closed leaves in its device), and a clean
 * open working afterwards.
 *
 * Short by default (every platform for openPciDevice; the drivers on one type1, one iommufd and
 * the sPAPR path, every third N for the NICs); `DENO_VFIO_FAULTS=long` sweeps every driver on
 * every path for every N.
 */
import assert from "node:assert/strict";
import type { Kernel } from "../../ffi/kernel.ts";
import { ERRNO } from "../../ffi/errno.ts";
import { openPciDevice, type PciDevice } from "../../core/pci_device.ts";
import type { DmaBackendKind } from "../../core/dma_backend.ts";
import { VfioError } from "../../core/errors.ts";
import { EduDriver } from "../../drivers/edu/edu.ts";
import { PasidDmaDriver } from "../../drivers/pasid_dma/pasid_dma.ts";
import { VirtioNet } from "../../drivers/virtio/net.ts";
import { openNic } from "../../drivers/open_nic.ts";
import { PacketPool } from "../../drivers/packet_pool.ts";
import { E1000_BUFFER_SIZE } from "../../drivers/e1000/nic.ts";
import { createMachine, type DeviceModelName } from "../../sim/mod.ts";
import {
  type Closeable,
  FailNthKernel,
  longFaultRuns,
  type SimPlatform,
  simTestSteps,
  sweepFailNth,
  type SweepResult,
} from "../../testing/mod.ts";

const BDF = "0000:00:02.0";
const LONG = longFaultRuns();
/** Buffers of a caller's pool: the rings of four queue pairs of 64 descriptors, and more. */
const CALLERS_POOL_BUFFERS = 1024;
/** The paths the short run sweeps drivers on. */
const SHORT_PATHS = ["vtd/type1", "smmuv3/iommufd", "spapr/spapr"];

interface Target {
  readonly name: string;
  readonly model: DeviceModelName;
  /** The driver's open on a device opened for it (swept as a DriverUnderTest). */
  readonly openDriver?: (dev: PciDevice) => Closeable | Promise<Closeable>;
  /** An open that opens the device itself, given its address (openNic). */
  readonly openAddress?: (kernel: Kernel, path: DmaBackendKind) => Promise<Closeable>;
  /** Sweep every Nth call only in the short run. */
  readonly shortEvery?: number;
}

const TARGETS: readonly Target[] = [
  { name: "openPciDevice", model: "edu" },
  {
    name: "EduDriver.open (MSI)",
    model: "edu",
    openDriver: (d) => EduDriver.open(d, { interrupts: "msi" }),
  },
  {
    name: "VirtioNet.open",
    model: "virtio-net",
    openDriver: (d) => VirtioNet.open(d, { queueSize: 64 }),
    shortEvery: 3,
  },
  { name: "PasidDmaDriver.open", model: "pasid-dma", openDriver: (d) => PasidDmaDriver.open(d) },
  {
    name: "openNic(address) → VirtioNet",
    model: "virtio-net",
    openAddress: (kernel, iommu) => openNic(BDF, { kernel, iommu, queueSize: 64 }),
    shortEvery: 3,
  },
  ...(["e1000e", "igb"] as const).flatMap((model): Target[] => {
    const queues = model === "igb" ? 4 : 1;
    const rings = { rxRingSize: 64, txRingSize: 64, queues };
    const what = `${model}${queues > 1 ? `, ${queues} queues` : ""}`;
    return [
      {
        name: `openNic(address) → ${what}`,
        model,
        openAddress: (kernel, iommu) => openNic(BDF, { kernel, iommu, ...rings }),
        shortEvery: 3,
      },
      {
        name: `openNic(device) → ${what}, the caller's pool`,
        model,
        openDriver: (d) => withCallersPool(d, (pool) => openNic(d, { ...rings, pool })),
        shortEvery: 3,
      },
    ];
  }),
];

/**
 * Open a NIC on a pool of the caller's (as a forwarder shares one between two NICs): a failed
 * open, and a close, must leave every buffer of it free — the pool outlives the NIC.
 */
async function withCallersPool(
  dev: PciDevice,
  open: (pool: PacketPool) => Promise<Closeable>,
): Promise<Closeable> {
  const pool = new PacketPool(dev.dma, CALLERS_POOL_BUFFERS, E1000_BUFFER_SIZE, 0);
  const release = (): void => {
    const kept = pool.capacity - pool.available;
    pool.close();
    if (kept > 0) throw new Error(`the NIC kept ${kept} buffers of the caller's pool`);
  };
  let nic: Closeable;
  try {
    nic = await open(pool);
  } catch (e) {
    release();
    throw e;
  }
  return {
    close(): void {
      try {
        nic.close();
      } finally {
        release();
      }
    },
  };
}

function sweep(
  t: Target,
  platform: SimPlatform,
  path: DmaBackendKind,
  phase: "open" | "close",
): Promise<SweepResult> {
  const makeMachine = () =>
    createMachine({
      ...platform.options,
      iommu: platform.iommu,
      devices: [{ model: t.model, bdf: BDF }],
    });
  const openDevice = (kernel: Kernel) => openPciDevice(BDF, { kernel, iommu: path });
  const every = LONG ? 1 : t.shortEvery ?? 1;
  if (t.openAddress !== undefined) {
    const open = t.openAddress;
    return sweepFailNth(makeMachine, (kernel) => open(kernel, path), { every, phase });
  }
  return t.openDriver === undefined
    ? sweepFailNth(makeMachine, openDevice, { every, phase })
    : sweepFailNth(makeMachine, { openDevice, openDriver: t.openDriver }, { every, phase });
}

for (const target of TARGETS) {
  for (const phase of ["open", "close"] as const) {
    Deno.test({
      name: `fail-nth: ${target.name}, every system call of its ${phase} failing in turn`,
      permissions: "none",
      fn: async (t) => {
        let runs = 0;
        let paths = 0;
        for (const { platform, path } of simTestSteps()) {
          const key = `${platform.iommu}/${path}`;
          const driver = target.openDriver !== undefined || target.openAddress !== undefined;
          if (!LONG && driver && !SHORT_PATHS.includes(key)) continue;
          await t.step(key, async () => {
            const r = await sweep(target, platform, path, phase);
            assert.deepEqual(r.problems, []);
            assert.ok(r.runs > 0, "the sweep failed some call");
            runs += r.runs;
            paths++;
          });
        }
        console.log(`fail-nth ${target.name} (${phase}): ${paths} paths, ${runs} injected runs`);
      },
    });
  }
}

Deno.test("fail-nth catches a leaky open and a non-VfioError", async () => {
  const machine = () => createMachine({ iommu: "vtd" });
  // Opens a device and maps a buffer, then probes something that may fail — and forgets the
  // buffer and the device when it does.
  const leaky = (kernel: Kernel) => {
    const dev = openPciDevice(BDF, { kernel, iommu: "iommufd" });
    dev.dma.allocate(4096);
    const fd = kernel.open("/dev/vfio/vfio", 2);
    if (fd < 0) throw new VfioError({ operation: "probe", message: "failed" });
    kernel.close(fd);
    return dev;
  };
  const r = await sweepFailNth(machine, leaky, { kinds: ["open"] });
  assert.equal(r.runs, 3);
  assert.equal(r.problems.length, 1);
  assert.match(r.problems[0], /^open: open #3 \(open #3 \(\/dev\/vfio\/vfio\) -> ENOMEM\)/);
  assert.match(r.problems[0], /left open file descriptors: \d+ before, \d+ after/);
  const throwsTypeError = (kernel: Kernel) => {
    const fd = kernel.eventfd(0, 0);
    if (fd < 0) throw new TypeError("unexpected");
    kernel.close(fd);
    return { close() {} };
  };
  const t = await sweepFailNth(machine, throwsTypeError, { kinds: ["eventfd"] });
  assert.deepEqual(t.problems, ["open: eventfd #1: the open threw TypeError: unexpected"]);
});

Deno.test("FailNthKernel fails the Nth call of a kind (ioctl filtered by request) once", () => {
  const machine = createMachine({ iommu: "vtd" });
  const k = new FailNthKernel(machine.kernel, { call: "open", nth: 2, errno: ERRNO.EMFILE });
  const a = k.open("/dev/vfio/vfio", 2);
  assert.ok(a >= 0);
  assert.equal(k.open("/dev/vfio/vfio", 2), -ERRNO.EMFILE);
  assert.equal(k.firedAt, "open #2 (/dev/vfio/vfio) -> EMFILE");
  const c = k.open("/dev/vfio/vfio", 2);
  assert.ok(c >= 0, "fails once");
  k.arm({ call: "close", nth: 1, errno: ERRNO.EIO });
  assert.equal(k.close(a), -ERRNO.EIO);
  assert.equal(machine.kernel.close(a), -ERRNO.EBADF, "an injected close failure still closes");
  assert.equal(k.close(c), 0);
  assert.equal(k.counts.close, 2);
  const fd = machine.kernel.open("/dev/vfio/vfio", 2);
  k.arm({ call: "ioctl", nth: 1, errno: ERRNO.EIO, request: 0xdead });
  assert.notEqual(k.ioctl(fd, 0x3b64), -ERRNO.EIO, "another request is not counted");
  assert.equal(k.ioctl(fd, 0xdead), -ERRNO.EIO);
  assert.equal(k.counts.ioctl, 2);
  machine.kernel.close(fd);
  assert.throws(() => k.arm({ call: "ioctl", nth: 0, errno: 5 }), /positive integer/);
});
