"""The cluster report (cluster-info.yml, plugins/filter/kubeforge_cluster_info.py):
the probe's output is parsed into versions, services and API checks; drift
against the inventory's pins, the other hosts, the download record and the
running components is flagged, an unreachable host is reported and left out of
the comparison, missing data (a probe cut short, an API or etcd that does not
answer) is reported rather than failing, certificates keep the soonest-first
order of kubeforge_cert_report, and the text is aligned tables. The tables the
filter keeps of components, add-ons and services follow the roles."""

from __future__ import annotations

import datetime
import json
import re
import socket
import subprocess
from pathlib import Path
from typing import Any

import kubeforge_certs as kc
import kubeforge_cluster_info as ci
import pytest
import yaml
from ansible_render import REPO

PINNED = {
    "kube_version": "1.37.2",
    "etcd_version": "3.6.8",
    "containerd_version": "2.2.1",
    "runc_version": "1.3.4",
    "crictl_version": "1.36.0",
    "cni_version": "1.9.1",
    "helm_version": "3.22.0",
    "calico_version": "3.31.0",
    "gateway_api_version": "1.4.0",
}
CACHE = "/root/.cache/kubeforge/downloads"
SETTINGS: dict[str, Any] = {
    "cluster_name": "cluster.local",
    "generated": "2026-12-04T12:00:00Z",
    "apiserver_ha_mode": "local_lb",
    "kube_apiserver_endpoint": "https://127.0.0.1:6443\n",
    "loadbalancer_apiserver": {},
    "loadbalancer_apiserver_type": "haproxy",
    "dns_mode": "coredns",
    "addons_dns_autoscaler_enabled": "",
    "metrics_server_enabled": True,
    "local_path_provisioner_enabled": False,
    "local_path_provisioner_namespace": "local-path-storage",
    "ingress_controller_enabled": True,
    "ingress_controller_namespace": "traefik",
    "kube_network_plugin": "calico",
}
NODE_COMPONENTS = {
    "kubelet": ("kubelet", "Kubernetes v{k}"),
    "kube-proxy": ("kube-proxy", "Kubernetes v{k}"),
    "containerd": ("containerd", "containerd github.com/containerd/containerd/v2 v2.2.1 abc123"),
    "runc": ("runc", "runc version 1.3.4\ncommit: v1.3.4-0-g1234\nspec: 1.2.1"),
    "crictl": ("crictl", "crictl version v1.36.0"),
    "cni": ("cni", "CNI bridge plugin v1.9.1\nCNI protocol versions supported: 1.0.0"),
}
CP_COMPONENTS = {
    "kube-apiserver": ("kube-apiserver", "Kubernetes v{k}"),
    "kube-controller-manager": ("kube-controller-manager", "Kubernetes v{k}"),
    "kube-scheduler": ("kube-scheduler", "Kubernetes v{k}"),
    "kubectl": ("kubectl", "Client Version: v{k}\nKustomize Version: v5.7.1"),
    "etcd": ("etcd", "etcd Version: 3.6.8\nGit SHA: Not provided"),
}


def record_src(name: str, version: str) -> str:
    if name == "etcd":
        d = f"etcd-v{version}-linux-amd64"
        return f"{CACHE}/etcd_{version}_{d}.tar.gz.d/{d}/etcd"
    if name == "cni":
        return f"{CACHE}/cni_{version}_cni-plugins-linux-amd64-v{version}.tgz.d/bridge"
    return f"{CACHE}/{name}_{version}_{name}"


def probe(
    groups: list[str],
    kube: str = "1.37.2",
    *,
    recorded: dict[str, str] | None = None,
    down: tuple[str, ...] = (),
    endpoint: bool | None = True,
    apiserver: str | None = "ok",
    complete: bool = True,
) -> str:
    """The text cluster-info-probe.sh prints on a host of `groups` running
    Kubernetes `kube` (recorded as such unless `recorded` says otherwise)."""
    comps = dict(NODE_COMPONENTS) if "k8s_cluster" in groups else {}
    if "kube_control_plane" in groups:
        comps.update(CP_COMPONENTS)
    if "etcd" in groups:
        comps["etcd"] = CP_COMPONENTS["etcd"]
    versions = {n: (kube if n.startswith("kube") else PINNED[f"{n}_version"]) for n in comps} | (
        recorded or {}
    )
    record = {f"/usr/local/bin/{n}": record_src(n, v) for n, v in versions.items()}
    out = ["@@ record", json.dumps(record, indent=2)]
    for name, (_, text) in comps.items():
        out += [f"@@ version {name}", text.format(k=kube)]
    units = {"containerd", "kubelet", "kube-proxy"} if "k8s_cluster" in groups else set()
    if "kube_control_plane" in groups:
        units |= {"kube-apiserver", "kube-controller-manager", "kube-scheduler"}
    if "etcd" in groups:
        units.add("etcd")
    for unit in [
        "containerd",
        "kubelet",
        "kube-proxy",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "etcd",
        "haproxy",
    ]:
        out.append(f"@@ service {unit}")
        if unit not in units:
            out.append("LoadState=not-found\nActiveState=inactive\nSubState=dead")
        elif unit in down:
            out.append("LoadState=loaded\nActiveState=inactive\nSubState=dead")
        else:
            out.append("LoadState=loaded\nActiveState=active\nSubState=running")
    if "k8s_cluster" in groups and endpoint is not None:
        out += ["@@ endpoint 127.0.0.1:6443", "open" if endpoint else "closed"]
    if "kube_control_plane" in groups and apiserver is not None:
        out += ["@@ readyz", apiserver, "@@ apiversion"]
        out.append(json.dumps({"gitVersion": f"v{kube}"}) if apiserver == "ok" else apiserver)
    if complete:
        out.append("@@ end")
    return "\n".join(out) + "\n"


