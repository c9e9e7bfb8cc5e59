"""Certificate expiry and renewal (plugins/filter/kubeforge_certs.py, the
certificates role): the report is sorted soonest first, preflight lists the
leaves due and says whether the run renews them, certificates_renew_all selects
every leaf, and the control host's renewal timer is rendered as systemd takes
it, running renew-certificates.yml for the due leaves only."""

from __future__ import annotations

import datetime
import getpass
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubeforge_certs as kc
import kubeforge_inventory as inv
import kubeforge_pki as pki
import pytest
from ansible_render import REPO, render, template

NOW = datetime.datetime(2026, 12, 4, 12, 0, 0, tzinfo=datetime.UTC)


def cert(host: str, file: str, hours: float, *, ca: bool = False, **extra: Any) -> dict[str, Any]:
    after = NOW + datetime.timedelta(hours=hours)
    return {
        "host": host,
        "file": file,
        "part": "",
        "source": "file",
        "subject": f"CN={Path(file).stem}",
        "issuer": "CN=kubernetes-ca",
        "not_after": after.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "days_left": int((after - NOW).total_seconds() // 86400),
        "is_ca": ca,
        **extra,
    }


RESULTS: list[dict[str, Any]] = [
    {
        "certificates": [
            cert("node10", "/pki/apiserver.crt", 24 * 20),
            cert("node10", "/pki/ca.crt", 24 * 3000, ca=True),
        ],
        "errors": [],
    },
    {
        "certificates": [
            cert("node2", "/pki/apiserver.crt", 24 * 20),
            cert("node2", "/pki/kubelet.crt", 24 * 200),
            cert("node2", "/conf/admin.conf", -30, part="client-certificate-data"),
            cert("node2", "/kubelet/kubelet-client-current.pem", 24 * 10, source="kubelet"),
        ],
        "errors": [{"host": "node2", "file": "/pki/broken.crt", "part": "", "error": "no PEM"}],
    },
    {"skipped": True},  # a host whose module did not run
]


def test_report_sorts_soonest_first_then_hosts_in_natural_order() -> None:
    report = kc.kubeforge_cert_report(RESULTS)
    assert [(c["host"], c["file"]) for c in report["certificates"]] == [
        ("node2", "/conf/admin.conf"),
        ("node2", "/kubelet/kubelet-client-current.pem"),
        ("node2", "/pki/apiserver.crt"),  # node2 before node10 on the same expiry
        ("node10", "/pki/apiserver.crt"),
        ("node2", "/pki/kubelet.crt"),
        ("node10", "/pki/ca.crt"),
    ]
    assert report["errors"] == RESULTS[1]["errors"]


def test_table_has_host_file_subject_and_days_left_columns() -> None:
    lines = kc.kubeforge_cert_table(kc.kubeforge_cert_report(RESULTS)["certificates"])
    assert lines[0].split() == ["HOST", "FILE", "SUBJECT", "DAYS", "LEFT", "NOT", "AFTER", "CA"]
    assert lines[1].split()[:4] == [
        "node2",
        "/conf/admin.conf",
        "(client-certificate-data)",
        "CN=admin",
    ]
    assert lines[1].split()[4] == "-2"  # expired 30 hours ago
    assert lines[-1].split()[-1] == "CA"
    # Columns line up: every subject starts where the header's does.
    start = lines[0].index("SUBJECT")
    assert all(line[start:].startswith("CN=") for line in lines[1:])


def test_due_leaves_are_those_within_the_renewal_window_never_a_ca() -> None:
    certs = kc.kubeforge_cert_report(RESULTS)["certificates"]
    due = kc.kubeforge_cert_due(certs, 30, now=NOW)
    assert [(c["host"], Path(c["file"]).name) for c in due] == [
        ("node2", "admin.conf"),
        ("node2", "kubelet-client-current.pem"),
        ("node2", "apiserver.crt"),
        ("node10", "apiserver.crt"),
    ]
    assert kc.kubeforge_cert_due(certs, 5, now=NOW) == due[:1]
    # Exactly at the window's end is due, as kubeforge_leaves_to_issue counts it.
    edge = [cert("n", "/pki/x.crt", 24 * 30)]
    assert kc.kubeforge_cert_due(edge, 30, now=NOW) == edge
    assert kc.kubeforge_cert_due(edge, 29, now=NOW) == []


@pytest.mark.parametrize(
    ("run_renews", "renew_all", "action"),
    [
        (True, False, "this run renews them,"),
        ("true", "true", "this run renews them with every other leaf (certificates_renew_all)"),
        (False, False, "this run does not renew them: run cluster.yml or renew-certificates.yml"),
    ],
)
def test_preflight_names_host_file_and_days_and_says_what_the_run_does(
    run_renews: Any, renew_all: Any, action: str
) -> None:
    lines = kc.kubeforge_cert_warnings(RESULTS, 30, run_renews, renew_all, now=NOW)
    assert lines[0].startswith("Preflight: 4 certificate(s) expire within")
    assert "(30 days)" in lines[0] and action in lines[0]
    assert lines[1] == (
        "node2: /conf/admin.conf (client-certificate-data) CN=admin: EXPIRED 2 day(s) ago "
        f"({RESULTS[1]['certificates'][2]['not_after']})"
    )
    assert lines[2].startswith("node2: /kubelet/kubelet-client-current.pem CN=kubelet-client-")
    assert "the kubelet renews it itself" in lines[2]
    assert lines[3].startswith("node2: /pki/apiserver.crt CN=apiserver: 20 day(s) left")
    assert lines[5:] == [
        "Preflight: 1 certificate file(s) could not be read:",
        "node2: /pki/broken.crt: no PEM",
    ]


def test_preflight_says_nothing_when_nothing_is_due() -> None:
    fresh = [{"certificates": [cert("node1", "/pki/apiserver.crt", 24 * 300)], "errors": []}]
    assert kc.kubeforge_cert_warnings(fresh, 30, True, now=NOW) == []


# certificates_renew_all ------------------------------------------------------------------------


LEAVES = [{"path": "apiserver", "ca": "ca", "cn": "kube-apiserver", "usage": "server"}]


@pytest.mark.parametrize("renew_all", [True, "true", "True"])
def test_renew_all_selects_every_leaf_even_current_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, renew_all: Any
) -> None:
    monkeypatch.setattr(pki, "leaf_is_current", lambda *_: True)
    assert pki.kubeforge_leaves_to_issue(LEAVES, str(tmp_path), 2048, 30) == []
    assert pki.kubeforge_leaves_to_issue(LEAVES, str(tmp_path), 2048, 30, renew_all) == LEAVES


