"""inventory/sample documents every user-facing variable with its true default,
docs/variables.md lists them all, and the sample inventories parse into the
groups a cluster needs.

The sample shows each variable commented out with its default::

    # Explanation, one to three lines.
    # kube_version: 1.37.2
    # kube_supported_versions:
    #   - 1.37.2

A line `# name: value` (one space after `#`) starts an entry; the lines after
it that start with `#` and two or more spaces continue its value. Examples
inside explanations are indented further (`#   name: ...`) and never follow an
entry line directly.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubeforge_inventory as inv
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ROLES = REPO / "roles"
SAMPLE = REPO / "inventory" / "sample"
DEFAULTS_ROLE = ROLES / "kubeforge_defaults"
VARIABLES_DOC = REPO / "docs" / "variables.md"

_ENTRY = re.compile(r"^# ([a-z_][a-z0-9_]*):(?:\s|$)")
_CONTINUATION = "#  "


@dataclass(frozen=True)
class Entry:
    name: str
    value: Any
    where: str  # file:line, for messages


def spec_options(role: Path) -> dict[str, Any]:
    spec = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())
    options: dict[str, Any] = spec["argument_specs"]["main"].get("options") or {}
    return options


def role_defaults(role: Path) -> dict[str, Any]:
    files = [role / "defaults" / "main.yml", *sorted((role / "defaults" / "main").glob("*.yml"))]
    merged: dict[str, Any] = {}
    for path in files:
        if path.is_file():
            merged.update(yaml.safe_load(path.read_text()) or {})
    return merged


def all_roles() -> list[Path]:
    return sorted(p for p in ROLES.iterdir() if (p / "meta" / "argument_specs.yml").is_file())


def known_defaults() -> tuple[set[str], dict[str, Any]]:
    """Every variable some role documents, and the defaults of those that have
    one. A kubeforge_defaults default wins over another role's copy."""
    names: set[str] = set()
    defaults: dict[str, Any] = {}
    for role in all_roles():
        if role == DEFAULTS_ROLE:
            continue
        options = spec_options(role)
        names |= set(options)
        defaults.update({k: v for k, v in role_defaults(role).items() if k in options})
    names |= set(spec_options(DEFAULTS_ROLE))
    defaults.update(role_defaults(DEFAULTS_ROLE))
    return names, defaults


def commented_entries(path: Path) -> list[Entry]:
    lines = path.read_text().splitlines()
    entries: list[Entry] = []
    i = 0
    while i < len(lines):
        match = _ENTRY.match(lines[i])
        if match is None:
            i += 1
            continue
        block = [lines[i][2:]]
        j = i + 1
        while j < len(lines) and lines[j].startswith(_CONTINUATION):
            block.append(lines[j][2:])
            j += 1
        where = f"{path.relative_to(REPO)}:{i + 1}"
        try:
            parsed = yaml.safe_load("\n".join(block))
        except yaml.YAMLError as exc:
            parsed = exc
        if not isinstance(parsed, dict) or set(parsed) != {match[1]}:
            pytest.fail(
                f"{where}: '# {match[1]}:' reads as a commented variable but is not valid "
                f"YAML once uncommented ({parsed}); reword an explanation that starts so"
            )
        entries.append(Entry(match[1], parsed[match[1]], where))
        i = j
    return entries


def set_entries(path: Path) -> list[Entry]:
    data = yaml.safe_load(path.read_text()) or {}
    return [Entry(k, v, f"{path.relative_to(REPO)}") for k, v in data.items()]


def sample_files() -> list[Path]:
    return sorted((SAMPLE / "group_vars").rglob("*.yml"))


def sample_entries() -> list[Entry]:
    return [e for path in sample_files() for e in commented_entries(path) + set_entries(path)]


def normalised(value: Any) -> Any:
    """Folded YAML strings differ from their one-line form in whitespace only."""
    return " ".join(value.split()) if isinstance(value, str) else value


def test_sample_has_group_vars() -> None:
    assert {p.parent.name for p in sample_files()} == {"all", "k8s_cluster"}, sample_files()


def test_sample_shows_every_user_facing_variable() -> None:
    shown = {e.name for e in sample_entries()}
    missing = sorted(set(spec_options(DEFAULTS_ROLE)) - shown)
    assert not missing, (
        f"variables of roles/kubeforge_defaults/meta/argument_specs.yml missing from "
        f"inventory/sample/group_vars (add them as '# name: default'): {missing}"
    )


def test_sample_shows_each_variable_once() -> None:
    seen: dict[str, list[str]] = {}
    for entry in sample_entries():
        seen.setdefault(entry.name, []).append(entry.where)
    twice = {k: v for k, v in seen.items() if len(v) > 1}
    assert not twice, f"variables shown more than once in the sample: {twice}"


