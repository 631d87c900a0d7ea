#!/usr/bin/env bash
# Build (once, cached) a guest kernel with IOMMUFD, VFIO_DEVICE_CDEV and IOMMUFD_TEST from Debian
# trixie's linux-source-6.12: `make tinyconfig` plus a fragment, everything built in.
#   build-kernel.sh [amd64]  → x86-64 bzImage (fragment kernel.config)
#   build-kernel.sh arm64    → arm64 Image, cross-compiled (fragment kernel-arm64.config)
# Prints the kernel image path on its last line. The cache entry is keyed by the linux-source
# version, the architecture (amd64 keeps its original, arch-less name) and the fragment's hash.
# Needs: gcc make bc flex bison libelf-dev libssl-dev, and gcc-aarch64-linux-gnu for arm64
# (installed by .ci/run). ~8 min on 2 cores for amd64.
set -euo pipefail
arch=${1:-amd64}
here=$(cd "$(dirname "$0")" && pwd)
cache=${DENO_VFIO_CACHE:-$HOME/.cache/deno_vfio}
. "$here/progress.sh"
case $arch in
  amd64)
    fragment=$here/kernel.config
    kmake=()
    target=bzImage image=arch/x86/boot/bzImage
    # Symbols the fragment must have produced (=y) after olddefconfig.
    required="IOMMUFD VFIO_DEVICE_CDEV IOMMUFD_TEST INTEL_IOMMU VIRTIO_IOMMU VFIO_PCI"
    # Symbols that must be off.
    absent=""
    key="" # the original cache names: kernel-iommufd-<version>-<sum>
    ;;
  arm64)
    fragment=$here/kernel-arm64.config
    kmake=(ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-)
    command -v aarch64-linux-gnu-gcc >/dev/null ||
      { echo "build-kernel: aarch64-linux-gnu-gcc missing (apt-get install gcc-aarch64-linux-gnu)" >&2; exit 1; }
    # QEMU's -kernel takes the uncompressed arm64 Image (no firmware to decompress anything).
    target=Image image=arch/arm64/boot/Image
    required="IOMMUFD VFIO_DEVICE_CDEV IOMMUFD_TEST IOMMUFD_VFIO_CONTAINER ARM_SMMU_V3 VFIO_PCI
      PCI_HOST_GENERIC ARM_GIC_V3 ARM_GIC_V3_ITS PCI_MSI SERIAL_AMBA_PL011_CONSOLE ARM_PSCI_FW"
    # /dev/vfio/vfio must be iommufd's compat container, not the legacy type1 one.
    absent="VFIO_CONTAINER VFIO_IOMMU_TYPE1"
    key=-arm64
    ;;
  *) echo "usage: build-kernel.sh [amd64|arm64]" >&2; exit 2 ;;
esac
debs=$cache/debs-amd64 # linux-source is arch: all; the amd64 index has it
bash "$here/apt-trixie.sh" amd64 "$debs" linux-source-6.12
deb=$(ls "$debs"/linux-source-6.12_*.deb | sort -V | tail -1)
version=$(basename "$deb" | sed 's/^linux-source-6.12_\(.*\)_all.deb$/\1/')
fragment_sum=$(sha256sum "$fragment" | cut -c1-12)
out=$cache/kernel-iommufd$key-$version-$fragment_sum
if [ -s "$out/$target" ]; then echo "$out/$target"; exit 0; fi
src=$cache/linux-source-$version
if [ ! -d "$src/linux-source-6.12" ]; then
  vm_say "kernel $arch: unpacking linux-source-6.12 $version (once)"
  rm -rf "$src.tmp" && mkdir -p "$src.tmp"
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$src.tmp" --wildcards '*/linux-source-6.12.tar.xz'
  tar -xJf "$(find "$src.tmp" -name linux-source-6.12.tar.xz)" -C "$src.tmp"
  mv "$src.tmp" "$src"
fi
build=$cache/kbuild$key-$version-$fragment_sum
mkdir -p "$build"
cd "$src/linux-source-6.12"
vm_say "kernel $arch: configuring (tinyconfig + $(basename "$fragment"))"
make -s "${kmake[@]}" O="$build" tinyconfig >/dev/null
env "${kmake[@]}" ./scripts/kconfig/merge_config.sh -m -O "$build" "$build/.config" "$fragment" >/dev/null
make -s "${kmake[@]}" O="$build" olddefconfig >/dev/null
for sym in $required; do
  grep -q "^CONFIG_$sym=y" "$build/.config" || { echo "kernel config lacks CONFIG_$sym=y" >&2; exit 1; }
done
for sym in $absent; do
  if grep -q "^CONFIG_$sym=[ym]" "$build/.config"; then
    echo "kernel config has CONFIG_$sym set; it must be off" >&2
    exit 1
  fi
done
vm_say "kernel $arch: building $target on $(nproc) cores (about 8 to 10 min the first time)"
nice -n 10 make "${kmake[@]}" O="$build" -j"$(nproc)" "$target" |
  vm_count_objects "kernel $arch" "$cache/kbuild-objects$key"
mkdir -p "$out.tmp"
cp "$build/$image" "$out.tmp/$target"
cp "$build/.config" "$out.tmp/config"
rm -rf "$out" && mv "$out.tmp" "$out"
rm -rf "$build"
echo "$out/$target"
