"""tests/lab/renewalcheck.py: which leaves count as short-lived, which
certificate files short-lived-leaves.yml missed, and the state file's errors
(the lab part runs in the scale scenario)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import renewalcheck as rc
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
KEY = ec.generate_private_key(ec.SECP256R1())


def leaf(cn: str, days: float) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(KEY.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=days))
        .sign(KEY, hashes.SHA256())
    )


FOUND = {
    "node3:/etc/kubernetes/pki/apiserver.crt": [leaf("kube-apiserver", 1)],
    "node3:/etc/kubernetes/pki/etcd/server.crt": [leaf("etcd-server", 364)],
    "node3:/etc/kubernetes/admin.conf": [leaf("kubernetes-admin", 300)],
    "node5:/etc/kubernetes/kubelet.conf": [leaf("system:node:node5", 1)],
}


def test_short_lived_are_the_leaves_expiring_within_two_days() -> None:
    assert rc.short_lived(FOUND, NOW) == {
        "node3:/etc/kubernetes/pki/apiserver.crt CN=kube-apiserver": "2026-12-07T12:00:00+00:00",
        "node5:/etc/kubernetes/kubelet.conf CN=system:node:node5": "2026-12-07T12:00:00+00:00",
    }


def test_long_lived_files_name_certificate_files_only_never_kubeconfigs() -> None:
    assert rc.long_lived_files(FOUND, NOW) == [
        "node3:/etc/kubernetes/pki/etcd/server.crt CN=etcd-server (2027-12-05)"
    ]


def test_nothing_short_lived_nothing_missed_when_every_file_was_reissued() -> None:
    fresh = {k: [leaf("x", 1)] for k in FOUND}
    assert rc.long_lived_files(fresh, NOW) == []
    assert len(rc.short_lived(fresh, NOW)) == len(FOUND)


def test_a_missing_state_file_says_before_did_not_run(tmp_path: Path) -> None:
    with pytest.raises(rc.RenewalError, match=r"renewalcheck\.py before` did not run"):
        rc.read_state(tmp_path / "renewal.json")


def test_after_without_before_fails_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert rc.main(["after", "inventory/lab/hosts.yml", str(tmp_path / "renewal.json")]) == 1
    assert "did not run" in capsys.readouterr().err
