/*
 * The C forwarding loop over igb rings: the same algorithm as drivers/e1000/rings.ts (RxRing
 * receive/refill, TxRing reclaim/send) and nic.ts's rxBatch/txBatch — the same descriptor words
 * read and written, the same checks per frame (EOP, errors, length, the pool's double-free flag),
 * the same counters — on rings of the same layout in the same shared memory, with C's ordering
 * tools: descriptor words are read and written with relaxed atomics (plain moves), the receive
 * batch is ordered by one acquire load of its last status word, and the tail register is written
 * with a release store (a plain move on x86, as ixy's C driver does). Where the TypeScript driver
 * pays for a sequentially consistent Atomics.store (an xchg on x86) before the tail write, C's
 * release store is free: that difference is part of what the bench measures.
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

struct rx_ring {
  uint32_t *d;
  uint32_t size, mask;
  struct pkt **bufs;
  uint32_t *tail_reg;
  uint32_t next, tail, posted;
  int discarding;
  uint64_t packets;
};

struct tx_ring {
  uint32_t *d;
  uint32_t size, mask;
  struct pkt **bufs;
  uint32_t *tail_reg;
  uint32_t cmd;
  uint32_t tail, clean, in_flight;
};

static struct {
  struct pool pool;
  struct stats stats;
  struct rx_ring rx[PORTS];
  struct tx_ring tx[PORTS];
  struct pkt **batch;
  uint64_t counts[FWD_STATS];
} fwd;

static uint32_t rx_receive(struct rx_ring *r, struct pkt **out, uint32_t max) {
  uint32_t *d = r->d;
  uint32_t mask = r->mask, next = r->next;
  uint32_t limit = max < r->posted ? max : r->posted;
  uint32_t k = 0;
  while (k < limit &&
         (__atomic_load_n(&d[((next + k) & mask) * DESC_WORDS + RX_WB_STATUS_WORD],
                          __ATOMIC_RELAXED) &
          RXD_STAT_DD) != 0)
    k++;
  if (k == 0) return 0;
  /* The batch's fence: lengths (and frame bytes) are read after this load. */
  (void)__atomic_load_n(&d[((next + k - 1) & mask) * DESC_WORDS + RX_WB_STATUS_WORD],
                        __ATOMIC_ACQUIRE);
  uint32_t n = 0;
  for (uint32_t j = 0; j < k; j++) {
    uint32_t i = (next + j) & mask;
    uint32_t *w = d + i * DESC_WORDS;
    uint32_t status = __atomic_load_n(&w[RX_WB_STATUS_WORD], __ATOMIC_RELAXED);
    uint32_t length = __atomic_load_n(&w[RX_WB_LENGTH_WORD], __ATOMIC_RELAXED) & RXD_LENGTH_MASK;
    struct pkt *buf = r->bufs[i];
    r->bufs[i] = NULL;
    int good = (status & RXD_STAT_EOP) != 0;
    if (!good) {
      r->discarding = 1;
    } else if (r->discarding) {
      r->discarding = 0;
      good = 0;
    }
    if (!good || (status & RXD_FRAME_ERRORS) != 0 || length == 0 || length > buf->capacity) {
      fwd.stats.rx_dropped++;
      pool_free(&fwd.pool, buf);
      continue;
    }
    buf->length = length;
    out[n++] = buf;
    fwd.stats.rx_packets++;
    fwd.stats.rx_bytes += length;
  }
  r->next = (next + k) & mask;
  r->posted -= k;
  r->packets += n;
  return n;
}

static uint32_t rx_refill(struct rx_ring *r) {
  uint32_t *d = r->d;
  uint32_t room = r->mask - r->posted;
  uint32_t n = 0, w = 0;
  while (n < room) {
    struct pkt *buf = pool_alloc(&fwd.pool);
    if (buf == NULL) break;
    uint32_t i = r->tail;
    w = i * DESC_WORDS;
    __atomic_store_n(&d[w], (uint32_t)buf->iova, __ATOMIC_RELAXED);
    __atomic_store_n(&d[w + 1], (uint32_t)(buf->iova >> 32), __ATOMIC_RELAXED);
    __atomic_store_n(&d[w + 2], 0, __ATOMIC_RELAXED);
    __atomic_store_n(&d[w + 3], 0, __ATOMIC_RELAXED);
    r->bufs[i] = buf;
    r->tail = (i + 1) & r->mask;
    n++;
  }
  if (n > 0) {
    r->posted += n;
    __atomic_store_n(r->tail_reg, r->tail, __ATOMIC_RELEASE);
  }
  return n;
}

static uint32_t tx_reclaim(struct tx_ring *t) {
  uint32_t *d = t->d;
  uint32_t n = 0;
  while (n < t->in_flight) {
    uint32_t i = t->clean;
    if ((__atomic_load_n(&d[i * DESC_WORDS + TX_STATUS_WORD], __ATOMIC_RELAXED) & TXD_STAT_DD) ==
        0)
      break;
    pool_free(&fwd.pool, t->bufs[i]);
    t->bufs[i] = NULL;
    t->clean = (i + 1) & t->mask;
    n++;
  }
  t->in_flight -= n;
  fwd.stats.tx_packets += n;
  return n;
}

