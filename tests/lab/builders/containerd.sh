#!/usr/bin/env bash
# Build containerd, containerd-shim-runc-v2 and ctr for one release from the Go
# module proxy, without cgo (so no btrfs snapshotter), with the build tags of
# upstream's static release and the shim's no_grpc tag.
# usage: containerd.sh VERSION OUTDIR   (VERSION like v2.2.1)
set -euo pipefail
version=v${1#v} out=$2  # accepts 1.2.3 or v1.2.3
mod=github.com/containerd/containerd/v2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

modfile=$(go mod download -json "${mod}@${version}" |
  python3 -c 'import json, sys; d = json.load(sys.stdin); print(d.get("GoMod") or sys.exit(d.get("Error")))')
go_directive=$(awk '$1 == "go" {print $2; exit}' "$modfile")
printf 'module kubeforge.lab/containerd\ngo %s\nrequire %s %s\n' "$go_directive" "$mod" "$version" > go.mod
export GOFLAGS=-mod=mod CGO_ENABLED=0

ldflags="-s -w -X ${mod}/version.Version=${version} -X ${mod}/version.Package=${mod}"
tags="urfave_cli_no_docs no_btrfs osusergo netgo static_build"
mkdir -p "$out"
for cmd in containerd ctr; do
  go build -trimpath -tags "$tags" -ldflags "$ldflags" -o "$out/$cmd" "${mod}/cmd/${cmd}"
done
go build -trimpath -tags "$tags no_grpc" -ldflags "$ldflags" \
  -o "$out/containerd-shim-runc-v2" "${mod}/cmd/containerd-shim-runc-v2"
