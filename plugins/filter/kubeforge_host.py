"""Host-level preflight checks (role `preflight`), on gathered facts and the
output of one read-only probe the role runs on the host as root:

    cgroup_fs <type of /sys/fs/cgroup: cgroup2fs on cgroup v2, tmpfs on v1>
    <ss -Hltnp: listening TCP sockets and their processes, stderr included>
    ss_failed <rc>               (only when ss failed)

    kubeforge_host_errors(host, group_names, facts, probe_output, settings) -> list[str]
    kubeforge_host_interface(facts, address) -> str   (role apiserver_vip)

Each error names the host and the variable to change (or what to fix on the
host). `facts` is `ansible_facts` (keys without the ansible_ prefix).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MANAGED_GROUPS = ("etcd", "k8s_cluster", "kube_control_plane", "kube_node", "calico_rr")
ARCHITECTURES = ("x86_64", "aarch64")
LB_PROCESSES = ("nginx", "haproxy")
# Port of the VIP's haproxy when loadbalancer_apiserver has none (kubeforge_defaults).
VIP_DEFAULT_PORT = 8443
_PROCESS = re.compile(r'\("((?:[^"\\]|\\.)*)",pid=(\d+)')


@dataclass(frozen=True)
class Listener:
    address: str
    port: int
    processes: tuple[tuple[str, int], ...]  # (command name, pid); empty when unknown


@dataclass(frozen=True)
class Probe:
    cgroup_fs: str
    listeners: list[Listener]
    ss_error: str  # empty when ss worked


def parse_probe(text: str) -> Probe:
    cgroup_fs, ss_failed, other = "", False, []
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "cgroup_fs":
            cgroup_fs = value.strip()
        elif key == "ss_failed":
            ss_failed = True
        elif key != "LISTEN":
            other.append(line.strip())
    error = ("; ".join(o for o in other if o) or "failed") if ss_failed else ""
    return Probe(cgroup_fs, parse_listeners(text), error)


def parse_listeners(text: str) -> list[Listener]:
    """Parse `ss -Hltnp`: State Recv-Q Send-Q Local:Port Peer:Port [Process]."""
    out: list[Listener] = []
    for line in text.splitlines():
        fields = line.split(None, 5)
        if len(fields) < 5:
            continue
        address, _, port = fields[3].rpartition(":")
        if not port.isdigit():
            continue
        procs = tuple(
            (m[0], int(m[1])) for m in _PROCESS.findall(fields[5] if len(fields) > 5 else "")
        )
        out.append(Listener(address.split("%")[0].strip("[]"), int(port), procs))
    return out


@dataclass(frozen=True)
class Port:
    port: int
    component: str
    owners: frozenset[str]  # processes allowed to hold it (a deployed cluster)


def required_ports(group_names: Iterable[str], settings: Mapping[str, Any]) -> list[Port]:
    """Ports kubeforge's components listen on, on a host of these groups."""
    groups = set(group_names)
    want: list[tuple[int, str, str]] = []
    if "kube_control_plane" in groups:
        want += [
            (int(settings.get("kube_apiserver_port", 6443)), "kube-apiserver", "kube-apiserver"),
            (10257, "kube-controller-manager", "kube-controller-manager"),
            (10259, "kube-scheduler", "kube-scheduler"),
        ]
        port = vip_port(settings)
        if port is not None:
            want.append((port, "haproxy of the apiserver VIP", "haproxy"))
    if "etcd" in groups:
        want += [
            (int(settings.get("etcd_client_port", 2379)), "etcd client", "etcd"),
            (int(settings.get("etcd_peer_port", 2380)), "etcd peer", "etcd"),
        ]
    if "k8s_cluster" in groups:
        want += [(10250, "kubelet", "kubelet"), (10256, "kube-proxy health", "kube-proxy")]
        # The local load balancer runs on every node, control plane included
        # (the apiserver binds the host address, the balancer 127.0.0.1).
        if settings.get("apiserver_ha_mode", "local_lb") == "local_lb":
            port = int(settings.get("loadbalancer_apiserver_port", 6443))
            want += [(port, "local apiserver load balancer", p) for p in LB_PROCESSES]
    merged: dict[int, tuple[list[str], set[str]]] = {}
    for port, component, owner in want:
        names, owners = merged.setdefault(port, ([], set()))
        if component not in names:
            names.append(component)
        owners.add(owner[:15])  # the kernel's command name is at most 15 characters
    # After a switch away from local_lb, its load balancer still holds its port
    # until role node removes it: not a conflict.
    if "k8s_cluster" in groups and settings.get("apiserver_ha_mode", "local_lb") != "local_lb":
        port = _int(settings.get("loadbalancer_apiserver_port", 6443))
        if port in merged:
            merged[port][1].update(LB_PROCESSES)
    return [Port(p, " / ".join(n), frozenset(o)) for p, (n, o) in sorted(merged.items())]


