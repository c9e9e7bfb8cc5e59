"""The kubelet's client certificate under rotation (kubelet_rotate_certificates,
role node).

With rotateCertificates the kubelet reads its client certificate and key from
``kubelet-client-current.pem`` of its --cert-dir before the files its
kubeconfig names, and renews it itself: once 70-90% of its lifetime has passed
it writes a new ``kubelet-client-<time>.pem`` there and points the symlink
``kubelet-client-current.pem`` at it (k8s.io/client-go util/certificate
FileStore; a plain file there stops the renewal). kubeforge gives it the
certificate its own PKI issued only when the kubelet's cannot serve or
kubeforge has issued a newer one; otherwise a run leaves the kubelet's own
renewals alone and changes nothing.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import NameOID

NODES_GROUP = "system:nodes"


def _certificates(pem: Any) -> list[x509.Certificate]:
    text = str(pem or "").strip()
    return x509.load_pem_x509_certificates(text.encode()) if text else []


def _names(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> list[str]:
    return [str(a.value) for a in cert.subject.get_attributes_for_oid(oid)]


def signed_by_one_of(cert: x509.Certificate, cas: list[x509.Certificate]) -> bool:
    """Whether one of `cas` signed `cert` directly (also the lab checks' test)."""
    for ca in cas:
        try:
            cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return True
    return False


def _when(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def kubeforge_kubelet_client_seed(
    state: Mapping[str, Any], node_name: str, now: datetime.datetime | None = None
) -> str:
    """Why the kubelet is to be given kubeforge's issued client certificate; ''
    when its current one stays.

    `state` is what role node read on the host: ``current``, the certificates
    of kubelet-client-current.pem ('' when there is none); ``link``, whether
    that is a symlink; ``issued``, kubeforge's kubelet-client.crt; ``ca``, the
    cluster CA bundle (ca.crt: both CAs while a CA rotation trusts both)."""
    moment = now or datetime.datetime.now(datetime.UTC)
    try:
        current = _certificates(state.get("current"))
    except ValueError as exc:
        return f"its current client certificate cannot be read ({exc})"
    if not current:
        return "it has no current client certificate"
    if not state.get("link"):
        return (
            "kubelet-client-current.pem is a plain file, not the symlink the kubelet replaces "
            "when it renews its certificate"
        )
    leaf = current[0]
    user = f"system:node:{node_name}"
    if _names(leaf, NameOID.COMMON_NAME) != [user] or NODES_GROUP not in _names(
        leaf, NameOID.ORGANIZATION_NAME
    ):
        return f"its current client certificate is for {leaf.subject.rfc4514_string()}, not {user}"
    try:
        cas = _certificates(state.get("ca"))
    except ValueError:
        cas = []
    if not signed_by_one_of(leaf, cas):
        return "its current client certificate is not signed by the cluster CA (ca.crt)"
    if leaf.not_valid_after_utc <= moment:
        return f"its current client certificate expired on {_when(leaf.not_valid_after_utc)}"
    try:
        issued = _certificates(state.get("issued"))
    except ValueError:
        issued = []
    if issued and issued[0].not_valid_before_utc > leaf.not_valid_before_utc:
        newer, older = issued[0].not_valid_before_utc, leaf.not_valid_before_utc
        return (
            f"kubeforge issued a newer client certificate ({_when(newer)}) "
            f"than the kubelet's current one ({_when(older)})"
        )
    return ""


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"kubeforge_kubelet_client_seed": kubeforge_kubelet_client_seed}
