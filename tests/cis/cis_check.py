"""The CIS Kubernetes Benchmark items kubeforge passes (tests/cis/checks.yml),
checked on the hosts of an inventory.

    python tests/cis/cis_check.py -i inventory/lab/hosts.yml [--only 1.2.15 ...]

prints one line per check and host (ok, FAIL, waived) and exits 1 on any
failure. molecule/default/tests/test_cis.py asserts the same checks, one test
per check.

What is read, per host, in two shell scripts (testinfra's `host.run`): each
service's unit file and the command line of its running process
(/proc/<MainPID>/cmdline; etcd's environment too), so that a unit changed
without a restart, or a process started otherwise, is caught; then the files
the checks name (their contents, or their mode and owner). The running
kubelet's configuration comes from its /configz, through the apiserver on the
first control-plane host. Key material never leaves a host: only the
apiserver's encryption configuration is read among the key-holding files, with
every `secret:` value replaced on the host.
"""

from __future__ import annotations

import argparse
import base64
import fnmatch
import hashlib
import json
import re
import shlex
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

import yaml

CHECKS_FILE = Path(__file__).with_name("checks.yml")
REPO = Path(__file__).resolve().parents[2]
VERDICTS = ("pass", "not applicable", "manual")
# A check's scope -> the inventory group of its hosts.
SCOPES = {"control_plane": "kube_control_plane", "etcd": "etcd", "node": "k8s_cluster"}
SERVICES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd", "kubelet",
            "kube-proxy")  # fmt: skip
UNIT_DIR = "/etc/systemd/system"
CONDITIONS = ("equals", "not_equals", "absent", "absent_or_equals", "present", "includes",
              "excludes", "at_least", "subset_of", "one_of", "not_in", "starts_with")  # fmt: skip
# Conditions an unset value passes.
UNSET_PASSES = ("absent", "absent_or_equals", "excludes")
VALUE_KINDS = ("flag", "etcd", "kubelet-config", "kube-proxy-config")
KINDS = (*VALUE_KINDS, "file", "encryption", "audit-policy", "distinct-files", "any")
PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
# Settings every run needs besides those the checks name.
BASE_SETTINGS = ("bin_dir", "kube_config_dir", "kube_node_name")


class HostError(RuntimeError):
    """A host could not be read."""


# The catalogue ------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    scope: tuple[str, ...]
    verdict: str
    reason: str
    variables: tuple[str, ...]
    requires: Mapping[str, Any]
    asserts: tuple[Mapping[str, Any], ...]

    def groups(self) -> tuple[str, ...]:
        return tuple(SCOPES[s] for s in self.scope)


@dataclass(frozen=True)
class Catalogue:
    benchmark: Mapping[str, str]
    sections: Mapping[str, str]
    checks: tuple[Check, ...]

    def passing(self) -> list[Check]:
        return [c for c in self.checks if c.verdict == "pass"]

    def section(self, check_id: str) -> str:
        """The section a check id belongs to: the longest section id it starts with."""
        found = [s for s in self.sections if check_id == s or check_id.startswith(s + ".")]
        if not found:
            raise ValueError(f"check {check_id}: no section of checks.yml holds it")
        return max(found, key=len)


def _as_tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    return tuple(str(v) for v in value) if isinstance(value, list) else (str(value),)


def _validate_assert(where: str, spec: Any) -> None:
    if not isinstance(spec, dict) or spec.get("kind") not in KINDS:
        raise ValueError(f"{where}: an assertion needs a kind, one of {', '.join(KINDS)}: {spec}")
    kind = spec["kind"]
    conditions = [c for c in CONDITIONS if c in spec]
    required = {
        "flag": ("service", "flag"),
        "etcd": ("flag",),
        "kubelet-config": ("key",),
        "kube-proxy-config": ("key",),
        "file": ("paths",),
        "encryption": ("resource", "one_of"),
        "distinct-files": ("paths",),
        "any": ("of",),
    }.get(kind, ())
    missing = [k for k in required if k not in spec]
    if missing:
        raise ValueError(f"{where}: a {kind} assertion needs {', '.join(missing)}")
    if kind in VALUE_KINDS and len(conditions) != 1:
        raise ValueError(f"{where}: a {kind} assertion needs one condition of {CONDITIONS}")
    if kind == "flag" and spec["service"] not in SERVICES:
        raise ValueError(f"{where}: unknown service {spec['service']}")
    if kind == "file" and not {"max_mode", "owner", "group"} & set(spec):
        raise ValueError(f"{where}: a file assertion needs max_mode, owner or group")
    if kind == "file" and spec.get("required", False) not in (True, False, "any"):
        raise ValueError(f"{where}: required is true, false or any")
    if kind == "any":
        for alternative in spec["of"]:
            _validate_assert(where, alternative)


