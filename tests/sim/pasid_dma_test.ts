/**
 * The PASID DMA engine model on a small rig: physical memory, the real DMA port, and a fake IOMMU
 * that gives the requester id and every PASID its own linear windows, so the tests can see which
 * address space each access used. Config space and PASID capability, registers, descriptors in
 * the RID and PASID spaces, PASID disabled, faults, validation, ring wrap-around, halts, timing
 * and MSI. Then the driver on a simulated VT-d machine (no PASID support in the IOMMU): RID-space
 * copies, the PASID fault path, concurrency over a small ring, close.
 *
 * @module
 */

import assert from "node:assert/strict";
import { VfioError } from "../../core/errors.ts";
import { openPciDevice } from "../../core/pci_device.ts";
import {
  PasidDmaDriver,
  type PasidDmaOptions as PasidDmaDriverOptions,
} from "../../drivers/pasid_dma/pasid_dma.ts";
import { createMachine } from "../../sim/machine.ts";
import { VirtualClock } from "../../sim/clock.ts";
import type {
  DmaAccess,
  IommuDomain,
  IommuFacts,
  IommuFault,
  IommuModel,
  ReservedRegion,
  TranslateResult,
} from "../../sim/iommu/model.ts";
import { PhysicalMemory } from "../../sim/memory.ts";
import { capabilities, findCapability, msiState } from "../../sim/pci/config.ts";
import type { InterruptSink } from "../../sim/pci/device.ts";
import { createDmaPort } from "../../sim/pci/dma_port.ts";
import { PCI_PASID_CAP, PCI_PASID_CTRL } from "../../sim/pci/pci_regs.ts";
import {
  PASID_DMA_DSN_OFFSET,
  PASID_DMA_FETCH_NS,
  PASID_DMA_PASID_OFFSET,
  PasidDmaDevice,
  type PasidDmaOptions,
  PDMA_CONTROL_ENABLE,
  PDMA_CONTROL_INT_ENABLE,
  PDMA_CONTROL_RESET,
  PDMA_DESC,
  PDMA_DESC_SIZE,
  PDMA_ERR,
  PDMA_INT_COMPLETION,
  PDMA_INT_ERROR,
  PDMA_OP_FILL,
  PDMA_OP_MEMCPY,
  PDMA_REG,
  PDMA_STATUS,
  PDMA_STATUS_BUSY,
  PDMA_STATUS_ENABLED,
  PDMA_STATUS_HALTED,
} from "../../sim/pci/pasid_dma.ts";
import {
  PCI_BASE_ADDRESS_0,
  PCI_CAP_ID_EXP,
  PCI_CAP_ID_MSI,
  PCI_CLASS_PROG,
  PCI_COMMAND,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_MSI_ADDRESS_HI,
  PCI_MSI_ADDRESS_LO,
  PCI_MSI_DATA_64,
  PCI_MSI_FLAGS,
  PCI_VENDOR_ID,
} from "../../sim/pci/pci_regs.ts";

const RID = 0x0020; // 00:04.0
const PASID_VALID = 0x8000_0000;
const PAGE = 0x1000;
/** The requester-id window: ring at its start, RID data buffers after it. */
const RID_IOVA = 0x10000n;
const RING_IOVA = RID_IOVA;
const RID_DATA = RID_IOVA + 0x1000n;
/** Every PASID window starts at the same IOVA. */
const PASID_IOVA = 0x40000n;
/** Physical offsets (in the rig's RAM chunk) of each window. */
const PHYS = { rid: 0x0000, pasid1: 0x4000, pasid2: 0x8000, pasid3src: 0xc000, pasid3dst: 0xd000 };
const WINDOW = 0x4000;

/** One linear IOVA → physical window of an address space. */
interface Window {
  readonly iova: bigint;
  readonly phys: bigint;
  readonly size: bigint;
}

/** One request the IOMMU saw. */
interface Request {
  readonly pasid: number | undefined;
  readonly iova: bigint;
  readonly access: DmaAccess;
  readonly length: number;
}

/** A fake IOMMU: per-PASID (and RID) linear windows; everything else faults. */
class WindowIommu implements IommuModel {
  readonly facts: IommuFacts = {
    kind: "fake-windows",
    pgsizeBitmap: BigInt(PAGE),
    aperture: { start: 0n, end: (1n << 64n) - 1n },
    cacheCoherency: true,
    enforceCacheCoherency: true,
    dirtyTracking: false,
    msiIsolated: true,
    hwInfo: { type: 0, data: new Uint8Array() },
    maxPasidLog2: 20,
  };
  readonly faults: IommuFault[] = [];
  readonly requests: Request[] = [];
  readonly #spaces = new Map<number | "rid", Window[]>();

  constructor(readonly clock: VirtualClock) {}

