"""After converge (upgrade-cluster.yml from the previous minor; in make
test-full interrupted and run again): every component runs the new version,
no node is left cordoned, the probes prepare started never failed, etcd was
snapshotted, a downgrade is refused before anything changes and (make
test-full) a second run changes nothing.

By hand: pytest --ansible-inventory=<inventory> molecule/upgrade/tests/
"""

from __future__ import annotations

import json
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from clustercheck import Inventory, Kubectl, probe_log_counts, run_ok
from runbook import plain_env, recap

REPO = Path(__file__).resolve().parents[3]
VERSIONS = yaml.safe_load(
    (REPO / "roles/kubeforge_defaults/defaults/main/versions.yml").read_text()
)
TARGET = str(VERSIONS["kube_version"])
PREVIOUS = str(VERSIONS["kube_supported_versions"][1])
PROBE_DIR = "/var/log/kubeforge-upgrade-probe"
ANNOTATION = "kubeforge.io/cordoned-by"
BIN = "/usr/local/bin"
KUBE_SERVICES = {
    "kube_control_plane": ["kube-apiserver", "kube-controller-manager", "kube-scheduler"],
    "k8s_cluster": ["kubelet", "kube-proxy"],
}


def cluster_hosts(inventory: Inventory) -> list[str]:
    return list(dict.fromkeys(inventory.groups["k8s_cluster"] + inventory.groups["etcd"]))


