"""What an inventory needs, as contrib/offline sees it: the JSON
playbooks/offline-manifest.yml writes (the role `download`'s manifest and the
images the roles run, per host, as configured and as upstream has them) turned
into one entry per file and per image, and where each lands in the mirror."""

from __future__ import annotations

import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PLAYBOOK = REPO / "playbooks" / "offline-manifest.yml"
MANIFEST_FORMAT = 1
IMAGES_DIR = "images"
HEX64 = re.compile(r"[0-9a-f]{64}")


class OfflineError(Exception):
    """A problem with the user's input or environment: printed, exit code 2."""


@dataclass
class FileItem:
    name: str
    version: str
    arch: str
    upstream_url: str
    upstream_checksum_url: str
    url: str  # as the inventory configures it (files_repo, *_download_url)
    pinned: str  # sha256 from kubeforge_checksums, or ""
    hosts: list[str] = field(default_factory=list)

    @property
    def path(self) -> str:
        return mirror_path(self.upstream_url)

    @property
    def checksum_path(self) -> str:
        return mirror_path(self.upstream_checksum_url)

    @property
    def filename(self) -> str:
        return posixpath.basename(urllib.parse.urlsplit(self.upstream_url).path)


@dataclass
class ImageItem:
    name: str  # the <name>_image_repo/<name>_image_tag pair
    upstream_ref: str
    ref: str  # as the inventory configures it (*_image_repo, *_image_tag)
    archs: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)

    @property
    def archive(self) -> str:
        return archive_path(self.upstream_ref)


@dataclass
class Manifest:
    files: list[FileItem]
    images: list[ImageItem]
    prefixes: dict[str, str]  # kube_image_repo -> registry.k8s.io, ...
    files_repo: str


def mirror_path(url: str) -> str:
    """Where an upstream URL lands in the mirror: <host>/<path>, files_repo's layout."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise OfflineError(f"{url!r} is not an http(s) URL")
    if parts.query or parts.fragment:
        raise OfflineError(f"{url}: a URL with a query or fragment has no place in the mirror")
    segments = urllib.parse.unquote(parts.path).split("/")[1:]
    if not segments or any(s in ("", ".", "..") for s in segments):
        raise OfflineError(f"{url}: its path does not name a file")
    return "/".join([parts.netloc.lower(), *segments])


def source_url(upstream_url: str, source: str | None) -> str:
    """The URL to fetch from: upstream itself, or the same path under another mirror."""
    if not source:
        return upstream_url
    return source.rstrip("/") + "/" + urllib.parse.quote(mirror_path(upstream_url))


def _pinned(checksum_arg: str) -> str:
    """The role's get_url checksum argument (kubeforge_download_checksum) -> pinned hex or ""."""
    value = checksum_arg.removeprefix("sha256:")
    if "://" in value:
        return ""
    value = value.lower()
    if not HEX64.fullmatch(value):
        raise OfflineError(f"pinned sha256 {value!r} is not 64 hex digits")
    return value


def _host_files(host: str, data: Mapping[str, Any]) -> Iterator[FileItem]:
    conf, up = data["configured"], data["upstream"]
    if len(conf["files"]) != len(up["files"]) or len(conf["checksums"]) != len(conf["files"]):
        raise OfflineError(f"host {host}: the manifest's configured and upstream lists differ")
    for c, u, checksum in zip(conf["files"], up["files"], conf["checksums"], strict=True):
        if (c["name"], str(c["version"])) != (u["name"], str(u["version"])):
            raise OfflineError(f"host {host}: {c['name']} and {u['name']} do not pair up")
        yield FileItem(
            name=str(c["name"]),
            version=str(c["version"]),
            arch=str(conf["arch"]),
            upstream_url=str(u["url"]).strip(),
            upstream_checksum_url=str(u.get("checksum_url", "")).strip(),
            url=str(c["url"]).strip(),
            pinned=_pinned(str(checksum)),
            hosts=[host],
        )


def _host_images(host: str, data: Mapping[str, Any]) -> Iterator[ImageItem]:
    conf, up = data["configured"], data["upstream"]
    for c, u in zip(conf["images"], up["images"], strict=True):
        yield ImageItem(
            name=str(c["name"]),
            upstream_ref=str(u["ref"]),
            ref=str(c["ref"]),
            archs=[str(conf["arch"])],
            hosts=[host],
        )


def _merge_files(items: Iterable[FileItem]) -> list[FileItem]:
    out: dict[str, FileItem] = {}
    for item in items:
        seen = out.setdefault(item.upstream_url, item)
        if seen is item:
            continue
        if seen.pinned != item.pinned:
            raise OfflineError(
                f"{item.upstream_url}: hosts {seen.hosts[0]} and {item.hosts[0]} pin "
                "different sha256 values in kubeforge_checksums"
            )
        seen.hosts += [h for h in item.hosts if h not in seen.hosts]
    return list(out.values())


def _merge_images(items: Iterable[ImageItem]) -> list[ImageItem]:
    out: dict[str, ImageItem] = {}
    for item in items:
        seen = out.setdefault(item.upstream_ref, item)
        if seen is not item:
            seen.hosts += [h for h in item.hosts if h not in seen.hosts]
            seen.archs += [a for a in item.archs if a not in seen.archs]
    return sorted(out.values(), key=lambda i: i.upstream_ref)


