"""CA rotation (rotate-ca.yml): the rotation's state and steps, what each host
file holds in each phase, the checks of the cluster it runs
(plugins/filter/kubeforge_ca_rotation.py), the preflight checks of its
settings, and its control-host steps as Ansible runs them with the certificates
role: new CAs beside the old, the switch re-issuing every leaf with its own
key, the archive of the old CAs and the end of the rotation."""

from __future__ import annotations

import datetime
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubeforge_ca_rotation as rot
import kubeforge_inventory as inv
import pytest
import yaml
from ansible_render import REPO, inventory, run_playbook
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = datetime.datetime(2026, 12, 4, 12, 0, 0, tzinfo=datetime.UTC)
HOUR = datetime.timedelta(hours=1)


def at(moment: datetime.datetime) -> str:
    return moment.strftime(rot.TIME)


# Certificates --------------------------------------------------------------------------------


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _ca(cn: str) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    key = _key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - HOUR)
        .not_valid_after(NOW + 1000 * HOUR)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _leaf(cn: str, ca: tuple[x509.Certificate, rsa.RSAPrivateKey]) -> x509.Certificate:
    key = _key()
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(ca[0].subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - HOUR)
        .not_valid_after(NOW + 100 * HOUR)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca[1], hashes.SHA256())
    )


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def key_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def material(where: Path, suffix: str) -> dict[str, x509.Certificate]:
    """The three CAs and a service-account key pair in `where`; CA file -> CA."""
    out = {}
    for name, cn in (
        ("ca", "kubernetes-ca"),
        ("front-proxy-ca", "front-proxy-ca"),
        ("etcd/ca", "etcd-ca"),
    ):
        cert, key = _ca(cn + suffix)
        write(where / f"{name}.crt", pem(cert))
        write(where / f"{name}.key", key_pem(key))
        out[f"{name}.crt"] = cert
    sa = _key()
    write(where / "sa.key", key_pem(sa))
    public = sa.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    write(where / "sa.pub", public.decode())
    return out


def save(pki: Path, state: dict[str, Any]) -> None:
    write(pki / rot.STATE, yaml.safe_dump(state))


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    """A PKI in some phase's layout: certificates_dir's own material (the old
    CAs) and rotation/old (the same) and rotation/new (other CAs)."""
    material(tmp_path, "")
    for name in rot.MATERIAL:
        write(tmp_path / rot.OLD / name, (tmp_path / name).read_text())
    material(tmp_path / rot.NEW, "@1")
    return tmp_path


def state(phase: str, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "phase": phase,
        "id": "20261204T120000Z",
        "serial": 1,
        "started": at(NOW),
    }
    if phase in ("switch", "drop"):
        out["trusted"] = at(NOW + HOUR)
    if phase == "drop":
        out["switched"] = at(NOW + 2 * HOUR)
        out["sa_old_until"] = at(NOW + 4 * HOUR)
    return out | extra


# The state -----------------------------------------------------------------------------------


def test_no_rotation_is_an_empty_state(tmp_path: Path) -> None:
    assert rot.kubeforge_ca_rotation_state(str(tmp_path)) == {}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("- a list", "not a mapping"),
        (yaml.safe_dump(state("later")), "phase 'later' is none of new, trust, switch, drop"),
        (yaml.safe_dump(state("new", id="yesterday")), "id 'yesterday' is not a UTC time"),
        (yaml.safe_dump(state("new", serial="x")), "serial 'x' is not a number"),
        (yaml.safe_dump(state("trust", trusted="soon")), "trusted 'soon' is not a UTC time"),
        (yaml.safe_dump(state("new", trusted=at(NOW))), "trusted is set in phase new"),
        (yaml.safe_dump({**state("switch"), "trusted": None} | {}), "trusted None"),
        (
            yaml.safe_dump({k: v for k, v in state("drop").items() if k != "switched"}),
            "phase drop without switched",
        ),
        ("phase: [unclosed", "cannot be read"),
    ],
)
def test_a_damaged_state_is_refused_naming_the_file(
    tmp_path: Path, data: str, message: str
) -> None:
    write(tmp_path / rot.STATE, data)
    with pytest.raises(rot.RotationError, match=r"state\.yaml") as raised:
        rot.kubeforge_ca_rotation_state(str(tmp_path))
    assert message in str(raised.value)
    # Preflight says the same, and refuses the run.
    assert message in rot.kubeforge_ca_rotation_errors(str(tmp_path))[0]


