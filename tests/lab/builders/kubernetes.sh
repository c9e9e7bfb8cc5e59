#!/usr/bin/env bash
# Build the Kubernetes server and client binaries for one release from the Go
# module proxy, in the wrapper module of lib/kubernetes-module.sh.
# usage: kubernetes.sh VERSION OUTDIR   (VERSION like 1.37.2; a leading v is accepted)
set -euo pipefail
version=v${1#v} out=$2
# shellcheck source=lib/kubernetes-module.sh
. "$(dirname "$0")/lib/kubernetes-module.sh"
kubernetes_wrapper_module kubeforge.lab/kubernetes "$version"

ldflags="$(kubernetes_version_ldflags "$version") -X k8s.io/client-go/pkg/version.gitVersion=${version}"

mkdir -p "$out"
# One `go build` of the six commands: it compiles their packages in one graph and
# links two at a time (a link is mostly one core), where a build per command
# linked each alone. Each binary is named after its package's directory.
cmds=()
for cmd in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do
  cmds+=("k8s.io/kubernetes/cmd/$cmd")
done
CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out/" "${cmds[@]}"
