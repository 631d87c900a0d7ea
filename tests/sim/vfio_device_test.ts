/**
 * VFIO device fds on the simulator (vfio.md §7): device and region info, config space, BAR
 * read/write and mmap, interrupts from the device model to eventfds, SET_IRQS validation, reset
 * and hot reset, DEVICE_FEATURE, IOEVENTFD, and the cdev before BIND_IOMMUFD.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ERRNO } from "../../ffi/errno.ts";
import { EFD_NONBLOCK, O_RDWR, POLLIN } from "../../ffi/kernel.ts";
import { decode, encode } from "../../ffi/uapi/layout.ts";
import { createMachine, type SimMachine } from "../../sim/mod.ts";
import * as U from "../../ffi/uapi/mod.ts";
import { IOMMU_IOAS_ALLOC, iommu_ioas_alloc } from "../../ffi/uapi/mod.ts";
import { FAKE, FakeDevice } from "./fake_device.ts";
import { BDF, fdArg, io, machine, session } from "./vfio_fixture.ts";
import {
  EDU_DMA_BUFFER,
  EDU_DMA_CMD_IRQ,
  EDU_DMA_CMD_START,
  EDU_DMA_CMD_TO_RAM,
  EDU_REG_DMA_CMD,
  EDU_REG_DMA_COUNT,
  EDU_REG_DMA_DST,
  EDU_REG_DMA_SRC,
  EDU_REG_ID,
  EDU_REG_IRQ_ACK,
  EDU_REG_IRQ_RAISE,
  EDU_REG_IRQ_STATUS,
} from "../../drivers/edu/registers.ts";

const REGION_SHIFT = 40n;

/** A device fd through container + group 2 + type1v2. */
function openDevice(m: SimMachine): { device: number; group: number; container: number } {
  const { container, group } = session(m);
  const device = io(m, group, U.VFIO_GROUP_GET_DEVICE_FD, new TextEncoder().encode(BDF + "\0"));
  assert.ok(device >= 3, `device fd ${device}`);
  return { device, group, container };
}

function irqSet(
  flags: number,
  index: number,
  start: number,
  count: number,
  data: number[] = [],
  width = 4,
): Uint8Array {
  const b = encode(U.vfio_irq_set, {
    argsz: 20 + data.length * width,
    flags,
    index,
    start,
    count,
  }, data.length * width);
  const view = new DataView(b.buffer);
  data.forEach((d, i) =>
    width === 4 ? view.setInt32(20 + 4 * i, d, true) : view.setUint8(20 + i, d)
  );
  return b;
}

const TRIGGER_EVENTFD = U.VFIO_IRQ_SET_ACTION_TRIGGER | U.VFIO_IRQ_SET_DATA_EVENTFD;
const TRIGGER_NONE = U.VFIO_IRQ_SET_ACTION_TRIGGER | U.VFIO_IRQ_SET_DATA_NONE;

function counter(m: SimMachine, fd: number): bigint {
  const b = new Uint8Array(8);
  const n = m.kernel.read(fd, b);
  return n === 8 ? new DataView(b.buffer).getBigUint64(0, true) : BigInt(n);
}

