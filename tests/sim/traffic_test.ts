import assert from "node:assert/strict";
import { createMachine } from "../../sim/machine.ts";
import { TrafficPort } from "../../sim/net/traffic.ts";
import { SimPeer } from "../../sim/net/peer.ts";

const MAC_A = new Uint8Array([2, 0, 0, 0, 0, 0xa]);
const MAC_B = new Uint8Array([2, 0, 0, 0, 0, 0xb]);

Deno.test({
  name: "devices on numbered segments get wires of their own; 0 is the machine's segment",
  permissions: "none",
  fn() {
    const m = createMachine({
      iommu: "vtd",
      devices: [
        { model: "virtio-net", segment: 1 },
        { model: "virtio-net", segment: 2 },
        { model: "virtio-net" },
      ],
    });
    assert.deepEqual([...m.segments.keys()].sort(), [0, 1, 2]);
    assert.equal(m.segments.get(0), m.segment);
    assert.notEqual(m.segments.get(1), m.segments.get(2));
    assert.throws(
      () => createMachine({ iommu: "vtd", devices: [{ model: "virtio-net", segment: -1 }] }),
      /segment -1: want a non-negative integer/,
    );
  },
});

Deno.test({
  name: "a traffic port generates valid UDP/IPv4 frames and counts only what others send",
  permissions: "none",
  fn() {
    const m = createMachine({ iommu: "vtd", devices: [] });
    const seen: Uint8Array[] = [];
    m.segment.tap((_t, f) => seen.push(f));
    const a = new TrafficPort(m.segment, { name: "a", mac: MAC_A, to: MAC_B, frameLength: 64 });
    const b = new TrafficPort(m.segment, { name: "b", mac: MAC_B, to: MAC_A });
    // An independent reader of the frames: the simulated host's UDP parser.
    const peer = new SimPeer(m.segment, { name: "p", mac: MAC_B, ip: 0xc6120002 });
    const got: number[] = [];
    peer.onUdp(5678, (d) => {
      const data = d.data;
      got.push(new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0));
    });
    a.send(3);
    m.clock.advance(1_000_000);
    assert.equal(seen.length, 3);
    assert.equal(seen[0].length, 64);
    assert.deepEqual(got, [0, 1, 2], "the peer accepted the checksummed IPv4 header");
    assert.equal(a.sent, 3);
    assert.equal(b.received, 3);
    assert.equal(b.receivedBytes, 3 * 64);
    assert.equal(a.received, 0, "a port does not count its own frames");
    assert.throws(
      () => new TrafficPort(m.segment, { name: "x", mac: MAC_A, to: MAC_B, frameLength: 59 }),
      /frame length 59: want an integer from 60 to 1514/,
    );
  },
});
