/*
 * What the igb and virtio C loops share: ixy's forward() — a batch from one port, one byte
 * touched per frame, out of the other port, the rest freed — and the API the bench calls (post the
 * receive rings, run, read the counts). A file defines its ring types, its static `fwd` state
 * (pool, stats, rx[PORTS], tx[PORTS], batch, counts), rx_batch, tx_batch and rx_refill, then
 * DEFINE_FORWARD_LOOP(prefix, rx ring type, tx ring type).
 */
#ifndef DRIVER_BENCH_LOOP_H
#define DRIVER_BENCH_LOOP_H

#include <string.h>

#include "bench.h"
#include "pool.h"

#define DEFINE_FORWARD_LOOP(PREFIX, RX, TX)                                                    \
  static uint32_t forward(RX *rx, TX *tx, uint32_t batch) {                                    \
    struct pkt **bufs = fwd.batch;                                                             \
    uint32_t n = rx_batch(rx, bufs, batch);                                                    \
    fwd.counts[FWD_RX_CALLS]++;                                                                \
    fwd.counts[FWD_RX_PACKETS] += n;                                                           \
    for (uint32_t i = 0; i < n; i++) bufs[i]->data[1]++;                                       \
    uint32_t sent = tx_batch(tx, bufs, n);                                                     \
    for (uint32_t i = sent; i < n; i++) pool_free(&fwd.pool, bufs[i]);                         \
    fwd.counts[FWD_TX_DROPPED] += n - sent;                                                    \
    return sent;                                                                               \
  }                                                                                            \
                                                                                               \
  /* Post the receive rings (the driver's open does this once the queues are enabled). */     \
  void PREFIX##_fwd_start(void) {                                                              \
    for (int p = 0; p < PORTS; p++) rx_refill(&fwd.rx[p]);                                     \
  }                                                                                            \
                                                                                               \
  /* Forward port 0 → 1, then 1 → 0, until `frames` were queued for transmit; returns how     \
   * many. */                                                                                  \
  uint64_t PREFIX##_fwd_run(uint64_t frames, uint32_t batch) {                                 \
    uint64_t sent = 0;                                                                         \
    while (sent < frames) {                                                                    \
      sent += forward(&fwd.rx[0], &fwd.tx[1], batch);                                          \
      sent += forward(&fwd.rx[1], &fwd.tx[0], batch);                                          \
    }                                                                                          \
    fwd.counts[FWD_FORWARDED] += sent;                                                         \
    return sent;                                                                               \
  }                                                                                            \
                                                                                               \
  /* The loop's counts so far (FWD_STATS u64s). */                                             \
  void PREFIX##_fwd_counts(uint64_t *counts) {                                                 \
    fwd.counts[FWD_RX_DROPPED] = fwd.stats.rx_dropped;                                         \
    memcpy(counts, fwd.counts, sizeof fwd.counts);                                             \
  }

#endif
