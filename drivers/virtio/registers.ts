/**
 * Virtio 1.x register layouts and bits used by the PCI transport, split virtqueues and the
 * network device, from the OASIS "Virtual I/O Device (VIRTIO) Version 1.2" specification
 * (sections cited per group). The simulator's device (sim/pci/virtio_net.ts) is written from the
 * same specification separately.
 *
 * @module
 */

/** PCI vendor id of virtio devices (§4.1.2). */
export const VIRTIO_PCI_VENDOR_ID = 0x1af4;
/** Modern device ids are 0x1040 + virtio device id (§4.1.2.1). */
export const VIRTIO_PCI_MODERN_DEVICE_BASE = 0x1040;
/** Transitional network device id (§4.1.2.3). */
export const VIRTIO_PCI_TRANSITIONAL_NET = 0x1000;
/** Virtio device id of a network card (§5). */
export const VIRTIO_ID_NET = 1;

// §2.1 Device status field.
/** Status: the guest found the device. */
export const VIRTIO_STATUS_ACKNOWLEDGE = 1;
/** Status: the guest knows how to drive it. */
export const VIRTIO_STATUS_DRIVER = 2;
/** Status: the driver is ready. */
export const VIRTIO_STATUS_DRIVER_OK = 4;
/** Status: feature negotiation is complete. */
export const VIRTIO_STATUS_FEATURES_OK = 8;
/** Status: the device needs a reset. */
export const VIRTIO_STATUS_DEVICE_NEEDS_RESET = 64;
/** Status: the driver gave up. */
export const VIRTIO_STATUS_FAILED = 128;

// §6 Reserved feature bits.
/** Feature: compliant with virtio 1.x (mandatory for modern devices). */
export const VIRTIO_F_VERSION_1 = 32;
/** Feature: the device's DMA goes through the platform IOMMU (must be accepted when offered). */
export const VIRTIO_F_ACCESS_PLATFORM = 33;
/** Feature: packed virtqueues (not used). */
export const VIRTIO_F_RING_PACKED = 34;
/** Feature: indirect descriptors (not used). */
export const VIRTIO_RING_F_INDIRECT_DESC = 28;
/** Feature: used/avail event index (not used). */
export const VIRTIO_RING_F_EVENT_IDX = 29;

// §4.1.4 Virtio structure PCI capabilities.
/** PCI capability id of a vendor-specific capability. */
export const PCI_CAP_ID_VNDR = 0x09;
/** Offset of cfg_type in a virtio capability. */
export const VIRTIO_CAP_CFG_TYPE = 3;
/** Offset of bar. */
export const VIRTIO_CAP_BAR = 4;
/** Offset of offset (le32). */
export const VIRTIO_CAP_OFFSET = 8;
/** Offset of length (le32). */
export const VIRTIO_CAP_LENGTH = 12;
/** Offset of notify_off_multiplier (le32) in the notify capability. */
export const VIRTIO_CAP_NOTIFY_MULTIPLIER = 16;
/** cfg_type: common configuration. */
export const VIRTIO_PCI_CAP_COMMON_CFG = 1;
/** cfg_type: notifications. */
export const VIRTIO_PCI_CAP_NOTIFY_CFG = 2;
/** cfg_type: ISR status. */
export const VIRTIO_PCI_CAP_ISR_CFG = 3;
/** cfg_type: device-specific configuration. */
export const VIRTIO_PCI_CAP_DEVICE_CFG = 4;

// §4.1.4.3 Common configuration structure layout.
/** le32: selects which 32 feature bits device_feature shows. */
export const COMMON_DEVICE_FEATURE_SELECT = 0x00;
/** le32 (RO): 32 device feature bits. */
export const COMMON_DEVICE_FEATURE = 0x04;
/** le32: selects which 32 feature bits driver_feature takes. */
export const COMMON_DRIVER_FEATURE_SELECT = 0x08;
/** le32: 32 driver feature bits. */
export const COMMON_DRIVER_FEATURE = 0x0c;
/** le16: MSI-X vector for configuration changes. */
export const COMMON_CONFIG_MSIX_VECTOR = 0x10;
/** le16 (RO): number of virtqueues. */
export const COMMON_NUM_QUEUES = 0x12;
/** u8: device status. */
export const COMMON_DEVICE_STATUS = 0x14;
/** u8 (RO): configuration generation. */
export const COMMON_CONFIG_GENERATION = 0x15;
/** le16: selects the queue the queue_* fields refer to. */
export const COMMON_QUEUE_SELECT = 0x16;
/** le16: queue size (max on reset; the driver may lower it). */
export const COMMON_QUEUE_SIZE = 0x18;
/** le16: MSI-X vector of the queue. */
export const COMMON_QUEUE_MSIX_VECTOR = 0x1a;
/** le16: 1 enables the queue. */
export const COMMON_QUEUE_ENABLE = 0x1c;
/** le16 (RO): the queue's notification offset (times the multiplier). */
export const COMMON_QUEUE_NOTIFY_OFF = 0x1e;
/** le64: descriptor area address. */
export const COMMON_QUEUE_DESC = 0x20;
/** le64: driver (available) area address. */
export const COMMON_QUEUE_DRIVER = 0x28;
/** le64: device (used) area address. */
export const COMMON_QUEUE_DEVICE = 0x30;
/** "No vector" for MSI-X vector fields. */
export const VIRTIO_MSI_NO_VECTOR = 0xffff;

// §2.7 Split virtqueues.
/** Bytes per descriptor: le64 addr, le32 len, le16 flags, le16 next. */
export const VIRTQ_DESC_SIZE = 16;
/** Descriptor flag: continues via next. */
export const VIRTQ_DESC_F_NEXT = 1;
/** Descriptor flag: device writes (otherwise device reads). */
export const VIRTQ_DESC_F_WRITE = 2;
/** Available-ring flag: the driver does not want interrupts. */
export const VIRTQ_AVAIL_F_NO_INTERRUPT = 1;
/** Used-ring flag: the device does not need notifications. */
export const VIRTQ_USED_F_NO_NOTIFY = 1;
/** Alignment of the descriptor table. */
export const VIRTQ_DESC_ALIGN = 16;
/** Alignment of the available ring. */
export const VIRTQ_AVAIL_ALIGN = 2;
/** Alignment of the used ring. */
export const VIRTQ_USED_ALIGN = 4;
/** Largest queue size a split virtqueue allows. */
export const VIRTQ_MAX_SIZE = 32768;

// §5.1 Network device.
/** Net feature: the device has a MAC in its config space. */
export const VIRTIO_NET_F_MAC = 5;
/** Net feature: mergeable receive buffers (not used). */
export const VIRTIO_NET_F_MRG_RXBUF = 15;
/** Net feature: link status in config space. */
export const VIRTIO_NET_F_STATUS = 16;
/** Net config: mac[6] at 0. */
export const VIRTIO_NET_CFG_MAC = 0;
/** Net config: le16 status at 6. */
export const VIRTIO_NET_CFG_STATUS = 6;
/** Net status bit: link up. */
export const VIRTIO_NET_S_LINK_UP = 1;
/**
 * Size of struct virtio_net_hdr with VIRTIO_F_VERSION_1 (flags, gso_type, hdr_len, gso_size,
 * csum_start, csum_offset, num_buffers): always 12 bytes for modern devices (§5.1.6).
 */
export const VIRTIO_NET_HDR_SIZE = 12;
/** Queue index of receiveq1. */
export const VIRTIO_NET_RX_QUEUE = 0;
/** Queue index of transmitq1. */
export const VIRTIO_NET_TX_QUEUE = 1;
