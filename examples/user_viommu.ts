/**
 * A tiny userspace vIOMMU: builds its own VT-d first-stage page tables in TypeScript, attaches
 * them to QEMU's edu device as an iommufd nested HWPT (VTD_S1 over a NEST_PARENT stage 2), runs
 * DMA through them, repoints a PTE and shows the device still using the stale translation until
 * IOMMU_HWPT_INVALIDATE, then the new one; finally a DMA to an unmapped stage-1 address and the
 * stage-1 fault it raises.
 *
 * Runs on the simulator (a VT-d in scalable mode with nesting, which QEMU 10's intel-iommu does
 * not offer); `--device BDF` tries a real edu bound to vfio-pci with a VFIO cdev.
 *
 *   deno run examples/user_viommu.ts
 *   deno run --allow-ffi --allow-read examples/user_viommu.ts --device 0000:00:02.0
 *
 * @module
 */

import { attachIommufdPt, EduDriver, IommufdBackend, openPciDevice } from "../mod.ts";
import {
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_DATA_VTD_S1,
  IOMMU_HWPT_INVALIDATE_DATA_VTD_S1,
  VtdFirstStageTables,
} from "../viommu.ts";
import {
  commonFlags,
  help,
  openTarget,
  parseFlags,
  runProgram,
  TARGET_OPTIONS,
  UsageError,
} from "./cli.ts";

const HELP = `user_viommu — user-owned stage-1 page tables over iommufd nesting (VT-d)

usage: deno run examples/user_viommu.ts [--device BDF] [--trace [FILE]]
  --device BDF     a real edu with a VFIO cdev on a nesting-capable VT-d (default: the simulator)
  --iommu vtd      the simulated IOMMU: VT-d in scalable mode (the only one this program drives;
                   examples/user_vsmmu.ts is the SMMUv3 counterpart)
  --trace [FILE]   print the simulated IOMMU's events as they happen, or write them to FILE
  --help           this text`;

/** The stage-1 (guest-virtual) address the device uses: inside edu's 28-bit DMA mask. */
const VA = 0x100_0000n;
const PAGE = 4096n;
const PAYLOAD = "vIOMMU";

async function main(args: string[]): Promise<number> {
  const { values } = parseFlags(args, {
    device: TARGET_OPTIONS.device,
    iommu: TARGET_OPTIONS.iommu,
    trace: TARGET_OPTIONS.trace,
  });
  if (values.help) return help(HELP);
  const flags = commonFlags(values);
  if (flags.iommu !== "vtd") {
    throw new UsageError(
      `--iommu ${flags.iommu}: this program builds VT-d first-stage tables (want vtd); ` +
        "examples/user_vsmmu.ts is the SMMUv3 one",
    );
  }
  await using target = await openTarget(flags, { vtdScalableMode: true });
  const { kernel, machine, bdf } = target;
  using dev = openPciDevice(bdf, { kernel, iommu: "iommufd" });
  const edu = EduDriver.open(dev, { interrupts: "poll" });
  const backend = dev.dma.backend;
  if (!(backend instanceof IommufdBackend)) throw new Error("expected the iommufd backend");
  const [device] = backend.devices();

  // 1. Load the payload into the edu's buffer while it translates through the IOAS directly.
  const src = dev.dma.allocate(4096);
  src.bytes.set(new TextEncoder().encode(PAYLOAD));
  await edu.dmaToDevice(src, 0, 0, PAYLOAD.length);
  dev.dma.free(src);

  // 2. Stage 2 = the IOAS (GPA = IOVA); stage 1 = tables the program builds in DMA memory.
  const tables = new VtdFirstStageTables(dev.dma.allocate(16 * 4096));
  const a = dev.dma.allocate(4096);
  const b = dev.dma.allocate(4096);
  tables.map(VA, a.iova, PAGE, { write: true });
  const fd = backend.iommufd;
  const parent = fd.hwptAlloc({
    devId: device.devId,
    ptId: backend.ioasId,
    flags: IOMMU_HWPT_ALLOC_NEST_PARENT,
  });
  const nested = fd.hwptAlloc({
    devId: device.devId,
    ptId: parent,
    dataType: IOMMU_HWPT_DATA_VTD_S1,
    data: tables.hwptData(),
  });
  attachIommufdPt(kernel, device.fd, nested, bdf);
  const show = (step: string): void => {
    const t = (x: typeof a): string =>
      `"${new TextDecoder().decode(x.bytes.subarray(0, PAYLOAD.length)).replace(/\0/g, ".")}"`;
    console.log(`user_viommu: ${step.padEnd(44)} A=${t(a)} B=${t(b)}`);
  };
  const dma = async (step: string): Promise<void> => {
    a.bytes.fill(0, 0, PAYLOAD.length);
    b.bytes.fill(0, 0, PAYLOAD.length);
    await edu.dmaFromDeviceToIova(VA, PAYLOAD.length);
    show(step);
  };
  try {
    console.log(
      `user_viommu: stage-1 root GPA 0x${tables.root.toString(16)}, VA 0x${VA.toString(16)}` +
        ` -> A (GPA 0x${a.iova.toString(16)}); B at GPA 0x${b.iova.toString(16)}`,
    );
    await dma("DMA to VA (PTE -> A)");
    tables.map(VA, b.iova, PAGE, { write: true });
    await dma("PTE repointed to B, no invalidation (stale)");
    const handled = fd.hwptInvalidate(nested, IOMMU_HWPT_INVALIDATE_DATA_VTD_S1, [
      tables.invalidation(VA, PAGE),
    ]);
    await dma(`after IOMMU_HWPT_INVALIDATE (${handled} entry)`);
    if (machine) {
      const before = machine.faults().length;
      await edu.dmaFromDeviceToIova(VA + 64n * PAGE, 4);
      for (const f of machine.faults().slice(before)) {
        console.log(`user_viommu: stage-${f.stage} fault: ${f.message}`);
      }
    }
  } finally {
    attachIommufdPt(kernel, device.fd, backend.ioasId, bdf);
    fd.destroy(nested);
    fd.destroy(parent);
    edu.close();
  }
  return 0;
}

if (import.meta.main) await runProgram("user_viommu", main);
