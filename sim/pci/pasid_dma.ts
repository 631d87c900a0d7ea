/**
 * A simulated PASID-capable DMA engine, in the spirit of Intel DSA: a ring of descriptors, each
 * naming the PASID (process address space) its data accesses are made in. It exists only in the
 * simulator (1234:11f0 is not a real or QEMU device); its registers are in ./pasid_dma_regs.ts,
 * and the driver's independent copy in drivers/pasid_dma/registers.ts cites this document.
 *
 * PCI:
 * - 1234:11f0 rev 0x01, class 0x088000 (system peripheral, other), PCI Express endpoint (4096-byte
 *   config space) with function-level reset, no INTx, one 64-bit MSI vector without masking,
 *   BAR0: 4 KiB 64-bit non-prefetchable memory.
 * - Extended capabilities: Device Serial Number at 0x100 ({@link PASID_DMA_SERIAL}), then PASID
 *   (id 0x001b, version 1) at 0x10c: Max PASID Width 20 (option `pasidWidth`), Execute and
 *   Privileged Mode unsupported; in PASID Control only PASID Enable (bit 0) is writable. Reset
 *   clears it. The default device has no further capability (PASID's next pointer is 0).
 * - With option `pri`: ATS (id 0x000f, version 1) at 0x114 — Invalidate Queue Depth 0 (32), Page
 *   Aligned Request set; ATS Control Enable (bit 15) and STU (bits 4:0) writable — then PRI (id
 *   0x0013, version 1) at 0x11c, the end of the list: Control Enable (bit 0) writable, Reset
 *   (bit 1) reads 0; Status Stopped (bit 8) is set exactly while Enable is clear, PRG Response
 *   PASID Required (bit 15) as the option says (default set); Outstanding Page Request Capacity
 *   32, Allocation read-write. The device issues no page requests of its own: the PRI capability
 *   is what lets the IOMMU driver enable I/O page faults for it (iommufd fault-capable HWPTs).
 *   Reset clears every enable.
 *
 * BAR0 (4-byte accesses only; other widths or misaligned accesses read all-ones and are dropped;
 * offsets without a register read 0):
 * | off  | name          | access | meaning                                                    |
 * |------|---------------|--------|------------------------------------------------------------|
 * | 0x00 | ID            | RO     | 0x11f00100: device id, version 1.0                         |
 * | 0x04 | CAPS          | RO     | bits 4:0 log2 max ring (12), bits 12:8 log2 max xfer (20)  |
 * | 0x08 | STATUS        | RO     | bit 0 ENABLED, bit 1 BUSY, bit 2 HALTED                    |
 * | 0x0c | CONTROL       | RW     | bit 0 ENABLE, bit 1 RESET (self-clearing), bit 2 INT_ENABLE |
 * | 0x10 | RING_BASE_LO  | RW     | ring bus address bits 31:0 (32-byte aligned)               |
 * | 0x14 | RING_BASE_HI  | RW     | ring bus address bits 63:32                                |
 * | 0x18 | RING_SIZE     | RW     | descriptors, a power of two 2 … 4096                       |
 * | 0x20 | HEAD          | RO     | next descriptor the device processes                       |
 * | 0x24 | TAIL          | RW     | doorbell: one past the last descriptor written             |
 * | 0x28 | COMPLETED     | RO     | descriptors completed since ENABLE                          |
 * | 0x30 | ERROR         | RO/W   | last error code; any write clears 0x30–0x40                |
 * | 0x34 | ERROR_PASID   | RO     | PASID of the failed request (descriptor dword-0 format)    |
 * | 0x38 | ERROR_ADDR_LO | RO     | address of the failed request, bits 31:0                   |
 * | 0x3c | ERROR_ADDR_HI | RO     | … bits 63:32                                               |
 * | 0x40 | ERROR_DESC    | RO     | ring index of the failed descriptor                        |
 * | 0x44 | INT_STATUS    | RO     | bit 0 COMPLETION, bit 1 ERROR                              |
 * | 0x48 | INT_ACK       | WO     | write 1s to clear INT_STATUS bits                          |
 *
 * Ring: RING_SIZE 32-byte little-endian descriptors at RING_BASE in the device's requester-id
 * address space: `{u32 flags (bit 31 PASID valid, bits 19:0 PASID, 30:20 reserved); u32 opcode
 * (1 memcpy, 2 fill); u64 src (fill: pattern byte in bits 7:0); u64 dst; u32 length; u32
 * completion}`. The ring is empty when HEAD = TAIL; the driver keeps one slot free. RING_BASE and
 * RING_SIZE are taken while ENABLE is clear and checked when it is set (bad: ERROR =
 * BAD_RING_CONFIG, ENABLE stays clear); enabling zeroes HEAD, TAIL and COMPLETED and clears
 * HALTED. Clearing ENABLE stops the engine; a descriptor in flight is dropped without completion.
 * A TAIL write outside the ring sets ERROR = BAD_TAIL and is ignored; TAIL writes while disabled
 * are ignored.
 *
 * Processing, one descriptor at a time on the virtual clock: the fetch takes `fetchNs` (200 ns),
 * then the transfer `ceil(length × nsPerByte)` (0.25 ns per byte). PasidDmaDescriptor fetches and
 * completion writes carry no PASID. The data accesses (source reads, destination writes) carry the
 * descriptor's PASID when it is PASID-valid and PASID Enable is set; a PASID-valid descriptor
 * while PASID Enable is clear completes with status PASID_DISABLED and no data access. Bad
 * opcode, length (over 1 MiB), PASID (beyond the width) or reserved flags also complete without
 * access. Data moves in requests that never cross a 4 KiB page on either side; a failed request
 * (IOMMU fault, bus master off) ends the descriptor with READ_FAULT or WRITE_FAULT, the earlier
 * pieces having been transferred; overlapping memcpy ranges copy forward piece by piece.
 *
 * Completion: the status byte (PDMA_STATUS: 1 success, ≥ 2 an error) is written into the
 * descriptor's completion dword, HEAD advances, COMPLETED counts, INT_STATUS.COMPLETION is set
 * (and INT_STATUS.ERROR with the ERROR block for a failure), and with CONTROL.INT_ENABLE and MSI
 * enabled, MSI vector 0 is sent for every completed descriptor. A descriptor fetch or completion
 * write that fails halts the engine (STATUS.HALTED, ERROR = RING_FETCH_FAULT or COMPLETION_FAULT,
 * ERROR_ADDR the descriptor's address); the device never hangs waiting for memory.
 *
 * @module
 */

