/**
 * The DmaPort: its number-address methods, and its translation cache checked against the plain
 * algorithm it replaced (translate every 4 KiB page, then copy). Two identical worlds run the same
 * seeded sequence of DMA, mapping changes, page-table pokes behind the IOMMU's back, IOTLB and
 * configuration invalidations, attaches, PASID attaches, TCE writes and EEH thaws; every DMA must
 * answer the same, move the same bytes, leave the same fault records and the same trace lines.
 */

import assert from "node:assert/strict";
import { VirtualClock } from "../../sim/clock.ts";
import { PhysicalMemory } from "../../sim/memory.ts";
import type { DmaAccess, IommuDomain, IommuModel } from "../../sim/iommu/model.ts";
import { VtdIommu } from "../../sim/iommu/vtd/vtd.ts";
import { SecondStageTable, VTD_PTE_ADDR_MASK } from "../../sim/iommu/vtd/vtd_pgtable.ts";
import { SmmuV3Iommu } from "../../sim/iommu/smmuv3/smmuv3.ts";
import {
  LPAE_DESC,
  lpaeDescAddress,
  lpaeIndex,
  lpaeStartLevel,
} from "../../sim/iommu/smmuv3/smmuv3_pgtable.ts";
import { STE, STE_CONFIG } from "../../sim/iommu/smmuv3/smmuv3_ste.ts";
import { setField } from "../../sim/iommu/reg_fields.ts";
import { VirtioIommu } from "../../sim/iommu/virtio_iommu/virtio_iommu.ts";
import { SpaprTceIommu } from "../../sim/iommu/spapr/spapr_tce.ts";
import { TCE_PCI_READ, TCE_PCI_WRITE } from "../../sim/iommu/spapr/spapr_tce_table.ts";
import { createDmaPort } from "../../sim/pci/dma_port.ts";
import { DMA_FAULT, type DmaPort, type PciConfig } from "../../sim/pci/device.ts";
import { Rng } from "../helpers/rng.ts";

const RID = 0x18;
const PAGE = 4096;
const IOVA = 0x100000;
const PAGES = 16;
const RAM_PAGES = 32;
const PASID = 5;

/** A config space with just the Command register (bus master bit 2). */
function commandRegister(): PciConfig & { master: boolean } {
  return {
    size: 256,
    master: true,
    read(offset: number) {
      return offset === 4 && this.master ? 0x6 : 0;
    },
    write() {},
  };
}

/** The algorithm the cache replaced: translate each page, copy through PhysicalMemory. */
function referencePort(
  iommu: IommuModel,
  memory: PhysicalMemory,
  config: PciConfig,
  trace: (l: string) => void,
): DmaPort {
  const log = (l: string) => trace(`dma 00:03.0: ${l}`);
  const transfer = (access: DmaAccess, iova: bigint, data: Uint8Array, pasid?: number) => {
    const what = `${access} iova=0x${iova.toString(16)} len=${data.length}`;
    if ((config.read(4, 2) & 4) === 0) {
      log(`${what} refused: bus master disabled (PCI_COMMAND.MASTER clear)`);
      return false;
    }
    let done = 0;
    while (done < data.length) {
      const at = iova + BigInt(done);
      const n = Math.min(PAGE - Number(at % BigInt(PAGE)), data.length - done);
      const r = iommu.translate(RID, pasid, at, access, n);
      if (!r.ok) {
        log(`${what} stopped after ${done} bytes: ${r.fault.message}`);
        return false;
      }
      const piece = data.subarray(done, done + n);
      if (!(access === "read" ? memory.read(r.phys, piece) : memory.write(r.phys, piece))) {
        log(`${what} stopped after ${done} bytes: physical 0x${r.phys.toString(16)} is not RAM`);
        return false;
      }
      done += n;
    }
    return true;
  };
  const small = (bytes: number, iova: number, pasid?: number) => {
    const b = new Uint8Array(4);
    if (!transfer("read", BigInt(iova), b.subarray(0, bytes), pasid)) return DMA_FAULT;
    return new DataView(b.buffer).getUint32(0, true) >>> 0;
  };
  const put = (bytes: number, iova: number, v: number, pasid?: number) => {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v >>> 0, true);
    return transfer("write", BigInt(iova), b.subarray(0, bytes), pasid);
  };
  return {
    read: (iova, dst, pasid) => transfer("read", iova, dst, pasid),
    write: (iova, src, pasid) => transfer("write", iova, src, pasid),
    readInto: (iova, dst, off, len, pasid) =>
      transfer("read", BigInt(iova), dst.subarray(off, off + len), pasid),
    writeFrom: (iova, src, off, len, pasid) =>
      transfer("write", BigInt(iova), src.subarray(off, off + len), pasid),
    read16: (iova, pasid) => {
      const v = small(2, iova, pasid);
      return v < 0 ? v : v & 0xffff;
    },
    read32: (iova, pasid) => small(4, iova, pasid),
    write16: (iova, v, pasid) => put(2, iova, v & 0xffff, pasid),
    write32: (iova, v, pasid) => put(4, iova, v, pasid),
  };
}

