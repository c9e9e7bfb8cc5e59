"""contrib/offline: what an inventory needs comes from the roles' own manifest
(playbooks/offline-manifest.yml), files land where files_repo expects them and
are verified before they are kept, images map onto the *_image_repo prefixes,
and `serve` serves the mirror. Real HTTP throughout (a server thread on
127.0.0.1); no lab."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import offline
import offline_images as oi
import offline_manifest as omf
import offline_mirror as om
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "contrib" / "offline" / "offline.py"
DEFAULTS = REPO / "roles" / "kubeforge_defaults" / "defaults" / "main"
VERSIONS = yaml.safe_load((DEFAULTS / "versions.yml").read_text())
PLAYBOOK = yaml.safe_load((REPO / "playbooks" / "offline-manifest.yml").read_text())
PREFIXES = {
    "kube_image_repo": "registry.k8s.io",
    "docker_image_repo": "docker.io",
    "quay_image_repo": "quay.io",
    "github_image_repo": "ghcr.io",
}


# ------------------------------------------------------------------ helpers


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def entry(name: str, url: str, checksum_url: str) -> dict[str, Any]:
    return {"name": name, "version": "1.0", "url": url, "checksum_url": checksum_url}


def raw_manifest(
    files: list[dict[str, Any]],
    checksums: list[str] | None = None,
    images: Sequence[tuple[str, str, str]] = (),
    upstream_files: list[dict[str, Any]] | None = None,
    arch: str = "amd64",
) -> dict[str, Any]:
    """A manifest as playbooks/offline-manifest.yml writes it, for one host."""
    sums = checksums or [f"sha256:{f['checksum_url']}" for f in files]
    return {
        "format": 1,
        "image_prefixes": PREFIXES,
        "hosts": {
            "node1": {
                "configured": {
                    "arch": arch,
                    "files_repo": "",
                    "files": files,
                    "checksums": sums,
                    "images": [{"name": n, "ref": conf} for n, _, conf in images],
                },
                "upstream": {
                    "arch": arch,
                    "files_repo": "",
                    "files": upstream_files or files,
                    "checksums": sums,
                    "images": [{"name": n, "ref": up} for n, up, _ in images],
                },
            }
        },
    }


class Recorder(http.server.SimpleHTTPRequestHandler):
    """Plain http.server (no byte ranges), recording each request."""

    requests: ClassVar[list[tuple[str, str]]] = []

    def do_GET(self) -> None:
        self.requests.append((self.path, self.headers.get("Range", "")))
        super().do_GET()

    def log_message(self, *args: Any) -> None:
        pass


class RangeRecorder(om.MirrorHandler):
    """`serve`'s own handler (byte ranges), recording each request."""

    requests: ClassVar[list[tuple[str, str]]] = []

    def do_GET(self) -> None:
        self.requests.append((self.path, self.headers.get("Range", "")))
        super().do_GET()

    def log_message(self, *args: Any) -> None:
        pass


def start(root: Path, handler: type[http.server.SimpleHTTPRequestHandler]) -> Iterator[str]:
    handler.requests = []  # type: ignore[attr-defined]

    def make(*args: Any) -> http.server.SimpleHTTPRequestHandler:
        return handler(*args, directory=str(root))

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), make)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(var, raising=False)
    for var in (offline.ENV_FROM, offline.ENV_REGISTRY_FROM):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def upstream(tmp_path: Path) -> Path:
    """A tree laid out like the release sites: a binary with a one-digest
    .sha256, a tarball listed in a SHA256SUMS, a file without any checksum file."""
    root = tmp_path / "upstream"
    kube = root / "dl.example.io" / "release" / "v1.0"
    kube.mkdir(parents=True)
    (kube / "kubelet").write_bytes(b"kubelet binary " * 5000)
    (kube / "kubelet.sha256").write_text(sha((kube / "kubelet").read_bytes()) + "\n")
    gh = root / "github.example.com" / "etcd" / "releases" / "v1.0"
    gh.mkdir(parents=True)
    (gh / "etcd.tar.gz").write_bytes(b"etcd tarball")
    (gh / "SHA256SUMS").write_text(
        f"{sha(b'other')}  other.tar.gz\n{sha(b'etcd tarball')}  etcd.tar.gz\n"
    )
    (gh / "crds.tar.gz").write_bytes(b"source archive")
    return root


