#!/usr/bin/env bash
# Build metrics-server for one release from the Go module proxy, with the
# ldflags of its Makefile: the tag as client-go's gitVersion (what
# `metrics-server --version` prints), the commit when the proxy says which it
# is, and a fixed build date.
# usage: metrics-server.sh VERSION OUTDIR   (VERSION like 0.9.0; a leading v is accepted)
set -euo pipefail
version=v${1#v} out=$2
mod=sigs.k8s.io/metrics-server
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

fields=$(go mod download -json "${mod}@${version}" | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(d.get("GoMod") or sys.exit(d.get("Error")), d.get("Origin", {}).get("Hash", ""))')
read -r modfile commit <<<"$fields"
go_directive=$(awk '$1 == "go" {print $2; exit}' "$modfile")
printf 'module kubeforge.lab/metrics-server\ngo %s\nrequire %s %s\n' "$go_directive" "$mod" "$version" > go.mod
export GOFLAGS=-mod=mod

pkg=k8s.io/client-go/pkg/version
ldflags="-s -w -X ${pkg}.gitVersion=${version} -X ${pkg}.buildDate=1970-01-01T00:00:00Z"
if [ -n "$commit" ]; then
  ldflags+=" -X ${pkg}.gitCommit=${commit}"
fi

mkdir -p "$out"
CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out/metrics-server" "${mod}/cmd/metrics-server"
