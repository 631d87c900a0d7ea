/**
 * The edu driver over real VFIO (in the VM bench: QEMU's edu behind VT-d, virtio-iommu or
 * SMMUv3), through every VFIO path the kernel has: DMA round trips, a DMA to an unmapped IOVA
 * (the IOMMU's fault in the kernel log, memory untouched), MSI, and no leak of fds, mappings or
 * locked memory. The same driver code runs in tests/drivers/edu_test.ts on the simulator.
 */
import assert from "node:assert/strict";
import { openPciDevice } from "../../core/pci_device.ts";
import { EduDriver } from "../../drivers/edu/edu.ts";
import { EDU_DEVICE_ID, EDU_VENDOR_ID } from "../../drivers/edu/registers.ts";
import {
  containerBackend,
  hostTest,
  iommuKind,
  kernelLog,
  lockedKb,
  openFds,
  vfioDevices,
  vfioPaths,
} from "./host_env.ts";

/** Fault lines of the IOMMU drivers Linux 6.12 has for a DMA write to an unmapped IOVA. */
const FAULT_LINE = [
  /DMAR: \[DMA Write NO_PASID\] Request device \[[0-9a-f:.]+\] fault addr 0x([0-9a-f]+)/,
  /virtio_iommu virtio\d+: page fault from EP \d+ at 0x([0-9a-f]+)/,
  /arm-smmu-v3 [0-9a-f.]+smmuv3: event 0x10 received/,
];

/**
 * Bytes of the DMA to an unmapped IOVA. QEMU's edu copies in 4-byte accesses and the IOMMU reports
 * one fault per access, while Linux rate-limits its fault lines (SMMUv3 events and virtio-iommu
 * faults: 10 per 5 s). One access makes one fault, so the next VFIO path's fault line, seconds
 * later, is not swallowed by the limit.
 */
const UNMAPPED_DMA_BYTES = 4;

/** How long to wait for the fault line, and how often to look. */
const FAULT_LOG_WAIT_MS = 3000;
const FAULT_LOG_POLL_MS = 100;

hostTest("edu over real VFIO: round trips, unmapped-IOVA fault, MSI, no leaks", async (kernel) => {
  const [bdf] = vfioDevices(kernel, EDU_VENDOR_ID, EDU_DEVICE_ID);
  assert.ok(bdf, "an edu device bound to vfio-pci");
  const paths = vfioPaths(kernel, bdf);
  const iommu = iommuKind(kernel, bdf);
  assert.ok(paths.length > 0, "at least one VFIO path");
  console.log(
    `edu ${bdf} behind ${iommu}: paths ${paths.join(", ")} (container: ${
      containerBackend(kernel)
    })`,
  );
  for (const path of paths) {
    const fds = openFds(kernel);
    const locked = lockedKb(kernel);
    {
      using dev = openPciDevice(bdf, { kernel, iommu: path });
      assert.equal(dev.info.backend, path);
      const edu = EduDriver.open(dev, { interrupts: "msi" });
      assert.ok(edu.liveness(0x0badf00d), "liveness");
      assert.equal(await edu.factorial(6), 720);
      const buf = dev.dma.allocate(8192);
      for (const [size, offset] of [[1, 0], [100, 3], [2048, 2048], [4095, 1]]) {
        const src = buf.bytes.subarray(offset, offset + size);
        for (let i = 0; i < size; i++) src[i] = (i ^ size) & 0xff;
        const dst = buf.bytes.subarray(4096 + offset, 4096 + offset + size);
        dst.fill(0);
        await edu.dmaToDevice(buf, offset, 0, size);
        await edu.dmaFromDevice(buf, 4096 + offset, 0, size);
        assert.deepEqual(dst, src, `${path}: size ${size} offset ${offset}`);
      }
      assert.ok(edu.counters.interrupts >= 8, `${path}: MSI per DMA (${edu.counters.interrupts})`);
      assert.equal(await edu.raiseInterrupt(0x40), 0x40, "raised interrupt status");

      buf.bytes.fill(0xaa);
      const unmapped = 0x0f00_0000n; // below edu's 28-bit mask, never mapped by the allocator
      const logBefore = (await kernelLog()).length;
      await edu.dmaFromDeviceToIova(unmapped, UNMAPPED_DMA_BYTES);
      // virtio-iommu reports faults through its event queue, so the line may come a little later.
      let log = "";
      for (let waited = 0; waited <= FAULT_LOG_WAIT_MS; waited += FAULT_LOG_POLL_MS) {
        log = (await kernelLog()).slice(logBefore);
        if (FAULT_LINE.some((re) => re.test(log))) break;
        await kernel.sleep(FAULT_LOG_POLL_MS);
      }
      assert.ok(FAULT_LINE.some((re) => re.test(log)), `${path}: an IOMMU fault in dmesg:\n${log}`);
      assert.ok(buf.bytes.every((b) => b === 0xaa), `${path}: memory untouched`);
      edu.close();
    }
    assert.equal(openFds(kernel), fds, `${path}: every fd closed`);
    assert.equal(lockedKb(kernel), locked, `${path}: locked memory back to where it started`);
  }
});
