"""Preflight's checks against the running cluster (plugins/filter/kubeforge_cluster.py):
what a cluster cannot change once it runs is refused, naming the variable."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import kubeforge_cluster as kc
import pytest

FLANNEL = """cluster up
service 10.233.0.1
podcidr node1 10.233.64.0/24
podcidr node2 10.233.65.0/24
daemonset kube-flannel/kube-flannel POD_NAME POD_NAMESPACE EVENT_QUEUE_DEPTH
daemonset kube-system/kube-proxy-x A
"""
CALICO = """cluster up
service 10.233.0.1
podcidr node1 10.233.64.0/24
daemonset kube-system/calico-node NODENAME WAIT_FOR_DATASTORE DATASTORE_TYPE IP
ippool default-ipv4-ippool 10.233.64.0/18 26 Always
"""
ETCD_POOL = {
    "kind": "IPPool",
    "metadata": {"name": "default-ipv4-ippool"},
    "spec": {"cidr": "10.233.64.0/18", "blockSize": 26, "vxlanMode": "CrossSubnet"},
}
CALICO_ETCD = f"""cluster up
service 10.233.0.1
daemonset kube-system/calico-node NODENAME ETCD_ENDPOINTS ETCD_CA_CERT_FILE
etcd-ippool {json.dumps(ETCD_POOL, separators=(",", ":"))}
"""


def settings(**over: Any) -> dict[str, Any]:
    base = {
        "kube_network_plugin": "calico",
        "kube_service_addresses": "10.233.0.0/18",
        "kube_pods_subnet": "10.233.64.0/18",
        "calico_datastore": "kdd",
        "calico_pool_cidr": "10.233.64.0/18",
        "calico_pool_blocksize": "26",
        "calico_vxlan_mode": "Always",
    }
    return {**base, **over}


def test_filters_are_registered() -> None:
    assert set(kc.FilterModule().filters()) == {
        "kubeforge_cluster_errors",
        "kubeforge_cluster_state",
    }


@pytest.mark.parametrize(
    "probe", ["cluster none\n", "cluster unreachable connection refused\n", ""]
)
def test_no_running_cluster_no_errors(probe: str) -> None:
    assert kc.kubeforge_cluster_errors(probe, settings(kube_service_addresses="10.0.0.0/16")) == []


def test_state_for_the_warning() -> None:
    assert kc.kubeforge_cluster_state("cluster unreachable dial tcp: refused") == (
        "unreachable: dial tcp: refused"
    )
    assert kc.kubeforge_cluster_state(CALICO) == "up"


def test_same_settings_pass() -> None:
    assert kc.kubeforge_cluster_errors(CALICO, settings()) == []
    assert kc.kubeforge_cluster_errors(FLANNEL, settings(kube_network_plugin="flannel")) == []
    etcd = settings(calico_datastore="etcd", calico_vxlan_mode="CrossSubnet")
    assert kc.kubeforge_cluster_errors(CALICO_ETCD, etcd) == []


def test_switching_flannel_to_calico_is_refused() -> None:
    (msg,) = kc.kubeforge_cluster_errors(FLANNEL, settings())
    assert msg.startswith(
        "kube_network_plugin 'calico': the running cluster runs flannel "
        "(DaemonSet kube-flannel/kube-flannel)"
    )
    assert "keep kube_network_plugin: flannel, or reset.yml first" in msg


def test_switching_calico_to_flannel_is_refused() -> None:
    (msg,) = kc.kubeforge_cluster_errors(CALICO, settings(kube_network_plugin="flannel"))
    assert msg.startswith("kube_network_plugin 'flannel': the running cluster runs calico")


def test_switching_the_datastore_is_refused() -> None:
    (msg,) = kc.kubeforge_cluster_errors(CALICO, settings(calico_datastore="etcd"))
    assert msg.startswith("calico_datastore 'etcd': the running calico uses kdd")
    (msg,) = kc.kubeforge_cluster_errors(CALICO_ETCD, settings(calico_vxlan_mode="CrossSubnet"))
    assert msg.startswith("calico_datastore 'kdd': the running calico uses etcd")


@pytest.mark.parametrize(
    ("var", "value", "have"),
    [
        ("calico_pool_cidr", "10.233.64.0/19", "'10.233.64.0/18'"),
        ("calico_pool_blocksize", "24", "'26'"),
        ("calico_vxlan_mode", "CrossSubnet", "'Always'"),
    ],
)
def test_pool_changes_are_refused(var: str, value: str, have: str) -> None:
    (msg,) = kc.kubeforge_cluster_errors(CALICO, settings(**{var: value}))
    assert msg.startswith(f"{var} {value!r}: the running cluster's IP pool default-ipv4-ippool")
    assert have in msg


def test_pool_read_from_etcd_is_compared() -> None:
    etcd = settings(calico_datastore="etcd")  # vxlan mode Always, the pool says CrossSubnet
    (msg,) = kc.kubeforge_cluster_errors(CALICO_ETCD, etcd)
    assert msg.startswith("calico_vxlan_mode 'Always'") and "'CrossSubnet'" in msg


def test_service_network_change_is_refused() -> None:
    (msg,) = kc.kubeforge_cluster_errors(CALICO, settings(kube_service_addresses="10.96.0.0/12"))
    assert msg.startswith("kube_service_addresses 10.96.0.0/12: the running cluster's kubernetes")


def test_pod_network_change_is_refused_naming_the_nodes() -> None:
    s = settings(kube_network_plugin="flannel", kube_pods_subnet="10.244.0.0/16")
    (msg,) = kc.kubeforge_cluster_errors(FLANNEL, s)
    assert msg.startswith("kube_pods_subnet 10.244.0.0/16: the running cluster gave nodes")
    assert "node1 (10.233.64.0/24), node2 (10.233.65.0/24)" in msg


# The cluster's name and DNS domain --------------------------------------------

IDENTITY = FLANNEL + "clustername cluster.local\ndomain kubelet cluster.local\n"


def test_same_name_and_domain_pass() -> None:
    s = settings(kube_network_plugin="flannel", cluster_name="cluster.local",
                 dns_domain="cluster.local")  # fmt: skip
    assert kc.kubeforge_cluster_errors(IDENTITY, s) == []


def test_renaming_the_cluster_is_refused() -> None:
    s = settings(kube_network_plugin="flannel", cluster_name="prod", dns_domain="cluster.local")
    (msg,) = kc.kubeforge_cluster_errors(IDENTITY, s)
    assert msg.startswith("cluster_name 'prod': the running cluster is named 'cluster.local'")
    assert "keep cluster_name: cluster.local, or reset.yml first" in msg


def test_a_new_dns_domain_is_refused() -> None:
    s = settings(kube_network_plugin="flannel", cluster_name="cluster.local",
                 dns_domain="k8s.example")  # fmt: skip
    (msg,) = kc.kubeforge_cluster_errors(IDENTITY, s)
    assert msg.startswith(
        "dns_domain 'k8s.example': the running cluster's DNS domain is 'cluster.local' "
        "(the kubelets' clusterDomain)"
    )
    assert "keep dns_domain: cluster.local, or reset.yml first" in msg


def test_cluster_name_feeding_the_domain_is_refused_twice() -> None:
    """kubespray's dns_domain defaults to cluster_name: both change."""
    s = settings(kube_network_plugin="flannel", cluster_name="prod.local", dns_domain="prod.local")
    found = kc.kubeforge_cluster_errors(IDENTITY, s)
    assert [m.split(" ", 1)[0] for m in found] == ["cluster_name", "dns_domain"]


