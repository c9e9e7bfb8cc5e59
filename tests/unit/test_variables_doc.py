"""docs/variables.md's reference is what tests/tools/render_variables_doc.py
renders from the argument specs and defaults files, and it lists every option."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import yaml

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "variables.md"


def _renderer() -> ModuleType:
    path = REPO / "tests" / "tools" / "render_variables_doc.py"
    spec = importlib.util.spec_from_file_location("render_variables_doc", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def reference(doc: str) -> str:
    render = _renderer()
    _, _, rest = doc.partition(render.BEGIN)
    section, _, _ = rest.partition(render.END)
    return section


def test_reference_is_rendered_from_the_specs() -> None:
    doc = DOC.read_text(encoding="utf-8")
    assert _renderer().expected(doc) == doc, (
        "docs/variables.md's reference is stale: run `make docs` "
        "(tests/tools/render_variables_doc.py)"
    )


def test_reference_lists_every_option() -> None:
    rows = set(re.findall(r"^\| `([a-z_][a-z0-9_]*)` \|", reference(DOC.read_text()), re.M))
    missing = set()
    for path in (REPO / "roles").glob("*/meta/argument_specs.yml"):
        for spec in yaml.safe_load(path.read_text())["argument_specs"].values():
            missing |= set(spec.get("options") or {}) - rows
    assert not missing, f"options missing from docs/variables.md's reference: {sorted(missing)}"


def test_show_writes_defaults_as_yaml() -> None:
    show = _renderer().show
    assert show("") == '""'
    assert show(True) == "true"
    assert show([1, "a"]) == "[1, a]"
    assert show({"k": ""}) == "{k: ''}"
    assert show("{{ a\n   if b }}") == "{{ a if b }}"
