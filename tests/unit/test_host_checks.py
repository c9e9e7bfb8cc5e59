"""Host-level preflight checks (plugins/filter/kubeforge_host.py) on facts and
probe output as Ansible and `ss -Hltnp` report them. Swap is only covered
here and by the lab test that makes a host report swap (see
tests/integration/test_preflight.py)."""

from __future__ import annotations

from typing import Any

import kubeforge_host as hc
import pytest

FREE = """\
cgroup_fs cgroup2fs
LISTEN 0      128          0.0.0.0:22        0.0.0.0:*    users:(("sshd",pid=50,fd=3))
LISTEN 0      4096      127.0.0.11:35401     0.0.0.0:*
LISTEN 0      128             [::]:22           [::]:*    users:(("sshd",pid=50,fd=4))
"""

# A deployed control-plane + etcd + worker host: every port held by its own component.
DEPLOYED = """\
cgroup_fs cgroup2fs
LISTEN 0 4096 127.0.0.1:2381 0.0.0.0:* users:(("etcd",pid=700,fd=9))
LISTEN 0 4096 10.0.0.11:2379 0.0.0.0:* users:(("etcd",pid=700,fd=8))
LISTEN 0 4096 127.0.0.1:2379 0.0.0.0:* users:(("etcd",pid=700,fd=7))
LISTEN 0 4096 10.0.0.11:2380 0.0.0.0:* users:(("etcd",pid=700,fd=6))
LISTEN 0 4096 *:6443 *:* users:(("kube-apiserver",pid=800,fd=3))
LISTEN 0 4096 *:10257 *:* users:(("kube-controller",pid=801,fd=3))
LISTEN 0 4096 *:10259 *:* users:(("kube-scheduler",pid=802,fd=3))
LISTEN 0 4096 *:10250 *:* users:(("kubelet",pid=900,fd=20))
LISTEN 0 4096 127.0.0.1:10248 0.0.0.0:* users:(("kubelet",pid=900,fd=21))
LISTEN 0 4096 *:10256 *:* users:(("kube-proxy",pid=901,fd=9))
"""

ALL_GROUPS = ["etcd", "kube_control_plane", "kube_node", "k8s_cluster"]
WORKER = ["kube_node", "k8s_cluster"]


def facts(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "distribution": "Debian",
        "distribution_version": "12.15",
        "distribution_major_version": "12",
        "architecture": "x86_64",
        "service_mgr": "systemd",
        "memtotal_mb": 4096,
        "swaptotal_mb": 0,
        "all_ipv4_addresses": ["10.0.0.11"],
        "all_ipv6_addresses": ["fe80::1%eth0"],
        "default_ipv4": {"network": "10.0.0.0", "netmask": "255.255.255.0", "interface": "eth0"},
        "interfaces": ["lo", "eth0"],
        "lo": {"device": "lo", "ipv4": {"address": "127.0.0.1", "netmask": "255.0.0.0"}},
        "eth0": {
            "device": "eth0",
            "ipv4": {"address": "10.0.0.11", "netmask": "255.255.255.0", "network": "10.0.0.0"},
            "ipv6": [{"address": "fe80::1", "prefix": "64", "scope": "link"}],
        },
    }
    base.update(over)
    return base


def settings(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "ip": "10.0.0.11",
        "kubelet_fail_swap_on": True,
        "kubelet_fail_cgroup_v1": True,
        "preflight_min_memory_mb_control_plane": 1500,
        "preflight_min_memory_mb_node": 1000,
        "preflight_supported_os": ["Debian 12"],
        "kube_apiserver_port": 6443,
        "etcd_client_port": 2379,
        "etcd_peer_port": 2380,
        "apiserver_ha_mode": "local_lb",
        "loadbalancer_apiserver_port": 6443,
        "loadbalancer_apiserver": {},
        "loadbalancer_apiserver_default_port": 6443,
        "address": "10.0.0.11",
        "apiserver_vip_interface": "",
        "kube_service_addresses": "10.233.0.0/18",
        "kube_pods_subnet": "10.233.64.0/18",
    }
    base.update(over)
    return base


