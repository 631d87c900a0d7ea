/**
 * edu DMA round trips: maps a buffer through the framework's DmaSpace, copies it into QEMU's edu
 * device and back at several sizes and offsets, checks the bytes, waits for MSI, and reports.
 * Runs on the simulator by default, under any of its IOMMUs; `--device BDF` drives a real edu
 * bound to vfio-pci.
 *
 *   deno run examples/edu_dma.ts [--iommu vtd|smmuv3|virtio-iommu|spapr] [--vfio auto|type1|iommufd]
 *   deno run examples/edu_dma.ts --iommu smmuv3 --fault --trace
 *   deno run --allow-ffi examples/edu_dma.ts --device 0000:00:02.0
 *
 * @module
 */

import { EDU_DMA_MASK, EduDriver, openPciDevice } from "../mod.ts";
import {
  commonFlags,
  help,
  integerFlag,
  oneOf,
  openTarget,
  parseFlags,
  runProgram,
  TARGET_HELP,
  TARGET_OPTIONS,
} from "./cli.ts";

const HELP = `edu_dma — DMA round trips through an IOMMU with QEMU's edu device

usage: deno run examples/edu_dma.ts [options]
  --irq MODE       msi (default) or poll
  --rounds N       round trips per size (default 3)
  --fault          also DMA to an unmapped IOVA and show the IOMMU fault (simulator only)
${TARGET_HELP}`;

const OPTIONS = {
  ...TARGET_OPTIONS,
  irq: { type: "string", default: "msi" },
  rounds: { type: "string", default: "3" },
  fault: { type: "boolean", default: false },
} as const;

/** Transfer sizes and buffer offsets of the round trips (edu's buffer holds at most 4095). */
const SIZES = [1, 64, 100, 1000, 2048, 4095];
const OFFSETS = [0, 8, 4096 - 1];
/** Bytes of the buffer: a source page and a destination page. */
const PAGE = 4096;

async function main(args: string[]): Promise<number> {
  const { values } = parseFlags(args, OPTIONS);
  if (values.help) return help(HELP);
  const flags = commonFlags(values);
  const irq = oneOf("--irq", values.irq, ["msi", "poll"]) as "msi" | "poll";
  const rounds = integerFlag("--rounds", values.rounds, 1, 1_000_000);
  if (values.fault && flags.device !== undefined) {
    console.log("edu_dma: --fault runs on the simulator only (a real IOMMU reports it in dmesg)");
  }
  await using target = await openTarget(flags);
  const { kernel, machine, bdf } = target;
  using dev = openPciDevice(bdf, { kernel, iommu: flags.vfio });
  const edu = EduDriver.open(dev, { interrupts: irq });
  try {
    const v = edu.version;
    const where = machine ? `simulated ${flags.iommu}` : "this host";
    console.log(
      `edu_dma: ${bdf} edu v${v.major}.${v.minor} on ${where} via ${dev.info.backend}, ` +
        `interrupts ${irq}`,
    );
    console.log(
      `edu_dma: liveness ${edu.liveness(0x12345678) ? "ok" : "FAILED"}, 10! = ${await edu.factorial(
        10,
      )}`,
    );
    const buf = dev.dma.allocate(2 * PAGE, { iovaLimit: EDU_DMA_MASK });
    console.log(`edu_dma: buffer iova 0x${buf.iova.toString(16)} size ${buf.size}`);
    let failures = 0;
    const t0 = kernel.now();
    for (const size of SIZES) {
      for (const offset of OFFSETS) {
        if (offset + size > PAGE) continue;
        for (let r = 0; r < rounds; r++) {
          const src = buf.bytes.subarray(offset, offset + size);
          for (let i = 0; i < size; i++) src[i] = (i * 31 + size + r) & 0xff;
          const back = buf.bytes.subarray(PAGE + offset, PAGE + offset + size);
          back.fill(0);
          await edu.dmaToDevice(buf, offset, 0, size);
          await edu.dmaFromDevice(buf, PAGE + offset, 0, size);
          if (!back.every((b, i) => b === src[i])) {
            failures++;
            console.log(`edu_dma: MISMATCH size ${size} offset ${offset}`);
          }
        }
      }
    }
    const c = edu.counters;
    console.log(
      `edu_dma: ${c.dmaTransfers} transfers, ${c.dmaBytes} bytes, ${c.interrupts} interrupts, ` +
        `${failures} mismatches in ${((kernel.now() - t0) / 1000).toFixed(2)} s (${
          machine ? "virtual" : "real"
        } time)`,
    );
    if (values.fault && machine) {
      // An IOVA the device may address that nothing maps: take one and give it back.
      const probe = dev.dma.allocate(PAGE, { iovaLimit: EDU_DMA_MASK });
      const unmapped = probe.iova;
      dev.dma.free(probe);
      const before = machine.faults().length;
      let after = "";
      try {
        await edu.dmaFromDeviceToIova(unmapped, 64);
      } catch (e) {
        // sPAPR: EEH freezes the PE on a DMA fault, so the device stops answering MMIO.
        after = ` (then: ${(e as Error).message.split(". ")[0]})`;
      }
      const fault = machine.faults()[before];
      console.log(
        `edu_dma: DMA to unmapped 0x${unmapped.toString(16)} → ${
          fault ? fault.message : "no fault?!"
        }${after}`,
      );
      if (!fault) failures++;
    }
    dev.dma.free(buf);
    return failures === 0 ? 0 : 1;
  } finally {
    edu.close();
  }
}

if (import.meta.main) await runProgram("edu_dma", main);
