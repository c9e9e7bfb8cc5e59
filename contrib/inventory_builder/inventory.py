#!/usr/bin/env python3
"""kubeforge's inventory builder: kubespray's contrib/inventory_builder interface,
writing kubeforge's YAML inventory (groups of inventory/sample/hosts.yml).

    CONFIG_FILE=inventory/mycluster/hosts.yml python3 contrib/inventory_builder/inventory.py \\
        10.10.1.3 10.10.1.4 10.10.1.5

Needs PyYAML (`make setup`, or Debian's python3-yaml). Run with `help` for the
commands and environment variables; contrib/README.md explains the layout.
"""

from __future__ import annotations

import csv
import ipaddress
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

try:
    import yaml
except ImportError:  # pragma: no cover - depends on the Python running it
    sys.exit(
        "inventory.py: needs PyYAML: run it with the virtualenv of `make setup`,"
        " or install python3-yaml"
    )

PROG = "inventory.py"
SAMPLE = Path(__file__).resolve().parents[2] / "inventory" / "sample" / "hosts.yml"
# kubeforge's groups in the order the sample lists them, each with kubespray's old name.
ROLE_GROUPS: dict[str, str] = {
    "kube_control_plane": "kube-master",
    "etcd": "etcd",
    "kube_node": "kube-node",
    "k8s_cluster": "k8s-cluster",
    "calico_rr": "calico-rr",
}
RESERVED_NAMES = {"all", "ungrouped", *ROLE_GROUPS, *ROLE_GROUPS.values()}
COMMANDS = ("add", "remove", "load", "print_cfg", "print_ips", "print_hostnames", "help")
# A longer range is most likely a typo (10.0.0.1-10.0.10.1): give several.
MAX_RANGE = 1024
# Clusters of up to this many hosts run workloads on every host: there are too
# few hosts to keep the control plane for itself.
SMALL_CLUSTER = 3
HEADER = (
    "---\n"
    f"# Written by contrib/inventory_builder/{PROG} (contrib/README.md), which keeps\n"
    "# every host, group and variable of this file when it adds or removes hosts,\n"
    "# but not its comments.\n"
)
_BOOLEANS = {"1": True, "yes": True, "true": True, "on": True}
_BOOLEANS |= {"0": False, "no": False, "false": False, "off": False}
_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN = re.compile(rf"{_LABEL}(\.{_LABEL})*")
_COLUMN = re.compile(r"[a-z_][a-z0-9_]*")
ADDRESS_COLUMNS = ("address", "ansible_host", "ip")

HELP = f"""\
Usage: CONFIG_FILE=inventory/mycluster/hosts.yml {PROG} [COMMAND] [ARGUMENT ...]

Hosts, as arguments or one per line of a `load` file:
  10.10.1.3                  an address (ansible_host and ip), named HOST_PREFIX<n>
  10.10.1.3-10.10.1.10       every address of a range
  name,10.10.1.3             a named host
  name,ANSIBLE_HOST,IP       SSH to ANSIBLE_HOST (an address or DNS name); IP is the
                             host's cluster address (etcd, apiserver, kubelet bind it)
  -NAME or -ADDRESS          remove that host (kubespray's form of `remove`)

Commands:
  add HOST ...         add hosts (the default command: `{PROG} HOST ...`); a new
                       inventory gets its roles by count, hosts added later join
                       kube_node, and no existing host is renamed or re-roled
  remove NAME|ADDRESS ...  take hosts out of the inventory (run remove-node.yml first)
  load FILE ...        add the hosts listed in FILE: one per line as above, or a
                       CSV whose header names columns name (or hostname),
                       ansible_host, ip or address (other columns become host
                       variables)
  print_cfg            print the inventory as the builder writes it
  print_ips            print every host's ip, space-separated
  print_hostnames      print every host's name, space-separated
  help                 this text

Roles of a new inventory, in the order hosts are given: 1 host: every role;
2 hosts: the first is control plane and etcd, both are workers; 3 hosts: all three
control plane, etcd and workers; 4 or more: the first 3 control plane and etcd,
the rest workers. calico_rr stays empty (kubeforge runs calico without BGP).

Environment:
  CONFIG_FILE              the inventory to write (default inventory/mycluster/hosts.yml)
  HOST_PREFIX              prefix of generated host names (default node)
  KUBE_CONTROL_HOSTS       control-plane hosts of a new inventory (default: 3 from
                           3 hosts, else 1); KUBE_MASTERS is the old name
  SCALE_THRESHOLD          from this many hosts (default 50), etcd runs on 3 hosts
                           of its own and the control plane on the next ones
  MASSIVE_SCALE_THRESHOLD  from this many hosts (default 200), control-plane hosts
                           run no workloads (kubeforge's layout already keeps them
                           free from 4 hosts up)
  DEBUG                    true (default) or false: say what is done, on stderr
"""


