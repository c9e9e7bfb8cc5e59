#!/usr/bin/env python3
"""The local lab: Docker containers booting systemd as hosts, a file mirror and
an image registry, all built on this machine.

    lab.py up [--nodes N] [--fresh]
                            build what is missing, start the lab, write the inventory;
                            --fresh replaces every node with a clean one first
    lab.py down             remove the lab's containers, volumes and network
    lab.py build            only build artifacts, mirror and images
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import artifacts
import conformance
import images
import labconfig as cfg

HOST_PACKAGES = {
    "debootstrap": "debootstrap",
    "docker-registry": "docker-registry",
    "busybox": "busybox-static",
    "gcc": "gcc",
    "pkg-config": "pkg-config",
    # contrib/offline's image archives (the scale scenario's offline mirror)
    "skopeo": "skopeo",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
}
HOST_FILES = {
    "/usr/include/seccomp.h": "libseccomp-dev",  # runc with seccomp, static
    "/usr/lib/x86_64-linux-gnu/libc.a": "libc6-dev",  # the static pause binary
}
NODE_RUN_FLAGS = [
    # Booting systemd without --privileged (LAB-NOTES: CAP_SYS_RESOURCE is not
    # in this machine's bounding set, so --privileged fails).
    "--cap-add",
    "ALL",
    "--cap-drop",
    "SYS_RESOURCE",
    "--security-opt",
    "seccomp=unconfined",
    "--security-opt",
    "apparmor=unconfined",
    "--security-opt",
    "systempaths=unconfined",
    "--device-cgroup-rule",
    "a *:* rwm",
    "--cgroupns",
    "host",
    "-v",
    "/sys/fs/cgroup:/sys/fs/cgroup:rw",
    "-v",
    "/lib/modules:/lib/modules:ro",
    "--tmpfs",
    "/run",
    "--tmpfs",
    "/tmp",
]
# Nested containerd and the kubelet want a real filesystem, not overlay.
NODE_VOLUMES = ("/var/lib/containerd", "/var/lib/kubelet", "/var/lib/etcd")


def log(msg: str) -> None:
    print(f"lab: {msg}", flush=True)


def run(*args: str, check: bool = True, capture: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), check=check, text=True, capture_output=capture)


def docker_out(*args: str) -> list[str]:
    done = run("docker", *args, capture=True)
    return [line for line in done.stdout.splitlines() if line.strip()]


# ------------------------------------------------------------- host prerequisites


def apt_install(packages: list[str]) -> None:
    if not packages:
        return
    log(f"installing Debian packages: {' '.join(sorted(set(packages)))}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", *sorted(set(packages))],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )


def ensure_host_tools() -> None:
    missing = [pkg for cmd, pkg in HOST_PACKAGES.items() if shutil.which(cmd) is None]
    missing += [pkg for path, pkg in HOST_FILES.items() if not Path(path).exists()]
    if shutil.which("dockerd") is None:
        missing.append("docker.io")
    apt_install(missing)
    if shutil.which("go") is None:
        raise SystemExit("lab: the Go toolchain is required (go on PATH) to build the lab")


def docker_running() -> bool:
    if shutil.which("docker") is None:  # `down` on a machine that never had a lab
        return False
    return run("docker", "info", check=False, capture=True).returncode == 0


def ensure_docker() -> None:
    if docker_running():
        return
    if Path("/run/systemd/system").is_dir():
        run("systemctl", "start", "docker")
    else:
        logfile = cfg.cache_dir() / "dockerd.log"
        logfile.parent.mkdir(parents=True, exist_ok=True)
        log(f"starting dockerd (log: {logfile})")
        with logfile.open("ab") as out:
            subprocess.Popen(["dockerd"], stdout=out, stderr=out, start_new_session=True)
    for _ in range(60):
        if docker_running():
            return
        time.sleep(1)
    raise SystemExit("lab: the Docker engine did not come up within 60s")


# ------------------------------------------------------------- docker objects


def labelled(kind: str) -> list[str]:
    """Names of the lab's containers, volumes or networks."""
    if kind == "container":
        return docker_out("ps", "-a", "--filter", f"label={cfg.LABEL}", "--format", "{{.Names}}")
    return docker_out(kind, "ls", "--filter", f"label={cfg.LABEL}", "--format", "{{.Name}}")


