#!/bin/bash
# Read-only: what one host runs, for cluster-info.yml. Prints sections
# ("@@ <kind> [<name>]" then the text read), which
# plugins/filter/kubeforge_cluster_info.py (kubeforge_cluster_info_probe) parses:
# the download role's record of what it installed, the version each binary
# reports, the state of kubeforge's services and, where asked, whether the
# host reaches the API endpoint, its own apiserver's readiness and version,
# and whether it holds the VIP.
# usage: cluster-info-probe.sh BIN_DIR KUBE_CONFIG_DIR CNI_BIN_DIR ENDPOINT APISERVER VIP
#   ENDPOINT   host:port the node reaches the apiservers at ("" skips the check)
#   APISERVER  "yes": ask this host's apiserver (its admin.conf) for /readyz and /version
#   VIP        the VIP (apiserver_ha_mode vip; "" skips the check)
# The script module runs it on a terminal: no pager, no colours.
export SYSTEMD_PAGER='' SYSTEMD_COLORS=0 PAGER=cat
set -u
bin=$1 conf=$2 cni=$3 endpoint=$4 apiserver=$5 vip=$6
section() { printf '\n@@ %s\n' "$*"; }
first() { timeout 10 "$@" 2>&1 | head -n 1; }

section record
cat /var/lib/kubeforge/installed.json 2>/dev/null

for name in kubelet kube-proxy kube-apiserver kube-controller-manager kube-scheduler kubectl \
  etcd containerd runc crictl helm; do
  [ -x "$bin/$name" ] || continue
  section version "$name"
  case $name in
    kubectl) first "$bin/$name" version --client ;;
    helm) first "$bin/$name" version --short ;;
    *) first "$bin/$name" --version ;;
  esac
done
# A CNI plugin run without CNI_COMMAND names its release ("CNI bridge plugin v1.9.1").
if [ -x "$cni/bridge" ]; then
  section version cni
  first env -u CNI_COMMAND "$cni/bridge"
fi

for unit in containerd kubelet kube-proxy kube-apiserver kube-controller-manager kube-scheduler \
  etcd haproxy keepalived; do
  section service "$unit"
  systemctl --no-pager show -p LoadState -p ActiveState -p SubState "$unit.service" 2>&1
done

if [ -n "$endpoint" ]; then
  section endpoint "$endpoint"
  host=${endpoint%:*} port=${endpoint##*:}
  host=${host#[} host=${host%]}
  if timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$host" "$port" 2>/dev/null; then
    echo open
  else
    echo closed
  fi
fi

if [ "$apiserver" = yes ]; then
  k() { timeout 20 "$bin/kubectl" --kubeconfig "$conf/admin.conf" --request-timeout=10s "$@" 2>&1; }
  section readyz
  k get --raw /readyz | head -n 20
  section apiversion
  k get --raw /version
fi

if [ -n "$vip" ]; then
  section vip "$vip"
  if ip -o addr show | awk -v a="$vip" '{split($4, p, "/"); if (p[1] == a) f = 1} END {exit !f}'; then
    echo held
  else
    echo "not held"
  fi
fi
# The output is complete (a probe cut short reads as not read).
section end
exit 0
