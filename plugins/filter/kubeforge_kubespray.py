"""What preflight says about kubespray's variables in an inventory (role `preflight`).

    kubeforge_kubespray_findings(hostvars, groups) -> {errors, warnings, notes}

The verdict of every kubespray variable is in plugins/kubespray/variables.yml
(docs/kubespray.md renders it). Only what the inventory or -e set is looked at:
Ansible's `hostvars.raw_get(host)` holds a host's inventory, group and extra
variables untemplated, without any role's defaults. Plain dicts stand in for
hostvars in the unit tests.

- honored: nothing to say.
- alias: a deprecation warning naming kubeforge's variable.
- unsupported: an error unless the value is kubespray's default (or one
  kubeforge acts on anyway), then a note.
- not_applicable: a note.
- A variable that nothing reads and whose name is close to one that is read: a
  "did you mean" warning. Names far from every known one are the user's own.

Each variable is reported once, naming "all hosts", the group whose hosts set
it, or the hosts.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Undefined

PLUGINS = Path(__file__).resolve().parent.parent
REPO = PLUGINS.parent
TABLE = PLUGINS / "kubespray" / "variables.yml"
VERDICTS = ("honored", "alias", "unsupported", "not_applicable")

# Variables Ansible itself sets or reads (magic, connection, facts).
MAGIC = frozenset(
    {
        "environment",
        "gather_subset",
        "group_names",
        "groups",
        "hostvars",
        "module_setup",
        "omit",
        "play_hosts",
        "playbook_dir",
        "vars",
    }
)
MAGIC_PREFIXES = ("ansible_", "inventory_", "role_", "discovered_", "molecule_")
# Groups named in preference when a variable's hosts are exactly a group's.
PREFERRED_GROUPS = ("k8s_cluster", "kube_control_plane", "kube_node", "etcd", "calico_rr")
MAX_HOSTS_SHOWN = 5
MAX_VALUE_SHOWN = 60
# Typos: names at least this long, sharing their first two characters with a
# known one, at most this many characters longer or shorter, this similar.
TYPO_MIN_LENGTH = 6
TYPO_MAX_LENGTH_DIFF = 3
TYPO_CUTOFF = 0.85
TRUE_WORDS = frozenset({"true", "yes", "on"})
FALSE_WORDS = frozenset({"false", "no", "off"})
_NOTHING = object()
# libyaml's loader when PyYAML has it: the table and the repository's YAML load in a fraction.
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Entry:
    verdict: str
    name: str = ""
    prefix: str = ""
    default: Any = _NOTHING
    use: str = ""
    note: str = ""
    accepted: tuple[Any, ...] = ()
    effective: Any = _NOTHING
    ours_type: str = ""


@dataclass(frozen=True)
class Table:
    entries: Mapping[str, Entry]
    families: tuple[Entry, ...]  # longest prefix first

    def lookup(self, name: str) -> Entry | None:
        if name in self.entries:
            return self.entries[name]
        return next((f for f in self.families if name.startswith(f.prefix)), None)


def _entry(raw: Mapping[str, Any]) -> Entry:
    return Entry(
        verdict=str(raw["verdict"]),
        name=str(raw.get("name", "")),
        prefix=str(raw.get("prefix", "")),
        default=raw.get("default", _NOTHING),
        use=str(raw.get("use", "")),
        note=str(raw.get("note", "")),
        accepted=tuple(raw.get("accepted", ())),
        effective=raw.get("effective", _NOTHING),
        ours_type=str(raw.get("ours_type", "")),
    )


@functools.cache
def _document(path: Path) -> Mapping[str, Any]:
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)
    return data if isinstance(data, Mapping) else {}


def read_table(path: Path = TABLE) -> list[dict[str, Any]]:
    """The table's entries as written (the docs renderer and the tests use these)."""
    return [dict(entry) for entry in _document(path).get("variables") or []]


@functools.cache
def load_table(path: Path = TABLE) -> Table:
    entries = [_entry(raw) for raw in read_table(path)]
    families = sorted((e for e in entries if e.prefix), key=lambda e: -len(e.prefix))
    return Table(entries={e.name: e for e in entries if e.name}, families=tuple(families))


# Known names ---------------------------------------------------------------------------------

_OPTIONAL_USE = re.compile(
    r"\b([a-z_][a-z0-9_]*)\s*(?:\|\s*(?:default|d)\b|is\s+(?:not\s+)?defined\b)"
)


