"""Render the variable reference of docs/variables.md, between its BEGIN/END
variables-reference markers, from the roles' meta/argument_specs.yml (type,
description) and defaults files (default, as the file writes it).

    python tests/tools/render_variables_doc.py           rewrite the section
    python tests/tools/render_variables_doc.py --check   exit 1 when it is stale

`make docs` runs the first; tests/unit/test_variables_doc.py the second's logic.
One table per defaults file of roles/kubeforge_defaults (the cluster-wide
variables), then one per role for its own role-prefixed settings, rows in the
order of the defaults file.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from doc_section import Section

REPO = Path(__file__).resolve().parents[2]
ROLES = REPO / "roles"
DEFAULTS_ROLE = "kubeforge_defaults"
DOC = REPO / "docs" / "variables.md"
BEGIN = "<!-- BEGIN variables-reference -->"
END = "<!-- END variables-reference -->"
SECTION = Section(DOC, BEGIN, END)
MAX_DEFAULT = 100
_COMMENTED = re.compile(r"^# ([a-z_][a-z0-9_]*):(?:\s|$)")


@dataclass(frozen=True)
class Row:
    name: str
    option: Mapping[str, Any]
    default: str  # the cell, already formatted


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def entry_points(role: str) -> dict[str, dict[str, Any]]:
    """Options of each entry point of a role's argument spec."""
    specs = load_yaml(ROLES / role / "meta" / "argument_specs.yml")["argument_specs"]
    return {name: dict(spec.get("options") or {}) for name, spec in specs.items()}


def spec_roles() -> list[str]:
    return sorted(p.parent.parent.name for p in ROLES.glob("*/meta/argument_specs.yml"))


def defaults_files(role: str) -> list[Path]:
    single = ROLES / role / "defaults" / "main.yml"
    split = sorted((ROLES / role / "defaults" / "main").glob("*.yml"))
    return [single, *split] if single.is_file() else split


def file_entries(path: Path) -> list[tuple[str, Any, bool]]:
    """(name, value, commented) in file order: what the file sets, and the
    `# name: value` lines it shows commented out (unset by default)."""
    text = path.read_text(encoding="utf-8")
    values = yaml.safe_load(text) or {}
    found: dict[str, tuple[int, Any, bool]] = {}
    root = yaml.compose(text)
    if isinstance(root, yaml.MappingNode):
        for key, _ in root.value:
            found[key.value] = (key.start_mark.line, values[key.value], False)
    for number, line in enumerate(text.splitlines()):
        match = _COMMENTED.match(line)
        if match and match[1] not in found:
            found[match[1]] = (number, None, True)
    return [(n, v, c) for n, (_, v, c) in sorted(found.items(), key=lambda kv: kv[1][0])]


def _code(text: str) -> str:
    fence = "``" if "`" in text else "`"
    pad = " " if fence == "``" else ""
    return f"{fence}{pad}{text}{pad}{fence}".replace("|", "\\|")


