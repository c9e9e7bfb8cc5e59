"""Component settings under kubespray's names (feature gates, log level, NodePort
range and addresses, strictARP, OIDC, the load balancer's name and mode) and
kubespray's host variables ip, access_ip and etcd_member_name: the filters of
plugins/filter/kubeforge_components.py and kubeforge_pki.py, and the roles'
values and templates as Ansible renders them. With the defaults, what existing
clusters run stays as it was (only kube_log_level's --v/verbosity is new)."""

from __future__ import annotations

import functools
from typing import Any

import kubeforge_components as comp
import kubeforge_pki as pki
import pytest
from ansible_render import render, template
from kubeforge_remove import kubeforge_removal_errors

# The filters -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (["PodLevelResources=true", "Foo=False"], {"PodLevelResources": True, "Foo": False}),
        ("A=true, B=false", {"A": True, "B": False}),
        ({"A": True, "B": "false"}, {"A": True, "B": False}),
        (["A=true", "A=false"], {"A": False}),
        ([" ", ""], {}),
        ([], {}),
        (None, {}),
    ],
)
def test_feature_gates_read_kubespray_strings(value: Any, expected: dict[str, bool]) -> None:
    assert comp.kubeforge_feature_gates(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [(["PodLevelResources"], "Name=true or Name=false"), (["=true"], "Name=true"),
     (["A=yes"], "feature gate A=yes: the value must be true or false")],
)  # fmt: skip
def test_bad_feature_gates_are_named(value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        comp.kubeforge_feature_gates(value)


def test_feature_gates_flag() -> None:
    assert comp.kubeforge_feature_gates_flag(["B=True", "A=false"]) == "B=true,A=false"
    assert comp.kubeforge_feature_gates_flag([]) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("[]", []),
        ("", []),
        (None, []),
        ("[10.0.0.0/8]", ["10.0.0.0/8"]),
        ("[10.0.0.0/8, 192.0.2.0/24]", ["10.0.0.0/8", "192.0.2.0/24"]),
        ("10.0.0.0/8,192.0.2.0/24", ["10.0.0.0/8", "192.0.2.0/24"]),
        (["10.0.0.0/8", "primary"], ["10.0.0.0/8", "primary"]),
    ],
)
def test_cidr_list_reads_lists_and_kubesprays_text_form(value: Any, expected: list[str]) -> None:
    assert comp.kubeforge_cidr_list(value) == expected


def test_cidr_list_refuses_other_types() -> None:
    with pytest.raises(ValueError, match="not a list of CIDRs"):
        comp.kubeforge_cidr_list({"a": 1})


HOSTVARS: dict[str, dict[str, Any]] = {
    "cp1": {"ip": "10.0.0.1", "access_ip": "192.0.2.1", "etcd_member_name": "etcd1"},
    "cp2": {"ansible_host": "10.0.0.2", "access_ip": " ", "etcd_member_name": ""},
    "Cp3": {"ip": "10.0.0.3", "kube_override_hostname": "Master-3"},
}


def test_access_address_is_access_ip_else_the_address() -> None:
    assert pki.kubeforge_access_address("cp1", HOSTVARS) == "192.0.2.1"
    assert pki.kubeforge_access_address("cp2", HOSTVARS) == "10.0.0.2"
    assert pki.kubeforge_access_address("Cp3", HOSTVARS) == "10.0.0.3"
    # Binds keep using ip.
    assert pki.kubeforge_address("cp1", HOSTVARS) == "10.0.0.1"


def test_etcd_member_name_is_the_hosts_else_the_node_name() -> None:
    assert pki.kubeforge_etcd_member_name("cp1", HOSTVARS) == "etcd1"
    assert pki.kubeforge_etcd_member_name("cp2", HOSTVARS) == "cp2"
    assert pki.kubeforge_etcd_member_name("Cp3", HOSTVARS) == "master-3"


