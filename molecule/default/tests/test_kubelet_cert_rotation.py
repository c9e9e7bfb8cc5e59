"""Kubelet client certificate rotation (kubelet_rotate_certificates, on by
default): every kubelet reads its client certificate from the pair it rotates,
kubelet-client-current.pem in /var/lib/kubelet/pki, which is its node's and
signed by the cluster CA. A worker given a certificate whose lifetime has
mostly passed renews it through a CertificateSigningRequest that
kube-controller-manager approves and signs, stays Ready, and a following
`cluster.yml --check` leaves the kubelet's renewed certificate alone (changes
nothing on that host)."""

from __future__ import annotations

import base64
import datetime
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from clustercheck import REPO, Inventory, Kubectl, run_ok, wait_for
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from runbook import plain_env, recap
from testinfra.host import Host  # type: ignore[import-untyped]

CERT_DIR = "/var/lib/kubelet/pki"
CURRENT = f"{CERT_DIR}/kubelet-client-current.pem"
SEED = f"{CERT_DIR}/kubelet-client-kubeforge.pem"
# The nearly expired pair the renewal check installs.
TEST_PAIR = f"{CERT_DIR}/kubelet-client-kubeforge-verify.pem"
KUBELET_CONFIG = "/etc/kubernetes/kubelet-config.yaml"
KUBELET_CONF = "/etc/kubernetes/kubelet.conf"
BINDING = "kubeforge:node-autoapprove-certificate-rotation"
SELF_NODE_CLIENT = "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient"
KUBELET_SIGNER = "kubernetes.io/kube-apiserver-client-kubelet"
# Prints only the certificates of a pair file, never its key.
CERTS_OF = "sed -n '/-BEGIN CERTIFICATE-/,/-END CERTIFICATE-/p'"


def pki_dir(inventory: Inventory) -> Path:
    """The PKI on the control host (role certificates' certificates_dir)."""
    path = inventory.path.resolve().parent / "artifacts" / "pki"
    for name in ("ca.crt", "ca.key"):
        if not (path / name).is_file():
            pytest.fail(f"{path / name} is missing: cluster.yml has not built the PKI there")
    return path


def cluster_ca(inventory: Inventory) -> x509.Certificate:
    return x509.load_pem_x509_certificate((pki_dir(inventory) / "ca.crt").read_bytes())


def current_certificate(host: Host, what: str) -> x509.Certificate:
    pem = run_ok(host, f"{CERTS_OF} {CURRENT}", what)
    if "BEGIN CERTIFICATE" not in pem:
        pytest.fail(f"{what}: {CURRENT} on {host.backend.get_pytest_id()} holds no certificate")
    return x509.load_pem_x509_certificates(pem.encode())[0]


def certificate_problems(cert: x509.Certificate, node: str, ca: x509.Certificate) -> list[str]:
    """What keeps `cert` from being `node`'s client certificate of the cluster CA."""
    problems = []
    cn = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    org = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    if cn != [f"system:node:{node}"] or "system:nodes" not in org:
        problems.append(f"{node}: the subject is {cert.subject.rfc4514_string()}")
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature) as exc:
        problems.append(f"{node}: not signed by the cluster CA ({exc!r})")
    now = datetime.datetime.now(datetime.UTC)
    if not cert.not_valid_before_utc <= now < cert.not_valid_after_utc:
        problems.append(
            f"{node}: valid {cert.not_valid_before_utc} to {cert.not_valid_after_utc}, not now"
        )
    return problems


def test_every_kubelet_rotates_its_client_certificate(
    inventory: Inventory, kubectl: Kubectl
) -> None:
    ca = cluster_ca(inventory)
    problems: list[str] = []
    for name in inventory.groups["k8s_cluster"]:
        host, node = inventory.host(name), name.lower()
        config = yaml.safe_load(run_ok(host, f"cat {KUBELET_CONFIG}", "kubelet configuration"))
        if config.get("rotateCertificates") is not True:
            problems.append(f"{node}: rotateCertificates is {config.get('rotateCertificates')!r}")
        conf = yaml.safe_load(run_ok(host, f"cat {KUBELET_CONF}", "kubelet's kubeconfig"))
        user = conf["users"][0]["user"]
        if (user.get("client-certificate"), user.get("client-key")) != (CURRENT, CURRENT):
            problems.append(f"{node}: {KUBELET_CONF} names {user}, not {CURRENT}")
        if not host.file(CURRENT).is_symlink:
            problems.append(f"{node}: {CURRENT} is not the symlink the kubelet renews")
        problems += certificate_problems(current_certificate(host, "kubelet pair"), node, ca)
    assert not problems, "\n".join(problems)
    binding = kubectl.json("get", "clusterrolebinding", BINDING)
    assert binding["roleRef"]["name"] == SELF_NODE_CLIENT, binding["roleRef"]
    assert [(s["kind"], s["name"]) for s in binding["subjects"]] == [("Group", "system:nodes")]


def nearly_expired_pair(inventory: Inventory, node: str) -> tuple[str, x509.Certificate]:
    """A client certificate and key for `node`, signed with the cluster CA's key
    on the control host, 95% of whose lifetime has passed: the kubelet renews
    one once 70-90% has."""
    pki = pki_dir(inventory)
    ca_key = serialization.load_pem_private_key((pki / "ca.key").read_bytes(), password=None)
    assert isinstance(ca_key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)), type(ca_key)
    ca = cluster_ca(inventory)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
        x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{node}"),
    ])  # fmt: skip
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=19))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_encipherment=False,
                content_commitment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode() + key_pem.decode(), cert


