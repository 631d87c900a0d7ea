/**
 * A driver for the simulated PASID DMA engine (sim/pci/pasid_dma.ts): a descriptor ring in DMA
 * memory, memcpy and fill descriptors that name the PASID (process address space) their data
 * accesses are made in, completion by polling each descriptor's status byte. Several operations
 * may be in flight at once; when the ring is full, callers wait for a free slot.
 *
 * Addresses given to {@link PasidDmaDriver.memcpy} and {@link PasidDmaDriver.fill} are IOVAs in
 * the address space of the given PASID, or of the device's requester id when no PASID is given.
 * Errors the device reports (an IOMMU fault, PASID not enabled, …) come back as a
 * {@link PasidDmaResult}; VfioError is thrown only for bad arguments, a device that does not
 * answer, or a halted engine.
 *
 * With the proposed PASID allocator (core/pasid.ts, not Linux ABI) the driver can take its PASIDs
 * from a {@link PasidSpace} ({@link PasidDmaDriver.usePasid}): it binds them and, when the kernel
 * tears one down, stops using it — the stop notice is picked up while it waits for the device and
 * before each submission; operations tagged with a stopped PASID then reject, while those already
 * on the ring complete with whatever the device reports.
 *
 * @example
 * ```ts
 * using dev = openPciDevice("0000:00:04.0", { kernel });
 * const dma = PasidDmaDriver.open(dev);
 * const a = dev.dma.allocate(4096), b = dev.dma.allocate(4096);
 * const r = await dma.memcpy(a.iova, b.iova, 4096); // { status: "ok", … }
 * const p = await dma.memcpy(0x1000n, 0x2000n, 64, 5); // in PASID 5's address space
 * dma.close();
 * ```
 *
 * @module
 */

import { type Mmio, MMIO_ALL_ONES } from "../../ffi/kernel.ts";
import type { PciDevice } from "../../core/pci_device.ts";
import type { DmaBuffer } from "../../core/dma_space.ts";
import { VfioError } from "../../core/errors.ts";
import type { Pasid, PasidBinding, PasidSpace } from "../../core/pasid.ts";
import {
  PCI_DEVICE_ID,
  PCI_EXT_CAP_ID_PASID,
  PCI_PASID_CTRL,
  PCI_PASID_CTRL_ENABLE,
  PCI_VENDOR_ID,
} from "../../core/config_space.ts";
import {
  PASID_DMA_BAR,
  PASID_DMA_DEVICE_ID,
  PASID_DMA_VENDOR_ID,
  PDMA_CAPS_RING_LOG2,
  PDMA_CAPS_XFER_LOG2,
  PDMA_CAPS_XFER_LOG2_SHIFT,
  PDMA_COMPLETION_STATUS,
  PDMA_CONTROL_ENABLE,
  PDMA_CONTROL_RESET,
  PDMA_CS_BAD_FLAGS,
  PDMA_CS_BAD_LENGTH,
  PDMA_CS_BAD_OPCODE,
  PDMA_CS_BAD_PASID,
  PDMA_CS_NONE,
  PDMA_CS_PASID_DISABLED,
  PDMA_CS_READ_FAULT,
  PDMA_CS_SUCCESS,
  PDMA_CS_WRITE_FAULT,
  PDMA_DESC_COMPLETION,
  PDMA_DESC_DST,
  PDMA_DESC_FLAGS,
  PDMA_DESC_LENGTH,
  PDMA_DESC_OPCODE,
  PDMA_DESC_SIZE,
  PDMA_DESC_SRC,
  PDMA_FLAG_PASID_MASK,
  PDMA_FLAG_PASID_VALID,
  PDMA_ID_DEVICE_SHIFT,
  PDMA_OP_FILL,
  PDMA_OP_MEMCPY,
  PDMA_REG_CAPS,
  PDMA_REG_CONTROL,
  PDMA_REG_ERROR,
  PDMA_REG_ERROR_ADDR_HI,
  PDMA_REG_ERROR_ADDR_LO,
  PDMA_REG_ERROR_DESC,
  PDMA_REG_ERROR_PASID,
  PDMA_REG_ID,
  PDMA_REG_RING_BASE_HI,
  PDMA_REG_RING_BASE_LO,
  PDMA_REG_RING_SIZE,
  PDMA_REG_STATUS,
  PDMA_REG_TAIL,
  PDMA_RING_MIN,
  PDMA_STATUS_ENABLED,
  PDMA_STATUS_HALTED,
} from "./registers.ts";