def test_the_steps_in_order_and_each_once() -> None:
    grace = 2
    s = rot.kubeforge_ca_rotation_step({}, "begin", NOW)
    assert s == {
        "phase": "new",
        "id": "20261204T120000Z",
        "serial": int(NOW.timestamp()),
        "started": at(NOW),
    }
    assert rot.state_problems(s) == []
    steps = [
        ("trust", {"phase": "trust"}),
        ("trusted", {"trusted": at(NOW + HOUR)}),
        ("switch", {"phase": "switch"}),
        ("switched", {"switched": at(NOW + 2 * HOUR)}),
        ("drop", {"phase": "drop", "sa_old_until": at(NOW + 4 * HOUR)}),
        ("dropped", {"dropped": at(NOW + 3 * HOUR)}),
    ]
    moments = {
        "trust": NOW,
        "trusted": NOW + HOUR,
        "switch": NOW + HOUR,
        "switched": NOW + 2 * HOUR,
        "drop": NOW + 2 * HOUR,
        "dropped": NOW + 3 * HOUR,
    }
    for step, change in steps:
        after = rot.kubeforge_ca_rotation_step(s, step, moments[step], grace)
        assert after == s | change, step
        assert rot.state_problems(after) == [], step
        # Done: the same step again changes nothing, later.
        assert rot.kubeforge_ca_rotation_step(after, step, NOW + 9 * HOUR, grace) == after, step
        # A rotation already under way is not begun again.
        assert rot.kubeforge_ca_rotation_step(after, "begin", NOW) == after
        s = after


@pytest.mark.parametrize(
    ("phase", "step"),
    [
        ("new", "switch"),
        ("trust", "switch"),
        ("trust", "drop"),
        ("switch", "drop"),
        ("new", "dropped"),
        ("trust", "switched"),
    ],
)
def test_a_step_whose_time_has_not_come_changes_nothing(phase: str, step: str) -> None:
    s = state(phase)
    assert rot.kubeforge_ca_rotation_step(s, step, NOW) == s


def test_an_unknown_step_is_an_error() -> None:
    with pytest.raises(rot.RotationError, match="unknown step 'jump'"):
        rot.kubeforge_ca_rotation_step({}, "jump", NOW)


def test_the_grace_counts_from_the_switch_but_never_ends_before_the_drop() -> None:
    s = state("switch", switched=at(NOW))
    assert rot.kubeforge_ca_rotation_step(s, "drop", NOW + HOUR, 2)["sa_old_until"] == at(
        NOW + 2 * HOUR
    )
    # A drop resumed days later: the old key goes with it.
    late = NOW + 50 * HOUR
    assert rot.kubeforge_ca_rotation_step(s, "drop", late, 2)["sa_old_until"] == at(late)
    assert rot.kubeforge_ca_rotation_step(s, "drop", NOW, 0.5)["sa_old_until"] == at(NOW + HOUR / 2)


def test_reached_finished_and_wait() -> None:
    assert rot.kubeforge_ca_rotation_reached(state("switch"), "trust")
    assert rot.kubeforge_ca_rotation_reached(state("switch"), "switch")
    assert not rot.kubeforge_ca_rotation_reached(state("switch"), "drop")
    assert not rot.kubeforge_ca_rotation_reached({}, "new")
    done = state("drop", dropped=at(NOW + 3 * HOUR))
    assert not rot.kubeforge_ca_rotation_finished(done, NOW + 3 * HOUR)
    assert rot.kubeforge_ca_rotation_finished(done, NOW + 4 * HOUR)
    assert not rot.kubeforge_ca_rotation_finished(state("drop"), NOW + 9 * HOUR)
    trusted = state("trust", trusted=at(NOW))
    assert (
        rot.kubeforge_ca_rotation_wait(trusted, 360, NOW + datetime.timedelta(seconds=100)) == 260
    )
    assert rot.kubeforge_ca_rotation_wait(trusted, 360, NOW + HOUR) == 0
    assert rot.kubeforge_ca_rotation_wait(state("trust"), 360, NOW) == 0
    assert rot.kubeforge_ca_rotation_wait(state("switch"), 360, NOW) == 0
    assert (
        rot.kubeforge_ca_rotation_archive(state("drop")) == "archive/ca-rotation-20261204T120000Z"
    )


# What the hosts get --------------------------------------------------------------------------


