/*
 * The native half of bench/driver: a device thread that completes descriptors the way a NIC does
 * (device.c), and the C forwarding loops the Deno driver is measured against (forward_igb.c,
 * forward_virtio.c). Everything lives in memory the Deno side allocated and shares: the
 * "registers" are a memfd both sides map, the rings and packet buffers are anonymous shared
 * memory whose virtual address doubles as the IOVA (an identity-mapped IOMMU).
 *
 * Descriptor and register facts are the same ones the TypeScript driver uses
 * (drivers/e1000/registers.ts, drivers/igb/registers.ts, drivers/virtio/registers.ts); the
 * numbers below are those, repeated for C.
 */
#ifndef DRIVER_BENCH_H
#define DRIVER_BENCH_H

#include <stdint.h>

/* 82576 queue-0 register blocks (82576 datasheet §8.10, §8.12) and their registers. */
#define IGB_RX_QUEUE_BASE 0x0c000u
#define IGB_TX_QUEUE_BASE 0x0e000u
#define QUEUE_DBAL 0x00u
#define QUEUE_DBAH 0x04u
#define QUEUE_DLEN 0x08u
#define QUEUE_DH 0x10u
#define QUEUE_DT 0x18u

/* 16-byte descriptors as four 32-bit words (82576 §7.1.5 advanced receive, §7.2.2.3 transmit). */
#define DESC_WORDS 4u
#define RX_WB_STATUS_WORD 2u
#define RX_WB_LENGTH_WORD 3u
#define RXD_STAT_DD (1u << 0)
#define RXD_STAT_EOP (1u << 1)
#define RXD_LENGTH_MASK 0xffffu
#define RXD_FRAME_ERRORS ((1u << 24) | (1u << 25) | (1u << 26) | (1u << 28) | (1u << 31))
#define TX_CMD_WORD 2u
#define TX_STATUS_WORD 3u
#define TXD_LENGTH_MASK 0xffffu
#define TXD_CMD_EOP (1u << 24)
#define TXD_CMD_IFCS (1u << 25)
#define TXD_CMD_RS (1u << 27)
#define TXD_CMD_DEXT (1u << 29)
#define IGB_ADVTXD_DTYP_DATA (0x3u << 20)
#define IGB_ADVTXD_PAYLEN_SHIFT 14u
#define TXD_STAT_DD (1u << 0)

/* Split virtqueues (virtio 1.2 §2.7). */
#define VIRTQ_DESC_F_WRITE 2u
#define VIRTQ_USED_F_NO_NOTIFY 1u
#define VIRTIO_NET_HDR_SIZE 12u

/* What the device thread counts; written once when it stops. */
enum device_stat {
  DEV_RX_DONE,   /* receive descriptors completed */
  DEV_TX_DONE,   /* transmit descriptors completed */
  DEV_TX_BYTES,  /* bytes the transmit descriptors named */
  DEV_PASSES,    /* passes over every queue */
  DEV_IDLE,      /* passes that found nothing to do */
  DEV_STATS,
};

/* What a forwarding loop counts (the same fields as the TypeScript side's counters). */
enum fwd_stat {
  FWD_RX_CALLS,   /* receive-batch calls */
  FWD_RX_PACKETS, /* frames received */
  FWD_FORWARDED,  /* frames queued for transmit */
  FWD_TX_DROPPED, /* frames freed because the transmit ring was full */
  FWD_RX_DROPPED, /* frames the receive path dropped (errors, bad length) */
  FWD_STATS,
};

int device_stop(uint64_t *stats);
int igb_device_start(uint8_t *bar, uint32_t bar_size, uint32_t ports, uint32_t frame_len);
int virtio_device_start(const uint64_t *queues, uint32_t count);

#endif
