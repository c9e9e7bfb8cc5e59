"""HTTP proxy settings under kubespray's names (http_proxy, https_proxy,
no_proxy, additional_no_proxy, no_proxy_exclude_workers):

    kubeforge_no_proxy(hostvars, groups, **settings) -> str
        kubespray's computed no_proxy: what the cluster reaches without the proxy.
    kubeforge_proxy_env(settings) -> dict[str, str]
        the environment of a process behind the proxy ({} without a proxy).
    kubeforge_systemd_dropin(env) -> str
        a systemd drop-in setting that environment on a service ('' without one).

Only inventory values are read (never gathered facts), so the list is the same
on every run and a drop-in built from it changes only when the inventory does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# Groups whose hosts the cluster reaches directly (kubespray's list).
NO_PROXY_GROUPS = ("kube_control_plane", "kube_node", "etcd", "calico_rr")
# Per host: the addresses other hosts and the control host reach it by.
_ADDRESS_VARS = ("access_ip", "ip", "ansible_host")
# The process environment a proxy setting becomes (both spellings, as tools differ).
_ENV_NAMES = {
    "http_proxy": ("http_proxy", "HTTP_PROXY"),
    "https_proxy": ("https_proxy", "HTTPS_PROXY"),
    "no_proxy": ("no_proxy", "NO_PROXY"),
}
# What a systemd service gets: Go programs (containerd, the kubelet) read either.
_DROPIN_NAMES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _split(value: Any) -> list[str]:
    """A comma-separated string (or a list of them) as its non-empty items."""
    if isinstance(value, str) or value is None:
        items: Iterable[Any] = _text(value).split(",")
    elif isinstance(value, Iterable):
        items = (part for item in value for part in _text(item).split(","))
    else:
        items = [value]
    return [_text(i) for i in items if _text(i)]


def _unique(values: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for value in values:
        if value:
            seen.setdefault(value, None)
    return list(seen)


def no_proxy_hosts(groups: Mapping[str, Sequence[str]], exclude_workers: Any = False) -> list[str]:
    """The inventory hosts no_proxy names, in group order."""
    names = [g for g in NO_PROXY_GROUPS if not (g == "kube_node" and _true(exclude_workers))]
    return _unique(h for g in names for h in groups.get(g) or [])


def host_entries(host: str, hvars: Mapping[str, Any], dns_domain: str) -> list[str]:
    """One host's addresses and names (with the cluster domain appended too)."""
    addresses = [_text(hvars.get(var)) for var in _ADDRESS_VARS]
    node_name = (_text(hvars.get("kube_override_hostname")) or host).lower()
    names = _unique([host, node_name])
    qualified = [f"{n}.{dns_domain}" for n in names] if dns_domain else []
    return [*addresses, *names, *qualified]


def kubeforge_no_proxy(
    hostvars: Mapping[str, Mapping[str, Any]],
    groups: Mapping[str, Sequence[str]],
    dns_domain: Any = "",
    service_subnets: Any = "",
    pods_subnets: Any = "",
    loadbalancer_apiserver: Any = None,
    lb_domain: Any = "",
    additional: Any = "",
    exclude_workers: Any = False,
) -> str:
    """kubespray's computed no_proxy: the load balancer's name and address, every
    cluster host's addresses and names, additional_no_proxy, loopback, the
    service and pod networks and the cluster's service domains; comma-separated,
    each entry once."""
    domain = _text(dns_domain)
    lb = loadbalancer_apiserver if isinstance(loadbalancer_apiserver, Mapping) else {}
    entries = [_text(lb_domain), _text(lb.get("address"))]
    for host in no_proxy_hosts(groups, exclude_workers):
        entries += host_entries(host, hostvars.get(host) or {}, domain)
    entries += _split(additional)
    entries += ["127.0.0.1", "localhost", *_split(service_subnets), *_split(pods_subnets)]
    entries += ["svc", f"svc.{domain}" if domain else ""]
    return ",".join(_unique(entries))


def kubeforge_proxy_env(settings: Mapping[str, Any]) -> dict[str, str]:
    """http_proxy/https_proxy/no_proxy as a process environment, in both
    spellings; {} when neither proxy is set (no_proxy alone means nothing)."""
    values = {name: _text(settings.get(name)) for name in _ENV_NAMES}
    if not (values["http_proxy"] or values["https_proxy"]):
        return {}
    return {env: value for name, value in values.items() if value for env in _ENV_NAMES[name]}


def _systemd_quote(assignment: str) -> str:
    """One Environment= word: double-quoted, with systemd's C escapes and
    specifiers (%) escaped."""
    if "\n" in assignment or "\r" in assignment:
        raise ValueError(f"a proxy setting holds a line break: {assignment.split('=')[0]}")
    escaped = assignment.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    return f'"{escaped}"'


def kubeforge_systemd_dropin(env: Mapping[str, Any]) -> str:
    """A drop-in ([Service] Environment=) with the proxy variables of `env`;
    '' when it has none, so that no empty drop-in is written."""
    lines = [
        f"Environment={_systemd_quote(f'{name}={_text(env[name])}')}"
        for name in _DROPIN_NAMES
        if _text(env.get(name))
    ]
    if not lines:
        return ""
    header = "# Managed by kubeforge: http_proxy, https_proxy, no_proxy"
    return "\n".join([header, "[Service]", *lines, ""])


def _true(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "kubeforge_no_proxy": kubeforge_no_proxy,
            "kubeforge_proxy_env": kubeforge_proxy_env,
            "kubeforge_systemd_dropin": kubeforge_systemd_dropin,
        }