/**
 * How an operation ended: "ok"; "fault" when a data access failed (the IOMMU refused it, or bus
 * mastering is off); "pasid-disabled" when a PASID was given but PASID Enable is clear; "invalid"
 * when the device rejected the descriptor (opcode, length, PASID width, flags).
 */
export type PasidDmaStatus = "ok" | "fault" | "pasid-disabled" | "invalid";

/** Where a failed data access went. */
export interface PasidDmaFault {
  /** The source read or the destination write failed. */
  readonly access: "read" | "write";
  /** The IOVA of the failed request (start of its 4 KiB piece); undefined when not known. */
  readonly address: bigint | undefined;
  /** The PASID the failed request carried, undefined for none. */
  readonly pasid: number | undefined;
}

/** The device's verdict on one operation. */
export interface PasidDmaResult {
  /** Summary (see {@link PasidDmaStatus}). */
  readonly status: PasidDmaStatus;
  /** The completion status byte the device wrote. */
  readonly code: number;
  /** Its name in the device's specification, e.g. "READ_FAULT". */
  readonly reason: string;
  /** For "fault": which access failed, where, and in which PASID. */
  readonly fault?: PasidDmaFault;
}

/** Options of {@link PasidDmaDriver.open}. */
export interface PasidDmaOptions {
  /** Descriptors in the ring: a power of two, 2 up to the device's limit (default 64). */
  ringEntries?: number;
  /** Give up waiting for the device after this many milliseconds (default 5000). */
  timeoutMs?: number;
  /** Milliseconds between completion polls (default 1). */
  pollIntervalMs?: number;
}

/** The PASID capability as the driver found it. */
export interface PasidCapabilityInfo {
  /** Offset of the capability in config space. */
  readonly offset: number;
  /** Max PASID Width: PASIDs are 0 … 2^width − 1. */
  readonly width: number;
  /** PASID Enable reads back set (false when the platform drops the write). */
  readonly enabled: boolean;
}

/** What the driver has done so far. */
export interface PasidDmaCounters {
  /** Descriptors completed (any status). */
  descriptors: number;
  /** Bytes moved by descriptors that completed successfully. */
  bytes: number;
  /** Descriptors that completed with an error status. */
  errors: number;
}

const DEFAULT_RING_ENTRIES = 64;
const DEFAULT_TIMEOUT_MS = 5000;
const DEFAULT_POLL_MS = 1;
const BYTE_MAX = 0xff;
const U64_MAX = (1n << 64n) - 1n;
const PASID_FIELD_WIDTH = 20;
const HI_SHIFT = 32n;
/** Names of the completion status codes (the device specification's PDMA_STATUS names). */
const CS_NAMES: Readonly<Record<number, string>> = {
  [PDMA_CS_SUCCESS]: "SUCCESS",
  [PDMA_CS_BAD_OPCODE]: "BAD_OPCODE",
  [PDMA_CS_BAD_LENGTH]: "BAD_LENGTH",
  [PDMA_CS_PASID_DISABLED]: "PASID_DISABLED",
  [PDMA_CS_BAD_PASID]: "BAD_PASID",
  [PDMA_CS_BAD_FLAGS]: "BAD_FLAGS",
  [PDMA_CS_READ_FAULT]: "READ_FAULT",
  [PDMA_CS_WRITE_FAULT]: "WRITE_FAULT",
};