def vip_port(settings: Mapping[str, Any]) -> int | None:
    """The port haproxy binds on the VIP (apiserver_ha_mode vip), else None."""
    lb = settings.get("loadbalancer_apiserver") or {}
    if settings.get("apiserver_ha_mode") != "vip" or not isinstance(lb, Mapping):
        return None
    port = _int(lb.get("port")) or _int(settings.get("loadbalancer_apiserver_default_port"))
    return port or VIP_DEFAULT_PORT


def check_ports(host: str, listeners: Sequence[Listener], ports: Sequence[Port]) -> list[str]:
    errors: list[str] = []
    for want in ports:
        for lst in listeners:
            if lst.port != want.port:
                continue
            names = {name for name, _ in lst.processes}
            if names and names <= want.owners:
                continue
            who = (
                ", ".join(f"{name} (pid {pid})" for name, pid in lst.processes)
                or "an unknown process"
            )
            errors.append(
                f"{host}: port {want.port} ({want.component}) is already in use on "
                f"{lst.address or '*'} by {who}; stop it or move it to another port"
            )
            break
    return errors


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def check_swap(host: str, facts: Mapping[str, Any], fail_swap_on: Any) -> list[str]:
    swap = _int(facts.get("swaptotal_mb"))
    if swap > 0 and _truthy(fail_swap_on):
        return [
            f"{host}: swap is on ({swap} MiB) while kubelet_fail_swap_on is true: turn it off "
            "(swapoff -a, and remove it from /etc/fstab) or set kubelet_fail_swap_on: false"
        ]
    return []


def check_memory(
    host: str, facts: Mapping[str, Any], group_names: Iterable[str], settings: Mapping[str, Any]
) -> list[str]:
    if "kube_control_plane" in set(group_names):
        var = "preflight_min_memory_mb_control_plane"
    else:
        var = "preflight_min_memory_mb_node"
    minimum = _int(settings.get(var))
    memory = _int(facts.get("memtotal_mb"))
    if memory < minimum:
        return [f"{host}: {memory} MiB of memory is below {var} ({minimum} MiB)"]
    return []


def check_os(host: str, facts: Mapping[str, Any], supported: Sequence[str]) -> list[str]:
    dist = str(facts.get("distribution", "unknown"))
    version = str(facts.get("distribution_version", ""))
    major = str(facts.get("distribution_major_version", ""))
    errors: list[str] = []
    if not {f"{dist} {major}", f"{dist} {version}"} & {str(s) for s in supported}:
        errors.append(
            f"{host}: {dist} {version} is not a supported OS "
            f"(preflight_supported_os: {', '.join(map(str, supported))})"
        )
    arch = facts.get("architecture")
    if arch not in ARCHITECTURES:
        errors.append(f"{host}: architecture {arch} is not supported ({', '.join(ARCHITECTURES)})")
    if facts.get("service_mgr") != "systemd":
        errors.append(f"{host}: init is {facts.get('service_mgr')}, kubeforge needs systemd")
    return errors


def check_cgroup(host: str, cgroup_fs: str, fail_cgroup_v1: Any) -> list[str]:
    if cgroup_fs.strip() != "cgroup2fs" and _truthy(fail_cgroup_v1):
        return [
            f"{host}: cgroup v1 (/sys/fs/cgroup is {cgroup_fs.strip() or 'unknown'}) while "
            "kubelet_fail_cgroup_v1 is true: boot with cgroup v2 "
            "(systemd.unified_cgroup_hierarchy=1) or set kubelet_fail_cgroup_v1: false"
        ]
    return []


def check_addresses(host: str, facts: Mapping[str, Any], settings: Mapping[str, Any]) -> list[str]:
    errors: list[str] = []
    own = [*facts.get("all_ipv4_addresses", []), *facts.get("all_ipv6_addresses", [])]
    ip = settings.get("ip")
    if ip not in (None, ""):
        try:
            wanted = ipaddress.ip_address(str(ip).strip())
        except ValueError:
            wanted = None  # reported by the inventory checks
        if wanted is not None and wanted not in {
            ipaddress.ip_address(a.split("%")[0]) for a in own
        }:
            errors.append(
                f"{host}: ip {ip} is not an address of this host (it has: {', '.join(own)})"
            )
    default = facts.get("default_ipv4") or {}
    if default.get("network") and default.get("netmask"):
        lan = ipaddress.ip_network(f"{default['network']}/{default['netmask']}", strict=False)
        for var in ("kube_service_addresses", "kube_pods_subnet"):
            try:
                net = ipaddress.ip_network(str(settings.get(var)).strip())
            except ValueError:
                continue  # reported by the inventory checks
            if net.version == lan.version and net.overlaps(lan):
                errors.append(
                    f"{host}: {var} {net} overlaps the host's network {lan} "
                    f"({default.get('interface', 'default route')})"
                )
    return errors


