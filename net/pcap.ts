/**
 * A writer of classic libpcap capture files (the format tcpdump, Wireshark and tshark read):
 * a 24-byte global header (magic 0xa1b2c3d4, version 2.4, LINKTYPE_ETHERNET) and a 16-byte
 * record header per frame, all little-endian. It writes to a sink function, so it needs no file
 * permission of its own: feed it from a NetDevice ({@link CaptureNetDevice}, at the driver) or
 * from a simulated segment's tap (the wire).
 *
 * Each record is built in one buffer the writer keeps (grown to the largest frame seen), so a
 * capture allocates nothing per frame but the view it hands the sink.
 *
 * @example
 * ```ts
 * const file = Deno.openSync("echo.pcap", { write: true, create: true, truncate: true });
 * const pcap = new PcapWriter((bytes) => void file.writeSync(bytes));
 * pcap.write(Date.now() * 1e6, frame);
 * ```
 *
 * @module
 */

/** pcap magic for microsecond timestamps. */
export const PCAP_MAGIC = 0xa1b2c3d4;
/** pcap format version 2.4. */
export const PCAP_VERSION_MAJOR = 2;
/** Minor version. */
export const PCAP_VERSION_MINOR = 4;
/** Link type of Ethernet frames (LINKTYPE_ETHERNET). */
export const LINKTYPE_ETHERNET = 1;
/** Snapshot length: whole frames. */
export const PCAP_SNAPLEN = 65535;
const GLOBAL_HEADER = 24;
const RECORD_HEADER = 16;
/** Room for a full-size Ethernet frame before the record buffer has to grow. */
const INITIAL_RECORD = RECORD_HEADER + 1518;
const NS_PER_US = 1000;
const US_PER_S = 1_000_000;

/**
 * Receives the bytes of the capture file, in order: the global header, then one call per record.
 * The bytes are valid only during the call (copy what you keep).
 */
export type PcapSink = (bytes: Uint8Array) => void;

/** The writer. */
export class PcapWriter {
  readonly #sink: PcapSink;
  #record = new Uint8Array(INITIAL_RECORD);
  #view = new DataView(this.#record.buffer);
  /** Frames written. */
  count = 0;

  /** Start a capture: writes the global header to `sink`. */
  constructor(sink: PcapSink) {
    this.#sink = sink;
    const h = new Uint8Array(GLOBAL_HEADER);
    const v = new DataView(h.buffer);
    v.setUint32(0, PCAP_MAGIC, true);
    v.setUint16(4, PCAP_VERSION_MAJOR, true);
    v.setUint16(6, PCAP_VERSION_MINOR, true);
    v.setInt32(8, 0, true); // thiszone
    v.setUint32(12, 0, true); // sigfigs
    v.setUint32(16, PCAP_SNAPLEN, true);
    v.setUint32(20, LINKTYPE_ETHERNET, true);
    sink(h);
  }

  /**
   * Append the frame in `length` bytes of `frame` from `offset` (default: all of it), captured
   * at `timeNs` (ns since the epoch; virtual ns on the simulator).
   */
  write(timeNs: number, frame: Uint8Array, offset = 0, length?: number): void {
    const n = length ?? frame.length - offset;
    const size = RECORD_HEADER + n;
    if (size > this.#record.length) {
      this.#record = new Uint8Array(size);
      this.#view = new DataView(this.#record.buffer);
    }
    const v = this.#view;
    const us = Math.floor(timeNs / NS_PER_US);
    v.setUint32(0, Math.floor(us / US_PER_S), true);
    v.setUint32(4, us % US_PER_S, true);
    v.setUint32(8, n, true);
    v.setUint32(12, n, true);
    this.#record.set(frame.subarray(offset, offset + n), RECORD_HEADER);
    this.#sink(this.#record.subarray(0, size));
    this.count++;
  }
}