def _yaml_files(root: Path, patterns: Iterable[str]) -> Iterator[Path]:
    for pattern in patterns:
        yield from sorted(root.glob(pattern))


def _load_yaml(path: Path) -> Any:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)
    except (yaml.YAMLError, UnicodeDecodeError):
        return None


def _keys(data: Any) -> set[str]:
    return {str(k) for k in data} if isinstance(data, Mapping) else set()


def _inventory_keys(node: Any) -> set[str]:
    """Variable names of a YAML inventory (all: hosts/vars/children)."""
    names: set[str] = set()
    if not isinstance(node, Mapping):
        return names
    hosts = node.get("hosts")
    for host_vars in hosts.values() if isinstance(hosts, Mapping) else []:
        names |= _keys(host_vars)
    names |= _keys(node.get("vars"))
    children = node.get("children")
    if isinstance(children, Mapping):
        for child in children.values():
            names |= _inventory_keys(child)
    return names


def _task_names(node: Any) -> set[str]:
    """Names tasks create: register, set_fact keys, vars, loop_var."""
    names: set[str] = set()
    if isinstance(node, list):
        for item in node:
            names |= _task_names(item)
    elif isinstance(node, Mapping):
        for key, value in node.items():
            if key == "register" and isinstance(value, str):
                names.add(value)
            elif key in ("ansible.builtin.set_fact", "set_fact", "vars"):
                names |= _keys(value) - {"cacheable"}
            elif key == "loop_var" and isinstance(value, str):
                names.add(value)
            names |= _task_names(value)
    return names


def _spec_options(data: Any) -> set[str]:
    names: set[str] = set()
    specs = data.get("argument_specs") if isinstance(data, Mapping) else None
    for entry_point in (specs or {}).values():
        names |= _keys((entry_point or {}).get("options"))
    return names


# Where kubeforge's variable names are found (globs relative to the repository).
VAR_FILES = ("roles/*/defaults/**/*.yml", "roles/*/vars/**/*.yml", "playbooks/vars/**/*.yml")
SPEC_FILES = ("roles/*/meta/argument_specs.yml",)
GROUP_VAR_FILES = tuple(
    f"{top}/**/{kind}/**/*.yml"
    for top in ("inventory", "tests", "molecule")
    for kind in ("group_vars", "host_vars")
)
INVENTORY_FILES = ("inventory/**/hosts*.yml", "molecule/**/inventory*.yml")
TASK_FILES = ("roles/*/tasks/**/*.yml", "roles/*/handlers/**/*.yml", "playbooks/**/*.yml")
# Files whose `x | default(...)` and `x is defined` name variables one may set.
TEMPLATED_FILES = ("roles/**/*.yml", "roles/**/*.j2", "playbooks/**/*.yml", "*.yml")


@functools.cache
def kubeforge_names(root: Path = REPO) -> frozenset[str]:
    """Every variable name kubeforge, its lab or its tests read or set."""
    names: set[str] = set()
    for path in _yaml_files(root, VAR_FILES + GROUP_VAR_FILES):
        if "kubespray" not in path.parts:  # kubespray-style test inventories name its variables
            names |= _keys(_load_yaml(path))
    for path in _yaml_files(root, SPEC_FILES):
        names |= _spec_options(_load_yaml(path))
    for path in _yaml_files(root, INVENTORY_FILES):
        data = _load_yaml(path)
        for group in data.values() if isinstance(data, Mapping) else []:
            names |= _inventory_keys(group)
    for path in _yaml_files(root, TASK_FILES):
        names |= _task_names(_load_yaml(path))
    for path in _yaml_files(root, TEMPLATED_FILES):
        names |= set(_OPTIONAL_USE.findall(path.read_text(encoding="utf-8")))
    return frozenset(names)


def _is_magic(name: str) -> bool:
    return name in MAGIC or name.startswith(MAGIC_PREFIXES)


def _known(name: str, table: Table, known: frozenset[str]) -> bool:
    return name in known or table.lookup(name) is not None


def typo_suggestion(name: str, table: Table, known: frozenset[str]) -> str | None:
    """The known name `name` is most likely a misspelling of, if any."""
    if len(name) < TYPO_MIN_LENGTH or _is_magic(name) or _known(name, table, known):
        return None
    candidates = [
        k
        for k in {*known, *table.entries}
        if k[:2] == name[:2] and abs(len(k) - len(name)) <= TYPO_MAX_LENGTH_DIFF
    ]
    match = difflib.get_close_matches(name, candidates, n=1, cutoff=TYPO_CUTOFF)
    return match[0] if match else None


