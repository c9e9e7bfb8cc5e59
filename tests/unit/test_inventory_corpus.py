"""A corpus of broken inventories for preflight's inventory checks
(plugins/filter/kubeforge_inventory.py), the mistakes a kubespray user makes
among them: each case is a small inventory with one mistake, and the error it
must produce names the variable, the host (or "all hosts") and the bad value.

The settings every case starts from are the real ones: inventory/sample's
preflight_inventory_settings as Ansible renders them (the role defaults, the
preflight role's templates), taken once per session from ansible-playbook.
"""

from __future__ import annotations

import copy
import functools
import ipaddress
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubeforge_inventory as inv
import pytest
from ansible_render import REPO, run_playbook

SAMPLE = REPO / "inventory" / "sample" / "hosts.yml"

# Renders preflight_inventory_settings as the opening play does (role
# kubeforge_defaults, then preflight's defaults) and runs the inventory checks
# on the real hostvars; debug only, so no host is contacted.
PLAY = """
- name: Settings as role preflight hands them to the inventory checks
  hosts: all
  gather_facts: false
  roles: [kubeforge_defaults]
  vars_files: [{defaults}]
  tasks:
    - name: Show them and the checks' verdict
      ansible.builtin.debug:
        msg:
          settings: "{{{{ preflight_inventory_settings }}}}"
          errors: >-
            {{{{ groups | kubeforge_inventory_errors(hostvars, preflight_inventory_settings) }}}}
      run_once: true
"""


@functools.cache
def rendered_sample() -> dict[str, Any]:
    """{settings, errors} of inventory/sample, rendered by Ansible (cached)."""
    play = Path(os.environ.get("TMPDIR", "/tmp")) / f"kubeforge-corpus-{os.getpid()}.yml"
    play.write_text(PLAY.format(defaults=REPO / "roles/preflight/defaults/main.yml"))
    json_output = {
        "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json",
        "ANSIBLE_CALLBACKS_ENABLED": "ansible.builtin.json",
    }
    try:
        output = run_playbook(
            SAMPLE,
            play,
            "-e",
            "ansible_connection=local",
            what="rendering the sample's settings",
            env=json_output,
        )
    finally:
        play.unlink(missing_ok=True)
    task = json.loads(output)["plays"][0]["tasks"][-1]["hosts"]
    msg: dict[str, Any] = next(iter(task.values()))["msg"]
    return msg


def test_the_sample_inventory_passes_every_check() -> None:
    assert rendered_sample()["errors"] == []


def test_every_setting_is_rendered() -> None:
    assert set(rendered_sample()["settings"]) == set(inv.ALL_SETTINGS)


# The inventory every case starts from ----------------------------------------

CONTROL_PLANE, WORKERS = ["cp1", "cp2", "cp3"], ["w1", "w2"]
HOSTS = CONTROL_PLANE + WORKERS


def groups() -> dict[str, list[str]]:
    return {
        "all": list(HOSTS),
        "kube_control_plane": list(CONTROL_PLANE),
        "etcd": list(CONTROL_PLANE),
        "kube_node": list(WORKERS),
        "k8s_cluster": list(HOSTS),
        "calico_rr": [],
    }


def hostvars() -> dict[str, dict[str, Any]]:
    return {
        h: {"ansible_host": f"192.168.10.{i}", "ip": f"192.168.10.{i}"}
        for i, h in enumerate(HOSTS, start=11)
    }


def _nth(network: str, n: int) -> Any:
    try:
        net = ipaddress.ip_network(network.split(",")[0])
    except ValueError:
        return False  # what ansible.utils.nthhost renders
    return str(net.network_address + n) if net.num_addresses > n else False


def derive(settings: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """The settings with `over` applied, and what Ansible derives from them
    re-derived (kube_service_subnets from kube_service_addresses, dns_domain
    from cluster_name, ...), as the role defaults do."""
    s = {**copy.deepcopy(settings), **over}
    follows = {
        "kube_service_subnets": "kube_service_addresses",
        "kube_pods_subnets": "kube_pods_subnet",
        "dns_domain": "cluster_name",
    }
    for derived, source in follows.items():
        if source in over and derived not in over:
            s[derived] = s[source]
    if "calico_pool_cidr" not in over:
        s["calico_pool_cidr"] = s["kube_pods_subnets"]
    for var, n in (("kube_apiserver_ip", 1), ("skydns_server", 3)):
        if var not in over:
            s[var] = _nth(str(s["kube_service_subnets"]), n)
    lb = s.get("loadbalancer_apiserver")
    address = lb.get("address") if isinstance(lb, dict) else None
    if "loadbalancer_apiserver" in over and "apiserver_ha_mode" not in over:
        s["apiserver_ha_mode"] = "external" if address else "local_lb"
    if "apiserver_loadbalancer_domain_name" not in over:
        s["apiserver_loadbalancer_domain_name"] = (
            "localhost" if s["apiserver_ha_mode"] == "local_lb" else address or ""
        )
    given = [v for v in inv.NETWORK_NAMES["service"] + inv.NETWORK_NAMES["pods"] if v in over]
    s.setdefault("network_vars_set", [])
    s["network_vars_set"] = sorted({*s["network_vars_set"], *given})
    return s


@dataclass(frozen=True)
class Case:
    id: str
    settings: dict[str, Any] = field(default_factory=dict)
    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)  # host -> its own vars
    expect: tuple[str, ...] = ()  # fragments of one error
    count: int = 1  # errors in all


