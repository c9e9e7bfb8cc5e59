"""Filters turning the download manifest into per-run and per-host work lists.

A manifest entry (role `download`, variable `download_files`) looks like::

    name: etcd                     # key in kubeforge_checksums
    version: 3.6.8
    url: https://.../etcd-v3.6.8-linux-amd64.tar.gz
    checksum_url: https://.../SHA256SUMS   # used when no checksum is pinned
    groups: [etcd, kube_control_plane]     # hosts in any of these get it
    unpack: true                           # a tarball to unpack on the control host
    install: {etcd-v3.6.8-linux-amd64/etcd: /usr/local/bin/etcd, ...}
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from typing import Any

Entry = Mapping[str, Any]


def _wanted(entry: Entry, group_names: Iterable[str]) -> bool:
    return bool(set(entry.get("groups", [])) & set(group_names))


def cache_path(entry: Entry, cache_dir: str) -> str:
    """Where the verified file sits on the control host (one flat directory)."""
    name = f"{entry['name']}_{entry['version']}_{posixpath.basename(entry['url'])}"
    return posixpath.join(cache_dir, name)


def unpack_dir(entry: Entry, cache_dir: str) -> str:
    return cache_path(entry, cache_dir) + ".d"


def checksum(entry: Entry, pinned: Mapping[str, Any], arch: str) -> str:
    """get_url's checksum argument: the pinned sha256 if any, else the checksum URL."""
    value = pinned.get(str(entry["name"]), {}).get(str(entry["version"]), {}).get(arch)
    if value:
        return f"sha256:{str(value).removeprefix('sha256:')}"
    if not entry.get("checksum_url"):
        raise ValueError(f"download {entry['name']}: no pinned sha256 and no checksum_url")
    return f"sha256:{entry['checksum_url']}"


def kubeforge_downloads_needed(
    files: Iterable[Entry], hostvars: Mapping[str, Mapping[str, Any]], hosts: Iterable[str]
) -> list[Entry]:
    """Manifest entries needed by at least one of the hosts, each once."""
    host_groups = [hostvars[h].get("group_names", []) for h in hosts]
    return [e for e in files if any(_wanted(e, g) for g in host_groups)]


def kubeforge_download_installs(
    files: Iterable[Entry], group_names: Iterable[str], cache_dir: str
) -> list[dict[str, str]]:
    """(src on the control host, dest on the host, entry name) for one host."""
    groups = list(group_names)
    out: list[dict[str, str]] = []
    for entry in files:
        if not _wanted(entry, groups):
            continue
        for member, dest in sorted(entry["install"].items()):
            if entry.get("unpack"):
                src = posixpath.join(unpack_dir(entry, cache_dir), member)
            else:
                src = cache_path(entry, cache_dir)
            key = posixpath.relpath(src, cache_dir)
            out.append({"src": src, "dest": dest, "name": str(entry["name"]), "key": key})
    return out


def _same_source(recorded: Any, key: str) -> bool:
    """Whether a host's record names the file `key` (relative to the cache): as
    recorded now, or as earlier records did, by its path in a cache directory
    (whichever: the same name in any cache is the same verified file)."""
    text = str(recorded) if recorded is not None else ""
    return text == key or text.endswith("/" + key)


def kubeforge_download_uncached(
    entries: Iterable[Entry], cached: Iterable[str], cache_dir: str
) -> list[Entry]:
    """Entries whose verified file is not in the control host's cache yet."""
    present = set(cached)
    return [e for e in entries if cache_path(e, cache_dir) not in present]


def kubeforge_download_todo(
    installs: Iterable[Mapping[str, str]], installed: Mapping[str, str], missing: Iterable[str]
) -> list[Mapping[str, str]]:
    """Installs a host lacks: missing files, or files recorded from another
    source (another version or file; not another cache directory)."""
    gone = set(missing)
    return [
        i
        for i in installs
        if i["dest"] in gone or not _same_source(installed.get(i["dest"]), i["key"])
    ]


def kubeforge_download_record(
    installs: Iterable[Mapping[str, str]], installed: Mapping[str, Any]
) -> dict[str, str]:
    """What a host's record says after this run: each installed file by its
    name relative to the cache, or as the record names it already when that
    is the same file (a record of an earlier release or cache stays as it is)."""
    out: dict[str, str] = {}
    for i in installs:
        recorded = installed.get(i["dest"])
        out[i["dest"]] = str(recorded) if _same_source(recorded, i["key"]) else i["key"]
    return out


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "kubeforge_downloads_needed": kubeforge_downloads_needed,
            "kubeforge_download_installs": kubeforge_download_installs,
            "kubeforge_download_record": kubeforge_download_record,
            "kubeforge_download_cache_path": cache_path,
            "kubeforge_download_unpack_dir": unpack_dir,
            "kubeforge_download_checksum": checksum,
            "kubeforge_download_uncached": kubeforge_download_uncached,
            "kubeforge_download_todo": kubeforge_download_todo,
        }
