#!/usr/bin/env bash
# apt: gcc libc6-dev
# Build the static pause binary of the pause image from build/pause/linux/pause.c
# of the Kubernetes source (module k8s.io/kubernetes, release KUBE_SOURCE_VERSION,
# default v1.37.2), with the Makefile's CFLAGS. The Makefile defines VERSION as
# v$(TAG)-$(REV), REV being the git revision; here REV is the Kubernetes release.
# The Linux pause.c has not changed since 3.10 (3.10.1/3.10.2 only touch Windows).
# usage: pause.sh VERSION OUTDIR   (VERSION like 3.10.1)
set -euo pipefail
version=${1#v} out=$2
kube_version=${KUBE_SOURCE_VERSION:-v1.37.2}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

src=$(go mod download -json "k8s.io/kubernetes@${kube_version}" |
  python3 -c 'import json, sys; d = json.load(sys.stdin); print(d.get("Dir") or sys.exit(d.get("Error")))')
mkdir -p "$out"
gcc -Os -Wall -Werror -static "-DVERSION=v${version}-${kube_version}" \
  -o "$out/pause" "$src/build/pause/linux/pause.c"
strip "$out/pause"