KUBELET = entry(
    "kubelet",
    "https://dl.example.io/release/v1.0/kubelet",
    "https://dl.example.io/release/v1.0/kubelet.sha256",
)
ETCD = entry(
    "etcd",
    "https://github.example.com/etcd/releases/v1.0/etcd.tar.gz",
    "https://github.example.com/etcd/releases/v1.0/SHA256SUMS",
)
CRDS = entry(
    "calico_crds",
    "https://github.example.com/etcd/releases/v1.0/crds.tar.gz",
    "https://github.example.com/etcd/releases/v1.0/crds.tar.gz.sha256",
)


def write_manifest(tmp_path: Path, raw: dict[str, Any]) -> str:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(raw))
    return str(path)


def fetch(tmp_path: Path, raw: dict[str, Any], source: str, *extra: str) -> int:
    mirror = tmp_path / "mirror"
    argv = ["--manifest", write_manifest(tmp_path, raw), "fetch", str(mirror)]
    return offline.main([*argv, "--from", source, *extra])


# ------------------------------------------------------------------ the manifest


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """`list --json` on an inventory with a file mirror, a registry, calico,
    nginx as the load balancer, metrics-server on, helm off and kubelet pinned:
    evaluated by Ansible from the roles' own variables."""
    inv = tmp_path_factory.mktemp("inventory")
    (inv / "hosts.yml").write_text(
        yaml.safe_dump(
            {
                "all": {
                    "hosts": {
                        "cp1": {"ansible_host": "127.0.0.1", "ansible_connection": "local"},
                        "w1": {"ansible_host": "127.0.0.1", "ansible_connection": "local"},
                    },
                    "children": {
                        "kube_control_plane": {"hosts": {"cp1": None}},
                        "etcd": {"hosts": {"cp1": None}},
                        "kube_node": {"hosts": {"w1": None}},
                    },
                }
            }
        )
    )
    (inv / "group_vars").mkdir()
    (inv / "group_vars" / "all.yml").write_text(
        yaml.safe_dump(
            {
                "files_repo": "http://mirror.example:8080",
                "kube_image_repo": "registry.example/k8s",
                "quay_image_repo": "registry.example/quay",
                "kube_network_plugin": "calico",
                "loadbalancer_apiserver_type": "nginx",
                "metrics_server_enabled": True,
                "helm_enabled": False,
                "kubeforge_checksums": {
                    "kubelet": {VERSIONS["kube_version"]: {"amd64": "AB" * 32}}
                },
            }
        )
    )
    done = subprocess.run(
        [sys.executable, str(TOOL), "-i", str(inv / "hosts.yml"), "list", "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_files_are_the_download_manifest_of_the_enabled_features(
    evaluated: dict[str, Any],
) -> None:
    files = {f["name"]: f for f in evaluated["files"]}
    kube = ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl"]
    assert sorted(files) == sorted(
        [
            *kube,
            "kubelet",
            "kube-proxy",
            "etcd",
            "containerd",
            "runc",
            "crictl",
            "cni",
            "calico_crds",
        ]
    ), "helm is off and gateway_api_enabled false: neither may be listed"
    assert files["kube-apiserver"]["hosts"] == ["cp1"]
    assert files["kubelet"]["hosts"] == ["cp1", "w1"]
    assert files["etcd"]["hosts"] == ["cp1"]


def test_files_are_listed_upstream_with_their_mirror_path_and_configured_url(
    evaluated: dict[str, Any],
) -> None:
    kv = VERSIONS["kube_version"]
    kubelet = next(f for f in evaluated["files"] if f["name"] == "kubelet")
    assert kubelet["upstream_url"] == f"https://dl.k8s.io/release/v{kv}/bin/linux/amd64/kubelet"
    assert kubelet["path"] == f"dl.k8s.io/release/v{kv}/bin/linux/amd64/kubelet"
    assert kubelet["configured_url"] == f"http://mirror.example:8080/{kubelet['path']}"
    etcd = next(f for f in evaluated["files"] if f["name"] == "etcd")
    ev = VERSIONS["etcd_version"]
    assert etcd["path"] == (
        f"github.com/etcd-io/etcd/releases/download/v{ev}/etcd-v{ev}-linux-amd64.tar.gz"
    )
    assert etcd["checksum_path"] == f"github.com/etcd-io/etcd/releases/download/v{ev}/SHA256SUMS"
    assert evaluated["files_repo"] == "http://mirror.example:8080"


def test_a_pinned_sha256_is_listed_and_needs_no_checksum_file(evaluated: dict[str, Any]) -> None:
    files = {f["name"]: f for f in evaluated["files"]}
    assert files["kubelet"]["sha256"] == "ab" * 32 and files["kubelet"]["pinned"]
    assert files["kubelet"]["checksum_path"] is None
    assert files["kube-proxy"]["sha256"] is None and not files["kube-proxy"]["pinned"]
    assert files["kube-proxy"]["checksum_path"].endswith("/kube-proxy.sha256")


def test_images_are_those_the_enabled_features_run(evaluated: dict[str, Any]) -> None:
    images = {i["name"]: i for i in evaluated["images"]}
    calico = ["calico_node", "calico_cni", "calico_policy"]
    assert sorted(images) == sorted(
        ["pod_infra", "coredns", "dnsautoscaler", "metrics_server", "nginx", *calico]
    ), "flannel, haproxy, traefik and local-path-provisioner are off"
    assert images["coredns"]["upstream"] == (
        f"registry.k8s.io/coredns/coredns:v{VERSIONS['coredns_version']}"
    )
    assert images["coredns"]["configured"] == (
        f"registry.example/k8s/coredns/coredns:v{VERSIONS['coredns_version']}"
    )
    assert images["calico_node"]["configured"].startswith("registry.example/quay/calico/node:")
    assert images["nginx"]["configured"] == images["nginx"]["upstream"]
    assert images["nginx"]["upstream"].startswith("docker.io/library/nginx:")
    assert images["pod_infra"]["archive"] == (
        f"images/registry.k8s.io/pause/{VERSIONS['pod_infra_version']}.tar"
    )
    assert evaluated["image_prefixes"] == PREFIXES


def image_pairs_in_defaults() -> set[str]:
    names = yaml.safe_load((DEFAULTS / "images.yml").read_text())
    repos = {k.removesuffix("_image_repo") for k in names if k.endswith("_image_repo")}
    tags = {k.removesuffix("_image_tag") for k in names if k.endswith("_image_tag")}
    return repos & tags


def test_every_image_of_the_defaults_has_a_switch_in_the_manifest_playbook() -> None:
    switches = {name for name, _ in PLAYBOOK[0]["vars"]["offline_image_switches"]}
    assert switches == image_pairs_in_defaults(), (
        "playbooks/offline-manifest.yml's offline_image_switches must name every "
        "<name>_image_repo/<name>_image_tag pair of images.yml, and only those"
    )


def test_every_image_a_template_runs_is_one_of_the_listed_pairs() -> None:
    used: set[str] = set()
    for template in (REPO / "roles").glob("*/templates/*.j2"):
        for line in template.read_text().splitlines():
            if re.match(r"\s*(- )?image:|\s*sandbox\s*=", line):
                found = re.findall(
                    r"\{\{\s*(\w+)_image_repo\s*\}\}:\{\{\s*\1_image_tag\s*\}\}", line
                )
                assert found, f"{template.relative_to(REPO)}: {line.strip()} uses no image pair"
                used.update(found)
    assert used and used <= image_pairs_in_defaults()


def test_the_upstream_prefixes_are_the_plain_values_of_the_defaults() -> None:
    names = yaml.safe_load((DEFAULTS / "images.yml").read_text())
    plain = {k: v for k, v in names.items() if k.endswith("_image_repo") and "{{" not in v}
    assert plain == PREFIXES
    task = PLAYBOOK[0]["tasks"][1]
    assert set(PREFIXES) <= set(task["vars"]) and task["vars"]["files_repo"] == ""


# ------------------------------------------------------------------ paths and parsing


@pytest.mark.parametrize(
    ("url", "path"),
    [
        (
            "https://dl.k8s.io/release/v1.37.2/bin/linux/amd64/kubelet",
            "dl.k8s.io/release/v1.37.2/bin/linux/amd64/kubelet",
        ),
        (
            "https://get.helm.sh/helm-v3.22.0-linux-amd64.tar.gz",
            "get.helm.sh/helm-v3.22.0-linux-amd64.tar.gz",
        ),
        ("http://Mirror.Example:8080/a/b%20c", "mirror.example:8080/a/b c"),
    ],
)
def test_an_upstream_url_lands_at_host_and_path(url: str, path: str) -> None:
    assert omf.mirror_path(url) == path


@pytest.mark.parametrize(
    "url",
    [
        "ftp://x.example/f",
        "https://x.example/a/../../etc/passwd",
        "https://x.example/d/",
        "https://x.example/f?v=1",
        "https:///f",
    ],
)
def test_a_url_outside_the_layout_is_refused(url: str) -> None:
    with pytest.raises(omf.OfflineError):
        omf.mirror_path(url)


def test_another_mirror_serves_the_same_paths() -> None:
    url = "https://github.com/etcd-io/etcd/releases/download/v3.6.8/SHA256SUMS"
    assert omf.source_url(url, None) == url
    assert omf.source_url(url, "http://10.213.0.2/") == (
        "http://10.213.0.2/github.com/etcd-io/etcd/releases/download/v3.6.8/SHA256SUMS"
    )


def test_hosts_share_an_entry_and_archs_add_up() -> None:
    raw = raw_manifest([KUBELET, ETCD], images=[("pod_infra", "registry.k8s.io/pause:3", "r/p:3")])
    raw["hosts"]["node2"] = raw["hosts"]["node1"]
    arm = omf.parse_manifest(
        raw_manifest(
            [KUBELET], arch="arm64", images=[("pod_infra", "registry.k8s.io/pause:3", "r/p:3")]
        )
    )
    merged = omf.merge_manifests([omf.parse_manifest(raw), arm])
    assert [f.name for f in merged.files] == ["kubelet", "etcd"]
    assert merged.files[0].hosts == ["node1", "node2"]
    assert [i.archs for i in merged.images] == [["amd64", "arm64"]]


def test_a_manifest_of_another_format_is_refused(tmp_path: Path, capsys: Any) -> None:
    raw = raw_manifest([KUBELET])
    raw["format"] = 99
    assert offline.main(["--manifest", write_manifest(tmp_path, raw), "list"]) == 2
    assert "manifest format 99" in capsys.readouterr().err


CHECKSUM_FILES = [
    (f"{'a' * 64}\n", "kubelet", "a" * 64),
    (f"{'b' * 64}  other\n{'c' * 64}  etcd.tar.gz\n", "etcd.tar.gz", "c" * 64),
    (f"{'d' * 64} *runc.amd64\n{'e' * 64} *runc.arm64\n", "runc.arm64", "e" * 64),
    (f"{'f' * 64}  ./crictl.tar.gz\n", "crictl.tar.gz", "f" * 64),
    (f"SHA256 (helm.tar.gz) = {'1' * 64}\n", "helm.tar.gz", "1" * 64),
    (f"{'A' * 64}\r\n", "x", "a" * 64),
]


@pytest.mark.parametrize(("text", "name", "digest"), CHECKSUM_FILES)
def test_checksum_files_are_read_as_get_url_reads_them(text: str, name: str, digest: str) -> None:
    assert om.parse_checksum_file(text, name) == digest


@pytest.mark.parametrize(
    "text", [f"{'b' * 64}  other\n{'c' * 64}  etcd\n", "<html>404</html>\n", "abc\n", ""]
)
def test_a_checksum_file_without_the_file_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="no sha256"):
        om.parse_checksum_file(text, "etcd.tar.gz")


