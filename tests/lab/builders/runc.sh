#!/usr/bin/env bash
# apt: gcc libc6-dev libseccomp-dev pkg-config
# Build a static runc with seccomp support for one release from the Go module
# proxy, the way upstream's "make static" does: cgo against libseccomp.a,
# linked as a static PIE. The version comes from the embedded VERSION file.
# usage: runc.sh VERSION OUTDIR   (VERSION like v1.3.4)
set -euo pipefail
version=v${1#v} out=$2  # accepts 1.2.3 or v1.2.3
mod=github.com/opencontainers/runc
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

modfile=$(go mod download -json "${mod}@${version}" |
  python3 -c 'import json, sys; d = json.load(sys.stdin); print(d.get("GoMod") or sys.exit(d.get("Error")))')
go_directive=$(awk '$1 == "go" {print $2; exit}' "$modfile")
printf 'module kubeforge.lab/runc\ngo %s\nrequire %s %s\n' "$go_directive" "$mod" "$version" > go.mod
export GOFLAGS=-mod=mod CGO_ENABLED=1

mkdir -p "$out"
go build -trimpath -buildmode=pie -tags "seccomp urfave_cli_no_docs netgo osusergo" \
  -ldflags "-s -w -linkmode external -extldflags -static-pie" \
  -o "$out/runc" "$mod"
