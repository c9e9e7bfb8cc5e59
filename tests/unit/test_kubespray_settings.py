"""kubespray settings honoured under their names (issue 12): the HTTP proxy,
kubespray's plural network names and kube_apiserver_ip, dns_mode,
upstream_dns_servers and flannel_interface(_regexp), as Ansible renders the
roles' variables and templates for one host. Without them every file stays as
it was (an existing cluster sees changed=0)."""

from __future__ import annotations

import functools
import json
from typing import Any

from ansible_render import render, role_var_files, template

ROLE_VAR_FILES = role_var_files(
    "certificates", "control_plane", "node", "container_runtime", "addons", "network_plugin"
)


# Name -> Jinja expression rendered on the host.
RENDERED = {
    **{
        name: name
        for name in (
            "no_proxy", "proxy_env", "container_runtime_proxy", "node_kubelet_proxy",
            "addons_coredns_upstream_dns", "kube_apiserver_ip", "kube_apiserver_service_ip",
            "skydns_server", "calico_pool_cidr", "certificates_apiserver_sans",
        )
    },
    "addons_on": "addons_units | selectattr('enabled') | map(attribute='name') | list",
    "apiserver_args": "control_plane_components[0].args",
    "controller_manager_args": "control_plane_components[1].args",
    "kubelet_config": template("node/templates/kubelet-config.yaml.j2") + " | from_yaml",
    "kube_proxy_config": template("node/templates/kube-proxy-config.yaml.j2") + " | from_yaml",
    "flannel": template("network_plugin/templates/flannel.yaml.j2") + " | from_yaml_all | list",
}  # fmt: skip

# A kubespray inventory's settings: its sample's Jinja for kube_apiserver_ip and
# skydns_server, the plural network names instead of kubeforge's, a proxy.
KUBESPRAY: dict[str, Any] = {
    "kube_service_subnets": "10.96.0.0/16",
    "kube_pods_subnets": "10.244.0.0/16",
    "kube_apiserver_ip": (
        "{{ kube_service_subnets.split(',') | first | ansible.utils.ipaddr('net')"
        " | ansible.utils.ipaddr(1) | ansible.utils.ipaddr('address') }}"
    ),
    "skydns_server": (
        "{{ kube_service_subnets.split(',') | first | ansible.utils.ipaddr('net')"
        " | ansible.utils.ipaddr(3) | ansible.utils.ipaddr('address') }}"
    ),
    "http_proxy": "http://proxy.example.com:3128",
    "https_proxy": "http://proxy.example.com:3128",
    "additional_no_proxy": "mirror.example.com,192.0.2.200",
    "dns_mode": "none",
    "upstream_dns_servers": ["192.0.2.53", "192.0.2.54"],
    "flannel_interface": "eth1",
    "flannel_interface_regexp": "10\\\\.0\\\\.[0-2]\\\\.\\\\d{1,3}",
}


@functools.cache
def rendered(layout: str) -> dict[str, Any]:
    """RENDERED for node1 (control plane, etcd, worker) of a two-host inventory,
    with KUBESPRAY's settings in group_vars when layout is "kubespray"."""
    return render(
        hosts={
            "node1": {"ip": "192.0.2.11", "access_ip": "198.51.100.11"},
            "node2": {"ansible_host": "192.0.2.12"},
        },
        groups={
            "kube_control_plane": ["node1"],
            "etcd": ["node1"],
            "kube_node": ["node1", "node2"],
        },
        settings=KUBESPRAY if layout == "kubespray" else {},
        expressions=RENDERED,
        var_files=ROLE_VAR_FILES,
    )


def flannel_args(docs: list[Any]) -> list[str]:
    (daemonset,) = [d for d in docs if d and d["kind"] == "DaemonSet"]
    args: list[str] = daemonset["spec"]["template"]["spec"]["containers"][0]["args"]
    return args


def flannel_network(docs: list[Any]) -> str:
    (config,) = [d for d in docs if d and d["kind"] == "ConfigMap"]
    network: str = json.loads(config["data"]["net-conf.json"])["Network"]
    return network


