"""apiserver_ha_mode vip for real, on lab nodes node6-node9 (node6-8 control
plane and etcd, node9 a worker), from fresh hosts:

1. node6-node9 are replaced by clean containers (the other lab nodes are left
   alone), then cluster.yml deploys with the VIP 10.213.0.100:8443 and runs
   again, changing nothing;
2. every node is Ready, asked through the VIP from the control host; every
   kubelet and kube-proxy talks to the VIP, no local load balancer runs, one
   control-plane host holds the VIP and the apiserver certificate names it;
3. haproxy, keepalived and kube-apiserver are stopped in turn on the VIP's
   holder: the VIP moves to another control-plane host and the API keeps
   answering on the VIP from node9 (its longest gap is measured);
4. after the stopped services are back, cluster.yml again changes nothing.

Not part of `make test`: it takes the machine for a while (about a quarter of
an hour on 2 cores; timings land in $KUBEFORGE_VIP_TEST_DIR/timings.json).
Needs the lab's network, node image, mirror and registry (`make lab-up`);
when they are missing the tests fail saying so. The cluster stays up
afterwards for inspection; the next run replaces it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import images
import lab
import labconfig as cfg
import pytest
import yaml
from runbook import plain_env

INDEXES = (6, 7, 8, 9)
NODES = {f"node{i}": cfg.node_ip(i) for i in INDEXES}
CONTROL_PLANE = ["node6", "node7", "node8"]
WORKER = "node9"
VIP = str(cfg.SUBNET.network_address + 100)
PORT = 8443
EXTRA_VARS = [
    "-e",
    "apiserver_ha_mode=vip",
    "-e",
    json.dumps({"loadbalancer_apiserver": {"address": VIP, "port": PORT}}),
    # The VIP is under test, not the add-ons the lab's group_vars switch on (its
    # one worker is no ingress node either).
    "-e",
    json.dumps(
        {
            name: False
            for name in (
                "metrics_server_enabled",
                "local_path_provisioner_enabled",
                "ingress_controller_enabled",
                "gateway_api_enabled",
            )
        }
    ),
]
SSH_KEY = cfg.LAB_INVENTORY / "ssh" / "id_ed25519"
SSH_OPTS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
WORKDIR = Path(os.environ.get("KUBEFORGE_VIP_TEST_DIR", "/tmp/kubeforge-vip-test"))
# How long after a stop the VIP must have moved, and the longest the API may
# stay silent on it meanwhile (keepalived: check every 1 s, 2 failures; haproxy
# checks each apiserver every 2 s, 2 failures).
MOVE_WITHIN = 20.0
LONGEST_GAP = 15.0

# Runs on node9: asks the VIP's /readyz four times a second with the node's
# client certificate, printing "<time> ok|fail" for each try.
PROBE = """
import ssl, sys, time, urllib.request
pki = "/etc/kubernetes/pki/"
ctx = ssl.create_default_context(cafile=pki + "ca.crt")
ctx.load_cert_chain(pki + "kubelet-client.crt", pki + "kubelet-client.key")
url, end = sys.argv[1], time.time() + float(sys.argv[2])
while time.time() < end:
    start = time.time()
    try:
        with urllib.request.urlopen(url, timeout=1, context=ctx) as resp:
            ok = resp.status == 200
    except Exception:
        ok = False
    print(f"{start:.2f} {'ok' if ok else 'fail'}", flush=True)
    time.sleep(max(0.0, 0.25 - (time.time() - start)))