  /** Map a window in `pasid`'s space (undefined: the requester id's). */
  window(pasid: number | undefined, w: Window): void {
    const key = pasid ?? "rid";
    this.#spaces.set(key, [...(this.#spaces.get(key) ?? []), w]);
  }
  reservedRegions(): ReservedRegion[] {
    return [];
  }
  allocDomain(): IommuDomain {
    throw new Error("not used");
  }
  freeDomain(): void {
    throw new Error("not used");
  }
  attach(): void {
    throw new Error("not used");
  }
  attachPasid(): number {
    throw new Error("not used");
  }
  translate(
    requester: number,
    pasid: number | undefined,
    iova: bigint,
    access: DmaAccess,
    length: number,
  ): TranslateResult {
    this.requests.push({ pasid, iova, access, length });
    const w = (this.#spaces.get(pasid ?? "rid") ?? []).find((x) =>
      iova >= x.iova && iova + BigInt(length) <= x.iova + x.size
    );
    if (requester === RID && w) return { ok: true, phys: w.phys + (iova - w.iova) };
    const fault: IommuFault = {
      format: "fake",
      requester,
      pasid,
      address: iova,
      access,
      reason: 1,
      reasonName: "no window",
      raw: new Uint8Array(),
      message: `fake: ${access} PASID ${pasid ?? "none"} at 0x${iova.toString(16)}`,
      timeNs: this.clock.nowNs,
    };
    this.faults.push(fault);
    return { ok: false, fault };
  }
  /** Requests that carried a PASID. */
  withPasid(): Request[] {
    return this.requests.filter((r) => r.pasid !== undefined);
  }
}

function rig(o: PasidDmaOptions = {}, ringSize = 8) {
  const clock = new VirtualClock();
  const memory = new PhysicalMemory();
  const ram = memory.allocate(0x10000)!;
  const iommu = new WindowIommu(clock);
  const base = BigInt(ram.base);
  const win = (pasid: number | undefined, iova: bigint, phys: number, size = WINDOW): void =>
    iommu.window(pasid, { iova, phys: base + BigInt(phys), size: BigInt(size) });
  win(undefined, RID_IOVA, PHYS.rid);
  win(1, PASID_IOVA, PHYS.pasid1);
  win(2, PASID_IOVA, PHYS.pasid2);
  win(3, PASID_IOVA, PHYS.pasid3src, PAGE); // one page: the next one faults
  win(3, PASID_IOVA + 0x40000n, PHYS.pasid3dst, 2 * PAGE);
  const dev = new PasidDmaDevice(o);
  const trace: string[] = [];
  const msis: number[] = [];
  const irq: InterruptSink = {
    msi: () => void msis.push(clock.nowNs),
    msix: () => assert.fail("no MSI-X"),
    intx: () => assert.fail("no INTx"),
  };
  const log = (line: string): void => void trace.push(line);
  const dma = createDmaPort({
    iommu,
    memory,
    requester: RID,
    config: dev.config,
    clock,
    trace: log,
  });
  dev.connect({ clock, dma, irq, random: () => 0.5, trace: log });
  dev.config.write(PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
  const r32 = (off: number): number => dev.mmioRead(0, off, 4) as number;
  const w32 = (off: number, v: number): void => dev.mmioWrite(0, off, 4, v);
  const view = new DataView(ram.bytes.buffer);
  /** Bytes of a window, by physical offset. */
  const at = (phys: number, n: number): Uint8Array => ram.bytes.subarray(phys, phys + n);
  const setPasid = (on: boolean): void =>
    dev.config.write(PASID_DMA_PASID_OFFSET + PCI_PASID_CTRL, 2, on ? 1 : 0);
  const enable = (control = PDMA_CONTROL_ENABLE): void => {
    w32(PDMA_REG.RING_BASE_LO, Number(RING_IOVA));
    w32(PDMA_REG.RING_BASE_HI, 0);
    w32(PDMA_REG.RING_SIZE, ringSize);
    w32(PDMA_REG.CONTROL, control);
  };
  let tail = 0;
  /** Write a descriptor at the tail slot (ring memory is at PHYS.rid) and ring the doorbell. */
  const submit = (d: {
    pasid?: number;
    flags?: number;
    opcode?: number;
    src?: bigint;
    dst: bigint;
    length: number;
  }): number => {
    const slot = tail;
    const off = PHYS.rid + slot * PDMA_DESC_SIZE;
    const flags = d.flags ?? (d.pasid === undefined ? 0 : PASID_VALID | d.pasid);
    view.setUint32(off + PDMA_DESC.FLAGS, flags >>> 0, true);
    view.setUint32(off + PDMA_DESC.OPCODE, d.opcode ?? PDMA_OP_MEMCPY, true);
    view.setBigUint64(off + PDMA_DESC.SRC, d.src ?? 0n, true);
    view.setBigUint64(off + PDMA_DESC.DST, d.dst, true);
    view.setUint32(off + PDMA_DESC.LENGTH, d.length, true);
    view.setUint32(off + PDMA_DESC.COMPLETION, 0, true);
    tail = (tail + 1) % ringSize;
    w32(PDMA_REG.TAIL, tail);
    return slot;
  };
  const completion = (slot: number): number =>
    view.getUint32(PHYS.rid + slot * PDMA_DESC_SIZE + PDMA_DESC.COMPLETION, true);
  const errorBlock = () => ({
    code: r32(PDMA_REG.ERROR),
    pasid: r32(PDMA_REG.ERROR_PASID),
    address: (BigInt(r32(PDMA_REG.ERROR_ADDR_HI)) << 32n) | BigInt(r32(PDMA_REG.ERROR_ADDR_LO)),
    desc: r32(PDMA_REG.ERROR_DESC),
  });
  return {
    clock,
    ram,
    iommu,
    dev,
    trace,
    msis,
    r32,
    w32,
    at,
    setPasid,
    enable,
    submit,
    completion,
    errorBlock,
    run: (): void => clock.advance(1_000_000),
  };
}

function pattern(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * seed + 3) & 0xff);
}