Deno.test({
  name: "device fd: GET_DEVICE_FD names, GET_INFO, region info table, config and BAR access",
  permissions: "none",
  fn() {
    const m = machine();
    const k = m.kernel;
    const { device, group } = openDevice(m);
    const name = (s: string): number =>
      io(m, group, U.VFIO_GROUP_GET_DEVICE_FD, new TextEncoder().encode(s));
    assert.equal(name("0000:00:03.0\0"), -ERRNO.ENODEV);
    assert.equal(name("0000:00:02.00\0"), -ERRNO.ENODEV);
    assert.equal(name("0000:00:02.0 vf_token=x\0"), -ERRNO.EINVAL);
    assert.equal(name("0000:00:02.0"), -ERRNO.EFAULT); // no NUL inside the buffer
    const second = name(BDF + "\0");
    assert.ok(second > device); // the group path allows several opens
    assert.equal(k.close(second), 0);

    const info = encode(U.vfio_device_info, { argsz: 24, cap_offset: 77, pad: 5 });
    assert.equal(io(m, device, U.VFIO_DEVICE_GET_INFO, info), 0);
    assert.deepEqual(decode(U.vfio_device_info, info), {
      argsz: 24,
      flags: U.VFIO_DEVICE_FLAGS_PCI,
      num_regions: 9,
      num_irqs: 5,
      cap_offset: 0,
      pad: 5, // only 20 bytes are copied back
    });
    assert.equal(
      io(m, device, U.VFIO_DEVICE_GET_INFO, encode(U.vfio_device_info, { argsz: 15 })),
      -ERRNO.EINVAL,
    );

    const region = (index: number) => {
      const r = encode(U.vfio_region_info, { argsz: 32, index });
      const ret = io(m, device, U.VFIO_DEVICE_GET_REGION_INFO, r);
      return ret < 0 ? ret : decode(U.vfio_region_info, r);
    };
    assert.deepEqual(region(7), {
      argsz: 32,
      flags: U.VFIO_REGION_INFO_FLAG_READ | U.VFIO_REGION_INFO_FLAG_WRITE,
      index: 7,
      cap_offset: 0,
      size: 256n,
      offset: 7n << REGION_SHIFT,
    });
    const bar0 = region(0);
    assert.ok(typeof bar0 !== "number");
    assert.equal(bar0.flags, 7);
    assert.equal(bar0.size, BigInt(FAKE.BAR_SIZE));
    const bar1 = region(1);
    assert.ok(typeof bar1 !== "number");
    assert.deepEqual([bar1.flags, bar1.size, bar1.offset], [0, 0n, 1n << REGION_SHIFT]);
    const rom = region(6);
    assert.ok(typeof rom !== "number");
    assert.deepEqual([rom.flags, rom.size], [0, 0n]);
    assert.equal(region(8), -ERRNO.EINVAL);
    assert.equal(region(9), -ERRNO.EINVAL);

    // Config space through pread: vendor/device, EFAULT past the end.
    const cfg = new Uint8Array(4);
    assert.equal(k.pread(device, cfg, 7n << REGION_SHIFT), 4);
    assert.deepEqual([...cfg], [0x34, 0x12, 0xe8, 0x11]);
    assert.equal(k.pread(device, new Uint8Array(8), (7n << REGION_SHIFT) + 252n), -ERRNO.EFAULT);
    assert.equal(k.pread(device, new Uint8Array(4), 9n << REGION_SHIFT), -ERRNO.EINVAL);
    assert.equal(k.pwrite(device, new Uint8Array(4), 6n << REGION_SHIFT), -ERRNO.EINVAL);
    // vfio-pci enabled memory decoding on open; set bus master like a driver.
    const cmd = new Uint8Array(2);
    assert.equal(k.pread(device, cmd, (7n << REGION_SHIFT) + 4n), 2);
    assert.equal(cmd[0] & 0x2, 0x2);
    cmd[0] |= 0x4;
    assert.equal(k.pwrite(device, cmd, (7n << REGION_SHIFT) + 4n), 2);
    assert.equal(m.fn(BDF).model.config.read(4, 2) & 0x6, 0x6);

    // BAR0 through pread and mmap.
    const id = new Uint8Array(4);
    assert.equal(k.pread(device, id, 0n), 4);
    assert.equal(new DataView(id.buffer).getUint32(0, true), FAKE.ID_VALUE);
    assert.equal(k.pread(device, new Uint8Array(4), BigInt(FAKE.BAR_SIZE)), -ERRNO.EINVAL);
    assert.equal(k.pread(device, new Uint8Array(4), 1n << REGION_SHIFT), -ERRNO.EINVAL);
    const mmio = k.mmapDevice(device, 0n, 4096);
    assert.ok(typeof mmio !== "number");
    const t0 = k.clock.nowNs;
    assert.equal(mmio.read32(FAKE.ID), FAKE.ID_VALUE);
    assert.ok(k.clock.nowNs > t0, "an MMIO access advances virtual time");
    mmio.write32(FAKE.SCRATCH, 0xdeadbeef);
    assert.equal(mmio.read32(FAKE.SCRATCH), 0xdeadbeef);
    assert.throws(() => mmio.read32(4096));
    assert.equal(k.mmapDevice(device, 0n, FAKE.BAR_SIZE + 4096), -ERRNO.EINVAL);
    assert.equal(k.mmapDevice(device, 7n << REGION_SHIFT, 4096), -ERRNO.EINVAL);
    assert.equal(k.mmapDevice(device, 1n << REGION_SHIFT, 4096), -ERRNO.EINVAL);
    assert.equal(k.munmap(mmio), 0);
    assert.throws(() => mmio.read32(0));
    // With memory decoding off, BAR access is EIO through pread and SIGBUS through mmap.
    const mmio2 = k.mmapDevice(device, 0n, 4096);
    assert.ok(typeof mmio2 !== "number");
    assert.equal(k.pwrite(device, new Uint8Array([0, 0]), (7n << REGION_SHIFT) + 4n), 2);
    assert.equal(k.pread(device, new Uint8Array(4), 0n), -ERRNO.EIO);
    assert.throws(() => mmio2.read32(0), /SIGBUS/);
    assert.equal(m.kernel.ioctl(device, 0x3b99), -ERRNO.ENOTTY);
  },
});

