/**
 * The VFIO user API of Linux 6.12 (include/uapi/linux/vfio.h), declared once as data: every ioctl,
 * flag, capability id, index and struct layout the project uses, under its exact C name
 * (shared/reference/vfio.md). The client (core/), the simulator (sim/) and the conformance
 * scenarios all import it; tests/uapi/headers_test.ts compares every declaration with the real
 * headers through gcc.
 *
 * The declarations live in one module per ioctl family, re-exported here: the container, its
 * groups and the type1 IOMMU (vfio_container.ts), the device (vfio_device.ts), its regions and
 * capability chains (vfio_region.ts), its interrupts (vfio_irq.ts), and POWER's sPAPR TCE IOMMU
 * and EEH (vfio_spapr.ts).
 *
 * @module
 */

export * from "./vfio_container.ts";
export * from "./vfio_device.ts";
export * from "./vfio_region.ts";
export * from "./vfio_irq.ts";
export * from "./vfio_spapr.ts";
