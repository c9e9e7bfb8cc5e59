"""The local lab, for real: a small lab comes up, answers Ansible, serves every
mirrored file with a matching checksum and every image the collection's defaults
name, then `make lab-down` leaves nothing of it behind.

These tests need Docker, debootstrap and the Go module proxy; when the lab cannot
come up they fail with the reason, they never skip.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import artifacts
import labconfig as cfg
import pytest

NODES = 2
REPO = cfg.REPO


def make(*targets: str, **env: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["make", "-C", str(REPO), *targets],
        env={**os.environ, **env},
        text=True,
        capture_output=True,
    )
    if done.returncode != 0:
        pytest.fail(
            f"make {' '.join(targets)} failed ({done.returncode}):\n"
            f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
        )
    return done


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as resp:
        data: bytes = resp.read()
        return data


@pytest.fixture(scope="module")
def lab() -> Iterator[dict[str, str]]:
    make("lab-up", NODES=str(NODES))
    env: dict[str, str] = {}
    for line in (cfg.LAB_INVENTORY / "lab.env").read_text().splitlines():
        key, _, value = line.partition("=")
        env[key] = value.strip('"')
    yield env


def test_lab_env_names_mirror_registry_versions_and_nodes(lab: dict[str, str]) -> None:
    v = cfg.versions()
    assert lab == {
        "LAB_MIRROR_URL": cfg.mirror_url(),
        "LAB_REGISTRY": cfg.registry_addr(),
        "LAB_KUBE_VERSIONS": " ".join(v.kube),
        "LAB_NODES": str(NODES),
    }


def test_every_node_answers_ansible_ping_over_ssh(lab: dict[str, str]) -> None:
    done = subprocess.run(
        [
            "ansible",
            "-i",
            str(cfg.LAB_INVENTORY / "hosts.yml"),
            "all",
            "-m",
            "ansible.builtin.ping",
        ],
        cwd=REPO,
        text=True,
        capture_output=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    ok = [line for line in done.stdout.splitlines() if "SUCCESS" in line]
    assert len(ok) == NODES, done.stdout


def test_every_mirrored_file_matches_its_sha256(lab: dict[str, str]) -> None:
    v = cfg.versions()
    files = artifacts.mirror_files(v)
    # six Kubernetes binaries per version; etcd, containerd, runc, crictl, CNI,
    # helm, the calico source archive and the Gateway API CRDs
    assert len(files) == 6 * len(v.kube) + 8
    for mf in files:
        url = f"{lab['LAB_MIRROR_URL']}/{mf.path}"
        body = fetch(url)
        digest = hashlib.sha256(body).hexdigest()
        assert fetch(url + ".sha256").decode() == f"{digest}  {url.rsplit('/', 1)[1]}\n", url
        for name in mf.upstream_sums:  # upstream's own checksum file names
            sums = fetch(f"{url.rsplit('/', 1)[0]}/{name}").decode()
            assert f"{digest}  {url.rsplit('/', 1)[1]}" in sums.splitlines(), name


def test_mirrored_kubectl_is_the_version_it_claims(lab: dict[str, str], tmp_path: Path) -> None:
    for version in lab["LAB_KUBE_VERSIONS"].split():
        kubectl = tmp_path / f"kubectl-{version}"
        kubectl.write_bytes(
            fetch(f"{lab['LAB_MIRROR_URL']}/dl.k8s.io/release/v{version}/bin/linux/amd64/kubectl")
        )
        kubectl.chmod(0o755)
        out = subprocess.run(
            [str(kubectl), "version", "--client", "-o", "json"],
            check=True,
            text=True,
            capture_output=True,
        ).stdout
        assert json.loads(out)["clientVersion"]["gitVersion"] == f"v{version}"


def test_registry_serves_every_image_the_defaults_name(lab: dict[str, str]) -> None:
    registry = lab["LAB_REGISTRY"]
    catalog = json.loads(fetch(f"http://{registry}/v2/_catalog?n=1000"))["repositories"]
    refs = cfg.default_images(cfg.lab_group_vars())
    for ref in refs:
        path, _, tag = ref.removeprefix(registry + "/").rpartition(":")
        assert path in catalog, f"{path} missing from the catalog {catalog}"
        tags = json.loads(fetch(f"http://{registry}/v2/{path}/tags/list"))["tags"]
        assert tag in tags, f"{ref}: registry has tags {tags}"


def test_lab_down_leaves_no_container_volume_or_network(lab: dict[str, str]) -> None:
    make("lab-down")
    for kind in ("container", "volume", "network"):
        args = ["docker", kind, "ls", "--quiet", "--filter", f"label={cfg.LABEL}"]
        if kind == "container":
            args.append("--all")
        left = subprocess.run(args, check=True, text=True, capture_output=True).stdout
        assert left.strip() == "", f"lab-down left {kind}s: {left}"
    names = subprocess.run(
        ["docker", "ps", "-a", "--format", "{{.Names}}"], check=True, text=True, capture_output=True
    ).stdout
    assert cfg.NAME not in names
    assert not (cfg.LAB_INVENTORY / "hosts.yml").exists()
