"""Preconditions of the molecule scenarios that build on each other.

`make test` runs the scenarios in order on one lab (default, scale, remove,
reset, upgrade), each starting from the cluster the one before left. Run alone,
a scenario's prepare step builds that starting point itself:

    scenario.py ensure-cluster INVENTORY [--kube-version V|previous]
        nothing to do if the cluster of INVENTORY runs: exactly its k8s_cluster
        hosts as Ready nodes at V (default: the collection's kube_version;
        previous: what previous-version prints); otherwise its nodes are
        recreated and cluster.yml deploys it.
    scenario.py ensure-fresh N[,N...]
        recreates the listed lab nodes if anything was deployed on them.
    scenario.py record-services N[,N...] FILE
        writes the main PID and start time of each Kubernetes service on the
        listed lab nodes to FILE (JSON), for a later check that they kept
        running (services()).
    scenario.py previous-version
        prints the newest patch of the minor before the default
        (kube_supported_versions[1]), where the upgrade scenario starts.

Only lab inventories written by lab.py (hosts named nodeN) are understood.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import lab
import labconfig as cfg


def groups_of(inventory: Path) -> dict[str, list[str]]:
    """Group -> hosts as Ansible reads the inventory (YAML or INI, children resolved)."""
    done = subprocess.run(
        ["ansible-inventory", "-i", str(inventory), "--list"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"scenario: ansible-inventory -i {inventory}: {done.stderr.strip()}")
    data = json.loads(done.stdout)

    def hosts(group: str) -> list[str]:
        entry = data.get(group) or {}
        out = list(entry.get("hosts") or [])
        for child in entry.get("children") or []:
            out += [h for h in hosts(child) if h not in out]
        return out

    names = [g for g in data if g != "_meta"]
    return {g: hosts(g) for g in names} | {
        "k8s_cluster": list(dict.fromkeys(hosts("kube_control_plane") + hosts("kube_node")))
    }


def number(host: str) -> int:
    return int(host.removeprefix("node"))


def ssh(index: int, command: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*lab.ssh_argv(index, lab.ssh_key()), command],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def cluster_problem(inventory: Path, version: str) -> str | None:
    """Why the inventory's cluster is not running as wanted (None: it is)."""
    groups = groups_of(inventory)
    first = number(groups["kube_control_plane"][0])
    done = ssh(first, "kubectl --kubeconfig /etc/kubernetes/admin.conf get nodes -o json")
    if done.returncode != 0:
        return f"kubectl on node{first}: {done.stderr.strip() or done.stdout.strip()}"
    nodes = {}
    for item in json.loads(done.stdout)["items"]:
        ready = [c for c in item["status"]["conditions"] if c["type"] == "Ready"]
        nodes[item["metadata"]["name"]] = (
            bool(ready) and ready[0]["status"] == "True",
            item["status"]["nodeInfo"]["kubeletVersion"],
        )
    wanted = set(groups["k8s_cluster"])
    if set(nodes) != wanted:
        return f"nodes are {sorted(nodes)}, the inventory lists {sorted(wanted)}"
    bad = [
        f"{n} (ready={r}, {v})"
        for n, (r, v) in sorted(nodes.items())
        if not r or v != f"v{version}"
    ]
    return f"not Ready at v{version}: {', '.join(bad)}" if bad else None


def refresh(indexes: list[int]) -> None:
    """Recreate the given nodes clean (the others are left alone)."""
    for i in indexes:
        lab.remove_node(lab.container_name(i))
    alive = [i for i in range(1, cfg.MAX_NODES + 1) if lab.container_running(lab.container_name(i))]
    # the inventory being deployed is the caller's: lab.up must not rewrite it
    lab.up(max(alive + indexes), inventory=False)


def ensure_cluster(inventory: Path, version: str) -> None:
    problem = cluster_problem(inventory, version)
    if problem is None:
        print(f"scenario: the cluster of {inventory.name} runs at v{version}: nothing to deploy")
        return
    print(f"scenario: {problem}; deploying {inventory.name} on fresh nodes")
    refresh([number(h) for h in groups_of(inventory)["k8s_cluster"]])
    start = time.monotonic()
    subprocess.run(
        ["ansible-playbook", "-i", str(inventory), "cluster.yml", "-e", f"kube_version={version}"],
        cwd=cfg.REPO, check=True,
    )  # fmt: skip
    print(f"scenario: deployed in {time.monotonic() - start:.0f}s")
    problem = cluster_problem(inventory, version)
    if problem:
        raise SystemExit(f"scenario: after cluster.yml: {problem}")


def ensure_fresh(indexes: list[int]) -> None:
    touched = [
        i for i in indexes
        if not lab.container_running(lab.container_name(i))
        or ssh(i, "test ! -e /etc/kubernetes -a ! -e /var/lib/kubeforge").returncode != 0
    ]  # fmt: skip
    if touched:
        print(f"scenario: recreating {', '.join(f'node{i}' for i in touched)}")
        refresh(touched)


SERVICES = (
    "kubelet", "kube-proxy", "kube-apiserver", "kube-controller-manager", "kube-scheduler",
    "etcd", "containerd",
)  # fmt: skip


def services(index: int) -> dict[str, str]:
    """Unit -> "<main PID> <start time>" of the Kubernetes services running on
    lab node `index` (units that do not run are left out)."""
    done = ssh(index, "systemctl show -p Id -p MainPID -p ExecMainStartTimestampMonotonic "
                      + " ".join(SERVICES))  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"scenario: systemctl show on node{index}: {done.stderr.strip()}")
    out: dict[str, str] = {}
    for block in done.stdout.strip().split("\n\n"):
        fields = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if fields.get("MainPID", "0") != "0":
            unit = fields["Id"].removesuffix(".service")
            out[unit] = f"{fields['MainPID']} {fields['ExecMainStartTimestampMonotonic']}"
    return out


def previous_version() -> str:
    if not cfg.with_previous_kube():
        raise SystemExit(
            f"scenario: {cfg.KUBE_PREVIOUS_ENV}=0: the lab does not build the previous release"
        )
    supported = cfg.load_defaults()["kube_supported_versions"]
    assert isinstance(supported, list) and len(supported) > 1, supported
    return str(supported[1]).removeprefix("v")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_cluster = sub.add_parser("ensure-cluster")
    p_cluster.add_argument("inventory", type=Path)
    p_cluster.add_argument("--kube-version", default=str(cfg.load_defaults()["kube_version"]))
    p_fresh = sub.add_parser("ensure-fresh")
    p_fresh.add_argument("nodes", help="node numbers, e.g. 6,7")
    p_record = sub.add_parser("record-services")
    p_record.add_argument("nodes", help="node numbers, e.g. 1")
    p_record.add_argument("file", type=Path)
    sub.add_parser("previous-version")
    args = parser.parse_args(argv)
    if args.command == "previous-version":
        print(previous_version())
    elif args.command == "ensure-cluster":
        version = previous_version() if args.kube_version == "previous" else args.kube_version
        ensure_cluster(args.inventory.resolve(), version.removeprefix("v"))
    elif args.command == "record-services":
        found = {f"node{i}": services(i) for i in (int(x) for x in args.nodes.split(","))}
        args.file.write_text(json.dumps(found, indent=2, sort_keys=True) + "\n")
        print(f"scenario: services of {', '.join(found)} written to {args.file}")
    else:
        ensure_fresh([int(x) for x in args.nodes.split(",") if x.strip()])
    return 0


if __name__ == "__main__":
    sys.exit(main())