def parse_manifest(raw: Mapping[str, Any]) -> Manifest:
    """The JSON playbooks/offline-manifest.yml writes -> one entry per file and image."""
    if raw.get("format") != MANIFEST_FORMAT:
        raise OfflineError(
            f"manifest format {raw.get('format')!r} is not {MANIFEST_FORMAT}: "
            "written by another version of playbooks/offline-manifest.yml"
        )
    hosts: Mapping[str, Any] = raw.get("hosts") or {}
    if not hosts:
        raise OfflineError("the manifest names no host: is the inventory empty?")
    files = _merge_files(f for h, d in hosts.items() for f in _host_files(h, d))
    images = _merge_images(i for h, d in hosts.items() for i in _host_images(h, d))
    repos = {str(d["configured"].get("files_repo", "")) for d in hosts.values()}
    return Manifest(files, images, dict(raw.get("image_prefixes", {})), sorted(repos)[-1])


def merge_manifests(parts: Sequence[Manifest]) -> Manifest:
    """Manifests of several --arch runs as one."""
    return Manifest(
        _merge_files(f for m in parts for f in m.files),
        _merge_images(i for m in parts for i in m.images),
        parts[0].prefixes,
        parts[0].files_repo,
    )


def ansible_playbook() -> str:
    """The ansible-playbook of this Python's virtualenv (make setup's), else PATH's."""
    beside = Path(sys.executable).parent / "ansible-playbook"
    found = str(beside) if beside.is_file() else shutil.which("ansible-playbook")
    if not found:
        raise OfflineError(
            "ansible-playbook not found: run `make setup` and use the virtualenv's python3 "
            "(or pass --manifest FILE written by playbooks/offline-manifest.yml)"
        )
    return found


def run_manifest_playbook(inventory: str, arch: str | None) -> dict[str, Any]:
    """Run playbooks/offline-manifest.yml on the inventory (it connects to no host)."""
    if not Path(inventory).exists():
        raise OfflineError(f"inventory {inventory} does not exist")
    with tempfile.TemporaryDirectory(prefix="kubeforge-offline-") as tmp:
        out = Path(tmp) / "manifest.json"
        argv = [ansible_playbook(), "-i", str(Path(inventory).resolve()), str(PLAYBOOK)]
        argv += ["-e", json.dumps({"offline_manifest_file": str(out)})]
        if arch:
            argv += ["-e", json.dumps({"image_arch": arch})]
        env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
        done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0 or not out.is_file():
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-25:])
            raise OfflineError(
                f"evaluating inventory {inventory} failed (playbooks/offline-manifest.yml, "
                f"exit {done.returncode}):\n{tail}"
            )
        data: dict[str, Any] = json.loads(out.read_text())
        return data


def split_ref(ref: str) -> tuple[str, str, str]:
    """registry.k8s.io/coredns/coredns:v1.13.1 -> (registry.k8s.io, coredns/coredns, v1.13.1);
    a reference without a registry host is Docker Hub's (docker.io/library/...)."""
    name, sep, digest = ref.partition("@")
    tag = ""
    if not sep:
        head, _, last = name.rpartition("/")
        if ":" in last:
            last, tag = last.split(":", 1)
        name = f"{head}/{last}" if head else last
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, rest
    else:
        registry, path = "docker.io", name
    if registry == "docker.io" and "/" not in path:
        path = f"library/{path}"
    if not path or not (tag or digest):
        raise OfflineError(f"image {ref!r} names no repository and tag (or digest)")
    return registry, path, digest if sep else tag


def join_ref(registry: str, path: str, tag: str) -> str:
    return f"{registry}/{path}{'@' if tag.startswith('sha256:') else ':'}{tag}"


def archive_path(ref: str) -> str:
    """Where an image's OCI archive lands under the mirror: images/<registry>/<path>/<tag>.tar.
    (skopeo reads ':' as a separator in oci-archive:PATH, so none is kept.)"""
    registry, path, tag = split_ref(ref)
    if any(s in ("", ".", "..") for s in path.split("/")):
        raise OfflineError(f"image {ref!r}: its repository path is not a relative path")
    return f"{IMAGES_DIR}/{registry.replace(':', '_')}/{path}/{tag.replace(':', '-')}.tar"


def rebase_ref(ref: str, registry: str) -> str:
    """The same repository path and tag under another registry (or registry/prefix)."""
    _, path, tag = split_ref(ref)
    return join_ref(registry.rstrip("/"), path, tag)


def prefix_of(upstream_ref: str, prefixes: Mapping[str, str]) -> str | None:
    """The *_image_repo variable an upstream image reference is built from."""
    for var, value in sorted(prefixes.items(), key=lambda kv: -len(kv[1])):
        if upstream_ref.startswith(value.rstrip("/") + "/"):
            return var
    return None


def push_destination(
    item: ImageItem, registry: str, overrides: Mapping[str, str], prefixes: Mapping[str, str]
) -> str:
    """Where `push` puts an image: under its prefix's new value (REGISTRY, or the
    --prefix given for that variable), at upstream's path below the prefix."""
    var = prefix_of(item.upstream_ref, prefixes)
    if var is None:
        registry_host, path, tag = split_ref(item.upstream_ref)
        return join_ref(registry.rstrip("/"), f"{registry_host}/{path}", tag)
    rest = item.upstream_ref[len(prefixes[var].rstrip("/")) + 1 :]
    return f"{overrides.get(var, registry).rstrip('/')}/{rest}"