def errors(
    groups: list[str] | None = None,
    probe: str = FREE,
    host_facts: dict[str, Any] | None = None,
    **over: Any,
) -> list[str]:
    return hc.kubeforge_host_errors(
        "node1",
        ALL_GROUPS if groups is None else groups,
        host_facts or facts(),
        probe,
        settings(**over),
    )


def test_a_fresh_debian_12_host_passes() -> None:
    assert errors() == []
    assert errors(WORKER) == []


def test_filter_is_registered() -> None:
    assert hc.FilterModule().filters() == {
        "kubeforge_host_errors": hc.kubeforge_host_errors,
        "kubeforge_host_interface": hc.kubeforge_host_interface,
    }


def test_hosts_outside_kubeforge_groups_are_not_checked() -> None:
    assert errors(["bastion"], host_facts=facts(distribution="CentOS", memtotal_mb=1)) == []


# Swap


def test_swap_on_fails_naming_kubelet_fail_swap_on() -> None:
    assert errors(host_facts=facts(swaptotal_mb=2048)) == [
        "node1: swap is on (2048 MiB) while kubelet_fail_swap_on is true: turn it off "
        "(swapoff -a, and remove it from /etc/fstab) or set kubelet_fail_swap_on: false"
    ]


@pytest.mark.parametrize("flag", [False, "false", "no"])
def test_swap_on_passes_when_allowed(flag: Any) -> None:
    assert errors(host_facts=facts(swaptotal_mb=2048), kubelet_fail_swap_on=flag) == []


def test_swap_on_an_etcd_only_host_passes() -> None:
    assert errors(["etcd"], host_facts=facts(swaptotal_mb=2048)) == []


# Memory


def test_control_plane_below_its_minimum_fails() -> None:
    assert errors(host_facts=facts(memtotal_mb=1400)) == [
        "node1: 1400 MiB of memory is below preflight_min_memory_mb_control_plane (1500 MiB)"
    ]


def test_worker_is_held_to_the_node_minimum() -> None:
    assert errors(WORKER, host_facts=facts(memtotal_mb=1400)) == []
    assert errors(WORKER, host_facts=facts(memtotal_mb=900)) == [
        "node1: 900 MiB of memory is below preflight_min_memory_mb_node (1000 MiB)"
    ]


def test_etcd_only_host_is_held_to_the_node_minimum() -> None:
    assert errors(["etcd"], host_facts=facts(memtotal_mb=900)) == [
        "node1: 900 MiB of memory is below preflight_min_memory_mb_node (1000 MiB)"
    ]


# OS


@pytest.mark.parametrize(
    ("dist", "version", "major"),
    [("Debian", "11.9", "11"), ("Debian", "13.1", "13"), ("Ubuntu", "24.04", "24")],
)
def test_unsupported_os_fails(dist: str, version: str, major: str) -> None:
    f = facts(distribution=dist, distribution_version=version, distribution_major_version=major)
    assert errors(host_facts=f) == [
        f"node1: {dist} {version} is not a supported OS (preflight_supported_os: Debian 12)"
    ]


def test_os_accepted_by_version_or_major() -> None:
    f = facts(distribution="Ubuntu", distribution_version="24.04", distribution_major_version="24")
    assert errors(host_facts=f, preflight_supported_os=["Debian 12", "Ubuntu 24.04"]) == []


def test_unsupported_architecture_and_init_fail() -> None:
    assert errors(host_facts=facts(architecture="ppc64le", service_mgr="sysvinit")) == [
        "node1: architecture ppc64le is not supported (x86_64, aarch64)",
        "node1: init is sysvinit, kubeforge needs systemd",
    ]


# cgroup


