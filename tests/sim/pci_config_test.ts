/**
 * The config-space builder: header, BAR sizing, read-only and RW1C bits, the capability list,
 * MSI/MSI-X state helpers, INTx gating.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  capabilities,
  findCapability,
  flushPendingMsi,
  IntxPin,
  msiMessage,
  msiState,
  msixState,
  PciConfigSpace,
  sendMsi,
} from "../../sim/pci/config.ts";
import type { InterruptSink } from "../../sim/pci/device.ts";
import {
  PCI_BASE_ADDRESS_0,
  PCI_CAP_ID_EXP,
  PCI_CAP_ID_MSI,
  PCI_CAP_ID_MSIX,
  PCI_CAP_ID_PM,
  PCI_CAPABILITY_LIST,
  PCI_CLASS_DEVICE,
  PCI_COMMAND,
  PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_MASTER,
  PCI_DEVICE_ID,
  PCI_EXP_DEVCTL,
  PCI_EXP_DEVSTA,
  PCI_HEADER_TYPE,
  PCI_INTERRUPT_LINE,
  PCI_INTERRUPT_PIN,
  PCI_MSI_ADDRESS_HI,
  PCI_MSI_ADDRESS_LO,
  PCI_MSI_DATA_64,
  PCI_MSI_FLAGS,
  PCI_MSI_MASK_64,
  PCI_MSI_PENDING_64,
  PCI_MSIX_FLAGS,
  PCI_PM_CTRL,
  PCI_REVISION_ID,
  PCI_STATUS,
  PCI_STATUS_CAP_LIST,
  PCI_STATUS_INTERRUPT,
  PCI_STATUS_REC_MASTER_ABORT,
  PCI_SUBSYSTEM_ID,
  PCI_VENDOR_ID,
} from "../../sim/pci/pci_regs.ts";

function nic(): PciConfigSpace {
  const c = new PciConfigSpace({
    vendorId: 0x8086,
    deviceId: 0x10c9,
    revision: 1,
    classCode: 0x020000,
    subsystemVendorId: 0x8086,
    subsystemId: 0xa03c,
    interruptPin: 1,
    express: true,
  });
  c.addBar({ index: 0, size: 0x20000, kind: "mem32", prefetchable: false });
  c.addBar({ index: 1, size: 0x2_0000_0000, kind: "mem64", prefetchable: true });
  c.addBar({ index: 3, size: 0x20, kind: "io", prefetchable: false });
  c.addPowerManagement();
  c.addMsi({ vectors: 4, address64: true, perVectorMask: true });
  c.addMsix({ tableSize: 10, tableBar: 3, tableOffset: 0, pbaBar: 3, pbaOffset: 0x2000 });
  c.addPciExpress({ flr: true });
  return c;
}

class Sink implements InterruptSink {
  events: string[] = [];
  msi(v: number): void {
    this.events.push(`msi ${v}`);
  }
  msix(v: number): void {
    this.events.push(`msix ${v}`);
  }
  intx(a: boolean): void {
    this.events.push(`intx ${a}`);
  }
}

Deno.test({
  name: "config: header fields are read-only, PCIe space is 4096 with an empty extended list",
  permissions: "none",
  fn() {
    const c = nic();
    assert.equal(c.size, 4096);
    assert.equal(c.read(PCI_VENDOR_ID, 4), 0x10c98086);
    assert.equal(c.read(PCI_REVISION_ID, 4), 0x02000001);
    assert.equal(c.read(PCI_CLASS_DEVICE, 2), 0x0200);
    assert.equal(c.read(PCI_HEADER_TYPE, 1), 0);
    assert.equal(c.read(PCI_SUBSYSTEM_ID, 2), 0xa03c);
    assert.equal(c.read(PCI_INTERRUPT_PIN, 1), 1);
    c.write(PCI_VENDOR_ID, 4, 0);
    c.write(PCI_DEVICE_ID, 2, 0x1234);
    c.write(PCI_INTERRUPT_PIN, 1, 3);
    assert.equal(c.read(PCI_VENDOR_ID, 4), 0x10c98086);
    assert.equal(c.read(PCI_INTERRUPT_PIN, 1), 1);
    c.write(PCI_INTERRUPT_LINE, 1, 0x0b);
    assert.equal(c.read(PCI_INTERRUPT_LINE, 1), 0x0b);
    assert.equal(c.read(0x100, 4), 0); // PCIe: no extended capabilities
    assert.equal(c.read(0xffc, 4), 0);
    assert.equal(c.read(0x1000, 4), 0xffffffff); // beyond the space
    assert.equal(c.read(0xfff, 2), 0xffff);
    const conventional = new PciConfigSpace({ vendorId: 1, deviceId: 2, classCode: 0 });
    assert.equal(conventional.size, 256);
    assert.equal(conventional.read(0x100, 4), 0xffffffff);
    assert.equal(conventional.read(PCI_STATUS, 2) & PCI_STATUS_CAP_LIST, 0);
    assert.deepEqual(capabilities(conventional), []);
  },
});

Deno.test({
  name: "config: BARs size themselves: write all-ones, read back the size mask",
  permissions: "none",
  fn() {
    const c = nic();
    const bar = (i: number): number => PCI_BASE_ADDRESS_0 + 4 * i;
    assert.equal(c.read(bar(1), 4), 0xc); // 64-bit prefetchable type bits
    for (let i = 0; i < 6; i++) c.write(bar(i), 4, 0xffffffff);
    assert.equal(c.read(bar(0), 4), 0xfffe0000); // 128 KiB mem32
    assert.equal(c.read(bar(1), 4), 0x0000000c); // 8 GiB: low dword has no address bits
    assert.equal(c.read(bar(2), 4), 0xfffffffe); // upper dword
    assert.equal(c.read(bar(3), 4), 0xffffffe1); // 32-byte I/O
    assert.equal(c.read(bar(4), 4), 0); // unimplemented
    c.write(bar(0), 4, 0xfebc1234);
    assert.equal(c.read(bar(0), 4), 0xfebc0000);
    c.write(bar(1), 4, 0);
    c.write(bar(2), 4, 0x4);
    assert.equal(c.read(bar(1), 4), 0xc);
    assert.equal(c.read(bar(2), 4), 0x4);
    assert.equal(c.bars.length, 3);
  },
});

Deno.test({
  name: "config: command bits writable as QEMU's mask, status RW1C, reset restores power-on",
  permissions: "none",
  fn() {
    const c = nic();
    c.write(PCI_COMMAND, 2, 0xffff);
    assert.equal(c.read(PCI_COMMAND, 2), 0x547);
    c.set(PCI_STATUS, 2, c.get(PCI_STATUS, 2) | PCI_STATUS_REC_MASTER_ABORT | PCI_STATUS_INTERRUPT);
    c.write(PCI_STATUS, 2, PCI_STATUS_INTERRUPT | PCI_STATUS_CAP_LIST); // RO bits: no effect
    assert.equal(c.read(PCI_STATUS, 2), 0x2018);
    c.write(PCI_STATUS, 2, PCI_STATUS_REC_MASTER_ABORT); // W1C
    assert.equal(c.read(PCI_STATUS, 2), 0x0018);
    const exp = findCapability(c, PCI_CAP_ID_EXP)!;
    c.set(exp + PCI_EXP_DEVSTA, 2, 0x0025);
    c.write(exp + PCI_EXP_DEVSTA, 2, 0xffff);
    assert.equal(c.read(exp + PCI_EXP_DEVSTA, 2), 0x0020); // only CED..URD are RW1C
    c.write(exp + PCI_EXP_DEVCTL, 2, 0xffff);
    assert.equal(c.read(exp + PCI_EXP_DEVCTL, 2), 0x7fff); // FLR bit reads 0
    const pm = findCapability(c, PCI_CAP_ID_PM)!;
    c.write(pm + PCI_PM_CTRL, 2, 0x0103);
    assert.equal(c.read(pm + PCI_PM_CTRL, 2), 0x0103);
    c.write(PCI_BASE_ADDRESS_0, 4, 0xfeb00000);
    c.reset();
    assert.equal(c.read(PCI_COMMAND, 2), 0);
    assert.equal(c.read(PCI_BASE_ADDRESS_0, 4), 0);
    assert.equal(c.read(PCI_STATUS, 2), PCI_STATUS_CAP_LIST);
    assert.equal(c.read(pm + PCI_PM_CTRL, 2), 0);
  },
});

Deno.test({
  name: "config: capability list walk, in order, dword aligned, from 0x40",
  permissions: "none",
  fn() {
    const c = nic();
    assert.equal(c.read(PCI_STATUS, 2) & PCI_STATUS_CAP_LIST, PCI_STATUS_CAP_LIST);
    assert.equal(c.read(PCI_CAPABILITY_LIST, 1), 0x40);
    assert.deepEqual(capabilities(c), [
      { id: PCI_CAP_ID_PM, offset: 0x40 },
      { id: PCI_CAP_ID_MSI, offset: 0x48 },
      { id: PCI_CAP_ID_MSIX, offset: 0x60 },
      { id: PCI_CAP_ID_EXP, offset: 0x6c },
    ]);
    assert.equal(c.read(0x6c + 1, 1), 0); // end of list
    assert.equal(findCapability(c, 0x09), undefined);
    // A looping list ends by the TTL.
    c.set(0x6c + 1, 1, 0x40);
    assert.equal(capabilities(c).length, 48);
  },
});

Deno.test({
  name: "config: MSI state: enable, address, data, MME clamp, mask/pending, send rules",
  permissions: "none",
  fn() {
    const c = nic();
    const sink = new Sink();
    const at = findCapability(c, PCI_CAP_ID_MSI)!;
    let s = msiState(c)!;
    assert.deepEqual(
      [s.enabled, s.vectorsCapable, s.vectorsEnabled, s.address64, s.perVectorMask],
      [false, 4, 1, true, true],
    );
    assert.equal(sendMsi(c, sink, 0), "disabled");
    c.write(at + PCI_MSI_ADDRESS_LO, 4, 0xfee0100f); // bits 1:0 reserved
    c.write(at + PCI_MSI_ADDRESS_HI, 4, 0x1);
    c.write(at + PCI_MSI_DATA_64, 2, 0x4023);
    c.write(at + PCI_MSI_FLAGS, 2, 0x0071); // enable, MME 8 (> capable 4)
    c.write(at + PCI_MSI_MASK_64, 4, 0xffffffff);
    c.write(at + PCI_MSI_PENDING_64, 4, 0xffffffff); // read-only
    s = msiState(c)!;
    assert.equal(s.enabled, true);
    assert.equal(s.vectorsEnabled, 4);
    assert.equal(s.address, 0x1_fee0100cn);
    assert.equal(s.data, 0x4023);
    assert.equal(s.mask, 0xf);
    assert.equal(s.pending, 0);
    assert.deepEqual(msiMessage(s, 2), { address: 0x1_fee0100cn, data: 0x4022 });
    assert.equal(sendMsi(c, sink, 1), "no-bus-master");
    c.write(PCI_COMMAND, 2, PCI_COMMAND_MASTER);
    assert.equal(sendMsi(c, sink, 4), "bad-vector");
    assert.equal(sendMsi(c, sink, 1), "masked");
    assert.equal(msiState(c)!.pending, 0b10);
    c.write(at + PCI_MSI_MASK_64, 4, 0b1101);
    assert.deepEqual(flushPendingMsi(c, sink), [1]);
    assert.equal(msiState(c)!.pending, 0);
    assert.equal(sendMsi(c, sink, 1), "sent");
    assert.deepEqual(sink.events, ["msi 1", "msi 1"]);
  },
});

Deno.test({
  name: "config: MSI-X state: table/PBA BIR and offset, enable and function mask",
  permissions: "none",
  fn() {
    const c = nic();
    const at = findCapability(c, PCI_CAP_ID_MSIX)!;
    assert.deepEqual(msixState(c), {
      offset: at,
      enabled: false,
      functionMask: false,
      tableSize: 10,
      tableBar: 3,
      tableOffset: 0,
      pbaBar: 3,
      pbaOffset: 0x2000,
    });
    c.write(at + PCI_MSIX_FLAGS, 2, 0xffff);
    const s = msixState(c)!;
    assert.equal(s.enabled && s.functionMask, true);
    assert.equal(s.tableSize, 10); // QSIZE stays read-only
    assert.equal(
      msixState(new PciConfigSpace({ vendorId: 1, deviceId: 1, classCode: 0 })),
      undefined,
    );
  },
});

Deno.test({
  name:
    "config: INTx pin: Status.Interrupt mirrors the level, DisINTx gates the line, MSI drops it",
  permissions: "none",
  fn() {
    const c = nic();
    const sink = new Sink();
    const pin = new IntxPin(c);
    pin.connect(sink);
    pin.set(true);
    assert.equal(c.read(PCI_STATUS, 2) & PCI_STATUS_INTERRUPT, PCI_STATUS_INTERRUPT);
    c.write(PCI_COMMAND, 2, PCI_COMMAND_INTX_DISABLE);
    assert.equal(pin.asserted, false);
    assert.equal(c.read(PCI_STATUS, 2) & PCI_STATUS_INTERRUPT, PCI_STATUS_INTERRUPT);
    c.write(PCI_COMMAND, 2, 0);
    assert.equal(pin.asserted, true);
    const msi = findCapability(c, PCI_CAP_ID_MSI)!;
    c.write(msi + PCI_MSI_FLAGS, 2, 1);
    assert.equal(pin.level, false);
    assert.equal(c.read(PCI_STATUS, 2) & PCI_STATUS_INTERRUPT, 0);
    assert.deepEqual(sink.events, ["intx true", "intx false", "intx true", "intx false"]);
  },
});
