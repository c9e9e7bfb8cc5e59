"""Inventory-level preflight checks (plugins/filter/kubeforge_inventory.py):
each check accepts a good inventory and names the host and the variable of a
bad one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubeforge_inventory as inv
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEFAULTS = REPO / "roles/kubeforge_defaults/defaults/main"

Groups = dict[str, list[str]]
HostVars = dict[str, dict[str, Any]]


def shipped_settings() -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for name in ("versions.yml", "cluster.yml"):
        merged.update(yaml.safe_load((DEFAULTS / name).read_text()))
    # apiserver_ha_mode's default is a template: local_lb without loadbalancer_apiserver.
    merged["apiserver_ha_mode"] = "local_lb"
    return {k: merged[k] for k in inv.SETTINGS}


def cluster() -> tuple[Groups, HostVars, dict[str, Any]]:
    """Three control-plane/etcd hosts, two workers: valid."""
    cp, workers = ["cp1", "cp2", "cp3"], ["w1", "w2"]
    groups: Groups = {
        "all": cp + workers,
        "kube_control_plane": cp,
        "etcd": list(cp),
        "kube_node": workers,
        "k8s_cluster": cp + workers,
        "calico_rr": [],
    }
    hostvars: HostVars = {
        h: {"ansible_host": f"192.168.10.{i}", "ip": f"192.168.10.{i}"}
        for i, h in enumerate(cp + workers, start=11)
    }
    return groups, hostvars, shipped_settings()


def errors(groups: Groups, hostvars: HostVars, settings: dict[str, Any]) -> list[str]:
    return inv.kubeforge_inventory_errors(groups, hostvars, settings)


def one_error(groups: Groups, hostvars: HostVars, settings: dict[str, Any]) -> str:
    found = errors(groups, hostvars, settings)
    assert len(found) == 1, found
    return found[0]


def setting_error(groups: Groups, hostvars: HostVars, settings: dict[str, Any]) -> str:
    """The one error, about a setting all hosts share (without "all hosts: ")."""
    found = one_error(groups, hostvars, settings)
    assert found.startswith("all hosts: "), found
    return found.removeprefix("all hosts: ")


def test_shipped_defaults_and_a_valid_inventory_pass() -> None:
    assert errors(*cluster()) == []


def test_filter_is_registered() -> None:
    assert inv.FilterModule().filters() == {
        "kubeforge_inventory_errors": inv.kubeforge_inventory_errors
    }


# Groups


@pytest.mark.parametrize("count", [1, 3, 5])
def test_odd_etcd_counts_pass(count: int) -> None:
    groups, hostvars, settings = cluster()
    groups["etcd"] = (groups["kube_control_plane"] + groups["kube_node"])[:count]
    assert errors(groups, hostvars, settings) == []


@pytest.mark.parametrize("count", [2, 4])
def test_even_etcd_count_fails_naming_group_and_members(count: int) -> None:
    groups, hostvars, settings = cluster()
    groups["etcd"] = (groups["kube_control_plane"] + groups["kube_node"])[:count]
    msg = one_error(groups, hostvars, settings)
    assert f"group etcd has {count} members" in msg
    assert "cp1, cp2" in msg and "odd" in msg


@pytest.mark.parametrize("etcd", [[], None])
def test_no_etcd_fails(etcd: list[str] | None) -> None:
    groups, hostvars, settings = cluster()
    if etcd is None:
        del groups["etcd"]
    else:
        groups["etcd"] = etcd
    assert "group etcd is empty" in one_error(groups, hostvars, settings)


def test_empty_control_plane_fails() -> None:
    groups, hostvars, settings = cluster()
    groups["kube_control_plane"] = []
    groups["k8s_cluster"] = groups["kube_node"]
    groups["etcd"] = ["w1"]
    assert "group kube_control_plane (old name kube-master) is empty" in one_error(
        groups, hostvars, settings
    )


@pytest.mark.parametrize("group", ["kube_node", "kube_control_plane"])
def test_host_missing_from_k8s_cluster_fails(group: str) -> None:
    groups, hostvars, settings = cluster()
    host = groups[group][0]
    groups["k8s_cluster"] = [h for h in groups["k8s_cluster"] if h != host]
    msg = one_error(groups, hostvars, settings)
    assert msg.startswith(f"{host}: in group {group} but not in k8s_cluster")


def test_host_of_k8s_cluster_without_a_role_fails() -> None:
    groups, hostvars, settings = cluster()
    groups["k8s_cluster"].append("stray")
    hostvars["stray"] = {"ip": "192.168.10.99"}
    msg = one_error(groups, hostvars, settings)
    assert msg.startswith("stray: in group k8s_cluster but in neither")


def test_etcd_only_hosts_outside_k8s_cluster_pass() -> None:
    groups, hostvars, settings = cluster()
    groups["etcd"] = ["e1", "e2", "e3"]
    hostvars.update({f"e{i}": {"ip": f"192.168.10.{30 + i}"} for i in (1, 2, 3)})
    assert errors(groups, hostvars, settings) == []


def test_calico_rr_without_calico_fails() -> None:
    groups, hostvars, settings = cluster()
    groups["calico_rr"] = ["w2"]
    msg = one_error(groups, hostvars, settings)
    assert "group calico_rr lists w2" in msg and "kube_network_plugin is 'flannel'" in msg


# Addresses


def test_duplicate_ip_fails_naming_both_hosts() -> None:
    groups, hostvars, settings = cluster()
    hostvars["w2"]["ip"] = hostvars["w1"]["ip"]
    msg = one_error(groups, hostvars, settings)
    assert "duplicate host address 192.168.10.14" in msg
    assert "w1 (ip)" in msg and "w2 (ip)" in msg


def test_duplicate_ansible_host_fails_when_no_ip_is_set() -> None:
    groups, hostvars, settings = cluster()
    hostvars["w1"] = {"ansible_host": "192.168.10.50"}
    hostvars["w2"] = {"ansible_host": "192.168.10.50"}
    msg = one_error(groups, hostvars, settings)
    assert "w1 (ansible_host)" in msg and "w2 (ansible_host)" in msg


def test_ip_wins_over_ansible_host() -> None:
    groups, hostvars, settings = cluster()
    # Same SSH address (a jump host / NAT), distinct cluster addresses: fine.
    for h in hostvars.values():
        h["ansible_host"] = "203.0.113.7"
    assert errors(groups, hostvars, settings) == []


def test_inventory_hostname_is_the_address_when_it_is_an_ip() -> None:
    groups, hostvars, settings = cluster()
    groups["kube_node"] = ["192.168.10.11", *groups["kube_node"]]
    groups["k8s_cluster"].append("192.168.10.11")
    hostvars["192.168.10.11"] = {}
    msg = one_error(groups, hostvars, settings)
    assert "cp1 (ip)" in msg and "192.168.10.11 (inventory_hostname)" in msg


def test_dns_names_in_ansible_host_are_no_address() -> None:
    groups, hostvars, settings = cluster()
    hostvars["w1"] = {"ansible_host": "w.example.com"}
    hostvars["w2"] = {"ansible_host": "w.example.com"}
    assert errors(groups, hostvars, settings) == []


def test_ip_that_is_not_an_address_fails() -> None:
    groups, hostvars, settings = cluster()
    hostvars["w1"]["ip"] = "10.0.0.300"
    assert one_error(groups, hostvars, settings) == "w1: ip '10.0.0.300' is not an IP address"


# Node names


def test_duplicate_node_names_by_case_fail() -> None:
    groups, hostvars, settings = cluster()
    groups["kube_node"].append("W1")
    groups["k8s_cluster"].append("W1")
    hostvars["W1"] = {"ip": "192.168.10.40"}
    msg = one_error(groups, hostvars, settings)
    assert "duplicate node name 'w1' for hosts W1, w1" in msg


def test_duplicate_node_names_by_override_fail() -> None:
    groups, hostvars, settings = cluster()
    hostvars["w2"]["kube_override_hostname"] = "W1"
    msg = one_error(groups, hostvars, settings)
    assert "duplicate node name 'w1' for hosts w1, w2" in msg
    assert "kube_override_hostname" in msg


@pytest.mark.parametrize("name", ["node_1", "-node", "node-", "a..b", "x" * 254])
def test_invalid_node_names_fail(name: str) -> None:
    groups, hostvars, settings = cluster()
    hostvars["w1"]["kube_override_hostname"] = name
    msg = one_error(groups, hostvars, settings)
    assert msg.startswith("w1: node name")
    assert "(from kube_override_hostname) is not a valid DNS-1123 subdomain" in msg


def test_invalid_inventory_hostname_fails_suggesting_the_override() -> None:
    groups, hostvars, settings = cluster()
    groups["kube_node"].append("bad_name")
    groups["k8s_cluster"].append("bad_name")
    hostvars["bad_name"] = {"ip": "192.168.10.41"}
    msg = one_error(groups, hostvars, settings)
    assert msg.startswith("bad_name: node name 'bad_name' (from inventory_hostname)")
    assert "set kube_override_hostname" in msg


@pytest.mark.parametrize("name", ["Node1.Example.COM", "n", "a-b.c-d", "x" * 63])
def test_valid_node_names_pass(name: str) -> None:
    groups, hostvars, settings = cluster()
    hostvars["w1"]["kube_override_hostname"] = name
    assert errors(groups, hostvars, settings) == []


# Networks


@pytest.mark.parametrize("var", ["kube_service_addresses", "kube_pods_subnet"])
@pytest.mark.parametrize("value", ["10.233.0.0/33", "not-a-cidr", "10.233.0.1/18", ""])
def test_invalid_cidr_fails(var: str, value: str) -> None:
    groups, hostvars, settings = cluster()
    settings[var] = value
    found = errors(groups, hostvars, settings)
    assert any(e.startswith(f"all hosts: {var} '{value}' is not a valid CIDR") for e in found), (
        found
    )


def test_overlapping_cidrs_fail() -> None:
    groups, hostvars, settings = cluster()
    settings["kube_pods_subnet"] = "10.233.0.0/16"
    assert setting_error(groups, hostvars, settings) == (
        "kube_service_addresses 10.233.0.0/18 overlaps kube_pods_subnet 10.233.0.0/16"
    )


def test_other_cidrs_pass() -> None:
    groups, hostvars, settings = cluster()
    settings["kube_service_addresses"] = "172.20.0.0/16"
    settings["kube_pods_subnet"] = "172.21.0.0/16"
    assert errors(groups, hostvars, settings) == []


@pytest.mark.parametrize("var", ["kube_service_addresses", "kube_pods_subnet"])
def test_cidr_containing_a_host_address_fails(var: str) -> None:
    groups, hostvars, settings = cluster()
    settings[var] = "192.168.10.0/24"
    found = errors(groups, hostvars, settings)
    assert f"cp1: address 192.168.10.11 (ip) lies inside {var} 192.168.10.0/24" in found
    assert len([e for e in found if "lies inside" in e]) == 5


def test_cidr_containing_the_load_balancer_address_fails() -> None:
    groups, hostvars, settings = cluster()
    settings["apiserver_ha_mode"] = "external"
    settings["loadbalancer_apiserver"] = {"address": "10.233.64.10", "port": 443}
    assert setting_error(groups, hostvars, settings) == (
        "loadbalancer_apiserver.address 10.233.64.10 lies inside kube_pods_subnet 10.233.64.0/18"
    )


@pytest.mark.parametrize("prefix", [18, 16, 33, "x"])
def test_node_prefix_not_longer_than_the_pod_subnet_fails(prefix: Any) -> None:
    groups, hostvars, settings = cluster()
    settings["kube_network_node_prefix"] = prefix
    assert setting_error(groups, hostvars, settings).startswith(
        f"kube_network_node_prefix {prefix!r} must be longer than kube_pods_subnet's /18"
    )


def test_pod_subnet_too_small_for_the_nodes_fails() -> None:
    groups, hostvars, settings = cluster()
    settings["kube_pods_subnet"] = "10.233.64.0/22"  # 4 node subnets of /24, 5 nodes
    msg = one_error(groups, hostvars, settings)
    assert "has room for 4 nodes, k8s_cluster has 5" in msg and "kube_network_node_prefix" in msg


def test_ipv6_cidrs_fail() -> None:
    groups, hostvars, settings = cluster()
    settings["kube_service_addresses"] = "fd00:10:96::/108"
    settings["kube_pods_subnet"] = "fd00:10:244::/56"
    settings["kube_network_node_prefix"] = 64
    assert errors(groups, hostvars, settings) == [
        f"all hosts: {var} {net} is IPv6: kubeforge runs IPv4 clusters; give an IPv4 network"
        for var, net in [("kube_service_addresses", "fd00:10:96::/108"),
                         ("kube_pods_subnet", "fd00:10:244::/56")]
    ]  # fmt: skip


# Versions and choices


@pytest.mark.parametrize("version", ["1.37.2", "v1.37.0", "1.36.9", "1.35.1", "v1.35.4"])
def test_any_patch_of_a_supported_minor_passes(version: str) -> None:
    groups, hostvars, settings = cluster()
    settings["kube_version"] = version
    assert errors(groups, hostvars, settings) == []


@pytest.mark.parametrize("version", ["1.34.5", "1.38.0", "2.37.2"])
def test_unsupported_minor_fails(version: str) -> None:
    groups, hostvars, settings = cluster()
    settings["kube_version"] = version
    msg = setting_error(groups, hostvars, settings)
    assert msg.startswith(f"kube_version {version} is not supported")
    assert "1.37, 1.36, 1.35 (kube_supported_versions)" in msg


@pytest.mark.parametrize("version", ["1.37", "latest", "1.37.2-rc.0", "V1.37.2", "1.37.2.1", ""])
def test_malformed_version_fails(version: str) -> None:
    groups, hostvars, settings = cluster()
    settings["kube_version"] = version
    assert setting_error(groups, hostvars, settings) == (
        f"kube_version {version!r} is not a release version (X.Y.Z or vX.Y.Z)"
    )


def test_malformed_supported_versions_fail() -> None:
    groups, hostvars, settings = cluster()
    settings["kube_supported_versions"] = ["1.37.2", "1.36"]
    assert setting_error(groups, hostvars, settings) == (
        "kube_supported_versions entry '1.36' is not X.Y.Z"
    )


@pytest.mark.parametrize("plugin", ["weave", "cilium", "Flannel", ""])
def test_unknown_network_plugin_fails(plugin: str) -> None:
    groups, hostvars, settings = cluster()
    settings["kube_network_plugin"] = plugin
    assert setting_error(groups, hostvars, settings) == (
        f"kube_network_plugin {plugin!r} is unknown; use one of: flannel, calico"
    )


@pytest.mark.parametrize("mode", ["keepalived", "localhost", ""])
def test_unknown_ha_mode_fails(mode: str) -> None:
    groups, hostvars, settings = cluster()
    settings["apiserver_ha_mode"] = mode
    assert setting_error(groups, hostvars, settings) == (
        f"apiserver_ha_mode {mode!r} is unknown; use one of: local_lb, vip, external"
    )


@pytest.mark.parametrize("lb_type", ["envoy", "Nginx"])
def test_unknown_load_balancer_type_fails(lb_type: str) -> None:
    groups, hostvars, settings = cluster()
    settings["loadbalancer_apiserver_type"] = lb_type
    assert setting_error(groups, hostvars, settings) == (
        f"loadbalancer_apiserver_type {lb_type!r} is unknown; use one of: nginx, haproxy"
    )


@pytest.mark.parametrize("lb_type", ["nginx", "haproxy"])
def test_known_load_balancer_types_pass(lb_type: str) -> None:
    groups, hostvars, settings = cluster()
    settings["loadbalancer_apiserver_type"] = lb_type
    assert errors(groups, hostvars, settings) == []


@pytest.mark.parametrize("mode", ["external", "vip"])
def test_external_and_vip_need_an_address(mode: str) -> None:
    groups, hostvars, settings = cluster()
    settings["apiserver_ha_mode"] = mode
    assert setting_error(groups, hostvars, settings).startswith(
        f"apiserver_ha_mode {mode} needs loadbalancer_apiserver.address"
    )


def test_external_with_a_dns_name_passes() -> None:
    groups, hostvars, settings = cluster()
    settings["apiserver_ha_mode"] = "external"
    settings["loadbalancer_apiserver"] = {"address": "api.example.com", "port": 443}
    assert errors(groups, hostvars, settings) == []


def test_vip_needs_an_ip_address() -> None:
    groups, hostvars, settings = cluster()
    settings["apiserver_ha_mode"] = "vip"
    settings["loadbalancer_apiserver"] = {"address": "api.example.com"}
    assert setting_error(groups, hostvars, settings) == (
        "loadbalancer_apiserver.address 'api.example.com' must be an IP address "
        "with apiserver_ha_mode vip"
    )
    settings["loadbalancer_apiserver"] = {"address": "192.168.10.100", "port": 8443}
    assert errors(groups, hostvars, settings) == []


def vip(groups_hostvars_settings: tuple[Groups, HostVars, dict[str, Any]], address: str) -> None:
    settings = groups_hostvars_settings[2]
    settings["apiserver_ha_mode"] = "vip"
    settings["loadbalancer_apiserver"] = {"address": address, "port": 8443}


def test_vip_that_is_a_hosts_address_fails_naming_the_host() -> None:
    inventory = cluster()
    vip(inventory, "192.168.10.12")
    assert one_error(*inventory) == (
        "cp2: its address 192.168.10.12 (ip) is loadbalancer_apiserver.address, the VIP: "
        "the VIP must be an address no host has"
    )
    # an external load balancer may well be a host (or run on one)
    inventory[2]["apiserver_ha_mode"] = "external"
    assert errors(*inventory) == []


def test_vip_must_be_ipv4() -> None:
    inventory = cluster()
    vip(inventory, "fd00::100")
    assert setting_error(*inventory) == (
        "loadbalancer_apiserver.address fd00::100 is IPv6: apiserver_ha_mode vip supports "
        "IPv4 VIPs only; use apiserver_ha_mode external with your own load balancer"
    )


@pytest.mark.parametrize("address", ["127.0.0.5", "224.0.0.18", "0.0.0.0"])
def test_vip_cannot_be_loopback_multicast_or_unspecified(address: str) -> None:
    inventory = cluster()
    vip(inventory, address)
    assert setting_error(*inventory) == (
        f"loadbalancer_apiserver.address {address} cannot be a VIP: "
        "use a free address of the control-plane hosts' subnet"
    )


@pytest.mark.parametrize("router_id", [0, 256, "x", "1.5", True])
def test_vrrp_router_id_out_of_range_fails(router_id: Any) -> None:
    inventory = cluster()
    vip(inventory, "192.168.10.100")
    inventory[2]["apiserver_vip_router_id"] = router_id
    assert setting_error(*inventory) == (
        f"apiserver_vip_router_id {router_id!r} is not a VRRP virtual router id (1-255)"
    )


@pytest.mark.parametrize("router_id", [1, 51, "255", None])
def test_vrrp_router_id_in_range_or_unset_passes(router_id: Any) -> None:
    inventory = cluster()
    vip(inventory, "192.168.10.100")
    inventory[2]["apiserver_vip_router_id"] = router_id
    assert errors(*inventory) == []


@pytest.mark.parametrize(("length", "ok"), [(0, False), (1, True), (8, True), ("9", False)])
def test_vrrp_password_has_one_to_eight_characters(length: Any, ok: bool) -> None:
    inventory = cluster()
    vip(inventory, "192.168.10.100")
    inventory[2]["apiserver_vip_auth_pass_length"] = length
    expected = (
        []
        if ok
        else [
            f"all hosts: apiserver_vip_auth_pass has {length} characters: "
            "VRRP passwords have 1 to 8"
        ]
    )
    assert errors(*inventory) == expected


def test_vrrp_settings_are_ignored_in_other_modes() -> None:
    groups, hostvars, settings = cluster()
    settings["apiserver_vip_router_id"] = 999
    settings["apiserver_vip_auth_pass_length"] = 20
    assert errors(groups, hostvars, settings) == []


def test_load_balancer_must_be_a_dict() -> None:
    groups, hostvars, settings = cluster()
    settings["loadbalancer_apiserver"] = "192.168.10.100"
    assert errors(groups, hostvars, settings) == [
        "all hosts: loadbalancer_apiserver must be a dict {address: ..., port: ...}"
    ]


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("kube_apiserver_port", 0),
        ("kube_apiserver_port", 70000),
        ("loadbalancer_apiserver_port", "http"),
        ("loadbalancer_apiserver_port", True),
    ],
)
def test_bad_ports_fail(var: str, value: Any) -> None:
    groups, hostvars, settings = cluster()
    settings[var] = value
    assert setting_error(groups, hostvars, settings) == (
        f"{var} {value!r} is not a TCP port (1-65535)"
    )


def test_bad_load_balancer_port_fails() -> None:
    groups, hostvars, settings = cluster()
    settings["apiserver_ha_mode"] = "external"
    settings["loadbalancer_apiserver"] = {"address": "lb.example.com", "port": "x"}
    assert setting_error(groups, hostvars, settings) == (
        "loadbalancer_apiserver.port 'x' is not a TCP port (1-65535)"
    )


def test_port_strings_from_templating_pass() -> None:
    groups, hostvars, settings = cluster()
    settings["kube_apiserver_port"] = "6443"
    assert errors(groups, hostvars, settings) == []


def test_every_problem_is_reported_at_once() -> None:
    groups, hostvars, settings = cluster()
    groups["etcd"] = ["cp1", "cp2"]
    hostvars["w2"]["ip"] = hostvars["w1"]["ip"]
    settings["kube_version"] = "1.20.0"
    settings["kube_network_plugin"] = "weave"
    settings["apiserver_ha_mode"] = "nope"
    found = errors(groups, hostvars, settings)
    assert len(found) == 5, found


def test_preflight_hands_every_setting_to_the_checks() -> None:
    preflight = yaml.safe_load((REPO / "roles/preflight/defaults/main.yml").read_text())
    handed = set(preflight["preflight_inventory_settings"])
    assert handed == set(inv.ALL_SETTINGS)


# Variables of roles/kubeforge_defaults that the inventory checks are not
# handed, and why: every other one is validated.
NOT_HANDED = {
    **dict.fromkeys(
        ("bin_dir", "kube_config_dir", "kube_cert_dir", "etcd_cert_dir", "kube_manifest_dir"),
        "checked per host by the task 'Preflight | Check the directories kubeforge writes to'",
    ),
    **dict.fromkeys(("node_labels", "node_taints"), "read per host from hostvars"),
    **dict.fromkeys(
        ("kube_node_name", "kube_node_address"),
        "derived per host from kube_override_hostname, ip and ansible_host, which are checked",
    ),
    **dict.fromkeys(
        (
            "kubeforge_control_plane_hosts",
            "kubeforge_etcd_hosts",
            "kubeforge_first_control_plane",
            "kubeforge_first_etcd",
            "kubeforge_etcd_client_urls",
            "kube_apiserver_endpoint",
            "etcdctl_env",
            "proxy_env",
            "kube_apiserver_service_ip",
        ),
        "derived from checked settings (the inventory's groups, ports, paths, the proxy, "
        "kube_apiserver_ip)",
    ),
}


def test_every_user_facing_variable_is_validated() -> None:
    defaults: set[str] = set()
    for path in DEFAULTS.glob("*.yml"):
        defaults |= set(yaml.safe_load(path.read_text()) or {})
    spec = yaml.safe_load((REPO / "roles/kubeforge_defaults/meta/argument_specs.yml").read_text())
    preflight = yaml.safe_load((REPO / "roles/preflight/defaults/main.yml").read_text())
    handed = {*preflight["preflight_inventory_settings"], *preflight["preflight_host_settings"]}
    variables = defaults | set(spec["argument_specs"]["main"]["options"])
    unchecked = sorted(variables - handed - set(NOT_HANDED))
    assert not unchecked, (
        "variables of roles/kubeforge_defaults no preflight check reads: add a check "
        "(plugins/filter/kubeforge_inventory.py) and hand them over in "
        "roles/preflight/defaults/main.yml, or list them in NOT_HANDED with the reason: "
        f"{unchecked}"
    )
    assert not set(NOT_HANDED) - variables, "NOT_HANDED lists variables that are gone"


# Durations


@pytest.mark.parametrize("var", inv.DURATION_SETTINGS)
@pytest.mark.parametrize("value", ["10s", "1m0s", "1h30m", "0", "500ms", "1.5s"])
def test_go_durations_pass(var: str, value: str) -> None:
    groups, hostvars, settings = cluster()
    settings[var] = value
    assert errors(groups, hostvars, settings) == []


@pytest.mark.parametrize("var", inv.DURATION_SETTINGS)
@pytest.mark.parametrize(
    "value", ["10", "5 s", "5 seconds", "-5s", "s", "", None, 10, "1d", " 40s"]
)
def test_malformed_durations_fail_naming_the_variable(var: str, value: Any) -> None:
    groups, hostvars, settings = cluster()
    settings[var] = value
    msg = setting_error(groups, hostvars, settings)
    assert msg.startswith(f"{var} {value!r} is not a duration"), msg
    assert "5s, 40s, 1m0s" in msg
