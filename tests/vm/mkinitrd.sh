#!/usr/bin/env bash
# Build a guest initramfs: busybox, glibc, deno, VFIO modules of a distribution kernel, the project.
#   mkinitrd.sh ARCH OUT KERNEL_DEB|- DENO_ELF
# ARCH: x86_64 or aarch64. KERNEL_DEB: a Debian linux-image .deb whose VFIO modules are loaded at
# boot, or - for a kernel with everything built in. Prints OUT on its last line.
set -euo pipefail
arch=$1 out=$2 kdeb=$3 deno_elf=$4
here=$(cd "$(dirname "$0")" && pwd)
project=$(cd "$here/../.." && pwd)
cache=${DENO_VFIO_CACHE:-$HOME/.cache/deno_vfio}
. "$here/progress.sh"
case $arch in
  x86_64) debarch=amd64 triplet=x86_64-linux-gnu ;;
  aarch64) debarch=arm64 triplet=aarch64-linux-gnu ;;
  *) echo "mkinitrd: unknown arch $arch" >&2; exit 2 ;;
esac
# Modules in dependency order, as the guest's init loads them.
MODULES="virtio-iommu irqbypass vfio vfio_iommu_type1 vfio-pci-core vfio-pci"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,sbin,usr/bin,lib,lib64,proc,sys,dev,tmp,project,lib/modules}
debs=$cache/debs-$debarch
bash "$here/apt-trixie.sh" "$debarch" "$debs" busybox-static >/dev/null
x=$stage/x
mkdir -p "$x"
dpkg-deb -x "$(ls "$debs"/busybox-static_*.deb | tail -1)" "$x"
cp "$(find "$x" -type f -name busybox -path "*bin/*" | head -1)" "$stage/bin/busybox"
# glibc: the host's own for x86-64 (deno was linked against it), trixie's for arm64.
if [ "$arch" = x86_64 ]; then
  for lib in $(ldd "$deno_elf" | awk '/=>/ { print $3 } /ld-linux/ { print $1 }'); do
    cp -L "$lib" "$stage/lib/$(basename "$lib")"
  done
  cp -L /lib64/ld-linux-x86-64.so.2 "$stage/lib64/"
else
  bash "$here/apt-trixie.sh" arm64 "$debs" libc6 libgcc-s1 >/dev/null
  for p in libc6 libgcc-s1; do dpkg-deb -x "$(ls "$debs"/${p}_*.deb | tail -1)" "$x"; done
  cp -a "$x/usr/lib/$triplet/"*.so* "$stage/lib/" 2>/dev/null || true
  cp -a "$x/lib/$triplet/"*.so* "$stage/lib/" 2>/dev/null || true
  cp -L "$x/usr/lib/ld-linux-aarch64.so.1" "$stage/lib/" 2>/dev/null ||
    cp -L "$x/lib/ld-linux-aarch64.so.1" "$stage/lib/"
fi
cp "$deno_elf" "$stage/usr/bin/deno"
if [ "$kdeb" != - ]; then
  k=$stage/k
  mkdir -p "$k"
  dpkg-deb -x "$kdeb" "$k"
  : > "$stage/lib/modules/order"
  for m in $MODULES; do
    f=$(find "$k/usr/lib/modules" "$k/lib/modules" \( -name "$m.ko.xz" -o -name "$m.ko" \) 2>/dev/null | head -1 || true)
    [ -n "$f" ] || continue # built in on this kernel
    case $f in *.xz) xz -dc "$f" > "$stage/lib/modules/$m.ko" ;; *) cp "$f" "$stage/lib/modules/$m.ko" ;; esac
    echo "$m" >> "$stage/lib/modules/order"
  done
  rm -rf "$k"
fi
rm -rf "$x"
cp "$here/guest/init" "$stage/init"
# The package (its entry points included: the examples import only those) and the suite.
(cd "$project" && git ls-files -co --exclude-standard -- deno.json mod.ts linux.ts viommu.ts \
  ffi core drivers net sim testing examples \
  tests/host tests/conformance tests/helpers tests/vm/guest tests/goldens 2>/dev/null |
  while read -r f; do [ -f "$f" ] && echo "$f"; done | cpio -pdm --quiet "$stage/project")
(cd "$stage" && find . -path ./x -prune -o -print | cpio -o -H newc -R 0:0 --quiet) > "$out"
vm_say "initrd $arch: $(du -h "$out" | cut -f1) (busybox, glibc, deno, modules, the project)"
echo "$out"
