/**
 * Your own device on the simulator: a CRC-32 offload engine written as a device model with the
 * public device-model API (`./sim/pci`), a driver for it written against the framework (`.`)
 * exactly as for real hardware, and its test run on every simulated IOMMU and VFIO path with the
 * testing API (`./testing`): checksums of buffers the driver maps, an injected DMA fault reported
 * by the IOMMU in its own format and by the driver as an error, and no leak after each run.
 *
 *   deno run examples/custom_device.ts [--iommu vtd|smmuv3|virtio-iommu|spapr] [--rounds N]
 *
 * The device (1234:c32c, PCIe with FLR, one MSI vector, BAR0 4 KiB):
 * | off  | name    | meaning                                                          |
 * |------|---------|------------------------------------------------------------------|
 * | 0x00 | ID      | RO 0x43524301                                                     |
 * | 0x04 | CONTROL | bit 0 START (self-clearing), bit 1 IRQ: MSI 0 when done          |
 * | 0x08 | STATUS  | bit 0 BUSY, bit 1 DONE (write 1 to clear), bit 2 ERROR (same)    |
 * | 0x0c | LENGTH  | bytes to checksum, 1 … 1 MiB                                     |
 * | 0x10 | SRC_LO  | source IOVA bits 31:0 (0x14 SRC_HI: bits 63:32)                   |
 * | 0x18 | RESULT  | RO: CRC-32 (IEEE 802.3) of the bytes at SRC                      |
 *
 * @module
 */

import { type DmaBuffer, openPciDevice, type PciDevice, VfioError } from "../mod.ts";
import { createMachine, type IommuModelName } from "../sim/mod.ts";
import { PciFunctionModel, RegisterBlock } from "../sim/pci/mod.ts";
import { LeakCheck, SIM_PLATFORMS, simPlatform } from "../testing/mod.ts";
import { help, integerFlag, oneOf, parseFlags, runProgram } from "./cli.ts";

// ---- The device model ----

const REG = {
  ID: 0x00,
  CONTROL: 0x04,
  STATUS: 0x08,
  LENGTH: 0x0c,
  SRC_LO: 0x10,
  SRC_HI: 0x14,
  RESULT: 0x18,
};
const ID_VALUE = 0x4352_4301;
const CTL_START = 1, CTL_IRQ = 2;
const ST_BUSY = 1, ST_DONE = 2, ST_ERROR = 4;
const MAX_LENGTH = 1 << 20;
const CHUNK = 4096;
const NS_PER_KIB = 250; // 4 GB/s

/** The CRC-32 offload engine. */
class Crc32Device extends PciFunctionModel {
  readonly model = "crc32";
  readonly #regs = new RegisterBlock({ name: "crc32" });