def test_removal_matches_etcd_members_by_their_member_names() -> None:
    groups = {
        "all": ["cp1", "cp2", "cp3", "w1"],
        "kube_control_plane": ["cp1", "cp2", "cp3"],
        "etcd": ["cp1", "cp2", "cp3"],
        "kube_node": ["w1"],
    }
    names = {"cp1": "etcd1", "cp2": "etcd2", "cp3": "etcd3", "w1": "w1"}
    members = [
        {"ID": i, "name": f"etcd{i}", "clientURLs": [f"https://10.0.0.{i}:2379"]} for i in (1, 2, 3)
    ]
    # etcd2 does not answer: removing cp1 (etcd1) would leave one healthy of two.
    healthy = ["https://10.0.0.1:2379", "https://10.0.0.3:2379"]
    (error,) = kubeforge_removal_errors(["cp1"], groups, names, members, healthy)
    assert "etcd would keep 2 member(s) of which only 1 answer (unhealthy: etcd2)" in error
    assert kubeforge_removal_errors(["cp2"], groups, names, members, healthy) == []


# The roles' values, rendered by Ansible -----------------------------------------

ROLE_VAR_FILES = [
    "roles/control_plane/defaults/main.yml",
    "roles/node/defaults/main.yml",
    "roles/node/vars/main.yml",
    "roles/etcd/defaults/main.yml",
    "roles/certificates/defaults/main.yml",
    "roles/apiserver_vip/defaults/main.yml",
    "roles/apiserver_vip/vars/main.yml",
    "roles/remove_node/vars/main.yml",
]


def unit(index: int) -> str:
    return template(
        "control_plane/templates/component.service.j2",
        f"{{'item': control_plane_components[{index}]}}",
    )


RENDERED = {
    **{
        name: name
        for name in (
            "apiserver_ha_mode", "apiserver_loadbalancer_domain_name", "kube_apiserver_endpoint",
            "kubeforge_etcd_client_urls", "etcd_settings", "etcd_initial_cluster", "etcd_name",
            "node_apiservers", "apiserver_vip_backends", "certificates_apiserver_sans",
            "remove_node_etcd_names", "control_plane_services",
        )
    },
    "args": "control_plane_components | map(attribute='args') | list",
    "apiserver_unit": unit(0),
    "controller_manager_unit": unit(1),
    "scheduler_unit": unit(2),
    "kubelet_config": template("node/templates/kubelet-config.yaml.j2") + " | from_yaml",
    "kube_proxy_config": template("node/templates/kube-proxy-config.yaml.j2") + " | from_yaml",
}  # fmt: skip

# A kubespray-style inventory: NAT addresses in access_ip, etcd1.. member names,
# the sample's Jinja for kube_proxy_nodeport_addresses, an external load balancer
# by name.
KUBESPRAY_HOSTS = {
    "node1": {"ip": "10.0.0.1", "access_ip": "192.0.2.1", "etcd_member_name": "etcd1"},
    "node2": {"ip": "10.0.0.2", "access_ip": "192.0.2.2", "etcd_member_name": "etcd2"},
    "node3": {"ip": "10.0.0.3", "etcd_member_name": ""},
}
KUBESPRAY_VARS = {
    "kube_feature_gates": ["PodLevelResources=true", "InPlacePodVerticalScaling=False"],
    "kube_scheduler_feature_gates": ["SchedulerQueueingHints=true"],
    "kube_log_level": 3,
    "kube_apiserver_node_port_range": "30000-32000",
    "kube_proxy_strict_arp": True,
    "kube_proxy_nodeport_addresses_cidr": "10.0.0.0/8",
    "kube_proxy_nodeport_addresses": (
        "{%- if kube_proxy_nodeport_addresses_cidr is defined -%}"
        "[{{ kube_proxy_nodeport_addresses_cidr }}]{%- else -%}[]{%- endif -%}"
    ),
    "kube_oidc_auth": True,
    "kube_oidc_url": "https://dex.example.com",
    "kube_oidc_client_id": "kubernetes",
    "kube_oidc_groups_claim": "groups",
    "kube_oidc_groups_prefix": "oidc:",
    "kube_oidc_ca_cert": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==",
    "loadbalancer_apiserver": {"address": "192.0.2.100", "port": 8383},
    "apiserver_loadbalancer_domain_name": "lb-apiserver.example.com",
}


