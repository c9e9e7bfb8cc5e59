"""The certificate renewal check of the `scale` scenario (docs/testing.md):
leaf certificates due for renewal on two running hosts are renewed by the
cluster.yml run that adds the fourth control-plane host, with an API probe on
every node throughout (none may fail).

    renewalcheck.py before INVENTORY STATE --hosts node3,node5 --nodes node1,...
    renewalcheck.py after INVENTORY STATE

`before` re-issues every leaf certificate of HOSTS with a lifetime of one day
and installs it, restarting nothing (tests/playbooks/short-lived-leaves.yml,
limited to HOSTS), checks that every leaf there is then short-lived, writes
them to STATE (JSON) and starts the API probe on NODES, the nodes already
running. `after` stops the probes and adds their counts and the window's
length to STATE. molecule/scale/tests/test_certificate_renewal.py reads it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import runbook
import scenario
from clustercheck import ApiProbes, Inventory, certificates, host_certificates, is_ca

PROBE_UNIT = "kubeforge-renewal-apiprobe"
# Each host's directories host_certificates reads, and what the probes need.
SETTINGS = (
    "kube_cert_dir", "etcd_cert_dir", "kube_config_dir", "kube_apiserver_endpoint",
    "certificates_renew_before_days", "artifacts_dir",
)  # fmt: skip
# The kubelet renews its own client pair (kubelet_rotate_certificates), not cluster.yml.
KUBELET_OWN = "/var/lib/kubelet/pki/kubelet-client-current.pem"
# A leaf re-issued for one day expires before this from now.
SHORT = timedelta(days=2)


class RenewalError(Exception):
    """The check's starting point could not be made; the message says why."""


def inventory_of(path: Path) -> Inventory:
    return Inventory(path, scenario.groups_of(path))


def leaves(
    inventory: Inventory, settings: dict[str, dict[str, Any]], hosts: list[str]
) -> dict[str, list[Any]]:
    """ "host:path" -> the leaf certificates of every certificate file and
    kubeconfig on `hosts` (the kubelet's own rotating pair left out)."""
    out: dict[str, list[Any]] = {}
    for name in hosts:
        for path, text in host_certificates(inventory.host(name), settings[name]).items():
            if path != KUBELET_OWN:
                out[f"{name}:{path}"] = [c for c in certificates(text) if not is_ca(c)]
    return out


def short_lived(found: dict[str, list[Any]], now: datetime) -> dict[str, str]:
    """ "host:path subject" -> expiry (ISO) of every leaf in `found` that
    expires within SHORT of `now`."""
    return {
        f"{where} {c.subject.rfc4514_string()}": c.not_valid_after_utc.isoformat()
        for where, certs in found.items()
        for c in certs
        if c.not_valid_after_utc < now + SHORT
    }


def long_lived_files(found: dict[str, list[Any]], now: datetime) -> list[str]:
    """The leaves of certificate files (not kubeconfigs: cluster.yml rewrites
    those, not the certificates role) that are not short-lived."""
    return sorted(
        f"{where} {c.subject.rfc4514_string()} ({c.not_valid_after_utc:%Y-%m-%d})"
        for where, certs in found.items()
        if not where.endswith(".conf")
        for c in certs
        if c.not_valid_after_utc >= now + SHORT
    )


def before(inventory_path: Path, state: Path, hosts: list[str], nodes: list[str]) -> None:
    inventory = inventory_of(inventory_path)
    unknown = sorted(set(hosts + nodes) - set(inventory.groups["k8s_cluster"]))
    if unknown:
        raise RenewalError(f"{unknown} are not in k8s_cluster of {inventory_path}")
    done = runbook.run(
        "short-lived-leaves",
        ["-i", str(inventory_path), "--limit", ",".join(hosts),
         "tests/playbooks/short-lived-leaves.yml"],
    )  # fmt: skip
    if done["rc"] != 0:
        raise RenewalError("short-lived-leaves.yml failed: see short-lived-leaves.log")
    if set(done["recap"]) != set(hosts):
        raise RenewalError(f"short-lived-leaves.yml ran on {sorted(done['recap'])}, not {hosts}")
    settings = inventory.settings(*SETTINGS)
    now = datetime.now(UTC)
    found = leaves(inventory, settings, hosts)
    short = short_lived(found, now)
    with_short = {where.split(":")[0] for where in short}
    if with_short != set(hosts):
        raise RenewalError(f"short-lived leaves on {sorted(with_short)}, not on {hosts}")
    missed = long_lived_files(found, now)
    if missed:
        raise RenewalError("leaves short-lived-leaves.yml did not re-issue: " + "; ".join(missed))
    probes = ApiProbes(inventory, PROBE_UNIT, nodes)
    probes.start(settings)
    record = {"hosts": hosts, "nodes": nodes, "short": short, "started": time.time()}
    state.write_text(json.dumps(record, indent=2) + "\n")
    print(f"renewalcheck: {len(short)} short-lived leaves on {', '.join(hosts)}; "
          f"API probes on {', '.join(nodes)}")  # fmt: skip


def read_state(state: Path) -> dict[str, Any]:
    if not state.is_file():
        raise RenewalError(f"{state} is missing: `renewalcheck.py before` did not run")
    record: dict[str, Any] = json.loads(state.read_text())
    return record


def after(inventory_path: Path, state: Path) -> None:
    record = read_state(state)
    probes = ApiProbes(inventory_of(inventory_path), PROBE_UNIT, record["nodes"])
    counts = probes.stop()
    record["seconds"] = round(time.time() - record["started"], 1)
    record["probes"] = {node: list(count) for node, count in counts.items()}
    state.write_text(json.dumps(record, indent=2) + "\n")
    made = sum(m for m, _, _ in counts.values())
    failed = sum(f for _, f, _ in counts.values())
    print(f"renewalcheck: {record['seconds']:.0f}s, {made} API probes, {failed} failed")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    first = sub.add_parser("before", help="short-lived leaves on HOSTS, API probes on NODES")
    first.add_argument("inventory", type=Path)
    first.add_argument("state", type=Path)
    first.add_argument("--hosts", required=True, help="comma-separated, running hosts")
    first.add_argument("--nodes", required=True, help="comma-separated, running nodes")
    last = sub.add_parser("after", help="stop the API probes, their counts into STATE")
    last.add_argument("inventory", type=Path)
    last.add_argument("state", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "before":
            before(args.inventory, args.state, args.hosts.split(","), args.nodes.split(","))
        else:
            after(args.inventory, args.state)
    except RenewalError as err:
        print(f"renewalcheck: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