  constructor() {
    super({
      config: { vendorId: 0x1234, deviceId: 0xc32c, classCode: 0x108000, express: true },
      bars: [{ index: 0, size: 0x1000, kind: "mem32", prefetchable: false }],
      express: { flr: true },
      msi: { vectors: 1, address64: true, perVectorMask: false },
    });
    const r = this.#regs;
    r.define(REG.ID, { name: "ID", reset: ID_VALUE, writable: 0 });
    r.define(REG.CONTROL, { name: "CONTROL", read: () => 0, write: (v) => this.#control(v) });
    r.define(REG.STATUS, {
      name: "STATUS",
      write: (v) => r.set(REG.STATUS, r.value(REG.STATUS) & ~(v & (ST_DONE | ST_ERROR))),
    });
    r.define(REG.LENGTH, { name: "LENGTH" }).define(REG.SRC_LO, { name: "SRC_LO" }).define(
      REG.SRC_HI,
      { name: "SRC_HI" },
    );
    r.define(REG.RESULT, { name: "RESULT", writable: 0 });
    this.mmio.route(0, 0, 0x1000, r);
  }

  protected onReset(): void {
    this.#regs.reset();
  }

  #control(v: number): void {
    const r = this.#regs;
    if ((v & CTL_START) === 0 || r.value(REG.STATUS) & ST_BUSY) return;
    const length = r.value(REG.LENGTH);
    r.set(REG.STATUS, ST_BUSY);
    this.after(
      100 + Math.ceil(length / 1024) * NS_PER_KIB,
      () => this.#run(length, (v & CTL_IRQ) !== 0),
    );
  }

  #run(length: number, irq: boolean): void {
    const r = this.#regs;
    let crc = 0xffff_ffff;
    let ok = length >= 1 && length <= MAX_LENGTH;
    const src = BigInt(r.value(REG.SRC_LO)) | (BigInt(r.value(REG.SRC_HI)) << 32n);
    const chunk = new Uint8Array(CHUNK);
    for (let done = 0; ok && done < length; done += CHUNK) {
      const piece = chunk.subarray(0, Math.min(CHUNK, length - done));
      ok = this.dmaRead(src + BigInt(done), piece); // through the IOMMU; false when it faulted
      if (ok) crc = crc32Update(crc, piece);
    }
    r.set(REG.RESULT, ok ? ~crc >>> 0 : 0);
    r.set(REG.STATUS, ST_DONE | (ok ? 0 : ST_ERROR));
    this.trace(`crc32 of ${length} bytes at 0x${src.toString(16)}: ${ok ? "done" : "DMA failed"}`);
    if (irq) this.interrupt(0);
  }
}

const TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb8_8320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32Update(crc: number, bytes: Uint8Array): number {
  for (const b of bytes) crc = TABLE[(crc ^ b) & 0xff] ^ (crc >>> 8);
  return crc >>> 0;
}

// ---- The driver (framework API only: it would run unchanged on a real device) ----

/** A driver for the CRC-32 engine. */
class Crc32Driver {
  private constructor(private readonly dev: PciDevice, private readonly timeoutMs: number) {}

  static open(dev: PciDevice, timeoutMs = 1000): Crc32Driver {
    const id = dev.bar(0).read32(REG.ID);
    if (id !== ID_VALUE) {
      throw new VfioError({
        operation: "Crc32Driver.open",
        device: dev.bdf,
        message: `ID reads 0x${id.toString(16)}, not a CRC-32 engine`,
      });
    }
    dev.config.enableBusMaster();
    dev.irqs.enableMsi(1);
    return new Crc32Driver(dev, timeoutMs);
  }

  /** The CRC-32 of `length` bytes of `buf` from `offset`, computed by the device. */
  async crc32(buf: DmaBuffer, offset = 0, length = buf.size - offset): Promise<number> {
    const regs = this.dev.bar(0);
    const src = buf.iova + BigInt(offset);
    regs.write32(REG.SRC_LO, Number(src & 0xffff_ffffn));
    regs.write32(REG.SRC_HI, Number(src >> 32n));
    regs.write32(REG.LENGTH, length);
    regs.write32(REG.CONTROL, CTL_START | CTL_IRQ);
    const got = await this.dev.irqs.wait(0, { timeoutMs: this.timeoutMs });
    const status = regs.read32(REG.STATUS);
    const fail = (message: string): never => {
      throw new VfioError({ operation: "crc32", device: this.dev.bdf, message });
    };
    if (status === 0xffff_ffff) fail("the device reads all-ones (removed, or its PE frozen)");
    if (got === "timeout" || got === "cancelled") {
      fail(`no completion MSI within ${this.timeoutMs} ms`);
    }
    regs.write32(REG.STATUS, ST_DONE | ST_ERROR);
    if (status & ST_ERROR) {
      fail(`the device could not read ${length} bytes at IOVA 0x${src.toString(16)}`);
    }
    return regs.read32(REG.RESULT);
  }

  close(): void {
    this.dev.irqs.disableMsi();
  }
}