Deno.test({
  name: "pasid-dma: config space: 1234:11f0 class 0x088000, PCIe + MSI, DSN then PASID width 20",
  permissions: "none",
  fn() {
    const dev = new PasidDmaDevice();
    const cfg = dev.config;
    assert.equal(cfg.size, 4096);
    assert.equal(cfg.read(PCI_VENDOR_ID, 4), 0x11f01234);
    assert.equal(cfg.read(PCI_CLASS_PROG - 1, 4), 0x08800001);
    assert.deepEqual(capabilities(cfg).map((c) => c.id), [PCI_CAP_ID_EXP, PCI_CAP_ID_MSI]);
    assert.equal(msiState(cfg)?.vectorsCapable, 1);
    cfg.write(PCI_BASE_ADDRESS_0, 4, 0xffffffff);
    assert.equal(cfg.read(PCI_BASE_ADDRESS_0, 4), 0xfffff004); // 4 KiB, 64-bit memory
    assert.deepEqual(dev.bars, [{ index: 0, size: 4096, kind: "mem64", prefetchable: false }]);
    // Extended capabilities: DSN (0x0003 v1) at 0x100 → PASID (0x001b v1) at 0x10c → end.
    assert.equal(PASID_DMA_DSN_OFFSET, 0x100);
    assert.equal(cfg.read(0x100, 4), 0x10c1_0003);
    assert.equal(cfg.read(0x104, 4), 0x0000_0001);
    assert.equal(cfg.read(0x108, 4), 0x1234_11f0);
    assert.equal(PASID_DMA_PASID_OFFSET, 0x10c);
    assert.equal(cfg.read(0x10c, 4), 0x0001_001b);
    assert.equal(cfg.read(0x10c + PCI_PASID_CAP, 2), 20 << 8); // no Exec, no Priv
    const ctrl = 0x10c + PCI_PASID_CTRL;
    cfg.write(ctrl, 2, 0xffff);
    assert.equal(cfg.read(ctrl, 2), 1, "only PASID Enable is writable");
    assert.equal(dev.pasidEnabled, true);
    cfg.write(0x10c + PCI_PASID_CAP, 4, 0); // a dword write covering control clears Enable
    assert.equal(cfg.read(0x10c + PCI_PASID_CAP, 4), (20 << 8) >>> 0);
    cfg.write(ctrl, 1, 1);
    dev.reset();
    assert.equal(cfg.read(ctrl, 2), 0, "reset clears PASID Enable");
    assert.equal(cfg.read(0x10c, 4), 0x0001_001b, "the capability survives reset");
    assert.equal(new PasidDmaDevice({ pasidWidth: 8 }).config.read(0x110, 2), 8 << 8);
    assert.throws(() => new PasidDmaDevice({ pasidWidth: 21 }), RangeError);
  },
});