Deno.test({
  name: "interrupts: MSI through an eventfd from the device, config MSI under kernel control",
  permissions: "none",
  async fn() {
    const m = machine();
    const k = m.kernel;
    const { device } = openDevice(m);
    const irqInfo = (index: number) => {
      const b = encode(U.vfio_irq_info, { argsz: 16, index });
      const r = io(m, device, U.VFIO_DEVICE_GET_IRQ_INFO, b);
      return r < 0 ? r : decode(U.vfio_irq_info, b);
    };
    const F = { E: 1, M: 2, A: 4, N: 8 };
    assert.deepEqual(irqInfo(0), { argsz: 16, flags: F.E | F.M | F.A, index: 0, count: 1 });
    assert.deepEqual(irqInfo(1), { argsz: 16, flags: F.E | F.N, index: 1, count: 1 });
    // No MSI-X capability, so no dynamic MSI-X (has_dyn_msix false): NORESIZE, as Linux says.
    assert.deepEqual(irqInfo(2), { argsz: 16, flags: F.E | F.N, index: 2, count: 0 });
    assert.equal(irqInfo(3), -ERRNO.EINVAL); // not PCIe
    assert.deepEqual(irqInfo(4), { argsz: 16, flags: F.E | F.N, index: 4, count: 1 });
    assert.equal(irqInfo(5), -ERRNO.EINVAL);

    const efd = k.eventfd(0, EFD_NONBLOCK);
    const set = (arg: Uint8Array): number => io(m, device, U.VFIO_DEVICE_SET_IRQS, arg);
    // Generic validation (vfio.md §7.3).
    assert.equal(set(new Uint8Array(19)), -ERRNO.EFAULT);
    assert.equal(set(irqSet(TRIGGER_EVENTFD, 5, 0, 1, [efd])), -ERRNO.EINVAL);
    assert.equal(set(irqSet(TRIGGER_EVENTFD, 1, 1, 1, [efd])), -ERRNO.EINVAL);
    assert.equal(set(irqSet(TRIGGER_EVENTFD, 2, 0, 0)), -ERRNO.EINVAL); // no MSI-X vectors
    assert.equal(set(irqSet(TRIGGER_EVENTFD | 1, 1, 0, 1, [efd])), -ERRNO.EINVAL);
    assert.equal(set(irqSet(TRIGGER_EVENTFD | 1 << 6, 1, 0, 1, [efd])), -ERRNO.EINVAL);
    const short = irqSet(TRIGGER_EVENTFD, 1, 0, 1, [efd]);
    assert.equal(set(short.subarray(0, 22)), -ERRNO.EFAULT);
    new DataView(short.buffer).setUint32(0, 23, true);
    assert.equal(set(short), -ERRNO.EINVAL);
    assert.equal(set(irqSet(U.VFIO_IRQ_SET_ACTION_MASK | 1, 1, 0, 1)), -ERRNO.ENOTTY);
    assert.equal(
      set(irqSet(U.VFIO_IRQ_SET_ACTION_TRIGGER | U.VFIO_IRQ_SET_ACTION_MASK | 1, 1, 0, 1)),
      -ERRNO.ENOTTY,
    );
    assert.equal(set(irqSet(TRIGGER_NONE, 1, 0, 1)), -ERRNO.EINVAL); // loopback while disabled
    assert.equal(set(irqSet(TRIGGER_EVENTFD, 1, 0, 1, [99])), -ERRNO.EBADF);
    const notEventfd = k.open("/dev/vfio/vfio", O_RDWR);
    assert.equal(set(irqSet(TRIGGER_EVENTFD, 1, 0, 1, [notEventfd])), -ERRNO.EINVAL);

    // Enable MSI with an eventfd: the kernel programs the capability.
    assert.equal(set(irqSet(TRIGGER_EVENTFD, 1, 0, 1, [efd])), 0);
    const cfg = m.fn(BDF).model.config;
    assert.equal(cfg.read(FAKE.MSI_CAP + 2, 2) & 1, 1);
    assert.equal(cfg.read(FAKE.MSI_CAP + 4, 4), 0xfee0_0000);
    // INTx cannot be enabled while MSI is.
    assert.equal(set(irqSet(TRIGGER_EVENTFD, 0, 0, 1, [efd])), -ERRNO.EINVAL);
    // User writes to the MSI enable bit are dropped.
    const zero = new Uint8Array(2);
    assert.equal(k.pwrite(device, zero, (7n << REGION_SHIFT) + BigInt(FAKE.MSI_CAP + 2)), 2);
    assert.equal(cfg.read(FAKE.MSI_CAP + 2, 2) & 1, 1);

    // The device raises MSI vector 0: the eventfd becomes readable.
    const mmio = k.mmapDevice(device, 0n, 4096);
    assert.ok(typeof mmio !== "number");
    const pfd = [{ fd: efd, events: POLLIN, revents: 0 }];
    assert.equal(await k.pollAsync(pfd, 0), 0);
    mmio.write32(FAKE.RAISE, 0);
    assert.equal(await k.pollAsync(pfd, 100), 1);
    assert.equal(counter(m, efd), 1n);
    // Loopback.
    assert.equal(set(irqSet(TRIGGER_NONE, 1, 0, 1)), 0);
    assert.equal(
      set(irqSet(U.VFIO_IRQ_SET_ACTION_TRIGGER | U.VFIO_IRQ_SET_DATA_BOOL, 1, 0, 1, [1], 1)),
      0,
    );
    assert.equal(counter(m, efd), 2n);
    // De-assign with fd -1: device interrupts are no longer delivered.
    assert.equal(set(irqSet(TRIGGER_EVENTFD, 1, 0, 1, [-1])), 0);
    mmio.write32(FAKE.RAISE, 0);
    assert.equal(counter(m, efd), -BigInt(ERRNO.EAGAIN));
    // Disable: DATA_NONE with count 0.
    assert.equal(set(irqSet(TRIGGER_NONE, 1, 0, 0)), 0);
    assert.equal(cfg.read(FAKE.MSI_CAP + 2, 2) & 1, 0);
  },
});