/** The PASID DMA engine driver. */
export class PasidDmaDriver {
  /** Counters of completed work. */
  readonly counters: PasidDmaCounters = { descriptors: 0, bytes: 0, errors: 0 };
  /** The PASID capability, or undefined when config space shows none. */
  readonly pasid: PasidCapabilityInfo | undefined;
  /** Largest length of one operation, from the CAPS register. */
  readonly maxTransfer: number;
  /** Descriptors in the ring. */
  readonly ringEntries: number;
  readonly #dev: PciDevice;
  readonly #regs: Mmio;
  readonly #ring: DmaBuffer;
  readonly #view: DataView;
  readonly #timeoutMs: number;
  readonly #pollMs: number;
  readonly #busy = new Set<number>();
  readonly #spaces = new Set<PasidSpace>();
  readonly #bindings = new Set<PasidBinding>();
  readonly #stopped = new Set<number>();
  #next = 0;
  #closed = false;

  private constructor(
    dev: PciDevice,
    parts: {
      regs: Mmio;
      ring: DmaBuffer;
      pasid: PasidCapabilityInfo | undefined;
      maxTransfer: number;
      options: PasidDmaOptions;
    },
  ) {
    this.#dev = dev;
    this.#regs = parts.regs;
    this.#ring = parts.ring;
    this.#view = new DataView(parts.ring.bytes.buffer, parts.ring.bytes.byteOffset);
    this.pasid = parts.pasid;
    this.maxTransfer = parts.maxTransfer;
    this.ringEntries = parts.options.ringEntries ?? DEFAULT_RING_ENTRIES;
    this.#timeoutMs = parts.options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#pollMs = parts.options.pollIntervalMs ?? DEFAULT_POLL_MS;
  }

  /**
   * Check that `dev` is the PASID DMA engine, find its PASID capability in PCIe extended config
   * space and set PASID Enable, enable bus mastering, reset the engine, allocate the descriptor
   * ring in `dev.dma` and enable the engine on it.
   */
  static open(dev: PciDevice, options: PasidDmaOptions = {}): PasidDmaDriver {
    const fail = (message: string, hint?: string): never => {
      throw new VfioError({ operation: "PasidDmaDriver.open", device: dev.bdf, message, hint });
    };
    const vendor = dev.config.read16(PCI_VENDOR_ID);
    const device = dev.config.read16(PCI_DEVICE_ID);
    if (vendor !== PASID_DMA_VENDOR_ID || device !== PASID_DMA_DEVICE_ID) {
      fail(
        `device is ${hex4(vendor)}:${hex4(device)}, not the PASID DMA engine ` +
          `(${hex4(PASID_DMA_VENDOR_ID)}:${hex4(PASID_DMA_DEVICE_ID)})`,
        'pass the address of a simulated "pasid-dma" device',
      );
    }
    const regs = dev.bar(PASID_DMA_BAR);
    const id = regs.read32(PDMA_REG_ID);
    if (id >>> PDMA_ID_DEVICE_SHIFT !== PASID_DMA_DEVICE_ID) {
      fail(`identification register reads 0x${id.toString(16)}, expected 0x11f0xxxx`);
    }
    const caps = regs.read32(PDMA_REG_CAPS);
    const maxRing = 2 ** (caps & PDMA_CAPS_RING_LOG2);
    const maxTransfer = 2 ** ((caps >>> PDMA_CAPS_XFER_LOG2_SHIFT) & PDMA_CAPS_XFER_LOG2);
    const entries = options.ringEntries ?? DEFAULT_RING_ENTRIES;
    if (!isPowerOfTwo(entries) || entries < PDMA_RING_MIN || entries > maxRing) {
      fail(`ringEntries ${entries} is not a power of two in ${PDMA_RING_MIN}..${maxRing}`);
    }
    const pasid = enablePasid(dev);
    let ring: DmaBuffer | undefined;
    try {
      dev.config.enableBusMaster();
      regs.write32(PDMA_REG_CONTROL, PDMA_CONTROL_RESET);
      ring = dev.dma.allocate(entries * PDMA_DESC_SIZE);
      regs.write32(PDMA_REG_RING_BASE_LO, ring.iovaLow);
      regs.write32(PDMA_REG_RING_BASE_HI, ring.iovaHigh);
      regs.write32(PDMA_REG_RING_SIZE, entries);
      regs.write32(PDMA_REG_CONTROL, PDMA_CONTROL_ENABLE);
      const status = regs.read32(PDMA_REG_STATUS);
      if (status === MMIO_ALL_ONES || (status & PDMA_STATUS_ENABLED) === 0) {
        const error = regs.read32(PDMA_REG_ERROR);
        fail(`the engine did not enable (STATUS 0x${status.toString(16)}, ERROR 0x${hex4(error)})`);
      }
    } catch (e) {
      if (ring !== undefined) dev.dma.free(ring);
      if (pasid?.enabled) disablePasid(dev, pasid);
      throw e;
    }
    return new PasidDmaDriver(dev, {
      regs,
      ring,
      pasid,
      maxTransfer,
      options: { ...options, ringEntries: entries },
    });
  }

