"""remove-node.yml's request checks (plugins/filter/kubeforge_remove.py)."""

from __future__ import annotations

from typing import Any

import pytest
from kubeforge_remove import kubeforge_host_list, kubeforge_removal_errors

GROUPS = {
    "all": ["cp1", "cp2", "cp3", "w1", "w2", "spare"],
    "kube_control_plane": ["cp1", "cp2", "cp3"],
    "etcd": ["cp1", "cp2", "cp3"],
    "kube_node": ["w1", "w2"],
}
NAMES = {h: h for h in GROUPS["all"]}


def member(name: str) -> dict[str, Any]:
    return {"ID": 1000 + int(name[-1]), "name": name, "clientURLs": [f"https://{name}:2379"]}


MEMBERS = [member("cp1"), member("cp2"), member("cp3")]
ALL_HEALTHY = [m["clientURLs"][0] for m in MEMBERS]


def errors(removed: list[str], healthy: list[str] = ALL_HEALTHY, groups: Any = None) -> list[str]:
    return kubeforge_removal_errors(removed, groups or GROUPS, NAMES, MEMBERS, healthy)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("w1", ["w1"]), ("w1,w2", ["w1", "w2"]), (" w1 , w2 ,", ["w1", "w2"]), ("w1 w1", ["w1"]),
     (["w2", "w1"], ["w2", "w1"]), ("", []), (None, [])],
)  # fmt: skip
def test_host_list_reads_commas_spaces_and_lists(value: Any, expected: list[str]) -> None:
    assert kubeforge_host_list(value) == expected


@pytest.mark.parametrize(
    "removed",
    [["w1"], ["w1", "w2"], ["cp1"], ["cp1", "w2"], ["cp1", "cp2"]],
)
def test_removals_that_keep_a_control_plane_and_quorum_pass(removed: list[str]) -> None:
    assert errors(removed) == []


@pytest.mark.parametrize(
    ("removed", "healthy", "needle"),
    [
        ([], ALL_HEALTHY, "-e node="),
        (["nope"], ALL_HEALTHY, "nope: not a host of the inventory"),
        (["spare"], ALL_HEALTHY, "spare: in none of the groups"),
        (["cp1", "cp2", "cp3"], ALL_HEALTHY, "no control-plane host"),
        # cp3 is down: removing cp1 leaves cp2 and cp3, one answering of the two needed.
        (["cp1"], ALL_HEALTHY[:2], "only 1 answer (unhealthy: cp3)"),
        (["cp1"], [], "fewer than the 2 its quorum needs"),
    ],
)
def test_bad_requests_are_refused_naming_the_host(
    removed: list[str], healthy: list[str], needle: str
) -> None:
    found = errors(removed, healthy)
    assert any(needle in e for e in found), found


def test_removing_the_dead_member_itself_passes() -> None:
    # cp3 is down and is the one being removed: cp1 and cp2 answer, quorum of 2.
    assert errors(["cp3"], ALL_HEALTHY[:2]) == []


def test_the_last_etcd_member_is_refused_even_with_control_planes_left() -> None:
    groups = {**GROUPS, "etcd": ["cp1"]}
    found = kubeforge_removal_errors(["cp1"], groups, NAMES, MEMBERS[:1], ALL_HEALTHY)
    assert any("no etcd member" in e for e in found), found


def test_no_member_list_means_the_quorum_cannot_be_checked() -> None:
    found = kubeforge_removal_errors(["cp1"], GROUPS, NAMES, [], [])
    assert found and "quorum cannot be checked" in found[0]
