# The host suite: the tests for any real Linux with VFIO, then the conformance scenarios on every
# VFIO path this machine has (dv.paths), each framed for the goldens (stdout only: the runner's
# progress goes to a file and is shown after the block).
paths=$(tr ' ' '\n' < /proc/cmdline | sed -n 's/^dv.paths=//p' | tr , ' ')
fail=0
deno test --no-check --allow-all tests/host/ || fail=1
for p in $paths; do
  echo "@@DV BEGIN conformance-$p"
  deno run --no-check --allow-all tests/conformance/linux_runner.ts --path "$p" --json - \
    2>"/tmp/conformance-$p.log" || fail=1
  echo "@@DV END conformance-$p"
  cat "/tmp/conformance-$p.log"
done
# The UDP echo demo over real VFIO on the virtio-net device, while the host's client (tests/vm/run.ts)
# sends datagrams through QEMU's forwarded port.
if grep -q "dv.echo=1" /proc/cmdline; then
  for dev in /sys/bus/pci/devices/*; do
    [ "$(cat "$dev/vendor"):$(cat "$dev/device")" = "0x1af4:0x1041" ] && nic=$(basename "$dev") && break
  done
  deno run --no-check --allow-all examples/udp_echo.ts --device "$nic" --ip 10.0.2.15/24 \
    --duration 12 || fail=1
fi
exit $fail
