#!/usr/bin/env bash
# Debootstrap a Debian 12 minbase root filesystem into a tarball for `docker import`.
# usage: debootstrap.sh OUT.tar DEBIAN_MIRROR
set -euo pipefail
out=$1 mirror=$2
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase bookworm "$root" "$mirror" >/dev/null
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
tar --numeric-owner -C "$root" -cf "$out.partial" .
mv "$out.partial" "$out"
