"""Filters of plugins/filter/kubeforge_pki.py and the kubeforge_files/kubeforge_services modules."""

from __future__ import annotations

import datetime
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import labconfig as cfg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pki = load(cfg.REPO / "plugins" / "filter" / "kubeforge_pki.py")
MODULE = cfg.REPO / "plugins" / "modules" / "kubeforge_files.py"
LEAVES_MODULE = cfg.REPO / "plugins" / "modules" / "kubeforge_leaves.py"

HOSTVARS: dict[str, dict[str, Any]] = {
    "Node1": {"ansible_host": "192.0.2.10", "ip": "10.0.0.1"},
    "node2": {"ansible_host": "node2.example.com", "kube_override_hostname": "Worker-2"},
    "node3": {"ansible_host": "192.0.2.13", "ip": ""},
    "node4": {},
}


def test_address_is_ip_else_ansible_host_else_name() -> None:
    assert pki.kubeforge_address("Node1", HOSTVARS) == "10.0.0.1"
    assert pki.kubeforge_address("node2", HOSTVARS) == "node2.example.com"
    assert pki.kubeforge_address("node3", HOSTVARS) == "192.0.2.13"
    assert pki.kubeforge_address("node4", HOSTVARS) == "node4"


def test_node_name_is_override_else_inventory_name_lowercased() -> None:
    assert pki.kubeforge_node_name("Node1", HOSTVARS) == "node1"
    assert pki.kubeforge_node_name("node2", HOSTVARS) == "worker-2"


def test_host_names_list_every_name_and_address_once() -> None:
    assert pki.kubeforge_host_names("Node1", HOSTVARS) == [
        "node1",
        "10.0.0.1",
        "192.0.2.10",
        "Node1",
    ]
    assert pki.kubeforge_host_names("node2", HOSTVARS) == ["worker-2", "node2.example.com", "node2"]


def test_sans_split_addresses_from_names_keep_order_and_drop_duplicates() -> None:
    values = ["node1", "10.0.0.1", "", None, ["Node1", "fd00::1"], "10.0.0.1", "localhost"]
    assert pki.kubeforge_sans(values) == ["DNS:node1", "IP:10.0.0.1", "IP:fd00::1", "DNS:localhost"]


def test_first_host_of_the_service_network_is_the_kubernetes_service_ip() -> None:
    assert pki.kubeforge_first_host("10.233.0.0/18") == "10.233.0.1"
    assert pki.kubeforge_first_host("fd00:10:96::/112") == "fd00:10:96::1"


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write_key(path: Path, key: rsa.RSAPrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )


def _issue(
    tmp: Path,
    ca_key: rsa.RSAPrivateKey,
    ca: x509.Certificate,
    key: rsa.RSAPrivateKey,
    *,
    cn: str = "kube-apiserver",
    sans: tuple[x509.GeneralName, ...] = (x509.DNSName("node1"),),
    days: int = 365,
) -> None:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    (tmp / "leaf.crt").write_bytes(
        builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
    )
    _write_key(tmp / "leaf.key", key)


@pytest.fixture
def ca(tmp_path: Path) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = _key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes-ca")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "ca.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(tmp_path / "ca.key", key)
    return key, cert


LEAF = {
    "path": "leaf",
    "ca": "ca",
    "cn": "kube-apiserver",
    "usage": "server",
    "sans": ["DNS:node1"],
}


def test_a_leaf_issued_as_specified_is_current_and_needs_nothing(
    tmp_path: Path, ca: tuple[rsa.RSAPrivateKey, x509.Certificate]
) -> None:
    _issue(tmp_path, *ca, _key())
    assert pki.kubeforge_leaves_to_issue([LEAF], str(tmp_path), 2048, 30) == []


@pytest.mark.parametrize(
    "change",
    [
        {"sans": ["DNS:node1", "DNS:node2"]},  # a control-plane host was added
        {"sans": ["IP:10.0.0.1", "DNS:node1"]},  # order matters to community.crypto too
        {"cn": "other"},
        {"o": "system:masters"},
        {"usage": "peer"},
    ],
)
def test_a_leaf_whose_subject_sans_or_usage_changed_is_reissued(
    tmp_path: Path, ca: tuple[rsa.RSAPrivateKey, x509.Certificate], change: dict[str, Any]
) -> None:
    _issue(tmp_path, *ca, _key())
    leaf = {**LEAF, **change}
    assert pki.kubeforge_leaves_to_issue([leaf], str(tmp_path), 2048, 30) == [leaf]


