"""docs/variables.md's reference is what tests/tools/render_variables_doc.py
renders from the argument specs and defaults files, and it lists every option."""

from __future__ import annotations

import re
from pathlib import Path

import render_variables_doc as renderer
import yaml

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "variables.md"


def test_reference_is_rendered_from_the_specs() -> None:
    doc = DOC.read_text(encoding="utf-8")
    assert renderer.expected(doc) == doc, (
        "docs/variables.md's reference is stale: run `make docs` "
        "(tests/tools/render_variables_doc.py)"
    )


def test_reference_lists_every_option() -> None:
    rows = set(
        re.findall(r"^\| `([a-z_][a-z0-9_]*)` \|", renderer.SECTION.inside(DOC.read_text()), re.M)
    )
    missing = set()
    for path in (REPO / "roles").glob("*/meta/argument_specs.yml"):
        for spec in yaml.safe_load(path.read_text())["argument_specs"].values():
            missing |= set(spec.get("options") or {}) - rows
    assert not missing, f"options missing from docs/variables.md's reference: {sorted(missing)}"


def test_show_writes_defaults_as_yaml() -> None:
    show = renderer.show
    assert show("") == '""'
    assert show(True) == "true"
    assert show([1, "a"]) == "[1, a]"
    assert show({"k": ""}) == "{k: ''}"
    assert show("{{ a\n   if b }}") == "{{ a if b }}"
