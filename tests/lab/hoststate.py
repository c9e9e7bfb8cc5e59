"""What a lab host looks like from the outside, as sets of comparable lines:
systemd units, listening ports, network interfaces, packet-filter rules,
mounts, Debian packages and the file tree. The reset scenario compares a reset
host with a never-deployed one (molecule/reset/tests/).

Each category is read by one shell command (COMMANDS, run on the host; the
packet filter from the lab machine inside the host's network namespace) and
turned into a set of lines by a pure function, so that what is compared, and
what is ignored, is pinned by tests/unit/test_hoststate.py.
"""

from __future__ import annotations

import re

# Files and directories that differ between any two hosts, deployed or not.
IGNORED_PATHS = (
    # Made at each host's first boot.
    "/etc/ssh/ssh_host_",
    "/etc/machine-id",
    "/var/lib/dbus/machine-id",
    # apt's downloaded indexes and dpkg's database: the package list is
    # compared on its own (category "packages").
    "/var/lib/apt/",
    "/var/lib/dpkg/",
    # systemd's per-boot state and seeds, journald's and logins' runtime files.
    "/var/lib/systemd/random-seed",
    "/var/lib/systemd/timers/",
    "/run/systemd/",
    "/run/user/",
    "/run/log/",
    "/run/utmp",
    "/run/sshd",
    "/run/sshd.pid",
)

# Docker's embedded DNS server in every lab container (127.0.0.11, random ports).
DOCKER_DNS = "127.0.0.11"

FIND_ROOTS = ("/etc", "/usr/local", "/opt", "/var/lib", "/run")

COMMANDS = {
    "units": (
        "systemctl list-units --type=service,socket,timer --state=running --no-legend --plain"
        " | awk '{print \"running \" $1}';"
        " systemctl list-unit-files --type=service,socket,timer --state=enabled --no-legend"
        " | awk '{print \"enabled \" $1}'"
    ),
    "ports": "ss -Hltnu",
    "interfaces": "ip -o link show",
    "routes": "ip -4 route show table all; ip -6 route show table all 2>/dev/null; true",
    "mounts": "findmnt -rn -o TARGET,FSTYPE",
    "packages": "dpkg-query -W -f='${Package} ${Version} ${db:Status-Abbrev}\\n'",
    "files": f"find {' '.join(FIND_ROOTS)} -printf '%y %p\\n' 2>/dev/null; true",
}


def units(text: str) -> set[str]:
    return {line.strip() for line in text.splitlines() if line.strip()}


def ports(text: str, address: str) -> set[str]:
    """`ss -Hltnu`: "<proto> <address>:<port>", the host's own address as <ip>."""
    out = set()
    for line in text.splitlines():
        words = line.split()
        if len(words) < 5:
            continue
        local = words[4]
        if local.startswith(DOCKER_DNS + ":"):
            continue
        out.add(f"{words[0]} {local.replace(address + ':', '<ip>:')}")
    return out


def interfaces(text: str) -> set[str]:
    """`ip -o link show`: interface names (without the @peer)."""
    out = set()
    for line in text.splitlines():
        parts = line.split(": ")
        if len(parts) >= 2:
            out.add(parts[1].split("@")[0])
    return out


def routes(text: str, address: str) -> set[str]:
    """`ip route show table all` (v4 and v6): the routes, the host's own address
    as <ip>; the kernel's local, broadcast and link-local multicast ones, which
    follow the interfaces, are left out."""
    out = set()
    for line in text.splitlines():
        words = line.split()
        if not words or words[0] in ("local", "broadcast", "multicast"):
            continue
        if words[0].startswith(("fe80::", "ff00::")):
            continue
        out.add(" ".join(w if w != address else "<ip>" for w in words))
    return out


_CONTAINER_ID = re.compile(r"/[0-9a-f]{64}(?=/|\s|$)")


def mounts(text: str) -> set[str]:
    """findmnt TARGET FSTYPE; the lab container's own id (its cgroups) as <id>."""
    return {_CONTAINER_ID.sub("/<id>", line.strip()) for line in text.splitlines() if line.strip()}


def packages(text: str) -> set[str]:
    return {" ".join(line.split()) for line in text.splitlines() if line.strip()}


def files(text: str) -> set[str]:
    """`find -printf '%y %p'`: "<type> <path>", less IGNORED_PATHS."""
    out = set()
    for line in text.splitlines():
        kind, _, path = line.partition(" ")
        if not path or any(path == p.rstrip("/") or path.startswith(p) for p in IGNORED_PATHS):
            continue
        out.add(f"{kind} {path}")
    return out


_COUNTER = re.compile(r"counter packets \d+ bytes \d+")
_HANDLE = re.compile(r"\s*# handle \d+")
_DNS_PORT = re.compile(r"((?:^|\s)sport |" + re.escape(DOCKER_DNS) + r":)\d+")


def nft_ruleset(text: str) -> set[str]:
    """`nft list ruleset` as "<table> | <chain> | <line>" lines: counters and
    handles dropped, Docker's DNS ports blanked. A chain without rules that
    accepts everything, and a table left with only such chains (what
    iptables-nft leaves once the last rule is gone), filter nothing and are
    left out."""
    chains: dict[tuple[str, str], list[str]] = {}
    passive: dict[tuple[str, str], bool] = {}
    table = chain = ""
    for raw in text.splitlines():
        line = _HANDLE.sub("", _COUNTER.sub("counter", raw)).strip()
        if not line or line == "}":
            continue
        if line.startswith("table "):
            table, chain = line.removesuffix(" {").strip(), ""
            continue
        if line.startswith(("chain ", "set ", "map ", "flowtable ")):
            chain = line.removesuffix(" {").strip()
            chains[(table, chain)] = [f"{table} | {chain}"]
            passive[(table, chain)] = line.startswith("chain ")
            continue
        if DOCKER_DNS in line:
            line = _DNS_PORT.sub(r"\g<1>N", line)
        if not (line.startswith("type ") and "policy accept" in line):
            passive[(table, chain)] = False
        chains[(table, chain)].append(f"{table} | {chain} | {line}")
    return {entry for key, lines in chains.items() if not passive[key] for entry in lines}


def iptables_save(text: str) -> set[str]:
    """iptables-save as "<table> <line>": counters dropped, Docker's DNS ports blanked."""
    out = set()
    table = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or line == "COMMIT":
            continue
        if line.startswith("*"):
            table = line[1:]
            continue
        if line.startswith(":"):
            line = re.sub(r"\s*\[\d+:\d+\]$", "", line)
        if DOCKER_DNS in line:
            line = re.sub(r"((?:--sport )|" + re.escape(DOCKER_DNS) + r":)\d+", r"\g<1>N", line)
        out.add(f"{table} {line}")
    return out


def difference(reset: set[str], reference: set[str]) -> str | None:
    """What a reset host has that the reference lacks, and the other way round."""
    extra, missing = sorted(reset - reference), sorted(reference - reset)
    if not extra and not missing:
        return None
    parts = []
    if extra:
        parts.append("left behind:\n  " + "\n  ".join(extra[:60]))
    if missing:
        parts.append("missing (the reference node has them):\n  " + "\n  ".join(missing[:60]))
    return "\n".join(parts)
