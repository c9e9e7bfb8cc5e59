"""Preflight's checks against the running cluster (role `preflight`): settings
that cannot change once a cluster runs are compared with what it runs, and a
change is refused before any host is touched.

    kubeforge_cluster_errors(probe_output, settings) -> list[str]

`probe_output` is what roles/preflight/files/cluster-probe.sh printed on the
first control-plane host; `settings` holds kube_network_plugin,
kube_service_addresses, kube_pods_subnet and calico's pool settings.
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


def check_networks(run: Running, settings: Mapping[str, Any]) -> list[str]:
    errors: list[str] = []
    services = _net(settings.get("kube_service_addresses"))
    if services is not None and run.service_ip:
        first = str(next(services.hosts(), ""))
        if run.service_ip != first:
            errors.append(
                f"kube_service_addresses {services}: the running cluster's kubernetes service "
                f"has {run.service_ip}, so its service network is another one; the service "
                f"network of a running cluster cannot change ({RESET_HINT})"
            )
    pods = _net(settings.get("kube_pods_subnet"))
    outside = sorted(
        f"{node} ({cidr})"
        for node, cidr in run.pod_cidrs.items()
        if pods is not None
        and (net := _net(cidr)) is not None
        and not (net.version == pods.version and net.subnet_of(pods))  # type: ignore[arg-type]
    )
    if outside:
        errors.append(
            f"kube_pods_subnet {pods}: the running cluster gave nodes pod networks outside it "
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


def kubeforge_cluster_errors(probe: str, settings: Mapping[str, Any]) -> list[str]:
    run = parse(probe)
    if run.state != "up":
        return []
    return [*check_plugin(run, settings), *check_networks(run, settings)]


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
