#!/usr/bin/env bash
# Build etcd, etcdctl and etcdutl for one release from the Go module proxy.
# The three commands live in separate modules of the same release; their own
# go.mod files pin the sibling modules (api, client, pkg, server) to the same
# tag, so a wrapper that requires all three needs no replace lines. The version
# string is compiled into go.etcd.io/etcd/api/v3/version; the git SHA is not
# known from the proxy and keeps its default.
# usage: etcd.sh VERSION OUTDIR   (VERSION like v3.6.8)
set -euo pipefail
version=v${1#v} out=$2  # accepts 1.2.3 or v1.2.3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

modfile=$(go mod download -json "go.etcd.io/etcd/server/v3@${version}" |
  python3 -c 'import json, sys; d = json.load(sys.stdin); print(d.get("GoMod") or sys.exit(d.get("Error")))')
go_directive=$(awk '$1 == "go" {print $2; exit}' "$modfile")
{
  echo "module kubeforge.lab/etcd"
  echo "go ${go_directive}"
  for mod in server etcdctl etcdutl; do echo "require go.etcd.io/etcd/${mod}/v3 ${version}"; done
} > go.mod
export GOFLAGS=-mod=mod

mkdir -p "$out"
for cmd in server:etcd etcdctl:etcdctl etcdutl:etcdutl; do
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out/${cmd#*:}" "go.etcd.io/etcd/${cmd%%:*}/v3"
done
