"""Runs after test_scale.py (file order), on the grown cluster: node labels and
taints follow the inventory on later runs. A worker that is not the ingress node
gets a label set by hand; a host_vars file then gives it labels (one the kubelet
may set itself, one only the API may) and a taint, and `cluster.yml --limit
<worker>` applies them; the file is taken away again and the next `cluster.yml
--limit <worker>` removes them, while the label set by hand stays. The
host_vars file and the hand-set label are removed at the end, whatever happens.
"""

from __future__ import annotations

import json
from typing import Any

import kubeforge_placement as pl
import pytest
import yaml
from clustercheck import Inventory, Kubectl, run_ok
from runbook import run

BY_HAND = "kubeforge-test.example/by-hand"
ROLE = "node-role.kubernetes.io/kubeforge-test"  # the API's only (NodeRestriction)
TIER = "kubeforge-test.example/tier"  # the kubelet's to set at registration
TAINT = "kubeforge-test.example/day2=yes:PreferNoSchedule"  # schedules anyway if need be


def node(kubectl: Kubectl, name: str) -> dict[str, Any]:
    data: dict[str, Any] = kubectl.json("get", "node", name)
    return data


def taints_of(obj: dict[str, Any]) -> dict[str, str]:
    return {
        f"{t['key']}:{t['effect']}": t.get("value", "") for t in obj["spec"].get("taints") or []
    }


def kubelet_labels_flag(inventory: Inventory, host: str) -> list[str]:
    unit = run_ok(inventory.host(host), "cat /etc/systemd/system/kubelet.service", "kubelet unit")
    return [w.rstrip("\\").strip() for w in unit.split() if w.startswith("--node-labels=")]


def cluster_yml(inventory: Inventory, name: str, host: str) -> None:
    done = run(name, ["-i", str(inventory.path), "cluster.yml", "--limit", host])
    assert done["rc"] == 0, f"cluster.yml --limit {host} failed: see {name}.log"
    assert set(done["recap"]) == {host}, f"cluster.yml --limit {host} ran on {done['recap']}"
    assert done["recap"][host]["changed"] > 0, f"{name}: nothing was applied: {done['recap']}"


def test_labels_and_taints_follow_the_inventory(inventory: Inventory, kubectl: Kubectl) -> None:
    worker = next(
        (h for h in inventory.groups["kube_node"]
         if not any(inventory.variables(h).get(v) for v in ("node_labels", "node_taints"))),
        None,
    )  # fmt: skip
    assert worker, f"{inventory.path}: no worker without node_labels/node_taints to change"
    name = worker.lower()
    host_vars = inventory.path.parent / "host_vars" / f"{worker}.yml"
    if host_vars.exists():
        pytest.fail(f"{host_vars} exists: this check writes and removes it, move it away first")
    created_dir = not host_vars.parent.exists()
    kubectl("label", "node", name, "--overwrite", f"{BY_HAND}=yes")
    try:
        host_vars.parent.mkdir(exist_ok=True)
        host_vars.write_text(
            "---\n# Written by molecule/scale/tests/test_z_node_placement.py; removed by it.\n"
            + yaml.safe_dump({"node_labels": {ROLE: "", TIER: "day2"}, "node_taints": [TAINT]})
        )
        cluster_yml(inventory, "placement-added", worker)
        added = node(kubectl, name)
        labels, annotations = added["metadata"]["labels"], added["metadata"]["annotations"]
        assert {k: labels.get(k) for k in (ROLE, TIER, BY_HAND)} == {
            ROLE: "",
            TIER: "day2",
            BY_HAND: "yes",
        }, labels
        assert taints_of(added).get("kubeforge-test.example/day2:PreferNoSchedule") == "yes"
        assert json.loads(annotations[pl.RECORD_LABELS]) == sorted([ROLE, TIER])
        assert json.loads(annotations[pl.RECORD_TAINTS]) == [pl.parse_taint(TAINT).identity]
        # The kubelet restarted with the label it may set itself, and accepted it.
        assert kubelet_labels_flag(inventory, worker) == [f"--node-labels={TIER}=day2"]

        host_vars.unlink()
        cluster_yml(inventory, "placement-removed", worker)
        removed = node(kubectl, name)
        labels, annotations = removed["metadata"]["labels"], removed["metadata"]["annotations"]
        assert ROLE not in labels and TIER not in labels, labels
        assert labels.get(BY_HAND) == "yes", f"the label set by hand went: {labels}"
        assert not any(k.startswith("kubeforge-test.example/day2:") for k in taints_of(removed))
        assert pl.RECORD_LABELS not in annotations and pl.RECORD_TAINTS not in annotations
        assert kubelet_labels_flag(inventory, worker) == []
    finally:
        host_vars.unlink(missing_ok=True)
        if created_dir and host_vars.parent.is_dir() and not any(host_vars.parent.iterdir()):
            host_vars.parent.rmdir()
        kubectl.try_run("label", "node", name, f"{BY_HAND}-")
        # After a failure halfway the worker may still carry the test's marks.
        kubectl.try_run("label", "node", name, f"{ROLE}-", f"{TIER}-")
        kubectl.try_run("taint", "node", name, f"{pl.parse_taint(TAINT).identity}-")
        kubectl.try_run("annotate", "node", name, f"{pl.RECORD_LABELS}-", f"{pl.RECORD_TAINTS}-")
