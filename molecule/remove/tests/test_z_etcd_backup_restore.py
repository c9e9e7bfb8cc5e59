"""Runs last in the `remove` scenario (file order), on the cluster remove-node.yml
left (two etcd members): the scheduled snapshot timer works on every etcd
host; then a namespace and a ConfigMap are snapshotted by etcd-backup.yml,
deleted, and brought back by etcd-restore.yml, which refuses to run (changing
nothing) without its confirmation. docs/operations.md, "etcd backup and
restore"."""

from __future__ import annotations

import json
import re
import shlex
import stat
import time
from pathlib import Path
from typing import Any

from clustercheck import (
    ETCDCTL_LOCAL,
    Inventory,
    Kubectl,
    node_conditions,
    run_ok,
    wait_for,
)
from runbook import run, runs_dir

BACKUP_DIR = "/var/backups/kubeforge"
ETCDUTL = "/usr/local/bin/etcdutl"
NAMESPACE = "kubeforge-restore-check"
CONFIGMAP = "kept"
DATA = {"written": "before the snapshot"}
SNAPSHOT_LINE = re.compile(r"etcd snapshot of member \S+ \(\S+\): (\S+\.db)")
RESTORE_TIMES = re.compile(r"(\d+) s in all, the API down for (\d+) s")


def scheduled_snapshots(host: Any) -> list[str]:
    out = run_ok(host, f"ls -1 {BACKUP_DIR} 2>/dev/null | grep '^etcd-snapshot-' || true", "ls")
    return sorted(out.split())


def playbook(inventory: Inventory, name: str, *args: str) -> dict[str, Any]:
    return run(name, ["-i", str(inventory.path), *args])


def changed_hosts(done: dict[str, Any]) -> dict[str, int]:
    return {h: r["changed"] for h, r in done["recap"].items() if r["changed"]}


def test_the_timer_takes_a_private_valid_snapshot_on_every_etcd_host(
    inventory: Inventory,
) -> None:
    for name in inventory.groups["etcd"]:
        host = inventory.host(name)
        timer = run_ok(host, "systemctl is-enabled etcd-backup.timer; "
                             "systemctl is-active etcd-backup.timer || true", "timer")  # fmt: skip
        assert timer.split() == ["enabled", "active"], (
            f"{name}: etcd-backup.timer is {timer.split()}"
        )
        before = scheduled_snapshots(host)
        # A oneshot service: start returns once the snapshot is written.
        run_ok(host, "systemctl start etcd-backup.service", "a scheduled snapshot now")
        new = sorted(set(scheduled_snapshots(host)) - set(before))
        assert len(new) == 1, f"{name}: the service made {new}, not one snapshot"
        path = f"{BACKUP_DIR}/{new[0]}"
        snapshot, directory = host.file(path), host.file(BACKUP_DIR)
        assert (snapshot.mode, snapshot.user, snapshot.group) == (0o600, "root", "root"), (
            f"{name}:{path} is {oct(snapshot.mode)} {snapshot.user}:{snapshot.group}"
        )
        assert (directory.mode, directory.user) == (0o700, "root"), f"{name}:{BACKUP_DIR}"
        status = json.loads(
            run_ok(host, f"{ETCDUTL} snapshot status {shlex.quote(path)} -w json", "status")
        )
        assert status["totalKey"] > 0, f"{name}:{path}: {status}"


def namespace_gone(kubectl: Kubectl) -> str | None:
    rc, out, err = kubectl.try_run(
        "get", "namespace", NAMESPACE, "--ignore-not-found", "-o", "name"
    )
    return None if rc == 0 and not out.strip() else f"rc={rc} {out.strip()} {err.strip()}"


def restored_configmap(kubectl: Kubectl) -> str | None:
    rc, out, err = kubectl.try_run("get", "configmap", CONFIGMAP, "-n", NAMESPACE, "-o", "json")
    if rc != 0:
        return f"rc={rc} {err.strip()}"
    data = json.loads(out).get("data")
    return None if data == DATA else f"data {data}"