Deno.test({
  name: "pasid-dma: registers: ID, CAPS, 4-byte accesses only, ring checked at enable, BAD_TAIL",
  permissions: "none",
  fn() {
    const { dev, r32, w32, errorBlock } = rig();
    assert.equal(r32(PDMA_REG.ID), 0x11f00100);
    assert.equal(r32(PDMA_REG.CAPS), 12 | (20 << 8));
    assert.equal(dev.mmioRead(0, PDMA_REG.ID, 2), 0xffff);
    assert.equal(dev.mmioRead(0, PDMA_REG.ID, 8), 0xffff_ffff_ffff_ffffn);
    assert.equal(r32(0x02), 0xffffffff); // misaligned
    assert.equal(r32(0x100), 0); // no register
    assert.equal(dev.mmioRead(1, 0, 4), 0xffffffff);
    w32(PDMA_REG.RING_SIZE, 6); // not a power of two
    w32(PDMA_REG.CONTROL, PDMA_CONTROL_ENABLE);
    assert.equal(r32(PDMA_REG.STATUS), 0);
    assert.equal(r32(PDMA_REG.CONTROL), 0);
    assert.equal(errorBlock().code, PDMA_ERR.BAD_RING_CONFIG);
    assert.equal(r32(PDMA_REG.INT_STATUS), PDMA_INT_ERROR);
    w32(PDMA_REG.INT_ACK, PDMA_INT_ERROR);
    assert.equal(r32(PDMA_REG.INT_STATUS), 0);
    w32(PDMA_REG.ERROR, 0);
    assert.equal(errorBlock().code, 0);
    w32(PDMA_REG.RING_BASE_LO, 0x10010); // not 32-byte aligned
    w32(PDMA_REG.RING_SIZE, 8);
    w32(PDMA_REG.CONTROL, PDMA_CONTROL_ENABLE);
    assert.equal(errorBlock().code, PDMA_ERR.BAD_RING_CONFIG);
    assert.equal(errorBlock().address, 0x10010n);
    w32(PDMA_REG.RING_BASE_LO, 0x10000);
    w32(PDMA_REG.RING_BASE_HI, 0x1);
    w32(PDMA_REG.CONTROL, PDMA_CONTROL_ENABLE);
    assert.equal(r32(PDMA_REG.STATUS), PDMA_STATUS_ENABLED);
    w32(PDMA_REG.RING_BASE_HI, 0x2); // ignored while enabled
    w32(PDMA_REG.RING_SIZE, 16);
    assert.deepEqual([r32(PDMA_REG.RING_BASE_HI), r32(PDMA_REG.RING_SIZE)], [1, 8]);
    w32(PDMA_REG.TAIL, 8);
    assert.equal(r32(PDMA_REG.TAIL), 0);
    assert.equal(errorBlock().code, PDMA_ERR.BAD_TAIL);
    assert.equal(errorBlock().desc, 8);
    w32(PDMA_REG.CONTROL, PDMA_CONTROL_RESET);
    assert.deepEqual(
      [PDMA_REG.CONTROL, PDMA_REG.RING_BASE_HI, PDMA_REG.RING_SIZE, PDMA_REG.ERROR].map(r32),
      [0, 0, 0, 0],
    );
  },
});

Deno.test({
  name: "pasid-dma: two PASIDs reading the same IOVA see their own memory",
  permissions: "none",
  fn() {
    const { iommu, at, setPasid, enable, submit, completion, run } = rig();
    at(PHYS.pasid1, 256).set(pattern(256, 3));
    at(PHYS.pasid2, 256).set(pattern(256, 7));
    setPasid(true);
    enable();
    const dst = PASID_IOVA + 0x1000n;
    const a = submit({ pasid: 1, src: PASID_IOVA, dst, length: 256 });
    const b = submit({ pasid: 2, src: PASID_IOVA, dst, length: 256 });
    run();
    assert.deepEqual([completion(a), completion(b)], [PDMA_STATUS.SUCCESS, PDMA_STATUS.SUCCESS]);
    assert.deepEqual(at(PHYS.pasid1 + 0x1000, 256), pattern(256, 3));
    assert.deepEqual(at(PHYS.pasid2 + 0x1000, 256), pattern(256, 7));
    assert.deepEqual(iommu.withPasid().map((r) => [r.pasid, r.access, r.iova]), [
      [1, "read", PASID_IOVA],
      [1, "write", dst],
      [2, "read", PASID_IOVA],
      [2, "write", dst],
    ]);
    // Fetches and completions: requester-id space, in the ring.
    const ridOnly = iommu.requests.filter((r) => r.pasid === undefined);
    assert.ok(ridOnly.every((r) => r.iova >= RING_IOVA && r.iova < RING_IOVA + 64n));
    assert.equal(iommu.faults.length, 0);
  },
});

Deno.test({
  name: "pasid-dma: a descriptor without PASID uses the requester-id space (PASID on or off)",
  permissions: "none",
  fn() {
    const { iommu, at, setPasid, enable, submit, completion, run } = rig();
    at(PHYS.rid + 0x1000, 512).set(pattern(512, 5));
    enable();
    const a = submit({ src: RID_DATA, dst: RID_DATA + 0x1000n, length: 512 });
    run();
    setPasid(true); // takes effect for later descriptors; the engine need not restart
    const b = submit({ opcode: PDMA_OP_FILL, src: 0x1a5n, dst: RID_DATA + 0x2000n, length: 100 });
    run();
    assert.deepEqual([completion(a), completion(b)], [PDMA_STATUS.SUCCESS, PDMA_STATUS.SUCCESS]);
    assert.deepEqual(at(PHYS.rid + 0x2000, 512), pattern(512, 5));
    assert.ok(at(PHYS.rid + 0x3000, 100).every((x) => x === 0xa5), "fill uses the low byte");
    assert.equal(at(PHYS.rid + 0x3000 + 100, 1)[0], 0);
    assert.deepEqual(iommu.withPasid(), []);
    assert.ok(at(PHYS.pasid1, WINDOW).every((x) => x === 0), "PASID memory untouched");
  },
});

