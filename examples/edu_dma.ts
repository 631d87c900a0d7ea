/**
 * edu DMA round trips: maps a buffer through the framework's DmaSpace, copies it into QEMU's edu
 * device and back at several sizes and offsets, checks the bytes, waits for MSI, and reports.
 * Runs on the simulator by default; `--device BDF` drives a real edu bound to vfio-pci.
 *
 *   deno run examples/edu_dma.ts [--iommu auto|type1|iommufd] [--irq msi|poll] [--fault]
 *   deno run --allow-ffi examples/edu_dma.ts --device 0000:00:02.0
 *
 * @module
 */

import { parseArgs } from "node:util";
import type { Kernel } from "../ffi/kernel.ts";
import { type IommuChoice, openPciDevice } from "../core/pci_device.ts";
import { EduDriver } from "../drivers/edu/edu.ts";
import { EDU_DMA_MASK } from "../drivers/edu/registers.ts";
import { createMachine, type SimMachine } from "../sim/machine.ts";

const HELP = `edu_dma — DMA round trips through an IOMMU with QEMU's edu device

usage: deno run examples/edu_dma.ts [options]
  --device BDF     a real edu bound to vfio-pci (default: the simulator)
  --iommu KIND     auto (default), type1, iommufd
  --irq MODE       msi (default) or poll
  --rounds N       round trips per size (default 3)
  --fault          also DMA to an unmapped IOVA and show the IOMMU fault (simulator only)
  --help           this text`;

/** Transfer sizes and buffer offsets of the round trips (edu's buffer holds at most 4095). */
const SIZES = [1, 64, 100, 1000, 2048, 4095];
const OFFSETS = [0, 8, 4096 - 1];

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      device: { type: "string" },
      iommu: { type: "string", default: "auto" },
      irq: { type: "string", default: "msi" },
      rounds: { type: "string", default: "3" },
      fault: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (!["auto", "type1", "iommufd"].includes(values.iommu)) {
    throw new RangeError(`--iommu ${values.iommu}: auto, type1 or iommufd`);
  }
  if (values.irq !== "msi" && values.irq !== "poll") {
    throw new RangeError(`--irq ${values.irq}: msi or poll`);
  }
  const rounds = Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1) {
    throw new RangeError(`--rounds ${values.rounds}: a positive integer`);
  }
  let kernel: Kernel;
  let machine: SimMachine | undefined;
  if (values.device) {
    const { LinuxKernel } = await import("../ffi/linux.ts");
    kernel = LinuxKernel.open();
  } else {
    machine = createMachine({ iommu: "vtd" });
    kernel = machine.kernel;
  }
  const bdf = values.device ?? "0000:00:02.0";
  using dev = openPciDevice(bdf, { kernel, iommu: values.iommu as IommuChoice });
  const edu = EduDriver.open(dev, { interrupts: values.irq });
  try {
    const v = edu.version;
    console.log(
      `edu_dma: ${bdf} edu v${v.major}.${v.minor} via ${dev.info.backend}, interrupts ${values.irq}`,
    );
    console.log(
      `edu_dma: liveness ${edu.liveness(0x12345678) ? "ok" : "FAILED"}, 10! = ${await edu.factorial(
        10,
      )}`,
    );
    const buf = dev.dma.allocate(2 * 4096, { read: true, write: true });
    if (buf.iova + BigInt(buf.size) - 1n > EDU_DMA_MASK) {
      throw new RangeError("the DMA buffer is above edu's 28-bit mask");
    }
    console.log(`edu_dma: buffer iova 0x${buf.iova.toString(16)} size ${buf.size}`);
    let failures = 0;
    const t0 = kernel.now();
    for (const size of SIZES) {
      for (const offset of OFFSETS) {
        if (offset + size > 4096) continue;
        for (let r = 0; r < rounds; r++) {
          const src = buf.bytes.subarray(offset, offset + size);
          for (let i = 0; i < size; i++) src[i] = (i * 31 + size + r) & 0xff;
          const back = buf.bytes.subarray(4096 + offset, 4096 + offset + size);
          back.fill(0);
          await edu.dmaToDevice(buf, offset, 0, size);
          await edu.dmaFromDevice(buf, 4096 + offset, 0, size);
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
      const unmapped = 0x0800_0000n;
      const before = machine.faults().length;
      await edu.dmaFromDeviceToIova(unmapped, 64);
      const fault = machine.faults()[before];
      console.log(
        `edu_dma: DMA to unmapped 0x${unmapped.toString(16)} → ${
          fault ? fault.message : "no fault?!"
        }`,
      );
      if (!fault) failures++;
    }
    dev.dma.free(buf);
    return failures === 0 ? 0 : 1;
  } finally {
    edu.close();
  }
}

if (import.meta.main) {
  try {
    Deno.exit(await main());
  } catch (e) {
    console.error(`edu_dma: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
