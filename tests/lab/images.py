"""Container images of the lab, all built here: nothing is pulled from a registry.

Two kinds:
- local images the lab runs itself (Debian base, node, registry), never pushed;
- cluster images pushed to the lab registry under upstream's repository paths
  (registry.k8s.io/pause:3.10.1 -> <lab registry>/pause:3.10.1), built from the
  source builds in artifacts.py or from Debian packages.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import artifacts
import labconfig as cfg

IMAGES = Path(__file__).resolve().parent / "images"
DEBIAN_BASE = "kubeforge-lab/debian:bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
INPUTS_LABEL = "io.kubeforge.lab.inputs"


@dataclass(frozen=True)
class Image:
    directory: str  # under tests/lab/images/, holds the Dockerfile
    tag: str  # local tag, or the registry path:tag for pushed images
    # extra build-context files: {path in the context (may have folders): file}
    files: dict[str, Path] = field(default_factory=dict)
    push: bool = False
    # docker build --build-arg NAME=VALUE; the values are part of the inputs
    build_args: tuple[tuple[str, str], ...] = ()

    def inputs(self) -> str:
        digest = hashlib.sha256()
        if self.build_args:  # (the inputs of images without them stay as they were)
            digest.update(repr(self.build_args).encode())
        for path in sorted((IMAGES / self.directory).rglob("*")):
            if path.is_file():
                digest.update(path.name.encode() + path.read_bytes())
        for name, path in sorted(self.files.items()):
            digest.update(name.encode() + artifacts._sha256(path).encode())
        return digest.hexdigest()[:24]


def cluster_images(v: cfg.Versions) -> list[Image]:
    """Images pushed to the lab registry, at the repo:tag a lab cluster asks for.

    Repositories and tags come from the collection's defaults with the lab's
    group_vars on top, so the registry holds exactly what the cluster pulls.
    """
    b = {(x.component, x.version): x for x in artifacts.builds(v)}
    resolved = cfg.render({**cfg.load_defaults(), **cfg.lab_group_vars()})
    prefix = f"{cfg.registry_addr()}/"
    busybox = Path("/bin/busybox")
    calico = b[("calico", v.calico)]
    sources: dict[str, tuple[str, dict[str, Path]]] = {
        "lab_test": ("busybox", {"busybox": busybox}),
        "pod_infra": ("pause", {"pause": b[("pause", v.pause)].path("pause")}),
        "coredns": ("coredns", {"coredns": b[("coredns", v.coredns)].path("coredns")}),
        "flannel": ("flannel", {"flanneld": b[("flannel", v.flannel)].path("flanneld")}),
        "flannel_cni": (
            "flannel-cni-plugin",
            {"flannel": b[("flannel-cni", v.flannel_cni)].path("flannel"), "busybox": busybox},
        ),
        "calico_node": (
            "calico-node",
            {"calico-node": calico.path("calico-node"), **calico_node_filesystem(v)},
        ),
        "calico_cni": (
            "calico-cni",
            {name: calico.path(name) for name in ("install", "calico")},
        ),
        "calico_policy": (
            "calico-kube-controllers",
            {name: calico.path(name) for name in ("kube-controllers", "check-status", "wrapper")},
        ),
        "nginx": ("nginx", {}),
        "haproxy": ("haproxy", {}),
        "dnsautoscaler": (
            "cpa",
            {
                "cluster-proportional-autoscaler": b[("cpa", v.dns_autoscaler)].path(
                    "cluster-proportional-autoscaler"
                )
            },
        ),
        "metrics_server": (
            "metrics-server",
            {"metrics-server": b[("metrics-server", v.metrics_server)].path("metrics-server")},
        ),
        # Its helper pods run the lab's busybox (lab_test, above): the lab's
        # group_vars give local_path_provisioner_helper_image_tag that tag.
        "local_path_provisioner": (
            "local-path-provisioner",
            {
                "local-path-provisioner": b[
                    ("local-path-provisioner", v.local_path_provisioner)
                ].path("local-path-provisioner")
            },
        ),
        "traefik": ("traefik", {"traefik": b[("traefik", v.traefik)].path("traefik")}),
    }
    found = []
    for name, (directory, files) in sources.items():
        repo = str(resolved[f"{name}_image_repo"])
        if not repo.startswith(prefix):
            raise SystemExit(f"lab: {name}_image_repo={repo} is not in the lab registry {prefix}")
        tag = f"{repo.removeprefix(prefix)}:{resolved[f'{name}_image_tag']}"
        found.append(Image(directory, tag, files, push=True))
    return found


def calico_node_filesystem(v: cfg.Versions) -> dict[str, Path]:
    """node/filesystem of the calico release (rc.local, the runit services),
    as upstream's calico/node image copies it; under filesystem/ in the context."""
    module = artifacts.go_module_dir(
        artifacts.CALICO_MODULE, artifacts.calico_module_version(v.calico)
    )
    root = module / "node" / "filesystem"
    return {f"filesystem/{name}": path for name, path in artifacts.tree_files(root)}


