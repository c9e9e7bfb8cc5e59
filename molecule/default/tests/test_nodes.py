"""The cluster's nodes are the inventory's hosts: 3 control-plane/etcd nodes and
2 workers, all Ready, each with its role."""

from __future__ import annotations

from typing import Any

from clustercheck import Inventory, Kubectl

CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"


def ready(node: dict[str, Any]) -> bool:
    conditions = node["status"].get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def test_inventory_is_three_control_plane_etcd_nodes_and_two_workers(
    inventory: Inventory,
) -> None:
    groups = {g: inventory.groups[g] for g in ("kube_control_plane", "etcd", "kube_node")}
    shape = (
        f"the scenario is 3 control-plane/etcd hosts and 2 workers; {inventory.path} has {groups}"
    )
    assert len(groups["kube_control_plane"]) == 3, shape
    assert groups["etcd"] == groups["kube_control_plane"], shape
    assert len(groups["kube_node"]) == 2, shape
    assert not set(groups["kube_node"]) & set(groups["kube_control_plane"]), shape


def test_every_inventory_host_is_a_ready_node_with_its_role(
    inventory: Inventory, kubectl: Kubectl
) -> None:
    nodes = {n["metadata"]["name"]: n for n in kubectl.json("get", "nodes")["items"]}
    expected = {h.lower() for h in inventory.groups["k8s_cluster"]}
    assert set(nodes) == expected, f"nodes {sorted(nodes)}, inventory k8s_cluster {expected}"
    not_ready = sorted(name for name, node in nodes.items() if not ready(node))
    assert not not_ready, f"nodes not Ready: {not_ready}"
    control = {h.lower() for h in inventory.groups["kube_control_plane"]}
    labelled = {n for n, node in nodes.items() if CONTROL_PLANE_LABEL in node["metadata"]["labels"]}
    assert labelled == control, f"{CONTROL_PLANE_LABEL} on {sorted(labelled)}, not {control}"
    for name in control - {h.lower() for h in inventory.groups["kube_node"]}:
        taints = {t["key"]: t["effect"] for t in nodes[name]["spec"].get("taints", [])}
        assert taints.get(CONTROL_PLANE_LABEL) == "NoSchedule", f"{name} taints: {taints}"
