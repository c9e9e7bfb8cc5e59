"""After converge: remove-node.yml refused to remove every control-plane host,
then removed the worker node6 and node1, the first control-plane host and etcd
member. The inventory under test (hosts-removed.yml) is the one an operator
keeps afterwards: node2, node3, node7 control plane (node2, node3 etcd), node4,
node5 workers."""

from __future__ import annotations

import json
from typing import Any

import scenario
from clustercheck import (
    ETCDCTL_LOCAL,
    Inventory,
    Kubectl,
    load_balancer_problems,
    node_conditions,
    run_ok,
    wait_for,
)
from runbook import read_run, runs_dir

REMOVED = {"remove-worker": "node6", "remove-first-control-plane": "node1"}


SERVICES = [
    "kubelet",
    "kube-proxy",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "etcd",
    "containerd",
]


def on_removed(node: str, command: str) -> str:
    """stdout of `command` on a removed host (no longer in the inventory)."""
    done = scenario.ssh(scenario.number(node), command)
    assert done.returncode == 0, f"{node}: `{command}` failed: {done.stderr.strip()}"
    return done.stdout


def test_removing_every_control_plane_host_is_refused_unchanged() -> None:
    run: dict[str, Any] = read_run("remove-refused")
    assert run["rc"] != 0, "remove-node.yml accepted removing every control-plane host"
    changed = {h: r["changed"] for h, r in run["recap"].items() if r["changed"]}
    assert changed == {}, f"the refused request changed hosts: {changed}"
    log = (runs_dir() / "remove-refused.log").read_text()
    assert "no control-plane host" in log, "the refusal does not say why"


def test_both_removals_succeeded() -> None:
    for name, node in REMOVED.items():
        run: dict[str, Any] = read_run(name)
        assert run["rc"] == 0, f"remove-node.yml -e node={node} failed: see {name}.log"
        print(f"remove-node.yml -e node={node}: {run['seconds']:.0f}s")


def test_the_remaining_nodes_are_ready(inventory: Inventory, kubectl: Kubectl) -> None:
    nodes = node_conditions(kubectl)
    assert sorted(nodes) == sorted(inventory.groups["k8s_cluster"]), nodes
    assert {n: v["ready"] for n, v in nodes.items() if v["ready"] != "True"} == {}


def test_etcd_is_the_remaining_members_all_healthy(inventory: Inventory) -> None:
    for name in inventory.groups["etcd"]:
        host = inventory.host(name)
        members = json.loads(run_ok(host, f"{ETCDCTL_LOCAL} member list -w json", "member list"))
        assert sorted(m["name"] for m in members["members"]) == sorted(inventory.groups["etcd"])
        health = json.loads(
            run_ok(host, f"{ETCDCTL_LOCAL} endpoint health --cluster -w json", "endpoint health")
        )
        assert all(h["health"] for h in health) and len(health) == len(inventory.groups["etcd"])


def test_no_load_balancer_points_at_a_removed_host(inventory: Inventory) -> None:
    apiservers = [f"{inventory.address(h)}:6443" for h in inventory.groups["kube_control_plane"]]
    hosts = inventory.groups["k8s_cluster"]
    assert load_balancer_problems(inventory, hosts, apiservers) == []


def test_the_apiservers_use_only_the_remaining_etcd_members(inventory: Inventory) -> None:
    wanted = sorted(f"https://{inventory.address(h)}:2379" for h in inventory.groups["etcd"])
    for name in inventory.groups["kube_control_plane"]:
        host = inventory.host(name)
        args = run_ok(
            host, "cat /proc/$(pgrep -x kube-apiserver)/cmdline | tr '\\0' ' '", "cmdline"
        )
        servers = [a.split("=", 1)[1] for a in args.split() if a.startswith("--etcd-servers=")]
        assert servers and sorted(servers[0].split(",")) == wanted, f"{name}: {servers}"


def test_dns_answers_from_a_new_pod(kubectl: Kubectl, busybox_image: str) -> None:
    name = "remove-dns-check"
    kubectl("delete", "pod", name, "-n", "default", "--ignore-not-found", "--wait=true")
    kubectl("run", name, "-n", "default", "--restart=Never", f"--image={busybox_image}",
            "--command", "--", "sleep", "600")  # fmt: skip
    try:
        kubectl("wait", "-n", "default", "--for=condition=Ready", f"pod/{name}", "--timeout=120s")

        def resolves() -> str | None:
            rc, out, err = kubectl.try_run(
                "exec",
                "-n",
                "default",
                name,
                "--",
                "nslookup",
                "kubernetes.default.svc.cluster.local",
            )
            return None if rc == 0 and "Address" in out else f"rc={rc} {out.strip()} {err.strip()}"

        wait_for("kubernetes.default to resolve from a pod", resolves, 60)
    finally:
        kubectl("delete", "pod", name, "-n", "default", "--ignore-not-found", "--wait=false")


def test_the_removed_hosts_run_nothing_of_the_cluster() -> None:
    for node in REMOVED.values():
        active = on_removed(node, f"systemctl is-active {' '.join(SERVICES)} || true").split()
        running = {s: a for s, a in zip(SERVICES, active, strict=True) if a != "inactive"}
        assert running == {}, f"{node}: still active: {running}"
        left = on_removed(node, "ls -d /etc/kubernetes /var/lib/etcd /var/lib/kubelet 2>&1 || true")
        assert "No such file" in left and "/etc/kubernetes\n" not in left, f"{node}: {left}"


def test_calico_holds_no_address_block_of_a_removed_node(kubectl: Kubectl) -> None:
    """The chain's cluster runs calico (datastore kdd): the removed nodes' IPAM
    block affinities were released (remove-node.yml waited for it)."""
    affinities = kubectl.json("get", "blockaffinities.crd.projectcalico.org")["items"]
    assert affinities, "calico holds no block affinity at all: is calico deployed?"
    left = [
        f"{a['spec']['cidr']} of {a['spec']['node']}"
        for a in affinities
        if a["spec"]["node"] in REMOVED.values()
    ]
    assert not left, f"calico still ties address blocks to removed nodes: {left}"