def _check(entry: Mapping[str, Any]) -> Check:
    where = f"checks.yml: check {entry.get('id')}"
    check = Check(
        id=str(entry.get("id") or ""),
        title=" ".join(str(entry.get("title") or "").split()),
        scope=_as_tuple(entry.get("scope")),
        verdict=str(entry.get("verdict")),
        reason=" ".join(str(entry.get("reason") or "").split()),
        variables=_as_tuple(entry.get("variable")),
        requires=dict(entry.get("requires") or {}),
        asserts=tuple(entry.get("assert") or ()),
    )
    if not check.id or not check.title:
        raise ValueError(f"{where}: needs an id and a title")
    if check.verdict not in VERDICTS:
        raise ValueError(f"{where}: verdict {check.verdict!r} is not one of {VERDICTS}")
    if not check.scope or not set(check.scope) <= set(SCOPES):
        raise ValueError(f"{where}: scope {check.scope} must be among {tuple(SCOPES)}")
    if check.verdict == "pass" and not check.asserts:
        raise ValueError(f"{where}: a pass needs assertions (assert)")
    if check.verdict != "pass" and (check.asserts or not check.reason):
        raise ValueError(f"{where}: {check.verdict} needs a reason and no assertions")
    if not set(check.requires) <= set(check.variables):
        raise ValueError(f"{where}: requires names settings its variable does not")
    for spec in check.asserts:
        _validate_assert(where, spec)
    return check


def load_catalogue(path: Path = CHECKS_FILE) -> Catalogue:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    checks = tuple(_check(e) for e in data["checks"])
    seen: set[str] = set()
    for check in checks:
        if check.id in seen:
            raise ValueError(f"checks.yml: check {check.id} appears twice")
        seen.add(check.id)
    catalogue = Catalogue(dict(data["benchmark"]), dict(data["sections"]), checks)
    for check in checks:
        catalogue.section(check.id)
    return catalogue


