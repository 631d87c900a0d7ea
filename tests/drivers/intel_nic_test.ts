/**
 * What the e1000e and igb drivers add to the shared NIC tests, on their simulated devices on every
 * IOMMU model × VFIO path of the testing fixture (each step ends with its leak check): link down
 * and up (auto-negotiation restarted in the PHY), the receive filter in RCTL and the multicast
 * table, the hardware statistics registers read into running totals (clear on read), and igb's RSS
 * over four queue pairs with one MSI-X vector each. A NIC whose simulated model does not exist yet
 * is ignored.
 */
import assert from "node:assert/strict";
import { E1000Controller } from "../../drivers/e1000/controller.ts";
import { IntelNic } from "../../drivers/e1000/nic.ts";
import {
  PHY_CONTROL,
  PHY_CONTROL_AN_ENABLE,
  PHY_CONTROL_RESTART_AN,
} from "../../drivers/e1000/registers.ts";
import type { NicDriver } from "../../drivers/open_nic.ts";
import type { E1000Device } from "../../sim/pci/e1000_device.ts";
import {
  ECHO_PORT,
  NIC_BDF,
  NIC_IP,
  type NicRig,
  nicRig,
  nicSimTest,
} from "../helpers/nic_driver_rig.ts";

const INTEL: readonly NicDriver[] = ["e1000e", "igb"];
const NS_PER_MS = 1_000_000;
const ETHERTYPE_EXPERIMENTAL = 0x88b5;
const OTHER_UNICAST = new Uint8Array([0x02, 0, 0, 0, 0, 0x99]);
const MDNS_MULTICAST = new Uint8Array([0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb]);
const BROADCAST = new Uint8Array(6).fill(0xff);

function intel(r: NicRig): IntelNic {
  assert.ok(r.nic instanceof IntelNic);
  return r.nic;
}

/** Put one frame to `dst` on the wire; returns how many frames the driver then received. */
async function deliver(r: NicRig, dst: Uint8Array): Promise<number> {
  const before = r.nic.stats().rxPackets;
  const f = new Uint8Array(60);
  f.set(dst, 0);
  f.set(r.peer.mac, 6);
  f[12] = ETHERTYPE_EXPERIMENTAL >>> 8;
  f[13] = ETHERTYPE_EXPERIMENTAL & 0xff;
  const wire = r.machine.segment.attach({ name: "filter test", receive: () => {} });
  wire.send(f);
  wire.detach();
  await r.run(() => false, 2);
  return r.nic.stats().rxPackets - before;
}

