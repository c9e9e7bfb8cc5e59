"""The upgrade plan (plugins/filter/kubeforge_upgrade.py): versions read from
the hosts, what each host runs after the run, and the moves refused."""

from __future__ import annotations

from typing import Any

import kubeforge_upgrade as up

CP = ["kube_control_plane", "etcd", "k8s_cluster"]
WORKER = ["kube_node", "k8s_cluster"]
TARGETS = {
    "kube_version": "1.37.2",
    "etcd_version": "3.6.8",
    "containerd_version": "2.2.1",
    "runc_version": "1.3.4",
    "crictl_version": "1.36.0",
    "helm_version": "3.22.0",
}


def probe(kube: str) -> str:
    return "\n".join(
        [
            f"kube-apiserver\tKubernetes v{kube}",
            f"kube-controller-manager\tKubernetes v{kube}",
            f"kube-scheduler\tKubernetes v{kube}",
            f"kubectl\tClient Version: v{kube}",
            f"kubelet\tKubernetes v{kube}",
            f"kube-proxy\tKubernetes v{kube}",
            "etcd\tetcd Version: 3.6.8",
            "containerd\tcontainerd github.com/containerd/containerd/v2 v2.2.1 ",
            "runc\trunc version 1.3.4",
            "crictl\tcrictl version 1.36.0",
            "helm\tv3.22.0+g1234",
        ]
    )


def plan(
    versions: dict[str, str], run: list[str] | None = None, **targets: str
) -> list[dict[str, Any]]:
    groups = {h: CP if h.startswith("cp") else WORKER for h in versions}
    current = {h: up.kubeforge_upgrade_versions(probe(v)) if v else {} for h, v in versions.items()}
    return up.kubeforge_upgrade_plan(
        current, {**TARGETS, **targets}, groups, run if run is not None else list(versions)
    )


def test_versions_parsed_from_every_probe_line() -> None:
    got = up.kubeforge_upgrade_versions(probe("1.36.3") + "\nunknown\tv9.9.9\nkubelet-x\t")
    assert got["kubelet"] == "1.36.3"
    assert got["kubectl"] == "1.36.3"
    assert got["etcd"] == "3.6.8"
    assert got["containerd"] == "2.2.1"
    assert got["helm"] == "3.22.0"
    assert "unknown" not in got


def test_missing_binary_reads_as_none() -> None:
    assert up.kubeforge_upgrade_versions("kubelet\t\n") == {"kubelet": None}


def test_one_minor_up_is_planned_and_allowed() -> None:
    rows = plan({"cp1": "1.36.3", "w1": "1.36.3"})
    assert up.kubeforge_upgrade_errors(rows) == []
    assert up.kubeforge_upgrade_hosts(rows) == ["cp1", "w1"]
    apiserver = next(r for r in rows if r["host"] == "cp1" and r["component"] == "kube-apiserver")
    assert (apiserver["current"], apiserver["target"], apiserver["action"]) == (
        "1.36.3",
        "1.37.2",
        "upgrade",
    )
    # Workers run no control-plane component.
    assert not [r for r in rows if r["host"] == "w1" and r["component"] == "kube-apiserver"]


def test_same_version_changes_nothing() -> None:
    rows = plan({"cp1": "1.37.2", "w1": "1.37.2"})
    assert up.kubeforge_upgrade_errors(rows) == []
    assert up.kubeforge_upgrade_hosts(rows) == []
    assert {r["action"] for r in rows} == {"keep"}


def test_downgrade_refused_naming_host_and_variable() -> None:
    errors = up.kubeforge_upgrade_errors(plan({"cp1": "1.37.2"}, kube_version="1.36.3"))
    assert errors
    assert all(e.startswith("cp1: ") and "kube_version=1.36.3" in e for e in errors)
    assert any("downgrade" in e for e in errors)


def test_skipped_minor_refused() -> None:
    errors = up.kubeforge_upgrade_errors(plan({"cp1": "1.35.4", "w1": "1.35.4"}))
    assert any(e.startswith("cp1: kube-apiserver") and "skips minor 1.36" in e for e in errors)
    assert any(e.startswith("w1: kubelet") and "skips minor 1.36" in e for e in errors)


def test_patch_upgrades_and_new_hosts_allowed() -> None:
    rows = plan({"cp1": "1.37.0", "w1": "", "w2": "1.37.2"})
    assert up.kubeforge_upgrade_errors(rows) == []
    new = {r["action"] for r in rows if r["host"] == "w1"}
    assert new == {"install"}


def test_workers_newer_than_control_plane_refused() -> None:
    # --limit w1: the worker would run 1.37 while the control plane stays at 1.36.
    errors = up.kubeforge_upgrade_errors(plan({"cp1": "1.36.3", "w1": "1.36.3"}, run=["w1"]))
    assert any(e.startswith("w1: kubelet would run 1.37") and "cp1" in e for e in errors)


def test_apiservers_more_than_one_minor_apart_refused() -> None:
    errors = up.kubeforge_upgrade_errors(
        plan({"cp1": "1.36.3", "cp2": "1.35.4"}, run=["cp1"], kube_version="1.37.2")
    )
    assert any("apiservers must stay within one minor" in e for e in errors)


def test_control_plane_first_with_limit_allowed() -> None:
    rows = plan({"cp1": "1.36.3", "w1": "1.36.3"}, run=["cp1"])
    assert up.kubeforge_upgrade_errors(rows) == []
    worker = next(r for r in rows if r["host"] == "w1" and r["component"] == "kubelet")
    assert (worker["target"], worker["in_run"]) == ("1.36.3", False)


def test_kubelet_four_minors_behind_refused() -> None:
    rows = plan({"cp1": "1.36.3", "w1": "1.33.0"}, run=["cp1"])
    assert any("more than 3 minors older" in e for e in up.kubeforge_upgrade_errors(rows))


def test_etcd_downgrade_refused() -> None:
    errors = up.kubeforge_upgrade_errors(plan({"cp1": "1.37.2"}, etcd_version="3.5.21"))
    assert errors == [
        "cp1: etcd runs 3.6.8; etcd_version=3.5.21 would downgrade it, which kubeforge does "
        "not do: set etcd_version to 3.6.8 or newer"
    ]


def test_table_has_one_line_per_row() -> None:
    rows = plan({"cp1": "1.36.3", "w1": "1.36.3"}, run=["cp1"])
    table = up.kubeforge_upgrade_table(rows)
    assert len(table) == len(rows) + 1
    assert any("1.36.3 -> 1.37.2" in line and line.startswith("cp1") for line in table)
    assert any("not in this run" in line for line in table)


def test_commands_use_the_bin_dir() -> None:
    cmds = up.kubeforge_upgrade_commands("/opt/bin")
    assert cmds["kubelet"] == "/opt/bin/kubelet --version"
    assert set(cmds) == set(up.COMPONENTS)