Deno.test({
  name: "pasid-dma: PASID-valid while PASID is disabled: PASID_DISABLED, no data access",
  permissions: "none",
  fn() {
    const { iommu, ram, r32, at, enable, submit, completion, errorBlock, run } = rig();
    at(PHYS.pasid1, 64).set(pattern(64, 9));
    enable();
    const slot = submit({ pasid: 1, src: PASID_IOVA, dst: PASID_IOVA + 0x100n, length: 64 });
    const before = ram.bytes.slice();
    run();
    assert.equal(completion(slot), PDMA_STATUS.PASID_DISABLED);
    const after = ram.bytes.slice();
    const completionByte = PHYS.rid + slot * PDMA_DESC_SIZE + PDMA_DESC.COMPLETION;
    after[completionByte] = before[completionByte];
    assert.deepEqual(after, before, "only the completion byte changed");
    assert.deepEqual(iommu.withPasid(), []);
    assert.deepEqual(iommu.requests.map((r) => r.access), ["read", "write"]); // fetch, completion
    assert.deepEqual(errorBlock(), {
      code: PDMA_STATUS.PASID_DISABLED,
      pasid: (PASID_VALID | 1) >>> 0,
      address: RING_IOVA + BigInt(slot * PDMA_DESC_SIZE),
      desc: slot,
    });
    assert.equal(r32(PDMA_REG.INT_STATUS), PDMA_INT_COMPLETION | PDMA_INT_ERROR);
    assert.equal(r32(PDMA_REG.HEAD), 1);
  },
});

Deno.test({
  name: "pasid-dma: a faulting page stops the descriptor; the error registers name PASID and page",
  permissions: "none",
  fn() {
    const { iommu, r32, at, setPasid, enable, submit, completion, errorBlock, run } = rig();
    at(PHYS.pasid3src, PAGE).set(pattern(PAGE, 11));
    setPasid(true);
    enable();
    const dst = PASID_IOVA + 0x40000n;
    const read = submit({ pasid: 3, src: PASID_IOVA, dst, length: 2 * PAGE });
    run();
    assert.equal(completion(read), PDMA_STATUS.READ_FAULT);
    assert.deepEqual(errorBlock(), {
      code: PDMA_STATUS.READ_FAULT,
      pasid: (PASID_VALID | 3) >>> 0,
      address: PASID_IOVA + BigInt(PAGE),
      desc: read,
    });
    assert.deepEqual(at(PHYS.pasid3dst, PAGE), pattern(PAGE, 11), "the first page was copied");
    assert.ok(at(PHYS.pasid3dst + PAGE, PAGE).every((x) => x === 0), "the second was not");
    assert.equal(iommu.faults.length, 1);
    assert.deepEqual(
      [iommu.faults[0].pasid, iommu.faults[0].address, iommu.faults[0].access],
      [3, PASID_IOVA + BigInt(PAGE), "read"],
    );
    // A fill running off the end of the destination window: WRITE_FAULT; the engine goes on.
    const write = submit({
      pasid: 3,
      opcode: PDMA_OP_FILL,
      src: 0x77n,
      dst: dst + 0x800n,
      length: 0x2000,
    });
    const next = submit({ pasid: 3, opcode: PDMA_OP_FILL, src: 0x66n, dst, length: 16 });
    run();
    assert.equal(completion(write), PDMA_STATUS.WRITE_FAULT);
    assert.equal(completion(next), PDMA_STATUS.SUCCESS);
    assert.equal(errorBlock().address, dst + 0x2000n);
    assert.equal(errorBlock().desc, write);
    assert.ok(at(PHYS.pasid3dst + 0x800, 0x1800).every((x) => x === 0x77));
    assert.equal(iommu.faults.length, 2);
    assert.equal(r32(PDMA_REG.COMPLETED), 3);
    assert.equal(r32(PDMA_REG.STATUS), PDMA_STATUS_ENABLED);
  },
});

Deno.test({
  name: "pasid-dma: bad opcode, length, flags and PASID width complete without data access",
  permissions: "none",
  fn() {
    const { iommu, setPasid, enable, submit, completion, run } = rig({ pasidWidth: 4 });
    setPasid(true);
    enable();
    const cases: [Parameters<typeof submit>[0], number][] = [
      [{ opcode: 9, dst: RID_DATA, length: 4 }, PDMA_STATUS.BAD_OPCODE],
      [{ dst: RID_DATA, length: 0x100001 }, PDMA_STATUS.BAD_LENGTH],
      [{ flags: 0x0010_0000, dst: RID_DATA, length: 4 }, PDMA_STATUS.BAD_FLAGS],
      [{ pasid: 16, dst: PASID_IOVA, length: 4 }, PDMA_STATUS.BAD_PASID],
      [{ pasid: 15, dst: PASID_IOVA, length: 0 }, PDMA_STATUS.SUCCESS],
    ];
    const slots = cases.map(([d]) => submit(d));
    run();
    assert.deepEqual(slots.map(completion), cases.map(([, s]) => s));
    assert.deepEqual(iommu.withPasid(), []);
  },
});

