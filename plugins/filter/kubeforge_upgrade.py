"""The plan of upgrade-cluster.yml (role `upgrade`): what each host runs now,
what it will run, and whether the move is allowed.

The role runs one read-only probe on every host, printing one line per
component: the component's name, a tab, and the first line of its
``--version`` output (nothing after the tab when the binary is missing)::

    kubelet\tKubernetes v1.36.3
    etcd\tetcd Version: 3.6.8

    kubeforge_upgrade_versions(probe_stdout) -> {component: version or None}
    kubeforge_upgrade_plan(current, targets, host_groups, run_hosts) -> [row]
    kubeforge_upgrade_errors(plan) -> [message]
    kubeforge_upgrade_table(plan) -> str

`current` maps each host to its parsed versions, `targets` maps each
variable (kube_version, etcd_version, ...) to the version this run installs,
`host_groups` maps each host to its groups, `run_hosts` are the hosts this run
changes (the others keep what they run, e.g. outside --limit).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# Component -> (the variable setting its version, the groups whose hosts run it,
# the command printing its version). Mirrors the download role's manifest.
COMPONENTS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "kube-apiserver": ("kube_version", ("kube_control_plane",), "kube-apiserver --version"),
    "kube-controller-manager": (
        "kube_version",
        ("kube_control_plane",),
        "kube-controller-manager --version",
    ),
    "kube-scheduler": ("kube_version", ("kube_control_plane",), "kube-scheduler --version"),
    "kubectl": ("kube_version", ("kube_control_plane",), "kubectl version --client"),
    "kubelet": ("kube_version", ("k8s_cluster",), "kubelet --version"),
    "kube-proxy": ("kube_version", ("k8s_cluster",), "kube-proxy --version"),
    "etcd": ("etcd_version", ("etcd", "kube_control_plane"), "etcd --version"),
    "containerd": ("containerd_version", ("k8s_cluster",), "containerd --version"),
    "runc": ("runc_version", ("k8s_cluster",), "runc --version"),
    "crictl": ("crictl_version", ("k8s_cluster",), "crictl --version"),
    "helm": ("helm_version", ("kube_control_plane",), "helm version --short"),
}
# Components whose minor may only move one step per upgrade.
ONE_MINOR_AT_A_TIME = {"kube_version", "etcd_version"}
_VERSION = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")

Version = tuple[int, int, int]


def parse_version(text: Any) -> Version | None:
    match = _VERSION.search(str(text or ""))
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def show(version: Version | None) -> str:
    return "-" if version is None else ".".join(map(str, version))


def kubeforge_upgrade_commands(bin_dir: str) -> dict[str, str]:
    """The probe's command for each component, binaries under `bin_dir`."""
    return {name: f"{bin_dir}/{cmd}" for name, (_, _, cmd) in COMPONENTS.items()}


def kubeforge_upgrade_versions(probe_stdout: str) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for line in str(probe_stdout).splitlines():
        name, _, text = line.partition("\t")
        if name in COMPONENTS:
            version = parse_version(text)
            out[name] = show(version) if version else None
    return out


def _runs(groups: Iterable[str], component: str) -> bool:
    return bool(set(groups) & set(COMPONENTS[component][1]))


def kubeforge_upgrade_plan(
    current: Mapping[str, Mapping[str, Any]],
    targets: Mapping[str, Any],
    host_groups: Mapping[str, Sequence[str]],
    run_hosts: Sequence[str],
) -> list[dict[str, Any]]:
    """One row per host and component the host runs: host, component, variable,
    current, target (what it runs after this run), action (keep, upgrade,
    install, downgrade)."""
    rows: list[dict[str, Any]] = []
    for host in sorted(host_groups, key=lambda h: (h not in run_hosts, h)):
        groups = host_groups[host]
        for component, (variable, _, _) in COMPONENTS.items():
            if not _runs(groups, component):
                continue
            now = parse_version(current.get(host, {}).get(component))
            wanted = parse_version(targets.get(variable))
            after = wanted if host in run_hosts else now
            if after == now:
                action = "keep"
            elif now is None:
                action = "install"
            elif after is not None and after < now:
                action = "downgrade"
            else:
                action = "upgrade"
            rows.append(
                {
                    "host": host,
                    "component": component,
                    "variable": variable,
                    "current": show(now),
                    "target": show(after),
                    "action": action,
                    "in_run": host in run_hosts,
                }
            )
    return rows


