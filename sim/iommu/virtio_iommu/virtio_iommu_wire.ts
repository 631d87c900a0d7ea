/**
 * The virtio-iommu wire format (virtio spec "IOMMU device", device id 23; Linux
 * include/uapi/linux/virtio_iommu.h; iommu-models.md §4): request and response layouts, the
 * config space, PROBE properties and fault events — all little-endian, encoded and decoded here
 * and nowhere else, so the device model and the driver model cannot share a misunderstanding
 * beyond this one file.
 *
 * A request is one buffer as Linux builds it: the device-readable part (head + body) followed by
 * the device-writable part (PROBE properties, then the tail). {@link splitRequest} cuts it where
 * Linux's `viommu_get_write_desc_offset` does.
 *
 * @example
 * ```ts
 * const flags = VIRTIO_IOMMU_MAP_F.READ;
 * const req = encodeMap({ domain: 1, virtStart: 0n, virtEnd: 0xfffn, physStart: 0x10000n, flags });
 * const { readable, writable } = splitRequest(req, 512);
 * ```
 *
 * @module
 */

import { ERRNO } from "../../../ffi/errno.ts";

/** Virtio device id of the IOMMU. */
export const VIRTIO_ID_IOMMU = 23;
/** Virtqueue indices. */
export const VIRTIO_IOMMU_VQ = { REQUEST: 0, EVENT: 1 } as const;
/** Feature bits (bit numbers). */
export const VIRTIO_IOMMU_F = {
  INPUT_RANGE: 0,
  DOMAIN_RANGE: 1,
  MAP_UNMAP: 2,
  BYPASS: 3,
  PROBE: 4,
  MMIO: 5,
  BYPASS_CONFIG: 6,
} as const;
/** VIRTIO_F_VERSION_1 (bit 32). */
export const VIRTIO_F_VERSION_1 = 32;

/** Request types. */
export const VIRTIO_IOMMU_T = { ATTACH: 1, DETACH: 2, MAP: 3, UNMAP: 4, PROBE: 5 } as const;

/** Status codes written in the tail. */
export const VIRTIO_IOMMU_S = {
  OK: 0,
  IOERR: 1,
  UNSUPP: 2,
  DEVERR: 3,
  INVAL: 4,
  RANGE: 5,
  NOENT: 6,
  FAULT: 7,
  NOMEM: 8,
} as const;

/** ATTACH flags. */
export const VIRTIO_IOMMU_ATTACH_F_BYPASS = 1 << 0;
/** MAP flags. */
export const VIRTIO_IOMMU_MAP_F = { READ: 1 << 0, WRITE: 1 << 1, MMIO: 1 << 2 } as const;
/** PROBE property types; the type is the low 12 bits of the first u16. */
export const VIRTIO_IOMMU_PROBE_T = { NONE: 0, RESV_MEM: 1 } as const;
/** Mask of the property type (the top 4 bits are reserved). */
export const VIRTIO_IOMMU_PROBE_T_MASK = 0xfff;
/** RESV_MEM subtypes. */
export const VIRTIO_IOMMU_RESV_MEM_T = { RESERVED: 0, MSI: 1 } as const;
/** Fault reasons. */
export const VIRTIO_IOMMU_FAULT_R = { UNKNOWN: 0, DOMAIN: 1, MAPPING: 2 } as const;
/** Fault flags. */
export const VIRTIO_IOMMU_FAULT_F = {
  READ: 1 << 0,
  WRITE: 1 << 1,
  EXEC: 1 << 2,
  ADDRESS: 1 << 8,
} as const;

/** Sizes in bytes of the fixed structures. */
export const VIRTIO_IOMMU_SIZE = {
  HEAD: 4,
  TAIL: 4,
  ATTACH: 24,
  DETACH: 24,
  MAP: 40,
  UNMAP: 32,
  /** Device-readable part of PROBE: head, endpoint, reserved[64]. */
  PROBE_HEAD: 72,
  PROPERTY_HEAD: 4,
  RESV_MEM: 24,
  FAULT: 24,
  CONFIG: 40,
} as const;