# ------------------------------------------------------------------ fetch


@pytest.fixture
def plain_server(upstream: Path) -> Iterator[str]:
    yield from start(upstream, Recorder)


@pytest.fixture
def range_server(upstream: Path) -> Iterator[str]:
    yield from start(upstream, RangeRecorder)


def test_fetch_lays_files_out_as_files_repo_expects_and_verifies_them(
    tmp_path: Path, upstream: Path, plain_server: str, capsys: Any
) -> None:
    assert fetch(tmp_path, raw_manifest([KUBELET, ETCD]), plain_server, "--skip-images") == 0
    mirror = tmp_path / "mirror"
    for rel in [
        "dl.example.io/release/v1.0/kubelet",
        "dl.example.io/release/v1.0/kubelet.sha256",
        "github.example.com/etcd/releases/v1.0/etcd.tar.gz",
        "github.example.com/etcd/releases/v1.0/SHA256SUMS",
    ]:
        assert (mirror / rel).read_bytes() == (upstream / rel).read_bytes(), rel
    assert not list(mirror.rglob("*.part")) and not list(mirror.rglob("*.tmp"))
    assert "2 fetched, 0 already there, 0 failed" in capsys.readouterr().out


def test_verified_files_are_skipped_and_a_corrupt_one_is_fetched_again(
    tmp_path: Path, plain_server: str, capsys: Any
) -> None:
    raw = raw_manifest([KUBELET, ETCD])
    assert fetch(tmp_path, raw, plain_server, "--skip-images") == 0
    Recorder.requests.clear()
    assert fetch(tmp_path, raw, plain_server, "--skip-images") == 0
    assert Recorder.requests == [], "verified files and their checksum files are not fetched again"
    assert "0 fetched, 2 already there" in capsys.readouterr().out
    (tmp_path / "mirror" / "dl.example.io/release/v1.0/kubelet").write_bytes(b"tampered")
    assert fetch(tmp_path, raw, plain_server, "--skip-images") == 0
    assert [p for p, _ in Recorder.requests] == ["/dl.example.io/release/v1.0/kubelet"]
    assert "1 fetched, 1 already there" in capsys.readouterr().out