import type { ScheduledEvent } from "../clock.ts";
import { msiState, type PciConfigSpace, sendMsi } from "./config.ts";
import type { BarDecl, DeviceHost, PciDeviceModel } from "./device.ts";
import { DMA_PAGE_SIZE } from "./dma_port.ts";
import {
  createPasidDmaConfig,
  decodePasidDmaDescriptor,
  PASID_DMA_BAR0_SIZE,
  type PasidDmaDescriptor,
  pasidEnabled,
  PDMA_CAPS_XFER_LOG2_SHIFT,
  PDMA_COMPLETION_STATUS_MASK,
  PDMA_CONTROL_ENABLE,
  PDMA_CONTROL_INT_ENABLE,
  PDMA_CONTROL_RESET,
  PDMA_DESC,
  PDMA_DESC_SIZE,
  PDMA_ERR,
  PDMA_FLAG_PASID_MASK,
  PDMA_FLAG_PASID_VALID,
  PDMA_FLAG_RESERVED,
  PDMA_ID_VALUE,
  PDMA_INT_COMPLETION,
  PDMA_INT_ERROR,
  PDMA_OP_FILL,
  PDMA_OP_MEMCPY,
  PDMA_REG,
  PDMA_RING_LOG2_MAX,
  PDMA_RING_MIN,
  PDMA_STATUS,
  PDMA_STATUS_BUSY,
  PDMA_STATUS_ENABLED,
  PDMA_STATUS_HALTED,
  PDMA_XFER_LOG2_MAX,
} from "./pasid_dma_regs.ts";
import { PCI_PASID_WIDTH_MAX } from "./pci_regs.ts";

export * from "./pasid_dma_regs.ts";

