#!/usr/bin/env bash
# `make test` (docs/testing.md, "How make test uses the machine"):
#   1. `make lab-build`: what the lab's clusters run, on both cores;
#   2. the lab's scenarios (`preflight-test molecule-all lab-test`), and beside
#      them, at the lowest CPU priority (nice 19), `conformance-build`, `unit` and
#      `lint`: they need no lab, and the scenarios leave a core idle much of the
#      time (waits for rollouts, restarts, SSH). The quick conformance specs,
#      after `default`, wait for the conformance build (conformance.py's lock).
# The exit status is non-zero when either part failed; the side checks' output
# comes as each of them finishes (make's --output-sync=target). An interrupted
# or failed run stops the side checks with it.
# usage: make_test.sh MAKE   (make's own command, $(MAKE))
set -uo pipefail
make_cmd=${1:?usage: make_test.sh MAKE}
# The lab builds the default Kubernetes release alone: the previous one only
# serves the upgrade scenario (make test-full).
export KUBEFORGE_LAB_KUBE_PREVIOUS=0
start=$(date +%s)

"$make_cmd" --no-print-directory lab-build || exit

echo "make test: lint, unit and conformance-build run beside the lab's scenarios (nice 19)"
# Job control: the side checks get their own process group, which the trap stops.
set -m
nice -n 19 "$make_cmd" --no-print-directory -k -j2 --output-sync=target \
  conformance-build unit lint &
side=$!
set +m
stop_side() { kill -TERM -- "-$side" 2>/dev/null; wait "$side" 2>/dev/null; }
trap stop_side EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

"$make_cmd" --no-print-directory preflight-test molecule-all lab-test
lab_rc=$?
lab_secs=$(( $(date +%s) - start ))

wait "$side"
side_rc=$?
trap - EXIT

status() { if [ "$1" -eq 0 ]; then echo passed; else echo "FAILED (exit $1)"; fi; }
echo "make test: the lab's build and scenarios $(status "$lab_rc") (${lab_secs}s);" \
  "lint, unit and conformance-build $(status "$side_rc"); $(( $(date +%s) - start ))s in all"
[ "$lab_rc" -eq 0 ] && [ "$side_rc" -eq 0 ]
