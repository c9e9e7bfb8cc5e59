"""Inventory-level preflight checks (role `preflight`).

Every check is a pure function returning a list of error strings; each string
names the host (when one is involved) and the variable or group to fix. The
role joins them and fails once, listing all of them.

    kubeforge_inventory_errors(groups, hostvars, settings) -> list[str]

`groups` is Ansible's `groups` (after the opening play mapped kubespray's old
group names), `hostvars` Ansible's `hostvars`: `ip`, `ansible_host`,
`access_ip`, `kube_override_hostname`, `etcd_member_name`, `node_labels` and
`node_taints` are read, and any variable of VALUE_CHECKS or UNIFORM_SETTINGS
the inventory sets per host or group (hostvars hold no role defaults).
`settings` holds the cluster-wide variables of ALL_SETTINGS as role preflight
renders them (roles/preflight/defaults/main.yml); a check skips a variable it
is not handed, so callers may hand only those they test.

An error about a host starts with its name (or several, "w1, w2: ..."); an
error about a setting every host shares starts with "all hosts: ".
"""

from __future__ import annotations

import base64
import ipaddress
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

NETWORK_PLUGINS = ("flannel", "calico")
HA_MODES = ("local_lb", "vip", "external")
LB_TYPES = ("nginx", "haproxy")
# Control-plane flags that take a Go duration ("40s", "1m0s", "1h30m").
DURATION_SETTINGS = (
    "kube_apiserver_request_timeout",
    "kube_apiserver_shutdown_delay_duration",
    "kube_apiserver_shutdown_watch_termination_grace_period",
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


def check_groups(
    groups: Mapping[str, Sequence[str]], network_plugin: str = "flannel", even_etcd_ok: bool = False
) -> list[str]:
    """`even_etcd_ok`: an even number of etcd members (one removed and not yet
    replaced) is no error (etcd-backup.yml and etcd-restore.yml)."""
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
    elif len(etcd) % 2 == 0 and not even_etcd_ok:
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

# Each network as every role reads it (kubespray's plural name) and the name it
# defaults to (kube_service_subnets: "{{ kube_service_addresses }}").
NETWORK_NAMES = {
    "service": ("kube_service_subnets", "kube_service_addresses"),
    "pods": ("kube_pods_subnets", "kube_pods_subnet"),
}
# Which of those four the inventory (or -e) sets, and the addresses derived
# from the service network (kubespray's names).
NETWORK_SETTINGS = (
    "kube_service_subnets",
    "kube_pods_subnets",
    "network_vars_set",
    "kube_apiserver_ip",
    "skydns_server",
)
# kube-apiserver refuses a service network of fewer than 8 addresses; the
# cluster needs .1 (the apiserver), .3 (the cluster DNS) and room for Services.
MIN_SERVICE_PREFIX = 28
# kube-controller-manager splits the pod network in at most 2^16 node subnets.
MAX_NODE_SUBNET_BITS = 16


def _parse_cidr(var: str, value: Any) -> tuple[IPNetwork | None, str | None]:
    if "/" not in str(value):
        return (
            None,
            f"{var} {str(value)!r} is not a valid CIDR (address/prefix, e.g. 10.233.0.0/18)",
        )
    try:
        return ipaddress.ip_network(str(value).strip()), None
    except ValueError as exc:
        return None, f"{var} {str(value)!r} is not a valid CIDR ({exc})"


def network_setting(settings: Mapping[str, Any], kind: str) -> tuple[str, Any]:
    """The variable the service ("service") or pod ("pods") network comes from
    and its value: kubespray's plural name when the inventory set it (every
    role reads that one), else ours, which the plural name defaults to."""
    plural, singular = NETWORK_NAMES[kind]
    if plural in settings and (
        plural in (settings.get("network_vars_set") or [])
        or str(settings[plural]).strip() != str(settings.get(singular)).strip()
    ):
        return plural, settings[plural]
    return singular, settings.get(singular)


def _ipv4_network(var: str, value: Any) -> tuple[ipaddress.IPv4Network | None, list[str]]:
    count = len(str(value).split(","))
    if count > 1:
        return None, [
            f"{var} {value!r} has {count} networks: kubeforge runs single-stack IPv4 clusters "
            "(kubespray's dual-stack form is not supported); give one IPv4 network"
        ]
    net, err = _parse_cidr(var, value)
    if err:
        return None, [err]
    if not isinstance(net, ipaddress.IPv4Network):
        return None, [f"{var} {net} is IPv6: kubeforge runs IPv4 clusters; give an IPv4 network"]
    return net, []


def _network_conflicts(settings: Mapping[str, Any]) -> list[str]:
    """kubespray's plural name and ours both set, to different networks: one is ignored."""
    given = set(settings.get("network_vars_set") or [])
    errors: list[str] = []
    for plural, singular in NETWORK_NAMES.values():
        if {plural, singular} <= given and (
            str(settings.get(plural)).strip() != str(settings.get(singular)).strip()
        ):
            errors.append(
                f"{plural} {settings.get(plural)!r} and {singular} {settings.get(singular)!r} "
                f"are both set and differ: every role reads {plural} (kubespray's name, which "
                f"defaults to {singular}); set only one of them"
            )
    return errors


def _service_addresses(var: str, net: ipaddress.IPv4Network, s: Mapping[str, Any]) -> list[str]:
    """The service network has room, and the apiserver's and the DNS's
    addresses (kube_apiserver_ip, skydns_server) are the ones it hands out."""
    if net.prefixlen > MIN_SERVICE_PREFIX:
        refused = "kube-apiserver refuses fewer than 8, and " if net.num_addresses < 8 else ""
        return [
            f"{var} {net} has {net.num_addresses} addresses, too few: {refused}the cluster "
            "needs its first address (the apiserver's Service), its third (the cluster DNS, "
            "skydns_server) and room for the add-ons' Services and yours: use a "
            f"/{MIN_SERVICE_PREFIX} or larger (kubespray's default is a /18)"
        ]
    errors: list[str] = []
    first = net.network_address + 1
    wanted = s.get("kube_apiserver_ip")
    if wanted not in (None, "") and _ip(wanted) != first:
        errors.append(
            f"kube_apiserver_ip {wanted!r} is not {first}, the first address of {var} {net}: "
            "kube-apiserver always gives the kubernetes Service that address; leave "
            "kube_apiserver_ip unset"
        )
    dns = s.get("skydns_server")
    if dns in (None, "") or s.get("dns_mode", "coredns") != "coredns":
        return errors
    addr = _ip(dns)
    if addr is None or addr not in net or addr in (net.network_address, net.broadcast_address):
        errors.append(
            f"skydns_server {dns!r} is not a usable address of {var} {net}: the cluster DNS "
            f"Service takes an address of the service network (default: its third, {first + 2})"
        )
    elif addr == first:
        errors.append(
            f"skydns_server {dns} is the apiserver's Service address (kube_apiserver_ip): "
            f"give the cluster DNS another one (default: {first + 2})"
        )
    return errors


def _inside_errors(
    var: str,
    net: IPNetwork,
    hosts: Sequence[str],
    hostvars: Mapping[str, Mapping[str, Any]],
    settings: Mapping[str, Any],
) -> list[str]:
    """No host address (ip, ansible_host, access_ip) nor the load balancer's is in `net`."""
    errors: list[str] = []
    for host in hosts:
        hvars = hostvars.get(host) or {}
        addr, source = host_address(host, hvars)
        if addr is not None and addr in net:
            errors.append(f"{host}: address {addr} ({source}) lies inside {var} {net}")
        access = _ip(hvars.get("access_ip"))
        if access is not None and access != addr and access in net:
            errors.append(f"{host}: access_ip {access} lies inside {var} {net}")
    lb = settings.get("loadbalancer_apiserver") or {}
    lb_addr = _ip(lb.get("address")) if isinstance(lb, Mapping) else None
    if lb_addr is not None and lb_addr in net:
        errors.append(f"loadbalancer_apiserver.address {lb_addr} lies inside {var} {net}")
    return errors


def _node_subnets(var: str, pods: IPNetwork, prefix: Any, cluster_size: int) -> list[str]:
    try:
        node_prefix = int(prefix)
    except (TypeError, ValueError):
        node_prefix = -1
    if not pods.prefixlen < node_prefix <= pods.max_prefixlen:
        return [
            f"kube_network_node_prefix {prefix!r} must be longer than {var}'s "
            f"/{pods.prefixlen} and at most {pods.max_prefixlen}"
        ]
    bits = node_prefix - pods.prefixlen
    if bits > MAX_NODE_SUBNET_BITS:
        return [
            f"kube_network_node_prefix /{node_prefix} cuts {var} {pods} into 2^{bits} node "
            f"subnets: kube-controller-manager allows at most 2^{MAX_NODE_SUBNET_BITS}; use a "
            f"prefix of at most /{pods.prefixlen + MAX_NODE_SUBNET_BITS} or a smaller {var}"
        ]
    if 2**bits < cluster_size:
        return [
            f"{var} {pods} split into /{node_prefix} (kube_network_node_prefix) has room for "
            f"{2**bits} nodes, k8s_cluster has {cluster_size}"
        ]
    return []


def check_networks(
    settings: Mapping[str, Any],
    hosts: Sequence[str],
    hostvars: Mapping[str, Mapping[str, Any]],
    cluster_size: int,
) -> list[str]:
    """The service and pod networks: one IPv4 network each, apart from each
    other and from every host, big enough for the apiserver and the nodes."""
    errors = _network_conflicts(settings)
    nets: dict[str, tuple[str, ipaddress.IPv4Network]] = {}
    for kind in NETWORK_NAMES:
        var, value = network_setting(settings, kind)
        net, found = _ipv4_network(var, value)
        errors += found
        if net is not None:
            nets[kind] = (var, net)
    if "service" in nets and "pods" in nets:
        (svc_var, svc), (pods_var, pods) = nets["service"], nets["pods"]
        if svc.overlaps(pods):
            errors.append(f"{svc_var} {svc} overlaps {pods_var} {pods}")
    for var, net in nets.values():
        errors += _inside_errors(var, net, hosts, hostvars, settings)
    if "service" in nets:
        errors += _service_addresses(*nets["service"], settings)
    prefix = settings.get("kube_network_node_prefix")
    if "pods" in nets and prefix is not None:
        errors += _node_subnets(*nets["pods"], prefix, cluster_size)
    return errors


def check_pod_room(settings: Mapping[str, Any]) -> list[str]:
    """flannel gives each node a /kube_network_node_prefix: kubelet_max_pods
    pods must fit (calico hands out more blocks as a node needs them)."""
    values = _ints(settings, "kube_network_node_prefix", "kubelet_max_pods")
    if settings.get("kube_network_plugin") != "flannel" or values is None:
        return []
    prefix, max_pods = values
    if VALUE_CHECKS["kubelet_max_pods"]("kubelet_max_pods", max_pods):
        return []  # out of range: reported on its own
    room = 2 ** (32 - prefix) - 2
    if 0 < prefix <= 32 and max_pods > room:
        return [
            f"kubelet_max_pods {max_pods} is more than a node's pod subnet holds: flannel "
            f"gives each node a /{prefix} (kube_network_node_prefix), {max(room, 0)} addresses; "
            "lower kubelet_max_pods or the prefix"
        ]
    return []


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
    pods_var, pods_value = network_setting(s, "pods")
    pods, _ = _parse_cidr(pods_var, pods_value)
    if err:
        errors.append(err)
    elif pool is not None and pool.version != 4:
        errors.append(f"calico_pool_cidr {pool} is IPv6: kubeforge's calico pool is IPv4")
    elif pool is not None and pods is not None and not _inside(pool, pods):
        errors.append(
            f"calico_pool_cidr {pool} is not inside {pods_var} {pods}: "
            f"the pool must be {pods_var} or a part of it"
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
    return _int_in(var, value, 1, 65535, "a TCP port")


def _load_balancer_errors(lb: Mapping[str, Any]) -> list[str]:
    """kubespray's loadbalancer_apiserver: {address, port}; set, it needs an address."""
    errors = [
        f"loadbalancer_apiserver has an unknown key {key!r}: it takes address and port"
        for key in lb
        if key not in ("address", "port")
    ]
    address = lb.get("address")
    if address in (None, ""):
        if lb:
            errors.append(
                f"loadbalancer_apiserver {dict(lb)!r} has no address: give the load balancer's "
                "address (an IP address or a DNS name), or remove loadbalancer_apiserver"
            )
    elif _ip(address) is None and not _host_name_ok(address):
        errors.append(
            f"loadbalancer_apiserver.address {address!r} is neither an IP address nor a DNS "
            "name (letters, digits, '-' and '.', e.g. lb.example.com)"
        )
    return errors


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
    errors += _load_balancer_errors(lb)
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


# Node labels and taints --------------------------------------------------------

TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_LABEL_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_LABEL_KEY_RULE = (
    "[prefix/]name: name up to 63 letters, digits, '-', '_' or '.', starting and "
    "ending with a letter or digit; prefix a lowercase DNS subdomain up to 253 characters"
)
_LABEL_VALUE_RULE = (
    "up to 63 letters, digits, '-', '_' or '.', starting and ending with a letter "
    "or digit, or empty"
)


def _label_key_ok(key: Any) -> bool:
    """Kubernetes' qualified name: [DNS-subdomain prefix/]name."""
    if not isinstance(key, str):
        return False
    prefix, slash, name = key.rpartition("/")
    if slash and not (len(prefix) <= 253 and _DNS1123_SUBDOMAIN.fullmatch(prefix)):
        return False
    return len(name) <= 63 and _LABEL_NAME.fullmatch(name) is not None


def _label_value(value: Any) -> str:
    """A label value as the node gets it: YAML's true is "true", nothing is ""."""
    if isinstance(value, bool):
        return str(value).lower()
    return "" if value is None else str(value)


def _label_value_ok(value: str) -> bool:
    return value == "" or (len(value) <= 63 and _LABEL_NAME.fullmatch(value) is not None)


def _label_errors(host: str, labels: Any) -> list[str]:
    if labels is None:
        return []
    if not isinstance(labels, Mapping):
        return [f"{host}: node_labels must be a dict of label: value, not {labels!r}"]
    errors: list[str] = []
    for key, value in labels.items():
        if not _label_key_ok(key):
            errors.append(
                f"{host}: node_labels key {key!r} is not a label name ({_LABEL_KEY_RULE})"
            )
        if isinstance(value, (Mapping, list, tuple, set)):
            errors.append(
                f"{host}: node_labels[{key!r}] must be a string, number or boolean, not {value!r}"
            )
            continue
        shown = _label_value(value)
        if not _label_value_ok(shown):
            errors.append(
                f"{host}: node_labels[{key!r}] value {shown!r} is not a label value "
                f"({_LABEL_VALUE_RULE})"
            )
    return errors


def _taint_errors(host: str, taints: Any) -> list[str]:
    if taints is None:
        return []
    if isinstance(taints, (str, Mapping)) or not isinstance(taints, Sequence):
        return [f'{host}: node_taints must be a list of "key=value:Effect", not {taints!r}']
    errors: list[str] = []
    seen: dict[tuple[str, str], int] = {}
    for i, entry in enumerate(taints):
        where = f"{host}: node_taints[{i}] {entry!r}"
        head, sep, effect = entry.partition(":") if isinstance(entry, str) else ("", "", "")
        key, _, value = head.partition("=")
        if not sep or ":" in effect or "=" in value or not key:
            errors.append(
                f"{where} is not key=value:Effect or key:Effect "
                f"(Effect one of {', '.join(TAINT_EFFECTS)})"
            )
            continue
        if effect not in TAINT_EFFECTS:
            errors.append(f"{where}: effect {effect!r} is not one of {', '.join(TAINT_EFFECTS)}")
        if not _label_key_ok(key):
            errors.append(f"{where}: key {key!r} is not a valid name ({_LABEL_KEY_RULE})")
        if not _label_value_ok(value):
            errors.append(f"{where}: value {value!r} is not valid ({_LABEL_VALUE_RULE})")
        if (key, effect) in seen:
            errors.append(
                f"{where} repeats key {key!r} with effect {effect} of "
                f"node_taints[{seen[key, effect]}]: a node has one taint per key and effect"
            )
        seen.setdefault((key, effect), i)
    return errors


def check_node_placement(
    hosts: Sequence[str], hostvars: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    """node_labels (label: value) and node_taints ("key=value:Effect") of each
    node host, set per host or per group: what the kubelet and kubectl accept."""
    errors: list[str] = []
    for host in hosts:
        hvars = hostvars.get(host) or {}
        errors += _label_errors(host, hvars.get("node_labels"))
        errors += _taint_errors(host, hvars.get("node_taints"))
    return errors


# Everything -------------------------------------------------------------------


# The add-ons' settings (roles/kubeforge_defaults/defaults/main/addons.yml).
ADDON_SWITCHES = (
    "helm_enabled",
    "metrics_server_enabled",
    "local_path_provisioner_enabled",
    "ingress_controller_enabled",
    "gateway_api_enabled",
)
ADDON_SETTINGS = (
    *ADDON_SWITCHES,
    "ingress_nginx_enabled",  # kubespray's; None when unset
    "metrics_server_replicas",
    "metrics_server_metric_resolution",
    "metrics_server_kubelet_preferred_address_types",
    "local_path_provisioner_namespace",
    "local_path_provisioner_storage_class",
    "local_path_provisioner_is_default_storageclass",
    "local_path_provisioner_reclaim_policy",
    "local_path_provisioner_claim_root",
    "ingress_controller_namespace",
    "ingress_controller_node_selector",
    "ingress_controller_tolerations",
    "ingress_controller_http_port",
    "ingress_controller_https_port",
    "ingress_controller_class",
    "ingress_controller_default_class",
    "gateway_api_gatewayclass",
    "gateway_api_crds_download_url",
    "gateway_api_crds_pinned",
)
KUBELET_ADDRESS_TYPES = ("Hostname", "InternalDNS", "InternalIP", "ExternalDNS", "ExternalIP")
RECLAIM_POLICIES = ("Delete", "Retain")
# Namespaces an add-on may not take (switching it off deletes its namespace).
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
# Directories local_path_provisioner_claim_root may not be: reset.yml removes it.
SYSTEM_DIRS = frozenset(
    ("/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib64", "/media", "/mnt", "/opt",
     "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/var", "/var/lib",
     "/var/log", "/usr/local", "/etc/kubernetes", "/var/lib/kubelet")
)  # fmt: skip
_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_TOLERATION_KEYS = frozenset({"key", "operator", "value", "effect", "tolerationSeconds"})


def _seconds(duration: str) -> float:
    return sum(float(n) * _SECONDS[u] for n, u in _DURATION_PART.findall(duration))


def _true(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "yes")


def _name(var: str, value: Any, subdomain: bool = False) -> list[str]:
    pattern = _DNS1123_SUBDOMAIN if subdomain else re.compile(_DNS1123_LABEL)
    limit = 253 if subdomain else 63
    if isinstance(value, str) and len(value) <= limit and pattern.fullmatch(value):
        return []
    what = "a DNS subdomain" if subdomain else "a DNS label"
    return [f"{var} {value!r} is not {what} (lower-case letters, digits and '-', at most {limit})"]


def _selected(selector: Mapping[str, Any], labels: Any) -> bool:
    if not isinstance(labels, Mapping):
        return False
    return all(k in labels and _label_value(labels[k]) == _label_value(v)
               for k, v in selector.items())  # fmt: skip


def _addon_namespace(var: str, settings: Mapping[str, Any]) -> list[str]:
    """An add-on's own namespace: a DNS label, not one of Kubernetes' own."""
    ns = settings.get(var)
    if ns in SYSTEM_NAMESPACES:
        return [
            f"{var} {ns!r} is Kubernetes' own: use a namespace of its own "
            "(switching the add-on off deletes it)"
        ]
    return _name(var, ns)


def check_addons(
    settings: Mapping[str, Any],
    hosts: Sequence[str],
    hostvars: Mapping[str, Mapping[str, Any]],
) -> list[str]:
    """The add-ons' switches and settings; the ingress controller's nodes exist.

    `hosts` are the k8s_cluster hosts: one of them must carry the labels of
    ingress_controller_node_selector (node_labels), or the controller runs nowhere.
    """
    s = settings
    errors: list[str] = []
    for var in (*ADDON_SWITCHES, "local_path_provisioner_is_default_storageclass",
                "ingress_controller_default_class"):  # fmt: skip
        if var in s:  # absent: a caller that checks something else (the role hands all)
            errors += _bool(var, s[var])
    nginx = s.get("ingress_nginx_enabled")
    if nginx is not None:
        errors += _bool("ingress_nginx_enabled", nginx)
        if _true(nginx) and not _true(s.get("ingress_controller_enabled")):
            errors.append(
                "ingress_nginx_enabled is true but ingress_controller_enabled is false: "
                "ingress_nginx_enabled is kubespray's name of ingress_controller_enabled "
                "(kubeforge installs Traefik); set only ingress_controller_enabled"
            )
    if _true(s.get("metrics_server_enabled")):
        errors += _int_in("metrics_server_replicas", s.get("metrics_server_replicas"), 1, 100,
                          "a number of replicas")  # fmt: skip
        res = s.get("metrics_server_metric_resolution")
        if not (isinstance(res, str) and _DURATION.fullmatch(res) and _seconds(res) >= 10):
            errors.append(
                f"metrics_server_metric_resolution {res!r} is not a Go duration of at least 10s "
                "(e.g. 15s): metrics-server refuses shorter ones"
            )
        types = str(s.get("metrics_server_kubelet_preferred_address_types", "")).split(",")
        bad = [t for t in types if t.strip() not in KUBELET_ADDRESS_TYPES]
        if bad or not types:
            errors.append(
                f"metrics_server_kubelet_preferred_address_types has {', '.join(map(repr, bad))}: "
                f"use a comma-separated list of {', '.join(KUBELET_ADDRESS_TYPES)}"
            )
    if _true(s.get("local_path_provisioner_enabled")):
        errors += _addon_namespace("local_path_provisioner_namespace", s)
        errors += _name("local_path_provisioner_storage_class",
                        s.get("local_path_provisioner_storage_class"), subdomain=True)  # fmt: skip
        policy = s.get("local_path_provisioner_reclaim_policy")
        errors += _choice("local_path_provisioner_reclaim_policy", policy, RECLAIM_POLICIES)
        root = s.get("local_path_provisioner_claim_root")
        norm = "/" + str(root).strip("/") if isinstance(root, str) else ""
        if not (isinstance(root, str) and root.startswith("/")) or ".." in str(root).split("/"):
            errors.append(f"local_path_provisioner_claim_root {root!r} is not an absolute path")
        elif norm in SYSTEM_DIRS:
            errors.append(
                f"local_path_provisioner_claim_root {root!r} is a system directory: give the "
                "volumes a directory of their own (reset.yml removes it)"
            )
    if _true(s.get("ingress_controller_enabled")):
        errors += _addon_namespace("ingress_controller_namespace", s)
        errors += _name(
            "ingress_controller_class", s.get("ingress_controller_class"), subdomain=True
        )
        ports = []
        for var in ("ingress_controller_http_port", "ingress_controller_https_port"):
            found = _int_in(var, s.get(var), 1, 65535, "a TCP port")
            errors += found
            if not found:
                ports.append(int(s[var]))
        if len(ports) == 2 and ports[0] == ports[1]:
            errors.append(
                "ingress_controller_http_port and ingress_controller_https_port are both "
                f"{ports[0]}"
            )
        selector = s.get("ingress_controller_node_selector")
        if not isinstance(selector, Mapping) or any(
            (not isinstance(v, (str, int, float, bool)) and v is not None)
            or not _label_key_ok(k)
            or not _label_value_ok(_label_value(v))
            for k, v in selector.items()
        ):
            errors.append(
                "ingress_controller_node_selector must be a dict of label name: label value "
                f"(got {selector!r})"
            )
        elif selector and not any(
            _selected(selector, hostvars[h].get("node_labels")) for h in hosts
        ):
            wanted = ", ".join(f"{k}={_label_value(v)}" for k, v in selector.items())
            errors.append(
                f"ingress_controller_enabled: no host of k8s_cluster has the labels of "
                f"ingress_controller_node_selector ({wanted}) in its node_labels, so the "
                "controller would run nowhere: label the ingress nodes in the inventory or "
                "change ingress_controller_node_selector"
            )
        tolerations = s.get("ingress_controller_tolerations")
        if not isinstance(tolerations, list) or any(
            not isinstance(t, Mapping) or not set(t) <= _TOLERATION_KEYS for t in tolerations
        ):
            errors.append(
                "ingress_controller_tolerations must be a list of tolerations "
                f"({', '.join(sorted(_TOLERATION_KEYS))}), got {tolerations!r}"
            )
    if _true(s.get("gateway_api_enabled")):
        errors += _name(
            "gateway_api_gatewayclass", s.get("gateway_api_gatewayclass"), subdomain=True
        )
        url = str(s.get("gateway_api_crds_download_url", "")).strip()
        if not _true(s.get("gateway_api_crds_pinned")) and url.startswith("https://github.com/"):
            errors.append(
                f"gateway_api_crds_download_url {url} is a GitHub release file, for which "
                "GitHub publishes no checksum: pin its sha256 in kubeforge_checksums."
                "gateway_api_crds['<version>'].<arch>, or serve it from files_repo with a "
                "<file>.sha256 beside it"
            )
    return errors


# Every other value -------------------------------------------------------------
#
# One check per variable (VALUE_CHECKS), run on the cluster-wide value and on
# every host's own value where the inventory sets one per host or group; then
# the checks that tie variables together.

Check = Callable[[str, Any], list[str]]

# Go's TLS cipher suite names (crypto/tls CipherSuites(), and the two older
# spellings Kubernetes and etcd still take), and those Go lists as insecure.
TLS_VERSIONS = ("VersionTLS12", "VersionTLS13")
TLS_CIPHER_SUITES = frozenset(
    ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
     "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
     "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
     "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
     "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
     "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
     "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305")
)  # fmt: skip
TLS_INSECURE_SUITES = frozenset(
    ("TLS_RSA_WITH_RC4_128_SHA", "TLS_RSA_WITH_3DES_EDE_CBC_SHA", "TLS_RSA_WITH_AES_128_CBC_SHA",
     "TLS_RSA_WITH_AES_256_CBC_SHA", "TLS_RSA_WITH_AES_128_CBC_SHA256",
     "TLS_RSA_WITH_AES_128_GCM_SHA256", "TLS_RSA_WITH_AES_256_GCM_SHA384",
     "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA", "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
     "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
     "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256")
)  # fmt: skip
# kube-apiserver's admission plugins in the supported minors (1.35-1.37): an
# unknown one stops the apiserver from starting.
ADMISSION_PLUGINS = frozenset(
    ("AlwaysAdmit", "AlwaysDeny", "AlwaysPullImages", "CertificateApproval", "CertificateSigning",
     "CertificateSubjectRestriction", "ClusterTrustBundleAttest", "DefaultIngressClass",
     "DefaultStorageClass", "DefaultTolerationSeconds", "DenyServiceExternalIPs", "EventRateLimit",
     "ExtendedResourceToleration", "ImagePolicyWebhook", "JobValidation",
     "LimitPodHardAntiAffinityTopology", "LimitRanger", "MutatingAdmissionPolicy",
     "MutatingAdmissionWebhook", "NamespaceAutoProvision", "NamespaceExists",
     "NamespaceLifecycle", "NodeDeclaredFeatureValidator", "NodeRestriction",
     "OwnerReferencesPermissionEnforcement", "PersistentVolumeClaimResize", "PodGroupProtection",
     "PodGroupWorkloadExists", "PodNodeSelector", "PodResizeValidator", "PodSecurity",
     "PodTolerationRestriction", "PodTopologyLabels", "Priority", "ResourceQuota", "RuntimeClass",
     "ServiceAccount", "StorageObjectInUseProtection", "TaintNodesByCondition",
     "ValidatingAdmissionPolicy", "ValidatingAdmissionWebhook")
)  # fmt: skip
EVICTION_SIGNALS = (
    "memory.available", "allocatableMemory.available", "nodefs.available", "nodefs.inodesFree",
    "imagefs.available", "imagefs.inodesFree", "containerfs.available",
    "containerfs.inodesFree", "pid.available",
)  # fmt: skip
RESERVED_RESOURCES = ("cpu", "memory", "ephemeral-storage", "pid")
PROXY_MODES = ("iptables", "ipvs", "nftables")
DNS_MODES = ("coredns", "none")
IMAGE_ARCHES = ("amd64", "arm64")
ETCD_METRICS = ("basic", "extensive")
MIRROR_CAPABILITIES = ("pull", "resolve", "push")
FEATURE_GATE_SETTINGS = (
    "kube_feature_gates",
    "kube_apiserver_feature_gates",
    "kube_controller_feature_gates",
    "kube_scheduler_feature_gates",
    "kubelet_feature_gates",
    "kube_proxy_feature_gates",
)
FLAG_SETTINGS = (  # flag name (without --) -> value
    "kube_apiserver_extra_args",
    "kube_controller_manager_extra_args",
    "kube_scheduler_extra_args",
    "etcd_extra_args",
)
CONFIG_SETTINGS = ("kubelet_config_extra_args", "kube_proxy_config_extra_args")
IMAGE_PREFIXES = ("kube_image_repo", "docker_image_repo", "quay_image_repo", "github_image_repo")
IMAGES = (
    "pod_infra", "coredns", "dnsautoscaler", "flannel", "flannel_cni", "calico_node", "calico_cni",
    "calico_policy", "nginx", "haproxy", "metrics_server", "local_path_provisioner",
    "local_path_provisioner_helper", "traefik",
)  # fmt: skip
# Component versions, written without a leading v (the URLs and tags add it).
VERSIONS = (
    "etcd_version", "containerd_version", "runc_version", "crictl_version", "cni_version",
    "helm_version", "pod_infra_version", "coredns_version", "flannel_version",
    "flannel_cni_version", "dns_autoscaler_version", "metrics_server_version",
    "local_path_provisioner_version", "traefik_version", "gateway_api_version",
)  # fmt: skip
DOWNLOAD_URLS = (
    "download_base_dl_k8s", "download_base_github", "download_base_helm", "kube_download_base",
    "kube_apiserver_download_url", "kube_controller_manager_download_url",
    "kube_scheduler_download_url", "kubelet_download_url", "kube_proxy_download_url",
    "kubectl_download_url", "etcd_download_url", "containerd_download_url", "runc_download_url",
    "crictl_download_url", "cni_download_url", "helm_download_url",
)  # fmt: skip
BOOL_SETTINGS = (
    "loadbalancer_apiserver_localhost", "audit_log_enabled", "kube_proxy_strict_arp",
    "kubelet_fail_swap_on", "kubelet_protect_kernel_defaults", "kubelet_fail_cgroup_v1",
    "kubelet_rotate_certificates",
    "container_manager_keep_existing", "containerd_restrict_oom_score_adj", "kube_oidc_auth",
    "no_proxy_exclude_workers", "skip_http_proxy_on_os_packages", "kubeconfig_localhost",
    "kubeconfig_localhost_ansible_host", "kubectl_localhost", "kube_encrypt_secret_data",
)  # fmt: skip
PATH_SETTINGS = ("audit_policy_file", "download_cache_dir", "artifacts_dir")
# The OIDC settings read when kube_oidc_auth is true.
OIDC_SETTINGS = (
    "kube_oidc_url", "kube_oidc_client_id", "kube_oidc_ca_file", "kube_oidc_ca_cert",
    "kube_oidc_username_claim", "kube_oidc_username_prefix", "kube_oidc_groups_claim",
    "kube_oidc_groups_prefix",
)  # fmt: skip

_GATE_NAME = re.compile(r"[A-Z][A-Za-z0-9]*")
_FLAG_NAME = re.compile(r"[a-z0-9][a-z0-9.-]*")
_HOST_LABEL = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?")
_QUANTITY = re.compile(r"(\d+(\.\d+)?|\.\d+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?\d+)?")
_PERCENT = re.compile(r"(\d+(\.\d+)?|\.\d+)%")
_USER_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
_IFNAME = re.compile(r"[^\s/:]{1,15}")
_REGISTRY = (
    r"(?:[A-Za-z0-9](?:[-A-Za-z0-9]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[-A-Za-z0-9]*[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?"
)
_REGISTRY_HOST = re.compile(_REGISTRY)
_IMAGE_REPO = re.compile(rf"{_REGISTRY}(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*")
_IMAGE_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_COMPONENT_VERSION = re.compile(r"\d+(\.\d+){1,2}([-+][0-9A-Za-z.-]+)?")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_DOWNLOAD_SCHEMES = ("http", "https", "ftp", "file")
_UNSAFE = re.compile(r"[\s\"'\\]")  # breaks a unit file, TOML or a shell line


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def _list_error(var: str, value: Any, what: str) -> list[str]:
    """[] for a list; a comma-separated string is the usual mistake."""
    if _is_list(value):
        return []
    hint = " (a YAML list such as [a, b], not one string)" if isinstance(value, str) else ""
    return [f"{var} must be a list of {what}{hint}, not {value!r}"]


def _dict_error(var: str, value: Any, what: str) -> list[str]:
    return [] if isinstance(value, Mapping) else [f"{var} must be a dict of {what}, not {value!r}"]


def _host_name_ok(value: Any, wildcard: bool = False) -> bool:
    """A DNS host name (any case), `*.` first with wildcard; not a mistyped IP address."""
    if not isinstance(value, str) or not 0 < len(value) <= 253:
        return False
    labels = value.split(".")
    if wildcard and labels[0] == "*" and len(labels) > 2:
        labels = labels[1:]
    return all(_HOST_LABEL.fullmatch(label) for label in labels) and not labels[-1].isdigit()


def _domain(var: str, value: Any) -> list[str]:
    """cluster_name, dns_domain: a lower-case DNS domain (the kubelets' clusterDomain)."""
    if isinstance(value, str) and value == value.lower() and _host_name_ok(value):
        return []
    return [
        f"{var} {value!r} is not a DNS domain: lower-case labels of letters, digits and '-' "
        "joined by single dots, each at most 63 characters (e.g. cluster.local)"
    ]


def _ip_or_name(var: str, value: Any) -> list[str]:
    if value in (None, "") or _ip(value) is not None or _host_name_ok(value):
        return []
    return [f"{var} {value!r} is neither an IP address nor a DNS name"]


def _san_list(var: str, value: Any) -> list[str]:
    """supplementary_addresses_in_ssl_keys: IP addresses and DNS names (*.name too)."""
    errors = _list_error(var, value, "IP addresses and DNS names")
    if errors:
        return errors
    return [
        f"{var}[{i}] {entry!r} is neither an IP address nor a DNS name (letters, digits, '-' "
        "and '.'; '*.' allowed as the first label)"
        for i, entry in enumerate(value)
        if _ip(entry) is None and not _host_name_ok(entry, wildcard=True)
    ]


def _ip_list(var: str, value: Any) -> list[str]:
    errors = _list_error(var, value, "IP addresses")
    return errors or [
        f"{var}[{i}] {entry!r} is not an IP address" for i, entry in enumerate(value)
        if _ip(entry) is None
    ]  # fmt: skip


def _masked(value: Any) -> Any:
    """A URL's password shown as ***."""
    if not isinstance(value, str) or "@" not in value:
        return value
    parts = urlsplit(value)
    if parts.password is None:
        return value
    return value.replace(f":{parts.password}@", ":***@", 1)


def _url_problem(value: Any, schemes: Sequence[str]) -> str | None:
    if not isinstance(value, str) or not value:
        return "it is empty or not a string"
    if _UNSAFE.search(value):
        return "it has spaces, quotes or backslashes"
    parts = urlsplit(value)
    if parts.scheme not in schemes:
        *others, last = [f"{scheme}://" for scheme in schemes]
        return f"it must start with {', '.join(others) + ' or ' if others else ''}{last}"
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0 or (parts.netloc.endswith(":") and parts.scheme != "file"):
        return "its port is not a number from 1 to 65535"
    host = parts.hostname or ""
    if parts.scheme != "file" and _ip(host) is None and not _host_name_ok(host):
        return "it names no valid host"
    return None


def _url(*schemes: str, empty: bool = False) -> Check:
    def check(var: str, value: Any) -> list[str]:
        if empty and value in (None, ""):
            return []
        problem = _url_problem(value, schemes)
        return [] if problem is None else [f"{var} {_masked(value)!r} is not a URL: {problem}"]

    return check


def _path(var: str, value: Any) -> list[str]:
    if (
        isinstance(value, str)
        and value.startswith("/")
        and not _UNSAFE.search(value)
        and ".." not in value.split("/")
    ):
        return []
    return [f"{var} {value!r} is not an absolute path (starting with /, no spaces, quotes or ..)"]


def _ranged(low: int, high: int, what: str) -> Check:
    return lambda var, value: _int_in(var, value, low, high, what)


def _one_of(*choices: str) -> Check:
    return lambda var, value: _choice(var, value, choices)


def _optional(check: Check) -> Check:
    return lambda var, value: [] if value in (None, "") else check(var, value)


def _text(var: str, value: Any) -> list[str]:
    return [] if isinstance(value, str) else [f"{var} must be a string, not {value!r}"]


def _quantity_ok(value: Any, percent: bool = False) -> bool:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return False
    text = str(value)
    return bool(_QUANTITY.fullmatch(text) or (percent and _PERCENT.fullmatch(text)))


def _quantities(keys: Sequence[str], percent: bool) -> Check:
    """eviction_hard (signal: quantity or %), kube_reserved, system_reserved."""
    what = "a quantity (100Mi, 1Gi, 500m)" + (" or a percentage (10%)" if percent else "")

    def check(var: str, value: Any) -> list[str]:
        if isinstance(value, bool) and var.endswith("_reserved"):
            return [
                f"{var} {value!r} is kubespray's switch for a separate cgroup, which kubeforge "
                f"does not create; {var} here is the kubelet's {var.split('_')[0]}Reserved, a "
                "dict such as {cpu: 100m, memory: 256Mi} ({} reserves nothing; kubespray's "
                "kube_memory_reserved and the like are not read)"
            ]
        errors = _dict_error(var, value, f"{', '.join(keys)} to {what}")
        for key, amount in value.items() if not errors else ():
            if key not in keys:
                errors.append(f"{var} has an unknown key {key!r}; use: {', '.join(keys)}")
            elif not _quantity_ok(amount, percent):
                errors.append(f"{var}[{key!r}] {amount!r} is not {what}")
        return errors

    return check


def _gate_items(var: str, value: Any) -> tuple[list[tuple[str, Any]], list[str]]:
    if isinstance(value, Mapping):
        return list(value.items()), []
    errors = _list_error(var, value, '"Name=true" or "Name=false" strings')
    items: list[tuple[str, Any]] = []
    for entry in value if not errors else ():
        name, sep, setting = str(entry).partition("=")
        if not isinstance(entry, str) or not sep:
            errors.append(f'{var} entry {entry!r} is not "Name=true" or "Name=false"')
        else:
            items.append((name.strip(), setting.strip()))
    return items, errors


def _feature_gates(var: str, value: Any) -> list[str]:
    """kubespray's feature gates: ["Name=true", ...] (a dict Name: bool is taken too)."""
    items, errors = _gate_items(var, value)
    for name, setting in items:
        if not _GATE_NAME.fullmatch(str(name)):
            errors.append(
                f"{var}: {name!r} is not a feature gate name (CamelCase, e.g. "
                "InPlacePodVerticalScaling)"
            )
        if not (isinstance(setting, bool) or str(setting).lower() in ("true", "false")):
            errors.append(f"{var}: {name}={setting} must be true or false")
    return errors


def _cidr_items(value: Any) -> list[Any]:
    """kube-proxy's nodePortAddresses as kubespray writes it: a list, the text
    of one ("[10.0.0.0/8]") or comma-separated text."""
    if isinstance(value, str):
        text = value.strip().strip("[]")
        return [v.strip().strip("'\"") for v in text.split(",") if v.strip()]
    return list(value) if _is_list(value) else [value]


def _nodeport_addresses(var: str, value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, Mapping):
        return [f"{var} must be a list of CIDRs, not {value!r}"]
    items = _cidr_items(value)
    if items == ["primary"]:
        return []
    errors: list[str] = []
    for item in items:
        try:
            ipaddress.ip_network(str(item), strict=False)
        except ValueError:
            errors.append(
                f"{var} entry {item!r} is not a CIDR (10.0.0.0/8); the only other value is "
                '"primary" on its own'
            )
    return errors


def _flags(var: str, value: Any) -> list[str]:
    """*_extra_args of the components: flag name (without --) -> value."""
    errors = _dict_error(var, value, "flag name (without --) to value")
    for name, flag in value.items() if not errors else ():
        if not isinstance(name, str) or not _FLAG_NAME.fullmatch(name):
            hint = " (write it without the leading --)" if str(name).startswith("-") else ""
            errors.append(f"{var} key {name!r} is not a flag name{hint}")
        scalars = flag if _is_list(flag) and var != "etcd_extra_args" else [flag]
        if not all(v is None or isinstance(v, (str, int, float, bool)) for v in scalars):
            errors.append(f"{var}[{name!r}] {flag!r} must be a string, number or boolean")
        elif var != "etcd_extra_args" and any(_UNSAFE.search(str(v)) for v in scalars):
            errors.append(
                f"{var}[{name!r}] {flag!r} has spaces, quotes or backslashes, which the "
                "component's systemd unit would split or mangle"
            )
    return errors


def _config_keys(var: str, value: Any) -> list[str]:
    """*_config_extra_args: keys of the component's configuration file."""
    errors = _dict_error(var, value, "configuration keys (camelCase) to values")
    example = "serializeImagePulls" if var.startswith("kubelet") else "ipvs"
    return errors or [
        f"{var} key {key!r} is not a configuration key (camelCase, e.g. {example})"
        for key in value
        if not (isinstance(key, str) and re.fullmatch(r"[a-z][A-Za-z0-9]*", key))
    ]


def _admission_plugins(var: str, value: Any) -> list[str]:
    errors = _list_error(var, value, "admission plugin names")
    return errors or [
        f"{var} entry {name!r} is not an admission plugin of kube-apiserver "
        "(which would not start); e.g. NodeRestriction, PodSecurity, AlwaysPullImages"
        for name in value
        if name not in ADMISSION_PLUGINS
    ]


def _address_types(var: str, value: Any) -> list[str]:
    """A comma-separated list of node address types (InternalIP,Hostname,...)."""
    types = [t.strip() for t in value.split(",")] if isinstance(value, str) else []
    bad = [t for t in types if t not in KUBELET_ADDRESS_TYPES]
    if types and not bad and len(set(types)) == len(types):
        return []
    return [
        f"{var} {value!r} must be a comma-separated list of {', '.join(KUBELET_ADDRESS_TYPES)}, "
        "each once"
    ]


def _cipher_suites(var: str, value: Any) -> list[str]:
    errors = _list_error(var, value, "Go cipher suite names")
    for suite in value if not errors else ():
        if suite in TLS_INSECURE_SUITES:
            errors.append(
                f"{var} entry {suite} is one of Go's insecure suites (RC4, 3DES, CBC with "
                "SHA-256 or RSA key exchange): remove it"
            )
        elif suite not in TLS_CIPHER_SUITES:
            errors.append(
                f"{var} entry {suite!r} is not a Go cipher suite name "
                "(e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)"
            )
    return errors


def _compaction_retention(var: str, value: Any) -> list[str]:
    text = str(value).strip()
    if not isinstance(value, bool) and (text.isdigit() or _DURATION.fullmatch(text)):
        return []
    return [f"{var} {value!r} is not a number of hours (8) nor a duration (30m, 1h)"]


def _metrics_urls(var: str, value: Any) -> list[str]:
    """etcd_listen_metrics_urls: comma-separated URLs; empty, no metrics listener."""
    if value in (None, ""):
        return []
    urls = value.split(",") if isinstance(value, str) else [value]
    check = _url("http", "https")
    return [e for url in urls for e in check(var, url)]


def _image_repo(var: str, value: Any) -> list[str]:
    if isinstance(value, str) and _IMAGE_REPO.fullmatch(value):
        return []
    hint = ""
    if isinstance(value, str) and "://" in value:
        hint = ": write it without http:// or https:// (registry/path)"
    elif isinstance(value, str) and value.endswith("/"):
        hint = ": without the trailing /"
    return [
        f"{var} {value!r} is not an image repository (registry[:port]/path, the path in "
        f"lower case){hint}"
    ]


def _image_tag(var: str, value: Any) -> list[str]:
    if isinstance(value, str) and _IMAGE_TAG.fullmatch(value):
        return []
    return [f"{var} {value!r} is not an image tag (letters, digits, '_', '.', '-')"]


def _component_version(var: str, value: Any) -> list[str]:
    text = value if isinstance(value, str) else ""
    if _COMPONENT_VERSION.fullmatch(text):
        return []
    if text.startswith("v") and _COMPONENT_VERSION.fullmatch(text[1:]):
        return [f"{var} {value!r}: write it without the leading v ({text[1:]})"]
    return [f"{var} {value!r} is not a release (X.Y.Z, quoted)"]


def _checksums(var: str, value: Any) -> list[str]:
    """kubeforge_checksums: name -> version -> arch -> sha256."""
    errors = _dict_error(var, value, "file name -> version -> arch -> sha256")
    for name, versions in value.items() if not errors else ():
        for version, arches in (versions or {}).items() if isinstance(versions, Mapping) else ():
            for arch, digest in (arches or {}).items() if isinstance(arches, Mapping) else ():
                if not _SHA256.fullmatch(str(digest)):
                    errors.append(
                        f"{var}.{name}['{version}'].{arch} is not a sha256 (64 hex digits)"
                    )
        if not isinstance(versions, Mapping) or not all(
            isinstance(a, Mapping) for a in versions.values()
        ):
            errors.append(f"{var}.{name} must be a dict of version -> arch -> sha256")
    return errors


def _toml(var: str, value: Any) -> list[str]:
    if not isinstance(value, str):
        return [f"{var} must be TOML text, not {value!r}"]
    try:
        tomllib.loads(value)
    except tomllib.TOMLDecodeError as exc:
        return [f"{var} is not valid TOML ({exc}): containerd would not start"]
    return []


def _container_manager(var: str, value: Any) -> list[str]:
    if value == "containerd":
        return []
    return [
        f"{var} {value!r} is not supported: kubeforge installs and configures containerd only "
        "(set container_manager: containerd or remove it)"
    ]


def _dns_mode(var: str, value: Any) -> list[str]:
    if value in ("coredns_dual", "manual"):
        return [
            f"{var} {value!r} is not supported: kubeforge runs one CoreDNS (coredns) or no "
            "cluster DNS (none)"
        ]
    return _choice(var, value, DNS_MODES)


def _interface(var: str, value: Any) -> list[str]:
    """flannel's --iface: an interface name or one of the host's addresses."""
    if value in (None, "") or _ip(value) is not None:
        return []
    if isinstance(value, str) and _IFNAME.fullmatch(value) and value not in (".", ".."):
        return []
    return [
        f"{var} {value!r} is neither an interface name (up to 15 characters, no spaces, '/' "
        "or ':') nor an IP address"
    ]


def _regexp(var: str, value: Any) -> list[str]:
    """flannel_interface_regexp, backslashes doubled as kubespray writes them."""
    if value in (None, ""):
        return []
    if not isinstance(value, str):
        return [f"{var} must be a string, not {value!r}"]
    try:
        re.compile(value.replace("\\\\", "\\"))
    except re.error as exc:
        return [f"{var} {value!r} is not a regular expression ({exc})"]
    return []


# A resource as EncryptionConfiguration names it, without wildcards (what is
# stored is rewritten with kubectl, which needs a resource).
_RESOURCE = re.compile(r"[a-z][a-z0-9-]*(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")


def _encryption_resources(var: str, value: Any) -> list[str]:
    errors = _text_list(var, value)
    if errors:
        return errors
    if not value:
        return [f"{var} is empty: name the resources to encrypt, or turn encryption off"]
    errors = [f"{var}[{i}] {v!r} is not a resource name (lower case, `secrets` or "
              "`widgets.example.com`; no wildcards)"
              for i, v in enumerate(value) if not _RESOURCE.fullmatch(v)]  # fmt: skip
    twice = sorted({v for v in value if value.count(v) > 1})
    if twice:
        errors.append(f"{var} names {', '.join(twice)} more than once")
    return errors


def _text_list(var: str, value: Any) -> list[str]:
    errors = _list_error(var, value, "strings")
    return errors or [f"{var}[{i}] {v!r} is not a string" for i, v in enumerate(value)
                      if not isinstance(v, str)]  # fmt: skip


VALUE_CHECKS: dict[str, Check] = {
    "cluster_name": _domain,
    "dns_domain": _domain,
    "supplementary_addresses_in_ssl_keys": _san_list,
    "apiserver_loadbalancer_domain_name": _ip_or_name,
    "loadbalancer_apiserver_default_port": _port_error,
    "certificates_ca_days": _ranged(1, 36500, "a number of days"),
    "certificates_leaf_days": _ranged(1, 36500, "a number of days"),
    "certificates_renew_before_days": _ranged(0, 36500, "a number of days"),
    "audit_log_path": lambda var, value: [] if value == "-" else _path(var, value),
    "audit_log_maxage": _ranged(0, 36500, "a number of days"),
    "audit_log_maxbackups": _ranged(0, 100000, "a number of files"),
    "audit_log_maxsize": _ranged(0, 1000000, "a size in MiB"),
    "kube_proxy_mode": _one_of(*PROXY_MODES),
    "kube_encryption_algorithm": _one_of("secretbox", "aescbc"),
    "kube_encryption_resources": _encryption_resources,
    "kube_proxy_nodeport_addresses": _nodeport_addresses,
    "kube_proxy_nodeport_addresses_cidr": _nodeport_addresses,
    "kube_proxy_conntrack_max_per_core": _optional(_ranged(0, 2**31 - 1, "a number of entries")),
    **dict.fromkeys(FEATURE_GATE_SETTINGS, _feature_gates),
    "kube_log_level": _ranged(0, 10, "a log level"),
    "kubelet_max_pods": _ranged(10, 1000, "a number of pods per node"),
    "eviction_hard": _quantities(EVICTION_SIGNALS, percent=True),
    "kube_reserved": _quantities(RESERVED_RESOURCES, percent=False),
    "system_reserved": _quantities(RESERVED_RESOURCES, percent=False),
    **dict.fromkeys(FLAG_SETTINGS, _flags),
    **dict.fromkeys(CONFIG_SETTINGS, _config_keys),
    "preflight_min_memory_mb_control_plane": _ranged(0, 10**7, "a size in MiB"),
    "preflight_min_memory_mb_node": _ranged(0, 10**7, "a size in MiB"),
    "preflight_supported_os": _text_list,
    "etcd_owner": lambda var, value: (
        []
        if isinstance(value, str) and _USER_NAME.fullmatch(value)
        else [f"{var} {value!r} is not a user name (lower case, at most 32 characters)"]
    ),
    "etcd_client_port": _port_error,
    "etcd_peer_port": _port_error,
    "etcd_heartbeat_interval": _ranged(10, 10000, "a heartbeat interval in ms"),
    "etcd_election_timeout": _ranged(50, 50000, "an election timeout in ms"),
    "etcd_snapshot_count": _ranged(1, 10**9, "a number of transactions"),
    "etcd_quota_backend_bytes": _ranged(0, 8 * 2**30, "a size in bytes up to etcd's 8 GiB"),
    "etcd_compaction_retention": _compaction_retention,
    "etcd_metrics": _one_of(*ETCD_METRICS),
    "etcd_listen_metrics_urls": _metrics_urls,
    "tls_min_version": _one_of(*TLS_VERSIONS),
    "tls_cipher_suites": _cipher_suites,
    "kube_apiserver_enable_admission_plugins": _admission_plugins,
    "kubelet_preferred_address_types": _address_types,
    "files_repo": _url(*_DOWNLOAD_SCHEMES, empty=True),
    **dict.fromkeys(DOWNLOAD_URLS, _url(*_DOWNLOAD_SCHEMES)),
    "image_arch": _one_of(*IMAGE_ARCHES),
    "kubeforge_checksums": _checksums,
    **dict.fromkeys(IMAGE_PREFIXES, _image_repo),
    **{f"{image}_image_repo": _image_repo for image in IMAGES},
    **{f"{image}_image_tag": _image_tag for image in IMAGES},
    **dict.fromkeys(VERSIONS, _component_version),
    "container_manager": _container_manager,
    "containerd_extra_config": _toml,
    "dns_mode": _dns_mode,
    "upstream_dns_servers": _ip_list,
    "http_proxy": _url("http", "https", empty=True),
    "https_proxy": _url("http", "https", empty=True),
    "no_proxy": _text,
    "additional_no_proxy": _text,
    "flannel_interface": _interface,
    "flannel_interface_regexp": _regexp,
    **dict.fromkeys(BOOL_SETTINGS, _bool),
    **dict.fromkeys(PATH_SETTINGS, _path),
}


def _data_dir(var: str, value: Any) -> list[str]:
    """etcd_data_dir: reset.yml removes it, so not one of the system's."""
    errors = _path(var, value)
    if not errors and "/" + str(value).strip("/") in SYSTEM_DIRS:
        errors.append(f"{var} {value!r} is a system directory: reset.yml removes {var}")
    return errors


def _mirror_host(where: str, mirror: Any) -> list[str]:
    if not isinstance(mirror, Mapping):
        return [f"{where} must be a dict {{host: ..., capabilities: [...]}}, not {mirror!r}"]
    errors = [
        f"{where} has an unknown key {key!r}; use host, capabilities, skip_verify, ca or "
        "override_path"
        for key in mirror
        if key not in ("host", "capabilities", "skip_verify", "ca", "override_path")
    ]
    host = mirror.get("host")
    if not (isinstance(host, str) and _REGISTRY_HOST.fullmatch(host)):
        errors += _url("http", "https")(f"{where}.host", host)
    caps = mirror.get("capabilities", ["pull"])
    if not _is_list(caps) or not set(caps) <= set(MIRROR_CAPABILITIES):
        errors.append(f"{where}.capabilities {caps!r} must be a list of pull, resolve, push")
    for key in ("skip_verify", "override_path"):
        if key in mirror:
            errors += _bool(f"{where}.{key}", mirror[key])
    if "ca" in mirror:
        errors += _path(f"{where}.ca", mirror["ca"])
    return errors


def _registry_mirrors(var: str, value: Any) -> list[str]:
    """containerd_registries_mirrors (kubespray's form): each entry writes
    certs.d/<prefix>/hosts.toml."""
    errors = _list_error(var, value, "{prefix, server, mirrors} entries")
    prefixes: list[Any] = []
    for i, entry in enumerate(value if not errors else ()):
        where = f"{var}[{i}]"
        if not isinstance(entry, Mapping):
            errors.append(f"{where} must be a dict {{prefix, server, mirrors}}, not {entry!r}")
            continue
        errors += [
            f"{where} has an unknown key {key!r}; use prefix, server, mirrors"
            for key in entry
            if key not in ("prefix", "server", "mirrors")
        ]
        prefix = entry.get("prefix")
        if prefix != "_default" and not (
            isinstance(prefix, str) and _REGISTRY_HOST.fullmatch(prefix)
        ):
            errors.append(
                f"{where}.prefix {prefix!r} is not a registry (host or host:port as images name "
                "it, e.g. docker.io, or _default)"
            )
        elif prefix in prefixes:
            errors.append(f"{where}.prefix {prefix} is listed twice: one entry per registry")
        prefixes.append(prefix)
        if "server" in entry:
            errors += _url("http", "https")(f"{where}.server", entry["server"])
        mirrors = entry.get("mirrors")
        if not _is_list(mirrors) or not mirrors:
            errors.append(f"{where}.mirrors must be a non-empty list of {{host: ...}}")
            continue
        for j, mirror in enumerate(mirrors):
            errors += _mirror_host(f"{where}.mirrors[{j}]", mirror)
    return errors


def _registry_auth(var: str, value: Any) -> list[str]:
    """containerd_registry_auth: [{registry, username, password}]; written into
    config.toml. Never shows a password (nor an entry, which holds one)."""
    if not _is_list(value):
        return [f"{var} must be a list of {{registry, username, password}}"]
    errors: list[str] = []
    for i, entry in enumerate(value):
        where = f"{var}[{i}]"
        if not isinstance(entry, Mapping):
            errors.append(f"{where} must be a dict {{registry, username, password}}")
            continue
        errors += [
            f"{where} has a key {str(key)!r} kubeforge does not write; it takes registry, "
            "username and password"
            for key in entry
            if key not in ("registry", "username", "password")
        ]
        registry = entry.get("registry")
        if not (isinstance(registry, str) and _REGISTRY_HOST.fullmatch(registry)):
            errors.append(f"{where}.registry {registry!r} is not a registry (host or host:port)")
        for key in ("username", "password"):
            text = entry.get(key)
            if not isinstance(text, str) or not text:
                errors.append(f"{where}.{key} is missing or not a string")
            elif re.search(r"[\"\\\n]", text):
                errors.append(
                    f"{where}.{key} has a double quote, backslash or line break, which "
                    "containerd's config.toml cannot take as written"
                )
    return errors


VALUE_CHECKS.update(
    {
        "etcd_data_dir": _data_dir,
        "containerd_registries_mirrors": _registry_mirrors,
        "containerd_registry_auth": _registry_auth,
    }
)


def _calendar(var: str, value: Any) -> list[str]:
    """A systemd OnCalendar expression; systemd-analyze on the control host
    checks the rest (role preflight)."""
    if not isinstance(value, str) or not value.strip() or "\n" in value:
        return [f"{var} {value!r} is not a systemd calendar expression (`Mon *-*-* 03:00:00`)"]
    return []


# Certificate renewal (roles/kubeforge_defaults/defaults/main/certificates.yml).
VALUE_CHECKS.update(
    {
        "certificates_renew_all": _bool,
        "auto_renew_certificates": _bool,
        "auto_renew_certificates_systemd_calendar": _calendar,
    }
)

# etcd snapshots (roles/kubeforge_defaults/defaults/main/etcd_backup.yml). The
# etcd role also asks systemd-analyze on each etcd host before it writes the
# timer.
# A bare number of seconds, or numbers each with its unit ("1h 30min").
_TIMESPAN = re.compile(
    r"\s*(\d+|((\d+(\.\d+)?|\.\d+)\s*(usec|us|µs|msec|ms|seconds|second|sec|s|minutes|minute"
    r"|min|m|hours|hour|hr|h|days|day|d|weeks|week|w|months|month|M|years|year|y)\s*)+)\s*"
)


def _calendar_expression(var: str, value: Any) -> list[str]:
    if isinstance(value, str) and value.strip() and not set(value) & set("\n\\"):
        return []
    return [f"{var} {value!r} is not a systemd calendar expression (`daily`, `*-*-* 02:30:00`)"]


def _timespan(var: str, value: Any) -> list[str]:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        ok = False
    else:
        ok = bool(_TIMESPAN.fullmatch(str(value)))
    return [] if ok else [f"{var} {value!r} is not a systemd time span (`30min`, `1h 30min`, `0`)"]


def _retention(var: str, value: Any) -> list[str]:
    errors = _int_in(var, value, -1, 100000, "a number of snapshots, or -1 for all")
    if not errors and int(value) == 0:
        errors = [f"{var} 0 would remove every snapshot: keep 1 or more, or -1 for all"]
    return errors


VALUE_CHECKS.update(
    {
        "etcd_backup_enabled": _bool,
        "etcd_backup_schedule": _calendar_expression,
        "etcd_backup_randomized_delay": _timespan,
        "etcd_backup_retention_count": _retention,
        "etcd_backup_prefix": _path,
        "etcd_backup_localhost_dir": _path,
    }
)

# CA rotation (roles/kubeforge_defaults/defaults/main/ca_rotation.yml).
ROLLOUT_KINDS = ("deployment", "daemonset", "statefulset")


def _grace_hours(var: str, value: Any) -> list[str]:
    try:
        ok = not isinstance(value, bool) and 0 <= float(value) <= 8760
    except (TypeError, ValueError):
        ok = False
    return [] if ok else [f"{var} {value!r} is not a number of hours (0-8760)"]


def _workloads(var: str, value: Any) -> list[str]:
    """namespace/kind/name of workloads `kubectl rollout restart` takes."""
    errors = _list_error(var, value, "namespace/kind/name strings")
    if errors:
        return errors
    for item in value:
        parts = item.split("/") if isinstance(item, str) else []
        if (
            len(parts) != 3
            or _name(var, parts[0])
            or parts[1].lower() not in ROLLOUT_KINDS
            or _name(var, parts[2], subdomain=True)
        ):
            errors.append(
                f"{var}: {item!r} is not namespace/kind/name with kind one of "
                f"{', '.join(ROLLOUT_KINDS)} (kube-system/deployment/my-operator)"
            )
    return errors


VALUE_CHECKS.update(
    {
        "ca_rotation_sa_grace_hours": _grace_hours,
        "ca_rotation_trust_wait_seconds": lambda var, value: _int_in(
            var, value, 0, 86400, "a number of seconds"
        ),
        "ca_rotation_restart_workloads": _workloads,
    }
)
VALUE_SETTINGS = tuple(VALUE_CHECKS)


def check_values(settings: Mapping[str, Any]) -> list[str]:
    """Each variable of VALUE_CHECKS the role hands over, on its own."""
    return [
        e
        for var, check in VALUE_CHECKS.items()
        if var in settings
        for e in check(var, settings[var])
    ]


# Values that must agree -----------------------------------------------------------


def _ints(settings: Mapping[str, Any], *names: str) -> list[int] | None:
    """The named settings as ints; None when one is missing or bad (reported on its own)."""
    try:
        return [int(settings[n]) for n in names]
    except (KeyError, TypeError, ValueError):
        return None


def check_certificate_days(settings: Mapping[str, Any]) -> list[str]:
    days = _ints(settings, "certificates_ca_days", "certificates_leaf_days",
                 "certificates_renew_before_days")  # fmt: skip
    if days is None:
        return []
    ca, leaf, renew = days
    errors: list[str] = []
    if min(ca, leaf) < 1:
        return errors  # out of range: reported on its own
    if leaf > ca:
        errors.append(
            f"certificates_leaf_days {leaf} is longer than certificates_ca_days {ca}: a "
            "certificate must not outlive the CA that signed it"
        )
    if renew >= leaf:
        errors.append(
            f"certificates_renew_before_days {renew} is not less than certificates_leaf_days "
            f"{leaf}: every run would re-issue every certificate and restart the components"
        )
    return errors


def check_etcd_timing(settings: Mapping[str, Any]) -> list[str]:
    timing = _ints(settings, "etcd_heartbeat_interval", "etcd_election_timeout")
    if timing is None or timing[1] >= 5 * timing[0]:
        return []
    return [
        f"etcd_election_timeout {timing[1]} must be at least 5 times etcd_heartbeat_interval "
        f"{timing[0]} (etcd refuses to start otherwise)"
    ]


def check_oidc(settings: Mapping[str, Any]) -> list[str]:
    """kube_oidc_auth true: the issuer's https URL and a client ID, text claims."""
    if not _true(settings.get("kube_oidc_auth")) or "kube_oidc_url" not in settings:
        return []
    s = settings
    errors = _url("https")("kube_oidc_url", s.get("kube_oidc_url"))
    if not s.get("kube_oidc_client_id") or not isinstance(s.get("kube_oidc_client_id"), str):
        errors.append(
            "kube_oidc_client_id is empty while kube_oidc_auth is true: give the client ID "
            "the issuer's tokens are for"
        )
    for var in OIDC_SETTINGS[3:]:
        if var in s and s[var] is not None:
            errors += _text(var, s[var])
    if s.get("kube_oidc_ca_file") not in (None, ""):
        errors += _path("kube_oidc_ca_file", s["kube_oidc_ca_file"])
    cert = s.get("kube_oidc_ca_cert")
    if cert not in (None, "") and not _pem_base64(cert):
        errors.append("kube_oidc_ca_cert is not a base64-encoded PEM certificate")
    return errors


def _pem_base64(value: Any) -> bool:
    try:
        return b"-----BEGIN CERTIFICATE-----" in base64.b64decode(str(value), validate=True)
    except ValueError:
        return False


# Ports -----------------------------------------------------------------------------

# Where a port is bound: every address, the host's cluster address, 127.0.0.1
# or the VIP. Two listeners clash on the same port when either binds every
# address or both bind the same one.
# (One name per line: ansible's plugin documentation reader warns on a tuple.)
ANY = "every address"
HOST = "the host address"
LOCAL = "127.0.0.1"
VIP = "the VIP"
# The components' fixed ports.
FIXED_PORTS = (
    (10250, "kubelet", ANY),
    (10248, "kubelet health", LOCAL),
    (10249, "kube-proxy metrics", LOCAL),
    (10256, "kube-proxy health", ANY),
    (10257, "kube-controller-manager", LOCAL),
    (10259, "kube-scheduler", LOCAL),
)
Listener = tuple[int, str, str]  # port, what (variable or component), where


def _port_of(value: Any) -> int | None:
    try:
        port = int(value)
    except (TypeError, ValueError):
        return None
    return port if 0 < port < 65536 and str(port) == str(value).strip() else None


def _metrics_listeners(value: Any) -> list[Listener]:
    out: list[Listener] = []
    for url in str(value or "").split(","):
        parts = urlsplit(url.strip())
        try:
            port = parts.port
        except ValueError:
            continue
        if port:
            where = (
                ANY
                if parts.hostname in ("0.0.0.0", "::")
                else (LOCAL if parts.hostname in ("127.0.0.1", "localhost") else HOST)
            )
            out.append((port, "etcd_listen_metrics_urls", where))
    return out


def listeners(settings: Mapping[str, Any]) -> list[Listener]:
    """The ports kubeforge's components listen on, as the settings say."""
    s = settings
    mode = s.get("apiserver_ha_mode")
    wanted: list[tuple[Any, str, str]] = [
        (s.get("kube_apiserver_port"), "kube_apiserver_port", HOST),
        (s.get("etcd_client_port"), "etcd_client_port", ANY),  # its address and 127.0.0.1
        (s.get("etcd_peer_port"), "etcd_peer_port", HOST),
    ]
    if mode == "local_lb":
        wanted.append((s.get("loadbalancer_apiserver_port"), "loadbalancer_apiserver_port", LOCAL))
    lb = s.get("loadbalancer_apiserver")
    if mode == "vip" and isinstance(lb, Mapping):
        port = lb.get("port", s.get("loadbalancer_apiserver_default_port"))
        wanted.append((port, "loadbalancer_apiserver.port", VIP))
    if _true(s.get("ingress_controller_enabled")):
        wanted += [(s.get(v), v, ANY) for v in
                   ("ingress_controller_http_port", "ingress_controller_https_port")]  # fmt: skip
    out = [(p, what, where) for value, what, where in wanted if (p := _port_of(value))]
    return [*out, *_metrics_listeners(s.get("etcd_listen_metrics_urls")), *FIXED_PORTS]


def _clash(a: Listener, b: Listener) -> bool:
    return a[0] == b[0] and (ANY in (a[2], b[2]) or a[2] == b[2])


def _node_port_range(value: Any) -> tuple[int, int] | None:
    low, sep, high = str(value).partition("-")
    first, last = _port_of(low), _port_of(high)
    if not sep or " " in str(value) or first is None or last is None or first >= last:
        return None
    return first, last


def _bound(a: Listener, b: Listener) -> str:
    return f"both on {a[2]}" if a[2] == b[2] else f"on {a[2]} and {b[2]}"


def _same_owner(a: Listener, b: Listener) -> bool:
    """One variable twice, or the ingress controller's two ports (check_addons)."""
    return a[1] == b[1] or (a[1].startswith("ingress_") and b[1].startswith("ingress_"))


def check_ports(settings: Mapping[str, Any]) -> list[str]:
    """No two components on one port; NodePorts clear of every component's port."""
    found = listeners(settings)
    errors = [
        f"{a[1]} {a[0]} is also {b[1]}'s port ({_bound(a, b)}): give each its own port"
        for i, a in enumerate(found)
        for b in found[i + 1 :]
        if _clash(a, b) and not _same_owner(a, b)
    ]
    value = settings.get("kube_apiserver_node_port_range")
    if value is None:
        return errors
    span = _node_port_range(value)
    if span is None:
        return [
            *errors,
            f"kube_apiserver_node_port_range {value!r} is not a port range: first-last, two "
            "ports from 1 to 65535 with first < last (kubespray's default is 30000-32767)",
        ]
    inside = sorted({f"{what} {port}" for port, what, _ in found if span[0] <= port <= span[1]})
    if inside:
        errors.append(
            f"kube_apiserver_node_port_range {value} contains {', '.join(inside)}: a NodePort "
            "Service would take that port on every node; keep the range clear of them"
        )
    return errors


# Host variables ---------------------------------------------------------------------

# Cluster-wide settings whose value must be the same on every host of
# k8s_cluster: the roles read each once (or every host must agree), so a value
# set for some hosts only would be ignored or split the cluster.
UNIFORM_SETTINGS = (
    "kube_version", "kube_network_plugin", "kube_service_addresses", "kube_pods_subnet",
    "kube_service_subnets", "kube_pods_subnets", "kube_network_node_prefix", "cluster_name",
    "dns_domain", "kube_apiserver_port", "apiserver_ha_mode", "loadbalancer_apiserver",
    "etcd_client_port", "etcd_peer_port", "kube_apiserver_node_port_range", "kube_proxy_mode",
    "dns_mode", "container_manager", "flannel_interface", "flannel_interface_regexp",
    "calico_datastore", "calico_pool_cidr", "calico_vxlan_mode", "tls_min_version",
    "kube_encrypt_secret_data", "kube_encryption_algorithm", "kube_encryption_resources",
    "kubelet_rotate_certificates",
    "auto_renew_certificates", "auto_renew_certificates_systemd_calendar",
)  # fmt: skip


def _shown_hosts(hosts: Sequence[str]) -> str:
    shown = ", ".join(hosts[:8])
    return shown + (f" and {len(hosts) - 8} more" if len(hosts) > 8 else "")


def _own(hvars: Mapping[str, Any], var: str) -> tuple[bool, Any]:
    """Whether the inventory (or -e) sets var for this host, and its value
    (Ansible's hostvars carry no role defaults; a template that cannot be
    rendered yet counts as unset)."""
    if var not in hvars:
        return False, None
    try:
        return True, hvars[var]
    except Exception:  # Ansible raises its own errors for a template it cannot render
        return False, None


def check_uniform(hosts: Sequence[str], hostvars: Mapping[str, Mapping[str, Any]]) -> list[str]:
    errors: list[str] = []
    # k8s_cluster's order comes from how the opening play derived the group:
    # listed by name (node2 before node10), the message is always the same.
    hosts = sorted(
        hosts, key=lambda h: [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", h)]
    )
    for var in UNIFORM_SETTINGS:
        values: list[tuple[Any, list[str]]] = []
        for host in hosts:
            given, value = _own(hostvars.get(host) or {}, var)
            shown = repr(value) if given else "not set"
            same = next((v for v in values if v[0] == shown), None)
            if same is None:
                values.append((shown, [host]))
            else:
                same[1].append(host)
        if len(values) > 1:
            detail = "; ".join(f"{_shown_hosts(h)}: {v}" for v, h in values)
            errors.append(
                f"{_shown_hosts(list(hosts))}: {var} is not the same on every host of "
                f"k8s_cluster ({detail}); the cluster has one {var}: set it for all of them "
                "(group_vars/all or group_vars/k8s_cluster), or for none"
            )
    return errors


def _per_host_checks(settings: Mapping[str, Any]) -> list[str]:
    return [*check_values(settings), *check_pod_room(settings)]


def check_host_settings(
    hosts: Sequence[str], hostvars: Mapping[str, Mapping[str, Any]], settings: Mapping[str, Any]
) -> list[str]:
    """Values set for a host or a group of hosts (kubelet_max_pods on the workers,
    a proxy per site, ...): checked on their own, naming the hosts."""
    found: dict[str, list[str]] = {}
    cluster_wide = set(_per_host_checks(settings))
    for host in hosts:
        hvars = hostvars.get(host) or {}
        own = {}
        for var in (*VALUE_CHECKS, "kube_network_node_prefix", "kube_network_plugin"):
            given, value = _own(hvars, var)
            if given and (var not in settings or value != settings[var]):
                own[var] = value
        if own:
            for error in set(_per_host_checks({**settings, **own})) - cluster_wide:
                found.setdefault(error, []).append(host)
    return [f"{_shown_hosts(h)}: {e}" for e, h in sorted(found.items(), key=lambda i: i[1][0])]


def check_access_ips(hosts: Sequence[str], hostvars: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """kubespray's access_ip: the IPv4 address other hosts reach this one at."""
    errors: list[str] = []
    seen: dict[IPAddress, list[str]] = {}
    for host in hosts:
        given, value = _own(hostvars.get(host) or {}, "access_ip")
        if not given or value in (None, ""):
            continue
        addr = _ip(value)
        if addr is None or addr.version != 4:
            errors.append(f"{host}: access_ip {value!r} is not an IPv4 address")
        else:
            seen.setdefault(addr, []).append(host)
    errors += [
        f"duplicate access_ip {addr} for hosts {_hosts_list(owners)}: other hosts reach each "
        "host at its own"
        for addr, owners in seen.items()
        if len(owners) > 1
    ]
    return errors


def check_etcd_member_names(
    etcd: Sequence[str], others: Sequence[str], hostvars: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    """etcd_member_name (kubespray's inventory sets etcd1, etcd2, ...): a valid
    name, unique among the etcd hosts; unset or empty, the node name is used."""
    errors: list[str] = []
    names: dict[str, list[str]] = {}
    for host in (*etcd, *others):
        hvars = hostvars.get(host) or {}
        given, value = _own(hvars, "etcd_member_name")
        if (
            given
            and value not in (None, "")
            and not (isinstance(value, str) and len(value) <= 63 and _LABEL_NAME.fullmatch(value))
        ):
            errors.append(
                f"{host}: etcd_member_name {value!r} is not a member name (up to 63 letters, "
                "digits, '-', '_' or '.', starting and ending with a letter or digit)"
            )
        elif host in etcd:
            name = str(value) if given and value not in (None, "") else node_name(host, hvars)
            names.setdefault(name, []).append(host)
    errors += [
        f"duplicate etcd_member_name {name!r} for hosts {_hosts_list(owners)} "
        "(etcd_member_name, else the node name): every etcd member needs its own"
        for name, owners in names.items()
        if len(owners) > 1
    ]
    return errors


def check_ipv4_hosts(hosts: Sequence[str], hostvars: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The cluster runs on IPv4: a host's cluster address (ip, else ansible_host) too."""
    errors: list[str] = []
    for host in hosts:
        addr, source = host_address(host, hostvars.get(host) or {})
        if addr is not None and addr.version != 4:
            errors.append(
                f"{host}: its cluster address {addr} ({source}) is IPv6: kubeforge runs IPv4 "
                "clusters; set ip to the host's IPv4 address"
            )
    return errors


def _scoped(errors: Iterable[str], hosts: Iterable[str]) -> list[str]:
    """Errors about hosts start with their names; the others are about settings
    every host shares: "all hosts: ..."."""
    known = set(hosts)
    out: list[str] = []
    for error in errors:
        head = error.split(": ", 1)[0]
        names = head.replace(" and ", ", ").split(", ")
        about_hosts = all(n in known or n.endswith(" more") for n in names) and ": " in error
        plain = about_hosts or error.startswith(("group ", "duplicate "))
        out.append(error if plain else f"all hosts: {error}")
    return out


# Settings only the checks tying values together read.
CROSS_SETTINGS = ("kube_apiserver_node_port_range", *OIDC_SETTINGS)
# Everything role preflight hands over (preflight_inventory_settings).
ALL_SETTINGS = tuple(
    dict.fromkeys(
        (*SETTINGS, *VIP_SETTINGS, *CALICO_SETTINGS, *ADDON_SETTINGS, *NETWORK_SETTINGS,
         *VALUE_SETTINGS, *CROSS_SETTINGS)
    )
)  # fmt: skip


def kubeforge_inventory_errors(
    groups: Mapping[str, Sequence[str]],
    hostvars: Mapping[str, Mapping[str, Any]],
    settings: Mapping[str, Any],
    even_etcd_ok: bool = False,
) -> list[str]:
    """Every inventory-level problem, in a stable order. Errors about a host
    start with its name, the others with "all hosts:". `even_etcd_ok`: see
    check_groups."""
    settings = dict(settings)  # Ansible renders each value once
    plugin = settings.get("kube_network_plugin")
    managed = [
        *dict.fromkeys(
            h
            for g in ("etcd", "k8s_cluster", "kube_control_plane", "kube_node", "calico_rr")
            for h in _members(groups, g)
        )
    ]
    # Ansible computes a host's variables on each hostvars[host]: once per host here.
    hvars = {h: hostvars.get(h) or {} for h in managed}
    cluster = [*dict.fromkeys(_members(groups, "k8s_cluster"))]
    etcd = [*dict.fromkeys(_members(groups, "etcd"))]
    errors = [
        *check_groups(groups, str(plugin), even_etcd_ok),
        *check_addresses(managed, hvars),
        *check_ipv4_hosts(managed, hvars),
        *check_access_ips(managed, hvars),
        *check_node_names([*dict.fromkeys(cluster + etcd)], hvars),
        *check_etcd_member_names(etcd, [h for h in managed if h not in etcd], hvars),
        *check_networks(settings, managed, hvars, len(cluster)),
        *check_version(settings.get("kube_version"), settings.get("kube_supported_versions", [])),
        *check_network_plugin(plugin),
        *check_calico(settings, groups),
        *check_apiserver_access(settings),
        *check_durations(settings),
        *check_vip(settings, managed, hvars),
        *check_node_placement(cluster, hvars),
        *check_addons(settings, cluster, hvars),
        *check_values(settings),
        *check_pod_room(settings),
        *check_certificate_days(settings),
        *check_etcd_timing(settings),
        *check_oidc(settings),
        *check_ports(settings),
        *check_uniform(cluster, hvars),
        *check_host_settings(managed, hvars, settings),
    ]
    return _scoped(errors, managed)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"kubeforge_inventory_errors": kubeforge_inventory_errors}
