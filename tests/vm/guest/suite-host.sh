# The host suite: the tests for any real Linux with VFIO, then the conformance scenarios on every
# VFIO path this machine has (dv.paths), each framed for the goldens (stdout only: the runner's
# progress goes to a file and is shown after the block).
paths=$(tr ' ' '\n' < /proc/cmdline | sed -n 's/^dv.paths=//p' | tr , ' ')
idle=$(tr ' ' '\n' < /proc/cmdline | sed -n 's/^dv.idle=//p')
fail=0
deno test --no-check --allow-all tests/host/ || fail=1
for p in $paths; do
  echo "@@DV BEGIN conformance-$p"
  deno run --no-check --allow-all tests/conformance/linux_runner.ts --path "$p" --json - \
    2>"/tmp/conformance-$p.log" || fail=1
  echo "@@DV END conformance-$p"
  cat "/tmp/conformance-$p.log"
done
# The UDP echo demo over real VFIO on every NIC and VFIO path, answering the host's client
# (tests/vm/run.ts, tests/vm/echo.ts) through the NIC's forwarded port; compat is the container
# API (--vfio type1) on iommufd's /dev/vfio/vfio. The igb runs with four RSS queue pairs. Each run
# captures at the driver (--pcap) and prints how many frames it wrote (tests/vm/echo.ts checks). With
# dv.idle=SECONDS the igb runs then stay idle that long and print their CPU time: the first path
# interrupt-driven, the next busy-polling. The e1000e's runs after its first take MSI instead of
# MSI-X (--irq msi: the 82574L driver's fallback, on the real device).
bdf_of() {
  for dev in /sys/bus/pci/devices/*; do
    [ "$(cat "$dev/vendor"):$(cat "$dev/device")" = "$1" ] && basename "$dev" && return
  done
}
for nic in virtio-net=0x1af4:0x1041 e1000e=0x8086:0x10d3 igb=0x8086:0x10c9; do
  name=${nic%%=*}
  bdf=$(bdf_of "${nic#*=}")
  queues=1
  [ "$name" = igb ] && queues=4
  mode=""
  irq=""
  for p in $paths; do
    vfio=$p
    [ "$p" = compat ] && vfio=type1
    extra=""
    if [ "$name" = igb ] && [ -n "$idle" ] && [ "$mode" != done ]; then
      extra="--idle $idle $mode"
      [ -z "$mode" ] && mode=--poll || mode=done
    fi
    echo "@@DV ECHO $name $p $irq"
    deno run --no-check --allow-all examples/udp_echo.ts --device "$bdf" --vfio "$vfio" \
      --queues "$queues" --echoes 20 --duration 60 --pcap "/tmp/echo-$name-$p.pcap" $extra \
      ${irq:+--irq $irq}
    code=$?
    [ "$name" = e1000e ] && irq=msi
    echo "@@DV ECHO-END $name $p $code"
    [ "$code" = 0 ] || fail=1
  done
done
# The forwarder (examples/forward.ts) between the e1000e and the igb for a few seconds, the host
# feeding both ports (tests/vm/forward.ts); TCG rates, not speed claims.
echo "@@DV FORWARD e1000e igb"
deno run --no-check --allow-ffi examples/forward.ts --device "$(bdf_of 0x8086:0x10d3)" \
  --device "$(bdf_of 0x8086:0x10c9)" --duration 3
code=$?
echo "@@DV FORWARD-END e1000e igb $code"
[ "$code" = 0 ] || fail=1
exit $fail
