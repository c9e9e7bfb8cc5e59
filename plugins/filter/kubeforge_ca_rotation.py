"""CA rotation (rotate-ca.yml): its state on the control host, and what each
file the certificates role gives the hosts holds in each of its phases.

The state is ``<certificates_dir>/rotation/state.yaml``; the new CAs and
service-account key pair are made in ``rotation/new/``, the old ones are
copied to ``rotation/old/`` (same file names as certificates_dir). Phases:

``new``
    the new material is being made; the hosts are unchanged.
``trust``
    every CA file the hosts read is a bundle old + new, and service-account
    tokens are verified with both public keys; the old CAs and key still sign.
``switch``
    certificates_dir holds the new CAs and key (copied from rotation/new/),
    which sign: every leaf is re-issued by them. Bundles new + old.
``drop``
    bundles hold the new CAs only; the old CAs are archived in
    ``archive/ca-rotation-<id>/``. The old service-account public key stays
    accepted until ``sa_old_until``.

Once phase drop is ``dropped`` (done on every host) and ``sa_old_until`` has
passed, the rotation is finished: its state joins the archive and
``rotation/`` goes. In every phase the first certificate of a bundle is the
one that signs (certificates_dir's ``<ca>.crt``).

Each step of rotate-ca.yml records itself in the state before or after its
work, so that a run that stops half way is finished by the next: every host
file is a function of the state (kubeforge_pki_content), whichever playbook
installs it.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

PHASES = ("new", "trust", "switch", "drop")
STATE = "rotation/state.yaml"
OLD = "rotation/old"
NEW = "rotation/new"
ARCHIVE = "archive"
CAS = ("ca", "front-proxy-ca", "etcd/ca")
# The CA files the hosts trust, and the service-account verification keys.
TRUST = tuple(f"{ca}.crt" for ca in CAS)
SA_PUB = "sa.pub"
# What a rotation replaces in certificates_dir.
MATERIAL = (*(f"{ca}.{ext}" for ca in CAS for ext in ("crt", "key")), "sa.key", SA_PUB)
# kube-controller-manager's signing pair: one certificate, the CA that signs now.
SIGNING = {"ca-signing.crt": "ca.crt", "ca-signing.key": "ca.key"}
TIME = "%Y-%m-%dT%H:%M:%SZ"
ID = re.compile(r"^\d{8}T\d{6}Z$")
# Timestamps a phase has (each set when a step is done) and the phases they belong to.
STAMPS = {
    "trusted": ("trust", "switch", "drop"),
    "switched": ("switch", "drop"),
    "sa_old_until": ("drop",),
    "dropped": ("drop",),
}
# What each phase needs recorded before it.
NEEDS = {"switch": ("trusted",), "drop": ("trusted", "switched", "sa_old_until")}

State = Mapping[str, Any]


class RotationError(ValueError):
    """The rotation's state or material on the control host is not usable."""


def _now(now: datetime.datetime | None) -> datetime.datetime:
    return now or datetime.datetime.now(datetime.UTC)