/** Field offsets (struct layouts of the spec). */
const OFF = {
  type: 0,
  headReserved: 1,
  domain: 4,
  endpoint: 8,
  attachFlags: 12,
  attachReserved: 16,
  detachReserved: 12,
  virtStart: 8,
  virtEnd: 16,
  physStart: 24,
  mapFlags: 32,
  unmapReserved: 24,
  probeEndpoint: 4,
  probeReserved: 8,
} as const;
/** Bytes of ATTACH's and UNMAP's `reserved` (DETACH's 8 and PROBE's 64 are ignored). */
const ATTACH_RESERVED_BYTES = 4;
const UNMAP_RESERVED_BYTES = 4;
/** RESV_MEM value offsets (from the property start): subtype, start, end. */
const RESV = { subtype: 4, start: 8, end: 16 } as const;
/** Property header offsets: type (u16), length (u16). */
const PROP = { type: 0, length: 2 } as const;
/** Fault event offsets. */
const FAULT = { reason: 0, flags: 4, endpoint: 8, address: 16 } as const;
/** Config space offsets. */
const CFG = {
  pageSizeMask: 0,
  inputStart: 8,
  inputEnd: 16,
  domainStart: 24,
  domainEnd: 28,
  probeSize: 32,
  bypass: 36,
} as const;

/** All ones in 64 bits. */
export const U64_MAX = (1n << 64n) - 1n;

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/** A request of `size` bytes with `type` in its head (tail zero). */
function request(type: number, size: number): { bytes: Uint8Array; v: DataView } {
  const bytes = new Uint8Array(size);
  bytes[OFF.type] = type;
  return { bytes, v: view(bytes) };
}

/** ATTACH fields. */
export interface AttachRequest {
  /** Domain id. */
  readonly domain: number;
  /** Endpoint id. */
  readonly endpoint: number;
  /** ATTACH flags (default 0). */
  readonly flags?: number;
  /** The 4 reserved bytes as one u32 (must be 0). */
  readonly reserved?: number;
}

/** Encode a whole ATTACH request (24 bytes, tail included). */
export function encodeAttach(r: AttachRequest): Uint8Array {
  const { bytes, v } = request(VIRTIO_IOMMU_T.ATTACH, VIRTIO_IOMMU_SIZE.ATTACH);
  v.setUint32(OFF.domain, r.domain >>> 0, true);
  v.setUint32(OFF.endpoint, r.endpoint >>> 0, true);
  v.setUint32(OFF.attachFlags, (r.flags ?? 0) >>> 0, true);
  v.setUint32(OFF.attachReserved, (r.reserved ?? 0) >>> 0, true);
  return bytes;
}

/** DETACH fields. */
export interface DetachRequest {
  /** Domain id. */
  readonly domain: number;
  /** Endpoint id. */
  readonly endpoint: number;
}

/** Encode a whole DETACH request (24 bytes). */
export function encodeDetach(r: DetachRequest): Uint8Array {
  const { bytes, v } = request(VIRTIO_IOMMU_T.DETACH, VIRTIO_IOMMU_SIZE.DETACH);
  v.setUint32(OFF.domain, r.domain >>> 0, true);
  v.setUint32(OFF.endpoint, r.endpoint >>> 0, true);
  return bytes;
}

/** MAP fields (`virtEnd` inclusive). */
export interface MapRequest {
  /** Domain id. */
  readonly domain: number;
  /** First IOVA. */
  readonly virtStart: bigint;
  /** Last IOVA (inclusive). */
  readonly virtEnd: bigint;
  /** Physical address of `virtStart`. */
  readonly physStart: bigint;
  /** MAP flags. */
  readonly flags: number;
}

/** Encode a whole MAP request (40 bytes). */
export function encodeMap(r: MapRequest): Uint8Array {
  const { bytes, v } = request(VIRTIO_IOMMU_T.MAP, VIRTIO_IOMMU_SIZE.MAP);
  v.setUint32(OFF.domain, r.domain >>> 0, true);
  v.setBigUint64(OFF.virtStart, BigInt.asUintN(64, r.virtStart), true);
  v.setBigUint64(OFF.virtEnd, BigInt.asUintN(64, r.virtEnd), true);
  v.setBigUint64(OFF.physStart, BigInt.asUintN(64, r.physStart), true);
  v.setUint32(OFF.mapFlags, r.flags >>> 0, true);
  return bytes;
}

/** UNMAP fields (`virtEnd` inclusive). */
export interface UnmapRequest {
  /** Domain id. */
  readonly domain: number;
  /** First IOVA. */
  readonly virtStart: bigint;
  /** Last IOVA (inclusive). */
  readonly virtEnd: bigint;
  /** The 4 reserved bytes as one u32. */
  readonly reserved?: number;
}

/** Encode a whole UNMAP request (32 bytes). */
export function encodeUnmap(r: UnmapRequest): Uint8Array {
  const { bytes, v } = request(VIRTIO_IOMMU_T.UNMAP, VIRTIO_IOMMU_SIZE.UNMAP);
  v.setUint32(OFF.domain, r.domain >>> 0, true);
  v.setBigUint64(OFF.virtStart, BigInt.asUintN(64, r.virtStart), true);
  v.setBigUint64(OFF.virtEnd, BigInt.asUintN(64, r.virtEnd), true);
  v.setUint32(OFF.unmapReserved, (r.reserved ?? 0) >>> 0, true);
  return bytes;
}