Deno.test({
  name: "pasid-dma: ring wrap-around over 50 descriptors in a 4-entry ring",
  permissions: "none",
  fn() {
    const { clock, r32, at, enable, submit, completion } = rig({}, 4);
    enable();
    const N = 50;
    const src = at(PHYS.rid + 0x1000, N);
    src.set(pattern(N, 13));
    const slots: number[] = [];
    for (let i = 0; i < N; i++) {
      // Keep one slot free: wait while three are pending.
      while ((r32(PDMA_REG.TAIL) + 1) % 4 === r32(PDMA_REG.HEAD)) clock.advance(100);
      slots.push(
        submit({ src: RID_DATA + BigInt(i), dst: RID_DATA + 0x1000n + BigInt(i), length: 1 }),
      );
      if (i % 7 === 0) clock.advance(1000);
    }
    clock.advance(1_000_000);
    assert.deepEqual(slots.slice(0, 6), [0, 1, 2, 3, 0, 1]);
    assert.ok(slots.every((s) => completion(s) === PDMA_STATUS.SUCCESS));
    assert.deepEqual(at(PHYS.rid + 0x2000, N), pattern(N, 13));
    assert.deepEqual([r32(PDMA_REG.COMPLETED), r32(PDMA_REG.HEAD)], [N, N % 4]);
    assert.equal(r32(PDMA_REG.STATUS), PDMA_STATUS_ENABLED);
  },
});

Deno.test({
  name: "pasid-dma: timing on the virtual clock, and one MSI per completion with INT_ENABLE",
  permissions: "none",
  fn() {
    const { clock, dev, msis, r32, w32, enable, submit, completion } = rig();
    const msi = findCapability(dev.config, PCI_CAP_ID_MSI)!;
    dev.config.write(msi + PCI_MSI_ADDRESS_LO, 4, 0xfee00000);
    dev.config.write(msi + PCI_MSI_ADDRESS_HI, 4, 0);
    dev.config.write(msi + PCI_MSI_DATA_64, 2, 0x4041);
    dev.config.write(msi + PCI_MSI_FLAGS, 2, 1);
    enable(PDMA_CONTROL_ENABLE | PDMA_CONTROL_INT_ENABLE);
    const a = submit({ opcode: PDMA_OP_FILL, dst: RID_DATA, length: 4000 });
    const b = submit({ opcode: PDMA_OP_FILL, dst: RID_DATA, length: 40 });
    assert.equal(r32(PDMA_REG.STATUS), PDMA_STATUS_ENABLED | PDMA_STATUS_BUSY);
    const first = PASID_DMA_FETCH_NS + 1000; // 4000 bytes at 0.25 ns
    clock.advance(first - 1);
    assert.equal(completion(a), 0);
    clock.advance(1);
    assert.equal(completion(a), PDMA_STATUS.SUCCESS);
    clock.advance(PASID_DMA_FETCH_NS + 10);
    assert.equal(completion(b), PDMA_STATUS.SUCCESS);
    assert.deepEqual(msis, [first, first + PASID_DMA_FETCH_NS + 10]);
    assert.equal(r32(PDMA_REG.INT_STATUS), PDMA_INT_COMPLETION);
    w32(PDMA_REG.INT_ACK, PDMA_INT_COMPLETION);
    assert.equal(r32(PDMA_REG.INT_STATUS), 0);
    assert.equal(r32(PDMA_REG.STATUS), PDMA_STATUS_ENABLED);
  },
});

