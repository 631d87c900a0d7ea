/**
 * LinuxKernel against the running kernel, on ordinary files and fds (no VFIO needed): errno,
 * eventfd, poll (sync and on a helper thread), anonymous and huge-page-aligned memory, an Mmio
 * over a shared /dev/zero mapping, and the sysfs/procfs readers.
 *
 * Needs `--allow-ffi`; without it every test is ignored and one line says why. Every async poll
 * is bounded by a timeout and its eventfd is signalled before the test ends, so no nonblocking
 * call is left pending (a pending one would keep the process alive).
 */

import assert from "node:assert/strict";
import { ERRNO } from "../../ffi/errno.ts";
import { LinuxKernel } from "../../ffi/linux.ts";
import {
  EFD_CLOEXEC,
  EFD_NONBLOCK,
  type Mmio,
  O_CLOEXEC,
  O_RDONLY,
  O_RDWR,
  type PollFd,
  POLLIN,
} from "../../ffi/kernel.ts";

const FFI = Deno.permissions.querySync({ name: "ffi" }).state === "granted";
if (!FFI) {
  console.warn("tests/ffi/linux_test.ts: ignored — run with --allow-ffi to test LinuxKernel");
}

/** FIONREAD (asm-generic/ioctls.h): an ioctl /dev/null does not implement. */
const FIONREAD = 0x541b;
/** The largest RLIMIT_NOFILE for which a poll set one entry too long is built. */
const OPEN_FILES_TEST_MAX = 1 << 20;
/** An fd number no test opens. */
const BAD_FD = 987_654;
/** The PMD huge page of x86-64 (hpage_pmd_size; 4 KiB-page arm64 has the same). */
const X86_64_HUGE_PAGE = 2 * 1024 * 1024;

// Loaded once, outside any test: libc stays open for the life of the process.
const shared: LinuxKernel | undefined = FFI ? LinuxKernel.open() : undefined;
function kernel(): LinuxKernel {
  if (shared === undefined) throw new Error("--allow-ffi was not granted");
  return shared;
}

function ffiTest(name: string, fn: (k: LinuxKernel) => void | Promise<void>): void {
  Deno.test({ name: `LinuxKernel: ${name}`, ignore: !FFI, fn: () => fn(kernel()) });
}

function u64(value: bigint): Uint8Array {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setBigUint64(0, value, true);
  return bytes;
}

function signal(k: LinuxKernel, efd: number): void {
  assert.equal(k.write(efd, u64(1n)), 8);
}

/** An eventfd for one test, signalled and closed however the test ends. */
async function withEventfd(k: LinuxKernel, fn: (efd: number) => Promise<void>): Promise<void> {
  const efd = k.eventfd(0, EFD_CLOEXEC);
  assert.ok(efd >= 0, `eventfd: ${efd}`);
  try {
    await fn(efd);
  } finally {
    signal(k, efd); // wakes any poll still pending on it
    await new Promise((resolve) => setTimeout(resolve, 5));
    k.close(efd);
  }
}

ffiTest("open/close /dev/null; errors as -errno", (k) => {
  const fd = k.open("/dev/null", O_RDWR | O_CLOEXEC);
  assert.ok(fd >= 0);
  assert.equal(k.ioctl(fd, FIONREAD, new Uint8Array(4)), -ERRNO.ENOTTY);
  assert.equal(k.ioctl(fd, FIONREAD), -ERRNO.ENOTTY);
  assert.equal(k.close(fd), 0);
  assert.equal(k.close(fd), -ERRNO.EBADF);
  assert.equal(k.ioctl(BAD_FD, FIONREAD, new Uint8Array(4)), -ERRNO.EBADF);
  assert.equal(k.ioctl(BAD_FD, FIONREAD, 0n), -ERRNO.EBADF);
  assert.equal(k.open("/nonexistent/deno_vfio", O_RDONLY), -ERRNO.ENOENT);
  assert.equal(k.name, "linux");
  assert.equal(k.pageSize % 4096, 0);
  assert.ok(k.ioctlArch === "generic" || k.ioctlArch === "powerpc");
});

ffiTest("errno stays right across alternating failures", () => {
  const k = kernel();
  const fd = k.open("/dev/null", O_RDWR | O_CLOEXEC);
  try {
    for (let i = 0; i < 2000; i++) {
      assert.equal(k.open("/nonexistent/deno_vfio", O_RDONLY), -ERRNO.ENOENT);
      assert.equal(k.ioctl(fd, FIONREAD, new Uint8Array(4)), -ERRNO.ENOTTY);
      assert.equal(k.ioctl(BAD_FD, FIONREAD, 1), -ERRNO.EBADF);
      assert.equal(k.readlink("/dev/null"), -ERRNO.EINVAL); // not a link
    }
  } finally {
    k.close(fd);
  }
});

