#!/usr/bin/env bash
# Build local-path-provisioner for one release from the Go module proxy, with
# the ldflags of its scripts/build: the tag as main.VERSION (`--version`).
# usage: local-path-provisioner.sh VERSION OUTDIR   (VERSION like 0.0.30; a leading v is accepted)
set -euo pipefail
version=v${1#v} out=$2
mod=github.com/rancher/local-path-provisioner
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

modfile=$(go mod download -json "${mod}@${version}" |
  python3 -c 'import json, sys; d = json.load(sys.stdin); print(d.get("GoMod") or sys.exit(d.get("Error")))')
go_directive=$(awk '$1 == "go" {print $2; exit}' "$modfile")
printf 'module kubeforge.lab/local-path-provisioner\ngo %s\nrequire %s %s\n' "$go_directive" "$mod" "$version" > go.mod
export GOFLAGS=-mod=mod

mkdir -p "$out"
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.VERSION=${version}" \
  -o "$out/local-path-provisioner" "$mod"
