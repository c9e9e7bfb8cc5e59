"""After the redeploy (test_b_redeploy.py): what the inventory asks for is in
effect on the hosts. `make test` runs this scenario with a kubespray-style
inventory (tests/lab/lab.py kubespray-inventory: INI, ip/access_ip,
etcd_member_name, kubespray's sample group_vars with its certificate
directory, a proxy, feature gates, a log level, an extra SAN, ...). Every
expectation is read from the inventory (Inventory.settings: the collection's
defaults under it), so with another inventory the same checks hold for its
settings."""

from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from clustercheck import Inventory, Kubectl, run_ok

# Left out of `make test` (tests/lab/fullchecks.py): make test-full runs it.
pytestmark = pytest.mark.full(
    "the kubespray inventory's settings on the redeployed cluster (after the redeploy)"
)

NAMES = (
    "bin_dir", "kube_config_dir", "kube_cert_dir", "etcd_cert_dir", "kube_node_name",
    "kube_feature_gates", "kube_apiserver_feature_gates", "kube_controller_feature_gates",
    "kube_scheduler_feature_gates", "kubelet_feature_gates", "kube_proxy_feature_gates",
    "kube_log_level", "kube_apiserver_node_port_range", "http_proxy", "https_proxy",
    "additional_no_proxy", "supplementary_addresses_in_ssl_keys", "etcd_member_name",
    "node_labels", "kubeconfig_localhost", "kubectl_localhost", "artifacts_dir",
    "kube_network_plugin", "flannel_interface", "kube_apiserver_ip", "skydns_server",
    "etcd_client_port",
)  # fmt: skip


@pytest.fixture(scope="module")
def settings(inventory: Inventory) -> dict[str, dict[str, Any]]:
    return inventory.settings(*NAMES)


def _gates(entries: list[str]) -> dict[str, str]:
    return {k.strip(): v.strip().lower() for k, _, v in (e.partition("=") for e in entries)}


def _cmdline(inventory: Inventory, host: str, unit: str) -> list[str]:
    node = inventory.host(host)
    pid = run_ok(node, f"systemctl show -P MainPID {unit}", f"{unit}'s PID").strip()
    if pid in ("", "0"):
        pytest.fail(f"{host}: {unit} is not running")
    return run_ok(node, f"tr '\\0' '\\n' < /proc/{pid}/cmdline", f"{unit}'s command line").split()


def _environ(inventory: Inventory, host: str, unit: str) -> dict[str, str]:
    node = inventory.host(host)
    pid = run_ok(node, f"systemctl show -P MainPID {unit}", f"{unit}'s PID").strip()
    text = run_ok(node, f"tr '\\0' '\\n' < /proc/{pid}/environ", f"{unit}'s environment")
    return dict(line.partition("=")[::2] for line in text.splitlines() if "=" in line)


def _flag(args: list[str], name: str) -> str | None:
    values = [a.partition("=")[2] for a in args if a.startswith(f"--{name}=")]
    return values[-1] if values else None


@pytest.mark.parametrize(
    "unit,gates_var",
    [("kube-apiserver", "kube_apiserver_feature_gates"),
     ("kube-controller-manager", "kube_controller_feature_gates"),
     ("kube-scheduler", "kube_scheduler_feature_gates")],
)  # fmt: skip
def test_control_plane_flags(
    inventory: Inventory, settings: dict[str, dict[str, Any]], unit: str, gates_var: str
) -> None:
    wrong = []
    for host in inventory.groups["kube_control_plane"]:
        s = settings[host]
        args = _cmdline(inventory, host, unit)
        want_gates = _gates(s[gates_var] or s["kube_feature_gates"] or [])
        flag = _flag(args, "feature-gates")
        have_gates = _gates(flag.split(",")) if flag else {}
        if have_gates != want_gates:
            wrong.append(f"{host}: {unit} --feature-gates={flag}, the inventory asks {want_gates}")
        if _flag(args, "v") != str(s["kube_log_level"]):
            wrong.append(
                f"{host}: {unit} --v={_flag(args, 'v')}, kube_log_level {s['kube_log_level']}"
            )
        range_ = _flag(args, "service-node-port-range")
        if unit == "kube-apiserver" and range_ != s["kube_apiserver_node_port_range"]:
            asked = s["kube_apiserver_node_port_range"]
            wrong.append(f"{host}: --service-node-port-range={range_}, the inventory asks {asked}")
    assert not wrong, "\n".join(wrong)


