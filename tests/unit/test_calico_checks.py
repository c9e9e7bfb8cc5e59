"""Preflight's calico checks (plugins/filter/kubeforge_inventory.py, check_calico):
the shipped defaults pass, each bad setting is refused naming the variable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubeforge_inventory as inv
import pytest
import yaml

DEFAULTS = Path(__file__).resolve().parents[2] / "roles/kubeforge_defaults/defaults/main"
GROUPS = {
    "kube_control_plane": ["cp1", "cp2", "cp3"],
    "etcd": ["cp1", "cp2", "cp3"],
    "kube_node": ["w1"],
    "k8s_cluster": ["cp1", "cp2", "cp3", "w1"],
    "calico_rr": [],
}


def settings() -> dict[str, Any]:
    """The shipped calico defaults, with a mirror (files_repo) serving the archive."""
    merged: dict[str, Any] = {}
    for name in ("versions.yml", "cluster.yml", "calico.yml"):
        merged.update(yaml.safe_load((DEFAULTS / name).read_text()))
    # apiserver_ha_mode's default is a template: local_lb without loadbalancer_apiserver.
    merged["apiserver_ha_mode"] = "local_lb"
    out = {k: merged.get(k) for k in (*inv.SETTINGS, *inv.CALICO_SETTINGS)}
    out.update(
        kube_network_plugin="calico",
        calico_pool_cidr=merged["kube_pods_subnet"],
        calico_crds_download_url="http://mirror.example/github.com/projectcalico/calico/archive/v3.31.0.tar.gz",
        calico_crds_pinned=False,
    )
    return out


def calico_errors(s: dict[str, Any], groups: dict[str, list[str]] | None = None) -> list[str]:
    return inv.check_calico(s, groups or GROUPS)


def test_shipped_defaults_pass() -> None:
    assert calico_errors(settings()) == []


def test_whole_inventory_check_accepts_calico() -> None:
    s = settings()
    hostvars = {h: {"ip": f"192.168.10.{i}"} for i, h in enumerate(GROUPS["k8s_cluster"], 11)}
    assert inv.kubeforge_inventory_errors(GROUPS, hostvars, s) == []


def test_no_check_with_flannel() -> None:
    s = settings()
    s.update(kube_network_plugin="flannel", calico_network_backend="bird")
    assert calico_errors(s) == []


def test_bird_is_refused_until_bgp_exists() -> None:
    s = settings()
    s["calico_network_backend"] = "bird"
    (msg,) = calico_errors(s)
    assert msg.startswith("calico_network_backend 'bird' (BGP) is not implemented: use vxlan")


def test_route_reflectors_are_refused() -> None:
    groups = {**GROUPS, "calico_rr": ["rr1"]}
    (msg,) = calico_errors(settings(), groups)
    assert "group calico_rr lists rr1" in msg and "route reflectors need BGP" in msg


@pytest.mark.parametrize(
    ("var", "value", "expected"),
    [
        (
            "calico_datastore",
            "etcdv3",
            "calico_datastore 'etcdv3' is unknown; use one of: kdd, etcd",
        ),
        ("calico_vxlan_mode", "always", "calico_vxlan_mode 'always' is unknown"),
        ("calico_vxlan_mode", "Never", "calico_vxlan_mode 'Never' leaves pod traffic"),
        ("calico_ipip_mode", "Always", "calico_ipip_mode 'Always': IP-in-IP is not implemented"),
        ("calico_ipip_mode", "CrossSubnet", "calico_ipip_mode 'CrossSubnet': IP-in-IP is not"),
        ("calico_network_backend", "none", "calico_network_backend 'none' is unknown"),
        ("calico_version", "v3.31.0", "calico_version 'v3.31.0': write it without the leading v"),
        ("calico_version", "3.31", "calico_version '3.31' is not a release (X.Y.Z)"),
        ("calico_pool_cidr", "10.0.0.0/33", "calico_pool_cidr '10.0.0.0/33' is not a valid CIDR"),
        ("calico_pool_cidr", "10.10.0.0/16", "calico_pool_cidr 10.10.0.0/16 is not inside"),
        ("calico_pool_cidr", "fd00::/64", "calico_pool_cidr fd00::/64 is IPv6"),
        ("calico_pool_blocksize", 33, "calico_pool_blocksize 33 is not a block prefix length"),
        ("calico_pool_blocksize", 17, "calico_pool_blocksize 17 is not a block prefix length"),
        ("calico_pool_blocksize", "26a", "calico_pool_blocksize '26a' is not"),
        ("calico_mtu", 100, "calico_mtu 100 is not an MTU"),
        ("calico_veth_mtu", "auto", "calico_veth_mtu 'auto' is not an MTU"),
        ("calico_vxlan_vni", 0, "calico_vxlan_vni 0 is not a VXLAN VNI"),
        ("calico_vxlan_port", 70000, "calico_vxlan_port 70000 is not a TCP port"),
        ("calico_iptables_backend", "nft", "calico_iptables_backend 'nft' is unknown"),
        ("calico_loglevel", "trace", "calico_loglevel 'trace' is unknown"),
        (
            "calico_felix_prometheusmetricsenabled",
            "maybe",
            "calico_felix_prometheusmetricsenabled 'maybe' is not a boolean",
        ),
        ("calico_ip_auto_method", "interface=", "calico_ip_auto_method 'interface=' is unknown"),
        ("calico_ip_auto_method", "first_found", "calico_ip_auto_method 'first_found' is unknown"),
        ("calico_node_extra_envs", ["A=1"], "calico_node_extra_envs must be a dict"),
        (
            "calico_node_extra_envs",
            {"1A": "x"},
            "calico_node_extra_envs: '1A' is not a variable name",
        ),
        ("calico_node_extra_envs", {"A": {"b": 1}}, "calico_node_extra_envs.A must be a string"),
    ],
)
def test_bad_setting_is_refused_naming_it(var: str, value: Any, expected: str) -> None:
    s = settings()
    s[var] = value
    found = calico_errors(s)
    assert len(found) == 1 and found[0].startswith(expected), found


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("calico_datastore", "etcd"),
        ("calico_ipip_mode", "Never"),
        ("calico_vxlan_mode", "CrossSubnet"),
        ("calico_pool_cidr", "10.233.96.0/19"),
        ("calico_pool_blocksize", 24),
        ("calico_mtu", 9000),
        ("calico_veth_mtu", 1400),
        ("calico_iptables_backend", "NFT"),
        ("calico_ip_auto_method", "interface=eth.*"),
        ("calico_ip_auto_method", "can-reach=10.0.0.1"),
        ("calico_node_extra_envs", {"FELIX_LOGSEVERITYSYS": "none", "X": 1}),
    ],
)
def test_good_setting_passes(var: str, value: Any) -> None:
    s = settings()
    s[var] = value
    assert calico_errors(s) == []


def test_github_archive_without_a_pinned_checksum_is_refused() -> None:
    s = settings()
    s["calico_crds_download_url"] = "https://github.com/projectcalico/calico/archive/v3.31.0.tar.gz"
    (msg,) = calico_errors(s)
    assert "publishes no checksum" in msg and "kubeforge_checksums.calico_crds['3.31.0']" in msg
    s["calico_crds_pinned"] = True
    assert calico_errors(s) == []
    s.update(calico_crds_pinned=False, calico_datastore="etcd")  # no CRDs to download
    assert calico_errors(s) == []