def test_sample_shows_the_role_defaults() -> None:
    names, defaults = known_defaults()
    unknown = [f"{e.where}: {e.name}" for e in sample_entries() if e.name not in names]
    assert not unknown, (
        "the sample shows variables no role documents in meta/argument_specs.yml "
        f"(a typo, or a variable that was removed): {unknown}"
    )
    wrong = [
        f"{e.where}: {e.name} shows {e.value!r}, the role default is {defaults[e.name]!r}"
        for e in sample_entries()
        if e.name in defaults and normalised(e.value) != normalised(defaults[e.name])
    ]
    assert not wrong, "the sample's defaults differ from the roles':\n" + "\n".join(wrong)


# docs/variables.md ------------------------------------------------------------


def doc_rows() -> dict[str, list[str]]:
    """Table rows of docs/variables.md by the variable of their first cell."""
    rows: dict[str, list[str]] = {}
    for line in VARIABLES_DOC.read_text().splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if cells and (match := re.fullmatch(r"`([a-z_][a-z0-9_]*)`", cells[0])):
            rows[match[1]] = cells[1:]
    return rows


def shown_scalar(value: Any) -> str | None:
    """How docs/variables.md spells a plain default; None for templates,
    lists and dicts, which are only required to be listed."""
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, int):
        return f"`{value}`"
    if isinstance(value, str) and "{{" not in value:
        return f"`{value}`" if value else '`""`'
    return None


def test_variables_doc_lists_every_variable() -> None:
    rows = doc_rows()
    wanted = set(spec_options(DEFAULTS_ROLE)) | {e.name for e in sample_entries()}
    missing = sorted(wanted - set(rows))
    assert not missing, f"docs/variables.md has no table row for {missing}"


def test_variables_doc_shows_the_role_defaults() -> None:
    rows = doc_rows()
    _, defaults = known_defaults()
    wrong = []
    for name, cells in rows.items():
        expected = shown_scalar(defaults[name]) if name in defaults else None
        if expected is not None and (not cells or expected not in cells[0]):
            wrong.append(f"{name}: default cell {cells[:1]} lacks {expected}")
    assert not wrong, "docs/variables.md shows wrong defaults:\n" + "\n".join(wrong)


# The sample inventories ---------------------------------------------------------

CONTROL_PLANE = {"node1", "node2", "node3"}
WORKERS = {"node4", "node5"}
EXPECTED_GROUPS = {
    "kube_control_plane": CONTROL_PLANE,
    "etcd": CONTROL_PLANE,
    "kube_node": WORKERS,
    "k8s_cluster": CONTROL_PLANE | WORKERS,
    "calico_rr": set(),
}


def ansible_inventory_bin() -> str:
    beside = Path(sys.executable).with_name("ansible-inventory")
    found = str(beside) if beside.is_file() else shutil.which("ansible-inventory")
    if found is None:
        pytest.fail("ansible-inventory not found: run `make setup` and the tests with its pytest")
    return found


@functools.cache
def inventory_list(name: str) -> dict[str, Any]:
    """`ansible-inventory --list` of a sample inventory (read-only: cached)."""
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")}
    run = subprocess.run(
        [ansible_inventory_bin(), "-i", str(SAMPLE / name), "--list"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert run.returncode == 0, (
        f"ansible-inventory -i inventory/sample/{name} failed:\n{run.stderr}"
    )
    data: dict[str, Any] = json.loads(run.stdout)
    return data


def members(listing: dict[str, Any], group: str) -> set[str]:
    entry = listing.get(group) or {}
    hosts = set(entry.get("hosts", []))
    for child in entry.get("children", []):
        hosts |= members(listing, child)
    return hosts


@pytest.fixture(scope="module", params=["hosts.yml", "hosts.ini"])
def listing(request: pytest.FixtureRequest) -> dict[str, Any]:
    return inventory_list(str(request.param))


def test_sample_inventory_groups(listing: dict[str, Any]) -> None:
    groups = {g: members(listing, g) for g in EXPECTED_GROUPS}
    assert groups == EXPECTED_GROUPS
    assert "calico_rr" in listing["all"]["children"], "group calico_rr is not declared"


def test_sample_inventory_host_addresses(listing: dict[str, Any]) -> None:
    hostvars = listing["_meta"]["hostvars"]
    assert set(hostvars) == CONTROL_PLANE | WORKERS
    for host, hvars in hostvars.items():
        assert hvars["ip"] == hvars["ansible_host"], host
        assert str(hvars["ip"]).startswith("192.0.2."), f"{host}: not a documentation address"


def test_yaml_and_ini_samples_agree() -> None:
    yml, ini = inventory_list("hosts.yml"), inventory_list("hosts.ini")
    assert yml["_meta"]["hostvars"] == ini["_meta"]["hostvars"]
    for group in EXPECTED_GROUPS:
        assert members(yml, group) == members(ini, group), group


def test_sample_inventory_passes_the_inventory_checks(listing: dict[str, Any]) -> None:
    groups = {g: sorted(members(listing, g)) for g in [*EXPECTED_GROUPS, "all"]}
    _, defaults = known_defaults()
    settings = {k: defaults[k] for k in inv.SETTINGS}
    assert inv.kubeforge_inventory_errors(groups, listing["_meta"]["hostvars"], settings) == []
