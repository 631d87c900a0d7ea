/**
 * The conformance framework itself, on a scripted kernel: the observation format (fds as "fd",
 * errno names, u64 fields as hex), expectations, aborting setup steps, cleanup and reports.
 *
 * @module
 */

import assert from "node:assert/strict";
import { RecordingKernel } from "../helpers/recording_kernel.ts";
import { ERRNO } from "../../ffi/errno.ts";
import { IOMMU_EXPECTATIONS } from "./expectations.ts";
import { golden, runScenario } from "./run.ts";
import { scenario, type ScenarioEnv } from "./scenario.ts";
import { fieldsOf, struct } from "./steps.ts";
import { vfio_iommu_type1_dma_unmap, VFIO_IOMMU_UNMAP_DMA } from "./uapi.ts";

const ENV: ScenarioEnv = { bdf: "0000:00:02.0", group: 5, iommu: IOMMU_EXPECTATIONS.vtd };

function stubKernel(): RecordingKernel {
  const k = new RecordingKernel();
  k.files.set("/dev/vfio/vfio", "");
  k.onIoctl((call) => {
    if (call.arg && call.arg.length >= 24) {
      new DataView(call.arg.buffer, call.arg.byteOffset).setBigUint64(16, 0x2000n, true);
      return 0;
    }
    return -ERRNO.EINVAL;
  });
  return k;
}

Deno.test({
  name: "conformance framework: observations, expectations, cleanup",
  permissions: "none",
  fn: async () => {
    const k = stubKernel();
    const def = scenario("demo", { paths: ["type1"] }, (t) => {
      const c = t.must(t.open("open", "/dev/vfio/vfio"), { ret: "fd" }).raw;
      const arg = struct(vfio_iommu_type1_dma_unmap, { argsz: 24 });
      t.expect(
        t.ioctl("unmap", c, VFIO_IOMMU_UNMAP_DMA, arg, {
          out: fieldsOf(vfio_iommu_type1_dma_unmap, ["size"]),
        }),
        { ret: 0, fields: { size: 0x2000n } },
      );
      t.expect(t.ioctl("unmap", c, VFIO_IOMMU_UNMAP_DMA, 7), { errno: "ENOTTY" });
      t.must(t.open("missing", "/nope"), { ret: "fd" });
      t.note("never reached", {});
    });
    const r = await runScenario(k, ENV, "type1", def);
    assert.deepEqual(golden(r), {
      name: "demo",
      observations: [
        { label: "open", ret: "fd", errno: null },
        { label: "unmap", ret: 0, errno: null, out: { size: "0x2000" } },
        { label: "unmap #2", ret: -1, errno: "EINVAL" },
        { label: "missing", ret: -1, errno: "ENOENT" },
      ],
    });
    assert.deepEqual(r.failures, [
      "unmap #2: errno EINVAL (ret -1), expected ENOTTY",
      "missing: ret -1 (ENOENT), expected fd",
    ]);
    assert.deepEqual(k.openFds.size, 0, "the scenario's fd was closed by cleanup");
    JSON.parse(JSON.stringify(golden(r)));
  },
});

Deno.test({
  name: "conformance framework: a needs-cdev scenario is skipped without a cdev",
  permissions: "none",
  fn: async () => {
    const def = scenario("needs", { paths: ["iommufd"], needs: ["cdev"] }, () => {});
    const r = await runScenario(stubKernel(), ENV, "iommufd", def);
    assert.deepEqual(golden(r), { name: "needs", skipped: "no VFIO cdev for the device" });
  },
});
