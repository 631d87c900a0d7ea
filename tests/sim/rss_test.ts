/**
 * The Toeplitz hash of the NIC models against Microsoft's published RSS verification suite
 * ("Verifying the RSS Hash Calculation": the 40-byte key and IPv4 / IPv4-with-TCP vectors).
 */
import assert from "node:assert/strict";
import { toeplitz } from "../../sim/pci/rss.ts";
import { MS_RSS_KEY } from "../helpers/nic_rig.ts";

const KEY = MS_RSS_KEY;

/** Destination, source, ports, IPv4-only hash, IPv4-with-TCP hash. */
const VECTORS: [number[], number[], number, number, number, number][] = [
  [[161, 142, 100, 80], [66, 9, 149, 187], 1766, 2794, 0x323e8fc2, 0x51ccc178],
  [[65, 69, 140, 83], [199, 92, 111, 2], 4739, 14230, 0xd718262a, 0xc626b0ea],
  [[12, 22, 207, 184], [24, 19, 198, 95], 38024, 12898, 0xd2d0a5de, 0x5c2b394a],
  [[209, 142, 163, 6], [38, 27, 205, 30], 2217, 48228, 0x82989176, 0xafc7327f],
  [[202, 188, 127, 2], [153, 39, 163, 191], 1303, 44251, 0x5d1809c5, 0x10e828a2],
];

Deno.test({
  name: "Toeplitz hash matches Microsoft's RSS verification vectors (IPv4, IPv4+TCP)",
  permissions: "none",
  fn() {
    for (const [dst, src, dport, sport, ip, tcp] of VECTORS) {
      const input = new Uint8Array([
        ...src,
        ...dst,
        sport >> 8,
        sport & 0xff,
        dport >> 8,
        dport & 0xff,
      ]);
      assert.equal(toeplitz(KEY, input, 8), ip, `${src} → ${dst}`);
      assert.equal(toeplitz(KEY, input, 12), tcp, `${src}:${sport} → ${dst}:${dport}`);
    }
  },
});