ffiTest("pread/pwrite/read/write", (k) => {
  const zero = k.open("/dev/zero", O_RDONLY | O_CLOEXEC);
  const buf = new Uint8Array(16).fill(7);
  assert.equal(k.pread(zero, buf, 4096n), 16);
  assert.deepEqual(buf, new Uint8Array(16));
  assert.equal(k.read(zero, buf.subarray(0, 3)), 3);
  assert.equal(k.write(zero, buf), -ERRNO.EBADF); // opened read-only
  k.close(zero);
  const nul = k.open("/dev/null", O_RDWR | O_CLOEXEC);
  assert.equal(k.pwrite(nul, buf, 0n), 16);
  k.close(nul);
  const efd = k.eventfd(0, EFD_CLOEXEC);
  assert.equal(k.pread(efd, new Uint8Array(8), 0n), -ERRNO.ESPIPE);
  k.close(efd);
});

ffiTest("eventfd: write then read the counter; non-blocking read of zero is EAGAIN", (k) => {
  const efd = k.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  assert.ok(efd >= 0);
  const out = new Uint8Array(8);
  assert.equal(k.read(efd, out), -ERRNO.EAGAIN);
  assert.equal(k.write(efd, u64(5n)), 8);
  assert.equal(k.write(efd, u64(2n)), 8);
  assert.equal(k.read(efd, out), 8);
  assert.equal(new DataView(out.buffer).getBigUint64(0, true), 7n);
  assert.equal(k.close(efd), 0);
});

ffiTest("poll: 0 after a 20 ms timeout, 1 with POLLIN once signalled", (k) => {
  const efd = k.eventfd(0, EFD_CLOEXEC);
  const set: PollFd[] = [{ fd: efd, events: POLLIN, revents: -1 }];
  const start = performance.now();
  assert.equal(k.poll(set, 20), 0);
  assert.ok(performance.now() - start >= 19, "poll returned before its timeout");
  assert.equal(set[0].revents, 0);
  signal(k, efd);
  assert.equal(k.poll(set, 20), 1);
  assert.equal(set[0].revents, POLLIN);
  k.close(efd);
});

ffiTest("pollAsync resolves on a signal and on timeout", async (k) => {
  await withEventfd(k, async (efd) => {
    const set: PollFd[] = [{ fd: efd, events: POLLIN, revents: 0 }];
    assert.equal(await k.pollAsync(set, 20), 0);
    assert.equal(set[0].revents, 0);
    const timer = setTimeout(() => signal(k, efd), 10);
    try {
      assert.equal(await k.pollAsync(set, 5000), 1);
      assert.equal(set[0].revents, POLLIN);
    } finally {
      clearTimeout(timer);
    }
  });
});

ffiTest("pollAsync failing on the helper thread still reports the real errno", async (k) => {
  // poll(2) refuses more entries than RLIMIT_NOFILE with EINVAL, at once (nothing to wait for).
  const limits = k.readFile("/proc/self/limits");
  const soft = typeof limits === "string" ? /^Max open files\s+(\d+)/m.exec(limits) : null;
  if (soft === null || Number(soft[1]) > OPEN_FILES_TEST_MAX) return; // too many to build here
  const set = Array.from(
    { length: Number(soft[1]) + 1 },
    () => ({ fd: -1, events: POLLIN, revents: 9 }),
  );
  assert.equal(k.poll(set, 0), -ERRNO.EINVAL);
  assert.equal(await k.pollAsync(set, 0), -ERRNO.EINVAL);
  assert.equal(set[0].revents, 0);
});

ffiTest("mmapAnonymous: writable pages; munmap detaches every view", (k) => {
  const mem = k.mmapAnonymous(5000);
  assert.ok(typeof mem !== "number", `mmap: ${mem}`);
  assert.equal(mem.length, 2 * k.pageSize);
  assert.equal(mem.address % BigInt(k.pageSize), 0n);
  const bytes = mem.bytes;
  bytes[0] = 0xaa;
  bytes[mem.length - 1] = 0x55;
  assert.equal(mem.bytes[0], 0xaa);
  assert.equal(k.munmap(mem), 0);
  assert.equal(bytes.length, 0, "a view taken before munmap must no longer reach the memory");
  assert.throws(() => mem.bytes, /after munmap/);
  assert.equal(k.munmap(mem), 0, "unmapping twice is not an error, as on Linux");
  assert.equal(k.mmapAnonymous(0), -ERRNO.EINVAL);
  const foreign = { address: 0x1000n, length: 4096, bytes: new Uint8Array(4096) };
  assert.equal(k.munmap(foreign), -ERRNO.EINVAL);
});

