"""docs/security.md's CIS table is what tests/tools/render_security_doc.py
renders from tests/cis/checks.yml: one row per item, with its verdict, why and
variable, and the counts per verdict."""

from __future__ import annotations

import re
from pathlib import Path

import cis_check as cis
import pytest
import render_security_doc as renderer

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "security.md"


def test_table_is_rendered_from_the_checks() -> None:
    doc = DOC.read_text(encoding="utf-8")
    assert renderer.expected(doc) == doc, (
        "docs/security.md's CIS table is stale: run `make docs` "
        "(tests/tools/render_security_doc.py)"
    )


def test_every_check_is_a_row_with_its_verdict() -> None:
    catalogue = cis.load_catalogue()
    text = renderer.SECTION.inside(DOC.read_text(encoding="utf-8"))
    rows = dict(re.findall(r"^\| (\S+) \| .*? \| (pass|not applicable|manual) \|", text, re.M))
    assert rows == {c.id: c.verdict for c in catalogue.checks}


def test_counts_per_verdict_are_shown() -> None:
    catalogue = cis.load_catalogue()
    counts = renderer.counts(catalogue.checks)
    assert sum(counts.values()) == len(catalogue.checks)
    line = f"Pass: {counts['pass']} · Not applicable: {counts['not applicable']} · Manual: "
    assert line + f"{counts['manual']}\n" in renderer.SECTION.inside(
        DOC.read_text(encoding="utf-8")
    )


def test_a_reason_with_a_pipe_stays_in_its_cell() -> None:
    check = cis.Check("9.1", "A | B", ("node",), "manual", "x | y", ("v",), {}, ())
    assert renderer._row(check) == "| 9.1 | A \\| B | manual | x \\| y | `v` |"


def test_a_doc_without_the_markers_is_refused() -> None:
    with pytest.raises(ValueError, match="lacks the markers"):
        renderer.SECTION.replace("# Security\n", "table")