/** Encode a whole PROBE request for `probeSize` bytes of properties (72 + probeSize + 4 bytes). */
export function encodeProbe(endpoint: number, probeSize: number): Uint8Array {
  const size = VIRTIO_IOMMU_SIZE.PROBE_HEAD + probeSize + VIRTIO_IOMMU_SIZE.TAIL;
  const { bytes, v } = request(VIRTIO_IOMMU_T.PROBE, size);
  v.setUint32(OFF.probeEndpoint, endpoint >>> 0, true);
  return bytes;
}

/**
 * Split a whole request into its device-readable and device-writable parts, as Linux does
 * (`viommu_get_write_desc_offset`): PROBE's writable part is the properties and the tail, every
 * other request's is the tail. Views into `req`, so the device's writes land in it.
 */
export function splitRequest(
  req: Uint8Array,
  probeSize: number,
): { readable: Uint8Array; writable: Uint8Array } {
  const tail = VIRTIO_IOMMU_SIZE.TAIL;
  const isProbe = req.length > 0 && req[OFF.type] === VIRTIO_IOMMU_T.PROBE;
  const at = Math.max(0, req.length - tail - (isProbe ? probeSize : 0));
  return { readable: req.subarray(0, at), writable: req.subarray(at) };
}

/** The status in the tail of a whole request (its last 4 bytes). */
export function requestStatus(req: Uint8Array): number {
  return req.length >= VIRTIO_IOMMU_SIZE.TAIL ? req[req.length - VIRTIO_IOMMU_SIZE.TAIL] : -1;
}

/** A request as the device parses it from its readable part. */
export type DecodedRequest =
  | {
    readonly type: "attach";
    readonly domain: number;
    readonly endpoint: number;
    readonly flags: number;
    readonly reservedZero: boolean;
  }
  | { readonly type: "detach"; readonly domain: number; readonly endpoint: number }
  | {
    readonly type: "map";
    readonly domain: number;
    readonly virtStart: bigint;
    readonly virtEnd: bigint;
    readonly physStart: bigint;
    readonly flags: number;
  }
  | {
    readonly type: "unmap";
    readonly domain: number;
    readonly virtStart: bigint;
    readonly virtEnd: bigint;
    readonly reservedZero: boolean;
  }
  | { readonly type: "probe"; readonly endpoint: number };

/** Device-readable bytes each request type needs (its size without the tail / properties). */
const READABLE_BYTES: Readonly<Record<number, number>> = {
  [VIRTIO_IOMMU_T.ATTACH]: VIRTIO_IOMMU_SIZE.ATTACH - VIRTIO_IOMMU_SIZE.TAIL,
  [VIRTIO_IOMMU_T.DETACH]: VIRTIO_IOMMU_SIZE.DETACH - VIRTIO_IOMMU_SIZE.TAIL,
  [VIRTIO_IOMMU_T.MAP]: VIRTIO_IOMMU_SIZE.MAP - VIRTIO_IOMMU_SIZE.TAIL,
  [VIRTIO_IOMMU_T.UNMAP]: VIRTIO_IOMMU_SIZE.UNMAP - VIRTIO_IOMMU_SIZE.TAIL,
  [VIRTIO_IOMMU_T.PROBE]: VIRTIO_IOMMU_SIZE.PROBE_HEAD,
};

/** Whether `type` is a request type the spec defines. */
export function isKnownRequestType(type: number): boolean {
  return READABLE_BYTES[type] !== undefined;
}

function allZero(b: Uint8Array, at: number, n: number): boolean {
  for (let i = at; i < at + n; i++) if (b[i] !== 0) return false;
  return true;
}

/**
 * Parse the device-readable part of a request. "unknown" for a type the spec does not define,
 * "short" when the part is smaller than the type's layout. Never throws.
 */
