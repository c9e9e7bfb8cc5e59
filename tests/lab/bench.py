#!/usr/bin/env python3
"""The speed figures of docs/testing.md ("Speed: make bench") on the lab.

    bench.py [--var NAME=VALUE ...]      (`make bench`; LAB_ARGS passes --var)

On 5 fresh lab nodes (node1-3 control plane and etcd, node4-5 workers), at
the previous supported minor (`scenario.py previous-version`):

1. fresh: cluster.yml onto the clean hosts;
2. no-op: cluster.yml again (changed=0 required);
3. scale: a 6th node joins the lab, `scale.yml --limit node6`;
4. apiserver restart: on the first control-plane host, `systemctl restart
   kube-apiserver` (SIGTERM) until its /readyz answers, with an API probe on
   every node through its own endpoint (tests/lab/apiprobe.py): none may fail;
5. upgrade: upgrade-cluster.yml to the default kube_version, the time of each
   host's batch.

Prints a table against the targets (issue 16) with each run's task count and
ten slowest tasks, and writes it as JSON to KUBEFORGE_CACHE/bench/ (named by
commit and time) for comparison between commits; logs beside it. Fails when
a run fails, the no-op run changes anything or a probe fails. Meaningful only
on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import labconfig as cfg
from clustercheck import ApiProbes, Inventory
from runbook import plain_env, recap

INVENTORY = cfg.LAB_INVENTORY / "hosts.yml"
LAB = [sys.executable, str(cfg.REPO / "tests" / "lab" / "lab.py")]
PROBE_UNIT = "kubeforge-bench-apiprobe"
# Target seconds (issue 16); per host for the upgrade.
TARGETS = {"fresh": 180, "noop": 40, "scale": 40, "apiserver_restart": 20,
           "upgrade_control_plane": 45, "upgrade_worker": 30}  # fmt: skip
# profile_tasks' summary line: "<task> ---...--- 12.34s".
SLOW_TASK = re.compile(r"^(.+?) -{3,} (\d+\.\d+)s$")
BATCH_TASK = "TASK [Upgrade | Record the start of the batch]"
BATCH_HOST = re.compile(r"^ok: \[([^\]]+)\] => \{")
LAST_PLAY = "PLAY [Upgrade | Network plugin and addons]"
SKIPPED = re.compile(r"^\S+ +: ok=\d+ .* skipped=(\d+)", re.MULTILINE)
# From SIGTERM to a ready apiserver, timed on the host itself (python3 is there,
# curl is not); kube_apiserver_port is the default 6443 on the lab.
RESTART = r"""
import ssl, subprocess, sys, time, urllib.request
pki, address = sys.argv[1:3]
ctx = ssl.create_default_context(cafile=pki + "/ca.crt")
ctx.check_hostname = False
ctx.load_cert_chain(pki + "/kube-proxy.crt", pki + "/kube-proxy.key")
start = time.monotonic()
subprocess.run(["systemctl", "restart", "kube-apiserver"], check=True)
while time.monotonic() - start < 300:
    try:
        url = "https://" + address + ":6443/readyz"
        with urllib.request.urlopen(url, context=ctx, timeout=2) as r:
            if r.status == 200:
                print(round(time.monotonic() - start, 1))
                sys.exit(0)
    except Exception:
        pass
    time.sleep(0.2)
