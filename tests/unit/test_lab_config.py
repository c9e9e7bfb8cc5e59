"""The lab's fixed facts, its generated files and its mirror layout."""

from __future__ import annotations

import hashlib
import ipaddress
import tarfile
from pathlib import Path

import artifacts
import images
import lab
import labconfig as cfg
import pytest
import yaml
from ansible_render import host_vars


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


def test_the_lab_builds_and_pushes_every_image_the_defaults_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # calico/node's files come from the calico module, which this test need not fetch.
    monkeypatch.setattr(images, "calico_node_filesystem", lambda v: {})
    v = cfg.versions()
    pushed = {f"{cfg.registry_addr()}/{i.tag}": i for i in images.cluster_images(v)}
    assert all(i.push for i in pushed.values())
    missing = set(cfg.default_images(cfg.lab_group_vars())) - set(pushed)
    assert not missing, f"the lab builds no image for {sorted(missing)}"
    registry = cfg.registry_addr()
    for ref, directory in (
        (f"metrics-server/metrics-server:v{v.metrics_server}", "metrics-server"),
        (f"rancher/local-path-provisioner:v{v.local_path_provisioner}", "local-path-provisioner"),
        (f"library/traefik:v{v.traefik}", "traefik"),
        # local-path-provisioner's helper pods run the lab's busybox.
        ("library/busybox:1.35.0", "busybox"),
    ):
        assert pushed[f"{registry}/{ref}"].directory == directory


@pytest.mark.parametrize(("directory", "uid"), [("metrics-server", 65534), ("traefik", 65532)])
def test_images_run_as_their_numeric_non_root_user(directory: str, uid: int) -> None:
    # runAsNonRoot pods only start when the image names a numeric non-root user.
    dockerfile = (images.IMAGES / directory / "Dockerfile").read_text()
    users = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("USER ")]
    assert users == [f"{uid}:{uid}"]


def test_add_ons_build_at_the_collection_versions() -> None:
    v = cfg.versions()
    defaults = cfg.load_defaults()
    built = {b.component: b for b in artifacts.builds(v)}
    for component, key, binary in (
        ("metrics-server", "metrics_server_version", "metrics-server"),
        ("local-path-provisioner", "local_path_provisioner_version", "local-path-provisioner"),
        ("traefik", "traefik_version", "traefik"),
    ):
        assert built[component].version == defaults[key]
        assert built[component].binaries == (binary,)
        assert built[component].script.stat().st_mode & 0o111, f"{component}.sh is not executable"


def _crd(plural: str, kind: str, channel: str = "standard", bundle: str = "v9.9.9") -> str:
    return (
        "apiVersion: apiextensions.k8s.io/v1\n"
        "kind: CustomResourceDefinition\n"
        "metadata:\n"
        "  annotations:\n"
        f"    gateway.networking.k8s.io/bundle-version: {bundle}\n"
        f"    gateway.networking.k8s.io/channel: {channel}\n"
        f"  name: {plural}.gateway.networking.k8s.io\n"
        "spec:\n"
        "  group: gateway.networking.k8s.io\n"
        f"  names: {{kind: {kind}, plural: {plural}}}\n"
        "  versions:\n"
        "  - {name: v1, served: true, storage: true}\n"
    )


def test_gateway_api_install_yaml_is_assembled_as_upstream_releases_it(tmp_path: Path) -> None:
    (tmp_path / "hack" / "boilerplate").mkdir(parents=True)
    (tmp_path / "hack" / "boilerplate" / "boilerplate.sh.txt").write_text(
        "# Copyright YEAR The Kubernetes Authors.\n\n"
    )
    for channel in ("standard", "experimental"):
        crds = tmp_path / "config" / "crd" / channel
        crds.mkdir(parents=True)
        (crds / "kustomization.yaml").write_text("resources: []\n")
        (crds / "gateway.networking.k8s.io_httproutes.yaml").write_text(
            _crd("httproutes", "HTTPRoute", channel)
        )
        (crds / "gateway.networking.k8s.io_gateways.yaml").write_text(
            _crd("gateways", "Gateway", channel)
        )
    members = artifacts.install_yaml_members(tmp_path, "standard")
    text = artifacts.assemble_install_yaml(members, "standard", "2025").decode()
    assert text == (
        "# Copyright 2025 The Kubernetes Authors.\n\n"
        "#\n# Gateway API Standard channel install\n#\n"
        "---\n#\n# config/crd/standard/gateway.networking.k8s.io_gateways.yaml\n#\n"
        + _crd("gateways", "Gateway")
        + "---\n#\n# config/crd/standard/gateway.networking.k8s.io_httproutes.yaml\n#\n"
        + _crd("httproutes", "HTTPRoute")
    )
    assert artifacts.check_crds(text, "v9.9.9", "standard") == [
        "gateways.gateway.networking.k8s.io",
        "httproutes.gateway.networking.k8s.io",
    ]


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        (_crd("gateways", "Gateway", channel="experimental"), "channel is 'experimental'"),
        (_crd("gateways", "Gateway", bundle="v1.3.0"), "bundle-version is 'v1.3.0'"),
        ("apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n", "kind is 'Namespace'"),
    ],
)
def test_install_yaml_check_refuses_anything_but_the_bundles_crds(
    document: str, problem: str
) -> None:
    text = _crd("httproutes", "HTTPRoute") + "---\n" + document
    with pytest.raises(SystemExit, match=problem):
        artifacts.check_crds(text, "v9.9.9", "standard")


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
    assert f"github.com/projectcalico/calico/archive/v{v.calico}.tar.gz" in paths
    assert (
        f"github.com/kubernetes-sigs/gateway-api/releases/download/v{v.gateway_api}/"
        "standard-install.yaml"
    ) in paths