CP = ["etcd", "k8s_cluster", "kube_control_plane"]
WORKER = ["k8s_cluster", "kube_node"]


def host(name: str, groups: list[str], text: str = "", **extra: Any) -> dict[str, Any]:
    number = int(re.sub(r"\D", "", name))
    data: dict[str, Any] = {
        "host": name,
        "groups": groups,
        "address": f"10.0.0.{number}",
        "node_name": name,
        "etcd_name": name if "etcd" in groups else "",
        "etcd_endpoint": f"https://10.0.0.{number}:2379" if "etcd" in groups else "",
        "apiserver_url": f"https://10.0.0.{number}:6443" if "kube_control_plane" in groups else "",
        "pinned": PINNED,
        "unreachable": False,
        "error": "",
        "probe": ci.kubeforge_cluster_info_probe(text or probe(groups)),
    }
    data.update(extra)
    return data


def unreachable(name: str, groups: list[str]) -> dict[str, Any]:
    msg = (
        "Task failed: Failed to connect to the host via ssh: ssh: connect to host "
        "10.213.0.99 port 22: No route to host"
    )
    return host(name, groups, unreachable=True, error=msg, probe="", address="10.213.0.99")


def member(name: str, ident: int) -> dict[str, Any]:
    number = int(re.sub(r"\D", "", name))
    return {"ID": ident, "name": name, "clientURLs": [f"https://10.0.0.{number}:2379"]}


def etcd_read(names: list[str], down: tuple[str, ...] = (), via: str = "node1") -> dict[str, Any]:
    """The registered results of the playbook's etcdctl loop."""
    members = [member(n, 100 + i) for i, n in enumerate(names)]
    urls = {m["name"]: m["clientURLs"][0] for m in members}
    status = [
        {
            "Endpoint": urls[n],
            "Status": {
                "header": {"member_id": 100 + i},
                "version": "3.6.8",
                "dbSize": 5 * 1024 * 1024,
                "leader": 100,
                "dbSizeInUse": 3 * 1024 * 1024,
            },
        }
        for i, n in enumerate(names)
        if n not in down
    ]
    health = [
        {"endpoint": urls[n], "health": n not in down, "took": "1ms"}
        | ({"error": "dial tcp: connect: connection refused"} if n in down else {})
        for n in names
    ]
    rc = 1 if down else 0
    return {
        "host": via,
        "reason": "no etcd host of this run answered",
        "results": [
            {"item": {"key": "members"}, "rc": 0, "stdout": json.dumps({"members": members})},
            {
                "item": {"key": "status"},
                "rc": rc,
                "stdout": json.dumps(status),
                "stderr": "".join(
                    f"Failed to get the status of endpoint {urls[n]}\n" for n in down
                ),
            },
            {"item": {"key": "health"}, "rc": rc, "stdout": json.dumps(health)},
        ],
    }


def node(name: str, kube: str = "1.37.2", ready: str = "True", **labels: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {},
        "status": {
            "conditions": [
                {"type": "Ready", "status": ready, "reason": "KubeletReady"},
                {"type": "MemoryPressure", "status": "False"},
            ],
            "nodeInfo": {
                "kubeletVersion": f"v{kube}",
                "containerRuntimeVersion": "containerd://2.2.1",
            },
        },
    }


def workload(kind: str, name: str, desired: int, ready: int) -> dict[str, Any]:
    if kind == "Deployment":
        return {
            "kind": kind,
            "metadata": {"name": name},
            "spec": {"replicas": desired},
            "status": {
                "readyReplicas": ready,
                "updatedReplicas": desired,
                "availableReplicas": ready,
            },
        }
    return {
        "kind": kind,
        "metadata": {"name": name},
        "status": {
            "desiredNumberScheduled": desired,
            "numberReady": ready,
            "updatedNumberScheduled": desired,
            "numberAvailable": ready,
        },
    }


