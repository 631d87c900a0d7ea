/**
 * The NVM (EEPROM) of the simulated e1000-family controllers and its register interface:
 * - the image: words 0–2 the Ethernet address (low byte first), words 0x0B and 0x0D the PCI
 *   device id, word 0x3F the checksum that makes words 0x00–0x3F sum to 0xBABA (82574 §6.1,
 *   82576 §6.1 / table 6-1); the other words are the images QEMU 10 ships for its e1000e and igb
 *   (read back through EERD from QEMU 10.0.13), so a driver reading any word sees what it would
 *   on QEMU;
 * - EERD (82574 §10.2.2.4, 82576 §8.2.x): writing START with a word address below the NVM size
 *   loads the word into bits 31:16 and sets DONE at once; any other write leaves DONE clear and
 *   echoes the address;
 * - EECD: NVM Present, Auto-Read Done and the size field are read-only; other bits are stored.
 *
 * @example
 * ```ts
 * const nvm = new E1000Nvm(IGB_NVM, mac);
 * nvm.eerdWrite((0x3f << EERD_ADDR_SHIFT) | EERD_START); // DONE | data
 * ```
 *
 * @module
 */

import {
  EECD_AUTO_RD,
  EECD_PRES,
  EECD_SIZE_EX_MASK,
  EERD_ADDR_MASK,
  EERD_ADDR_SHIFT,
  EERD_DATA_SHIFT,
  EERD_DONE,
  EERD_START,
} from "./e1000_regs.ts";

/** Word holding the checksum. */
export const NVM_CHECKSUM_WORD = 0x3f;
/** What words 0x00–0x3F sum to in a valid image. */
export const NVM_SUM = 0xbaba;
/** Words holding the PCI device id. */
const NVM_DEVICE_ID_WORDS = [0x0b, 0x0d] as const;
/** Words holding the Ethernet address. */
const NVM_MAC_WORDS = 3;
/** EECD bits a write cannot change. */
const EECD_READ_ONLY = EECD_PRES | EECD_AUTO_RD | EECD_SIZE_EX_MASK;

/** A part's NVM: its size in words and the template image. */
export interface NvmTemplate {
  /** Words the part's EERD answers (addresses at or above read nothing). */
  readonly words: number;
  /** PCI device id written into words 0x0B and 0x0D. */
  readonly deviceId: number;
  /** The image from word 0 (shorter than `words`: the rest reads 0). */
  readonly image: readonly number[];
}

/** QEMU 10's e1000e (82574L) image: 64 words. */
export const E1000E_NVM: NvmTemplate = {
  words: 64,
  deviceId: 0x10d3,
  // deno-fmt-ignore
  image: [
    0x0000, 0x0000, 0x0000, 0x0420, 0xf746, 0x2010, 0xffff, 0xffff,
    0x0000, 0x0000, 0x026b, 0x0000, 0x8086, 0x0000, 0x0000, 0x8058,
    0x0000, 0x2001, 0x7e7c, 0xffff, 0x1000, 0x00c8, 0x0000, 0x2704,
    0x6cc9, 0x3150, 0x070e, 0x460b, 0x2d84, 0x0100, 0xf000, 0x0706,
    0x6000, 0x0080, 0x0f04, 0x7fff, 0x4f01, 0xc600, 0x0000, 0x20ff,
    0x0028, 0x0003, 0x0000, 0x0000, 0x0000, 0x0003, 0x0000, 0xffff,
    0x0100, 0xc000, 0x121c, 0xc007, 0xffff, 0xffff, 0xffff, 0xffff,
    0xffff, 0xffff, 0xffff, 0xffff, 0x0000, 0x0120, 0xffff, 0x0000,
  ],
};

/** QEMU 10's igb (82576) image: 65 words of 1024. */
export const IGB_NVM: NvmTemplate = {
  words: 1024,
  deviceId: 0x10c9,
  // deno-fmt-ignore
  image: [
    0x0000, 0x0000, 0x0000, 0x0d34, 0xffff, 0x2010, 0xffff, 0xffff,
    0x1040, 0xffff, 0x002b, 0x0000, 0x8086, 0x0000, 0x0000, 0x70c3,
    0x0004, 0x10c9, 0x5c00, 0x0000, 0x2880, 0x0014, 0x4a40, 0x0060,
    0x6cfb, 0xc7b0, 0x0abe, 0x0403, 0x0783, 0x10a6, 0x0001, 0x0602,
    0x0004, 0x0020, 0x0000, 0x004a, 0x2080, 0x00f5, 0x10ca, 0x0000,
    0x0000, 0x0000, 0x4784, 0x4602, 0x0000, 0x0000, 0x1000, 0xffff,
    0x0100, 0x4000, 0x131f, 0x4013, 0x0100, 0x4000, 0xffff, 0xffff,
    0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0x00e0, 0xffff, 0x0000,
    0x0003,
  ],
};

/** An NVM image with a MAC, and the EERD/EECD register behaviour. */
export class E1000Nvm {
  /** The words. */
  readonly words: Uint16Array;

  /** The template's image with `mac`, the device id and a valid checksum. */
  constructor(template: NvmTemplate, mac: Uint8Array) {
    this.words = new Uint16Array(template.words);
    this.words.set(template.image.slice(0, template.words));
    for (let i = 0; i < NVM_MAC_WORDS; i++) this.words[i] = mac[2 * i] | (mac[2 * i + 1] << 8);
    for (const w of NVM_DEVICE_ID_WORDS) this.words[w] = template.deviceId;
    let sum = 0;
    for (let i = 0; i < NVM_CHECKSUM_WORD; i++) sum += this.words[i];
    this.words[NVM_CHECKSUM_WORD] = (NVM_SUM - sum) & 0xffff;
  }

  /** The EERD value after a write of `value`. */
  eerdWrite(value: number): number {
    const address = (value >>> EERD_ADDR_SHIFT) & EERD_ADDR_MASK;
    if ((value & EERD_START) === 0 || address >= this.words.length) {
      return (address << EERD_ADDR_SHIFT) >>> 0;
    }
    return ((this.words[address] << EERD_DATA_SHIFT) | (address << EERD_ADDR_SHIFT) |
      EERD_DONE) >>> 0;
  }

  /** EEWR (82574): with START and an address below the size, store bits 31:16 there. */
  eewrWrite(value: number): number {
    const address = (value >>> EERD_ADDR_SHIFT) & EERD_ADDR_MASK;
    const data = value >>> EERD_DATA_SHIFT;
    if ((value & EERD_START) === 0 || address >= this.words.length) {
      return ((address << EERD_ADDR_SHIFT) | (data << EERD_DATA_SHIFT)) >>> 0;
    }
    this.words[address] = data;
    return ((data << EERD_DATA_SHIFT) | (address << EERD_ADDR_SHIFT) | EERD_DONE) >>> 0;
  }
}

/** The EECD value after writing `value` over `current` (read-only bits kept). */
export function eecdWrite(current: number, value: number): number {
  return ((current & EECD_READ_ONLY) | (value & ~EECD_READ_ONLY)) >>> 0;
}