def test_a_download_that_does_not_match_its_checksum_is_deleted(
    tmp_path: Path, upstream: Path, plain_server: str, capsys: Any
) -> None:
    (upstream / "dl.example.io/release/v1.0/kubelet").write_bytes(b"swapped binary")
    assert fetch(tmp_path, raw_manifest([KUBELET, ETCD]), plain_server, "--skip-images") == 1
    out = capsys.readouterr().out
    assert re.search(r"failed +dl.example.io/release/v1.0/kubelet .*sha256 \w+ is not \w+", out)
    kube = tmp_path / "mirror" / "dl.example.io/release/v1.0"
    assert not (kube / "kubelet").exists() and not (kube / "kubelet.part").exists()
    assert (tmp_path / "mirror" / "github.example.com/etcd/releases/v1.0/etcd.tar.gz").is_file()


def test_a_pinned_sha256_wins_over_the_mirrors_checksum_file(
    tmp_path: Path, plain_server: str, capsys: Any
) -> None:
    raw = raw_manifest([KUBELET], checksums=[f"sha256:{'0' * 64}"])
    assert fetch(tmp_path, raw, plain_server, "--skip-images") == 1
    assert f"is not {'0' * 64}" in capsys.readouterr().out
    assert not (tmp_path / "mirror" / "dl.example.io/release/v1.0/kubelet").exists()
    assert [p for p, _ in Recorder.requests] == ["/dl.example.io/release/v1.0/kubelet"]