/** Default time to fetch and decode one descriptor. */
export const PASID_DMA_FETCH_NS = 200;
/** Default transfer time per byte (4 GB/s). */
export const PASID_DMA_NS_PER_BYTE = 0.25;

/** Options of {@link PasidDmaDevice}. */
export interface PasidDmaOptions {
  /** Max PASID Width in the PASID capability, 1–20 (default 20). */
  readonly pasidWidth?: number;
  /** Descriptor fetch time in ns (default {@link PASID_DMA_FETCH_NS}). */
  readonly fetchNs?: number;
  /** Transfer time per byte in ns (default {@link PASID_DMA_NS_PER_BYTE}). */
  readonly nsPerByte?: number;
  /**
   * ATS and PRI capabilities (default false); an object sets PRG Response PASID Required
   * (`pasidRequired`, default true).
   */
  readonly pri?: boolean | { readonly pasidRequired?: boolean };
}

/** The error block (ERROR … ERROR_DESC). */
interface ErrorBlock {
  code: number;
  pasid: number;
  address: bigint;
  desc: number;
}

const U32N = 0xffff_ffffn;
const HI_SHIFT = 32n;
const BYTE = 0xff;
const REG_WIDTH = 4;
const NO_ERROR: Readonly<ErrorBlock> = { code: 0, pasid: 0, address: 0n, desc: 0 };
const MAX_TRANSFER = 2 ** PDMA_XFER_LOG2_MAX;
const MAX_RING = 2 ** PDMA_RING_LOG2_MAX;

/** The simulated PASID DMA engine (see the module doc). */
export class PasidDmaDevice implements PciDeviceModel {
  /** Model name. */
  readonly model = "pasid-dma";
  /** Config space (PCIe, 4096 bytes). */
  readonly config: PciConfigSpace;
  /** BAR0 only. */
  readonly bars: readonly BarDecl[] = [
    { index: 0, size: PASID_DMA_BAR0_SIZE, kind: "mem64", prefetchable: false },
  ];
  /** Function-level reset is implemented. */
  readonly resetWorks = true;
  readonly #pasidWidth: number;
  readonly #fetchNs: number;
  readonly #nsPerByte: number;
  #host: DeviceHost | undefined;
  #control = 0;
  #ringBase = 0n;
  #ringSize = 0;
  #head = 0;
  #tail = 0;
  #completed = 0;
  #halted = false;
  #error: ErrorBlock = { ...NO_ERROR };
  #intStatus = 0;
  #timer: ScheduledEvent | undefined;
  /** The descriptor whose data transfer is scheduled (fetched, not completed). */
  #inFlight: PasidDmaDescriptor | undefined;

  /** A powered-on engine, disabled. */
  constructor(o: PasidDmaOptions = {}) {
    this.#pasidWidth = o.pasidWidth ?? PCI_PASID_WIDTH_MAX;
    const w = this.#pasidWidth;
    if (!Number.isInteger(w) || w < 1 || w > PCI_PASID_WIDTH_MAX) {
      throw new RangeError(`pasid-dma: PASID width ${this.#pasidWidth} is not 1–20`);
    }
    this.#fetchNs = o.fetchNs ?? PASID_DMA_FETCH_NS;
    this.#nsPerByte = o.nsPerByte ?? PASID_DMA_NS_PER_BYTE;
    const pri = o.pri === undefined || o.pri === false
      ? undefined
      : { pasidRequired: o.pri === true || (o.pri.pasidRequired ?? true) };
    this.config = createPasidDmaConfig(this.bars[0], w, pri);
  }

  /** PASID Enable in the PASID capability's control register. */
  get pasidEnabled(): boolean {
    return pasidEnabled(this.config);
  }

  /**
   * The descriptor tagged with `pasid` in flight — fetched, its transfer not yet done — if any
   * (what a PASID teardown's drain waits for; descriptors still in the ring are not issued yet).
   */
  pasidRequestsInFlight(pasid: number): readonly PasidDmaDescriptor[] {
    const d = this.#inFlight;
    const tagged = d !== undefined && (d.flags & PDMA_FLAG_PASID_VALID) !== 0 &&
      (d.flags & PDMA_FLAG_PASID_MASK) === pasid;
    return tagged ? [d] : [];
  }

