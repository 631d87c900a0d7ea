/*
 * The C twin of drivers/packet_pool.ts: fixed buffers carved from one region, a LIFO free stack of
 * indices, a per-buffer free flag that catches double frees (as the TypeScript pool does).
 */
#ifndef DRIVER_BENCH_POOL_H
#define DRIVER_BENCH_POOL_H

#include <stdint.h>
#include <stdlib.h>

struct pkt {
  uint32_t index;
  uint32_t length;
  uint32_t capacity;
  uint8_t *data;
  uint64_t iova;
};

struct pool {
  struct pkt *bufs;
  int32_t *free;
  uint8_t *is_free;
  int32_t top;
  int32_t capacity;
};

static inline struct pkt *pool_alloc(struct pool *p) {
  if (p->top == 0) return NULL;
  struct pkt *b = &p->bufs[p->free[--p->top]];
  p->is_free[b->index] = 0;
  b->length = 0;
  return b;
}

static inline void pool_free(struct pool *p, struct pkt *b) {
  if (p->is_free[b->index]) abort();
  p->is_free[b->index] = 1;
  p->free[p->top++] = (int32_t)b->index;
}

/* `capacity` buffers of `size` bytes (frame after `headroom`) at `base`, IOVA == address. */
static inline int pool_init(struct pool *p, uint8_t *base, int32_t capacity, uint32_t size,
                            uint32_t headroom) {
  p->bufs = calloc((size_t)capacity, sizeof *p->bufs);
  p->free = calloc((size_t)capacity, sizeof *p->free);
  p->is_free = calloc((size_t)capacity, 1);
  if (!p->bufs || !p->free || !p->is_free) return -1;
  for (int32_t i = 0; i < capacity; i++) {
    struct pkt *b = &p->bufs[i];
    b->index = (uint32_t)i;
    b->data = base + (uint64_t)i * size + headroom;
    b->iova = (uint64_t)(uintptr_t)b->data;
    b->capacity = size - headroom;
    p->free[i] = capacity - 1 - i;
    p->is_free[i] = 1;
  }
  p->top = capacity;
  p->capacity = capacity;
  return 0;
}

static inline void pool_destroy(struct pool *p) {
  free(p->bufs);
  free(p->free);
  free(p->is_free);
  p->bufs = NULL;
  p->free = NULL;
  p->is_free = NULL;
}

#endif