Deno.test({
  name: "interrupts: INTx trigger, auto-mask, unmask, unmask eventfd; ERR/REQ single triggers",
  permissions: "none",
  fn() {
    const m = machine();
    const k = m.kernel;
    const { device } = openDevice(m);
    const set = (arg: Uint8Array): number => io(m, device, U.VFIO_DEVICE_SET_IRQS, arg);
    const efd = k.eventfd(0, EFD_NONBLOCK);
    const unmaskFd = k.eventfd(0, EFD_NONBLOCK);
    const unmask = U.VFIO_IRQ_SET_ACTION_UNMASK;
    const mask = U.VFIO_IRQ_SET_ACTION_MASK;
    assert.equal(set(irqSet(unmask | U.VFIO_IRQ_SET_DATA_NONE, 0, 0, 1)), -ERRNO.EINVAL); // not active
    assert.equal(set(irqSet(TRIGGER_EVENTFD, 0, 0, 1, [efd])), 0);
    assert.equal(set(irqSet(mask | U.VFIO_IRQ_SET_DATA_EVENTFD, 0, 0, 1, [efd])), -ERRNO.ENOTTY);
    const mmio = k.mmapDevice(device, 0n, 4096);
    assert.ok(typeof mmio !== "number");
    mmio.write32(FAKE.RAISE, 0); // MSI is off: the device asserts INTx
    assert.equal(counter(m, efd), 1n);
    mmio.write32(FAKE.RAISE, 0); // masked until unmasked
    assert.equal(counter(m, efd), -BigInt(ERRNO.EAGAIN));
    assert.equal(set(irqSet(unmask | U.VFIO_IRQ_SET_DATA_NONE, 0, 0, 1)), 0); // still asserted: fires
    assert.equal(counter(m, efd), 1n);
    mmio.write32(FAKE.LOWER, 0);
    assert.equal(set(irqSet(unmask | U.VFIO_IRQ_SET_DATA_EVENTFD, 0, 0, 1, [unmaskFd])), 0);
    assert.equal(k.write(unmaskFd, new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0])), 8); // unmasks
    mmio.write32(FAKE.RAISE, 0);
    assert.equal(counter(m, efd), 1n);
    assert.equal(set(irqSet(TRIGGER_NONE, 0, 0, 0)), 0); // disable INTx
    assert.equal(set(irqSet(mask | U.VFIO_IRQ_SET_DATA_NONE, 0, 0, 1)), -ERRNO.EINVAL);

    // REQ: DATA_NONE needs a trigger; fd -1 clears; fd < -1 leaves it (as 6.12 does).
    const req = (flags: number, count: number, data: number[] = [], w = 4): number =>
      set(irqSet(U.VFIO_IRQ_SET_ACTION_TRIGGER | flags, 4, 0, count, data, w));
    assert.equal(req(U.VFIO_IRQ_SET_DATA_NONE, 1), -ERRNO.EINVAL);
    assert.equal(req(U.VFIO_IRQ_SET_DATA_EVENTFD, 1, [efd]), 0);
    assert.equal(req(U.VFIO_IRQ_SET_DATA_NONE, 1), 0);
    assert.equal(counter(m, efd), 1n);
    assert.equal(req(U.VFIO_IRQ_SET_DATA_EVENTFD, 1, [-5]), -ERRNO.EINVAL); // only -1 disables
    assert.equal(req(U.VFIO_IRQ_SET_DATA_BOOL, 0), -ERRNO.EINVAL);
    assert.equal(req(U.VFIO_IRQ_SET_DATA_EVENTFD, 1, [-1]), 0);
    assert.equal(req(U.VFIO_IRQ_SET_DATA_NONE, 1), -ERRNO.EINVAL);
    assert.equal(set(irqSet(mask | U.VFIO_IRQ_SET_DATA_NONE, 4, 0, 1)), -ERRNO.ENOTTY);
    assert.equal(set(irqSet(TRIGGER_EVENTFD, 3, 0, 1, [efd])), -ERRNO.EINVAL); // no ERR vector
  },
});

