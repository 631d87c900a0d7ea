#!/usr/bin/env bash
# Fetch (once, cached) what a VM-bench guest needs and print paths, one per line.
#   artifacts.sh kernel debian-amd64|iommufd-amd64|debian-arm64|iommufd-arm64
#                                                    → KERNEL_IMAGE then MODULES_DEB (or -)
#   artifacts.sh deno aarch64                                     → the arm64 deno ELF
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${DENO_VFIO_CACHE:-$HOME/.cache/deno_vfio}
# Debian trixie's kernel ABI the bench is pinned to (the goldens record it).
DEBIAN_KERNEL=6.12.107+deb13
# deno for arm64 from npm: 2.9.6 has no linux-arm64 build there, 2.9.5 is the newest.
DENO_ARM64=2.9.5

debian_kernel() { # $1 = amd64|arm64
  local arch=$1 pkg="linux-image-$DEBIAN_KERNEL-$1" debs=$cache/debs-$1
  bash "$here/apt-trixie.sh" "$arch" "$debs" "$pkg" >/dev/null
  local deb
  deb=$(ls "$debs/${pkg}"_*.deb | tail -1)
  local out=$cache/kernel-$DEBIAN_KERNEL-$arch
  if [ ! -s "$out/vmlinuz" ]; then
    rm -rf "$out.tmp" && mkdir -p "$out.tmp/x"
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$out.tmp/x" ./boot
    cp "$out.tmp/x/boot/vmlinuz-$DEBIAN_KERNEL-$arch" "$out.tmp/vmlinuz"
    rm -rf "$out.tmp/x" "$out" && mv "$out.tmp" "$out"
  fi
  echo "$out/vmlinuz"
  echo "$deb"
}

case "$1:$2" in
  kernel:debian-amd64) debian_kernel amd64 ;;
  kernel:debian-arm64) debian_kernel arm64 ;;
  kernel:iommufd-amd64 | kernel:iommufd-arm64)
    bash "$here/build-kernel.sh" "${2#iommufd-}" | tail -1
    echo -
    ;;
  deno:aarch64)
    out=$cache/deno-$DENO_ARM64-aarch64
    if [ ! -x "$out/deno" ]; then
      rm -rf "$out.tmp" && mkdir -p "$out.tmp"
      (cd "$out.tmp" && npm pack --silent "@deno/linux-arm64-glibc@$DENO_ARM64" >/dev/null &&
        tar -xzf ./*.tgz && mv package/deno . && rm -rf package ./*.tgz)
      chmod +x "$out.tmp/deno"
      rm -rf "$out" && mv "$out.tmp" "$out"
    fi
    echo "$out/deno"
    ;;
  *)
    echo "usage: artifacts.sh kernel debian-amd64|iommufd-amd64|debian-arm64|iommufd-arm64 | deno aarch64" >&2
    exit 2
    ;;
esac
