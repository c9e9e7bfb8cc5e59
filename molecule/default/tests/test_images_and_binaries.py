"""Everything the cluster runs came from the lab: every image from the lab
registry, every binary byte-identical to the file the lab mirror serves.

The download role records on each host, in /var/lib/kubeforge/installed.json,
which file of the control host's download cache each installed path came from
(`<cache>/<name>_<version>_<file name of the URL>`, plus `.d/<member>` for a
file unpacked from a tarball). That names the mirror URL; the installed file's
sha256 must equal that of the file (or tarball member) the mirror serves there,
and the mirror's own `<file>.sha256` must match what it serves.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
import shlex
import tarfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import artifacts
import labconfig
import pytest
from clustercheck import Inventory, Kubectl, run_ok

RECORD = "/var/lib/kubeforge/installed.json"
SOURCE = re.compile(
    r"(?:^|/)(?P<name>[^/]+?)_(?P<version>\d[^/_]*)_(?P<file>[^/]+?)(?:\.d/(?P<member>.+))?$"
)
# Installed by kubeforge's download role only; anything else there is unaccounted for.
BIN_DIRS = ("/usr/local/bin", "/opt/cni/bin")
# Copied into /opt/cni/bin by the network plugin's DaemonSet from its images
# (flannel's flannel-cni-plugin, calico's cni; checked with the images).
FROM_IMAGES = {"/opt/cni/bin/flannel", "/opt/cni/bin/calico", "/opt/cni/bin/calico-ipam"}


def images_of(pod: dict[str, Any]) -> Iterator[str]:
    spec, status = pod["spec"], pod.get("status", {})
    for kind in ("containers", "initContainers", "ephemeralContainers"):
        yield from (c["image"] for c in spec.get(kind, []))
    for kind in ("containerStatuses", "initContainerStatuses"):
        for c in status.get(kind, []):
            yield c["image"]
            if c.get("imageID"):
                yield c["imageID"]


def test_every_pod_runs_images_from_the_lab_registry(
    kubectl: Kubectl, lab_env: dict[str, str]
) -> None:
    registry = lab_env["LAB_REGISTRY"] + "/"
    pods = kubectl.json("get", "pods", "--all-namespaces")["items"]
    assert pods, "no pod runs in the cluster"
    foreign = {
        f"{p['metadata']['namespace']}/{p['metadata']['name']}": image
        for p in pods
        for image in images_of(p)
        if not image.startswith(registry)
    }
    assert not foreign, f"images not from {registry}: {foreign}"


def test_every_node_holds_only_images_from_the_lab_registry(
    inventory: Inventory, lab_env: dict[str, str]
) -> None:
    registry = lab_env["LAB_REGISTRY"] + "/"
    for name in inventory.groups["k8s_cluster"]:
        out = run_ok(inventory.host(name), "crictl images -o json", "crictl images")
        images = json.loads(out)["images"]
        assert images, f"{name}: containerd holds no image"
        for image in images:
            refs = image.get("repoTags", []) + image.get("repoDigests", [])
            assert refs, f"{name}: image {image['id']} has no name, its origin is unknown"
            foreign = [r for r in refs if not r.startswith(registry)]
            assert not foreign, f"{name}: images not from {registry}: {foreign}"


class Mirror:
    """sha256 of what the lab mirror serves, fetched once per file."""

    def __init__(self, base_url: str, scratch: Path) -> None:
        self.base_url = base_url.rstrip("/")
        self.scratch = scratch
        self.paths = [m.path for m in artifacts.mirror_files(labconfig.versions())]
        self._sums: dict[str, dict[str, str]] = {}

    def url_for(self, file: str, version: str) -> str | None:
        """The mirror URL of a download cache file name (`file` of `version`)."""
        for path in self.paths:
            folders, base = path.split("/")[:-1], posixpath.basename(path)
            # The version is a folder (.../v1.37.2/...) or in the name (helm-v3.22.0-...,
            # a source archive v3.31.0.tar.gz).
            in_name = f"-v{version}-" in base or base.startswith(f"v{version}.")
            if base == file and (f"v{version}" in folders or in_name):
                return f"{self.base_url}/{path}"
        return None

    def sums(self, url: str) -> dict[str, str]:
        """{"": sha256 of the file} plus {member: sha256} for a tarball."""
        if url not in self._sums:
            local = self.scratch / hashlib.sha256(url.encode()).hexdigest()
            digest = hashlib.sha256()
            with urllib.request.urlopen(url, timeout=60) as resp, local.open("wb") as out:
                for chunk in iter(lambda: resp.read(1 << 20), b""):
                    digest.update(chunk)
                    out.write(chunk)
            with urllib.request.urlopen(url + ".sha256", timeout=30) as resp:
                published = resp.read().decode().split()[0]
            assert digest.hexdigest() == published, f"{url}: mirror's .sha256 says {published}"
            sums = {"": digest.hexdigest()}
            if url.endswith((".tar.gz", ".tgz")):
                with tarfile.open(local) as tar:
                    for member in tar.getmembers():
                        data = tar.extractfile(member) if member.isfile() else None
                        if data is not None:
                            sums[member.name.removeprefix("./")] = hashlib.sha256(
                                data.read()
                            ).hexdigest()
            local.unlink()
            self._sums[url] = sums
        return self._sums[url]


@pytest.fixture(scope="module")
def mirror(lab_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Mirror:
    files_repo = labconfig.lab_group_vars().get("files_repo")
    assert files_repo == lab_env["LAB_MIRROR_URL"], (
        f"inventory/lab/group_vars set files_repo {files_repo}, the lab mirror is "
        f"{lab_env['LAB_MIRROR_URL']}"
    )
    return Mirror(lab_env["LAB_MIRROR_URL"], tmp_path_factory.mktemp("mirror"))


def test_every_binary_is_recorded_and_identical_to_the_lab_mirror_file(
    inventory: Inventory, mirror: Mirror
) -> None:
    hosts = list(dict.fromkeys(inventory.groups["k8s_cluster"] + inventory.groups["etcd"]))
    for name in hosts:
        host = inventory.host(name)
        record_file = host.file(RECORD)
        assert record_file.exists, f"{name}: {RECORD} is missing"
        record: dict[str, str] = json.loads(record_file.content_string)
        assert "/usr/local/bin/kubelet" in record, f"{name}: {RECORD} has no kubelet: {record}"

        listed = run_ok(host, f"find {' '.join(BIN_DIRS)} -maxdepth 1 -type f", "list binaries")
        unrecorded = set(listed.split()) - set(record) - FROM_IMAGES
        assert not unrecorded, f"{name}: binaries kubeforge did not record: {sorted(unrecorded)}"

        expected: dict[str, str] = {}
        for dest, src in record.items():
            m = SOURCE.search(src)
            assert m, f"{name}: {dest} came from {src}, not a download cache file"
            url = mirror.url_for(m["file"], m["version"])
            assert url, f"{name}: {dest} ({src}) is no file the lab mirror serves"
            sums = mirror.sums(url)
            member = m["member"] or ""
            assert member in sums, f"{name}: {url} has no member {member} ({dest})"
            expected[dest] = sums[member]

        out = run_ok(host, f"sha256sum {shlex.join(sorted(expected))}", "sha256sum")
        actual = {line.split()[1]: line.split()[0] for line in out.splitlines()}
        differ = {d: (actual.get(d), s) for d, s in expected.items() if actual.get(d) != s}
        assert not differ, f"{name}: installed files differ from the lab mirror's: {differ}"
