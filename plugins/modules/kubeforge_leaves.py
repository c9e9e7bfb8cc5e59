#!/usr/bin/python
"""Issue leaf certificates signed by the cluster's CAs on the control host, all of
a host's in one module call (the certificates role's leaves)."""

from __future__ import annotations

import datetime
import ipaddress
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ansible.module_utils.basic import AnsibleModule  # type: ignore[import-untyped]
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DOCUMENTATION = r"""
module: kubeforge_leaves
short_description: Issue leaf certificates from the cluster's own CAs, many in one call
description:
  - Runs on the control host, where the CAs are (delegated to C(localhost)).
  - For each leaf, keeps its key when it is an RSA key of O(key_size) bits, else makes a new one
    (mode 0600), then signs a new certificate for that key with the leaf's CA (mode 0644).
  - Every leaf given is issued. The caller chooses which are due (the role's
    C(kubeforge_leaves_to_issue) filter), so a renewal keeps each leaf's key.
  - The certificate is a version 3 leaf, valid from five minutes ago for O(days) days, with the
    subject (C(CN), C(O)), the subject alternative names in the order given, basic constraints
    C(CA:FALSE) and key usage C(digitalSignature, keyEncipherment) (both critical), the extended
    key usage of its usage, and subject and authority key identifiers; signed with SHA-256.
  - One call replaces three loops of community.crypto modules (key, signing request,
    certificate), which cost three module runs per leaf.
  - Files are replaced atomically. In check mode nothing is made and no CA is read (on a bare
    control host the CAs are not there yet); every leaf counts as issued.
  - Use C(no_log) on the task. The result names no key, but the arguments describe the PKI.
options:
  pki_dir:
    description: The directory the leaves' and CAs' paths are relative to.
    type: path
    required: true
  leaves:
    description: The leaves to issue.
    type: list
    elements: dict
    required: true
    suboptions:
      path:
        description: Files C(<path>.key) and C(<path>.crt) under O(pki_dir).
        type: str
        required: true
      ca:
        description: The CA, C(<ca>.crt) and C(<ca>.key) under O(pki_dir).
        type: str
        required: true
      cn: {description: The subject's common name., type: str, required: true}
      o: {description: The subject's organization (none when empty)., type: str}
      sans:
        description: Subject alternative names, C(IP:<address>) or C(DNS:<name>).
        type: list
        elements: str
        default: []
      usage:
        description: Extended key usage, C(server), C(client) or C(peer) (both).
        type: str
        required: true
        choices: [server, client, peer]
      name:
        description: The file name on the host (the install step's; not used here).
        type: raw
      owner:
        description: The file's owner on the host (the install step's; not used here).
        type: raw
  key_size:
    description: Size in bits of the RSA keys made.
    type: int
    default: 2048
  days:
    description: Lifetime of the certificates, in days.
    type: int
    required: true
author: kubeforge
"""

EXAMPLES = r"""
- name: Issue the leaves that are due
  kubeforge_leaves:
    pki_dir: "{{ certificates_dir }}"
    leaves: "{{ certificates_todo }}"
    key_size: 2048
    days: 365
  delegate_to: localhost
  no_log: true
"""

RETURN = r"""
issued:
  description: Paths (under pki_dir, without suffix) of the leaves issued (or that would be).
  type: list
  elements: str
  returned: always
new_keys:
  description: Paths of the leaves whose key was made anew (or would be).
  type: list
  elements: str
  returned: always
"""

