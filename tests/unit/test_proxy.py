"""kubespray's proxy settings (plugins/filter/kubeforge_proxy.py): the computed
no_proxy, the process environment, and the systemd drop-in containerd and the
kubelet get."""

from __future__ import annotations

from typing import Any

import kubeforge_proxy as px
import pytest

GROUPS = {
    "all": ["cp1", "cp2", "w1", "etcd1"],
    "kube_control_plane": ["cp1", "cp2"],
    "kube_node": ["cp2", "w1"],
    "etcd": ["cp1", "etcd1"],
    "calico_rr": [],
    "k8s_cluster": ["cp1", "cp2", "w1"],
}
HOSTVARS: dict[str, dict[str, Any]] = {
    "cp1": {"ansible_host": "192.0.2.11", "ip": "10.0.0.11", "access_ip": "198.51.100.11"},
    "cp2": {"ansible_host": "192.0.2.12", "ip": "10.0.0.12"},
    "w1": {"ansible_host": "w1.example.com", "kube_override_hostname": "Worker-1"},
    "etcd1": {"ip": "10.0.0.21"},
}


def no_proxy(**settings: Any) -> list[str]:
    base: dict[str, Any] = {
        "dns_domain": "cluster.local",
        "service_subnets": "10.233.0.0/18",
        "pods_subnets": "10.233.64.0/18",
    }
    return px.kubeforge_no_proxy(HOSTVARS, GROUPS, **{**base, **settings}).split(",")


def test_no_proxy_names_every_cluster_host_and_network() -> None:
    entries = no_proxy()
    for expected in [
        # cp1: every address it is reached by, its name, its name in the cluster domain
        "198.51.100.11", "10.0.0.11", "192.0.2.11", "cp1", "cp1.cluster.local",
        "192.0.2.12", "10.0.0.12", "cp2",
        # w1: a DNS name in ansible_host, its node name from kube_override_hostname (lower case)
        "w1.example.com", "w1", "worker-1", "worker-1.cluster.local",
        "10.0.0.21", "etcd1",
        "127.0.0.1", "localhost", "10.233.0.0/18", "10.233.64.0/18", "svc", "svc.cluster.local",
    ]:  # fmt: skip
        assert expected in entries, expected
    assert len(entries) == len(set(entries)), "each entry once"
    assert "" not in entries


def test_no_proxy_keeps_kubespray_order() -> None:
    entries = no_proxy(
        loadbalancer_apiserver={"address": "192.0.2.100", "port": 8443},
        lb_domain="lb.example.com",
        additional="mirror.example.com, 10.1.1.1",
    )
    assert entries[:2] == ["lb.example.com", "192.0.2.100"]
    assert entries.index("cp1") < entries.index("mirror.example.com") < entries.index("127.0.0.1")
    assert entries[-6:] == [
        "127.0.0.1", "localhost", "10.233.0.0/18", "10.233.64.0/18", "svc", "svc.cluster.local",
    ]  # fmt: skip
    assert "10.1.1.1" in entries


def test_no_proxy_can_leave_workers_out() -> None:
    entries = no_proxy(exclude_workers=True)
    assert "w1" not in entries and "worker-1" not in entries
    # A control-plane host that is also a worker stays.
    assert "cp2" in entries
    assert no_proxy(exclude_workers="false") == no_proxy()


def test_no_proxy_splits_comma_separated_networks() -> None:
    entries = no_proxy(service_subnets="10.233.0.0/18,fd00::/108", additional=["a", "b,c"])
    assert {"10.233.0.0/18", "fd00::/108", "a", "b", "c"} <= set(entries)


def test_no_proxy_ignores_an_empty_load_balancer() -> None:
    assert no_proxy(loadbalancer_apiserver={}, lb_domain="")[0] == "198.51.100.11"
    assert no_proxy(loadbalancer_apiserver=None)[0] == "198.51.100.11"


def test_no_proxy_is_the_same_with_facts_gathered() -> None:
    gathered = {
        h: {**v, "ansible_hostname": f"{h}-os", "ansible_facts": {}} for h, v in HOSTVARS.items()
    }
    settings = {"dns_domain": "cluster.local"}
    assert px.kubeforge_no_proxy(gathered, GROUPS, **settings) == px.kubeforge_no_proxy(
        HOSTVARS, GROUPS, **settings
    )


def test_proxy_env_without_a_proxy_is_empty() -> None:
    assert px.kubeforge_proxy_env({"http_proxy": "", "https_proxy": "", "no_proxy": "x"}) == {}
    assert px.kubeforge_proxy_env({}) == {}


def test_proxy_env_has_both_spellings_of_what_is_set() -> None:
    env = px.kubeforge_proxy_env(
        {"http_proxy": "http://proxy:3128", "https_proxy": " ", "no_proxy": "a,b"}
    )
    assert env == {
        "http_proxy": "http://proxy:3128",
        "HTTP_PROXY": "http://proxy:3128",
        "no_proxy": "a,b",
        "NO_PROXY": "a,b",
    }


def test_dropin_without_a_proxy_is_empty() -> None:
    assert px.kubeforge_systemd_dropin({}) == ""
    assert px.kubeforge_systemd_dropin({"http_proxy": "http://lower-only:1"}) == ""


def test_dropin_sets_the_upper_case_variables() -> None:
    env = px.kubeforge_proxy_env(
        {
            "http_proxy": "http://proxy:3128",
            "https_proxy": "http://proxy:3129",
            "no_proxy": "127.0.0.1,localhost",
        }
    )
    assert px.kubeforge_systemd_dropin(env) == (
        "# Managed by kubeforge: http_proxy, https_proxy, no_proxy\n"
        "[Service]\n"
        'Environment="HTTP_PROXY=http://proxy:3128"\n'
        'Environment="HTTPS_PROXY=http://proxy:3129"\n'
        'Environment="NO_PROXY=127.0.0.1,localhost"\n'
    )


def test_dropin_escapes_what_systemd_would_expand() -> None:
    dropin = px.kubeforge_systemd_dropin({"HTTPS_PROXY": 'http://u:p%40"x\\y@proxy:3128'})
    assert 'Environment="HTTPS_PROXY=http://u:p%%40\\"x\\\\y@proxy:3128"' in dropin


def test_dropin_refuses_a_line_break() -> None:
    with pytest.raises(ValueError, match="HTTP_PROXY"):
        px.kubeforge_systemd_dropin({"HTTP_PROXY": "http://proxy:3128\nExecStart=/bin/sh"})