def _minor(version: str) -> tuple[int, int] | None:
    parsed = parse_version(version)
    return None if parsed is None else parsed[:2]


def _step_errors(row: Mapping[str, Any]) -> list[str]:
    now, after = parse_version(row["current"]), parse_version(row["target"])
    if now is None or after is None or not row["in_run"]:
        return []
    host, comp, var = row["host"], row["component"], row["variable"]
    if row["action"] == "downgrade":
        return [
            f"{host}: {comp} runs {row['current']}; {var}={row['target']} would downgrade it, "
            f"which kubeforge does not do: set {var} to {row['current']} or newer"
        ]
    if var in ONE_MINOR_AT_A_TIME and after[:2] > (now[0], now[1] + 1):
        step = f"{now[0]}.{now[1] + 1}"
        return [
            f"{host}: {comp} runs {row['current']}; {var}={row['target']} skips minor {step}: "
            f"upgrade one minor at a time (set {var} to the newest {step}.x first)"
        ]
    return []


def _skew_errors(plan: Sequence[Mapping[str, Any]]) -> list[str]:
    """Kubernetes' version skew policy, on the versions after the run."""
    after: dict[str, list[tuple[tuple[int, int], str]]] = {}
    for row in plan:
        minor = _minor(row["target"])
        if minor is not None and row["variable"] == "kube_version":
            after.setdefault(row["component"], []).append((minor, row["host"]))
    apiservers = after.get("kube-apiserver", [])
    if not apiservers:
        return []
    errors: list[str] = []
    oldest, oldest_host = min(apiservers)
    newest, newest_host = max(apiservers)

    def name(minor: tuple[int, int]) -> str:
        return f"{minor[0]}.{minor[1]}"

    if newest[1] - oldest[1] > 1 or newest[0] != oldest[0]:
        errors.append(
            f"{newest_host}: kube-apiserver would run {name(newest)} while {oldest_host} runs "
            f"{name(oldest)}: apiservers must stay within one minor of each other "
            "(upgrade every control-plane host, not a --limit of them)"
        )
    for component, rows in after.items():
        for minor, host in rows:
            if component in ("kube-controller-manager", "kube-scheduler"):
                if minor > oldest:
                    errors.append(
                        f"{host}: {component} would run {name(minor)}, newer than kube-apiserver "
                        f"{name(oldest)} on {oldest_host}: upgrade the control plane first"
                    )
            elif component in ("kubelet", "kube-proxy"):
                if minor > oldest:
                    errors.append(
                        f"{host}: {component} would run {name(minor)}, newer than kube-apiserver "
                        f"{name(oldest)} on {oldest_host}: control-plane hosts must not end up "
                        "older than the nodes (upgrade the control plane first; check --limit)"
                    )
                elif newest[0] == minor[0] and newest[1] - minor[1] > 3:
                    errors.append(
                        f"{host}: {component} would run {name(minor)}, more than 3 minors older "
                        f"than kube-apiserver {name(newest)}: upgrade {host} too"
                    )
    return errors


def kubeforge_upgrade_errors(plan: Sequence[Mapping[str, Any]]) -> list[str]:
    errors = [e for row in plan for e in _step_errors(row)]
    return errors + _skew_errors(plan)


def kubeforge_upgrade_hosts(plan: Sequence[Mapping[str, Any]]) -> list[str]:
    """Hosts of the run with at least one component to change."""
    return sorted({r["host"] for r in plan if r["in_run"] and r["action"] != "keep"})


def kubeforge_upgrade_table(plan: Sequence[Mapping[str, Any]]) -> list[str]:
    width = max([len(r["host"]) for r in plan] + [4])
    lines = [f"{'host':<{width}}  {'component':<24} {'current':>8} -> {'target':<8} action"]
    for r in plan:
        action = r["action"] if r["in_run"] else "keep (not in this run)"
        lines.append(
            f"{r['host']:<{width}}  {r['component']:<24} {r['current']:>8} -> "
            f"{r['target']:<8} {action}"
        )
    return lines


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "kubeforge_upgrade_commands": kubeforge_upgrade_commands,
            "kubeforge_upgrade_versions": kubeforge_upgrade_versions,
            "kubeforge_upgrade_plan": kubeforge_upgrade_plan,
            "kubeforge_upgrade_errors": kubeforge_upgrade_errors,
            "kubeforge_upgrade_hosts": kubeforge_upgrade_hosts,
            "kubeforge_upgrade_table": kubeforge_upgrade_table,
        }
