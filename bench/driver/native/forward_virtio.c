/*
 * The C forwarding loop over split virtqueues: the same algorithm as drivers/virtio/net_rings.ts
 * (VirtioRxRing receive/refill, VirtioTxRing reclaim/send) and net.ts's rxBatch/txBatch, on the
 * same queues in the same memory. Ordering as Linux's virtio_ring does it on x86: the used index
 * is read with an acquire load once per batch, the available index is published with a
 * sequentially consistent store (the full barrier virtqueue_kick_prepare needs before it reads
 * the device's NO_NOTIFY flag), then the flag is read.
 */
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "pool.h"
#include "loop.h"

#define PORTS 2

struct stats {
  uint64_t rx_packets, rx_bytes, tx_packets, tx_bytes, rx_dropped, tx_dropped;
};

struct queue {
  uint32_t *desc32;
  uint16_t *desc16;
  uint16_t *avail;
  uint16_t *used16;
  uint32_t *used32;
  uint32_t size, mask;
  uint16_t avail_idx, last_used;
  uint32_t last_length;
};

struct ring {
  struct queue q;
  struct pkt **slot;
  int32_t *free;
  int32_t top;
  uint64_t notifies;
};

static struct {
  struct pool pool;
  struct stats stats;
  struct ring rx[PORTS];
  struct ring tx[PORTS];
  struct pkt **batch;
  uint64_t counts[FWD_STATS];
} fwd;

/* virtqueue.ts SplitQueue. */
static void set_descriptor(struct queue *q, uint32_t i, uint64_t iova, uint32_t length,
                           uint16_t flags) {
  uint32_t w = i * 4;
  __atomic_store_n(&q->desc32[w], (uint32_t)iova, __ATOMIC_RELAXED);
  __atomic_store_n(&q->desc32[w + 1], (uint32_t)(iova >> 32), __ATOMIC_RELAXED);
  __atomic_store_n(&q->desc32[w + 2], length, __ATOMIC_RELAXED);
  __atomic_store_n(&q->desc16[i * 8 + 6], flags, __ATOMIC_RELAXED);
  __atomic_store_n(&q->desc16[i * 8 + 7], 0, __ATOMIC_RELAXED);
}

static void offer(struct queue *q, uint32_t i) {
  __atomic_store_n(&q->avail[2 + (q->avail_idx & q->mask)], (uint16_t)i, __ATOMIC_RELAXED);
  q->avail_idx++;
}

static void publish(struct queue *q) {
  __atomic_store_n(&q->avail[1], q->avail_idx, __ATOMIC_SEQ_CST);
}

static int needs_notify(struct queue *q) {
  return (__atomic_load_n(&q->used16[0], __ATOMIC_RELAXED) & VIRTQ_USED_F_NO_NOTIFY) == 0;
}

static uint32_t used_pending(struct queue *q) {
  return (uint16_t)(__atomic_load_n(&q->used16[1], __ATOMIC_ACQUIRE) - q->last_used);
}

static uint32_t pop_used(struct queue *q) {
  uint32_t slot = (q->last_used & q->mask) * 2;
  q->last_used++;
  q->last_length = __atomic_load_n(&q->used32[slot + 1], __ATOMIC_RELAXED);
  return __atomic_load_n(&q->used32[slot], __ATOMIC_RELAXED);
}

/* VirtioRxRing. */
static uint32_t rx_receive(struct ring *r, struct pkt **out, uint32_t max) {
  uint32_t pending = used_pending(&r->q);
  uint32_t k = pending < max ? pending : max;
  uint32_t n = 0;
  for (uint32_t j = 0; j < k; j++) {
    uint32_t id = pop_used(&r->q) & r->q.mask;
    struct pkt *buf = r->slot[id];
    if (buf == NULL) {
      fwd.stats.rx_dropped++;
      continue;
    }
    r->slot[id] = NULL;
    r->free[r->top++] = (int32_t)id;
    int64_t frame = (int64_t)r->q.last_length - VIRTIO_NET_HDR_SIZE;
    if (frame <= 0 || frame > buf->capacity) {
      fwd.stats.rx_dropped++;
      pool_free(&fwd.pool, buf);
      continue;
    }
    buf->length = (uint32_t)frame;
    out[n++] = buf;
    fwd.stats.rx_packets++;
    fwd.stats.rx_bytes += (uint32_t)frame;
  }
  return n;
}

static uint32_t rx_refill(struct ring *r) {
  uint32_t offered = 0;
  while (r->top > 0) {
    struct pkt *buf = pool_alloc(&fwd.pool);
    if (buf == NULL) break;
    uint32_t id = (uint32_t)r->free[--r->top];
    set_descriptor(&r->q, id, buf->iova - VIRTIO_NET_HDR_SIZE, buf->capacity + VIRTIO_NET_HDR_SIZE,
                   VIRTQ_DESC_F_WRITE);
    r->slot[id] = buf;
    offer(&r->q, id);
    offered++;
  }
  if (offered > 0) {
    publish(&r->q);
    if (needs_notify(&r->q)) r->notifies++;
  }
  return offered;
}

