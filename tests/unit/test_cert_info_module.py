"""plugins/modules/kubeforge_cert_info.py reads what kubeforge puts on a host
(certificate files, kubeconfigs with embedded certificates, the kubelet's
rotated pair) the same way with the cryptography library and with openssl (a
plain Debian 12 host has only the latter), changes nothing, and names what it
cannot read."""

from __future__ import annotations

import base64
import datetime
import importlib.util
import ipaddress
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

MODULE = Path(__file__).resolve().parents[2] / "plugins" / "modules" / "kubeforge_cert_info.py"
NOW = datetime.datetime.now(datetime.UTC)


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("kubeforge_cert_info", MODULE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


info = load()


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(cn: str, o: str = "") -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o)] if o else []
    return x509.Name([*attrs, x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(
    subject: x509.Name,
    key: rsa.RSAPrivateKey,
    issuer: tuple[x509.Name, rsa.RSAPrivateKey] | None = None,
    *,
    hours: float,
    ca: bool = False,
    sans: list[x509.GeneralName] | None = None,
    serial: int = 0x0ABC,
) -> x509.Certificate:
    issuer_name, issuer_key = issuer or (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(NOW - datetime.timedelta(minutes=5))
        .not_valid_after(NOW + datetime.timedelta(hours=hours))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


class Host:
    """A host's directories as kubeforge lays them out, under tmp."""

    def __init__(self, tmp: Path) -> None:
        self.pki, self.etcd, self.conf, self.kubelet = (
            tmp / "pki",
            tmp / "pki" / "etcd",
            tmp / "conf",
            tmp / "kubelet-pki",
        )
        for d in (self.etcd, self.conf, self.kubelet):
            d.mkdir(parents=True)
        ca_key, leaf_key = _key(), _key()
        self.ca = _cert(_name("kubernetes-ca"), ca_key, hours=24 * 3650, ca=True, serial=1)
        signer = (self.ca.subject, ca_key)
        self.apiserver = _cert(
            _name("kube-apiserver"),
            leaf_key,
            signer,
            hours=30,
            sans=[
                x509.DNSName("kubernetes"),
                x509.IPAddress(ipaddress.ip_address("10.233.0.1")),
                x509.IPAddress(ipaddress.ip_address("fd00::1")),
            ],
            serial=0x00FF00,
        )
        self.admin = _cert(_name("kubernetes-admin", "system:masters"), leaf_key, signer, hours=50)
        self.etcd_ca = _cert(_name("etcd-ca"), ca_key, hours=24 * 100, ca=True, serial=2)
        self.rotated = _cert(_name("system:node:node1", "system:nodes"), leaf_key, signer, hours=70)
        self.old_rotated = _cert(
            _name("system:node:node1", "system:nodes"), leaf_key, signer, hours=1
        )
        (self.pki / "ca.crt").write_bytes(_pem(self.ca))
        (self.pki / "ca.key").write_bytes(_key_pem(ca_key))
        (self.pki / "apiserver.crt").write_bytes(_pem(self.apiserver) + _pem(self.ca))  # a chain
        (self.pki / "apiserver.key").write_bytes(_key_pem(leaf_key))
        (self.pki / "sa.pub").write_text("not a certificate\n")
        (self.pki / "broken.crt").write_text("garbage\n")
        (self.pki / "only-a-key.pem").write_bytes(_key_pem(leaf_key))
        (self.etcd / "ca.crt").write_bytes(_pem(self.etcd_ca))
        b64 = {k: base64.b64encode(v).decode() for k, v in {
            "ca": _pem(self.ca), "admin": _pem(self.admin), "key": _key_pem(leaf_key)}.items()
        }  # fmt: skip
        (self.conf / "admin.conf").write_text(
            "apiVersion: v1\nkind: Config\nclusters:\n  - name: cluster.local\n    cluster:\n"
            f"      certificate-authority-data: {b64['ca']}\n      server: https://10.0.0.1:6443\n"
            f"users:\n  - name: kubernetes-admin\n    user:\n      client-certificate-data: "
            f'"{b64["admin"]}"\n      client-key-data: {b64["key"]}\n'
        )
        (self.conf / "kubelet-config.yaml").write_text("kind: KubeletConfiguration\n")
        dated = self.kubelet / "kubelet-client-2026-01-31-12-00-00.pem"
        dated.write_bytes(_pem(self.rotated) + _key_pem(leaf_key))
        (self.kubelet / "kubelet-client-2025-01-31-12-00-00.pem").write_bytes(
            _pem(self.old_rotated) + _key_pem(leaf_key)
        )
        (self.kubelet / "kubelet-client-current.pem").symlink_to(dated)

    def args(self, **extra: Any) -> dict[str, Any]:
        return {
            "host": "node1",
            "cert_dirs": [str(self.pki), str(self.etcd), str(self.pki / "absent")],
            "kubeconfig_dirs": [str(self.conf)],
            "kubelet_pki_dir": str(self.kubelet),
            **extra,
        }


def run_module(args: dict[str, Any], check: bool = False) -> dict[str, Any]:
    payload = {"ANSIBLE_MODULE_ARGS": {**args, "_ansible_check_mode": check}}
    done = subprocess.run(
        [sys.executable, str(MODULE)],
        input=json.dumps(payload),
        text=True,
        capture_output=True,
        check=False,
    )
    assert done.stdout, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.fixture
def host(tmp_path: Path) -> Host:
    return Host(tmp_path)


@pytest.fixture(scope="module")
def openssl() -> str:
    found = shutil.which("openssl")
    if found is None:
        pytest.fail("openssl is not installed: the module's openssl parser cannot be checked")
    return found


def test_reads_files_kubeconfigs_and_the_kubelets_current_pair(host: Host) -> None:
    result = run_module(host.args(), check=True)
    assert result["changed"] is False and result["parser"] == "cryptography"
    found = [(Path(c["file"]).name, c["part"], c["source"]) for c in result["certificates"]]
    # The soonest to expire first; the dated pairs of the kubelet are not read.
    assert found == [
        ("apiserver.crt", "", "file"),
        ("admin.conf", "client-certificate-data", "kubeconfig"),
        ("kubelet-client-current.pem", "", "kubelet"),
        ("ca.crt", "", "file"),  # etcd's, 100 days
        ("admin.conf", "certificate-authority-data", "kubeconfig"),
        ("ca.crt", "", "file"),
    ]
    by_name = {(Path(c["file"]).name, c["part"]): c for c in result["certificates"]}
    api = by_name[("apiserver.crt", "")]
    assert api["host"] == "node1"
    assert api["subject"] == "CN=kube-apiserver" and api["issuer"] == "CN=kubernetes-ca"
    assert api["sans"] == ["DNS:kubernetes", "IP:10.233.0.1", "IP:fd00::1"]
    assert api["is_ca"] is False and api["days_left"] == 1 and api["serial"] == "ff00"
    after = host.apiserver.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert api["not_after"] == after
    fingerprint = host.apiserver.fingerprint(hashes.SHA256()).hex()
    assert api["fingerprint_sha256"] == fingerprint
    admin = by_name[("admin.conf", "client-certificate-data")]
    assert admin["subject"] == "CN=kubernetes-admin,O=system:masters" and admin["days_left"] == 2
    assert by_name[("ca.crt", "")]["is_ca"] is True
    current = by_name[("kubelet-client-current.pem", "")]
    assert current["link"].endswith("kubelet-client-2026-01-31-12-00-00.pem")
    assert current["subject"] == "CN=system:node:node1,O=system:nodes"
    assert [(Path(e["file"]).name, e["host"]) for e in result["errors"]] == [
        ("broken.crt", "node1")
    ]
    assert "no PEM certificate" in result["errors"][0]["error"]


def test_openssl_reads_what_cryptography_reads(host: Host, openssl: str) -> None:
    by_library = run_module(host.args(parser="cryptography"))
    by_openssl = run_module(host.args(parser="openssl"))
    assert by_openssl["parser"] == "openssl"
    assert by_openssl["certificates"] == by_library["certificates"]
    assert by_openssl["errors"] == by_library["errors"]


def test_openssl_output_without_extensions_is_a_leaf_without_names(openssl: str) -> None:
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("plain"))
        .issuer_name(_name("plain"))
        .public_key((key := _key()).public_key())
        .serial_number(7)
        .not_valid_before(NOW)
        .not_valid_after(NOW + datetime.timedelta(days=3))
        .sign(key, hashes.SHA256())
    )
    text = subprocess.run(
        [openssl, *info.OPENSSL_ARGS],
        input=_pem(cert),
        capture_output=True,
        check=True,
        env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"},
    ).stdout.decode()
    parsed = info.parse_openssl(text)
    assert parsed["is_ca"] is False and parsed["sans"] == [] and parsed["serial"] == "7"
    assert parsed == info.describe_with_cryptography(_pem(cert))


def test_unexpected_openssl_output_is_unreadable_not_a_crash() -> None:
    with pytest.raises(info.Unreadable, match="unexpected openssl output"):
        info.parse_openssl("subject=CN=x\n")


def test_a_ca_expiring_soon_warns_once_without_the_hosts_name(host: Host) -> None:
    warned = run_module(host.args(warn_ca_days=365))
    messages = [w["event"]["msg"] if isinstance(w, dict) else w for w in warned["warnings"]]
    assert len(messages) == 1, messages
    assert messages[0].startswith("CA CN=etcd-ca ") and "node1" not in messages[0]
    assert "CA rotation" in messages[0]
    assert "warnings" not in run_module(host.args(warn_ca_days=30))


def test_missing_directories_are_an_empty_report(tmp_path: Path) -> None:
    result = run_module(
        {"cert_dirs": [str(tmp_path / "none")], "kubelet_pki_dir": str(tmp_path / "x")},
        check=True,
    )
    assert result["certificates"] == [] and result["errors"] == [] and not result["changed"]


class OldCertificate:
    """What cryptography before 42 (Debian 12 has 38) offers: naive UTC times only."""

    not_valid_before = datetime.datetime(2026, 1, 1, 0, 0, 0)
    not_valid_after = datetime.datetime(2027, 1, 1, 0, 0, 0)


def test_validity_is_read_from_older_cryptography_too() -> None:
    after = info.utc_attribute(OldCertificate(), "not_valid_after")
    assert after == datetime.datetime(2027, 1, 1, tzinfo=datetime.UTC)
    assert info.iso(after) == "2027-01-01T00:00:00Z"