# Values --------------------------------------------------------------------------------------


def _is_template(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def normalize(value: Any) -> Any:
    """A value as kubespray's YAML would read it: "2" is 2, "false" is false,
    whitespace in text (templates) collapsed."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return int(value) if float(value).is_integer() else float(value)
    if isinstance(value, str):
        text = " ".join(value.split())
        if text.lower() in TRUE_WORDS:
            return True
        if text.lower() in FALSE_WORDS:
            return False
        for number in (int, float):
            try:
                return normalize(number(text))
            except ValueError:
                pass
        return text
    if isinstance(value, Mapping):
        return {str(k): normalize(v) for k, v in value.items()}
    if isinstance(value, Sequence):
        return [normalize(v) for v in value]
    return str(value)


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str | Sequence | Mapping) and len(value) == 0)


def show(value: Any) -> str:
    if isinstance(value, str):
        text = " ".join(value.split())
    else:
        try:
            text = json.dumps(normalize(value), separators=(", ", ": "))
        except (TypeError, ValueError):
            text = str(value)
    return text if len(text) <= MAX_VALUE_SHOWN else text[: MAX_VALUE_SHOWN - 3] + "..."


def same(a: Any, b: Any) -> bool:
    """Equal as kubespray's YAML reads them (true is not 1)."""
    return _canonical(a) == _canonical(b)


def _canonical(value: Any) -> str:
    return json.dumps(normalize(value), sort_keys=True, default=str)


def _passing(entry: Entry) -> list[tuple[Any, str]]:
    """(value, why it passes) for an unsupported entry."""
    out: list[tuple[Any, str]] = []
    if entry.default is not _NOTHING:
        out.append((entry.default, "kubespray's default"))
    if entry.effective is not _NOTHING:
        out.append((entry.effective, "kubespray's default"))
    out += [(v, "what kubeforge does") for v in entry.accepted]
    return out


def _evaluate(raw: Any, templated: Callable[[], Any]) -> tuple[Any, str]:
    """A template's value and how it is shown (_NOTHING: unknown before the run)."""
    try:
        evaluated = templated()
    except Exception:  # any failure to template leaves the value unknown
        evaluated = _NOTHING
    if evaluated is _NOTHING or isinstance(evaluated, Undefined):
        return _NOTHING, f"{show(raw)} (unknown before the run)"
    return evaluated, f"{show(raw)} (= {show(evaluated)})"


def _passes(entry: Entry, value: Any) -> str | None:
    if entry.ours_type == "dict" and isinstance(value, Mapping):
        return "kubeforge's own"
    if entry.default is _NOTHING and entry.effective is _NOTHING and _empty(value):
        return "empty"
    return next((why for passing, why in _passing(entry) if same(value, passing)), None)


def judge_unsupported(
    entry: Entry, raw: Any, templated: Callable[[], Any]
) -> tuple[str | None, str]:
    """Why a value passes (None: refused), and the value shown. `templated`
    evaluates a template when its text is not kubespray's own default."""
    why = _passes(entry, raw)
    if why is not None or not _is_template(raw):
        return why, show(raw)
    evaluated, shown = _evaluate(raw, templated)
    if evaluated is _NOTHING or _is_template(evaluated):
        return None, shown
    return _passes(entry, evaluated), shown


# Hosts ---------------------------------------------------------------------------------------


def _raw_vars(hostvars: Any, host: str) -> Mapping[str, Any]:
    raw_get = getattr(hostvars, "raw_get", None)
    data = raw_get(host) if callable(raw_get) else hostvars.get(host)
    return data if isinstance(data, Mapping) else {}


def _templated(hostvars: Any, host: str, name: str) -> Callable[[], Any]:
    return lambda: hostvars[host][name]


def where(hosts: Sequence[str], groups: Mapping[str, Sequence[str]]) -> str:
    """'all hosts', 'group X' when the hosts are exactly X's, else the hosts."""
    chosen = set(hosts)
    if chosen == set(groups.get("all") or []):
        return "all hosts"
    others = sorted(g for g in groups if g not in ("all", "ungrouped", *PREFERRED_GROUPS))
    for group in (*PREFERRED_GROUPS, *others):
        if group in groups and chosen == set(groups[group] or []):
            return f"group {group}"
    names = sorted(chosen)
    if len(names) > MAX_HOSTS_SHOWN:
        shown = ", ".join(names[:MAX_HOSTS_SHOWN])
        return f"{shown} and {len(names) - MAX_HOSTS_SHOWN} more"
    return ", ".join(names)


# Findings ------------------------------------------------------------------------------------

# (hosts, "name value" or "name", note): items sharing hosts and note make one line.
Item = tuple[tuple[str, ...], str, str]


@dataclass
class _Setting:
    """One variable as the inventory sets it: host -> raw value."""

    name: str
    values: dict[str, Any]

    @property
    def hosts(self) -> tuple[str, ...]:
        return tuple(sorted(self.values))


def _settings(hostvars: Any, hosts: Sequence[str]) -> list[_Setting]:
    by_name: dict[str, dict[str, Any]] = {}
    for host in hosts:
        for name, value in _raw_vars(hostvars, host).items():
            by_name.setdefault(str(name), {})[host] = value
    return [_Setting(name, values) for name, values in sorted(by_name.items())]


def _unsupported(
    entry: Entry, setting: _Setting, hostvars: Any, groups: Mapping[str, Sequence[str]]
) -> tuple[list[str], list[Item]]:
    """Errors for the values refused, items for those that pass."""
    refused: dict[str, list[str]] = {}
    passed: dict[tuple[str, str], list[str]] = {}
    for host, raw in setting.values.items():
        why, shown = judge_unsupported(entry, raw, _templated(hostvars, host, setting.name))
        if why is None:
            refused.setdefault(shown, []).append(host)
        elif why != "kubeforge's own":
            passed.setdefault((why, shown), []).append(host)
    shown_default = entry.default if entry.effective is _NOTHING else entry.effective
    default = "" if shown_default is _NOTHING else f" (kubespray's default: {show(shown_default)})"
    errors = [
        f"{where(hosts, groups)}: {setting.name} {shown}: not supported{default}. {entry.note} "
        f"Instead: {entry.use}."
        for shown, hosts in sorted(refused.items())
    ]
    items = [
        (tuple(sorted(hosts)), f"{setting.name} {shown}", f"{why}, accepted. {entry.note}")
        for (why, shown), hosts in sorted(passed.items())
    ]
    return errors, items


def _grouped(items: Iterable[Item], groups: Mapping[str, Sequence[str]]) -> list[str]:
    lines: dict[tuple[tuple[str, ...], str], list[str]] = {}
    for hosts, what, note in items:
        lines.setdefault((hosts, note), []).append(what)
    return [
        f"{where(hosts, groups)}: {', '.join(whats)}: {note}"
        for (hosts, note), whats in sorted(lines.items(), key=lambda kv: (kv[1][0], kv[0]))
    ]


def kubeforge_kubespray_findings(
    hostvars: Any,
    groups: Mapping[str, Sequence[str]],
    table: Table | None = None,
    known: frozenset[str] | None = None,
) -> dict[str, list[str]]:
    """Refusals (errors), deprecations and typos (warnings) and notes."""
    table = table or load_table()
    known = kubeforge_names() if known is None else known
    errors: list[str] = []
    warnings: list[str] = []
    passed: list[Item] = []
    not_applicable: list[Item] = []
    for setting in _settings(hostvars, list(groups.get("all") or list(hostvars))):
        name, place = setting.name, where(setting.hosts, groups)
        entry = table.lookup(name)
        if entry is None:
            if (guess := typo_suggestion(name, table, known)) is not None:
                warnings.append(f"{place}: {name} is not read by kubeforge: did you mean {guess}?")
        elif entry.verdict == "alias":
            warnings.append(
                f"[DEPRECATED] {place}: {name} is kubespray's name, read as {entry.use}: "
                f"set {entry.use} instead. {entry.note}"
            )
        elif entry.verdict == "unsupported":
            more_errors, more_passed = _unsupported(entry, setting, hostvars, groups)
            errors += more_errors
            passed += more_passed
        elif entry.verdict == "not_applicable":
            not_applicable.append((setting.hosts, name, f"not applicable: {entry.note}"))
    notes = _grouped(passed, groups) + _grouped(not_applicable, groups)
    return {"errors": errors, "warnings": warnings, "notes": notes}


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"kubeforge_kubespray_findings": kubeforge_kubespray_findings}
