#!/usr/bin/env bash
# Build the Kubernetes server and client binaries for one release from the Go
# module proxy. k8s.io/kubernetes replaces its staging modules with local paths,
# which a dependent module cannot see, so a small wrapper module pins each of
# them to the matching v0.MINOR.PATCH tag.
# usage: kubernetes.sh VERSION OUTDIR   (VERSION like 1.37.2; a leading v is accepted)
set -euo pipefail
version=v${1#v} out=$2
staging_version="v0.${version#v1.}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

modfile=$(go mod download -json "k8s.io/kubernetes@${version}" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["GoMod"])')
go_directive=$(awk '$1 == "go" {print $2; exit}' "$modfile")

{
  echo "module kubeforge.lab/kubernetes"
  echo "go ${go_directive}"
  echo "require k8s.io/kubernetes ${version}"
  awk -v sv="$staging_version" '$2 == "=>" && $3 ~ /^\.\/staging\// {print "replace " $1 " => " $1 " " sv}' "$modfile"
} > go.mod
# -mod=mod lets go build add the requirements of each command it builds.
export GOFLAGS=-mod=mod

major=1 minor=$(echo "$version" | cut -d. -f2)
pkg=k8s.io/component-base/version
ldflags="-s -w -X ${pkg}.gitVersion=${version} -X ${pkg}.gitMajor=${major} -X ${pkg}.gitMinor=${minor}"
ldflags+=" -X ${pkg}.gitTreeState=clean -X ${pkg}.buildDate=1970-01-01T00:00:00Z"
ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=${version}"

mkdir -p "$out"
for cmd in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do
  CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out/$cmd" "k8s.io/kubernetes/cmd/$cmd"
done
