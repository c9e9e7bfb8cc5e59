"""Runs last in the `scale` scenario (file order), on the grown cluster: every
add-on switched off is removed by the next `cluster.yml` (run with `--limit` the
first control-plane host, which applies the add-ons), a second such run changes
nothing, and switched on again they come back. An object of the same kind that
kubeforge did not apply (a StorageClass made here by hand) is left alone."""

from __future__ import annotations

import json

import pytest
from clustercheck import Inventory, Kubectl
from runbook import run

OFF = {
    "helm_enabled": False,
    "metrics_server_enabled": False,
    "local_path_provisioner_enabled": False,
    "ingress_controller_enabled": False,
    "gateway_api_enabled": False,
}
FOREIGN_CLASS = "kubeforge-test-by-hand"
# kind/name (namespace or "") of what the add-ons put in the cluster.
ADDON_OBJECTS = [
    ("deployment/metrics-server", "kube-system"),
    ("apiservice/v1beta1.metrics.k8s.io", ""),
    ("namespace/local-path-storage", ""),
    ("storageclass/local-path", ""),
    ("namespace/traefik", ""),
    ("ingressclass/traefik", ""),
    ("clusterrole/kubeforge:traefik", ""),
    ("crd/gateways.gateway.networking.k8s.io", ""),
    ("crd/httproutes.gateway.networking.k8s.io", ""),
]


def present(kubectl: Kubectl) -> list[str]:
    found = []
    for ref, namespace in ADDON_OBJECTS:
        args = ["get", ref, "--ignore-not-found", "-o", "name"]
        if namespace:
            args += ["-n", namespace]
        rc, out, err = kubectl.try_run(*args)
        assert rc == 0 or "the server doesn't have a resource type" in err, err
        if out.strip():
            found.append(ref)
    return found


def cluster_yml(inventory: Inventory, name: str, *extra: str) -> dict[str, int]:
    first = inventory.groups["kube_control_plane"][0]
    done = run(name, ["-i", str(inventory.path), "cluster.yml", "--limit", first, *extra])
    assert done["rc"] == 0, f"{name}: cluster.yml --limit {first} failed: see {name}.log"
    assert set(done["recap"]) == {first}, f"{name} ran on {done['recap']}"
    return dict(done["recap"][first])


@pytest.mark.full("the add-ons switched off and on again: three cluster.yml runs (about 5 min)")
def test_addons_switched_off_go_and_come_back(inventory: Inventory, kubectl: Kubectl) -> None:
    first = inventory.host(inventory.groups["kube_control_plane"][0])
    assert present(kubectl) == [ref for ref, _ in ADDON_OBJECTS], "the add-ons are not all there"
    assert first.file("/usr/local/bin/helm").exists
    kubectl("create", "-f", "-", stdin=json.dumps({
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": FOREIGN_CLASS}, "provisioner": "rancher.io/local-path",
    }))  # fmt: skip
    try:
        off = cluster_yml(inventory, "addons-off", "-e", json.dumps(OFF))
        assert off["changed"] > 0, off
        assert present(kubectl) == [], "switched-off add-ons left objects behind"
        assert not first.file("/usr/local/bin/helm").exists, "helm_enabled false left helm"
        left = first.run("ls /etc/kubernetes/addons").stdout.split()
        assert not {"metrics-server.yaml", "traefik.yaml", "gateway-api-crds.yaml"} & set(left)
        assert kubectl("get", "storageclass", FOREIGN_CLASS, "-o", "name").strip(), (
            "a StorageClass kubeforge did not apply was deleted"
        )
        again = cluster_yml(inventory, "addons-off-again", "-e", json.dumps(OFF))
        assert again["changed"] == 0, f"a second run with the add-ons off changed {again}"
    finally:
        kubectl("delete", "storageclass", FOREIGN_CLASS, "--ignore-not-found")
        # The inventory's settings again: every add-on on, waited for by the run.
        back = cluster_yml(inventory, "addons-on")
    assert back["changed"] > 0, back
    assert present(kubectl) == [ref for ref, _ in ADDON_OBJECTS]
    assert first.file("/usr/local/bin/helm").exists
