/**
 * PCI configuration-space registers and bits, named as Linux's include/uapi/linux/pci_regs.h names
 * them, with the section of the PCI Local Bus Specification 3.0 ("PCI 3.0") or PCI Express Base
 * Specification 4.0 ("PCIe 4.0") that defines each group. One place for every simulated device
 * model and for the simulated kernel.
 *
 * @module
 */

/** Conventional config space size (PCI 3.0 §6.1). */
export const PCI_CFG_SPACE_SIZE = 256;
/** PCI Express config space size (PCIe 4.0 §7.2.2). */
export const PCI_CFG_SPACE_EXP_SIZE = 4096;

// Type 0 header (PCI 3.0 §6.1, Figure 6-1).
/** Vendor id (16 bits, RO). */
export const PCI_VENDOR_ID = 0x00;
/** Device id (16 bits, RO). */
export const PCI_DEVICE_ID = 0x02;
/** Command register (16 bits), PCI 3.0 §6.2.2. */
export const PCI_COMMAND = 0x04;
/** Status register (16 bits), PCI 3.0 §6.2.3. */
export const PCI_STATUS = 0x06;
/** Revision id (8 bits, RO). */
export const PCI_REVISION_ID = 0x08;
/** Class code: programming interface byte (RO). */
export const PCI_CLASS_PROG = 0x09;
/** Class code: subclass (low byte) and base class (high byte), 16 bits (RO). */
export const PCI_CLASS_DEVICE = 0x0a;
/** Cache line size (8 bits). */
export const PCI_CACHE_LINE_SIZE = 0x0c;
/** Latency timer (8 bits). */
export const PCI_LATENCY_TIMER = 0x0d;
/** Header type (8 bits, RO); bit 7 = multi-function. */
export const PCI_HEADER_TYPE = 0x0e;
/** Header type 0: a normal device. */
export const PCI_HEADER_TYPE_NORMAL = 0;
/** First base address register (PCI 3.0 §6.2.5.1); BAR n is at 0x10 + 4·n. */
export const PCI_BASE_ADDRESS_0 = 0x10;
/** Number of BARs of a type-0 header. */
export const PCI_STD_NUM_BARS = 6;
/** Subsystem vendor id (16 bits, RO). */
export const PCI_SUBSYSTEM_VENDOR_ID = 0x2c;
/** Subsystem id (16 bits, RO). */
export const PCI_SUBSYSTEM_ID = 0x2e;
/** Expansion ROM base address (32 bits). */
export const PCI_ROM_ADDRESS = 0x30;
/** Capabilities pointer (8 bits, RO), PCI 3.0 §6.7. */
export const PCI_CAPABILITY_LIST = 0x34;
/** Interrupt line (8 bits, RW: written by firmware). */
export const PCI_INTERRUPT_LINE = 0x3c;
/** Interrupt pin (8 bits, RO): 0 none, 1 INTA … 4 INTD. */
export const PCI_INTERRUPT_PIN = 0x3d;
/** Interrupt pin value of INTA#. */
export const PCI_INTERRUPT_PIN_INTA = 1;
/** Size of the type-0 header; capabilities start here. */
export const PCI_STD_HEADER_SIZEOF = 0x40;

// Command bits (PCI 3.0 §6.2.2).
/** Respond to I/O space accesses. */
export const PCI_COMMAND_IO = 0x1;
/** Respond to memory space accesses. */
export const PCI_COMMAND_MEMORY = 0x2;
/** Bus master: the function may issue memory requests (DMA, MSI). */
export const PCI_COMMAND_MASTER = 0x4;
/** Parity error response. */
export const PCI_COMMAND_PARITY = 0x40;
/** SERR# enable. */
export const PCI_COMMAND_SERR = 0x100;
/** INTx emulation disable. */
export const PCI_COMMAND_INTX_DISABLE = 0x400;

// Status bits (PCI 3.0 §6.2.3).
/** INTx status: the function's INTx is asserted (RO). */
export const PCI_STATUS_INTERRUPT = 0x8;
/** Capabilities list present (RO). */
export const PCI_STATUS_CAP_LIST = 0x10;
/** Master data parity error (RW1C). */
export const PCI_STATUS_PARITY = 0x100;
/** Signaled target abort (RW1C). */
export const PCI_STATUS_SIG_TARGET_ABORT = 0x800;
/** Received target abort (RW1C). */
export const PCI_STATUS_REC_TARGET_ABORT = 0x1000;
/** Received master abort (RW1C). */
export const PCI_STATUS_REC_MASTER_ABORT = 0x2000;
/** Signaled system error (RW1C). */
export const PCI_STATUS_SIG_SYSTEM_ERROR = 0x4000;
/** Detected parity error (RW1C). */
export const PCI_STATUS_DETECTED_PARITY = 0x8000;