def test_a_file_without_checksum_needs_a_pin_or_trust_on_first_use(
    tmp_path: Path, plain_server: str, capsys: Any
) -> None:
    raw = raw_manifest([CRDS])
    assert fetch(tmp_path, raw, plain_server, "--skip-images") == 1
    out = capsys.readouterr().out
    assert "HTTP 404" in out and "kubeforge_checksums.calico_crds['1.0'].amd64" in out
    crds = tmp_path / "mirror" / "github.example.com/etcd/releases/v1.0/crds.tar.gz"
    assert not crds.exists()
    assert fetch(tmp_path, raw, plain_server, "--skip-images", "--trust-unpinned") == 0
    assert "UNVERIFIED" in capsys.readouterr().out
    recorded = crds.with_name("crds.tar.gz.sha256").read_text()
    assert recorded == f"{sha(b'source archive')}  crds.tar.gz\n"
    assert fetch(tmp_path, raw, plain_server, "--skip-images") == 0, "now verified against it"


def test_an_interrupted_download_resumes_where_the_server_takes_ranges(
    tmp_path: Path, upstream: Path, range_server: str
) -> None:
    body = (upstream / "dl.example.io/release/v1.0/kubelet").read_bytes()
    part = tmp_path / "mirror" / "dl.example.io/release/v1.0/kubelet.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(body[:30000])
    assert fetch(tmp_path, raw_manifest([KUBELET]), range_server, "--skip-images") == 0
    assert ("/dl.example.io/release/v1.0/kubelet", "bytes=30000-") in RangeRecorder.requests
    assert (tmp_path / "mirror" / "dl.example.io/release/v1.0/kubelet").read_bytes() == body


