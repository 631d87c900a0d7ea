/**
 * QEMU's "edu" educational PCI device, modelled from its register spec (QEMU docs/specs/edu.rst)
 * and its behaviour in hw/misc/edu.c, independently of the driver's drivers/edu/registers.ts.
 *
 * - PCI: 1234:11e8 rev 0x10, class 0x00ff ("unclassified"), conventional (256-byte config
 *   space), INTA, one 64-bit MSI vector without per-vector masking at 0x40, BAR0 1 MiB mem32.
 *   No function reset (VFIO reports no RESET flag for it).
 * - BAR0: offsets below 0x80 take 4-byte accesses only, 0x80 and up 4 or 8; other widths and
 *   unaligned accesses are invalid (reads all-ones, writes dropped). Unimplemented offsets read
 *   all-ones. A 4-byte write to a DMA register stores the zero-extended value.
 * - Factorial: writing 0x08 while not computing sets status bit 0; after
 *   {@link EDU_FACTORIAL_DELAY_NS} the register holds n! modulo 2^32, the bit clears, and
 *   interrupt 0x1 is raised when status bit 7 is set.
 * - DMA: the command write (with bit 0) arms a {@link EDU_DMA_DELAY_NS} (100 ms) timer; the
 *   registers are frozen while bit 0 is set. The bus address is masked with the DMA mask (28 bits
 *   by default), as edu_clamp_addr does (traced). A DMA fault is invisible to the device: it
 *   completes anyway (vm-lab.md step 2).
 * - Range check: the transfer must lie in the 4 KiB buffer at 0x40000. QEMU 7.2 checks it with
 *   an off-by-one (`end < 0x41000` and `count > 0`), so a 4096-byte transfer — or an empty one —
 *   calls hw_error and aborts the whole VM ("EDU: DMA range 0x40000-0x40fff out of bounds").
 *   The simulator cannot abort; instead the device refuses the transfer (no memory is touched),
 *   traces the QEMU message loudly, records it in {@link EduDevice.hwErrors}, and then completes
 *   as usual (command bit 0 clears, interrupt 0x100 if requested) so a waiting driver wakes up and
 *   sees wrong data. Option `dmaRangeCheck: "fixed"` uses later QEMU's corrected check instead.
 * - Reset: QEMU's edu has no reset handler (registers survive a system reset); this model's
 *   {@link EduDevice.reset} returns everything to power-on state, as the PciDeviceModel contract
 *   asks.
 *
 * @module
 */

import type { ScheduledEvent } from "../clock.ts";
import { IntxPin, msiState, PciConfigSpace, sendMsi } from "./config.ts";
import type { BarDecl, DeviceHost, PciDeviceModel } from "./device.ts";
import { PCI_INTERRUPT_PIN_INTA } from "./pci_regs.ts";

/** PCI vendor id (QEMU, `PCI_VENDOR_ID_QEMU`). */
export const EDU_VENDOR_ID = 0x1234;
/** PCI device id. */
export const EDU_DEVICE_ID = 0x11e8;
/** Revision id. */
export const EDU_REVISION = 0x10;
/** Class code: base 0x00, subclass 0xff (QEMU `PCI_CLASS_OTHERS` as a 16-bit class id 0x00ff). */
export const EDU_CLASS_CODE = 0x00ff00;
/** BAR0 size ("PCI Region 0: I/O memory, 1 MB in size"). */
export const EDU_BAR0_SIZE = 0x100000;

