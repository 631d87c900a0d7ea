/**
 * A tiny PCI function for VFIO tests that must not depend on a real device model: vendor
 * 1234:11e8, one 1 MiB memory BAR with an identification register at 0 (0x010000ed), an MSI
 * capability (64-bit, one vector) at 0x40, INTx pin A. Writing a vector number to 0x60 raises that
 * MSI (when enabled) and asserts INTx while MSI is off; writing 0x64 deasserts INTx.
 *
 * @module
 */

import type { BarDecl, DeviceHost, PciConfig, PciDeviceModel } from "../../sim/pci/device.ts";

/** Register offsets of the fake device. */
export const FAKE = {
  ID: 0x00,
  ID_VALUE: 0x010000ed,
  RAISE: 0x60,
  LOWER: 0x64,
  SCRATCH: 0x80,
  MSI_CAP: 0x40,
  BAR_SIZE: 1 << 20,
} as const;

class FakeConfig implements PciConfig {
  readonly size = 256;
  readonly bytes = new Uint8Array(256);
  constructor() {
    this.reset();
  }
  reset(): void {
    const b = this.bytes;
    b.fill(0);
    const put = (at: number, size: number, v: number): void => {
      for (let i = 0; i < size; i++) b[at + i] = (v >>> (8 * i)) & 0xff;
    };
    put(0x00, 2, 0x1234);
    put(0x02, 2, 0x11e8);
    put(0x06, 2, 0x0010); // capability list
    put(0x08, 4, 0x00ff0010); // class 00ff00, revision 0x10
    put(0x34, 1, FAKE.MSI_CAP);
    put(0x3d, 1, 1); // INTA
    put(FAKE.MSI_CAP, 2, 0x0005); // MSI, end of list
    put(FAKE.MSI_CAP + 2, 2, 0x0080); // 64-bit, 1 vector
  }
  read(offset: number, size: 1 | 2 | 4): number {
    if (offset < 0 || offset + size > this.size) return 2 ** (8 * size) - 1;
    let v = 0;
    for (let i = 0; i < size; i++) v |= this.bytes[offset + i] << (8 * i);
    return v >>> 0;
  }
  write(offset: number, size: 1 | 2 | 4, value: number): void {
    for (let i = 0; i < size; i++) {
      const at = offset + i;
      const byte = (value >>> (8 * i)) & 0xff;
      const writable = (at >= 0x04 && at < 0x06) || (at >= 0x10 && at < 0x14) || at === 0x3c ||
        (at >= FAKE.MSI_CAP + 2 && at < FAKE.MSI_CAP + 0x0e);
      if (!writable) continue;
      if (at >= 0x10 && at < 0x14) {
        // BAR0: 1 MiB memory BAR, size bits read as zero.
        const mask = [0x00, 0x00, 0xf0, 0xff][at - 0x10];
        this.bytes[at] = byte & mask;
      } else if (at === FAKE.MSI_CAP + 2) {
        this.bytes[at] = (byte & 0x71) | 0x80;
      } else {
        this.bytes[at] = byte;
      }
    }
  }
}

/** The fake function. */
export class FakeDevice implements PciDeviceModel {
  readonly model = "fake";
  readonly config = new FakeConfig();
  readonly bars: readonly BarDecl[] = [
    { index: 0, size: FAKE.BAR_SIZE, kind: "mem32", prefetchable: false },
  ];
  readonly resetWorks: boolean;
  host: DeviceHost | undefined;
  scratch = 0;

  constructor(resetWorks = false) {
    this.resetWorks = resetWorks;
  }

  connect(host: DeviceHost): void {
    this.host = host;
  }

  #msiEnabled(): boolean {
    return (this.config.read(FAKE.MSI_CAP + 2, 2) & 1) !== 0;
  }

  mmioRead(_bar: number, offset: number, size: 1 | 2 | 4 | 8): number | bigint {
    if (size !== 4 && size !== 8) return 2 ** (8 * size) - 1;
    const v = offset === FAKE.ID ? FAKE.ID_VALUE : offset === FAKE.SCRATCH ? this.scratch : 0;
    return size === 8 ? BigInt(v) : v;
  }

  mmioWrite(_bar: number, offset: number, size: 1 | 2 | 4 | 8, value: number | bigint): void {
    if (size !== 4 && size !== 8) return;
    const v = Number(BigInt.asUintN(32, BigInt(value)));
    if (offset === FAKE.SCRATCH) this.scratch = v;
    if (offset === FAKE.RAISE) {
      if (this.#msiEnabled()) this.host?.irq.msi(v);
      else this.host?.irq.intx(true);
    }
    if (offset === FAKE.LOWER) this.host?.irq.intx(false);
  }

  reset(): void {
    this.config.reset();
    this.scratch = 0;
  }
}