def test_a_partial_download_starts_over_where_the_server_ignores_ranges(
    tmp_path: Path, upstream: Path, plain_server: str
) -> None:
    body = (upstream / "dl.example.io/release/v1.0/kubelet").read_bytes()
    part = tmp_path / "mirror" / "dl.example.io/release/v1.0/kubelet.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(body[:30000])
    assert fetch(tmp_path, raw_manifest([KUBELET]), plain_server, "--skip-images") == 0
    assert (tmp_path / "mirror" / "dl.example.io/release/v1.0/kubelet").read_bytes() == body


def test_a_stale_partial_download_is_discarded(
    tmp_path: Path, upstream: Path, range_server: str
) -> None:
    body = (upstream / "dl.example.io/release/v1.0/kubelet").read_bytes()
    part = tmp_path / "mirror" / "dl.example.io/release/v1.0/kubelet.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"x" * 100)
    assert fetch(tmp_path, raw_manifest([KUBELET]), range_server, "--skip-images") == 0
    assert (tmp_path / "mirror" / "dl.example.io/release/v1.0/kubelet").read_bytes() == body


def test_fetch_from_a_local_directory_laid_out_the_same_way(tmp_path: Path, upstream: Path) -> None:
    assert fetch(tmp_path, raw_manifest([KUBELET, ETCD]), str(upstream), "--skip-images") == 0
    assert (tmp_path / "mirror" / "github.example.com/etcd/releases/v1.0/etcd.tar.gz").is_file()