  /**
   * Copy `length` bytes from IOVA `src` to IOVA `dst`, both in PASID `pasid`'s address space (or
   * the requester id's when `pasid` is undefined). Resolves with the device's verdict.
   */
  async memcpy(
    src: bigint,
    dst: bigint,
    length: number,
    pasid?: number,
  ): Promise<PasidDmaResult> {
    this.#checkAddress("src", src);
    return await this.#run(PDMA_OP_MEMCPY, src, dst, length, pasid);
  }

  /** Write `length` copies of the byte `value` at IOVA `dst` (in `pasid`'s address space). */
  async fill(dst: bigint, length: number, value: number, pasid?: number): Promise<PasidDmaResult> {
    if (!Number.isInteger(value) || value < 0 || value > BYTE_MAX) {
      this.#fail("fill", `fill value ${value} is not a byte`);
    }
    return await this.#run(PDMA_OP_FILL, BigInt(value), dst, length, pasid);
  }

  /**
   * **Proposal** (core/pasid.ts): bind PASID `pasid` of this device to `ptId` (a HWPT allocated
   * with IOMMU_HWPT_ALLOC_PASID) through `space`, and stop using it when the kernel tears it down.
   * Returns the binding (the driver unbinds it at {@link close}).
   */
  usePasid(space: PasidSpace, pasid: Pasid | number, ptId: number): PasidBinding {
    if (this.#closed) this.#fail("usePasid", "the driver is closed");
    const value = typeof pasid === "number" ? pasid : pasid.value;
    this.#stopped.delete(value);
    const binding = space.bind(this.#dev, pasid, ptId, (p) => void this.#stopped.add(p));
    this.#spaces.add(space);
    this.#bindings.add(binding);
    return binding;
  }

  /** PASIDs the kernel told the driver to stop using (proposal; see {@link usePasid}). */
  get stoppedPasids(): ReadonlySet<number> {
    return this.#stopped;
  }

  /**
   * Stop and reset the engine, clear PASID Enable again, and free the ring. Operations still
   * waiting reject. The PciDevice stays open. A second call does nothing.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const b of this.#bindings) b.unbind();
    this.#bindings.clear();
    this.#regs.write32(PDMA_REG_CONTROL, PDMA_CONTROL_RESET);
    if (this.pasid?.enabled) disablePasid(this.#dev, this.pasid);
    this.#dev.dma.free(this.#ring);
  }

  /** Same as {@link close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  async #run(
    opcode: number,
    src: bigint,
    dst: bigint,
    length: number,
    pasid: number | undefined,
  ): Promise<PasidDmaResult> {
    if (this.#closed) this.#fail("submit", "the driver is closed");
    this.#checkAddress("dst", dst);
    if (!Number.isInteger(length) || length < 0 || length > this.maxTransfer) {
      this.#fail("submit", `length ${length} is outside 0..${this.maxTransfer}`);
    }
    const width = this.pasid?.width ?? PASID_FIELD_WIDTH;
    if (pasid !== undefined && (!Number.isInteger(pasid) || pasid < 0 || pasid >= 2 ** width)) {
      this.#fail("submit", `PASID ${pasid} is outside 0..${2 ** width - 1}`);
    }
    this.#pollStops();
    if (pasid !== undefined && this.#stopped.has(pasid)) {
      this.#fail(
        "submit",
        `PASID ${pasid} was stopped: the kernel tore it down (freed, or its owner closed)`,
        "allocate and bind a new PASID",
      );
    }
    const slot = await this.#reserve();
    try {
      const flags = pasid === undefined ? 0 : (PDMA_FLAG_PASID_VALID | pasid) >>> 0;
      this.#writeDescriptor(slot, flags, opcode, src, dst, length);
      this.#next = (slot + 1) % this.ringEntries;
      this.#regs.write32(PDMA_REG_TAIL, this.#next);
      const code = await this.#completion(slot);
      const result = this.#result(code, slot, pasid);
      this.counters.descriptors++;
      if (result.status === "ok") this.counters.bytes += length;
      else this.counters.errors++;
      return result;
    } finally {
      this.#busy.delete(slot);
    }
  }

  /** The next ring slot, once it is free and the ring keeps one slot empty. */
  async #reserve(): Promise<number> {
    const deadline = this.#dev.kernel.now() + this.#timeoutMs;
    while (this.#busy.size >= this.ringEntries - 1 || this.#busy.has(this.#next)) {
      await this.#tick(deadline, "a free ring slot");
    }
    this.#busy.add(this.#next);
    return this.#next;
  }

  #writeDescriptor(
    slot: number,
    flags: number,
    opcode: number,
    src: bigint,
    dst: bigint,
    length: number,
  ): void {
    const at = slot * PDMA_DESC_SIZE;
    const v = this.#view;
    v.setUint32(at + PDMA_DESC_COMPLETION, PDMA_CS_NONE, true);
    v.setUint32(at + PDMA_DESC_FLAGS, flags, true);
    v.setUint32(at + PDMA_DESC_OPCODE, opcode, true);
    v.setBigUint64(at + PDMA_DESC_SRC, src, true);
    v.setBigUint64(at + PDMA_DESC_DST, dst, true);
    v.setUint32(at + PDMA_DESC_LENGTH, length, true);
  }

