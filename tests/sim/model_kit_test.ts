/**
 * The device-model kit (sim/pci/mod.ts): BAR dispatch, register blocks with width rules, and the
 * PciFunctionModel base class — interrupts in the enabled mode, timed work a reset cancels, DMA
 * through the IOMMU — driven through a machine and the framework as a user's model would be.
 */
import assert from "node:assert/strict";
import { openPciDevice } from "../../core/pci_device.ts";
import { createMachine } from "../../sim/machine.ts";
import { BarMap, PciFunctionModel, RegisterBlock } from "../../sim/pci/mod.ts";

Deno.test("BarMap routes by range; unclaimed and straddling accesses read all-ones", () => {
  const seen: string[] = [];
  const handler = (name: string) => ({
    read: (off: number, size: number) => (seen.push(`${name} r ${off}/${size}`), 0x11),
    write: (off: number, _size: number, v: number | bigint) =>
      void seen.push(`${name} w ${off}=${v}`),
  });
  const map = new BarMap().route(0, 0x100, 0x10, handler("a")).route(2, 0, 0x8, handler("b"));
  assert.equal(map.read(0, 0x104, 4), 0x11);
  assert.equal(map.read(0, 0x10e, 4), 0xffff_ffff, "straddles the end of the range");
  assert.equal(map.read(0, 0x0, 2), 0xffff);
  assert.equal(map.read(1, 0x0, 8), 0xffff_ffff_ffff_ffffn);
  map.write(2, 4, 4, 7);
  map.write(0, 0x200, 4, 9); // dropped
  assert.deepEqual(seen, ["a r 4/4", "b w 4=7"]);
  assert.throws(() => map.route(0, 0x108, 0x10, handler("c")), /overlaps/);
  assert.throws(() => map.route(6, 0, 4, handler("c")), /BAR 6 does not exist/);
  assert.equal(new BarMap({ unclaimed: "zero" }).read(0, 0, 4), 0);
});

Deno.test("RegisterBlock: reset values, writable bits, side effects, widths", () => {
  const written: number[] = [];
  const regs = new RegisterBlock({ name: "t", accessSizes: [1, 4, 8] })
    .define(0x0, { name: "ID", reset: 0xc0de_0001, writable: 0 })
    .define(0x4, { name: "CTL", writable: 0x0000_00ff })
    .define(0x8, { name: "GO", write: (v) => void written.push(v), read: () => 0x5a })
    .define(0xc, { name: "HI" });
  assert.equal(regs.read(0x0, 4), 0xc0de_0001);
  regs.write(0x0, 4, 0);
  assert.equal(regs.read(0x0, 4), 0xc0de_0001, "read-only");
  regs.write(0x4, 4, 0xffff_ffff);
  assert.equal(regs.read(0x4, 4), 0xff, "only the writable bits");
  regs.write(0x5, 1, 0xab); // byte lane 1 merged, then masked: stays 0
  assert.equal(regs.read(0x4, 4), 0xff);
  assert.equal(regs.read(0x1, 1), 0x00);
  assert.equal(regs.read(0x3, 1), 0xc0);
  regs.write(0x8, 4, 3);
  assert.equal(regs.read(0x8, 4), 0x5a);
  regs.write(0x8, 8, 0x1234_5678_9abc_def0n);
  assert.deepEqual(written, [3, 0x9abc_def0]);
  assert.equal(regs.read(0x8, 8), 0x1234_5678_0000_005an);
  assert.equal(regs.read(0x2, 2), 0xffff, "2-byte accesses refused");
  assert.equal(regs.read(0x4, 8), 0xffff_ffff_ffff_ffffn, "8-byte access misaligned");
  assert.equal(regs.read(0x10, 4), 0xffff_ffff, "no register there");
  regs.set(0x4, 0x42);
  assert.equal(regs.value(0x4), 0x42);
  regs.reset();
  assert.equal(regs.value(0x4), 0);
  assert.throws(() => regs.define(0x2, { name: "X" }), /not dword aligned/);
  assert.throws(() => regs.define(0x4, { name: "X" }), /two registers/);
});

