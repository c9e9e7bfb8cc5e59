"""Preflight's checks against the running cluster (plugins/filter/kubeforge_cluster.py):
what a cluster cannot change once it runs is refused, naming the variable."""

from __future__ import annotations

import json
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
