"""tests/lab/scenario.py's record of a node's services (the remove scenario's
second cluster must keep running: its record before and after are compared)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import lab
import labconfig as cfg
import pytest
import scenario

SHOW = """Id=kubelet.service
MainPID=4242
ExecMainStartTimestampMonotonic=123456

Id=kube-proxy.service
MainPID=4343
ExecMainStartTimestampMonotonic=123999

Id=kube-apiserver.service
MainPID=0
ExecMainStartTimestampMonotonic=0

Id=etcd.service
MainPID=17
ExecMainStartTimestampMonotonic=99
"""


def fake_ssh(stdout: str, rc: int = 0) -> object:
    calls: list[tuple[int, str]] = []

    def ssh(index: int, command: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        calls.append((index, command))
        return subprocess.CompletedProcess([command], rc, stdout, "no route" if rc else "")

    ssh.calls = calls  # type: ignore[attr-defined]
    return ssh


def test_services_keeps_the_running_units_with_pid_and_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ssh = fake_ssh(SHOW)
    monkeypatch.setattr(scenario, "ssh", ssh)
    assert scenario.services(3) == {
        "kubelet": "4242 123456",
        "kube-proxy": "4343 123999",
        "etcd": "17 99",
    }
    index, command = ssh.calls[0]  # type: ignore[attr-defined]
    assert index == 3
    assert command.startswith("systemctl show -p Id -p MainPID -p ExecMainStartTimestampMonotonic ")
    assert command.split()[-len(scenario.SERVICES) :] == list(scenario.SERVICES)


def test_a_restarted_service_reads_differently(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scenario, "ssh", fake_ssh(SHOW))
    before = scenario.services(1)
    monkeypatch.setattr(scenario, "ssh", fake_ssh(SHOW.replace("MainPID=4242", "MainPID=5000")))
    assert scenario.services(1) != before


def test_an_unreachable_node_stops_the_record(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scenario, "ssh", fake_ssh("", rc=255))
    with pytest.raises(SystemExit, match="systemctl show on node2: no route"):
        scenario.services(2)


def test_record_services_writes_each_node(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(scenario, "ssh", fake_ssh(SHOW))
    out = tmp_path / "record.json"
    assert scenario.main(["record-services", "1,6", str(out)]) == 0
    data = json.loads(out.read_text())
    assert set(data) == {"node1", "node6"}
    assert data["node6"]["kubelet"] == "4242 123456"


def test_refresh_recreates_the_nodes_and_keeps_the_inventory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The inventory ensure-cluster deploys is the caller's (written with
    `make conformance LAB_ARGS=...` variables, say): recreating its nodes must
    not rewrite it."""
    removed: list[str] = []
    calls: list[tuple[int, dict[str, object]]] = []
    monkeypatch.setattr(lab, "remove_node", removed.append)
    monkeypatch.setattr(lab, "container_running", lambda name: name != "kf-node7")
    monkeypatch.setattr(lab, "container_name", lambda i: f"kf-node{i}")
    monkeypatch.setattr(lab, "up", lambda n, **kw: calls.append((n, kw)))
    monkeypatch.setattr(cfg, "MAX_NODES", 8)
    scenario.refresh([2, 3])
    assert removed == ["kf-node2", "kf-node3"]
    assert calls == [(8, {"inventory": False})]
