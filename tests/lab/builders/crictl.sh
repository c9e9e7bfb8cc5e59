#!/usr/bin/env bash
# Build crictl for one cri-tools release from the Go module proxy.
# usage: crictl.sh VERSION OUTDIR   (VERSION like v1.36.0)
set -euo pipefail
version=v${1#v} out=$2  # accepts 1.2.3 or v1.2.3
mod=sigs.k8s.io/cri-tools
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

modfile=$(go mod download -json "${mod}@${version}" |
  python3 -c 'import json, sys; d = json.load(sys.stdin); print(d.get("GoMod") or sys.exit(d.get("Error")))')
go_directive=$(awk '$1 == "go" {print $2; exit}' "$modfile")
printf 'module kubeforge.lab/cri-tools\ngo %s\nrequire %s %s\n' "$go_directive" "$mod" "$version" > go.mod
export GOFLAGS=-mod=mod

mkdir -p "$out"
# The Makefile strips the leading v: VERSION=$(git describe --tags | sed 's/^v//').
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X ${mod}/pkg/version.Version=${version#v}" \
  -o "$out/crictl" "${mod}/cmd/crictl"