Deno.test({
  name: "reset, hot reset, DEVICE_FEATURE, IOEVENTFD",
  permissions: "none",
  fn() {
    const m = machine({
      devices: [
        { model: new FakeDevice(), bdf: BDF },
        { model: new FakeDevice(true), bdf: "0000:01:00.0", group: 9 },
      ],
    });
    const k = m.kernel;
    const { device } = openDevice(m);
    assert.equal(io(m, device, U.VFIO_DEVICE_RESET), -ERRNO.EINVAL);
    const info = encode(U.vfio_pci_hot_reset_info, { argsz: 12 });
    assert.equal(io(m, device, U.VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, info), -ERRNO.ENODEV);
    const hot = encode(U.vfio_pci_hot_reset, { argsz: 12, count: 1 }, 4);
    assert.equal(io(m, device, U.VFIO_DEVICE_PCI_HOT_RESET, hot), -ERRNO.ENODEV);

    // The function behind a bridge: FLR works, and a bus reset is possible.
    const container = k.open("/dev/vfio/vfio", O_RDWR);
    const g9 = k.open("/dev/vfio/9", O_RDWR);
    assert.equal(io(m, g9, U.VFIO_GROUP_SET_CONTAINER, fdArg(container)), 0);
    assert.equal(io(m, container, U.VFIO_SET_IOMMU, U.VFIO_TYPE1v2_IOMMU), 0);
    const d9 = io(m, g9, U.VFIO_GROUP_GET_DEVICE_FD, new TextEncoder().encode("0000:01:00.0\0"));
    assert.ok(d9 > 0);
    const dinfo = encode(U.vfio_device_info, { argsz: 24 });
    assert.equal(io(m, d9, U.VFIO_DEVICE_GET_INFO, dinfo), 0);
    assert.equal(
      decode(U.vfio_device_info, dinfo).flags,
      U.VFIO_DEVICE_FLAGS_PCI | U.VFIO_DEVICE_FLAGS_RESET,
    );
    assert.equal(io(m, d9, U.VFIO_DEVICE_RESET), 0);
    assert.equal(io(m, d9, U.VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, info), -ERRNO.ENOSPC);
    assert.deepEqual(decode(U.vfio_pci_hot_reset_info, info), { argsz: 12, flags: 0, count: 1 });
    const full = encode(U.vfio_pci_hot_reset_info, { argsz: 20 }, 8);
    assert.equal(io(m, d9, U.VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, full), 0);
    assert.deepEqual(decode(U.vfio_pci_dependent_device, full, 12), {
      group_id: 9,
      segment: 0,
      bus: 1,
      devfn: 0,
    });
    const reset = (fds: number[], flags = 0): number => {
      const b = encode(U.vfio_pci_hot_reset, {
        argsz: 12 + 4 * fds.length,
        flags,
        count: fds.length,
      }, 4 * fds.length);
      fds.forEach((fd, i) => new DataView(b.buffer).setInt32(12 + 4 * i, fd, true));
      return io(m, d9, U.VFIO_DEVICE_PCI_HOT_RESET, b);
    };
    assert.equal(reset([], 0), -ERRNO.EINVAL); // group-opened device must pass groups
    assert.equal(reset([g9], 1), -ERRNO.EINVAL);
    assert.equal(reset([77]), -ERRNO.EBADF);
    assert.equal(reset([container]), -ERRNO.EINVAL);
    assert.equal(reset([g9]), 0);

    // DEVICE_FEATURE core checks and vfio-pci features.
    const feature = (flags: number, data = 0): number =>
      io(
        m,
        device,
        U.VFIO_DEVICE_FEATURE,
        encode(U.vfio_device_feature, { argsz: 8 + data, flags }, data),
      );
    const {
      VFIO_DEVICE_FEATURE_GET: GET,
      VFIO_DEVICE_FEATURE_SET: SET,
      VFIO_DEVICE_FEATURE_PROBE: PROBE,
    } = U;
    assert.equal(feature(GET | SET | 3), -ERRNO.EINVAL);
    assert.equal(feature(1 << 20), -ERRNO.EINVAL);
    assert.equal(feature(GET | 1), -ERRNO.ENOTTY); // no migration
    assert.equal(feature(SET | 0), -ERRNO.ENOTTY); // no VF token
    assert.equal(feature(SET | 0x40), -ERRNO.ENOTTY);
    assert.equal(feature(PROBE | SET | 3), 0);
    assert.equal(feature(GET | 3), -ERRNO.EINVAL);
    assert.equal(feature(3), -ERRNO.EINVAL);
    assert.equal(feature(SET | 3), 0);
    assert.equal(feature(SET | 3), -ERRNO.EINVAL);
    assert.equal(feature(SET | 5), 0);
    assert.equal(feature(SET | 4), -ERRNO.EINVAL); // data too short

    // IOEVENTFD: a write of `data` each time the eventfd is signalled.
    const efd = k.eventfd(0, EFD_NONBLOCK);
    const ioevent = (flags: number, offset: bigint, data: bigint, fd: number): number =>
      io(
        m,
        device,
        U.VFIO_DEVICE_IOEVENTFD,
        encode(U.vfio_device_ioeventfd, { argsz: 32, flags, offset, data, fd }),
      );
    assert.equal(ioevent(3, 0x80n, 1n, efd), -ERRNO.EINVAL);
    assert.equal(ioevent(4, 7n << REGION_SHIFT, 1n, efd), -ERRNO.EINVAL);
    assert.equal(ioevent(4, BigInt(FAKE.BAR_SIZE), 1n, efd), -ERRNO.EINVAL);
    assert.equal(ioevent(4, 0x80n, 1n, -2), -ERRNO.EINVAL);
    assert.equal(ioevent(4, 0x80n, 1n, -1), -ERRNO.ENODEV);
    assert.equal(ioevent(4, 0x80n, 0x1234n, efd), 0);
    assert.equal(ioevent(4, 0x80n, 0x1234n, efd), -ERRNO.EEXIST);
    assert.equal(k.write(efd, new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0])), 8);
    assert.equal((m.fn(BDF).model as FakeDevice).scratch, 0x1234);
    assert.equal(ioevent(4, 0x80n, 0x1234n, -1), 0);
  },
});

