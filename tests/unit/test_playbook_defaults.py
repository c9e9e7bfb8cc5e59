"""Every play loads the cluster-wide defaults (role kubeforge_defaults); each
run validates them once, in its opening play.

Validating kubeforge_defaults' argument spec costs 2-3 s per play on the
5-node lab (it templates some 300 variables on every host), and cluster.yml
has nine plays: the plays after the opening load the defaults through
playbooks/tasks/defaults.yml, which skips the validation. These checks keep it
that way and keep the validation where it must stay: a playbook that imports
the opening never loads the defaults unvalidated before it, and one without an
opening validates them itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_render import REPO, inventory, run_playbook_result

PLAYBOOKS = REPO / "playbooks"
LOADER = "tasks/defaults.yml"


def plays(path: Path) -> list[dict[str, Any]]:
    return [entry for entry in yaml.safe_load(path.read_text()) if "hosts" in entry]


def imports(path: Path) -> list[str]:
    return [
        entry["ansible.builtin.import_playbook"]
        for entry in yaml.safe_load(path.read_text())
        if "ansible.builtin.import_playbook" in entry
    ]


def role_names(play: dict[str, Any]) -> list[str]:
    return [r["role"] if isinstance(r, dict) else r for r in play.get("roles") or []]


def loads_unvalidated(play: dict[str, Any]) -> bool:
    return any(t.get("ansible.builtin.import_tasks") == LOADER for t in play.get("pre_tasks") or [])


def opened(path: Path) -> bool:
    """The playbook runs the opening play before its own plays: it imports
    opening.yml first, or it is only ever imported by such playbooks."""
    first = imports(path)[:1]
    if first == ["opening.yml"]:
        return True
    importers = [p for p in PLAYBOOKS.glob("*.yml") if path.name in imports(p)]
    return bool(importers) and all(opened(p) for p in importers)


PLAYBOOK_FILES = sorted(p for p in PLAYBOOKS.glob("*.yml") if plays(p))


def test_the_loader_skips_the_validation_and_loads_the_role() -> None:
    (task,) = yaml.safe_load((PLAYBOOKS / LOADER).read_text())
    assert task["ansible.builtin.import_role"] == {
        "name": "kubeforge_defaults",
        "rolespec_validate": False,
    }


def test_the_opening_play_validates_the_defaults() -> None:
    (play,) = plays(PLAYBOOKS / "opening.yml")
    assert role_names(play)[0] == "kubeforge_defaults"
    assert not loads_unvalidated(play)


@pytest.mark.parametrize("path", PLAYBOOK_FILES, ids=lambda p: p.name)
def test_each_play_loads_the_defaults_once_and_validates_them_only_without_an_opening(
    path: Path,
) -> None:
    if path.name == "opening.yml":
        return
    after_opening = opened(path)
    for play in plays(path):
        roles = role_names(play)
        unvalidated = loads_unvalidated(play)
        where = f"{path.name}, play {play['name']!r}"
        if not roles and not unvalidated:
            continue  # tasks of its own that read no default
        assert ("kubeforge_defaults" in roles) != unvalidated, (
            f"{where}: loads kubeforge_defaults {'twice' if unvalidated else 'not at all'}"
            " (its roles read the defaults)"
        )
        if after_opening:
            assert unvalidated, f"{where}: validates the defaults again after the opening play"
        else:
            assert roles[0] == "kubeforge_defaults", f"{where}: no opening play validates them"


def test_a_bad_default_still_fails_the_opening_before_any_later_play(tmp_path: Path) -> None:
    """cluster.yml with a cluster-wide variable of the wrong type stops in the
    opening play's validation, naming the variable; no later play starts."""
    hosts = {"node1": {"kube_network_plugin": ["flannel"]}}
    groups = {"kube_control_plane": ["node1"], "kube_node": ["node1"], "etcd": ["node1"]}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory(hosts, groups)))
    rc, out = run_playbook_result(tmp_path / "hosts.yml", REPO / "cluster.yml")
    assert rc != 0, out
    assert "Validating arguments against arg spec 'main' - Cluster-wide defaults" in out, out
    assert "kube_network_plugin" in out, out
    started = [line for line in out.splitlines() if line.startswith("PLAY [")]
    assert len(started) == 1, started
    assert started[0].startswith("PLAY [Opening | Validate the inventory and the hosts]"), started
