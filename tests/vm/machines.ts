/**
 * The VM bench's machines: which kernel, which QEMU machine and IOMMU, which devices, which
 * VFIO paths the guest exercises. One table, so adding a machine is one entry.
 *
 * @module
 */

/** Where a guest kernel comes from. */
export type GuestKernel =
  /** Debian trixie's linux-image 6.12 (VFIO as modules; no IOMMUFD). */
  | "debian-amd64"
  /** A 6.12 kernel built from trixie's linux-source with IOMMUFD, VFIO cdev and IOMMUFD_TEST. */
  | "iommufd-amd64"
  /** Debian trixie's arm64 linux-image 6.12. */
  | "debian-arm64"
  /**
   * The same linux-source built for arm64 (cross-compiled, tests/vm/kernel-arm64.config), with
   * IOMMUFD, VFIO cdev and IOMMUFD_TEST, and /dev/vfio/vfio served by iommufd
   * (VFIO_CONTAINER=n, IOMMUFD_VFIO_CONTAINER=y).
   */
  | "iommufd-arm64";

/** Kernel configuration a simulated machine must copy to answer like a guest kernel. */
export interface GuestKernelConfig {
  /** CONFIG_IOMMUFD_TEST: the simulator's `iommufdTest` option. */
  readonly iommufdTest: boolean;
  /** CONFIG_TRANSPARENT_HUGEPAGE: the simulator's `transparentHugepage` option. */
  readonly transparentHugepage: boolean;
}

/**
 * The configuration of each guest kernel: Debian's have transparent huge pages and no
 * IOMMUFD_TEST; the bench's own (tinyconfig plus tests/vm/kernel.config or kernel-arm64.config)
 * have IOMMUFD_TEST and no transparent huge pages.
 */
export const GUEST_KERNEL_CONFIG: Readonly<Record<GuestKernel, GuestKernelConfig>> = {
  "debian-amd64": { iommufdTest: false, transparentHugepage: true },
  "debian-arm64": { iommufdTest: false, transparentHugepage: true },
  "iommufd-amd64": { iommufdTest: true, transparentHugepage: false },
  "iommufd-arm64": { iommufdTest: true, transparentHugepage: false },
};

/**
 * A VFIO path a guest exercises (the conformance runner's --path): the type1 container, iommufd
 * with VFIO cdevs, or iommufd's compat container (/dev/iommu given to VFIO_GROUP_SET_CONTAINER).
 */
export type VfioPath = "type1" | "iommufd" | "compat";

/** One VM-bench machine. */
export interface VmMachine {
  /** Name used in reports and golden file names. */
  readonly name: string;
  /** QEMU target. */
  readonly arch: "x86_64" | "aarch64";
  /** Guest kernel. */
  readonly kernel: GuestKernel;
  /** QEMU arguments for the machine and IOMMU (without kernel, initrd, devices). */
  readonly machineArgs: readonly string[];
  /** Kernel command line additions. */
  readonly cmdline: string;
  /** True when MSI is not isolated (x86 with virtio-iommu): VFIO needs allow_unsafe_interrupts. */
  readonly unsafeInterrupts: boolean;
  /** VFIO paths the guest tests. */
  readonly paths: readonly VfioPath[];
  /**
   * /dev/vfio/vfio is iommufd's compat container (CONFIG_IOMMUFD_VFIO_CONTAINER), not the legacy
   * type1 one; the simulator's `iommufdVfioContainer` option.
   */
  readonly iommufdVfioContainer: boolean;
  /** The IOMMU model the simulator uses for the same machine. */
  readonly simIommu: string;
  /**
   * Also measure the echo demo's CPU time over {@link IDLE_SECONDS} idle seconds on the igb,
   * interrupt-driven on the first VFIO path and busy-polling on the second (every machine runs
   * the echo itself on every NIC and path).
   */
  readonly idleCpu: boolean;
}

const X86_CPU = ["-accel", "tcg,thread=multi", "-cpu", "max", "-smp", "2", "-m", "2G"];
const ARM_CPU = ["-accel", "tcg,thread=multi", "-cpu", "max", "-smp", "2", "-m", "2G"];