/** A timer device: START schedules a DMA write of a counter and an interrupt after 1 µs. */
class Ticker extends PciFunctionModel {
  readonly model = "ticker";
  readonly regs = new RegisterBlock({ name: "ticker", accessSizes: [4] });
  ticks = 0;

  constructor() {
    super({
      config: { vendorId: 0x1234, deviceId: 0x7777, classCode: 0xff0000, interruptPin: 1 },
      bars: [{ index: 0, size: 0x1000, kind: "mem32", prefetchable: false }],
      msi: { vectors: 1, address64: true, perVectorMask: false },
      resetWorks: true,
    });
    this.regs
      .define(0x0, { name: "ADDR_LO" })
      .define(0x4, { name: "ADDR_HI" })
      .define(0x8, { name: "START", write: () => this.#start() })
      .define(0xc, { name: "ACK", write: () => this.setIntx(false) });
    this.mmio.route(0, 0, 0x1000, this.regs);
  }

  #start(): void {
    this.after(1000, () => {
      this.ticks++;
      const at = BigInt(this.regs.value(0x0)) | (BigInt(this.regs.value(0x4)) << 32n);
      const ok = this.dmaWrite(at, new Uint8Array([this.ticks]));
      this.trace(`tick ${this.ticks} ${ok ? "written" : "faulted"}`);
      this.interrupt(0);
    });
  }

  protected onReset(): void {
    this.regs.reset();
    this.ticks = 0;
  }
}

Deno.test("a PciFunctionModel subclass works through VFIO: DMA, MSI, INTx, reset cancels work", async () => {
  const ticker = new Ticker();
  const machine = createMachine({ iommu: "vtd", strict: true, devices: [{ model: ticker }] });
  assert.equal(machine.fn("0000:00:02.0").model, ticker, "the instance itself is plugged in");
  using dev = openPciDevice("0000:00:02.0", { kernel: machine.kernel, iommu: "iommufd" });
  dev.config.enableBusMaster();
  const regs = dev.bar(0);
  const buf = dev.dma.allocate(4096);
  regs.write32(0x0, Number(buf.iova & 0xffff_ffffn));
  regs.write32(0x4, Number(buf.iova >> 32n));
  dev.irqs.enableMsi(1);
  regs.write32(0x8, 1);
  assert.equal(await dev.irqs.wait(0, { timeoutMs: 10 }), 1);
  assert.equal(buf.bytes[0], 1, "the DMA write landed");
  dev.irqs.disableMsi();
  dev.irqs.enableIntx();
  regs.write32(0x8, 1);
  assert.equal(await dev.irqs.wait(0, { timeoutMs: 10 }), 1, "INTx when MSI is off");
  regs.write32(0xc, 1);
  dev.irqs.unmask();
  regs.write32(0x8, 1);
  dev.device.reset(); // FLR before the tick: the work is cancelled
  assert.equal(await dev.irqs.wait(0, { timeoutMs: 10 }), "timeout");
  assert.equal(ticker.ticks, 0, "reset state");
  assert.equal(regs.read32(0x0), 0, "registers back to reset values");
  const unmapped = buf.iova + 0x10_0000n;
  regs.write32(0x0, Number(unmapped & 0xffff_ffffn));
  regs.write32(0x4, Number(unmapped >> 32n));
  regs.write32(0x8, 1);
  dev.config.enableBusMaster();
  machine.clock.advance(2000);
  assert.equal(machine.faults().length, 1, "an unmapped address is the IOMMU's fault");
  assert.equal(machine.faults()[0].address, unmapped);
  assert.ok(machine.trace.some((l) => l.includes("tick 1 faulted")));
});

Deno.test("createMachine takes a model factory and counts instances per factory", () => {
  const seen: number[] = [];
  const factory = (ctx: { instance: number }) => {
    seen.push(ctx.instance);
    return new Ticker();
  };
  const machine = createMachine({
    iommu: "smmuv3",
    devices: [{ model: factory }, { model: factory }, { model: "edu" }],
  });
  assert.deepEqual(seen, [0, 1]);
  assert.deepEqual(machine.functions.map((f) => f.model.model), ["ticker", "ticker", "edu"]);
});