def test_cgroup_v1_fails_naming_kubelet_fail_cgroup_v1() -> None:
    found = errors(probe=FREE.replace("cgroup2fs", "tmpfs"))
    assert found == [
        "node1: cgroup v1 (/sys/fs/cgroup is tmpfs) while kubelet_fail_cgroup_v1 is true: boot "
        "with cgroup v2 (systemd.unified_cgroup_hierarchy=1) or set kubelet_fail_cgroup_v1: false"
    ]


def test_cgroup_v1_passes_when_allowed() -> None:
    assert errors(probe=FREE.replace("cgroup2fs", "tmpfs"), kubelet_fail_cgroup_v1=False) == []


# Addresses


def test_ip_that_is_not_on_the_host_fails() -> None:
    assert errors(ip="10.0.0.99") == [
        "node1: ip 10.0.0.99 is not an address of this host (it has: 10.0.0.11, fe80::1%eth0)"
    ]


def test_ip_unset_is_not_checked() -> None:
    assert errors(ip=None) == []


@pytest.mark.parametrize("var", ["kube_service_addresses", "kube_pods_subnet"])
def test_cidr_overlapping_the_host_network_fails(var: str) -> None:
    kw: dict[str, Any] = {var: "10.0.0.0/16"}
    assert errors(**kw) == [
        f"node1: {var} 10.0.0.0/16 overlaps the host's network 10.0.0.0/24 (eth0)"
    ]


# Ports


def test_listeners_are_parsed_with_their_processes() -> None:
    parsed = hc.parse_listeners(
        FREE
        + 'LISTEN 0 5 [::ffff:127.0.0.1]:8080 [::]:* users:(("a b",pid=3,fd=1),("c",pid=4,fd=2))\n'
    )
    assert parsed == [
        hc.Listener("0.0.0.0", 22, (("sshd", 50),)),
        hc.Listener("127.0.0.11", 35401, ()),
        hc.Listener("::", 22, (("sshd", 50),)),
        hc.Listener("::ffff:127.0.0.1", 8080, (("a b", 3), ("c", 4))),
    ]


def test_a_deployed_host_passes_its_own_ports() -> None:
    assert errors(probe=DEPLOYED, ip="10.0.0.11") == []


@pytest.mark.parametrize(
    ("port", "component", "groups"),
    [
        (
            6443,
            "kube-apiserver / local apiserver load balancer",
            ["kube_control_plane", "k8s_cluster"],
        ),
        (10257, "kube-controller-manager", ["kube_control_plane", "k8s_cluster"]),
        (10259, "kube-scheduler", ["kube_control_plane", "k8s_cluster"]),
        (2379, "etcd client", ["etcd"]),
        (2380, "etcd peer", ["etcd"]),
        (10250, "kubelet", WORKER),
        (10256, "kube-proxy health", WORKER),
        (6443, "local apiserver load balancer", WORKER),
    ],
)
def test_port_taken_by_another_process_fails(port: int, component: str, groups: list[str]) -> None:
    probe = FREE + f'LISTEN 0 5 0.0.0.0:{port} 0.0.0.0:* users:(("python3",pid=4242,fd=3))\n'
    assert errors(groups, probe=probe) == [
        f"node1: port {port} ({component}) is already in use on 0.0.0.0 by python3 (pid 4242); "
        "stop it or move it to another port"
    ]


def test_port_of_another_group_is_not_checked() -> None:
    probe = FREE + 'LISTEN 0 5 0.0.0.0:2379 0.0.0.0:* users:(("python3",pid=4242,fd=3))\n'
    assert errors(WORKER, probe=probe) == []


def test_port_held_by_an_unknown_process_fails() -> None:
    probe = FREE + "LISTEN 0 5 0.0.0.0:10250 0.0.0.0:*\n"
    assert errors(probe=probe) == [
        "node1: port 10250 (kubelet) is already in use on 0.0.0.0 by an unknown process; "
        "stop it or move it to another port"
    ]


