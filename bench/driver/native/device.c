/*
 * The device: one pthread that plays the NIC for every queue of the bench, completing descriptors
 * concurrently with the driver thread as hardware does. It is an endless packet source and an
 * endless sink: every receive descriptor the driver posts is filled with a frame as soon as the
 * tail register shows it, every transmit descriptor is "sent" as soon as it is queued. It writes
 * no frame bytes (the driver's one-byte touch then hits its own cache, which makes the comparison
 * stricter, not looser: no shared cache miss hides the driver's own cost).
 *
 * igb: per port, queue 0 of the 82576 in the advanced descriptor formats. The ring base and
 * length come from RDBAL/RDBAH/RDLEN (TDBAL/...) as the driver programmed them; the device reads
 * the tail register with an acquire load, writes the receive write-back (RSS/type words, length,
 * then the status word with DD|EOP last, a release store) or the transmit DD, and moves the head
 * register once per pass.
 *
 * virtio: per split queue, the device reads avail->idx with an acquire load, takes each new head,
 * reads its descriptor, writes a used element and publishes used->idx with a release store. It
 * sets VIRTQ_USED_F_NO_NOTIFY (a polling device, like vhost busy-polling), so the driver never
 * kicks.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define MAX_QUEUES 8

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ volatile("yield" ::: "memory")
#else
#define cpu_relax() __asm__ volatile("" ::: "memory")
#endif

struct igb_queue {
  uint32_t *ring;
  uint32_t mask;
  uint32_t head;
  uint32_t *head_reg;
  uint32_t *tail_reg;
  int receive;
};

struct virtio_queue {
  uint32_t *desc;  /* 16-byte descriptors: addr lo, addr hi, len, flags | next << 16 */
  uint16_t *avail; /* flags, idx, ring[] */
  uint16_t *used16; /* flags, idx */
  uint32_t *used;  /* elements: id, len */
  uint32_t mask;
  uint16_t last_avail;
  uint16_t used_idx;
  uint32_t written;
};

static struct {
  pthread_t thread;
  int running;
  volatile int stop;
  int kind; /* 0: igb, 1: virtio */
  uint32_t count;
  uint32_t frame_len;
  struct igb_queue igb[MAX_QUEUES];
  struct virtio_queue vq[MAX_QUEUES];
  uint64_t stats[DEV_STATS];
  cpu_set_t driver_cpus;
} dev;

static uint32_t *reg(uint8_t *bar, uint32_t offset) { return (uint32_t *)(bar + offset); }

static uint32_t *ring_at(uint8_t *bar, uint32_t block) {
  uint64_t lo = *reg(bar, block + QUEUE_DBAL), hi = *reg(bar, block + QUEUE_DBAH);
  return (uint32_t *)(uintptr_t)(lo | hi << 32);
}

/* Complete what the driver queued on one igb queue; returns descriptors done. */
static uint32_t igb_pass(struct igb_queue *q, uint64_t *stats) {
  uint32_t tail = __atomic_load_n(q->tail_reg, __ATOMIC_ACQUIRE);
  uint32_t head = q->head, n = 0;
  while (head != tail) {
    uint32_t *d = q->ring + head * DESC_WORDS;
    if (q->receive) {
      /* Advanced receive write-back: packet type / RSS words, length, status last (DD). */
      d[0] = 0;
      d[1] = 0;
      d[RX_WB_LENGTH_WORD] = dev.frame_len;
      __atomic_store_n(&d[RX_WB_STATUS_WORD], RXD_STAT_DD | RXD_STAT_EOP, __ATOMIC_RELEASE);
    } else {
      /* Fetch the data descriptor as the DMA engine would, then write DD back. */
      stats[DEV_TX_BYTES] += d[TX_CMD_WORD] & TXD_LENGTH_MASK;
      __atomic_store_n(&d[TX_STATUS_WORD], TXD_STAT_DD, __ATOMIC_RELEASE);
    }
    head = (head + 1) & q->mask;
    n++;
  }
  if (n > 0) {
    q->head = head;
    __atomic_store_n(q->head_reg, head, __ATOMIC_RELEASE);
  }
  return n;
}

/* Use every buffer the driver made available on one split queue; returns buffers used. */
static uint32_t virtio_pass(struct virtio_queue *q, uint64_t *stats) {
  uint16_t avail = __atomic_load_n(&q->avail[1], __ATOMIC_ACQUIRE);
  uint16_t n = 0;
  while (q->last_avail != avail) {
    uint32_t id = q->avail[2 + (q->last_avail & q->mask)];
    uint32_t *d = q->desc + (id & q->mask) * 4;
    stats[DEV_TX_BYTES] += q->written ? 0 : d[2];
    uint32_t slot = (q->used_idx & q->mask) * 2;
    q->used[slot] = id;
    q->used[slot + 1] = q->written;
    q->last_avail++;
    q->used_idx++;
    n++;
  }
  if (n > 0) __atomic_store_n(&q->used16[1], q->used_idx, __ATOMIC_RELEASE);
  return n;
}

