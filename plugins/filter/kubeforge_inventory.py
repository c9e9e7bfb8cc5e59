"""Inventory-level preflight checks (role `preflight`).

Every check is a pure function returning a list of error strings; each string
names the host (when one is involved) and the variable or group to fix. The
role joins them and fails once, listing all of them.

    kubeforge_inventory_errors(groups, hostvars, settings) -> list[str]

`groups` is Ansible's `groups` (after the opening play mapped kubespray's old
group names), `hostvars` Ansible's `hostvars` (only `ip`, `ansible_host`,
`kube_override_hostname`, `node_labels` and `node_taints` are read),
`settings` the cluster-wide variables listed in SETTINGS, and those of
VIP_SETTINGS when the inventory sets them.
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
        *check_node_placement([*dict.fromkeys(_members(groups, "k8s_cluster"))], hostvars),
        *check_addons(settings, _members(groups, "k8s_cluster"), hostvars),
    ]


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"kubeforge_inventory_errors": kubeforge_inventory_errors}