def all_ready(kubectl: Kubectl, nodes: list[str]) -> str | None:
    found = node_conditions(kubectl)
    if sorted(found) != sorted(nodes):
        return f"nodes {sorted(found)}, not {sorted(nodes)}"
    not_ready = {n: v["ready"] for n, v in found.items() if v["ready"] != "True"}
    return f"not Ready: {not_ready}" if not_ready else None


def etcd_problems(inventory: Inventory) -> list[str]:
    members = inventory.groups["etcd"]
    problems = []
    for name in members:
        host = inventory.host(name)
        listed = json.loads(run_ok(host, f"{ETCDCTL_LOCAL} member list -w json", "member list"))
        names = sorted(m.get("name", "") for m in listed["members"])
        if names != sorted(members):
            problems.append(f"{name}: members {names}")
        health = json.loads(
            run_ok(host, f"{ETCDCTL_LOCAL} endpoint health --cluster -w json", "health")
        )
        if len(health) != len(members) or not all(h["health"] for h in health):
            problems.append(f"{name}: {health}")
    return problems


def test_restore_brings_back_what_the_snapshot_holds(
    inventory: Inventory, kubectl: Kubectl
) -> None:
    kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=true")
    kubectl("create", "namespace", NAMESPACE)
    kubectl("create", "configmap", CONFIGMAP, "-n", NAMESPACE,
            *(f"--from-literal={k}={v}" for k, v in DATA.items()))  # fmt: skip
    snapshot: Path | None = None
    try:
        backup = playbook(inventory, "etcd-backup", "etcd-backup.yml")
        assert backup["rc"] == 0, "etcd-backup.yml failed: see etcd-backup.log"
        found = SNAPSHOT_LINE.findall((runs_dir() / "etcd-backup.log").read_text())
        assert len(found) == 1, f"etcd-backup.yml named {found}, not one snapshot"
        snapshot = Path(found[0])
        assert snapshot.is_file(), f"{snapshot} is not on the control host"
        assert stat.S_IMODE(snapshot.stat().st_mode) == 0o600, oct(snapshot.stat().st_mode)
        wanted = inventory.path.resolve().parent / "artifacts" / "etcd-backups"
        assert snapshot.resolve().parent == wanted, f"{snapshot} is not in {wanted}"

        kubectl("delete", "namespace", NAMESPACE, "--wait=false")
        wait_for(f"namespace {NAMESPACE} to be deleted", lambda: namespace_gone(kubectl), 180)

        refused = playbook(inventory, "etcd-restore-unconfirmed", "etcd-restore.yml",
                           "-e", f"etcd_snapshot={snapshot}")  # fmt: skip
        assert refused["rc"] != 0, "etcd-restore.yml ran without etcd_restore_confirmation"
        assert changed_hosts(refused) == {}, f"the refused restore changed {refused['recap']}"
        log = (runs_dir() / "etcd-restore-unconfirmed.log").read_text()
        assert "etcd_restore_confirmation" in log, "the refusal does not name the variable"
        assert namespace_gone(kubectl) is None, "the refused restore brought the namespace back"

        start = time.monotonic()
        restored = playbook(inventory, "etcd-restore", "etcd-restore.yml",
                            "-e", f"etcd_snapshot={snapshot}",
                            "-e", "etcd_restore_confirmation=yes")  # fmt: skip
        assert restored["rc"] == 0, "etcd-restore.yml failed: see etcd-restore.log"
        wait_for("the ConfigMap to be back", lambda: restored_configmap(kubectl), 60)
        nodes = inventory.groups["k8s_cluster"]
        wait_for("every node to be Ready", lambda: all_ready(kubectl, nodes), 180)
        ready = time.monotonic() - start
        assert etcd_problems(inventory) == []
        times = RESTORE_TIMES.findall((runs_dir() / "etcd-restore.log").read_text())
        assert len(times) == 1, "etcd-restore.yml did not report its times"
        total, down = times[0]
        print(
            f"etcd-restore.yml: {restored['seconds']:.0f}s (its own count: {total} s, the API "
            f"down {down} s); restored data and every node Ready {ready:.0f}s after it started"
        )
    finally:
        kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=false")
        if snapshot is not None:
            snapshot.unlink(missing_ok=True)