def playbook(inventory: Inventory, *args: str) -> tuple[int, str]:
    done = subprocess.run(
        ["ansible-playbook", "-i", str(inventory.path), "upgrade-cluster.yml", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        env=plain_env(),
    )
    return done.returncode, done.stdout + done.stderr


def test_binaries_and_running_services_at_the_new_version(inventory: Inventory) -> None:
    wrong: list[str] = []
    for name in inventory.groups["k8s_cluster"]:
        host = inventory.host(name)
        services = list(KUBE_SERVICES["k8s_cluster"])
        if name in inventory.groups["kube_control_plane"]:
            services += KUBE_SERVICES["kube_control_plane"]
        for service in services:
            out = run_ok(host, f"{BIN}/{service} --version", "version")
            if f"v{TARGET}" not in out:
                wrong.append(f"{name}: {service} on disk is {out.strip()}")
            # The running process started after its binary last changed.
            started = run_ok(
                host,
                f'date -d "$(systemctl show -p ExecMainStartTimestamp --value {service})" +%s',
                "start time",
            )
            changed = run_ok(host, f"stat -c %Z {BIN}/{service}", "binary change time")
            if int(started) < int(changed):
                wrong.append(f"{name}: {service} runs a binary older than {BIN}/{service}")
    assert not wrong, f"not at {TARGET}:\n" + "\n".join(wrong)


def test_apiservers_and_kubelets_report_the_new_version(
    inventory: Inventory, kubectl: Kubectl
) -> None:
    for name in inventory.groups["kube_control_plane"]:
        server = f"https://{inventory.address(name)}:6443"
        version = json.loads(kubectl("--server", server, "get", "--raw", "/version"))
        assert version["gitVersion"] == f"v{TARGET}", f"kube-apiserver on {name}: {version}"
    nodes = kubectl.json("get", "nodes")["items"]
    reported = {n["metadata"]["name"]: n["status"]["nodeInfo"]["kubeletVersion"] for n in nodes}
    assert len(reported) == len(inventory.groups["k8s_cluster"]), reported
    assert set(reported.values()) == {f"v{TARGET}"}, reported


def test_kube_proxy_runs_the_new_version(inventory: Inventory) -> None:
    for name in inventory.groups["k8s_cluster"]:
        metrics = run_ok(
            inventory.host(name),
            'python3 -c "import urllib.request as u; '
            "print(u.urlopen('http://127.0.0.1:10249/metrics').read().decode())\" "
            "| grep '^kubernetes_build_info'",
            "kube-proxy metrics",
        )
        assert f'git_version="v{TARGET}"' in metrics, f"{name}: {metrics}"


def test_no_node_left_cordoned(kubectl: Kubectl) -> None:
    for node in kubectl.json("get", "nodes")["items"]:
        name = node["metadata"]["name"]
        assert not node["spec"].get("unschedulable"), f"{name} is still cordoned"
        assert ANNOTATION not in node["metadata"].get("annotations", {}), (
            f"{name} still carries {ANNOTATION}"
        )
        ready = [c["status"] for c in node["status"]["conditions"] if c["type"] == "Ready"]
        assert ready == ["True"], f"{name} is not Ready: {ready}"


def probe_counts(inventory: Inventory, file: str) -> dict[str, tuple[int, int, list[str]]]:
    """Per node: probes made, failures, failure lines; the probe must still run."""
    counts: dict[str, tuple[int, int, list[str]]] = {}
    for name in inventory.groups["k8s_cluster"]:
        host = inventory.host(name)
        path = f"{PROBE_DIR}/{file}"
        if not host.file(path).exists:
            pytest.fail(f"{name}: {path} is missing: the prepare step did not start the probes")
        counts[name] = probe_log_counts(f"{name}: {path}", host.file(path).content_string)
    return counts


def timings(inventory: Inventory) -> dict[str, dict[str, Any]]:
    path = inventory.path.parent / "artifacts" / "upgrade" / "timings.json"
    if not path.is_file():
        pytest.fail(f"{path} is missing: converge (molecule/upgrade/converge.yml) did not run")
    data: dict[str, dict[str, Any]] = json.loads(path.read_text())
    return data


def runs(inventory: Inventory) -> list[dict[str, Any]]:
    """The upgrade's runs, in order: the interrupted one (make test-full) and
    the one that finished."""
    data = timings(inventory)
    return [data[key] for key in ("interrupted", "rerun") if key in data]


def test_the_finished_run_went_through_every_host(inventory: Inventory) -> None:
    data = timings(inventory)
    assert data["rerun"]["rc"] == 0, data
    # Every host's batch ran, and its timings were read.
    hosts = {batch["host"] for batch in data["rerun"]["batches"]}
    assert hosts == set(cluster_hosts(inventory)), data
    print(json.dumps(data, indent=2))


@pytest.mark.full("the upgrade interrupted by Ctrl-C, then run again (about 3 min)")
def test_interrupted_run_then_rerun_finished(inventory: Inventory) -> None:
    data = timings(inventory)
    assert "interrupted" in data, f"the upgrade was not interrupted: {data}"
    assert data["interrupted"]["interrupted"], data
    assert data["interrupted"]["rc"] != 0, data


@pytest.mark.parametrize("file", ["web.log", "api.log"])
def test_probes_never_failed(inventory: Inventory, file: str) -> None:
    # The probes ran through the whole upgrade: at 2 a second at least as many
    # as converge's runs lasted.
    seconds = sum(float(r["seconds"]) for r in runs(inventory))
    counts = probe_counts(inventory, file)
    print(
        f"{file}: " + ", ".join(f"{n}: {m} probes, {f} failed" for n, (m, f, _) in counts.items())
    )
    short = {n: m for n, (m, _, _) in counts.items() if m < seconds}
    assert not short, f"{file}: fewer probes than the upgrade's {seconds:.0f}s: {short}"
    failed = {n: (f, lines) for n, (_, f, lines) in counts.items() if f}
    assert not failed, f"{file}: failed probes during the upgrade: {failed}"


def test_prober_pods_never_restarted(inventory: Inventory, kubectl: Kubectl) -> None:
    # Since the upgrade began (a start-up hiccup before it is not the upgrade's).
    began = float(runs(inventory)[0]["started"])
    pods = kubectl.json("-n", "kubeforge-upgrade", "get", "pods")["items"]
    probers = [p for p in pods if p["metadata"]["labels"].get("app") == "prober"]
    assert probers, "no prober pods in namespace kubeforge-upgrade: prepare did not run"
    assert len(probers) == len(inventory.groups["k8s_cluster"]), probers
    restarted = {}
    for pod in probers:
        # A pod without a container status (pending, evicted) does not probe either.
        statuses = pod["status"].get("containerStatuses") or [{"state": {}}]
        for status in statuses:
            started = status.get("state", {}).get("running", {}).get("startedAt")
            at = (
                datetime.fromisoformat(started.replace("Z", "+00:00")).timestamp() if started else 0
            )
            if not started or at >= began:
                restarted[pod["metadata"]["name"]] = status["state"] or pod["status"].get("phase")
    assert not restarted, f"prober pods (re)started during the upgrade: {restarted}"


def test_load_balancer_pods_ran_through_the_upgrade(inventory: Inventory) -> None:
    # A kubelet of the new minor keeps the load balancer's static pod (its
    # manifest gives the UID): no restart cuts the connections through it.
    replaced = {}
    for name in inventory.groups["k8s_cluster"]:
        host = inventory.host(name)
        path = f"{PROBE_DIR}/lb-pods"
        if not host.file(path).exists:
            pytest.fail(f"{name}: {path} is missing: the prepare step did not record the pod")
        before = host.file(path).content_string.split()
        now = run_ok(
            host, f"{BIN}/crictl pods --name apiserver-lb --state ready -q", "load balancer pods"
        ).split()
        assert len(before) == 1, f"{name}: load balancer pods before the upgrade: {before}"
        if now != before:
            replaced[name] = {"before": before, "after": now}
    assert not replaced, f"the load balancer's pod was replaced during the upgrade: {replaced}"


def test_etcd_snapshot_saved(inventory: Inventory) -> None:
    host = inventory.host(inventory.groups["etcd"][0])
    out = run_ok(host, f"ls -1 /var/backups/kubeforge/etcd-{PREVIOUS}-*.db", "snapshots")
    newest = out.split()[-1]
    assert host.file(newest).size > 0, newest
    assert host.file(newest).mode == 0o600 or host.file("/var/backups/kubeforge").mode == 0o700


@pytest.mark.full("a second upgrade-cluster.yml run, which must change nothing (about 3 min)")
def test_second_run_changes_nothing(inventory: Inventory) -> None:
    rc, output = playbook(inventory)
    hosts = recap(output)
    assert rc == 0, output[-3000:]
    assert set(cluster_hosts(inventory)) <= set(hosts), hosts
    changed = {h: r for h, r in hosts.items() if r.get("changed") or r.get("failed")}
    assert not changed, f"a second upgrade-cluster.yml run changed something: {changed}"
    assert "Drain node" not in output.replace("skipping", ""), "a node at the target was drained"


def test_downgrade_refused_before_any_change(inventory: Inventory) -> None:
    rc, output = playbook(inventory, "-e", f"kube_version={PREVIOUS}")
    assert rc != 0, "upgrade-cluster.yml accepted a downgrade"
    assert "Upgrade plan refused, nothing was changed" in output, output[-3000:]
    first = inventory.groups["kube_control_plane"][0]
    assert f"{first}: kube-apiserver runs {TARGET}; kube_version={PREVIOUS}" in output
    changed = {h: r for h, r in recap(output).items() if r.get("changed")}
    assert not changed, f"the refused run changed something: {changed}"