// ---- Its test, on every simulated IOMMU × VFIO path ----

/** A plain bitwise CRC-32 to check the device against (independent of its table). */
function referenceCrc32(bytes: Uint8Array): number {
  let c = 0xffff_ffff;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb8_8320 : c >>> 1;
  }
  return ~c >>> 0;
}

const BDF = "0000:00:05.0";
const SIZES = [1, 9, 4096, 10_000, 65_536];

/** Run the test on every VFIO path of `iommu`; one report line per path (throws on a failure). */
export async function testOn(iommu: IommuModelName, rounds: number): Promise<string[]> {
  const platform = simPlatform(iommu);
  const lines: string[] = [];
  for (const path of platform.paths) {
    const machine = createMachine({
      ...platform.options,
      iommu,
      devices: [{ model: new Crc32Device(), bdf: BDF }],
    });
    const leaks = new LeakCheck(machine);
    const dev = openPciDevice(BDF, { kernel: machine.kernel, iommu: path });
    const drv = Crc32Driver.open(dev);
    const buf = dev.dma.allocate(SIZES[SIZES.length - 1]);
    let checked = 0;
    for (let round = 0; round < rounds; round++) {
      for (const size of SIZES) {
        for (let i = 0; i < size; i++) buf.bytes[i] = (i * 31 + round * 7 + size) & 0xff;
        const want = referenceCrc32(buf.bytes.subarray(0, size));
        const got = await drv.crc32(buf, 0, size);
        if (got !== want) {
          throw new Error(
            `${iommu}/${path}: crc32 of ${size} bytes 0x${got.toString(16)}, want 0x${
              want.toString(16)
            }`,
          );
        }
        checked++;
      }
    }
    buf.bytes.set(new TextEncoder().encode("123456789"));
    if ((await drv.crc32(buf, 0, 9)) !== 0xcbf4_3926) {
      throw new Error('crc32("123456789") is not 0xcbf43926');
    }
    machine.inject(BDF).failDma({ next: 1 }); // the device's next DMA read faults in the IOMMU
    let error = "no error";
    try {
      await drv.crc32(buf, 0, 64);
    } catch (e) {
      if (!(e instanceof VfioError)) throw e;
      error = e.message.replace(`${BDF}: `, "");
    }
    const fault = machine.faults()[0]?.message.split(";")[0] ?? "none";
    drv.close();
    dev.close();
    const left = leaks.changes();
    if (left.length > 0) throw new Error(`${iommu}/${path}: left ${left.join("; ")}`);
    lines.push(`${iommu}/${path}: ${checked + 1} checksums match; injected DMA fault -> ${error}`);
    lines.push(`  the IOMMU logged: ${fault}`);
  }
  return lines;
}

const HELP = `custom_device — a CRC-32 offload engine as a simulated device, its driver and its test

usage: deno run examples/custom_device.ts [options]
  --iommu NAME   run on one IOMMU model only: ${SIM_PLATFORMS.map((p) => p.iommu).join(", ")}
  --rounds N     checksums of each size per path (default 2)
  --help         this text`;

async function main(args: string[]): Promise<number> {
  const { values } = parseFlags(args, {
    iommu: { type: "string" },
    rounds: { type: "string", default: "2" },
  });
  if (values.help) return help(HELP);
  const rounds = integerFlag("--rounds", values.rounds, 1, 1_000_000);
  const known = SIM_PLATFORMS.map((p) => p.iommu as string);
  const iommus = values.iommu === undefined ? known : [oneOf("--iommu", values.iommu, known)];
  for (const iommu of iommus) {
    for (const line of await testOn(iommu as IommuModelName, rounds)) console.log(line);
  }
  console.log(
    `ok: the CRC-32 engine and its driver pass on ${iommus.length} IOMMU model(s), no leaks`,
  );
  return 0;
}

if (import.meta.main) await runProgram("custom_device", main);
