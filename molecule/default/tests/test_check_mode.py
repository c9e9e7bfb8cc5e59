"""The check step: `cluster.yml --check --diff` on the converged cluster runs
without a failure and reports nothing to change on any host.

molecule's own `check` action is not used for this: it runs the converge
playbook with --check (no --diff unless --debug) and passes on exit code 0
alone, whatever the run would have changed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from clustercheck import REPO, Inventory

RECAP = re.compile(r"^(\S+)\s+: (ok=\d+.*)$", re.M)


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
    venv_bin = Path(sys.executable).parent
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    done = subprocess.run(
        ["ansible-playbook", "-i", str(inventory.path), "cluster.yml", "--check", "--diff"],
        cwd=REPO, env=env, text=True, capture_output=True, timeout=3000,
    )  # fmt: skip
    output = done.stdout + done.stderr
    tail = output[-6000:]
    assert done.returncode == 0, (
        f"cluster.yml --check --diff failed (rc={done.returncode}):\n{tail}"
    )
    recap = {
        m[1]: {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m[2])}
        for m in RECAP.finditer(output)
    }
    hosts = set(inventory.groups["k8s_cluster"]) | set(inventory.groups["etcd"])
    assert hosts <= set(recap), f"no recap line for {sorted(hosts - set(recap))}:\n{tail}"
    bad = {
        host: counts
        for host, counts in recap.items()
        if counts["changed"] or counts["failed"] or counts["unreachable"]
    }
    assert not bad, (
        f"check mode would change or failed on {sorted(bad)}: {bad}\n"
        "changed tasks:\n  " + "\n  ".join(changed_tasks(output)) + f"\n{tail}"
    )