Deno.test({
  name: "cdev: no access before BIND_IOMMUFD; group fds refuse BIND (EINVAL) and ATTACH (ENOTTY)",
  permissions: "none",
  fn() {
    const m = machine();
    const k = m.kernel;
    assert.deepEqual(k.readdir("/dev/vfio/devices"), ["vfio0"]);
    const cdev = k.open("/dev/vfio/devices/vfio0", O_RDWR);
    assert.ok(cdev >= 3);
    const info = encode(U.vfio_device_info, { argsz: 24 });
    assert.equal(io(m, cdev, U.VFIO_DEVICE_GET_INFO, info), -ERRNO.EINVAL);
    assert.equal(k.pread(cdev, new Uint8Array(4), 7n << REGION_SHIFT), -ERRNO.EINVAL);
    assert.equal(k.mmapDevice(cdev, 0n, 4096), -ERRNO.EINVAL);
    const bind = (fd: number, flags = 0, argsz = 16): Uint8Array =>
      encode(U.vfio_device_bind_iommufd, { argsz, flags, iommufd: fd });
    assert.equal(io(m, cdev, U.VFIO_DEVICE_BIND_IOMMUFD, bind(3, 0, 15)), -ERRNO.EINVAL);
    assert.equal(io(m, cdev, U.VFIO_DEVICE_BIND_IOMMUFD, bind(3, 1)), -ERRNO.EINVAL);
    assert.equal(io(m, cdev, U.VFIO_DEVICE_BIND_IOMMUFD, bind(-1)), -ERRNO.EINVAL);
    assert.equal(io(m, cdev, U.VFIO_DEVICE_BIND_IOMMUFD, bind(99)), -ERRNO.EBADF);
    assert.equal(io(m, cdev, U.VFIO_DEVICE_BIND_IOMMUFD, bind(cdev)), -ERRNO.EBADFD);
    assert.equal(k.close(cdev), 0);

    const { device, group } = openDevice(m);
    assert.equal(io(m, device, U.VFIO_DEVICE_BIND_IOMMUFD, bind(group)), -ERRNO.EINVAL);
    const attach = encode(U.vfio_device_attach_iommufd_pt, { argsz: 12, pt_id: 1 });
    assert.equal(io(m, device, U.VFIO_DEVICE_ATTACH_IOMMUFD_PT, attach), -ERRNO.ENOTTY);
    const detach = encode(U.vfio_device_detach_iommufd_pt, { argsz: 8 });
    assert.equal(io(m, device, U.VFIO_DEVICE_DETACH_IOMMUFD_PT, detach), -ERRNO.ENOTTY);
    // A cdev opened while the group is open cannot bind (EBUSY).
    const cdev2 = k.open("/dev/vfio/devices/vfio0", O_RDWR);
    assert.equal(io(m, cdev2, U.VFIO_DEVICE_BIND_IOMMUFD, bind(group)), -ERRNO.EBUSY);
  },
});

