"""The add-ons the lab inventory switches on (inventory/lab/group_vars/all/addons.yml):
Traefik on the ingress node only, serving an Ingress and an HTTPRoute from this
machine to a backend on another node; `kubectl top` through metrics-server,
which verifies the kubelets' certificates; a volume of the default
StorageClass that outlives its pod; helm on a control-plane host."""

from __future__ import annotations

import http.client
import json
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from clustercheck import Inventory, Kubectl, run_ok, wait_for
from testinfra.utils.ansible_runner import AnsibleRunner  # type: ignore[import-untyped]

INGRESS_LABEL = "node-role.kubernetes.io/ingress"
PAGE = "kubeforge-verify ingress backend"
PORT = 8080
INGRESS_HOST = "ingress.kubeforge.test"
ROUTE_HOST = "route.kubeforge.test"


def host_vars(inventory: Inventory, host: str) -> dict[str, Any]:
    return dict(AnsibleRunner.get_runner(str(inventory.path)).get_variables(host))


def ingress_hosts(inventory: Inventory) -> list[str]:
    """The k8s_cluster hosts whose node_labels put them in the ingress role."""
    return [
        h for h in inventory.groups["k8s_cluster"]
        if INGRESS_LABEL in (host_vars(inventory, h).get("node_labels") or {})
    ]  # fmt: skip


def get(address: str, host_header: str, port: int = 80) -> tuple[int, str]:
    """An HTTP GET from this machine to address:port with a Host header."""
    conn = http.client.HTTPConnection(address, port, timeout=5)
    try:
        conn.request("GET", "/", headers={"Host": host_header})
        reply = conn.getresponse()
        return reply.status, reply.read().decode(errors="replace")
    finally:
        conn.close()


@dataclass(frozen=True)
class Backend:
    namespace: str
    node: str
    ingress_address: str


@pytest.fixture(scope="module")
def backend(
    inventory: Inventory, kubectl: Kubectl, namespace: str, busybox_image: str
) -> Iterator[Backend]:
    """A busybox httpd on a worker that is not an ingress node, its Service, an
    Ingress and (Gateway API) a Gateway with an HTTPRoute in front of it."""
    edges = ingress_hosts(inventory)
    assert edges, "the lab inventory puts no host in the ingress role (node_labels)"
    others = [h for h in inventory.groups["kube_node"] if h not in edges]
    assert others, f"a backend on another node needs a worker besides {edges}"
    node = others[0].lower()
    ns = ["-n", namespace]
    gateway_port = int(host_vars(inventory, edges[0]).get("ingress_controller_http_port", 80))
    objects: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "backend", "labels": {"app": "backend"}},
            "spec": {
                "nodeName": node,
                "terminationGracePeriodSeconds": 1,
                "containers": [{
                    "name": "httpd",
                    "image": busybox_image,
                    "command": ["sh", "-c", f"mkdir -p /www && echo '{PAGE}' > /www/index.html"
                                f" && exec httpd -f -p {PORT} -h /www"],
                }],
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "backend"},
            "spec": {"selector": {"app": "backend"}, "ports": [{"port": PORT, "targetPort": PORT}]},
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": "backend"},
            "spec": {"rules": [{"host": INGRESS_HOST, "http": {"paths": [{
                "path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": "backend", "port": {"number": PORT}}},
            }]}}]},
        },
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "Gateway",
            "metadata": {"name": "web"},
            "spec": {
                "gatewayClassName": "traefik",
                "listeners": [{"name": "http", "protocol": "HTTP", "port": gateway_port}],
            },
        },
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": "backend"},
            "spec": {
                "parentRefs": [{"name": "web"}],
                "hostnames": [ROUTE_HOST],
                "rules": [{"backendRefs": [{"name": "backend", "port": PORT}]}],
            },
        },
    ]  # fmt: skip
    kubectl("apply", *ns, "-f", "-", stdin=yaml.safe_dump_all(objects))
    try:
        kubectl("wait", *ns, "--for=condition=Ready", "pod/backend", "--timeout=180s")
        yield Backend(namespace, node, inventory.address(edges[0]))
    finally:
        kubectl("delete", *ns, "httproute/backend", "gateway/web", "ingress/backend",
                "service/backend", "pod/backend", "--ignore-not-found", "--wait=true",
                "--timeout=120s")  # fmt: skip


