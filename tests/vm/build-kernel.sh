#!/usr/bin/env bash
# Build (once, cached) the x86-64 guest kernel with IOMMUFD, VFIO_DEVICE_CDEV and IOMMUFD_TEST
# from Debian trixie's linux-source-6.12. Prints the bzImage path on its last line.
# Needs: gcc make bc flex bison libelf-dev libssl-dev (installed by .ci/run). ~8 min on 2 cores.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${DENO_VFIO_CACHE:-$HOME/.cache/deno_vfio}
debs=$cache/debs-amd64
bash "$here/apt-trixie.sh" amd64 "$debs" linux-source-6.12
deb=$(ls "$debs"/linux-source-6.12_*.deb | sort -V | tail -1)
version=$(basename "$deb" | sed 's/^linux-source-6.12_\(.*\)_all.deb$/\1/')
fragment_sum=$(sha256sum "$here/kernel.config" | cut -c1-12)
out=$cache/kernel-iommufd-$version-$fragment_sum
if [ -s "$out/bzImage" ]; then echo "$out/bzImage"; exit 0; fi
src=$cache/linux-source-$version
if [ ! -d "$src/linux-source-6.12" ]; then
  rm -rf "$src.tmp" && mkdir -p "$src.tmp"
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$src.tmp" --wildcards '*/linux-source-6.12.tar.xz'
  tar -xJf "$(find "$src.tmp" -name linux-source-6.12.tar.xz)" -C "$src.tmp"
  mv "$src.tmp" "$src"
fi
build=$cache/kbuild-$version-$fragment_sum
mkdir -p "$build"
cd "$src/linux-source-6.12"
make -s O="$build" tinyconfig >/dev/null
./scripts/kconfig/merge_config.sh -m -O "$build" "$build/.config" "$here/kernel.config" >/dev/null
make -s O="$build" olddefconfig >/dev/null
for sym in IOMMUFD VFIO_DEVICE_CDEV IOMMUFD_TEST INTEL_IOMMU VIRTIO_IOMMU VFIO_PCI; do
  grep -q "^CONFIG_$sym=y" "$build/.config" || { echo "kernel config lacks CONFIG_$sym=y" >&2; exit 1; }
done
nice -n 10 make -s O="$build" -j"$(nproc)" bzImage >/dev/null
mkdir -p "$out.tmp"
cp "$build/arch/x86/boot/bzImage" "$out.tmp/bzImage"
cp "$build/.config" "$out.tmp/config"
rm -rf "$out" && mv "$out.tmp" "$out"
rm -rf "$build"
echo "$out/bzImage"