static void *device_main(void *arg) {
  (void)arg;
  uint64_t stats[DEV_STATS] = {0};
  while (!dev.stop) {
    uint32_t work = 0;
    for (uint32_t i = 0; i < dev.count; i++) {
      if (dev.kind == 0) {
        uint32_t n = igb_pass(&dev.igb[i], stats);
        stats[dev.igb[i].receive ? DEV_RX_DONE : DEV_TX_DONE] += n;
        work += n;
      } else {
        uint32_t n = virtio_pass(&dev.vq[i], stats);
        stats[dev.vq[i].written ? DEV_RX_DONE : DEV_TX_DONE] += n;
        work += n;
      }
    }
    stats[DEV_PASSES]++;
    if (work == 0) {
      stats[DEV_IDLE]++;
      cpu_relax();
    }
  }
  memcpy(dev.stats, stats, sizeof stats);
  return NULL;
}

/*
 * The calling (driver) thread stays on the CPU it is on and the device thread gets another one,
 * so the two never take turns on one CPU (on a shared machine that would leave the device
 * asleep while the driver polls). The driver thread's CPU set is restored by device_stop.
 */
static int start(int kind, uint32_t count) {
  if (dev.running) return -1;
  if (sched_getaffinity(0, sizeof dev.driver_cpus, &dev.driver_cpus) != 0) return -5;
  int here = sched_getcpu();
  int other = -1;
  for (int c = 0; c < CPU_SETSIZE; c++) {
    if (c != here && CPU_ISSET(c, &dev.driver_cpus)) other = c;
  }
  if (here < 0 || other < 0) return -6;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(here, &one);
  if (sched_setaffinity(0, sizeof one, &one) != 0) return -5;
  dev.kind = kind;
  dev.count = count;
  dev.stop = 0;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  CPU_ZERO(&one);
  CPU_SET(other, &one);
  pthread_attr_setaffinity_np(&attr, sizeof one, &one);
  int err = pthread_create(&dev.thread, &attr, device_main, NULL);
  pthread_attr_destroy(&attr);
  if (err != 0) {
    sched_setaffinity(0, sizeof dev.driver_cpus, &dev.driver_cpus);
    return -2;
  }
  dev.running = 1;
  return 0;
}

/*
 * Start the device on `ports` igb functions whose BARs lie `bar_size` apart from `bar`, using the
 * rings the driver programmed; every received frame is `frame_len` bytes. 0, or negative.
 */
int igb_device_start(uint8_t *bar, uint32_t bar_size, uint32_t ports, uint32_t frame_len) {
  if (ports * 2 > MAX_QUEUES) return -3;
  dev.frame_len = frame_len;
  for (uint32_t p = 0; p < ports; p++) {
    uint8_t *b = bar + (uint64_t)p * bar_size;
    for (int rx = 0; rx < 2; rx++) {
      uint32_t block = rx ? IGB_RX_QUEUE_BASE : IGB_TX_QUEUE_BASE;
      struct igb_queue *q = &dev.igb[p * 2 + (rx ? 0 : 1)];
      q->ring = ring_at(b, block);
      q->mask = *reg(b, block + QUEUE_DLEN) / (DESC_WORDS * 4) - 1;
      q->head = *reg(b, block + QUEUE_DH);
      q->head_reg = reg(b, block + QUEUE_DH);
      q->tail_reg = reg(b, block + QUEUE_DT);
      q->receive = rx;
      if (q->ring == NULL || ((q->mask + 1) & q->mask) != 0) return -4;
    }
  }
  return start(0, ports * 2);
}

/*
 * Start the device on `count` split queues, each described by five u64s: descriptor table,
 * available ring, used ring (addresses), size, and the length the device reports per used
 * buffer (receive: header + frame; transmit: 0). 0, or negative.
 */
int virtio_device_start(const uint64_t *queues, uint32_t count) {
  if (count > MAX_QUEUES) return -3;
  for (uint32_t i = 0; i < count; i++) {
    const uint64_t *c = queues + i * 5;
    struct virtio_queue *q = &dev.vq[i];
    q->desc = (uint32_t *)(uintptr_t)c[0];
    q->avail = (uint16_t *)(uintptr_t)c[1];
    q->used16 = (uint16_t *)(uintptr_t)c[2];
    q->used = (uint32_t *)(uintptr_t)(c[2] + 4);
    q->mask = (uint32_t)c[3] - 1;
    q->written = (uint32_t)c[4];
    q->last_avail = 0;
    q->used_idx = 0;
    if ((c[3] & q->mask) != 0) return -4;
    __atomic_store_n(&q->used16[0], VIRTQ_USED_F_NO_NOTIFY, __ATOMIC_RELEASE);
  }
  return start(1, count);
}

/* Stop the device thread and copy its counters to `stats` (DEV_STATS u64s). */
int device_stop(uint64_t *stats) {
  if (!dev.running) return -1;
  dev.stop = 1;
  pthread_join(dev.thread, NULL);
  dev.running = 0;
  sched_setaffinity(0, sizeof dev.driver_cpus, &dev.driver_cpus);
  memcpy(stats, dev.stats, sizeof dev.stats);
  return 0;
}
