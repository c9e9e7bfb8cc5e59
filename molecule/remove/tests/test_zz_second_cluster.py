"""Two clusters from one checkout (docs/operations.md, Several clusters from one
control host). prepare.yml deployed a second, one-node cluster
(inventory/lab/second/hosts.yml) on node8, which the scenario's cluster does
not use, and wrote its services down, before converge removed node6 and node1
from the scenario's cluster (and test_z_etcd_backup_restore.py restored its
etcd). Here:

1. the second cluster's services kept running through those removals and the
   restore, and its node is Ready;
2. each cluster's admin credentials reach its own apiserver only: the nodes
   listed through each are its own, and the other cluster's apiserver refuses
   them;
3. the two share no CA, no artifacts directory and no SSH control socket
   directory;
4. last, reset.yml on the second cluster leaves the scenario's cluster
   running (its services unchanged, every node Ready), and the second
   cluster's lab node holds nothing of Kubernetes any more.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import labconfig as cfg
import pytest
import runbook
import scenario
import yaml
from clustercheck import Inventory, Kubectl, wait_nodes_ready

SECOND = cfg.REPO / "inventory" / "lab" / "second" / "hosts.yml"
RECORD = "second-cluster-services.json"
SETTINGS = ("artifacts_dir", "ansible_control_path_dir", "kube_config_dir", "kube_apiserver_port")


def second_inventory() -> Inventory:
    if not SECOND.is_file():
        pytest.fail(f"{SECOND} is missing: prepare.yml deploys the second cluster")
    return Inventory(SECOND, scenario.groups_of(SECOND))


def numbers(inventory: Inventory) -> list[int]:
    return [scenario.number(h) for h in inventory.groups["k8s_cluster"]]


def admin_conf(inventory: Inventory, settings: dict[str, Any]) -> dict[str, Any]:
    """The admin kubeconfig on the first control-plane host, its server that
    host's apiserver as the control host reaches it."""
    first = inventory.groups["kube_control_plane"][0]
    path = f"{settings['kube_config_dir']}/admin.conf"
    done = scenario.ssh(scenario.number(first), f"cat {path}")
    assert done.returncode == 0, f"{first}: no {path}: {done.stderr}"
    conf = yaml.safe_load(done.stdout)
    assert isinstance(conf, dict), f"{first}: {path} is not a kubeconfig"
    address = cfg.node_ip(scenario.number(first))
    conf["clusters"][0]["cluster"]["server"] = (
        f"https://{address}:{settings['kube_apiserver_port']}"
    )
    return conf


def first_settings(inventory: Inventory) -> dict[str, Any]:
    return inventory.settings(*SETTINGS)[inventory.groups["kube_control_plane"][0]]


def api_get(credentials: dict[str, Any], server: dict[str, Any], path: str) -> tuple[int, Any]:
    """GET `path` from the apiserver of kubeconfig `server` (its address and
    CA) with the client certificate of kubeconfig `credentials`: the HTTP
    status and the decoded answer (None when refused)."""
    cluster = server["clusters"][0]["cluster"]
    user = credentials["users"][0]["user"]
    ca = base64.b64decode(cluster["certificate-authority-data"]).decode()
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = Path(tmp, "client.crt"), Path(tmp, "client.key")
        cert.write_bytes(base64.b64decode(user["client-certificate-data"]))
        key.write_bytes(base64.b64decode(user["client-key-data"]))
        key.chmod(0o600)
        context = ssl.create_default_context(cadata=ca)
        context.load_cert_chain(cert, key)
        try:
            with urllib.request.urlopen(cluster["server"] + path, context=context, timeout=15) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as error:
            return error.code, None


@pytest.fixture(scope="module")
def clusters(inventory: Inventory) -> dict[str, Inventory]:
    second = second_inventory()
    shared = set(numbers(inventory)) & set(numbers(second))
    assert not shared, f"the two clusters share lab nodes {sorted(shared)}"
    return {"first": inventory, "second": second}