static uint32_t tx_send(struct tx_ring *t, struct pkt **bufs, uint32_t count) {
  uint32_t room = t->mask - t->in_flight;
  uint32_t n = count < room ? count : room;
  if (n == 0) return 0;
  uint32_t *d = t->d;
  for (uint32_t j = 0; j < n; j++) {
    struct pkt *buf = bufs[j];
    uint32_t length = (buf->length < buf->capacity ? buf->length : buf->capacity) & TXD_LENGTH_MASK;
    uint32_t i = t->tail;
    uint32_t w = i * DESC_WORDS;
    __atomic_store_n(&d[w], (uint32_t)buf->iova, __ATOMIC_RELAXED);
    __atomic_store_n(&d[w + 1], (uint32_t)(buf->iova >> 32), __ATOMIC_RELAXED);
    __atomic_store_n(&d[w + TX_CMD_WORD], t->cmd | length, __ATOMIC_RELAXED);
    __atomic_store_n(&d[w + TX_STATUS_WORD], length << IGB_ADVTXD_PAYLEN_SHIFT, __ATOMIC_RELAXED);
    t->bufs[i] = buf;
    t->tail = (i + 1) & t->mask;
    fwd.stats.tx_bytes += length;
  }
  t->in_flight += n;
  __atomic_store_n(t->tail_reg, t->tail, __ATOMIC_RELEASE);
  return n;
}

/* nic.ts rxBatch (one queue): receive, then refill when anything was taken or room is left. */
static uint32_t rx_batch(struct rx_ring *r, struct pkt **out, uint32_t max) {
  uint32_t n = rx_receive(r, out, max);
  if (n > 0 || r->posted < r->size - 1) rx_refill(r);
  return n;
}

/* nic.ts txBatch: reclaim, queue, count what did not fit. */
static uint32_t tx_batch(struct tx_ring *t, struct pkt **bufs, uint32_t count) {
  tx_reclaim(t);
  uint32_t n = tx_send(t, bufs, count);
  fwd.stats.tx_dropped += count - n;
  return n;
}


DEFINE_FORWARD_LOOP(igb, struct rx_ring, struct tx_ring)

static void ring_init(uint32_t **d, struct pkt ***bufs, uint8_t *mem, uint32_t size) {
  memset(mem, 0, (size_t)size * DESC_WORDS * 4);
  *d = (uint32_t *)mem;
  *bufs = calloc(size, sizeof **bufs);
}

static void program(uint8_t *bar, uint32_t block, uint8_t *mem, uint32_t size) {
  uint64_t a = (uint64_t)(uintptr_t)mem;
  *(uint32_t *)(bar + block + QUEUE_DBAL) = (uint32_t)a;
  *(uint32_t *)(bar + block + QUEUE_DBAH) = (uint32_t)(a >> 32);
  *(uint32_t *)(bar + block + QUEUE_DLEN) = size * DESC_WORDS * 4;
  *(uint32_t *)(bar + block + QUEUE_DH) = 0;
  *(uint32_t *)(bar + block + QUEUE_DT) = 0;
}

/*
 * Lay two ports' rings and a shared pool over the memory the Deno side allocated, at the offsets
 * it chose (rings[4]: rx0, tx0, rx1, tx1), and program the ring registers. 0, or negative.
 */
int igb_fwd_setup(uint8_t *bar, uint32_t bar_size, uint8_t *dma, const uint32_t *rings,
                  uint32_t ring_size, uint32_t pool_offset, uint32_t pool_size,
                  uint32_t buffer_size, uint32_t max_batch) {
  memset(&fwd, 0, sizeof fwd);
  if (pool_init(&fwd.pool, dma + pool_offset, (int32_t)pool_size, buffer_size, 0) != 0) return -1;
  fwd.batch = calloc(max_batch, sizeof *fwd.batch);
  for (int p = 0; p < PORTS; p++) {
    uint8_t *b = bar + (uint64_t)p * bar_size;
    struct rx_ring *r = &fwd.rx[p];
    struct tx_ring *t = &fwd.tx[p];
    ring_init(&r->d, &r->bufs, dma + rings[p * 2], ring_size);
    r->size = ring_size;
    r->mask = ring_size - 1;
    r->tail_reg = (uint32_t *)(b + IGB_RX_QUEUE_BASE + QUEUE_DT);
    ring_init(&t->d, &t->bufs, dma + rings[p * 2 + 1], ring_size);
    t->size = ring_size;
    t->mask = ring_size - 1;
    t->tail_reg = (uint32_t *)(b + IGB_TX_QUEUE_BASE + QUEUE_DT);
    t->cmd = IGB_ADVTXD_DTYP_DATA | TXD_CMD_DEXT | TXD_CMD_EOP | TXD_CMD_IFCS | TXD_CMD_RS;
    program(b, IGB_RX_QUEUE_BASE, dma + rings[p * 2], ring_size);
    program(b, IGB_TX_QUEUE_BASE, dma + rings[p * 2 + 1], ring_size);
    if (!r->bufs || !t->bufs) return -1;
  }
  return fwd.batch ? 0 : -1;
}

/* The loop's counts, then free everything setup allocated. */
void igb_fwd_finish(uint64_t *counts) {
  igb_fwd_counts(counts);
  for (int p = 0; p < PORTS; p++) {
    free(fwd.rx[p].bufs);
    free(fwd.tx[p].bufs);
  }
  free(fwd.batch);
  pool_destroy(&fwd.pool);
}