def test_a_leaf_near_expiry_missing_or_with_another_key_or_ca_is_reissued(
    tmp_path: Path, ca: tuple[rsa.RSAPrivateKey, x509.Certificate]
) -> None:
    assert pki.kubeforge_leaves_to_issue([LEAF], str(tmp_path), 2048, 30) == [LEAF]  # missing
    _issue(tmp_path, *ca, _key(), days=20)
    assert pki.kubeforge_leaves_to_issue([LEAF], str(tmp_path), 2048, 30) == [LEAF]
    assert pki.kubeforge_leaves_to_issue([LEAF], str(tmp_path), 2048, 10) == []
    _issue(tmp_path, *ca, _key())
    _write_key(tmp_path / "leaf.key", _key())  # key no longer matches
    assert pki.kubeforge_leaves_to_issue([LEAF], str(tmp_path), 2048, 30) == [LEAF]
    _issue(tmp_path, *ca, _key())
    assert pki.kubeforge_leaves_to_issue([LEAF], str(tmp_path), 4096, 30) == [LEAF]
    other_key = _key()
    _issue(tmp_path, other_key, ca[1], _key())  # right issuer name, wrong signature
    assert pki.kubeforge_leaves_to_issue([LEAF], str(tmp_path), 2048, 30) == [LEAF]


def run_module(
    args: dict[str, Any], check: bool = False, diff: bool = False, module: Path = MODULE
) -> dict[str, Any]:
    payload = {"ANSIBLE_MODULE_ARGS": {**args, "_ansible_check_mode": check, "_ansible_diff": diff}}
    done = subprocess.run(
        [sys.executable, str(module)],
        input=json.dumps(payload),
        text=True,
        capture_output=True,
        check=False,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


# kubeforge_leaves: the module that issues what kubeforge_leaves_to_issue picks -------------------

ROLE_LEAVES: list[dict[str, Any]] = [
    LEAF,
    {"path": "nodes/node1/kubelet-client", "ca": "ca", "cn": "system:node:node1",
     "o": "system:nodes", "usage": "client", "name": "kubelet-client"},
    {"path": "nodes/node1/etcd/peer", "ca": "ca", "cn": "node1", "usage": "peer",
     "sans": ["DNS:node1", "IP:10.0.0.1", "IP:fd00::1", "DNS:localhost"], "owner": "etcd"},
]  # fmt: skip


def issue_leaves(
    pki_dir: Path, leaves: list[dict[str, Any]], check: bool = False
) -> dict[str, Any]:
    args = {"pki_dir": str(pki_dir), "leaves": leaves, "key_size": 2048, "days": 365}
    return run_module(args, check=check, module=LEAVES_MODULE)


def test_leaves_module_issues_what_the_selection_then_finds_current(
    tmp_path: Path, ca: tuple[rsa.RSAPrivateKey, x509.Certificate]
) -> None:
    assert pki.kubeforge_leaves_to_issue(ROLE_LEAVES, str(tmp_path), 2048, 30) == ROLE_LEAVES
    done = issue_leaves(tmp_path, ROLE_LEAVES)
    paths = [leaf["path"] for leaf in ROLE_LEAVES]
    assert done["changed"] and done["issued"] == paths and done["new_keys"] == paths, done
    # The selection and the module agree: nothing is due after one run.
    assert pki.kubeforge_leaves_to_issue(ROLE_LEAVES, str(tmp_path), 2048, 30) == []
    now = datetime.datetime.now(datetime.UTC)
    for path in paths:
        cert = x509.load_pem_x509_certificate((tmp_path / f"{path}.crt").read_bytes())
        cert.verify_directly_issued_by(ca[1])
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
        assert constraints.critical and not constraints.value.ca
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
        assert usage.critical and usage.value.digital_signature and usage.value.key_encipherment
        assert not usage.value.key_cert_sign
        assert cert.not_valid_before_utc < now
        lifetime = cert.not_valid_after_utc - now
        assert abs(lifetime - datetime.timedelta(days=365)).total_seconds() < 60
        assert (tmp_path / f"{path}.key").stat().st_mode & 0o777 == 0o600
        assert (tmp_path / f"{path}.crt").stat().st_mode & 0o777 == 0o644
    assert not [p for p in tmp_path.rglob(".kubeforge-*")], "a temporary file was left"


def test_leaves_module_keeps_a_usable_key_and_replaces_another(
    tmp_path: Path, ca: tuple[rsa.RSAPrivateKey, x509.Certificate]
) -> None:
    kept, small = _key(), rsa.generate_private_key(public_exponent=65537, key_size=1024)
    (tmp_path / "nodes" / "node1").mkdir(parents=True)
    _write_key(tmp_path / "leaf.key", kept)
    _write_key(tmp_path / "nodes" / "node1" / "kubelet-client.key", small)
    done = issue_leaves(tmp_path, ROLE_LEAVES[:2])
    assert done["new_keys"] == ["nodes/node1/kubelet-client"], done
    cert = x509.load_pem_x509_certificate((tmp_path / "leaf.crt").read_bytes())
    assert cert.public_key() == kept.public_key()
    replaced = serialization.load_pem_private_key(
        (tmp_path / "nodes" / "node1" / "kubelet-client.key").read_bytes(), None
    )
    assert isinstance(replaced, rsa.RSAPrivateKey) and replaced.key_size == 2048


def test_leaves_module_in_check_mode_makes_nothing_even_without_cas(tmp_path: Path) -> None:
    done = issue_leaves(tmp_path, ROLE_LEAVES, check=True)
    assert done["changed"] and done["issued"] == [leaf["path"] for leaf in ROLE_LEAVES], done
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("change", "named"),
    [({"sans": ["DNS:node1", "IP:10.0.0.300"]}, "IP:10.0.0.300"),
     ({"sans": ["node1"]}, "'node1'"),
     ({"ca": "front-proxy-ca"}, "'front-proxy-ca'")],
)  # fmt: skip
def test_leaves_module_names_what_it_cannot_issue(
    tmp_path: Path,
    ca: tuple[rsa.RSAPrivateKey, x509.Certificate],
    change: dict[str, Any],
    named: str,
) -> None:
    done = issue_leaves(tmp_path, [{**LEAF, **change}])
    assert done.get("failed") and named in done["msg"], done
    assert not (tmp_path / "leaf.crt").exists()


