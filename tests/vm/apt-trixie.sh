#!/usr/bin/env bash
# Download Debian trixie packages into a cache folder without installing anything on the host.
#   apt-trixie.sh ARCH DEST PKG...   → each PKG's .deb in DEST (kept across runs)
# The mirror is the host's own Debian mirror (from its apt sources), with "trixie" as the suite.
set -euo pipefail
arch=$1 dest=$2
shift 2
cache=${DENO_VFIO_CACHE:-$HOME/.cache/deno_vfio}
. "$(dirname "$0")/progress.sh"
lists=$cache/apt-trixie-$arch
mkdir -p "$lists/lists/partial" "$dest"
if [ ! -s "$lists/sources.list" ]; then
  uri=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$uri" ] || uri=$(awk '$1 == "deb" { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true)
  [ -n "$uri" ] || { echo "apt-trixie: no Debian mirror found in the host's apt sources" >&2; exit 1; }
  printf 'deb [arch=%s] %s trixie main\n' "$arch" "$uri" > "$lists/sources.list"
fi
opts=(-o "Dir::Etc::SourceList=$lists/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o "Dir::State::Lists=$lists/lists" -o "Dir::Cache=$lists/cache"
  -o "APT::Architecture=$arch" -o "APT::Architectures=$arch" -o Dir::State::status=/dev/null
  -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
mkdir -p "$lists/cache/archives/partial"
# Refresh the index at most once a day.
if [ -z "$(find "$lists/lists" -name '*Packages*' -mtime -1 2>/dev/null | head -1)" ]; then
  vm_say "apt $arch: refreshing Debian trixie's package index"
  apt-get "${opts[@]}" -qq update
fi
missing=()
for p in "$@"; do
  ls "$dest"/"${p%%=*}"_*.deb >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  start=$SECONDS
  names="${missing[*]:0:4}"
  [ ${#missing[@]} -gt 4 ] && names="$names …"
  vm_say "apt $arch: downloading ${#missing[@]} package(s): $names"
  (cd "$dest" && apt-get "${opts[@]}" -qq download "${missing[@]}")
  vm_say "apt $arch: downloaded ${#missing[@]} package(s) ($(du -sh "$dest" | cut -f1) in the cache) in $(vm_since "$start")"
fi
