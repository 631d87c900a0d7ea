/**
 * A tiny userspace vSMMU: the Arm SMMUv3 counterpart of user_viommu.ts. It makes a NEST_PARENT
 * HWPT over the IOAS (stage 2), an iommufd vIOMMU on it and a vDEVICE (the guest's StreamID),
 * builds a context descriptor and stage-1 tables in TypeScript, attaches QEMU's edu device to a
 * nested HWPT made from the guest's STE words, runs DMA through both stages, repoints a PTE and
 * shows the stale translation until a CMD_TLBI_NH_VA goes through the vIOMMU, then a stage-1
 * fault — read, on Linux 6.15 and later, from a vEVENTQ of the vIOMMU as the guest's SMMU would
 * report it (the vSID in StreamID). Needs Linux 6.13 or later (vIOMMU objects, SMMUv3 nesting).
 *
 * Runs on the simulator (an SMMUv3 with nesting, answering as Linux 6.15; `--kernel 6.13` for the
 * version without vEVENTQs); `--device BDF` tries a real edu bound to vfio-pci with a VFIO cdev
 * behind a nesting-capable SMMUv3.
 *
 *   deno run examples/user_vsmmu.ts
 *   deno run --allow-ffi --allow-read examples/user_vsmmu.ts --device 0000:00:02.0
 *
 * @module
 */

