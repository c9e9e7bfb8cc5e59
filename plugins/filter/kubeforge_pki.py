"""Filters shared by the certificates, etcd and control_plane roles: who a host
is (node name, address) and the subject alternative names of its certificates.

A host's address is its ``ip`` if set, else its ``ansible_host``, else its
inventory name: what its services bind to. Its access address is its
``access_ip`` if set, else its address: what other hosts connect to (kubespray's
meaning). Its node name is ``kube_override_hostname`` if set, else its
inventory name, lowercased; its etcd member name is ``etcd_member_name`` if
set, else its node name (docs/development.md).
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HostVars = Mapping[str, Mapping[str, Any]]


def _set(value: Any) -> bool:
    return value is not None and str(value).strip() != ""


def kubeforge_address(host: str, hostvars: HostVars) -> str:
    """The address other hosts and the services use to reach `host`."""
    hv = hostvars.get(host, {})
    for key in ("ip", "ansible_host"):
        if _set(hv.get(key)):
            return str(hv[key]).strip()
    return host


def kubeforge_access_address(host: str, hostvars: HostVars) -> str:
    """The address other hosts reach `host` by: its access_ip, else its address."""
    access = hostvars.get(host, {}).get("access_ip")
    return str(access).strip() if _set(access) else kubeforge_address(host, hostvars)


def kubeforge_node_name(host: str, hostvars: HostVars) -> str:
    """The Kubernetes node name of `host`."""
    hv = hostvars.get(host, {})
    name = hv.get("kube_override_hostname")
    return (str(name).strip() if _set(name) else host).lower()


def kubeforge_etcd_member_name(host: str, hostvars: HostVars) -> str:
    """The etcd member name of `host`: its etcd_member_name, else its node name."""
    name = hostvars.get(host, {}).get("etcd_member_name")
    return str(name).strip() if _set(name) else kubeforge_node_name(host, hostvars)


def kubeforge_host_names(host: str, hostvars: HostVars) -> list[str]:
    """Every name and address `host` is known by in the inventory, most specific first."""
    hv = hostvars.get(host, {})
    out = [kubeforge_node_name(host, hostvars), kubeforge_address(host, hostvars)]
    out += [str(hv[k]).strip() for k in ("ip", "access_ip", "ansible_host") if _set(hv.get(k))]
    out.append(host)
    return _unique(out)


def _unique(values: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for v in values:
        if v not in seen:
            seen.add(v)
            out.append(v)
    return out


def kubeforge_sans(values: Iterable[Any]) -> list[str]:
    """community.crypto subject_alt_name entries: ``IP:`` for addresses, ``DNS:``
    for names. Empty values are dropped and duplicates removed, order is kept
    (a certificate is re-issued when this list changes, so it must be stable)."""
    out: list[str] = []
    for raw in values:
        if isinstance(raw, (list, tuple)):
            out += kubeforge_sans(raw)
            continue
        if not _set(raw):
            continue
        value = str(raw).strip()
        try:
            out.append(f"IP:{ipaddress.ip_address(value)}")
        except ValueError:
            out.append(f"DNS:{value.lower()}")
    return _unique(out)


def kubeforge_first_host(cidr: str) -> str:
    """The first usable address of a network: the `kubernetes` service IP."""
    net = ipaddress.ip_network(str(cidr), strict=False)
    return str(net.network_address + 1)


_USAGES = {
    "server": [ExtendedKeyUsageOID.SERVER_AUTH],
    "client": [ExtendedKeyUsageOID.CLIENT_AUTH],
    "peer": [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
}


def _read(path: str) -> bytes:
    return Path(path).read_bytes()


def _san_strings(cert: x509.Certificate) -> list[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    out: list[str] = []
    for name in ext.value:
        if isinstance(name, x509.IPAddress):
            out.append(f"IP:{name.value}")
        elif isinstance(name, x509.DNSName):
            out.append(f"DNS:{name.value}")
        else:
            out.append(repr(name))
    return out


def leaf_is_current(leaf: Mapping[str, Any], pki_dir: str, key_size: int, renew_days: int) -> bool:
    """Whether a leaf certificate of the certificates role is issued as specified
    (key, CA, subject, SANs, usage) and not within `renew_days` of expiry. Only a
    shortcut: a leaf that is not current goes through community.crypto, which
    decides for itself what to regenerate."""
    base = str(Path(pki_dir) / str(leaf["path"]))
    try:
        cert = x509.load_pem_x509_certificate(_read(base + ".crt"))
        key = serialization.load_pem_private_key(_read(base + ".key"), password=None)
        ca = x509.load_pem_x509_certificate(_read(str(Path(pki_dir) / f"{leaf['ca']}.crt")))
    except (OSError, ValueError, TypeError):
        return False
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size != int(key_size):
        return False
    if cert.public_key() != key.public_key():
        return False
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    renew_at = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=int(renew_days))
    if cert.not_valid_after_utc <= renew_at:
        return False
    cn = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    org = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    if cn != [leaf["cn"]] or org != ([leaf["o"]] if leaf.get("o") else []):
        return False
    if _san_strings(cert) != list(leaf.get("sans") or []):
        return False
    try:
        eku = list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return False
    return eku == _USAGES[str(leaf["usage"])]


def kubeforge_leaves_to_issue(
    leaves: Iterable[Mapping[str, Any]],
    pki_dir: str,
    key_size: int,
    renew_days: int,
    renew_all: Any = False,
) -> list[Mapping[str, Any]]:
    """The leaves of `leaves` that are missing, changed or about to expire;
    with `renew_all` (certificates_renew_all, renew-certificates.yml) every one."""
    if str(renew_all).lower() in ("true", "yes", "1"):
        return list(leaves)
    return [leaf for leaf in leaves if not leaf_is_current(leaf, pki_dir, key_size, renew_days)]


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "kubeforge_address": kubeforge_address,
            "kubeforge_access_address": kubeforge_access_address,
            "kubeforge_node_name": kubeforge_node_name,
            "kubeforge_etcd_member_name": kubeforge_etcd_member_name,
            "kubeforge_host_names": kubeforge_host_names,
            "kubeforge_sans": kubeforge_sans,
            "kubeforge_first_host": kubeforge_first_host,
            "kubeforge_leaves_to_issue": kubeforge_leaves_to_issue,
        }
