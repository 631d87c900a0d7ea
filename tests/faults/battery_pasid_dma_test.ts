/**
 * The fault battery for the PASID DMA engine driver: a fault on a data access comes back as the
 * operation's "fault" result naming the access and address; a fault on the descriptor ring halts
 * the engine (a clear VfioError; reopening the driver resets it and work resumes); a hang is a
 * clear timeout; interrupts do not matter to this polling driver; surprise removal and an EEH
 * freeze are clear errors. The fixture's leak check passes after each.
 */
import assert from "node:assert/strict";
import { PasidDmaDriver } from "../../drivers/pasid_dma/pasid_dma.ts";
import { simTest, type SimTestContext } from "../../testing/mod.ts";
import { battery, clearError } from "./battery.ts";

const BDF = "0000:00:04.0";
const machine = { devices: [{ model: "pasid-dma" as const, bdf: BDF }] };

function open(ctx: SimTestContext) {
  const dev = ctx.openDevice(BDF);
  let dma = PasidDmaDriver.open(dev, { timeoutMs: 100 });
  const src = dev.dma.allocate(65536);
  const dst = dev.dma.allocate(65536);
  src.bytes.fill(0x3c, 0, 4096);
  const faults = ctx.machine.inject(BDF);
  return {
    dev,
    get dma() {
      return dma;
    },
    src,
    dst,
    faults,
    reopen(): void {
      dma.close();
      dma = PasidDmaDriver.open(dev, { timeoutMs: 100 });
    },
    close(): void {
      dma.close();
      dev.close();
    },
  };
}

simTest(
  'pasid-dma × DMA fault on a data access: a "fault" result; the next copy works',
  async (ctx) => {
    const r = open(ctx);
    assert.equal((await r.dma.memcpy(r.src.iova, r.dst.iova, 4096)).status, "ok");
    r.faults.failDma({ iova: r.dst.iova + 8192n, length: 4096, times: 1 });
    const copy = r.dma.memcpy(r.src.iova, r.dst.iova + 8192n, 4096);
    if (ctx.iommu === "spapr") {
      await clearError(copy, /all-ones/); // the fault froze the PE
    } else {
      const result = await copy;
      assert.equal(result.status, "fault");
      assert.deepEqual(result.fault, {
        access: "write",
        address: r.dst.iova + 8192n,
        pasid: undefined,
      });
      assert.equal((await r.dma.memcpy(r.src.iova, r.dst.iova + 8192n, 4096)).status, "ok");
    }
    assert.equal(ctx.machine.faults()[0].address, r.dst.iova + 8192n);
    r.close();
  },
  battery({ machine }),
);

simTest(
  "pasid-dma × DMA fault on the descriptor fetch: halted, a clear error; reopen resumes",
  async (ctx) => {
    const r = open(ctx);
    r.faults.failDma({ next: 1 }); // the next DMA is the fetch of the next descriptor
    await clearError(
      r.dma.memcpy(r.src.iova, r.dst.iova, 64),
      ctx.iommu === "spapr" ? /all-ones/ : /engine halted/,
    );
    if (ctx.iommu !== "spapr") {
      r.reopen();
      assert.equal((await r.dma.memcpy(r.src.iova, r.dst.iova, 64)).status, "ok");
      assert.ok(r.dst.bytes.subarray(0, 64).every((b) => b === 0x3c));
    }
    r.close();
  },
  battery({ machine }),
);

simTest(
  "pasid-dma × hang: a clear timeout; the engine resumes when the device does",
  async (ctx) => {
    const r = open(ctx);
    r.faults.hang();
    await clearError(
      r.dma.memcpy(r.src.iova, r.dst.iova, 64),
      /no progress on descriptor .* 100 ms/,
    );
    r.faults.resume();
    assert.equal((await r.dma.memcpy(r.src.iova, r.dst.iova, 64)).status, "ok");
    r.close();
  },
  battery({ machine }),
);

simTest(
  "pasid-dma × lost and spurious interrupts: a polling driver is not affected",
  async (ctx) => {
    const r = open(ctx);
    r.faults.loseInterrupts();
    r.faults.spuriousInterrupt("msi");
    assert.equal((await r.dma.fill(r.dst.iova, 4096, 7)).status, "ok");
    r.close();
  },
  battery({ machine }),
);

simTest("pasid-dma × surprise removal: a clear error, a normal close", async (ctx) => {
  const r = open(ctx);
  r.faults.surpriseRemove();
  await clearError(r.dma.memcpy(r.src.iova, r.dst.iova, 64), /all-ones/);
  r.close();
}, battery({ machine }));

simTest("pasid-dma × EEH freeze (sPAPR): a clear error", async (ctx) => {
  const r = open(ctx);
  r.faults.freezeEeh();
  await clearError(r.dma.memcpy(r.src.iova, r.dst.iova, 64), /all-ones/);
  r.close();
}, battery({ machine, iommus: ["spapr"] }));
