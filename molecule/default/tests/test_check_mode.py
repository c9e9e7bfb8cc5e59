"""The check step: `cluster.yml --check --diff` on the converged cluster runs
without a failure and reports nothing to change on any host.

molecule's own `check` action is not used for this: it runs the converge
playbook with --check (no --diff unless --debug) and passes on exit code 0
alone, whatever the run would have changed.
"""

from __future__ import annotations

import subprocess

from clustercheck import REPO, Inventory
from runbook import plain_env, recap


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


def test_check_mode_run_fails_nothing_and_changes_nothing(inventory: Inventory) -> None:
    done = subprocess.run(
        ["ansible-playbook", "-i", str(inventory.path), "cluster.yml", "--check", "--diff"],
        cwd=REPO, env=plain_env(), text=True, capture_output=True, timeout=3000,
    )  # fmt: skip
    output = done.stdout + done.stderr
    tail = output[-6000:]
    assert done.returncode == 0, (
        f"cluster.yml --check --diff failed (rc={done.returncode}):\n{tail}"
    )
    counts_of = recap(output)
    hosts = set(inventory.groups["k8s_cluster"]) | set(inventory.groups["etcd"])
    assert hosts <= set(counts_of), f"no recap line for {sorted(hosts - set(counts_of))}:\n{tail}"
    bad = {
        host: counts
        for host, counts in counts_of.items()
        if counts["changed"] or counts["failed"] or counts["unreachable"]
    }
    assert not bad, (
        f"check mode would change or failed on {sorted(bad)}: {bad}\n"
        "changed tasks:\n  " + "\n  ".join(changed_tasks(output)) + f"\n{tail}"
    )