/** Address of the 4 KiB leaf entry of `iova` in a VT-d second-stage table at `root`. */
function vtdLeaf(memory: PhysicalMemory, root: number, levels: number, iova: bigint): number {
  let table = root;
  for (let l = levels; l > 1; l--) {
    const pte = memory.readU64(
      SecondStageTable.entryAddress(table, SecondStageTable.indexOf(iova, l)),
    )!;
    table = Number(pte & VTD_PTE_ADDR_MASK);
  }
  return SecondStageTable.entryAddress(table, SecondStageTable.indexOf(iova, 1));
}

/** One machine half: memory, an IOMMU, RAM with a distinct byte pattern per page, a port. */
interface World {
  memory: PhysicalMemory;
  iommu: IommuModel;
  config: ReturnType<typeof commandRegister>;
  ram: number;
  port: DmaPort;
  trace: string[];
  /** Model-specific operations, chosen by index with the shared generator. */
  ops: ((rng: Rng) => unknown)[];
  /** Whether DMA may carry a PASID. */
  pasids: boolean;
}

type Kind = "vtd" | "vtd-scalable" | "smmuv3" | "virtio-iommu" | "spapr";

function world(kind: Kind, reference: boolean): World {
  const clock = new VirtualClock();
  const memory = new PhysicalMemory(64 * 1024 * 1024);
  const trace: string[] = [];
  const config = commandRegister();
  const build = (iommu: IommuModel) => {
    const ram = memory.allocate(RAM_PAGES * PAGE)!;
    for (let i = 0; i < RAM_PAGES * PAGE; i++) ram.bytes[i] = (i >> 12) * 7 + (i & 0xff);
    const port = reference
      ? referencePort(iommu, memory, config, (l) => trace.push(l))
      : createDmaPort({ iommu, memory, requester: RID, config, trace: (l) => trace.push(l) });
    return { memory, iommu, config, ram: ram.base, port, trace, ops: [], pasids: false };
  };
  const physPage = (rng: Rng, w: World) => BigInt(w.ram + rng.int(0, RAM_PAGES) * PAGE);
  const prot = (rng: Rng) => rng.pick([{ read: true, write: true }, { read: true, write: false }]);
  const iovaOf = (i: number) => BigInt(IOVA + i * PAGE);
  /**
   * Map, unmap and attach through the kernel's interface, and (three times as often) redirect
   * or clear a 4 KiB leaf behind the IOMMU's back: `leaf` finds its entry, `addr` its address bits.
   */
  const pagingOps = <D extends IommuDomain>(
    w: World,
    domains: D[],
    leaf: ((d: D, iova: bigint) => number) | undefined,
    addr: bigint,
  ) => {
    const poke = (rng: Rng) => {
      const d = rng.pick(domains);
      const iova = iovaOf(rng.int(0, PAGES));
      if (!leaf || !d.lookup(iova)) return;
      const at = leaf(d, iova);
      const old = memory.readU64(at)!;
      memory.writeU64(at, rng.chance(0.2) ? 0n : (old & ~addr) | physPage(rng, w));
    };
    w.iommu.attach(RID, domains[0]);
    w.ops.push(
      (rng) => rng.pick(domains).map(iovaOf(rng.int(0, PAGES)), physPage(rng, w), 4096n, prot(rng)),
      (rng) => rng.pick(domains).unmap(iovaOf(rng.int(0, PAGES)), BigInt(PAGE * rng.int(1, 2))),
      (rng) => w.iommu.attach(RID, rng.chance(0.2) ? null : rng.pick(domains)),
    );
    if (leaf) w.ops.push(poke, poke, poke);
  };

  if (kind === "vtd" || kind === "vtd-scalable") {
    const iommu = new VtdIommu({
      memory,
      clock,
      iotlbEntries: 4, // evictions all the time
      scalableMode: kind === "vtd-scalable" ? {} : undefined,
    });
    const w: World = build(iommu);
    w.pasids = kind === "vtd-scalable";
    const domains = [iommu.allocDomain(), iommu.allocDomain()];
    pagingOps(
      w,
      domains,
      (d, iova) => vtdLeaf(memory, d.table.root, iommu.levels, iova),
      VTD_PTE_ADDR_MASK,
    );
    w.ops.push(
      () => iommu.iotlb.flushAll(),
      (rng) => iommu.iotlb.flushDomain(rng.pick(domains).id),
    );
    if (w.pasids) {
      w.ops.push((rng) =>
        iommu.attachPasid(RID, PASID, rng.chance(0.3) ? null : rng.pick(domains))
      );
    }
    return w;
  }
  if (kind === "smmuv3") {
    const smmu = new SmmuV3Iommu({ memory, clock, iotlbEntries: 4 });
    const w: World = build(smmu);
    const domains = [smmu.allocDomain(), smmu.allocDomain()];
    const leaf = (d: (typeof domains)[0], iova: bigint) => {
      let table = BigInt(d.table.root);
      for (let l = lpaeStartLevel(48); l < 3; l++) {
        table = memory.readU64(lpaeDescAddress(table, lpaeIndex(iova, l)))! & LPAE_DESC.ADDR_MASK;
      }
      return lpaeDescAddress(table, lpaeIndex(iova, 3));
    };
    pagingOps(w, domains, leaf, LPAE_DESC.ADDR_MASK);
    // Rewrite the stream's STE.Config behind the configuration cache (seen after CFGI_STE).
    const pokeSte = (rng: Rng) => {
      const at = smmu.streamTable.locate(RID);
      if (!("addr" in at)) return;
      const w0 = memory.readU64(at.addr)!;
      const config = rng.pick([STE_CONFIG.S1_TRANS, STE_CONFIG.BYPASS, STE_CONFIG.ABORT]);
      memory.writeU64(at.addr, setField(w0, STE.W0.CONFIG, config));
    };
    w.ops.push(
      () => smmu.iotlb.flushAll(),
      (rng) => smmu.iotlb.flushDomain(rng.pick(domains).tag),
      () => smmu.invalidateConfig(RID),
      () => smmu.invalidateConfig(RID),
      pokeSte,
    );
    return w;
  }
  if (kind === "virtio-iommu") {
    const viommu = new VirtioIommu({ clock });
    const w: World = build(viommu);
    pagingOps(w, [viommu.allocDomain(), viommu.allocDomain()], undefined, 0n);
    return w;
  }
  const phb = new SpaprTceIommu({ memory, clock, hostPageSize: 65536, peOf: () => 2 });
  const w: World = build(phb);
  const pe = phb.tableGroup(2);
  const table = pe.createTable(0, 12, 1n << 31n, 1)!;
  pe.setWindow(0, table);
  // Most TCEs valid, so the PE is not frozen all the time and the port has answers to keep.
  const rw = TCE_PCI_READ | TCE_PCI_WRITE;
  for (let i = -1; i <= PAGES; i++) {
    table.write(BigInt(IOVA / PAGE + i), physPage(new Rng(i), w) | rw);
  }
  const thaw = () => {
    pe.thawDma();
    pe.thawMmio();
  };
  w.ops.push(
    (rng) => {
      const bits = rng.pick([rw, rw, rw, TCE_PCI_READ, 0n]);
      table.write(BigInt(IOVA / PAGE + rng.int(-1, PAGES + 1)), bits && (physPage(rng, w) | bits));
    },
    thaw,
    thaw,
    thaw,
    (rng) => rng.chance(0.3) ? pe.unsetWindow(0) : pe.setWindow(0, table),
  );
  return w;
}

