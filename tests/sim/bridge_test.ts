/**
 * The UDP bridge from real host sockets to the simulated wire: a datagram whose IPv4 packet would
 * exceed the path MTU is refused and counted (`tooBig`) before any frame is built, the next one
 * that fits is relayed and answered; a path MTU the wire cannot carry shows up as the segment's
 * own drop counter instead; a bad MTU and a missing net permission are clear errors.
 */
import assert from "node:assert/strict";
import dgram from "node:dgram";
import { VirtualClock } from "../../sim/clock.ts";
import { EthernetSegment } from "../../sim/net/segment.ts";
import { SimPeer } from "../../sim/net/peer.ts";
import { UdpBridge } from "../../sim/net/bridge.ts";

const GATEWAY_IP = 0x0a000202; // 10.0.2.2
const TARGET_IP = 0x0a00020f; // 10.0.2.15
const TARGET_PORT = 7;
const NET: Deno.PermissionOptions = { net: ["127.0.0.1"] };

/** A wire with the bridge's gateway and a target that echoes port 7. */
async function rig(mtu?: number) {
  const clock = new VirtualClock();
  const segment = new EthernetSegment(clock);
  const gateway = new SimPeer(segment, {
    name: "gateway",
    mac: new Uint8Array([2, 0, 0, 0, 0, 1]),
    ip: GATEWAY_IP,
  });
  const target = new SimPeer(segment, {
    name: "target",
    mac: new Uint8Array([2, 0, 0, 0, 0, 2]),
    ip: TARGET_IP,
  });
  const received: number[] = [];
  target.onUdp(TARGET_PORT, (d) => {
    received.push(d.data.length);
    target.sendUdp(d.srcIp, d.srcPort, TARGET_PORT, d.data);
  });
  const bridge = await UdpBridge.open({
    hostname: "127.0.0.1",
    port: 0,
    peer: gateway,
    targetIp: TARGET_IP,
    targetPort: TARGET_PORT,
    ...(mtu === undefined ? {} : { mtu }),
  });
  const client = dgram.createSocket("udp4");
  // Bound to loopback first: an unbound socket would bind 0.0.0.0, which the tests may not.
  await new Promise<void>((resolve) => client.bind(0, "127.0.0.1", resolve));
  const echoes: number[] = [];
  client.on("message", (m: Uint8Array) => echoes.push(m.length));
  /** Send datagrams of these sizes, then let the host and the wire run until `until()`. */
  const exchange = async (sizes: number[], until: () => boolean): Promise<void> => {
    for (const n of sizes) client.send(new Uint8Array(n), bridge.address.port, "127.0.0.1");
    for (let i = 0; i < 200 && !until(); i++) {
      await new Promise((r) => setTimeout(r, 5));
      clock.advance(1_000_000);
    }
  };
  const close = (): void => {
    client.close();
    bridge.close();
  };
  return { segment, bridge, received, echoes, exchange, close };
}

Deno.test({
  name: "bridge: a datagram over the path MTU is refused and counted; the next one is echoed",
  permissions: NET,
  async fn() {
    const r = await rig();
    await r.exchange([3000, 1473, 1472], () => r.echoes.length === 1);
    assert.equal(r.bridge.tooBig, 2, "3,028 and 1,501 bytes of IPv4 are over 1500");
    assert.equal(r.bridge.fromHost, 1);
    assert.equal(r.bridge.toHost, 1);
    assert.deepEqual(r.received, [1472]);
    assert.deepEqual(r.echoes, [1472]);
    assert.equal(r.segment.dropped, 0, "nothing too long reached the wire");
    r.close();
  },
});

Deno.test({
  name: "bridge: a path MTU the wire cannot carry: the segment drops the frame and counts it",
  permissions: NET,
  async fn() {
    const r = await rig(9000);
    await r.exchange([3000, 64], () => r.echoes.length === 1);
    assert.equal(r.bridge.tooBig, 0);
    assert.equal(r.bridge.fromHost, 2, "both relayed into the simulation");
    assert.equal(r.segment.dropped, 1, "the 3,042-byte frame is longer than the wire carries");
    assert.deepEqual(r.received, [64]);
    assert.deepEqual(r.echoes, [64]);
    r.close();
  },
});

Deno.test({
  name: "bridge: a bad MTU and a missing net permission are clear errors",
  permissions: { net: false },
  async fn() {
    const peer = new SimPeer(new EthernetSegment(new VirtualClock()), {
      name: "gateway",
      mac: new Uint8Array([2, 0, 0, 0, 0, 1]),
      ip: GATEWAY_IP,
    });
    const options = { hostname: "127.0.0.1", port: 9000, peer, targetIp: 1, targetPort: 7 };
    await assert.rejects(
      UdpBridge.open({ ...options, mtu: 67 }),
      /mtu 67: want an integer from 68/,
    );
    await assert.rejects(
      UdpBridge.open(options),
      (e: Error) =>
        e instanceof Deno.errors.NotCapable && /127\.0\.0\.1:9000.*--allow-net/.test(e.message),
    );
  },
});
