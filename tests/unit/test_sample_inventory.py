"""inventory/sample documents every user-facing variable with its true default,
and the sample inventories parse into the groups a cluster needs.

The sample shows each variable commented out with its default::

    # Explanation, one to three lines.
    # kube_version: 1.37.2
    # kube_supported_versions:
    #   - 1.37.2

A line `# name: value` (one space after `#`) starts an entry; the lines after
it that start with `#` and two or more spaces continue its value. Examples
inside explanations are indented further (`#   name: ...`) and never follow an
entry line directly.

Every name the sample shows, commented out or set, is an option of a role's
meta/argument_specs.yml (the one place variables are declared and described;
docs/variables.md's reference is rendered from them) or a kubespray name of
plugins/kubespray/variables.yml, and its value is the real default: the role's
defaults file, or for a kubespray name the default the table gives (what passes
preflight with a note). A line may show another value only when it says so with
a trailing comment starting `# changed`, e.g.
`kube_proxy_mode: ipvs  # changed: MetalLB needs strictARP`.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubeforge_inventory as inv
import pytest
import yaml
from ansible_render import ansible_bin

REPO = Path(__file__).resolve().parents[2]
ROLES = REPO / "roles"
SAMPLE = REPO / "inventory" / "sample"
DEFAULTS_ROLE = ROLES / "kubeforge_defaults"
KUBESPRAY_TABLE = REPO / "plugins" / "kubespray" / "variables.yml"

_ENTRY = re.compile(r"^# ([a-z_][a-z0-9_]*):(?:\s|$)")
_CONTINUATION = "#  "
_CHANGED = re.compile(r"\s#\s*changed\b")


@dataclass(frozen=True)
class Entry:
    name: str
    value: Any
    where: str  # file:line, for messages
    changed: bool = False  # the line says it shows another value than the default


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


def _rel(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


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
        where = f"{_rel(path)}:{i + 1}"
        try:
            parsed = yaml.safe_load("\n".join(block))
        except yaml.YAMLError as exc:
            parsed = exc
        if not isinstance(parsed, dict) or set(parsed) != {match[1]}:
            pytest.fail(
                f"{where}: '# {match[1]}:' reads as a commented variable but is not valid "
                f"YAML once uncommented ({parsed}); reword an explanation that starts so"
            )
        entries.append(Entry(match[1], parsed[match[1]], where, bool(_CHANGED.search(block[0]))))
        i = j
    return entries


def set_entries(path: Path) -> list[Entry]:
    text = path.read_text()
    data = yaml.safe_load(text) or {}
    lines = {
        match[1]: (number, line)
        for number, line in enumerate(text.splitlines(), 1)
        if (match := re.match(r"([a-z_][a-z0-9_]*):", line))
    }
    entries = []
    for key, value in data.items():
        number, line = lines.get(key, (0, ""))
        entries.append(Entry(key, value, f"{_rel(path)}:{number}", bool(_CHANGED.search(line))))
    return entries


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


def kubespray_defaults() -> tuple[set[str], tuple[str, ...], dict[str, Any]]:
    """The kubespray table's names, family prefixes and defaults."""
    entries = yaml.safe_load(KUBESPRAY_TABLE.read_text())["variables"]
    names = {e["name"] for e in entries if "name" in e}
    prefixes = tuple(e["prefix"] for e in entries if "prefix" in e)
    defaults = {e["name"]: e["default"] for e in entries if "name" in e and "default" in e}
    return names, prefixes, defaults


def real_defaults() -> tuple[set[str], dict[str, Any]]:
    """Names the sample may show and their real defaults: kubeforge's roles
    first, kubespray's table for the names kubeforge does not declare."""
    names, defaults = known_defaults()
    ks_names, _, ks_defaults = kubespray_defaults()
    return names | ks_names, {**ks_defaults, **defaults}


def test_sample_shows_only_declared_names() -> None:
    names, _ = real_defaults()
    _, prefixes, _ = kubespray_defaults()
    unknown = [
        f"{e.where}: {e.name}"
        for e in sample_entries()
        if e.name not in names and not e.name.startswith(prefixes)
    ]
    assert not unknown, (
        "the sample shows variables no role declares in meta/argument_specs.yml and "
        f"plugins/kubespray/variables.yml does not list (a typo, or a removed variable): {unknown}"
    )


def test_sample_shows_the_real_defaults() -> None:
    _, defaults = real_defaults()
    wrong = [
        f"{e.where}: {e.name} shows {e.value!r}, the default is {defaults[e.name]!r}"
        for e in sample_entries()
        if e.name in defaults
        and not e.changed
        and normalised(e.value) != normalised(defaults[e.name])
    ]
    assert not wrong, (
        "the sample shows values other than the defaults (a line that changes one says so "
        "with a trailing '# changed: ...'):\n" + "\n".join(wrong)
    )


def test_changed_marker_is_recognised(tmp_path: Path) -> None:
    path = tmp_path / "x.yml"
    path.write_text(
        "---\n# kube_proxy_mode: ipvs  # changed: for MetalLB\n# kube_log_level: 2\n"
        "kubelet_max_pods: 200  # changed\ndns_domain: x.local\n"
    )
    found = {e.name: e.changed for e in commented_entries(path) + set_entries(path)}
    assert found == {
        "kube_proxy_mode": True,
        "kube_log_level": False,
        "kubelet_max_pods": True,
        "dns_domain": False,
    }


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


@functools.cache
def inventory_list(name: str) -> dict[str, Any]:
    """`ansible-inventory --list` of a sample inventory (read-only: cached)."""
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")}
    run = subprocess.run(
        [ansible_bin("ansible-inventory"), "-i", str(SAMPLE / name), "--list"],
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
    # apiserver_ha_mode's default is a template: local_lb without loadbalancer_apiserver.
    settings = {k: defaults[k] for k in inv.SETTINGS} | {"apiserver_ha_mode": "local_lb"}
    assert inv.kubeforge_inventory_errors(groups, listing["_meta"]["hostvars"], settings) == []
