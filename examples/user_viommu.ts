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

import { parseArgs } from "node:util";
import { attachIommufdPt } from "../core/cdev.ts";
import { IommufdBackend } from "../core/iommufd_backend.ts";
import { openPciDevice } from "../core/pci_device.ts";
import { VtdFirstStageTables } from "../core/vtd_stage1.ts";
import { EduDriver } from "../drivers/edu/edu.ts";
import type { Kernel } from "../ffi/kernel.ts";
import {
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_DATA_VTD_S1,
  IOMMU_HWPT_INVALIDATE_DATA_VTD_S1,
} from "../ffi/uapi/iommufd.ts";
import { createMachine, type SimMachine } from "../sim/machine.ts";

const HELP = `user_viommu — user-owned stage-1 page tables over iommufd nesting (VT-d)

usage: deno run examples/user_viommu.ts [--device BDF]
  --device BDF   a real edu with a VFIO cdev on a nesting-capable VT-d (default: the simulator)
  --help         this text`;

/** The stage-1 (guest-virtual) address the device uses: inside edu's 28-bit DMA mask. */
const VA = 0x100_0000n;
const PAGE = 4096n;
const PAYLOAD = "vIOMMU";

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: { device: { type: "string" }, help: { type: "boolean", short: "h", default: false } },
  });
  if (values.help) return console.log(HELP);
  let kernel: Kernel;
  let machine: SimMachine | undefined;
  if (values.device === undefined) {
    machine = createMachine({ iommu: "vtd", vtdScalableMode: true });
    kernel = machine.kernel;
  } else {
    const { LinuxKernel } = await import("../ffi/linux.ts");
    kernel = LinuxKernel.open();
  }
  const bdf = values.device ?? "0000:00:02.0";
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
}

if (import.meta.main) await main();