def ensure_network() -> None:
    if cfg.NAME in labelled("network"):
        return
    run(
        "docker",
        "network",
        "create",
        "--label",
        cfg.LABEL,
        "--subnet",
        str(cfg.SUBNET),
        "--gateway",
        cfg.GATEWAY,
        cfg.NAME,
        capture=True,
    )


def isolation_rules() -> list[list[str]]:
    """DOCKER-USER rules that keep the cluster's service and pod ranges inside
    the lab, as a real network does: this machine hands every packet it routes
    out to an egress proxy that accepts TCP on any address and port, so a pod's
    connection to a Service port that no kube-proxy rule serves would be
    answered instead of failing (the conformance suite checks that it fails).
    Traffic that stays on the lab's bridge (node to node) is not matched."""
    net = json.loads(run("docker", "network", "inspect", cfg.NAME, capture=True).stdout)[0]
    bridge = net.get("Options", {}).get("com.docker.network.bridge.name") or f"br-{net['Id'][:12]}"
    return [
        ["DOCKER-USER", "-i", bridge, "-d", cidr, "!", "-o", bridge, "-j", "REJECT"]
        for cidr in cfg.cluster_ranges()
    ]


def ensure_isolation() -> None:
    for rule in isolation_rules():
        if subprocess.run(["iptables", "-C", *rule], capture_output=True).returncode != 0:
            run("iptables", "-I", *rule, capture=True)


def remove_isolation() -> None:
    for rule in isolation_rules():
        while subprocess.run(["iptables", "-C", *rule], capture_output=True).returncode == 0:
            run("iptables", "-D", *rule, capture=True)


def container_running(name: str) -> bool:
    done = run(
        "docker", "inspect", "--format", "{{.State.Running}}", name, check=False, capture=True
    )
    return done.stdout.strip() == "true"


def ensure_service(name: str, ip: str, image: str, extra: list[str], command: list[str]) -> None:
    """(Re)start one of the lab's service containers with a fixed address."""
    if container_running(name):
        return
    run("docker", "rm", "-f", name, check=False, capture=True)
    run(
        "docker",
        "run",
        "-d",
        "--name",
        name,
        "--label",
        cfg.LABEL,
        "--network",
        cfg.NAME,
        "--ip",
        ip,
        "--restart",
        "unless-stopped",
        *extra,
        image,
        *command,
        capture=True,
    )


def wait_tcp(host: str, port: int, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"lab: {what} at {host}:{port} did not answer within {timeout:.0f}s")


def ensure_registry(report: artifacts.Report) -> None:
    tag = images.ensure_image(images.local_images()[1], report)
    storage = cfg.cache_dir() / "registry"
    storage.mkdir(parents=True, exist_ok=True)
    host, port = cfg.REGISTRY_PUSH.split(":")
    ensure_service(
        f"{cfg.NAME}-registry",
        cfg.REGISTRY_IP,
        tag,
        ["-v", f"{storage}:/var/lib/registry", "-p", f"{cfg.REGISTRY_PUSH}:{cfg.REGISTRY_PORT}"],
        [],
    )
    wait_tcp(host, int(port), 30, "registry")


def ensure_mirror_server(busybox_tag: str) -> None:
    root = cfg.cache_dir() / "mirror"
    ensure_service(
        f"{cfg.NAME}-mirror",
        cfg.MIRROR_IP,
        busybox_tag,
        ["-v", f"{root}:/srv:ro"],
        ["httpd", "-f", "-p", "80", "-h", "/srv"],
    )
    wait_tcp(cfg.MIRROR_IP, 80, 30, "file mirror")


# ------------------------------------------------------------- nodes


def ssh_key() -> Path:
    key = cfg.LAB_INVENTORY / "ssh" / "id_ed25519"
    if not key.exists():
        key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "kubeforge-lab", "-f", str(key))
    return key


def node_name(index: int) -> str:
    return f"node{index}"


def container_name(index: int) -> str:
    return f"{cfg.NAME}-{node_name(index)}"