def point_current_at(host: Host, pair: str) -> None:
    """Point the kubelet's current pair at `pair` (as the kubelet does: a symlink
    replaced by a rename) and restart the kubelet, which reads it at start."""
    run_ok(
        host,
        f"ln -sfn {pair} {CURRENT}.tmp && mv -fT {CURRENT}.tmp {CURRENT} "
        "&& systemctl restart kubelet",
        "switch the kubelet's current pair",
    )


@pytest.fixture
def worker(inventory: Inventory) -> Iterator[str]:
    """A worker; afterwards its kubelet no longer uses the test's pair (back to
    kubeforge's when it never renewed it), and the pair is gone."""
    workers = [h for h in inventory.groups["kube_node"]
               if h not in inventory.groups["kube_control_plane"]]  # fmt: skip
    if not workers:
        pytest.fail(f"{inventory.path} has no worker (kube_node only)")
    name = workers[0]
    try:
        yield name
    finally:
        host = inventory.host(name)
        if host.file(CURRENT).linked_to == TEST_PAIR:
            point_current_at(host, SEED)
        run_ok(host, f"rm -f {TEST_PAIR}", "remove the test's pair")


def renewal_csr(kubectl: Kubectl, node: str, known: set[str]) -> tuple[dict[str, Any] | None, str]:
    """The node's new client certificate CSR once approved and issued; else why not."""
    mine = [
        c for c in kubectl.json("get", "csr")["items"]
        if c["metadata"]["name"] not in known and c["spec"]["username"] == f"system:node:{node}"
    ]  # fmt: skip
    if not mine:
        return None, f"no new CSR from system:node:{node}"
    for csr in mine:
        conditions = {c["type"]: c["status"] for c in csr.get("status", {}).get("conditions", [])}
        if (
            csr["spec"].get("signerName") == KUBELET_SIGNER
            and conditions.get("Approved") == "True"
            and csr.get("status", {}).get("certificate")
        ):
            return csr, ""
    shown = [(c["metadata"]["name"], c["spec"].get("signerName"), c.get("status")) for c in mine]
    return None, f"CSRs of {node} not approved and issued yet: {shown}"


def node_ready(kubectl: Kubectl, node: str) -> str | None:
    item = kubectl.json("get", "node", node)
    ready = [c["status"] for c in item["status"]["conditions"] if c["type"] == "Ready"]
    return None if ready == ["True"] else f"{node} Ready is {ready}"


def test_a_nearly_expired_client_certificate_is_renewed_through_an_approved_csr(
    inventory: Inventory, kubectl: Kubectl, worker: str
) -> None:
    host, node = inventory.host(worker), worker.lower()
    ca = cluster_ca(inventory)
    leaf_days = int(inventory.settings("certificates_leaf_days")[worker]["certificates_leaf_days"])
    pair, old = nearly_expired_pair(inventory, node)
    known = {c["metadata"]["name"] for c in kubectl.json("get", "csr")["items"]}
    run_ok(host, f"umask 077 && printf '%s' {shlex.quote(pair)} > {TEST_PAIR}", "write the pair")
    point_current_at(host, TEST_PAIR)

    found: dict[str, Any] = {}

    def approved() -> str | None:
        csr, why = renewal_csr(kubectl, node, known)
        if csr is not None:
            found["csr"] = csr
        return why or None

    wait_for(f"{node}'s kubelet to renew its client certificate through a CSR", approved, 150)

    def renewed() -> str | None:
        cert = current_certificate(host, "kubelet pair")
        if cert.serial_number == old.serial_number:
            return f"{CURRENT} is still the test's nearly expired certificate"
        found["cert"] = cert
        return None

    wait_for(f"{node}'s kubelet to write its renewed certificate", renewed, 60)
    cert = found["cert"]
    assert not certificate_problems(cert, node, ca)
    issued = x509.load_pem_x509_certificate(base64.b64decode(found["csr"]["status"]["certificate"]))
    assert cert.serial_number == issued.serial_number, (
        f"{CURRENT} on {node} is not the certificate of CSR {found['csr']['metadata']['name']}"
    )
    # kube-controller-manager signs for certificates_leaf_days (cluster-signing-duration),
    # or until the CA expires.
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    expected = min(
        datetime.timedelta(days=leaf_days), ca.not_valid_after_utc - cert.not_valid_before_utc
    )
    assert abs(lifetime - expected) < datetime.timedelta(minutes=10), (
        f"{node}'s renewed certificate lives {lifetime}, not {expected}"
    )
    target = host.file(CURRENT).linked_to
    assert target not in (TEST_PAIR, SEED), f"{CURRENT} points at {target}"
    wait_for(f"{node} to be Ready with its renewed certificate", lambda: node_ready(kubectl, node),
             120)  # fmt: skip

    # cluster.yml leaves the kubelet's own renewal alone: nothing to change on the host.
    done = subprocess.run(
        ["ansible-playbook", "-i", str(inventory.path), "cluster.yml", "--check", "--diff",
         "--limit", worker],
        cwd=REPO, env=plain_env(), text=True, capture_output=True, timeout=1800,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"cluster.yml --check --limit {worker} failed:\n{output[-6000:]}"
    counts = recap(output).get(worker)
    assert counts is not None and counts["changed"] == 0, (
        f"cluster.yml --check would change {worker} after its kubelet renewed its "
        f"certificate: {counts}\n{output[-6000:]}"
    )
    assert host.file(CURRENT).linked_to == target