def _iso(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime(TIME)


def _time(text: Any) -> datetime.datetime:
    return datetime.datetime.strptime(str(text), TIME).replace(tzinfo=datetime.UTC)


# The state ---------------------------------------------------------------------------------


def state_problems(data: Any) -> list[str]:
    """What is wrong with a state read from rotation/state.yaml (empty: nothing)."""
    if not isinstance(data, Mapping):
        return ["not a mapping"]
    problems = []
    phase = data.get("phase")
    if phase not in PHASES:
        problems.append(f"phase {phase!r} is none of {', '.join(PHASES)}")
    if not ID.match(str(data.get("id", ""))):
        problems.append(f"id {data.get('id')!r} is not a UTC time as YYYYMMDDTHHMMSSZ")
    if not isinstance(data.get("serial"), int):
        problems.append(f"serial {data.get('serial')!r} is not a number")
    for key in ("started", *STAMPS):
        if key in data:
            try:
                _time(data[key])
            except ValueError:
                problems.append(f"{key} {data[key]!r} is not a UTC time as {TIME}")
    for key, phases in STAMPS.items():
        if key in data and phase in PHASES and phase not in phases:
            problems.append(f"{key} is set in phase {phase}")
    for key in NEEDS.get(str(phase), ()):
        if key not in data:
            problems.append(f"phase {phase} without {key}")
    return problems


def kubeforge_ca_rotation_state(pki_dir: str) -> dict[str, Any]:
    """The rotation under way in `pki_dir` (certificates_dir); {} when none."""
    path = Path(str(pki_dir)) / STATE
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise RotationError(f"{path}: cannot be read ({exc})") from exc
    problems = state_problems(data)
    if problems:
        raise RotationError(
            f"{path}: {'; '.join(problems)}. rotate-ca.yml writes this file: restore it from "
            "your backup of the PKI directory (docs/operations.md, CA rotation)"
        )
    return dict(data)


def kubeforge_ca_rotation_step(
    state: State,
    step: str,
    now: datetime.datetime | None = None,
    grace_hours: Any = 2,
) -> dict[str, Any]:
    """The state after `step`, or the same state when the step is done or does
    not apply yet. Steps, in order: begin (a new rotation), trust, trusted,
    switch, switched, drop, dropped."""
    moment = _now(now)
    out = dict(state)
    phase = out.get("phase")
    if step == "begin" and not out:
        return {
            "phase": "new",
            "id": moment.astimezone(datetime.UTC).strftime("%Y%m%dT%H%M%SZ"),
            "serial": int(moment.timestamp()),
            "started": _iso(moment),
        }
    if step == "trust" and phase == "new":
        out["phase"] = "trust"
    elif step == "trusted" and phase == "trust" and "trusted" not in out:
        out["trusted"] = _iso(moment)
    elif step == "switch" and phase == "trust" and "trusted" in out:
        out["phase"] = "switch"
    elif step == "switched" and phase == "switch" and "switched" not in out:
        out["switched"] = _iso(moment)
    elif step == "drop" and phase == "switch" and "switched" in out:
        out["phase"] = "drop"
        until = _time(out["switched"]) + datetime.timedelta(hours=float(grace_hours))
        out["sa_old_until"] = _iso(max(until, moment))
    elif step == "dropped" and phase == "drop" and "dropped" not in out:
        out["dropped"] = _iso(moment)
    elif step not in ("begin", "trust", "trusted", "switch", "switched", "drop", "dropped"):
        raise RotationError(f"kubeforge_ca_rotation_step: unknown step {step!r}")
    return out


def kubeforge_ca_rotation_reached(state: State, phase: str) -> bool:
    """Whether the rotation is at `phase` or past it."""
    current = state.get("phase")
    return current in PHASES and PHASES.index(current) >= PHASES.index(phase)


def kubeforge_ca_rotation_finished(state: State, now: datetime.datetime | None = None) -> bool:
    """Whether the rotation is done on every host and the old service-account
    key's time is over: its state can go to the archive."""
    return (
        state.get("phase") == "drop"
        and "dropped" in state
        and _now(now) >= _time(state["sa_old_until"])
    )


def kubeforge_ca_rotation_wait(
    state: State, seconds: Any, now: datetime.datetime | None = None
) -> int:
    """Seconds still to wait, after both CAs reached every namespace, before
    the new CAs sign (ca_rotation_trust_wait_seconds); 0 once waited."""
    if state.get("phase") != "trust" or "trusted" not in state:
        return 0
    left = _time(state["trusted"]) + datetime.timedelta(seconds=int(seconds)) - _now(now)
    return max(0, int(left.total_seconds() + 0.999))


def kubeforge_ca_rotation_archive(state: State) -> str:
    """Where the rotation's old CAs (and, once finished, its state) are kept,
    relative to certificates_dir."""
    return f"{ARCHIVE}/ca-rotation-{state['id']}"


# What the hosts get -----------------------------------------------------------------------


def kubeforge_pki_sources(
    pki_dir: str, name: str, now: datetime.datetime | None = None
) -> list[str]:
    """The control-host files (absolute paths) whose contents, one after the
    other, make the host file `name` (a name of certificates_group_files) in
    the rotation's current phase; the file of the same name outside a rotation."""
    base = Path(str(pki_dir))
    state = kubeforge_ca_rotation_state(str(pki_dir))
    phase = state.get("phase")
    own = [str(base / SIGNING.get(name, name))]
    if name not in (*TRUST, SA_PUB):
        return own
    if phase == "trust":
        return [str(base / OLD / name), str(base / NEW / name)]
    if phase == "switch":
        return [str(base / NEW / name), str(base / OLD / name)]
    if phase == "drop" and name == SA_PUB and _now(now) < _time(state["sa_old_until"]):
        return [*own, str(base / OLD / name)]
    return own


def kubeforge_pki_content(pki_dir: str, name: str) -> str:
    """The content of the host file `name` now (kubeforge_pki_sources)."""
    texts = []
    for source in kubeforge_pki_sources(pki_dir, name):
        try:
            texts.append(Path(source).read_text())
        except OSError as exc:
            raise RotationError(
                f"{source} cannot be read ({exc.strerror}): {name} is made of it"
            ) from exc
    if len(texts) == 1:
        return texts[0]
    return "".join(t if t.endswith("\n") else t + "\n" for t in texts)


def kubeforge_ca_rotation_errors(pki_dir: str) -> list[str]:
    """Why the rotation recorded in `pki_dir` cannot go on: an unreadable
    state, or files its phase needs that are missing."""
    try:
        state = kubeforge_ca_rotation_state(pki_dir)
    except RotationError as exc:
        return [str(exc)]
    base = Path(str(pki_dir))
    phase = state.get("phase")
    wanted: list[str] = []
    if phase in ("trust", "switch"):
        wanted = [f"{d}/{m}" for d in (OLD, NEW) for m in MATERIAL]
    elif phase == "drop":
        wanted = [
            f"{OLD}/{SA_PUB}",
            *(f"{kubeforge_ca_rotation_archive(state)}/{m}" for m in MATERIAL),
        ]
    missing = [w for w in wanted if not (base / w).is_file()]
    if not missing:
        return []
    return [
        f"the CA rotation in {base} (phase {phase}, started {state.get('started')}) is missing "
        f"{', '.join(missing)}: restore them from your backup of the PKI directory; nothing was "
        "changed"
    ]


# Checks of the cluster ---------------------------------------------------------------------


def _certificates(text: Any) -> list[x509.Certificate]:
    data = str(text or "").strip()
    return x509.load_pem_x509_certificates(data.encode()) if data else []


def _der_set(text: Any) -> set[bytes]:
    return {c.public_bytes(serialization.Encoding.DER) for c in _certificates(text)}


def kubeforge_same_certificates(left: Any, right: Any) -> bool:
    """Whether two PEM bundles hold the same certificates (order and layout aside)."""
    try:
        return _der_set(left) == _der_set(right)
    except ValueError:
        return False


def kubeforge_ca_rotation_subjects(pki_dir: str) -> dict[str, list[str]]:
    """The subjects (RFC 4514) of the rotation's old and new CAs; {} outside a rotation."""
    state = kubeforge_ca_rotation_state(pki_dir)
    if not state:
        return {}
    base = Path(str(pki_dir))
    out: dict[str, list[str]] = {}
    for side, where in (("old", OLD), ("new", NEW)):
        subjects = []
        for name in TRUST:
            path = base / where / name
            if path.is_file():
                subjects += [c.subject.rfc4514_string() for c in _certificates(path.read_text())]
        out[side] = subjects
    return out


def kubeforge_ca_rotation_stale(
    results: Iterable[Mapping[str, Any]], old_subjects: Iterable[str]
) -> list[str]:
    """The certificates (not CAs) the hosts still hold from an old CA, one line
    each, from the results of module kubeforge_cert_info."""
    old = set(old_subjects)
    lines = []
    for result in results:
        for cert in result.get("certificates") or []:
            if cert.get("is_ca") or cert.get("issuer") not in old:
                continue
            where = f"{cert['file']} ({cert['part']})" if cert.get("part") else cert["file"]
            lines.append(f"{cert['host']}: {where} {cert['subject']}, issued by {cert['issuer']}")
    return sorted(lines)


def kubeforge_ca_rotation_unpublished(listing: Any, expected: str) -> list[str]:
    """The namespaces whose kube-root-ca.crt ConfigMap (from `kubectl get
    configmaps -A -o json`) does not hold exactly the certificates of `expected`."""
    data = yaml.safe_load(listing) if isinstance(listing, str) else listing
    out = []
    for item in (data or {}).get("items") or []:
        meta = item.get("metadata") or {}
        if meta.get("name") != "kube-root-ca.crt":
            continue
        if not kubeforge_same_certificates((item.get("data") or {}).get("ca.crt"), expected):
            out.append(str(meta.get("namespace")))
    return sorted(out)


# What preflight says -----------------------------------------------------------------------


def kubeforge_ca_rotation_notes(
    state: State, rotating: Any = False, now: datetime.datetime | None = None
) -> list[str]:
    """Preflight's lines about a rotation under way; `rotating`: the run is rotate-ca.yml."""
    if not state:
        return []
    phase = state["phase"]
    head = (
        f"Preflight: a CA rotation (rotate-ca.yml) started {state['started']} is at phase {phase}"
    )
    if phase == "drop" and "dropped" in state:
        until = state["sa_old_until"]
        if kubeforge_ca_rotation_finished(state, now):
            return [
                f"{head}, done on every host; its grace for the old service-account key ended "
                f"{until}: this run drops that key from the apiservers and archives the rotation "
                "when it runs on every control-plane host"
            ]
        return [
            f"{head}, done on every host; the apiservers accept service-account tokens signed "
            f"by the old key until {until} (ca_rotation_sa_grace_hours): the first run of "
            "cluster.yml, rotate-ca.yml or renew-certificates.yml after that drops it"
        ]
    if str(rotating).lower() in ("true", "yes", "1"):
        return [f"{head}: this run goes on from there"]
    return [
        f"{head}: this run keeps every host at that phase (its CA bundles and signing CAs); "
        "run rotate-ca.yml to finish the rotation"
    ]


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "kubeforge_ca_rotation_state": kubeforge_ca_rotation_state,
            "kubeforge_ca_rotation_step": kubeforge_ca_rotation_step,
            "kubeforge_ca_rotation_reached": kubeforge_ca_rotation_reached,
            "kubeforge_ca_rotation_finished": kubeforge_ca_rotation_finished,
            "kubeforge_ca_rotation_wait": kubeforge_ca_rotation_wait,
            "kubeforge_ca_rotation_archive": kubeforge_ca_rotation_archive,
            "kubeforge_ca_rotation_errors": kubeforge_ca_rotation_errors,
            "kubeforge_ca_rotation_subjects": kubeforge_ca_rotation_subjects,
            "kubeforge_ca_rotation_stale": kubeforge_ca_rotation_stale,
            "kubeforge_ca_rotation_unpublished": kubeforge_ca_rotation_unpublished,
            "kubeforge_ca_rotation_notes": kubeforge_ca_rotation_notes,
            "kubeforge_pki_sources": kubeforge_pki_sources,
            "kubeforge_pki_content": kubeforge_pki_content,
            "kubeforge_same_certificates": kubeforge_same_certificates,
        }
