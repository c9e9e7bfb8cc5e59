"""Fixtures and helpers shared by the molecule scenarios' checks: the inventory
under test, the lab's settings, kubectl on the first control-plane node and a
namespace for the objects the checks create. Each scenario's
tests/conftest.py imports the fixtures it uses.

molecule's verify step passes `--connection=ansible --ansible-inventory=...`;
by hand, against an inventory of the same shape:

    pytest --ansible-inventory=inventory/lab/hosts.yml molecule/default/tests/

Nothing here skips: a missing inventory, lab or cluster fails with the reason.
"""

from __future__ import annotations

import base64
import json
import re
import shlex
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import labconfig
import pytest
import runbook
import testinfra  # type: ignore[import-untyped]
from cryptography import x509
from testinfra.host import Host  # type: ignore[import-untyped]
from testinfra.utils.ansible_runner import AnsibleRunner, itergroup  # type: ignore[import-untyped]

REPO = Path(__file__).resolve().parents[2]
LAB_ENV = REPO / "inventory" / "lab" / "lab.env"
# Every object the checks create lives here; it is deleted at the end.
NAMESPACE = "kubeforge-verify"
KUBECTL = "/usr/local/bin/kubectl --kubeconfig /etc/kubernetes/admin.conf"
GROUPS = ("kube_control_plane", "etcd", "kube_node", "k8s_cluster")
ETCD_PKI = "/etc/kubernetes/pki/etcd"
# kubeforge's own etcdctl settings (etcdctl_env in roles/kubeforge_defaults).
ETCDCTL = (
    f"ETCDCTL_CACERT={ETCD_PKI}/ca.crt ETCDCTL_CERT={ETCD_PKI}/healthcheck-client.crt "
    f"ETCDCTL_KEY={ETCD_PKI}/healthcheck-client.key ETCDCTL_DIAL_TIMEOUT=3s "
    "ETCDCTL_COMMAND_TIMEOUT=10s /usr/local/bin/etcdctl"
)
# etcdctl against the member on the host it runs on.
ETCDCTL_LOCAL = f"{ETCDCTL} --endpoints=https://127.0.0.1:2379"


def wait_for(what: str, probe: Callable[[], str | None], timeout: float, every: float = 3) -> None:
    """Call `probe` until it returns None (done) or `timeout` passes; it returns
    the reason it is not done yet, which the failure message shows. A probe
    that cannot reach its host (testinfra raises RuntimeError) is not done yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            reason = probe()
        except RuntimeError as exc:
            reason = f"probe failed: {exc}"
        if reason is None:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:.0f}s: {reason}")
        time.sleep(every)


def run_ok(host: Host, command: str, what: str) -> str:
    """stdout of `command` on `host`; a failure names the host, command and stderr."""
    done = host.run(command)
    if done.rc != 0:
        pytest.fail(
            f"{what}: `{command}` failed on {host.backend.get_pytest_id()} (rc={done.rc}):\n"
            f"{done.stderr.strip() or done.stdout.strip()}"
        )
    return str(done.stdout)


SETTINGS_LINE = re.compile(
    r'ok: \[([^\]\s]+)[^\]]*\] => \{\s*"msg": "KUBEFORGE-SETTINGS ((?:[^"\\]|\\.)*)"'
)


@dataclass(frozen=True)
class Inventory:
    path: Path
    groups: dict[str, list[str]]

    def host(self, name: str) -> Host:
        return testinfra.get_host(f"ansible://{name}", ansible_inventory=str(self.path))

    def variables(self, name: str) -> dict[str, Any]:
        """The host's inventory variables (host_vars and group_vars included)."""
        return dict(AnsibleRunner.get_runner(str(self.path)).get_variables(name))

    def settings(self, *names: str) -> dict[str, dict[str, Any]]:
        """Host -> the named settings as kubeforge resolves them for it (the
        inventory over the collection's defaults, templates rendered; None when
        unset), read with tests/playbooks/settings.yml."""
        done = subprocess.run(
            ["ansible-playbook", "-i", str(self.path.resolve()), "tests/playbooks/settings.yml",
             "-e", json.dumps({"settings_names": list(names)})],
            capture_output=True, text=True, check=False, cwd=labconfig.REPO,
            env=runbook.plain_env(),
        )  # fmt: skip
        found = {
            host: {
                k: None if v == "<unset>" else v
                for k, v in json.loads(json.loads(f'"{text}"')).items()
            }
            for host, text in SETTINGS_LINE.findall(done.stdout)
        }
        if done.returncode != 0 or not found:
            pytest.fail(f"tests/playbooks/settings.yml failed (rc={done.returncode}):\n"
                        f"{done.stdout[-3000:]}{done.stderr[-2000:]}")  # fmt: skip
        return found

    def address(self, name: str) -> str:
        hostvars = self.variables(name)
        return str(hostvars.get("ip") or hostvars.get("ansible_host") or name)


