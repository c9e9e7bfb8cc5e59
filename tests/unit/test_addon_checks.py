"""Preflight's add-on checks (plugins/filter/kubeforge_inventory.py check_addons)
and the choice of what a switched-off add-on deletes (kubeforge_addons.py)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEFAULTS = REPO / "roles" / "kubeforge_defaults" / "defaults" / "main"


def load(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, REPO / "plugins" / "filter" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


inv = load("kubeforge_inventory")
addons = load("kubeforge_addons")

HOSTS = ["cp1", "w1", "edge1"]
INGRESS = {"node-role.kubernetes.io/ingress": ""}


def settings(**over: Any) -> dict[str, Any]:
    """The shipped add-on defaults with every add-on on, served from a mirror."""
    merged: dict[str, Any] = {}
    for name in ("addons.yml", "downloads.yml"):
        merged.update(yaml.safe_load((DEFAULTS / name).read_text()))
    out = {k: merged.get(k) for k in inv.ADDON_SETTINGS}
    out.update(
        metrics_server_enabled=True,
        local_path_provisioner_enabled=True,
        ingress_controller_enabled=True,
        gateway_api_enabled=True,
        ingress_nginx_enabled=None,
        gateway_api_crds_download_url="http://mirror.example/github.com/kubernetes-sigs/"
        "gateway-api/releases/download/v1.4.0/standard-install.yaml",
        gateway_api_crds_pinned=False,
    )
    out.update(over)
    return out


def hostvars(edge_labels: Any = INGRESS) -> dict[str, dict[str, Any]]:
    return {"cp1": {}, "w1": {"node_labels": {"zone": "a"}}, "edge1": {"node_labels": edge_labels}}


def check(**over: Any) -> list[str]:
    return list(inv.check_addons(settings(**over), HOSTS, hostvars()))


def test_shipped_defaults_with_every_addon_on_pass() -> None:
    assert check() == []


def test_shipped_switches_are_booleans_and_pass_off() -> None:
    merged = yaml.safe_load((DEFAULTS / "addons.yml").read_text())
    off = {k: False for k in inv.ADDON_SWITCHES}
    assert all(
        isinstance(merged[k], bool) for k in inv.ADDON_SWITCHES if k != "ingress_controller_enabled"
    )
    assert inv.check_addons(settings(**off), HOSTS, {h: {} for h in HOSTS}) == []


@pytest.mark.parametrize(
    ("over", "needle"),
    [
        ({"helm_enabled": "maybe"}, "helm_enabled 'maybe' is not a boolean"),
        ({"metrics_server_metric_resolution": "5s"}, "at least 10s"),
        ({"metrics_server_metric_resolution": "fast"}, "metrics_server_metric_resolution 'fast'"),
        ({"metrics_server_replicas": 0}, "metrics_server_replicas 0"),
        ({"metrics_server_kubelet_preferred_address_types": "InternalIP,Public"}, "'Public'"),
        ({"local_path_provisioner_namespace": "kube-system"}, "is Kubernetes' own"),
        ({"local_path_provisioner_namespace": "Local_Path"}, "is not a DNS label"),
        ({"local_path_provisioner_reclaim_policy": "Recycle"}, "'Recycle' is unknown"),
        ({"local_path_provisioner_claim_root": "data/volumes"}, "is not an absolute path"),
        ({"local_path_provisioner_claim_root": "/var/lib/"}, "is a system directory"),
        ({"ingress_controller_namespace": "default"}, "is Kubernetes' own"),
        ({"ingress_controller_http_port": 70000}, "ingress_controller_http_port 70000"),
        ({"ingress_controller_https_port": 80}, "are both 80"),
        ({"ingress_controller_node_selector": ["edge"]}, "must be a dict"),
        ({"ingress_controller_node_selector": {"bad key!": ""}}, "must be a dict"),
        ({"ingress_controller_node_selector": {"edge": "not a value"}}, "must be a dict"),
        (
            {"ingress_controller_tolerations": [{"key": "a", "tolerate": "yes"}]},
            "list of tolerations",
        ),
        ({"ingress_controller_class": "Traefik!"}, "is not a DNS subdomain"),
        ({"gateway_api_gatewayclass": ""}, "gateway_api_gatewayclass ''"),
    ],
)
def test_bad_settings_are_named(over: dict[str, Any], needle: str) -> None:
    found = check(**over)
    assert any(needle in e for e in found), found


def test_the_ingress_controller_needs_a_labelled_host() -> None:
    found = inv.check_addons(settings(), HOSTS, hostvars(edge_labels={"edge": "true"}))
    assert len(found) == 1 and "would run nowhere" in found[0], found
    assert "node-role.kubernetes.io/ingress=" in found[0]
    # An empty selector runs it on every node: nothing to find.
    assert inv.check_addons(settings(ingress_controller_node_selector={}), HOSTS, {}) == []


def test_a_selector_value_must_match() -> None:
    selector = {"edge": "true"}
    labelled = {"cp1": {}, "w1": {}, "edge1": {"node_labels": {"edge": True}}}
    assert (
        inv.check_addons(settings(ingress_controller_node_selector=selector), HOSTS, labelled) == []
    )
    other = {"cp1": {}, "w1": {}, "edge1": {"node_labels": {"edge": "false"}}}
    assert inv.check_addons(settings(ingress_controller_node_selector=selector), HOSTS, other)


def test_ingress_nginx_enabled_is_an_alias_not_a_conflict() -> None:
    assert check(ingress_nginx_enabled=True) == []
    found = check(ingress_nginx_enabled=True, ingress_controller_enabled=False)
    assert any(
        "ingress_nginx_enabled is true but ingress_controller_enabled is false" in e for e in found
    )
    assert any("'sure' is not a boolean" in e for e in check(ingress_nginx_enabled="sure"))


def test_gateway_crds_from_github_need_a_pinned_checksum() -> None:
    github = "https://github.com/kubernetes-sigs/gateway-api/releases/download/v1.4.0/standard-install.yaml"
    found = check(gateway_api_crds_download_url=github)
    assert any("pin its sha256 in kubeforge_checksums.gateway_api_crds" in e for e in found), found
    assert check(gateway_api_crds_download_url=github, gateway_api_crds_pinned=True) == []
    assert check(gateway_api_crds_download_url=github, gateway_api_enabled=False) == []


def test_switched_off_addons_are_not_checked() -> None:
    off = settings(
        metrics_server_enabled=False,
        local_path_provisioner_enabled=False,
        ingress_controller_enabled=False,
        metrics_server_metric_resolution="1s",
        local_path_provisioner_claim_root="/",
        ingress_controller_http_port="x",
    )
    assert inv.check_addons(off, HOSTS, {h: {} for h in HOSTS}) == []


# What a switched-off add-on deletes


def obj(kind: str, name: str, managers: list[str], namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "managedFields": [{"manager": m} for m in managers]}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": "v1", "kind": kind, "metadata": meta}


def test_only_what_kubeforge_applied_is_deleted() -> None:
    listing = {
        "kind": "List",
        "items": [
            obj("ServiceAccount", "metrics-server", ["kubeforge"], "kube-system"),
            obj("Deployment", "metrics-server", ["helm", "kube-controller-manager"], "kube-system"),
            obj("Namespace", "traefik", ["kubeforge"]),
            obj("Namespace", "kube-system", ["kubeforge"]),
        ],
    }
    owned = addons.kubeforge_owned_objects(json.dumps(listing), "kubeforge")
    assert owned["kind"] == "List"
    assert [(o["kind"], o["metadata"]) for o in owned["items"]] == [
        ("ServiceAccount", {"name": "metrics-server", "namespace": "kube-system"}),
        ("Namespace", {"name": "traefik"}),
    ]


@pytest.mark.parametrize("listing", ["", "   ", {}, {"kind": "List", "items": []}, []])
def test_nothing_left_means_nothing_to_delete(listing: Any) -> None:
    assert addons.kubeforge_owned_objects(listing, "kubeforge")["items"] == []


def test_a_single_object_and_a_plain_list_are_read() -> None:
    one = obj("StorageClass", "local-path", ["kubeforge"])
    assert len(addons.kubeforge_owned_objects(one, "kubeforge")["items"]) == 1
    assert len(addons.kubeforge_owned_objects([one, obj("X", "y", [])], "kubeforge")["items"]) == 1
