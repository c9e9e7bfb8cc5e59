"""cluster-info.yml, the cluster report (docs/operations.md), on the scenario's
cluster (node1-3 control plane and etcd, node4-5 workers):

- on the healthy cluster it changes nothing, and its JSON lists every host
  with the versions the inventory pins and no drift, every node Ready, the
  three etcd members healthy with a leader and a database size, each
  apiserver ready, the certificates soonest first and every add-on ready;
- on a partly broken one (in --check mode, which must change nothing either)
  it still completes and reports what it found: a copy of the inventory gives
  the last worker an address nothing answers at, the kubelet of the first
  worker and the etcd member of the last etcd host are stopped for the run
  (started again afterwards, and waited for).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from clustercheck import ETCDCTL_LOCAL, Inventory, Kubectl, run_ok, wait_for
from runbook import run, runs_dir

# An address of the lab network no host has.
NOWHERE = "10.213.0.99"
# The lab enables every add-on; the network plugin's workloads follow kube_network_plugin.
ADDONS = {"coredns", "dns-autoscaler", "metrics-server", "local-path-provisioner", "traefik"}
NETWORK = {"calico": {"calico-node", "calico-kube-controllers"}, "flannel": {"flannel"}}
# Component -> the setting pinning its version; those with a binary report it themselves.
VERSIONS = {
    "kubelet": "kube_version", "kube-proxy": "kube_version", "kube-apiserver": "kube_version",
    "kube-controller-manager": "kube_version", "kube-scheduler": "kube_version",
    "kubectl": "kube_version", "etcd": "etcd_version", "containerd": "containerd_version",
    "runc": "runc_version", "crictl": "crictl_version", "cni": "cni_version",
    "helm": "helm_version", "calico_crds": "calico_version",
    "gateway_api_crds": "gateway_api_version",
}  # fmt: skip
NO_BINARY = {"calico_crds", "gateway_api_crds"}


def natural(name: str) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def cluster_hosts(inventory: Inventory) -> list[str]:
    return list(dict.fromkeys(inventory.groups["k8s_cluster"] + inventory.groups["etcd"]))


def report_run(name: str, args: list[str], path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run cluster-info.yml; its summary and the report it wrote to `path`."""
    before = path.stat().st_mtime if path.exists() else 0.0
    start = time.monotonic()
    done = run(name, [*args, "cluster-info.yml"])
    print(f"{name}: {time.monotonic() - start:.0f}s")
    assert done["rc"] == 0, f"cluster-info.yml failed (rc={done['rc']}): see {name}.log"
    changed = {h: c for h, c in done["recap"].items() if c["changed"] or c["failed"]}
    assert not changed, f"{name}: hosts changed or failed: {changed}"
    assert path.is_file() and path.stat().st_mtime > before, f"{path} was not written"
    data: dict[str, Any] = json.loads(path.read_text())
    return done, data


@pytest.fixture(scope="module")
def healthy(inventory: Inventory) -> dict[str, Any]:
    path = inventory.path.parent / "artifacts" / "cluster-info.json"
    done, data = report_run("cluster-info", ["-i", str(inventory.path)], path)
    unreachable = {h: c for h, c in done["recap"].items() if c["unreachable"]}
    assert not unreachable, unreachable
    return data


@pytest.fixture(scope="module")
def pins(inventory: Inventory) -> dict[str, dict[str, Any]]:
    """Host -> the version settings as kubeforge resolves them for it."""
    return inventory.settings(*sorted(set(VERSIONS.values())))


@pytest.fixture(scope="module")
def addon_names(inventory: Inventory) -> set[str]:
    first = inventory.groups["kube_control_plane"][0]
    plugin = str(inventory.settings("kube_network_plugin")[first]["kube_network_plugin"])
    assert plugin in NETWORK, f"no expected workloads for kube_network_plugin {plugin}"
    return ADDONS | NETWORK[plugin]