class Kubectl:
    """kubectl with the admin kubeconfig on the first control-plane node."""

    def __init__(self, host: Host) -> None:
        self.host = host

    def __call__(self, *args: str, stdin: str | None = None) -> str:
        command = f"{KUBECTL} {shlex.join(args)}"
        if stdin is not None:
            command = f"printf '%s' {shlex.quote(stdin)} | {command}"
        return run_ok(self.host, command, "kubectl")

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "-o", "json"))

    def apply(self, *objects: dict[str, Any]) -> None:
        self("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List",
                                                   "items": list(objects)}))  # fmt: skip

    def try_run(self, *args: str) -> tuple[int, str, str]:
        """rc, stdout and stderr of a kubectl call that may fail."""
        done = self.host.run(f"{KUBECTL} {shlex.join(args)}")
        return done.rc, str(done.stdout), str(done.stderr)


@pytest.fixture(scope="session")
def inventory(pytestconfig: pytest.Config) -> Inventory:
    option = pytestconfig.getoption("ansible_inventory")
    if not option:
        pytest.fail(
            "no inventory: run these checks through molecule (`make molecule-default`) or with "
            "--ansible-inventory=inventory/lab/hosts.yml"
        )
    path = Path(option)
    if not path.is_file():
        pytest.fail(
            f"inventory {path} does not exist: the lab is not up (molecule create, or "
            "`make lab-up` and cluster.yml)"
        )
    runner = AnsibleRunner.get_runner(str(path))
    # In inventory order, as Ansible's groups['...'][0] would be.
    groups = {g: list(dict.fromkeys(itergroup(runner.inventory, g))) for g in GROUPS}
    for group, hosts in groups.items():
        if not hosts and group != "kube_node":
            pytest.fail(f"inventory {path} has no hosts in group {group}")
    return Inventory(path, groups)


@pytest.fixture(scope="session")
def lab_env() -> dict[str, str]:
    if not LAB_ENV.is_file():
        pytest.fail(f"{LAB_ENV.relative_to(REPO)} is missing: the lab is not up")
    env: dict[str, str] = {}
    for line in LAB_ENV.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep:
            env[key.strip()] = value.strip().strip('"')
    for key in ("LAB_MIRROR_URL", "LAB_REGISTRY"):
        if not env.get(key):
            pytest.fail(f"{LAB_ENV.relative_to(REPO)} does not set {key}")
    return env


@pytest.fixture(scope="session")
def busybox_image(lab_env: dict[str, str]) -> str:
    """The lab's busybox (shell, httpd, wget, nslookup), as its group_vars name it."""
    lab_vars = labconfig.render(labconfig.lab_group_vars())
    image = f"{lab_vars.get('lab_test_image_repo')}:{lab_vars.get('lab_test_image_tag')}"
    assert image.startswith(lab_env["LAB_REGISTRY"] + "/"), (
        f"lab_test_image_repo/tag in inventory/lab/group_vars give {image}, not an image of "
        f"the lab registry {lab_env['LAB_REGISTRY']}"
    )
    return image


