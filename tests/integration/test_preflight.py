"""The opening play (playbooks/opening.yml) for real, against two lab hosts.

Every bad inventory or host must stop the run before anything changes: a
non-zero exit, an error naming the host and the variable, `changed=0` for every
host in the recap, and nothing of a cluster on the hosts afterwards.

Only node6 (10.213.0.16) and node7 (10.213.0.17) of the lab are used; other
work runs on the other nodes at the same time. The lab must be up
(`make lab-up NODES=7` or more): when it is not, these tests fail saying so.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from runbook import plain_env, recap

REPO = Path(__file__).resolve().parents[2]
LAB_INVENTORY = REPO / "inventory/lab/hosts.yml"
KEY = REPO / "inventory/lab/ssh/id_ed25519"
NODE6, NODE7 = "10.213.0.16", "10.213.0.17"
UNUSED_IP = "10.213.0.99"  # on the lab subnet, nothing answers there
SSH_ARGS = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=3"
# Things any kubeforge role after preflight would create.
MARKERS = ("/etc/kubernetes", "/usr/local/bin/kubelet", "/etc/containerd")
# Pid (and session id) of the process holding a port in the port tests.
PIDFILE = "/run/kubeforge-preflight-test.pid"

HOST_VARS = {
    "node6": {"ansible_host": NODE6, "ip": NODE6},
    "node7": {"ansible_host": NODE7, "ip": NODE7},
}
ALL_VARS = {
    "ansible_user": "root",
    "ansible_ssh_private_key_file": str(KEY),
    "ansible_ssh_common_args": SSH_ARGS,
    # The lab machine runs cgroup v1 (docs/lab.md); test_cgroup_v1 covers the check.
    "kubelet_fail_cgroup_v1": False,
}


def ssh(ip: str, command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["ssh", "-i", str(KEY), *shlex.split(SSH_ARGS), "-o", "BatchMode=yes",
         "-o", "LogLevel=ERROR", f"root@{ip}", command],
        text=True, capture_output=True, timeout=60,
    )  # fmt: skip
    if check and done.returncode != 0:
        pytest.fail(f"ssh {ip} {command!r} failed ({done.returncode}): {done.stderr}")
    return done


@pytest.fixture(scope="module", autouse=True)
def lab() -> None:
    if not LAB_INVENTORY.is_file() or not KEY.is_file():
        pytest.fail(
            f"the lab is not up: {LAB_INVENTORY.relative_to(REPO)} or the lab SSH key is "
            "missing; bring it up with `make lab-up NODES=7` (or more)"
        )
    for ip in (NODE6, NODE7):
        done = ssh(ip, "true", check=False)
        if done.returncode != 0:
            pytest.fail(
                f"lab host {ip} does not answer over SSH ({done.stderr.strip()}); these tests "
                "need node6 and node7 of the lab (`make lab-up NODES=7` or more)"
            )


@pytest.fixture(autouse=True)
def nothing_installed() -> Iterator[None]:
    """No test may start or end with anything of a cluster on node6/node7."""
    probe = " ".join(f"test -e {m} && echo {m};" for m in MARKERS) + " true"
    for ip in (NODE6, NODE7):
        found = ssh(ip, probe).stdout.split()
        assert not found, f"{ip} already has {found}: node6/node7 must be clean for these tests"
    yield
    for ip in (NODE6, NODE7):
        found = ssh(ip, probe).stdout.split()
        assert not found, f"preflight run left {found} on {ip}"


# Inventories ------------------------------------------------------------------


def yaml_inventory(
    tmp_path: Path, groups: dict[str, list[str]], hostvars: dict[str, dict[str, Any]] | None = None
) -> Path:
    hv = {**HOST_VARS, **(hostvars or {})}
    children = {
        g: {"hosts": {h: (hv.get(h) or None) for h in hosts}} for g, hosts in groups.items()
    }
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump({"all": {"vars": ALL_VARS, "children": children}}))
    return path


def ini_inventory(tmp_path: Path, text: str) -> Path:
    """INI inventory; host lines get their lab addresses appended."""
    lines = [f"{k}={shlex.quote(str(v))}" for k, v in ALL_VARS.items()]
    body = []
    for line in text.strip().splitlines():
        name = line.split()[0] if line.strip() else ""
        if name in HOST_VARS and len(line.split()) == 1:
            line += " " + " ".join(f"{k}={v}" for k, v in HOST_VARS[name].items())
        body.append(line)
    path = tmp_path / "hosts.ini"
    path.write_text("[all:vars]\n" + "\n".join(lines) + "\n\n" + "\n".join(body) + "\n")
    return path


# Running the play -------------------------------------------------------------


class Run:
    def __init__(self, done: subprocess.CompletedProcess[str]) -> None:
        self.rc = done.returncode
        self.output = done.stdout + done.stderr
        self.recap = recap(self.output)
        self.errors: list[str] = []
        for m in re.finditer(r"^fatal: \[[^\]]+\]: FAILED! => (\{.*\})$", self.output, re.M):
            msg = json.loads(m[1]).get("msg")
            self.errors += msg[1:] if isinstance(msg, list) else [str(msg)]

    def __repr__(self) -> str:
        return f"rc={self.rc}\n{self.output[-6000:]}"


def opening(inventory: Path, *args: str) -> Run:
    done = subprocess.run(
        ["ansible-playbook", "-i", str(inventory), "playbooks/opening.yml", *args],
        cwd=REPO, env=plain_env(), text=True, capture_output=True, timeout=600,
    )  # fmt: skip
    return Run(done)


def assert_passed(run: Run, hosts: set[str]) -> None:
    assert run.rc == 0, run
    assert set(run.recap) == hosts, run
    for host, counts in run.recap.items():
        assert counts["changed"] == 0 and counts["failed"] == 0, (host, run)


def assert_stopped(run: Run, hosts: set[str], *fragments: str) -> str:
    """Non-zero exit, changed=0 for every host, and one error naming all fragments
    (the host and the variable). Returns that error."""
    assert run.rc != 0, run
    assert set(run.recap) == hosts, run
    for host, counts in run.recap.items():
        assert counts["changed"] == 0, (host, run)
    matching = [e for e in run.errors if all(f in e for f in fragments)]
    assert matching, f"no error names all of {fragments}; errors: {run.errors}\n{run!r}"
    return matching[0]


def standard(tmp_path: Path, **hostvars: dict[str, Any]) -> Path:
    """node6: control plane + etcd, node7: worker."""
    groups = {"kube_control_plane": ["node6"], "etcd": ["node6"], "kube_node": ["node7"]}
    return yaml_inventory(tmp_path, groups, hostvars)


BOTH = {"node6", "node7"}

# Passing ----------------------------------------------------------------------


def test_valid_yaml_inventory_passes(tmp_path: Path) -> None:
    run = opening(standard(tmp_path))
    assert_passed(run, BOTH)
    assert run.errors == []


def test_valid_inventory_passes_in_check_mode(tmp_path: Path) -> None:
    assert_passed(opening(standard(tmp_path), "--check"), BOTH)


def test_valid_ini_inventory_with_kubespray_old_group_names_passes(tmp_path: Path) -> None:
    inv = ini_inventory(
        tmp_path,
        """
        [kube-master]
        node6
        [etcd]
        node6
        [kube-node]
        node7
        [k8s-cluster:children]
        kube-master
        kube-node
        """.replace("        ", ""),
    )
    assert_passed(opening(inv), BOTH)


def test_old_group_names_are_mapped_for_hosts_outside_limit(tmp_path: Path) -> None:
    inv = ini_inventory(tmp_path, "[kube-master]\nnode6\n[etcd]\nnode6\n[kube-node]\nnode7\n")
    # kube_control_plane must not look empty although node6 is not in the play.
    assert_passed(opening(inv, "--limit", "node7"), {"node7"})


def test_port_held_by_its_own_component_passes(tmp_path: Path) -> None:
    """A re-run on a deployed node: 10250 held by a process named kubelet is fine."""
    with listener(NODE7, 10250, name="kubelet"):
        assert_passed(opening(standard(tmp_path)), BOTH)


# Inventory problems -------------------------------------------------------------


def test_even_etcd_count_stops_ini_old_names(tmp_path: Path) -> None:
    inv = ini_inventory(
        tmp_path, "[kube-master]\nnode6\n[etcd]\nnode6\nnode7\n[kube-node]\nnode7\n"
    )
    assert_stopped(opening(inv), BOTH, "group etcd has 2 members (node6, node7)")


def test_old_k8s_cluster_and_calico_rr_names_are_honoured(tmp_path: Path) -> None:
    inv = ini_inventory(
        tmp_path,
        "[kube-master]\nnode6\n[etcd]\nnode6\n[kube-node]\nnode7\n"
        "[k8s-cluster]\nnode6\n[calico-rr]\nnode7\n",
    )
    run = opening(inv)
    # k8s-cluster was taken as given (not derived), calico-rr became calico_rr.
    assert_stopped(run, BOTH, "node7: in group kube_node but not in k8s_cluster")
    assert_stopped(run, BOTH, "group calico_rr lists node7", "kube_network_plugin")


def test_zero_etcd_stops(tmp_path: Path) -> None:
    inv = yaml_inventory(tmp_path, {"kube_control_plane": ["node6"], "kube_node": ["node7"]})
    assert_stopped(opening(inv), BOTH, "group etcd is empty")


def test_empty_control_plane_stops_ini_old_names(tmp_path: Path) -> None:
    inv = ini_inventory(tmp_path, "[kube-master]\n[etcd]\nnode6\n[kube-node]\nnode6\nnode7\n")
    assert_stopped(opening(inv), BOTH, "group kube_control_plane (old name kube-master) is empty")


def test_overlapping_pod_and_service_cidrs_stop(tmp_path: Path) -> None:
    run = opening(standard(tmp_path), "-e", "kube_pods_subnet=10.233.0.0/16")
    assert_stopped(run, BOTH, "kube_service_addresses 10.233.0.0/18", "kube_pods_subnet")


def test_cidr_containing_a_host_address_stops(tmp_path: Path) -> None:
    run = opening(standard(tmp_path), "-e", "kube_service_addresses=10.213.0.0/24")
    assert_stopped(run, BOTH, "node6:", NODE6, "kube_service_addresses 10.213.0.0/24")
    assert_stopped(run, BOTH, "node7:", NODE7, "kube_service_addresses")


def test_duplicate_ips_stop(tmp_path: Path) -> None:
    inv = standard(tmp_path, node7={"ansible_host": NODE7, "ip": NODE6})
    assert_stopped(
        opening(inv), BOTH, f"duplicate host address {NODE6}", "node6 (ip)", "node7 (ip)"
    )


def test_duplicate_node_names_stop(tmp_path: Path) -> None:
    inv = standard(tmp_path, node7={**HOST_VARS["node7"], "kube_override_hostname": "Node6"})
    assert_stopped(
        opening(inv), BOTH, "duplicate node name 'node6'", "node6, node7", "kube_override_hostname"
    )


def test_unsupported_kube_version_stops(tmp_path: Path) -> None:
    run = opening(standard(tmp_path), "-e", "kube_version=1.30.4")
    assert_stopped(run, BOTH, "kube_version 1.30.4 is not supported", "kube_supported_versions")


def test_unknown_network_plugin_stops(tmp_path: Path) -> None:
    run = opening(standard(tmp_path), "-e", "kube_network_plugin=weave")
    assert_stopped(run, BOTH, "kube_network_plugin 'weave' is unknown")


def test_calico_with_bgp_stops(tmp_path: Path) -> None:
    run = opening(
        standard(tmp_path), "-e", "kube_network_plugin=calico", "-e", "calico_network_backend=bird"
    )
    assert_stopped(run, BOTH, "calico_network_backend 'bird' (BGP) is not implemented: use vxlan")


def test_unknown_ha_mode_stops(tmp_path: Path) -> None:
    run = opening(standard(tmp_path), "-e", "apiserver_ha_mode=keepalived")
    assert_stopped(run, BOTH, "apiserver_ha_mode 'keepalived' is unknown")


def test_external_ha_mode_without_address_stops(tmp_path: Path) -> None:
    run = opening(standard(tmp_path), "-e", "apiserver_ha_mode=external")
    assert_stopped(run, BOTH, "apiserver_ha_mode external needs loadbalancer_apiserver.address")


def test_malformed_node_labels_and_taints_stop(tmp_path: Path) -> None:
    inv = standard(
        tmp_path,
        node7={
            **HOST_VARS["node7"],
            "node_labels": {"node-role.kubernetes.io/ingress": "", "bad key": "x"},
            "node_taints": ["node-role.kubernetes.io/ingress=:NoSchedule", "dedicated"],
        },
    )
    run = opening(inv)
    assert_stopped(run, BOTH, "node7: node_labels key 'bad key' is not a label name")
    assert_stopped(run, BOTH, "node7: node_taints[1] 'dedicated' is not key=value:Effect")
    assert len(run.errors) == 2, run.errors


def test_every_inventory_problem_is_listed_at_once(tmp_path: Path) -> None:
    inv = yaml_inventory(
        tmp_path,
        {"kube_control_plane": ["node6"], "etcd": ["node6", "node7"], "kube_node": ["node7"]},
        {"node7": {"ansible_host": NODE7, "ip": NODE6}},
    )
    run = opening(inv, "-e", "kube_network_plugin=weave", "-e", "kube_version=1.2.3")
    assert_stopped(run, BOTH, "group etcd has 2 members")
    assert len(run.errors) == 4, run.errors


def test_bad_values_from_issue_12_stop_before_anything_changes(tmp_path: Path) -> None:
    """Each was pushed onto a running lab cluster before preflight checked values."""
    run = opening(
        standard(tmp_path),
        "-e", "dns_domain=cluster..local",
        "-e", '{"supplementary_addresses_in_ssl_keys": ["bad name!"]}',
        "-e", "kube_service_addresses=10.233.0.0/30",
        "-e", "container_manager=crio",
        "-e", '{"loadbalancer_apiserver": {"port": 8383}}',
        "-e", "kube_apiserver_node_port_range=32767-30000",
    )  # fmt: skip
    for fragment in (
        "all hosts: dns_domain 'cluster..local' is not a DNS domain",
        "all hosts: supplementary_addresses_in_ssl_keys[0] 'bad name!'",
        "all hosts: kube_service_addresses 10.233.0.0/30 has 4 addresses, too few",
        "all hosts: container_manager 'crio' is not supported",
        "all hosts: loadbalancer_apiserver {'port': 8383} has no address",
        "all hosts: kube_apiserver_node_port_range '32767-30000' is not a port range",
    ):
        assert_stopped(run, BOTH, fragment)
    assert len(run.errors) == 6, run.errors
    assert "Gather the facts the checks need" not in run.output, "the run went on"


def test_kubespray_host_variables_stop_naming_the_host(tmp_path: Path) -> None:
    inv = ini_inventory(
        tmp_path,
        f"[kube_control_plane]\nnode6 ansible_host={NODE6} ip={NODE6} etcd_member_name=etcd,1\n"
        f"[etcd:children]\nkube_control_plane\n"
        f"[kube_node]\nnode7 ansible_host={NODE7} ip={NODE7} access_ip=10.213.0.300\n",
    )
    run = opening(inv)
    assert_stopped(run, BOTH, "node6: etcd_member_name 'etcd,1' is not a member name")
    assert_stopped(run, BOTH, "node7: access_ip '10.213.0.300' is not an IPv4 address")
    assert len(run.errors) == 2, run.errors


def test_cluster_wide_setting_for_one_host_stops(tmp_path: Path) -> None:
    inv = standard(tmp_path, node7={**HOST_VARS["node7"], "flannel_interface": "eth1"})
    run = opening(inv)
    assert_stopped(
        run, BOTH, "node6, node7: flannel_interface is not the same on every host",
        "node6: not set", "node7: 'eth1'",
    )  # fmt: skip


# Host problems ------------------------------------------------------------------


def test_unreachable_host_stops_the_whole_run(tmp_path: Path) -> None:
    inv = yaml_inventory(
        tmp_path,
        {"kube_control_plane": ["node6"], "etcd": ["node6"], "kube_node": ["node7", "ghost"]},
        {"ghost": {"ansible_host": UNUSED_IP}},
    )
    run = opening(inv)
    error = assert_stopped(run, {*BOTH, "ghost"}, "ghost: unreachable at", UNUSED_IP)
    assert "ansible_host" in error
    assert "Probe the cgroup version" not in run.output, "the run went on past unreachable hosts"


def test_too_little_memory_stops(tmp_path: Path) -> None:
    run = opening(standard(tmp_path), "-e", "preflight_min_memory_mb_node=9000000")
    error = assert_stopped(run, BOTH, "node7:", "below preflight_min_memory_mb_node")
    assert "node6" not in error
    assert not [e for e in run.errors if e.startswith("node6")], run.errors


def test_unsupported_os_stops(tmp_path: Path) -> None:
    run = opening(standard(tmp_path), "-e", '{"preflight_supported_os": ["Debian 11"]}')
    assert_stopped(run, BOTH, "node6: Debian 12", "preflight_supported_os")
    assert_stopped(run, BOTH, "node7: Debian 12", "preflight_supported_os")


def test_ip_that_is_not_on_the_host_stops(tmp_path: Path) -> None:
    inv = standard(tmp_path, node7={"ansible_host": NODE7, "ip": "10.213.0.27"})
    assert_stopped(opening(inv), BOTH, "node7: ip 10.213.0.27 is not an address of this host")


def test_cgroup_v1(tmp_path: Path) -> None:
    """The lab machine runs cgroup v1: with kubelet_fail_cgroup_v1 left at its
    default (true) preflight stops, naming the variable."""
    cgroup_fs = ssh(NODE6, "stat -fc %T /sys/fs/cgroup").stdout.strip()
    run = opening(standard(tmp_path), "-e", "kubelet_fail_cgroup_v1=true")
    if cgroup_fs == "cgroup2fs":
        assert_passed(run, BOTH)
    else:
        assert_stopped(run, BOTH, "node6: cgroup v1", "kubelet_fail_cgroup_v1")
        assert_stopped(run, BOTH, "node7: cgroup v1", "kubelet_fail_cgroup_v1")


class listener:  # lowercase: reads as a phrase, `with listener(NODE7, 10250):`
    """A process named `name` listening on `port` of a lab host while inside.

    The default is what an operator would leave behind (`python3 -m
    http.server`); another name is set through /proc/self/comm, which is what
    ss reports. Each exits by itself after 10 minutes should cleanup fail.
    """

    def __init__(self, ip: str, port: int, name: str = "python3") -> None:
        self.ip, self.port, self.name = ip, port, name

    def __enter__(self) -> None:
        if self.name == "python3":
            server = f"timeout 600 python3 -m http.server {self.port}"
        else:
            code = (
                "import socket, sys, time; open('/proc/self/comm', 'w').write(sys.argv[1]); "
                "s = socket.socket(); s.bind(('0.0.0.0', int(sys.argv[2]))); s.listen(); "
                "time.sleep(600)"
            )
            server = f"python3 -c {shlex.quote(code)} {self.name} {self.port}"
        ssh(
            self.ip,
            f"set -e; cd /; setsid {server} >/dev/null 2>&1 </dev/null & echo $! > {PIDFILE}; "
            f"for i in $(seq 50); do ss -Hltn 'sport = :{self.port}' | grep -q . && exit 0; "
            "sleep 0.1; done; echo listener did not start >&2; exit 1",
        )

    def __exit__(self, *exc: object) -> None:
        ssh(
            self.ip,
            f"kill -- -$(cat {PIDFILE}) 2>/dev/null; rm -f {PIDFILE}; "
            f"for i in $(seq 50); do ss -Hltn 'sport = :{self.port}' | grep -q . || exit 0; "
            "sleep 0.1; done; echo port still in use >&2; exit 1",
        )


def test_required_port_in_use_stops(tmp_path: Path) -> None:
    with listener(NODE7, 10250):
        run = opening(standard(tmp_path))
    assert_stopped(run, BOTH, "node7: port 10250 (kubelet) is already in use", "by python3")


@pytest.fixture
def swap_on_node7() -> Iterator[None]:
    """Make node7 report 2 GiB of swap, as the kernel would with a swap file.

    A real swapon is kernel-wide: it would switch swap on for every lab host,
    including the ones other work runs on. Instead node7 gets a copy of
    /proc/meminfo with swap in it, bind-mounted in node7's own mount namespace;
    Ansible's fact gathering reads exactly that file.
    """
    ssh(
        NODE7,
        "set -e; sed -e 's/^SwapTotal:.*/SwapTotal:       2097148 kB/' "
        "-e 's/^SwapFree:.*/SwapFree:        2097148 kB/' /proc/meminfo > /run/kf-meminfo; "
        "mount --bind /run/kf-meminfo /proc/meminfo",
    )
    try:
        yield
    finally:
        ssh(NODE7, "umount /proc/meminfo; rm -f /run/kf-meminfo")
    assert "SwapTotal:             0 kB" in ssh(NODE7, "grep SwapTotal /proc/meminfo").stdout


@pytest.mark.usefixtures("swap_on_node7")
def test_swap_on_stops(tmp_path: Path) -> None:
    run = opening(standard(tmp_path))
    assert_stopped(run, BOTH, "node7: swap is on (2047 MiB)", "kubelet_fail_swap_on is true")
    assert not [e for e in run.errors if e.startswith("node6")], run.errors


@pytest.mark.usefixtures("swap_on_node7")
def test_swap_on_passes_when_allowed(tmp_path: Path) -> None:
    assert_passed(opening(standard(tmp_path), "-e", "kubelet_fail_swap_on=false"), BOTH)


def test_every_host_problem_is_listed_at_once(tmp_path: Path) -> None:
    with listener(NODE7, 10256):
        run = opening(
            standard(tmp_path),
            "-e", "preflight_min_memory_mb_control_plane=9000000",
            "-e", '{"preflight_supported_os": ["Debian 11"]}',
        )  # fmt: skip
    assert_stopped(run, BOTH, "node6:", "preflight_min_memory_mb_control_plane")
    assert_stopped(run, BOTH, "node7: port 10256 (kube-proxy health)")
    assert len(run.errors) == 4, run.errors
