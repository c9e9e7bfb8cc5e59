"""cluster.yml straight after the reset (and the second reset of
test_a_reset.py): a healthy cluster again, all nodes Ready, a pod runs and
resolves the cluster's DNS names. Leaves the cluster deployed."""

from __future__ import annotations

import json
import os
import shlex
from typing import Any

import pytest
import runbook
from clustercheck import Inventory, Kubectl, wait_for

# Left out of `make test` (tests/lab/fullchecks.py): make test-full runs it.
pytestmark = pytest.mark.full("cluster.yml again on the reset hosts (about 5 min)")

DNS_SCRIPT = (
    "d=$(sed -n 's/^search [^ ]*[.]svc[.]\\([^ ]*\\).*/\\1/p' /etc/resolv.conf);"
    " nslookup kubernetes.default.svc.$d"
)


def test_cluster_yml_deploys_the_reset_hosts_again(inventory: Inventory) -> None:
    # E.g. "-e kube_version=1.36.3" when a later scenario upgrades what this one leaves.
    extra = shlex.split(os.environ.get("KUBEFORGE_RESET_REDEPLOY_ARGS", ""))
    run = runbook.run("redeploy", ["-i", str(inventory.path.resolve()), "cluster.yml", *extra])
    assert run["rc"] == 0, f"cluster.yml after reset failed (rc={run['rc']}), see redeploy.log"
    print(f"cluster.yml after reset took {run['seconds']:.0f}s")


def test_all_nodes_ready(inventory: Inventory, kubectl: Kubectl) -> None:
    wanted = set(inventory.groups["k8s_cluster"])

    def probe() -> str | None:
        nodes = kubectl.json("get", "nodes")["items"]
        ready = {
            n["metadata"]["name"]
            for n in nodes
            if any(
                c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"]
            )
        }
        return None if ready == wanted else f"Ready: {sorted(ready)}, wanted {sorted(wanted)}"

    wait_for("every node Ready after the redeploy", probe, 300)


def test_a_pod_runs_and_resolves_cluster_names(
    kubectl: Kubectl, namespace: str, busybox_image: str
) -> None:
    service_ip = kubectl("get", "service", "kubernetes", "-n", "default",
                         "-o", "jsonpath={.spec.clusterIP}").strip()  # fmt: skip
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "dns", "namespace": namespace},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{
                "name": "dns",
                "image": busybox_image,
                # busybox nslookup ignores the search list: the full name, with
                # the cluster domain taken from the pod's resolv.conf.
                "command": ["sh", "-c", DNS_SCRIPT],
            }],
        },
    }  # fmt: skip
    # No client-side validation: its OpenAPI download times out on a loaded machine.
    kubectl("apply", "--validate=false", "-f", "-", stdin=json.dumps(pod))

    def done() -> str | None:
        phase = kubectl("get", "pod", "dns", "-n", namespace, "-o", "jsonpath={.status.phase}")
        if phase == "Failed":
            logs = kubectl("logs", "dns", "-n", namespace)
            raise AssertionError(f"nslookup of the kubernetes service failed:\n{logs}")
        return None if phase == "Succeeded" else f"phase {phase or 'Pending'}"

    wait_for("a pod to run nslookup", done, 240)
    logs = kubectl("logs", "dns", "-n", namespace)
    assert service_ip in logs, f"kubernetes.default did not resolve to {service_ip}:\n{logs}"
    print(json.dumps({"pod": "dns", "resolved": service_ip}))
