#!/usr/bin/env bash
# Build the lab's stand-in for cluster-proportional-autoscaler from
# tests/lab/cpa-standin (the real CPA is not on the Go module proxy), against
# the client-go release of the default Kubernetes version, and run its tests.
# usage: cpa.sh VERSION OUTDIR   (VERSION: the stand-in's own version)
set -euo pipefail
version=v${1#v} out=$2
src=$(cd "$(dirname "$0")/../cpa-standin" && pwd)
kube_version=${KUBE_SOURCE_VERSION:?KUBE_SOURCE_VERSION must name the Kubernetes release}
client_version="v0.${kube_version#v1.}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$src"/*.go "$work"/
cd "$work"
go_directive=$(go env GOVERSION | sed -E 's/^go([0-9]+\.[0-9]+).*/\1/')
printf 'module kubeforge.lab/cpa-standin\ngo %s\nrequire (\n k8s.io/client-go %s\n k8s.io/api %s\n k8s.io/apimachinery %s\n)\n' \
  "$go_directive" "$client_version" "$client_version" "$client_version" > go.mod
export GOFLAGS=-mod=mod CGO_ENABLED=0
go mod tidy >/dev/null 2>&1 || go mod tidy
# -trimpath as the build below: without it vet and test compiled client-go
# and the rest a second time (207 s with an empty build cache, 102 s with it).
go vet -trimpath ./...
go test -trimpath ./...
mkdir -p "$out"
go build -trimpath -ldflags "-s -w -X main.version=${version}" -o "$out/cluster-proportional-autoscaler" .
