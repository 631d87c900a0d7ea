#!/usr/bin/env bash
# Fetch (once, cached) Debian trixie's linux-libc-dev — the Linux 6.12 uAPI headers — into a cache
# folder outside the repository, never into the system. Prints the include directory last.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${DENO_VFIO_CACHE:-$HOME/.cache/deno_vfio}
debs=$cache/debs-amd64
bash "$here/../vm/apt-trixie.sh" amd64 "$debs" linux-libc-dev >/dev/null
deb=$(ls "$debs"/linux-libc-dev_*.deb | sort -V | tail -1)
version=$(basename "$deb" | sed -E "s/^linux-libc-dev_(.*)_[a-z0-9]+\.deb$/\1/")
root=$cache/linux-libc-dev-$version
if [ ! -e "$root/usr/include/linux/iommufd.h" ]; then
  rm -rf "$root.tmp" && mkdir -p "$root.tmp"
  dpkg-deb -x "$deb" "$root.tmp"
  rm -rf "$root" && mv "$root.tmp" "$root"
fi
echo "$root/usr/include"