@pytest.mark.parametrize("renew_all", [False, "false", "False"])
def test_without_renew_all_only_leaves_not_current_are_selected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, renew_all: Any
) -> None:
    monkeypatch.setattr(pki, "leaf_is_current", lambda leaf, *_: leaf["path"] == "apiserver")
    stale = {**LEAVES[0], "path": "admin"}
    selected = pki.kubeforge_leaves_to_issue([*LEAVES, stale], str(tmp_path), 2048, 30, renew_all)
    assert selected == [stale]


def test_the_role_passes_certificates_renew_all_to_the_selection() -> None:
    defaults = (REPO / "roles/certificates/defaults/main.yml").read_text()
    todo = defaults[defaults.index("certificates_todo:") :].split("\n\n")[0]
    assert "certificates_renew_all" in todo
    # The module issues every leaf the selection hands it.
    leaves = (REPO / "roles/certificates/tasks/leaves.yml").read_text()
    assert 'leaves: "{{ certificates_todo }}"' in leaves


# The renewal timer -----------------------------------------------------------------------------


WEEKLY = """  Original form: Mon *-*-* 03:00:00
Normalized form: Mon *-*-* 03:00:00
    Next elapse: Mon 2026-12-07 03:00:00 UTC
       From now: 2 days left
       Iter. #2: Mon 2026-12-14 03:00:00 UTC
       From now: 1 week 2 days left
       Iter. #3: Mon 2026-12-21 03:00:00 UTC
       From now: 2 weeks 2 days left
"""
FIRST_MONDAY = """  Original form: Mon *-*-1,2,3,4,5,6,7 03:00:00
Normalized form: Mon *-*-01,02,03,04,05,06,07 03:00:00
    Next elapse: Mon 2026-12-07 03:00:00 UTC
       From now: 2 days left
       Iter. #2: Mon 2027-01-04 03:00:00 UTC
       From now: 4 weeks 2 days left
       Iter. #3: Mon 2027-02-01 03:00:00 UTC
       From now: 1 month 27 days left
       Iter. #4: Mon 2027-03-01 03:00:00 UTC
       From now: 2 months 25 days left
       Iter. #5: Mon 2027-04-05 03:00:00 UTC
       From now: 3 months 30 days left
"""


def test_calendar_gap_is_the_longest_time_between_two_runs() -> None:
    assert kc.kubeforge_calendar_gap_days(WEEKLY) == 7
    assert kc.kubeforge_calendar_gap_days(FIRST_MONDAY) == 35
    assert kc.kubeforge_calendar_gap_days("    Next elapse: Mon 2026-12-07 03:00:00 UTC\n") == 0


def test_calendar_gap_reads_what_systemd_analyze_prints() -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze is missing: preflight runs it to check the timer's calendar")
    done = subprocess.run(
        [analyze, "calendar", "--iterations=30", "*-*-* 00/6:00:00"],
        capture_output=True,
        text=True,
        check=True,
        env={"TZ": "UTC", "LC_ALL": "C", "PATH": "/usr/bin:/bin"},
    )
    assert kc.kubeforge_calendar_gap_days(done.stdout) == 1  # 6 hours, rounded up


def analyzed(stdout: str, rc: int = 0, stderr: str = "") -> dict[str, Any]:
    return {"rc": rc, "stdout": stdout, "stderr": stderr}


def test_auto_renew_is_refused_without_systemd_on_the_control_host() -> None:
    errors = kc.kubeforge_auto_renew_errors(True, False, "Mon *-*-* 03:00:00", {}, 30)
    assert len(errors) == 1 and "does not run systemd" in errors[0]
    assert "auto_renew_certificates: false" in errors[0]
    assert kc.kubeforge_auto_renew_errors(False, False, "x", {}, 30) == []
    assert kc.kubeforge_auto_renew_errors("false", False, "x", {}, 30) == []


def test_auto_renew_refuses_a_calendar_systemd_refuses_or_runs_too_rarely() -> None:
    bad = kc.kubeforge_auto_renew_errors(
        True, True, "Mon bogus", analyzed("", 1, "Failed to parse calendar specification"), 30
    )
    assert bad == [
        "auto_renew_certificates_systemd_calendar 'Mon bogus' is not a calendar systemd accepts: "
        "Failed to parse calendar specification"
    ]
    rare = kc.kubeforge_auto_renew_errors(True, True, "first Monday", analyzed(FIRST_MONDAY), 30)
    assert len(rare) == 1 and "runs up to 35 days apart" in rare[0] and "to 42 or more" in rare[0]
    assert kc.kubeforge_auto_renew_errors(True, True, "m", analyzed(FIRST_MONDAY), 42) == []
    assert kc.kubeforge_auto_renew_errors("true", True, "w", analyzed(WEEKLY), 30) == []


def test_exec_line_quotes_what_systemd_would_split_or_expand() -> None:
    line = kc.kubeforge_systemd_exec(["/usr/bin/python3", "-i", "/a b/h.yml", "x=100%", "$HOME"])
    assert line == '/usr/bin/python3 -i "/a b/h.yml" x=100%% "$$HOME"'
    assert kc.kubeforge_systemd_exec(['say "hi"\\']) == '"say \\"hi\\"\\\\"'


def test_the_timer_renews_the_due_leaves_of_this_inventory_with_this_checkout() -> None:
    assert kc.kubeforge_renewal_args(["/inv/a.yml", "/inv/b.ini"], "/src/kubeforge/") == [
        "-i",
        "/inv/a.yml",
        "-i",
        "/inv/b.ini",
        "/src/kubeforge/renew-certificates.yml",
        "-e",
        "certificates_renew_all=false",
    ]


def render_units(calendar: str) -> dict[str, Any]:
    # role_path: what Ansible sets for the role's tasks (here a play's task renders).
    return render(
        {"node1": {}},
        {"kube_control_plane": ["node1"], "etcd": ["node1"]},
        {
            "auto_renew_certificates": True,
            "auto_renew_certificates_systemd_calendar": calendar,
            "role_path": str(REPO / "roles" / "certificates"),
        },
        {
            "name": "certificates_timer_name",
            "service": template("certificates/templates/renewal.service.j2"),
            "timer": template("certificates/templates/renewal.timer.j2"),
            "inventories": "ansible_inventory_sources",
            "python": "ansible_playbook_python",
        },
        ["roles/certificates/defaults/main.yml"],
    )


def test_timer_units_render_as_systemd_takes_them(tmp_path: Path) -> None:
    rendered = render_units("Mon *-*-* 03:00:00")
    name = rendered["name"]
    assert name.startswith("kubeforge-renew-certificates-") and len(name) == 39
    service, timer = rendered["service"], rendered["timer"]
    (inventory,) = rendered["inventories"]
    exec_start = (
        f"ExecStart={rendered['python']} -m ansible playbook -i {inventory} "
        f"{REPO}/renew-certificates.yml -e certificates_renew_all=false"
    )
    assert exec_start in service.splitlines()
    assert f"User={getpass.getuser()}" in service.splitlines()
    assert f"WorkingDirectory={REPO}" in service.splitlines()
    assert f"Environment=ANSIBLE_CONFIG={REPO}/ansible.cfg" in service.splitlines()
    assert "Type=oneshot" in service.splitlines()
    assert "OnCalendar=Mon *-*-* 03:00:00" in timer.splitlines()
    assert "Persistent=true" in timer.splitlines()
    assert "WantedBy=timers.target" in timer.splitlines()
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze is missing: it checks the rendered units")
    (tmp_path / f"{name}.service").write_text(service)
    (tmp_path / f"{name}.timer").write_text(timer)
    done = subprocess.run(
        [
            analyze,
            "verify",
            "--man=no",
            str(tmp_path / f"{name}.timer"),
            f"{tmp_path}/{name}.service",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_the_timers_python_is_the_one_running_ansible() -> None:
    # The unit runs `<python> -m ansible playbook`: that Python must have Ansible.
    done = subprocess.run(
        [sys.executable, "-m", "ansible", "playbook", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and "ansible-playbook" in done.stdout, done.stderr


def test_preflight_checks_the_renewal_settings_types() -> None:
    ok = {
        "certificates_renew_all": "false",
        "auto_renew_certificates": True,
        "auto_renew_certificates_systemd_calendar": "Mon *-*-* 03:00:00",
    }
    assert inv.check_values(ok) == []
    assert inv.check_values({"auto_renew_certificates": "weekly"}) == [
        "auto_renew_certificates 'weekly' is not a boolean (true or false)"
    ]
    assert inv.check_values({"certificates_renew_all": 2}) == [
        "certificates_renew_all 2 is not a boolean (true or false)"
    ]
    for bad in ("", "  ", 7, "Mon\n03:00"):
        errors = inv.check_values({"auto_renew_certificates_systemd_calendar": bad})
        assert len(errors) == 1 and "is not a systemd calendar expression" in errors[0], bad
