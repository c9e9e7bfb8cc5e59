"""The download role's per-host work lists (plugins/filter/kubeforge_download.py):
which files a host lacks, and what its record says, keyed by the file's name in
the control host's cache, not by the cache's directory."""

from __future__ import annotations

from typing import Any

import kubeforge_download as kd

ETCD: dict[str, Any] = {
    "name": "etcd",
    "version": "3.6.8",
    "url": "https://github.com/etcd-io/etcd/releases/download/v3.6.8/etcd-v3.6.8-linux-amd64.tar.gz",
    "groups": ["etcd"],
    "unpack": True,
    "install": {"etcd-v3.6.8-linux-amd64/etcd": "/usr/local/bin/etcd"},
}
KUBELET: dict[str, Any] = {
    "name": "kubelet",
    "version": "1.37.2",
    "url": "https://dl.k8s.io/release/v1.37.2/bin/linux/amd64/kubelet",
    "groups": ["k8s_cluster"],
    "install": {"kubelet": "/usr/local/bin/kubelet"},
}
CACHE = "/root/.cache/kubeforge/downloads"
ETCD_KEY = "etcd_3.6.8_etcd-v3.6.8-linux-amd64.tar.gz.d/etcd-v3.6.8-linux-amd64/etcd"


def installs(cache: str = CACHE, groups: tuple[str, ...] = ("etcd", "k8s_cluster")) -> Any:
    return kd.kubeforge_download_installs([ETCD, KUBELET], list(groups), cache)


def test_each_install_names_its_file_relative_to_the_cache() -> None:
    found = {i["dest"]: i for i in installs()}
    assert found["/usr/local/bin/etcd"]["key"] == ETCD_KEY
    assert found["/usr/local/bin/etcd"]["src"] == f"{CACHE}/{ETCD_KEY}"
    assert found["/usr/local/bin/kubelet"]["key"] == "kubelet_1.37.2_kubelet"
    assert [i["dest"] for i in installs(groups=("k8s_cluster",))] == ["/usr/local/bin/kubelet"]


def test_a_host_recorded_with_another_cache_directory_lacks_nothing() -> None:
    record = kd.kubeforge_download_record(installs("/elsewhere/cache"), {})
    assert record == {
        "/usr/local/bin/etcd": ETCD_KEY,
        "/usr/local/bin/kubelet": "kubelet_1.37.2_kubelet",
    }
    assert kd.kubeforge_download_todo(installs(), record, []) == []
    # A record of earlier releases names the full path in their cache.
    old = {"/usr/local/bin/etcd": f"/home/ops/.cache/kubeforge/downloads/{ETCD_KEY}",
           "/usr/local/bin/kubelet": f"{CACHE}/kubelet_1.37.2_kubelet"}  # fmt: skip
    assert kd.kubeforge_download_todo(installs("/tmp/c"), old, []) == []
    # ... and stays as it is (no change to the host's record).
    assert kd.kubeforge_download_record(installs("/tmp/c"), old) == old


def test_another_version_a_missing_file_or_no_record_is_installed() -> None:
    record = kd.kubeforge_download_record(installs(), {})
    older = {**record, "/usr/local/bin/kubelet": f"{CACHE}/kubelet_1.36.5_kubelet"}
    todo = kd.kubeforge_download_todo(installs(), older, [])
    assert [i["dest"] for i in todo] == ["/usr/local/bin/kubelet"]
    assert kd.kubeforge_download_record(installs(), older)["/usr/local/bin/kubelet"] == (
        "kubelet_1.37.2_kubelet"
    )
    gone = kd.kubeforge_download_todo(installs(), record, ["/usr/local/bin/etcd"])
    assert [i["dest"] for i in gone] == ["/usr/local/bin/etcd"]
    assert len(kd.kubeforge_download_todo(installs(), {}, [])) == 2
    # A name that merely ends like the file is another file.
    near = {**record, "/usr/local/bin/kubelet": "/cache/oldkubelet_1.37.2_kubelet"}
    assert [i["dest"] for i in kd.kubeforge_download_todo(installs(), near, [])] == [
        "/usr/local/bin/kubelet"
    ]