  /** Plug into the machine. */
  connect(host: DeviceHost): void {
    this.#host = host;
  }

  /** A 4-byte register read (see the module doc). */
  mmioRead(bar: number, offset: number, size: 1 | 2 | 4 | 8): number | bigint {
    if (!validAccess(bar, offset, size)) return size === 8 ? (1n << 64n) - 1n : 2 ** (8 * size) - 1;
    return this.#read(offset) >>> 0;
  }

  /** A 4-byte register write (see the module doc). */
  mmioWrite(bar: number, offset: number, size: 1 | 2 | 4 | 8, value: number | bigint): void {
    if (!validAccess(bar, offset, size)) return;
    this.#write(offset, Number(BigInt(value) & U32N));
  }

  /** Power-on state: engine registers, timers and config space (PASID disabled). */
  reset(): void {
    this.#resetEngine();
    this.config.reset();
  }

  #read(offset: number): number {
    switch (offset) {
      case PDMA_REG.ID:
        return PDMA_ID_VALUE;
      case PDMA_REG.CAPS:
        return PDMA_RING_LOG2_MAX | (PDMA_XFER_LOG2_MAX << PDMA_CAPS_XFER_LOG2_SHIFT);
      case PDMA_REG.STATUS:
        return this.#status();
      case PDMA_REG.CONTROL:
        return this.#control;
      case PDMA_REG.RING_BASE_LO:
        return Number(this.#ringBase & U32N);
      case PDMA_REG.RING_BASE_HI:
        return Number(this.#ringBase >> HI_SHIFT);
      case PDMA_REG.RING_SIZE:
        return this.#ringSize;
      case PDMA_REG.HEAD:
        return this.#head;
      case PDMA_REG.TAIL:
        return this.#tail;
      case PDMA_REG.COMPLETED:
        return this.#completed;
      case PDMA_REG.ERROR:
        return this.#error.code;
      case PDMA_REG.ERROR_PASID:
        return this.#error.pasid;
      case PDMA_REG.ERROR_ADDR_LO:
        return Number(this.#error.address & U32N);
      case PDMA_REG.ERROR_ADDR_HI:
        return Number(this.#error.address >> HI_SHIFT);
      case PDMA_REG.ERROR_DESC:
        return this.#error.desc;
      case PDMA_REG.INT_STATUS:
        return this.#intStatus;
      default:
        return 0;
    }
  }

  #write(offset: number, v: number): void {
    const enabled = (this.#control & PDMA_CONTROL_ENABLE) !== 0;
    switch (offset) {
      case PDMA_REG.CONTROL:
        this.#controlWrite(v);
        break;
      case PDMA_REG.RING_BASE_LO:
        if (!enabled) this.#ringBase = (this.#ringBase & ~U32N) | BigInt(v);
        break;
      case PDMA_REG.RING_BASE_HI:
        if (!enabled) this.#ringBase = (BigInt(v) << HI_SHIFT) | (this.#ringBase & U32N);
        break;
      case PDMA_REG.RING_SIZE:
        if (!enabled) this.#ringSize = v;
        break;
      case PDMA_REG.TAIL:
        if (!enabled) break;
        if (v >= this.#ringSize) {
          this.#recordError({ code: PDMA_ERR.BAD_TAIL, pasid: 0, address: 0n, desc: v });
          break;
        }
        this.#tail = v;
        this.#kick();
        break;
      case PDMA_REG.ERROR:
        this.#error = { ...NO_ERROR };
        break;
      case PDMA_REG.INT_ACK:
        this.#intStatus &= ~v;
        break;
    }
  }

  #status(): number {
    const enabled = (this.#control & PDMA_CONTROL_ENABLE) !== 0;
    let s = enabled ? PDMA_STATUS_ENABLED : 0;
    if (enabled && !this.#halted && (this.#timer !== undefined || this.#head !== this.#tail)) {
      s |= PDMA_STATUS_BUSY;
    }
    if (this.#halted) s |= PDMA_STATUS_HALTED;
    return s;
  }

  #controlWrite(v: number): void {
    if (v & PDMA_CONTROL_RESET) {
      this.#resetEngine();
      this.#trace("engine reset");
      return;
    }
    const wasEnabled = (this.#control & PDMA_CONTROL_ENABLE) !== 0;
    const enable = (v & PDMA_CONTROL_ENABLE) !== 0;
    this.#control = v & (PDMA_CONTROL_ENABLE | PDMA_CONTROL_INT_ENABLE);
    if (enable && !wasEnabled) {
      const size = this.#ringSize;
      const sizeOk = size >= PDMA_RING_MIN && size <= MAX_RING && (size & (size - 1)) === 0;
      if (!sizeOk || this.#ringBase % BigInt(PDMA_DESC_SIZE) !== 0n) {
        this.#control &= ~PDMA_CONTROL_ENABLE;
        this.#recordError({
          code: PDMA_ERR.BAD_RING_CONFIG,
          pasid: 0,
          address: this.#ringBase,
          desc: 0,
        });
        this.#trace(`bad ring: base 0x${this.#ringBase.toString(16)} size ${size}`);
        return;
      }
      this.#head = this.#tail = this.#completed = 0;
      this.#halted = false;
      this.#trace(`enabled: ring 0x${this.#ringBase.toString(16)} × ${size}`);
    } else if (!enable && wasEnabled) {
      this.#timer?.cancel();
      this.#timer = undefined;
      this.#inFlight = undefined;
      this.#trace("disabled");
    }
  }

  #resetEngine(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#inFlight = undefined;
    this.#control =
      this.#ringSize =
      this.#head =
      this.#tail =
      this.#completed =
        0;
    this.#intStatus = 0;
    this.#ringBase = 0n;
    this.#halted = false;
    this.#error = { ...NO_ERROR };
  }

  /** Start processing when enabled, idle and something is pending. */
  #kick(): void {
    if (!(this.#control & PDMA_CONTROL_ENABLE) || this.#halted || this.#timer !== undefined) return;
    if (this.#head === this.#tail) return;
    this.#timer = this.#need().clock.schedule(this.#fetchNs, () => this.#fetch());
  }

  #fetch(): void {
    this.#timer = undefined;
    const index = this.#head;
    const address = this.#ringBase + BigInt(index * PDMA_DESC_SIZE);
    const raw = new Uint8Array(PDMA_DESC_SIZE);
    if (!this.#need().dma.read(address, raw)) {
      this.#halt(PDMA_ERR.RING_FETCH_FAULT, index, address);
      return;
    }
    const d = decodePasidDmaDescriptor(raw, index, address);
    const early = this.#check(d);
    if (early !== undefined) {
      this.#complete(d, early, undefined);
      return;
    }
    const delay = Math.ceil(d.length * this.#nsPerByte);
    this.#inFlight = d;
    this.#timer = this.#need().clock.schedule(delay, () => {
      this.#timer = undefined;
      this.#inFlight = undefined;
      const r = this.#transfer(d);
      this.#complete(d, r.status, r.address);
    });
  }

  /** A status for a descriptor that completes without data access, or undefined to run it. */
  #check(d: PasidDmaDescriptor): number | undefined {
    if (d.flags & PDMA_FLAG_RESERVED) return PDMA_STATUS.BAD_FLAGS;
    if (d.opcode !== PDMA_OP_MEMCPY && d.opcode !== PDMA_OP_FILL) return PDMA_STATUS.BAD_OPCODE;
    if (d.length > MAX_TRANSFER) return PDMA_STATUS.BAD_LENGTH;
    if (d.flags & PDMA_FLAG_PASID_VALID) {
      if (!this.pasidEnabled) return PDMA_STATUS.PASID_DISABLED;
      if ((d.flags & PDMA_FLAG_PASID_MASK) >= 2 ** this.#pasidWidth) return PDMA_STATUS.BAD_PASID;
    }
    return d.length === 0 ? PDMA_STATUS.SUCCESS : undefined;
  }

  /** Move the data in requests within one 4 KiB page on each side. */
  #transfer(d: PasidDmaDescriptor): { status: number; address?: bigint } {
    const dma = this.#need().dma;
    const pasid = d.flags & PDMA_FLAG_PASID_VALID ? d.flags & PDMA_FLAG_PASID_MASK : undefined;
    const page = BigInt(DMA_PAGE_SIZE);
    const piece = new Uint8Array(Math.min(DMA_PAGE_SIZE, d.length));
    if (d.opcode === PDMA_OP_FILL) piece.fill(Number(d.src & BigInt(BYTE)));
    for (let done = 0; done < d.length;) {
      const dst = d.dst + BigInt(done);
      let n = Math.min(d.length - done, Number(page - dst % page));
      if (d.opcode === PDMA_OP_MEMCPY) {
        const src = d.src + BigInt(done);
        n = Math.min(n, Number(page - src % page));
        if (!dma.read(src, piece.subarray(0, n), pasid)) {
          return { status: PDMA_STATUS.READ_FAULT, address: src };
        }
      }
      if (!dma.write(dst, piece.subarray(0, n), pasid)) {
        return { status: PDMA_STATUS.WRITE_FAULT, address: dst };
      }
      done += n;
    }
    return { status: PDMA_STATUS.SUCCESS };
  }

  /** Write the completion, advance HEAD, interrupt, go on. `errorAddress` for a failure. */
  #complete(d: PasidDmaDescriptor, status: number, errorAddress: bigint | undefined): void {
    const record = new Uint8Array(REG_WIDTH);
    record[0] = status & PDMA_COMPLETION_STATUS_MASK;
    const at = d.address + BigInt(PDMA_DESC.COMPLETION);
    if (!this.#need().dma.write(at, record)) {
      this.#halt(PDMA_ERR.COMPLETION_FAULT, d.index, at);
      return;
    }
    let cause = PDMA_INT_COMPLETION;
    if (status !== PDMA_STATUS.SUCCESS) {
      const pasid = d.flags & (PDMA_FLAG_PASID_VALID | PDMA_FLAG_PASID_MASK);
      this.#recordError({ code: status, pasid, address: errorAddress ?? d.address, desc: d.index });
      cause |= PDMA_INT_ERROR;
      this.#trace(
        `descriptor ${d.index}: status 0x${status.toString(16)} at 0x${
          (errorAddress ?? d.address).toString(16)
        }${
          pasid & PDMA_FLAG_PASID_VALID
            ? ` PASID 0x${(d.flags & PDMA_FLAG_PASID_MASK).toString(16)}`
            : ""
        }`,
      );
    }
    this.#head = (this.#head + 1) % this.#ringSize;
    this.#completed = (this.#completed + 1) >>> 0;
    this.#interrupt(cause);
    this.#kick();
  }

  #halt(code: number, index: number, address: bigint): void {
    this.#halted = true;
    this.#recordError({ code, pasid: 0, address, desc: index });
    this.#interrupt(PDMA_INT_ERROR);
    this.#trace(`halted: error 0x${code.toString(16)} at 0x${address.toString(16)}`);
  }

  #recordError(e: ErrorBlock): void {
    this.#error = { ...e, pasid: e.pasid >>> 0 };
    this.#intStatus |= PDMA_INT_ERROR;
  }

  #interrupt(cause: number): void {
    this.#intStatus |= cause;
    if (!(this.#control & PDMA_CONTROL_INT_ENABLE)) return;
    if (!msiState(this.config)?.enabled) {
      this.#trace("interrupt wanted but MSI is disabled");
      return;
    }
    const outcome = sendMsi(this.config, this.#need().irq, 0);
    if (outcome !== "sent") this.#trace(`MSI not sent: ${outcome}`);
  }

  #need(): DeviceHost {
    if (!this.#host) throw new Error("pasid-dma: device used before connect()");
    return this.#host;
  }

  #trace(line: string): void {
    this.#host?.trace(`pasid-dma: ${line}`);
  }
}

function validAccess(bar: number, offset: number, size: number): boolean {
  return bar === 0 && size === REG_WIDTH && Number.isInteger(offset) && offset >= 0 &&
    offset + size <= PASID_DMA_BAR0_SIZE && offset % size === 0;
}
