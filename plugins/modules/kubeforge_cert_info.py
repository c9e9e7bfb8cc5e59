#!/usr/bin/python
"""Read the certificates kubeforge put on a host: subject, issuer, expiry."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import math
import re
import socket
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ansible.module_utils.basic import AnsibleModule  # type: ignore[import-untyped]

DOCUMENTATION = r"""
module: kubeforge_cert_info
short_description: Report every certificate on a host with its subject, issuer and expiry
description:
  - Reads the certificates in C(cert_dirs) (files C(*.crt) and C(*.pem), not recursive), those
    embedded in the kubeconfigs of C(kubeconfig_dirs) (files C(*.conf) and C(*.kubeconfig),
    fields C(certificate-authority-data) and C(client-certificate-data)) and the kubelet's own in
    C(kubelet_pki_dir) (C(*-current.pem), followed to the file it points at, and C(*.crt); the
    dated files of the kubelet's rotations are left out, the current one stands for them).
  - Only the first certificate of a file is read (a chain starts with its leaf). Keys are never
    returned; a file holding only a key is skipped.
  - Uses the Python C(cryptography) library when the host has it, else the C(openssl) command
    (Debian's C(ca-certificates) package brings it). A missing directory is not an error.
  - Changes nothing; works in check mode.
options:
  host:
    description: The name the report gives this host (the inventory name); default its hostname.
    type: str
  cert_dirs:
    description: Directories of certificate files (kube_cert_dir, etcd_cert_dir).
    type: list
    elements: str
    default: []
  kubeconfig_dirs:
    description: Directories of kubeconfigs (kube_config_dir).
    type: list
    elements: str
    default: []
  kubelet_pki_dir:
    description: The kubelet's --cert-dir; empty for none.
    type: str
    default: ""
  warn_ca_days:
    description:
      - Emit an Ansible warning for each CA that expires within this many days (0, none). The
        message names the CA, not the host, so that the same CA on many hosts warns once.
    type: int
    default: 0
  parser:
    description: >-
      C(auto) (cryptography when importable, else openssl), C(cryptography) or C(openssl).
    type: str
    default: auto
    choices: [auto, cryptography, openssl]
author: kubeforge
"""

EXAMPLES = r"""
- name: Read the certificates of the host
  kubeforge_cert_info:
    host: "{{ inventory_hostname }}"
    cert_dirs: ["{{ kube_cert_dir }}", "{{ etcd_cert_dir }}"]
    kubeconfig_dirs: ["{{ kube_config_dir }}"]
    kubelet_pki_dir: /var/lib/kubelet/pki
  register: certs
"""

RETURN = r"""
certificates:
  description: Every certificate found, the soonest to expire first.
  type: list
  elements: dict
  returned: always
  contains:
    host:
      description: The C(host) option (else the hostname).
      type: str
    file:
      description: Absolute path of the file holding it.
      type: str
    part:
      description:
        - For a kubeconfig, the field it is embedded in (C(certificate-authority-data),
          C(client-certificate-data); C([n]) appended from the second one of a file on); else empty.
      type: str
    source:
      description: >-
        C(file) (cert_dirs), C(kubeconfig) (kubeconfig_dirs) or C(kubelet) (kubelet_pki_dir).
      type: str
    link:
      description: The file a symbolic link points at (the kubelet's current pair), else empty.
      type: str
    subject:
      description: Subject as RFC 4514 writes it (C(CN=kubernetes-admin,O=system:masters)).
      type: str
    issuer:
      description: Issuer, the same way.
      type: str
    serial:
      description: Serial number, lower-case hexadecimal without leading zeros.
      type: str
    fingerprint_sha256:
      description: SHA-256 of the DER certificate, lower-case hexadecimal.
      type: str
    not_before:
      description: Start of validity, UTC, C(YYYY-MM-DDTHH:MM:SSZ).
      type: str
    not_after:
      description: End of validity, UTC, C(YYYY-MM-DDTHH:MM:SSZ).
      type: str
    days_left:
      description: Whole days until not_after (rounded down; negative once expired).
      type: int
    is_ca:
      description: Whether its basic constraints say CA:TRUE.
      type: bool
    sans:
      description: Subject alternative names, C(DNS:name) and C(IP:address).
      type: list
      elements: str
errors:
  description: Files or fields that hold no readable certificate, as host, file, part and error.
  type: list
  elements: dict
  returned: always
parser:
  description: What read the certificates, C(cryptography) or C(openssl).
  type: str
  returned: always
"""

UTC = timezone.utc  # noqa: UP017 - datetime.UTC needs Python 3.11 on the host
PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----")
KUBECONFIG_FIELD = re.compile(
    r"^\s*(certificate-authority-data|client-certificate-data):\s*[\"']?([A-Za-z0-9+/=]+)",
    re.MULTILINE,
)
# The kubelet's rotated pairs: kubelet-client-2026-01-31-12-00-00.pem.
KUBELET_DATED = re.compile(r"-\d{4}(-\d{2}){5}\.pem$")
OPENSSL_ARGS = (
    "x509",
    "-noout",
    "-subject",
    "-issuer",
    "-serial",
    "-startdate",
    "-enddate",
    "-fingerprint",
    "-sha256",
    "-nameopt",
    "RFC2253",
    "-ext",
    "basicConstraints,subjectAltName",
)


@dataclass(frozen=True)
class Found:
    """A certificate's PEM text and where it was found."""

    file: str
    part: str
    source: str
    pem: bytes
    link: str = ""


class Unreadable(Exception):
    """No certificate could be read from a file or field."""


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def days_left(not_after: datetime, now: datetime) -> int:
    return math.floor((not_after - now).total_seconds() / 86400)


def normal_san(kind: str, value: str) -> str:
    if kind == "IP":
        return f"IP:{ipaddress.ip_address(value.strip())}"
    return f"{kind}:{value.strip()}"


# cryptography ------------------------------------------------------------------------------


def utc_attribute(cert: Any, name: str) -> datetime:
    """cert.<name>_utc; before cryptography 42 (Debian 12 has 38) only the
    naive UTC cert.<name>."""
    aware = getattr(cert, f"{name}_utc", None)
    if isinstance(aware, datetime):
        return aware
    naive: datetime = getattr(cert, name)
    return naive.replace(tzinfo=UTC)


def describe_with_cryptography(pem: bytes) -> dict[str, Any]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise Unreadable(str(exc)) from exc
    try:
        is_ca = bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        is_ca = False
    sans: list[str] = []
    try:
        for name in cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value:
            if isinstance(name, x509.IPAddress):
                sans.append(normal_san("IP", str(name.value)))
            elif isinstance(name, x509.DNSName):
                sans.append(normal_san("DNS", name.value))
            else:
                sans.append(str(name.value))
    except x509.ExtensionNotFound:
        pass
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "serial": format(cert.serial_number, "x"),
        "fingerprint_sha256": cert.fingerprint(hashes.SHA256()).hex(),
        "not_before": utc_attribute(cert, "not_valid_before"),
        "not_after": utc_attribute(cert, "not_valid_after"),
        "is_ca": is_ca,
        "sans": sans,
    }


# openssl -----------------------------------------------------------------------------------


def openssl_date(value: str) -> datetime:
    """`Dec  4 16:36:26 2026 GMT` (openssl's default date format, LC_ALL=C)."""
    return datetime.strptime(" ".join(value.split()), "%b %d %H:%M:%S %Y GMT").replace(tzinfo=UTC)


def parse_openssl(text: str) -> dict[str, Any]:
    """What `openssl x509` prints with OPENSSL_ARGS, as describe_with_cryptography returns it."""
    fields: dict[str, str] = {}
    extensions: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith((" ", "\t")):
            if current is not None:
                current.append(line.strip())
            continue
        current = None
        if line.startswith("X509v3 "):
            current = extensions.setdefault(line.split(":", 1)[0], [])
        elif "=" in line:
            key, value = line.split("=", 1)
            fields[key.strip()] = value.strip()
    try:
        sans = [
            normal_san("IP" if kind == "IP Address" else kind, value)
            for item in ", ".join(extensions.get("X509v3 Subject Alternative Name", [])).split(", ")
            if item
            for kind, value in [item.split(":", 1)]
        ]
        return {
            "subject": fields["subject"],
            "issuer": fields["issuer"],
            "serial": format(int(fields["serial"], 16), "x"),
            "fingerprint_sha256": fields["sha256 Fingerprint"].replace(":", "").lower(),
            "not_before": openssl_date(fields["notBefore"]),
            "not_after": openssl_date(fields["notAfter"]),
            "is_ca": "CA:TRUE" in extensions.get("X509v3 Basic Constraints", []),
            "sans": sans,
        }
    except (KeyError, ValueError) as exc:
        raise Unreadable(f"unexpected openssl output ({exc}): {text.strip()[:200]}") from exc


def describe_with_openssl(module: AnsibleModule, openssl: str, pem: bytes) -> dict[str, Any]:
    rc, out, err = module.run_command(
        [openssl, *OPENSSL_ARGS],
        data=pem.decode("ascii"),
        binary_data=True,
        environ_update={"LC_ALL": "C"},
    )
    if rc != 0:
        raise Unreadable(f"openssl x509 failed: {err.strip() or out.strip()}")
    return parse_openssl(out)


# What is on the host -----------------------------------------------------------------------


def first_pem(data: bytes) -> bytes | None:
    match = PEM_CERT.search(data)
    return match.group(0) if match else None


def read_file(path: Path, source: str) -> Found | None:
    """The first certificate of a file; None for a file without one (a key)."""
    data = path.read_bytes()
    pem = first_pem(data)
    if pem is None:
        if path.suffix == ".crt":
            raise Unreadable("no PEM certificate in the file")
        return None
    link = str(path.resolve()) if path.is_symlink() else ""
    return Found(str(path), "", source, pem, link)


def kubeconfig_certificates(path: Path) -> list[Found]:
    out: list[Found] = []
    seen: dict[str, int] = {}
    for field, value in KUBECONFIG_FIELD.findall(path.read_text(errors="replace")):
        seen[field] = seen.get(field, 0) + 1
        part = field if seen[field] == 1 else f"{field}[{seen[field]}]"
        try:
            pem = first_pem(base64.b64decode(value, validate=True))
        except binascii.Error as exc:
            raise Unreadable(f"{part}: not base64: {exc}") from exc
        if pem is None:
            raise Unreadable(f"{part}: no PEM certificate in it")
        out.append(Found(str(path), part, "kubeconfig", pem))
    return out


def files(directory: str, patterns: tuple[str, ...]) -> list[Path]:
    base = Path(directory)
    if not directory or not base.is_dir():
        return []
    found = {p for pattern in patterns for p in base.glob(pattern) if p.is_file()}
    return sorted(found)


def collect(params: dict[str, Any], errors: list[dict[str, str]]) -> list[Found]:
    """Every certificate the options name; files that cannot be read go to `errors`."""
    wanted: dict[Path, Any] = {}
    for directory in dict.fromkeys(params["cert_dirs"]):
        for path in files(directory, ("*.crt", "*.pem")):
            wanted.setdefault(path, lambda p: read_file(p, "file"))
    for directory in dict.fromkeys(params["kubeconfig_dirs"]):
        for path in files(directory, ("*.conf", "*.kubeconfig")):
            wanted.setdefault(path, kubeconfig_certificates)
    for path in files(params["kubelet_pki_dir"], ("*-current.pem", "*.crt")):
        if not KUBELET_DATED.search(path.name):
            wanted.setdefault(path, lambda p: read_file(p, "kubelet"))
    found: list[Found] = []
    for path, read in wanted.items():
        try:
            result = read(path)
        except (OSError, Unreadable) as exc:
            errors.append({"file": str(path), "part": "", "error": str(exc)})
            continue
        found += result if isinstance(result, list) else [result] if result else []
    return found


def describe(found: Found, host: str, now: datetime, read: Any) -> dict[str, Any]:
    info = read(found.pem)
    return {
        "host": host,
        "file": found.file,
        "part": found.part,
        "source": found.source,
        "link": found.link,
        **info,
        "not_before": iso(info["not_before"]),
        "not_after": iso(info["not_after"]),
        "days_left": days_left(info["not_after"], now),
    }


def cryptography_available() -> bool:
    try:
        import cryptography.x509  # noqa: F401
    except ImportError:
        return False
    return True


def reader(module: AnsibleModule) -> tuple[str, Any]:
    """The parser to use and a function PEM -> description."""
    wanted = module.params["parser"]
    if wanted in ("auto", "cryptography") and cryptography_available():
        return "cryptography", describe_with_cryptography
    if wanted == "cryptography":
        module.fail_json(msg="the Python cryptography library is not installed on this host")
    openssl = module.get_bin_path("openssl")
    if openssl is None:
        # Not fatal until there is something to read (a host before bootstrap_os).
        def missing(_: bytes) -> dict[str, Any]:
            raise Unreadable("neither python3-cryptography nor openssl is installed")

        return "openssl", missing
    return "openssl", lambda pem: describe_with_openssl(module, openssl, pem)


def ca_warning(cert: dict[str, Any], within: int) -> str | None:
    if not cert["is_ca"] or cert["days_left"] >= within:
        return None
    when = (
        f"expired on {cert['not_after']}"
        if cert["days_left"] < 0
        else f"expires on {cert['not_after']}"
    )
    return (
        f"CA {cert['subject']} (sha256 {cert['fingerprint_sha256'][:16]}) {when}: no kubeforge "
        "run renews a CA; every certificate it signed stops working then. Replace it with a CA "
        "rotation before that date (docs/operations.md, Certificates: expiry report and renewal)."
    )


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "host": {"type": "str"},
            "cert_dirs": {"type": "list", "elements": "str", "default": []},
            "kubeconfig_dirs": {"type": "list", "elements": "str", "default": []},
            "kubelet_pki_dir": {"type": "str", "default": ""},
            "warn_ca_days": {"type": "int", "default": 0},
            "parser": {
                "type": "str",
                "default": "auto",
                "choices": ["auto", "cryptography", "openssl"],
            },
        },
        supports_check_mode=True,
    )
    host = module.params["host"] or socket.gethostname()
    errors: list[dict[str, str]] = []
    found = collect(module.params, errors)
    parser, read = reader(module)
    now = datetime.now(UTC)
    certificates = []
    for item in found:
        try:
            certificates.append(describe(item, host, now, read))
        except Unreadable as exc:
            errors.append({"file": item.file, "part": item.part, "error": str(exc)})
    certificates.sort(key=lambda c: (c["not_after"], c["file"], c["part"]))
    for error in errors:
        error["host"] = host
    if module.params["warn_ca_days"] > 0:
        for message in dict.fromkeys(
            m for c in certificates if (m := ca_warning(c, module.params["warn_ca_days"]))
        ):
            module.warn(message)
    module.exit_json(changed=False, certificates=certificates, errors=errors, parser=parser)


if __name__ == "__main__":
    main()