class BuilderError(Exception):
    """A problem with the arguments, the environment or CONFIG_FILE: nothing is written."""


# Settings ---------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    config_file: Path
    host_prefix: str = "node"
    control_hosts: int | None = None
    scale_threshold: int = 50
    massive_scale_threshold: int = 200
    debug: bool = True


def _positive(environ: Mapping[str, str], name: str, default: int | None) -> int | None:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise BuilderError(f"{name}={raw!r}: a whole number of 1 or more is needed")
    return int(raw)


def _boolean(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in _BOOLEANS:
        raise BuilderError(f"{name}={raw!r}: use true or false (1/0, yes/no, on/off)")
    return _BOOLEANS[raw]


def settings_from(environ: Mapping[str, str]) -> Settings:
    prefix = environ.get("HOST_PREFIX", "").strip() or "node"
    if not _SUBDOMAIN.fullmatch(f"{prefix}1".lower()):
        raise BuilderError(
            f"HOST_PREFIX={prefix!r}: host names {prefix}1, {prefix}2, ... must be valid"
            " node names (letters, digits, '-' and '.')"
        )
    control_var = "KUBE_CONTROL_HOSTS" if environ.get("KUBE_CONTROL_HOSTS") else "KUBE_MASTERS"
    return Settings(
        config_file=Path(environ.get("CONFIG_FILE", "").strip() or "inventory/mycluster/hosts.yml"),
        host_prefix=prefix,
        control_hosts=_positive(environ, control_var, None),
        scale_threshold=_positive(environ, "SCALE_THRESHOLD", 50) or 50,
        massive_scale_threshold=_positive(environ, "MASSIVE_SCALE_THRESHOLD", 200) or 200,
        debug=_boolean(environ, "DEBUG", True),
    )


# Hosts from arguments and files -------------------------------------------------


@dataclass(frozen=True)
class NewHost:
    """A host to add: `name` None gets HOST_PREFIX<n>; `source` is where it came
    from (the argument, or FILE:LINE), for messages."""

    name: str | None
    ansible_host: str
    ip: str
    source: str
    extra: dict[str, str] = field(default_factory=dict)

    def host_vars(self) -> dict[str, Any]:
        return {"ansible_host": self.ansible_host, "ip": self.ip, **self.extra}


def ipv4(text: str, source: str, what: str = "address") -> str:
    """`text` as an IPv4 host address, else a BuilderError naming `source`."""
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise BuilderError(f"{source}: {text!r} is not an IP address ({what})") from None
    if not isinstance(addr, ipaddress.IPv4Address):
        raise BuilderError(f"{source}: {text} is IPv6; kubeforge's hosts need IPv4 ({what})")
    bad = [
        why
        for why, hit in (
            ("unspecified", addr.is_unspecified),
            ("loopback", addr.is_loopback),
            ("multicast", addr.is_multicast),
            ("reserved or broadcast", addr.is_reserved),
        )
        if hit
    ]
    if bad:
        raise BuilderError(f"{source}: {text} is a {bad[0]} address, not a host's ({what})")
    return str(addr)


def host_name(text: str, source: str) -> str:
    if text.lower() in RESERVED_NAMES:
        raise BuilderError(f"{source}: {text!r} is a group name; give the host another name")
    if not _SUBDOMAIN.fullmatch(text.lower()) or len(text) > 253:
        raise BuilderError(
            f"{source}: host name {text!r} is not a valid node name (letters, digits, '-',"
            " '.'; starting and ending with a letter or digit)"
        )
    return text


def expand_range(text: str, source: str) -> list[str]:
    first, _, last = text.partition("-")
    start = ipaddress.IPv4Address(ipv4(first.strip(), source, "start of the range"))
    end = ipaddress.IPv4Address(ipv4(last.strip(), source, "end of the range"))
    if end < start:
        raise BuilderError(f"{source}: the range ends ({end}) before it starts ({start})")
    count = int(end) - int(start) + 1
    if count > MAX_RANGE:
        raise BuilderError(
            f"{source}: {count} addresses; ranges of more than {MAX_RANGE} are refused"
            " (a typo?): give several ranges"
        )
    return [ipv4(str(ipaddress.IPv4Address(n)), source) for n in range(int(start), int(end) + 1)]


def _dns_or_ipv4(text: str, source: str) -> str:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        if _SUBDOMAIN.fullmatch(text.lower()) and not text.replace(".", "").isdigit():
            return text
        raise BuilderError(
            f"{source}: {text!r} is neither an IP address nor a DNS name (ansible_host)"
        ) from None
    return ipv4(text, source, "ansible_host")


def _looks_like_ip(text: str) -> bool:
    return bool(re.fullmatch(r"[\d.]+|[\da-fA-F:]*:[\da-fA-F:.]*", text))


def parse_host(text: str, source: str | None = None) -> list[NewHost]:
    """The hosts one argument (or one line of a `load` file) names."""
    where = source or text
    fields = [f.strip() for f in text.strip().split(",")]
    if len(fields) == 1:
        value = fields[0]
        if not value:
            raise BuilderError(f"{where}: empty host")
        if "-" in value and value[0].isdigit():
            return [NewHost(None, a, a, where) for a in expand_range(value, where)]
        if not _looks_like_ip(value):
            raise BuilderError(
                f"{where}: {value!r} is not an address; a named host is NAME,ADDRESS"
                f" (or a command: {', '.join(COMMANDS)})"
            )
        addr = ipv4(value, where)
        return [NewHost(None, addr, addr, where)]
    if len(fields) > 3 or not all(fields):
        raise BuilderError(f"{where}: expected NAME,ADDRESS or NAME,ANSIBLE_HOST,IP")
    if _looks_like_ip(fields[0]):
        raise BuilderError(
            f"{where}: name the host first: NAME,ADDRESS or NAME,ANSIBLE_HOST,IP"
            " (kubespray's IP,ACCESS_IP form is not taken: kubeforge's access_ip"
            " defaults to ip)"
        )
    name = host_name(fields[0], where)
    if len(fields) == 2:
        addr = ipv4(fields[1], where)
        return [NewHost(name, addr, addr, where)]
    return [NewHost(name, _dns_or_ipv4(fields[1], where), ipv4(fields[2], where, "ip"), where)]


def _csv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise BuilderError(f"load: cannot read {path}: {exc.strerror}") from None
    for number, row in enumerate(csv.reader(text.splitlines()), start=1):
        cells = [c.strip() for c in row]
        if any(cells) and not cells[0].startswith("#"):
            yield number, cells


def _header(cells: list[str]) -> list[str] | None:
    names = ["name" if c.lower() == "hostname" else c.lower() for c in cells]
    if all(_COLUMN.fullmatch(n) for n in names) and set(names) & set(ADDRESS_COLUMNS):
        return names
    return None


def _row_host(columns: list[str], cells: list[str], where: str) -> NewHost:
    if len(cells) != len(columns):
        raise BuilderError(f"{where}: {len(cells)} fields, the header has {len(columns)}")
    row = {c: v for c, v in zip(columns, cells, strict=True) if v}
    address = row.pop("address", None)
    if address and ({"ansible_host", "ip"} & set(row)):
        raise BuilderError(f"{where}: give address, or ansible_host and ip, not both")
    ansible_host = address or row.pop("ansible_host", None) or row.get("ip")
    ip_text = address or row.pop("ip", None) or ansible_host
    if not ansible_host or not ip_text:
        raise BuilderError(f"{where}: no address (columns {', '.join(ADDRESS_COLUMNS)})")
    name = row.pop("name", None)
    return NewHost(
        host_name(name, where) if name else None,
        _dns_or_ipv4(ansible_host, where),
        ipv4(ip_text, where, "ip"),
        where,
        row,
    )


def load_file(path: Path) -> list[NewHost]:
    """The hosts of a `load` file: one host per line (any argument form), or a
    CSV with a header row naming its columns."""
    rows = list(_csv_rows(path))
    if not rows:
        raise BuilderError(f"load: {path} lists no host")
    columns = _header(rows[0][1])
    if columns is None:
        return collect(partial(parse_host, ",".join(cells), f"{path}:{n}") for n, cells in rows)
    if len(set(columns)) != len(columns):
        raise BuilderError(f"{path}:{rows[0][0]}: a column is named twice")
    return collect(partial(_row_host, columns, cells, f"{path}:{n}") for n, cells in rows[1:])


def collect(jobs: Iterable[Callable[[], list[NewHost]] | Callable[[], NewHost]]) -> list[NewHost]:
    """The hosts of every job, or one BuilderError listing every job's error."""
    hosts: list[NewHost] = []
    errors: list[str] = []
    for job in jobs:
        try:
            found = job()
        except BuilderError as exc:
            errors.append(str(exc))
            continue
        hosts += found if isinstance(found, list) else [found]
    if errors:
        raise BuilderError("\n".join(errors))
    return hosts


# The inventory file -------------------------------------------------------------


@dataclass(frozen=True)
class Tagged:
    """A tagged scalar (`!vault |`, `!unsafe`) kept as it was written."""

    tag: str
    value: str
    style: str | None


class _Loader(yaml.SafeLoader):
    pass


def _tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Tagged:
    if not isinstance(node, yaml.ScalarNode):
        raise BuilderError(f"!{suffix} at {node.start_mark}: only tagged scalars are kept")
    return Tagged(f"!{suffix}", loader.construct_scalar(node), node.style)


_Loader.add_multi_constructor("!", _tagged)


class _Dumper(yaml.SafeDumper):
    """Nulls written as nothing (`node1:`, as the sample does), lists indented
    under their key (yamllint's default), no anchors."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)

    def ignore_aliases(self, data: Any) -> bool:
        return True


_Dumper.add_representer(type(None), lambda d, _: d.represent_scalar("tag:yaml.org,2002:null", ""))
_Dumper.add_representer(Tagged, lambda d, t: d.represent_scalar(t.tag, t.value, style=t.style))


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BuilderError(f"{where} is a {type(value).__name__}, not a mapping")
    return value


class Inventory:
    """A YAML inventory as a tree of group definitions ({hosts, vars, children});
    hosts may be defined in any group and groups anywhere, as Ansible allows."""

    def __init__(self, tree: dict[str, Any], path: Path) -> None:
        self.tree = tree
        self.path = path
        self._check()

    @classmethod
    def read(cls, path: Path) -> Inventory:
        if path.suffix == ".ini":
            raise BuilderError(f"CONFIG_FILE {path}: an INI inventory; the builder writes YAML")
        if not path.exists():
            return cls({}, path)
        try:
            tree = yaml.load(path.read_text(), Loader=_Loader)
        except (OSError, yaml.YAMLError) as exc:
            raise BuilderError(f"CONFIG_FILE {path}: not a YAML inventory: {exc}") from None
        if tree is not None and not isinstance(tree, dict):
            raise BuilderError(f"CONFIG_FILE {path}: not a YAML inventory (an INI one?)")
        return cls(_mapping(tree, f"CONFIG_FILE {path}"), path)

    def _check(self) -> None:
        for name, group in self.groups():
            _mapping(group.get("hosts"), f"{self.path}: hosts of group {name}")
            _mapping(group.get("children"), f"{self.path}: children of group {name}")
            for host, hvars in (group.get("hosts") or {}).items():
                _mapping(hvars, f"{self.path}: host {host} (group {name})")

    def groups(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every group definition (name, mapping), depth first; a group named in
        several places (k8s_cluster's children, say) comes once per mapping."""

        def walk(name: str, group: Any) -> Iterator[tuple[str, dict[str, Any]]]:
            if group is None:
                return
            group = _mapping(group, f"{self.path}: group {name}")
            yield name, group
            for child, sub in _mapping(group.get("children"), f"{self.path}: {name}").items():
                yield from walk(str(child), sub)

        for name, group in self.tree.items():
            yield from walk(str(name), group)

    def hosts(self) -> dict[str, dict[str, Any]]:
        """Every host, in the order first met, with its variables merged."""
        found: dict[str, dict[str, Any]] = {}
        for _, group in self.groups():
            for host, hvars in (group.get("hosts") or {}).items():
                found.setdefault(str(host), {}).update(hvars or {})
        return found

    def _children(self, name: str) -> set[str]:
        return {str(c) for n, g in self.groups() if n == name for c in g.get("children") or {}}

    def members(self, role: str) -> list[str]:
        """The hosts of a group, under its name or kubespray's old one, with
        those of its children."""
        names = {role, ROLE_GROUPS.get(role, role)}
        seen: set[str] = set()
        found: dict[str, None] = {}
        while names - seen:
            name = min(names - seen)
            seen.add(name)
            for n, group in self.groups():
                if n == name:
                    found.update(dict.fromkeys(str(h) for h in group.get("hosts") or {}))
            names |= self._children(name)
        order = list(self.hosts())
        return sorted(found, key=order.index)

    def _group_name(self, role: str) -> str:
        """The name the file uses for a role: kubespray's old one if only that is there."""
        used = {n for n, _ in self.groups()} | {
            str(c) for _, g in self.groups() for c in g.get("children") or {}
        }
        old = ROLE_GROUPS[role]
        return old if old in used and role not in used else role

    def _all(self) -> dict[str, Any]:
        group = self.tree.get("all")
        if group is None:
            group = self.tree["all"] = {}
        return _mapping(group, f"{self.path}: group all")

    def _definition(self, role: str) -> dict[str, Any]:
        """The mapping to list a role's hosts in: the first that has hosts, else
        the first one, else a new one under all.children."""
        name = self._group_name(role)
        defs = [g for n, g in self.groups() if n == name]
        for group in [g for g in defs if "hosts" in g] + defs:
            return group
        children = self._all().get("children")
        if children is None:
            children = self._all()["children"] = {}
        children[name] = {"hosts": {}}
        result: dict[str, Any] = children[name]
        return result

    def ensure_groups(self) -> None:
        """Every group kubeforge's playbooks use, k8s_cluster with its two
        children, and an empty calico_rr, without touching what is there."""
        if self._all().get("hosts") is None:
            self._all()["hosts"] = {}
        for role in ROLE_GROUPS:
            group = self._definition(role)
            if role == "k8s_cluster":
                self._cluster_children(group)
            elif group.get("hosts") is None and not group.get("children"):
                group["hosts"] = {}

    def _cluster_children(self, cluster: dict[str, Any]) -> None:
        """k8s_cluster's children: kube_control_plane and kube_node."""
        if cluster.get("hosts") == {}:
            del cluster["hosts"]
        if cluster.get("children") is None:
            cluster["children"] = {}
        for role in ("kube_control_plane", "kube_node"):
            cluster["children"].setdefault(self._group_name(role), None)

    def add_host(self, name: str, hvars: dict[str, Any]) -> None:
        all_group = self._all()
        if all_group.get("hosts") is None:
            all_group["hosts"] = {}
        all_group["hosts"][name] = hvars

    def add_to(self, role: str, name: str) -> None:
        group = self._definition(role)
        if group.get("hosts") is None:
            group["hosts"] = {}
        group["hosts"][name] = None

    def remove_host(self, name: str) -> list[str]:
        """Take a host out of every group; the groups it was listed in."""
        found: list[str] = []
        for group_name, group in self.groups():
            hosts = group.get("hosts") or {}
            if name in hosts:
                del hosts[name]
                found.append(group_name)
        return found

    def dump(self) -> str:
        body = yaml.dump(
            self.tree, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100
        )
        return HEADER + body


def host_address(hvars: Mapping[str, Any]) -> str | None:
    value = hvars.get("ip") or hvars.get("ansible_host")
    return None if value in (None, "") else str(value)


def addresses_of(name: str, hvars: Mapping[str, Any]) -> dict[str, str]:
    """A host's addresses by variable (ip, ansible_host, access_ip; else its name)."""
    found = {k: str(hvars[k]) for k in ("ip", "ansible_host", "access_ip") if hvars.get(k)}
    return found or {"inventory name": name}


# Placeholder hosts of the sample ---------------------------------------------------


def _address_set(hosts: Mapping[str, Mapping[str, Any]]) -> set[tuple[str, str, str]]:
    return {(n, str(v.get("ansible_host")), str(v.get("ip"))) for n, v in hosts.items()}


def sample_placeholders(inventory: Inventory) -> list[str]:
    """The hosts of a copy of inventory/sample/hosts.yml, if the inventory holds
    exactly those (same names, addresses and nothing else): placeholders."""
    hosts = inventory.hosts()
    if not hosts or not SAMPLE.is_file():
        return []
    sample = Inventory.read(SAMPLE).hosts()
    only_addresses = all(set(v) <= {"ansible_host", "ip"} for v in hosts.values())
    return list(hosts) if only_addresses and _address_set(hosts) == _address_set(sample) else []


# Roles -------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    control_plane: list[str]
    etcd: list[str]
    workers: list[str]


def layout(names: Sequence[str], settings: Settings) -> Layout:
    """Roles of a new inventory's hosts, in the order given (contrib/README.md)."""
    count = len(names)
    etcd_count = 3 if count >= 3 else 1
    control_count = settings.control_hosts or etcd_count
    etcd = list(names[:etcd_count])
    separate = count >= settings.scale_threshold
    first = etcd_count if separate else 0
    control = list(names[first : first + control_count])
    if not control:
        raise BuilderError(
            f"SCALE_THRESHOLD={settings.scale_threshold}: {count} hosts put etcd on hosts of its"
            f" own ({', '.join(etcd)}) and leave none for the control plane: give more hosts or"
            " a higher SCALE_THRESHOLD"
        )
    control_works = count <= SMALL_CLUSTER and count < settings.massive_scale_threshold

    def works(host: str) -> bool:
        if host in control:
            return control_works
        return host not in etcd or not separate

    return Layout(control, etcd, [h for h in names if works(h)])


# Commands ----------------------------------------------------------------------


class Builder:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.inventory = Inventory.read(settings.config_file)

    def debug(self, message: str) -> None:
        if self.settings.debug:
            print(f"DEBUG: {message}", file=sys.stderr)

    def note(self, message: str) -> None:
        print(f"{PROG}: {message}", file=sys.stderr)

    def _existing(self) -> None:
        if not self.settings.config_file.exists():
            raise BuilderError(f"CONFIG_FILE {self.settings.config_file} does not exist")

    def print_cfg(self) -> None:
        self._existing()
        print(self.inventory.dump(), end="")

    def print_ips(self) -> None:
        self._existing()
        print(" ".join(host_address(v) or n for n, v in self.inventory.hosts().items()))

    def print_hostnames(self) -> None:
        self._existing()
        print(" ".join(self.inventory.hosts()))

    def _find(self, text: str) -> list[str]:
        """The host a removal names (by name or address; a range: each address)."""
        key = text.strip().lstrip("-")
        hosts = self.inventory.hosts()
        if key in hosts:
            return [key]
        wanted = expand_range(key, text) if "-" in key and key[:1].isdigit() else [key]
        found: list[str] = []
        for addr in wanted:
            owners = [n for n, v in hosts.items() if addr in addresses_of(n, v).values()]
            if not owners:
                raise BuilderError(
                    f"remove {text}: no host of that name or address in {self.settings.config_file}"
                )
            found += owners
        return found

    def remove(self, targets: Sequence[str], quiet: bool = False) -> dict[str, str]:
        """Take the hosts out; their names and addresses."""
        hosts = self.inventory.hosts()
        names = list(dict.fromkeys(h for t in targets for h in self._find(t)))
        for name in names:
            groups = self.inventory.remove_host(name)
            if not quiet:
                self.debug(f"removed {name} from {', '.join(groups)}")
        return {n: host_address(hosts[n]) or n for n in names}

    def _names(self, new: Sequence[NewHost], taken: Sequence[str]) -> list[str]:
        """A name for each new host: its own, else HOST_PREFIX<n> counting on from
        the highest such name of the file and of the arguments."""
        pattern = re.compile(rf"{re.escape(self.settings.host_prefix)}(\d+)", re.IGNORECASE)
        numbers = [int(m.group(1)) for n in [*taken, *(h.name or "" for h in new)]
                   if (m := pattern.fullmatch(n))]  # fmt: skip
        following = max(numbers, default=0) + 1
        names: list[str] = []
        for host in new:
            if host.name:
                names.append(host.name)
            else:
                names.append(f"{self.settings.host_prefix}{following}")
                following += 1
        return names

    def _duplicates(self, new: Sequence[NewHost], names: Sequence[str]) -> list[str]:
        errors: list[str] = []
        where = self.settings.config_file
        owners: dict[str, str] = {}
        for name, hvars in self.inventory.hosts().items():
            owners[name.lower()] = f"{name} in {where}"
            for var, addr in addresses_of(name, hvars).items():
                owners.setdefault(addr, f"{name} ({var}) in {where}")
        for host, name in zip(new, names, strict=True):
            if name.lower() in owners:
                errors.append(f"{host.source}: name {name} is taken by {owners[name.lower()]}")
            given = f"new host {name} ({host.source})"
            owners.setdefault(name.lower(), given)
            for addr in dict.fromkeys((host.ansible_host, host.ip)):
                if addr in owners:
                    errors.append(f"{host.source}: address {addr} is used by {owners[addr]}")
                owners.setdefault(addr, given)
        return errors

    def add(self, new: Sequence[NewHost], fresh: bool, removed: Sequence[str] = ()) -> list[str]:
        """Add the hosts; a `fresh` inventory (no host yet) gets roles by count,
        otherwise they join kube_node. Names of hosts `removed` in the same run
        are not given again."""
        names = self._names(new, [*self.inventory.hosts(), *removed])
        errors = self._duplicates(new, names)
        if errors:
            raise BuilderError("\n".join(errors))
        for host, name in zip(new, names, strict=True):
            self.inventory.add_host(name, host.host_vars())
            self.debug(f"{host.source}: {name} (ansible_host {host.ansible_host}, ip {host.ip})")
        if fresh:
            roles = layout(names, self.settings)
            self.debug(self._layout_reason(len(names)))
            for role, hosts in (
                ("kube_control_plane", roles.control_plane),
                ("etcd", roles.etcd),
                ("kube_node", roles.workers),
            ):
                for name in hosts:
                    self.inventory.add_to(role, name)
        else:
            if self.settings.control_hosts is not None:
                self.note("KUBE_CONTROL_HOSTS applies to a new inventory: new hosts join kube_node")
            self.debug(f"{len(names)} new host(s) join kube_node; existing hosts keep their roles")
            for name in names:
                self.inventory.add_to("kube_node", name)
        return names

    def _layout_reason(self, count: int) -> str:
        s = self.settings
        if count >= s.scale_threshold:
            return f"{count} hosts >= SCALE_THRESHOLD {s.scale_threshold}: etcd on hosts of its own"
        if count <= SMALL_CLUSTER and count < s.massive_scale_threshold:
            return f"{count} host(s): every host is also a worker"
        return f"{count} hosts: control-plane and etcd hosts run no workloads"

    def warnings(self) -> None:
        etcd = self.inventory.members("etcd")
        if len(etcd) % 2 == 0:
            self.note(
                f"warning: etcd has {len(etcd)} members ({', '.join(etcd) or 'none'}):"
                " preflight needs an odd number (1, 3 or 5): add or remove an etcd host"
            )
        if not self.inventory.members("kube_control_plane"):
            self.note("warning: kube_control_plane is empty: preflight needs at least one host")

    def summary(self, removed: Mapping[str, str], added: Sequence[str]) -> None:
        hosts = self.inventory.hosts()
        done = [
            f"{verb} " + ", ".join(f"{n} ({addr})" for n, addr in names.items())
            for verb, names in (
                ("removed", removed),
                ("added", {n: host_address(hosts[n]) or n for n in added}),
            )
            if names
        ]
        print(f"{self.settings.config_file}: {'; '.join(done)}")
        for role in ("kube_control_plane", "etcd", "kube_node"):
            print(f"  {role}: {' '.join(self.inventory.members(role)) or '(none)'}")

    def write(self) -> None:
        self.inventory.ensure_groups()
        write_atomic(self.settings.config_file, self.inventory.dump())


def write_atomic(path: Path, text: str) -> None:
    """Replace `path` (the file a symlink points to) in one step, keeping its mode."""
    target = path.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    mode = target.stat().st_mode & 0o7777 if target.exists() else 0o644
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        Path(tmp).chmod(mode)
        Path(tmp).replace(target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _hosts_of(arguments: Sequence[str]) -> tuple[list[NewHost], list[str]]:
    """Hosts to add and (kubespray's `-NAME`, `-ADDRESS`) hosts to remove."""
    new = collect(partial(parse_host, a) for a in arguments if not a.startswith("-"))
    return new, [a for a in arguments if a.startswith("-")]


def run(argv: Sequence[str], settings: Settings) -> None:
    command, arguments = (argv[0], argv[1:]) if argv[0] in COMMANDS else ("add", argv)
    if command == "help":
        print(HELP, end="")
        return
    builder = Builder(settings)
    if command.startswith("print_"):
        if arguments:
            raise BuilderError(f"{command} takes no argument, got {' '.join(arguments)}")
        {
            "print_cfg": builder.print_cfg,
            "print_ips": builder.print_ips,
            "print_hostnames": builder.print_hostnames,
        }[command]()
        return
    if command == "remove":
        new, removals = [], list(arguments)
    elif command == "load":
        new, removals = collect(partial(load_file, Path(f)) for f in arguments), []
    else:
        new, removals = _hosts_of(arguments)
    if not new and not removals:
        raise BuilderError(f"{command}: no host given (`{PROG} help`)")
    placeholders = sample_placeholders(builder.inventory) if new else []
    if placeholders:
        builder.note(
            f"{settings.config_file} holds the sample's placeholder hosts"
            f" ({', '.join(placeholders)}): replacing them, keeping its variables"
        )
        builder.remove(placeholders, quiet=True)
    removed = builder.remove(removals)
    fresh = not builder.inventory.hosts()
    added = builder.add(new, fresh, list(removed)) if new else []
    builder.write()
    builder.summary(removed, added)
    builder.warnings()


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print(HELP, end="")
        return 0
    try:
        run(args, settings_from(os.environ if environ is None else environ))
    except BuilderError as exc:
        for line in str(exc).splitlines():
            print(f"{PROG}: error: {line}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
