# Progress lines for the VM bench's long steps (a first run downloads packages and builds kernels
# for minutes): sourced by the scripts here, printed on stderr ("vm: …") because stdout carries the
# scripts' results.
#   vm_say TEXT                   one line: vm: TEXT
#   vm_since START                "12 s" / "3 min 05 s" since $SECONDS was START
#   vm_count_objects LABEL FILE   reads kbuild's output on stdin; every 15 s says how many objects
#                                 are built (with the share of the last build's count, kept in
#                                 FILE, when there is one), and records the count in FILE at the end

vm_say() { echo "vm: $*" >&2; }

vm_since() {
  local s=$((SECONDS - $1))
  if ((s < 60)); then echo "$s s"; else printf '%d min %02d s\n' $((s / 60)) $((s % 60)); fi
}

vm_count_objects() {
  local label=$1 file=$2 expected="" n=0 start=$SECONDS last=$SECONDS line share
  [ -s "$file" ] && expected=$(cat "$file")
  while IFS= read -r line; do
    case $line in "  CC "* | "  AS "* | "  CC [M] "*) n=$((n + 1)) ;; esac
    if ((SECONDS - last >= 15)); then
      last=$SECONDS
      share=""
      [ -n "$expected" ] && share=" (~$((n * 100 / expected))% of the last build's $expected)"
      vm_say "$label: $n objects compiled$share, $(vm_since "$start")"
    fi
  done
  vm_say "$label: $n objects compiled in $(vm_since "$start")"
  echo "$n" > "$file"
}
