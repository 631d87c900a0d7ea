/**
 * A simulated machine with one NIC (virtio-net, e1000e or igb) behind an IOMMU model, the driver
 * opened through openNic() on one VFIO path, the net/ stack echoing UDP port 7, and a peer on the
 * wire: the rig of the NIC driver tests. The IOMMU models and the VFIO paths Linux has behind each
 * are tables here, so every test runs under all of them.
 *
 * @module
 */

import { openPciDevice, type PciDevice } from "../../core/pci_device.ts";
import { type Nic, type NicDriver, openNic } from "../../drivers/open_nic.ts";
import type { PacketPool } from "../../drivers/packet_pool.ts";
import { NetStack } from "../../net/stack.ts";
import { parseIpv4 } from "../../net/ipv4.ts";
import {
  createMachine,
  type MachineDevice,
  type MachineOptions,
  type SimMachine,
} from "../../sim/machine.ts";
import { SimPeer } from "../../sim/net/peer.ts";

/** A VFIO path of the simulator. */
export type SimPath = "type1" | "iommufd" | "spapr";

/** The simulated IOMMU models. */
export const SIM_IOMMUS: MachineOptions["iommu"][] = ["vtd", "smmuv3", "virtio-iommu", "spapr"];
/** The VFIO paths Linux has behind each model (POWER: the sPAPR container only). */
export const SIM_IOMMU_PATHS: Record<MachineOptions["iommu"], readonly SimPath[]> = {
  vtd: ["type1", "iommufd"],
  smmuv3: ["type1", "iommufd"],
  "virtio-iommu": ["type1", "iommufd"],
  spapr: ["spapr"],
};
/** Machine options a model needs (x86 with virtio-iommu has no interrupt remapping). */
export const SIM_IOMMU_OPTIONS: Partial<Record<MachineOptions["iommu"], Partial<MachineOptions>>> =
  {
    "virtio-iommu": { allowUnsafeInterrupts: { type1: true, iommufd: true } },
  };
/** Every (model, path) pair. */
export const SIM_COMBOS: readonly { iommu: MachineOptions["iommu"]; path: SimPath }[] = SIM_IOMMUS
  .flatMap((iommu) => SIM_IOMMU_PATHS[iommu].map((path) => ({ iommu, path })));

/** The NICs the drivers support. */
export const NIC_KINDS: readonly NicDriver[] = ["virtio-net", "e1000e", "igb"];
/** Where the NIC sits. */
export const NIC_BDF = "0000:00:03.0";
/** The stack's address. */
export const NIC_IP: number = parseIpv4("10.0.2.15");
/** The peer's address. */
export const PEER_IP: number = parseIpv4("10.0.2.2");
/** The port the rig's stack echoes. */
export const ECHO_PORT = 7;

/** Whether the simulator has a device model of this NIC. */
export function simHasNic(kind: NicDriver): boolean {
  try {
    createMachine({ iommu: "vtd", devices: [{ model: kind as MachineDevice["model"] }] });
    return true;
  } catch {
    return false;
  }
}

/** Options of {@link nicRig}. */
export interface NicRigOptions {
  /** Descriptors per ring (virtio queue size, or both Intel rings; default 64). */
  ringSize?: number;
  /** igb queue pairs. */
  queues?: number;
  /** Take interrupts (default true). */
  interrupts?: boolean;
  /** A pool made from the open device (default: the driver's own). */
  pool?: (dev: PciDevice) => PacketPool;
}

/** The rig. */
export interface NicRig {
  /** The machine. */
  readonly machine: SimMachine;
  /** The PCI device. */
  readonly dev: PciDevice;
  /** The driver. */
  readonly nic: Nic;
  /** The stack over it. */
  readonly stack: NetStack;
  /** A host on the wire at 10.0.2.2. */
  readonly peer: SimPeer;
  /** Datagrams the stack echoed. */
  echoed(): number;
  /** Poll NAPI-style (waitForWork when idle) until `until()` or `maxMs` virtual ms. */
  run(until: () => boolean, maxMs?: number): Promise<void>;
  /** Close the NIC and the device. */
  close(): void;
  /** Physical memory in use before the device was opened (IOMMU tables stay). */
  readonly baselineBytes: number;
  /** Open fds before the device was opened. */
  readonly baselineFds: number;
}

/** Build the rig: machine, device on `path`, driver, stack, peer. */
export async function nicRig(
  kind: NicDriver,
  iommu: MachineOptions["iommu"],
  path: SimPath,
  options: NicRigOptions = {},
): Promise<NicRig> {
  const machine = createMachine({
    iommu,
    devices: [{ model: kind as MachineDevice["model"], bdf: NIC_BDF }],
    strict: true,
    ...SIM_IOMMU_OPTIONS[iommu],
  });
  const kernel = machine.kernel;
  const baselineBytes = machine.memory.usedBytes;
  const baselineFds = kernel.process.openFds().length;
  const dev = openPciDevice(NIC_BDF, { kernel, iommu: path });
  const ring = options.ringSize ?? 64;
  const nic = await openNic(dev, {
    queueSize: ring,
    rxRingSize: ring,
    txRingSize: ring,
    queues: options.queues,
    interrupts: options.interrupts,
    pool: options.pool?.(dev),
  });
  const stack = new NetStack(nic, {
    address: "10.0.2.15/24",
    gateway: "10.0.2.2",
    now: () => kernel.now(),
  });
  let echoed = 0;
  const echo = stack.udpBind(ECHO_PORT, (d, off, len, ip, port) => {
    if (echo.sendTo(ip, port, d, off, len)) echoed++;
  });
  const peer = new SimPeer(machine.segment, {
    name: "peer",
    mac: new Uint8Array([0x52, 0x55, 0x0a, 0, 2, 2]),
    ip: PEER_IP,
  });
  return {
    machine,
    dev,
    nic,
    stack,
    peer,
    echoed: () => echoed,
    async run(until: () => boolean, maxMs = 1000): Promise<void> {
      const end = kernel.now() + maxMs;
      while (!until() && kernel.now() < end) {
        if (stack.poll() === 0) await nic.waitForWork(Math.max(0, end - kernel.now()));
      }
    },
    close(): void {
      nic.close();
      dev.close();
    },
    baselineBytes,
    baselineFds,
  };
}
