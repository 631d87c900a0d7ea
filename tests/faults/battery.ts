/**
 * Shared pieces of the fault battery: which platforms a battery test runs on (two by default —
 * VT-d with iommufd and POWER's sPAPR container, where a DMA fault also freezes the PE — every
 * platform and path with `DENO_VFIO_FAULTS=long`), the check that a failure is a clear
 * VfioError, never another exception, and the NIC scenarios every NIC driver meets alike.
 */
import assert from "node:assert/strict";
import { VfioError } from "../../core/errors.ts";
import type { NetStack } from "../../net/stack.ts";
import type { DeviceFaults } from "../../sim/faults/device_faults.ts";
import { longFaultRuns, type SimTestOptions } from "../../testing/mod.ts";

/** Platform selection of a battery test, with extra simTest options. */
export function battery(options: SimTestOptions = {}): SimTestOptions {
  if (longFaultRuns()) return options;
  return { iommus: ["vtd", "spapr"], paths: ["iommufd", "spapr"], ...options };
}

/** Await `work`, which must fail with a VfioError whose message matches `message`. */
export async function clearError(work: Promise<unknown>, message: RegExp): Promise<VfioError> {
  try {
    await work;
  } catch (e) {
    assert.ok(e instanceof VfioError, `a VfioError, not ${e instanceof Error ? e.name : e}: ${e}`);
    assert.match(e.message, message);
    return e;
  }
  throw new assert.AssertionError({ message: `expected a VfioError matching ${message}` });
}

/** What the NIC scenarios need of a battery's rig: traffic, the injector and `check()`'s log. */
export interface NicBatteryRig {
  /** The driver. */
  readonly nic: { stats(): { txDropped: number } };
  /** The stack over it. */
  readonly stack: NetStack;
  /** Fault injection for the NIC. */
  readonly faults: DeviceFaults;
  /** What `check()` answered other than "ok", in order. */
  readonly health: string[];
  /** The application's loop (poll; when idle, `check()` and wait) until `until()` or `maxMs`. */
  run(until: () => boolean, maxMs?: number): Promise<void>;
  /** Send n datagrams to the echo and run until they come back; how many did. */
  exchange(n: number, maxMs?: number): Promise<number>;
}

/**
 * A hung NIC: it echoes nothing, a frame the application sends stays unsent, the transmit
 * watchdog (`txTimeoutMs`) resets and resumes the device — the function reset ends the hang —
 * and the echo carries on, the unsent frame counted dropped.
 */
export async function hangRecovered(
  r: NicBatteryRig,
  txTimeoutMs: number,
  peerIp: number,
): Promise<void> {
  r.faults.hang();
  assert.equal(await r.exchange(5, 20), 0, "a hung device echoes nothing");
  r.stack.sendUdp(9, peerIp, 9, new Uint8Array(8)); // an application sends: it stays unsent
  await r.run(() => r.health.length > 0, 4 * txTimeoutMs);
  assert.deepEqual(r.health, ["recovered"]);
  assert.equal(r.faults.hung, false, "the function reset ended the hang");
  assert.equal(await r.exchange(20), 20);
  assert.ok(r.nic.stats().txDropped >= 1, "the frame that never left is counted dropped");
}