ffiTest("mmapAnonymous with hugePages: huge-page-aligned start and length", (k) => {
  const HUGE = k.hugePageSize;
  if (Deno.build.arch === "x86_64") assert.equal(HUGE, X86_64_HUGE_PAGE);
  const mem = k.mmapAnonymous(HUGE + 1, { hugePages: true });
  assert.ok(typeof mem !== "number", `mmap: ${mem}`);
  assert.equal(mem.address % BigInt(HUGE), 0n);
  assert.equal(mem.length, HUGE + k.pageSize, "the length is rounded to pages only");
  mem.bytes[0] = 1;
  mem.bytes[mem.length - 1] = 2;
  assert.equal(mem.bytes[mem.length - 1], 2);
  assert.equal(k.munmap(mem), 0);
  // Below one huge page the request is an ordinary mapping.
  const small = k.mmapAnonymous(8192, { hugePages: true });
  assert.ok(typeof small !== "number");
  assert.equal(small.length, 8192);
  assert.equal(k.munmap(small), 0);
});

ffiTest("Mmio over a shared /dev/zero mapping: widths, checks, use after munmap", (k) => {
  // No VFIO here: /dev/zero's MAP_SHARED mapping is real memory behind the same Mmio class.
  const fd = k.open("/dev/zero", O_RDWR | O_CLOEXEC);
  const mmio = k.mmapDevice(fd, 0n, 4096);
  k.close(fd); // the mapping keeps its file, as a BAR mapping does
  assert.ok(typeof mmio !== "number", `mmap: ${mmio}`);
  const m: Mmio = mmio;
  assert.equal(m.length, 4096);
  m.write32(0x10, 0x1234_5678);
  assert.equal(m.read32(0x10), 0x1234_5678);
  assert.equal(m.read16(0x12), 0x1234);
  assert.equal(m.read8(0x10), 0x78);
  m.write8(0x11, 0xff);
  m.write16(0x12, 0xbeef);
  assert.equal(m.read32(0x10), 0xbeef_ff78);
  m.write32(0x20, -1);
  assert.equal(m.read32(0x20), 0xffff_ffff);
  m.write64(0x28, 0x0102_0304_0506_0708n);
  assert.equal(m.read64(0x28), 0x0102_0304_0506_0708n);
  assert.equal(m.read32(0x2c), 0x0102_0304);
  assert.throws(() => m.read32(0x11), /not 4-byte aligned/);
  assert.throws(() => m.write64(4, 0n), /not 8-byte aligned/);
  assert.throws(() => m.write32(4096, 0), /outside the 4096-byte BAR/);
  assert.throws(() => m.read8(-1), /outside/);
  assert.equal(k.munmap(m), 0);
  assert.throws(() => m.read32(0), /after munmap/);
  assert.throws(() => m.write8(0, 0), /after munmap/);
  assert.equal(k.mmapDevice(BAD_FD, 0n, 4096), -ERRNO.EBADF);
  assert.equal(k.mmapDevice(0, 0n, 0), -ERRNO.EINVAL);
});

ffiTest("readlink, readdir, readFile, writeFile on procfs and devfs", (k) => {
  const exe = k.readlink("/proc/self/exe");
  assert.equal(typeof exe, "string");
  assert.ok((exe as string).startsWith("/"));
  assert.equal(k.readlink("/nonexistent/deno_vfio"), -ERRNO.ENOENT);
  const fds = k.readdir("/proc/self/fd");
  assert.ok(Array.isArray(fds));
  assert.ok(fds.includes("0") && !fds.includes(".") && !fds.includes(".."));
  assert.deepEqual(fds, [...fds].sort());
  assert.equal(k.readdir("/nonexistent/deno_vfio"), -ERRNO.ENOENT);
  assert.equal(k.readdir("/proc/self/status"), -ERRNO.ENOTDIR);
  const status = k.readFile("/proc/self/status");
  assert.equal(typeof status, "string");
  assert.match(status as string, /^VmLck:\s+\d+ kB$/m);
  assert.equal(k.readFile("/nonexistent/deno_vfio"), -ERRNO.ENOENT);
  assert.equal(k.writeFile("/dev/null", "vfio-pci"), 8);
  assert.equal(k.writeFile("/proc/self", "x"), -ERRNO.EISDIR);
  assert.equal(k.writeFile("/nonexistent/deno_vfio", "x"), -ERRNO.ENOENT);
});

ffiTest("now and sleep", async (k) => {
  const start = k.now();
  await k.sleep(5);
  assert.ok(k.now() - start >= 4);
});
