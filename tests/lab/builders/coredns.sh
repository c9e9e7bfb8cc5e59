#!/usr/bin/env bash
# Build coredns for one release from the Go module proxy with the plugin set of
# that release (compiled in from its core/plugin/zplugin.go). The version string
# is a constant in coremain; GitCommit records the tag as no commit is known.
# usage: coredns.sh VERSION OUTDIR   (VERSION like v1.13.1)
set -euo pipefail
version=v${1#v} out=$2  # accepts 1.2.3 or v1.2.3
mod=github.com/coredns/coredns
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

modfile=$(go mod download -json "${mod}@${version}" |
  python3 -c 'import json, sys; d = json.load(sys.stdin); print(d.get("GoMod") or sys.exit(d.get("Error")))')
go_directive=$(awk '$1 == "go" {print $2; exit}' "$modfile")
printf 'module kubeforge.lab/coredns\ngo %s\nrequire %s %s\n' "$go_directive" "$mod" "$version" > go.mod
export GOFLAGS=-mod=mod

mkdir -p "$out"
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X ${mod}/coremain.GitCommit=${version}" \
  -o "$out/coredns" "$mod"
