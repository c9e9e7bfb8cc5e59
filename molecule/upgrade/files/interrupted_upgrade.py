"""Run upgrade-cluster.yml, interrupt it (SIGINT, as Ctrl-C) once the first
control-plane host is upgraded and the second one drained, then run it again
to the end. Prints and writes (argv[2]) the timings of each batch of the
completed run, read from the output: the start of each host's batch and of the
last play.

The interruption costs about 3 minutes: `make test` leaves it out and runs
upgrade-cluster.yml once (its timings under "rerun", no "interrupted");
`make test-full` (tests/lab/fullchecks.py) interrupts.

    interrupted_upgrade.py <inventory> <timings.json> [ansible-playbook args...]
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests" / "lab"))
from fullchecks import full_checks

BATCH = re.compile(r"^ok: \[([^\]]+)\] => \{")
BATCH_TASK = "TASK [Upgrade | Record the start of the batch]"
DRAIN_TASK = "TASK [upgrade : Upgrade | Drain node"
LAST_PLAY = "PLAY [Upgrade | Network plugin and addons]"


def run(argv: list[str], interrupt: bool, log: Path) -> tuple[int, dict[str, object]]:
    start, started = time.monotonic(), time.time()
    marks: list[tuple[str, float]] = []
    batches = drains = 0
    in_batch_task = interrupted = False
    signalled = 0.0
    with log.open("w") as out:
        # Unbuffered: each line arrives as Ansible prints it; no colours (molecule
        # forces them), or the patterns above do not match.
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
        }
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            sys.stdout.write(line)
            now = time.monotonic() - start
            if line.startswith(BATCH_TASK):
                in_batch_task, batches = True, batches + 1
            elif line.startswith("TASK ["):
                in_batch_task = False
            if in_batch_task and (m := BATCH.match(line)):
                marks.append((m[1], now))
            if line.startswith(LAST_PLAY):
                marks.append(("(network plugin and addons)", now))
            if line.startswith(DRAIN_TASK):
                drains += 1
            # The second host's drain has run: its next task header follows it.
            if interrupt and not interrupted and drains >= 2 and line.startswith("TASK [download"):
                proc.send_signal(signal.SIGINT)
                interrupted, signalled = True, now
                print(f"\n*** interrupted with SIGINT at {now:.0f}s ***", flush=True)
            # Ansible can lose a SIGINT (its handler's KeyboardInterrupt raised
            # inside logging's lock release is "ignored"): while it still runs
            # tasks, send another, as a user would press Ctrl-C again.
            elif interrupted and now - signalled > 5 and line.startswith("TASK ["):
                proc.send_signal(signal.SIGINT)
                signalled = now
                print(f"\n*** still running: SIGINT again at {now:.0f}s ***", flush=True)
        rc = proc.wait()
    total = time.monotonic() - start
    per_host = [
        {"host": host, "seconds": round(marks[i + 1][1] - at, 1)}
        for i, (host, at) in enumerate(marks[:-1])
        if not host.startswith("(")
    ]
    summary = {
        "rc": rc,
        "interrupted": interrupted,
        "started": round(started, 1),
        "seconds": round(total, 1),
    }
    return rc, {**summary, "batches": per_host}


def main() -> int:
    inventory, timings = sys.argv[1], Path(sys.argv[2])
    argv = ["ansible-playbook", "-i", inventory, "upgrade-cluster.yml", *sys.argv[3:]]
    logs = timings.parent
    logs.mkdir(parents=True, exist_ok=True)
    if not full_checks():
        rc, only = run(argv, False, logs / "upgrade-rerun.log")
        timings.write_text(json.dumps({"rerun": only}, indent=2) + "\n")
        print(json.dumps({"rerun": only}, indent=2))
        return rc
    rc1, first = run(argv, True, logs / "upgrade-interrupted.log")
    if not first["interrupted"]:
        print("the upgrade finished before it could be interrupted", file=sys.stderr)
        return 1
    if rc1 == 0:
        print("the interrupted run exited 0", file=sys.stderr)
        return 1
    rc2, second = run(argv, False, logs / "upgrade-rerun.log")
    timings.write_text(json.dumps({"interrupted": first, "rerun": second}, indent=2) + "\n")
    print(json.dumps({"interrupted": first, "rerun": second}, indent=2))
    return rc2


if __name__ == "__main__":
    sys.exit(main())
