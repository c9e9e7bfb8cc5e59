"""After converge: node6 joined as a worker with scale.yml --limit node6 (and
cluster.yml --limit node6 found nothing to change), then node7 as a fourth
control-plane host with cluster.yml."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import kubeforge_placement as pl
import pytest
from clustercheck import (
    ETCDCTL_LOCAL,
    Inventory,
    Kubectl,
    load_balancer_problems,
    node_conditions,
    run_ok,
)
from runbook import read_run

WORKER = "node6"
CONTROL_PLANE = "node7"


def record(name: str) -> dict[str, dict[str, str]]:
    """<ephemeral dir>/<name>.json (record-services.yml: scenario.py record-services):
    host -> running unit -> "<main PID> <start time>"."""
    path = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "")) / f"{name}.json"
    if not path.is_file():
        pytest.fail(f"{path} is missing: run the scenario's converge step first")
    found: dict[str, dict[str, str]] = json.loads(path.read_text())
    return found


def test_the_worker_joined_with_limit_touching_no_other_host() -> None:
    run: dict[str, Any] = read_run("scale-worker")
    assert run["rc"] == 0, f"scale.yml --limit {WORKER} failed: see {run['name']}.log"
    assert set(run["recap"]) == {WORKER}, (
        f"scale.yml --limit {WORKER} ran on {sorted(run['recap'])}"
    )
    print(f"scale.yml --limit {WORKER}: {run['seconds']:.0f}s")


def test_cluster_yml_with_limit_finds_the_worker_converged() -> None:
    run: dict[str, Any] = read_run("cluster-limit-worker")
    assert run["rc"] == 0, "cluster.yml --limit node6 failed: see cluster-limit-worker.log"
    assert set(run["recap"]) == {WORKER}, f"cluster.yml --limit ran on {sorted(run['recap'])}"
    assert run["recap"][WORKER]["changed"] == 0, f"cluster.yml --limit changed: {run['recap']}"


def test_no_service_of_the_other_hosts_restarted_for_the_worker() -> None:
    before, after = record("before-worker"), record("after-worker")
    assert before, "no host recorded before the worker joined"
    restarted = [
        f"{host}: {unit} (pid and start {then} -> {after.get(host, {}).get(unit, 'not running')})"
        for host, units in before.items()
        for unit, then in units.items()
        if after.get(host, {}).get(unit) != then
    ]
    running = [f"{h}: {u}" for h, units in before.items() for u in units]
    assert any("kube-apiserver" in r for r in running) and any("kubelet" in r for r in running), (
        running
    )
    assert restarted == [], f"restarted while {WORKER} joined: {restarted}"


def test_both_new_hosts_are_ready_nodes(inventory: Inventory, kubectl: Kubectl) -> None:
    nodes = node_conditions(kubectl)
    assert sorted(nodes) == sorted(inventory.groups["k8s_cluster"]), nodes
    assert {n: v["ready"] for n, v in nodes.items() if v["ready"] != "True"} == {}
    assert nodes[CONTROL_PLANE]["control-plane"] == "True", nodes[CONTROL_PLANE]
    assert "node-role.kubernetes.io/control-plane" in nodes[CONTROL_PLANE]["taints"]
    # node6's taints are its inventory's (node_taints: none unless it is the
    # lab's ingress node), none of the control plane's.
    worker_taints = inventory.variables(WORKER).get("node_taints") or []
    wanted_taints = ",".join(pl.parse_taint(t).key for t in worker_taints)
    assert nodes[WORKER]["control-plane"] == "False", nodes[WORKER]
    assert nodes[WORKER]["taints"] == wanted_taints, nodes[WORKER]
    run: dict[str, Any] = read_run("cluster-add-control-plane")
    assert run["rc"] == 0, "cluster.yml adding node7 failed"
    print(f"cluster.yml adding {CONTROL_PLANE}: {run['seconds']:.0f}s")


def test_every_load_balancer_lists_the_new_apiserver(inventory: Inventory) -> None:
    apiservers = [f"{inventory.address(h)}:6443" for h in inventory.groups["kube_control_plane"]]
    assert f"{inventory.address(CONTROL_PLANE)}:6443" in apiservers
    problems = load_balancer_problems(inventory, inventory.groups["k8s_cluster"], apiservers)
    assert problems == []


def test_every_apiserver_serves_a_certificate_naming_the_new_host(inventory: Inventory) -> None:
    address = inventory.address(CONTROL_PLANE)
    for name in inventory.groups["kube_control_plane"]:
        host = inventory.host(name)
        sans = run_ok(
            host,
            f"echo | openssl s_client -connect {inventory.address(name)}:6443 2>/dev/null"
            " | openssl x509 -noout -ext subjectAltName",
            "apiserver certificate",
        )
        assert f"IP Address:{address}" in sans, f"{name}'s apiserver certificate: {sans}"


def test_etcd_keeps_its_three_members(inventory: Inventory) -> None:
    first = inventory.host(inventory.groups["etcd"][0])
    members = run_ok(first, f"{ETCDCTL_LOCAL} member list -w json", "etcd member list")
    names = sorted(m["name"] for m in json.loads(members)["members"])
    assert names == sorted(inventory.groups["etcd"]), names