// BAR bits (PCI 3.0 §6.2.5.1).
/** BAR bit 0: I/O space. */
export const PCI_BASE_ADDRESS_SPACE_IO = 0x1;
/** Memory BAR type bits 2:1 = 10b: 64-bit. */
export const PCI_BASE_ADDRESS_MEM_TYPE_64 = 0x4;
/** Memory BAR bit 3: prefetchable. */
export const PCI_BASE_ADDRESS_MEM_PREFETCH = 0x8;
/** Address bits of a memory BAR. */
export const PCI_BASE_ADDRESS_MEM_MASK = 0xfffffff0;
/** Address bits of an I/O BAR. */
export const PCI_BASE_ADDRESS_IO_MASK = 0xfffffffc;

// Capability list (PCI 3.0 §6.7): each capability starts with an id byte and a next pointer.
/** Offset of the capability id in a capability. */
export const PCI_CAP_LIST_ID = 0;
/** Offset of the next pointer in a capability. */
export const PCI_CAP_LIST_NEXT = 1;
/** Power Management capability id (PCI PM 1.2 §3.2). */
export const PCI_CAP_ID_PM = 0x01;
/** MSI capability id (PCI 3.0 §6.8.1). */
export const PCI_CAP_ID_MSI = 0x05;
/** PCI Express capability id (PCIe 4.0 §7.5.3). */
export const PCI_CAP_ID_EXP = 0x10;
/** Capability id: vendor specific (PCI 3.0 §6.7; virtio's structure capabilities). */
export const PCI_CAP_ID_VNDR = 0x09;
/** MSI-X capability id (PCI 3.0 §6.8.2). */
export const PCI_CAP_ID_MSIX = 0x11;

// MSI capability (PCI 3.0 §6.8.1).
/** Message control (16 bits). */
export const PCI_MSI_FLAGS = 0x02;
/** MSI enable. */
export const PCI_MSI_FLAGS_ENABLE = 0x0001;
/** Multiple Message Capable (RO): log2 of vectors the function requests. */
export const PCI_MSI_FLAGS_QMASK = 0x000e;
/** Multiple Message Enable (RW): log2 of vectors allocated. */
export const PCI_MSI_FLAGS_QSIZE = 0x0070;
/** 64-bit message address capable. */
export const PCI_MSI_FLAGS_64BIT = 0x0080;
/** Per-vector masking capable. */
export const PCI_MSI_FLAGS_MASKBIT = 0x0100;
/** Message address, low 32 bits (bits 1:0 reserved 0). */
export const PCI_MSI_ADDRESS_LO = 0x04;
/** Message address, high 32 bits (64-bit capability). */
export const PCI_MSI_ADDRESS_HI = 0x08;
/** Message data (32-bit capability). */
export const PCI_MSI_DATA_32 = 0x08;
/** Mask bits (32-bit capability with per-vector masking). */
export const PCI_MSI_MASK_32 = 0x0c;
/** Pending bits (32-bit capability with per-vector masking). */
export const PCI_MSI_PENDING_32 = 0x10;
/** Message data (64-bit capability). */
export const PCI_MSI_DATA_64 = 0x0c;
/** Mask bits (64-bit capability with per-vector masking). */
export const PCI_MSI_MASK_64 = 0x10;
/** Pending bits (64-bit capability with per-vector masking). */
export const PCI_MSI_PENDING_64 = 0x14;
/** Writable bits of the message address low dword (DWORD-aligned address). */
export const PCI_MSI_ADDRESS_LO_MASK = 0xfffffffc;
/** Most MSI vectors a function can have. */
export const PCI_MSI_VECTORS_MAX = 32;