def ensure_node(index: int, image: str, pubkey: Path) -> None:
    name = container_name(index)
    if container_running(name):
        # A node started from another checkout of the repository (CI's clean
        # clone, say) trusts that checkout's key: make it trust this one.
        keys = run(
            "docker", "exec", name, "cat", "/root/.ssh/authorized_keys", check=False, capture=True
        )
        if keys.stdout.strip() != pubkey.read_text().strip():
            run("docker", "cp", str(pubkey), f"{name}:/root/.ssh/authorized_keys", capture=True)
            run(
                "docker",
                "exec",
                name,
                "chown",
                "root:root",
                "/root/.ssh/authorized_keys",
                capture=True,
            )
        return
    run("docker", "rm", "-f", name, check=False, capture=True)
    volumes: list[str] = []
    for path in NODE_VOLUMES:
        vol = f"{name}{path.replace('/', '-')}"
        run("docker", "volume", "create", "--label", cfg.LABEL, vol, capture=True)
        volumes += ["-v", f"{vol}:{path}"]
    kmsg = ["--device", "/dev/kmsg"] if Path("/dev/kmsg").exists() else []
    run(
        "docker",
        "create",
        "--name",
        name,
        "--hostname",
        node_name(index),
        "--label",
        cfg.LABEL,
        "--network",
        cfg.NAME,
        "--ip",
        cfg.node_ip(index),
        *NODE_RUN_FLAGS,
        *volumes,
        *kmsg,
        image,
        capture=True,
    )
    run("docker", "cp", str(pubkey), f"{name}:/root/.ssh/authorized_keys", capture=True)
    run("docker", "start", name, capture=True)


def remove_node(name: str) -> None:
    run("docker", "rm", "-f", "-v", name, capture=True)
    for vol in labelled("volume"):
        if vol.startswith(name + "-"):
            run("docker", "volume", "rm", "-f", vol, capture=True)


def nodes_to_remove(existing: list[str], nodes: int, fresh: bool) -> list[str]:
    """Node containers `up` removes: those past `nodes`, or all of them when fresh."""
    wanted = {container_name(i) for i in range(1, nodes + 1)}
    return [
        name
        for name in existing
        if name.startswith(f"{cfg.NAME}-node") and (fresh or name not in wanted)
    ]


def ssh_argv(index: int, key: Path, connect_timeout: int = 5) -> list[str]:
    """ssh to node<index> as root with the lab's key, a command to follow."""
    return [
        "ssh", "-i", str(key), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
        "-o", "UserKnownHostsFile=/dev/null", "-o", f"ConnectTimeout={connect_timeout}",
        "-o", "LogLevel=ERROR", f"root@{cfg.node_ip(index)}",
    ]  # fmt: skip