def test_defaults_render_as_before() -> None:
    r = rendered("defaults")
    assert r["no_proxy"] == "" and r["proxy_env"] == {}
    assert r["container_runtime_proxy"] == "" and r["node_kubelet_proxy"] == "", "no drop-ins"
    assert r["addons_coredns_upstream_dns"] == ["/etc/resolv.conf"]
    assert r["addons_on"][:2] == ["coredns", "dns-autoscaler"]
    assert r["kube_apiserver_ip"] == r["kube_apiserver_service_ip"] == "10.233.0.1"
    assert r["skydns_server"] == "10.233.0.3"
    assert r["kubelet_config"]["clusterDNS"] == ["10.233.0.3"]
    assert r["apiserver_args"]["service-cluster-ip-range"] == "10.233.0.0/18"
    assert r["controller_manager_args"]["cluster-cidr"] == "10.233.64.0/18"
    assert r["controller_manager_args"]["service-cluster-ip-range"] == "10.233.0.0/18"
    assert r["kube_proxy_config"]["clusterCIDR"] == "10.233.64.0/18"
    assert r["calico_pool_cidr"] == "10.233.64.0/18"
    assert "IP:10.233.0.1" in r["certificates_apiserver_sans"]
    assert flannel_network(r["flannel"]) == "10.233.64.0/18"
    assert flannel_args(r["flannel"]) == ["--ip-masq", "--kube-subnet-mgr"]


def test_plural_network_names_reach_every_component() -> None:
    r = rendered("kubespray")
    assert r["kube_apiserver_ip"] == r["kube_apiserver_service_ip"] == "10.96.0.1"
    assert r["skydns_server"] == "10.96.0.3"
    assert r["apiserver_args"]["service-cluster-ip-range"] == "10.96.0.0/16"
    assert r["controller_manager_args"]["service-cluster-ip-range"] == "10.96.0.0/16"
    assert r["controller_manager_args"]["cluster-cidr"] == "10.244.0.0/16"
    assert r["kube_proxy_config"]["clusterCIDR"] == "10.244.0.0/16"
    assert r["calico_pool_cidr"] == "10.244.0.0/16"
    assert flannel_network(r["flannel"]) == "10.244.0.0/16"
    assert "IP:10.96.0.1" in r["certificates_apiserver_sans"]
    assert "IP:10.233.0.1" not in r["certificates_apiserver_sans"]


def test_proxy_reaches_containerd_and_the_kubelet() -> None:
    r = rendered("kubespray")
    entries = r["no_proxy"].split(",")
    for expected in [
        "198.51.100.11", "192.0.2.11", "node1", "node1.cluster.local", "192.0.2.12", "node2",
        "mirror.example.com", "192.0.2.200", "127.0.0.1", "localhost", "10.96.0.0/16",
        "10.244.0.0/16", "svc", "svc.cluster.local",
    ]:  # fmt: skip
        assert expected in entries, expected
    assert (
        r["proxy_env"]["HTTPS_PROXY"] == r["proxy_env"]["https_proxy"] == KUBESPRAY["https_proxy"]
    )
    assert r["container_runtime_proxy"] == r["node_kubelet_proxy"]
    assert r["container_runtime_proxy"].splitlines()[1:] == [
        "[Service]",
        f'Environment="HTTP_PROXY={KUBESPRAY["http_proxy"]}"',
        f'Environment="HTTPS_PROXY={KUBESPRAY["https_proxy"]}"',
        f'Environment="NO_PROXY={r["no_proxy"]}"',
    ]


def test_dns_mode_none_and_upstream_servers() -> None:
    r = rendered("kubespray")
    assert "coredns" not in r["addons_on"] and "dns-autoscaler" not in r["addons_on"]
    assert r["kubelet_config"]["clusterDNS"] == []
    assert r["addons_coredns_upstream_dns"] == ["192.0.2.53", "192.0.2.54"]


def test_flannel_interface() -> None:
    args = flannel_args(rendered("kubespray")["flannel"])
    assert args[2:] == ["--iface=eth1", "--iface-regex=10\\.0\\.[0-2]\\.\\d{1,3}"]
