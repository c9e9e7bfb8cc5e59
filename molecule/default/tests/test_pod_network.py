"""Pods on different nodes reach each other, a Service and its NodePort answer,
and names resolve through CoreDNS: `kubernetes.default` and a Service the test
creates. The scenario deploys calico (create.yml): calico runs on every node and
NetworkPolicy is enforced."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import yaml
from clustercheck import Inventory, Kubectl, pod_manifest, run_ok, wait_for

PAGE = "kubeforge-verify web page"
PORT = 8080


@dataclass(frozen=True)
class Pods:
    namespace: str
    web_ip: str
    web_node: str
    client_node: str
    service_ip: str
    node_port: int


@pytest.fixture(scope="module")
def pods(
    inventory: Inventory, kubectl: Kubectl, namespace: str, busybox_image: str
) -> Iterator[Pods]:
    """A busybox httpd on one worker, two clients on another (labelled client
    and other), a NodePort Service in front of the httpd; all deleted with the
    module."""
    workers = [h.lower() for h in inventory.groups["kube_node"]]
    assert len(workers) >= 2, f"pod-to-pod across nodes needs two workers, not {workers}"
    web_node, client_node = workers[:2]
    web = pod_manifest("web", web_node, busybox_image,
                       f"mkdir -p /www && echo '{PAGE}' > /www/index.html"
                       f" && exec httpd -f -p {PORT} -h /www", {"app": "web"})  # fmt: skip
    client = pod_manifest(
        "client", client_node, busybox_image, "exec sleep 3600", {"app": "client"}
    )
    other = pod_manifest("other", client_node, busybox_image, "exec sleep 3600", {"app": "other"})
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {
            "type": "NodePort",
            "selector": {"app": "web"},
            "ports": [{"port": PORT, "targetPort": PORT}],
        },
    }
    ns = ["-n", namespace]
    kubectl("apply", *ns, "-f", "-", stdin=yaml.safe_dump_all([web, client, other, service]))
    try:
        kubectl("wait", *ns, "--for=condition=Ready", "pod/web", "pod/client", "pod/other",
                "--timeout=180s")  # fmt: skip
        web_ip = kubectl("get", *ns, "pod/web", "-o", "jsonpath={.status.podIP}").strip()
        service = kubectl.json("get", *ns, "service/web")
        yield Pods(
            namespace,
            web_ip,
            web_node,
            client_node,
            service["spec"]["clusterIP"],
            int(service["spec"]["ports"][0]["nodePort"]),
        )
    finally:
        # NetworkPolicies left by a failed check go with the namespace.
        kubectl("delete", *ns, "pod/web", "pod/client", "pod/other", "service/web",
                "--ignore-not-found", "--wait=true", "--timeout=120s")  # fmt: skip


def in_client(kubectl: Kubectl, pods: Pods, *command: str) -> str:
    return kubectl("exec", "-n", pods.namespace, "client", "--", *command)


def fetch(kubectl: Kubectl, pods: Pods, url: str) -> str:
    # busybox's own `wget -T` crashes in this build: bound it with `timeout`.
    return in_client(kubectl, pods, "timeout", "10", "wget", "-q", "-O", "-", url)


def answers(kubectl: Kubectl, pods: Pods, client: str, url: str) -> bool:
    """Whether pod `client` gets the web page from `url` within 5 s."""
    rc, out, _ = kubectl.try_run("exec", "-n", pods.namespace, client, "--",
                                 "timeout", "5", "wget", "-q", "-O", "-", url)  # fmt: skip
    return rc == 0 and out.strip() == PAGE


def test_pod_reaches_a_pod_on_another_node(kubectl: Kubectl, pods: Pods) -> None:
    assert pods.web_node != pods.client_node
    page = fetch(kubectl, pods, f"http://{pods.web_ip}:{PORT}/")
    assert page.strip() == PAGE, f"client on {pods.client_node} got {page!r} from {pods.web_ip}"


def cluster_dns(inventory: Inventory) -> tuple[str, str]:
    """(clusterDNS address, clusterDomain) from a worker's kubelet configuration."""
    host = inventory.host(inventory.groups["k8s_cluster"][-1])
    config = yaml.safe_load(
        run_ok(host, "cat /etc/kubernetes/kubelet-config.yaml", "kubelet configuration")
    )
    return str(config["clusterDNS"][0]), str(config["clusterDomain"])


def lookup(kubectl: Kubectl, pods: Pods, name: str, dns: str) -> list[str]:
    """Addresses busybox nslookup gives for `name`, asserting CoreDNS answered.
    (busybox nslookup does not apply resolv.conf's search list: give full names.)"""
    out = in_client(kubectl, pods, "nslookup", name)
    assert re.search(rf"^Server:\s+{re.escape(dns)}\b", out, re.M), (
        f"nslookup {name} was not answered by the cluster DNS {dns}:\n{out}"
    )
    answer = out.split("Name:", 1)[1] if "Name:" in out else ""
    return re.findall(r"^Address(?: \d+)?:\s+(\S+)", answer, re.M)


