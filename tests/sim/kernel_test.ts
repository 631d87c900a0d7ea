/**
 * SimKernel basics: fd table, eventfd, poll in virtual time, anonymous memory, the file namespace.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ERRNO } from "../../ffi/errno.ts";
import { EFD_NONBLOCK, O_RDONLY, O_RDWR, POLLIN, POLLNVAL, POLLOUT } from "../../ffi/kernel.ts";
import { VirtualClock } from "../../sim/clock.ts";
import { PhysicalMemory } from "../../sim/memory.ts";
import { SimKernel } from "../../sim/kernel/sim_kernel.ts";
import { roFile, staticDir, symlink, woFile } from "../../sim/kernel/vfs.ts";
import { createMachine } from "../../sim/mod.ts";
import { ioctlNumber } from "../../ffi/uapi/common.ts";
import * as U from "../../ffi/uapi/mod.ts";
import { FakeDevice } from "./fake_device.ts";

function bareKernel(): SimKernel {
  return new SimKernel({ clock: new VirtualClock(), memory: new PhysicalMemory(), strict: true });
}

function u64(value: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, value, true);
  return b;
}

function readU64(b: Uint8Array): bigint {
  return new DataView(b.buffer, b.byteOffset).getBigUint64(0, true);
}

Deno.test({
  name: "fds: lowest free from 3, reused after close, EBADF after",
  permissions: "none",
  fn() {
    const k = bareKernel();
    const a = k.eventfd(0, 0);
    const b = k.eventfd(0, 0);
    const c = k.eventfd(0, 0);
    assert.deepEqual([a, b, c], [3, 4, 5]);
    assert.deepEqual(k.close(b), 0);
    assert.deepEqual(k.close(b), -ERRNO.EBADF);
    assert.deepEqual(k.eventfd(0, 0), 4);
    assert.deepEqual(k.ioctl(99, 0x3b64), -ERRNO.EBADF);
    assert.deepEqual(k.read(b + 10, new Uint8Array(8)), -ERRNO.EBADF);
  },
});

Deno.test({
  name: "eventfd: counter, EAGAIN, short buffers, ULLONG_MAX, pread ESPIPE, bad flags",
  permissions: "none",
  fn() {
    const k = bareKernel();
    assert.deepEqual(k.eventfd(0, 0x40), -ERRNO.EINVAL);
    const fd = k.eventfd(2, EFD_NONBLOCK);
    const buf = new Uint8Array(8);
    assert.deepEqual(k.read(fd, new Uint8Array(4)), -ERRNO.EINVAL);
    assert.deepEqual(k.read(fd, buf), 8);
    assert.deepEqual(readU64(buf), 2n);
    assert.deepEqual(k.read(fd, buf), -ERRNO.EAGAIN);
    assert.deepEqual(k.write(fd, u64(5n)), 8);
    assert.deepEqual(k.write(fd, u64(7n)), 8);
    assert.deepEqual(k.write(fd, new Uint8Array(7)), -ERRNO.EINVAL);
    assert.deepEqual(k.write(fd, u64(0xffff_ffff_ffff_ffffn)), -ERRNO.EINVAL);
    assert.deepEqual(k.read(fd, buf), 8);
    assert.deepEqual(readU64(buf), 12n);
    assert.deepEqual(k.pread(fd, buf, 0n), -ERRNO.ESPIPE);
    assert.deepEqual(k.ioctl(fd, 0x3b64), -ERRNO.ENOTTY);
  },
});

Deno.test({
  name: "poll: POLLIN when counter > 0, POLLOUT always, POLLNVAL for bad fds, negative fds ignored",
  permissions: "none",
  fn() {
    const k = bareKernel();
    const fd = k.eventfd(0, EFD_NONBLOCK);
    const set = [
      { fd, events: POLLIN, revents: 0 },
      { fd: 77, events: POLLIN, revents: 0 },
      { fd: -1, events: POLLIN, revents: 0 },
    ];
    assert.deepEqual(k.poll(set, 0), 1);
    assert.deepEqual(set.map((p) => p.revents), [0, POLLNVAL, 0]);
    k.write(fd, u64(1n));
    const both = [{ fd, events: POLLIN | POLLOUT, revents: 0 }];
    assert.deepEqual(k.poll(both, 0), 1);
    assert.deepEqual(both[0].revents, POLLIN | POLLOUT);
  },
});

Deno.test({
  name: "pollAsync: advances virtual time to the timeout, or to the event that makes an fd ready",
  permissions: "none",
  async fn() {
    const k = bareKernel();
    const fd = k.eventfd(0, EFD_NONBLOCK);
    const start = k.now();
    assert.deepEqual(await k.pollAsync([{ fd, events: POLLIN, revents: 0 }], 25), 0);
    assert.deepEqual(k.now() - start, 25);
    const efd = k.eventfdCtx(fd);
    assert(typeof efd !== "number");
    k.clock.schedule(3_000_000, () => efd.signal());
    const set = [{ fd, events: POLLIN, revents: 0 }];
    assert.deepEqual(await k.pollAsync(set, 1000), 1);
    assert.deepEqual(set[0].revents, POLLIN);
    assert.deepEqual(k.now() - start, 28);
    await k.sleep(2);
    assert.deepEqual(k.now() - start, 30);
    // The synchronous poll follows the same rules.
    k.read(fd, new Uint8Array(8));
    k.clock.schedule(1_000_000, () => efd.signal());
    assert.deepEqual(k.poll([{ fd, events: POLLIN, revents: 0 }], -1), 1);
    assert.deepEqual(k.now() - start, 31);
  },
});

Deno.test({
  name: "pollAsync in realtime mode: host I/O runs during the wait and can end it early",
  permissions: "none",
  async fn() {
    const k = new SimKernel({
      clock: new VirtualClock(),
      memory: new PhysicalMemory(),
      strict: true,
      realtime: true,
    });
    const fd = k.eventfd(0, EFD_NONBLOCK);
    const efd = k.eventfdCtx(fd);
    assert(typeof efd !== "number");
    // A host socket's callback, as a bridge has: it runs on the event loop, not on the clock.
    let hostTurns = 0;
    setTimeout(() => {
      hostTurns++;
      efd.signal();
    }, 0);
    const start = k.now();
    const set = [{ fd, events: POLLIN, revents: 0 }];
    assert.deepEqual(await k.pollAsync(set, 10_000), 1);
    assert.equal(hostTurns, 1, "the host callback ran while the poll waited");
    assert.deepEqual(set[0].revents, POLLIN);
    assert.ok(k.now() - start < 10_000, "woken by the host, not by the timeout");
  },
});

Deno.test({
  name: "blocking eventfd read runs device events until signalled",
  permissions: "none",
  fn() {
    const k = bareKernel();
    const fd = k.eventfd(0, 0);
    const efd = k.eventfdCtx(fd);
    assert(typeof efd !== "number");
    k.clock.schedule(5_000_000, () => efd.signal(3n));
    const buf = new Uint8Array(8);
    assert.deepEqual(k.read(fd, buf), 8);
    assert.deepEqual(readU64(buf), 3n);
    assert.deepEqual(k.now(), 5);
  },
});

Deno.test({
  name: "anonymous memory: page rounding, huge-page alignment, shared bytes, munmap",
  permissions: "none",
  fn() {
    const k = bareKernel();
    assert.deepEqual(k.mmapAnonymous(0), -ERRNO.EINVAL);
    const m = k.mmapAnonymous(100);
    assert(typeof m !== "number");
    assert.deepEqual(m.length, 4096);
    assert(m.bytes.buffer instanceof SharedArrayBuffer);
    const h = k.mmapAnonymous(4096, { hugePages: true });
    assert(typeof h !== "number");
    assert.deepEqual(h.address % (2n * 1024n * 1024n), 0n);
    m.bytes[5] = 42;
    assert.deepEqual(k.process.memory.copyFromUser(m.address + 5n, 1)?.[0], 42);
    assert.deepEqual(k.munmap(m), 0);
    assert.deepEqual(k.process.memory.copyFromUser(m.address, 1), undefined);
    assert.deepEqual(k.munmap(m), 0);
  },
});

Deno.test({
  name: "namespace: links, readdir, attributes, ENOENT/ENOTDIR/EISDIR/EACCES, /proc/self/status",
  permissions: "none",
  fn() {
    const k = bareKernel();
    let stored = "";
    k.mount(
      "sys",
      staticDir({
        a: staticDir({ f: roFile(() => "hello\n"), w: woFile((t) => (stored = t).length) }),
        l: symlink(() => "a"),
        loop: symlink(() => "loop"),
      }),
    );
    assert.deepEqual(k.readlink("/sys/l"), "a");
    assert.deepEqual(k.readFile("/sys/l/f"), "hello\n");
    assert.deepEqual(k.readdir("/sys/l"), ["f", "w"]);
    assert.deepEqual(k.readdir("/sys/a/f"), -ERRNO.ENOTDIR);
    assert.deepEqual(k.readFile("/sys/a/f/x"), -ERRNO.ENOTDIR);
    assert.deepEqual(k.readFile("/sys/a"), -ERRNO.EISDIR);
    assert.deepEqual(k.readFile("/sys/a/w"), -ERRNO.EACCES);
    assert.deepEqual(k.writeFile("/sys/a/f", "x"), -ERRNO.EACCES);
    assert.deepEqual(k.writeFile("/sys/a/w", "abc\n"), 4);
    assert.deepEqual(stored, "abc\n");
    assert.deepEqual(k.readFile("/sys/loop"), -ERRNO.ELOOP);
    assert.deepEqual(k.readlink("/sys/a"), -ERRNO.EINVAL);
    assert.deepEqual(k.open("/nope", O_RDWR), -ERRNO.ENOENT);
    assert.deepEqual(k.readFile("/sys/../sys/a/../a/f"), "hello\n");
    const fd = k.open("/sys/a/f", O_RDONLY);
    const buf = new Uint8Array(3);
    assert.deepEqual(k.read(fd, buf), 3);
    assert.deepEqual(new TextDecoder().decode(buf), "hel");
    assert.deepEqual(k.read(fd, buf), 3);
    assert.deepEqual(k.read(fd, buf), 0);
    assert.deepEqual(k.open("/sys/a/w", O_RDONLY), -ERRNO.EACCES);
    const status = k.readFile("/proc/self/status");
    assert(typeof status === "string");
    assert(status.includes("VmLck:\t       0 kB\n"), status);
  },
});

Deno.test({
  name: "generic ioctls: FIOCLEX answers 0 on any fd, FIONBIO makes an eventfd non-blocking",
  permissions: "none",
  fn() {
    const k = bareKernel();
    const fd = k.eventfd(0, 0);
    assert.deepEqual(k.ioctl(fd, 0x5451), 0);
    assert.deepEqual(k.ioctl(fd, 0x5421, new Uint8Array(2)), -ERRNO.EFAULT);
    assert.deepEqual(k.ioctl(fd, 0x5421, new Uint8Array([1, 0, 0, 0])), 0);
    assert.deepEqual(k.read(fd, new Uint8Array(8)), -ERRNO.EAGAIN);
  },
});

Deno.test({
  name: "pointer arguments: a process address works like a buffer; unmapped addresses are EFAULT",
  permissions: "none",
  fn() {
    const m = createMachine({
      iommu: "vtd",
      devices: [{ model: new FakeDevice(), bdf: "0000:00:02.0" }],
      strict: true,
    });
    const k = m.kernel;
    const group = k.open("/dev/vfio/2", O_RDWR);
    const mem = k.mmapAnonymous(4096);
    assert.ok(typeof mem !== "number");
    const status = ioctlNumber(k.ioctlArch, U.VFIO_GROUP_GET_STATUS);
    mem.bytes.set([8, 0, 0, 0]);
    assert.deepEqual(k.ioctl(group, status, mem.address), 0);
    assert.deepEqual(mem.bytes[4], U.VFIO_GROUP_FLAGS_VIABLE);
    assert.deepEqual(k.ioctl(group, status, Number(mem.address)), 0);
    assert.deepEqual(k.ioctl(group, status, 0), -ERRNO.EFAULT);
    assert.deepEqual(k.ioctl(group, status, mem.address + 4094n), -ERRNO.EFAULT);
    assert.deepEqual(k.ioctl(group, status, 0x1234n), -ERRNO.EFAULT);
  },
});

Deno.test({
  name: "a wait nothing can end: -EINTR, or a thrown error in strict mode",
  permissions: "none",
  async fn() {
    const lax = new SimKernel({ clock: new VirtualClock(), memory: new PhysicalMemory() });
    const fd = lax.eventfd(0, 0);
    assert.deepEqual(lax.read(fd, new Uint8Array(8)), -ERRNO.EINTR);
    assert.deepEqual(lax.poll([{ fd, events: POLLIN, revents: 0 }], -1), -ERRNO.EINTR);
    assert.deepEqual(await lax.pollAsync([{ fd, events: POLLIN, revents: 0 }], -1), -ERRNO.EINTR);
    const strict = bareKernel();
    const sfd = strict.eventfd(0, 0);
    assert.throws(
      () => strict.poll([{ fd: sfd, events: POLLIN, revents: 0 }], -1),
      /block forever/,
    );
    assert.throws(() => strict.read(sfd, new Uint8Array(8)), /block forever/);
  },
});
