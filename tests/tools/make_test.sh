#!/usr/bin/env bash
# `make test` (docs/testing.md, "How make test uses the machine"):
#   1. what the lab's nodes need (`make lab-build LAB_BUILD_ARGS=--nodes-only`:
#      the node image; seconds once built);
#   2. the rest of the lab's build (`make lab-build`: what its clusters run, on
#      both cores; about 30 min on a new machine), with `preflight-test`
#      beside it: the opening play's tests need only nodes;
#   3. the lab's scenarios (`molecule-all lab-test`), and beside them, at the
#      lowest CPU priority (nice 19), `conformance-build`, `unit` and `lint`,
#      started as soon as the build is done: they need no cluster, and the
#      scenarios leave a core idle much of the time (waits for rollouts,
#      restarts, SSH). The quick conformance specs, after `default`, wait for
#      the conformance build (conformance.py's lock).
# A part running beside another keeps its output until it ends (make's
# --output-sync=target does the same for the side checks). The exit status is
# non-zero when any part failed; an interrupted or failed run stops the parts
# running beside it.
# usage: make_test.sh MAKE   (make's own command, $(MAKE))
set -uo pipefail
make_cmd=${1:?usage: make_test.sh MAKE}
make_=("$make_cmd" --no-print-directory)
# The lab builds the default Kubernetes release alone: the previous one only
# serves the upgrade scenario (make test-full).
export KUBEFORGE_LAB_KUBE_PREVIOUS=0
start=$(date +%s)
groups=() preflight_log=""
# An interrupted or failed run: stop the parts beside, show what the preflight
# tests wrote so far.
stop_groups() {
  local pid
  for pid in "${groups[@]}"; do kill -TERM -- "-$pid" 2>/dev/null; done
  for pid in "${groups[@]}"; do wait "$pid" 2>/dev/null; done
  if [ -n "$preflight_log" ] && [ -f "$preflight_log" ]; then
    cat "$preflight_log"
    rm -f "$preflight_log"
  fi
}
trap stop_groups EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
status() { if [ "$1" -eq 0 ]; then echo passed; else echo "FAILED (exit $1)"; fi; }

"${make_[@]}" lab-build LAB_BUILD_ARGS=--nodes-only || exit

preflight_log=$(mktemp -t kubeforge-preflight.XXXXXX.log)
echo "make test: preflight-test runs beside the lab's build (its output when it ends: $preflight_log)"
# Job control: each part beside the main line gets its own process group.
set -m
"${make_[@]}" preflight-test >"$preflight_log" 2>&1 &
preflight=$!
groups+=("$preflight")
set +m

"${make_[@]}" lab-build
build_rc=$?
if [ "$build_rc" -eq 0 ]; then
  echo "make test: lint, unit and conformance-build run beside the lab's scenarios (nice 19)"
  set -m
  nice -n 19 "${make_[@]}" -k -j2 --output-sync=target conformance-build unit lint &
  side=$!
  groups+=("$side")
  set +m
else
  kill -TERM -- "-$preflight" 2>/dev/null
fi

wait "$preflight"
preflight_rc=$?
cat "$preflight_log"
rm -f "$preflight_log"
echo "make test: preflight-test $(status "$preflight_rc")"

lab_rc=$build_rc
if [ "$build_rc" -eq 0 ] && [ "$preflight_rc" -eq 0 ]; then
  "${make_[@]}" molecule-all lab-test
  lab_rc=$?
elif [ "$build_rc" -eq 0 ]; then
  lab_rc=$preflight_rc
fi
lab_secs=$(( $(date +%s) - start ))

side_rc=0 side_said="not run (the build failed)"
if [ "$build_rc" -eq 0 ]; then
  wait "$side"
  side_rc=$?
  side_said=$(status "$side_rc")
fi
groups=()
trap - EXIT

echo "make test: the lab's build, preflight-test and scenarios $(status "$lab_rc") (${lab_secs}s);" \
  "lint, unit and conformance-build ${side_said}; $(( $(date +%s) - start ))s in all"
[ "$lab_rc" -eq 0 ] && [ "$side_rc" -eq 0 ]
