"""Inventory-level preflight checks (role `preflight`).

Every check is a pure function returning a list of error strings; each string
names the host (when one is involved) and the variable or group to fix. The
role joins them and fails once, listing all of them.

    kubeforge_inventory_errors(groups, hostvars, settings) -> list[str]

`groups` is Ansible's `groups` (after the opening play mapped kubespray's old
group names), `hostvars` Ansible's `hostvars` (only `ip`, `ansible_host` and
`kube_override_hostname` are read), `settings` the cluster-wide variables listed
in SETTINGS, and those of VIP_SETTINGS when the inventory sets them.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

NETWORK_PLUGINS = ("flannel", "calico")
HA_MODES = ("local_lb", "vip", "external")
LB_TYPES = ("nginx", "haproxy")
# Control-plane flags that take a Go duration ("40s", "1m0s", "1h30m").
DURATION_SETTINGS = (
    "kube_apiserver_request_timeout",
    "kube_apiserver_shutdown_delay_duration",
    "kube_controller_node_monitor_grace_period",
    "kube_controller_node_monitor_period",
)
SETTINGS = (
    "kube_version",
    "kube_supported_versions",
    "kube_network_plugin",
    "kube_service_addresses",
    "kube_pods_subnet",
    "kube_network_node_prefix",
    "kube_apiserver_port",
    "apiserver_ha_mode",
    "loadbalancer_apiserver_type",
    "loadbalancer_apiserver_port",
    "loadbalancer_apiserver",
    *DURATION_SETTINGS,
)

# calico's settings (kubespray's names), checked with kube_network_plugin calico.
CALICO_SETTINGS = (
    "calico_version",
    "calico_datastore",
    "calico_network_backend",
    "calico_vxlan_mode",
    "calico_ipip_mode",
    "calico_vxlan_vni",
    "calico_vxlan_port",
    "calico_pool_cidr",
    "calico_pool_blocksize",
    "calico_pool_nat_outgoing",
    "calico_mtu",
    "calico_veth_mtu",
    "calico_ip_auto_method",
    "calico_iptables_backend",
    "calico_felix_prometheusmetricsenabled",
    "calico_felix_prometheusmetricsport",
    "calico_loglevel",
    "calico_node_extra_envs",
    "calico_crds_download_url",
    "calico_crds_pinned",
)
CALICO_DATASTORES = ("kdd", "etcd")
CALICO_VXLAN_MODES = ("Always", "CrossSubnet")
CALICO_IPTABLES_BACKENDS = ("Auto", "Legacy", "NFT")
CALICO_LOG_LEVELS = ("debug", "info", "warning", "error")
CALICO_AUTO_METHODS = ("first-found", "kubernetes-internal-ip")
CALICO_AUTO_METHOD_PREFIXES = ("interface=", "skip-interface=", "can-reach=", "cidr=")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_RELEASE = re.compile(r"\d+\.\d+\.\d+")

# Settings of role apiserver_vip, checked when the inventory sets them (their
# defaults are derived and valid); the password is handed over as its length only.
VIP_SETTINGS = ("apiserver_vip_router_id", "apiserver_vip_auth_pass_length")

_VERSION = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")
_DURATION = re.compile(r"0|((\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h))+")
_DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = re.compile(rf"{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*")


def _members(groups: Mapping[str, Sequence[str]], name: str) -> list[str]:
    return list(groups.get(name) or [])


def _ip(value: Any) -> IPAddress | None:
    try:
        return ipaddress.ip_address(str(value).strip())
    except ValueError:
        return None


def _hosts_list(hosts: Iterable[str]) -> str:
    return ", ".join(sorted(hosts))


# Groups -----------------------------------------------------------------------


def check_groups(groups: Mapping[str, Sequence[str]], network_plugin: str = "flannel") -> list[str]:
    errors: list[str] = []
    control_plane = _members(groups, "kube_control_plane")
    nodes = _members(groups, "kube_node")
    etcd = _members(groups, "etcd")
    cluster = set(_members(groups, "k8s_cluster"))
    if not control_plane:
        errors.append(
            "group kube_control_plane (old name kube-master) is empty: "
            "list at least one host (three for HA)"
        )
    if not etcd:
        errors.append("group etcd is empty: list an odd number of hosts (1, 3 or 5)")
    elif len(etcd) % 2 == 0:
        errors.append(
            f"group etcd has {len(etcd)} members ({_hosts_list(etcd)}): etcd needs an odd "
            "number (1, 3 or 5) to keep quorum"
        )
    for group in ("kube_control_plane", "kube_node"):
        for host in sorted(set(_members(groups, group)) - cluster):
            errors.append(
                f"{host}: in group {group} but not in k8s_cluster: add it to k8s_cluster "
                "(or leave k8s_cluster out of the inventory to derive it)"
            )
    for host in sorted(cluster - set(control_plane) - set(nodes)):
        errors.append(
            f"{host}: in group k8s_cluster but in neither kube_control_plane nor kube_node"
        )
    calico_rr = _members(groups, "calico_rr")
    if calico_rr and network_plugin != "calico":
        errors.append(
            f"group calico_rr lists {_hosts_list(calico_rr)} but kube_network_plugin is "
            f"{network_plugin!r}: route reflectors only exist with calico"
        )
    return errors


# Addresses and names ----------------------------------------------------------


def host_address(host: str, hvars: Mapping[str, Any]) -> tuple[IPAddress | None, str | None]:
    """A host's address (`ip`, else `ansible_host`, else its name) and the
    variable it came from; (None, None) when it is not an IP address (a DNS
    name in ansible_host, say)."""
    if hvars.get("ip") not in (None, ""):
        return _ip(hvars["ip"]), "ip"
    if hvars.get("ansible_host") not in (None, ""):
        addr = _ip(hvars["ansible_host"])
        return (addr, "ansible_host") if addr else (None, None)
    addr = _ip(host)
    return (addr, "inventory_hostname") if addr else (None, None)


def check_addresses(hosts: Sequence[str], hostvars: Mapping[str, Mapping[str, Any]]) -> list[str]:
    errors: list[str] = []
    seen: dict[IPAddress, list[str]] = {}
    for host in hosts:
        hvars = hostvars.get(host) or {}
        addr, source = host_address(host, hvars)
        if source == "ip" and addr is None:
            errors.append(f"{host}: ip {str(hvars['ip'])!r} is not an IP address")
        if addr is not None:
            seen.setdefault(addr, []).append(f"{host} ({source})")
    for addr, owners in seen.items():
        if len(owners) > 1:
            errors.append(
                f"duplicate host address {addr}: {', '.join(owners)}; every host needs its own"
            )
    return errors


def node_name(host: str, hvars: Mapping[str, Any]) -> str:
    override = hvars.get("kube_override_hostname")
    return str(override if override not in (None, "") else host).lower()


def check_node_names(hosts: Sequence[str], hostvars: Mapping[str, Mapping[str, Any]]) -> list[str]:
    errors: list[str] = []
    seen: dict[str, list[str]] = {}
    for host in hosts:
        hvars = hostvars.get(host) or {}
        name = node_name(host, hvars)
        source = (
            "kube_override_hostname"
            if hvars.get("kube_override_hostname") not in (None, "")
            else "inventory_hostname"
        )
        if len(name) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(name):
            errors.append(
                f"{host}: node name {name!r} (from {source}) is not a valid DNS-1123 subdomain "
                "(lowercase letters, digits, '-' and '.'); set kube_override_hostname"
            )
        seen.setdefault(name, []).append(host)
    for name, owners in seen.items():
        if len(owners) > 1:
            errors.append(
                f"duplicate node name {name!r} for hosts {_hosts_list(owners)} "
                "(node name = kube_override_hostname, else inventory_hostname, lowercased)"
            )
    return errors


# Networks ---------------------------------------------------------------------


def _parse_cidr(var: str, value: Any) -> tuple[IPNetwork | None, str | None]:
    try:
        return ipaddress.ip_network(str(value).strip()), None
    except ValueError as exc:
        return None, f"{var} {str(value)!r} is not a valid CIDR ({exc})"


def check_networks(
    settings: Mapping[str, Any],
    hosts: Sequence[str],
    hostvars: Mapping[str, Mapping[str, Any]],
    cluster_size: int,
) -> list[str]:
    errors: list[str] = []
    nets: dict[str, IPNetwork] = {}
    for var in ("kube_service_addresses", "kube_pods_subnet"):
        net, err = _parse_cidr(var, settings.get(var))
        if err:
            errors.append(err)
        elif net is not None:
            nets[var] = net
    if len(nets) == 2:
        svc, pods = nets["kube_service_addresses"], nets["kube_pods_subnet"]
        if svc.version == pods.version and svc.overlaps(pods):
            errors.append(f"kube_service_addresses {svc} overlaps kube_pods_subnet {pods}")
    for var, net in nets.items():
        for host in hosts:
            addr, source = host_address(host, hostvars.get(host) or {})
            if addr is not None and addr in net:
                errors.append(f"{host}: address {addr} ({source}) lies inside {var} {net}")
        lb = settings.get("loadbalancer_apiserver") or {}
        lb_addr = _ip(lb.get("address")) if isinstance(lb, Mapping) else None
        if lb_addr is not None and lb_addr in net:
            errors.append(f"loadbalancer_apiserver.address {lb_addr} lies inside {var} {net}")
    pods_net = nets.get("kube_pods_subnet")
    prefix = settings.get("kube_network_node_prefix")
    if pods_net is not None and prefix is not None:
        try:
            node_prefix = int(prefix)
        except (TypeError, ValueError):
            node_prefix = -1
        if not pods_net.prefixlen < node_prefix <= pods_net.max_prefixlen:
            errors.append(
                f"kube_network_node_prefix {prefix!r} must be longer than kube_pods_subnet's "
                f"/{pods_net.prefixlen} and at most {pods_net.max_prefixlen}"
            )
        elif 2 ** (node_prefix - pods_net.prefixlen) < cluster_size:
            errors.append(
                f"kube_pods_subnet {pods_net} split into /{node_prefix} "
                f"(kube_network_node_prefix) has room for "
                f"{2 ** (node_prefix - pods_net.prefixlen)} nodes, k8s_cluster has {cluster_size}"
            )
    return errors


# Versions and choices ---------------------------------------------------------


def _minor(version: Any) -> tuple[int, int] | None:
    match = _VERSION.fullmatch(str(version).strip())
    return (int(match[1]), int(match[2])) if match else None


def check_version(version: Any, supported: Sequence[Any]) -> list[str]:
    minors: dict[tuple[int, int], str] = {}
    errors: list[str] = []
    for entry in supported or []:
        minor = _minor(entry)
        if minor is None:
            errors.append(f"kube_supported_versions entry {str(entry)!r} is not X.Y.Z")
        else:
            minors[minor] = str(entry)
    wanted = _minor(version)
    if wanted is None:
        errors.append(f"kube_version {str(version)!r} is not a release version (X.Y.Z or vX.Y.Z)")
    elif wanted not in minors:
        errors.append(
            f"kube_version {version} is not supported: its minor must be one of "
            f"{', '.join(f'{a}.{b}' for a, b in minors)} (kube_supported_versions)"
        )
    return errors


def check_network_plugin(plugin: Any) -> list[str]:
    if plugin in NETWORK_PLUGINS:
        return []
    return [f"kube_network_plugin {plugin!r} is unknown; use one of: {', '.join(NETWORK_PLUGINS)}"]


def _int_in(var: str, value: Any, low: int, high: int, what: str) -> list[str]:
    try:
        ok = low <= int(value) <= high and str(int(value)) == str(value).strip()
    except (TypeError, ValueError):
        ok = False
    return [] if ok else [f"{var} {value!r} is not {what} ({low}-{high})"]


def _choice(var: str, value: Any, choices: Sequence[str]) -> list[str]:
    if value in choices:
        return []
    return [f"{var} {value!r} is unknown; use one of: {', '.join(choices)}"]


def _bool(var: str, value: Any) -> list[str]:
    if isinstance(value, bool) or str(value).lower() in ("true", "false", "yes", "no"):
        return []
    return [f"{var} {value!r} is not a boolean (true or false)"]


def _inside(inner: IPNetwork, outer: IPNetwork) -> bool:
    return inner.version == outer.version and inner.subnet_of(outer)  # type: ignore[arg-type]


def check_calico(settings: Mapping[str, Any], groups: Mapping[str, Sequence[str]]) -> list[str]:
    """kube_network_plugin calico: VXLAN only (no BGP), valid pool, MTU and felix settings."""
    if settings.get("kube_network_plugin") != "calico":
        return []
    s = settings
    errors: list[str] = []
    calico_rr = _members(groups, "calico_rr")
    if calico_rr:
        errors.append(
            f"group calico_rr lists {_hosts_list(calico_rr)}: route reflectors need BGP "
            "(calico_network_backend bird), which kubeforge does not implement; "
            "empty the group (calico runs VXLAN and needs none)"
        )
    backend = s.get("calico_network_backend")
    if backend == "bird":
        errors.append(
            "calico_network_backend 'bird' (BGP) is not implemented: use vxlan "
            "(calico_vxlan_mode Always or CrossSubnet)"
        )
    elif backend != "vxlan":
        errors += _choice("calico_network_backend", backend, ("vxlan",))
    if str(s.get("calico_version", "")).startswith("v"):
        errors.append(
            f"calico_version {s['calico_version']!r}: write it without the leading v "
            f"({str(s['calico_version'])[1:]})"
        )
    elif not _RELEASE.fullmatch(str(s.get("calico_version", ""))):
        errors.append(f"calico_version {s.get('calico_version')!r} is not a release (X.Y.Z)")
    errors += _choice("calico_datastore", s.get("calico_datastore"), CALICO_DATASTORES)
    mode = s.get("calico_vxlan_mode")
    if mode == "Never":
        errors.append(
            "calico_vxlan_mode 'Never' leaves pod traffic between nodes unrouted without BGP, "
            "which kubeforge does not implement: use Always or CrossSubnet"
        )
    else:
        errors += _choice("calico_vxlan_mode", mode, CALICO_VXLAN_MODES)
    ipip = s.get("calico_ipip_mode")
    if ipip not in (None, "", "Never"):
        errors.append(
            f"calico_ipip_mode {ipip!r}: IP-in-IP is not implemented (kubeforge's calico runs "
            "VXLAN); leave it unset or Never and use calico_vxlan_mode"
        )
    errors += _int_in("calico_vxlan_vni", s.get("calico_vxlan_vni"), 1, 16777215, "a VXLAN VNI")
    errors += _port_error("calico_vxlan_port", s.get("calico_vxlan_port"))
    errors += _port_error(
        "calico_felix_prometheusmetricsport", s.get("calico_felix_prometheusmetricsport")
    )
    pool, err = _parse_cidr("calico_pool_cidr", s.get("calico_pool_cidr"))
    pods, _ = _parse_cidr("kube_pods_subnet", s.get("kube_pods_subnet"))
    if err:
        errors.append(err)
    elif pool is not None and pool.version != 4:
        errors.append(f"calico_pool_cidr {pool} is IPv6: kubeforge's calico pool is IPv4")
    elif pool is not None and pods is not None and not _inside(pool, pods):
        errors.append(
            f"calico_pool_cidr {pool} is not inside kube_pods_subnet {pods}: "
            "the pool must be kube_pods_subnet or a part of it"
        )
    low = pool.prefixlen if pool is not None and pool.version == 4 else 20
    errors += _int_in(
        "calico_pool_blocksize", s.get("calico_pool_blocksize"), max(low, 20), 32,
        "a block prefix length within calico_pool_cidr",
    )  # fmt: skip
    for var in ("calico_mtu", "calico_veth_mtu"):
        value = s.get(var)
        if str(value).strip() != "0":
            errors += _int_in(var, value, 576, 65535, "an MTU (0 derives it from the host)")
    errors += _choice("calico_iptables_backend", s.get("calico_iptables_backend"),
                      CALICO_IPTABLES_BACKENDS)  # fmt: skip
    errors += _choice("calico_loglevel", s.get("calico_loglevel"), CALICO_LOG_LEVELS)
    for var in ("calico_felix_prometheusmetricsenabled", "calico_pool_nat_outgoing"):
        errors += _bool(var, s.get(var))
    method = str(s.get("calico_ip_auto_method", ""))
    if method not in CALICO_AUTO_METHODS and not (
        method.startswith(CALICO_AUTO_METHOD_PREFIXES) and "=" in method and method[-1] != "="
    ):
        errors.append(
            f"calico_ip_auto_method {method!r} is unknown; use kubernetes-internal-ip, "
            "first-found, interface=REGEX, skip-interface=REGEX, can-reach=DEST or cidr=CIDR"
        )
    envs = s.get("calico_node_extra_envs")
    if not isinstance(envs, Mapping):
        errors.append("calico_node_extra_envs must be a dict (variable name: value)")
    else:
        for name, value in envs.items():
            if not _ENV_NAME.fullmatch(str(name)):
                errors.append(f"calico_node_extra_envs: {name!r} is not a variable name")
            elif isinstance(value, (Mapping, list)):
                errors.append(f"calico_node_extra_envs.{name} must be a string, number or boolean")
    url = str(s.get("calico_crds_download_url", ""))
    if (
        s.get("calico_datastore") == "kdd"
        and not s.get("calico_crds_pinned")
        and url.startswith("https://github.com/")
    ):
        errors.append(
            f"calico_crds_download_url {url} is GitHub's source archive, for which GitHub "
            "publishes no checksum: pin its sha256 in kubeforge_checksums.calico_crds"
            f"['{s.get('calico_version')}'].<arch>, or serve it from files_repo with a "
            "<file>.sha256 beside it"
        )
    return errors


def check_durations(settings: Mapping[str, Any]) -> list[str]:
    """The duration flags in Go's syntax, which the components parse at start:
    a bad one would stop an apiserver from starting halfway through a run."""
    errors: list[str] = []
    for var in DURATION_SETTINGS:
        value = settings.get(var)
        if var in settings and not (isinstance(value, str) and _DURATION.fullmatch(value)):
            errors.append(
                f"{var} {value!r} is not a duration: a number with a unit, "
                "for example 5s, 40s, 1m0s or 1h30m (units: ns, us, ms, s, m, h)"
            )
    return errors


def _port_error(var: str, value: Any) -> list[str]:
    try:
        ok = 0 < int(value) < 65536 and str(int(value)) == str(value).strip()
    except (TypeError, ValueError):
        ok = False
    return [] if ok else [f"{var} {value!r} is not a TCP port (1-65535)"]


def check_apiserver_access(settings: Mapping[str, Any]) -> list[str]:
    errors: list[str] = []
    mode = settings.get("apiserver_ha_mode")
    if mode not in HA_MODES:
        errors.append(f"apiserver_ha_mode {mode!r} is unknown; use one of: {', '.join(HA_MODES)}")
    lb_type = settings.get("loadbalancer_apiserver_type")
    if lb_type not in LB_TYPES:
        errors.append(
            f"loadbalancer_apiserver_type {lb_type!r} is unknown; use one of: {', '.join(LB_TYPES)}"
        )
    for var in ("kube_apiserver_port", "loadbalancer_apiserver_port"):
        if var in settings:
            errors += _port_error(var, settings[var])
    lb = settings.get("loadbalancer_apiserver") or {}
    if not isinstance(lb, Mapping):
        return [*errors, "loadbalancer_apiserver must be a dict {address: ..., port: ...}"]
    if mode in ("external", "vip") and lb.get("address") in (None, ""):
        errors.append(
            f"apiserver_ha_mode {mode} needs loadbalancer_apiserver.address "
            f"({'your load balancer' if mode == 'external' else 'the virtual IP'})"
        )
    if mode == "vip" and lb.get("address") not in (None, "") and _ip(lb["address"]) is None:
        errors.append(
            f"loadbalancer_apiserver.address {str(lb['address'])!r} must be an IP address "
            "with apiserver_ha_mode vip"
        )
    if "port" in lb:
        errors += _port_error("loadbalancer_apiserver.port", lb["port"])
    return errors


def check_vip(
    settings: Mapping[str, Any], hosts: Sequence[str], hostvars: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    """apiserver_ha_mode vip: a usable IPv4 VIP that no host has, valid VRRP settings."""
    lb = settings.get("loadbalancer_apiserver") or {}
    if settings.get("apiserver_ha_mode") != "vip" or not isinstance(lb, Mapping):
        return []
    errors: list[str] = []
    vip = _ip(lb.get("address"))
    if vip is not None and vip.version != 4:
        errors.append(
            f"loadbalancer_apiserver.address {vip} is IPv6: apiserver_ha_mode vip supports "
            "IPv4 VIPs only; use apiserver_ha_mode external with your own load balancer"
        )
    elif vip is not None and (vip.is_loopback or vip.is_multicast or vip.is_unspecified):
        errors.append(
            f"loadbalancer_apiserver.address {vip} cannot be a VIP: "
            "use a free address of the control-plane hosts' subnet"
        )
    elif vip is not None:
        for host in hosts:
            addr, source = host_address(host, hostvars.get(host) or {})
            if addr == vip:
                errors.append(
                    f"{host}: its address {addr} ({source}) is loadbalancer_apiserver.address, "
                    "the VIP: the VIP must be an address no host has"
                )
    router_id = settings.get("apiserver_vip_router_id")
    if router_id not in (None, ""):
        try:
            ok = 1 <= int(router_id) <= 255 and str(int(router_id)) == str(router_id).strip()
        except (TypeError, ValueError):
            ok = False
        if not ok:
            errors.append(
                f"apiserver_vip_router_id {router_id!r} is not a VRRP virtual router id (1-255)"
            )
    length = settings.get("apiserver_vip_auth_pass_length")
    if length not in (None, "") and str(length).strip() not in [str(n) for n in range(1, 9)]:
        errors.append(
            f"apiserver_vip_auth_pass has {length} characters: VRRP passwords have 1 to 8"
        )
    return errors


# Everything -------------------------------------------------------------------


def kubeforge_inventory_errors(
    groups: Mapping[str, Sequence[str]],
    hostvars: Mapping[str, Mapping[str, Any]],
    settings: Mapping[str, Any],
) -> list[str]:
    """Every inventory-level problem, in a stable order."""
    plugin = settings.get("kube_network_plugin")
    managed = [
        *dict.fromkeys(
            h
            for g in ("etcd", "k8s_cluster", "kube_control_plane", "kube_node", "calico_rr")
            for h in _members(groups, g)
        )
    ]
    cluster_size = len(set(_members(groups, "k8s_cluster")))
    return [
        *check_groups(groups, str(plugin)),
        *check_addresses(managed, hostvars),
        *check_node_names(
            [*dict.fromkeys(_members(groups, "k8s_cluster") + _members(groups, "etcd"))],
            hostvars,
        ),
        *check_networks(settings, managed, hostvars, cluster_size),
        *check_version(settings.get("kube_version"), settings.get("kube_supported_versions", [])),
        *check_network_plugin(plugin),
        *check_calico(settings, groups),
        *check_apiserver_access(settings),
        *check_durations(settings),
        *check_vip(settings, managed, hostvars),
    ]


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"kubeforge_inventory_errors": kubeforge_inventory_errors}
