/**
 * Config space as vfio-pci shows it to user space (drivers/vfio/pci/vfio_pci_config.c), reduced
 * to what matters here: accesses pass through to the device model, except that the interrupt
 * programming stays under the kernel's control — the MSI enable and Multiple Message Enable bits,
 * the MSI address/data/mask registers, and the MSI-X enable and function-mask bits are changed only
 * by VFIO_DEVICE_SET_IRQS; user writes to them are dropped.
 *
 * Accesses are split as `vfio_config_do_rw` splits them (naturally aligned 4, 2 or 1 bytes); an
 * access reaching past the end of config space is EFAULT.
 *
 * @module
 */

import { ERRNO } from "../../ffi/errno.ts";
import type { PciConfig } from "../pci/device.ts";
import { findCapability, MSI, MSIX, PCI } from "./pci_caps.ts";

/** Per config byte, the bits user writes may not change. */
function protectedBits(config: PciConfig): Map<number, number> {
  const map = new Map<number, number>();
  const msi = findCapability(config, PCI.CAP_ID_MSI);
  if (msi !== 0) {
    const flags = config.read(msi + MSI.FLAGS, 2);
    map.set(msi + MSI.FLAGS, MSI.FLAGS_ENABLE | MSI.FLAGS_QSIZE);
    const is64 = (flags & MSI.FLAGS_64BIT) !== 0;
    const maskAt = is64 ? MSI.MASK_64 : MSI.MASK_32;
    const end = (flags & MSI.FLAGS_MASKBIT) !== 0 ? maskAt + 4 : maskAt;
    for (let off = MSI.ADDRESS_LO; off < end; off++) map.set(msi + off, 0xff);
  }
  const msix = findCapability(config, PCI.CAP_ID_MSIX);
  if (msix !== 0) {
    map.set(msix + MSIX.FLAGS + 1, (MSIX.FLAGS_ENABLE | MSIX.FLAGS_MASKALL) >> 8);
  }
  return map;
}

/** The largest naturally aligned access at `pos` that fits in `count` bytes. */
function chunkSize(pos: number, count: number): 1 | 2 | 4 {
  if (count >= 4 && pos % 4 === 0) return 4;
  if (count >= 2 && pos % 2 === 0) return 2;
  return 1;
}

/** Read one chunk as little-endian bytes into `dst`. */
function putLe(dst: Uint8Array, at: number, size: number, value: number): void {
  for (let i = 0; i < size; i++) dst[at + i] = (value >>> (8 * i)) & 0xff;
}

function getLe(src: Uint8Array, at: number, size: number): number {
  let v = 0;
  for (let i = 0; i < size; i++) v |= src[at + i] << (8 * i);
  return v >>> 0;
}

/**
 * A config-space read or write of `buffer.length` bytes at `pos`: bytes moved, or -EFAULT when
 * the range does not lie inside config space.
 */
export function configRw(
  config: PciConfig,
  pos: number,
  buffer: Uint8Array,
  write: boolean,
): number {
  const count = buffer.length;
  if (pos < 0 || pos >= config.size || pos + count > config.size) return -ERRNO.EFAULT;
  const guard = write ? protectedBits(config) : undefined;
  let done = 0;
  while (done < count) {
    const at = pos + done;
    const size = chunkSize(at, count - done);
    if (!write) {
      putLe(buffer, done, size, config.read(at, size));
    } else {
      let value = getLe(buffer, done, size);
      let touched = false;
      for (let i = 0; i < size; i++) {
        const mask = guard!.get(at + i) ?? 0;
        if (mask === 0) {
          touched = true;
          continue;
        }
        const hw = config.read(at + i, 1);
        const byte = (value >>> (8 * i)) & 0xff;
        const merged = (hw & mask) | (byte & ~mask);
        if (mask !== 0xff) touched = true;
        value = (value & ~(0xff << (8 * i))) | (merged << (8 * i));
      }
      if (touched) config.write(at, size, value >>> 0);
    }
    done += size;
  }
  return done;
}
