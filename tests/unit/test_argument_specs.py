"""The argument specs are the one declaration of every role variable.

- Every role documents every variable of its defaults in meta/argument_specs.yml,
  each option with a description (docs/variables.md's reference is rendered from
  them).
- A variable is declared by one role only: the cluster-wide ones by
  kubeforge_defaults, a role's own (role-prefixed) ones by that role. Ansible
  validates only the options an entry point lists, so another role has no reason
  to restate one; entry points of one role that share an option repeat the main
  entry point's declaration (a YAML alias), never a copy of their own.
- A spec's `default` is the value of the role's defaults file, exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROLES = Path(__file__).resolve().parents[2] / "roles"


def role_dirs() -> list[Path]:
    return sorted(p for p in ROLES.iterdir() if (p / "meta" / "argument_specs.yml").is_file())


def role_defaults(role: Path) -> dict[str, Any]:
    files = [role / "defaults" / "main.yml", *sorted((role / "defaults" / "main").glob("*.yml"))]
    merged: dict[str, Any] = {}
    for path in files:
        if path.is_file():
            merged.update(yaml.safe_load(path.read_text()) or {})
    return merged


def entry_points(role: Path) -> dict[str, dict[str, Any]]:
    specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    return {name: dict(spec.get("options") or {}) for name, spec in specs.items()}


def declaring_roles() -> dict[str, set[str]]:
    """Variable -> the roles whose spec declares it (any entry point)."""
    found: dict[str, set[str]] = {}
    for role in role_dirs():
        for options in entry_points(role).values():
            for name in options:
                found.setdefault(name, set()).add(role.name)
    return found


def owners() -> dict[str, str]:
    """Variable -> the role whose defaults set it (the one that declares it)."""
    return {name: role.name for role in role_dirs() for name in role_defaults(role)}


@pytest.mark.parametrize("role", role_dirs(), ids=lambda p: p.name)
def test_role_documents_every_default(role: Path) -> None:
    options = entry_points(role)["main"]
    missing = set(role_defaults(role)) - set(options)
    assert not missing, f"{role.name}: undocumented defaults {sorted(missing)}"


@pytest.mark.parametrize("role", role_dirs(), ids=lambda p: p.name)
def test_every_option_is_described(role: Path) -> None:
    undescribed = [
        f"{entry}: {name}"
        for entry, options in entry_points(role).items()
        for name, opt in options.items()
        if not " ".join(str(opt.get("description") or "").split())
    ]
    assert not undescribed, f"{role.name}: options without description {undescribed}"


@pytest.mark.parametrize("role", role_dirs(), ids=lambda p: p.name)
def test_options_are_declared_by_one_role(role: Path) -> None:
    declared, owner = declaring_roles(), owners()
    problems = []
    for options in entry_points(role).values():
        for name in options:
            if owner.get(name, role.name) != role.name:
                problems.append(f"{name} (a variable of role {owner[name]})")
            elif name not in owner and declared[name] != {role.name}:
                problems.append(f"{name} (also declared by {sorted(declared[name] - {role.name})})")
    assert not problems, (
        f"roles/{role.name}/meta/argument_specs.yml restates options declared elsewhere; "
        f"keep one declaration, in the role that owns the variable: {sorted(set(problems))}"
    )


@pytest.mark.parametrize("role", role_dirs(), ids=lambda p: p.name)
def test_entry_points_repeat_the_main_declaration(role: Path) -> None:
    points = entry_points(role)
    main = points["main"]
    copies = [
        f"{entry}: {name}"
        for entry, options in points.items()
        if entry != "main"
        for name, option in options.items()
        if name in main and option != main[name]
    ]
    assert not copies, (
        f"{role.name}: entry points declare an option of main differently "
        f"(use the alias of main's declaration, `name: *name`): {copies}"
    )


@pytest.mark.parametrize("role", role_dirs(), ids=lambda p: p.name)
def test_spec_defaults_are_the_real_ones(role: Path) -> None:
    """The real default is the value in the defaults of the role owning the variable."""
    defaults = {k: v for other in role_dirs() for k, v in role_defaults(other).items()}
    wrong = []
    for entry, options in entry_points(role).items():
        for name, option in options.items():
            if "default" not in option:
                continue
            if name not in defaults:
                wrong.append(f"{entry}: {name}: the spec has a default, no defaults file sets it")
            elif option["default"] != defaults[name]:
                wrong.append(
                    f"{entry}: {name}: spec {option['default']!r}, defaults {defaults[name]!r}"
                )
    assert not wrong, f"{role.name}: spec defaults differ from the real ones:\n" + "\n".join(wrong)
