"""The second run, from the inventory contrib/inventory_builder builds: the
lab's hosts given to the builder as `name,address` pairs, over a file holding
the lab inventory's `all: vars:`, with the other host variables added as a
user would (inventory/lab/hosts-builder.yml, beside the lab's group_vars and
artifacts, the same PKI, ignored by git like the other layouts). Its groups
and host variables must be the lab's own. Then:

1. `cluster.yml` from it on the converged cluster changes nothing on any host:
   the scenario's idempotence check (it replaces molecule's `idempotence`
   step, which would run the same playbook from the scenario's inventory), and
   proof that cluster.yml takes the builder's inventory as it is;
2. with `make test-full`, `cluster.yml --check --diff` from it runs without a
   failure and reports nothing to change. molecule's own `check` action is not
   used for this: it runs the converge playbook with --check (no --diff unless
   --debug) and passes on exit code 0 alone, whatever the run would have
   changed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from clustercheck import REPO, Inventory
from runbook import plain_env, recap

BUILDER = REPO / "contrib" / "inventory_builder" / "inventory.py"
BUILT = REPO / "inventory" / "lab" / "hosts-builder.yml"
ADDRESS_VARS = ("ansible_host", "ip")
GROUPS = ("kube_control_plane", "etcd", "kube_node", "k8s_cluster", "calico_rr")


class _Dumper(yaml.SafeDumper):
    """Lists indented under their key, as yamllint (make lint) wants them."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def dump(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, explicit_start=True)


def build(lab: dict[str, Any]) -> Path:
    """The builder's inventory for the lab's hosts, completed as a user would."""
    hosts: dict[str, dict[str, Any]] = lab["all"]["hosts"]
    pairs = [f"{name},{hvars['ansible_host']}" for name, hvars in hosts.items()]
    BUILT.unlink(missing_ok=True)
    BUILT.write_text(dump({"all": {"vars": lab["all"]["vars"]}}))
    done = subprocess.run(
        [sys.executable, str(BUILDER), *pairs],
        env={**plain_env(), "CONFIG_FILE": str(BUILT)},
        cwd=REPO, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, f"the inventory builder failed:\n{done.stdout}{done.stderr}"
    built = yaml.safe_load(BUILT.read_text())
    for host, hvars in hosts.items():
        extra = {k: v for k, v in (hvars or {}).items() if k not in ADDRESS_VARS}
        built["all"]["hosts"][host].update(extra)
    BUILT.write_text(dump(built))
    return BUILT


def listing(path: Path) -> dict[str, Any]:
    done = subprocess.run(
        ["ansible-inventory", "-i", str(path), "--list"],
        cwd=REPO, env=plain_env(), capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def members(data: dict[str, Any], group: str) -> set[str]:
    entry = data.get(group) or {}
    found = set(entry.get("hosts", []))
    for child in entry.get("children", []):
        found |= members(data, child)
    return found


def changed_tasks(output: str) -> list[str]:
    """`[host] task` for every `changed:` line of an ansible-playbook output."""
    found: list[str] = []
    task = ""
    for line in output.splitlines():
        if line.startswith("TASK ["):
            task = line.removeprefix("TASK [").split("]")[0]
        elif line.startswith("changed: ["):
            found.append(f"[{line.removeprefix('changed: [').split(']')[0]}] {task}")
    return found


@pytest.fixture(scope="module")
def built(inventory: Inventory) -> Path:
    path = build(yaml.safe_load(inventory.path.read_text()))
    ours, theirs = listing(path), listing(inventory.path)
    assert {g: members(ours, g) for g in GROUPS} == {g: members(theirs, g) for g in GROUPS}, (
        f"the inventory builder's groups differ from the lab's ({path})"
    )
    assert ours["_meta"]["hostvars"] == theirs["_meta"]["hostvars"]
    return path


def assert_nothing_changed(inventory: Inventory, built: Path, *extra: str) -> None:
    """cluster.yml from the builder's inventory (with `extra` arguments) exits
    0 and reports changed=0, failed=0 and unreachable=0 on every host."""
    done = subprocess.run(
        ["ansible-playbook", "-i", str(built), "cluster.yml", *extra],
        cwd=REPO, env=plain_env(), text=True, capture_output=True, timeout=3000,
    )  # fmt: skip
    output = done.stdout + done.stderr
    tail = output[-6000:]
    what = " ".join(["cluster.yml", *extra])
    assert done.returncode == 0, f"{what} failed (rc={done.returncode}):\n{tail}"
    counts_of = recap(output)
    hosts = set(inventory.groups["k8s_cluster"]) | set(inventory.groups["etcd"])
    assert hosts <= set(counts_of), f"no recap line for {sorted(hosts - set(counts_of))}:\n{tail}"
    bad = {
        host: counts
        for host, counts in counts_of.items()
        if counts["changed"] or counts["failed"] or counts["unreachable"]
    }
    assert not bad, (
        f"{what} changed something or failed on {sorted(bad)}: {bad}\n"
        "changed tasks:\n  " + "\n  ".join(changed_tasks(output)) + f"\n{tail}"
    )


def test_second_run_from_the_builders_inventory_changes_nothing(
    inventory: Inventory, built: Path
) -> None:
    assert_nothing_changed(inventory, built)


@pytest.mark.full("cluster.yml --check --diff with the inventory builder's inventory (about 2 min)")
def test_check_mode_run_fails_nothing_and_changes_nothing(
    inventory: Inventory, built: Path
) -> None:
    assert_nothing_changed(inventory, built, "--check", "--diff")