// MSI-X capability (PCI 3.0 §6.8.2).
/** Message control (16 bits). */
export const PCI_MSIX_FLAGS = 0x02;
/** Table size − 1 (RO). */
export const PCI_MSIX_FLAGS_QSIZE = 0x07ff;
/** Function mask. */
export const PCI_MSIX_FLAGS_MASKALL = 0x4000;
/** MSI-X enable. */
export const PCI_MSIX_FLAGS_ENABLE = 0x8000;
/** Table offset (bits 31:3) and BIR (bits 2:0). */
export const PCI_MSIX_TABLE = 0x04;
/** PBA offset (bits 31:3) and BIR (bits 2:0). */
export const PCI_MSIX_PBA = 0x08;
/** BIR field of the table/PBA registers. */
export const PCI_MSIX_TABLE_BIR = 0x7;
/** Offset field of the table/PBA registers. */
export const PCI_MSIX_TABLE_OFFSET = 0xfffffff8;
/** Size of the MSI-X capability. */
export const PCI_CAP_MSIX_SIZEOF = 12;
/** Size of one MSI-X table entry (address lo, hi, data, vector control). */
export const PCI_MSIX_ENTRY_SIZE = 16;

// Power Management capability (PCI Bus Power Management Interface 1.2 §3.2).
/** Power management capabilities (16 bits, RO). */
export const PCI_PM_PMC = 0x02;
/** PMC version field value for PM 1.2. */
export const PCI_PM_CAP_VER_1_2 = 0x0003;
/** Power management control/status (16 bits). */
export const PCI_PM_CTRL = 0x04;
/** Power state D0–D3hot (RW). */
export const PCI_PM_CTRL_STATE_MASK = 0x0003;
/** No_Soft_Reset (RO): D3hot → D0 keeps state. */
export const PCI_PM_CTRL_NO_SOFT_RESET = 0x0008;
/** PME_En (RW). */
export const PCI_PM_CTRL_PME_ENABLE = 0x0100;
/** PME_Status (RW1C). */
export const PCI_PM_CTRL_PME_STATUS = 0x8000;
/** Size of the PM capability. */
export const PCI_PM_SIZEOF = 8;

// PCI Express capability (PCIe 4.0 §7.5.3).
/** PCI Express capabilities register (16 bits, RO). */
export const PCI_EXP_FLAGS = 0x02;
/** Capability version 2. */
export const PCI_EXP_FLAGS_VERS_2 = 0x0002;
/** Capability version 1. */
export const PCI_EXP_FLAGS_VERS_1 = 0x0001;
/** Device/port type field shift (bits 7:4). */
export const PCI_EXP_FLAGS_TYPE_SHIFT = 4;
/** Device/port type: PCI Express endpoint. */
export const PCI_EXP_TYPE_ENDPOINT = 0x0;
/** Device/port type: root-complex integrated endpoint. */
export const PCI_EXP_TYPE_RC_END = 0x9;
/** Device capabilities (32 bits, RO). */
export const PCI_EXP_DEVCAP = 0x04;
/** Device capabilities: function-level reset capable. */
export const PCI_EXP_DEVCAP_FLR = 0x10000000;
/** Device control (16 bits). */
export const PCI_EXP_DEVCTL = 0x08;
/** Device control bits software may write (14:0). */
export const PCI_EXP_DEVCTL_WRITABLE = 0x7fff;
/** Device control: initiate function-level reset (bit 15; reads 0). */
export const PCI_EXP_DEVCTL_BCR_FLR = 0x8000;
/** Device status (16 bits). */
export const PCI_EXP_DEVSTA = 0x0a;
/** Device status error bits CED/NFED/FED/URD (RW1C). */
export const PCI_EXP_DEVSTA_ERRORS = 0x000f;
/** Link capabilities (32 bits, RO). */
export const PCI_EXP_LNKCAP = 0x0c;
/** Link control (16 bits). */
export const PCI_EXP_LNKCTL = 0x10;
/** Link status (16 bits, RO). */
export const PCI_EXP_LNKSTA = 0x12;
/** Device capabilities 2 (32 bits, RO). */
export const PCI_EXP_DEVCAP2 = 0x24;
/** Device control 2 (16 bits). */
export const PCI_EXP_DEVCTL2 = 0x28;
/** Size of a version-2 endpoint PCI Express capability. */
export const PCI_CAP_EXP_ENDPOINT_SIZEOF_V2 = 0x3c;
/** Size of a version-1 endpoint PCIe capability. */
export const PCI_CAP_EXP_ENDPOINT_SIZEOF_V1 = 0x14;
/** Extended capabilities start here; a zero header means none (PCIe 4.0 §7.6.3). */
export const PCI_CFG_SPACE_EXT_START = 0x100;

// PCIe extended capabilities (PCIe 4.0 §7.6.3 header; Linux pci_regs.h names).
/** Extended capability id: Device Serial Number (PCIe 4.0 §7.9.3). */
export const PCI_EXT_CAP_ID_DSN = 0x0003;
/** Size of the Device Serial Number capability. */
export const PCI_EXT_CAP_DSN_SIZEOF = 12;
/** Extended capability id: PASID (PCIe 4.0 §7.8.8). */
export const PCI_EXT_CAP_ID_PASID = 0x001b;
/** Size of the PASID capability. */
export const PCI_EXT_CAP_PASID_SIZEOF = 8;
/** Extended capability header: version shift (bits 19:16). */
export const PCI_EXT_CAP_VER_SHIFT = 16;
/** Extended capability header: next pointer shift (bits 31:20). */
export const PCI_EXT_CAP_NEXT_SHIFT = 20;
/** PASID Capability register (16 bits, RO). */
export const PCI_PASID_CAP = 0x04;
/** PASID Capability: Execute Permission Supported. */
export const PCI_PASID_CAP_EXEC = 0x0002;
/** PASID Capability: Privileged Mode Supported. */
export const PCI_PASID_CAP_PRIV = 0x0004;
/** PASID Capability: Max PASID Width, bits 12:8. */
export const PCI_PASID_CAP_WIDTH = 0x1f00;
/** Shift of the Max PASID Width field. */
export const PCI_PASID_CAP_WIDTH_SHIFT = 8;
/** PASID Control register (16 bits). */
export const PCI_PASID_CTRL = 0x06;
/** PASID Control: PASID Enable. */
export const PCI_PASID_CTRL_ENABLE = 0x0001;
/** PASID Control: Execute Permission Enable. */
export const PCI_PASID_CTRL_EXEC = 0x0002;
/** PASID Control: Privileged Mode Enable. */
export const PCI_PASID_CTRL_PRIV = 0x0004;
/** Largest Max PASID Width the capability can express (20 bits, PCIe 4.0 §6.20). */
export const PCI_PASID_WIDTH_MAX = 20;

/** Extended capability id: Address Translation Services (PCIe 4.0 §7.8.7). */
export const PCI_EXT_CAP_ID_ATS = 0x000f;
/** Size of the ATS capability. */
export const PCI_EXT_CAP_ATS_SIZEOF = 8;
/** ATS Capability register (16 bits, RO). */
export const PCI_ATS_CAP = 0x04;
/** ATS Capability: Invalidate Queue Depth, bits 4:0 (0 means 32). */
export const PCI_ATS_CAP_QDEP_MASK = 0x001f;
/** ATS Capability: Page Aligned Request (untranslated addresses of requests are page aligned). */
export const PCI_ATS_CAP_PAGE_ALIGNED = 0x0020;
/** ATS Control register (16 bits). */
export const PCI_ATS_CTRL = 0x06;
/** ATS Control: Smallest Translation Unit, bits 4:0 (log2 of the size, minus 12). */
export const PCI_ATS_CTRL_STU_MASK = 0x001f;
/** ATS Control: Enable. */
export const PCI_ATS_CTRL_ENABLE = 0x8000;

/** Extended capability id: Page Request Interface (PCIe 4.0 §7.8.10). */
export const PCI_EXT_CAP_ID_PRI = 0x0013;
/** Size of the PRI capability. */
export const PCI_EXT_CAP_PRI_SIZEOF = 16;
/** Page Request Control register (16 bits). */
export const PCI_PRI_CTRL = 0x04;
/** Page Request Control: Enable. */
export const PCI_PRI_CTRL_ENABLE = 0x0001;
/** Page Request Control: Reset (write 1; reads 0). */
export const PCI_PRI_CTRL_RESET = 0x0002;
/** Page Request Status register (16 bits). */
export const PCI_PRI_STATUS = 0x06;
/** Page Request Status: Response Failure (RW1C). */
export const PCI_PRI_STATUS_RF = 0x0001;
/** Page Request Status: Unexpected Page Request Group Index (RW1C). */
export const PCI_PRI_STATUS_UPRGI = 0x0002;
/** Page Request Status: Stopped (Enable clear, no page request outstanding). */
export const PCI_PRI_STATUS_STOPPED = 0x0100;
/** Page Request Status: PRG Response PASID Required. */
export const PCI_PRI_STATUS_PASID = 0x8000;
/** Outstanding Page Request Capacity (32 bits, RO). */
export const PCI_PRI_MAX_REQ = 0x08;
/** Outstanding Page Request Allocation (32 bits, RW). */
export const PCI_PRI_ALLOC_REQ = 0x0c;
