"""Every role documents every variable of its defaults in meta/argument_specs.yml."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROLES = Path(__file__).resolve().parents[2] / "roles"


def role_dirs() -> list[Path]:
    return sorted(p for p in ROLES.iterdir() if (p / "tasks").is_dir())


def defaults_of(role: Path) -> set[str]:
    files = [role / "defaults" / "main.yml", *sorted((role / "defaults" / "main").glob("*.yml"))]
    names: set[str] = set()
    for path in files:
        if path.is_file():
            names |= set(yaml.safe_load(path.read_text()) or {})
    return names


@pytest.mark.parametrize("role", role_dirs(), ids=lambda p: p.name)
def test_role_documents_every_default(role: Path) -> None:
    spec_file = role / "meta" / "argument_specs.yml"
    assert spec_file.is_file(), f"{role.name} has no meta/argument_specs.yml"
    options = yaml.safe_load(spec_file.read_text())["argument_specs"]["main"].get("options", {})
    missing = defaults_of(role) - set(options)
    assert not missing, f"{role.name}: undocumented defaults {sorted(missing)}"
    undescribed = [name for name, opt in options.items() if not opt.get("description")]
    assert not undescribed, f"{role.name}: options without description {undescribed}"
