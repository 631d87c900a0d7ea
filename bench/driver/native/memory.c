/*
 * The "BAR": a memfd both sides map, so the device thread sees the driver's register writes; and
 * the clock the bench times windows with.
 */
#define _GNU_SOURCE
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

/* A memfd of `size` zero bytes, or -1. */
int bench_memfd(uint64_t size) {
  int fd = memfd_create("deno_vfio-bench-bar", MFD_CLOEXEC);
  if (fd < 0) return -1;
  if (ftruncate(fd, (off_t)size) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* The memfd mapped shared and read/write, or NULL. */
void *bench_map(int fd, uint64_t size) {
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  return p == MAP_FAILED ? NULL : p;
}

/* Undo bench_map. */
int bench_unmap(void *p, uint64_t size) { return munmap(p, size); }

/* CPU time of the calling thread in ns (time it was not running does not count). */
double bench_thread_cpu_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}