def local_images() -> list[Image]:
    return [
        Image("node", "kubeforge-lab/node:bookworm"),
        Image(
            "registry",
            "kubeforge-lab/registry:bookworm",
            {"docker-registry": Path("/usr/bin/docker-registry")},
        ),
    ]


def _docker(*args: str, capture: bool = False) -> str:
    done = subprocess.run(["docker", *args], check=True, text=True, capture_output=capture)
    return done.stdout.strip() if capture else ""


def _label(tag: str) -> str | None:
    done = subprocess.run(
        [
            "docker",
            "image",
            "inspect",
            "--format",
            f'{{{{ index .Config.Labels "{INPUTS_LABEL}" }}}}',
            tag,
        ],
        text=True,
        capture_output=True,
    )
    return done.stdout.strip() if done.returncode == 0 else None


def ensure_debian_base(report: artifacts.Report) -> None:
    """Import a debootstrapped Debian 12 minbase as the root of every image."""
    script = (IMAGES / "debootstrap.sh").read_bytes()
    key = hashlib.sha256(script).hexdigest()[:24]
    if _label(DEBIAN_BASE) == key:
        report.add(DEBIAN_BASE, "reused", 0.0)
        return
    start = time.monotonic()
    tarball = cfg.cache_dir() / "rootfs" / f"debian-bookworm-{key}.tar"
    if not tarball.exists():
        tarball.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["bash", str(IMAGES / "debootstrap.sh"), str(tarball), DEBIAN_MIRROR], check=True
        )
    with tarball.open("rb") as f:
        subprocess.run(
            [
                "docker",
                "import",
                "--change",
                f"LABEL {INPUTS_LABEL}={key}",
                "--change",
                'CMD ["/bin/bash"]',
                "-",
                DEBIAN_BASE,
            ],
            stdin=f,
            check=True,
            capture_output=True,
        )
    report.add(DEBIAN_BASE, "built", time.monotonic() - start)


def ensure_image(image: Image, report: artifacts.Report) -> str:
    """Build the image unless an identical one exists; return its full tag."""
    tag = f"{cfg.REGISTRY_PUSH}/{image.tag}" if image.push else image.tag
    inputs = image.inputs()
    if _label(tag) == inputs:
        report.add(f"image {image.tag}", "reused", 0.0)
        return tag
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as ctx:
        shutil.copytree(IMAGES / image.directory, ctx, dirs_exist_ok=True)
        for name, path in image.files.items():
            (Path(ctx) / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, Path(ctx) / name)
        args = [f"--build-arg={name}={value}" for name, value in image.build_args]
        _docker(
            "build", "--quiet", "--label", f"{INPUTS_LABEL}={inputs}", *args, "-t", tag, ctx,
            capture=True,
        )  # fmt: skip
    report.add(f"image {image.tag}", "built", time.monotonic() - start)
    return tag


def _registry_has(image: Image, local_tag: str) -> bool:
    """True when the registry serves this tag with the digest docker pushed last."""
    repo, _, tag = image.tag.rpartition(":")
    url = f"http://{cfg.REGISTRY_PUSH}/v2/{repo}/manifests/{tag}"
    req = urllib.request.Request(
        url,
        method="HEAD",
        headers={
            "Accept": ", ".join(
                [
                    "application/vnd.docker.distribution.manifest.v2+json",
                    "application/vnd.oci.image.manifest.v1+json",
                ]
            )
        },
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            served = resp.headers.get("Docker-Content-Digest", "")
    except urllib.error.HTTPError:
        return False
    digests = json.loads(
        _docker("image", "inspect", "--format", "{{ json .RepoDigests }}", local_tag, capture=True)
        or "[]"
    )
    return any(d.endswith("@" + served) for d in digests)


def ensure_pushed(image: Image, report: artifacts.Report) -> None:
    local_tag = ensure_image(image, report)
    if _registry_has(image, local_tag):
        report.add(f"registry {image.tag}", "reused", 0.0)
        return
    start = time.monotonic()
    _docker("push", "--quiet", local_tag, capture=True)
    report.add(f"registry {image.tag}", "pushed", time.monotonic() - start)
