#!/usr/bin/env bash
# Unpack (once, cached) Debian trixie's QEMU 10 for x86-64 and aarch64 guests with every library
# it needs, to run through trixie's own ld.so on this host (shared/reference/vm-lab.md, step 4).
# Prints the root of the unpacked tree on its last line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${DENO_VFIO_CACHE:-$HOME/.cache/deno_vfio}
. "$here/progress.sh"
lists=$cache/apt-trixie-amd64
bash "$here/apt-trixie.sh" amd64 "$cache/debs-amd64" qemu-system-x86 >/dev/null
opts=(-o "Dir::Etc::SourceList=$lists/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o "Dir::State::Lists=$lists/lists" -o Dir::State::status=/dev/null
  -o APT::Architecture=amd64 -o APT::Architectures=amd64)
version=$(apt-cache "${opts[@]}" show qemu-system-x86 | awk '/^Version:/ { print $2; exit }')
root=$cache/qemu-${version//[:+~]/_}
if [ -x "$root/usr/bin/qemu-system-x86_64" ] && [ -x "$root/usr/bin/qemu-system-aarch64" ]; then
  echo "$root"; exit 0
fi
debs=$cache/debs-qemu-${version//[:+~]/_}
mkdir -p "$debs"
mapfile -t pkgs < <(apt-cache "${opts[@]}" depends --recurse --no-recommends --no-suggests \
  --no-conflicts --no-breaks --no-replaces --no-enhances qemu-system-x86 qemu-system-arm |
  grep -E '^[a-z0-9]' | grep -v -E '^(debconf|dpkg|perl-base|init-system-helpers)' | sort -u)
bash "$here/apt-trixie.sh" amd64 "$debs" "${pkgs[@]}"
vm_say "qemu: unpacking QEMU $version and its ${#pkgs[@]} packages (once)"
rm -rf "$root.tmp" && mkdir -p "$root.tmp"
for d in "$debs"/*.deb; do dpkg-deb -x "$d" "$root.tmp"; done
rm -rf "$root" && mv "$root.tmp" "$root"
echo "$root"
