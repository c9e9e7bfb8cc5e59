"""tests/tools/make_test.sh (what `make test` runs) with a stand-in for make:
the order of its parts, what runs beside what, the side checks' priority and
the exit status."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "tests" / "tools" / "make_test.sh"

# Records each call (its targets, its nice value, start and end times) and exits
# with FAKE_RC_<call> (0 when unset) after FAKE_SLEEP_<call> seconds, where
# <call> is the call's targets and assignments with every other character as _:
# lab_build_LAB_BUILD_ARGS___nodes_only, lab_build, preflight_test,
# conformance_build_unit_lint, molecule_all_lab_test. With FAKE_AFTER_<call>
# set to another call, it first waits (up to 30 s) until that one has started:
# on a loaded machine a call started in the background may not have recorded
# itself before the next one ends.
FAKE_MAKE = """#!/usr/bin/env bash
targets=()
for a in "$@"; do case $a in -*) ;; *) targets+=("$a") ;; esac; done
call=$(echo "${targets[*]}" | tr -c 'a-zA-Z0-9\\n' _)
echo "start $call nice=$(ps -o ni= -p $$ | tr -d ' ') $(date +%s.%N)" >> "$FAKE_LOG"
sleep_var=FAKE_SLEEP_$call rc_var=FAKE_RC_$call after_var=FAKE_AFTER_$call
if [ -n "${!after_var:-}" ]; then
  for _ in $(seq 300); do grep -q "^start ${!after_var} " "$FAKE_LOG" && break; sleep 0.1; done
fi
sleep "${!sleep_var:-0}"
echo "end $call $(date +%s.%N)" >> "$FAKE_LOG"
exit "${!rc_var:-0}"
"""
NODES = "lab_build_LAB_BUILD_ARGS___nodes_only"
BUILD, PREFLIGHT = "lab_build", "preflight_test"
SIDE, LAB = "conformance_build_unit_lint", "molecule_all_lab_test"


def _at_nice_zero() -> None:
    """`make test` runs the unit tests themselves at nice 19: the script under
    test starts at 0 again (root may lower it), so that its side checks' nice 19
    shows."""
    with contextlib.suppress(PermissionError):
        os.setpriority(os.PRIO_PROCESS, 0, 0)


def fake_make(tmp_path: Path) -> tuple[Path, Path]:
    fake = tmp_path / "make"
    fake.write_text(FAKE_MAKE)
    fake.chmod(0o755)
    return fake, tmp_path / "calls.log"


def script_env(tmp_path: Path, log: Path, **env: str) -> dict[str, str]:
    """The script's environment: the stand-in's record in `log`, its
    temporary files (the preflight tests' log) under `tmp_path`."""
    return {**os.environ, "FAKE_LOG": str(log), "TMPDIR": str(tmp_path), **env}


def assert_no_preflight_log(tmp_path: Path) -> None:
    assert list(tmp_path.glob("kubeforge-preflight.*")) == [], (
        "the preflight tests' log left behind"
    )


def run(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], Calls]:
    fake, log = fake_make(tmp_path)
    done = subprocess.run(
        [str(SCRIPT), str(fake)],
        env=script_env(tmp_path, log, **env),
        text=True,
        capture_output=True,
        timeout=120,
        preexec_fn=_at_nice_zero,
    )
    return done, Calls(log)


class Calls:
    """The stand-in's record: each call's nice value, start and end."""

    def __init__(self, log: Path) -> None:
        self.lines = log.read_text().splitlines() if log.exists() else []
        self.start: dict[str, float] = {}
        self.end: dict[str, float] = {}
        self.nice: dict[str, int] = {}
        for line in self.lines:
            m = re.fullmatch(r"start (\S+) nice=(-?\d+) ([\d.]+)", line)
            if m:
                self.start[m[1]], self.nice[m[1]] = float(m[3]), int(m[2])
            m = re.fullmatch(r"end (\S+) ([\d.]+)", line)
            if m:
                self.end[m[1]] = float(m[2])


def test_the_order_and_what_runs_beside_what(tmp_path: Path) -> None:
    done, c = run(tmp_path, FAKE_SLEEP_lab_build="1", FAKE_SLEEP_molecule_all_lab_test="1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(c.start) == sorted([NODES, BUILD, PREFLIGHT, SIDE, LAB]), c.lines
    # The nodes first, alone.
    assert c.end[NODES] <= min(c.start[x] for x in (BUILD, PREFLIGHT, SIDE, LAB))
    # preflight-test beside the build.
    assert c.start[PREFLIGHT] < c.end[BUILD]
    # The side checks once the build is done, beside the scenarios, which wait
    # for preflight-test.
    assert c.end[BUILD] <= c.start[SIDE] < c.end[LAB]
    assert c.end[PREFLIGHT] <= c.start[LAB]
    base = c.nice[NODES]
    assert base < 19, "the script ran at nice 19 (not root?): its side checks' priority cannot show"
    assert c.nice == {NODES: base, BUILD: base, PREFLIGHT: base, SIDE: 19, LAB: base}
    assert "lint, unit and conformance-build passed" in done.stdout
    assert_no_preflight_log(tmp_path)


@pytest.mark.parametrize(
    ("failing", "says", "not_run"),
    [
        (SIDE, "lint, unit and conformance-build FAILED (exit 2)", []),
        (LAB, "preflight-test and scenarios FAILED (exit 2)", []),
        (PREFLIGHT, "preflight-test FAILED (exit 2)", [LAB]),
        (BUILD, "conformance-build not run (the build failed)", [SIDE, LAB]),
    ],
)
def test_any_part_failing_fails_the_run(
    tmp_path: Path, failing: str, says: str, not_run: list[str]
) -> None:
    done, c = run(tmp_path, **{f"FAKE_RC_{failing}": "2"})
    assert done.returncode != 0
    assert says in done.stdout, done.stdout
    assert [x for x in not_run if x in c.start] == []


def test_a_failed_build_stops_the_preflight_tests(tmp_path: Path) -> None:
    done, c = run(
        tmp_path, FAKE_RC_lab_build="2", FAKE_AFTER_lab_build=PREFLIGHT,
        FAKE_SLEEP_preflight_test="30",
    )  # fmt: skip
    assert done.returncode != 0
    assert PREFLIGHT in c.start and PREFLIGHT not in c.end, c.lines
    assert "preflight-test FAILED" in done.stdout


def test_nodes_that_fail_to_build_start_nothing_else(tmp_path: Path) -> None:
    done, c = run(tmp_path, **{f"FAKE_RC_{NODES}": "2"})
    assert done.returncode == 2
    assert list(c.start) == [NODES]


def test_the_parts_beside_stop_with_an_interrupted_run(tmp_path: Path) -> None:
    fake, log = fake_make(tmp_path)
    env = script_env(
        tmp_path,
        log,
        FAKE_SLEEP_preflight_test="30",
        FAKE_SLEEP_conformance_build_unit_lint="30",
        FAKE_SLEEP_lab_build="1",
    )
    proc = subprocess.Popen(
        [str(SCRIPT), str(fake)], env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and SIDE not in Calls(log).start:
        time.sleep(0.1)
    assert SIDE in Calls(log).start, Calls(log).lines
    os.killpg(proc.pid, 15)  # what an interrupted CI job does to the whole run
    proc.wait(timeout=60)
    time.sleep(0.5)
    leftover = subprocess.run(["pgrep", "-f", str(fake)], capture_output=True, text=True)
    assert leftover.stdout == "", "processes of the run left behind"
    assert LAB not in Calls(log).start
    assert_no_preflight_log(tmp_path)