def run(case: Case) -> list[str]:
    hv = hostvars()
    for host, own in case.hosts.items():
        hv.setdefault(host, {}).update(own)
    settings = derive(rendered_sample()["settings"], case.settings)
    return inv.kubeforge_inventory_errors(groups(), hv, settings)


def S(case_id: str, expect: str | tuple[str, ...], count: int = 1, **settings: Any) -> Case:
    """A case whose mistake is in a cluster-wide setting."""
    fragments = (expect,) if isinstance(expect, str) else expect
    return Case(case_id, settings=settings, expect=("all hosts: ", *fragments), count=count)


def H(case_id: str, hosts: dict[str, dict[str, Any]], *expect: str, count: int = 1) -> Case:
    """A case whose mistake is in host (or group) variables."""
    return Case(case_id, hosts=hosts, expect=expect, count=count)


LB = "loadbalancer_apiserver"
MIRROR = {"prefix": "docker.io", "mirrors": [{"host": "https://mirror.example.com"}]}
AUTH = {"registry": "registry.example.com", "username": "robot", "password": "s3cret-pass"}
OIDC: dict[str, Any] = {"kube_oidc_auth": True, "kube_oidc_url": "https://issuer.example.com",
        "kube_oidc_client_id": "kubernetes"}  # fmt: skip
LABELLED = {"w1": {"node_labels": {"node-role.kubernetes.io/ingress": ""}}}