def api_read(
    nodes: list[dict[str, Any]], overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The registered results of the playbook's kubectl loop (run on node1)."""
    system = [
        workload("Deployment", "coredns", 2, 2),
        workload("Deployment", "dns-autoscaler", 1, 1),
        workload("Deployment", "metrics-server", 1, 1),
        workload("DaemonSet", "calico-node", 5, 5),
        workload("Deployment", "calico-kube-controllers", 1, 1),
    ]
    lists = {
        "nodes": {"items": nodes},
        "workloads kube-system": {"items": system},
        "workloads traefik": {"items": [workload("DaemonSet", "traefik", 1, 1)]},
    } | (overrides or {})
    return {
        "host": "node1",
        "reason": "no control-plane host of this run answered",
        "results": [
            {"item": {"key": k}, "rc": 0, "stdout": json.dumps(v)} for k, v in lists.items()
        ],
    }


def certificates(*certs: dict[str, Any], errors: list[Any] | None = None) -> dict[str, Any]:
    report = kc.kubeforge_cert_report([{"certificates": list(certs), "errors": errors or []}])
    return {
        **report,
        "due": kc.kubeforge_cert_due(report["certificates"], 30),
        "renew_before_days": 30,
    }


NOW = datetime.datetime(2026, 12, 4, 12, 0, 0, tzinfo=datetime.UTC)


def cert(name: str, file: str, days: int, *, ca: bool = False) -> dict[str, Any]:
    after = NOW + datetime.timedelta(days=days, hours=1)
    return {
        "host": name,
        "file": file,
        "part": "",
        "source": "file",
        "subject": f"CN={Path(file).stem}",
        "issuer": "CN=kubernetes-ca",
        "not_after": after.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "days_left": days,
        "is_ca": ca,
    }


NAMES = ["node1", "node2", "node3", "node4", "node5"]


def cluster(**per_host: dict[str, Any]) -> list[dict[str, Any]]:
    """Five hosts as the lab has them: node1-3 control plane and etcd, node4-5 workers."""
    hosts = []
    for name in NAMES:
        groups = CP if name in ("node1", "node2", "node3") else WORKER
        hosts.append(per_host.get(name) or host(name, groups))
    return hosts


def report(
    hosts: list[dict[str, Any]] | None = None,
    etcd: dict[str, Any] | None = None,
    api: dict[str, Any] | None = None,
    certs: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return ci.kubeforge_cluster_info(
        hosts if hosts is not None else cluster(),
        settings or SETTINGS,
        etcd or etcd_read(["node1", "node2", "node3"]),
        api or api_read([node(n) for n in NAMES]),
        certs or certificates(cert("node1", "/pki/apiserver.crt", 300)),
    )


# The probe ---------------------------------------------------------------------------------


def test_probe_reads_versions_record_services_and_api_checks() -> None:
    text = probe(CP) + "@@ version helm\nv3.22.0+g1234abc\n@@ vip 10.0.0.100\nheld\n"
    got = ci.kubeforge_cluster_info_probe(text)
    assert got["binaries"] == {
        "kubelet": "1.37.2",
        "kube-proxy": "1.37.2",
        "containerd": "2.2.1",
        "runc": "1.3.4",
        "crictl": "1.36.0",
        "cni": "1.9.1",
        "kube-apiserver": "1.37.2",
        "kube-controller-manager": "1.37.2",
        "kube-scheduler": "1.37.2",
        "kubectl": "1.37.2",
        "etcd": "3.6.8",
        "helm": "3.22.0",
    }
    # The record names component and version in its cache paths (tarball members too).
    assert got["recorded"]["etcd"] == ["3.6.8"] and got["recorded"]["cni"] == ["1.9.1"]
    assert got["recorded"]["kube-apiserver"] == ["1.37.2"]
    # Units systemd does not know (haproxy here) are left out.
    assert set(got["services"]) == {
        "containerd",
        "kubelet",
        "kube-proxy",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "etcd",
    }
    assert got["services"]["kubelet"] == {"active": "active", "sub": "running"}
    assert got["endpoint"] == {"address": "127.0.0.1:6443", "open": True}
    assert got["apiserver"] == {"ready": True, "detail": "", "version": "v1.37.2"}
    assert got["vip"] == {"address": "10.0.0.100", "held": True}
    assert got["complete"] is True


def test_probe_record_names_with_underscores_and_unknown_versions() -> None:
    record = {
        "/etc/kubernetes/addons/gateway-api-crds.yaml": (
            f"{CACHE}/gateway_api_crds_1.4.0_standard-install.yaml"
        ),
        "/etc/kubernetes/addons/calico-crds.yaml": (
            f"{CACHE}/calico_crds_3.31.0_v3.31.0.tar.gz.d/calico-3.31.0/manifests/crds.yaml"
        ),
        "/usr/local/bin/kubelet": f"{CACHE}/kubelet_1.37.2_kubelet",
        "/usr/local/bin/kubectl": f"{CACHE}/kubectl_1.36.3_kubectl",
        "/usr/local/bin/kube-proxy": f"{CACHE}/kube-proxy_1.37.2_kube-proxy",
    }
    text = f"@@ record\n{json.dumps(record)}\n@@ version runc\nrunc version unknown\n"
    got = ci.kubeforge_cluster_info_probe(text)
    assert got["recorded"] == {
        "gateway_api_crds": ["1.4.0"],
        "calico_crds": ["3.31.0"],
        "kubelet": ["1.37.2"],
        "kubectl": ["1.36.3"],
        "kube-proxy": ["1.37.2"],
    }
    assert got["binaries"]["runc"] == "unknown (runc version unknown)"
    assert got["complete"] is False, "no end marker: the output was cut short"


def test_probe_reports_an_apiserver_that_does_not_answer_and_systemd_that_does_not() -> None:
    refused = (
        "The connection to the server 10.0.0.1:6443 was refused - did you specify the right "
        "host or port?"
    )
    text = (
        f"@@ service kubelet\nFailed to connect to bus: Host is down\n"
        f"@@ endpoint 127.0.0.1:6443\nclosed\n@@ readyz\n{refused}\n@@ apiversion\n{refused}\n"
        "@@ end\n"
    )
    got = ci.kubeforge_cluster_info_probe(text)
    assert got["services"]["kubelet"]["active"] == "unknown"
    assert got["endpoint"] == {"address": "127.0.0.1:6443", "open": False}
    assert got["apiserver"] == {"ready": False, "detail": refused, "version": None}
    assert got["record"] is None and got["recorded"] == {}


def test_probe_script_output_parses(tmp_path: Path) -> None:
    """The real script, with stand-in binaries, against a port nothing listens on."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in {
        "kubelet": "Kubernetes v1.37.2",
        "runc": "runc version 1.3.4",
        "containerd": "containerd x/v2 v2.2.1 abc",
    }.items():
        (bin_dir / name).write_text(f"#!/bin/sh\necho '{text}'\n")
        (bin_dir / name).chmod(0o755)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = REPO / "playbooks" / "files" / "cluster-info-probe.sh"
    done = subprocess.run(
        [
            "bash",
            str(script),
            str(bin_dir),
            str(tmp_path),
            str(tmp_path / "cni"),
            f"127.0.0.1:{port}",
            "no",
            "",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    got = ci.kubeforge_cluster_info_probe(done.stdout)
    assert got["binaries"] == {"kubelet": "1.37.2", "runc": "1.3.4", "containerd": "2.2.1"}
    assert got["endpoint"] == {"address": f"127.0.0.1:{port}", "open": False}
    assert got["apiserver"] is None and got["vip"] is None
    assert got["complete"] is True


# Drift ------------------------------------------------------------------------------------


def test_a_healthy_cluster_has_no_drift_and_no_problems() -> None:
    got = report()
    assert got["drift"] == []
    assert got["problems"] == []
    assert got["summary"] == {
        "hosts": 5,
        "reachable": 5,
        "read": 5,
        "unreachable": [],
        "api_read": True,
        "etcd_read": True,
        "problems": 0,
        "drift": 0,
    }
    node1 = got["hosts"][0]
    assert node1["components"]["kube-apiserver"] == {
        "version": "1.37.2",
        "recorded": "1.37.2",
        "binary": "1.37.2",
        "pinned": "1.37.2",
    }


def test_a_host_behind_the_others_and_the_inventory_is_flagged() -> None:
    old = host("node4", WORKER, probe(WORKER, kube="1.36.3"))
    got = report(
        cluster(node4=old),
        api=api_read([node(n) for n in NAMES[:3]] + [node("node4", "1.36.3"), node("node5")]),
    )
    drift = {(d["host"], d["component"]): d["reasons"] for d in got["drift"]}
    assert set(drift) == {("node4", "kubelet"), ("node4", "kube-proxy")}
    assert drift[("node4", "kubelet")] == [
        "the inventory pins 1.37.2",
        "4 other host(s) have 1.37.2",
    ]
    assert "versions: 2 difference(s), listed under Versions" in got["problems"]


def test_a_cluster_behind_its_inventory_is_flagged_against_the_pin_only() -> None:
    hosts = [host(h["host"], h["groups"], probe(h["groups"], kube="1.36.3")) for h in cluster()]
    got = report(hosts, api=api_read([node(n, "1.36.3") for n in NAMES]))
    reasons = {tuple(d["reasons"]) for d in got["drift"]}
    assert reasons == {("the inventory pins 1.37.2",)}, reasons
    assert len(got["drift"]) == 2 * 5 + 4 * 3  # kubelet, kube-proxy; cp's four


def test_a_binary_replaced_by_hand_a_missing_one_and_a_stale_kubelet() -> None:
    # node2's apiserver binary says 1.37.3 while the record says 1.37.2;
    # node5 has no crictl; node4's running kubelet is still 1.36.3.
    swapped = probe(CP).replace(
        "@@ version kube-apiserver\nKubernetes v1.37.2",
        "@@ version kube-apiserver\nKubernetes v1.37.3",
    )
    no_crictl = probe(WORKER).replace('  "/usr/local/bin/crictl"', '  "/usr/local/bin/crictl-gone"')
    no_crictl = re.sub(r'"/usr/local/bin/crictl-gone": "[^"]*",?\n', "", no_crictl)
    no_crictl = no_crictl.replace("@@ version crictl\ncrictl version v1.36.0\n", "")
    # node3's runc does not tell its version: no difference.
    mute = probe(CP).replace("runc version 1.3.4\n", "runc version unknown\n")
    hosts = cluster(
        node2=host("node2", CP, swapped),
        node3=host("node3", CP, mute),
        node5=host("node5", WORKER, no_crictl),
    )
    nodes = [node(n) for n in NAMES]
    nodes[3] = node("node4", "1.36.3")
    got = report(hosts, api=api_read(nodes))
    drift = {(d["host"], d["component"]): d for d in got["drift"]}
    # Its apiserver still runs the old binary (it answers v1.37.2).
    assert drift[("node2", "kube-apiserver")]["reasons"] == [
        "the inventory pins 1.37.2",
        "2 other host(s) have 1.37.2",
        "the binary reports 1.37.3, the download record 1.37.2",
        "the running kube-apiserver reports v1.37.2 (not restarted since its binary changed?)",
    ]
    assert drift[("node5", "crictl")] == {
        "host": "node5",
        "component": "crictl",
        "version": None,
        "reasons": ["not installed"],
    }
    assert drift[("node4", "kubelet")]["reasons"] == [
        "the running kubelet reports v1.36.3 (not restarted since its binary changed?)"
    ]
    assert list(drift) == [("node2", "kube-apiserver"), ("node4", "kubelet"), ("node5", "crictl")]
    runc = got["hosts"][2]["components"]["runc"]
    assert runc == {
        "version": "1.3.4",
        "recorded": "1.3.4",
        "binary": "unknown (runc version unknown)",
        "pinned": "1.3.4",
    }


# Unreachable hosts and missing data --------------------------------------------------------


def test_an_unreachable_host_is_reported_and_the_rest_still_read() -> None:
    got = report(cluster(node5=unreachable("node5", WORKER)))
    node5 = got["hosts"][4]
    assert node5["reachable"] is False and node5["read"] is False
    assert node5["error"].startswith("Failed to connect to the host via ssh")
    assert node5["components"] == {} and node5["services"] == {}
    assert got["summary"]["unreachable"] == ["node5"] and got["summary"]["read"] == 4
    assert got["problems"][0] == (
        "node5: unreachable at 10.213.0.99: Failed to connect to the host via ssh: ssh: connect "
        "to host 10.213.0.99 port 22: No route to host"
    )
    # Not counted as drift, nor as missing components; its Node is still reported.
    assert got["drift"] == []
    assert [n["name"] for n in got["nodes"]] == NAMES
    assert all(h["components"]["kubelet"]["version"] == "1.37.2" for h in got["hosts"][:4])


def test_a_stopped_kubelet_and_etcd_member_are_reported() -> None:
    hosts = cluster(
        node3=host("node3", CP, probe(CP, down=("etcd",))),
        node4=host("node4", WORKER, probe(WORKER, down=("kubelet",))),
    )
    nodes = [node(n) for n in NAMES]
    nodes[3] = node("node4", ready="Unknown")
    got = report(
        hosts, etcd=etcd_read(["node1", "node2", "node3"], down=("node3",)), api=api_read(nodes)
    )
    assert "node4: service kubelet is inactive (dead)" in got["problems"]
    assert "node3: service etcd is inactive (dead)" in got["problems"]
    assert "node node4: Ready is Unknown (KubeletReady)" in got["problems"]
    assert (
        "etcd member node3 (node3): unhealthy: dial tcp: connect: connection refused"
        in (got["problems"])
    )
    members = {m["name"]: m for m in got["etcd"]["members"]}
    assert [m["healthy"] for m in members.values()] == [True, True, False]
    assert members["node1"]["leader"] and members["node1"]["db_size"] == 5 * 1024 * 1024
    assert members["node3"]["db_size"] is None and members["node3"]["host"] == "node3"


def test_an_apiserver_and_etcd_that_do_not_answer_leave_the_rest_of_the_report() -> None:
    hosts = cluster(
        **{
            n: host(n, CP, probe(CP, apiserver="connection refused"))
            for n in ("node1", "node2", "node3")
        }
    )
    failed = {
        "host": "node1",
        "reason": "",
        "results": [
            {
                "item": {"key": k},
                "rc": 1,
                "stdout": "",
                "stderr": "The connection to the server 10.0.0.1:6443 was refused",
            }
            for k in ("nodes", "workloads kube-system", "workloads traefik")
        ],
    }
    nothing = {"host": "", "reason": "no etcd host of this run answered", "results": []}
    got = report(hosts, etcd=nothing, api=failed)
    assert got["api"]["error"] == "on node1: The connection to the server 10.0.0.1:6443 was refused"
    assert got["nodes"] == []
    assert {a["state"] for a in got["addons"]} == {"unknown"}
    assert got["etcd"] == {
        "read_from": None,
        "error": "no etcd host of this run answered",
        "members": [],
    }
    assert "node1: its apiserver is not ready: connection refused" in got["problems"]
    assert "etcd: could not be read: no etcd host of this run answered" in got["problems"]
    assert not any(p.startswith("add-on ") for p in got["problems"]), "unknown, said once"
    assert not any("no Node object" in p for p in got["problems"]), "unknown, not missing"
    assert got["summary"]["api_read"] is False and got["summary"]["etcd_read"] is False


def test_a_probe_cut_short_a_host_without_record_and_a_missing_node() -> None:
    hosts = cluster(
        node2=host("node2", CP, probe(CP, complete=False)),
        node4=host("node4", WORKER, "@@ record\n\n" + probe(WORKER).split("\n", 2)[2]),
    )
    got = report(hosts, api=api_read([node(n) for n in ("node1", "node2", "node3", "node4")]))
    assert got["hosts"][1]["read"] is False
    assert "node2: could not be read: the probe's output is cut short" in got["problems"]
    assert (
        "node4: no download record (/var/lib/kubeforge/installed.json): not deployed by "
        "kubeforge, or reset"
    ) in got["problems"]
    assert "node5: no Node object node5" in got["problems"]


def test_missing_and_unready_add_ons() -> None:
    api = api_read(
        [node(n) for n in NAMES],
        {
            "workloads kube-system": {
                "items": [
                    workload("Deployment", "coredns", 2, 1),
                    workload("DaemonSet", "calico-node", 5, 5),
                ]
            },
            "workloads traefik": {"items": [workload("DaemonSet", "traefik", 0, 0)]},
        },
    )
    got = report(api=api)
    states = {a["name"]: a["state"] for a in got["addons"]}
    assert states == {
        "coredns": "not ready",
        "dns-autoscaler": "missing",
        "metrics-server": "missing",
        "traefik": "no pods scheduled",
        "calico-node": "ready",
        "calico-kube-controllers": "missing",
    }
    assert "add-on coredns: not ready (1/2 ready)" in got["problems"]


# Certificates and text ---------------------------------------------------------------------


def test_certificates_keep_the_soonest_first_order_and_due_ones_are_a_problem() -> None:
    certs = certificates(
        cert("node10", "/pki/ca.crt", 3000, ca=True),
        cert("node2", "/pki/apiserver.crt", 20),
        cert("node1", "/pki/kubelet.crt", 200),
        cert("node2", "/pki/front-proxy-client.crt", 5),
        errors=[{"host": "node3", "file": "/pki/x.crt", "part": "", "error": "no PEM"}],
    )
    got = report(certs=certs)
    assert [(c["host"], c["days_left"]) for c in got["certificates"]] == [
        ("node2", 5),
        ("node2", 20),
        ("node1", 200),
        ("node10", 3000),
    ]
    assert got["certificate_errors"] == certs["errors"]
    assert (
        "certificates: 2 leaf certificate(s) expire within certificates_renew_before_days (30): "
        "soonest node2 /pki/front-proxy-client.crt (5 day(s) left)"
    ) in got["problems"]
    assert "certificates: 1 file(s) could not be read" in got["problems"]
    lines = ci.kubeforge_cluster_info_text(got, kc.kubeforge_cert_table(got["certificates"][:2]), 2)
    at = lines.index("Certificates, the soonest to expire first (2 of 4):")
    assert lines[at + 2].split()[:2] == ["node2", "/pki/front-proxy-client.crt"]
    assert lines[at + 3].split()[:2] == ["node2", "/pki/apiserver.crt"]
    assert lines[at + 4] == "Add-ons:"


def test_hosts_are_in_natural_order() -> None:
    hosts = [host(n, WORKER) for n in ("node10", "node2", "node1")]
    got = report(hosts, api=api_read([node(n) for n in ("node10", "node2", "node1")]))
    assert [h["host"] for h in got["hosts"]] == ["node1", "node2", "node10"]
    assert [n["name"] for n in got["nodes"]] == ["node1", "node2", "node10"]


def test_text_tables() -> None:
    old = host("node4", WORKER, probe(WORKER, kube="1.36.3"))
    nodes = [node(n, "1.36.3" if n == "node4" else "1.37.2") for n in NAMES]
    got = report(cluster(node4=old, node5=unreachable("node5", WORKER)), api=api_read(nodes))
    lines = ci.kubeforge_cluster_info_text(got, kc.kubeforge_cert_table(got["certificates"]))
    assert lines[0] == "Cluster cluster.local: 5 host(s), 4 read, 1 unreachable; 2 problem(s)"
    assert lines[1:4] == [
        "Problems (2):",
        "  node5: unreachable at 10.213.0.99: Failed to connect to the host via ssh: ssh: connect "
        "to host 10.213.0.99 port 22: No route to host",
        "  versions: 2 difference(s), listed under Versions",
    ]
    block = lines[lines.index("Hosts:") + 1 : lines.index("Versions (* differs):")]
    assert block == [
        "  HOST   ROLES               ADDRESS      REACHED      SERVICES  API ENDPOINT",
        "  node1  control-plane,etcd  10.0.0.1     yes          7 active  ok",
        "  node2  control-plane,etcd  10.0.0.2     yes          7 active  ok",
        "  node3  control-plane,etcd  10.0.0.3     yes          7 active  ok",
        "  node4  node                10.0.0.4     yes          3 active  ok",
        "  node5  node                10.213.0.99  UNREACHABLE  -         -",
    ]
    versions = lines[lines.index("Versions (* differs):") + 1 : lines.index("Nodes:")]
    assert versions[:4] == [
        "  COMPONENT           PINNED  VERSION   HOSTS",
        "  kubelet             1.37.2  1.37.2    node1 node2 node3 (3)",
        "  kubelet             1.37.2  1.36.3 *  node4 (1)",
        "  kube-proxy          1.37.2  1.37.2    node1 node2 node3 (3)",
    ]
    assert versions[-2:] == [
        "  * node4: kubelet 1.36.3: the inventory pins 1.37.2; 3 other host(s) have 1.37.2",
        "  * node4: kube-proxy 1.36.3: the inventory pins 1.37.2; 3 other host(s) have 1.37.2",
    ]
    etcd = lines[lines.index("etcd:") + 1 : lines.index("etcd:") + 4]
    assert etcd == [
        "  read from node1",
        "  MEMBER  HOST   ENDPOINT               HEALTH   LEADER  DB SIZE  VERSION",
        "  node1   node1  https://10.0.0.1:2379  healthy  leader  5.0 MiB  3.6.8",
    ]
    assert (
        "  apiserver_ha_mode local_lb (a haproxy load balancer on every node); the nodes use "
        "https://127.0.0.1:6443" in lines
    )
    assert lines[-3:] == [
        "  traefik                  traefik      daemonset   1/1    ready",
        "  calico-node              kube-system  daemonset   5/5    ready",
        "  calico-kube-controllers  kube-system  deployment  1/1    ready",
    ]


def test_pick_prefers_a_host_whose_service_answers() -> None:
    hosts = cluster(
        node1=unreachable("node1", CP),
        node2=host("node2", CP, probe(CP, down=("etcd",), apiserver="refused")),
    )
    assert ci.kubeforge_cluster_info_pick(hosts, "etcd", "etcd") == "node3"
    assert ci.kubeforge_cluster_info_pick(hosts, "kube_control_plane", "apiserver") == "node3"
    only = [hosts[1]]
    assert ci.kubeforge_cluster_info_pick(only, "etcd", "etcd") == "node2", "any that answers"
    assert ci.kubeforge_cluster_info_pick([hosts[0]], "etcd", "etcd") == ""


# The filter's tables follow the roles ----------------------------------------------------


def _yaml(path: str) -> Any:
    return yaml.safe_load((REPO / path).read_text())


def test_components_follow_the_download_manifest() -> None:
    defaults = _yaml("roles/download/defaults/main.yml")
    groups: dict[str, list[str]] = {}
    versions: dict[str, str] = {}
    kube = re.findall(r"\('([a-z-]+)', \['(\w+)'\]\)", defaults["download_kube_server_files"])
    assert len(kube) == 6, defaults["download_kube_server_files"]
    for name, group in kube:
        groups[name], versions[name] = [group], "kube_version"
    for key in (
        "download_other_files",
        "download_helm_files",
        "download_gateway_api_files",
        "download_calico_files",
    ):
        for entry in defaults[key]:
            groups[entry["name"]] = entry["groups"]
            versions[entry["name"]] = re.sub(r"[{} ]", "", entry["version"])
    assert set(ci.COMPONENTS) == set(versions)
    assert {n: var for n, (_, var) in ci.COMPONENTS.items()} == versions
    expected: dict[str, set[str]] = {}
    for group, names in ci.EXPECTED_COMPONENTS.items():
        for name in names:
            expected.setdefault(name, set()).add(group)
    switched = {"helm", "gateway_api_crds", "calico_crds"}  # by add-on switches
    assert expected == {n: set(g) for n, g in groups.items() if n not in switched}


def test_add_ons_follow_the_roles_rollouts() -> None:
    addons = _yaml("roles/addons/vars/main.yml")["addons_units"]
    rollouts = {r for unit in addons for r in unit["rollouts"]}
    network = _yaml("roles/network_plugin/vars/main.yml")["network_plugin_rollouts"]
    rollouts |= {r for items in network.values() for r in items}
    namespaces = {
        "{{ local_path_provisioner_namespace }}": "local_path_provisioner_namespace",
        "{{ ingress_controller_namespace }}": "ingress_controller_namespace",
    }
    ours = {f"{ns}/{kind}/{obj}" for _, _, ns, kind, obj in ci.ADDONS}
    theirs = set()
    for r in rollouts:
        ns, rest = r.split("/", 1)
        theirs.add(f"{namespaces.get(ns, ns)}/{rest}")
    assert ours == theirs


@pytest.mark.parametrize(
    ("settings", "names"),
    [
        (
            SETTINGS,
            [
                "coredns",
                "dns-autoscaler",
                "metrics-server",
                "traefik",
                "calico-node",
                "calico-kube-controllers",
            ],
        ),
        (
            SETTINGS
            | {
                "dns_mode": "none",
                "kube_network_plugin": "flannel",
                "metrics_server_enabled": False,
                "local_path_provisioner_enabled": True,
                "ingress_controller_enabled": "false",
            },
            ["local-path-provisioner", "flannel"],
        ),
        (
            SETTINGS | {"addons_dns_autoscaler_enabled": False},
            ["coredns", "metrics-server", "traefik", "calico-node", "calico-kube-controllers"],
        ),
    ],
    ids=["lab", "flannel-no-dns", "no-autoscaler"],
)
def test_add_ons_expected_from_the_switches(settings: dict[str, Any], names: list[str]) -> None:
    got = ci.kubeforge_cluster_info_addons(settings)
    assert [a["name"] for a in got] == names
    if "local-path-provisioner" in names:
        assert got[0]["namespace"] == "local-path-storage"


def test_services_follow_the_roles() -> None:
    cp = _yaml("roles/control_plane/defaults/main.yml")
    node_vars = (REPO / "roles/node/vars/main.yml").read_text()
    units = {c["name"] for c in cp["control_plane_components"]}
    assert units == set(ci.EXPECTED_SERVICES["kube_control_plane"])
    for unit in ci.EXPECTED_SERVICES["k8s_cluster"]:
        if unit != "containerd":
            assert re.search(rf"^\s+- name: {unit}$", node_vars, re.M), unit


def _report_opening(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """cluster-info.yml on one host nothing answers at (port 1 of 127.0.0.1)."""
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "all:\n  hosts:\n    h1: {ansible_host: 127.0.0.1, ansible_port: 1}\n  children:\n"
        "    kube_control_plane: {hosts: {h1: {}}}\n    etcd: {hosts: {h1: {}}}\n"
        "    kube_node: {hosts: {h1: {}}}\n"
        "    k8s_cluster: {children: {kube_control_plane: {}, kube_node: {}}}\n"
    )
    return subprocess.run(
        ["ansible-playbook", "-i", str(inventory), "cluster-info.yml",
         "-e", f"artifacts_dir={tmp_path}", *extra],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_a_bad_certificates_shown_is_refused_before_any_host_is_read(tmp_path: Path) -> None:
    done = _report_opening(tmp_path, "-e", "cluster_info_certificates_shown=ten")
    assert done.returncode != 0
    assert "cluster_info_certificates_shown is ten" in done.stdout
    assert "Probe the host" not in done.stdout


@pytest.mark.parametrize("extra", [[], ["-e", "cluster_info_certificates_shown=0"]])
def test_the_certificates_shown_check_passes_unset_or_set(tmp_path: Path, extra: list[str]) -> None:
    """The check passes without -e too (its message once named an undefined variable)."""
    done = _report_opening(tmp_path, *extra)
    out = done.stdout
    check = out.split("Check cluster_info_certificates_shown", 1)[1].split("TASK [", 1)[0]
    assert re.search(r"^ok: \[h1", check, re.M), check
    assert "Probe the host" in out, out[-2000:]