for (const kind of INTEL) {
  nicSimTest(
    kind,
    "link down while the PHY renegotiates or the cable is out, traffic resumes",
    async (ctx) => {
      const r = await nicRig(ctx);
      assert.equal(r.nic.linkUp(), true, "open waited for the link");
      r.peer.ping(NIC_IP, 1, 1);
      await r.run(() => r.peer.echoReplies.length === 1);
      const phy = E1000Controller.open(r.dev);
      const control = await phy.readPhy(PHY_CONTROL);
      await phy.writePhy(PHY_CONTROL, control | PHY_CONTROL_AN_ENABLE | PHY_CONTROL_RESTART_AN);
      assert.equal(r.nic.linkUp(), false, "STATUS.LU drops while auto-negotiating");
      r.peer.ping(NIC_IP, 1, 2);
      await r.run(() => false, 5);
      assert.equal(r.peer.echoReplies.length, 1, "nothing is received while the link is down");
      const k = r.machine.kernel;
      const until = k.now() + 2000;
      while (!r.nic.linkUp() && k.now() < until) await k.sleep(10);
      assert.equal(r.nic.linkUp(), true, "the link comes back");
      r.peer.ping(NIC_IP, 1, 3);
      await r.run(() => r.peer.echoReplies.includes(`${NIC_IP}:1:3`));
      assert.ok(r.peer.echoReplies.includes(`${NIC_IP}:1:3`), "pings are answered again");
      // The cable: pulled, STATUS.LU drops; plugged back, the link returns.
      const model = r.machine.fn(NIC_BDF).model as E1000Device;
      model.setLink(false);
      r.machine.clock.advance(NS_PER_MS);
      assert.equal(r.nic.linkUp(), false, "cable pulled");
      model.setLink(true);
      const back = k.now() + 2000;
      while (!r.nic.linkUp() && k.now() < back) await k.sleep(10);
      assert.equal(r.nic.linkUp(), true, "cable back");
      r.peer.ping(NIC_IP, 1, 4);
      await r.run(() => r.peer.echoReplies.includes(`${NIC_IP}:1:4`));
      assert.ok(r.peer.echoReplies.includes(`${NIC_IP}:1:4`), "answered after the cable is back");
      assert.equal(r.machine.faults().length, 0);
      r.close();
    },
  );

  nicSimTest(
    kind,
    "unicast, multicast and broadcast filtering through RCTL and the MTA",
    async (ctx) => {
      const r = await nicRig(ctx);
      const nic = intel(r);
      assert.equal(await deliver(r, nic.mac), 1, "our own address");
      assert.equal(await deliver(r, BROADCAST), 1, "broadcast (BAM)");
      assert.equal(await deliver(r, OTHER_UNICAST), 0, "another station's address");
      assert.equal(await deliver(r, MDNS_MULTICAST), 0, "a multicast group we did not join");
      nic.addMulticast(MDNS_MULTICAST);
      assert.equal(await deliver(r, MDNS_MULTICAST), 1, "a joined group (MTA hash)");
      nic.clearMulticast();
      assert.equal(await deliver(r, MDNS_MULTICAST), 0, "left again");
      nic.setReceiveFilter({ promiscuous: true, allMulticast: true, broadcast: false });
      assert.deepEqual(nic.receiveFilter(), {
        promiscuous: true,
        allMulticast: true,
        broadcast: false,
      });
      assert.equal(await deliver(r, OTHER_UNICAST), 1, "promiscuous (UPE)");
      assert.equal(await deliver(r, MDNS_MULTICAST), 1, "all multicast (MPE)");
      assert.equal(await deliver(r, BROADCAST), 0, "broadcast off");
      assert.throws(() => nic.addMulticast(OTHER_UNICAST), /not a multicast Ethernet address/);
      r.close();
    },
  );

  nicSimTest(
    kind,
    "hardware statistics are read into running totals (clear on read)",
    async (ctx) => {
      const r = await nicRig(ctx);
      const nic = intel(r);
      const zero = nic.stats().hardware;
      assert.equal(zero.goodPacketsReceived, 0, "cleared at open");
      r.peer.ping(NIC_IP, 1, 1);
      await r.run(() => r.peer.echoReplies.length === 1);
      const first = nic.stats();
      assert.equal(first.hardware.goodPacketsReceived, first.rxPackets, "GPRC");
      assert.equal(first.hardware.goodPacketsTransmitted, first.txPackets, "GPTC");
      assert.ok(first.hardware.goodOctetsReceived >= 64 * first.rxPackets, "GORC");
      assert.ok(first.hardware.broadcastReceived >= 1, "the peer's ARP request (BPRC)");
      const again = nic.stats().hardware;
      assert.deepEqual(
        again,
        first.hardware,
        "a second read adds nothing: the registers cleared",
      );
      r.close();
    },
  );
}

nicSimTest(
  "igb",
  "RSS spreads 64 flows over 4 queue pairs, one MSI-X vector each",
  async (ctx) => {
    const r = await nicRig(ctx, { queues: 4 });
    const nic = intel(r);
    assert.equal(nic.queues, 4);
    assert.equal(nic.interruptMode, "msix");
    assert.equal(r.dev.irqs.vectors, 4);
    r.peer.ping(NIC_IP, 1, 1);
    await r.run(() => r.peer.echoReplies.length === 1);
    let got = 0;
    for (let i = 0; i < 64; i++) {
      r.peer.onUdp(6000 + i, () => void got++);
      r.peer.sendUdp(NIC_IP, ECHO_PORT, 6000 + i, new TextEncoder().encode(`flow ${i}`));
      if (i % 16 === 15) await r.run(() => got > i - 16);
    }
    await r.run(() => got === 64);
    assert.equal(got, 64, "every flow echoed");
    const s = nic.stats();
    assert.equal(s.rxQueuePackets.reduce((a, b) => a + b, 0), s.rxPackets);
    const used = s.rxQueuePackets.filter((n) => n > 0).length;
    assert.ok(used >= 2, `flows landed on ${used} queues (${s.rxQueuePackets})`);
    assert.equal(r.machine.faults().length, 0);
    r.close();
  },
);