def test_kubelet_and_kube_proxy_configuration(
    inventory: Inventory, kubectl: Kubectl, settings: dict[str, dict[str, Any]]
) -> None:
    wrong = []
    for host in inventory.groups["k8s_cluster"]:
        s = settings[host]
        level = int(s["kube_log_level"])
        # The kubelet's running configuration, as it reports it.
        live = json.loads(
            kubectl("get", "--raw", f"/api/v1/nodes/{s['kube_node_name']}/proxy/configz")
        )
        kubelet = live["kubeletconfig"]
        want = {
            k: v == "true"
            for k, v in _gates(s["kubelet_feature_gates"] or s["kube_feature_gates"]).items()
        }
        if {k: kubelet.get("featureGates", {}).get(k) for k in want} != want:
            wrong.append(
                f"{host}: kubelet featureGates {kubelet.get('featureGates')}, wanted {want}"
            )
        if kubelet.get("logging", {}).get("verbosity", 0) != level:
            wrong.append(
                f"{host}: kubelet logging {kubelet.get('logging')}, kube_log_level {level}"
            )
        path = f"{s['kube_config_dir']}/kube-proxy-config.yaml"
        proxy = yaml.safe_load(
            run_ok(inventory.host(host), f"cat {path}", "kube-proxy's configuration")
        )
        want = {
            k: v == "true"
            for k, v in _gates(s["kube_proxy_feature_gates"] or s["kube_feature_gates"]).items()
        }
        if (proxy.get("featureGates") or {}) != want:
            wrong.append(f"{host}: {path} featureGates {proxy.get('featureGates')}, wanted {want}")
        if proxy.get("logging", {}).get("verbosity", 0) != level:
            wrong.append(f"{host}: {path} logging {proxy.get('logging')}, kube_log_level {level}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("unit", ["containerd", "kubelet"])
def test_proxy_environment(
    inventory: Inventory, settings: dict[str, dict[str, Any]], unit: str
) -> None:
    hosts = inventory.groups["k8s_cluster"]
    addresses = [inventory.address(h) for h in hosts]
    wrong = []
    for host in hosts:
        s = settings[host]
        env = _environ(inventory, host, unit)
        for var in ("http_proxy", "https_proxy"):
            if env.get(var.upper(), "") != (s[var] or ""):
                wrong.append(f"{host}: {unit} runs with {var.upper()}={env.get(var.upper())!r}, "
                             f"the inventory's {var} is {s[var]!r}")  # fmt: skip
        if s["http_proxy"] or s["https_proxy"]:
            bypass = env.get("NO_PROXY", "").split(",")
            extra = [e.strip() for e in (s["additional_no_proxy"] or "").split(",") if e.strip()]
            missing = [a for a in [*addresses, *extra, "127.0.0.1", "localhost"] if a not in bypass]
            if missing:
                wrong.append(f"{host}: {unit}'s NO_PROXY lacks {missing}: {bypass}")
    assert not wrong, "\n".join(wrong)


def test_certificates_in_the_inventory_directories(
    inventory: Inventory, settings: dict[str, dict[str, Any]]
) -> None:
    wrong = []
    for host in inventory.groups["kube_control_plane"]:
        s = settings[host]
        path = f"{s['kube_cert_dir']}/apiserver.crt"
        code = f"import json, ssl; print(json.dumps(ssl._ssl._test_decode_cert({path!r})))"
        cert = json.loads(run_ok(inventory.host(host), f"python3 -c {shlex.quote(code)}", path))
        names = {value for _, value in cert.get("subjectAltName", [])}
        missing = [n for n in s["supplementary_addresses_in_ssl_keys"] if n not in names]
        if missing:
            wrong.append(f"{host}: {path} lacks the SANs {missing} (has {sorted(names)})")
        args = _cmdline(inventory, host, "kube-apiserver")
        if _flag(args, "tls-cert-file") != path:
            wrong.append(
                f"{host}: kube-apiserver serves {_flag(args, 'tls-cert-file')}, not {path}"
            )
        if _flag(args, "etcd-cafile") != f"{s['etcd_cert_dir']}/ca.crt":
            cafile = _flag(args, "etcd-cafile")
            wrong.append(f"{host}: --etcd-cafile={cafile}, etcd_cert_dir {s['etcd_cert_dir']}")
        default = f"{s['kube_config_dir']}/pki"
        if s["kube_cert_dir"] != default and inventory.host(host).file(default).exists:
            wrong.append(f"{host}: {default} exists although kube_cert_dir is {s['kube_cert_dir']}")
    assert not wrong, "\n".join(wrong)


def test_etcd_members_carry_their_names(
    inventory: Inventory, settings: dict[str, dict[str, Any]]
) -> None:
    first = inventory.groups["etcd"][0]
    s = settings[first]
    pki = s["etcd_cert_dir"]
    command = (
        f"ETCDCTL_CACERT={pki}/ca.crt ETCDCTL_CERT={pki}/healthcheck-client.crt "
        f"ETCDCTL_KEY={pki}/healthcheck-client.key {s['bin_dir']}/etcdctl "
        f"--endpoints=https://127.0.0.1:{s['etcd_client_port']} member list -w json"
    )
    members = json.loads(run_ok(inventory.host(first), command, "etcd members"))["members"]
    want = {
        settings[h]["etcd_member_name"] or settings[h]["kube_node_name"]
        for h in inventory.groups["etcd"]
    }
    assert {m.get("name") for m in members} == want


def test_node_labels(
    inventory: Inventory, kubectl: Kubectl, settings: dict[str, dict[str, Any]]
) -> None:
    nodes = {
        n["metadata"]["name"]: n["metadata"].get("labels", {})
        for n in kubectl.json("get", "nodes")["items"]
    }
    wrong = []
    for host in inventory.groups["k8s_cluster"]:
        s = settings[host]
        labels = nodes.get(s["kube_node_name"], {})
        for key, value in (s["node_labels"] or {}).items():
            if labels.get(key) != ("" if value is None else str(value)):
                wrong.append(
                    f"{host}: label {key}={value!r} asked, the node has {labels.get(key)!r}"
                )
    assert not wrong, "\n".join(wrong)


def test_cluster_addresses(kubectl: Kubectl, settings: dict[str, dict[str, Any]]) -> None:
    s = next(iter(settings.values()))
    api = kubectl(
        "get", "service", "kubernetes", "-n", "default", "-o", "jsonpath={.spec.clusterIP}"
    )
    dns = kubectl(
        "get", "service", "kube-dns", "-n", "kube-system", "-o", "jsonpath={.spec.clusterIP}"
    )
    assert (api.strip(), dns.strip()) == (s["kube_apiserver_ip"], s["skydns_server"])


def test_flannel_interface(kubectl: Kubectl, settings: dict[str, dict[str, Any]]) -> None:
    s = next(iter(settings.values()))
    if s["kube_network_plugin"] != "flannel":
        pytest.fail(
            f"this check reads flannel's arguments; the inventory runs {s['kube_network_plugin']}"
        )
    args = json.loads(kubectl("get", "daemonset", "kube-flannel", "-n", "kube-flannel", "-o",
                              "jsonpath={.spec.template.spec.containers[0].args}"))  # fmt: skip
    ifaces = [a for a in args if a.startswith("--iface=")]
    assert ifaces == ([f"--iface={s['flannel_interface']}"] if s["flannel_interface"] else []), args


def test_admin_kubeconfig_on_the_control_host(
    inventory: Inventory, settings: dict[str, dict[str, Any]]
) -> None:
    s = next(iter(settings.values()))
    directory = Path(s["artifacts_dir"])
    admin = directory / "admin.conf"
    if not s["kubeconfig_localhost"]:
        pytest.fail("kubeconfig_localhost is off in this inventory: nothing to check here")
    assert admin.is_file(), f"{admin} missing although kubeconfig_localhost is on"
    assert stat.S_IMODE(admin.stat().st_mode) == 0o600, f"{admin} is not 0600"
    command = (
        [str(directory / "kubectl.sh"), "get", "nodes", "-o", "name"]
        if s["kubectl_localhost"]
        else ["kubectl", "--kubeconfig", str(admin), "get", "nodes", "-o", "name"]
    )
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60,
                          env={**os.environ, "KUBECONFIG": ""})  # fmt: skip
    assert done.returncode == 0, f"{shlex.join(command)}: {done.stderr}"
    listed = {line.removeprefix("node/") for line in done.stdout.split()}
    assert listed == {settings[h]["kube_node_name"] for h in inventory.groups["k8s_cluster"]}