/** Register offsets in BAR0 ("MMIO area spec"). */
export const EDU_REG = {
  ID: 0x00,
  LIVENESS: 0x04,
  FACTORIAL: 0x08,
  STATUS: 0x20,
  IRQ_STATUS: 0x24,
  IRQ_RAISE: 0x60,
  IRQ_ACK: 0x64,
  DMA_SRC: 0x80,
  DMA_DST: 0x88,
  DMA_COUNT: 0x90,
  DMA_CMD: 0x98,
} as const;
/** Identification register value: major 1, minor 0, 0xed. */
export const EDU_ID_VALUE = 0x010000ed;
/** Offsets from here accept 8-byte accesses as well as 4-byte ones. */
export const EDU_WIDE_REGS_START = 0x80;
/** Status: computing factorial (RO). */
export const EDU_STATUS_COMPUTING = 0x01;
/** Status: raise interrupt 0x1 after a factorial. */
export const EDU_STATUS_IRQFACT = 0x80;
/** Interrupt status value of a finished factorial. */
export const EDU_IRQ_FACTORIAL = 0x001;
/** Interrupt status value of a finished DMA. */
export const EDU_IRQ_DMA = 0x100;
/** DMA command: start / running. */
export const EDU_DMA_CMD_RUN = 0x1;
/** DMA command: direction, 0 = RAM → edu, 1 = edu → RAM. */
export const EDU_DMA_CMD_TO_RAM = 0x2;
/** DMA command: raise interrupt 0x100 when done. */
export const EDU_DMA_CMD_IRQ = 0x4;
/** The device's DMA buffer address in its own space ("DMA controller"). */
export const EDU_DMA_BUFFER = 0x40000n;
/** The device's DMA buffer size. */
export const EDU_DMA_BUFFER_SIZE = 4096;
/** Default DMA mask: 28 bits ("Command line switches"). */
export const EDU_DMA_MASK_DEFAULT = (1n << 28n) - 1n;
/** The DMA timer: edu.c fires 100 ms of virtual time after the command write. */
export const EDU_DMA_DELAY_NS = 100_000_000;
/** Time the factorial "thread" takes in the simulator. */
export const EDU_FACTORIAL_DELAY_NS = 10_000;
/** n! ≡ 0 (mod 2^32) for every n ≥ 34 (34! holds 2^32): no need to loop billions of times. */
const FACTORIAL_ZERO_FROM = 34;
const U32 = 0xffff_ffffn;
const U64 = 0xffff_ffff_ffff_ffffn;

/** Which DMA range check to reproduce. */
export type EduRangeCheck = "qemu-7.2" | "fixed";

/** Options of {@link EduDevice}. */
export interface EduOptions {
  /** DMA mask (QEMU `dma_mask` property); default 28 bits. */
  readonly dmaMask?: bigint;
  /** Delay from the command write to the transfer; default {@link EDU_DMA_DELAY_NS}. */
  readonly dmaDelayNs?: number;
  /** Factorial compute time; default {@link EDU_FACTORIAL_DELAY_NS}. */
  readonly factorialDelayNs?: number;
  /** Range check; default "qemu-7.2" (the off-by-one of the QEMU in the VM bench). */
  readonly dmaRangeCheck?: EduRangeCheck;
}

/** The simulated edu device. */
export class EduDevice implements PciDeviceModel {
  /** Model name. */
  readonly model = "edu";
  /** Config space. */
  readonly config: PciConfigSpace;
  /** BAR0 only. */
  readonly bars: readonly BarDecl[] = [
    { index: 0, size: EDU_BAR0_SIZE, kind: "mem32", prefetchable: false },
  ];
  /** edu has neither FLR nor a PM reset. */
  readonly resetWorks = false;
  /** Conditions on which QEMU would have aborted the VM (hw_error), oldest first. */
  readonly hwErrors: string[] = [];
  readonly #intx: IntxPin;
  readonly #dmaMask: bigint;
  readonly #dmaDelay: number;
  readonly #factDelay: number;
  readonly #rangeCheck: EduRangeCheck;
  #host: DeviceHost | undefined;
  #liveness = 0;
  #fact = 0;
  #status = 0;
  #irqStatus = 0;
  #dma = { src: 0n, dst: 0n, cnt: 0n, cmd: 0n };
  #buffer = new Uint8Array(EDU_DMA_BUFFER_SIZE);
  #dmaTimer: ScheduledEvent | undefined;
  #factTimer: ScheduledEvent | undefined;

  /** A powered-on edu. */
  constructor(o: EduOptions = {}) {
    this.#dmaMask = o.dmaMask ?? EDU_DMA_MASK_DEFAULT;
    this.#dmaDelay = o.dmaDelayNs ?? EDU_DMA_DELAY_NS;
    this.#factDelay = o.factorialDelayNs ?? EDU_FACTORIAL_DELAY_NS;
    this.#rangeCheck = o.dmaRangeCheck ?? "qemu-7.2";
    this.config = new PciConfigSpace({
      vendorId: EDU_VENDOR_ID,
      deviceId: EDU_DEVICE_ID,
      revision: EDU_REVISION,
      classCode: EDU_CLASS_CODE,
      interruptPin: PCI_INTERRUPT_PIN_INTA,
    });
    this.config.addBar(this.bars[0]);
    this.config.addMsi({ vectors: 1, address64: true, perVectorMask: false });
    this.#intx = new IntxPin(this.config);
  }