def wait_ssh(nodes: int, key: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    pending = set(range(1, nodes + 1))
    while pending and time.monotonic() < deadline:
        for i in sorted(pending):
            done = run(
                *ssh_argv(i, key, connect_timeout=3),
                "systemctl is-system-running --wait >/dev/null; python3 -V",
                check=False,
                capture=True,
            )
            if done.returncode == 0:
                pending.discard(i)
        if pending:
            time.sleep(1)
    if pending:
        names = ", ".join(node_name(i) for i in sorted(pending))
        raise SystemExit(f"lab: no SSH answer within {timeout:.0f}s from {names}")


def write_inventory(nodes: int, key: Path, variables: dict[str, str] | None = None) -> Path:
    """The default layout: node1-3 control plane and etcd (node1 alone below 3
    nodes), the rest workers."""
    control = list(range(1, min(nodes, 3) + 1)) if nodes >= 3 else [1]
    workers = [i for i in range(1, nodes + 1) if i not in control]
    return write_layout(cfg.LAB_INVENTORY / "hosts.yml", key, control, control, workers, variables)


# node5 is the lab's ingress node whenever it is a worker of the layout (the
# last worker otherwise), so that the day-2 layouts keep the same one: labelled
# for the ingress controller and tainted so that only pods tolerating it run
# there (node_labels, node_taints: roles/node, docs/operations.md).
INGRESS_NODE = 5
INGRESS_NODE_VARS: dict[str, object] = {
    "node_labels": {"node-role.kubernetes.io/ingress": ""},
    "node_taints": ["node-role.kubernetes.io/ingress=:NoSchedule"],
}


def ingress_node(workers: list[int]) -> int | None:
    """INGRESS_NODE when it is a worker, else the last worker (none without workers)."""
    if INGRESS_NODE in workers:
        return INGRESS_NODE
    return workers[-1] if workers else None


def _layout_members(control: list[int], etcd: list[int], workers: list[int]) -> list[int]:
    members = sorted(set(control) | set(etcd) | set(workers))
    bad = [i for i in members if not 1 <= i <= cfg.MAX_NODES]
    if bad or not control:
        raise SystemExit(
            f"lab: a layout needs a control-plane node and nodes 1-{cfg.MAX_NODES},"
            f" got {bad or 'none'}"
        )
    return members


def write_layout(
    path: Path,
    key: Path,
    control: list[int],
    etcd: list[int],
    workers: list[int],
    variables: dict[str, str] | None = None,
) -> Path:
    """An inventory of lab nodes (by number) in the given groups, with
    `variables` on every host (e.g. kube_network_plugin: calico; host
    variables, so that they override the lab's group_vars); the ingress
    node (ingress_node()) gets INGRESS_NODE_VARS, unless `variables` turn the
    ingress controller off. Written outside inventory/lab, its directory
    gets a link to the lab's group_vars (and keeps its own artifacts, so its
    PKI is its own)."""
    members = _layout_members(control, etcd, workers)
    overrides = dict(variables or {})
    lines = [
        "---",
        "# Written by tests/lab/lab.py; do not edit, it is rewritten.",
        "all:",
        "  hosts:",
    ]
    for i in members:
        lines += [
            f"    {node_name(i)}:",
            f"      ansible_host: {cfg.node_ip(i)}",
            f"      ip: {cfg.node_ip(i)}",
        ]
        if i == ingress_node(workers) and overrides.get("ingress_controller_enabled") != "false":
            lines += [
                f"      {name}: {json.dumps(value)}" for name, value in INGRESS_NODE_VARS.items()
            ]
        # Host variables: they win over the lab's group_vars (all.vars would not).
        lines += [f"      {name}: {json.dumps(value)}" for name, value in sorted(overrides.items())]
    lines += [
        "  vars:",
        "    ansible_user: root",
        f"    ansible_ssh_private_key_file: {key}",
        "  children:",
    ]

    def group(name: str, nums: list[int]) -> None:
        lines.append(f"    {name}:")
        lines.append("      hosts:" + ("" if nums else " {}"))
        lines.extend(f"        {node_name(i)}:" for i in nums)

    group("kube_control_plane", control)
    group("etcd", etcd)
    group("kube_node", workers)
    lines += [
        "    k8s_cluster:",
        "      children:",
        "        kube_control_plane:",
        "        kube_node:",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    group_vars = path.parent / "group_vars"
    if path.parent.resolve() != cfg.LAB_INVENTORY.resolve() and not group_vars.exists():
        group_vars.symlink_to(cfg.LAB_INVENTORY / "group_vars")
    path.write_text("\n".join(lines) + "\n")
    return path


# A kubespray-style inventory (tests/lab/kubespray/, docs/testing.md): the
# INI layout of kubespray's sample, with `ip`, `access_ip` and
# `etcd_member_name` per host, group_vars written the way kubespray's sample
# writes them, and the lab's own settings (its mirrors, cgroup v1) beside them.
KUBESPRAY_GROUP_VARS = cfg.REPO / "tests" / "lab" / "kubespray" / "group_vars"
LAB_GROUP_VARS = ("lab.yml", "mirrors.yml")


def write_kubespray_layout(
    directory: Path, key: Path, control: list[int], workers: list[int]
) -> Path:
    """`directory`/inventory.ini, group_vars and host_vars: control-plane nodes
    are the etcd members (etcd1, etcd2, ... in order), the ingress node gets
    INGRESS_NODE_VARS in host_vars. Rewritten on every call."""
    _layout_members(control, control, workers)
    lines = [
        "# Written by tests/lab/lab.py kubespray-inventory; do not edit, it is rewritten.",
        "# kubespray's sample layout: stacked etcd on the control plane.",
        "[kube_control_plane]",
    ]
    for n, i in enumerate(control, start=1):
        address = cfg.node_ip(i)
        lines.append(
            f"{node_name(i)} ansible_host={address} ip={address} access_ip={address}"
            f" etcd_member_name=etcd{n}"
        )
    lines += ["", "[etcd:children]", "kube_control_plane", "", "[kube_node]"]
    lines += [f"{node_name(i)} ansible_host={cfg.node_ip(i)} ip={cfg.node_ip(i)}" for i in workers]
    lines += [
        "",
        "[k8s_cluster:children]",
        "kube_control_plane",
        "kube_node",
        "",
        "[all:vars]",
        "ansible_user=root",
        f"ansible_ssh_private_key_file={key}",
    ]
    directory.mkdir(parents=True, exist_ok=True)
    for sub in ("group_vars", "host_vars"):
        if (directory / sub).exists():
            shutil.rmtree(directory / sub)
    shutil.copytree(KUBESPRAY_GROUP_VARS, directory / "group_vars")
    for name in LAB_GROUP_VARS:
        (directory / "group_vars" / "all" / name).symlink_to(
            cfg.LAB_INVENTORY / "group_vars" / "all" / name
        )
    ingress = ingress_node(workers)
    if ingress is not None:
        (directory / "host_vars").mkdir()
        (directory / "host_vars" / f"{node_name(ingress)}.yml").write_text(
            "---\n# The lab's ingress node (tests/lab/lab.py INGRESS_NODE_VARS).\n"
            + "".join(f"{name}: {json.dumps(value)}\n" for name, value in INGRESS_NODE_VARS.items())
        )
    path = directory / "inventory.ini"
    path.write_text("\n".join(lines) + "\n")
    return path


def _variables(pairs: list[str]) -> dict[str, str]:
    """['kube_network_plugin=calico'] -> {'kube_network_plugin': 'calico'}"""
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.isidentifier():
            raise SystemExit(f"lab: --var {pair!r} is not NAME=VALUE")
        out[name] = value
    return out


def _numbers(text: str) -> list[int]:
    """'1,2,node7' -> [1, 2, 7]"""
    return [int(x.strip().removeprefix("node")) for x in text.split(",") if x.strip()]


def write_env(nodes: int, v: cfg.Versions) -> Path:
    path = cfg.LAB_INVENTORY / "lab.env"
    path.write_text(
        f"LAB_MIRROR_URL={cfg.mirror_url()}\n"
        f"LAB_REGISTRY={cfg.registry_addr()}\n"
        f'LAB_KUBE_VERSIONS="{" ".join(v.kube)}"\n'
        f"LAB_NODES={nodes}\n"
    )
    return path


# ------------------------------------------------------------- commands


def build_nodes(report: artifacts.Report) -> str:
    """What the lab's nodes themselves need, and nothing a cluster runs: the
    host's tools, the Docker engine, the Debian base image, the lab network
    and the node image (minutes on a new machine, seconds after). Returns the
    node image tag. Enough for the opening play's tests (make preflight-test),
    which `make test` runs while the rest builds."""
    ensure_host_tools()
    ensure_docker()
    images.ensure_debian_base(report)
    ensure_network()
    ensure_isolation()
    return images.ensure_image(images.local_images()[0], report)


def build(report: artifacts.Report, with_conformance: bool = False) -> str:
    """Everything that is built once and cached; returns the node image tag.
    with_conformance: the conformance suite and its images too, e2e.test among
    the lab's builds, two at a time."""
    v = cfg.versions()
    node_image = build_nodes(report)
    artifacts.ensure_all(v, report, extra=[conformance.e2e_build(v)] if with_conformance else [])
    ensure_registry(report)
    busybox = ""
    for image in images.cluster_images(v):
        images.ensure_pushed(image, report)
        if image.directory == "busybox":
            busybox = f"{cfg.REGISTRY_PUSH}/{image.tag}"
    ensure_mirror_server(busybox)
    if with_conformance:
        conformance.build(report)
    return node_image


def up(
    nodes: int,
    fresh: bool = False,
    variables: dict[str, str] | None = None,
    inventory: bool = True,
    nodes_only: bool = False,
) -> None:
    """Start nodes 1..`nodes` (the running ones are kept) and, unless
    `inventory` is false, write the default layout's inventory with
    `variables`. Callers that recreate nodes under an inventory someone wrote
    (scenario.py's refresh) pass inventory=False: rewriting it would drop the
    variables it was written with (`make conformance LAB_ARGS=...`).
    nodes_only: build only what the nodes need (build_nodes), no cluster's
    binaries, images, registry or mirror."""
    if not 1 <= nodes <= cfg.MAX_NODES:
        raise SystemExit(f"lab: NODES must be between 1 and {cfg.MAX_NODES}, not {nodes}")
    start = time.monotonic()
    report = artifacts.Report()
    node_image = build_nodes(report) if nodes_only else build(report)
    key = ssh_key()
    pubkey = key.with_name(key.name + ".pub")
    t = time.monotonic()
    for name in nodes_to_remove(labelled("container"), nodes, fresh):
        log(f"removing {name} ({'--fresh' if fresh else f'NODES={nodes}'})")
        remove_node(name)
    for i in range(1, nodes + 1):
        ensure_node(i, node_image, pubkey)
    wait_ssh(nodes, key)
    report.add(f"{nodes} node(s) answering SSH", "started", time.monotonic() - t)
    written = write_inventory(nodes, key, variables) if inventory else None
    env = write_env(nodes, cfg.versions())
    print("\nlab: summary")
    for line in report.lines:
        print(f"  {line}")
    print(
        f"lab: up in {time.monotonic() - start:.0f}s; inventory "
        f"{written.relative_to(cfg.REPO) if written else 'kept as it was'},"
        f" settings {env.relative_to(cfg.REPO)}"
    )


def down() -> None:
    if not docker_running():
        log("no Docker engine running: nothing to remove")
        return
    for name in labelled("container"):
        run("docker", "rm", "-f", "-v", name, capture=True)
    for vol in labelled("volume"):
        run("docker", "volume", "rm", "-f", vol, capture=True)
    for net in labelled("network"):
        if net == cfg.NAME:
            remove_isolation()
        run("docker", "network", "rm", net, capture=True)
    for generated in ("hosts.yml", "lab.env"):
        (cfg.LAB_INVENTORY / generated).unlink(missing_ok=True)
    log(f"removed the lab's containers, volumes and network (caches kept in {cfg.cache_dir()})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="bring the lab up")
    p_up.add_argument("--nodes", type=int, default=int(os.environ.get("NODES", "5")))
    p_up.add_argument(
        "--fresh",
        action="store_true",
        help="remove the node containers and their volumes first and start clean ones"
        " (the mirror and registry stay)",
    )
    p_up.add_argument(
        "--nodes-only",
        action="store_true",
        help="build only what the nodes need (their image), not what a cluster runs: enough"
        " for the opening play's tests (make preflight-test)",
    )
    p_inv = sub.add_parser(
        "inventory", help="write an inventory of running lab nodes in a given layout"
    )
    p_inv.add_argument("path", type=Path, help="the inventory file to write")
    p_inv.add_argument("--control-plane", required=True, help="node numbers, e.g. 1,2,3")
    p_inv.add_argument("--etcd", help="node numbers (default: the control-plane nodes)")
    p_inv.add_argument("--workers", default="", help="node numbers, e.g. 4,5")
    for p in (p_up, p_inv):
        p.add_argument(
            "--var",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="a variable for all hosts of the inventory, e.g. kube_network_plugin=calico",
        )
    p_ks = sub.add_parser(
        "kubespray-inventory",
        help="write a kubespray-style inventory (INI, group_vars) of running lab nodes",
    )
    p_ks.add_argument("directory", type=Path, help="the inventory directory to write")
    p_ks.add_argument("--control-plane", required=True, help="node numbers (also etcd), e.g. 2,3,7")
    p_ks.add_argument("--workers", default="", help="node numbers, e.g. 4,5")
    sub.add_parser("down", help="remove the lab")
    p_build = sub.add_parser("build", help="build artifacts, mirror and images only")
    p_build.add_argument(
        "--conformance",
        action="store_true",
        help="the conformance suite and its images too (as conformance.py build)",
    )
    p_build.add_argument(
        "--nodes-only",
        action="store_true",
        help="only what the nodes need (their image, the lab network), not what a cluster runs",
    )
    args = parser.parse_args(argv)
    if args.command == "up":
        up(
            args.nodes,
            fresh=args.fresh,
            variables=_variables(args.var),
            nodes_only=args.nodes_only,
        )
    elif args.command == "inventory":
        cp = _numbers(args.control_plane)
        etcd = _numbers(args.etcd) if args.etcd else cp
        variables = _variables(args.var)
        layout = (cp, etcd, _numbers(args.workers))
        print(write_layout(args.path, ssh_key(), *layout, variables))
    elif args.command == "kubespray-inventory":
        print(
            write_kubespray_layout(
                args.directory, ssh_key(), _numbers(args.control_plane), _numbers(args.workers)
            )
        )
    elif args.command == "down":
        down()
    elif args.nodes_only:
        if args.conformance:
            parser.error("--nodes-only builds no cluster, so no conformance suite either")
        build_nodes(artifacts.Report())
    else:
        build(artifacts.Report(), with_conformance=args.conformance)
    return 0


if __name__ == "__main__":
    sys.exit(main())