@pytest.fixture(scope="session")
def kubectl(inventory: Inventory) -> Kubectl:
    return Kubectl(inventory.host(inventory.groups["kube_control_plane"][0]))


@pytest.fixture(scope="session")
def namespace(kubectl: Kubectl) -> Iterator[str]:
    """A namespace for the checks' objects, deleted (and waited for) at the end."""

    def gone() -> str | None:
        rc, out, err = kubectl.try_run(
            "get", "namespace", NAMESPACE, "--ignore-not-found", "-o", "name"
        )
        return None if rc == 0 and not out.strip() else f"rc={rc} {out.strip()} {err.strip()}"

    # Left over from an interrupted run: start clean.
    kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=false")
    wait_for(f"namespace {NAMESPACE} from an earlier run to go", gone, 180)
    kubectl("create", "namespace", NAMESPACE)
    try:
        yield NAMESPACE
    finally:
        kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=false")
        wait_for(f"namespace {NAMESPACE} to be deleted", gone, 180)


LB_CONFIG_DIR = "/etc/kubernetes/apiserver-lb"
MANIFEST_DIR = "/etc/kubernetes/manifests"
CRICTL = "/usr/local/bin/crictl"


def load_balancer_problems(
    inventory: Inventory, hosts: list[str], apiservers: list[str]
) -> list[str]:
    """What is wrong with the local load balancers (apiserver_ha_mode local_lb)
    of `hosts`: each one's configuration must name exactly the `apiservers`
    (host:port) as upstreams, and its running static pod must be the one made
    from that configuration (the manifest's config hash)."""
    problems: list[str] = []
    for name in hosts:
        host = inventory.host(name)
        # One slot (a or b, roles/node/vars/main.yml): its configuration and
        # its manifest, nothing of the other slot left.
        slots = run_ok(host, f"ls {LB_CONFIG_DIR}", "load balancer slots").split()
        manifests = run_ok(
            host, f"cd {MANIFEST_DIR} && ls apiserver-lb*.yaml 2>/dev/null || true", "manifests"
        ).split()
        if len(slots) != 1 or manifests != [f"apiserver-lb-{slots[0]}.yaml"]:
            problems.append(f"{name}: load balancer slots {slots}, manifests {manifests}: not one")
            continue
        listing = run_ok(host, f"ls {LB_CONFIG_DIR}/{slots[0]}", "load balancer configuration")
        path = f"{LB_CONFIG_DIR}/{slots[0]}/{listing.split()[0]}"
        text = run_ok(host, f"cat {path}", "load balancer configuration")
        # Upstreams only: not what it listens on (loopback, any address).
        found = sorted(
            a for a in set(re.findall(r"\b(\d+\.\d+\.\d+\.\d+:\d+)", text))
            if not a.startswith(("127.", "0.0.0.0"))
        )  # fmt: skip
        if found != sorted(apiservers):
            problems.append(f"{name}: {path} names {found}, not {sorted(apiservers)}")
        manifest = run_ok(host, f"cat {MANIFEST_DIR}/{manifests[0]}", "load balancer manifest")
        wanted = re.findall(r'kubeforge.io/config-hash: "([0-9a-f]+)"', manifest)
        # The pod the kubelet runs, not its mirror in the API (which lags).
        listed = run_ok(host, f"{CRICTL} pods --name apiserver-lb --state ready -o json", "pods")
        hashes = [
            (pod.get("annotations") or {}).get("kubeforge.io/config-hash")
            for pod in json.loads(listed).get("items") or []
        ]
        if hashes != wanted:
            problems.append(
                f"{name}: its ready apiserver-lb pods carry config hashes {hashes}, "
                f"not its manifest's ({wanted})"
            )
    return problems