/** One DMA through a port, as comparable data. */
function dma(w: World, rng: Rng): unknown {
  const pasid = w.pasids && rng.chance(0.4) ? PASID : undefined;
  const iova = IOVA - PAGE + rng.int(0, (PAGES + 2) * PAGE);
  const p = w.port;
  switch (rng.int(0, 8)) {
    case 0: {
      const b = new Uint8Array(rng.int(1, 3 * PAGE));
      return [p.read(BigInt(iova), b, pasid), [...b]];
    }
    case 1:
      return p.write(BigInt(iova), rng.bytes(rng.int(1, 3 * PAGE)), pasid);
    case 2: {
      const b = new Uint8Array(64);
      const off = rng.int(0, 32);
      return [p.readInto(iova, b, off, rng.int(0, 32), pasid), [...b]];
    }
    case 3:
      return p.writeFrom(iova, rng.bytes(64), rng.int(0, 32), rng.int(0, 32), pasid);
    case 4:
      return p.read16(rng.chance(0.3) ? IOVA + PAGE - 1 : iova, pasid);
    case 5:
      return p.read32(rng.chance(0.3) ? IOVA + 2 * PAGE - 2 : iova, pasid);
    case 6:
      return p.write16(iova, rng.u32(), pasid);
    default:
      return p.write32(rng.chance(0.3) ? IOVA + 3 * PAGE - 3 : iova, rng.u32(), pasid);
  }
}