USAGES = {
    "server": [ExtendedKeyUsageOID.SERVER_AUTH],
    "client": [ExtendedKeyUsageOID.CLIENT_AUTH],
    "peer": [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
}
BACKDATE = datetime.timedelta(minutes=5)
KEY_USAGE = x509.KeyUsage(
    digital_signature=True,
    key_encipherment=True,
    content_commitment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)


class LeafError(Exception):
    """A leaf cannot be issued; the message names it and says why."""


def san(entry: str) -> x509.GeneralName:
    """x509 name of a `kubeforge_sans` entry (IP:... or DNS:...)."""
    kind, _, value = str(entry).partition(":")
    if kind == "IP":
        try:
            return x509.IPAddress(ipaddress.ip_address(value))
        except ValueError as err:
            raise LeafError(f"subject alternative name {entry!r}: {err}") from err
    if kind == "DNS" and value:
        return x509.DNSName(value)
    raise LeafError(f"subject alternative name {entry!r} is neither IP:<address> nor DNS:<name>")


def usable_key(path: Path, key_size: int) -> rsa.RSAPrivateKey | None:
    """The RSA key of `key_size` bits at `path`, or None when missing or not that."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return None
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size == key_size:
        return key
    return None


def load_ca(pki: Path, name: str) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    try:
        cert = x509.load_pem_x509_certificate((pki / f"{name}.crt").read_bytes())
        key = serialization.load_pem_private_key((pki / f"{name}.key").read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as err:
        raise LeafError(f"CA {name!r} in {pki} cannot be read: {err}") from err
    if not isinstance(key, rsa.RSAPrivateKey):
        raise LeafError(f"CA {name!r} in {pki}: its key is not an RSA key")
    return cert, key


def authority_key_id(ca: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    try:
        ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.public_key())  # type: ignore[arg-type]
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def certificate(
    leaf: Mapping[str, Any],
    key: rsa.RSAPrivateKey,
    ca: tuple[x509.Certificate, rsa.RSAPrivateKey],
    days: int,
    now: datetime.datetime,
) -> x509.Certificate:
    """The leaf's certificate for `key`, signed by `ca`."""
    ca_cert, ca_key = ca
    names = [x509.NameAttribute(NameOID.COMMON_NAME, str(leaf["cn"]))]
    if leaf.get("o"):
        names.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, str(leaf["o"])))
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(names))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(KEY_USAGE, critical=True)
        .add_extension(x509.ExtendedKeyUsage(USAGES[str(leaf["usage"])]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(authority_key_id(ca_cert), critical=False)
    )
    sans = [san(entry) for entry in leaf.get("sans") or []]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def write(path: Path, data: bytes, mode: int) -> None:
    """Replace `path` atomically with `data` (mode `mode`), its directory made if missing."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=".kubeforge-")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        Path(name).replace(path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def issue(
    pki: Path, leaves: list[Mapping[str, Any]], key_size: int, days: int, check: bool
) -> tuple[list[str], list[str]]:
    """Issue every leaf of `leaves`; (paths issued, paths given a new key)."""
    now = datetime.datetime.now(datetime.UTC)
    cas: dict[str, tuple[x509.Certificate, rsa.RSAPrivateKey]] = {}
    issued: list[str] = []
    new_keys: list[str] = []
    for leaf in leaves:
        base = pki / str(leaf["path"])
        key_path, crt_path = base.with_name(base.name + ".key"), base.with_name(base.name + ".crt")
        key = usable_key(key_path, key_size)
        if key is None:
            new_keys.append(str(leaf["path"]))
        issued.append(str(leaf["path"]))
        if check:
            # Nothing is made: on a bare control host the CAs are not there yet.
            continue
        ca_name = str(leaf["ca"])
        if ca_name not in cas:
            cas[ca_name] = load_ca(pki, ca_name)
        if key is None:
            key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
            write(key_path, pem, 0o600)
        cert = certificate(leaf, key, cas[ca_name], days, now)
        write(crt_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return issued, new_keys


def main() -> None:
    leaf_spec = {
        "path": {"type": "str", "required": True},
        "ca": {"type": "str", "required": True},
        "cn": {"type": "str", "required": True},
        "o": {"type": "str"},
        "sans": {"type": "list", "elements": "str", "default": []},
        "usage": {"type": "str", "required": True, "choices": ["server", "client", "peer"]},
        # The install step's; not used here.
        "name": {"type": "raw"},
        "owner": {"type": "raw"},
    }
    module = AnsibleModule(
        argument_spec={
            "pki_dir": {"type": "path", "required": True},
            "leaves": {"type": "list", "elements": "dict", "required": True, "options": leaf_spec},
            "key_size": {"type": "int", "default": 2048},
            "days": {"type": "int", "required": True},
        },
        supports_check_mode=True,
    )
    p = module.params
    if p["days"] < 1:
        module.fail_json(msg=f"days must be at least 1, not {p['days']}")
    try:
        issued, new_keys = issue(
            Path(p["pki_dir"]), p["leaves"], p["key_size"], p["days"], module.check_mode
        )
    except LeafError as err:
        module.fail_json(msg=str(err))
    module.exit_json(changed=bool(issued), issued=issued, new_keys=new_keys)


if __name__ == "__main__":
    main()