def node_conditions(kubectl: Kubectl) -> dict[str, dict[str, str]]:
    """Node name -> {'ready': 'True'|..., 'version': kubelet version, 'roles': ...}."""
    out: dict[str, dict[str, str]] = {}
    for item in kubectl.json("get", "nodes")["items"]:
        ready = [c["status"] for c in item["status"]["conditions"] if c["type"] == "Ready"]
        labels = item["metadata"].get("labels", {})
        out[item["metadata"]["name"]] = {
            "ready": ready[0] if ready else "Unknown",
            "version": item["status"]["nodeInfo"]["kubeletVersion"],
            "control-plane": str("node-role.kubernetes.io/control-plane" in labels),
            "taints": ",".join(t["key"] for t in item["spec"].get("taints", [])),
        }
    return out


def wait_nodes_ready(
    inventory: Inventory, kubectl: Kubectl, after: str, timeout: float = 120
) -> None:
    """Wait until every node of k8s_cluster is registered and Ready."""

    def not_ready() -> str | None:
        nodes = node_conditions(kubectl)
        bad = {n: v["ready"] for n, v in nodes.items() if v["ready"] != "True"}
        missing = {h.lower() for h in inventory.groups["k8s_cluster"]} - set(nodes)
        return f"not Ready: {bad}, missing: {missing}" if bad or missing else None

    wait_for(f"every node Ready after {after}", not_ready, timeout)


def pod_manifest(
    name: str, node: str, image: str, script: str, labels: dict[str, str] | None = None
) -> dict[str, Any]:
    """A one-container Pod on `node` running `script` with sh (labels: app=<name>)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels if labels is not None else {"app": name}},
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": name,
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["sh", "-c", script],
                }
            ],
        },
    }


def probe_log_counts(where: str, text: str) -> tuple[int, int, list[str]]:
    """A probe log's (tests/lab/apiprobe.py and the upgrade's web probers)
    requests made, failures and first failure lines: its last `TOTAL <n>
    FAILED <f>` line, and its `FAIL` lines. A log without a TOTAL line fails
    the test, naming `where`."""
    lines = text.splitlines()
    totals = [line for line in lines if " TOTAL " in line]
    if not totals:
        pytest.fail(f"{where} has no TOTAL line: the probe never ran 20 times")
    made, failed = (int(x) for x in re.findall(r"\d+", totals[-1].split(" TOTAL ")[1]))
    fails = [line for line in lines if re.search(r" FAIL( |$)", line)]
    return made, max(failed, len(fails)), fails[:10]


# API probes on the nodes (tests/lab/apiprobe.py): each node reads the API
# twice a second through its own endpoint with its kube-proxy client
# certificate (taken up again when it is re-issued), and logs every failure.
APIPROBE = REPO / "tests" / "lab" / "apiprobe.py"


@dataclass
class ApiProbes:
    """A probe window on every node of k8s_cluster (or on `nodes` only: those
    running when a host joins), as a transient unit `unit` logging to
    /var/log/<unit>/api.log."""

    inventory: Inventory
    unit: str
    nodes: list[str] | None = None

    @property
    def targets(self) -> list[str]:
        return list(self.nodes) if self.nodes is not None else self.inventory.groups["k8s_cluster"]

    @property
    def log(self) -> str:
        return f"/var/log/{self.unit}/api.log"

    @property
    def binary(self) -> str:
        """Where start() puts the probe's script on each node (stop() removes it)."""
        return f"/usr/local/sbin/{self.unit}"

    def start(self, settings: dict[str, dict[str, Any]], stop_first: tuple[str, ...] = ()) -> None:
        """Start on every node (`settings`: kube_apiserver_endpoint and
        kube_cert_dir of each host), after stopping the units `stop_first`;
        returns once every node has counted its first requests."""
        script = base64.b64encode(APIPROBE.read_bytes()).decode()
        binary = self.binary
        nodes = self.targets
        for name in nodes:
            host, own = self.inventory.host(name), settings[name]
            for other in stop_first:
                host.run(f"systemctl stop {other} 2>/dev/null")
            run_ok(
                host,
                f"systemctl stop {self.unit} 2>/dev/null; systemctl reset-failed {self.unit} "
                f"2>/dev/null; rm -rf /var/log/{self.unit}; echo {script} | base64 -d > {binary} "
                f"&& chmod 0755 {binary}",
                "copy the API probe",
            )
            endpoint, pki = str(own["kube_apiserver_endpoint"]).strip(), own["kube_cert_dir"]
            run_ok(
                host,
                f"systemd-run --unit {self.unit} -p RuntimeMaxSec=7200 {binary} {endpoint} "
                f"{pki}/kube-proxy.crt {pki}/kube-proxy.key {self.log}",
                "start the API probe",
            )

        def counting() -> str | None:
            idle = [
                n for n in nodes if self.inventory.host(n).run(f"grep -q ' TOTAL ' {self.log}").rc
            ]
            return f"no TOTAL line yet on {idle}" if idle else None

        wait_for("the API probes to count on every node", counting, 180, every=5)

    def stop(self) -> dict[str, tuple[int, int, list[str]]]:
        """Stop them; per node: probes made, failures and the first failure lines."""
        counts: dict[str, tuple[int, int, list[str]]] = {}
        for name in self.targets:
            host = self.inventory.host(name)
            host.run(f"systemctl stop {self.unit}")
            text = run_ok(host, f"cat {self.log}", "the API probe's log")
            # Nothing of the check stays on the host (the reset scenario
            # compares the hosts with a node never deployed).
            host.run(f"rm -f {self.binary}")
            counts[name] = probe_log_counts(f"{name}: {self.log}", text)
        return counts


