/**
 * The virtio-net driver and the net/ stack on the simulated virtio-net behind every IOMMU model
 * and both VFIO paths (the fixture's steps, each ending with its leak check): ARP, ping and UDP
 * echo with a simulated peer on the wire, the pcap capture, and the bridge to a real host UDP
 * socket.
 */
import assert from "node:assert/strict";
import dgram from "node:dgram";
import { openPciDevice } from "../../core/pci_device.ts";
import { VirtioNet } from "../../drivers/virtio/net.ts";
import { NetStack } from "../../net/stack.ts";
import { parseIpv4 } from "../../net/ipv4.ts";
import type { DmaBackendKind } from "../../core/dma_backend.ts";
import { createMachine, type MachineOptions, type SimMachine } from "../../sim/machine.ts";
import { simTest } from "../../testing/mod.ts";
import { SimPeer } from "../../sim/net/peer.ts";
import { PcapWriter } from "../../net/pcap.ts";
import { UdpBridge } from "../../sim/net/bridge.ts";

const NIC_IP = parseIpv4("10.0.2.15");
const PEER_IP = parseIpv4("10.0.2.2");
const BDF = "0000:00:03.0";
const DEVICES: MachineOptions["devices"] = [{ model: "virtio-net", bdf: BDF }];

/** The NIC, the stack with a UDP echo on port 7, and a peer on the wire, on `machine`. */
async function rig(machine: SimMachine, path: DmaBackendKind) {
  const baseline = machine.memory.usedBytes; // what the IOMMU keeps for good (SMMUv3 tables)
  const dev = openPciDevice(BDF, { kernel: machine.kernel, iommu: path });
  const nic = await VirtioNet.open(dev, { queueSize: 64 });
  const stack = new NetStack(nic, {
    address: "10.0.2.15/24",
    gateway: "10.0.2.2",
    now: () => machine.kernel.now(),
  });
  const echo = stack.udpBind(7, (d, off, len, ip, port) => echo.sendTo(ip, port, d, off, len));
  const peer = new SimPeer(machine.segment, {
    name: "peer",
    mac: new Uint8Array([0x52, 0x55, 0x0a, 0, 2, 2]),
    ip: PEER_IP,
  });
  const run = async (until: () => boolean, maxMs = 1000): Promise<void> => {
    const end = machine.kernel.now() + maxMs;
    while (!until() && machine.kernel.now() < end) {
      if (stack.poll() === 0) await machine.kernel.sleep(0.01);
    }
  };
  const close = (): void => {
    nic.close();
    dev.close();
  };
  return { machine, dev, nic, stack, peer, run, close, baseline };
}

/** A rig on the one machine the host-facing tests use (VT-d, iommufd). */
function vtdRig(realtime = false) {
  const machine = createMachine({ iommu: "vtd", devices: DEVICES, strict: true, realtime });
  return rig(machine, "iommufd");
}

const machine = { devices: DEVICES };

simTest("virtio-net: negotiates VERSION_1 + ACCESS_PLATFORM and reads the MAC", async (ctx) => {
  const r = await rig(ctx.machine, ctx.path);
  assert.equal(r.nic.features & (3n << 32n), 3n << 32n);
  assert.deepEqual([...r.nic.mac], [0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
  assert.equal(r.nic.linkUp(), true);
  r.close();
}, { machine });

simTest("virtio-net: ARP, ping and 500 UDP echoes with a peer on the wire", async (ctx) => {
  const r = await rig(ctx.machine, ctx.path);
  ctx.keepPool(r.nic.pool);
  r.peer.ping(NIC_IP, 7, 1);
  await r.run(() => r.peer.echoReplies.length === 1);
  assert.deepEqual(r.peer.echoReplies, [`${NIC_IP}:7:1`]);
  let echoed = 0;
  r.peer.onUdp(5000, (d) => {
    assert.equal(new TextDecoder().decode(d.data), `datagram ${echoed}`);
    echoed++;
  });
  for (let i = 0; i < 500; i++) {
    r.peer.sendUdp(NIC_IP, 7, 5000, new TextEncoder().encode(`datagram ${i}`));
    if (i % 16 === 15) await r.run(() => echoed > i - 16);
  }
  await r.run(() => echoed === 500);
  assert.equal(echoed, 500);
  assert.equal(r.stack.stats.udpDelivered, 500);
  assert.equal(r.machine.faults().length, 0);
  const s = r.nic.stats();
  assert.equal(s.rxDropped, 0);
  assert.equal(s.txPackets, s.rxPackets);
  r.close();
}, { machine });

simTest("virtio-net: closing stops DMA and frees everything", async (ctx) => {
  const r = await rig(ctx.machine, ctx.path);
  r.close();
  assert.match(r.machine.kernel.readFile("/proc/self/status") as string, /VmLck:\s+0 kB/);
  assert.equal(
    r.machine.memory.usedBytes,
    r.baseline,
    "every page the session took is released",
  );
  r.peer.ping(NIC_IP, 1, 1); // the device is reset: nothing is received, nothing faults
  r.machine.clock.advance(10_000_000);
  assert.equal(r.machine.faults().length, 0);
}, { machine });

Deno.test({
  name: "virtio-net: the wire's pcap capture has every frame of an exchange",
  permissions: "none",
  async fn() {
    const r = await vtdRig();
    let records = 0;
    const pcap = new PcapWriter(() => records++);
    r.machine.segment.tap((t, f) => pcap.write(t, f));
    r.peer.ping(NIC_IP, 1, 1);
    await r.run(() => r.peer.echoReplies.length === 1);
    assert.equal(pcap.count, 4, "ARP request, ARP reply, echo request, echo reply");
    assert.equal(records, 1 + 4, "global header + one record per frame");
    r.close();
  },
});

Deno.test({
  name: "virtio-net: a real host UDP client is echoed through the bridge",
  permissions: { net: ["127.0.0.1"] },
  async fn() {
    const r = await vtdRig(true);
    const bridge = await UdpBridge.open({
      hostname: "127.0.0.1",
      port: 0,
      peer: r.peer,
      targetIp: NIC_IP,
      targetPort: 7,
    });
    const client = dgram.createSocket("udp4");
    const got: string[] = [];
    client.on("message", (m: Uint8Array) => got.push(new TextDecoder().decode(m)));
    await new Promise<void>((resolve) => client.bind(0, "127.0.0.1", () => resolve()));
    for (let i = 0; i < 10; i++) client.send(`host ${i}`, bridge.address.port, "127.0.0.1");
    const deadline = performance.now() + 5000;
    while (got.length < 10 && performance.now() < deadline) {
      if (r.stack.poll() === 0) await r.machine.kernel.sleep(1);
    }
    client.close();
    bridge.close();
    r.close();
    assert.deepEqual(got.sort(), Array.from({ length: 10 }, (_, i) => `host ${i}`).sort());
    assert.equal(bridge.fromHost, 10);
    assert.equal(bridge.toHost, 10);
  },
});
