/**
 * Memory the driver bench shares between the Deno driver, the C loop and the C device thread:
 *
 * - "BARs": a memfd mapped twice, once through {@link LinuxKernel.mmapDevice} (the very `Mmio`
 *   implementation a real BAR gets) and once by the C side for the device thread;
 * - "DMA memory": anonymous shared memory from {@link LinuxKernel.mmapAnonymous}, whose virtual
 *   address is used as the IOVA (an identity-mapped IOMMU), carved into rings and a packet pool
 *   at fixed offsets both sides use, so Deno and C run on the same rings in the same place.
 *
 * @module
 */

import { type DmaAllocator, type DmaBuffer, iova, type Mmio } from "../../mod.ts";
import { LinuxKernel } from "../../linux.ts";
import type { NativeBench } from "./native.ts";

const PAGE = 4096;

/** Round `n` up to a multiple of `a`. */
export function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

/** The shared memory of one bench: `ports` BARs and one DMA region. */
export class SharedMemory {
  /** The kernel the mappings came from. */
  readonly kernel: LinuxKernel;
  /** Each port's BAR as the driver sees it. */
  readonly bars: Mmio[];
  /** The BARs as the C side sees them (one mapping, `barSize` apart). */
  readonly barPointer: Deno.PointerObject;
  /** Bytes per BAR. */
  readonly barSize: number;
  /** The DMA region's start, for the C side. */
  readonly dmaPointer: Deno.PointerObject;
  readonly #native: NativeBench;
  readonly #dma: { address: bigint; bytes: Uint8Array; length: number };
  readonly #fd: number;

  /** Map `ports` BARs of `barSize` bytes and `dmaSize` bytes of DMA memory. */
  constructor(native: NativeBench, ports: number, barSize: number, dmaSize: number) {
    this.#native = native;
    this.kernel = LinuxKernel.open();
    this.barSize = barSize;
    const fd = native.bench_memfd(BigInt(ports * barSize));
    if (fd < 0) throw new Error("driver bench: memfd_create failed");
    this.#fd = fd;
    const p = native.bench_map(fd, BigInt(ports * barSize));
    if (p === null) throw new Error("driver bench: mmap of the BAR memfd failed");
    this.barPointer = p;
    this.bars = [];
    for (let i = 0; i < ports; i++) {
      const m = this.kernel.mmapDevice(fd, BigInt(i * barSize), barSize);
      if (typeof m === "number") throw new Error(`driver bench: mmap of BAR ${i}: errno ${-m}`);
      this.bars.push(m);
    }
    const dma = this.kernel.mmapAnonymous(alignUp(dmaSize, PAGE));
    if (typeof dma === "number") throw new Error(`driver bench: mmap of DMA memory: errno ${-dma}`);
    this.#dma = dma;
    this.dmaPointer = Deno.UnsafePointer.create(dma.address)!;
  }

  /** BAR `port` as the C side sees it. */
  barAt(port: number): Deno.PointerObject {
    return Deno.UnsafePointer.offset(this.barPointer, port * this.barSize)!;
  }

  /** The DMA region at `offset`, for the C side. */
  dmaAt(offset: number): Deno.PointerObject {
    return Deno.UnsafePointer.offset(this.dmaPointer, offset)!;
  }

  /** Zero every BAR register (a device reset). */
  resetBars(): void {
    const all = new Uint8Array(
      Deno.UnsafePointerView.getArrayBuffer(this.barPointer, this.bars.length * this.barSize),
    );
    all.fill(0);
  }

  /** `size` bytes of DMA memory at `offset`, as a driver's DMA allocation. */
  buffer(offset: number, size: number): DmaBuffer {
    const address = Number(this.#dma.address) + offset;
    return {
      iova: iova(BigInt(address)),
      iovaLow: address >>> 0,
      iovaHigh: Math.floor(address / 2 ** 32),
      vaddr: BigInt(address),
      bytes: this.#dma.bytes.subarray(offset, offset + size),
      size,
    };
  }

  /** An allocator that hands out the region at `offset` (for a {@link PacketPool}). */
  allocatorAt(offset: number): DmaAllocator {
    return {
      allocate: (size: number) => this.buffer(offset, size),
      free: () => {},
    };
  }

  /** Unmap everything. */
  close(): void {
    for (const bar of this.bars) this.kernel.munmap(bar);
    this.#native.bench_unmap(this.barPointer, BigInt(this.bars.length * this.barSize));
    this.kernel.close(this.#fd);
    this.kernel.munmap(this.#dma);
  }
}
