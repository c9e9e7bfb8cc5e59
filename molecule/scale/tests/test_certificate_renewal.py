"""Certificate renewal by cluster.yml with no API downtime (docs/operations.md,
Certificate renewal), on the run that adds the fourth control-plane host.

Before that run, converge re-issued every leaf certificate of node3 (a
control-plane host and etcd member) and node5 (a worker) for one day, which
makes each one due, and started an API probe on every running node
(tests/lab/renewalcheck.py before: one restart of each kind). cluster.yml then
renewed them and restarted what reads them, one host at a time, while it
joined node7. Here:

1. no API probe failed, and each node probed through the whole run (the
   window's length and the counts are printed);
2. every leaf of those two hosts now lives longer than
   certificates_renew_before_days and chains to the cluster's CAs; none that
   was short-lived is gone;
3. every node is Ready.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from clustercheck import (
    Inventory,
    Kubectl,
    assert_probes_clean,
    certificates,
    wait_nodes_ready,
)
from kubeforge_kubelet import signed_by_one_of
from renewalcheck import SETTINGS, leaves, read_state


@pytest.fixture(scope="module")
def state() -> dict[str, Any]:
    path = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "")) / "renewal.json"
    record = read_state(path)
    if "probes" not in record:
        pytest.fail(f"{path} has no probe counts: `renewalcheck.py after` did not run")
    return record


def test_no_api_probe_failed_during_the_renewal(state: dict[str, Any]) -> None:
    print(f"{len(state['short'])} short-lived certificates on {', '.join(state['hosts'])}")
    probes = {node: (m, f, lines) for node, (m, f, lines) in state["probes"].items()}
    assert sorted(probes) == sorted(state["nodes"]), f"probe counts of {sorted(probes)} only"
    assert_probes_clean("certificate renewal and control-plane addition", state["seconds"], probes)


def test_every_short_lived_certificate_was_renewed(
    state: dict[str, Any], inventory: Inventory
) -> None:
    settings = inventory.settings(*SETTINGS)
    first = settings[inventory.groups["kube_control_plane"][0]]
    pki = Path(str(first["artifacts_dir"])) / "pki"
    cas = [c for name in ("ca.crt", "front-proxy-ca.crt", "etcd/ca.crt")
           for c in certificates((pki / name).read_text())]  # fmt: skip
    assert cas, f"no CA in {pki}"
    due = datetime.now(UTC) + timedelta(days=int(first["certificates_renew_before_days"]))
    after = leaves(inventory, settings, state["hosts"])
    problems = []
    for where, found in after.items():
        for cert in found:
            what = f"{where} {cert.subject.rfc4514_string()}"
            if cert.not_valid_after_utc <= due:
                problems.append(f"{what}: still expires {cert.not_valid_after_utc:%Y-%m-%d}")
            if not signed_by_one_of(cert, cas):
                problems.append(f"{what}: issued by {cert.issuer.rfc4514_string()}, no cluster CA")
    gone = sorted(w for w in state["short"] if w.split(" ", 1)[0] not in after)
    assert gone == [], f"certificate files that were there before the renewal are gone: {gone}"
    assert problems == [], "certificates not renewed:\n" + "\n".join(problems)


def test_every_node_ready_after_the_renewal(inventory: Inventory, kubectl: Kubectl) -> None:
    wait_nodes_ready(inventory, kubectl, "the renewal")
