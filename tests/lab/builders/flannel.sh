#!/usr/bin/env bash
# apt: gcc libc6-dev
# Build flanneld for one release from the Go module proxy. The modules of the
# Tencent Cloud SDK that its tencentvpc backend imports are not served by the
# proxy, so the wrapper module compiles a copy of flannel's main.go without that
# one backend import; every other backend is kept. Like upstream on amd64, cgo
# is on for the udp backend's C proxy, and the binary is linked statically.
# usage: flannel.sh VERSION OUTDIR   (VERSION like v0.28.10)
set -euo pipefail
version=v${1#v} out=$2  # accepts 1.2.3 or v1.2.3
mod=github.com/flannel-io/flannel
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

src=$(go mod download -json "${mod}@${version}" |
  python3 -c 'import json, sys; d = json.load(sys.stdin); print(d.get("Dir") or sys.exit(d.get("Error")))')
go_directive=$(awk '$1 == "go" {print $2; exit}' "$src/go.mod")
printf 'module kubeforge.lab/flannel\ngo %s\nrequire %s %s\n' "$go_directive" "$mod" "$version" > go.mod
grep -v "\"${mod}/pkg/backend/tencentvpc\"" "$src/main.go" > main.go
export GOFLAGS=-mod=mod

mkdir -p "$out"
CGO_ENABLED=1 go build -trimpath -tags "netgo osusergo" \
  -ldflags "-s -w -X ${mod}/pkg/version.Version=${version} -extldflags -static" \
  -o "$out/flanneld" .
