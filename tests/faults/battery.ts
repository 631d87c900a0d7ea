/**
 * Shared pieces of the fault battery: which platforms a battery test runs on (two by default —
 * VT-d with iommufd and POWER's sPAPR container, where a DMA fault also freezes the PE — every
 * platform and path with `DENO_VFIO_FAULTS=long`), and the check that a failure is a clear
 * VfioError, never another exception.
 */
import assert from "node:assert/strict";
import { VfioError } from "../../core/errors.ts";
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
