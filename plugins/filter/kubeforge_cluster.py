"""Preflight's checks against the running cluster (role `preflight`): settings
that cannot change once a cluster runs are compared with what it runs, and a
change is refused before any host is touched.

    kubeforge_cluster_errors(probe_output, settings) -> list[str]

`probe_output` is what roles/preflight/files/cluster-probe.sh printed on the
first control-plane host; `settings` holds kube_network_plugin, the service
and pod networks (kube_service_subnets / kube_pods_subnets, else
kube_service_addresses / kube_pods_subnet), cluster_name, dns_domain and
calico's pool settings.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# DaemonSet (namespace/name) of each network plugin.
PLUGIN_DAEMONSETS = {"kube-flannel/kube-flannel": "flannel", "kube-system/calico-node": "calico"}
DEFAULT_POOL = "default-ipv4-ippool"
RESET_HINT = "reset.yml first to redeploy with it"


@dataclass
class Running:
    state: str = "none"  # none, unreachable, up
    detail: str = ""
    service_ip: str = ""
    pod_cidrs: dict[str, str] = field(default_factory=dict)
    daemonsets: dict[str, list[str]] = field(default_factory=dict)  # name -> env names
    pools: dict[str, dict[str, Any]] = field(default_factory=dict)
    cluster_names: list[str] = field(default_factory=list)  # of the admin kubeconfig
    domains: dict[str, str] = field(default_factory=dict)  # kubelet / coredns -> domain


def parse(text: str) -> Running:
    run = Running()
    for line in text.splitlines():
        key, _, rest = line.strip().partition(" ")
        fields = rest.split()
        if key == "cluster" and fields:
            run.state, run.detail = fields[0], " ".join(fields[1:])
        elif key == "service" and fields:
            run.service_ip = fields[0]
        elif key == "podcidr" and len(fields) == 2:
            run.pod_cidrs[fields[0]] = fields[1]
        elif key == "clustername" and fields:
            run.cluster_names.append(fields[0])
        elif key == "domain" and len(fields) == 2:
            run.domains[fields[0]] = fields[1].rstrip(".")
        elif key == "daemonset" and fields:
            run.daemonsets[fields[0]] = fields[1:]
        elif key == "ippool" and len(fields) >= 3:
            run.pools[fields[0]] = {
                "cidr": fields[1],
                "blockSize": fields[2],
                "vxlanMode": fields[3] if len(fields) > 3 else "Never",
            }
        elif key == "etcd-ippool":
            try:
                pool = json.loads(rest)
            except ValueError:
                continue
            spec = pool.get("spec", {})
            run.pools[pool.get("metadata", {}).get("name", "")] = {
                "cidr": spec.get("cidr", ""),
                "blockSize": str(spec.get("blockSize", "")),
                "vxlanMode": spec.get("vxlanMode") or "Never",
            }
    return run


def running_plugin(run: Running) -> tuple[str, str] | None:
    for name, plugin in PLUGIN_DAEMONSETS.items():
        if name in run.daemonsets:
            return plugin, name
    return None


def _net(value: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(str(value).strip())
    except ValueError:
        return None


def _network(settings: Mapping[str, Any], plural: str, singular: str) -> tuple[str, Any]:
    """The variable a network comes from: kubespray's plural name (which every
    role reads) when it differs from ours, which it defaults to."""
    value = settings.get(plural)
    if value is not None and str(value).strip() != str(settings.get(singular)).strip():
        return plural, value
    return singular, settings.get(singular)


def check_networks(run: Running, settings: Mapping[str, Any]) -> list[str]:
    errors: list[str] = []
    svc_var, svc_value = _network(settings, "kube_service_subnets", "kube_service_addresses")
    services = _net(svc_value)
    if services is not None and run.service_ip:
        first = str(next(services.hosts(), ""))
        if run.service_ip != first:
            errors.append(
                f"{svc_var} {services}: the running cluster's kubernetes service "
                f"has {run.service_ip}, so its service network is another one; the service "
                f"network of a running cluster cannot change ({RESET_HINT})"
            )
    pods_var, pods_value = _network(settings, "kube_pods_subnets", "kube_pods_subnet")
    pods = _net(pods_value)
    outside = sorted(
        f"{node} ({cidr})"
        for node, cidr in run.pod_cidrs.items()
        if pods is not None
        and (net := _net(cidr)) is not None
        and not (net.version == pods.version and net.subnet_of(pods))  # type: ignore[arg-type]
    )
    if outside:
        errors.append(
            f"{pods_var} {pods}: the running cluster gave nodes pod networks outside it "
            f"({', '.join(outside)}); the pod network of a running cluster cannot change "
            f"({RESET_HINT})"
        )
    return errors


def check_plugin(run: Running, settings: Mapping[str, Any]) -> list[str]:
    wanted = settings.get("kube_network_plugin")
    found = running_plugin(run)
    if found is None:
        return []
    plugin, daemonset = found
    if plugin != wanted:
        return [
            f"kube_network_plugin {wanted!r}: the running cluster runs {plugin} (DaemonSet "
            f"{daemonset}); switching the network plugin of a running cluster is not "
            f"supported: keep kube_network_plugin: {plugin}, or {RESET_HINT}"
        ]
    if plugin != "calico":
        return []
    errors: list[str] = []
    env = run.daemonsets[daemonset]
    datastore = "etcd" if "ETCD_ENDPOINTS" in env else "kdd"
    if settings.get("calico_datastore") != datastore:
        errors.append(
            f"calico_datastore {settings.get('calico_datastore')!r}: the running calico uses "
            f"{datastore}; calico's datastore cannot change in place: keep calico_datastore: "
            f"{datastore}, or {RESET_HINT}"
        )
        return errors
    pool = run.pools.get(DEFAULT_POOL)
    if pool is None:
        return errors
    checks = (
        ("calico_pool_cidr", "cidr"),
        ("calico_pool_blocksize", "blockSize"),
        ("calico_vxlan_mode", "vxlanMode"),
    )
    for var, key in checks:
        want, have = str(settings.get(var, "")).strip(), str(pool[key]).strip()
        if (_net(want) != _net(have)) if key == "cidr" else want != have:
            errors.append(
                f"{var} {want!r}: the running cluster's IP pool {DEFAULT_POOL} has {key} "
                f"{have!r}; kubeforge does not change a pool in place: set {var}: {have}, "
                f"or change the pool with calicoctl first, or {RESET_HINT}"
            )
    return errors


def check_identity(run: Running, settings: Mapping[str, Any]) -> list[str]:
    """cluster_name and dns_domain are fixed once the cluster runs: the domain
    is in every Service's name, every kubelet's clusterDomain and the
    service-account tokens' issuer; the name in every kubeconfig, etcd's
    cluster token and the VIP's VRRP router id."""
    errors: list[str] = []
    name = str(settings.get("cluster_name", "")).strip()
    if name and run.cluster_names and name not in run.cluster_names:
        errors.append(
            f"cluster_name {name!r}: the running cluster is named {run.cluster_names[0]!r} "
            "(its admin kubeconfig); the name of a running cluster cannot change (it is in "
            "every kubeconfig, etcd's cluster token and the VIP's router id): keep "
            f"cluster_name: {run.cluster_names[0]}, or {RESET_HINT}"
        )
    domain = str(settings.get("dns_domain", "")).strip().rstrip(".")
    running = run.domains.get("kubelet") or run.domains.get("coredns")
    if domain and running and domain != running:
        where = "the kubelets' clusterDomain" if "kubelet" in run.domains else "CoreDNS's zone"
        errors.append(
            f"dns_domain {domain!r}: the running cluster's DNS domain is {running!r} ({where}); "
            "it cannot change in place (Service names, every kubelet and the service-account "
            f"tokens' issuer use it): keep dns_domain: {running}, or {RESET_HINT}"
        )
    return errors


def kubeforge_cluster_errors(probe: str, settings: Mapping[str, Any]) -> list[str]:
    run = parse(probe)
    if run.state != "up":
        return []
    return [
        *check_plugin(run, settings),
        *check_networks(run, settings),
        *check_identity(run, settings),
    ]


def kubeforge_cluster_state(probe: str) -> str:
    """none, up, or "unreachable: <error>" (for a warning)."""
    run = parse(probe)
    return f"{run.state}: {run.detail}" if run.state == "unreachable" else run.state


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "kubeforge_cluster_errors": kubeforge_cluster_errors,
            "kubeforge_cluster_state": kubeforge_cluster_state,
        }
