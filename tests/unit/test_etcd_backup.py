"""etcd snapshots (role etcd): the script etcd-backup.service runs, as the
role renders it, run against stand-in etcdctl and etcdutl; the timer and the
service as systemd reads them; and what etcd-restore.yml says about a request
and about a restore that failed part-way (plugins/filter/kubeforge_etcd.py)."""

from __future__ import annotations

import functools
import os
import shutil
import stat
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import kubeforge_etcd as ke
import kubeforge_inventory as inv
import pytest
from ansible_render import render, role_var_files, template

# The stand-ins: etcdctl writes the snapshot (and notes its environment),
# etcdutl reads it back; FAKE_FAIL=save or status makes one fail, FAKE_KEYS
# sets the keys etcdutl reports.
ETCDCTL = """\
#!/bin/sh
env | grep '^ETCDCTL_' | sort > "$(dirname "$0")/etcdctl.env"
[ "$FAKE_FAIL" = save ] && { echo 'Error: context deadline exceeded' >&2; exit 1; }
[ "$1 $2" = "snapshot save" ] || exit 3
echo snapshot > "$3.part" && mv "$3.part" "$3"
"""
ETCDUTL = """\
#!/bin/sh
[ "$FAKE_FAIL" = status ] && { echo 'Error: invalid database' >&2; exit 1; }
[ "$1 $2" = "snapshot status" ] && [ -s "$3" ] || exit 3
echo "{\\"hash\\":1,\\"revision\\":42,\\"totalKey\\":${FAKE_KEYS:-5},\\"totalSize\\":20480}"
"""
OLD = [f"etcd-snapshot-2020010{d}T000000Z.db" for d in range(1, 6)]
# Files of the directory the retention leaves alone.
OTHERS = ["etcd-ondemand-20200101T000000Z.db", "etcd-v1.36.3-20200101T000000Z.db"]


# Rendered once per retention, under this stand-in root, which each test
# replaces with a directory of its own.
ROOT = "/kubeforge-test-root"


@functools.cache
def rendered(keep: int) -> dict[str, Any]:
    settings = {
        "bin_dir": f"{ROOT}/bin",
        "etcd_backup_prefix": f"{ROOT}/backups",
        "etcd_backup_retention_count": keep,
        "etcd_backup_schedule": "Sun *-*-* 03:15:00",
        "etcd_backup_randomized_delay": "10min",
    }
    return render(
        hosts={"node1": {"ip": "192.0.2.11"}},
        groups={"kube_control_plane": ["node1"], "etcd": ["node1"], "kube_node": []},
        settings=settings,
        expressions={
            "script": template("etcd/templates/etcd-backup.sh.j2"),
            "service": template("etcd/templates/etcd-backup.service.j2"),
            "timer": template("etcd/templates/etcd-backup.timer.j2"),
            "dir": "etcd_backup_dir",
            "script_path": "etcd_backup_script",
        },
        var_files=role_var_files("etcd"),
    )


@pytest.fixture(scope="module")
def units() -> dict[str, Any]:
    return rendered(3)


class Backup:
    """The rendered script with its stand-ins, in a directory of its own."""

    def __init__(self, tmp: Path, keep: int) -> None:
        r = rendered(keep)
        assert ROOT in r["script"] and r["dir"] == f"{ROOT}/backups/kubeforge"
        self.bin = tmp / "bin"
        self.bin.mkdir()
        for name, text in (("etcdctl", ETCDCTL), ("etcdutl", ETCDUTL)):
            (self.bin / name).write_text(text)
            (self.bin / name).chmod(0o755)
        self.script = tmp / "etcd-backup.sh"
        self.script.write_text(r["script"].replace(ROOT, str(tmp)))
        self.script.chmod(0o700)
        self.dir = Path(r["dir"].replace(ROOT, str(tmp)))

    def seed(self) -> None:
        self.dir.mkdir(parents=True)
        for name in OLD + OTHERS:
            (self.dir / name).write_text("old")

    def run(self, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(self.script)], capture_output=True, text=True, check=False,
            env={**os.environ, **env}, timeout=60,
        )  # fmt: skip

    def names(self) -> list[str]:
        return sorted(p.name for p in self.dir.iterdir())

    def new(self) -> list[str]:
        return [n for n in self.names() if n not in OLD + OTHERS]


def test_a_run_keeps_a_private_snapshot_and_the_newest(tmp_path: Path) -> None:
    backup = Backup(tmp_path, 3)
    backup.seed()
    done = backup.run()
    assert done.returncode == 0, done.stderr
    new = backup.new()
    assert len(new) == 1 and new[0].startswith("etcd-snapshot-") and new[0].endswith("Z.db"), new
    snapshot = backup.dir / new[0]
    assert stat.S_IMODE(snapshot.stat().st_mode) == 0o600
    assert stat.S_IMODE(backup.dir.stat().st_mode) == 0o700
    assert f"{snapshot}: " in done.stdout and "revision 42, 5 keys" in done.stdout
    # The new one and the two newest before it; the others' files stay.
    assert backup.names() == sorted([*new, OLD[-1], OLD[-2], *OTHERS])
    assert done.stdout.count("removed ") == 3


