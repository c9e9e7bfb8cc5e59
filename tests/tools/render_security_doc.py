"""Render the CIS Kubernetes Benchmark table (tests/cis/checks.yml) into
docs/security.md, between its BEGIN/END cis markers.

    python tests/tools/render_security_doc.py           rewrite the section
    python tests/tools/render_security_doc.py --check   exit 1 when it is stale

`make docs` runs the first; tests/unit/test_security_doc.py the second's logic.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from doc_section import Section

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "cis"))

import cis_check  # noqa: E402 - found through the path above

DOC = REPO / "docs" / "security.md"
BEGIN = "<!-- BEGIN cis -->"
END = "<!-- END cis -->"
SECTION = Section(DOC, BEGIN, END)
VERDICTS = (("pass", "Pass"), ("not applicable", "Not applicable"), ("manual", "Manual"))


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _row(check: cis_check.Check) -> str:
    variables = ", ".join(f"`{v}`" for v in check.variables)
    cells = [check.id, _cell(check.title), check.verdict, _cell(check.reason), variables]
    return "| " + " | ".join(cells) + " |"


def counts(checks: Sequence[cis_check.Check]) -> dict[str, int]:
    return {verdict: sum(c.verdict == verdict for c in checks) for verdict, _ in VERDICTS}


def render(catalogue: cis_check.Catalogue) -> str:
    """The section between the markers, markers excluded."""
    bench = catalogue.benchmark
    total = counts(catalogue.checks)
    lines = [
        "Generated from `tests/cis/checks.yml` by `make docs`; do not edit by hand.",
        "",
        f"{bench['name']} {bench['version']}, numbered as {bench['ids']}, and kubeforge's "
        "own additions (KF). **pass**: kubeforge sets it up so, and "
        "`tests/cis/cis_check.py` checks it on every host in scope; **not applicable**: "
        "the item's subject does not exist in kubeforge's layout; **manual**: the "
        "operator's decision (kubeforge's default is said).",
        "",
        " · ".join(f"{title}: {total[verdict]}" for verdict, title in VERDICTS),
    ]
    for section, title in catalogue.sections.items():
        chosen = [c for c in catalogue.checks if catalogue.section(c.id) == section]
        if not chosen:
            continue
        tally = counts(chosen)
        summary = ", ".join(f"{n} {v}" for v, n in tally.items() if n)
        lines += [
            "",
            f"### {section} {title} ({summary})",
            "",
            "| Id | Check | Verdict | Why | Variable |",
            "| --- | --- | --- | --- | --- |",
            *(_row(c) for c in chosen),
        ]
    return "\n".join(lines)


def expected(doc: str) -> str:
    return SECTION.replace(doc, render(cis_check.load_catalogue()))


def main(argv: Sequence[str] | None = None) -> int:
    return SECTION.main(argv, expected, __doc__)


if __name__ == "__main__":
    sys.exit(main())
