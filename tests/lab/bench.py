#!/usr/bin/env python3
"""Time a fresh deployment and a no-op re-run of cluster.yml on the lab.

    bench.py            (after `lab.py up --nodes 5 --fresh`; `make bench-deploy`)

Prints the wall time of both runs; the full logs go to the cache
(KUBEFORGE_CACHE/bench/). Fails when a run fails or the re-run changes anything.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import labconfig as cfg
from runbook import recap


def play(name: str, logs: Path) -> tuple[float, dict[str, int]]:
    """Run cluster.yml on the lab; (seconds, changed count per host)."""
    log = logs / f"{name}.log"
    start = time.monotonic()
    with log.open("w") as out:
        done = subprocess.run(
            ["ansible-playbook", "-i", str(cfg.LAB_INVENTORY / "hosts.yml"), "cluster.yml"],
            cwd=cfg.REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    seconds = time.monotonic() - start
    text = log.read_text()
    if done.returncode != 0:
        print(text[-4000:])
        raise SystemExit(f"bench: the {name} run failed (rc={done.returncode}); log: {log}")
    changed = {host: counts["changed"] for host, counts in recap(text).items()}
    if not changed:
        raise SystemExit(f"bench: no PLAY RECAP in the {name} run; log: {log}")
    return seconds, changed


def main() -> None:
    logs = cfg.cache_dir() / "bench"
    logs.mkdir(parents=True, exist_ok=True)
    # A fresh lab gets a fresh PKI: the old cluster's artifacts would not match.
    shutil.rmtree(cfg.LAB_INVENTORY / "artifacts", ignore_errors=True)
    fresh, fresh_changed = play("deploy", logs)
    noop, noop_changed = play("noop", logs)
    hosts = len(fresh_changed)
    print(f"bench: fresh deploy of {hosts} hosts: {fresh:.0f} s ({fresh / 60:.1f} min)")
    print(f"bench: no-op re-run: {noop:.0f} s, changed per host {noop_changed}")
    print(f"bench: logs in {logs}")
    if any(noop_changed.values()):
        sys.exit("bench: the re-run changed something: it must report changed=0 on every host")


if __name__ == "__main__":
    main()
