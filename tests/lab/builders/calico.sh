#!/usr/bin/env bash
# Build calico-node, the calico CNI plugin and its installer, and
# calico-kube-controllers (with check-status and the restart wrapper upstream's
# image runs it under) for one release from the Go module proxy, in one
# `go build`.
#
# The proxy serves the calico repository only as a pseudo-version of the
# release tag's commit: CALICO_MODULE_VERSION (artifacts.CALICO_MODULE_VERSIONS
# passes it). Calico's go.mod replaces github.com/projectcalico/api and
# .../calico/lib/std with directories of the repository, which a dependent
# module cannot see, so the wrapper module requires them at pseudo-versions
# (lib/std at calico's; the api at CALICO_API_MODULE_VERSION, the
# projectcalico/api commit of the release), and copies calico's other replace
# lines (k8s.io/* pinned to the Kubernetes libraries it builds against).
#
# cgo is off like upstream's builds for architectures without eBPF: the eBPF
# dataplane (libbpf through cgo) is then compiled as stubs that panic, and the
# iptables and nftables dataplanes are unchanged (felix's start-up clean-up of
# eBPF state would reach the stubs: the calico/node image turns it off). The version is injected the way
# calico's lib.Makefile does (pkg/buildinfo); the build date is fixed.
#
# calico-ipam is the same program as calico (it dispatches on argv[0]):
# upstream's image has it as a symlink to calico, and so has the lab's.
# usage: CALICO_MODULE_VERSION=v0.0.0-... CALICO_API_MODULE_VERSION=v0.0.0-... \
#          calico.sh VERSION OUTDIR   (VERSION like 3.31.0; a leading v is accepted)
set -euo pipefail
version=v${1#v} out=$2
mod=github.com/projectcalico/calico
calico_pv=${CALICO_MODULE_VERSION:?the calico module pseudo-version of ${version}}
api_pv=${CALICO_API_MODULE_VERSION:?the projectcalico/api pseudo-version of ${version}}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

fields=$(go mod download -json "${mod}@${calico_pv}" | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(d.get("GoMod") or sys.exit(d.get("Error")), d.get("Origin", {}).get("Hash", "unknown"))')
read -r modfile commit <<<"$fields"
go_directive=$(awk '$1 == "go" {print $2; exit}' "$modfile")

{
  echo "module kubeforge.lab/calico"
  echo "go ${go_directive}"
  echo "require ${mod} ${calico_pv}"
  echo "require ${mod}/lib/std ${calico_pv}"
  echo "require github.com/projectcalico/api ${api_pv}"
  # calico's replace block, without the lines pointing into its own tree.
  awk '$1 == "replace" && $2 == "(" {inside = 1; next}
       inside && $1 == ")" {inside = 0; next}
       inside && $2 == "=>" && $3 !~ /^\./ {print "replace", $1, $2, $3, $4}' "$modfile"
} > go.mod
# -mod=mod lets go build add the requirements of each command it builds.
export GOFLAGS=-mod=mod

pkg=${mod}/pkg/buildinfo
ldflags="-s -w -X ${pkg}.Version=${version} -X ${pkg}.GitRevision=${commit}"
ldflags+=" -X ${pkg}.BuildDate=1970-01-01T00:00:00+0000 -X main.VERSION=${version}"

mkdir -p "$out"
CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out/" \
  "${mod}/node/cmd/calico-node" \
  "${mod}/cni-plugin/cmd/calico" \
  "${mod}/cni-plugin/cmd/install" \
  "${mod}/kube-controllers/cmd/kube-controllers" \
  "${mod}/kube-controllers/cmd/check-status" \
  "${mod}/kube-controllers/cmd/wrapper"