import {
  attachIommufdPt,
  EduDriver,
  ERRNO,
  IommufdBackend,
  type IommufdVeventq,
  openPciDevice,
  VfioError,
} from "../mod.ts";
import {
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_DATA_ARM_SMMUV3,
  IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
  IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3,
  IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
  smmuCommand,
  SmmuV3Stage1Tables,
  VIOMMU_MIN_KERNEL,
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

const HELP = `user_vsmmu — a user-owned SMMUv3 stage 1 over an iommufd vIOMMU (Linux 6.13+)

usage: deno run examples/user_vsmmu.ts [--device BDF] [--kernel VERSION] [--trace [FILE]]
  --device BDF     a real edu with a VFIO cdev behind a nesting SMMUv3 (default: the simulator)
  --kernel V       the Linux version the simulator answers as (default 6.15; 6.13: no vEVENTQ)
  --iommu smmuv3   the simulated IOMMU: an SMMUv3 with nesting (the only one this program
                   drives; examples/user_viommu.ts is the VT-d counterpart)
  --trace [FILE]   print the simulated IOMMU's events as they happen, or write them to FILE
  --help           this text`;

/** The stage-1 (guest-virtual) address the device uses: inside edu's 28-bit DMA mask. */
const VA = 0x100_0000n;
const PAGE = 4096n;
const PAYLOAD = "vSMMU";
/** The guest's ASID and the StreamID it gives the device. */
const ASID = 1;
const VSID = 0x42n;

async function main(args: string[]): Promise<number> {
  const { values } = parseFlags(args, {
    device: TARGET_OPTIONS.device,
    iommu: TARGET_OPTIONS.iommu,
    trace: TARGET_OPTIONS.trace,
    kernel: { type: "string", default: "6.15" },
  });
  if (values.help) return help(HELP);
  const flags = commonFlags(values, "smmuv3");
  if (flags.iommu !== "smmuv3") {
    throw new UsageError(
      `--iommu ${flags.iommu}: this program builds an SMMUv3 stage 1 (want smmuv3); ` +
        "examples/user_viommu.ts is the VT-d one",
    );
  }
  if (!/^\d+\.\d+$/.test(values.kernel) || compareVersions(values.kernel, VIOMMU_MIN_KERNEL) < 0) {
    throw new UsageError(
      `--kernel ${values.kernel}: want a version like 6.15, at least ${VIOMMU_MIN_KERNEL} ` +
        "(vIOMMU objects and SMMUv3 nesting)",
    );
  }
  await using target = await openTarget(flags, { kernelVersion: values.kernel, smmuNesting: true });
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

  // 2. Stage 2 = the IOAS (IPA = IOVA) in a vIOMMU; stage 1 = a CD and tables in DMA memory.
  const s1 = new SmmuV3Stage1Tables(dev.dma.allocate(16 * 4096));
  const a = dev.dma.allocate(4096);
  const b = dev.dma.allocate(4096);
  s1.setContext(0, { asid: ASID });
  s1.map(0, VA, a.iova, PAGE, { write: true });
  const fd = backend.iommufd;
  const parent = fd.hwptAlloc({
    devId: device.devId,
    ptId: backend.ioasId,
    flags: IOMMU_HWPT_ALLOC_NEST_PARENT,
  });
  const viommu = fd.viommuAlloc({
    devId: device.devId,
    hwptId: parent,
    type: IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
  });
  const vdev = fd.vdeviceAlloc({ viommuId: viommu, devId: device.devId, virtId: VSID });
  const nested = fd.hwptAlloc({
    devId: device.devId,
    ptId: viommu,
    dataType: IOMMU_HWPT_DATA_ARM_SMMUV3,
    data: s1.vste(),
  });
  attachIommufdPt(kernel, device.fd, nested, bdf);
  const events = openVeventq(() =>
    fd.veventqAlloc({ viommuId: viommu, type: IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, depth: 16 })
  );
  const show = (step: string): void => {
    const t = (x: typeof a): string =>
      `"${new TextDecoder().decode(x.bytes.subarray(0, PAYLOAD.length)).replace(/\0/g, ".")}"`;
    console.log(`user_vsmmu: ${step.padEnd(44)} A=${t(a)} B=${t(b)}`);
  };
  const dma = async (step: string): Promise<void> => {
    a.bytes.fill(0, 0, PAYLOAD.length);
    b.bytes.fill(0, 0, PAYLOAD.length);
    await edu.dmaFromDeviceToIova(VA, PAYLOAD.length);
    show(step);
  };
  try {
    console.log(
      `user_vsmmu: vIOMMU ${viommu}, vSID 0x${VSID.toString(16)}, CD table IPA ` +
        `0x${s1.cdTable.toString(16)}, VA 0x${VA.toString(16)} -> A (IPA 0x${a.iova.toString(16)})`,
    );
    await dma("DMA to VA (PTE -> A)");
    s1.map(0, VA, b.iova, PAGE, { write: true });
    await dma("PTE repointed to B, no invalidation (stale)");
    const handled = fd.hwptInvalidate(viommu, IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3, [
      smmuCommand("TLBI_NH_VA", { asid: ASID, address: VA, leaf: true }),
    ]);
    await dma(`after CMD_TLBI_NH_VA via the vIOMMU (${handled})`);
    const before = machine?.faults().length ?? 0;
    await edu.dmaFromDeviceToIova(VA + 64n * PAGE, 4);
    for (const f of machine?.faults().slice(before) ?? []) {
      console.log(`user_vsmmu: SMMU recorded a stage-${f.stage} fault: ${f.message}`);
    }
    for (const r of events?.read() ?? []) {
      const evt = r.event?.map((d) => `0x${d.toString(16).padStart(16, "0")}`).join(" ") ?? "";
      const id = r.event ? Number(r.event[0] & 0xffn) : 0;
      const sid = r.event ? r.event[0] >> 32n : 0n;
      console.log(
        r.lost
          ? `user_vsmmu: vEVENTQ #${r.sequence}: events lost`
          : `user_vsmmu: vEVENTQ #${r.sequence}: event 0x${id.toString(16)} vSID ` +
            `0x${sid.toString(16)}: ${evt}`,
      );
    }
  } finally {
    events?.close();
    attachIommufdPt(kernel, device.fd, backend.ioasId, bdf);
    for (const id of [...(events ? [events.id] : []), nested, vdev, viommu, parent]) {
      fd.destroy(id);
    }
    edu.close();
  }
  return 0;
}

/** -1, 0 or 1 as Linux version `a` ("6.13") is before, the same as or after `b`. */
function compareVersions(a: string, b: string): number {
  const [x, y] = [a, b].map((v) => v.split(".").map(Number));
  return Math.sign(x[0] - y[0] || x[1] - y[1]);
}

/** A vEVENTQ, or undefined (with a note) on kernels before 6.15 (ENOTTY). */
function openVeventq(alloc: () => IommufdVeventq): IommufdVeventq | undefined {
  try {
    return alloc();
  } catch (e) {
    if (!(e instanceof VfioError) || e.errno !== ERRNO.ENOTTY) throw e;
    console.log("user_vsmmu: no vEVENTQ (Linux before 6.15): faults go to the host log only");
    return undefined;
  }
}

if (import.meta.main) await runProgram("user_vsmmu", main);
