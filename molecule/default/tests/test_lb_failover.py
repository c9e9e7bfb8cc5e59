"""Every node reaches the apiservers through its local load balancer at
127.0.0.1:6443, and keeps doing so, with the cluster still scheduling, while
one control-plane node's kube-apiserver is stopped."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from typing import Any

import pytest
from clustercheck import NAMESPACE, Inventory, Kubectl, run_ok, wait_for
from testinfra.host import Host  # type: ignore[import-untyped]

LB_URL = "https://127.0.0.1:6443"
PKI = "/etc/kubernetes/pki"
# GET each path given on the command line with the node's kubelet client
# certificate; print "<status> <path>" per request, exit 1 on the first error.
REQUEST = f"""
import ssl, sys, urllib.request
ctx = ssl.create_default_context(cafile="{PKI}/ca.crt")
ctx.load_cert_chain("{PKI}/kubelet-client.crt", "{PKI}/kubelet-client.key")
for path in sys.argv[2:]:
    try:
        with urllib.request.urlopen(sys.argv[1] + path, context=ctx, timeout=10) as resp:
            print(resp.status, path)
    except Exception as exc:
        print("error", path, exc)
        sys.exit(1)
"""


def get(host: Host, base: str, *paths: str) -> str:
    return run_ok(
        host,
        f"python3 -c {shlex.quote(REQUEST)} {base} {shlex.join(paths)}",
        f"HTTPS GET {base}",
    )


def assert_lb_answers(inventory: Inventory, rounds: int) -> None:
    """`rounds` requests per node to /readyz and to the node's own Node object,
    all through 127.0.0.1:6443, all answered 200."""
    for name in inventory.groups["k8s_cluster"]:
        paths = ["/readyz", f"/api/v1/nodes/{name.lower()}"] * rounds
        out = get(inventory.host(name), LB_URL, *paths)
        answers = out.splitlines()
        assert answers == [f"200 {p}" for p in paths], f"{name}: {answers}"


def test_kubelet_and_kube_proxy_use_the_local_load_balancer(inventory: Inventory) -> None:
    for name in inventory.groups["k8s_cluster"]:
        host = inventory.host(name)
        for conf in ("kubelet.conf", "kube-proxy.conf"):
            servers = [
                line.split(":", 1)[1].strip()
                for line in host.file(f"/etc/kubernetes/{conf}").content_string.splitlines()
                if line.strip().startswith("server:")
            ]
            assert servers == [LB_URL], f"{name}: /etc/kubernetes/{conf} servers {servers}"


def test_every_node_reaches_the_apiservers_through_its_local_load_balancer(
    inventory: Inventory,
) -> None:
    assert_lb_answers(inventory, rounds=3)


def apiserver_ready(inventory: Inventory, name: str) -> str | None:
    """None when `name`'s own kube-apiserver answers /readyz, else why not."""
    done = inventory.host(name).run(
        f"python3 -c {shlex.quote(REQUEST)} https://{inventory.address(name)}:6443 /readyz"
    )
    return None if done.rc == 0 else done.stdout.strip() or done.stderr.strip()


@pytest.fixture
def apiserver_stopped(inventory: Inventory) -> Iterator[str]:
    """kube-apiserver stopped on the second control-plane node (kubectl runs on
    the first); always started again, and healthy, afterwards."""
    control = inventory.groups["kube_control_plane"]
    assert len(control) >= 2, f"failover needs two control-plane nodes, not {control}"
    name = control[1]
    host = inventory.host(name)
    try:
        run_ok(host, "systemctl stop kube-apiserver", "stop kube-apiserver")
        assert not host.service("kube-apiserver").is_running
        assert apiserver_ready(inventory, name) is not None, f"{name}: apiserver still answers"
        yield name
    finally:

        def start() -> str | None:
            done = host.run("systemctl start kube-apiserver")
            return None if done.rc == 0 else f"rc={done.rc} {done.stderr.strip()}"

        wait_for(f"kube-apiserver on {name} to start", start, 120)
        wait_for(f"kube-apiserver on {name} ready again", lambda: apiserver_ready(inventory, name),
                 180)  # fmt: skip


def deployment(name: str, image: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [
                        {
                            "name": "sleep",
                            "image": image,
                            "imagePullPolicy": "IfNotPresent",
                            "command": ["sleep", "3600"],
                        }
                    ],
                },
            },
        },
    }


def test_cluster_keeps_working_with_one_apiserver_stopped(
    inventory: Inventory,
    kubectl: Kubectl,
    namespace: str,
    busybox_image: str,
    apiserver_stopped: str,
) -> None:
    # Each node's balancer must route around the stopped apiserver every time.
    assert_lb_answers(inventory, rounds=4)
    workers = {h.lower() for h in inventory.groups["kube_node"]}
    kubectl.apply(deployment("failover", busybox_image, replicas=len(workers)))
    kubectl("rollout", "status", "-n", namespace, "deployment/failover", "--timeout=180s")
    pods = kubectl.json("get", "pods", "-n", namespace, "-l", "app=failover")["items"]
    running = {p["metadata"]["name"]: p["spec"].get("nodeName") for p in pods
               if p["status"].get("phase") == "Running"}  # fmt: skip
    assert len(running) == len(workers), f"Running pods with {apiserver_stopped} down: {running}"
    assert set(running.values()) <= workers, f"scheduled off the workers: {running}"
    nodes = kubectl.json("get", "nodes")["items"]
    not_ready = [
        n["metadata"]["name"]
        for n in nodes
        if not any(
            c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"]
        )
    ]
    assert not not_ready, f"nodes not Ready with {apiserver_stopped}'s apiserver down: {not_ready}"
    kubectl("delete", "-n", namespace, "deployment/failover", "--wait=true", "--timeout=120s")