Deno.test({
  name: "sysfs: ids, links, groups, reserved regions, vfio-dev, unbind while open",
  permissions: "none",
  fn() {
    const m = machine();
    const k = m.kernel;
    const dev = `/sys/bus/pci/devices/${BDF}`;
    assert.equal(k.readFile(`${dev}/vendor`), "0x1234\n");
    assert.equal(k.readFile(`${dev}/device`), "0x11e8\n");
    assert.equal(k.readFile(`${dev}/class`), "0x00ff00\n");
    assert.equal(k.readlink(`${dev}/iommu_group`), "../../../kernel/iommu_groups/2");
    assert.equal(k.readlink(`${dev}/driver`), "../../../bus/pci/drivers/vfio-pci");
    assert.equal(k.readFile(`${dev}/driver_override`), "(null)\n");
    assert.deepEqual(k.readdir(`${dev}/vfio-dev`), ["vfio0"]);
    assert.deepEqual(k.readdir("/sys/bus/pci/devices"), [BDF]);
    assert.deepEqual(k.readdir("/sys/kernel/iommu_groups"), ["2"]);
    assert.deepEqual(k.readdir("/sys/kernel/iommu_groups/2/devices"), [BDF]);
    assert.equal(
      k.readFile("/sys/kernel/iommu_groups/2/reserved_regions"),
      "0x00000000fee00000 0x00000000feefffff msi\n",
    );
    assert.equal(k.readFile("/sys/kernel/iommu_groups/2/type"), "DMA-FQ\n");
    assert.equal(k.readFile(`/sys/kernel/iommu_groups/2/devices/${BDF}/vendor`), "0x1234\n");
    assert.equal(k.writeFile("/sys/bus/pci/drivers_probe", "0000:00:09.0"), -ERRNO.ENODEV);
    assert.equal(k.writeFile(`${dev}/vendor`, "0"), -ERRNO.EACCES);
    // Unbinding while the device is open signals the request eventfd (Linux then waits).
    const { device } = openDevice(m);
    const efd = k.eventfd(0, EFD_NONBLOCK);
    assert.equal(
      io(m, device, U.VFIO_DEVICE_SET_IRQS, irqSet(TRIGGER_EVENTFD, 4, 0, 1, [efd])),
      0,
    );
    assert.equal(k.writeFile(`${dev}/driver/unbind`, BDF), -ERRNO.EBUSY);
    assert.equal(counter(m, efd), 1n);
    assert.equal(k.close(device), 0);
    assert.equal(k.writeFile(`${dev}/driver/unbind`, BDF), BDF.length);
    assert.equal(k.readlink(`${dev}/driver`), -ERRNO.ENOENT);
    assert.equal(k.readdir(`${dev}/vfio-dev`), -ERRNO.ENOENT);
    assert.deepEqual(k.readdir("/dev/vfio"), ["vfio"]);
  },
});

Deno.test({
  name: "edu end to end: ident through mmap, MSI on an eventfd, DMA round trip through type1",
  permissions: "none",
  async fn() {
    const m = createMachine({ iommu: "vtd", strict: true });
    const k = m.kernel;
    assert.equal(k.readFile(`/sys/bus/pci/devices/${BDF}/device`), "0x11e8\n");
    const { device, container } = openDevice(m);
    const mmio = k.mmapDevice(device, 0n, 4096);
    assert.ok(typeof mmio !== "number");
    assert.equal(mmio.read32(EDU_REG_ID), 0x010000ed);
    // Bus master through the config region, as a driver does before DMA.
    const cmdAt = (7n << REGION_SHIFT) + 4n;
    const cmd = new Uint8Array(2);
    assert.equal(k.pread(device, cmd, cmdAt), 2);
    cmd[0] |= 0x4;
    assert.equal(k.pwrite(device, cmd, cmdAt), 2);
    const efd = k.eventfd(0, EFD_NONBLOCK);
    assert.equal(io(m, device, U.VFIO_DEVICE_SET_IRQS, irqSet(TRIGGER_EVENTFD, 1, 0, 1, [efd])), 0);
    mmio.write32(EDU_REG_IRQ_RAISE, 0x40);
    assert.equal(counter(m, efd), 1n);
    mmio.write32(EDU_REG_IRQ_ACK, 0x40);

    // DMA: RAM → edu buffer → RAM, through a type1 mapping, completion by MSI.
    const mem = k.mmapAnonymous(8192);
    assert.ok(typeof mem !== "number");
    const iova = 0x10_0000n;
    const map = encode(U.vfio_iommu_type1_dma_map, {
      argsz: 32,
      flags: 3,
      vaddr: mem.address,
      iova,
      size: 8192n,
    });
    assert.equal(io(m, container, U.VFIO_IOMMU_MAP_DMA, map), 0);
    mem.bytes.set([1, 2, 3, 4, 5, 6, 7, 8]);
    const dma = async (src: bigint, dst: bigint, toRam: boolean): Promise<void> => {
      mmio.write64(EDU_REG_DMA_SRC, src);
      mmio.write64(EDU_REG_DMA_DST, dst);
      mmio.write64(EDU_REG_DMA_COUNT, 8n);
      const flags = EDU_DMA_CMD_START | EDU_DMA_CMD_IRQ | (toRam ? EDU_DMA_CMD_TO_RAM : 0);
      mmio.write64(EDU_REG_DMA_CMD, BigInt(flags));
      const start = k.now();
      assert.equal(await k.pollAsync([{ fd: efd, events: POLLIN, revents: 0 }], 1000), 1);
      assert.ok(
        k.now() - start >= 99,
        `edu takes 100 virtual ms per transfer, took ${k.now() - start}`,
      );
      assert.equal(counter(m, efd), 1n);
      mmio.write32(EDU_REG_IRQ_ACK, mmio.read32(EDU_REG_IRQ_STATUS));
    };
    await dma(iova, BigInt(EDU_DMA_BUFFER), false);
    await dma(BigInt(EDU_DMA_BUFFER), iova + 4096n, true);
    assert.deepEqual([...mem.bytes.subarray(4096, 4104)], [1, 2, 3, 4, 5, 6, 7, 8]);
    assert.equal(m.faults().length, 0);
    // After unmapping, the same DMA faults in the IOMMU, as on the VM.
    const unmap = encode(U.vfio_iommu_type1_dma_unmap, { argsz: 24, iova, size: 8192n });
    assert.equal(io(m, container, U.VFIO_IOMMU_UNMAP_DMA, unmap), 0);
    await dma(BigInt(EDU_DMA_BUFFER), iova, true);
    assert.equal(m.faults().length, 1);
    assert.equal(m.faults()[0].address, iova);
    assert.equal(k.munmap(mmio), 0);
  },
});