sys.exit("kube-apiserver not ready 300 s after the restart")
"""


@dataclass
class Run:
    name: str
    seconds: float
    tasks: int
    changed: dict[str, int]
    slowest: list[tuple[str, float]]
    marks: list[tuple[str, float]] = field(default_factory=list)
    # CPU seconds of ansible-playbook and its forks on the control host (the
    # lab's hosts run their modules in containers: not counted here).
    control_cpu: float = 0.0
    # Task runs over all hosts: ok + failed + skipped of the PLAY RECAP.
    host_tasks: int = 0


def play(name: str, args: list[str], logs: Path) -> Run:
    """ansible-playbook `args` with per-task timing; stops the bench on failure."""
    log = logs / f"{name}.log"
    # ansible.cfg enables profile_tasks: its summary lists the slowest tasks.
    env = {**plain_env(), "PROFILE_TASKS_TASK_OUTPUT_LIMIT": "10", "PYTHONUNBUFFERED": "1"}
    start = time.monotonic()
    cpu_before = children_cpu()
    marks: list[tuple[str, float]] = []
    in_batch = False
    with log.open("w") as out:
        proc = subprocess.Popen(
            ["ansible-playbook", "-i", str(INVENTORY), *args], cwd=cfg.REPO, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            now = time.monotonic() - start
            if line.startswith("TASK ["):
                in_batch = line.startswith(BATCH_TASK)
            elif in_batch and (m := BATCH_HOST.match(line)):
                marks.append((m[1], now))
            if line.startswith(LAST_PLAY):
                marks.append(("", now))
        rc = proc.wait()
    seconds = time.monotonic() - start
    control_cpu = children_cpu() - cpu_before
    text = log.read_text()
    if rc != 0:
        print(text[-4000:])
        raise SystemExit(f"bench: the {name} run failed (rc={rc}); log: {log}")
    counts = recap(text)
    if not counts:
        raise SystemExit(f"bench: no PLAY RECAP in the {name} run; log: {log}")
    summary = text.rsplit("=" * 40, 1)[-1]
    slowest = [(m[1].strip(), float(m[2])) for m in map(SLOW_TASK.match, summary.splitlines()) if m]
    tasks = sum(1 for line in text.splitlines() if line.startswith("TASK ["))
    changed = {host: c["changed"] for host, c in counts.items()}
    host_tasks = sum(c["ok"] + c["failed"] for c in counts.values()) + sum(
        int(s) for s in SKIPPED.findall(text)
    )
    return Run(
        name, round(seconds, 1), tasks, changed, slowest, marks, round(control_cpu, 1), host_tasks
    )


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def lab(*args: str) -> None:
    subprocess.run([*LAB, *args], cwd=cfg.REPO, check=True)


def ansible_shell(host: str, command: str) -> str:
    done = subprocess.run(
        ["ansible", "-i", str(INVENTORY), host, "-m", "ansible.builtin.shell", "-a", command],
        cwd=cfg.REPO, env=plain_env(), capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"bench: on {host}: {command[:80]}... failed:\n{done.stdout}{done.stderr}")
    return done.stdout.split(">>", 1)[-1].strip()


def inventory() -> Inventory:
    data = json.loads(subprocess.run(
        ["ansible-inventory", "-i", str(INVENTORY), "--list"],
        cwd=cfg.REPO, env=plain_env(), capture_output=True, text=True, check=True,
    ).stdout)  # fmt: skip

    def members(group: str) -> list[str]:
        entry = data.get(group) or {}
        found = list(entry.get("hosts", []))
        for child in entry.get("children", []):
            found += [h for h in members(child) if h not in found]
        return found

    groups = {g: members(g) for g in ("kube_control_plane", "etcd", "kube_node", "k8s_cluster")}
    return Inventory(INVENTORY, groups)


def apiserver_restart(logs: Path) -> dict[str, Any]:
    inv = inventory()
    settings = inv.settings("kube_apiserver_endpoint", "kube_cert_dir")
    first = inv.groups["kube_control_plane"][0]
    pki = settings[first]["kube_cert_dir"]
    probes = ApiProbes(inv, PROBE_UNIT)
    probes.start(settings)
    time.sleep(5)
    script = RESTART.replace("'", "'\"'\"'")
    # The apiserver itself (its own address; 127.0.0.1 is the node's balancer).
    address = inv.address(first)
    seconds = float(ansible_shell(first, f"python3 -c '{script}' {pki} {address}"))
    time.sleep(5)
    counts = probes.stop()
    (logs / "apiserver-restart.json").write_text(json.dumps(counts, indent=2) + "\n")
    made = sum(m for m, _, _ in counts.values())
    failed = {n: (f, lines) for n, (_, f, lines) in counts.items() if f}
    return {"host": first, "seconds": seconds, "probes": made, "failed": failed}


def upgrade_batches(run: Run, control_plane: list[str]) -> list[dict[str, Any]]:
    return [
        {"host": host, "seconds": round(run.marks[i + 1][1] - at, 1),
         "kind": "control_plane" if host in control_plane else "worker"}
        for i, (host, at) in enumerate(run.marks[:-1]) if host
    ]  # fmt: skip


def verdict(value: float, target: float) -> str:
    return "yes" if value <= target else "NO"


def growth(sizes: list[int], var_args: list[str], logs: Path, stamp: str, commit: str) -> int:
    """For each lab size N: deploy N-1 fresh hosts, add node<N> with
    `scale.yml --limit node<N>` (a worker; at N=3 the three hosts are all
    control plane, so the layout deploys all 3 and has no scale run), then a
    no-op cluster.yml on N, all without the ingress controller. Each run's wall
    time, control-host CPU and task runs over all hosts; the JSON is rewritten
    after each size."""
    rows: list[dict[str, Any]] = []
    out = cfg.cache_dir() / "bench" / f"growth-{stamp}-{commit or 'nogit'}.json"
    # Three hosts are all control plane: no worker can be the ingress node. The
    # same add-ons at every size keep the sizes comparable.
    var_args = ["--var", "ingress_controller_enabled=false", *var_args]
    for n in sizes:
        base = n if n <= 3 else n - 1
        lab("up", "--nodes", str(base), "--fresh", *var_args)
        subprocess.run(["rm", "-rf", str(cfg.LAB_INVENTORY / "artifacts")], check=True)
        fresh = play(f"fresh-{base}", ["cluster.yml"], logs)
        runs = [fresh]
        if base < n:
            lab("up", "--nodes", str(n), *var_args)
            runs.append(play(f"scale-{n}", ["scale.yml", "--limit", f"node{n}"], logs))
        noop = play(f"noop-{n}", ["cluster.yml"], logs)
        runs.append(noop)
        if any(noop.changed.values()):
            raise SystemExit(f"bench: the no-op run on {n} hosts changed something: {noop.changed}")
        for run in runs:
            kind, hosts = run.name.split("-")
            rows.append({"run": kind, "hosts": int(hosts), "seconds": run.seconds,
                         "control_cpu": run.control_cpu, "tasks": run.tasks,
                         "host_tasks": run.host_tasks})  # fmt: skip
        out.write_text(json.dumps({"commit": commit, "stamp": stamp, "cpus": os.cpu_count(),
                                   "rows": rows}, indent=2) + "\n")  # fmt: skip
    print(f"\ngrowth ({commit}, {os.cpu_count()} CPUs; logs {logs}):")
    print("| run | hosts | seconds | control-host CPU s | tasks | task runs on hosts |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['run']} | {r['hosts']} | {r['seconds']:.1f} | {r['control_cpu']:.1f}"
              f" | {r['tasks']} | {r['host_tasks']} |")  # fmt: skip
    print(f"\nbench: written {out}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--var", action="append", default=[], help="NAME=VALUE for the lab")
    parser.add_argument(
        "--growth",
        metavar="N,N,...",
        help="instead: fresh, scale and no-op runs at these lab sizes (3-12), e.g. 3,6,9,12",
    )
    args = parser.parse_args()
    var_args = [a for v in args.var for a in ("--var", v)]
    stamp = time.strftime("%Y%m%dT%H%M%S")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=cfg.REPO,
                            capture_output=True, text=True, check=False).stdout.strip()  # fmt: skip
    logs = cfg.cache_dir() / "bench" / f"{stamp}-{commit or 'nogit'}"
    logs.mkdir(parents=True, exist_ok=True)
    if args.growth:
        sizes = [int(s) for s in args.growth.split(",")]
        if any(not 3 <= s <= cfg.MAX_NODES for s in sizes):
            parser.error(f"--growth: sizes between 3 and {cfg.MAX_NODES}, not {args.growth}")
        return growth(sizes, var_args, logs, stamp, commit)
    previous = subprocess.run(
        [sys.executable, str(cfg.REPO / "tests" / "lab" / "scenario.py"), "previous-version"],
        cwd=cfg.REPO, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    at_previous = ["-e", f"kube_version={previous}"]

    lab("up", "--nodes", "5", "--fresh", *var_args)
    # A fresh lab gets a fresh PKI: the old cluster's artifacts would not match.
    subprocess.run(["rm", "-rf", str(cfg.LAB_INVENTORY / "artifacts")], check=True)
    fresh = play("fresh", ["cluster.yml", *at_previous], logs)
    noop = play("noop", ["cluster.yml", *at_previous], logs)
    lab("up", "--nodes", "6", *var_args)
    scale = play("scale", ["scale.yml", "--limit", "node6", *at_previous], logs)
    restart = apiserver_restart(logs)
    upgrade = play("upgrade", ["upgrade-cluster.yml"], logs)
    control_plane = inventory().groups["kube_control_plane"]
    batches = upgrade_batches(upgrade, control_plane)

    rows: list[tuple[str, float, float, str]] = [
        ("fresh 5-host deploy", fresh.seconds, TARGETS["fresh"], f"{fresh.tasks} tasks"),
        ("no-op cluster.yml", noop.seconds, TARGETS["noop"],
         f"{noop.tasks} tasks, changed {sum(noop.changed.values())}"),
        ("scale.yml --limit node6", scale.seconds, TARGETS["scale"], f"{scale.tasks} tasks"),
        ("kube-apiserver restart to ready", restart["seconds"], TARGETS["apiserver_restart"],
         f"{restart['probes']} API probes, {len(restart['failed'])} nodes with failures"),
    ]  # fmt: skip
    for b in batches:
        target = TARGETS[f"upgrade_{b['kind']}"]
        rows.append(
            (f"upgrade {b['host']} ({b['kind'].replace('_', ' ')})", b["seconds"], target, "")
        )
    print(f"\nbench ({commit}, {os.cpu_count()} CPUs, from {previous}; logs {logs}):")
    print("| figure | seconds | target | met | notes |\n| --- | --- | --- | --- | --- |")
    for name, value, goal, notes in rows:
        print(f"| {name} | {value:.1f} | {goal:.0f} | {verdict(value, goal)} | {notes} |")
    print(f"upgrade-cluster.yml in all: {upgrade.seconds:.0f} s, {upgrade.tasks} tasks")
    for r in (fresh, noop, scale, upgrade):
        print(f"\n{r.name}: the ten slowest tasks")
        for task, secs in r.slowest:
            print(f"  {secs:7.1f}s  {task}")
    result = {
        "commit": commit, "stamp": stamp, "previous": previous, "vars": args.var,
        "runs": {r.name: {"seconds": r.seconds, "tasks": r.tasks, "changed": r.changed,
                          "slowest": r.slowest} for r in (fresh, noop, scale, upgrade)},
        "apiserver_restart": restart, "upgrade_batches": batches,
        "table": [{"figure": n, "seconds": v, "target": t, "met": v <= t, "notes": x}
                  for n, v, t, x in rows],
    }  # fmt: skip
    out = cfg.cache_dir() / "bench" / f"bench-{stamp}-{commit or 'nogit'}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nbench: written {out}")
    problems = []
    if any(noop.changed.values()):
        problems.append(f"the no-op run changed something: {noop.changed}")
    if restart["failed"]:
        problems.append(f"API probes failed during the apiserver restart: {restart['failed']}")
    if not batches:
        problems.append("no upgrade batch found in the upgrade's output")
    if problems:
        print("\n".join(f"bench: {p}" for p in problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
