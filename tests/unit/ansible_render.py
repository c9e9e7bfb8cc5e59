"""ansible-playbook for the unit tests: the roles' variables and templates as
Ansible renders them on node1 of a throwaway inventory of local hosts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
HOST = "node1"  # the host render() renders on


def ansible_bin(name: str) -> str:
    """An Ansible command: the one beside this Python (the venv's), else on PATH."""
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.is_file() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} not found: run `make setup` and the tests with its pytest")
    return found


def host_vars(inventory: Path, host: str) -> dict[str, Any]:
    """`ansible-inventory --host` of `host`, with the repository's ansible.cfg."""
    shown = subprocess.run(
        [ansible_bin("ansible-inventory"), "-i", str(inventory), "--host", host],
        cwd=REPO, env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")},
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout  # fmt: skip
    data: dict[str, Any] = json.loads(shown)
    return data


def run_playbook_result(
    inventory: Path, play: Path, *args: str, env: Mapping[str, str] | None = None
) -> tuple[int, str]:
    """ansible-playbook's exit code and output (stdout, then stderr), run with
    the repository's ansible.cfg."""
    run = subprocess.run(
        [ansible_bin("ansible-playbook"), "-i", str(inventory), str(play), *args],
        cwd=REPO,
        env={
            **os.environ,
            "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
            "ANSIBLE_NOCOLOR": "1",
            **(env or {}),
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    return run.returncode, f"{run.stdout}\n{run.stderr}"


def run_playbook(
    inventory: Path, play: Path, *args: str, what: str, env: Mapping[str, str] | None = None
) -> str:
    """ansible-playbook's output, run with the repository's ansible.cfg; the
    test fails with the output when it fails, saying `what` failed."""
    rc, out = run_playbook_result(inventory, play, *args, env=env)
    if rc != 0:
        pytest.fail(f"{what} failed:\n{out}")
    return out


def template(path: str, template_vars: str = "") -> str:
    """An expression rendering roles/<path> (with template_vars, a Jinja dict)."""
    extra = f", template_vars={template_vars}" if template_vars else ""
    return f"lookup('ansible.builtin.template', '{REPO}/roles/{path}'{extra})"


def role_var_files(*roles: str) -> list[str]:
    """roles/<role>/defaults/main.yml and vars/main.yml of `roles`, those that exist."""
    files = [f"roles/{role}/{kind}/main.yml" for role in roles for kind in ("defaults", "vars")]
    return [f for f in files if (REPO / f).is_file()]


def inventory(
    hosts: Mapping[str, Mapping[str, Any]], groups: Mapping[str, Sequence[str]]
) -> dict[str, Any]:
    """Local hosts with their own variables, in `groups` and k8s_cluster."""
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    children: dict[str, Any] = {g: {"hosts": dict.fromkeys(names)} for g, names in groups.items()}
    children["k8s_cluster"] = {"children": {"kube_control_plane": {}, "kube_node": {}}}
    return {
        "all": {
            "hosts": {name: {**local, **own} for name, own in hosts.items()},
            "children": children,
        }
    }


def render(
    hosts: Mapping[str, Mapping[str, Any]],
    groups: Mapping[str, Sequence[str]],
    settings: Mapping[str, Any],
    expressions: Mapping[str, str],
    var_files: Sequence[str],
) -> dict[str, Any]:
    """`expressions` (name -> Jinja expression) as Ansible renders them on HOST,
    with `settings` in group_vars/all, after role kubeforge_defaults and the
    variables of `var_files` (paths in the repository, loaded in that order)."""
    with tempfile.TemporaryDirectory(prefix="kubeforge-render-") as tmp:
        work = Path(tmp)
        (work / "group_vars" / "all").mkdir(parents=True)
        (work / "group_vars" / "all" / "settings.yml").write_text(yaml.safe_dump(dict(settings)))
        (work / "hosts.yml").write_text(yaml.safe_dump(inventory(hosts, groups)))
        out = work / "rendered.json"
        content = ", ".join(f"{json.dumps(k)}: {v}" for k, v in expressions.items())
        play = [
            {
                "name": "Render the roles' variables",
                "hosts": HOST,
                "gather_facts": False,
                "roles": [{"role": "kubeforge_defaults"}],
                "tasks": [
                    {
                        "name": "Load the roles' variables",
                        "ansible.builtin.include_vars": {"file": f"{REPO}/{{{{ item }}}}"},
                        "loop": list(var_files),
                    },
                    {
                        "name": "Write them out",
                        "ansible.builtin.copy": {
                            "content": "{{ {" + content + "} | to_json }}",
                            "dest": str(out),
                            "mode": "0600",
                        },
                    },
                ],
            }
        ]
        (work / "play.yml").write_text(yaml.safe_dump(play, sort_keys=False))
        run_playbook(work / "hosts.yml", work / "play.yml", what="rendering the roles' variables")
        data: dict[str, Any] = json.loads(out.read_text())
    return data
