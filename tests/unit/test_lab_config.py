"""The lab's fixed facts, its generated files and its mirror layout."""

from __future__ import annotations

import hashlib
import ipaddress
from pathlib import Path

import artifacts
import lab
import labconfig as cfg
import pytest
import yaml


def test_lab_group_vars_point_at_the_lab_mirror_and_registry() -> None:
    lv = cfg.lab_group_vars()
    assert lv["files_repo"] == cfg.mirror_url()
    for prefix in cfg.REGISTRY_PREFIXES:
        assert lv[prefix] == cfg.registry_addr(), prefix


def test_node_addresses_are_inside_the_lab_subnet_and_clear_of_services() -> None:
    ips = [cfg.node_ip(i) for i in range(1, cfg.MAX_NODES + 1)]
    assert len(set(ips)) == cfg.MAX_NODES
    for ip in [*ips, cfg.MIRROR_IP, cfg.REGISTRY_IP, cfg.GATEWAY]:
        assert ipaddress.ip_address(ip) in cfg.SUBNET
    assert not {cfg.MIRROR_IP, cfg.REGISTRY_IP, cfg.GATEWAY} & set(ips)


def test_lab_builds_the_default_kubernetes_and_the_minor_before_it() -> None:
    v = cfg.versions()
    defaults = cfg.load_defaults()
    assert v.kube[0] == defaults["kube_version"]
    major, minor = (int(x) for x in v.kube[0].split(".")[:2])
    assert v.kube[1].startswith(f"{major}.{minor - 1}.")


def test_every_default_image_is_in_the_lab_registry_after_lab_overrides() -> None:
    refs = cfg.default_images(cfg.lab_group_vars())
    assert refs, "the collection's defaults name no image"
    assert all(r.startswith(cfg.registry_addr() + "/") for r in refs), refs
    assert any("/pause:" in r for r in refs)


def test_render_resolves_chained_references_and_detects_loops() -> None:
    out = cfg.render({"a": "x", "b": "{{ a }}/y", "c": "{{ b }}:z"})
    assert out["c"] == "x/y:z"
    with pytest.raises(ValueError):
        cfg.render({"a": "{{ b }}1", "b": "{{ a }}2"})


def test_mirror_paths_follow_the_upstream_release_sites() -> None:
    v = cfg.versions()
    paths = {m.path for m in artifacts.mirror_files(v)}
    assert f"dl.k8s.io/release/v{v.kube[0]}/bin/linux/amd64/kubelet" in paths
    assert f"dl.k8s.io/release/v{v.kube[1]}/bin/linux/amd64/kube-apiserver" in paths
    assert (
        f"github.com/etcd-io/etcd/releases/download/v{v.etcd}/etcd-v{v.etcd}-linux-amd64.tar.gz"
    ) in paths
    assert f"github.com/opencontainers/runc/releases/download/v{v.runc}/runc.amd64" in paths
    assert f"get.helm.sh/helm-v{v.helm}-linux-amd64.tar.gz" in paths


def test_tarballs_are_reproducible(tmp_path: Path) -> None:
    src = tmp_path / "bin"
    src.write_bytes(b"\x7fELF fake binary")
    one, two = tmp_path / "one.tgz", tmp_path / "two.tgz"
    artifacts._write_tarball(one, [("d/bin", src)])
    src.touch()  # a newer mtime must not change the archive
    artifacts._write_tarball(two, [("d/bin", src)])
    assert hashlib.sha256(one.read_bytes()).digest() == hashlib.sha256(two.read_bytes()).digest()


@pytest.mark.parametrize(
    ("nodes", "control", "workers"),
    [
        (1, ["node1"], []),
        (2, ["node1"], ["node2"]),
        (3, ["node1", "node2", "node3"], []),
        (5, ["node1", "node2", "node3"], ["node4", "node5"]),
    ],
)
def test_inventory_groups(
    nodes: int,
    control: list[str],
    workers: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cfg, "LAB_INVENTORY", tmp_path)
    path = lab.write_inventory(nodes, tmp_path / "key")
    inv = yaml.safe_load(path.read_text())["all"]
    assert len(inv["hosts"]) == nodes
    assert list(inv["children"]["kube_control_plane"]["hosts"] or {}) == control
    assert list(inv["children"]["etcd"]["hosts"] or {}) == control
    assert list(inv["children"]["kube_node"]["hosts"] or {}) == workers
    assert inv["hosts"]["node1"]["ansible_host"] == cfg.node_ip(1)


def test_lab_refuses_a_node_count_outside_one_to_twelve() -> None:
    with pytest.raises(SystemExit, match="between 1 and 12"):
        lab.up(0)
    with pytest.raises(SystemExit, match="between 1 and 12"):
        lab.up(13)


def test_up_removes_nodes_past_the_count_or_every_node_when_fresh() -> None:
    existing = [f"{cfg.NAME}-{n}" for n in ("mirror", "registry", "node1", "node2", "node6")]
    assert lab.nodes_to_remove(existing, 5, fresh=False) == [f"{cfg.NAME}-node6"]
    assert lab.nodes_to_remove(existing, 5, fresh=True) == [
        f"{cfg.NAME}-node1",
        f"{cfg.NAME}-node2",
        f"{cfg.NAME}-node6",
    ]


def test_up_command_line_passes_fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, bool]] = []
    monkeypatch.setattr(lab, "up", lambda nodes, fresh=False: calls.append((nodes, fresh)))
    lab.main(["up", "--nodes", "5", "--fresh"])
    lab.main(["up", "--nodes", "3"])
    assert calls == [(5, True), (3, False)]
