#!/usr/bin/env bash
# The test suite with CPU hogs beside it: a test that passes only on an idle machine fails here.
#   scripts/test_under_load.sh [HOGS] [-- PYTEST ARGS...]     HOGS busy loops (default 4) for the whole run
# Each hog is a `yes > /dev/null` started here and stopped by its PID when the run ends, however it ends.
# The load average during the run is printed at the end, so a summary line can be quoted with it.
set -euo pipefail
cd "$(dirname "$0")/.."

hogs=${1:-4}
shift || true
[ "${1:-}" = "--" ] && shift
case "$hogs" in ''|*[!0-9]*) echo "usage: scripts/test_under_load.sh [HOGS] [-- PYTEST ARGS...]" >&2; exit 2 ;; esac

pids=()
stop_hogs() { [ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null; pids=(); }
trap stop_hogs EXIT INT TERM
for _ in $(seq "$hogs"); do
  yes > /dev/null &
  pids+=($!)
done
echo "==> $hogs CPU hogs running (PIDs ${pids[*]}) on $(nproc) cores"
status=0
scripts/bootstrap.sh test "$@" || status=$?
echo "==> load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
exit "$status"
