#!/usr/bin/env bash
# Measures the real-system suite against its budget (issue 4): wall time, peak memory, disk used
# by its temporary files, and that nothing is left running. It measures; it does not judge.
#
#   tests/real_system/measure-budget.sh [extra realtest/libtest args…]
#   e.g. tests/real_system/measure-budget.sh --tags 'destructive or not destructive'
#
# Build first is done here (not measured). Figures:
#   wall / max RSS of one process  — GNU time -v on `cargo test --test real_system`
#   summed RSS                     — peak of the sum over the suite's processes (the test binary,
#                                    camera-service, ffmpeg, ffprobe, mediamtx, cargo), sampled
#                                    every 100 ms
#   temp disk                      — peak of `du` over $TMPDIR/realtest-* (service roots, MediaMTX
#                                    dirs, ctx temp dirs), sampled every 200 ms
#   left running                   — suite processes alive after the run
set -euo pipefail
cd "$(dirname "$0")/../.."
tmp="${TMPDIR:-/tmp}"
work="$(mktemp -d)"
trap 'touch "$work/stop"; sleep 0.3; rm -rf "$work"' EXIT

cargo test --test real_system --no-run >/dev/null 2>&1

sample() {
  local rss=0 disk=0 s d
  while [ ! -f "$work/stop" ]; do
    s=$(ps -eo rss=,comm= | awk '$2 ~ /^(real_system|camera-service|ffmpeg|ffprobe|mediamtx|cargo)/ {t+=$1} END {print t+0}')
    d=$( (du -sbc "$tmp"/realtest-* 2>/dev/null || true) | tail -1 | cut -f1)
    [ "$s" -gt "$rss" ] && rss=$s
    [ "${d:-0}" -gt "$disk" ] && disk=${d:-0}
    sleep 0.1
  done
  echo "$rss $disk" >"$work/peaks"
}
sample &
sampler=$!

status=0
/usr/bin/time -v -o "$work/time" cargo test --test real_system -- "$@" >"$work/out" 2>&1 || status=$?
touch "$work/stop"
wait "$sampler"
read -r rss disk <"$work/peaks"

grep -E '^test result|^ +[0-9]+ +' "$work/out" || true
echo "exit status:            $status"
echo "wall:                   $(grep 'Elapsed' "$work/time" | awk '{print $NF}')"
echo "max RSS, one process:   $(grep 'Maximum resident' "$work/time" | awk '{print $NF}') KiB"
echo "peak summed RSS:        $rss KiB"
echo "peak temp disk:         $disk bytes"
left=$(ps -eo pid=,args= | grep -E 'camera-service serve|ffmpeg .*(testsrc2|rtsp://127\.0\.0\.1)|mediamtx .*realtest-' | grep -v grep || true)
echo "left running:           ${left:-none}"
exit "$status"