@dataclass(frozen=True)
class Interface:
    name: str
    addresses: tuple[ipaddress.IPv4Interface, ...]  # address with its network


def interfaces(facts: Mapping[str, Any]) -> list[Interface]:
    """The host's network interfaces with their IPv4 addresses, from the network facts."""
    out: list[Interface] = []
    for value in facts.values():
        if not isinstance(value, Mapping) or not value.get("device"):
            continue
        primary = value.get("ipv4")
        entries = [
            *(primary if isinstance(primary, list) else [primary]),
            *(value.get("ipv4_secondaries") or []),
        ]
        addresses: list[ipaddress.IPv4Interface] = []
        for entry in entries:
            if not isinstance(entry, Mapping) or not entry.get("address"):
                continue
            try:
                addresses.append(
                    ipaddress.IPv4Interface(f"{entry['address']}/{entry.get('netmask') or 32}")
                )
            except ValueError:
                continue
        out.append(Interface(str(value["device"]), tuple(addresses)))
    return sorted(out, key=lambda i: i.name)


def interface_of(facts: Mapping[str, Any], address: Any) -> Interface | None:
    """The interface holding `address` (an IPv4 address), None when none does."""
    try:
        wanted = ipaddress.IPv4Address(str(address).strip())
    except ValueError:
        return None
    for iface in interfaces(facts):
        if any(a.ip == wanted for a in iface.addresses):
            return iface
    return None


def kubeforge_host_interface(facts: Mapping[str, Any], address: Any) -> str:
    """Name of the interface holding `address`; '' when none does."""
    iface = interface_of(facts, address)
    return iface.name if iface else ""


def check_vip(host: str, facts: Mapping[str, Any], settings: Mapping[str, Any]) -> list[str]:
    """With apiserver_ha_mode vip, on a control-plane host: the interface that is to carry
    the VIP exists and the VIP lies in one of its networks."""
    lb = settings.get("loadbalancer_apiserver") or {}
    if settings.get("apiserver_ha_mode") != "vip" or not isinstance(lb, Mapping):
        return []
    try:
        vip = ipaddress.IPv4Address(str(lb.get("address")).strip())
    except ValueError:
        return []  # missing, a name or IPv6: reported by the inventory checks
    wanted = str(settings.get("apiserver_vip_interface") or "").strip()
    address = settings.get("address")
    if wanted:
        iface = next((i for i in interfaces(facts) if i.name == wanted), None)
        if iface is None:
            names = ", ".join(i.name for i in interfaces(facts))
            return [
                f"{host}: apiserver_vip_interface {wanted} is not an interface of this host "
                f"(it has: {names})"
            ]
        source = f"apiserver_vip_interface {wanted}"
    else:
        iface = interface_of(facts, address)
        if iface is None:
            return [
                f"{host}: no network interface holds its address {address} (ip, else "
                "ansible_host), the one that would carry the VIP "
                "(loadbalancer_apiserver.address): set apiserver_vip_interface"
            ]
        source = f"{iface.name}, the interface holding {address}"
    # A /32 is the VIP itself on the host holding it, not a network.
    networks = [a.network for a in iface.addresses if a.network.prefixlen < 32]
    if any(vip in net for net in networks):
        return []
    shown = ", ".join(str(n) for n in networks) or "none"
    return [
        f"{host}: loadbalancer_apiserver.address {vip} is outside the networks of {source} "
        f"({shown}): the VIP must be a free address in the control-plane hosts' subnet"
    ]


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def kubeforge_host_errors(
    host: str,
    group_names: Iterable[str],
    facts: Mapping[str, Any],
    probe_output: str,
    settings: Mapping[str, Any],
) -> list[str]:
    """Every problem of one host; none for hosts outside kubeforge's groups."""
    groups = list(group_names)
    if not set(groups) & set(MANAGED_GROUPS):
        return []
    probe = parse_probe(probe_output)
    errors = [
        *check_os(host, facts, settings.get("preflight_supported_os") or []),
        *check_memory(host, facts, groups, settings),
        *check_addresses(host, facts, settings),
    ]
    if "kube_control_plane" in groups:
        errors += check_vip(host, facts, settings)
    if "k8s_cluster" in groups:
        errors += check_swap(host, facts, settings.get("kubelet_fail_swap_on", True))
        errors += check_cgroup(host, probe.cgroup_fs, settings.get("kubelet_fail_cgroup_v1", True))
    if probe.ss_error:
        errors.append(
            f"{host}: cannot list listening ports with `ss -Hltnp` ({probe.ss_error}); "
            "install iproute2"
        )
    else:
        errors += check_ports(host, probe.listeners, required_ports(groups, settings))
    return errors


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "kubeforge_host_errors": kubeforge_host_errors,
            "kubeforge_host_interface": kubeforge_host_interface,
        }
