/**
 * The rig of the NIC driver tests: one NIC (virtio-net, e1000e or igb) on a {@link simTest}
 * step's machine, the driver opened through openNic() on the step's VFIO path, the net/ stack
 * echoing UDP port 7, and a peer on the wire. {@link nicSimTest} runs a test body on every
 * IOMMU model × VFIO path of the testing fixture, each step ending with its leak check — fds,
 * mappings, locked memory, IOMMU domains, and the NIC's packet pool, which the rig registers.
 *
 * @module
 */

import type { PciDevice } from "../../core/pci_device.ts";
import { type Nic, type NicDriver, openNic } from "../../drivers/open_nic.ts";
import type { PacketPool } from "../../drivers/packet_pool.ts";
import { NetStack } from "../../net/stack.ts";
import { parseIpv4 } from "../../net/ipv4.ts";
import { createMachine, type MachineDevice, type SimMachine } from "../../sim/machine.ts";
import { SimPeer } from "../../sim/net/peer.ts";
import { simTest, type SimTestContext, type SimTestOptions } from "../../testing/mod.ts";

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

/** The machine devices of a NIC test: the NIC of `kind` at {@link NIC_BDF}. */
export function nicDevices(kind: NicDriver): MachineDevice[] {
  return [{ model: kind as MachineDevice["model"], bdf: NIC_BDF }];
}

/**
 * {@link simTest} of a NIC test: `body` on every IOMMU model × VFIO path (or those `options`
 * choose) on a machine with the NIC of `kind`, named "<kind>: <name>"; reported as ignored when
 * the simulator has no model of the NIC.
 */
export function nicSimTest(
  kind: NicDriver,
  name: string,
  body: (ctx: SimTestContext) => void | Promise<void>,
  options: Omit<SimTestOptions, "machine"> = {},
): void {
  simTest(`${kind}: ${name}`, body, {
    ...options,
    machine: { devices: nicDevices(kind) },
    ignore: options.ignore || !simHasNic(kind),
  });
}

/** Options of {@link nicRig}. */
export interface NicRigOptions {
  /** Descriptors per ring (virtio queue size, or both Intel rings; default 64). */
  ringSize?: number;
  /** igb queue pairs. */
  queues?: number;
  /** Take interrupts (default true), or only MSI-X or MSI. */
  interrupts?: boolean | "msix" | "msi";
  /** A pool made from the open device (default: the driver's own). */
  pool?: (dev: PciDevice) => PacketPool;
  /** Transmit watchdog of the driver (see NicOpenOptions.txTimeoutMs). */
  txTimeoutMs?: number;
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
}

/**
 * Build the rig on the step's machine: the device on the step's path, the driver, the stack, the
 * peer. The leak check of the step expects every buffer of the NIC's pool back at the end.
 */
export async function nicRig(ctx: SimTestContext, options: NicRigOptions = {}): Promise<NicRig> {
  const machine = ctx.machine;
  const kernel = machine.kernel;
  const dev = ctx.openDevice(NIC_BDF);
  const ring = options.ringSize ?? 64;
  const nic = await openNic(dev, {
    queueSize: ring,
    rxRingSize: ring,
    txRingSize: ring,
    queues: options.queues,
    interrupts: options.interrupts,
    pool: options.pool?.(dev),
    txTimeoutMs: options.txTimeoutMs,
  });
  ctx.keepPool(nic.pool, `${nic.name} pool`);
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
  };
}
