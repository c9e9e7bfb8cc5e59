"""Where kubeforge puts things on the hosts: kubespray's path variables
(bin_dir, kube_config_dir, kube_cert_dir, etcd_cert_dir, kube_manifest_dir).

kubeforge_path_errors checks them (preflight, and reset before it removes
anything), kubeforge_path_disagreements that the cluster's hosts agree (preflight);
kubeforge_cert_path maps a PKI file's name in the control host's layout
(certificates_dir: ``ca.crt``, ``etcd/ca.crt``) to its path on a host.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

PATH_VARS = ("bin_dir", "kube_config_dir", "kube_cert_dir", "etcd_cert_dir", "kube_manifest_dir")
# The directories reset.yml removes whole (bin_dir: only the binaries kubeforge installed).
REMOVED_DIRS = ("kube_config_dir", "kube_cert_dir", "etcd_cert_dir", "kube_manifest_dir")
# Directories none of REMOVED_DIRS may be: the system's, those of other
# software (removing one would break the host), and every directory above one
# of them (PROTECTED_DIRS adds those).
_PROTECTED = (
    ("/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/media", "/mnt",
     "/opt", "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/var",
     "/usr/bin", "/usr/sbin", "/usr/lib", "/usr/lib64", "/usr/libexec", "/usr/share",
     "/usr/include",
     "/usr/local", "/usr/local/bin", "/usr/local/sbin", "/usr/local/lib", "/usr/local/share",
     "/var/lib", "/var/log", "/var/cache", "/var/tmp", "/var/spool", "/var/backups",
     "/etc/ssl", "/etc/ssl/certs", "/etc/ssl/private", "/etc/pki", "/etc/ssh", "/etc/default",
     "/etc/systemd", "/etc/systemd/system", "/etc/apt", "/etc/security", "/etc/sysctl.d",
     "/etc/containerd", "/etc/cni", "/opt/cni", "/opt/cni/bin",
     "/var/lib/kubelet", "/var/lib/etcd", "/var/lib/containerd", "/var/lib/kubeforge")
)  # fmt: skip
PROTECTED_DIRS = frozenset(
    str(d) for p in _PROTECTED for d in (PurePosixPath(p), *PurePosixPath(p).parents)
)
# Characters a path may hold: they go unquoted into systemd units and flags.
_PATH = re.compile(r"/[A-Za-z0-9._+@/-]*")
_ETCD_PREFIX = "etcd/"


def _path_error(name: str, value: Any) -> str | None:
    if not isinstance(value, str) or not _PATH.fullmatch(value):
        return (
            f"{name} {value!r} is not an absolute path of letters, digits and ._+@/- "
            "(it goes unquoted into systemd units and command-line flags)"
        )
    if posixpath.normpath(value) != value or value.startswith("//"):
        return f"{name} {value!r} is not in normal form; write {posixpath.normpath(value)!r}"
    return None


def _removed_dir_error(name: str, value: str) -> str | None:
    if value not in PROTECTED_DIRS:
        return None
    return (
        f"{name} {value!r} is, or holds, a directory of the system or of other software: "
        "reset.yml removes this directory with all it holds; choose a directory of its own"
    )


def kubeforge_path_errors(paths: Mapping[str, Any]) -> list[str]:
    """Problems of the path variables in `paths` (name -> value), one message
    each, naming the variable."""
    errors = [e for name in PATH_VARS if (e := _path_error(name, paths.get(name)))]
    if errors:
        return errors
    errors += [e for name in REMOVED_DIRS if (e := _removed_dir_error(name, paths[name]))]
    if paths["etcd_cert_dir"] == paths["kube_cert_dir"]:
        errors.append(
            f"etcd_cert_dir and kube_cert_dir are both {paths['kube_cert_dir']!r}: the etcd CA and "
            "the Kubernetes CA would overwrite each other (both are ca.crt); "
            "give etcd its own directory"
        )
    for other in ("kube_config_dir", "kube_cert_dir", "etcd_cert_dir", "bin_dir"):
        if paths["kube_manifest_dir"] == paths[other]:
            errors.append(
                f"kube_manifest_dir and {other} are both {paths[other]!r}: the kubelet runs every "
                "file of kube_manifest_dir as a static pod; give the manifests their own directory"
            )
    return errors


def kubeforge_path_disagreements(paths_by_host: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """One message per path variable whose value differs between the hosts
    (host -> their path variables): one host runs commands on another with
    its own values (etcdctl, kubectl, a joining etcd member)."""
    errors = []
    for name in PATH_VARS:
        hosts_by_value: dict[str, list[str]] = {}
        for host, paths in paths_by_host.items():
            hosts_by_value.setdefault(str(paths.get(name)), []).append(host)
        if len(hosts_by_value) > 1:
            where = "; ".join(
                f"{v} on {', '.join(sorted(h))}" for v, h in sorted(hosts_by_value.items())
            )
            errors.append(
                f"{name} differs between the hosts of the cluster ({where}): set it once for "
                "all of them, in group_vars/all (kubespray's sample sets some in "
                "group_vars/k8s_cluster, which etcd-only hosts do not read)"
            )
    return errors


def kubeforge_cert_path(name: str, kube_cert_dir: str, etcd_cert_dir: str) -> str:
    """The path on a host of the PKI file `name` (as named under the control
    host's certificates_dir): etcd's under etcd_cert_dir, the rest under
    kube_cert_dir."""
    if name.startswith(_ETCD_PREFIX):
        return posixpath.join(etcd_cert_dir, name[len(_ETCD_PREFIX) :])
    return posixpath.join(kube_cert_dir, name)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "kubeforge_path_errors": kubeforge_path_errors,
            "kubeforge_path_disagreements": kubeforge_path_disagreements,
            "kubeforge_cert_path": kubeforge_cert_path,
        }
