"""Render the kubespray verdict table (plugins/kubespray/variables.yml) into
docs/kubespray.md, between its BEGIN/END kubespray-table markers.

    python tests/tools/render_kubespray_doc.py           rewrite the section
    python tests/tools/render_kubespray_doc.py --check   exit 1 when it is stale

`make docs` runs the first; tests/unit/test_kubespray_table.py the second's logic.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from doc_section import Section

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "plugins" / "filter"))

import kubeforge_kubespray as table  # noqa: E402 - found through the path above

DOC = REPO / "docs" / "kubespray.md"
BEGIN = "<!-- BEGIN kubespray-table -->"
END = "<!-- END kubespray-table -->"
SECTION = Section(DOC, BEGIN, END)
MAX_DEFAULT = 70
SECTIONS = (
    ("honored", "Honored", "Same name and meaning in kubeforge: preflight says nothing."),
    ("alias", "Alias", "Read as kubeforge's variable, with a deprecation warning."),
    (
        "unsupported",
        "Unsupported",
        "Refused before any host changes unless set to kubespray's default (or to what "
        "kubeforge does anyway); then a note.",
    ),
    ("not_applicable", "Not applicable", "A note when set; nothing else happens."),
)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _code(value: Any) -> str:
    text = table.show(value) if not isinstance(value, str) else " ".join(value.split())
    if len(text) > MAX_DEFAULT:
        text = text[: MAX_DEFAULT - 1] + "…"
    return "`" + _cell(text).replace("`", "'") + "`" if text else "`''`"


def _name(entry: Mapping[str, Any]) -> str:
    return f"`{entry['name']}`" if "name" in entry else f"`{entry['prefix']}*`"


def _what(entry: Mapping[str, Any]) -> str:
    parts = [
        str(entry.get("note") or ("As in kubespray." if entry["verdict"] == "honored" else ""))
    ]
    if entry.get("use"):
        use = str(entry["use"])
        parts.append(f"Use `{use}`." if entry["verdict"] == "alias" else f"Instead: {use}.")
    if entry.get("accepted"):
        parts.append("Also accepted: " + ", ".join(_code(v) for v in entry["accepted"]) + ".")
    return _cell(" ".join(p for p in parts if p))


def kubeforge_defaults() -> dict[str, Any]:
    """kubeforge's own defaults, shown beside kubespray's for the names it reads."""
    merged: dict[str, Any] = {}
    for path in sorted(REPO.glob("roles/*/defaults/**/*.yml")):
        merged.update(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    return merged


def _rows(entries: Iterable[Mapping[str, Any]], ours: Mapping[str, Any] | None) -> list[str]:
    """Table rows; with `ours`, a column of kubeforge's defaults (of `use` for an alias)."""
    head = "| Variable | kubespray's default |"
    rows = [
        head + (" kubeforge's default |" if ours is not None else "") + " What kubeforge does |"
    ]
    rows.append("| --- " * (4 if ours is not None else 3) + "|")
    for entry in entries:
        cells = [_name(entry), _code(entry["default"]) if "default" in entry else ""]
        if ours is not None:
            own = str(entry.get("use") or entry.get("name"))
            cells.append(_code(ours[own]) if own in ours else "")
        rows.append("| " + " | ".join([*cells, _what(entry)]) + " |")
    return rows


def render(entries: Sequence[Mapping[str, Any]], ours: Mapping[str, Any]) -> str:
    """The section between the markers, markers excluded."""
    counts = {verdict: sum(e["verdict"] == verdict for e in entries) for verdict, _, _ in SECTIONS}
    lines = [
        "Generated from `plugins/kubespray/variables.yml` by `make docs`; do not edit by hand.",
        "",
        " · ".join(f"{title}: {counts[verdict]}" for verdict, title, _ in SECTIONS),
    ]
    for verdict, title, meaning in SECTIONS:
        chosen = [e for e in entries if e["verdict"] == verdict]
        named = sorted((e for e in chosen if "name" in e), key=lambda e: str(e["name"]))
        families = sorted((e for e in chosen if "prefix" in e), key=lambda e: str(e["prefix"]))
        column = ours if verdict in ("honored", "alias") else None
        lines += [
            "",
            f"### {title} ({len(chosen)})",
            "",
            meaning,
            "",
            *_rows(named + families, column),
        ]
    return "\n".join(lines)


def expected(doc: str) -> str:
    return SECTION.replace(doc, render(table.read_table(), kubeforge_defaults()))


def main(argv: Sequence[str] | None = None) -> int:
    return SECTION.main(argv, expected, __doc__)


if __name__ == "__main__":
    sys.exit(main())
