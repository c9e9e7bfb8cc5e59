"""Runs after test_upgrade.py (and the CA rotation when that runs; file
order), on the same cluster: leaf certificates due for renewal are renewed by
cluster.yml with no API downtime (docs/operations.md, Certificate renewal).

1. tests/playbooks/short-lived-leaves.yml, limited to the last control-plane
   host (an etcd member too) and the last worker, re-issues every leaf
   certificate there with a lifetime of one day and installs it, restarting
   nothing: every leaf on those hosts is then due (it expires within
   certificates_renew_before_days). Two hosts keep the check's restarts to one
   of each kind; the CA rotation (test_z_ca_rotation.py) re-issues every leaf of
   every host the same way.
2. An API probe runs on every node (tests/lab/apiprobe.py) while cluster.yml
   renews them and restarts what reads them, one host at a time.
3. No API probe failed; every certificate that was short-lived now lives
   longer than certificates_renew_before_days and chains to the cluster's
   CAs; every node is Ready. The duration and probe counts are printed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from clustercheck import (
    ApiProbes,
    Inventory,
    Kubectl,
    assert_probes_clean,
    certificates,
    host_certificates,
    is_ca,
    wait_nodes_ready,
)
from cryptography import x509
from kubeforge_kubelet import signed_by_one_of
from runbook import run

# Left out of `make test` (tests/lab/fullchecks.py): make test-full runs it.
pytestmark = pytest.mark.full("certificate renewal by cluster.yml under API probes (about 6 min)")

PROBE_UNIT = "kubeforge-renewal-apiprobe"
SETTINGS = (
    "kube_cert_dir", "etcd_cert_dir", "kube_config_dir", "kube_apiserver_endpoint",
    "certificates_renew_before_days", "artifacts_dir",
)  # fmt: skip
# The kubelet renews its own client pair (kubelet_rotate_certificates), not cluster.yml.
KUBELET_OWN = "/var/lib/kubelet/pki/kubelet-client-current.pem"


@dataclass
class Renewal:
    short: dict[str, datetime]  # "host:path subject" -> expiry, of every short-lived leaf
    after: dict[str, list[x509.Certificate]]  # "host:path" -> its certificates after cluster.yml
    cas: list[x509.Certificate]
    renew_before: timedelta
    seconds: float
    probes: dict[str, tuple[int, int, list[str]]]


def leaves(inventory: Inventory, settings: dict[str, dict[str, Any]]) -> dict[str, list[Any]]:
    """ "host:path" -> the leaf certificates of every certificate file and
    kubeconfig on every host (the kubelet's own rotating pair left out)."""
    out: dict[str, list[Any]] = {}
    hosts = list(dict.fromkeys(inventory.groups["k8s_cluster"] + inventory.groups["etcd"]))
    for name in hosts:
        for path, text in host_certificates(inventory.host(name), settings[name]).items():
            if path != KUBELET_OWN:
                out[f"{name}:{path}"] = [c for c in certificates(text) if not is_ca(c)]
    return out


def short_lived_hosts(inventory: Inventory) -> list[str]:
    """The last control-plane host (it must be an etcd member too) and the last
    worker: one of each kind of restart the renewal makes."""
    control_plane = inventory.groups["kube_control_plane"]
    workers = [h for h in inventory.groups["kube_node"] if h not in control_plane]
    assert workers, f"{inventory.path} has no worker"
    assert control_plane[-1] in inventory.groups["etcd"], f"{control_plane[-1]} is no etcd member"
    return [control_plane[-1], workers[-1]]


@pytest.fixture(scope="module")
def renewal(inventory: Inventory) -> Renewal:
    settings = inventory.settings(*SETTINGS)
    first = settings[inventory.groups["kube_control_plane"][0]]
    renew_before = timedelta(days=int(first["certificates_renew_before_days"]))
    pki = Path(str(first["artifacts_dir"])) / "pki"
    cas = [c for name in ("ca.crt", "front-proxy-ca.crt", "etcd/ca.crt")
           for c in certificates((pki / name).read_text())]  # fmt: skip
    assert cas, f"no CA in {pki}: the cluster of {inventory.path} was not deployed"

    chosen = short_lived_hosts(inventory)
    done = run("short-lived-leaves", ["-i", str(inventory.path), "--limit", ",".join(chosen),
                                      "tests/playbooks/short-lived-leaves.yml"])  # fmt: skip
    assert done["rc"] == 0, "short-lived-leaves.yml failed: see short-lived-leaves.log"
    assert set(done["recap"]) == set(chosen), f"short-lived-leaves.yml ran on {done['recap']}"
    soon = datetime.now(UTC) + timedelta(days=2)
    before = leaves(inventory, settings)
    on_chosen = {where: found for where, found in before.items() if where.split(":")[0] in chosen}
    short = {
        f"{where} {c.subject.rfc4514_string()}": c.not_valid_after_utc
        for where, found in before.items()
        for c in found
        if c.not_valid_after_utc < soon
    }
    # Certificate files (kubeconfigs embedding a client certificate are
    # rewritten by cluster.yml, not by the certificates role alone).
    long_lived = {
        f"{where} {c.subject.rfc4514_string()}": c.not_valid_after_utc.date().isoformat()
        for where, found in on_chosen.items()
        if not where.endswith(".conf")
        for c in found
        if c.not_valid_after_utc >= soon
    }
    with_short = {where.split(":")[0] for where in short}
    assert with_short == set(chosen), f"short-lived leaves on {sorted(with_short)}, not {chosen}"
    assert long_lived == {}, f"leaves short-lived-leaves.yml did not re-issue: {long_lived}"

    probes = ApiProbes(inventory, PROBE_UNIT)
    # The upgrade's probe window is over (test_upgrade.py read it).
    probes.start(settings, stop_first=("kubeforge-upgrade-apiprobe",))
    start = time.monotonic()
    done = run("certificate-renewal", ["-i", str(inventory.path), "cluster.yml"])
    seconds = time.monotonic() - start
    counts = probes.stop()
    assert done["rc"] == 0, "cluster.yml failed to renew: see certificate-renewal.log"
    return Renewal(short, leaves(inventory, settings), cas, renew_before, seconds, counts)


def test_no_api_probe_failed_during_the_renewal(renewal: Renewal) -> None:
    print(f"{len(renewal.short)} short-lived certificates renewed by cluster.yml")
    assert_probes_clean("certificate renewal", renewal.seconds, renewal.probes)


def test_every_short_lived_certificate_was_renewed(renewal: Renewal) -> None:
    due = datetime.now(UTC) + renewal.renew_before
    problems = []
    for where, found in renewal.after.items():
        for cert in found:
            what = f"{where} {cert.subject.rfc4514_string()}"
            if cert.not_valid_after_utc <= due:
                problems.append(f"{what}: still expires {cert.not_valid_after_utc:%Y-%m-%d}")
            if not signed_by_one_of(cert, renewal.cas):
                problems.append(f"{what}: issued by {cert.issuer.rfc4514_string()}, no cluster CA")
    gone = sorted(w for w in renewal.short if w.split(" ", 1)[0] not in renewal.after)
    assert gone == [], f"certificate files that were there before the renewal are gone: {gone}"
    assert problems == [], "certificates not renewed:\n" + "\n".join(problems)


def test_every_node_ready_after_the_renewal(
    renewal: Renewal, inventory: Inventory, kubectl: Kubectl
) -> None:
    wait_nodes_ready(inventory, kubectl, "the renewal")
