"""tests/tools/make_test.sh (what `make test` runs) with a stand-in for make:
the order of its parts, the side checks' priority and the exit status."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "tests" / "tools" / "make_test.sh"

# Records each call (its targets, its nice value, start and end) and exits with
# FAKE_RC_<first target> (0 when unset) after FAKE_SLEEP_<first target> seconds.
FAKE_MAKE = """#!/usr/bin/env bash
targets=()
for a in "$@"; do case $a in -*) ;; *) targets+=("$a") ;; esac; done
first=${targets[0]//-/_}
echo "start ${targets[*]} nice=$(ps -o ni= -p $$ | tr -d ' ') $(date +%s.%N)" >> "$FAKE_LOG"
sleep_var=FAKE_SLEEP_$first rc_var=FAKE_RC_$first
sleep "${!sleep_var:-0}"
echo "end ${targets[*]} $(date +%s.%N)" >> "$FAKE_LOG"
exit "${!rc_var:-0}"
"""


def run(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    fake = tmp_path / "make"
    fake.write_text(FAKE_MAKE)
    fake.chmod(0o755)
    log = tmp_path / "calls.log"
    done = subprocess.run(
        [str(SCRIPT), str(fake)],
        env={**os.environ, "FAKE_LOG": str(log), **env},
        text=True,
        capture_output=True,
        timeout=60,
        preexec_fn=_at_nice_zero,
    )
    return done, log.read_text().splitlines() if log.exists() else []


def _at_nice_zero() -> None:
    """`make test` runs the unit tests themselves at nice 19: the script under
    test starts at 0 again (root may lower it), so that its side checks' nice 19
    shows."""
    with contextlib.suppress(PermissionError):
        os.setpriority(os.PRIO_PROCESS, 0, 0)


def calls(lines: list[str], word: str) -> list[str]:
    return [line for line in lines if line.startswith(word + " ")]


def test_the_build_then_the_scenarios_with_the_side_checks_beside_them(tmp_path: Path) -> None:
    done, lines = run(tmp_path, FAKE_SLEEP_preflight_test="1")
    assert done.returncode == 0, done.stdout + done.stderr
    starts = calls(lines, "start")
    assert starts[0].startswith("start lab-build nice=")
    base = int(starts[0].split(" nice=")[1].split()[0])
    assert base < 19, "the script ran at nice 19 (not root?): its side checks' priority cannot show"
    side = next(s for s in starts if s.startswith("start conformance-build unit lint "))
    lab = next(s for s in starts if s.startswith("start preflight-test molecule-all lab-test "))
    assert f" nice={base} " in lab and " nice=19 " in side, (lab, side)
    lab_end = next(e for e in calls(lines, "end") if e.startswith("end preflight-test"))
    side_start = float(side.split()[-1])
    # Side by side: the side checks started before the scenarios ended.
    assert side_start < float(lab_end.split()[-1])
    assert "lint, unit and conformance-build passed" in done.stdout


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"FAKE_RC_conformance_build": "2"}, "lint, unit and conformance-build FAILED (exit 2)"),
        ({"FAKE_RC_preflight_test": "2"}, "the lab's build and scenarios FAILED (exit 2)"),
    ],
)
def test_either_part_failing_fails_the_run(tmp_path: Path, env: dict[str, str], says: str) -> None:
    done, _ = run(tmp_path, **env)
    assert done.returncode != 0
    assert says in done.stdout


def test_a_failed_build_starts_nothing_else(tmp_path: Path) -> None:
    done, lines = run(tmp_path, FAKE_RC_lab_build="2")
    assert done.returncode == 2
    assert [s.split(" nice=")[0] for s in calls(lines, "start")] == ["start lab-build"]


def test_the_side_checks_stop_with_an_interrupted_run(tmp_path: Path) -> None:
    fake = tmp_path / "make"
    fake.write_text(FAKE_MAKE)
    fake.chmod(0o755)
    log = tmp_path / "calls.log"
    env = {
        **os.environ,
        "FAKE_LOG": str(log),
        "FAKE_SLEEP_conformance_build": "30",
        "FAKE_SLEEP_preflight_test": "30",
    }
    proc = subprocess.Popen(
        [str(SCRIPT), str(fake)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(calls(_lines(log), "start")) < 3:
        time.sleep(0.1)
    assert len(calls(_lines(log), "start")) == 3, _lines(log)
    os.killpg(proc.pid, 15)  # what an interrupted CI job does to the whole run
    proc.wait(timeout=60)
    time.sleep(0.5)
    leftover = subprocess.run(["pgrep", "-f", str(fake)], capture_output=True, text=True)
    assert leftover.stdout == "", "processes of the run left behind"


def _lines(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []
