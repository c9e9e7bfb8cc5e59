"""Certificate expiry and renewal: the report of module kubeforge_cert_info's
results (certificates-report.yml), the warnings of preflight, and the control
host's renewal timer (auto_renew_certificates: the command it runs, the
systemd quoting of that command, the longest gap between two of its runs).

A certificate here is one entry of the module's `certificates` result: host,
file, part, source (file, kubeconfig or kubelet), subject, issuer, not_after
(UTC, YYYY-MM-DDTHH:MM:SSZ), days_left, is_ca, ...
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

Cert = Mapping[str, Any]

# Ansible runs the timer's playbook as `python -m ansible playbook ARGS`.
RENEW_PLAYBOOK = "renew-certificates.yml"
# The timer renews the due leaves only (what cluster.yml does), not all of them.
RENEW_DUE_ONLY = "certificates_renew_all=false"


def _natural(text: str) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text)]


def _sort_key(cert: Cert) -> tuple[Any, ...]:
    return (cert["not_after"], _natural(str(cert["host"])), cert["file"], cert.get("part", ""))


def _when(cert: Cert) -> datetime:
    return datetime.strptime(str(cert["not_after"]), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _where(cert: Cert) -> str:
    part = cert.get("part") or ""
    return f"{cert['file']} ({part})" if part else str(cert["file"])


# The report ----------------------------------------------------------------------------------


def kubeforge_cert_report(results: Iterable[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The module results of every host as one report: every certificate, the
    soonest to expire first (then by host, file), and every unreadable file."""
    certs = [dict(c) for r in results for c in r.get("certificates") or []]
    errors = [dict(e) for r in results for e in r.get("errors") or []]
    errors.sort(key=lambda e: (_natural(str(e.get("host", ""))), e.get("file", "")))
    return {"certificates": sorted(certs, key=_sort_key), "errors": errors}


def kubeforge_cert_table(certs: Sequence[Cert]) -> list[str]:
    """The report as text lines: a header, then one line per certificate in the
    order given: host, file, subject, days left, expiry, CA."""
    rows = [["HOST", "FILE", "SUBJECT", "DAYS LEFT", "NOT AFTER", "CA"]] + [
        [
            str(c["host"]),
            _where(c),
            str(c["subject"]),
            str(c["days_left"]),
            str(c["not_after"]),
            "CA" if c["is_ca"] else "",
        ]
        for c in certs
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]


# Preflight -----------------------------------------------------------------------------------


def _left(cert: Cert) -> str:
    days = int(cert["days_left"])
    if days < 0:
        return f"EXPIRED {-days} day(s) ago ({cert['not_after']})"
    return f"{days} day(s) left ({cert['not_after']})"


def kubeforge_cert_due(
    certs: Iterable[Cert], renew_days: int, now: datetime | None = None
) -> list[Cert]:
    """The leaf certificates (not CAs) that expire within `renew_days`, as the
    certificates role counts it (kubeforge_leaves_to_issue): the soonest first."""
    limit = (now or datetime.now(UTC)) + timedelta(days=int(renew_days))
    return sorted((c for c in certs if not c["is_ca"] and _when(c) <= limit), key=_sort_key)


def kubeforge_cert_warnings(
    results: Iterable[Mapping[str, Any]],
    renew_days: int,
    run_renews: Any,
    renew_all: Any = False,
    now: datetime | None = None,
) -> list[str]:
    """Preflight's message from the module results of the hosts: a header
    saying whether this run renews the leaf certificates due for renewal, one
    line per such certificate (host, file, subject, days left), then the files
    that could not be read; empty when there is nothing to say."""
    report = kubeforge_cert_report(results)
    due = kubeforge_cert_due(report["certificates"], renew_days, now)
    lines: list[str] = []
    if due:
        if _true(run_renews) and _true(renew_all):
            action = "this run renews them with every other leaf (certificates_renew_all)"
        elif _true(run_renews):
            action = "this run renews them"
        else:
            action = "this run does not renew them: run cluster.yml or renew-certificates.yml"
        lines.append(
            f"Preflight: {len(due)} certificate(s) expire within certificates_renew_before_days "
            f"({int(renew_days)} days); {action}, restarting what reads them one host at a time:"
        )
        for c in due:
            line = f"{c['host']}: {_where(c)} {c['subject']}: {_left(c)}"
            if c.get("source") == "kubelet":
                line += (
                    " (the kubelet's own client certificate: the kubelet renews it itself with "
                    "kubelet_rotate_certificates; kubeforge replaces it when it renews its own)"
                )
            lines.append(line)
    if report["errors"]:
        lines.append(f"Preflight: {len(report['errors'])} certificate file(s) could not be read:")
        lines += kubeforge_cert_errors(report["errors"])
    return lines


def kubeforge_cert_errors(errors: Iterable[Mapping[str, Any]]) -> list[str]:
    """The module's unreadable files as lines: host, file (and field), error."""
    return [
        f"{e.get('host')}: {e.get('file')}{' ' + e['part'] if e.get('part') else ''}: "
        f"{e.get('error')}"
        for e in errors
    ]


def _true(value: Any) -> bool:
    return str(value).lower() in ("true", "yes", "1")


# The renewal timer (auto_renew_certificates) ------------------------------------------------


def kubeforge_renewal_args(inventory_sources: Sequence[str], repo: str) -> list[str]:
    """The arguments of ansible-playbook the control host's timer runs: the
    inventories of this run, renew-certificates.yml of this checkout, due
    leaves only."""
    args: list[str] = []
    for source in inventory_sources:
        args += ["-i", str(source)]
    return [*args, f"{str(repo).rstrip('/')}/{RENEW_PLAYBOOK}", "-e", RENEW_DUE_ONLY]


_PLAIN = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")


def kubeforge_systemd_exec(argv: Sequence[str]) -> str:
    """`argv` as one ExecStart= line: `%` and `$` doubled (systemd's specifiers
    and variables), words with anything but plain characters double-quoted
    with C escapes."""
    words = []
    for arg in argv:
        text = str(arg).replace("%", "%%").replace("$", "$$")
        if not _PLAIN.fullmatch(text):
            text = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
        words.append(text)
    return " ".join(words)


_ELAPSE = re.compile(
    r"^\s*(?:Next elapse|Iter\. #\d+):\s+\w{3} (\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) UTC\s*$", re.M
)


def kubeforge_calendar_gap_days(output: str) -> int:
    """The longest time between two runs of a calendar, in whole days rounded
    up, from `TZ=UTC systemd-analyze calendar --iterations=N <expression>`; 0
    when it lists fewer than two runs."""
    runs = [datetime.strptime(m, "%Y-%m-%d %H:%M:%S") for m in _ELAPSE.findall(output)]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(runs)]
    return math.ceil(max(gaps) / 86400) if gaps else 0


def kubeforge_auto_renew_errors(
    auto_renew: Any,
    has_systemd: bool,
    calendar: str,
    analyze: Mapping[str, Any],
    renew_days: Any,
) -> list[str]:
    """Why auto_renew_certificates cannot be honored on this control host:
    no systemd, a calendar systemd-analyze refuses, or runs further apart than
    certificates_renew_before_days (a leaf not yet due at one run would expire
    before the next). `analyze`: the registered result of systemd-analyze."""
    if not _true(auto_renew):
        return []
    if not has_systemd:
        return [
            "auto_renew_certificates is true, but the control host does not run systemd (PID 1 is "
            "not systemd: /run/systemd/system is missing), and the renewal timer is a systemd "
            "timer on the control host. Set auto_renew_certificates: false and run "
            "renew-certificates.yml (or cluster.yml) at least every certificates_renew_before_days "
            "days from a scheduler of your own"
        ]
    if analyze.get("rc", 1) != 0:
        said = str(analyze.get("stderr") or analyze.get("msg") or analyze.get("stdout") or "")
        return [
            f"auto_renew_certificates_systemd_calendar {calendar!r} is not a calendar "
            f"systemd accepts: {' '.join(said.split())}"
        ]
    gap = kubeforge_calendar_gap_days(str(analyze.get("stdout", "")))
    if gap == 0:
        return [
            f"auto_renew_certificates_systemd_calendar {calendar!r} does not repeat: the timer "
            "must run regularly"
        ]
    if gap >= int(renew_days):
        return [
            f"auto_renew_certificates_systemd_calendar {calendar!r} runs up to {gap} days apart, "
            f"not less than certificates_renew_before_days ({int(renew_days)}): a certificate "
            "not yet due at one run could expire before the next. Raise "
            f"certificates_renew_before_days to {gap + 7} or more, or run the timer more often"
        ]
    return []


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "kubeforge_cert_report": kubeforge_cert_report,
            "kubeforge_cert_table": kubeforge_cert_table,
            "kubeforge_cert_due": kubeforge_cert_due,
            "kubeforge_cert_warnings": kubeforge_cert_warnings,
            "kubeforge_cert_errors": kubeforge_cert_errors,
            "kubeforge_renewal_args": kubeforge_renewal_args,
            "kubeforge_systemd_exec": kubeforge_systemd_exec,
            "kubeforge_calendar_gap_days": kubeforge_calendar_gap_days,
            "kubeforge_auto_renew_errors": kubeforge_auto_renew_errors,
        }