def test_the_domain_is_read_from_coredns_without_a_kubelet_config() -> None:
    probe = FLANNEL + "domain coredns cluster.local.\n"
    s = settings(kube_network_plugin="flannel", dns_domain="other.local")
    (msg,) = kc.kubeforge_cluster_errors(probe, s)
    assert "'cluster.local' (CoreDNS's zone)" in msg


def test_nothing_known_of_name_and_domain_passes() -> None:
    s = settings(kube_network_plugin="flannel", cluster_name="x", dns_domain="y")
    assert kc.kubeforge_cluster_errors(FLANNEL, s) == []


def test_kubesprays_network_names_are_compared_under_their_name() -> None:
    s = settings(kube_network_plugin="flannel", kube_service_subnets="10.96.0.0/12",
                 kube_pods_subnets="10.233.64.0/18")  # fmt: skip
    (msg,) = kc.kubeforge_cluster_errors(FLANNEL, s)
    assert msg.startswith("kube_service_subnets 10.96.0.0/12: the running cluster's kubernetes")


# The probe itself, with a stand-in kubectl ------------------------------------

PROBE = Path(__file__).resolve().parents[2] / "roles/preflight/files/cluster-probe.sh"
FAKE_KUBECTL = r"""#!/bin/sh
# cluster-probe.sh calls: kubectl --kubeconfig CONF --request-timeout=20s ARGS...
shift 3
case "$*" in
  "get --raw /readyz") echo ok ;;
  "get service kubernetes"*) printf 'service 10.233.0.1\n' ;;
  "get nodes"*) printf 'podcidr node1 10.233.64.0/24\n' ;;
  "config view"*) printf 'clustername cluster.local\n' ;;
  "get configmap coredns"*)
    printf '.:53 {\n    errors\n    kubernetes cluster.local in-addr.arpa ip6.arpa {\n    }\n}\n' ;;
  "get daemonsets"*) printf 'daemonset kube-flannel/kube-flannel POD_NAME\n' ;;
  *) exit 1 ;;
esac
"""


def run_probe(tmp_path: Path, kubelet_config: str | None) -> str:
    bin_dir, conf_dir = tmp_path / "bin", tmp_path / "etc"
    bin_dir.mkdir()
    conf_dir.mkdir()
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(FAKE_KUBECTL)
    kubectl.chmod(0o755)
    (conf_dir / "admin.conf").write_text("apiVersion: v1\n")
    if kubelet_config is not None:
        (conf_dir / "kubelet-config.yaml").write_text(kubelet_config)
    done = subprocess.run(
        ["sh", str(PROBE), str(kubectl), "https://127.0.0.1:2379", str(conf_dir / "admin.conf")],
        capture_output=True, text=True, check=True, timeout=60, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    return done.stdout


def test_probe_reports_the_name_and_both_domains(tmp_path: Path) -> None:
    out = run_probe(tmp_path, "kind: KubeletConfiguration\nclusterDomain: k8s.example\n")
    run = kc.parse(out)
    assert run.state == "up"
    assert run.cluster_names == ["cluster.local"]
    assert run.domains == {"kubelet": "k8s.example", "coredns": "cluster.local"}
    s = settings(kube_network_plugin="flannel", cluster_name="cluster.local",
                 dns_domain="cluster.local")  # fmt: skip
    (msg,) = kc.kubeforge_cluster_errors(out, s)
    assert "DNS domain is 'k8s.example' (the kubelets' clusterDomain)" in msg


def test_probe_without_a_kubelet_reads_coredns(tmp_path: Path) -> None:
    run = kc.parse(run_probe(tmp_path, None))
    assert run.domains == {"coredns": "cluster.local"}
    assert run.service_ip == "10.233.0.1" and "kube-flannel/kube-flannel" in run.daemonsets