def test_healthy_cluster_report(inventory: Inventory, healthy: dict[str, Any]) -> None:
    assert healthy["problems"] == [], "\n".join(healthy["problems"])
    hosts = {h["host"]: h for h in healthy["hosts"]}
    assert list(hosts) == sorted(cluster_hosts(inventory), key=natural)
    assert all(h["reachable"] and h["read"] for h in hosts.values()), hosts
    log = (runs_dir() / "cluster-info.log").read_text()
    assert '"Problems (0):"' in log and '"  none"' in log, "the printed report says otherwise"


def test_versions_agree_with_the_inventory(
    healthy: dict[str, Any], pins: dict[str, dict[str, Any]]
) -> None:
    assert healthy["drift"] == [], healthy["drift"]
    for h in healthy["hosts"]:
        pinned = pins[h["host"]]
        assert {"kubelet", "containerd", "runc", "crictl", "cni"} <= set(h["components"]) or (
            "k8s_cluster" not in h["groups"]
        ), h
        for name, c in h["components"].items():
            assert name in VERSIONS, f"{h['host']}: {name} is no component kubeforge installs"
            want = str(pinned[VERSIONS[name]]).removeprefix("v")
            assert c["version"] == c["recorded"] == want, f"{h['host']} {name}: {c}"
            if name not in NO_BINARY:
                assert c["binary"] == want, f"{h['host']}: {name} --version says {c['binary']}"


def test_nodes_etcd_apiservers_and_add_ons(
    inventory: Inventory,
    healthy: dict[str, Any],
    pins: dict[str, dict[str, Any]],
    addon_names: set[str],
) -> None:
    kube = pins[inventory.groups["etcd"][0]]
    nodes = {n["name"]: n for n in healthy["nodes"]}
    assert set(nodes) == {h.lower() for h in inventory.groups["k8s_cluster"]}
    for n in nodes.values():
        assert n["ready"] == "True" and n["kubelet_version"] == f"v{kube['kube_version']}", n
    members = healthy["etcd"]["members"]
    assert sorted(m["host"] for m in members) == sorted(inventory.groups["etcd"]), members
    assert all(m["healthy"] and m["db_size"] > 0 for m in members), members
    assert all(m["version"] == kube["etcd_version"] for m in members), members
    assert sum(m["leader"] for m in members) == 1, members
    api = healthy["api"]
    assert api["ha_mode"] == "local_lb" and api["endpoint"] == "https://127.0.0.1:6443", api
    assert sorted(a["host"] for a in api["apiservers"]) == sorted(
        inventory.groups["kube_control_plane"]
    )
    assert all(a["ready"] and a["version"] == f"v{kube['kube_version']}" for a in api["apiservers"])
    addons = {a["name"]: a for a in healthy["addons"]}
    assert set(addons) == addon_names, addons
    assert all(a["state"] == "ready" and a["ready"] == a["desired"] > 0 for a in addons.values())


def test_certificates_soonest_first(inventory: Inventory, healthy: dict[str, Any]) -> None:
    certs = healthy["certificates"]
    assert {c["host"] for c in certs} == set(cluster_hosts(inventory))
    expiry = [c["not_after"] for c in certs]
    assert expiry == sorted(expiry), "not the soonest first"
    assert healthy["certificate_errors"] == []


