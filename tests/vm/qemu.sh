#!/usr/bin/env bash
# Run the cached trixie QEMU: qemu.sh x86_64|aarch64 ARGS...
# Goes through trixie's ld.so with its libraries; -audio none keeps QEMU 10 from loading the
# host's older modules (shared/reference/vm-lab.md, step 4).
set -euo pipefail
target=$1
shift
root=$(bash "$(dirname "$0")/fetch-qemu.sh" | tail -1)
lib=$root/usr/lib/x86_64-linux-gnu
export QEMU_MODULE_DIR=$lib/qemu
exec "$lib/ld-linux-x86-64.so.2" --library-path "$lib:$root/lib/x86_64-linux-gnu" \
  "$root/usr/bin/qemu-system-$target" -L "$root/usr/share/qemu" -L "$root/usr/share/seabios" \
  -L "$root/usr/lib/ipxe/qemu" -audio none "$@"