export function decodeRequest(readable: Uint8Array): DecodedRequest | "unknown" | "short" {
  if (readable.length < VIRTIO_IOMMU_SIZE.HEAD) return "short";
  const type = readable[OFF.type];
  const need = READABLE_BYTES[type];
  if (need === undefined) return "unknown";
  if (readable.length < need) return "short";
  const v = view(readable);
  const domain = v.getUint32(OFF.domain, true);
  switch (type) {
    case VIRTIO_IOMMU_T.ATTACH:
      return {
        type: "attach",
        domain,
        endpoint: v.getUint32(OFF.endpoint, true),
        flags: v.getUint32(OFF.attachFlags, true),
        reservedZero: allZero(readable, OFF.attachReserved, ATTACH_RESERVED_BYTES),
      };
    case VIRTIO_IOMMU_T.DETACH:
      // DETACH's reserved[8] is ignored by the device (spec: MUST ignore).
      return { type: "detach", domain, endpoint: v.getUint32(OFF.endpoint, true) };
    case VIRTIO_IOMMU_T.MAP:
      return {
        type: "map",
        domain,
        virtStart: v.getBigUint64(OFF.virtStart, true),
        virtEnd: v.getBigUint64(OFF.virtEnd, true),
        physStart: v.getBigUint64(OFF.physStart, true),
        flags: v.getUint32(OFF.mapFlags, true),
      };
    case VIRTIO_IOMMU_T.UNMAP:
      return {
        type: "unmap",
        domain,
        virtStart: v.getBigUint64(OFF.virtStart, true),
        virtEnd: v.getBigUint64(OFF.virtEnd, true),
        reservedZero: allZero(readable, OFF.unmapReserved, UNMAP_RESERVED_BYTES),
      };
    default:
      // PROBE's reserved[64] is ignored by the device (spec: MUST ignore).
      return { type: "probe", endpoint: v.getUint32(OFF.probeEndpoint, true) };
  }
}

/** One RESV_MEM property (inclusive range). */
export interface ResvMemProperty {
  /** RESERVED (0) or MSI (1). */
  readonly subtype: number;
  /** First IOVA. */
  readonly start: bigint;
  /** Last IOVA (inclusive). */
  readonly end: bigint;
}

/** Encode a RESV_MEM property (24 bytes: header with length 20, subtype, start, end). */
export function encodeResvMem(p: ResvMemProperty): Uint8Array {
  const bytes = new Uint8Array(VIRTIO_IOMMU_SIZE.RESV_MEM);
  const v = view(bytes);
  v.setUint16(PROP.type, VIRTIO_IOMMU_PROBE_T.RESV_MEM, true);
  v.setUint16(PROP.length, VIRTIO_IOMMU_SIZE.RESV_MEM - VIRTIO_IOMMU_SIZE.PROPERTY_HEAD, true);
  bytes[RESV.subtype] = p.subtype;
  v.setBigUint64(RESV.start, BigInt.asUintN(64, p.start), true);
  v.setBigUint64(RESV.end, BigInt.asUintN(64, p.end), true);
  return bytes;
}

/** A property as the driver parses it. */
export interface ProbeProperty {
  /** Type (low 12 bits). */
  readonly type: number;
  /** The reserved top 4 bits were zero. */
  readonly reservedZero: boolean;
  /** Bytes after the 4-byte header. */
  readonly length: number;
  /** The property's value bytes (possibly cut short by the end of the buffer). */
  readonly value: Uint8Array;
}

/**
 * Walk a properties buffer as Linux's `viommu_probe_endpoint` does: properties at `length + 4`
 * strides until a type-0 property or the end of the buffer.
 */
export function parseProbeProperties(props: Uint8Array): ProbeProperty[] {
  const out: ProbeProperty[] = [];
  const v = view(props);
  let at = 0;
  while (at + VIRTIO_IOMMU_SIZE.PROPERTY_HEAD <= props.length) {
    const raw = v.getUint16(at + PROP.type, true);
    const type = raw & VIRTIO_IOMMU_PROBE_T_MASK;
    if (type === VIRTIO_IOMMU_PROBE_T.NONE) break;
    const length = v.getUint16(at + PROP.length, true);
    const start = at + VIRTIO_IOMMU_SIZE.PROPERTY_HEAD;
    out.push({
      type,
      reservedZero: (raw & ~VIRTIO_IOMMU_PROBE_T_MASK) === 0,
      length,
      value: props.subarray(start, Math.min(props.length, start + length)),
    });
    at = start + length;
  }
  return out;
}

/** Decode a RESV_MEM value (the 20 bytes after the header); undefined when too short. */
export function decodeResvMem(value: Uint8Array): ResvMemProperty | undefined {
  const need = VIRTIO_IOMMU_SIZE.RESV_MEM - VIRTIO_IOMMU_SIZE.PROPERTY_HEAD;
  if (value.length < need) return undefined;
  const v = view(value);
  const h = VIRTIO_IOMMU_SIZE.PROPERTY_HEAD;
  return {
    subtype: value[RESV.subtype - h],
    start: v.getBigUint64(RESV.start - h, true),
    end: v.getBigUint64(RESV.end - h, true),
  };
}

/** A fault event. */
export interface FaultEvent {
  /** UNKNOWN, DOMAIN or MAPPING. */
  readonly reason: number;
  /** READ, WRITE, EXEC, ADDRESS. */
  readonly flags: number;
  /** Endpoint id. */
  readonly endpoint: number;
  /** Faulting address (valid with ADDRESS). */
  readonly address: bigint;
}

/** Encode a fault event (24 bytes). */
export function encodeFault(e: FaultEvent): Uint8Array {
  const bytes = new Uint8Array(VIRTIO_IOMMU_SIZE.FAULT);
  const v = view(bytes);
  bytes[FAULT.reason] = e.reason;
  v.setUint32(FAULT.flags, e.flags >>> 0, true);
  v.setUint32(FAULT.endpoint, e.endpoint >>> 0, true);
  v.setBigUint64(FAULT.address, BigInt.asUintN(64, e.address), true);
  return bytes;
}

/** Decode a fault event; undefined when shorter than 24 bytes. */
export function decodeFault(bytes: Uint8Array): FaultEvent | undefined {
  if (bytes.length < VIRTIO_IOMMU_SIZE.FAULT) return undefined;
  const v = view(bytes);
  return {
    reason: bytes[FAULT.reason],
    flags: v.getUint32(FAULT.flags, true),
    endpoint: v.getUint32(FAULT.endpoint, true),
    address: v.getBigUint64(FAULT.address, true),
  };
}

/** The device configuration (`struct virtio_iommu_config`). */
export interface VirtioIommuConfig {
  /** page_size_mask: the lowest set bit is the granule. */
  readonly pageSizeMask: bigint;
  /** input_range, inclusive. */
  readonly inputRange: { readonly start: bigint; readonly end: bigint };
  /** domain_range, inclusive. */
  readonly domainRange: { readonly start: number; readonly end: number };
  /** probe_size: bytes of PROBE properties. */
  readonly probeSize: number;
  /** bypass: unattached endpoints bypass (BYPASS_CONFIG). */
  readonly bypass: number;
}

/** Encode the 40-byte config space. */
export function encodeConfig(c: VirtioIommuConfig): Uint8Array {
  const bytes = new Uint8Array(VIRTIO_IOMMU_SIZE.CONFIG);
  const v = view(bytes);
  v.setBigUint64(CFG.pageSizeMask, c.pageSizeMask, true);
  v.setBigUint64(CFG.inputStart, c.inputRange.start, true);
  v.setBigUint64(CFG.inputEnd, c.inputRange.end, true);
  v.setUint32(CFG.domainStart, c.domainRange.start >>> 0, true);
  v.setUint32(CFG.domainEnd, c.domainRange.end >>> 0, true);
  v.setUint32(CFG.probeSize, c.probeSize >>> 0, true);
  bytes[CFG.bypass] = c.bypass;
  return bytes;
}

/** Decode the 40-byte config space (a shorter buffer reads as zero-padded). */
export function decodeConfig(config: Uint8Array): VirtioIommuConfig {
  const bytes = new Uint8Array(VIRTIO_IOMMU_SIZE.CONFIG);
  bytes.set(config.subarray(0, VIRTIO_IOMMU_SIZE.CONFIG));
  const v = view(bytes);
  return {
    pageSizeMask: v.getBigUint64(CFG.pageSizeMask, true),
    inputRange: {
      start: v.getBigUint64(CFG.inputStart, true),
      end: v.getBigUint64(CFG.inputEnd, true),
    },
    domainRange: {
      start: v.getUint32(CFG.domainStart, true),
      end: v.getUint32(CFG.domainEnd, true),
    },
    probeSize: v.getUint32(CFG.probeSize, true),
    bypass: bytes[CFG.bypass],
  };
}

/** Linux's `viommu_get_req_errno`: the -errno a status maps to (0 for OK). */
export function viommuStatusErrno(status: number): number {
  switch (status) {
    case VIRTIO_IOMMU_S.OK:
      return 0;
    case VIRTIO_IOMMU_S.UNSUPP:
      return -ERRNO.ENOSYS;
    case VIRTIO_IOMMU_S.INVAL:
      return -ERRNO.EINVAL;
    case VIRTIO_IOMMU_S.RANGE:
      return -ERRNO.ERANGE;
    case VIRTIO_IOMMU_S.NOENT:
      return -ERRNO.ENOENT;
    case VIRTIO_IOMMU_S.FAULT:
      return -ERRNO.EFAULT;
    case VIRTIO_IOMMU_S.NOMEM:
      return -ERRNO.ENOMEM;
    default: // IOERR, DEVERR, unknown
      return -ERRNO.EIO;
  }
}