def test_wrong_component_on_a_port_fails() -> None:
    probe = FREE + 'LISTEN 0 5 *:10250 *:* users:(("kube-proxy",pid=9,fd=3))\n'
    assert len(errors(probe=probe)) == 1


@pytest.mark.parametrize("lb", ["nginx", "haproxy"])
def test_local_load_balancer_on_a_worker_passes(lb: str) -> None:
    probe = FREE + f'LISTEN 0 511 127.0.0.1:6443 0.0.0.0:* users:(("{lb}",pid=5,fd=6))\n'
    assert errors(WORKER, probe=probe) == []


def test_load_balancer_port_follows_its_variable() -> None:
    probe = FREE + 'LISTEN 0 5 127.0.0.1:8443 0.0.0.0:* users:(("python3",pid=5,fd=6))\n'
    assert len(errors(WORKER, probe=probe, loadbalancer_apiserver_port=8443)) == 1
    assert errors(WORKER, probe=probe) == []
    # no local load balancer in the other modes
    assert (
        errors(WORKER, probe=probe, loadbalancer_apiserver_port=8443, apiserver_ha_mode="external")
        == []
    )


def test_vip_haproxy_port_on_the_control_plane() -> None:
    taken = FREE + 'LISTEN 0 5 0.0.0.0:8443 0.0.0.0:* users:(("python3",pid=5,fd=6))\n'
    held = FREE + 'LISTEN 0 5 10.0.0.100:8443 0.0.0.0:* users:(("haproxy",pid=5,fd=6))\n'
    vip = {"address": "10.0.0.100", "port": 8443}
    kw: dict[str, Any] = {"apiserver_ha_mode": "vip", "loadbalancer_apiserver": vip}
    assert len(errors(probe=taken, **kw)) == 1
    assert errors(probe=held, **kw) == []


def vip_mode(address: str = "10.0.0.100", **lb: Any) -> dict[str, Any]:
    return {
        "apiserver_ha_mode": "vip",
        "loadbalancer_apiserver": {"address": address, **lb},
        "loadbalancer_apiserver_default_port": 8443,
    }


def test_vip_port_defaults_to_loadbalancer_apiserver_default_port() -> None:
    taken = FREE + 'LISTEN 0 5 0.0.0.0:8443 0.0.0.0:* users:(("python3",pid=5,fd=6))\n'
    assert errors(probe=taken, **vip_mode()) == [
        "node1: port 8443 (haproxy of the apiserver VIP) is already in use on 0.0.0.0 by "
        "python3 (pid 5); stop it or move it to another port"
    ]
    assert errors(probe=taken, **vip_mode(port=9443)) == []
    # the VIP's haproxy runs on the control plane only
    assert errors(WORKER, probe=taken, **vip_mode()) == []


@pytest.mark.parametrize("mode", ["vip", "external"])
def test_local_load_balancer_left_by_local_lb_is_no_conflict(mode: str) -> None:
    # nginx of local_lb on 127.0.0.1:6443 beside kube-apiserver, until role node removes it
    left = DEPLOYED + 'LISTEN 0 511 127.0.0.1:6443 0.0.0.0:* users:(("nginx",pid=5,fd=6))\n'
    kw = vip_mode() if mode == "vip" else {"apiserver_ha_mode": "external"}
    assert errors(probe=left, **kw) == []
    other = DEPLOYED + 'LISTEN 0 5 127.0.0.1:6443 0.0.0.0:* users:(("python3",pid=5,fd=6))\n'
    assert len(errors(probe=other, **kw)) == 1


def test_vip_in_the_subnet_of_the_hosts_interface_passes() -> None:
    assert errors(**vip_mode()) == []
    # the host holding the VIP has it as a /32 on the same interface
    holder = facts()
    holder["eth0"]["ipv4_secondaries"] = [{"address": "10.0.0.100", "netmask": "255.255.255.255"}]
    holder["all_ipv4_addresses"] = ["10.0.0.11", "10.0.0.100"]
    assert errors(host_facts=holder, **vip_mode()) == []