def test_calico_builds_from_known_module_versions() -> None:
    v = cfg.versions()
    (calico,) = [b for b in artifacts.builds(v) if b.component == "calico"]
    assert v.calico in artifacts.CALICO_MODULE_VERSIONS, "add its pseudo-versions"
    assert dict(calico.env)["CALICO_MODULE_VERSION"] == artifacts.calico_module_version(v.calico)
    assert {"calico-node", "calico", "install", "kube-controllers", "check-status"} <= set(
        calico.binaries
    )
    (archive,) = [m for m in artifacts.mirror_files(v) if m.tree is not None]
    assert archive.tree is not None and archive.tree.prefix == f"calico-{v.calico}"


def test_tarballs_are_reproducible(tmp_path: Path) -> None:
    src = tmp_path / "bin"
    src.write_bytes(b"\x7fELF fake binary")
    one, two = tmp_path / "one.tgz", tmp_path / "two.tgz"
    artifacts._write_tarball(one, [("d/bin", src)])
    src.touch()  # a newer mtime must not change the archive
    artifacts._write_tarball(two, [("d/bin", src)])
    assert hashlib.sha256(one.read_bytes()).digest() == hashlib.sha256(two.read_bytes()).digest()


def test_source_archives_keep_scripts_executable_and_are_reproducible(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "run").write_bytes(b"#!/bin/sh\nexec true\n")
    (tree / "README.md").write_bytes(b"text\n")
    members = [(f"top-1.0/{name}", path) for name, path in artifacts.tree_files(tree)]
    assert [name for name, _ in members] == ["top-1.0/README.md", "top-1.0/sub/run"]
    one, two = tmp_path / "one.tgz", tmp_path / "two.tgz"
    artifacts._write_tarball(one, members, mode=artifacts.source_mode)
    (tree / "README.md").touch()
    artifacts._write_tarball(two, members, mode=artifacts.source_mode)
    assert one.read_bytes() == two.read_bytes()
    with tarfile.open(one) as tar:
        modes = {m.name: m.mode for m in tar.getmembers()}
    assert modes == {
        "top-1.0": 0o755,
        "top-1.0/README.md": 0o644,
        "top-1.0/sub": 0o755,
        "top-1.0/sub/run": 0o755,
    }


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


def test_up_command_line_passes_fresh_and_nodes_only(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, bool, dict[str, str] | None, bool]] = []
    monkeypatch.setattr(
        lab,
        "up",
        lambda nodes, fresh=False, variables=None, nodes_only=False: calls.append(
            (nodes, fresh, variables, nodes_only)
        ),
    )
    lab.main(["up", "--nodes", "5", "--fresh", "--var", "kube_network_plugin=calico"])
    lab.main(["up", "--nodes", "3"])
    lab.main(["up", "--nodes", "7", "--nodes-only"])
    assert calls == [
        (5, True, {"kube_network_plugin": "calico"}, False),
        (3, False, {}, False),
        (7, False, {}, True),
    ]


