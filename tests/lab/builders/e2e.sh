#!/usr/bin/env bash
# Build the Kubernetes conformance suite of one release from the Go module proxy,
# in the wrapper module of lib/kubernetes-module.sh: e2e.test
# (k8s.io/kubernetes/test/e2e), the ginkgo CLI at the version the release
# requires (it runs e2e.test in parallel), and the Go programs of the test images
# the conformance specs run: agnhost, nnp (the nonewprivs image) and
# sample-apiserver (k8s.io/sample-apiserver of the same release).
# usage: e2e.sh VERSION OUTDIR   (VERSION like 1.37.2; a leading v is accepted)
set -euo pipefail
version=v${1#v} out=$2
# shellcheck source=lib/kubernetes-module.sh
. "$(dirname "$0")/lib/kubernetes-module.sh"
kubernetes_wrapper_module kubeforge.lab/e2e "$version"

ldflags="$(kubernetes_version_ldflags "$version")"

mkdir -p "$out"
export CGO_ENABLED=0
go test -c -trimpath -ldflags "$ldflags" -o "$out/e2e.test" k8s.io/kubernetes/test/e2e
go build -trimpath -ldflags "-s -w" -o "$out/ginkgo" github.com/onsi/ginkgo/v2/ginkgo
go build -trimpath -ldflags "-s -w" -o "$out/agnhost" k8s.io/kubernetes/test/images/agnhost
go build -trimpath -ldflags "-s -w" -o "$out/nnp" k8s.io/kubernetes/test/images/nonewprivs
go build -trimpath -ldflags "$ldflags" -o "$out/sample-apiserver" k8s.io/sample-apiserver