def test_vip_outside_the_hosts_subnet_fails() -> None:
    assert errors(**vip_mode("10.0.1.100")) == [
        "node1: loadbalancer_apiserver.address 10.0.1.100 is outside the networks of eth0, the "
        "interface holding 10.0.0.11 (10.0.0.0/24): the VIP must be a free address in the "
        "control-plane hosts' subnet"
    ]
    # a /32 of the interface (another VIP, say) is no network the VIP can live in
    other = facts()
    other["eth0"]["ipv4_secondaries"] = [{"address": "10.0.1.100", "netmask": "255.255.255.255"}]
    assert len(errors(host_facts=other, **vip_mode("10.0.1.100"))) == 1
    # workers and other modes do not carry a VIP
    assert errors(WORKER, **vip_mode("10.0.1.100")) == []
    lb = {"address": "10.0.1.100", "port": 443}
    assert errors(apiserver_ha_mode="external", loadbalancer_apiserver=lb) == []


def test_vip_interface_from_apiserver_vip_interface() -> None:
    two = facts(interfaces=["lo", "eth0", "eth1"])
    two["eth1"] = {"device": "eth1", "ipv4": {"address": "172.16.0.5", "netmask": "255.255.0.0"}}
    assert errors(host_facts=two, apiserver_vip_interface="eth1", **vip_mode("172.16.9.9")) == []
    assert len(errors(host_facts=two, **vip_mode("172.16.9.9"))) == 1
    assert errors(host_facts=two, apiserver_vip_interface="bond0", **vip_mode()) == [
        "node1: apiserver_vip_interface bond0 is not an interface of this host "
        "(it has: eth0, eth1, lo)"
    ]


def test_vip_needs_an_interface_holding_the_hosts_address() -> None:
    assert errors(address="node1.example.com", **vip_mode()) == [
        "node1: no network interface holds its address node1.example.com (ip, else "
        "ansible_host), the one that would carry the VIP (loadbalancer_apiserver.address): "
        "set apiserver_vip_interface"
    ]


def test_vip_that_is_no_ipv4_address_is_left_to_the_inventory_checks() -> None:
    assert errors(**vip_mode("fd00::100")) == []
    assert errors(**vip_mode("api.example.com")) == []


def test_interface_lookup_for_role_apiserver_vip() -> None:
    two = facts()
    two["eth0"]["ipv4_secondaries"] = [{"address": "10.0.0.100", "netmask": "255.255.255.255"}]
    two["br_int"] = {"device": "br-int", "ipv4": {"address": "192.168.5.1", "netmask": "24"}}
    assert hc.kubeforge_host_interface(two, "10.0.0.11") == "eth0"
    assert hc.kubeforge_host_interface(two, "10.0.0.100") == "eth0"
    assert hc.kubeforge_host_interface(two, "192.168.5.1") == "br-int"
    assert hc.kubeforge_host_interface(two, "10.0.0.12") == ""
    assert hc.kubeforge_host_interface(two, "node1") == ""
    assert hc.kubeforge_host_interface({}, "10.0.0.11") == ""


def test_missing_ss_fails_with_the_reason() -> None:
    probe = "cgroup_fs cgroup2fs\nsh: 2: ss: not found\nss_failed 127\n"
    assert errors(probe=probe) == [
        "node1: cannot list listening ports with `ss -Hltnp` (sh: 2: ss: not found); "
        "install iproute2"
    ]


def test_every_problem_of_a_host_is_reported_at_once() -> None:
    probe = FREE.replace("cgroup2fs", "tmpfs") + (
        'LISTEN 0 5 0.0.0.0:10250 0.0.0.0:* users:(("python3",pid=1,fd=3))\n'
    )
    found = errors(probe=probe, host_facts=facts(swaptotal_mb=1, memtotal_mb=10), ip="10.9.9.9")
    assert len(found) == 5, found
