/**
 * Set-up shared by the simulator's VFIO tests: a VT-d machine with one {@link FakeDevice} at
 * 0000:00:02.0 (group 2), ioctls by declaration, and a container + group session.
 *
 * @module
 */

import assert from "node:assert/strict";
import { O_RDWR } from "../../ffi/kernel.ts";
import { type IoctlDecl, ioctlNumber } from "../../ffi/uapi/common.ts";
import { createMachine, type MachineOptions, type SimMachine } from "../../sim/mod.ts";
import * as U from "../../ffi/uapi/mod.ts";
import { FakeDevice } from "./fake_device.ts";

/** Where the fake device sits (group 2, as q35 numbers slot 2). */
export const BDF = "0000:00:02.0";

/** A strict VT-d machine with a FakeDevice at {@link BDF}; `extra` overrides options. */
export function machine(extra: Partial<MachineOptions> = {}): SimMachine {
  return createMachine({
    iommu: "vtd",
    devices: [{ model: new FakeDevice(), bdf: BDF }],
    strict: true,
    ...extra,
  });
}

/** ioctl by declaration, encoded for the machine's architecture. */
export function io(
  m: SimMachine,
  fd: number,
  decl: IoctlDecl,
  arg?: Uint8Array | number | bigint,
): number {
  return m.kernel.ioctl(fd, ioctlNumber(m.kernel.ioctlArch, decl), arg);
}

/** A 4-byte `int` argument holding an fd (SET_CONTAINER and friends). */
export function fdArg(fd: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, fd, true);
  return b;
}

/** Container + group 2 + SET_IOMMU(`type`, default type1v2), ready to map. */
export function session(
  m: SimMachine,
  type = U.VFIO_TYPE1v2_IOMMU,
): { container: number; group: number } {
  const container = m.kernel.open("/dev/vfio/vfio", O_RDWR);
  const group = m.kernel.open("/dev/vfio/2", O_RDWR);
  assert.equal(io(m, group, U.VFIO_GROUP_SET_CONTAINER, fdArg(container)), 0);
  assert.equal(io(m, container, U.VFIO_SET_IOMMU, type), 0);
  return { container, group };
}
