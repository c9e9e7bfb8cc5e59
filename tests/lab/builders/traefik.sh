#!/usr/bin/env bash
# Build traefik (v3) for one release from the Go module proxy. Its go.mod
# replaces three modules with Containous forks and excludes a broken version of
# the Tencent Cloud SDK; a dependent module would see neither, so the build runs
# in a copy of traefik's own module directory (its go.mod and go.sum apply).
# The web UI is not built: go:embed needs webui/static, which the module ships
# holding only a README; the dashboard then serves no pages (the lab does not use
# it). The ldflags are those of the release build (.goreleaser.yml.tmpl and the
# CODENAME of .github/workflows/release.yaml): the version without its v, the
# codename; the build date is fixed.
# usage: traefik.sh VERSION OUTDIR   (VERSION like 3.6.12; a leading v is accepted)
set -euo pipefail
version=v${1#v} out=$2
mod=github.com/traefik/traefik/v3
work=$(mktemp -d)
trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT

src=$(go mod download -json "${mod}@${version}" |
  python3 -c 'import json, sys; d = json.load(sys.stdin); print(d.get("Dir") or sys.exit(d.get("Error")))')
cp -R "$src" "$work/traefik"
chmod -R u+w "$work/traefik"
cd "$work/traefik"
if [ -z "$(ls -A webui/static 2>/dev/null)" ]; then
  mkdir -p webui/static
  echo 'No web UI in this build (kubeforge lab).' > webui/static/README.md
fi
codename=$(awk '$1 == "CODENAME:" {print $2; exit}' .github/workflows/release.yaml 2>/dev/null || true)
export GOFLAGS=-mod=mod

pkg=${mod}/pkg/version
ldflags="-s -w -X ${pkg}.Version=${version#v} -X ${pkg}.Codename=${codename:-cheddar}"
ldflags+=" -X ${pkg}.BuildDate=1970-01-01T00:00:00Z"

mkdir -p "$out"
CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out/traefik" ./cmd/traefik
