import assert from "node:assert/strict";
import { VirtualClock } from "../../sim/clock.ts";
import { EthernetSegment } from "../../sim/net/segment.ts";
import { SimPeer } from "../../sim/net/peer.ts";
import { PcapWriter } from "../../net/pcap.ts";

const A_IP = 0x0a000202; // 10.0.2.2
const B_IP = 0x0a00020f; // 10.0.2.15

function twoPeers(): { clock: VirtualClock; seg: EthernetSegment; a: SimPeer; b: SimPeer } {
  const clock = new VirtualClock();
  const seg = new EthernetSegment(clock);
  const a = new SimPeer(seg, { name: "a", mac: new Uint8Array([2, 0, 0, 0, 0, 1]), ip: A_IP });
  const b = new SimPeer(seg, { name: "b", mac: new Uint8Array([2, 0, 0, 0, 0, 2]), ip: B_IP });
  return { clock, seg, a, b };
}

Deno.test({
  name: "sim peers resolve each other with ARP and exchange UDP on a segment",
  permissions: "none",
  fn() {
    const { clock, a, b } = twoPeers();
    const got: string[] = [];
    b.onUdp(7, (d) => {
      got.push(new TextDecoder().decode(d.data));
      b.sendUdp(d.srcIp, d.srcPort, 7, d.data);
    });
    a.sendUdp(B_IP, 7, 5555, new TextEncoder().encode("hi"));
    clock.advance(1_000_000);
    assert.deepEqual(got, ["hi"]);
    assert.equal(a.unclaimed.length, 1, "the echo came back to a's port 5555");
    assert.equal(a.unclaimed[0].srcPort, 7);
    assert.equal(b.counters.arpAnswered, 1);
  },
});

Deno.test({
  name: "sim peers answer pings",
  permissions: "none",
  fn() {
    const { clock, a } = twoPeers();
    a.ping(B_IP, 1, 1);
    a.ping(B_IP, 1, 2);
    clock.advance(1_000_000);
    assert.deepEqual(a.echoReplies, [`${B_IP}:1:1`, `${B_IP}:1:2`]);
  },
});

Deno.test({
  name: "pcap capture has the libpcap global header and one record per frame",
  permissions: "none",
  fn() {
    const { clock, seg, a } = twoPeers();
    const chunks: Uint8Array[] = [];
    const pcap = new PcapWriter((b) => chunks.push(b.slice()));
    seg.tap((t, f) => pcap.write(t, f));
    a.ping(B_IP, 9, 9);
    clock.advance(1_000_000);
    const file = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const c of chunks) {
      file.set(c, at);
      at += c.length;
    }
    const v = new DataView(file.buffer);
    assert.equal(v.getUint32(0, true), 0xa1b2c3d4);
    assert.equal(v.getUint32(20, true), 1, "LINKTYPE_ETHERNET");
    let records = 0;
    for (let o = 24; o < file.length; records++) o += 16 + v.getUint32(o + 8, true);
    assert.equal(records, 4, "ARP request, ARP reply, echo request, echo reply");
    assert.equal(pcap.count, 4);
  },
});