@functools.cache
def rendered(layout: str) -> dict[str, Any]:
    """RENDERED for node1 (in kube_control_plane, etcd and kube_node with node2;
    node3 a worker) with the defaults or the kubespray-style settings."""
    kubespray = layout == "kubespray"
    return render(
        hosts={name: hv if kubespray else {"ip": hv["ip"]} for name, hv in KUBESPRAY_HOSTS.items()},
        groups={
            "kube_control_plane": ["node1", "node2"],
            "etcd": ["node1", "node2"],
            "kube_node": ["node1", "node2", "node3"],
        },
        settings=KUBESPRAY_VARS if kubespray else {},
        expressions=RENDERED,
        var_files=ROLE_VAR_FILES,
    )


def flags(unit_text: str) -> list[str]:
    return [line.strip(" \\") for line in unit_text.splitlines() if line.startswith("  --")]


def test_defaults_keep_what_clusters_run() -> None:
    r = rendered("defaults")
    apiserver, controller_manager, scheduler = r["args"]
    assert r["apiserver_ha_mode"] == "local_lb"
    assert r["kube_apiserver_endpoint"].strip() == "https://127.0.0.1:6443"
    for unit_name in ("apiserver_unit", "controller_manager_unit", "scheduler_unit"):
        assert not [f for f in flags(r[unit_name]) if f.startswith(("--feature-gates", "--oidc"))]
    # New flags: the log level everywhere, the apiserver's own default NodePort range.
    assert "--v=2" in flags(r["apiserver_unit"]) and "--v=2" in flags(r["scheduler_unit"])
    assert "--service-node-port-range=30000-32767" in flags(r["apiserver_unit"])
    assert controller_manager["v"] == scheduler["v"] == apiserver["v"] == 2
    kubelet, proxy = r["kubelet_config"], r["kube_proxy_config"]
    assert "featureGates" not in kubelet and "featureGates" not in proxy
    assert "ipvs" not in proxy and "nodePortAddresses" not in proxy
    assert kubelet["logging"] == proxy["logging"] == {"verbosity": 2}
    # Addresses: access_ip unset, everything on ip as before.
    assert r["kubeforge_etcd_client_urls"] == "https://10.0.0.1:2379,https://10.0.0.2:2379"
    assert r["etcd_initial_cluster"] == "node1=https://10.0.0.1:2380,node2=https://10.0.0.2:2380"
    etcd = r["etcd_settings"]
    assert etcd["name"] == "node1"
    assert (
        etcd["listen-peer-urls"] == etcd["initial-advertise-peer-urls"] == "https://10.0.0.1:2380"
    )
    assert etcd["listen-client-urls"] == "https://10.0.0.1:2379,https://127.0.0.1:2379"
    assert r["node_apiservers"] == ["10.0.0.1:6443", "10.0.0.2:6443"]
    # The load balancer's default name (localhost) adds no SAN: no certificate is re-issued.
    assert r["apiserver_loadbalancer_domain_name"].strip() == "localhost"
    assert r["certificates_apiserver_sans"][-3:] == [
        "IP:10.233.0.1", "IP:127.0.0.1", "DNS:localhost"
    ]  # fmt: skip