/* VirtioTxRing. */
static uint32_t tx_reclaim(struct ring *t) {
  uint32_t pending = used_pending(&t->q);
  uint32_t n = 0;
  for (uint32_t j = 0; j < pending; j++) {
    uint32_t id = pop_used(&t->q) & t->q.mask;
    struct pkt *buf = t->slot[id];
    if (buf == NULL) continue;
    t->slot[id] = NULL;
    t->free[t->top++] = (int32_t)id;
    fwd.stats.tx_packets++;
    pool_free(&fwd.pool, buf);
    n++;
  }
  return n;
}

static uint32_t tx_send(struct ring *t, struct pkt **bufs, uint32_t count) {
  uint32_t n = count < (uint32_t)t->top ? count : (uint32_t)t->top;
  for (uint32_t j = 0; j < n; j++) {
    struct pkt *buf = bufs[j];
    uint32_t id = (uint32_t)t->free[--t->top];
    memset(buf->data - VIRTIO_NET_HDR_SIZE, 0, VIRTIO_NET_HDR_SIZE);
    set_descriptor(&t->q, id, buf->iova - VIRTIO_NET_HDR_SIZE, buf->length + VIRTIO_NET_HDR_SIZE,
                   0);
    t->slot[id] = buf;
    offer(&t->q, id);
    fwd.stats.tx_bytes += buf->length;
  }
  if (n > 0) {
    publish(&t->q);
    if (needs_notify(&t->q)) t->notifies++;
  }
  return n;
}

/* net.ts rxBatch and txBatch. */
static uint32_t rx_batch(struct ring *r, struct pkt **out, uint32_t max) {
  uint32_t n = rx_receive(r, out, max);
  if (n > 0) rx_refill(r);
  return n;
}

static uint32_t tx_batch(struct ring *t, struct pkt **bufs, uint32_t count) {
  tx_reclaim(t);
  uint32_t n = tx_send(t, bufs, count);
  fwd.stats.tx_dropped += count - n;
  return n;
}


DEFINE_FORWARD_LOOP(virtio, struct ring, struct ring)

/* splitQueueLayout(): descriptors at 0, available ring, used ring (virtio 1.2 §2.7). */
static int queue_init(struct ring *r, uint8_t *mem, uint32_t size) {
  uint32_t avail = size * 16;
  uint32_t used = (avail + 6 + 2 * size + 3) & ~3u;
  uint32_t total = (used + 6 + 8 * size + 15) & ~15u;
  memset(mem, 0, total);
  r->q.desc32 = (uint32_t *)mem;
  r->q.desc16 = (uint16_t *)mem;
  r->q.avail = (uint16_t *)(mem + avail);
  r->q.used16 = (uint16_t *)(mem + used);
  r->q.used32 = (uint32_t *)(mem + used + 4);
  r->q.size = size;
  r->q.mask = size - 1;
  r->slot = calloc(size, sizeof *r->slot);
  r->free = calloc(size, sizeof *r->free);
  if (!r->slot || !r->free) return -1;
  for (uint32_t i = 0; i < size; i++) r->free[i] = (int32_t)(size - 1 - i);
  r->top = (int32_t)size;
  /* Polling driver: no interrupts (VIRTQ_AVAIL_F_NO_INTERRUPT). */
  r->q.avail[0] = 1;
  return 0;
}

/*
 * Lay four queues (queues[4]: rx0, tx0, rx1, tx1 offsets) and a shared pool over the memory the
 * Deno side allocated. 0, or negative.
 */
int virtio_fwd_setup(uint8_t *dma, const uint32_t *queues, uint32_t queue_size,
                     uint32_t pool_offset, uint32_t pool_size, uint32_t buffer_size,
                     uint32_t headroom, uint32_t max_batch) {
  memset(&fwd, 0, sizeof fwd);
  if (pool_init(&fwd.pool, dma + pool_offset, (int32_t)pool_size, buffer_size, headroom) != 0)
    return -1;
  fwd.batch = calloc(max_batch, sizeof *fwd.batch);
  for (int p = 0; p < PORTS; p++) {
    if (queue_init(&fwd.rx[p], dma + queues[p * 2], queue_size) != 0) return -1;
    if (queue_init(&fwd.tx[p], dma + queues[p * 2 + 1], queue_size) != 0) return -1;
  }
  return fwd.batch ? 0 : -1;
}

/* The loop's counts, then free everything setup allocated. */
void virtio_fwd_finish(uint64_t *counts) {
  virtio_fwd_counts(counts);
  for (int p = 0; p < PORTS; p++) {
    free(fwd.rx[p].slot);
    free(fwd.rx[p].free);
    free(fwd.tx[p].slot);
    free(fwd.tx[p].free);
  }
  free(fwd.batch);
  pool_destroy(&fwd.pool);
}