CASES = [
    # Cluster name and DNS domain
    S("dns-domain-empty-label", "dns_domain 'cluster..local' is not a DNS domain",
      dns_domain="cluster..local"),
    S("dns-domain-upper-case", "dns_domain 'Cluster.Local' is not a DNS domain",
      dns_domain="Cluster.Local"),
    S("dns-domain-trailing-dot", "dns_domain 'cluster.local.'", dns_domain="cluster.local."),
    S("dns-domain-leading-dash", "dns_domain '-k8s.local'", dns_domain="-k8s.local"),
    S("dns-domain-long-label", "dns_domain", dns_domain="x" * 64 + ".local"),
    S("dns-domain-number", "dns_domain 5 is not a DNS domain", dns_domain=5),
    S("cluster-name-underscore", "cluster_name 'my_cluster' is not a DNS domain", count=2,
      cluster_name="my_cluster"),
    # Certificate names
    S("san-with-a-space", "supplementary_addresses_in_ssl_keys[0] 'bad name!' is neither",
      supplementary_addresses_in_ssl_keys=["bad name!"]),
    S("san-comma-string", ("supplementary_addresses_in_ssl_keys must be a list", "YAML list"),
      supplementary_addresses_in_ssl_keys="10.0.0.1,10.0.0.2"),
    S("san-mistyped-ip", "supplementary_addresses_in_ssl_keys[1] '10.0.0.300'",
      supplementary_addresses_in_ssl_keys=["10.0.0.1", "10.0.0.300"]),
    S("san-double-wildcard", "'*.*.example.com'",
      supplementary_addresses_in_ssl_keys=["*.*.example.com"]),
    S("san-empty-label", "'api..example.com'",
      supplementary_addresses_in_ssl_keys=["api..example.com"]),
    S("lb-domain-name-underscore", "apiserver_loadbalancer_domain_name 'lb_api.local'",
      apiserver_loadbalancer_domain_name="lb_api.local"),
    # Service and pod networks
    S("service-network-slash-30",
      ("kube_service_addresses 10.233.0.0/30 has 4 addresses, too few", "skydns_server",
       "use a /28 or larger"), kube_service_addresses="10.233.0.0/30"),
    S("service-network-slash-29", "kube_service_addresses 10.233.0.0/29 has 8 addresses",
      kube_service_addresses="10.233.0.0/29"),
    S("service-network-dual-stack", ("kube_service_addresses '10.233.0.0/18,fd00::/108' has 2 "
      "networks", "dual-stack"), kube_service_addresses="10.233.0.0/18,fd00::/108"),
    S("pods-subnets-dual-stack", "kube_pods_subnets '10.233.64.0/18,fd85:ee78::/112' has 2",
      kube_pods_subnets="10.233.64.0/18,fd85:ee78::/112"),
    S("service-subnets-ipv6", "kube_service_subnets fd00:10:96::/112 is IPv6",
      kube_service_subnets="fd00:10:96::/112"),
    S("pods-subnet-ipv6", "kube_pods_subnet fd00:10:244::/56 is IPv6",
      kube_pods_subnet="fd00:10:244::/56"),
    S("networks-overlap", "kube_service_addresses 10.233.0.0/18 overlaps kube_pods_subnet "
      "10.233.0.0/16", kube_pods_subnet="10.233.0.0/16"),
    S("service-network-host-bits", "kube_service_addresses '10.233.0.1/18' is not a valid CIDR",
      kube_service_addresses="10.233.0.1/18"),
    S("service-network-not-a-cidr", "kube_service_addresses '10.233.0.0' is not a valid CIDR",
      count=1, kube_service_addresses="10.233.0.0"),
    S("plural-and-singular-differ", ("kube_pods_subnets '10.244.0.0/16' and kube_pods_subnet "
      "'10.233.64.0/18' are both set and differ"), kube_pods_subnet="10.233.64.0/18",
      kube_pods_subnets="10.244.0.0/16"),
    S("pods-subnet-too-small", "has room for 4 nodes, k8s_cluster has 5",
      kube_pods_subnet="10.233.64.0/22"),
    S("node-prefix-not-longer", "kube_network_node_prefix 16 must be longer than "
      "kube_pods_subnet's /18", kube_network_node_prefix=16),
    S("node-prefix-too-many-subnets", "kube-controller-manager allows at most 2^16",
      kube_pods_subnet="100.0.0.0/8", kube_network_node_prefix=25),
    S("max-pods-beyond-node-subnet", ("kubelet_max_pods 300 is more than", "/24", "254"),
      kubelet_max_pods=300),
    S("max-pods-too-few", "kubelet_max_pods 5 is not a number of pods per node (10-1000)",
      kubelet_max_pods=5),
    S("max-pods-word", "kubelet_max_pods 'many'", kubelet_max_pods="many"),
    S("max-pods-yes", "kubelet_max_pods 'yes'", kubelet_max_pods="yes"),
    S("apiserver-ip-not-first", "kube_apiserver_ip '10.233.0.10' is not 10.233.0.1",
      kube_apiserver_ip="10.233.0.10"),
    S("skydns-outside", "skydns_server '10.96.0.10' is not a usable address of",
      skydns_server="10.96.0.10"),
    S("skydns-is-the-apiserver", "skydns_server 10.233.0.1 is the apiserver's Service address",
      skydns_server="10.233.0.1"),
    # Ports
    S("node-port-range-reversed", "kube_apiserver_node_port_range '32767-30000' is not a port "
      "range", kube_apiserver_node_port_range="32767-30000"),
    S("node-port-range-one-port", "kube_apiserver_node_port_range '30000'",
      kube_apiserver_node_port_range="30000"),
    S("node-port-range-plus-form", "kube_apiserver_node_port_range '30000+2767'",
      kube_apiserver_node_port_range="30000+2767"),
    S("node-port-range-holds-apiserver", ("kube_apiserver_node_port_range 6000-7000 contains",
      "kube_apiserver_port 6443"), kube_apiserver_node_port_range="6000-7000"),
    S("node-port-range-holds-etcd", ("etcd_client_port 2379", "etcd_peer_port 2380"),
      kube_apiserver_node_port_range="2000-3000"),
    S("node-port-range-holds-kubelet", "kubelet 10250",
      kube_apiserver_node_port_range="10000-12767"),
    S("etcd-client-on-apiserver-port", ("kube_apiserver_port 6443 is also etcd_client_port's",),
      count=2, etcd_client_port=6443),  # and the local load balancer's, on 127.0.0.1
    S("etcd-peer-equals-client", "etcd_client_port 2379 is also etcd_peer_port's",
      etcd_peer_port=2379),
    S("etcd-on-kubelet-port", "etcd_client_port 10250 is also kubelet's", etcd_client_port=10250),
    S("lb-port-on-controller-manager", "loadbalancer_apiserver_port 10257 is also "
      "kube-controller-manager's", loadbalancer_apiserver_port=10257),
    S("apiserver-port-text", "kube_apiserver_port '6443a' is not a TCP port",
      kube_apiserver_port="6443a"),
    S("etcd-peer-port-too-big", "etcd_peer_port 70000 is not a TCP port", etcd_peer_port=70000),
    Case("ingress-on-kubelet-port", hosts=LABELLED, settings={
        "ingress_controller_enabled": True, "ingress_controller_https_port": 10250},
        expect=("all hosts: ", "ingress_controller_https_port 10250", "kubelet")),
    # The apiserver's load balancer
    S("lb-without-address", ("loadbalancer_apiserver {'port': 8383} has no address",),
      loadbalancer_apiserver={"port": 8383}),
    S("lb-address-typo", ("loadbalancer_apiserver has an unknown key 'adress'",), count=2,
      loadbalancer_apiserver={"adress": "lb.example.com", "port": 443}),
    S("lb-as-a-string", "loadbalancer_apiserver must be a dict",
      loadbalancer_apiserver="lb.example.com:6443"),
    S("lb-address-with-space", "loadbalancer_apiserver.address 'lb example' is neither",
      count=2, loadbalancer_apiserver={"address": "lb example", "port": 443}),
    S("lb-port-zero", "loadbalancer_apiserver.port 0 is not a TCP port",
      loadbalancer_apiserver={"address": "lb.example.com", "port": 0}),
    S("external-without-lb", "apiserver_ha_mode external needs loadbalancer_apiserver.address",
      apiserver_ha_mode="external"),
    S("ha-mode-unknown", "apiserver_ha_mode 'keepalived' is unknown",
      apiserver_ha_mode="keepalived"),
    S("lb-localhost-word", "loadbalancer_apiserver_localhost 'maybe' is not a boolean",
      loadbalancer_apiserver_localhost="maybe"),
    S("lb-type-unknown", "loadbalancer_apiserver_type 'envoy'",
      loadbalancer_apiserver_type="envoy"),
    # Plugins, runtime, DNS, kube-proxy
    S("plugin-cilium", "kube_network_plugin 'cilium' is unknown", kube_network_plugin="cilium"),
    S("plugin-capitalised", "kube_network_plugin 'Calico' is unknown",
      kube_network_plugin="Calico"),
    S("container-manager-crio", "container_manager 'crio' is not supported",
      container_manager="crio"),
    S("container-manager-docker", "container_manager 'docker' is not supported",
      container_manager="docker"),
    S("dns-mode-coredns-dual", "dns_mode 'coredns_dual' is not supported",
      dns_mode="coredns_dual"),
    S("dns-mode-manual", "dns_mode 'manual' is not supported", dns_mode="manual"),
    S("dns-mode-kube-dns", "dns_mode 'kube-dns' is unknown", dns_mode="kube-dns"),
    S("dns-mode-yaml-false", "dns_mode False is unknown", dns_mode=False),
    S("proxy-mode-upper-case", "kube_proxy_mode 'IPVS' is unknown", kube_proxy_mode="IPVS"),
    S("proxy-mode-userspace", "kube_proxy_mode 'userspace'", kube_proxy_mode="userspace"),
    S("strict-arp-word", "kube_proxy_strict_arp 'enabled' is not a boolean",
      kube_proxy_strict_arp="enabled"),
    S("nodeport-addresses-bad-cidr", "kube_proxy_nodeport_addresses entry '10.0.0.0/33'",
      kube_proxy_nodeport_addresses=["10.0.0.0/33"]),
    S("nodeport-addresses-primary-mixed", "entry 'primary' is not a CIDR",
      kube_proxy_nodeport_addresses=["primary", "10.0.0.0/8"]),
    S("nodeport-cidr-text", "kube_proxy_nodeport_addresses_cidr entry 'bad'",
      kube_proxy_nodeport_addresses_cidr="10.0.0.0/8,bad"),
    S("nodeport-addresses-dict", "kube_proxy_nodeport_addresses must be a list of CIDRs",
      kube_proxy_nodeport_addresses={"a": 1}),
    # Feature gates and log level
    S("gates-as-a-string", "kube_feature_gates must be a list of",
      kube_feature_gates="PodLevelResources=true"),
    S("gate-without-value", "kube_feature_gates entry 'PodLevelResources' is not",
      kube_feature_gates=["PodLevelResources"]),
    S("gate-lower-case", "kube_feature_gates: 'podLevelResources' is not a feature gate name",
      kube_feature_gates=["podLevelResources=true"]),
    S("gate-yes", "kube_feature_gates: PodLevelResources=yes must be true or false",
      kube_feature_gates=["PodLevelResources=yes"]),
    S("kubelet-gate-with-space", "kubelet_feature_gates: 'Foo Bar' is not",
      kubelet_feature_gates=["Foo Bar=true"]),
    S("apiserver-gates-list-of-dicts", "kube_apiserver_feature_gates entry {'A': True}",
      kube_apiserver_feature_gates=[{"A": True}]),
    S("proxy-gates-number", "kube_proxy_feature_gates must be a list",
      kube_proxy_feature_gates=5),
    S("log-level-eleven", "kube_log_level 11 is not a log level (0-10)", kube_log_level=11),
    S("log-level-word", "kube_log_level 'debug'", kube_log_level="debug"),
    S("log-level-negative", "kube_log_level -1", kube_log_level=-1),
    # Booleans
    S("kubeconfig-localhost-y", "kubeconfig_localhost 'y' is not a boolean",
      kubeconfig_localhost="y"),
    S("kubectl-localhost-two", "kubectl_localhost 2 is not a boolean", kubectl_localhost=2),
    S("audit-off", "audit_log_enabled 'off' is not a boolean", audit_log_enabled="off"),
    S("fail-swap-on-nope", "kubelet_fail_swap_on 'nope'", kubelet_fail_swap_on="nope"),
    # OpenID Connect
    S("oidc-plain-http", ("kube_oidc_url 'http://issuer.example.com' is not a URL",
      "https://"), **{**OIDC, "kube_oidc_url": "http://issuer.example.com"}),
    S("oidc-no-client-id", "kube_oidc_client_id is empty while kube_oidc_auth is true",
      **{**OIDC, "kube_oidc_client_id": ""}),
    S("oidc-url-without-host", "kube_oidc_url 'https://'", **{**OIDC, "kube_oidc_url": "https://"}),
    S("oidc-auth-word", "kube_oidc_auth 'sure' is not a boolean", kube_oidc_auth="sure"),
    S("oidc-relative-ca-file", "kube_oidc_ca_file 'ca.pem' is not an absolute path",
      **{**OIDC, "kube_oidc_ca_file": "ca.pem"}),
    S("oidc-ca-cert-not-base64", "kube_oidc_ca_cert is not a base64-encoded PEM",
      **{**OIDC, "kube_oidc_ca_cert": "not base64!"}),
    # Proxy
    S("proxy-without-scheme", ("http_proxy 'proxy.example.com:3128' is not a URL",
      "http:// or https://"), http_proxy="proxy.example.com:3128"),
    S("proxy-port-too-big", "https_proxy 'http://user:***@proxy:99999' is not a URL",
      https_proxy="http://user:hunter2@proxy:99999"),
    S("proxy-socks", "http_proxy 'socks5://proxy:1080'", http_proxy="socks5://proxy:1080"),
    S("no-proxy-list", "no_proxy must be a string", no_proxy=["a", "b"]),
    S("additional-no-proxy-number", "additional_no_proxy must be a string",
      additional_no_proxy=5),
    # Cluster DNS and flannel
    S("upstream-dns-string", "upstream_dns_servers must be a list of IP addresses",
      upstream_dns_servers="8.8.8.8"),
    S("upstream-dns-name", "upstream_dns_servers[1] 'dns.google' is not an IP address",
      upstream_dns_servers=["8.8.8.8", "dns.google"]),
    S("flannel-interface-alias", "flannel_interface 'eth0:1' is neither an interface name",
      flannel_interface="eth0:1"),
    S("flannel-interface-long", "flannel_interface 'a-very-long-interface'",
      flannel_interface="a-very-long-interface"),
    S("flannel-regexp-broken", "flannel_interface_regexp 'eth[0-9' is not a regular expression",
      flannel_interface_regexp="eth[0-9"),
    # etcd
    S("etcd-timing", "etcd_election_timeout 5000 must be at least 5 times "
      "etcd_heartbeat_interval 2000", etcd_heartbeat_interval=2000),
    S("etcd-election-too-long", "etcd_election_timeout 60000 is not an election timeout",
      etcd_election_timeout=60000),
    S("etcd-quota-16-gib", "etcd_quota_backend_bytes 17179869184",
      etcd_quota_backend_bytes=16 * 2**30),
    S("etcd-compaction-words", "etcd_compaction_retention '8 hours'",
      etcd_compaction_retention="8 hours"),
    S("etcd-metrics-full", "etcd_metrics 'full' is unknown; use one of: basic, extensive",
      etcd_metrics="full"),
    S("etcd-metrics-url-no-scheme", "etcd_listen_metrics_urls '127.0.0.1:2381' is not a URL",
      etcd_listen_metrics_urls="127.0.0.1:2381"),
    S("etcd-data-dir-system", "etcd_data_dir '/var/lib' is a system directory",
      etcd_data_dir="/var/lib"),
    S("etcd-data-dir-relative", "etcd_data_dir 'var/lib/etcd' is not an absolute path",
      etcd_data_dir="var/lib/etcd"),
    S("etcd-owner-spaces", "etcd_owner 'Etcd User' is not a user name",
      etcd_owner="Etcd User"),
    S("etcd-snapshot-zero", "etcd_snapshot_count 0", etcd_snapshot_count=0),
    # Certificates
    S("leaf-outlives-ca", "certificates_leaf_days 5000 is longer than certificates_ca_days",
      certificates_leaf_days=5000),
    S("renew-before-whole-life", ("certificates_renew_before_days 400 is not less than",
      "every run would re-issue"), certificates_renew_before_days=400),
    S("ca-days-zero", "certificates_ca_days 0 is not a number of days", certificates_ca_days=0),
    S("leaf-days-text", "certificates_leaf_days '1y'", certificates_leaf_days="1y"),
    # Audit log
    S("audit-path-relative", "audit_log_path 'audit.log' is not an absolute path",
      audit_log_path="audit.log"),
    S("audit-maxage-negative", "audit_log_maxage -1", audit_log_maxage=-1),
    S("audit-policy-with-space", "audit_policy_file '/etc/kubernetes/audit policy.yaml'",
      audit_policy_file="/etc/kubernetes/audit policy.yaml"),
    # Kubelet reservations and eviction
    S("kube-reserved-kubespray-switch", ("kube_reserved True is kubespray's switch",
      "kube_memory_reserved"), kube_reserved=True),
    S("kube-reserved-megabytes", "kube_reserved['memory'] '256MB' is not a quantity",
      kube_reserved={"memory": "256MB"}),
    S("system-reserved-gpu", "system_reserved has an unknown key 'gpu'",
      system_reserved={"gpu": "1"}),
    S("eviction-unknown-signal", "eviction_hard has an unknown key 'disk.available'",
      eviction_hard={"memory.available": "100Mi", "disk.available": "10%"}),
    S("eviction-words", "eviction_hard['nodefs.available'] 'ten percent'",
      eviction_hard={"nodefs.available": "ten percent"}),
    S("eviction-flag-form", "eviction_hard must be a dict",
      eviction_hard=["memory.available<100Mi"]),
    # Extra flags and configuration keys
    S("flag-with-dashes", ("kube_apiserver_extra_args key '--audit-log-maxage' is not a flag "
      "name", "without the leading --"), kube_apiserver_extra_args={"--audit-log-maxage": 30}),
    S("flags-as-list", "kube_apiserver_extra_args must be a dict",
      kube_apiserver_extra_args=["--foo=bar"]),
    S("flag-dict-value", "kube_controller_manager_extra_args['node-monitor-period']",
      kube_controller_manager_extra_args={"node-monitor-period": {"a": 1}}),
    S("flag-with-space", "which the component's systemd unit would split",
      kube_scheduler_extra_args={"config": "/etc/a b.yaml"}),
    S("etcd-flag-list", "etcd_extra_args['auto-compaction-retention']",
      etcd_extra_args={"auto-compaction-retention": ["1", "2"]}),
    S("kubelet-config-flag-name", "kubelet_config_extra_args key 'max-pods' is not a "
      "configuration key", kubelet_config_extra_args={"max-pods": 200}),
    S("proxy-config-text", "kube_proxy_config_extra_args must be a dict",
      kube_proxy_config_extra_args="mode: ipvs"),
    # TLS and admission
    S("tls-1-0", "tls_min_version 'VersionTLS10' is unknown", tls_min_version="VersionTLS10"),
    S("tls-openssl-version", "tls_min_version 'TLS12' is unknown", tls_min_version="TLS12"),
    S("cipher-insecure", "tls_cipher_suites entry TLS_RSA_WITH_RC4_128_SHA is one of Go's "
      "insecure suites", tls_cipher_suites=["TLS_RSA_WITH_RC4_128_SHA"]),
    S("cipher-openssl-name", "tls_cipher_suites entry 'ECDHE-RSA-AES128-GCM-SHA256' is not a Go",
      tls_cipher_suites=["ECDHE-RSA-AES128-GCM-SHA256"]),
    S("ciphers-as-a-string", "tls_cipher_suites must be a list",
      tls_cipher_suites="TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
    S("admission-typo", "kube_apiserver_enable_admission_plugins entry 'NodeRestrictions'",
      kube_apiserver_enable_admission_plugins=["NodeRestrictions"]),
    S("admission-as-a-string", "kube_apiserver_enable_admission_plugins must be a list",
      kube_apiserver_enable_admission_plugins="NodeRestriction,PodSecurity"),
    S("address-types-twice", "kubelet_preferred_address_types 'InternalIP,Hostname,InternalIP'",
      kubelet_preferred_address_types="InternalIP,Hostname,InternalIP"),
    S("address-types-case", "kubelet_preferred_address_types 'InternalIp'",
      kubelet_preferred_address_types="InternalIp"),
    # Downloads
    S("files-repo-no-scheme", "files_repo 'mirror.example.com/files' is not a URL",
      files_repo="mirror.example.com/files"),
    S("files-repo-bad-port", ("files_repo 'https://mirror.example.com:99999'", "port"),
      files_repo="https://mirror.example.com:99999"),
    S("download-url-typo-scheme", "kubelet_download_url 'htp://dl.k8s.io/kubelet'",
      kubelet_download_url="htp://dl.k8s.io/kubelet"),
    S("image-arch-uname", "image_arch 'x86_64' is unknown; use one of: amd64, arm64",
      image_arch="x86_64"),
    S("checksum-short", "kubeforge_checksums.kubelet['1.37.2'].amd64 is not a sha256",
      kubeforge_checksums={"kubelet": {"1.37.2": {"amd64": "abc"}}}),
    S("checksum-flat", "kubeforge_checksums.kubelet must be a dict of version",
      kubeforge_checksums={"kubelet": "abc"}),
    S("cache-dir-tilde", "download_cache_dir '~/.cache/x' is not an absolute path",
      download_cache_dir="~/.cache/x"),
    # Images and versions
    S("image-repo-with-scheme", ("kube_image_repo 'https://registry.example.com'",
      "without http:// or https://"), kube_image_repo="https://registry.example.com"),
    S("image-repo-trailing-slash", ("kube_image_repo 'registry.example.com/'",
      "without the trailing /"), kube_image_repo="registry.example.com/"),
    S("image-repo-upper-case-path", "coredns_image_repo 'registry.k8s.io/CoreDNS/coredns'",
      coredns_image_repo="registry.k8s.io/CoreDNS/coredns"),
    S("image-tag-bang", "coredns_image_tag 'latest!' is not an image tag",
      coredns_image_tag="latest!"),
    S("image-tag-float", "pod_infra_image_tag 3.1 is not an image tag", pod_infra_image_tag=3.1),
    S("version-with-v", "etcd_version 'v3.6.8': write it without the leading v (3.6.8)",
      etcd_version="v3.6.8"),
    S("version-float", "containerd_version 2.2 is not a release", containerd_version=2.2),
    S("version-latest", "helm_version 'latest' is not a release", helm_version="latest"),
    S("kube-version-unsupported", "kube_version 1.30.4 is not supported", kube_version="1.30.4"),
    S("kube-version-minor-only", "kube_version 'v1.37' is not a release version",
      kube_version="v1.37"),
    # containerd registries
    S("mirrors-as-dict", "containerd_registries_mirrors must be a list",
      containerd_registries_mirrors={"docker.io": ["https://mirror.example.com"]}),
    S("mirror-without-mirrors", "containerd_registries_mirrors[0].mirrors must be a non-empty",
      containerd_registries_mirrors=[{"prefix": "docker.io"}]),
    S("mirror-host-space", "containerd_registries_mirrors[0].mirrors[0].host 'mirror example'",
      containerd_registries_mirrors=[{**MIRROR, "mirrors": [{"host": "mirror example"}]}]),
    S("mirror-capability-fetch", "capabilities ['pull', 'fetch'] must be a list of pull, "
      "resolve, push", containerd_registries_mirrors=[{**MIRROR, "mirrors": [
          {"host": "https://m.example.com", "capabilities": ["pull", "fetch"]}]}]),
    S("mirror-prefix-url", "containerd_registries_mirrors[0].prefix 'https://docker.io' is not",
      containerd_registries_mirrors=[{**MIRROR, "prefix": "https://docker.io"}]),
    S("mirror-prefix-twice", "containerd_registries_mirrors[1].prefix docker.io is listed twice",
      containerd_registries_mirrors=[MIRROR, MIRROR]),
    S("mirror-old-key", "containerd_registries_mirrors[0] has an unknown key 'endpoint'",
      containerd_registries_mirrors=[{**MIRROR, "endpoint": ["https://m.example.com"]}]),
    S("mirror-skip-verify-word", "skip_verify 'sometimes' is not a boolean",
      containerd_registries_mirrors=[{**MIRROR, "mirrors": [
          {"host": "https://m.example.com", "skip_verify": "sometimes"}]}]),
    S("auth-password-quote", "containerd_registry_auth[0].password has a double quote",
      containerd_registry_auth=[{**AUTH, "password": 'pa"ss'}]),
    S("auth-without-password", "containerd_registry_auth[0].password is missing",
      containerd_registry_auth=[{"registry": "registry.example.com", "username": "robot"}]),
    S("auth-kubespray-auth-key", "containerd_registry_auth[0] has a key 'auth' kubeforge does",
      containerd_registry_auth=[{**AUTH, "auth": "cm9ib3Q6c2VjcmV0"}]),
    S("auth-registry-url", "containerd_registry_auth[0].registry 'https://registry.example.com'",
      containerd_registry_auth=[{**AUTH, "registry": "https://registry.example.com"}]),
    S("extra-config-not-toml", "containerd_extra_config is not valid TOML",
      containerd_extra_config="[plugins\nfoo = "),
    # Durations, calico, add-ons, preflight's own
    S("duration-without-unit", "kube_apiserver_request_timeout '60' is not a duration",
      kube_apiserver_request_timeout="60"),
    S("calico-bgp", "calico_network_backend 'bird' (BGP) is not implemented",
      kube_network_plugin="calico", calico_crds_pinned=True, calico_network_backend="bird"),
    S("calico-mode-lower-case", "calico_vxlan_mode 'always' is unknown",
      kube_network_plugin="calico", calico_crds_pinned=True, calico_vxlan_mode="always"),
    S("metrics-replicas-word", "metrics_server_replicas 'two'", metrics_server_enabled=True,
      metrics_server_replicas="two"),
    S("supported-os-string", "preflight_supported_os must be a list of strings",
      preflight_supported_os="Debian 12"),
    # Host variables
    H("access-ip-typo", {"w1": {"access_ip": "10.0.0.300"}},
      "w1: access_ip '10.0.0.300' is not an IPv4 address"),
    H("access-ip-ipv6", {"w1": {"access_ip": "fd00::1"}}, "w1: access_ip 'fd00::1'"),
    H("access-ip-twice", {"w1": {"access_ip": "203.0.113.5"}, "w2": {"access_ip": "203.0.113.5"}},
      "duplicate access_ip 203.0.113.5 for hosts w1, w2"),
    H("access-ip-in-service-network", {"w1": {"access_ip": "10.233.0.50"}},
      "w1: access_ip 10.233.0.50 lies inside kube_service_addresses 10.233.0.0/18"),
    H("ip-ipv6", {"w1": {"ip": "fd00::11", "ansible_host": "fd00::11"}},
      "w1: its cluster address fd00::11 (ip) is IPv6"),
    H("ip-typo", {"w2": {"ip": "192.168.10.300"}}, "w2: ip '192.168.10.300' is not an IP address"),
    H("ip-twice", {"w2": {"ip": "192.168.10.14"}}, "duplicate host address 192.168.10.14",
      "w1 (ip)", "w2 (ip)"),
    H("etcd-member-name-twice", {"cp1": {"etcd_member_name": "etcd1"},
      "cp2": {"etcd_member_name": "etcd1"}},
      "duplicate etcd_member_name 'etcd1' for hosts cp1, cp2"),
    H("etcd-member-name-space", {"cp3": {"etcd_member_name": "etcd 3"}},
      "cp3: etcd_member_name 'etcd 3' is not a member name"),
    H("etcd-member-name-is-another-node", {"cp3": {"etcd_member_name": "cp1"}},
      "duplicate etcd_member_name 'cp1' for hosts cp1, cp3"),
    H("etcd-member-name-comma", {"cp2": {"etcd_member_name": "etcd2,etcd3"}},
      "cp2: etcd_member_name 'etcd2,etcd3'"),
    H("node-name-underscore", {"w1": {"kube_override_hostname": "worker_1"}},
      "w1: node name 'worker_1' (from kube_override_hostname)"),
    H("dns-domain-for-one-host", {"w1": {"dns_domain": "other.local"}},
      "dns_domain is not the same on every host", "w1: 'other.local'"),
    H("pods-subnet-for-the-workers", {h: {"kube_pods_subnet": "10.244.0.0/16"} for h in WORKERS},
      "kube_pods_subnet is not the same on every host of k8s_cluster", "w1, w2: '10.244.0.0/16'",
      "cp1, cp2, cp3: not set"),
    H("flannel-interface-per-host", {"w1": {"flannel_interface": "eth1"}},
      "flannel_interface is not the same on every host", "w1: 'eth1'"),
    H("max-pods-on-one-host", {"w1": {"kubelet_max_pods": 5000}},
      "w1: kubelet_max_pods 5000 is not a number of pods per node"),
    H("kube-reserved-switch-on-workers", {h: {"kube_reserved": True} for h in WORKERS},
      "w1, w2: kube_reserved True is kubespray's switch"),
    H("proxy-for-one-host", {"w2": {"http_proxy": "proxy:3128"}},
      "w2: http_proxy 'proxy:3128' is not a URL"),
    H("node-label-space", {"w1": {"node_labels": {"bad key": "x"}}},
      "w1: node_labels key 'bad key' is not a label name"),
    H("taint-without-effect", {"w2": {"node_taints": ["dedicated=infra"]}},
      "w2: node_taints[0] 'dedicated=infra' is not key=value:Effect"),
    H("taints-as-a-string", {"w2": {"node_taints": "dedicated=infra:NoSchedule"}},
      "w2: node_taints must be a list"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_broken_inventory_is_refused_naming_the_mistake(case: Case) -> None:
    found = run(case)
    assert any(all(f in e for f in case.expect) for e in found), (
        f"no error has all of {case.expect}: {found}"
    )
    assert len(found) == case.count, found


def test_the_corpus_is_broad() -> None:
    assert len(CASES) >= 100
    assert len({c.id for c in CASES}) == len(CASES), "case ids repeat"


# What a valid inventory may say -------------------------------------------------

VALID: dict[str, dict[str, Any]] = {
    "san-wildcard-ipv6-and-upper-case": {
        "supplementary_addresses_in_ssl_keys": ["*.example.com", "fd00::10", "API.example.com"]
    },
    "service-subnets-alone": {"kube_service_subnets": "10.96.0.0/16"},
    "both-names-agree": {
        "kube_service_addresses": "10.96.0.0/16",
        "kube_service_subnets": "10.96.0.0/16",
    },
    "service-network-slash-28": {"kube_service_addresses": "10.96.0.0/28"},
    "strings-from-templating": {
        "kube_log_level": "3",
        "kubelet_max_pods": "110",
        "kube_network_node_prefix": "24",
        "kube_apiserver_port": "6443",
    },
    "yes-no-strings": {"kubectl_localhost": "yes", "kube_proxy_strict_arp": "no"},
    "proxy-mode-ipvs": {"kube_proxy_mode": "ipvs", "kube_proxy_strict_arp": True},
    "proxy-mode-nftables": {"kube_proxy_mode": "nftables"},
    "nodeport-primary": {"kube_proxy_nodeport_addresses": ["primary"]},
    "nodeport-kubespray-text": {"kube_proxy_nodeport_addresses": "[10.0.0.0/8, 192.0.2.0/24]"},
    "nodeport-cidr-text": {"kube_proxy_nodeport_addresses_cidr": "10.0.0.0/8"},
    "gates": {
        "kube_feature_gates": ["PodLevelResources=true", "InPlacePodVerticalScaling=False"],
        "kubelet_feature_gates": {"AllAlpha": False},
    },
    "dns-none-and-upstreams": {"dns_mode": "none", "upstream_dns_servers": ["8.8.8.8", "::1"]},
    "tls-1-3": {"tls_min_version": "VersionTLS13", "tls_cipher_suites": []},
    "lab-mirrors-and-auth": {
        "kube_image_repo": "10.213.0.3:5000",
        "files_repo": "http://10.213.0.2",
        "containerd_registries_mirrors": [
            {
                "prefix": "10.213.0.3:5000",
                "server": "http://10.213.0.3:5000",
                "mirrors": [
                    {
                        "host": "http://10.213.0.3:5000",
                        "capabilities": ["pull", "resolve"],
                        "skip_verify": True,
                    }
                ],
            },
            {"prefix": "_default", "mirrors": [{"host": "mirror.example.com:5000"}]},
        ],
        "containerd_registry_auth": [AUTH],
    },
    "extra-config": {"containerd_extra_config": '[plugins."io.containerd.grpc.v1.cri"]\nx = 1\n'},
    "proxy-with-credentials": {
        "http_proxy": "http://user:pw@proxy.example.com:3128",
        "https_proxy": "http://proxy.example.com:3128",
        "no_proxy": "localhost,127.0.0.1,.svc",
    },
    "node-port-range": {"kube_apiserver_node_port_range": "30000-32000"},
    "reservations": {
        "eviction_hard": {"memory.available": "100Mi", "nodefs.inodesFree": "5%"},
        "kube_reserved": {"cpu": "100m", "memory": "256Mi", "pid": 1000},
        "system_reserved": {"ephemeral-storage": "2Gi"},
    },
    "flags": {
        "kube_apiserver_extra_args": {
            "audit-log-compress": True,
            "cors-allowed-origins": ["a", "b"],
            "event-ttl": None,
        },
        "etcd_extra_args": {"log-level": "warn"},
        "kubelet_config_extra_args": {"serializeImagePulls": True, "evictionSoft": {"a": "1"}},
    },
    "external-lb-by-name": {LB: {"address": "lb.example.com", "port": 443}},
    "oidc": {**OIDC, "kube_oidc_username_claim": "email", "kube_oidc_groups_prefix": "oidc:"},
    "etcd-timing": {"etcd_heartbeat_interval": 500, "etcd_election_timeout": 2500},
    "compaction-duration": {"etcd_compaction_retention": "30m"},
    "flannel-interface-address": {"flannel_interface": "192.168.10.11"},
    "flannel-regexp-kubespray": {"flannel_interface_regexp": "10\\\\.0\\\\.[0-2]\\\\.\\\\d+"},
    "checksums": {"kubeforge_checksums": {"kubelet": {"1.37.2": {"amd64": "a" * 64}}}},
}


@pytest.mark.parametrize("settings", VALID.values(), ids=VALID.keys())
def test_a_valid_setting_passes(settings: dict[str, Any]) -> None:
    assert run(Case("valid", settings=settings)) == []


def test_kubespray_host_variables_pass() -> None:
    """kubespray's sample inventory.ini: etcd_member_name on the etcd hosts,
    empty elsewhere, access_ip beside ip."""
    hosts = {
        **{h: {"etcd_member_name": f"etcd{i}", "access_ip": f"203.0.113.{i}"}
           for i, h in enumerate(CONTROL_PLANE, start=1)},
        **{h: {"etcd_member_name": ""} for h in WORKERS},
    }  # fmt: skip
    assert run(Case("kubespray", hosts=hosts)) == []


def test_a_value_set_for_every_host_alike_is_checked_once() -> None:
    every = {h: {"kubelet_max_pods": 5000} for h in HOSTS}
    settings = {"kubelet_max_pods": 5000}
    found = run(Case("everywhere", settings=settings, hosts=every))
    assert found == ["all hosts: kubelet_max_pods 5000 is not a number of pods per node (10-1000)"]


def test_secrets_never_appear_in_errors() -> None:
    secret = "hunter2-Very-Secret"
    cases: list[dict[str, Any]] = [
        {"http_proxy": f"http://user:{secret}@proxy:99999"},
        {"containerd_registry_auth": [{**AUTH, "password": f'{secret}"', "auth": "x"}]},
        {"containerd_registry_auth": {"registry": "r", "password": secret}},
        {"containerd_registry_auth": [{"registry": "bad registry", "password": secret}]},
    ]
    for settings in cases:
        found = run(Case("secret", settings=settings))
        assert found, settings
        assert not [e for e in found if secret in e], found


def test_every_host_error_names_its_host_and_every_other_all_hosts() -> None:
    for case in CASES:
        for error in run(case):
            head = error.split(": ", 1)[0]
            assert error.startswith(("all hosts: ", "group ", "duplicate ")) or all(
                h in HOSTS for h in head.split(", ")
            ), error