def subjects(text: str) -> list[str]:
    return [c.subject.rfc4514_string() for c in x509.load_pem_x509_certificates(text.encode())]


@pytest.mark.parametrize(
    ("phase", "ca", "etcd", "sa_keys"),
    [
        (None, ["CN=kubernetes-ca"], ["CN=etcd-ca"], 1),
        ("new", ["CN=kubernetes-ca"], ["CN=etcd-ca"], 1),
        ("trust", ["CN=kubernetes-ca", "CN=kubernetes-ca@1"], ["CN=etcd-ca", "CN=etcd-ca@1"], 2),
        ("switch", ["CN=kubernetes-ca@1", "CN=kubernetes-ca"], ["CN=etcd-ca@1", "CN=etcd-ca"], 2),
    ],
)
def test_bundles_of_each_phase_start_with_the_ca_that_signs(
    pki: Path, phase: str | None, ca: list[str], etcd: list[str], sa_keys: int
) -> None:
    if phase:
        save(pki, state(phase))
    assert subjects(rot.kubeforge_pki_content(str(pki), "ca.crt")) == ca
    assert subjects(rot.kubeforge_pki_content(str(pki), "etcd/ca.crt")) == etcd
    assert rot.kubeforge_pki_content(str(pki), "sa.pub").count("BEGIN PUBLIC KEY") == sa_keys
    # The signing pair is certificates_dir's, one certificate.
    assert rot.kubeforge_pki_sources(str(pki), "ca-signing.crt") == [str(pki / "ca.crt")]
    assert rot.kubeforge_pki_sources(str(pki), "ca-signing.key") == [str(pki / "ca.key")]
    assert rot.kubeforge_pki_sources(str(pki), "apiserver.crt") == [str(pki / "apiserver.crt")]
    assert rot.kubeforge_pki_sources(str(pki), "sa.key") == [str(pki / "sa.key")]


def test_a_single_file_is_given_as_it_is(pki: Path) -> None:
    text = (pki / "ca.crt").read_text()
    assert rot.kubeforge_pki_content(str(pki), "ca.crt") == text
    (pki / "sa.pub").write_text("no newline at the end")
    assert rot.kubeforge_pki_content(str(pki), "sa.pub") == "no newline at the end"


def test_after_the_drop_the_new_cas_alone_and_both_keys_for_the_grace(pki: Path) -> None:
    # The switch put the new material in certificates_dir.
    for name in rot.MATERIAL:
        (pki / name).write_text((pki / rot.NEW / name).read_text())
    save(pki, state("drop"))
    assert subjects(rot.kubeforge_pki_content(str(pki), "ca.crt")) == ["CN=kubernetes-ca@1"]
    keys = rot.kubeforge_pki_sources(str(pki), "sa.pub", NOW + HOUR)
    assert keys == [str(pki / "sa.pub"), str(pki / rot.OLD / "sa.pub")]
    assert rot.kubeforge_pki_sources(str(pki), "sa.pub", NOW + 4 * HOUR) == [str(pki / "sa.pub")]


def test_a_missing_part_of_a_bundle_is_named(pki: Path) -> None:
    save(pki, state("trust"))
    (pki / rot.NEW / "front-proxy-ca.crt").unlink()
    with pytest.raises(rot.RotationError, match=r"rotation/new/front-proxy-ca.crt cannot be read"):
        rot.kubeforge_pki_content(str(pki), "front-proxy-ca.crt")


@pytest.mark.parametrize("phase", ["trust", "switch", "drop"])
def test_preflight_names_the_material_a_phase_lacks(pki: Path, phase: str) -> None:
    save(pki, state(phase))
    if phase == "drop":
        archive = pki / rot.kubeforge_ca_rotation_archive(state("drop"))
        for name in rot.MATERIAL:
            write(archive / name, (pki / rot.OLD / name).read_text())
    assert rot.kubeforge_ca_rotation_errors(str(pki)) == []
    (pki / rot.OLD / "sa.pub").unlink()
    errors = rot.kubeforge_ca_rotation_errors(str(pki))
    assert len(errors) == 1 and "rotation/old/sa.pub" in errors[0] and phase in errors[0]


def test_no_rotation_no_errors(tmp_path: Path) -> None:
    assert rot.kubeforge_ca_rotation_errors(str(tmp_path)) == []


# Checks of the cluster -----------------------------------------------------------------------


