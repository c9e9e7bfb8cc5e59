"""Every node carries the labels and taints its inventory gives it (node_labels,
node_taints: the layout's last worker is the ingress node, tests/lab/lab.py),
the record of them kubeforge keeps on the Node lists exactly those, and the
kubelet registers with the part it may set itself."""

from __future__ import annotations

import json
from typing import Any

import kubeforge_placement as pl
import yaml
from clustercheck import Inventory, Kubectl, run_ok


def placement(inventory: Inventory, host: str) -> tuple[dict[str, str], dict[str, pl.Taint]]:
    hvars = inventory.variables(host)
    return pl.wanted_labels(hvars.get("node_labels")), pl.wanted_taints(hvars.get("node_taints"))


def placement_problems(node: dict[str, Any], labels: dict[str, str],
                       taints: dict[str, pl.Taint]) -> list[str]:  # fmt: skip
    """What differs between a Node and the labels and taints its inventory asks for."""
    meta = node["metadata"]
    name = meta["name"]
    have = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    have_taints = {
        f"{t['key']}:{t['effect']}": t.get("value", "") for t in node["spec"].get("taints") or []
    }
    problems = [
        f"{name}: label {k}={have.get(k)!r}, the inventory says {v!r}"
        for k, v in labels.items()
        if have.get(k) != v
    ]
    problems += [
        f"{name}: taint {t.identity} with value {have_taints.get(i)!r}, the inventory says {t.spec}"
        for i, t in taints.items()
        if have_taints.get(i) != t.value
    ]
    for record, wanted in ((pl.RECORD_LABELS, sorted(labels)), (pl.RECORD_TAINTS, sorted(taints))):
        found = json.loads(annotations[record]) if record in annotations else None
        if found != (wanted or None):
            problems.append(f"{name}: annotation {record} is {found!r}, not {wanted or None!r}")
    return problems


def test_the_layout_has_an_ingress_node(inventory: Inventory) -> None:
    """The checks below must have something to check."""
    ingress = [h for h in inventory.groups["kube_node"] if any(placement(inventory, h))]
    assert ingress == inventory.groups["kube_node"][-1:], (
        f"{inventory.path}: node_labels/node_taints on {ingress}, expected on the last worker "
        "only (tests/lab/lab.py write_layout)"
    )


def test_every_node_has_its_inventory_labels_and_taints(
    inventory: Inventory, kubectl: Kubectl
) -> None:
    nodes = {n["metadata"]["name"]: n for n in kubectl.json("get", "nodes")["items"]}
    problems: list[str] = []
    for host in inventory.groups["k8s_cluster"]:
        name = host.lower()
        assert name in nodes, f"no node {name}: {sorted(nodes)}"
        problems += placement_problems(nodes[name], *placement(inventory, host))
    assert problems == []


def test_the_kubelet_registers_with_what_it_may_set(inventory: Inventory) -> None:
    """--node-labels holds only the labels NodeRestriction lets a kubelet set
    (none of the lab's: node-role.kubernetes.io/ingress goes through the API),
    registerWithTaints every taint."""
    problems: list[str] = []
    for host in inventory.groups["k8s_cluster"]:
        labels, taints = placement(inventory, host)
        target = inventory.host(host)
        unit = run_ok(target, "cat /etc/systemd/system/kubelet.service", "kubelet unit")
        flags = [w.rstrip("\\").strip() for w in unit.split() if w.startswith("--node-labels=")]
        wanted = pl.kubeforge_kubelet_node_labels(labels)
        if flags != ([f"--node-labels={wanted}"] if wanted else []):
            problems.append(f"{host}: kubelet flags {flags}, wanted --node-labels={wanted!r}")
        config = yaml.safe_load(
            run_ok(target, "cat /etc/kubernetes/kubelet-config.yaml", "kubelet configuration")
        )
        register = config.get("registerWithTaints") or []
        if register != pl.kubeforge_register_taints([t.spec for t in taints.values()]):
            problems.append(f"{host}: registerWithTaints {register}, inventory {list(taints)}")
    assert problems == []
