"""Kubelet client certificate rotation (kubelet_rotate_certificates): when role
node gives the kubelet kubeforge's issued certificate (the filter of
plugins/filter/kubeforge_kubelet.py), the host-side scripts that read the
kubelet's certificates and put kubeforge's in place, and the kubelet's and
kube-controller-manager's settings as Ansible renders them."""

from __future__ import annotations

import datetime
import functools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubeforge_inventory as inv
import pytest
import yaml
from ansible_render import render, template
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from kubeforge_kubelet import kubeforge_kubelet_client_seed

REPO = Path(__file__).resolve().parents[2]
NODE_VARS = yaml.safe_load((REPO / "roles/node/vars/main.yml").read_text())
NOW = datetime.datetime(2026, 6, 1, 12, 0, tzinfo=datetime.UTC)
DAY = datetime.timedelta(days=1)

# Certificates ------------------------------------------------------------------


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@functools.cache
def _ca(cn: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - 400 * DAY)
        .not_valid_after(NOW + 3000 * DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _client(
    *,
    node: str = "node1",
    org: str = "system:nodes",
    ca: str = "kubernetes-ca",
    issuer_cn: str = "",
    start: datetime.datetime = NOW - 10 * DAY,
    days: int = 365,
) -> str:
    """A kubelet client certificate signed by CA `ca` (another CA's key with
    `issuer_cn`: the right issuer name, the wrong signature)."""
    ca_key, ca_cert = _ca(ca)
    issuer = _ca(issuer_cn)[1].subject if issuer_cn else ca_cert.subject
    subject = [x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{node}")]
    if org:
        subject.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(subject))
        .issuer_name(issuer)
        .public_key(ec.generate_private_key(ec.SECP256R1()).public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + days * DAY)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return _pem(cert)


CA = _pem(_ca("kubernetes-ca")[1])
# kubeforge's issued certificate, ten days old.
ISSUED = _client()


def state(current: str = ISSUED, *, link: bool = True, ca: str = CA) -> dict[str, Any]:
    return {"current": current, "link": link, "issued": ISSUED, "ca": ca}


def why(s: dict[str, Any], node: str = "node1") -> str:
    return kubeforge_kubelet_client_seed(s, node, now=NOW)


# When kubeforge gives the kubelet its certificate -------------------------------


def test_the_kubelets_current_certificate_stays_when_it_is_kubeforges_or_its_own_renewal() -> None:
    assert why(state()) == ""
    # The kubelet renewed it (through a CSR, signed by the cluster CA): newer than kubeforge's.
    assert why(state(_client(start=NOW - DAY))) == ""
    # A CA rotation trusting both CAs: signed by either is fine.
    old_ca = _client(ca="old-ca", start=NOW - DAY)
    assert why(state(old_ca, ca=CA + _pem(_ca("old-ca")[1]))) == ""


@pytest.mark.parametrize(
    ("s", "reason"),
    [
        (state(""), "it has no current client certificate"),
        (state(link=False), "plain file, not the symlink"),
        (state("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----"),
         "cannot be read"),
        (state(_client(node="node2", start=NOW - DAY)), "O=system:nodes,CN=system:node:node2, "
         "not system:node:node1"),
        (state(_client(org="", start=NOW - DAY)), "not system:node:node1"),
        # After a CA rotation dropped the CA that signed it.
        (state(_client(ca="old-ca", start=NOW - DAY)), "not signed by the cluster CA"),
        (state(_client(ca="other-ca", issuer_cn="kubernetes-ca", start=NOW - DAY)),
         "not signed by the cluster CA"),
        (state(ca=""), "not signed by the cluster CA"),
        # The kubelet could not renew it in time (a node that was off).
        (state(_client(start=NOW - 400 * DAY, days=365)), "expired on 2026-04-27 12:00 UTC"),
        # kubeforge re-issued its certificate (a renewal, a CA rotation's new leaves).
        (state(_client(start=NOW - 20 * DAY)), "kubeforge issued a newer client certificate "
         "(2026-05-22 12:00 UTC) than the kubelet's current one (2026-05-12 12:00 UTC)"),
    ],
)  # fmt: skip
def test_kubeforge_gives_its_certificate_when_the_kubelets_cannot_serve(
    s: dict[str, Any], reason: str
) -> None:
    assert reason in why(s)


def test_the_current_certificate_is_checked_for_this_node() -> None:
    assert why(state(), node="node1") == ""
    assert "not system:node:node2" in why(state(), node="node2")


# The host-side scripts --------------------------------------------------------


def read(tmp_path: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", NODE_VARS["node_kubelet_client_read"],
         str(tmp_path / "pki/kubelet-client-current.pem"), str(tmp_path / "kubelet-client.crt"),
         str(tmp_path / "ca.crt")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def give(tmp_path: Path, mode: str = "write") -> str:
    pki = tmp_path / "pki"
    done = subprocess.run(
        ["sh", "-c", NODE_VARS["node_kubelet_client_give"], "give", "a reason", mode,
         str(tmp_path / "kubelet-client.crt"), str(tmp_path / "kubelet-client.key"),
         str(pki / "kubelet-client-kubeforge.pem"), str(pki / "kubelet-client-current.pem")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_read_script_prints_certificates_never_the_key(tmp_path: Path) -> None:
    (tmp_path / "pki").mkdir()
    assert read(tmp_path) == {"current": "", "link": False, "issued": "", "ca": ""}
    key = _key_pem(ec.generate_private_key(ec.SECP256R1()))
    renewed = _client(start=NOW - DAY)
    pki = tmp_path / "pki"
    (pki / "kubelet-client-2026.pem").write_text(renewed + key)
    (pki / "kubelet-client-current.pem").symlink_to(pki / "kubelet-client-2026.pem")
    (tmp_path / "kubelet-client.crt").write_text(ISSUED)
    (tmp_path / "ca.crt").write_text(CA)
    out = read(tmp_path)
    assert "PRIVATE KEY" not in json.dumps(out)
    expected = {"current": renewed, "link": True, "issued": ISSUED, "ca": CA}
    assert out == {k: v.strip() if isinstance(v, str) else v for k, v in expected.items()}
    assert why(out) == ""
    # A dangling link is no certificate.
    (pki / "kubelet-client-2026.pem").unlink()
    assert read(tmp_path)["current"] == ""


def test_the_give_script_writes_a_new_pair_and_points_the_link_at_it(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    pki.mkdir()
    key = _key_pem(ec.generate_private_key(ec.SECP256R1()))
    (tmp_path / "kubelet-client.crt").write_text(ISSUED)
    (tmp_path / "kubelet-client.key").write_text(key)
    current, seed = pki / "kubelet-client-current.pem", pki / "kubelet-client-kubeforge.pem"
    # Check mode: says why, writes nothing.
    assert give(tmp_path, "check").strip() == "a reason"
    assert list(pki.iterdir()) == []
    give(tmp_path)
    assert current.is_symlink() and current.readlink() == seed
    assert seed.read_text() == ISSUED + key
    assert seed.stat().st_mode & 0o777 == 0o600
    assert read(tmp_path)["current"] == ISSUED.strip()
    # The kubelet renewed: the link points at its own file. Given again, the
    # seed file is a new one (its change time restarts the kubelet).
    (pki / "kubelet-client-2026.pem").write_text(_client(start=NOW - DAY) + key)
    current.unlink()
    current.symlink_to(pki / "kubelet-client-2026.pem")
    before = seed.stat().st_ino
    give(tmp_path)
    assert current.readlink() == seed and seed.stat().st_ino != before
    assert sorted(p.name for p in pki.iterdir()) == [
        "kubelet-client-2026.pem", "kubelet-client-current.pem", "kubelet-client-kubeforge.pem"
    ]  # fmt: skip


# The settings, as Ansible renders them ------------------------------------------

ROLE_VAR_FILES = [
    "roles/control_plane/defaults/main.yml",
    "roles/node/defaults/main.yml",
    "roles/node/vars/main.yml",
]
KUBELET_CONF = template(
    "node/templates/kubeconfig.j2",
    "{'node_kubeconfig_cert': 'kubelet-client', 'node_kubeconfig_user': 'system:node:' ~ "
    "kube_node_name, 'node_kubeconfig_pair': node_kubelet_client_current "
    "if kubelet_rotate_certificates | bool else ''}",
)
RENDERED = {
    "kubelet_config": template("node/templates/kubelet-config.yaml.j2") + " | from_yaml",
    "kubelet_unit": template("node/templates/kubelet.service.j2"),
    "kubelet_conf": KUBELET_CONF + " | from_yaml",
    "kube_proxy_conf": template(
        "node/templates/kubeconfig.j2",
        "{'node_kubeconfig_cert': 'kube-proxy', 'node_kubeconfig_user': 'system:kube-proxy'}",
    ),
    "kubelet_watch": "node_kubelet_files",
    "controller_manager": "control_plane_controller_manager_args",
    "renewal_binding": "node_client_renewal_binding",
}


@functools.cache
def rendered(settings: str) -> dict[str, Any]:
    return render(
        hosts={"node1": {"ip": "192.0.2.11"}},
        groups={g: ["node1"] for g in ("kube_control_plane", "etcd", "kube_node")},
        settings=json.loads(settings),
        expressions=RENDERED,
        var_files=ROLE_VAR_FILES,
    )


def user(conf: dict[str, Any]) -> dict[str, str]:
    (entry,) = conf["users"]
    assert entry["name"] == "system:node:node1"
    return dict(entry["user"])


def test_rotation_is_on_by_default_with_the_pair_in_the_kubelets_cert_dir() -> None:
    r = rendered("{}")
    assert r["kubelet_config"]["rotateCertificates"] is True
    assert "serverTLSBootstrap" not in r["kubelet_config"]
    # The serving certificate stays kubeforge's.
    assert r["kubelet_config"]["tlsCertFile"] == "/etc/kubernetes/pki/kubelet.crt"
    assert "  --cert-dir=/var/lib/kubelet/pki\n" in r["kubelet_unit"]
    pair = "/var/lib/kubelet/pki/kubelet-client-current.pem"
    assert user(r["kubelet_conf"]) == {"client-certificate": pair, "client-key": pair}
    # A restart when kubeforge gives the kubelet its certificate, not when the kubelet renews it.
    assert "/var/lib/kubelet/pki/kubelet-client-kubeforge.pem" in r["kubelet_watch"]
    assert not [f for f in r["kubelet_watch"] if "current" in f or "kubelet-client.crt" in f]
    # What kube-controller-manager signs lives as long as kubeforge's leaves (365 days).
    assert r["controller_manager"]["cluster-signing-duration"] == "8760h"
    binding = r["renewal_binding"]
    assert binding["roleRef"]["name"] == (
        "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient"
    )
    assert binding["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:nodes"}
    ]


def test_kube_proxys_kubeconfig_is_unchanged() -> None:
    text = rendered("{}")["kube_proxy_conf"]
    assert "    user:\n      client-certificate: /etc/kubernetes/pki/kube-proxy.crt\n" in text
    assert "\n      client-key: /etc/kubernetes/pki/kube-proxy.key\ncontexts:\n" in text


def test_rotation_off_uses_kubeforges_files_and_signing_follows_the_leaf_days() -> None:
    r = rendered(json.dumps({"kubelet_rotate_certificates": False, "certificates_leaf_days": 90}))
    assert r["kubelet_config"]["rotateCertificates"] is False
    assert user(r["kubelet_conf"]) == {
        "client-certificate": "/etc/kubernetes/pki/kubelet-client.crt",
        "client-key": "/etc/kubernetes/pki/kubelet-client.key",
    }
    assert "/etc/kubernetes/pki/kubelet-client.crt" in r["kubelet_watch"]
    assert not [f for f in r["kubelet_watch"] if f.startswith("/var/lib/kubelet/pki")]
    assert r["controller_manager"]["cluster-signing-duration"] == "2160h"


# Preflight ---------------------------------------------------------------------


def rotation_errors(hostvars: dict[str, dict[str, Any]], value: Any) -> list[str]:
    groups = {"all": ["cp1", "w1"], "kube_control_plane": ["cp1"], "etcd": ["cp1"],
              "kube_node": ["w1"], "k8s_cluster": ["cp1", "w1"], "calico_rr": []}  # fmt: skip
    found = inv.kubeforge_inventory_errors(groups, hostvars, {"kubelet_rotate_certificates": value})
    return [e for e in found if "kubelet_rotate_certificates" in e]


def test_preflight_wants_one_boolean_for_the_whole_cluster() -> None:
    hosts: dict[str, dict[str, Any]] = {"cp1": {"ip": "192.0.2.1"}, "w1": {"ip": "192.0.2.2"}}
    assert rotation_errors(hosts, True) == []
    assert rotation_errors(hosts, "maybe") == [
        "all hosts: kubelet_rotate_certificates 'maybe' is not a boolean (true or false)"
    ]
    hosts["w1"]["kubelet_rotate_certificates"] = False
    (error,) = rotation_errors(hosts, True)
    assert error.startswith("cp1, w1: kubelet_rotate_certificates is not the same on every host")