def test_without_skopeo_files_are_fetched_and_images_fail_loudly(
    tmp_path: Path, plain_server: str, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    raw = raw_manifest(
        [KUBELET], images=[("pod_infra", "registry.k8s.io/pause:3.10.1", "r/pause:3")]
    )
    assert fetch(tmp_path, raw, plain_server) == offline.EXIT_NO_SKOPEO == 3
    out = capsys.readouterr().out
    assert "skopeo is not installed" in out and "1 images were NOT fetched" in out
    assert (tmp_path / "mirror" / "dl.example.io/release/v1.0/kubelet").is_file()
    assert fetch(tmp_path, raw, plain_server, "--skip-images") == 0


def test_fetch_takes_the_mirror_from_the_environment(
    tmp_path: Path, plain_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(offline.ENV_FROM, plain_server)
    argv = ["--manifest", write_manifest(tmp_path, raw_manifest([ETCD])), "fetch"]
    assert offline.main([*argv, str(tmp_path / "mirror"), "--skip-images"]) == 0
    assert Recorder.requests


def test_list_resolve_reads_the_checksum_files(
    tmp_path: Path, plain_server: str, capsys: Any
) -> None:
    argv = ["--manifest", write_manifest(tmp_path, raw_manifest([KUBELET, ETCD, CRDS]))]
    assert offline.main([*argv, "list", "--resolve", "--from", plain_server]) == 1
    out = capsys.readouterr().out
    assert f"sha256     {sha(b'etcd tarball')} (from DIR/github.example.com/" in out
    assert "sha256     unknown:" in out and "HTTP 404" in out
    assert "mirror     DIR/dl.example.io/release/v1.0/kubelet" in out


# ------------------------------------------------------------------ images


@pytest.mark.parametrize(
    ("ref", "parts"),
    [
        (
            "registry.k8s.io/coredns/coredns:v1.13.1",
            ("registry.k8s.io", "coredns/coredns", "v1.13.1"),
        ),
        ("docker.io/library/nginx:1.28.0-alpine", ("docker.io", "library/nginx", "1.28.0-alpine")),
        ("nginx:1.2", ("docker.io", "library/nginx", "1.2")),
        ("flannel/flannel:v0.28.10", ("docker.io", "flannel/flannel", "v0.28.10")),
        ("10.213.0.3:5000/pause:3.10.1", ("10.213.0.3:5000", "pause", "3.10.1")),
        ("localhost/x/y@sha256:" + "a" * 64, ("localhost", "x/y", "sha256:" + "a" * 64)),
    ],
)
def test_image_references_split_like_the_registries_read_them(
    ref: str, parts: tuple[str, str, str]
) -> None:
    assert omf.split_ref(ref) == parts


def test_an_image_reference_without_a_tag_is_refused() -> None:
    with pytest.raises(omf.OfflineError, match="no repository and tag"):
        omf.split_ref("registry.k8s.io/pause")


def test_archives_land_under_images_without_colons() -> None:
    assert (
        omf.archive_path("registry.k8s.io/pause:3.10.1")
        == "images/registry.k8s.io/pause/3.10.1.tar"
    )
    assert omf.archive_path("10.213.0.3:5000/x/y@sha256:" + "b" * 64) == (
        "images/10.213.0.3_5000/x/y/sha256-" + "b" * 64 + ".tar"
    )


def image(upstream_ref: str, archs: list[str] | None = None) -> omf.ImageItem:
    return omf.ImageItem("x", upstream_ref, upstream_ref, archs or ["amd64"], ["node1"])


@pytest.mark.parametrize(
    ("upstream_ref", "dest"),
    [
        ("registry.k8s.io/coredns/coredns:v1.13.1", "reg.example:5000/coredns/coredns:v1.13.1"),
        (
            "docker.io/library/nginx:1.28.0-alpine",
            "harbor.example/docker/library/nginx:1.28.0-alpine",
        ),
        ("quay.io/calico/node:v3.31.0", "reg.example:5000/calico/node:v3.31.0"),
        ("private.example/team/app:1", "reg.example:5000/private.example/team/app:1"),
    ],
)
def test_push_puts_each_image_under_its_prefix(upstream_ref: str, dest: str) -> None:
    overrides = {"docker_image_repo": "harbor.example/docker/"}
    assert (
        omf.push_destination(image(upstream_ref), "reg.example:5000", overrides, PREFIXES) == dest
    )


def test_the_lab_registry_layout_is_upstream_paths_below_the_registry() -> None:
    assert omf.rebase_ref("registry.k8s.io/pause:3.10.1", "10.213.0.3:5000") == (
        "10.213.0.3:5000/pause:3.10.1"
    )
    assert omf.rebase_ref("docker.io/flannel/flannel:v0.28.10", "10.213.0.3:5000/") == (
        "10.213.0.3:5000/flannel/flannel:v0.28.10"
    )


def test_skopeo_copies_one_platform_or_all_of_them(tmp_path: Path) -> None:
    one = oi.skopeo_fetch_argv(
        "skopeo", image("quay.io/a/b:1"), "quay.io/a/b:1", tmp_path / "b.tar", False
    )
    assert one == [
        "skopeo",
        "--override-os",
        "linux",
        "--override-arch",
        "amd64",
        "copy",
        "--retry-times",
        "3",
        "--src-tls-verify=false",
        "docker://quay.io/a/b:1",
        f"oci-archive:{tmp_path}/b.tar",
    ]
    both = image("quay.io/a/b:1", ["amd64", "arm64"])
    argv = oi.skopeo_fetch_argv("skopeo", both, "quay.io/a/b:1", tmp_path / "b.tar", True)
    assert "--all" in argv and "--override-arch" not in argv and "--src-tls-verify=true" in argv
    push = oi.skopeo_push_argv("skopeo", both, tmp_path / "b.tar", "reg/a/b:1", False)
    assert push[-3:] == ["--all", f"oci-archive:{tmp_path}/b.tar", "docker://reg/a/b:1"]
    assert "--dest-tls-verify=false" in push


# ------------------------------------------------------------------ serve and CLI errors


def test_serve_serves_the_mirror_layout_and_nothing_outside_it(
    tmp_path: Path, upstream: Path
) -> None:
    (tmp_path / "secret").write_text("outside")
    proc = subprocess.Popen(
        [sys.executable, str(TOOL), "serve", str(upstream), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        base = re.search(r"at (http://127\.0\.0\.1:\d+)/", first)
        assert base, first
        assert "trusted networks only" in proc.stdout.readline()
        url = base[1] + "/github.example.com/etcd/releases/v1.0/etcd.tar.gz"
        assert om.read_url(url) == b"etcd tarball"
        with om._open(url, offset=5) as resp:
            assert resp.status == 206 and resp.read() == b"tarball"
        with pytest.raises(om.FetchError, match="HTTP 404"):
            om.read_url(base[1] + "/../secret")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_serve_refuses_a_missing_directory(tmp_path: Path, capsys: Any) -> None:
    assert offline.main(["serve", str(tmp_path / "nope")]) == 2
    assert "is not a directory" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["list"], "list needs the inventory: -i"),
        (
            ["-i", "/nonexistent/hosts.yml", "fetch", "/tmp/x"],
            "inventory /nonexistent/hosts.yml does not exist",
        ),
    ],
)
def test_cli_errors_name_what_is_missing(argv: list[str], message: str, capsys: Any) -> None:
    assert offline.main(argv) == 2
    assert message in capsys.readouterr().err


def test_push_refuses_an_unknown_prefix_and_missing_archives(tmp_path: Path, capsys: Any) -> None:
    raw = raw_manifest(
        [KUBELET], images=[("pod_infra", "registry.k8s.io/pause:3.10.1", "r/pause:3")]
    )
    argv = [
        "--manifest",
        write_manifest(tmp_path, raw),
        "push",
        "reg.example",
        "--dir",
        str(tmp_path),
    ]
    assert offline.main([*argv, "--prefix", "kube_repo=x"]) == 2
    assert "--prefix kube_repo: not one of docker_image_repo" in capsys.readouterr().err
    assert offline.main([*argv, "--prefix", "kube_image_repo"]) == 2
    assert "write VARIABLE=REGISTRY" in capsys.readouterr().err
    assert offline.main(argv) == 2
    assert "lacks images/registry.k8s.io/pause/3.10.1.tar: run `fetch" in capsys.readouterr().err


def test_inventory_options_go_before_or_after_the_command(tmp_path: Path, capsys: Any) -> None:
    path = write_manifest(tmp_path, raw_manifest([KUBELET]))
    assert offline.main(["--manifest", path, "list"]) == 0
    before = capsys.readouterr().out
    assert offline.main(["list", "--manifest", path]) == 0
    assert capsys.readouterr().out == before
    assert "upstream   https://dl.example.io/release/v1.0/kubelet" in before


def test_a_bad_from_is_refused_by_the_parser(tmp_path: Path, capsys: Any) -> None:
    with pytest.raises(SystemExit) as exit_:
        offline.main(["--manifest", "m.json", "fetch", str(tmp_path), "--from", "no/such/dir"])
    assert exit_.value.code == 2
    assert "neither a URL nor a directory" in capsys.readouterr().err


def test_the_tool_runs_from_a_plain_checkout_with_python3() -> None:
    done = subprocess.run(
        [sys.executable, "-E", str(TOOL), "--help"],
        capture_output=True,
        text=True,
        check=False,
        cwd="/",
        env={"PATH": os.environ.get("PATH", "")},
    )
    assert done.returncode == 0, done.stderr
    assert "{list,fetch,push,serve}" in done.stdout
