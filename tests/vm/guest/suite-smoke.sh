# Smoke suite: the guest runs Deno and sees its VFIO devices.
deno --version
ls -l /dev/vfio /dev/vfio/devices 2>&1
ls /sys/kernel/iommu_groups | wc -l