def test_the_snapshot_comes_from_the_local_member(tmp_path: Path) -> None:
    backup = Backup(tmp_path, 3)
    assert backup.run().returncode == 0
    env = dict(line.split("=", 1) for line in (backup.bin / "etcdctl.env").read_text().splitlines())
    assert env["ETCDCTL_ENDPOINTS"] == "https://127.0.0.1:2379"
    assert env["ETCDCTL_CERT"] == "/etc/kubernetes/pki/etcd/healthcheck-client.crt"
    assert env["ETCDCTL_COMMAND_TIMEOUT"] == "600s"


def test_minus_one_keeps_every_snapshot(tmp_path: Path) -> None:
    backup = Backup(tmp_path, -1)
    backup.seed()
    done = backup.run()
    assert done.returncode == 0, done.stderr
    assert len(backup.new()) == 1
    assert set(OLD + OTHERS) <= set(backup.names())
    assert "removed" not in done.stdout


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"FAKE_FAIL": "save"}, "context deadline exceeded"),
        ({"FAKE_FAIL": "status"}, "invalid database"),
        ({"FAKE_KEYS": "0"}, "holds no key"),
    ],
    ids=["save-fails", "unreadable", "empty"],
)
def test_a_failed_snapshot_fails_leaves_nothing_and_removes_nothing(
    tmp_path: Path, env: dict[str, str], says: str
) -> None:
    backup = Backup(tmp_path, 3)
    backup.seed()
    done = backup.run(**env)
    assert done.returncode != 0, "a failed snapshot must fail the service (systemctl --failed)"
    assert says in done.stderr
    assert backup.new() == [], "no snapshot, no leftover .part"
    assert backup.names() == sorted(OLD + OTHERS), "a failed run removes no old snapshot"


def test_the_timer_says_when(units: dict[str, Any]) -> None:
    timer = units["timer"]
    assert "OnCalendar=Sun *-*-* 03:15:00\n" in timer
    assert "RandomizedDelaySec=10min\n" in timer
    assert "Persistent=true\n" in timer and "WantedBy=timers.target\n" in timer
    assert f"ExecStart={units['script_path']}\n" in units["service"]
    assert "UMask=0077\n" in units["service"]
    assert units["script_path"] == "/etc/etcd/etcd-backup.sh"