  /** The 4 KiB DMA buffer (a view, for tests and traces). */
  get buffer(): Uint8Array {
    return this.#buffer;
  }

  /** Plug into the machine. */
  connect(host: DeviceHost): void {
    this.#host = host;
    this.#intx.connect(host.irq);
  }

  /** A register read (see the module notes for widths). */
  mmioRead(bar: number, offset: number, size: 1 | 2 | 4 | 8): number | bigint {
    const ones = size === 8 ? U64 : (1n << BigInt(8 * size)) - 1n;
    const out = (v: bigint): number | bigint => size === 8 ? v & U64 : Number(v & ones);
    if (!this.#validAccess(bar, offset, size)) return out(ones);
    let v = U64;
    switch (offset) {
      case EDU_REG.ID:
        v = BigInt(EDU_ID_VALUE);
        break;
      case EDU_REG.LIVENESS:
        v = BigInt(this.#liveness);
        break;
      case EDU_REG.FACTORIAL:
        v = BigInt(this.#fact);
        break;
      case EDU_REG.STATUS:
        v = BigInt(this.#status);
        break;
      case EDU_REG.IRQ_STATUS:
        v = BigInt(this.#irqStatus);
        break;
      case EDU_REG.DMA_SRC:
        v = this.#dma.src;
        break;
      case EDU_REG.DMA_DST:
        v = this.#dma.dst;
        break;
      case EDU_REG.DMA_COUNT:
        v = this.#dma.cnt;
        break;
      case EDU_REG.DMA_CMD:
        v = this.#dma.cmd;
        break;
    }
    return out(v);
  }

  /** A register write (see the module notes for widths). */
  mmioWrite(bar: number, offset: number, size: 1 | 2 | 4 | 8, value: number | bigint): void {
    if (!this.#validAccess(bar, offset, size)) return;
    const v = BigInt.asUintN(8 * size, BigInt(value));
    const v32 = Number(v & U32);
    const running = (this.#dma.cmd & BigInt(EDU_DMA_CMD_RUN)) !== 0n;
    switch (offset) {
      case EDU_REG.LIVENESS:
        this.#liveness = ~v32 >>> 0;
        break;
      case EDU_REG.FACTORIAL:
        this.#startFactorial(v32);
        break;
      case EDU_REG.STATUS:
        this.#status = v32 & EDU_STATUS_IRQFACT
          ? this.#status | EDU_STATUS_IRQFACT
          : this.#status & ~EDU_STATUS_IRQFACT;
        break;
      case EDU_REG.IRQ_RAISE:
        this.#raise(v32);
        break;
      case EDU_REG.IRQ_ACK:
        this.#lower(v32);
        break;
      case EDU_REG.DMA_SRC:
        if (!running) this.#dma.src = v;
        break;
      case EDU_REG.DMA_DST:
        if (!running) this.#dma.dst = v;
        break;
      case EDU_REG.DMA_COUNT:
        if (!running) this.#dma.cnt = v;
        break;
      case EDU_REG.DMA_CMD:
        if ((v & BigInt(EDU_DMA_CMD_RUN)) === 0n || running) break;
        this.#dma.cmd = v;
        this.#dmaTimer?.cancel();
        this.#dmaTimer = this.#need().clock.schedule(this.#dmaDelay, () => this.#dmaFire());
        break;
    }
  }

  /** Power-on state: registers, buffer, timers, config space, INTx. */
  reset(): void {
    this.#dmaTimer?.cancel();
    this.#factTimer?.cancel();
    this.#dmaTimer = this.#factTimer = undefined;
    this.#liveness =
      this.#fact =
      this.#status =
      this.#irqStatus =
        0;
    this.#dma = { src: 0n, dst: 0n, cnt: 0n, cmd: 0n };
    this.#buffer.fill(0);
    this.config.reset();
    this.#intx.reset();
  }

  #validAccess(bar: number, offset: number, size: number): boolean {
    if (bar !== 0 || !Number.isInteger(offset) || offset < 0) return false;
    if (offset + size > EDU_BAR0_SIZE || offset % size !== 0) return false;
    return offset < EDU_WIDE_REGS_START ? size === 4 : size === 4 || size === 8;
  }

  #need(): DeviceHost {
    if (!this.#host) throw new Error("edu: MMIO before connect()");
    return this.#host;
  }

  #startFactorial(n: number): void {
    if (this.#status & EDU_STATUS_COMPUTING) return;
    this.#fact = n;
    this.#status |= EDU_STATUS_COMPUTING;
    this.#factTimer = this.#need().clock.schedule(this.#factDelay, () => {
      this.#factTimer = undefined;
      this.#fact = factorialU32(this.#fact);
      this.#status &= ~EDU_STATUS_COMPUTING;
      if (this.#status & EDU_STATUS_IRQFACT) this.#raise(EDU_IRQ_FACTORIAL);
    });
  }

  #raise(value: number): void {
    this.#irqStatus = (this.#irqStatus | value) >>> 0;
    if (this.#irqStatus === 0) return;
    if (msiState(this.config)?.enabled) {
      const outcome = sendMsi(this.config, this.#need().irq, 0);
      if (outcome !== "sent") this.#trace(`MSI not sent: ${outcome}`);
    } else {
      this.#intx.set(true);
    }
  }

  #lower(value: number): void {
    this.#irqStatus = (this.#irqStatus & ~value) >>> 0;
    if (this.#irqStatus === 0 && !msiState(this.config)?.enabled) this.#intx.set(false);
  }

  #dmaFire(): void {
    this.#dmaTimer = undefined;
    const { src, dst, cnt, cmd } = this.#dma;
    if ((cmd & BigInt(EDU_DMA_CMD_RUN)) === 0n) return;
    const toRam = (cmd & BigInt(EDU_DMA_CMD_TO_RAM)) !== 0n;
    const local = toRam ? src : dst;
    if (this.#inBuffer(local, cnt)) {
      const off = Number(local - EDU_DMA_BUFFER);
      const data = this.#buffer.subarray(off, off + Number(cnt));
      const dma = this.#need().dma;
      const bus = this.#clamp(toRam ? dst : src);
      const ok = toRam ? dma.write(bus, data) : dma.read(bus, data);
      this.#trace(
        `DMA ${toRam ? "edu->RAM" : "RAM->edu"} ${toRam ? "dst" : "src"}=0x${bus.toString(16)} ` +
          `buffer+0x${off.toString(16)} count=${cnt}${ok ? "" : " (failed; edu cannot tell)"}`,
      );
    }
    this.#dma.cmd &= ~BigInt(EDU_DMA_CMD_RUN);
    if (cmd & BigInt(EDU_DMA_CMD_IRQ)) this.#raise(EDU_IRQ_DMA);
  }

  /** edu_check_range: true when `[addr, addr + count)` may use the buffer. */
  #inBuffer(addr: bigint, count: bigint): boolean {
    const end = (addr + count) & U64;
    const bufEnd = EDU_DMA_BUFFER + BigInt(EDU_DMA_BUFFER_SIZE);
    const ok = this.#rangeCheck === "qemu-7.2"
      ? addr >= EDU_DMA_BUFFER && addr < bufEnd && end > addr && end >= EDU_DMA_BUFFER &&
        end < bufEnd
      : end >= addr && addr >= EDU_DMA_BUFFER && end <= bufEnd;
    if (ok) return true;
    const hex16 = (n: bigint): string => `0x${(n & U64).toString(16).padStart(16, "0")}`;
    const msg = `EDU: DMA range ${hex16(addr)}-${hex16(end - 1n)} out of bounds ` +
      `(${hex16(EDU_DMA_BUFFER)}-${hex16(bufEnd - 1n)})!`;
    const note = this.#rangeCheck === "qemu-7.2"
      ? " QEMU 7.2 aborts the VM here (hw_error); the simulated edu refuses the transfer"
      : " the simulated edu refuses the transfer";
    this.hwErrors.push(msg);
    this.#trace(`*** ${msg}${note} ***`);
    return false;
  }

  /** edu_clamp_addr. */
  #clamp(addr: bigint): bigint {
    const res = addr & this.#dmaMask;
    if (res !== addr) {
      this.#trace(`EDU: clamping DMA 0x${addr.toString(16)} to 0x${res.toString(16)}!`);
    }
    return res;
  }

  #trace(line: string): void {
    this.#host?.trace(`edu: ${line}`);
  }
}

/** n! modulo 2^32, as edu's factorial thread computes it in a u32. */
export function factorialU32(n: number): number {
  if (n >= FACTORIAL_ZERO_FROM) return 0;
  let r = 1;
  for (let i = n; i > 0; i--) r = Math.imul(r, i) >>> 0;
  return r;
}
