#!/bin/sh
# Read-only: what the running cluster was deployed with, for preflight's
# cluster checks (plugins/filter/kubeforge_cluster.py parses the output).
# usage: cluster-probe.sh KUBECTL ETCD_ENDPOINT ADMIN_KUBECONFIG
# (etcdctl is read beside KUBECTL, in bin_dir).
# Prints "cluster none" where no cluster was deployed from this host and
# "cluster unreachable <error>" when its API does not answer.
kubectl=$1 endpoint=$2 conf=$3
if [ ! -r "$conf" ] || [ ! -x "$kubectl" ]; then
  echo "cluster none"
  exit 0
fi
k() { "$kubectl" --kubeconfig "$conf" --request-timeout=20s "$@"; }
if ! out=$(k get --raw /readyz 2>&1); then
  echo "cluster unreachable $out" | head -n 1
  exit 0
fi
echo "cluster up"
k get service kubernetes -n default -o jsonpath='service {.spec.clusterIP}{"\n"}'
k get nodes -o jsonpath='{range .items[*]}podcidr {.metadata.name} {.spec.podCIDR}{"\n"}{end}'
# The cluster's name (the cluster entry of the kubeconfigs) and DNS domain (the
# kubelet's clusterDomain on this host, and the zone of the Corefile).
k config view -o jsonpath='{range .clusters[*]}clustername {.name}{"\n"}{end}'
sed -n 's/^clusterDomain: *//p' "$(dirname "$conf")/kubelet-config.yaml" 2>/dev/null |
  tr -d "\"'" | sed 's/^/domain kubelet /'
k get configmap coredns -n kube-system -o jsonpath='{.data.Corefile}' 2>/dev/null |
  sed -n 's/^ *kubernetes \([^ ]*\) .*/domain coredns \1/p'
k get daemonsets -A -o jsonpath='{range .items[*]}daemonset {.metadata.namespace}/{.metadata.name} {.spec.template.spec.containers[*].env[*].name}{"\n"}{end}'
# calico's pools: from the API (datastore kdd) or from etcd (datastore etcd).
k get ippools.crd.projectcalico.org -o jsonpath='{range .items[*]}ippool {.metadata.name} {.spec.cidr} {.spec.blockSize} {.spec.vxlanMode}{"\n"}{end}' 2>/dev/null
etcdctl=$(dirname "$kubectl")/etcdctl
if [ -x "$etcdctl" ] && [ -r "${ETCDCTL_CERT:-}" ]; then
  "$etcdctl" --endpoints "$endpoint" get --prefix /calico/resources/v3/projectcalico.org/ippools/ --print-value-only 2>/dev/null |
    sed -n 's/^{/etcd-ippool {/p'
fi
exit 0