def test_a_nodes_only_build_builds_no_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    """make test's first step and preflight-test's lab: the node image, not the
    cluster's builds, images, registry or mirror."""
    done: list[str] = []
    for name in ("ensure_host_tools", "ensure_docker", "ensure_network", "ensure_isolation"):
        monkeypatch.setattr(lab, name, lambda name=name: done.append(name))
    monkeypatch.setattr(images, "ensure_debian_base", lambda report: done.append("base"))

    def ensure_image(image: images.Image, report: artifacts.Report) -> str:
        done.append(image.tag)
        return image.tag

    monkeypatch.setattr(images, "ensure_image", ensure_image)
    for name in ("ensure_all", "ensure_mirror", "ensure_builds"):
        monkeypatch.setattr(artifacts, name, lambda *a, **k: pytest.fail("a cluster build"))
    monkeypatch.setattr(lab, "ensure_registry", lambda report: pytest.fail("the registry"))
    lab.main(["build", "--nodes-only"])
    assert done[-1] == "kubeforge-lab/node:bookworm"
    assert set(done) == {
        "ensure_host_tools", "ensure_docker", "base", "ensure_network", "ensure_isolation",
        "kubeforge-lab/node:bookworm",
    }  # fmt: skip
    with pytest.raises(SystemExit):
        lab.main(["build", "--nodes-only", "--conformance"])


def test_layout_carries_the_variables(tmp_path: Path) -> None:
    key = tmp_path / "id_ed25519"
    path = lab.write_layout(
        tmp_path / "inv" / "hosts.yml", key, [1], [1], [2], {"kube_network_plugin": "calico"}
    )
    data = yaml.safe_load(path.read_text())
    for host in ("node1", "node2"):
        assert data["all"]["hosts"][host]["kube_network_plugin"] == "calico"
    assert data["all"]["children"]["kube_node"]["hosts"] == {"node2": None}


def test_a_layout_variable_wins_over_the_lab_group_vars(tmp_path: Path) -> None:
    """inventory/lab/group_vars/all sets ingress_controller_enabled: true;
    `--var ingress_controller_enabled=false` must still turn it off (it did
    not while the variables were the inventory's all.vars)."""
    lab_setting = yaml.safe_load((cfg.LAB_INVENTORY / "group_vars/all/addons.yml").read_text())
    assert lab_setting["ingress_controller_enabled"] is True
    path = lab.write_layout(
        tmp_path / "inv" / "hosts.yml", tmp_path / "key", [1], [1], [2],
        {"ingress_controller_enabled": "false"},
    )  # fmt: skip
    assert host_vars(path, "node2")["ingress_controller_enabled"] == "false"


def test_no_ingress_node_without_the_ingress_controller(tmp_path: Path) -> None:
    """The last worker is the ingress node (labelled, tainted) only when the
    ingress controller runs: a one-node cluster without it must take pods."""
    key = tmp_path / "key"
    off = {"ingress_controller_enabled": "false"}
    with_ingress = yaml.safe_load(
        lab.write_layout(tmp_path / "a" / "hosts.yml", key, [1], [1], [1]).read_text()
    )
    taints = with_ingress["all"]["hosts"]["node1"]["node_taints"]
    assert taints == lab.INGRESS_NODE_VARS["node_taints"]
    without = yaml.safe_load(
        lab.write_layout(tmp_path / "b" / "hosts.yml", key, [1], [1], [1], off).read_text()
    )
    assert "node_taints" not in without["all"]["hosts"]["node1"]
    assert "node_labels" not in without["all"]["hosts"]["node1"]


def test_a_variable_must_be_name_equals_value() -> None:
    with pytest.raises(SystemExit, match="--var 'calico' is not NAME=VALUE"):
        lab.main(["inventory", "x.yml", "--control-plane", "1", "--var", "calico"])


def test_the_cluster_ranges_are_kept_inside_the_lab(monkeypatch: pytest.MonkeyPatch) -> None:
    """Packets from the lab's bridge to the service or pod range that would
    leave through another interface are rejected; the bridge's own traffic
    (node to node, routed pod traffic of calico) is not matched."""
    inspect = '[{"Id": "8800f7991677aaaa", "Options": {}}]'

    def fake_run(*args: str, check: bool = True, capture: bool = False) -> object:
        assert args[:3] == ("docker", "network", "inspect")
        return type("Done", (), {"stdout": inspect})()

    monkeypatch.setattr(lab, "run", fake_run)
    rules = lab.isolation_rules()
    resolved = cfg.render({**cfg.load_defaults(), **cfg.lab_group_vars()})
    ranges = [str(resolved["kube_service_addresses"]), str(resolved["kube_pods_subnet"])]
    assert [r[r.index("-d") + 1] for r in rules] == ranges
    for rule in rules:
        assert rule[0] == "DOCKER-USER" and rule[-2:] == ["-j", "REJECT"]
        assert rule[rule.index("-i") + 1] == "br-8800f7991677"
        assert rule[rule.index("-o") - 1 : rule.index("-o") + 2] == ["!", "-o", "br-8800f7991677"]


