"""Run ansible-playbook for a molecule scenario and keep a record of the run.

    runbook.py NAME [ansible-playbook arguments...]

runs `ansible-playbook ARGS` from the repository's top directory, writes its
output to <dir>/NAME.log and a summary to <dir>/NAME.json (wall seconds, exit
code, and per host ok/changed/unreachable/failed from the PLAY RECAP), where
<dir> is $MOLECULE_EPHEMERAL_DIRECTORY (else ~/.cache/kubeforge/runs). Exits
with ansible-playbook's code and prints the log's tail on a failure. The
scenarios' checks read the summaries (read_run).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import labconfig as cfg

RECAP = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def runs_dir() -> Path:
    env = os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY")
    path = Path(env) if env else cfg.cache_dir() / "runs"
    path.mkdir(parents=True, exist_ok=True)
    return path


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def plain_env() -> dict[str, str]:
    """The environment for an ansible-playbook whose output is parsed: the
    repository's ansible.cfg, the tools of this Python's virtualenv first on
    PATH, and no colours, also under molecule, which forces them."""
    venv_bin = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "ANSIBLE_CONFIG": str(cfg.REPO / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "PATH": os.pathsep.join([venv_bin, os.environ.get("PATH", "")]),
    }


def recap(text: str) -> dict[str, dict[str, int]]:
    text = ANSI.sub("", text)
    return {
        m[1]: {"ok": int(m[2]), "changed": int(m[3]), "unreachable": int(m[4]), "failed": int(m[5])}
        for m in RECAP.finditer(text)
    }


def run(name: str, args: list[str]) -> dict[str, Any]:
    log = runs_dir() / f"{name}.log"
    start = time.monotonic()
    with log.open("w") as out:
        rc = subprocess.run(
            ["ansible-playbook", *args], cwd=cfg.REPO, stdout=out, stderr=subprocess.STDOUT,
            env=plain_env(), check=False,
        ).returncode  # fmt: skip
    seconds = round(time.monotonic() - start, 1)
    text = log.read_text()
    hosts = recap(text)
    if rc == 0 and not hosts:
        # A pattern or inventory that matches nothing "succeeds" doing nothing.
        print(f"runbook: {name}: no host ran (empty PLAY RECAP): counted as a failure")
        rc = 1
    summary = {"name": name, "args": args, "rc": rc, "seconds": seconds, "recap": hosts}
    (runs_dir() / f"{name}.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"runbook: {name}: rc={rc} in {seconds:.0f}s; log {log}")
    if rc != 0:
        print("".join(text.splitlines(keepends=True)[-60:]))
    return summary


def read_run(name: str) -> dict[str, Any]:
    """The summary of an earlier run; a missing one says which step did not run."""
    path = runs_dir() / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"no record of the {name} run ({path}): did converge run?")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    return int(run(argv[0], argv[1:])["rc"])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