def test_the_second_cluster_kept_running_through_the_removals(
    clusters: dict[str, Inventory],
) -> None:
    record = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "")) / RECORD
    if not record.is_file():
        pytest.fail(f"{record} is missing: prepare.yml writes it before the removals")
    before = json.loads(record.read_text())
    second = clusters["second"]
    now = {f"node{i}": scenario.services(i) for i in numbers(second)}
    assert set(before) == set(now)
    for host in before:
        assert before[host], f"{host}: no service ran before the removals"
        assert now[host] == before[host], (
            f"{host}'s services changed while nodes were removed from the other cluster: "
            f"before {before[host]}, now {now[host]}"
        )
    kubectl = Kubectl(second.host(second.groups["kube_control_plane"][0]))
    wait_nodes_ready(second, kubectl, "the other cluster's node removals")


def test_each_admin_conf_reaches_only_its_own_cluster(clusters: dict[str, Inventory]) -> None:
    confs = {name: admin_conf(inv, first_settings(inv)) for name, inv in clusters.items()}
    for name, inv in clusters.items():
        status, answer = api_get(confs[name], confs[name], "/api/v1/nodes")
        assert status == 200, f"{name} cluster: its own admin credentials got {status}"
        seen = sorted(item["metadata"]["name"] for item in answer["items"])
        assert seen == sorted(inv.groups["k8s_cluster"]), f"{name} cluster lists nodes {seen}"
    for name, other in (("first", "second"), ("second", "first")):
        status, _ = api_get(confs[name], confs[other], "/api/v1/nodes")
        assert status == 401, (
            f"the {other} cluster's apiserver answered {status} to the {name} cluster's admin"
        )


def test_the_clusters_share_no_state(clusters: dict[str, Inventory]) -> None:
    found = {name: first_settings(inv) for name, inv in clusters.items()}
    artifacts = {name: Path(str(s["artifacts_dir"])).resolve() for name, s in found.items()}
    assert artifacts["first"] != artifacts["second"], artifacts
    assert not artifacts["first"].is_relative_to(artifacts["second"])
    assert not artifacts["second"].is_relative_to(artifacts["first"])
    cas = {name: (path / "pki" / "ca.crt").read_text() for name, path in artifacts.items()}
    assert cas["first"] != cas["second"], "the two clusters have the same CA"
    sockets = {name: s["ansible_control_path_dir"] for name, s in found.items()}
    assert None not in sockets.values() and sockets["first"] != sockets["second"], sockets


def test_z_reset_of_the_second_cluster_leaves_the_first_running(
    clusters: dict[str, Inventory], kubectl: Kubectl
) -> None:
    first, second = clusters["first"], clusters["second"]
    before = {i: scenario.services(i) for i in numbers(first)}
    done = runbook.run(
        "second-cluster-reset", ["-i", str(SECOND), "reset.yml", "-e", "skip_confirmation=true"]
    )
    assert done["rc"] == 0, "reset.yml of the second cluster failed: see second-cluster-reset.log"
    touched = set(done["recap"]) & set(first.groups["k8s_cluster"] + first.groups["etcd"])
    assert not touched, f"reset.yml of the second cluster ran on {sorted(touched)}"
    assert set(second.groups["k8s_cluster"]) <= set(done["recap"]), done["recap"]
    after = {i: scenario.services(i) for i in numbers(first)}
    assert after == before, f"the first cluster's services changed: {before} -> {after}"
    wait_nodes_ready(first, kubectl, "the other cluster's reset")
    # (/var/lib/etcd and /var/lib/kubelet are volumes of the lab's nodes: they
    # stay, empty, as on a node never deployed.)
    for i in numbers(second):
        left = scenario.ssh(
            i, "ls -d /etc/kubernetes 2>/dev/null; find /var/lib/etcd /var/lib/kubelet -mindepth 1"
        )
        assert left.stdout.strip() == "", f"node{i} keeps {left.stdout.split()} after reset.yml"