def test_ingress_controller_runs_only_on_the_ingress_nodes(
    inventory: Inventory, kubectl: Kubectl
) -> None:
    edges = {h.lower() for h in ingress_hosts(inventory)}
    assert edges, "the lab inventory puts no host in the ingress role (node_labels)"
    namespace = host_vars(inventory, inventory.groups["kube_control_plane"][0]).get(
        "ingress_controller_namespace", "traefik"
    )
    pods = kubectl.json("get", "-n", namespace, "pods", "-l", "app.kubernetes.io/name=traefik")
    running = {
        p["spec"]["nodeName"] for p in pods["items"]
        if p["status"].get("phase") == "Running"
        and all(c.get("ready") for c in p["status"].get("containerStatuses", []))
    }  # fmt: skip
    placed = sorted(p["spec"].get("nodeName", "?") for p in pods["items"])
    assert running == edges, (
        f"Traefik runs ready on {sorted(running)} (pods on {placed}), not {sorted(edges)}"
    )
    assert len(placed) == len(edges), (
        f"Traefik pods are on {placed}, the ingress nodes {sorted(edges)}"
    )


def _serves(address: str, host_header: str, port: int = 80) -> str | None:
    try:
        status, body = get(address, host_header, port)
    except OSError as exc:
        return f"{exc}"
    return None if status == 200 and body.strip() == PAGE else f"HTTP {status}: {body[:200]!r}"


def test_an_ingress_reaches_a_backend_on_another_node(backend: Backend) -> None:
    what = f"http://{backend.ingress_address}/ with Host {INGRESS_HOST} to reach {backend.node}"
    wait_for(what, lambda: _serves(backend.ingress_address, INGRESS_HOST), 90)


def test_an_httproute_reaches_the_backend_through_a_gateway(
    kubectl: Kubectl, backend: Backend
) -> None:
    def accepted() -> str | None:
        gw = kubectl.json("get", "-n", backend.namespace, "gateway/web")
        conditions = {c["type"]: c["status"] for c in gw.get("status", {}).get("conditions", [])}
        return None if conditions.get("Accepted") == "True" else f"Gateway conditions {conditions}"

    wait_for("Traefik to accept the Gateway", accepted, 60)
    what = f"http://{backend.ingress_address}/ with Host {ROUTE_HOST} to reach {backend.node}"
    wait_for(what, lambda: _serves(backend.ingress_address, ROUTE_HOST), 90)
    route = kubectl.json("get", "-n", backend.namespace, "httproute/backend")
    parents = route.get("status", {}).get("parents", [])
    assert parents and parents[0].get("controllerName") == "traefik.io/gateway-controller", parents


def test_kubectl_top_lists_every_node_with_values(inventory: Inventory, kubectl: Kubectl) -> None:
    nodes = {h.lower() for h in inventory.groups["k8s_cluster"]}
    seen: dict[str, list[str]] = {}

    def listed() -> str | None:
        rc, out, err = kubectl.try_run("top", "nodes", "--no-headers")
        if rc != 0:
            return err.strip() or out.strip()
        seen.clear()
        for line in out.splitlines():
            fields = line.split()
            if (
                len(fields) >= 5
                and fields[1].endswith("m")
                and fields[3].endswith(("Mi", "Ki", "Gi"))
            ):
                seen[fields[0]] = fields[1:]
        missing = nodes - set(seen)
        return None if not missing else f"no values for {sorted(missing)}:\n{out}"

    wait_for("kubectl top nodes to list every node", listed, 150, every=5)
    rc, out, err = kubectl.try_run("top", "pods", "-n", "kube-system", "--no-headers")
    assert rc == 0 and "coredns" in out, f"kubectl top pods: {err or out}"


def test_metrics_server_verifies_the_kubelets_certificates(kubectl: Kubectl) -> None:
    deploy = kubectl.json("get", "-n", "kube-system", "deployment/metrics-server")
    args = deploy["spec"]["template"]["spec"]["containers"][0].get("args", [])
    assert not any(a.startswith("--kubelet-insecure-tls") for a in args), args
    assert any(a.startswith("--kubelet-certificate-authority=") for a in args), args
    service = kubectl.json("get", "apiservice/v1beta1.metrics.k8s.io")
    assert not service["spec"].get("insecureSkipTLSVerify"), service["spec"]
    assert service["spec"].get("caBundle"), "the metrics APIService has no caBundle"