Deno.test({
  name: "pasid-dma: an unreachable ring halts the engine; re-enabling recovers",
  permissions: "none",
  fn() {
    const { dev, iommu, r32, w32, enable, completion, errorBlock, run } = rig();
    w32(PDMA_REG.RING_BASE_LO, 0x900000); // not mapped in the RID space
    w32(PDMA_REG.RING_SIZE, 8);
    w32(PDMA_REG.CONTROL, PDMA_CONTROL_ENABLE);
    w32(PDMA_REG.TAIL, 1);
    run();
    assert.equal(r32(PDMA_REG.STATUS), PDMA_STATUS_ENABLED | PDMA_STATUS_HALTED);
    assert.deepEqual(errorBlock(), {
      code: PDMA_ERR.RING_FETCH_FAULT,
      pasid: 0,
      address: 0x900000n,
      desc: 0,
    });
    assert.equal(iommu.faults.length, 1);
    // Bus master off: the fetch is refused before the IOMMU; the engine halts all the same.
    w32(PDMA_REG.CONTROL, 0);
    enable();
    dev.config.write(PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
    w32(PDMA_REG.TAIL, 1);
    run();
    assert.equal(r32(PDMA_REG.STATUS) & PDMA_STATUS_HALTED, PDMA_STATUS_HALTED);
    assert.equal(iommu.faults.length, 1);
    assert.equal(completion(0), 0);
    w32(PDMA_REG.CONTROL, 0);
    dev.config.write(PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    enable();
    assert.equal(r32(PDMA_REG.STATUS), PDMA_STATUS_ENABLED);
    w32(PDMA_REG.TAIL, 1); // slot 0 holds zeros: opcode 0
    run();
    assert.equal(completion(0), PDMA_STATUS.BAD_OPCODE);
  },
});

// The driver on a simulated x86 machine with VT-d in legacy mode: no PASID support in the IOMMU.

const DMA_BDF = "0000:00:04.0";

function driverMachine(options: PasidDmaDriverOptions = {}) {
  const machine = createMachine({
    iommu: "vtd",
    devices: [{ model: "edu", bdf: "0000:00:02.0" }, { model: "pasid-dma", bdf: DMA_BDF }],
    strict: true,
  });
  const dev = openPciDevice(DMA_BDF, { kernel: machine.kernel });
  const driver = PasidDmaDriver.open(dev, options);
  return { machine, dev, driver };
}

Deno.test({
  name: "pasid-dma driver: open checks the ids, walks extended config space, enables PASID",
  permissions: "none",
  fn() {
    const { machine, dev, driver } = driverMachine();
    assert.deepEqual(driver.pasid, { offset: 0x10c, width: 20, enabled: true });
    assert.equal(dev.config.read16(0x10c + PCI_PASID_CTRL), 1);
    assert.equal(dev.config.command() & PCI_COMMAND_MASTER, PCI_COMMAND_MASTER);
    assert.equal(driver.ringEntries, 64);
    assert.equal(driver.maxTransfer, 1 << 20);
    assert.equal(dev.bar(0).read32(PDMA_REG.STATUS), PDMA_STATUS_ENABLED);
    assert.equal(dev.bar(0).read32(PDMA_REG.RING_SIZE), 64);
    const edu = openPciDevice("0000:00:02.0", { kernel: machine.kernel });
    assert.throws(
      () => PasidDmaDriver.open(edu),
      (e: unknown) =>
        e instanceof VfioError && /1234:11e8, not the PASID DMA engine/.test(e.message) &&
        e.hint !== undefined,
    );
    assert.throws(() => PasidDmaDriver.open(dev, { ringEntries: 6 }), /ringEntries 6/);
    edu.close();
    driver.close();
    dev.close();
  },
});

Deno.test({
  name: "pasid-dma driver: memcpy and fill between DMA buffers without a PASID",
  permissions: "none",
  async fn() {
    const { machine, dev, driver } = driverMachine();
    const a = dev.dma.allocate(4 * PAGE);
    const b = dev.dma.allocate(4 * PAGE);
    a.bytes.set(pattern(4 * PAGE, 17));
    const r = await driver.memcpy(a.iova + 100n, b.iova + 7n, 3 * PAGE);
    assert.deepEqual(r, { status: "ok", code: PDMA_STATUS.SUCCESS, reason: "SUCCESS" });
    assert.deepEqual(b.bytes.subarray(7, 7 + 3 * PAGE), a.bytes.subarray(100, 100 + 3 * PAGE));
    assert.equal(b.bytes[6], 0);
    const f = await driver.fill(b.iova, 50, 0xee);
    assert.equal(f.status, "ok");
    assert.ok(b.bytes.subarray(0, 50).every((x) => x === 0xee));
    assert.equal(b.bytes[50], a.bytes[100 + 50 - 7]);
    assert.deepEqual(driver.counters, { descriptors: 2, bytes: 3 * PAGE + 50, errors: 0 });
    assert.deepEqual(machine.faults(), []);
    driver.close();
    dev.close();
  },
});

Deno.test({
  name: "pasid-dma driver: memcpy with a PASID on an IOMMU without PASID support faults",
  permissions: "none",
  async fn() {
    const { machine, dev, driver } = driverMachine();
    const a = dev.dma.allocate(PAGE);
    const b = dev.dma.allocate(PAGE);
    a.bytes.fill(0x5a);
    const r = await driver.memcpy(a.iova, b.iova, 256, 5);
    assert.deepEqual(r, {
      status: "fault",
      code: PDMA_STATUS.READ_FAULT,
      reason: "READ_FAULT",
      fault: { access: "read", address: a.iova, pasid: 5 },
    });
    assert.ok(b.bytes.every((x) => x === 0), "nothing written");
    // VT-d in legacy mode (RTADDR.TTM = 0) refuses every request with a PASID: reason 0x31.
    const faults = machine.faults();
    assert.equal(faults.length, 1);
    assert.deepEqual(
      [faults[0].requester, faults[0].pasid, faults[0].address, faults[0].access],
      [0x0020, 5, a.iova, "read"],
    );
    assert.equal(faults[0].reason, 0x31);
    assert.match(
      faults[0].message,
      /^DMAR: \[DMA Read PASID 0x5\] Request device \[00:04\.0\] fault addr 0x[0-9a-f]+ \[fault reason 0x31\]/,
    );
    // The engine goes on: the requester-id space still works, and a fill in PASID 7 faults too.
    assert.equal((await driver.memcpy(a.iova, b.iova, 256)).status, "ok");
    const w = await driver.fill(b.iova, 16, 1, 7);
    assert.deepEqual(w.fault, { access: "write", address: b.iova, pasid: 7 });
    assert.equal(machine.faults().length, 2);
    assert.deepEqual(driver.counters, { descriptors: 3, bytes: 256, errors: 2 });
    driver.close();
    dev.close();
  },
});

Deno.test({
  name: "pasid-dma driver: PASID Enable cleared behind its back: pasid-disabled, no fault",
  permissions: "none",
  async fn() {
    const { machine, dev, driver } = driverMachine();
    dev.config.write16(0x10c + PCI_PASID_CTRL, 0);
    const a = dev.dma.allocate(PAGE);
    const r = await driver.memcpy(a.iova, a.iova + 2048n, 16, 1);
    assert.deepEqual(r, {
      status: "pasid-disabled",
      code: PDMA_STATUS.PASID_DISABLED,
      reason: "PASID_DISABLED",
    });
    assert.deepEqual(machine.faults(), []);
    driver.close();
    dev.close();
  },
});

Deno.test({
  name: "pasid-dma driver: bus mastering turned off halts the engine; waiting operations reject",
  permissions: "none",
  async fn() {
    const { machine, dev, driver } = driverMachine();
    const a = dev.dma.allocate(PAGE);
    dev.config.setCommand(dev.config.command() & ~PCI_COMMAND_MASTER);
    await assert.rejects(
      driver.memcpy(a.iova, a.iova + 2048n, 16),
      (e: unknown) => e instanceof VfioError && /halted with error 0x10/.test(e.message),
    );
    assert.deepEqual(machine.faults(), [], "the fetch never reached the IOMMU");
    driver.close();
    dev.close();
  },
});

Deno.test({
  name: "pasid-dma driver: an unmapped IOVA without PASID faults as a NO_PASID write",
  permissions: "none",
  async fn() {
    const { machine, dev, driver } = driverMachine();
    const a = dev.dma.allocate(PAGE);
    const unmapped = a.iova + 0x10_0000n;
    const r = await driver.memcpy(a.iova, unmapped, 64);
    assert.deepEqual(r.fault, { access: "write", address: unmapped, pasid: undefined });
    assert.equal(machine.faults().length, 1);
    assert.match(machine.faults()[0].message, /^DMAR: \[DMA Write NO_PASID\] .* \[00:04\.0\]/);
    driver.close();
    dev.close();
  },
});

Deno.test({
  name: "pasid-dma driver: 40 concurrent operations through a 4-entry ring",
  permissions: "none",
  async fn() {
    const { dev, driver } = driverMachine({ ringEntries: 4 });
    const a = dev.dma.allocate(PAGE);
    const b = dev.dma.allocate(PAGE);
    a.bytes.set(pattern(PAGE, 29));
    const n = 40;
    const size = 100;
    const results = await Promise.all(
      Array.from({ length: n }, (_, i) => {
        const off = BigInt(i * size);
        return driver.memcpy(a.iova + off, b.iova + off, size);
      }),
    );
    assert.ok(results.every((r) => r.status === "ok"));
    assert.deepEqual(b.bytes.subarray(0, n * size), a.bytes.subarray(0, n * size));
    assert.equal(dev.bar(0).read32(PDMA_REG.COMPLETED), n);
    assert.equal(dev.bar(0).read32(PDMA_REG.HEAD), n % 4);
    driver.close();
    dev.close();
  },
});

Deno.test({
  name:
    "pasid-dma driver: bad arguments reject; close rejects waiters, resets, clears PASID Enable",
  permissions: "none",
  async fn() {
    const { dev, driver } = driverMachine();
    const a = dev.dma.allocate(PAGE);
    await assert.rejects(driver.memcpy(a.iova, a.iova, (1 << 20) + 1), /length 1048577/);
    await assert.rejects(driver.memcpy(a.iova, a.iova, 4, 1 << 20), /PASID 1048576/);
    await assert.rejects(driver.fill(a.iova, 4, 256), /not a byte/);
    await assert.rejects(driver.memcpy(-1n, a.iova, 4), /not a 64-bit IOVA/);
    const buffers = dev.dma.buffers().length;
    const waiting = driver.memcpy(a.iova, a.iova + 2048n, 1024);
    driver.close();
    await assert.rejects(waiting, /closed while waiting for descriptor 0/);
    driver.close();
    assert.equal(dev.dma.buffers().length, buffers - 1, "ring freed");
    assert.equal(dev.config.read16(0x10c + PCI_PASID_CTRL), 0);
    assert.equal(dev.bar(0).read32(PDMA_REG.STATUS), 0);
    await assert.rejects(driver.memcpy(a.iova, a.iova, 4), /the driver is closed/);
    dev.close();
  },
});
