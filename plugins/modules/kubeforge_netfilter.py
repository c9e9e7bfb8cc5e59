#!/usr/bin/python
"""Remove the packet-filter chains, rules and nftables tables Kubernetes and CNI plugins added."""

from __future__ import annotations

import re
import shlex
import shutil
from dataclasses import dataclass, field

from ansible.module_utils.basic import AnsibleModule  # type: ignore[import-untyped]

DOCUMENTATION = r"""
module: kubeforge_netfilter
short_description: Remove Kubernetes' and CNI plugins' iptables chains and nftables tables
description:
  - For iptables and ip6tables (the nft and the legacy back end, whichever are installed), deletes
    the rules of other chains that jump to a chain matching C(chains) or carry a comment matching
    C(comments), then flushes and deletes the matching chains. Nothing else is touched; no table is
    flushed and no built-in chain's policy changes, so the host's own firewall (and SSH) stays.
  - With C(nft) installed, deletes whole nftables tables whose name matches C(nft_tables) (tables
    that belong to kube-proxy's nftables mode, flannel or calico alone).
  - In check mode nothing is changed; the result tells what would be.
options:
  chains:
    description: Regular expressions (re.match) of the chain names to remove.
    type: list
    elements: str
    default: ['KUBE-', 'FLANNEL-', 'CNI-', 'cali-', 'CALI-']
  comments:
    description: Regular expressions (re.search) of the comments of rules removed from other chains.
    type: list
    elements: str
    default: ['flanneld', 'kubernetes', 'kube-proxy', 'cali:']
  nft_tables:
    description: Regular expressions (re.fullmatch) of the nftables table names to delete.
    type: list
    elements: str
    default: ['kube-proxy', 'flannel.*', 'calico.*', 'cali.*']
author: kubeforge
"""

EXAMPLES = r"""
- name: Remove Kubernetes' packet-filter rules
  kubeforge_netfilter: {}
"""

RETURN = r"""
removed:
  description: What was (or would be) removed ("<tool> <table> ...", "nft <family> <table>").
  type: list
  elements: str
"""

# iptables-save and -restore commands tried, per address family: the nft and
# legacy back ends when both are installed, else the plain name.
_TOOLS = {
    "iptables": ["iptables-nft", "iptables-legacy"],
    "ip6tables": ["ip6tables-nft", "ip6tables-legacy"],
}


@dataclass
class Table:
    name: str
    chains: list[str] = field(default_factory=list)  # user-defined chains, in order
    # (chain, rule spec after "-A CHAIN")
    rules: list[tuple[str, str]] = field(default_factory=list)


def parse_save(text: str) -> list[Table]:
    """iptables-save output as tables of user chains and rules."""
    tables: list[Table] = []
    current: Table | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("*"):
            current = Table(line[1:])
            tables.append(current)
        elif current is None or line == "COMMIT":
            continue
        elif line.startswith(":"):
            name, policy = [*line[1:].split(), "-"][:2]
            if policy == "-":
                current.chains.append(name)
        elif line.startswith("-A "):
            chain, _, spec = line[3:].partition(" ")
            current.rules.append((chain, spec))
    return tables


def _rule_target(spec: str) -> tuple[str, list[str]]:
    """The jump/goto target ('' when none) and every comment of a rule spec (calico's
    rules carry two: its hash "cali:..." and a description)."""
    try:
        words = shlex.split(spec)
    except ValueError:
        words = spec.split()
    target = ""
    comments: list[str] = []
    for i, word in enumerate(words[:-1]):
        if word in ("-j", "--jump", "-g", "--goto"):
            target = words[i + 1]
        elif word == "--comment":
            comments.append(words[i + 1])
    return target, comments