/** Every machine of the bench. */
export const VM_MACHINES: readonly VmMachine[] = [
  {
    name: "x86-vtd-debian",
    arch: "x86_64",
    kernel: "debian-amd64",
    machineArgs: [
      ...X86_CPU,
      "-machine",
      "q35,kernel-irqchip=split",
      "-device",
      "intel-iommu,intremap=on",
    ],
    cmdline: "console=ttyS0 intel_iommu=on",
    unsafeInterrupts: false,
    paths: ["type1"],
    iommufdVfioContainer: false,
    simIommu: "vtd",
    idleCpu: false,
  },
  {
    name: "x86-vtd-iommufd",
    arch: "x86_64",
    kernel: "iommufd-amd64",
    machineArgs: [
      ...X86_CPU,
      "-machine",
      "q35,kernel-irqchip=split",
      "-device",
      "intel-iommu,intremap=on",
    ],
    cmdline: "console=ttyS0",
    unsafeInterrupts: false,
    paths: ["type1", "iommufd"],
    iommufdVfioContainer: false,
    simIommu: "vtd",
    idleCpu: true,
  },
  {
    name: "x86-virtio-iommu",
    arch: "x86_64",
    kernel: "iommufd-amd64",
    machineArgs: [...X86_CPU, "-machine", "q35", "-device", "virtio-iommu-pci"],
    cmdline:
      "console=ttyS0 vfio_iommu_type1.allow_unsafe_interrupts=1 iommufd.allow_unsafe_interrupts=1",
    unsafeInterrupts: true,
    paths: ["type1", "iommufd"],
    iommufdVfioContainer: false,
    simIommu: "virtio-iommu",
    idleCpu: false,
  },
  {
    name: "arm64-smmuv3",
    arch: "aarch64",
    kernel: "debian-arm64",
    machineArgs: [...ARM_CPU, "-machine", "virt,iommu=smmuv3,gic-version=3"],
    cmdline: "console=ttyAMA0",
    unsafeInterrupts: false,
    paths: ["type1"],
    iommufdVfioContainer: false,
    simIommu: "smmuv3",
    idleCpu: false,
  },
  {
    name: "arm64-smmuv3-iommufd",
    arch: "aarch64",
    kernel: "iommufd-arm64",
    machineArgs: [...ARM_CPU, "-machine", "virt,iommu=smmuv3,gic-version=3"],
    cmdline: "console=ttyAMA0",
    unsafeInterrupts: false,
    // No legacy type1 here: /dev/vfio/vfio is iommufd's compat container.
    paths: ["iommufd", "compat"],
    iommufdVfioContainer: true,
    simIommu: "smmuv3",
    idleCpu: true,
  },
];

/** The guest address the echo demo uses (QEMU user networking's default guest address). */
export const GUEST_IP = "10.0.2.15";
/** The UDP port the echo demo serves in the guest. */
export const GUEST_ECHO_PORT = 7;
/** Idle seconds of the CPU measurement ({@link VmMachine.idleCpu}). */
export const IDLE_SECONDS = 10;

/** The NICs every machine gets, each on its own user network: driver name and netdev id. */
export const VM_NICS: readonly { readonly driver: string; readonly netdev: string }[] = [
  { driver: "virtio-net", netdev: "n1" },
  { driver: "e1000e", netdev: "n2" },
  { driver: "igb", netdev: "n3" },
];

/**
 * Test devices every machine gets (romfile= skips the iPXE option ROM: faster boot). Each NIC's
 * user network forwards a host UDP port on 127.0.0.1 (`echoPorts`, by driver) to the guest's
 * echo port.
 */
export function vmDevices(echoPorts: Readonly<Record<string, number>>): string[] {
  return VM_DEVICES.map((a) => {
    const nic = VM_NICS.find((n) => a === `user,id=${n.netdev}`);
    return nic === undefined
      ? a
      : `${a},hostfwd=udp:127.0.0.1:${echoPorts[nic.driver]}-${GUEST_IP}:${GUEST_ECHO_PORT}`;
  });
}

const VM_DEVICES: readonly string[] = [
  "-device",
  "edu",
  "-netdev",
  "user,id=n1",
  "-device",
  "virtio-net-pci,netdev=n1,romfile=,disable-legacy=on,iommu_platform=on",
  "-netdev",
  "user,id=n2",
  "-device",
  "e1000e,netdev=n2,romfile=",
  "-netdev",
  "user,id=n3",
  "-device",
  "igb,netdev=n3,romfile=",
];