def test_subjects_of_old_and_new(pki: Path) -> None:
    assert rot.kubeforge_ca_rotation_subjects(str(pki)) == {}
    save(pki, state("switch"))
    found = rot.kubeforge_ca_rotation_subjects(str(pki))
    assert found == {
        "old": ["CN=kubernetes-ca", "CN=front-proxy-ca", "CN=etcd-ca"],
        "new": ["CN=kubernetes-ca@1", "CN=front-proxy-ca@1", "CN=etcd-ca@1"],
    }


def test_certificates_still_from_an_old_ca_are_listed() -> None:
    def cert(file: str, issuer: str, **extra: Any) -> dict[str, Any]:
        return {
            "host": "node2",
            "file": file,
            "part": "",
            "subject": "CN=x",
            "issuer": issuer,
            "is_ca": False,
        } | extra

    results: list[dict[str, Any]] = [
        {
            "certificates": [
                cert("/pki/apiserver.crt", "CN=kubernetes-ca@1"),
                cert("/pki/kubelet.crt", "CN=kubernetes-ca"),
                cert("/pki/ca.crt", "CN=kubernetes-ca", is_ca=True),
                cert("/conf/admin.conf", "CN=kubernetes-ca", part="client-certificate-data"),
            ]
        },
        {"skipped": True},
    ]
    assert rot.kubeforge_ca_rotation_stale(results, ["CN=kubernetes-ca", "CN=etcd-ca"]) == [
        "node2: /conf/admin.conf (client-certificate-data) CN=x, issued by CN=kubernetes-ca",
        "node2: /pki/kubelet.crt CN=x, issued by CN=kubernetes-ca",
    ]


def test_namespaces_whose_root_ca_is_not_the_hosts_are_listed() -> None:
    old, new = _ca("kubernetes-ca")[0], _ca("kubernetes-ca@1")[0]
    bundle = pem(old) + pem(new)

    def item(ns: str, data: str, name: str = "kube-root-ca.crt") -> dict[str, Any]:
        return {"metadata": {"namespace": ns, "name": name}, "data": {"ca.crt": data}}

    listing = {
        "items": [
            item("default", pem(new) + "\n" + pem(old)),
            item("kube-system", pem(old)),
            item("x", ""),
            item("y", pem(old), name="other"),
        ]
    }
    assert rot.kubeforge_ca_rotation_unpublished(json.dumps(listing), bundle) == [
        "kube-system",
        "x",
    ]
    assert rot.kubeforge_same_certificates(bundle, pem(new) + pem(old))
    assert not rot.kubeforge_same_certificates(bundle, pem(new))
    assert not rot.kubeforge_same_certificates("not a certificate", "")


def test_preflight_says_where_a_rotation_stands() -> None:
    assert rot.kubeforge_ca_rotation_notes({}) == []
    (line,) = rot.kubeforge_ca_rotation_notes(state("switch"), False, NOW)
    assert "is at phase switch: this run keeps every host at that phase" in line
    assert "run rotate-ca.yml to finish" in line
    (line,) = rot.kubeforge_ca_rotation_notes(state("trust"), True, NOW)
    assert line.endswith("is at phase trust: this run goes on from there")
    done = state("drop", dropped=at(NOW + 3 * HOUR))
    (line,) = rot.kubeforge_ca_rotation_notes(done, False, NOW + 3 * HOUR)
    assert f"signed by the old key until {at(NOW + 4 * HOUR)}" in line
    (line,) = rot.kubeforge_ca_rotation_notes(done, False, NOW + 5 * HOUR)
    assert "this run drops that key from the apiservers and archives the rotation" in line


def test_every_list_of_the_material_is_the_same() -> None:
    ca_rotation = yaml.safe_load((REPO / "roles/ca_rotation/defaults/main.yml").read_text())
    certificates = yaml.safe_load((REPO / "roles/certificates/defaults/main.yml").read_text())
    from_cas = [
        f"{c['name']}{ext}" for c in certificates["certificates_cas"] for ext in (".crt", ".key")
    ]
    assert ca_rotation["ca_rotation_material"] == list(rot.MATERIAL)
    assert sorted([*from_cas, "sa.key", "sa.pub"]) == sorted(rot.MATERIAL)
    # The CA files a rotation bundles are those the hosts get.
    group_files = {n for names in certificates["certificates_group_files"].values() for n in names}
    assert set(rot.TRUST) | {"sa.pub"} | set(rot.SIGNING) <= group_files


