#!/usr/bin/env bash
# Build the flannel CNI plugin (binary "flannel"). Its upstream home,
# github.com/flannel-io/cni-plugin, is not served by the Go module proxy, so
# this builds the same plugin from github.com/containernetworking/plugins,
# whose last release still containing plugins/meta/flannel is v0.9.1.
# usage: flannel-cni.sh VERSION OUTDIR   (VERSION: a containernetworking/plugins
#        release that has plugins/meta/flannel, i.e. v0.9.1)
set -euo pipefail
version=v${1#v} out=$2  # accepts 1.2.3 or v1.2.3
mod=github.com/containernetworking/plugins
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

modfile=$(go mod download -json "${mod}@${version}" |
  python3 -c 'import json, sys; d = json.load(sys.stdin); print(d.get("GoMod") or sys.exit(d.get("Error")))')
go_directive=$(awk '$1 == "go" {print $2; exit}' "$modfile")
printf 'module kubeforge.lab/flannel-cni\ngo %s\nrequire %s %s\n' "$go_directive" "$mod" "$version" > go.mod
export GOFLAGS=-mod=mod

mkdir -p "$out"
CGO_ENABLED=0 go build -trimpath \
  -ldflags "-s -w -X ${mod}/pkg/utils/buildversion.BuildVersion=${version}" \
  -o "$out/flannel" "${mod}/plugins/meta/flannel"