def test_kubernetes_default_and_a_service_resolve_through_coredns(
    inventory: Inventory, kubectl: Kubectl, pods: Pods
) -> None:
    dns, domain = cluster_dns(inventory)
    dns_service = kubectl("get", "-n", "kube-system", "service/kube-dns",
                          "-o", "jsonpath={.spec.clusterIP}").strip()  # fmt: skip
    assert dns_service == dns, f"kube-dns service is {dns_service}, kubelets use {dns}"
    resolv = in_client(kubectl, pods, "cat", "/etc/resolv.conf").split("\n")
    assert f"nameserver {dns}" in resolv, f"the pod's resolv.conf: {resolv}"
    search = f"search {pods.namespace}.svc.{domain} svc.{domain} {domain}"
    assert any(line.startswith(search) for line in resolv), f"the pod's resolv.conf: {resolv}"

    kubernetes = kubectl("get", "-n", "default", "service/kubernetes",
                         "-o", "jsonpath={.spec.clusterIP}").strip()  # fmt: skip
    assert lookup(kubectl, pods, f"kubernetes.default.svc.{domain}", dns) == [kubernetes]
    assert lookup(kubectl, pods, f"web.{pods.namespace}.svc.{domain}", dns) == [pods.service_ip]

    # Short names through the pod's resolver and its search list, as programs
    # resolve them: busybox ping prints the address (a Service IP answers no ping).
    out = in_client(kubectl, pods, "sh", "-c", "ping -c 1 -W 1 kubernetes.default; true")
    assert f"PING kubernetes.default ({kubernetes})" in out, out
    # And the Service's name leads to the pod behind it (kube-proxy).
    assert fetch(kubectl, pods, f"http://web:{PORT}/").strip() == PAGE


def test_calico_runs_ready_on_every_node(inventory: Inventory, kubectl: Kubectl) -> None:
    nodes = {h.lower() for h in inventory.groups["k8s_cluster"]}
    ds = kubectl.json("get", "-n", "kube-system", "daemonset", "calico-node")
    status = ds["status"]
    assert status.get("numberReady") == len(nodes) == status.get("desiredNumberScheduled"), (
        f"calico-node ready on {status.get('numberReady')} of {len(nodes)} nodes: {status}"
    )
    pods = kubectl.json("get", "-n", "kube-system", "pods", "-l", "k8s-app=calico-node")["items"]
    on = {p["spec"]["nodeName"] for p in pods if p["status"].get("phase") == "Running"}
    assert on == nodes, f"calico-node runs on {sorted(on)}, the nodes are {sorted(nodes)}"
    deploy = kubectl.json("get", "-n", "kube-system", "deployment", "calico-kube-controllers")
    assert deploy["status"].get("readyReplicas") == 1, f"kube-controllers: {deploy['status']}"


def test_a_nodeport_answers_on_another_node(
    inventory: Inventory, kubectl: Kubectl, pods: Pods
) -> None:
    node = next(h for h in inventory.groups["kube_control_plane"] if h.lower() != pods.web_node)
    url = f"http://{inventory.address(node)}:{pods.node_port}/"
    assert fetch(kubectl, pods, url).strip() == PAGE, f"NodePort {url} did not serve the page"


def test_network_policy_is_enforced(kubectl: Kubectl, pods: Pods) -> None:
    """Default-deny ingress blocks a cross-node request that worked, an allow
    rule for one label admits that client only, deleting both restores access."""
    url = f"http://{pods.web_ip}:{PORT}/"
    ns = ["-n", pods.namespace]

    def reach() -> dict[str, bool]:
        return {c: answers(kubectl, pods, c, url) for c in ("client", "other")}

    def expect(what: str, wanted: dict[str, bool]) -> None:
        def probe() -> str | None:
            found = reach()
            return None if found == wanted else f"reached: {found}, wanted {wanted}"

        wait_for(what, probe, 90, every=2)

    expect("both clients reach the web pod before any policy", {"client": True, "other": True})
    deny = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "default-deny-ingress"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    }
    kubectl("apply", *ns, "-f", "-", stdin=yaml.safe_dump(deny))
    expect("default-deny ingress blocks both clients", {"client": False, "other": False})
    allow = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "web-from-client"},
        "spec": {
            "podSelector": {"matchLabels": {"app": "web"}},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [{"podSelector": {"matchLabels": {"app": "client"}}}],
                    "ports": [{"port": PORT}],
                }
            ],
        },
    }
    kubectl("apply", *ns, "-f", "-", stdin=yaml.safe_dump(allow))
    expect("the allow rule admits app=client only", {"client": True, "other": False})
    kubectl("delete", *ns, "networkpolicy", "default-deny-ingress", "web-from-client")
    expect("deleting the policies restores access", {"client": True, "other": True})