def test_a_volume_of_the_default_storageclass_outlives_its_pod(
    kubectl: Kubectl, namespace: str, busybox_image: str
) -> None:
    classes = kubectl.json("get", "storageclass")["items"]
    default = [
        c["metadata"]["name"] for c in classes
        if c["metadata"].get("annotations", {}).get("storageclass.kubernetes.io/is-default-class")
        == "true"
    ]  # fmt: skip
    assert len(default) == 1, f"default StorageClasses: {default}"
    ns = ["-n", namespace]
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "16Mi"}}},
    }

    def writer(script: str) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "volume"},
            "spec": {
                "terminationGracePeriodSeconds": 1,
                "containers": [{"name": "c", "image": busybox_image,
                                "command": ["sh", "-c", script],
                                "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
            },
        }  # fmt: skip

    kubectl("apply", *ns, "-f", "-", stdin=yaml.safe_dump_all(
        [claim, writer("echo kept > /data/file && exec sleep 3600")]))  # fmt: skip
    try:
        kubectl("wait", *ns, "--for=condition=Ready", "pod/volume", "--timeout=180s")
        pvc = kubectl.json("get", *ns, "pvc/data")
        assert pvc["status"].get("phase") == "Bound", pvc["status"]
        assert pvc["spec"].get("storageClassName") == default[0], pvc["spec"]
        first = kubectl("get", *ns, "pod/volume", "-o", "jsonpath={.spec.nodeName}").strip()
        kubectl("delete", *ns, "pod/volume", "--wait=true", "--timeout=120s")
        kubectl("apply", *ns, "-f", "-", stdin=json.dumps(writer("exec sleep 3600")))
        kubectl("wait", *ns, "--for=condition=Ready", "pod/volume", "--timeout=180s")
        again = kubectl("get", *ns, "pod/volume", "-o", "jsonpath={.spec.nodeName}").strip()
        content = kubectl("exec", *ns, "volume", "--", "cat", "/data/file").strip()
        assert content == "kept", (
            f"the file on the volume reads {content!r} (node {first} -> {again})"
        )
    finally:
        kubectl("delete", *ns, "pod/volume", "pvc/data", "--ignore-not-found", "--wait=true",
                "--timeout=120s")  # fmt: skip


CHART = {
    "Chart.yaml": "apiVersion: v2\nname: kubeforge-verify\nversion: 0.1.0\n",
    "templates/configmap.yaml": (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-settings\n"
        "data:\n  greeting: {{ .Values.greeting | quote }}\n"
    ),
    "values.yaml": "greeting: hello\n",
}


def test_helm_lists_releases_and_installs_a_local_chart(
    inventory: Inventory, kubectl: Kubectl, namespace: str
) -> None:
    host = inventory.host(inventory.groups["kube_control_plane"][0])
    # root's own kubeconfig (/root/.kube/config), no KUBECONFIG: as an operator would.
    run_ok(host, "helm version --short", "helm version")
    run_ok(host, "helm list --all-namespaces", "helm list")
    chart = "/tmp/kubeforge-verify-chart"
    files = " && ".join(
        f"mkdir -p {shlex.quote(chart)}/$(dirname {shlex.quote(name)})"
        f" && printf '%s' {shlex.quote(text)} > {shlex.quote(chart + '/' + name)}"
        for name, text in CHART.items()
    )
    run_ok(host, f"rm -rf {chart} && {files}", "write the chart")
    try:
        run_ok(host, f"helm install verify {chart} -n {namespace} --set greeting=hi --wait",
               "helm install")  # fmt: skip
        listed = json.loads(run_ok(host, f"helm list -n {namespace} -o json", "helm list"))
        assert [(r["name"], r["status"]) for r in listed] == [("verify", "deployed")], listed
        greeting = kubectl("get", "-n", namespace, "configmap/verify-settings",
                           "-o", "jsonpath={.data.greeting}")  # fmt: skip
        assert greeting == "hi"
    finally:
        host.run(f"helm uninstall verify -n {namespace}; rm -rf {chart}")