for (const kind of ["vtd", "vtd-scalable", "smmuv3", "virtio-iommu", "spapr"] as const) {
  Deno.test({
    name:
      `DmaPort cache on ${kind}: same answers, bytes, faults and trace as translating every page`,
    permissions: "none",
    fn() {
      const a = world(kind, false);
      const b = world(kind, true);
      const ra = new Rng(0x5eed);
      const rb = new Rng(0x5eed);
      for (let step = 0; step < 4000; step++) {
        const choice = ra.int(0, 100);
        assert.equal(rb.int(0, 100), choice);
        if (choice < 88) {
          assert.deepEqual(dma(a, ra), dma(b, rb), `step ${step}: DMA result`);
        } else if (choice < 99) {
          const i = ra.int(0, a.ops.length);
          assert.equal(rb.int(0, b.ops.length), i);
          a.ops[i](ra);
          b.ops[i](rb);
        } else {
          a.config.master = b.config.master = ra.chance(0.9);
          rb.chance(0.9);
        }
        assert.deepEqual(a.trace, b.trace, `step ${step}: trace`);
        assert.deepEqual(
          a.iommu.faults.map((f) => f.message),
          b.iommu.faults.map((f) => f.message),
          `step ${step}: fault records`,
        );
      }
      const bytes = (w: World) => {
        const out = new Uint8Array(RAM_PAGES * PAGE);
        assert.ok(w.memory.read(w.ram, out));
        return out;
      };
      assert.deepEqual(bytes(a), bytes(b), "RAM");
      assert.ok(a.iommu.faults.length > 10, "the sequence faulted now and then");
    },
  });
}

