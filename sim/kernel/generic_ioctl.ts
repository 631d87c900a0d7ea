/**
 * The ioctls every fd answers before its own handler sees the request (`do_vfs_ioctl` in
 * fs/ioctl.c): FIOCLEX, FIONCLEX, FIONBIO and FIOASYNC. Request numbers differ per architecture,
 * so they are table rows per {@link IoctlArch}.
 *
 * @module
 */

import { ERRNO } from "../../ffi/errno.ts";
import { type IoctlArch, ioctlEncode } from "../../ffi/ioctl.ts";
import { EventFd } from "./eventfd.ts";
import type { SimFile, SimProcess } from "./file.ts";
import { copyIn, userBytes } from "./user.ts";

/** Size of the `int` FIONBIO / FIOASYNC read from user memory. */
const INT_SIZE = 4;
/** The 'T' ioctl type of the asm-generic tty/file ioctls. */
const TTY_TYPE = 0x54;
/** The 'f' ioctl type powerpc uses for them. */
const FILE_TYPE = 0x66;

type GenericHandler = (process: SimProcess, file: SimFile, arg: Uint8Array | bigint) => number;

function readInt(process: SimProcess, arg: Uint8Array | bigint): number | undefined {
  const user = userBytes(process, arg);
  const raw = user === undefined ? undefined : copyIn(user, 0, INT_SIZE);
  return raw === undefined ? undefined : new DataView(raw.buffer, raw.byteOffset).getInt32(0, true);
}

const closeOnExec: GenericHandler = () => 0;
const nonBlocking: GenericHandler = (process, file, arg) => {
  const on = readInt(process, arg);
  if (on === undefined) return -ERRNO.EFAULT;
  if (file instanceof EventFd) file.nonblock = on !== 0;
  return 0;
};
const asyncNotify: GenericHandler = (process, _file, arg) =>
  readInt(process, arg) === undefined ? -ERRNO.EFAULT : 0;

/** The generic ioctls of an architecture, by request number. */
export function genericIoctls(arch: IoctlArch): Map<number, GenericHandler> {
  if (arch === "powerpc") {
    return new Map([
      [ioctlEncode(arch, "none", FILE_TYPE, 1, 0), closeOnExec], // FIOCLEX
      [ioctlEncode(arch, "none", FILE_TYPE, 2, 0), closeOnExec], // FIONCLEX
      [ioctlEncode(arch, "write", FILE_TYPE, 126, INT_SIZE), nonBlocking], // FIONBIO
      [ioctlEncode(arch, "write", FILE_TYPE, 125, INT_SIZE), asyncNotify], // FIOASYNC
    ]);
  }
  return new Map([
    [(TTY_TYPE << 8) | 0x51, closeOnExec], // FIOCLEX 0x5451
    [(TTY_TYPE << 8) | 0x50, closeOnExec], // FIONCLEX 0x5450
    [(TTY_TYPE << 8) | 0x21, nonBlocking], // FIONBIO 0x5421
    [(TTY_TYPE << 8) | 0x52, asyncNotify], // FIOASYNC 0x5452
  ]);
}