def test_files_module_writes_only_what_differs(tmp_path: Path) -> None:
    me = Path.home().owner()
    group = Path.home().group()
    a, b = tmp_path / "pki" / "etcd" / "a.key", tmp_path / "b.crt"
    files = [
        {"path": str(a), "content": "secret\n", "mode": "0600", "owner": me, "group": group},
        {"path": str(b), "content": "cert\n", "owner": me, "group": group},
    ]
    planned = run_module({"files": files}, check=True)
    assert planned["changed_paths"] == [str(a), str(b)] and not b.exists()
    done = run_module({"files": files})
    assert done["changed"] and done["changed_paths"] == [str(a), str(b)]
    assert a.read_text() == "secret\n" and oct(a.stat().st_mode & 0o777) == "0o600"
    assert oct(b.stat().st_mode & 0o777) == "0o644"
    again = run_module({"files": files})
    assert again["changed"] is False and again["changed_paths"] == []
    b.chmod(0o666)
    assert run_module({"files": files})["changed_paths"] == [str(b)]
    assert oct(b.stat().st_mode & 0o777) == "0o644"


def test_files_module_refuses_relative_paths(tmp_path: Path) -> None:
    result = run_module({"files": [{"path": "relative/x", "content": "x"}]})
    assert result["failed"] and "absolute" in result["msg"]


def test_files_module_creates_and_corrects_directories(tmp_path: Path) -> None:
    me, group = Path.home().owner(), Path.home().group()
    d = tmp_path / "a" / "b"
    spec = [{"path": str(d), "mode": "0700", "owner": me, "group": group}]
    assert run_module({"directories": spec}, check=True)["changed_paths"] == [str(d)]
    assert not d.exists()
    assert run_module({"directories": spec})["changed_paths"] == [str(d)]
    assert d.is_dir() and oct(d.stat().st_mode & 0o777) == "0o700"
    assert run_module({"directories": spec})["changed"] is False
    d.chmod(0o755)
    assert run_module({"directories": spec})["changed_paths"] == [str(d)]
    assert oct(d.stat().st_mode & 0o777) == "0o700"
    (tmp_path / "f").write_text("x")
    failed = run_module({"directories": [{"path": str(tmp_path / "f")}]})
    assert failed["failed"] and "not a directory" in failed["msg"]


def test_files_module_reports_a_diff_when_asked(tmp_path: Path) -> None:
    me, group = Path.home().owner(), Path.home().group()
    f = tmp_path / "x.conf"
    f.write_text("old\n")
    spec = {"files": [{"path": str(f), "content": "new\n", "owner": me, "group": group}]}
    result = run_module(spec, check=True, diff=True)
    assert result["diff"] == [
        {"before_header": str(f), "after_header": str(f), "before": "old\n", "after": "new\n"}
    ]
    assert f.read_text() == "old\n"
    assert "diff" not in run_module(spec, check=True)


services = load(cfg.REPO / "plugins" / "modules" / "kubeforge_services.py")


def test_services_module_reads_systemd_microsecond_timestamps() -> None:
    assert services.parse_timestamp("Mon 2026-11-23 14:01:36.250000 UTC") == pytest.approx(
        datetime.datetime(2026, 11, 23, 14, 1, 36, 250000, tzinfo=datetime.UTC).timestamp()
    )
    assert services.parse_timestamp("") is None
    assert services.parse_timestamp("n/a") is None


def test_services_module_restarts_for_files_changed_after_the_start(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    old.write_text("a")
    started = old.stat().st_ctime + 0.5
    new.write_text("b")
    os.utime(new)  # (utime sets mtime; ctime is the change time, which is now)
    paths = [str(old), str(new), str(tmp_path / "missing")]
    assert services.changed_since(paths, started - 3600) == [str(old), str(new)]
    assert services.changed_since(paths, new.stat().st_ctime + 1) == []
    assert services.changed_since(paths, None) == []
