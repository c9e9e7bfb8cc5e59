"""Roles certificates, etcd and control_plane on two lab nodes (node8, node9).

From bare hosts (tests/playbooks/control_plane_reset.yml wipes them first):
0. --check --diff on the bare hosts plans the deployment and touches nothing;
1. etcd and the control plane on node8 alone;
2. node9 added to both groups: it joins etcd with `etcdctl member add` and the
   apiserver certificate is re-issued for it (and nothing else is);
3. the same run again changes nothing, and so does --check --diff;
4. the control host loses its PKI: the CAs come back from the cluster.

Needs the lab (`make lab-up NODES=9`, or any lab with node8 and node9) and its
file mirror; when they are not reachable the tests fail saying so.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import labconfig as cfg
import pytest
import yaml
from runbook import plain_env

NODES = {"node8": cfg.node_ip(8), "node9": cfg.node_ip(9)}
SSH_KEY = cfg.LAB_INVENTORY / "ssh" / "id_ed25519"
SSH_OPTS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
PLAYBOOK = cfg.REPO / "tests" / "playbooks" / "control_plane.yml"
RESET = cfg.REPO / "tests" / "playbooks" / "control_plane_reset.yml"
WORKDIR = Path(os.environ.get("KUBEFORGE_CP_TEST_DIR", "/tmp/kubeforge-control-plane-test"))
ETCDCTL = (
    "ETCDCTL_CACERT=/etc/kubernetes/pki/etcd/ca.crt "
    "ETCDCTL_CERT=/etc/kubernetes/pki/etcd/healthcheck-client.crt "
    "ETCDCTL_KEY=/etc/kubernetes/pki/etcd/healthcheck-client.key /usr/local/bin/etcdctl"
)
SHARED_PKI = [
    "ca.crt", "ca.key", "front-proxy-ca.crt", "front-proxy-ca.key", "sa.key", "sa.pub",
    "etcd/ca.crt", "etcd/ca.key", "apiserver.crt", "apiserver.key",
    "apiserver-kubelet-client.crt", "apiserver-etcd-client.crt", "front-proxy-client.crt",
    "controller-manager.crt", "scheduler.crt", "admin.crt", "etcd/healthcheck-client.crt",
]  # fmt: skip


@dataclass
class Run:
    """One ansible-playbook run: output, duration, changed count per host."""

    name: str
    stdout: str
    seconds: float
    changed: dict[str, int] = field(default_factory=dict)


@dataclass
class Deployment:
    runs: dict[str, Run]
    left_by_check: list[str]
    pki_after_1: dict[str, str]
    pki_after_2: dict[str, str]
    kubectl: Path


def inventory(etcd: list[str], control_plane: list[str]) -> dict[str, object]:
    return {
        "all": {
            "vars": {
                "ansible_user": "root",
                "ansible_ssh_private_key_file": str(SSH_KEY),
                "ansible_ssh_common_args": " ".join(SSH_OPTS),
                "files_repo": cfg.mirror_url(),
            },
            "hosts": {h: {"ansible_host": ip, "ip": ip} for h, ip in NODES.items()},
            "children": {
                "etcd": {"hosts": dict.fromkeys(etcd)},
                "kube_control_plane": {"hosts": dict.fromkeys(control_plane)},
                "kube_node": {"hosts": {}},
                "k8s_cluster": {"children": {"kube_control_plane": None, "kube_node": None}},
            },
        }
    }


def require_lab() -> None:
    missing = []
    for name, ip in NODES.items():
        try:
            socket.create_connection((ip, 22), timeout=5).close()
        except OSError as exc:
            missing.append(f"{name} ({ip}:22): {exc}")
    kubectl_sum = f"{kubectl_url()}.sha256"
    try:
        urllib.request.urlopen(kubectl_sum, timeout=5).close()
    except (OSError, urllib.error.URLError) as exc:
        missing.append(f"file mirror {kubectl_sum}: {exc}")
    if not SSH_KEY.exists():
        missing.append(f"lab SSH key {SSH_KEY}")
    if missing:
        pytest.fail(
            "the lab is not reachable (bring it up with `make lab-up NODES=9`): "
            + "; ".join(missing)
        )


def playbook(name: str, playbook: Path, inv: Path, *args: str, check: bool = True) -> Run:
    start = time.monotonic()
    done = subprocess.run(
        ["ansible-playbook", "-i", str(inv), str(playbook), *args],
        cwd=cfg.REPO,
        env=plain_env(),
        text=True,
        capture_output=True,
    )
    run = Run(name, done.stdout, time.monotonic() - start)
    (WORKDIR / f"{name}.log").write_text(done.stdout + done.stderr)
    if check and done.returncode != 0:
        pytest.fail(
            f"{name}: ansible-playbook {playbook.name} failed ({done.returncode}), "
            f"log in {WORKDIR / (name + '.log')}:\n{done.stdout[-6000:]}\n{done.stderr[-2000:]}"
        )
    for host, changed in re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", done.stdout, re.M):
        run.changed[host] = int(changed)
    return run


def ssh(host: str, command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [
            "ssh",
            "-i",
            str(SSH_KEY),
            *SSH_OPTS,
            "-o",
            "LogLevel=ERROR",
            f"root@{NODES[host]}",
            command,
        ],
        text=True,
        capture_output=True,
        timeout=120,
    )
    if check and done.returncode != 0:
        pytest.fail(f"{host}: `{command}` failed ({done.returncode}): {done.stdout}{done.stderr}")
    return done


def digests(pki: Path) -> dict[str, str]:
    return {n: hashlib.sha256((pki / n).read_bytes()).hexdigest() for n in SHARED_PKI}


def kubectl_url() -> str:
    version = str(cfg.load_defaults()["kube_version"])
    return f"{cfg.mirror_url()}/dl.k8s.io/release/v{version}/bin/linux/{cfg.ARCH}/kubectl"


def fetch_kubectl(dest: Path) -> Path:
    with urllib.request.urlopen(kubectl_url(), timeout=60) as resp:
        dest.write_bytes(resp.read())
    dest.chmod(0o755)
    return dest


@pytest.fixture(scope="module")
def deployed() -> Iterator[Deployment]:
    require_lab()
    WORKDIR.mkdir(parents=True, exist_ok=True)
    one, two = WORKDIR / "hosts-1.yml", WORKDIR / "hosts-2.yml"
    one.write_text(yaml.safe_dump(inventory(["node8"], ["node8"]), sort_keys=False))
    two.write_text(yaml.safe_dump(inventory(["node8", "node9"], ["node8", "node9"])))
    runs: dict[str, Run] = {}
    playbook("reset", RESET, two)
    runs["check-bare"] = playbook("check-bare", PLAYBOOK, two, "--check", "--diff")
    left_by_check = [str(p) for p in [WORKDIR / "artifacts"] if p.exists()] + [
        f"{host}:{path}"
        for host in NODES
        for path in ["/etc/kubernetes", "/etc/etcd", "/etc/systemd/system/etcd.service"]
        if ssh(host, f"test -e {path}", check=False).returncode == 0
    ]
    runs["node8"] = playbook("node8-alone", PLAYBOOK, one)
    pki_after_1 = digests(WORKDIR / "artifacts" / "pki")
    runs["add-node9"] = playbook("add-node9", PLAYBOOK, two)
    pki_after_2 = digests(WORKDIR / "artifacts" / "pki")
    runs["again"] = playbook("again", PLAYBOOK, two)
    summary = {
        r.name: {"seconds": round(r.seconds, 1), "changed": r.changed} for r in runs.values()
    }
    (WORKDIR / "timings.json").write_text(json.dumps(summary, indent=2) + "\n")
    yield Deployment(
        runs, left_by_check, pki_after_1, pki_after_2, fetch_kubectl(WORKDIR / "kubectl")
    )


def kubectl(d: Deployment, host: str, *args: str) -> str:
    done = subprocess.run(
        [str(d.kubectl), "--kubeconfig", str(WORKDIR / "artifacts" / "admin.conf"),
         "--server", f"https://{NODES[host]}:6443", *args],
        text=True, capture_output=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, f"kubectl {' '.join(args)} via {host}: {done.stderr}"
    return done.stdout


def test_first_runs_deploy_and_second_run_changes_nothing(deployed: Deployment) -> None:
    assert deployed.runs["node8"].changed["node8"] > 0
    assert deployed.runs["add-node9"].changed["node9"] > 0
    assert deployed.runs["again"].changed == {"node8": 0, "node9": 0}, deployed.runs["again"].stdout


def test_check_mode_on_bare_hosts_succeeds_and_changes_nothing(deployed: Deployment) -> None:
    assert deployed.runs["check-bare"].changed["node9"] > 0  # it did plan the deployment
    assert deployed.left_by_check == []


def test_adding_a_control_plane_host_reissues_only_the_apiserver_certificate(
    deployed: Deployment,
) -> None:
    before, after = deployed.pki_after_1, deployed.pki_after_2
    assert [n for n in SHARED_PKI if before[n] != after[n]] == ["apiserver.crt"]
    sans = subprocess.run(
        ["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in",
         str(WORKDIR / "artifacts" / "pki" / "apiserver.crt")],
        text=True, capture_output=True, check=True,
    ).stdout  # fmt: skip
    for name, ip in NODES.items():
        assert f"DNS:{name}" in sans and f"IP Address:{ip}" in sans, sans


def test_etcd_has_both_members_healthy_over_tls_with_https_peers(deployed: Deployment) -> None:
    endpoints = ",".join(f"https://{ip}:2379" for ip in NODES.values())
    for host in NODES:
        out = ssh(host, f"{ETCDCTL} --endpoints={endpoints} endpoint health -w json").stdout
        assert all(e["health"] for e in json.loads(out)), out
    members = json.loads(ssh("node8", f"{ETCDCTL} member list -w json").stdout)["members"]
    assert sorted(m["name"] for m in members) == ["node8", "node9"]
    for m in members:
        assert all(u.startswith("https://") for u in m["peerURLs"] + m["clientURLs"]), m


def test_etcd_refuses_a_client_without_certificate(deployed: Deployment) -> None:
    done = ssh(
        "node8",
        "/usr/local/bin/etcdctl --cacert=/etc/kubernetes/pki/etcd/ca.crt --dial-timeout=3s "
        "--command-timeout=5s --endpoints=https://127.0.0.1:2379 endpoint health",
        check=False,
    )
    assert done.returncode != 0, done.stdout


def test_etcd_keys_belong_to_the_etcd_user_and_data_is_private(deployed: Deployment) -> None:
    for host in NODES:
        out = ssh(
            host,
            "stat -c '%U %a %n' /var/lib/etcd /etc/kubernetes/pki/etcd/server.key "
            "/etc/kubernetes/pki/etcd/peer.key /etc/kubernetes/pki/ca.key",
        ).stdout.splitlines()
        assert out == [
            "etcd 700 /var/lib/etcd",
            "etcd 600 /etc/kubernetes/pki/etcd/server.key",
            "etcd 600 /etc/kubernetes/pki/etcd/peer.key",
            "root 600 /etc/kubernetes/pki/ca.key",
        ]


def test_every_apiserver_is_ready_for_the_admin_kubeconfig(deployed: Deployment) -> None:
    for host in NODES:
        assert kubectl(deployed, host, "get", "--raw", "/readyz") == "ok"


def test_controller_manager_and_scheduler_hold_their_leases(deployed: Deployment) -> None:
    out = kubectl(
        deployed, "node9", "-n", "kube-system", "get", "lease",
        "kube-controller-manager", "kube-scheduler", "-o", "json",
    )  # fmt: skip
    leases = json.loads(out)["items"]
    holders = {item["metadata"]["name"]: item["spec"].get("holderIdentity", "") for item in leases}
    assert set(holders) == {"kube-controller-manager", "kube-scheduler"}
    assert all(h.split("_")[0] in NODES for h in holders.values()), holders


def test_anonymous_requests_are_refused(deployed: Deployment) -> None:
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE
    for ip in NODES.values():
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"https://{ip}:6443/api", context=insecure, timeout=10)
        assert err.value.code == 401


def test_check_mode_on_the_deployed_cluster_plans_no_change(deployed: Deployment) -> None:
    run = playbook("check", PLAYBOOK, WORKDIR / "hosts-2.yml", "--check", "--diff")
    assert run.changed == {"node8": 0, "node9": 0}, run.stdout


def test_a_lost_pki_is_recovered_from_the_cluster(deployed: Deployment) -> None:
    # Runs last: every leaf is re-issued (with new keys) and the services restart.
    pki = WORKDIR / "artifacts" / "pki"
    shutil.rmtree(pki)
    playbook("recover", PLAYBOOK, WORKDIR / "hosts-2.yml")
    recovered = digests(pki)
    for name in ["ca.crt", "ca.key", "front-proxy-ca.crt", "front-proxy-ca.key", "sa.key",
                 "sa.pub", "etcd/ca.crt", "etcd/ca.key"]:  # fmt: skip
        assert recovered[name] == deployed.pki_after_2[name], f"{name} was not recovered"
    for host in NODES:
        assert kubectl(deployed, host, "get", "--raw", "/readyz") == "ok"
    again = playbook("recover-again", PLAYBOOK, WORKDIR / "hosts-2.yml")
    assert again.changed == {"node8": 0, "node9": 0}, again.stdout
