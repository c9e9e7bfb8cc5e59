#!/usr/bin/env bash
# Build the CNI reference plugins for one release from the Go module proxy:
# every plugin under plugins/{main,ipam,meta} except the windows-only ones,
# as upstream's build_linux.sh and release tarball do.
# usage: cni-plugins.sh VERSION OUTDIR   (VERSION like v1.9.1)
set -euo pipefail
version=v${1#v} out=$2  # accepts 1.2.3 or v1.2.3
mod=github.com/containernetworking/plugins
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

src=$(go mod download -json "${mod}@${version}" |
  python3 -c 'import json, sys; d = json.load(sys.stdin); print(d.get("Dir") or sys.exit(d.get("Error")))')
go_directive=$(awk '$1 == "go" {print $2; exit}' "$src/go.mod")
printf 'module kubeforge.lab/cni-plugins\ngo %s\nrequire %s %s\n' "$go_directive" "$mod" "$version" > go.mod
export GOFLAGS=-mod=mod

pkgs=()
for dir in "$src"/plugins/{main,ipam,meta}/*/; do
  dir=${dir%/}
  [[ ${dir##*/} == windows ]] || pkgs+=("${mod}/${dir#"$src"/}")
done
mkdir -p "$out"
# With several main packages and -o DIR/, go build writes one binary per package.
CGO_ENABLED=0 go build -trimpath \
  -ldflags "-s -w -X ${mod}/pkg/utils/buildversion.BuildVersion=${version}" \
  -o "$out/" "${pkgs[@]}"
