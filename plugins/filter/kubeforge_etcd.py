"""etcd-restore.yml (role etcd, tasks/restore.yml): read the request, and say
what a restore that failed part-way left behind.

    kubeforge_etcd_restore_request_errors(snapshot, confirmation, stat) -> list[str]
    kubeforge_etcd_error(output) -> str
    kubeforge_etcd_restore_asides(moved, hosts) -> list[str]
    kubeforge_etcd_restore_failure(stage, report) -> list[str]

`stat` is ansible.builtin.stat's ``stat`` of the snapshot file on the control
host; `moved` is, per etcd host in `hosts`' order, the registered result of the
task that moved its data aside (it prints ``aside <path>``); `report` holds
snapshot, members, control_plane, data_dir and asides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

CONFIRMATION = "etcd_restore_confirmation"
SNAPSHOT = "etcd_snapshot"
_CONTROL_PLANE = "kube-apiserver, kube-controller-manager and kube-scheduler"
# Stages of tasks/restore.yml, in order; a failure in the first two left etcd's
# data untouched.
STAGES = (
    "checking",
    "stopping",
    "moving",
    "starting etcd",
    "starting the control plane",
    "checking the result",
)
_MAX_ERROR = 300


def kubeforge_etcd_restore_request_errors(
    snapshot: Any, confirmation: Any, stat: Mapping[str, Any] | None
) -> list[str]:
    """What is wrong with the request, one message per variable, naming it."""
    errors = []
    if str(confirmation if confirmation is not None else "").strip().lower() != "yes":
        errors.append(
            f"{CONFIRMATION}: a restore replaces everything the cluster holds with the snapshot "
            f"(whatever was written since is lost) and stops the API meanwhile; say so with "
            f"-e {CONFIRMATION}=yes"
        )
    if not isinstance(snapshot, str) or not snapshot.strip():
        errors.append(
            f"{SNAPSHOT}: name the snapshot file on the control host, "
            f"-e {SNAPSHOT}=inventory/<cluster>/artifacts/etcd-backups/<file>.db"
        )
    elif not stat or not stat.get("exists"):
        errors.append(f"{SNAPSHOT}: {snapshot} does not exist on the control host")
    elif not stat.get("isreg"):
        errors.append(f"{SNAPSHOT}: {snapshot} is not a regular file")
    elif not stat.get("readable", True):
        errors.append(f"{SNAPSHOT}: {snapshot} cannot be read by the user running Ansible")
    elif not stat.get("size"):
        errors.append(f"{SNAPSHOT}: {snapshot} is empty")
    return errors


def kubeforge_etcd_error(output: Any) -> str:
    """The line of etcdctl's or etcdutl's output that says what went wrong:
    its ``Error:`` line, else its first line that is not a log record."""
    lines = [line.strip() for line in str(output or "").splitlines() if line.strip()]
    for line in lines:
        if line.startswith("Error:"):
            return line[len("Error:") :].strip()[:_MAX_ERROR]
    plain = [line for line in lines if not line.startswith("{") and "\tinfo\t" not in line]
    return (plain or lines or ["no output"])[0][:_MAX_ERROR]


def kubeforge_etcd_restore_asides(
    moved: Sequence[Mapping[str, Any] | None], hosts: Sequence[str]
) -> list[str]:
    """``host:path`` of each member's data set aside (a member without data had none)."""
    out = []
    for host, result in zip(hosts, moved, strict=False):
        for line in (result or {}).get("stdout_lines") or []:
            if line.startswith("aside "):
                out.append(f"{host}:{line[len('aside ') :].strip()}")
    return out


def _go_back(report: Mapping[str, Any]) -> str:
    data = report["data_dir"]
    return (
        "To go back to the data from before the restore instead: on every member listed, "
        f"`systemctl stop etcd; rm -rf {data}/member; mv <that directory> {data}/member`, "
        "then run cluster.yml."
    )


def kubeforge_etcd_restore_failure(stage: str, report: Mapping[str, Any]) -> list[str]:
    """The message of a restore that failed at `stage` (one of STAGES): what was
    done, where the data from before is, how to go on or back."""
    members = ", ".join(report["members"])
    control_plane = ", ".join(report["control_plane"])
    asides = list(report.get("asides") or [])
    head = (
        f"etcd restore from {report['snapshot']} stopped while {stage} (the failed task is above)."
    )
    if stage not in STAGES or stage == "checking":
        return [head, "Nothing was changed: the cluster runs as before."]
    if stage == "stopping":
        return [
            head,
            "etcd's data was not touched (the trial restores beside it were removed).",
            f"{_CONTROL_PLANE} may be stopped on {control_plane}, etcd on {members}: "
            "run cluster.yml to start them again, as they were.",
        ]
    kept = "; ".join(asides) if asides else "none was moved yet"
    if stage == "moving":
        return [
            head,
            f"The control plane is stopped on {control_plane} and etcd on {members}.",
            f"The data from before the restore was moved aside on: {kept}; the members listed "
            "there hold the snapshot's data, the others still their own.",
            "To go on: fix the cause and run etcd-restore.yml again (keep the directories above: "
            "the next run sets aside what it finds, the restored data).",
            _go_back(report),
        ]
    done = {
        "starting etcd": f"etcd holds the snapshot's data on {members} but is not healthy yet "
        f"(journalctl -u etcd); the control plane is stopped on {control_plane}.",
        "starting the control plane": f"etcd runs the snapshot's data on {members}; the control "
        f"plane of {control_plane} did not become ready (journalctl -u kube-apiserver).",
        "checking the result": f"etcd runs the snapshot's data on {members} and the control "
        f"plane was started on {control_plane}, but the final check failed.",
    }[stage]
    return [
        head,
        done,
        f"The data from before the restore: {kept}.",
        "Once the cause is fixed, cluster.yml starts whatever is stopped.",
        _go_back(report),
    ]


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "kubeforge_etcd_restore_request_errors": kubeforge_etcd_restore_request_errors,
            "kubeforge_etcd_error": kubeforge_etcd_error,
            "kubeforge_etcd_restore_asides": kubeforge_etcd_restore_asides,
            "kubeforge_etcd_restore_failure": kubeforge_etcd_restore_failure,
        }