def test_kubespray_inventory_components() -> None:
    r = rendered("kubespray")
    apiserver, controller_manager, scheduler = r["args"]
    gates = "PodLevelResources=true,InPlacePodVerticalScaling=false"
    assert f"--feature-gates={gates}" in flags(r["apiserver_unit"])
    assert f"--feature-gates={gates}" in flags(r["controller_manager_unit"])
    # kube_scheduler_feature_gates replaces the common list (kubespray's meaning).
    assert "--feature-gates=SchedulerQueueingHints=true" in flags(r["scheduler_unit"])
    assert "--v=3" in flags(r["controller_manager_unit"])
    assert apiserver["v"] == controller_manager["v"] == scheduler["v"] == 3
    assert "--service-node-port-range=30000-32000" in flags(r["apiserver_unit"])
    kubelet, proxy = r["kubelet_config"], r["kube_proxy_config"]
    expected = {"PodLevelResources": True, "InPlacePodVerticalScaling": False}
    assert kubelet["featureGates"] == proxy["featureGates"] == expected
    assert kubelet["logging"] == proxy["logging"] == {"verbosity": 3}
    assert proxy["ipvs"] == {"strictARP": True}
    assert proxy["nodePortAddresses"] == ["10.0.0.0/8"]


def test_kubespray_inventory_oidc() -> None:
    r = rendered("kubespray")
    oidc = [f for f in flags(r["apiserver_unit"]) if f.startswith("--oidc")]
    assert oidc == [
        "--oidc-ca-file=/etc/kubernetes/pki/oidc-ca.crt",
        "--oidc-client-id=kubernetes",
        "--oidc-groups-claim=groups",
        "--oidc-groups-prefix=oidc:",
        "--oidc-issuer-url=https://dex.example.com",
    ]
    apiserver = next(s for s in r["control_plane_services"] if s["name"] == "kube-apiserver")
    assert apiserver["watch"].count("/etc/kubernetes/pki/oidc-ca.crt") == 1


def test_kubespray_inventory_load_balancer() -> None:
    r = rendered("kubespray")
    # loadbalancer_apiserver with an address and no apiserver_ha_mode: external.
    assert r["apiserver_ha_mode"].strip() == "external"
    assert r["kube_apiserver_endpoint"].strip() == "https://lb-apiserver.example.com:8383"
    sans = r["certificates_apiserver_sans"]
    assert sans[-2:] == ["DNS:lb-apiserver.example.com", "IP:192.0.2.100"]


def test_kubespray_inventory_addresses_and_member_names() -> None:
    r = rendered("kubespray")
    # Others connect to access_ip; the member binds to ip.
    assert r["kubeforge_etcd_client_urls"] == "https://192.0.2.1:2379,https://192.0.2.2:2379"
    assert r["etcd_initial_cluster"] == "etcd1=https://192.0.2.1:2380,etcd2=https://192.0.2.2:2380"
    etcd = r["etcd_settings"]
    assert etcd["name"] == r["etcd_name"] == "etcd1"
    assert etcd["listen-peer-urls"] == "https://10.0.0.1:2380"
    assert etcd["initial-advertise-peer-urls"] == "https://192.0.2.1:2380"
    assert etcd["listen-client-urls"] == "https://10.0.0.1:2379,https://127.0.0.1:2379"
    assert etcd["advertise-client-urls"] == "https://192.0.2.1:2379"
    assert r["node_apiservers"] == ["192.0.2.1:6443", "192.0.2.2:6443"]
    vip_backends = [b["address"] for b in r["apiserver_vip_backends"]]
    assert vip_backends == ["192.0.2.1:6443", "192.0.2.2:6443"]
    # node3 leaves etcd_member_name empty: its node name.
    assert r["remove_node_etcd_names"] == {"node1": "etcd1", "node2": "etcd2", "node3": "node3"}
    assert {"IP:10.0.0.1", "IP:192.0.2.1", "IP:192.0.2.2"} <= set(r["certificates_apiserver_sans"])
    # The apiserver itself stays on ip.
    apiserver = r["args"][0]
    assert apiserver["advertise-address"] == apiserver["bind-address"] == "10.0.0.1"
