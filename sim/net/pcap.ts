/**
 * A writer of classic libpcap capture files (the format tcpdump, Wireshark and tshark read):
 * a 24-byte global header (magic 0xa1b2c3d4, version 2.4, LINKTYPE_ETHERNET) and a 16-byte
 * record header per frame, all little-endian, with virtual-clock timestamps. It writes to a sink
 * function, so the simulator itself needs no file permission.
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

/** Receives the bytes of the capture file, in order. */
export type PcapSink = (bytes: Uint8Array) => void;

/** The writer. */
export class PcapWriter {
  readonly #sink: PcapSink;
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

  /** Append a frame captured at `timeNs` (virtual ns). */
  write(timeNs: number, frame: Uint8Array): void {
    const rec = new Uint8Array(RECORD_HEADER + frame.length);
    const v = new DataView(rec.buffer);
    const us = Math.floor(timeNs / 1000);
    v.setUint32(0, Math.floor(us / 1_000_000), true);
    v.setUint32(4, us % 1_000_000, true);
    v.setUint32(8, frame.length, true);
    v.setUint32(12, frame.length, true);
    rec.set(frame, RECORD_HEADER);
    this.#sink(rec);
    this.count++;
  }
}