def test_lab_build_finds_the_labs_build_or_its_recipe_at_another_version() -> None:
    v = cfg.versions()
    assert artifacts.lab_build(v, "kubernetes", v.kube[1]).version == v.kube[1]
    pause = artifacts.lab_build(v, "pause")
    other = artifacts.lab_build(v, "pause", "9.9.9")
    assert pause in artifacts.builds(v) and other not in artifacts.builds(v)
    assert (other.version, other.env, other.sources, other.key()) == (
        "9.9.9",
        pause.env,
        pause.sources,
        pause.key(),
    )
    with pytest.raises(SystemExit, match="no build of nothing"):
        artifacts.lab_build(v, "nothing")


def _builder(tmp_path: Path, component: str, body: str) -> artifacts.Build:
    script = tmp_path / "builders" / f"{component}.sh"
    script.parent.mkdir(exist_ok=True)
    script.write_text(f'#!/bin/sh\nmkdir -p "$2"\n{body}\n')
    script.chmod(0o755)
    return artifacts.Build(component, "1.0", (component,))


def test_builds_run_two_at_a_time_and_are_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(artifacts, "BUILDERS", tmp_path / "builders")
    monkeypatch.setenv("KUBEFORGE_CACHE", str(tmp_path / "cache"))
    # Each waits (up to 10 s, then fails) until the other has started: both
    # succeed only when they run at once.
    wait = (
        f"touch {tmp_path}/$(basename $0); for i in $(seq 100); do"
        f" [ $(ls {tmp_path} | wc -l) -ge 4 ] && break; sleep 0.1; done;"
        f" [ $(ls {tmp_path} | wc -l) -ge 4 ] || exit 1"
    )
    done = 'echo built > "$2/$(basename $0 .sh)"'
    builds = [_builder(tmp_path, name, f"{wait}\n{done}") for name in ("a", "b")]
    report = artifacts.Report()
    artifacts.ensure_builds(builds, report)
    assert [line.split()[0] for line in report.lines] == ["built", "built"]
    assert (builds[0].path("a")).read_text() == "built\n"
    again = artifacts.Report()
    artifacts.ensure_builds(builds, again)
    assert [line.split()[0] for line in again.lines] == ["reused", "reused"]


def test_a_failed_build_stops_with_its_log_tail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(artifacts, "BUILDERS", tmp_path / "builders")
    monkeypatch.setenv("KUBEFORGE_CACHE", str(tmp_path / "cache"))
    bad = _builder(tmp_path, "bad", "echo 'cannot find module'; exit 3")
    with pytest.raises(SystemExit) as failed:
        artifacts.ensure_builds([bad], artifacts.Report())
    message = str(failed.value)
    assert "cannot find module" in message and "bad 1.0 failed (exit 3)" in message
    assert not bad.outdir().exists()
    assert "cannot find module" in bad.outdir().with_name("1.0.log").read_text()


def test_extra_builds_join_the_labs_longest_first(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[str] = []
    monkeypatch.setattr(artifacts, "ensure_builds", lambda b, report: started.extend(
        x.component for x in b))  # fmt: skip
    monkeypatch.setattr(artifacts, "ensure_mirror", lambda v, report: None)
    v = cfg.versions()
    e2e = artifacts.Build("e2e", v.kube[0], ("e2e.test",))
    artifacts.ensure_all(v, artifacts.Report(), extra=[e2e])
    long_ones = len(v.kube) + 3  # every Kubernetes, e2e, calico, traefik
    assert sorted(started[:long_ones]) == sorted(
        ["kubernetes"] * len(v.kube) + ["e2e", "calico", "traefik"]
    )
    assert started.count("e2e") == 1 and len(started) == len(artifacts.builds(v)) + 1


def test_make_test_leaves_the_previous_release_out(monkeypatch: pytest.MonkeyPatch) -> None:
    both = cfg.versions().kube
    monkeypatch.setenv(cfg.KUBE_PREVIOUS_ENV, "0")
    v = cfg.versions()
    assert v.kube == both[:1]
    assert [b.version for b in artifacts.builds(v) if b.component == "kubernetes"] == [both[0]]
    assert not [m for m in artifacts.mirror_files(v) if f"/v{both[1]}/" in m.path]
    monkeypatch.setenv(cfg.KUBE_PREVIOUS_ENV, "no")
    with pytest.raises(SystemExit, match="must be 1 or 0"):
        cfg.versions()