  /** Poll slot `slot`'s completion status until the device writes it. */
  async #completion(slot: number): Promise<number> {
    const deadline = this.#dev.kernel.now() + this.#timeoutMs;
    const at = slot * PDMA_DESC_SIZE + PDMA_DESC_COMPLETION;
    for (;;) {
      const code = this.#view.getUint32(at, true) & PDMA_COMPLETION_STATUS;
      if (code !== PDMA_CS_NONE) return code;
      await this.#tick(deadline, `descriptor ${slot}`);
    }
  }

  /**
   * One wait step: throw when halted, gone or late; otherwise sleep. Throws when the driver was
   * closed meanwhile, so after it returns the ring is still there.
   */
  async #tick(deadline: number, what: string): Promise<void> {
    const status = this.#regs.read32(PDMA_REG_STATUS);
    if (status === MMIO_ALL_ONES) {
      this.#fail("wait", "STATUS reads all-ones: the device stopped answering MMIO");
    }
    if (status & PDMA_STATUS_HALTED) {
      const error = this.#regs.read32(PDMA_REG_ERROR);
      this.#fail(
        "wait",
        `the engine halted with error 0x${error.toString(16)} while waiting for ${what}`,
        "the descriptor ring is not reachable by the device; close and reopen the driver",
      );
    }
    if (this.#dev.kernel.now() > deadline) {
      this.#fail("wait", `no progress on ${what} within ${this.#timeoutMs} ms`);
    }
    this.#pollStops();
    await this.#dev.kernel.sleep(this.#pollMs);
    if (this.#closed) this.#fail("wait", `the driver was closed while waiting for ${what}`);
  }

  /** Take the kernel's stop notices for the PASIDs this driver uses (never blocks). */
  #pollStops(): void {
    for (const space of this.#spaces) {
      if (space.closed) this.#spaces.delete(space);
      else space.pollStops();
    }
  }

  /** The result for completion status `code` of `slot`, with the error block when it names it. */
  #result(code: number, slot: number, pasid: number | undefined): PasidDmaResult {
    const reason = CS_NAMES[code] ?? `status 0x${code.toString(16)}`;
    if (code === PDMA_CS_SUCCESS) return { status: "ok", code, reason };
    if (code === PDMA_CS_PASID_DISABLED) return { status: "pasid-disabled", code, reason };
    if (code !== PDMA_CS_READ_FAULT && code !== PDMA_CS_WRITE_FAULT) {
      return { status: "invalid", code, reason };
    }
    const access = code === PDMA_CS_READ_FAULT ? "read" : "write";
    const r = this.#regs;
    if (r.read32(PDMA_REG_ERROR) !== code || r.read32(PDMA_REG_ERROR_DESC) !== slot) {
      return { status: "fault", code, reason, fault: { access, address: undefined, pasid } };
    }
    const address = (BigInt(r.read32(PDMA_REG_ERROR_ADDR_HI)) << HI_SHIFT) |
      BigInt(r.read32(PDMA_REG_ERROR_ADDR_LO));
    const raw = r.read32(PDMA_REG_ERROR_PASID);
    r.write32(PDMA_REG_ERROR, 0);
    const carried = raw & PDMA_FLAG_PASID_VALID ? raw & PDMA_FLAG_PASID_MASK : undefined;
    return { status: "fault", code, reason, fault: { access, address, pasid: carried } };
  }

  #checkAddress(name: string, address: bigint): void {
    if (typeof address !== "bigint" || address < 0n || address > U64_MAX) {
      this.#fail("submit", `${name} ${address} is not a 64-bit IOVA`);
    }
  }

  #fail(what: string, message: string, hint?: string): never {
    throw new VfioError({ operation: `pasid-dma ${what}`, device: this.#dev.bdf, message, hint });
  }
}

/**
 * Walk the extended capability list for PASID, set PASID Enable and read it back. Undefined when
 * the device shows no PASID capability.
 */
function enablePasid(dev: PciDevice): PasidCapabilityInfo | undefined {
  const cap = dev.config.extendedCapabilities().find((c) => c.id === PCI_EXT_CAP_ID_PASID);
  if (cap === undefined) return undefined;
  const width = dev.config.pasidWidth();
  const ctrl = cap.offset + PCI_PASID_CTRL;
  dev.config.write16(ctrl, dev.config.read16(ctrl) | PCI_PASID_CTRL_ENABLE);
  const enabled = (dev.config.read16(ctrl) & PCI_PASID_CTRL_ENABLE) !== 0;
  return { offset: cap.offset, width, enabled };
}

/** Clear PASID Enable again. */
function disablePasid(dev: PciDevice, pasid: PasidCapabilityInfo): void {
  const at = pasid.offset + PCI_PASID_CTRL;
  dev.config.write16(at, dev.config.read16(at) & ~PCI_PASID_CTRL_ENABLE);
}

function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

function hex4(n: number): string {
  return n.toString(16).padStart(4, "0");
}