def assert_probes_clean(
    what: str, seconds: float, probes: dict[str, tuple[int, int, list[str]]]
) -> None:
    """No probe failed, and each node probed through the whole window (two a second)."""
    print(
        f"{what} {seconds:.0f}s; API probes: "
        + ", ".join(f"{n}: {m} probes, {f} failed" for n, (m, f, _) in probes.items())
    )
    short = {n: m for n, (m, _, _) in probes.items() if m < seconds}
    assert short == {}, f"fewer probes than the {what}'s {seconds:.0f}s: {short}"
    failed = {n: (f, lines) for n, (_, f, lines) in probes.items() if f}
    assert failed == {}, f"API probes failed during the {what}: {failed}"


PEM = re.compile(r"-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----")
KUBECONFIG_DATA = re.compile(r"(certificate-authority-data|client-certificate-data):\s*(\S+)")
KUBELET_PKI = "/var/lib/kubelet/pki"


def is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def certificates(text: str) -> list[x509.Certificate]:
    """Every PEM certificate in `text`."""
    return [x509.load_pem_x509_certificate(m.encode()) for m in PEM.findall(text)]


def host_certificates(host: Host, dirs: dict[str, Any]) -> dict[str, str]:
    """Every certificate file, kubeconfig and the kubelet's current pair on a host
    (`dirs`: its kube_cert_dir, etcd_cert_dir, kube_config_dir): path -> content
    (kubeconfigs: their certificate fields, decoded)."""
    listing = run_ok(
        host,
        f"find {dirs['kube_cert_dir']} {dirs['etcd_cert_dir']} -maxdepth 1 -type f "
        f"\\( -name '*.crt' -o -name '*.pem' \\) 2>/dev/null; "
        f"find {dirs['kube_config_dir']} -maxdepth 1 -name '*.conf' 2>/dev/null; "
        f"ls {KUBELET_PKI}/kubelet-client-current.pem 2>/dev/null; true",
        "list the certificates",
    )
    out = {}
    for path in sorted(set(listing.split())):
        text = run_ok(host, f"cat {path}", f"read {path}")
        if path.endswith(".conf"):
            text = "\n".join(
                base64.b64decode(value).decode(errors="replace")
                for _, value in KUBECONFIG_DATA.findall(text)
            )
        out[path] = text
    return out