"""


@dataclass
class Run:
    name: str
    stdout: str
    seconds: float
    changed: dict[str, int] = field(default_factory=dict)


@dataclass
class Failover:
    service: str
    old_holder: str
    new_holder: str
    moved_after: float  # seconds from the stop until another host held the VIP
    longest_gap: float  # longest time without an answer on the VIP from node9
    answers: list[tuple[float, bool]]


@dataclass
class Deployment:
    runs: dict[str, Run]
    kubectl: Path
    timings: dict[str, object]


def node_image() -> str:
    return next(i.tag for i in images.local_images() if i.directory == "node")


def kubectl_url() -> str:
    version = str(cfg.load_defaults()["kube_version"])
    return f"{cfg.mirror_url()}/dl.k8s.io/release/v{version}/bin/linux/{cfg.ARCH}/kubectl"


def require_lab() -> None:
    missing = []
    for what, args in [
        ("the lab network", ["docker", "network", "inspect", cfg.NAME]),
        ("the lab's node image", ["docker", "image", "inspect", node_image()]),
    ]:
        try:
            done = subprocess.run(args, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            missing.append(f"{what} (docker: {exc})")
            continue
        if done.returncode != 0:
            missing.append(f"{what} ({done.stderr.strip()})")
    for what, url in [
        ("file mirror", f"{kubectl_url()}.sha256"),
        ("image registry", f"http://{cfg.registry_addr()}/v2/"),
    ]:
        try:
            urllib.request.urlopen(url, timeout=5).close()
        except (OSError, urllib.error.URLError) as exc:
            missing.append(f"{what} {url}: {exc}")
    if not SSH_KEY.exists():
        missing.append(f"lab SSH key {SSH_KEY}")
    if missing:
        pytest.fail(
            "the lab is not up (bring it up with `make lab-up`; this test replaces node6-node9 "
            "itself): " + "; ".join(missing)
        )


def ssh(host: str, command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["ssh", "-i", str(SSH_KEY), *SSH_OPTS, "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=5",
         f"root@{NODES[host]}", command],
        text=True, capture_output=True, timeout=300,
    )  # fmt: skip
    if check and done.returncode != 0:
        pytest.fail(f"{host}: `{command}` failed ({done.returncode}): {done.stdout}{done.stderr}")
    return done


def fresh_nodes() -> float:
    """Replace node6-node9 with clean containers; seconds it took."""
    start = time.monotonic()
    pubkey = SSH_KEY.with_name(SSH_KEY.name + ".pub")
    try:
        for i in INDEXES:
            lab.remove_node(lab.container_name(i))
            lab.ensure_node(i, node_image(), pubkey)
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"recreating lab nodes node6-node9 failed: {exc}: {exc.stderr}")
    pending = set(NODES)
    deadline = time.monotonic() + 180
    while pending and time.monotonic() < deadline:
        for host in sorted(pending):
            if ssh(host, "systemctl is-system-running --wait; python3 -V", check=False).stdout:
                pending.discard(host)
        time.sleep(1)
    if pending:
        pytest.fail(f"fresh lab nodes {sorted(pending)} did not answer SSH within 180 s")
    return time.monotonic() - start


def write_inventory() -> Path:
    WORKDIR.mkdir(parents=True, exist_ok=True)
    inventory = {
        "all": {
            "hosts": {h: {"ansible_host": ip, "ip": ip} for h, ip in NODES.items()},
            "vars": {"ansible_user": "root", "ansible_ssh_private_key_file": str(SSH_KEY)},
            "children": {
                "kube_control_plane": {"hosts": dict.fromkeys(CONTROL_PLANE)},
                "etcd": {"hosts": dict.fromkeys(CONTROL_PLANE)},
                "kube_node": {"hosts": {WORKER: None}},
            },
        }
    }
    path = WORKDIR / "hosts.yml"
    path.write_text(yaml.safe_dump(inventory, sort_keys=False))
    # The lab's group_vars: mirrors, registry and the settings container hosts need.
    group_vars = WORKDIR / "group_vars"
    if group_vars.is_symlink() or group_vars.exists():
        group_vars.unlink()
    group_vars.symlink_to(cfg.LAB_INVENTORY / "group_vars")
    return path


def playbook(name: str) -> Run:
    start = time.monotonic()
    done = subprocess.run(
        ["ansible-playbook", "-i", str(WORKDIR / "hosts.yml"), "cluster.yml", *EXTRA_VARS],
        cwd=cfg.REPO, env=plain_env(), text=True, capture_output=True,
    )  # fmt: skip
    run = Run(name, done.stdout, time.monotonic() - start)
    log = WORKDIR / f"{name}.log"
    log.write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        pytest.fail(
            f"{name}: cluster.yml failed ({done.returncode}), log in {log}:\n"
            f"{done.stdout[-6000:]}\n{done.stderr[-2000:]}"
        )
    for host, changed in re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", done.stdout, re.M):
        run.changed[host] = int(changed)
    return run


def fetch_kubectl(dest: Path) -> Path:
    with urllib.request.urlopen(kubectl_url(), timeout=60) as resp:
        dest.write_bytes(resp.read())
    dest.chmod(0o755)
    return dest


def save_timings(d: Deployment) -> None:
    (WORKDIR / "timings.json").write_text(json.dumps(d.timings, indent=2) + "\n")


@pytest.fixture(scope="module")
def deployed() -> Iterator[Deployment]:
    require_lab()
    started = time.monotonic()
    write_inventory()
    for old in ["artifacts", "timings.json"]:
        subprocess.run(["rm", "-rf", str(WORKDIR / old)], check=True)
    timings: dict[str, object] = {"fresh_nodes": round(fresh_nodes(), 1)}
    runs = {name: playbook(name) for name in ("deploy", "again")}
    for run in runs.values():
        timings[run.name] = {"seconds": round(run.seconds, 1), "changed": run.changed}
    d = Deployment(runs, fetch_kubectl(WORKDIR / "kubectl"), timings)
    save_timings(d)
    yield d
    timings["total"] = round(time.monotonic() - started, 1)
    save_timings(d)


def kubectl(d: Deployment, *args: str) -> str:
    done = subprocess.run(
        [str(d.kubectl), "--kubeconfig", str(WORKDIR / "artifacts" / "admin.conf"),
         "--server", f"https://{VIP}:{PORT}", *args],
        text=True, capture_output=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, f"kubectl {' '.join(args)} via the VIP: {done.stderr}"
    return done.stdout


def vip_holders() -> list[str]:
    return [
        host
        for host in CONTROL_PLANE
        if ssh(host, f"ip -4 -o addr show | grep -qF ' {VIP}/'", check=False).returncode == 0
    ]


def wait_healthy(host: str, timeout: float = 300) -> None:
    """Until haproxy on `host` reports its local apiserver ready."""
    deadline = time.monotonic() + timeout
    check = "curl -fsS -o /dev/null http://127.0.0.1:8082/healthz"
    while time.monotonic() < deadline:
        if ssh(host, check, check=False).returncode == 0:
            return
        time.sleep(2)
    pytest.fail(f"{host}: haproxy's health check of its apiserver did not pass in {timeout}s")


def longest_gap(answers: list[tuple[float, bool]]) -> float:
    gap, since = 0.0, None
    for at, ok in answers:
        if not ok and since is None:
            since = at
        elif ok and since is not None:
            gap, since = max(gap, at - since), None
    if since is not None:
        gap = max(gap, answers[-1][0] - since)
    return gap


def failover(d: Deployment, service: str) -> Failover:
    """Stop `service` on the VIP's holder while node9 asks the VIP; start it again."""
    holders = vip_holders()
    assert len(holders) == 1, f"VIP {VIP} held by {holders}, wanted exactly one host"
    old = holders[0]
    probe = subprocess.Popen(
        ["ssh", "-i", str(SSH_KEY), *SSH_OPTS, "-o", "LogLevel=ERROR", f"root@{NODES[WORKER]}",
         f"python3 -c {shlex.quote(PROBE)} https://{VIP}:{PORT}/readyz 40"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        time.sleep(3)  # answers before the stop
        start = time.monotonic()
        # kube-apiserver drains its requests for up to a minute before it exits:
        # the VIP should have moved long before.
        ssh(old, f"systemctl stop --no-block {service}")
        new, moved_after = "", MOVE_WITHIN
        while time.monotonic() - start < MOVE_WITHIN:
            now = vip_holders()
            if now and old not in now:
                new, moved_after = ",".join(now), time.monotonic() - start
                break
            time.sleep(0.2)
        out, err = probe.communicate(timeout=120)
    finally:
        probe.kill()
        ssh(old, f"systemctl start {service}")
        wait_healthy(old)
    answers = [(float(t), r == "ok") for t, r in re.findall(r"^(\S+) (ok|fail)$", out, re.M)]
    assert answers, f"the probe on {WORKER} printed nothing: {err}"
    result = Failover(service, old, new, moved_after, longest_gap(answers), answers)
    failovers = d.timings.setdefault("failovers", {})
    assert isinstance(failovers, dict)
    failovers[service] = {
        "from": old,
        "to": new,
        "vip_moved_after_s": round(moved_after, 1),
        "longest_gap_s": round(result.longest_gap, 2),
        "failed_probes": sum(1 for _, ok in answers if not ok),
        "probes": len(answers),
    }
    save_timings(d)
    return result


def assert_moved(f: Failover) -> None:
    assert f.new_holder in CONTROL_PLANE, (
        f"stopping {f.service} on {f.old_holder}: the VIP did not move within {MOVE_WITHIN}s"
    )
    assert f.longest_gap <= LONGEST_GAP, (
        f"stopping {f.service} on {f.old_holder}: no answer on the VIP from {WORKER} "
        f"for {f.longest_gap:.1f}s"
    )
    assert f.answers[0][1] and all(ok for _, ok in f.answers[-8:]), (
        f"stopping {f.service}: the VIP did not answer before the stop or after the move: "
        f"{f.answers}"
    )
    # No preemption: the old holder does not take the VIP back once healthy again.
    assert vip_holders() == [f.new_holder]


def test_fresh_deployment_and_a_second_run_that_changes_nothing(deployed: Deployment) -> None:
    deploy, again = deployed.runs["deploy"], deployed.runs["again"]
    assert set(deploy.changed) == set(NODES) and all(deploy.changed.values()), deploy.changed
    assert again.changed == dict.fromkeys(NODES, 0), again.stdout[-4000:]


def test_every_node_is_ready_through_the_vip(deployed: Deployment) -> None:
    nodes = json.loads(kubectl(deployed, "get", "nodes", "-o", "json"))["items"]
    ready = {
        n["metadata"]["name"]: any(
            c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"]
        )
        for n in nodes
    }
    assert ready == dict.fromkeys(NODES, True)


def test_kubelets_and_kube_proxy_use_the_vip_without_a_local_load_balancer(
    deployed: Deployment,
) -> None:
    for host in NODES:
        servers = ssh(
            host, "grep -h 'server:' /etc/kubernetes/kubelet.conf /etc/kubernetes/kube-proxy.conf"
        ).stdout.split()
        assert servers == ["server:", f"https://{VIP}:{PORT}"] * 2, (host, servers)
        left = ssh(host, "ls /etc/kubernetes/manifests /etc/kubernetes/apiserver-lb", check=False)
        assert left.stdout.strip() in ("", "/etc/kubernetes/manifests:"), (host, left.stdout)
        state = ssh(host, "systemctl is-active haproxy keepalived", check=False).stdout.split()
        wanted = ["active", "active"] if host in CONTROL_PLANE else ["inactive", "inactive"]
        assert state == wanted, (host, state)


def test_the_apiserver_certificate_names_the_vip(deployed: Deployment) -> None:
    sans = subprocess.run(
        ["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in",
         str(WORKDIR / "artifacts" / "pki" / "apiserver.crt")],
        text=True, capture_output=True, check=True,
    ).stdout  # fmt: skip
    assert f"IP Address:{VIP}" in sans, sans


def test_one_control_plane_host_holds_the_vip(deployed: Deployment) -> None:
    assert len(vip_holders()) == 1


def test_vip_moves_when_haproxy_stops_on_its_holder(deployed: Deployment) -> None:
    assert_moved(failover(deployed, "haproxy"))


def test_vip_moves_when_keepalived_stops_on_its_holder(deployed: Deployment) -> None:
    assert_moved(failover(deployed, "keepalived"))


def test_vip_moves_when_the_apiserver_stops_on_its_holder(deployed: Deployment) -> None:
    assert_moved(failover(deployed, "kube-apiserver"))


def test_after_the_failovers_a_run_changes_nothing(deployed: Deployment) -> None:
    run = playbook("after-failovers")
    deployed.timings[run.name] = {"seconds": round(run.seconds, 1), "changed": run.changed}
    save_timings(deployed)
    assert run.changed == dict.fromkeys(NODES, 0), run.stdout[-4000:]