# Its settings --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("var", "value", "problem"),
    [
        ("ca_rotation_sa_grace_hours", 2, None),
        ("ca_rotation_sa_grace_hours", "0.5", None),
        ("ca_rotation_sa_grace_hours", -1, "is not a number of hours (0-8760)"),
        ("ca_rotation_sa_grace_hours", "two", "is not a number of hours"),
        ("ca_rotation_sa_grace_hours", True, "is not a number of hours"),
        ("ca_rotation_trust_wait_seconds", "360", None),
        ("ca_rotation_trust_wait_seconds", 1.5, "is not a number of seconds (0-86400)"),
        ("ca_rotation_restart_workloads", [], None),
        (
            "ca_rotation_restart_workloads",
            ["ops/Deployment/my-operator", "a/statefulset/b.c"],
            None,
        ),
        (
            "ca_rotation_restart_workloads",
            "ops/deployment/x",
            "must be a list of namespace/kind/name",
        ),
        ("ca_rotation_restart_workloads", ["ops/pod/x"], "'ops/pod/x' is not namespace/kind/name"),
        ("ca_rotation_restart_workloads", ["ops/deployment"], "is not namespace/kind/name"),
        ("ca_rotation_restart_workloads", ["Ops/deployment/x"], "is not namespace/kind/name"),
    ],
)
def test_preflight_checks_the_rotations_settings(var: str, value: Any, problem: str | None) -> None:
    errors = inv.VALUE_CHECKS[var](var, value)
    if problem is None:
        assert errors == []
    else:
        assert len(errors) == 1 and problem in errors[0] and var in errors[0], errors


# The control-host steps, as Ansible runs them -----------------------------------------------------

# One local host in every group; three leaves (one per CA), none of the host's own.
LEAVES = [
    {"path": "admin", "ca": "ca", "cn": "kubernetes-admin", "o": "system:masters"},
    {"path": "apiserver-etcd-client", "ca": "etcd/ca", "cn": "kube-apiserver-etcd-client"},
    {"path": "front-proxy-client", "ca": "front-proxy-ca", "cn": "front-proxy-client"},
]


def issued_pki(pki: Path) -> None:
    """A cluster's PKI as the certificates role leaves it: the CAs, the
    service-account pair and the LEAVES, current (kubeforge_leaves_to_issue)."""
    material(pki, "")
    for leaf in LEAVES:
        ca_key = serialization.load_pem_private_key((pki / f"{leaf['ca']}.key").read_bytes(), None)
        assert isinstance(ca_key, rsa.RSAPrivateKey)
        ca = x509.load_pem_x509_certificate((pki / f"{leaf['ca']}.crt").read_bytes())
        key = _key()
        names = [x509.NameAttribute(NameOID.COMMON_NAME, leaf["cn"])]
        names += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, leaf["o"])] if "o" in leaf else []
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(names))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(datetime.datetime.now(datetime.UTC) - HOUR)
            .not_valid_after(datetime.datetime.now(datetime.UTC) + 24 * 365 * HOUR)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        write(pki / f"{leaf['path']}.crt", pem(cert))
        write(pki / f"{leaf['path']}.key", key_pem(key))


def task(role: str, tasks_from: str = "main.yml", **params: Any) -> dict[str, Any]:
    return {
        "ansible.builtin.include_role": {"name": role, "tasks_from": tasks_from},
        "vars": params,
    }