Deno.test({
  name: "DmaPort: number-address reads and writes, little-endian, across pages, faults as -1",
  permissions: "none",
  fn() {
    const clock = new VirtualClock();
    const memory = new PhysicalMemory(16 * 1024 * 1024);
    const iommu = new VtdIommu({ memory, clock });
    const config = commandRegister();
    const trace: string[] = [];
    const port = createDmaPort({
      iommu,
      memory,
      requester: RID,
      config,
      trace: (l) => trace.push(l),
    });
    const ram = memory.allocate(2 * PAGE)!;
    const d = iommu.allocDomain();
    iommu.attach(RID, d);
    assert.equal(
      d.map(BigInt(IOVA), BigInt(ram.base), BigInt(2 * PAGE), { read: true, write: true }),
      0,
    );

    assert.equal(port.write32(IOVA + 8, 0x11223344), true);
    assert.deepEqual([...ram.bytes.subarray(8, 12)], [0x44, 0x33, 0x22, 0x11]);
    assert.equal(port.read32(IOVA + 8), 0x11223344);
    assert.equal(port.read16(IOVA + 9), 0x2233);
    assert.equal(port.write16(IOVA + PAGE - 1, 0xbeef), true, "a u16 across two pages");
    assert.equal(ram.bytes[PAGE - 1], 0xef);
    assert.equal(ram.bytes[PAGE], 0xbe);
    assert.equal(port.read16(IOVA + PAGE - 1), 0xbeef);
    assert.equal(port.write32(IOVA + 0x10, 0xffff_ffff), true);
    assert.equal(port.read32(IOVA + 0x10), 0xffff_ffff, "unsigned");

    const src = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff);
    assert.equal(port.writeFrom(IOVA + PAGE - 100, src, 50, 200), true);
    const back = new Uint8Array(210);
    assert.equal(port.readInto(IOVA + PAGE - 100, back, 5, 200), true);
    assert.deepEqual([...back.subarray(5, 205)], [...src.subarray(50, 250)]);
    assert.equal(back[4], 0);

    // Past the mapping: the first page is written, then the fault stops it, recorded once.
    assert.equal(port.writeFrom(IOVA + 2 * PAGE - 4, src, 0, 8), false);
    assert.equal(port.read32(IOVA + 2 * PAGE), DMA_FAULT);
    assert.equal(iommu.faults.length, 2);
    assert.match(trace[0], /write iova=0x101ffc len=8 stopped after 4 bytes: DMAR: \[DMA Write/);
    assert.match(trace[1], /read iova=0x102000 len=4 stopped after 0 bytes: DMAR: \[DMA Read/);

    // Unmapping ends the cached translation at once.
    assert.equal(port.read32(IOVA), 0, "cached before");
    d.unmap(BigInt(IOVA), BigInt(PAGE));
    assert.equal(port.read32(IOVA), DMA_FAULT);
    assert.equal(iommu.faults.length, 3);

    config.master = false;
    assert.equal(port.read16(IOVA + PAGE), DMA_FAULT);
    assert.equal(iommu.faults.length, 3, "no request reached the IOMMU");
    assert.match(trace.at(-1)!, /read iova=0x101000 len=2 refused: bus master disabled/);
    config.master = true;

    assert.throws(() => port.read32(-4), RangeError);
    assert.throws(() => port.read16(2 ** 53), RangeError);
    assert.throws(() => port.readInto(IOVA, back, 200, 20), RangeError);
  },
});

Deno.test({
  name: "DmaPort cache: a stale IOTLB entry stays visible exactly until it is flushed or evicted",
  permissions: "none",
  fn() {
    const clock = new VirtualClock();
    const memory = new PhysicalMemory(16 * 1024 * 1024);
    const iommu = new VtdIommu({ memory, clock, iotlbEntries: 2 });
    const config = commandRegister();
    const port = createDmaPort({ iommu, memory, requester: RID, config });
    const ram = memory.allocate(8 * PAGE)!;
    for (let p = 0; p < 8; p++) ram.bytes[p * PAGE] = 0xa0 + p;
    const d = iommu.allocDomain();
    iommu.attach(RID, d);
    const rw = { read: true, write: true };
    for (let p = 0; p < 3; p++) {
      assert.equal(d.map(BigInt(IOVA + p * PAGE), BigInt(ram.base + p * PAGE), 4096n, rw), 0);
    }
    const redirect = (iova: number, page: number) => {
      const at = vtdLeaf(memory, d.table.root, iommu.levels, BigInt(iova));
      memory.writeU64(
        at,
        (memory.readU64(at)! & ~VTD_PTE_ADDR_MASK) | BigInt(ram.base + page * PAGE),
      );
    };
    const byte = (iova: number) => port.read16(iova) & 0xff;

    assert.equal(byte(IOVA), 0xa0);
    redirect(IOVA, 5);
    assert.equal(byte(IOVA), 0xa0, "the IOTLB still holds the old page");
    iommu.iotlb.flushDomain(d.id);
    assert.equal(byte(IOVA), 0xa5, "flushed: the walk finds the new page");

    redirect(IOVA, 6);
    assert.equal(byte(IOVA), 0xa5, "stale again");
    assert.equal(byte(IOVA + PAGE), 0xa1);
    assert.equal(byte(IOVA + 2 * PAGE), 0xa2, "a third page evicts the first (2 entries)");
    assert.equal(byte(IOVA), 0xa6, "evicted: the walk finds the new page");
  },
});

Deno.test({
  name:
    "DmaPort cache on sPAPR: a TCE update is seen at once, a TCE changed in memory after a kill",
  permissions: "none",
  fn() {
    const memory = new PhysicalMemory(16 * 1024 * 1024);
    const phb = new SpaprTceIommu({
      memory,
      clock: new VirtualClock(),
      hostPageSize: 65536,
      peOf: () => 2,
    });
    const port = createDmaPort({ iommu: phb, memory, requester: RID, config: commandRegister() });
    const ram = memory.allocate(4 * PAGE)!;
    for (let p = 0; p < 4; p++) ram.bytes[p * PAGE] = 0xb0 + p;
    const pe = phb.tableGroup(2);
    const table = pe.createTable(0, 12, 1n << 31n, 1)!;
    pe.setWindow(0, table);
    const rw = TCE_PCI_READ | TCE_PCI_WRITE;
    const index = BigInt(IOVA / PAGE);
    table.write(index, BigInt(ram.base) | rw);
    assert.equal(port.read16(IOVA) & 0xff, 0xb0);
    table.write(index, BigInt(ram.base + PAGE) | rw); // the kernel's update, then a TCE kill
    assert.equal(port.read16(IOVA) & 0xff, 0xb1);
    // Behind the table's back (the PHB's TCE cache keeps the old entry until the next kill).
    const entry = table.rootAddress + index * 8n;
    const be = new Uint8Array(8);
    new DataView(be.buffer).setBigUint64(0, BigInt(ram.base + 2 * PAGE) | rw, false);
    assert.ok(memory.write(entry, be));
    assert.equal(port.read16(IOVA) & 0xff, 0xb1);
    assert.equal(phb.translate(RID, undefined, BigInt(IOVA), "read", 2).ok, true);
    table.write(index + 1n, 0n); // any update kills the cache
    assert.equal(port.read16(IOVA) & 0xff, 0xb2);
    pe.unsetWindow(0);
    assert.equal(port.read16(IOVA), DMA_FAULT, "outside every window now");
    assert.match(phb.faults.at(-1)!.message, /outside every DMA window/);
  },
});