def _walk(specs: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    """The assertions, those under `any` included."""
    for spec in specs:
        yield spec
        if spec["kind"] == "any":
            yield from _walk(spec["of"])


def _placeholders(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield from PLACEHOLDER.findall(value)
    elif isinstance(value, list):
        for item in value:
            yield from _placeholders(item)


def setting_names(checks: Iterable[Check]) -> list[str]:
    """The kubeforge settings the checks need resolved for each host."""
    names = dict.fromkeys(BASE_SETTINGS)
    for check in checks:
        names.update(dict.fromkeys(check.requires))
        for spec in _walk(check.asserts):
            for value in spec.values():
                names.update(dict.fromkeys(p for p in _placeholders(value) if ":" not in p))
    return list(names)


# Parsing what a host shows --------------------------------------------------------


def flag_map(argv: Sequence[str]) -> dict[str, str]:
    """--name=value, --name value and a bare --name (true), the last one winning,
    as the components' flag parser reads them."""
    out: dict[str, str] = {}
    i = 1
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--") and len(arg) > 2:
            name, eq, value = arg[2:].partition("=")
            if not eq:
                nxt = argv[i + 1] if i + 1 < len(argv) else None
                if nxt is not None and not nxt.startswith("-"):
                    value, i = nxt, i + 1
                else:
                    value = "true"
            out[name] = value
        i += 1
    return out


def unit_directives(text: str) -> list[tuple[str, str]]:
    """The (key, value) lines of a unit file, continuation lines joined."""
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, sep, value = line.partition("=")
        if sep:
            out.append((key.strip(), value.strip()))
    return out


def exec_start(text: str) -> list[str]:
    """The ExecStart command line of a unit (its special prefixes dropped)."""
    found = [v for k, v in unit_directives(text) if k == "ExecStart" and v]
    if not found:
        return []
    return shlex.split(found[-1].lstrip("-@:+!"))


def environment_files(text: str) -> list[tuple[str, bool]]:
    """(path, required) of each EnvironmentFile= of a unit."""
    out = []
    for key, value in unit_directives(text):
        if key == "EnvironmentFile" and value:
            out.append((value.lstrip("-"), not value.startswith("-")))
    return out


def env_file(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip().strip("'\"")
    return out


def nul_list(data: bytes) -> list[str]:
    return [part.decode(errors="replace") for part in data.split(b"\0") if part]


@dataclass(frozen=True)
class Stat:
    path: str
    mode: int
    owner: str
    group: str
    kind: str


# What was read on a host -----------------------------------------------------------


@dataclass
class HostFacts:
    name: str
    settings: Mapping[str, Any]
    units: dict[str, str] = field(default_factory=dict)
    running: dict[str, list[str]] = field(default_factory=dict)
    environ: dict[str, dict[str, str]] = field(default_factory=dict)
    # path -> content; a path read but missing is absent.
    files: dict[str, str] = field(default_factory=dict)
    # stat request key -> what it matched.
    stats: dict[str, list[Stat]] = field(default_factory=dict)
    configz: Mapping[str, Any] | None = None
    configz_error: str = "the running kubelet's configuration was not read"

    def unit_flags(self, service: str) -> dict[str, str] | None:
        text = self.units.get(service)
        return None if text is None else flag_map(exec_start(text))

    def running_flags(self, service: str) -> dict[str, str] | None:
        argv = self.running.get(service)
        return None if argv is None else flag_map(argv)


class Unresolved(Exception):
    """A placeholder of a path that cannot be filled in on this host."""


def expand(text: str, facts: HostFacts) -> str:
    """{setting} and {flag:<service>:<flag>} (of the running service) filled in."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("flag:"):
            _, service, flag = name.split(":", 2)
            flags = facts.running_flags(service)
            if flags is None:
                raise Unresolved(f"{service} is not running")
            if not flags.get(flag):
                raise Unresolved(f"the running {service} has no --{flag}")
            return flags[flag]
        value = facts.settings.get(name)
        if value is None:
            raise Unresolved(f"setting {name} is not set")
        return str(value)

    return PLACEHOLDER.sub(one, text)


def stat_key(pattern: str, recursive: bool) -> str:
    return f"{'find' if recursive else 'glob'}:{pattern}"


# Evaluation --------------------------------------------------------------------------


class _Missing:
    def __repr__(self) -> str:
        return "unset"


MISSING = _Missing()


@dataclass(frozen=True)
class Unavailable:
    reason: str


def text_of(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(text_of(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def items_of(value: Any) -> list[str]:
    if isinstance(value, list):
        return [text_of(v) for v in value]
    return [p.strip() for p in text_of(value).split(",") if p.strip()]


def _expected(spec: Mapping[str, Any], facts: HostFacts) -> tuple[str, Any]:
    (name,) = [c for c in CONDITIONS if c in spec]
    want = spec[name]
    if isinstance(want, str):
        want = expand(want, facts)
    return name, want


def describe(condition: str, want: Any) -> str:
    shown = ", ".join(text_of(w) for w in want) if isinstance(want, list) else text_of(want)
    return {
        "absent": "unset",
        "present": "set",
        "absent_or_equals": f"unset or {shown}",
        "equals": shown,
        "not_equals": f"anything but {shown}",
        "includes": f"a list including {shown}",
        "excludes": f"a list without {shown}",
        "at_least": f"{shown} or more",
        "subset_of": f"only items of {shown}",
        "one_of": f"one of {shown}",
        "not_in": f"none of {shown}",
        "starts_with": f"each item starting with {shown}",
    }[condition]


def holds(condition: str, want: Any, value: Any) -> bool:
    """Whether `value` (MISSING when unset) meets the condition."""
    if value is MISSING:
        return condition in UNSET_PASSES
    text, items = text_of(value), items_of(value)
    wants = [text_of(w) for w in want] if isinstance(want, list) else [text_of(want)]
    if condition == "at_least":
        try:
            return float(text) >= float(wants[0])
        except ValueError:
            return False
    return {
        "absent": False,
        "present": text != "",
        "absent_or_equals": text == wants[0],
        "equals": text == wants[0],
        "not_equals": text != wants[0],
        "includes": all(w in items for w in wants),
        "excludes": not any(w in items for w in wants),
        "subset_of": bool(items) and all(i in wants for i in items),
        "one_of": text in wants,
        "not_in": text not in wants,
        "starts_with": bool(items) and all(i.startswith(tuple(wants)) for i in items),
    }[condition]


def dig(data: Any, key: str) -> Any:
    """data[a][b] for the key "a.b"; MISSING when any part is absent."""
    for part in key.split("."):
        if not isinstance(data, Mapping) or part not in data:
            return MISSING
        data = data[part]
    return data


def _etcd_value(flags: Mapping[str, str], env: Mapping[str, str], flag: str) -> Any:
    if flag in flags:
        return flags[flag]
    return env.get("ETCD_" + flag.upper().replace("-", "_"), MISSING)


def _config(facts: HostFacts, path: str | None, what: str) -> Mapping[str, Any] | Unavailable:
    if not path:
        return Unavailable(f"{what} names no --config")
    if path not in facts.files:
        return Unavailable(f"{path} (--config of {what}) is missing")
    try:
        data = yaml.safe_load(facts.files[path])
    except yaml.YAMLError as exc:
        return Unavailable(f"{path} is not YAML: {exc}")
    return data if isinstance(data, Mapping) else Unavailable(f"{path} holds no mapping")


def _config_value(
    spec: Mapping[str, Any], config: Mapping[str, Any], flags: Mapping[str, str]
) -> Any:
    if spec.get("flag") and spec["flag"] in flags:
        return flags[spec["flag"]]
    value = dig(config, spec["key"])
    return spec["default"] if value is MISSING and "default" in spec else value


def _flag_sources(service: str, flag: str, facts: HostFacts) -> list[tuple[str, Any]]:
    unit, running = facts.unit_flags(service), facts.running_flags(service)
    from_unit = Unavailable("no unit file") if unit is None else unit.get(flag, MISSING)
    live = Unavailable("not running") if running is None else running.get(flag, MISSING)
    return [(f"{UNIT_DIR}/{service}.service", from_unit), (f"the running {service}", live)]


def _etcd_sources(flag: str, facts: HostFacts) -> list[tuple[str, Any]]:
    text = facts.units.get("etcd")
    from_unit: Any = Unavailable("no unit file")
    if text is not None:
        env: dict[str, str] = {}
        for path, required in environment_files(text):
            if path in facts.files:
                env.update(env_file(facts.files[path]))
            elif required:
                from_unit = Unavailable(f"its environment file {path} is missing")
                break
        else:
            from_unit = _etcd_value(flag_map(exec_start(text)), env, flag)
    argv = facts.running.get("etcd")
    live = (
        Unavailable("not running")
        if argv is None
        else _etcd_value(flag_map(argv), facts.environ.get("etcd", {}), flag)
    )
    return [
        (f"{UNIT_DIR}/etcd.service and its environment files", from_unit),
        ("the running etcd", live),
    ]


def _from_config(
    spec: Mapping[str, Any], facts: HostFacts, flags: Mapping[str, str], what: str
) -> Any:
    """The value a component started with `flags` gets (its --config file, then its flags)."""
    config = _config(facts, flags.get("config"), what)
    return config if isinstance(config, Unavailable) else _config_value(spec, config, flags)


def _config_sources(spec: Mapping[str, Any], facts: HostFacts) -> list[tuple[str, Any]]:
    service = "kubelet" if spec["kind"] == "kubelet-config" else "kube-proxy"
    unit, running = facts.unit_flags(service), facts.running_flags(service)
    where = f"{UNIT_DIR}/{service}.service"
    out: list[tuple[str, Any]] = [
        (f"{where} and its --config", Unavailable("no unit file"))
        if unit is None
        else (f"{unit.get('config')} with {where}", _from_config(spec, facts, unit, where))
    ]
    if service == "kubelet":
        # What the kubelet runs with, its flags and defaults applied.
        live = facts.configz
        value = Unavailable(facts.configz_error) if live is None else _config_value(spec, live, {})
        out.append(("the running kubelet (/configz)", value))
    elif running is None:
        out.append((f"the running {service}", Unavailable("not running")))
    else:
        what = f"the running {service}"
        out.append((f"{what} ({running.get('config')})", _from_config(spec, facts, running, what)))
    return out


def sources(spec: Mapping[str, Any], facts: HostFacts) -> list[tuple[str, Any]]:
    """(where, value) of a value assertion on this host: what its unit (and the
    files it names) would start, and what runs."""
    if spec["kind"] == "flag":
        return _flag_sources(spec["service"], spec["flag"], facts)
    if spec["kind"] == "etcd":
        return _etcd_sources(spec["flag"], facts)
    return _config_sources(spec, facts)


def _value_problems(spec: Mapping[str, Any], facts: HostFacts) -> list[str]:
    condition, want = _expected(spec, facts)
    name = {
        "flag": f"{spec.get('service')} --{spec.get('flag')}",
        "etcd": f"etcd --{spec.get('flag')}",
        "kubelet-config": f"kubelet {spec.get('key')}",
        "kube-proxy-config": f"kube-proxy {spec.get('key')}",
    }[spec["kind"]]
    problems = []
    for where, value in sources(spec, facts):
        if isinstance(value, Unavailable):
            problems.append(f"{name}: {where}: {value.reason}")
        elif not holds(condition, want, value):
            problems.append(f"{name} is {text_of(value) if value is not MISSING else 'unset'} in "
                            f"{where}, expected {describe(condition, want)}")  # fmt: skip
    return problems


def _mode(text: str) -> int:
    return int(str(text), 8)


def _stat_problems(
    st: Stat, spec: Mapping[str, Any], owner: str | None, group: str | None
) -> list[str]:
    problems = []
    if "max_mode" in spec and st.mode & ~_mode(spec["max_mode"]) & 0o7777:
        problems.append(
            f"{st.path} has mode {st.mode:04o}, expected {spec['max_mode']} or stricter"
        )
    if owner is not None and st.owner != owner:
        problems.append(f"{st.path} is owned by user {st.owner}, expected {owner}")
    if group is not None and st.group != group:
        problems.append(f"{st.path} is owned by group {st.group}, expected {group}")
    return problems


def _file_problems(spec: Mapping[str, Any], facts: HostFacts) -> list[str]:
    """required: true, each path must match something; any, one of them."""
    problems: list[str] = []
    recursive, required = bool(spec.get("recursive")), spec.get("required", False)
    excluded = []
    for raw in spec.get("exclude") or []:
        try:
            excluded.append(expand(raw, facts))
        except Unresolved:
            continue
    owner = expand(spec["owner"], facts) if "owner" in spec else None
    group = expand(spec["group"], facts) if "group" in spec else None
    named = f" ({spec['name']})" if "name" in spec else ""
    matched, patterns = [], []
    for raw in spec["paths"]:
        try:
            pattern = expand(raw, facts)
        except Unresolved as exc:
            problems.append(f"{raw}: {exc}")
            continue
        patterns.append(pattern)
        found = [
            s for s in facts.stats.get(stat_key(pattern, recursive), [])
            if fnmatch.fnmatchcase(PurePosixPath(s.path).name, spec.get("name") or "*")
            and not any(fnmatch.fnmatchcase(s.path, x) for x in excluded)
        ]  # fmt: skip
        matched += found
        if not found and required is True:
            problems.append(f"nothing matches {pattern}{named}")
        # A symbolic link's target is checked where it is.
        for st in (s for s in found if s.kind != "symbolic link"):
            problems += _stat_problems(st, spec, owner, group)
    if required == "any" and not matched:
        problems.append(f"nothing matches any of {', '.join(patterns)}{named}")
    # A file under two of the paths once.
    return list(dict.fromkeys(problems))


def _running_file(facts: HostFacts, flag: str) -> tuple[str, Any]:
    """The path the running apiserver's --flag names and its parsed content,
    or ('', a problem)."""
    try:
        path = expand(f"{{flag:kube-apiserver:{flag}}}", facts)
    except Unresolved as exc:
        return "", str(exc)
    if path not in facts.files:
        return path, f"{path} (the running apiserver's --{flag}) is missing"
    try:
        return path, yaml.safe_load(facts.files[path])
    except yaml.YAMLError:
        # Never its content: it may hold key material.
        return path, f"{path} is not YAML"


def first_provider(config: Any, resource: str) -> str | None:
    """The provider that writes `resource` in an EncryptionConfiguration (None:
    the resource is not named, so it is stored in plain text)."""
    for entry in (config or {}).get("resources") or []:
        names = entry.get("resources") or []
        if resource in names or "*.*" in names or ("*." in names and "." not in resource):
            providers = entry.get("providers") or []
            return next(iter(providers[0]), "identity") if providers else "identity"
    return None


def _encryption_problems(spec: Mapping[str, Any], facts: HostFacts) -> list[str]:
    path, config = _running_file(facts, "encryption-provider-config")
    if isinstance(config, str):
        return [config]
    provider = first_provider(config, spec["resource"])
    if provider is None:
        return [f"{path} does not name {spec['resource']}: they are stored in plain text"]
    if provider not in spec["one_of"]:
        return [f"{path} writes {spec['resource']} with {provider}, expected one of "
                f"{', '.join(spec['one_of'])}"]  # fmt: skip
    return []


@dataclass(frozen=True)
class AuditRequest:
    verb: str
    group: str
    resource: str
    namespace: str = "default"
    user: str = "jane"
    user_groups: tuple[str, ...] = ("system:authenticated",)

    def __str__(self) -> str:
        group = f"{self.group}/" if self.group else ""
        return f"{self.verb} {group}{self.resource} in {self.namespace or 'the cluster'}"


LEVELS = ("None", "Metadata", "Request", "RequestResponse")


def _resource_matches(rule_resources: Sequence[Mapping[str, Any]], req: AuditRequest) -> bool:
    base, _, sub = req.resource.partition("/")
    for gr in rule_resources:
        if (gr.get("group") or "") != req.group or gr.get("resourceNames"):
            continue
        names = gr.get("resources") or []
        if not names:
            return True
        for name in names:
            if name in ("*", req.resource) or (sub and name in (f"*/{sub}", f"{base}/*")):
                return True
    return False


def audit_level(policy: Mapping[str, Any], req: AuditRequest) -> str:
    """The level the first matching rule of an audit Policy logs `req` at."""
    for rule in policy.get("rules") or []:
        if rule.get("users") and req.user not in rule["users"]:
            continue
        if rule.get("userGroups") and not set(req.user_groups) & set(rule["userGroups"]):
            continue
        if rule.get("verbs") and req.verb not in rule["verbs"]:
            continue
        if rule.get("nonResourceURLs"):
            continue
        if rule.get("namespaces") and req.namespace not in rule["namespaces"]:
            continue
        if rule.get("resources") and not _resource_matches(rule["resources"], req):
            continue
        return str(rule.get("level", "None"))
    return "None"


WRITES = ("create", "update", "patch", "delete")
# CIS 3.2.2's concerns: request -> the levels that meet it.
AUDIT_CONCERNS: tuple[tuple[AuditRequest, tuple[str, ...]], ...] = (
    *((AuditRequest(v, "", r), ("Metadata",))
      for r in ("secrets", "configmaps") for v in ("get", "list", "watch", *WRITES)),
    (AuditRequest("create", "authentication.k8s.io", "tokenreviews", ""), ("Metadata",)),
    *((AuditRequest(v, g, r), LEVELS[1:])
      for g, r in (("", "pods"), ("apps", "deployments")) for v in WRITES),
    *((AuditRequest(v, "", r), LEVELS[1:])
      for r in ("pods/exec", "pods/portforward", "pods/proxy", "services/proxy")
      for v in ("create", "get")),
)  # fmt: skip


def _audit_problems(facts: HostFacts) -> list[str]:
    path, policy = _running_file(facts, "audit-policy-file")
    if isinstance(policy, str):
        return [policy]
    if not isinstance(policy, Mapping):
        return [f"{path} is not an audit Policy"]
    problems = []
    for req, levels in AUDIT_CONCERNS:
        level = audit_level(policy, req)
        if level not in levels:
            problems.append(f"{path} logs `{req}` at {level}, expected {' or '.join(levels)}")
    return problems


def _distinct_problems(spec: Mapping[str, Any], facts: HostFacts) -> list[str]:
    digests: dict[str, str] = {}
    problems = []
    for raw in spec["paths"]:
        try:
            path = expand(raw, facts)
        except Unresolved as exc:
            problems.append(f"{raw}: {exc}")
            continue
        if path not in facts.files:
            problems.append(f"{path} is missing")
            continue
        digest = hashlib.sha256(facts.files[path].encode()).hexdigest()
        if digest in digests:
            problems.append(f"{path} and {digests[digest]} are the same file contents")
        digests[digest] = path
    return problems


def problems_of(spec: Mapping[str, Any], facts: HostFacts) -> list[str]:
    """What fails of one assertion on a host (empty: it holds)."""
    kind = spec["kind"]
    try:
        if kind in VALUE_KINDS:
            return _value_problems(spec, facts)
        if kind == "file":
            return _file_problems(spec, facts)
        if kind == "encryption":
            return _encryption_problems(spec, facts)
        if kind == "audit-policy":
            return _audit_problems(facts)
        if kind == "distinct-files":
            return _distinct_problems(spec, facts)
    except Unresolved as exc:
        return [str(exc)]
    alternatives = [problems_of(alt, facts) for alt in spec["of"]]
    if any(not p for p in alternatives):
        return []
    return ["none of the alternatives holds: " + " | ".join("; ".join(p) for p in alternatives)]


def _same(have: Any, want: Any) -> bool:
    return text_of(have).lower() == text_of(want).lower()


@dataclass(frozen=True)
class Result:
    check: Check
    host: str
    status: str  # ok, fail or waived
    problems: tuple[str, ...] = ()
    # Of a waived check: whether the host holds what the benchmark wants all
    # the same (the inventory's setting against it was not applied).
    holds: bool = False

    def message(self) -> str:
        return f"{self.host}: CIS {self.check.id} ({self.check.title}): " + "; ".join(self.problems)


def evaluate(check: Check, facts: HostFacts) -> Result:
    waived = [
        f"{name} is {text_of(facts.settings[name])} in the inventory (CIS wants {text_of(want)})"
        for name, want in check.requires.items()
        if facts.settings.get(name) is not None and not _same(facts.settings[name], want)
    ]
    problems = [p for spec in check.asserts for p in problems_of(spec, facts)]
    if waived:
        return Result(check, facts.name, "waived", tuple(waived), holds=not problems)
    return Result(check, facts.name, "fail" if problems else "ok", tuple(problems))


# Reading the hosts ----------------------------------------------------------------------


class Runner(Protocol):
    """What the checks need of a host: testinfra's Host (run -> rc, stdout, stderr)."""

    def run(self, command: str, *args: str) -> Any: ...


def _run(host: Runner, name: str, script: str, what: str) -> str:
    done = host.run(script)
    if done.rc != 0:
        raise HostError(
            f"{name}: reading {what} failed (rc={done.rc}): {done.stderr or done.stdout}"
        )
    return str(done.stdout)


def glob_quote(pattern: str) -> str:
    """A path pattern for the shell: its literal parts quoted, * and ? left to expand."""
    parts = re.split(r"([*?])", pattern)
    return "".join(p if p in ("*", "?") else shlex.quote(p) for p in parts if p)


def services_script(services: Sequence[str]) -> str:
    """Each service's unit file and its running process's command line (and
    environment, for etcd only: others may hold proxy credentials), base64."""
    lines = []
    for service in services:
        unit = shlex.quote(f"{UNIT_DIR}/{service}.service")
        q = shlex.quote(service)
        lines.append(
            f"if [ -f {unit} ]; then printf 'unit\\t%s\\t%s\\n' {q} \"$(base64 -w0 {unit})\"; fi\n"
            f"pid=$(systemctl show -p MainPID --value {q} 2>/dev/null)\n"
            f"if [ -n \"$pid\" ] && [ \"$pid\" != 0 ] && [ -r /proc/$pid/cmdline ]; then\n"
            f"  printf 'cmdline\\t%s\\t%s\\n' {q} \"$(base64 -w0 /proc/$pid/cmdline)\"\n"
            + (f"  printf 'environ\\t%s\\t%s\\n' {q} \"$(base64 -w0 /proc/$pid/environ)\"\n"
               if service == "etcd" else "")
            + "fi"
        )  # fmt: skip
    return "\n".join([*lines, "exit 0"])


@dataclass(frozen=True)
class FileRequests:
    read: tuple[str, ...] = ()
    # Read with every `secret:` value replaced, on the host.
    read_redacted: tuple[str, ...] = ()
    # (pattern, recursive)
    stat: tuple[tuple[str, bool], ...] = ()


STAT_FORMAT = "%a\\t%U\\t%G\\t%F\\t%n\\n"


def files_script(requests: FileRequests) -> str:
    lines = []
    for i, path in enumerate(requests.read):
        q = shlex.quote(path)
        lines.append(f"if [ -f {q} ]; then printf 'file\\t{i}\\t%s\\n' \"$(base64 -w0 {q})\"; fi")
    for i, path in enumerate(requests.read_redacted):
        q = shlex.quote(path)
        redact = f"sed -E 's/^([[:space:]-]*secret:).*$/\\1 REDACTED/' {q} | base64 -w0"
        lines.append(f"if [ -f {q} ]; then printf 'redacted\\t{i}\\t%s\\n' \"$({redact})\"; fi")
    for i, (pattern, recursive) in enumerate(requests.stat):
        fmt = shlex.quote(f"stat\\t{i}\\t{STAT_FORMAT}")
        if recursive:
            lines.append(
                f"find {shlex.quote(pattern)} -exec stat --printf {fmt} {{}} + 2>/dev/null"
            )
        else:
            each = f'if [ -e "$p" ]; then stat -L --printf {fmt} -- "$p"; fi'
            lines.append(f"for p in {glob_quote(pattern)}; do {each}; done")
    return "\n".join([*lines, "exit 0"])


def _fields(output: str) -> Iterator[list[str]]:
    for line in output.splitlines():
        parts = line.split("\t")
        if len(parts) >= 2:
            yield parts


def parse_services(output: str, facts: HostFacts) -> None:
    for tag, service, *rest in _fields(output):
        data = base64.b64decode(rest[0] if rest else "")
        if tag == "unit":
            facts.units[service] = data.decode(errors="replace")
        elif tag == "cmdline":
            facts.running[service] = nul_list(data)
        elif tag == "environ":
            facts.environ[service] = dict(
                item.partition("=")[::2] for item in nul_list(data) if "=" in item
            )


def parse_files(output: str, requests: FileRequests, facts: HostFacts) -> None:
    for pattern, recursive in requests.stat:
        facts.stats.setdefault(stat_key(pattern, recursive), [])
    for parts in _fields(output):
        tag, index = parts[0], int(parts[1])
        if tag in ("file", "redacted"):
            path = (requests.read if tag == "file" else requests.read_redacted)[index]
            facts.files[path] = base64.b64decode(parts[2] if len(parts) > 2 else "").decode(
                errors="replace"
            )
        elif tag == "stat" and len(parts) >= 7:
            pattern, recursive = requests.stat[index]
            kind = {"regular file": "file", "regular empty file": "file"}.get(parts[5], parts[5])
            facts.stats[stat_key(pattern, recursive)].append(
                Stat(path="\t".join(parts[6:]), mode=int(parts[2], 8), owner=parts[3],
                     group=parts[4], kind=kind)
            )  # fmt: skip


def services_of(checks: Iterable[Check]) -> list[str]:
    wanted: dict[str, None] = {}
    for check in checks:
        for spec in _walk(check.asserts):
            kind = spec["kind"]
            if kind == "flag":
                wanted[spec["service"]] = None
            elif kind == "etcd":
                wanted["etcd"] = None
            elif kind == "kubelet-config":
                wanted["kubelet"] = None
            elif kind == "kube-proxy-config":
                wanted["kube-proxy"] = None
            elif kind in ("encryption", "audit-policy"):
                wanted["kube-apiserver"] = None
            for value in spec.values():
                for p in _placeholders(value):
                    if p.startswith("flag:"):
                        wanted[p.split(":")[1]] = None
    return [s for s in SERVICES if s in wanted]


def file_requests(checks: Iterable[Check], facts: HostFacts) -> FileRequests:
    """What the second script reads on a host, once the services are known."""
    read: dict[str, None] = {}
    redacted: dict[str, None] = {}
    stat: dict[tuple[str, bool], None] = {}

    def add(raw: str, into: dict[str, None]) -> None:
        try:
            into[expand(raw, facts)] = None
        except Unresolved:
            return  # the assertion reports it

    for check in checks:
        for spec in _walk(check.asserts):
            kind = spec["kind"]
            if kind == "etcd" and "etcd" in facts.units:
                for path, _ in environment_files(facts.units["etcd"]):
                    read[path] = None
            elif kind in ("kubelet-config", "kube-proxy-config"):
                service = "kubelet" if kind == "kubelet-config" else "kube-proxy"
                for flags in (facts.unit_flags(service), facts.running_flags(service)):
                    if flags and flags.get("config"):
                        read[flags["config"]] = None
            elif kind == "audit-policy":
                add("{flag:kube-apiserver:audit-policy-file}", read)
            elif kind == "encryption":
                add("{flag:kube-apiserver:encryption-provider-config}", redacted)
            elif kind == "distinct-files":
                for raw in spec["paths"]:
                    add(raw, read)
            elif kind == "file":
                for raw in spec["paths"]:
                    try:
                        stat[(expand(raw, facts), bool(spec.get("recursive")))] = None
                    except Unresolved:
                        continue
    return FileRequests(tuple(read), tuple(redacted), tuple(stat))


CONFIGZ_ERROR = "configz-error"


def configz_script(kubectl: str, nodes: Sequence[str]) -> str:
    lines = [
        f"printf 'configz\\t%s\\t%s\\n' {shlex.quote(n)} \"$({kubectl} get --raw "
        f'{shlex.quote(f"/api/v1/nodes/{n}/proxy/configz")} 2>&1 | base64 -w0)"'
        for n in nodes
    ]
    return "\n".join([*lines, "exit 0"])


def parse_configz(output: str) -> dict[str, Mapping[str, Any] | str]:
    """Node name -> its kubelet's configuration, or why it could not be read."""
    out: dict[str, Mapping[str, Any] | str] = {}
    for tag, node, *rest in _fields(output):
        if tag != "configz":
            continue
        text = base64.b64decode(rest[0] if rest else "").decode(errors="replace")
        try:
            data = json.loads(text)
            out[node] = data["kubeletconfig"]
        except (ValueError, KeyError, TypeError):
            out[node] = f"/configz of node {node}: {text.strip()[:300] or 'no answer'}"
    return out


def checks_for(
    host: str, checks: Iterable[Check], groups: Mapping[str, Sequence[str]]
) -> list[Check]:
    return [c for c in checks if any(host in groups.get(g, ()) for g in c.groups())]


def _read_configz(kubelets: Mapping[str, HostFacts], via: Runner, own: Mapping[str, Any]) -> None:
    """Each kubelet's running configuration, read through the apiserver from `via`."""
    kubectl = f"{own['bin_dir']}/kubectl --kubeconfig {own['kube_config_dir']}/admin.conf"
    nodes = {name: str(f.settings["kube_node_name"]) for name, f in kubelets.items()}
    script = configz_script(kubectl, list(nodes.values()))
    read = parse_configz(
        _run(via, "the first control-plane host", script, "the kubelets' /configz")
    )
    for name, node in nodes.items():
        value = read.get(node, f"/configz of node {node} was not read")
        if isinstance(value, str):
            kubelets[name].configz_error = value
        else:
            kubelets[name].configz = value


def gather(
    checks: Sequence[Check],
    hosts: Mapping[str, Runner],
    groups: Mapping[str, Sequence[str]],
    settings: Mapping[str, Mapping[str, Any]],
) -> dict[str, HostFacts]:
    """Read every host in the scope of `checks`: two scripts per host, and the
    kubelets' /configz through the first control-plane host."""
    facts: dict[str, HostFacts] = {}
    for name, host in hosts.items():
        mine = checks_for(name, checks, groups)
        if not mine:
            continue
        if name not in settings:
            raise HostError(f"{name}: kubeforge's settings for it were not resolved")
        found = HostFacts(name, settings[name])
        parse_services(_run(host, name, services_script(services_of(mine)), "the services"), found)
        requests = file_requests(mine, found)
        parse_files(_run(host, name, files_script(requests), "the files"), requests, found)
        facts[name] = found
    kubelets = [n for n in facts if "kubelet" in services_of(checks_for(n, checks, groups))]
    first = next(iter(groups.get("kube_control_plane") or []), "")
    if kubelets and first in hosts:
        _read_configz({n: facts[n] for n in kubelets}, hosts[first], settings[first])
    return facts


def run_checks(
    checks: Sequence[Check],
    hosts: Mapping[str, Runner],
    groups: Mapping[str, Sequence[str]],
    settings: Mapping[str, Mapping[str, Any]],
) -> list[Result]:
    facts = gather(checks, hosts, groups, settings)
    return [evaluate(c, facts[h]) for c in checks for h in facts if checks_for(h, [c], groups)]


# Command line ------------------------------------------------------------------------------


def table(results: Sequence[Result]) -> str:
    rows = []
    for r in results:
        status = {"ok": "ok", "fail": "FAIL", "waived": "waived"}[r.status]
        detail = "; ".join(r.problems)
        rows.append(f"{r.check.id:<8} {r.host:<14} {status:<7} {r.check.title}"
                    + (f"\n{'':<31}{detail}" if detail else ""))  # fmt: skip
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-i", "--inventory", required=True, type=Path)
    parser.add_argument("--only", nargs="*", default=[], help="check ids (default: every pass)")
    args = parser.parse_args(argv)
    if not args.inventory.is_file():
        print(f"inventory {args.inventory} does not exist", file=sys.stderr)
        return 2
    sys.path.insert(0, str(REPO / "tests" / "lab"))
    import pytest
    from clustercheck import GROUPS, Inventory
    from testinfra.utils.ansible_runner import AnsibleRunner, itergroup  # type: ignore[import-untyped]

    catalogue = load_catalogue()
    checks = [c for c in catalogue.passing() if not args.only or c.id in args.only]
    runner = AnsibleRunner.get_runner(str(args.inventory))
    groups = {g: list(dict.fromkeys(itergroup(runner.inventory, g))) for g in GROUPS}
    inventory = Inventory(args.inventory, groups)
    names = list(dict.fromkeys(h for g in groups.values() for h in g))
    try:
        settings = inventory.settings(*setting_names(checks))
        results = run_checks(checks, {n: inventory.host(n) for n in names}, groups, settings)
    except (HostError, pytest.fail.Exception) as exc:
        print(exc, file=sys.stderr)
        return 2
    print(table(results))
    counts = {s: sum(r.status == s for r in results) for s in ("ok", "fail", "waived")}
    print(f"\n{len(checks)} checks on {len(names)} hosts: "
          + ", ".join(f"{n} {s}" for s, n in counts.items()))  # fmt: skip
    return 1 if counts["fail"] else 0


if __name__ == "__main__":
    sys.exit(main())