class Lab:
    """A throwaway inventory of one local host and its PKI directory."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.pki = work / "artifacts" / "pki"
        (work / "group_vars" / "all").mkdir(parents=True)
        leaves = [leaf | {"usage": "client"} for leaf in LEAVES]
        settings = {"certificates_shared_leaves": leaves, "certificates_node_leaves": []}
        (work / "group_vars" / "all" / "test.yml").write_text(yaml.safe_dump(settings))
        groups = {"kube_control_plane": ["node1"], "etcd": ["node1"], "kube_node": []}
        hosts = inventory({"node1": {"ip": "192.0.2.11"}}, groups)
        (work / "hosts.yml").write_text(yaml.safe_dump(hosts))

    def run(self, tasks: list[dict[str, Any]], *args: str) -> dict[str, int]:
        """Run the tasks in one play on node1; its recap (ok, changed, ...)."""
        play = [{"name": "Test", "hosts": "node1", "gather_facts": False,
                 "roles": [{"role": "kubeforge_defaults"}], "tasks": tasks}]  # fmt: skip
        path = self.work / "play.yml"
        path.write_text(yaml.safe_dump(play, sort_keys=False))
        out = run_playbook(self.work / "hosts.yml", path, *args, what="the CA rotation steps")
        recap = out.split("PLAY RECAP", 1)[1].split("\n")[1]
        return {k: int(v) for k, v in (p.split("=") for p in recap.split(":", 1)[1].split())}

    def cert(self, name: str) -> x509.Certificate:
        return x509.load_pem_x509_certificate((self.pki / name).read_bytes())

    def state(self) -> dict[str, Any]:
        return rot.kubeforge_ca_rotation_state(str(self.pki))


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with tempfile.TemporaryDirectory(prefix="kubeforge-ca-rotation-") as tmp:
        yield Lab(Path(tmp))


# Phase 1, both CAs trusted everywhere, the switch: the certificates role puts
# the new CAs in place and re-issues every leaf with them.
TO_SWITCH = [
    task("ca_rotation", ca_rotation_step="begin"),
    task("ca_rotation", "record.yml", ca_rotation_record="trusted"),
    task("ca_rotation", ca_rotation_step="switch"),
    task("certificates", "issue.yml"),
]


def test_control_host_steps_switch_every_leaf_to_the_new_cas(lab: Lab) -> None:
    issued_pki(lab.pki)
    old = {name: lab.cert(f"{name}.crt") for name in ("ca", "etcd/ca", "front-proxy-ca")}
    keys = {leaf["path"]: (lab.pki / f"{leaf['path']}.key").read_text() for leaf in LEAVES}
    before = {name: (lab.pki / name).read_text() for name in rot.MATERIAL}
    lab.run(TO_SWITCH, "-e", "ca_rotation_trust_wait_seconds=0")
    s = lab.state()
    assert s["phase"] == "switch" and "trusted" in s, s
    for name, ca in old.items():
        new = lab.cert(f"{name}.crt")
        assert new.subject.rfc4514_string() == f"{ca.subject.rfc4514_string()}@{s['serial']}"
        assert new.not_valid_after_utc - new.not_valid_before_utc > datetime.timedelta(days=3649)
    for name in rot.MATERIAL:
        assert (lab.pki / rot.OLD / name).read_text() == before[name], name
        assert (lab.pki / name).read_text() == (lab.pki / rot.NEW / name).read_text(), name
        assert (lab.pki / name).read_text() != before[name], name
    for leaf in LEAVES:
        cert = lab.cert(f"{leaf['path']}.crt")
        cert.verify_directly_issued_by(lab.cert(f"{leaf['ca']}.crt"))
        assert (lab.pki / f"{leaf['path']}.key").read_text() == keys[leaf["path"]], leaf
    # Done: the same steps again change nothing.
    again = lab.run(TO_SWITCH, "-e", "ca_rotation_trust_wait_seconds=0")
    assert again["changed"] == 0, again


def test_control_host_steps_archive_the_old_cas_and_end_the_rotation(lab: Lab) -> None:
    if lab.state().get("phase") != "switch":
        pytest.fail("the switch test before this one did not leave the rotation at its switch")
    old = (lab.pki / rot.OLD / "ca.crt").read_text()
    steps = [
        task("ca_rotation", "record.yml", ca_rotation_record="switched"),
        task("ca_rotation", ca_rotation_step="drop"),
        task("ca_rotation", "record.yml", ca_rotation_record="dropped"),
        task("ca_rotation", ca_rotation_step="summary"),
    ]
    lab.run(steps, "-e", "ca_rotation_sa_grace_hours=0")
    archives = list((lab.pki / "archive").iterdir())
    assert len(archives) == 1 and archives[0].name.startswith("ca-rotation-"), archives
    assert (archives[0] / "ca.crt").read_text() == old
    kept = {p.relative_to(archives[0]).as_posix() for p in archives[0].rglob("*.*")}
    assert kept == {*rot.MATERIAL, "state.yaml"}
    archived = yaml.safe_load((archives[0] / "state.yaml").read_text())
    assert archived["phase"] == "drop" and "dropped" in archived, archived
    assert not (lab.pki / "rotation").exists()
    assert lab.state() == {}
    (only,) = subjects(rot.kubeforge_pki_content(str(lab.pki), "ca.crt"))
    assert only == f"CN=kubernetes-ca@{archived['serial']}"