def test_systemd_accepts_the_units(units: dict[str, Any], tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze is missing: install systemd (Debian's systemd package)")
    script = tmp_path / "etcd-backup.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    service = units["service"].replace(units["script_path"], str(script))
    (tmp_path / "etcd-backup.service").write_text(service)
    (tmp_path / "etcd-backup.timer").write_text(units["timer"])
    done = subprocess.run(
        [analyze, "verify", "--man=no", str(tmp_path / "etcd-backup.timer"),
         str(tmp_path / "etcd-backup.service")],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    problems = [
        line
        for line in done.stderr.splitlines()
        if "etcd-backup" in line and "etcd.service" not in line
    ]
    assert done.returncode == 0 and not problems, done.stderr
    calendar = subprocess.run(
        [analyze, "calendar", "Sun *-*-* 03:15:00"], capture_output=True, check=False
    )
    assert calendar.returncode == 0


# The settings, as preflight checks them ---------------------------------------------------------


@pytest.mark.parametrize(
    ("var", "good", "bad"),
    [
        ("etcd_backup_enabled", [True, "false"], ["sometimes", 2]),
        ("etcd_backup_schedule", ["daily", "*-*-* 02:30:00", "Sun 03:00"], ["", "a\nb", 3, None]),
        ("etcd_backup_randomized_delay", ["30min", "1h 30min", "0", 900, "5m10s"],
         ["soon", "", "1x", True, "1" * 40 + "x"]),
        ("etcd_backup_retention_count", [7, -1, "3", 1], [0, -2, "x", True, 1.5]),
        ("etcd_backup_prefix", ["/var/backups", "/data/b"], ["var/backups", "/a b", "/x/../y"]),
        ("etcd_backup_localhost_dir", ["/srv/etcd-backups"], ["backups", ""]),
    ],
)  # fmt: skip
def test_preflight_checks_the_settings(var: str, good: list[Any], bad: list[Any]) -> None:
    check = inv.VALUE_CHECKS[var]
    assert [v for v in good if check(var, v)] == [], "refused good values"
    for value in bad:
        errors = check(var, value)
        assert len(errors) == 1 and errors[0].startswith(var), (value, errors)


def test_backup_and_restore_take_an_even_number_of_etcd_members() -> None:
    """A member removed and not yet replaced leaves two: every other playbook
    refuses that inventory, etcd-backup.yml and etcd-restore.yml do not."""
    groups = {"etcd": ["n1", "n2"], "kube_control_plane": ["n1"], "k8s_cluster": ["n1"]}
    assert any("odd" in e for e in inv.check_groups(groups))
    assert inv.check_groups(groups, even_etcd_ok=True) == []
    assert inv.check_groups({**groups, "etcd": []}, even_etcd_ok=True) != []


# etcd-restore.yml's messages ------------------------------------------------------------------


GOOD_FILE = {"exists": True, "isreg": True, "readable": True, "size": 20480}


def test_a_complete_request_is_accepted() -> None:
    assert ke.kubeforge_etcd_restore_request_errors("/tmp/s.db", "yes", GOOD_FILE) == []
    assert ke.kubeforge_etcd_restore_request_errors("/tmp/s.db", "YES", GOOD_FILE) == []


@pytest.mark.parametrize(
    ("snapshot", "confirmation", "file", "says"),
    [
        ("/tmp/s.db", None, GOOD_FILE, ["etcd_restore_confirmation"]),
        ("/tmp/s.db", True, GOOD_FILE, ["etcd_restore_confirmation"]),
        ("/tmp/s.db", "no", GOOD_FILE, ["etcd_restore_confirmation"]),
        (None, "yes", None, ["etcd_snapshot: name the snapshot file"]),
        ("", None, None, ["etcd_restore_confirmation", "etcd_snapshot: name"]),
        ("/tmp/gone.db", "yes", {"exists": False}, ["/tmp/gone.db does not exist"]),
        ("/tmp", "yes", {"exists": True, "isreg": False}, ["/tmp is not a regular file"]),
        ("/tmp/e.db", "yes", {**GOOD_FILE, "size": 0}, ["/tmp/e.db is empty"]),
        ("/tmp/r.db", "yes", {**GOOD_FILE, "readable": False}, ["cannot be read"]),
    ],
)
def test_an_incomplete_request_is_refused_naming_the_variable(
    snapshot: Any, confirmation: Any, file: dict[str, Any] | None, says: list[str]
) -> None:
    errors = ke.kubeforge_etcd_restore_request_errors(snapshot, confirmation, file)
    assert len(errors) == len(says), errors
    for error, expected in zip(errors, says, strict=True):
        assert expected in error
        assert error.startswith(("etcd_snapshot:", "etcd_restore_confirmation:"))


def test_the_error_line_of_etcd_tools() -> None:
    out = textwrap.dedent("""\
        2026-12-04T16:36:56Z\tinfo\tsnapshot/v3_snapshot.go:305\trestoring snapshot
        Error: snapshot missing hash but --skip-hash-check=false
    """)
    assert ke.kubeforge_etcd_error(out) == "snapshot missing hash but --skip-hash-check=false"
    crash = '{"level":"info","msg":"x"}\nunexpected fault address 0x7f\nfatal error: fault\n'
    assert ke.kubeforge_etcd_error(crash) == "unexpected fault address 0x7f"
    assert ke.kubeforge_etcd_error("") == "no output"


def test_the_asides_are_named_by_host() -> None:
    moved: list[dict[str, Any] | None] = [
        {"stdout_lines": ["aside /var/lib/etcd/member.before-restore-20261204T000000Z"]},
        {"skipped": True},
        None,
    ]
    assert ke.kubeforge_etcd_restore_asides(moved, ["node1", "node2", "node3"]) == [
        "node1:/var/lib/etcd/member.before-restore-20261204T000000Z"
    ]


REPORT = {
    "snapshot": "/x/s.db",
    "members": ["node1", "node2", "node3"],
    "control_plane": ["node1", "node2"],
    "data_dir": "/var/lib/etcd",
    "asides": [
        "node1:/var/lib/etcd/member.before-restore-T",
        "node2:/var/lib/etcd/member.before-restore-T",
    ],
}


def test_a_failure_before_stopping_says_nothing_changed() -> None:
    text = " ".join(ke.kubeforge_etcd_restore_failure("checking", {**REPORT, "asides": []}))
    assert "Nothing was changed" in text and "/x/s.db" in text


def test_a_failure_while_stopping_says_how_to_start_again() -> None:
    text = " ".join(ke.kubeforge_etcd_restore_failure("stopping", {**REPORT, "asides": []}))
    assert "not touched" in text and "cluster.yml" in text and "node1, node2, node3" in text


@pytest.mark.parametrize("stage", ke.STAGES[2:])
def test_a_later_failure_names_the_data_from_before(stage: str) -> None:
    text = " ".join(ke.kubeforge_etcd_restore_failure(stage, REPORT))
    assert f"while {stage}" in text
    for aside in REPORT["asides"]:
        assert aside in text
    assert "mv <that directory> /var/lib/etcd/member" in text
