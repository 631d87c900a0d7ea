/**
 * The lines the guest's virtio-iommu driver writes: Linux 6.12's log line for a fault event
 * (`viommu_fault_handler`) and the trace's short form of each request and its status.
 *
 * @module
 */

import {
  decodeRequest,
  type FaultEvent,
  splitRequest,
  VIRTIO_IOMMU_FAULT_F,
  VIRTIO_IOMMU_FAULT_R,
  VIRTIO_IOMMU_MAP_F,
  VIRTIO_IOMMU_S,
} from "./virtio_iommu_wire.ts";

/** Reserved bits of an event's first u32 (Linux `VIOMMU_FAULT_RESV_MASK`). */
export const VIOMMU_FAULT_RESV_MASK = 0xffff_ff00;

/** Linux's reason strings (`viommu_fault_handler`). */
export const FAULT_REASON_NAMES: Readonly<Record<number, string>> = {
  [VIRTIO_IOMMU_FAULT_R.UNKNOWN]: "unknown",
  [VIRTIO_IOMMU_FAULT_R.DOMAIN]: "domain",
  [VIRTIO_IOMMU_FAULT_R.MAPPING]: "page",
};

/** `%#llx`: "0" for zero, else "0x…". */
function hashHex(v: bigint): string {
  return v === 0n ? "0" : `0x${v.toString(16)}`;
}

/**
 * Linux 6.12's log line for a fault event, with the `dev_err` prefix, e.g.
 * `virtio_iommu virtio0: page fault from EP 16 at 0x800000 []`.
 */
export function viommuFaultMessage(device: string, e: FaultEvent): string {
  const reason = FAULT_REASON_NAMES[e.reason] ?? "unknown";
  const prefix = `virtio_iommu ${device}: ${reason} fault from EP ${e.endpoint >>> 0}`;
  if ((e.flags & VIRTIO_IOMMU_FAULT_F.ADDRESS) === 0) return prefix;
  const rwx = ((e.flags & VIRTIO_IOMMU_FAULT_F.READ) ? "R" : "") +
    ((e.flags & VIRTIO_IOMMU_FAULT_F.WRITE) ? "W" : "") +
    ((e.flags & VIRTIO_IOMMU_FAULT_F.EXEC) ? "X" : "");
  return `${prefix} at ${hashHex(e.address)} [${rwx}]`;
}

/** Status names for traces. */
const STATUS_NAMES: readonly string[] = Object.keys(VIRTIO_IOMMU_S);

/** The name of a request status (`OK`, `IOERR`, …) for traces. */
export function statusName(status: number): string {
  return STATUS_NAMES[status] ?? `status ${status}`;
}

/** A short description of a request for traces, e.g. `MAP domain=1 0x1000-0x1fff -> 0x5000 rw`. */
export function describe(req: Uint8Array, probeSize: number): string {
  const r = decodeRequest(splitRequest(req, probeSize).readable);
  const hex = (v: bigint): string => `0x${v.toString(16)}`;
  if (typeof r === "string") return `${r} request (${req.length} bytes)`;
  switch (r.type) {
    case "attach":
      return `ATTACH domain=${r.domain} ep=0x${r.endpoint.toString(16)} flags=${r.flags}`;
    case "detach":
      return `DETACH domain=${r.domain} ep=0x${r.endpoint.toString(16)}`;
    case "map":
      return `MAP domain=${r.domain} ${hex(r.virtStart)}-${hex(r.virtEnd)} -> ${
        hex(r.physStart)
      } ` +
        `${r.flags & VIRTIO_IOMMU_MAP_F.READ ? "r" : "-"}${
          r.flags & VIRTIO_IOMMU_MAP_F.WRITE ? "w" : "-"
        }`;
    case "unmap":
      return `UNMAP domain=${r.domain} ${hex(r.virtStart)}-${hex(r.virtEnd)}`;
    case "probe":
      return `PROBE ep=0x${r.endpoint.toString(16)}`;
  }
}