@pytest.fixture
def broken(inventory: Inventory, kubectl: Kubectl, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The last worker unreachable (in a copy of the inventory), the first
    worker's kubelet and the last etcd host's member stopped; all as before
    afterwards."""
    workers, etcd = inventory.groups["kube_node"], inventory.groups["etcd"]
    assert len(workers) >= 2 and len(etcd) >= 3, "needs two workers and three etcd members"
    roles = {"dead": workers[-1], "no_kubelet": workers[0], "no_etcd": etcd[-1]}
    data = yaml.safe_load(inventory.path.read_text())
    entry = (data.get("all") or {}).get("hosts", {}).get(roles["dead"])
    assert isinstance(entry, dict), f"{inventory.path}: no all.hosts.{roles['dead']} to change"
    entry["ansible_host"] = NOWHERE
    # Beside the original, so that its group_vars apply.
    copy = inventory.path.parent / "hosts-cluster-info-unreachable.yml"
    copy.write_text(yaml.safe_dump(data, sort_keys=False))
    etcd_host, kubelet_host = inventory.host(roles["no_etcd"]), inventory.host(roles["no_kubelet"])
    try:
        # etcd takes longest to stop (it waits for the apiservers' watches to end).
        run_ok(etcd_host, "systemctl stop etcd", "stop etcd")
        run_ok(kubelet_host, "systemctl stop kubelet", "stop kubelet")
        yield {**roles, "inventory": str(copy), "artifacts": str(tmp_path)}
    finally:
        copy.unlink(missing_ok=True)
        etcd_host.run("systemctl start etcd")
        kubelet_host.run("systemctl start kubelet")
        first = inventory.host(etcd[0])

        def etcd_healthy() -> str | None:
            done = first.run(f"{ETCDCTL_LOCAL} endpoint health --cluster")
            return None if done.rc == 0 else done.stdout + done.stderr

        def node_ready() -> str | None:
            rc, out, err = kubectl.try_run(
                "get", "node", roles["no_kubelet"].lower(),
                "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
            )  # fmt: skip
            return None if rc == 0 and out.strip() == "True" else f"{out} {err}"

        wait_for("etcd healthy again", etcd_healthy, 90)
        wait_for(f"node {roles['no_kubelet']} Ready again", node_ready, 90)


def test_partly_broken_cluster_is_reported(
    inventory: Inventory, broken: dict[str, str], addon_names: set[str]
) -> None:
    path = Path(broken["artifacts"]) / "cluster-info.json"
    args = ["-i", broken["inventory"], "--check", "-e", f"artifacts_dir={broken['artifacts']}"]
    done, report = report_run("cluster-info-broken", args, path)
    dead, no_kubelet, no_etcd = broken["dead"], broken["no_kubelet"], broken["no_etcd"]
    assert set(done["recap"]) >= set(cluster_hosts(inventory)), done["recap"]

    hosts = {h["host"]: h for h in report["hosts"]}
    assert set(hosts) == set(cluster_hosts(inventory))
    assert hosts[dead]["reachable"] is False and hosts[dead]["address"] == NOWHERE, hosts[dead]
    assert report["summary"]["unreachable"] == [dead]
    assert any(p.startswith(f"{dead}: unreachable at {NOWHERE}: ") for p in report["problems"])
    others = [h for name, h in hosts.items() if name != dead]
    assert all(h["read"] and h["components"]["kubelet"]["version"] for h in others), others

    assert hosts[no_kubelet]["services"]["kubelet"]["active"] != "active"
    assert f"{no_kubelet}: service kubelet is inactive (dead)" in report["problems"]
    assert f"{no_etcd}: service etcd is inactive (dead)" in report["problems"]
    members = {m["host"]: m for m in report["etcd"]["members"]}
    assert not members[no_etcd]["healthy"] and members[no_etcd]["db_size"] is None, members
    assert all(m["healthy"] for h, m in members.items() if h != no_etcd), members
    assert any(
        p.startswith(f"etcd member {no_etcd} ({no_etcd}): unhealthy") for p in report["problems"]
    )

    # The API and what it knows are still read; the unreachable host is no drift.
    assert report["api"]["error"] is None
    assert {n["name"] for n in report["nodes"]} == {
        h.lower() for h in inventory.groups["k8s_cluster"]
    }
    assert {a["name"] for a in report["addons"]} == addon_names
    assert report["drift"] == [], report["drift"]
    assert {c["host"] for c in report["certificates"]} == set(cluster_hosts(inventory)) - {dead}
    log = (runs_dir() / "cluster-info-broken.log").read_text()
    assert "UNREACHABLE" in log and f"{no_kubelet}: service kubelet is inactive" in log
