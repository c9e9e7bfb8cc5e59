#!/usr/bin/env bash
# Build metrics-server for one release from the Go module proxy, with the
# client-go version ldflags of its Makefile.
# usage: metrics-server.sh VERSION OUTDIR   (VERSION like v0.8.0)
set -euo pipefail
version=v${1#v} out=$2  # accepts 1.2.3 or v1.2.3
mod=sigs.k8s.io/metrics-server
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

modfile=$(go mod download -json "${mod}@${version}" |
  python3 -c 'import json, sys; d = json.load(sys.stdin); print(d.get("GoMod") or sys.exit(d.get("Error")))')
go_directive=$(awk '$1 == "go" {print $2; exit}' "$modfile")
printf 'module kubeforge.lab/metrics-server\ngo %s\nrequire %s %s\n' "$go_directive" "$mod" "$version" > go.mod
export GOFLAGS=-mod=mod

pkg=k8s.io/client-go/pkg/version
mkdir -p "$out"
CGO_ENABLED=0 go build -trimpath \
  -ldflags "-s -w -X ${pkg}.gitVersion=${version} -X ${pkg}.buildDate=1970-01-01T00:00:00Z" \
  -o "$out/metrics-server" "${mod}/cmd/metrics-server"