def show(value: Any) -> str:
    """A default as the defaults file writes it, on one line."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return " ".join(value.split()) if value.strip() else '""'
    if isinstance(value, list | dict):
        dumped = yaml.safe_dump(value, default_flow_style=True, width=10**9, sort_keys=False)
        return " ".join(dumped.split())
    return str(value)


def default_cell(value: Any, commented: bool) -> str:
    if commented:
        return "*unset*"
    text = show(value)
    return _code(text) if len(text) <= MAX_DEFAULT else "*long: see the file*"


def type_cell(option: Mapping[str, Any]) -> str:
    kind = str(option.get("type", "str"))
    if "elements" in option:
        kind = f"{kind} of {option['elements']}"
    if option.get("choices"):
        kind += ": " + ", ".join(_code(show(c)) for c in option["choices"])
    return kind


def description(option: Mapping[str, Any]) -> str:
    text = option.get("description") or ""
    if isinstance(text, list):
        text = " ".join(str(t) for t in text)
    return " ".join(str(text).split()).replace("|", "\\|")


def table(rows: Sequence[Row]) -> list[str]:
    lines = ["| Variable | Type | Default | Description |", "| --- | --- | --- | --- |"]
    lines += [
        f"| `{r.name}` | {type_cell(r.option)} | {r.default} | {description(r.option)} |"
        for r in rows
    ]
    return lines


def rows_of(path: Path, options: Mapping[str, Any], taken: set[str]) -> list[Row]:
    rows = []
    for name, value, commented in file_entries(path):
        if name in options and name not in taken:
            taken.add(name)
            rows.append(Row(name, options[name], default_cell(value, commented)))
    return rows


def declared_elsewhere(role: str) -> set[str]:
    """Variables another role owns: set in its defaults, or cluster-wide."""
    names: set[str] = set()
    for other in spec_roles():
        if other != role:
            names |= {n for path in defaults_files(other) for n, _, _ in file_entries(path)}
    if role != DEFAULTS_ROLE:
        names |= set(entry_points(DEFAULTS_ROLE)["main"])
    return names


def leftover_rows(role: str, taken: set[str]) -> list[Row]:
    """Options no defaults file of the role mentions: role parameters and host
    variables. An option restating another role's variable is not this role's."""
    rows = []
    foreign = declared_elsewhere(role)
    for entry, options in entry_points(role).items():
        for name, option in options.items():
            if name in taken or name in foreign:
                continue
            taken.add(name)
            cell = "*required*" if option.get("required") else "*unset*"
            if entry != "main":
                cell += f" (entry point `{entry}`)"
            rows.append(Row(name, option, cell))
    return rows


def _rel(path: Path) -> str:
    return str(path.relative_to(REPO))


def cluster_wide_section() -> list[str]:
    options = entry_points(DEFAULTS_ROLE)["main"]
    taken: set[str] = set()
    lines = [
        "### Cluster-wide variables",
        "",
        f"Role `{DEFAULTS_ROLE}`, one table per file of "
        f"`{_rel(ROLES / DEFAULTS_ROLE / 'defaults' / 'main')}/`.",
    ]
    for path in defaults_files(DEFAULTS_ROLE):
        rows = rows_of(path, options, taken)
        if rows:
            lines += ["", f"#### {path.name}", "", f"`{_rel(path)}`", "", *table(rows)]
    rest = leftover_rows(DEFAULTS_ROLE, taken)
    if rest:
        lines += ["", "#### Declared without a default", "", *table(rest)]
    return lines


def role_section(role: str) -> list[str]:
    spec = load_yaml(ROLES / role / "meta" / "argument_specs.yml")["argument_specs"]["main"]
    options: dict[str, Any] = {}
    for entry in entry_points(role).values():
        options = {**entry, **options}
    taken: set[str] = set()
    rows = [row for path in defaults_files(role) for row in rows_of(path, options, taken)]
    rows += leftover_rows(role, taken)
    if not rows:
        return []
    where = ", ".join(f"`{_rel(p)}`" for p in defaults_files(role))
    summary = " ".join(str(spec.get("short_description", "")).split())
    return ["", f"#### Role {role}", "", f"{summary}. Defaults: {where}.", "", *table(rows)]


def render() -> str:
    """The section between the markers, markers excluded."""
    lines = [
        "Generated from the roles' `meta/argument_specs.yml` (type, description) and",
        "defaults files (default, as the file writes it) by `make docs`; do not edit by",
        "hand. A default written as a template is evaluated per host.",
        "",
        *cluster_wide_section(),
        "",
        "### Role settings",
        "",
        "Each role's own settings, named with the role's prefix.",
    ]
    for role in spec_roles():
        if role != DEFAULTS_ROLE:
            lines += role_section(role)
    return "\n".join(lines)


def expected(doc: str) -> str:
    return SECTION.replace(doc, render())


def main(argv: Sequence[str] | None = None) -> int:
    return SECTION.main(argv, expected, __doc__)


if __name__ == "__main__":
    sys.exit(main())