Deno.test({
  name: "cdev + iommufd: bind, device access, attach to an IOAS, group exclusion, unbind on close",
  permissions: "none",
  fn() {
    const m = machine();
    const k = m.kernel;
    const iommufd = k.open("/dev/iommu", O_RDWR);
    const cdev = k.open("/dev/vfio/devices/vfio0", O_RDWR);
    const bind = encode(U.vfio_device_bind_iommufd, { argsz: 16, iommufd });
    assert.equal(io(m, cdev, U.VFIO_DEVICE_BIND_IOMMUFD, bind), 0);
    const devid = decode(U.vfio_device_bind_iommufd, bind).out_devid;
    assert.ok(devid > 0);
    assert.equal(io(m, cdev, U.VFIO_DEVICE_BIND_IOMMUFD, bind), -ERRNO.EINVAL); // bound already
    assert.equal(k.open("/dev/vfio/2", O_RDWR), -ERRNO.EBUSY);
    const second = k.open("/dev/vfio/devices/vfio0", O_RDWR);
    assert.equal(io(m, second, U.VFIO_DEVICE_BIND_IOMMUFD, bind), -ERRNO.EINVAL); // one cdev open
    assert.equal(k.close(second), 0);
    const info = encode(U.vfio_device_info, { argsz: 24 });
    assert.equal(io(m, cdev, U.VFIO_DEVICE_GET_INFO, info), 0);
    assert.equal(decode(U.vfio_device_info, info).num_regions, 9);
    assert.equal(m.fn(BDF).group.dmaOwner, "iommufd");

    const alloc = encode(iommu_ioas_alloc, { size: 12 });
    assert.equal(io(m, iommufd, IOMMU_IOAS_ALLOC, alloc), 0);
    const ioas = decode(iommu_ioas_alloc, alloc).out_ioas_id;
    const attach = (pt: number, argsz = 12, flags = 0): [number, number] => {
      const b = encode(U.vfio_device_attach_iommufd_pt, { argsz, flags, pt_id: pt });
      const r = io(m, cdev, U.VFIO_DEVICE_ATTACH_IOMMUFD_PT, b);
      return [r, decode(U.vfio_device_attach_iommufd_pt, b).pt_id];
    };
    assert.deepEqual(attach(ioas, 11), [-ERRNO.EINVAL, ioas]);
    assert.deepEqual(attach(ioas, 12, 1), [-ERRNO.EINVAL, ioas]);
    assert.deepEqual(attach(999), [-ERRNO.ENOENT, 999]);
    const [r, hwpt] = attach(ioas);
    assert.equal(r, 0);
    assert.ok(hwpt > ioas, `the auto HWPT id ${hwpt} is written back`);
    const detach = encode(U.vfio_device_detach_iommufd_pt, { argsz: 8 });
    assert.equal(io(m, cdev, U.VFIO_DEVICE_DETACH_IOMMUFD_PT, detach), 0);
    const badDetach = encode(U.vfio_device_detach_iommufd_pt, { argsz: 8, flags: 1 });
    assert.equal(io(m, cdev, U.VFIO_DEVICE_DETACH_IOMMUFD_PT, badDetach), -ERRNO.EINVAL);

    assert.equal(k.close(cdev), 0);
    assert.equal(m.fn(BDF).group.dmaOwner, undefined);
    const group = k.open("/dev/vfio/2", O_RDWR);
    assert.ok(group > 0);
    // The group path with the iommufd as its container: the compat IOAS.
    assert.equal(io(m, group, U.VFIO_GROUP_SET_CONTAINER, fdArg(iommufd)), 0);
    const status = encode(U.vfio_group_status, { argsz: 8 });
    assert.equal(io(m, group, U.VFIO_GROUP_GET_STATUS, status), 0);
    assert.equal(decode(U.vfio_group_status, status).flags, 3);
    const device = io(m, group, U.VFIO_GROUP_GET_DEVICE_FD, new TextEncoder().encode(BDF + "\0"));
    assert.ok(device > 0);
    assert.equal(m.fn(BDF).group.dmaOwner, "iommufd");
    assert.equal(io(m, device, U.VFIO_DEVICE_BIND_IOMMUFD, bind), -ERRNO.EINVAL);
    assert.equal(k.close(device), 0);
    assert.equal(k.close(group), 0);
    assert.equal(k.close(iommufd), 0);
    assert.equal(k.process.liveFiles, 0);
  },
});
