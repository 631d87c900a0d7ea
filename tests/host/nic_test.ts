/**
 * The three NIC packet drivers over real VFIO on QEMU's devices (virtio-net, e1000e = 82574L,
 * igb = 82576), each through every VFIO path the kernel has, opened with openNic() by PCI
 * address: MSI-X interrupts, link up, a real ARP exchange with QEMU's user-network gateway
 * 10.0.2.2 woken by the receive interrupt (waitForWork), the hardware statistics of the Intel
 * NICs counting what was sent and received, and igb with four RSS queue pairs; after close no fd
 * or locked memory is left behind. QEMU's devices are the referee of the simulated ones.
 */
import assert from "node:assert/strict";
import { openNic } from "../../drivers/open_nic.ts";
import { IntelNic } from "../../drivers/e1000/nic.ts";
import { NetStack } from "../../net/stack.ts";
import { formatMac } from "../../net/ethernet.ts";
import { parseIpv4 } from "../../net/ipv4.ts";
import type { Kernel } from "../../ffi/kernel.ts";
import { hostTest, lockedKb, openFds, vfioDevices, vfioPaths } from "./host_env.ts";

const GATEWAY = parseIpv4("10.0.2.2");
/** The NICs of the VM bench (tests/vm/machines.ts), by PCI id. */
const NICS = [
  { driver: "virtio-net", vendor: 0x1af4, device: 0x1041 },
  { driver: "e1000e", vendor: 0x8086, device: 0x10d3 },
  { driver: "igb", vendor: 0x8086, device: 0x10c9 },
] as const;
/** Give the gateway this long to answer (TCG guests are slow). */
const ANSWER_MS = 5000;

/** ARP for the gateway, sleeping on the interrupt between polls; returns the wait outcomes. */
async function arpGateway(
  kernel: Kernel,
  stack: NetStack,
  nic: { waitForWork(ms: number): Promise<string> },
): Promise<{ mac: Uint8Array | undefined; readies: number }> {
  stack.sendUdp(9, GATEWAY, 9, new TextEncoder().encode("hello gateway"));
  const deadline = kernel.now() + ANSWER_MS;
  let readies = 0;
  while (stack.arp.lookup(GATEWAY, kernel.now()) === undefined && kernel.now() < deadline) {
    if (stack.poll() > 0) continue;
    if ((await nic.waitForWork(deadline - kernel.now())) === "ready") readies++;
  }
  stack.poll(); // flush the datagram queued behind the ARP request
  return { mac: stack.arp.lookup(GATEWAY, kernel.now()), readies };
}

hostTest("NICs over real VFIO: openNic, MSI-X, ARP woken by the interrupt, no leaks", async (k) => {
  let tested = 0;
  for (const n of NICS) {
    for (const bdf of vfioDevices(k, n.vendor, n.device)) {
      for (const path of vfioPaths(k, bdf)) {
        for (const queues of n.driver === "igb" ? [1, 4] : [1]) {
          const what = `${n.driver} ${bdf} ${path}${queues > 1 ? ` ${queues} queues` : ""}`;
          const fds = openFds(k);
          const locked = lockedKb(k);
          const nic = await openNic(bdf, { kernel: k, iommu: path, queues });
          try {
            assert.equal(nic.name, `${n.driver} ${bdf}`);
            assert.equal(nic.interruptMode, "msix", `${what}: MSI-X`);
            assert.equal(nic.linkUp(), true, `${what}: link up`);
            assert.deepEqual([...nic.mac.subarray(0, 3)], [0x52, 0x54, 0x00], "QEMU's prefix");
            const stack = new NetStack(nic, { address: "10.0.2.15/24", now: () => k.now() });
            const { mac, readies } = await arpGateway(k, stack, nic);
            assert.ok(mac, `${what}: the gateway answered ARP`);
            assert.ok(readies >= 1, `${what}: the receive interrupt woke the wait`);
            const s = nic.stats();
            assert.ok(
              s.rxPackets >= 1 && s.txPackets >= 1,
              `${what}: rx ${s.rxPackets} tx ${s.txPackets}`,
            );
            let hw = "";
            if (nic instanceof IntelNic) {
              const h = nic.stats().hardware;
              assert.ok(h.goodPacketsReceived >= 1, `${what}: GPRC counts the ARP reply`);
              assert.ok(h.goodPacketsTransmitted >= 1, `${what}: GPTC counts the ARP request`);
              assert.ok(h.goodOctetsReceived >= 60, `${what}: GORC`);
              hw = `, GPRC ${h.goodPacketsReceived} GPTC ${h.goodPacketsTransmitted}` +
                ` GORC ${h.goodOctetsReceived}`;
            }
            console.log(
              `${what}: ${nic.interruptMode}, gateway 10.0.2.2 is at ${formatMac(mac!)}, ` +
                `${readies} interrupt wake-ups${hw}`,
            );
          } finally {
            nic.close();
          }
          assert.equal(openFds(k), fds, `${what}: every fd closed`);
          assert.equal(lockedKb(k), locked, `${what}: locked memory back to baseline`);
          tested++;
        }
      }
    }
  }
  assert.ok(tested >= NICS.length, "a virtio-net, an e1000e and an igb bound to vfio-pci");
});