def cleanup_script(
    tables: list[Table], chains: list[str], comments: list[str]
) -> tuple[str, list[str]]:
    """An iptables-restore --noflush script removing what matches, and what it removes."""
    chain_res = [re.compile(p) for p in chains]
    comment_res = [re.compile(p) for p in comments]
    script: list[str] = []
    removed: list[str] = []
    for table in tables:
        ours = [c for c in table.chains if any(r.match(c) for r in chain_res)]
        lines: list[str] = []
        for chain, spec in table.rules:
            if chain in ours:
                continue
            target, comments = _rule_target(spec)
            ours_target = target in ours or any(r.match(target) for r in chain_res)
            if ours_target or any(r.search(c) for c in comments for r in comment_res):
                lines.append(f"-D {chain} {spec}")
                removed.append(f"{table.name} {chain} rule {spec}")
        lines += [f"-F {c}" for c in ours]
        lines += [f"-X {c}" for c in ours]
        removed += [f"{table.name} chain {c}" for c in ours]
        if lines:
            script += [f"*{table.name}", *lines, "COMMIT"]
    return ("\n".join(script) + "\n" if script else ""), removed


def parse_nft_tables(text: str) -> list[tuple[str, str]]:
    """`nft list tables` output as (family, name)."""
    out = []
    for line in text.splitlines():
        words = line.split()
        if len(words) == 3 and words[0] == "table":
            out.append((words[1], words[2]))
    return out


def nft_tables_to_delete(
    tables: list[tuple[str, str]], patterns: list[str]
) -> list[tuple[str, str]]:
    res = [re.compile(p) for p in patterns]
    return [(fam, name) for fam, name in tables if any(r.fullmatch(name) for r in res)]


def _tools(family: str) -> list[str]:
    found = [
        t for t in _TOOLS[family] if shutil.which(f"{t}-save") and shutil.which(f"{t}-restore")
    ]
    if not found and shutil.which(f"{family}-save") and shutil.which(f"{family}-restore"):
        found = [family]
    return found


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "chains": {"type": "list", "elements": "str", "default": _default("chains")},
            "comments": {"type": "list", "elements": "str", "default": _default("comments")},
            "nft_tables": {"type": "list", "elements": "str", "default": _default("nft_tables")},
        },
        supports_check_mode=True,
    )
    p = module.params
    removed: list[str] = []
    for family in _TOOLS:
        for tool in _tools(family):
            rc, out, err = module.run_command([f"{tool}-save"])
            if rc != 0:
                # A back end the kernel lacks (no ip_tables module for legacy) has nothing to clean.
                if "legacy" in tool:
                    continue
                module.fail_json(msg=f"{tool}-save failed: {err.strip()}", removed=removed)
            script, what = cleanup_script(parse_save(out), p["chains"], p["comments"])
            removed += [f"{tool} {w}" for w in what]
            if script and not module.check_mode:
                rc, _, err = module.run_command([f"{tool}-restore", "--noflush"], data=script)
                if rc != 0:
                    module.fail_json(msg=f"{tool}-restore failed: {err.strip()}", script=script)
    nft = shutil.which("nft")
    if nft:
        rc, out, err = module.run_command([nft, "list", "tables"])
        if rc != 0:
            module.fail_json(msg=f"nft list tables failed: {err.strip()}", removed=removed)
        for fam, name in nft_tables_to_delete(parse_nft_tables(out), p["nft_tables"]):
            removed.append(f"nft {fam} {name}")
            if not module.check_mode:
                rc, _, err = module.run_command([nft, "delete", "table", fam, name])
                if rc != 0:
                    module.fail_json(msg=f"nft delete table {fam} {name}: {err.strip()}")
    module.exit_json(changed=bool(removed), removed=removed)


def _default(option: str) -> list[str]:
    defaults: dict[str, list[str]] = {
        "chains": ["KUBE-", "FLANNEL-", "CNI-", "cali-", "CALI-"],
        "comments": ["flanneld", "kubernetes", "kube-proxy", "cali:"],
        "nft_tables": ["kube-proxy", "flannel.*", "calico.*", "cali.*"],
    }
    return defaults[option]


if __name__ == "__main__":
    main()
