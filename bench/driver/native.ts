/**
 * The native half of the driver bench (bench/driver/native/*.c), compiled with gcc -O2 into a
 * shared library under bench/out/ and loaded with Deno.dlopen. The symbol table is data, with
 * each C prototype beside it.
 *
 * @module
 */

const HERE = new URL("./native/", import.meta.url);
const OUT = new URL("../out/", import.meta.url);
const SOURCES = ["device.c", "memory.c", "forward_igb.c", "forward_virtio.c"];

/** The library's symbols. */
export const NATIVE_SYMBOLS = {
  /** int bench_memfd(uint64_t size) */
  bench_memfd: { parameters: ["u64"], result: "i32" },
  /** void *bench_map(int fd, uint64_t size) */
  bench_map: { parameters: ["i32", "u64"], result: "pointer" },
  /** int bench_unmap(void *p, uint64_t size) */
  bench_unmap: { parameters: ["pointer", "u64"], result: "i32" },
  /** double bench_thread_cpu_ns(void) */
  bench_thread_cpu_ns: { parameters: [], result: "f64" },
  /** int igb_device_start(uint8_t *bar, uint32_t bar_size, uint32_t ports, uint32_t frame_len) */
  igb_device_start: { parameters: ["pointer", "u32", "u32", "u32"], result: "i32" },
  /** int virtio_device_start(const uint64_t *queues, uint32_t count) */
  virtio_device_start: { parameters: ["buffer", "u32"], result: "i32" },
  /** int device_stop(uint64_t *stats) */
  device_stop: { parameters: ["buffer"], result: "i32" },
  /**
   * int igb_fwd_setup(uint8_t *bar, uint32_t bar_size, uint8_t *dma, const uint32_t *rings,
   *                   uint32_t ring_size, uint32_t pool_offset, uint32_t pool_size,
   *                   uint32_t buffer_size, uint32_t max_batch)
   */
  igb_fwd_setup: {
    parameters: ["pointer", "u32", "pointer", "buffer", "u32", "u32", "u32", "u32", "u32"],
    result: "i32",
  },
  /** void igb_fwd_start(void) */
  igb_fwd_start: { parameters: [], result: "void" },
  /** uint64_t igb_fwd_run(uint64_t frames, uint32_t batch) */
  igb_fwd_run: { parameters: ["u64", "u32"], result: "u64" },
  /** void igb_fwd_counts(uint64_t *counts) */
  igb_fwd_counts: { parameters: ["buffer"], result: "void" },
  /** void igb_fwd_finish(uint64_t *counts) */
  igb_fwd_finish: { parameters: ["buffer"], result: "void" },
  /**
   * int virtio_fwd_setup(uint8_t *dma, const uint32_t *queues, uint32_t queue_size,
   *                      uint32_t pool_offset, uint32_t pool_size, uint32_t buffer_size,
   *                      uint32_t headroom, uint32_t max_batch)
   */
  virtio_fwd_setup: {
    parameters: ["pointer", "buffer", "u32", "u32", "u32", "u32", "u32", "u32"],
    result: "i32",
  },
  /** void virtio_fwd_start(void) */
  virtio_fwd_start: { parameters: [], result: "void" },
  /** uint64_t virtio_fwd_run(uint64_t frames, uint32_t batch) */
  virtio_fwd_run: { parameters: ["u64", "u32"], result: "u64" },
  /** void virtio_fwd_counts(uint64_t *counts) */
  virtio_fwd_counts: { parameters: ["buffer"], result: "void" },
  /** void virtio_fwd_finish(uint64_t *counts) */
  virtio_fwd_finish: { parameters: ["buffer"], result: "void" },
} as const;

/** The loaded library. */
export type NativeBench = Deno.DynamicLibrary<typeof NATIVE_SYMBOLS>["symbols"];

/** The library and the compiler that built it. */
export interface LoadedNative {
  /** The symbols. */
  lib: NativeBench;
  /** First line of `gcc --version`. */
  gcc: string;
}

/** The compiler command and flags (printed with the results). */
export const GCC_FLAGS = ["-O2", "-Wall", "-Wextra", "-shared", "-fPIC", "-pthread"];

/**
 * Compile and load the library; returns it, or a one-line reason when gcc is missing or fails.
 */
export async function loadNative(): Promise<LoadedNative | string> {
  await Deno.mkdir(OUT, { recursive: true });
  const lib = new URL("libdriver_bench.so", OUT);
  const args = [
    ...GCC_FLAGS,
    "-o",
    lib.pathname,
    ...SOURCES.map((s) => new URL(s, HERE).pathname),
  ];
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command("gcc", { args, stdout: "piped", stderr: "piped" }).output();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return "gcc is not installed (apt install gcc)";
    throw e;
  }
  if (!out.success) {
    const text = new TextDecoder().decode(out.stderr).trim().split("\n")[0];
    return `gcc failed: ${text}`;
  }
  const version = await new Deno.Command("gcc", { args: ["--version"], stdout: "piped" }).output();
  return {
    lib: Deno.dlopen(lib.pathname, NATIVE_SYMBOLS).symbols,
    gcc: new TextDecoder().decode(version.stdout).split("\n")[0],
  };
}
