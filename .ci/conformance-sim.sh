#!/usr/bin/env bash
# Conformance in CI: start the simulator in the background, read the URL from its first line,
# run the suite with JUnit output, then stop the simulator (SIGTERM: it vents first).
# Usage: conformance-sim.sh [REPORT.xml] [tcp|pty]   (acudevice and acudevice-sim on PATH)
set -euo pipefail
report="${1:-conformance.xml}"
case "${2:-tcp}" in
  tcp) link=(--tcp 0) ;;
  pty) link=(--pty) ;;
  *) echo "conformance-sim.sh: the link is tcp or pty, not ${2}" >&2; exit 2 ;;
esac

coproc SIM { exec acudevice-sim serve "${link[@]}" --speed 20; }
sim_pid=$SIM_PID
trap 'kill -TERM "$sim_pid" 2>/dev/null || true' EXIT

# First line: "acudevice-sim: serving wristband-p1 on URL", the URL tcp://127.0.0.1:PORT
# or serial:///dev/pts/N, as `acudevice conformance` takes it.
read -r -t 30 first <&"${SIM[0]}"
url="${first##* on }"

status=0
acudevice conformance "$url" --junit "$report" || status=$?

kill -TERM "$sim_pid"
wait "$sim_pid" || true
trap - EXIT
exit "$status"
