"""remove-node.yml: read the request and refuse what would break the cluster.

    kubeforge_host_list(value) -> list[str]
    kubeforge_removal_errors(removed, groups, member_names, etcd_members, etcd_healthy) -> list[str]

`removed` are inventory host names (from ``-e node=a,b``), `groups` Ansible's
`groups`, `member_names` maps every inventory host to its etcd member name
(etcd_member_name, else its node name), `etcd_members` is ``etcdctl member
list -w json``'s ``members`` (empty when no etcd host is involved) and
`etcd_healthy` the client URLs that answered ``etcdctl endpoint health``. Every
error names the host and what to change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

CLUSTER_GROUPS = ("kube_control_plane", "kube_node", "etcd")


def kubeforge_host_list(value: Any) -> list[str]:
    """``"a, b"``, ``"a b"`` or ``["a", "b"]`` -> ``["a", "b"]`` (order kept, no repeats)."""
    if value is None:
        return []
    items = value.replace(",", " ").split() if isinstance(value, str) else [str(v) for v in value]
    return list(dict.fromkeys(i.strip() for i in items if i.strip()))


def _members(groups: Mapping[str, Sequence[str]], name: str) -> list[str]:
    return list(groups.get(name) or [])


def kubeforge_removal_errors(
    removed: Sequence[str],
    groups: Mapping[str, Sequence[str]],
    member_names: Mapping[str, str],
    etcd_members: Sequence[Mapping[str, Any]],
    etcd_healthy: Sequence[str],
) -> list[str]:
    if not removed:
        return ["no host to remove: name them with -e node=<host>[,<host>...] (inventory names)"]
    errors: list[str] = []
    known = set(_members(groups, "all"))
    in_cluster = {h for g in CLUSTER_GROUPS for h in _members(groups, g)}
    for host in removed:
        if host not in known:
            errors.append(f"{host}: not a host of the inventory (-e node takes inventory names)")
        elif host not in in_cluster:
            groups_list = ", ".join(CLUSTER_GROUPS)
            errors.append(f"{host}: in none of the groups {groups_list}: nothing to remove")
    if errors:
        return errors

    control = _members(groups, "kube_control_plane")
    if control and not [h for h in control if h not in removed]:
        errors.append(
            f"refusing to remove {', '.join(h for h in control if h in removed)}: that would leave"
            " no control-plane host (kube_control_plane); add another one first (cluster.yml)"
        )
    etcd = _members(groups, "etcd")
    leaving = [h for h in etcd if h in removed]
    if leaving and not [h for h in etcd if h not in removed]:
        errors.append(
            f"refusing to remove {', '.join(leaving)}: that would leave no etcd member"
            " (group etcd); add another one first (cluster.yml)"
        )
    elif leaving:
        errors += _quorum_errors(leaving, member_names, etcd_members, etcd_healthy)
    return errors


def _quorum_errors(
    leaving: Sequence[str],
    member_names: Mapping[str, str],
    etcd_members: Sequence[Mapping[str, Any]],
    etcd_healthy: Sequence[str],
) -> list[str]:
    if not etcd_members:
        return [
            "etcd: no member answered `etcdctl member list`; the cluster's quorum cannot be checked"
        ]
    leaving_names = {member_names.get(h, h) for h in leaving}
    remaining = [m for m in etcd_members if m.get("name") not in leaving_names]
    healthy = [m for m in remaining if set(m.get("clientURLs") or []) & set(etcd_healthy)]
    quorum = len(remaining) // 2 + 1
    if len(healthy) >= quorum:
        return []
    sick = sorted(str(m.get("name") or m.get("ID")) for m in remaining if m not in healthy)
    return [
        f"refusing to remove {', '.join(leaving)}: etcd would keep {len(remaining)} member(s) of"
        f" which only {len(healthy)} answer (unhealthy: {', '.join(sick) or 'none'}), fewer than"
        f" the {quorum} its quorum needs; remove the unhealthy members first or bring them back"
    ]


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "kubeforge_host_list": kubeforge_host_list,
            "kubeforge_removal_errors": kubeforge_removal_errors,
        }
