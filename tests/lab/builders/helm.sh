#!/usr/bin/env bash
# Build helm (v3) for one release from the Go module proxy, with the ldflags of
# its Makefile for a tagged build (version, clean tree; metadata stays empty) and the
# Kubernetes version derived from the client-go it requires.
# usage: helm.sh VERSION OUTDIR   (VERSION like v3.22.0)
set -euo pipefail
version=v${1#v} out=$2  # accepts 1.2.3 or v1.2.3
mod=helm.sh/helm/v3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

modfile=$(go mod download -json "${mod}@${version}" |
  python3 -c 'import json, sys; d = json.load(sys.stdin); print(d.get("GoMod") or sys.exit(d.get("Error")))')
go_directive=$(awk '$1 == "go" {print $2; exit}' "$modfile")
printf 'module kubeforge.lab/helm\ngo %s\nrequire %s %s\n' "$go_directive" "$mod" "$version" > go.mod
export GOFLAGS=-mod=mod

# client-go v0.X.Y is Kubernetes 1.X (the Makefile computes major as 0 + 1).
client_go=$(awk '$1 == "k8s.io/client-go" {print $2; exit}' "$modfile")
k8s_minor=$(echo "$client_go" | cut -d. -f2)
ldflags="-s -w -X ${mod}/internal/version.version=${version}"
ldflags+=" -X ${mod}/internal/version.gitTreeState=clean"
for pkg in pkg/lint/rules pkg/chartutil; do
  ldflags+=" -X ${mod}/${pkg}.k8sVersionMajor=1 -X ${mod}/${pkg}.k8sVersionMinor=${k8s_minor}"
done

mkdir -p "$out"
CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out/helm" "${mod}/cmd/helm"
