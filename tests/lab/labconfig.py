"""Fixed facts of the local lab: where it lives, its addresses, what it serves.

The committed inventory/lab/group_vars name the same mirror and registry
addresses; tests/unit/test_lab_config.py keeps the two in step.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
LAB_INVENTORY = REPO / "inventory" / "lab"
DEFAULTS_DIR = REPO / "roles" / "kubeforge_defaults" / "defaults" / "main"

NAME = "kubeforge-lab"
LABEL = "io.kubeforge.lab"
SUBNET = ipaddress.ip_network("10.213.0.0/24")
GATEWAY = "10.213.0.1"
MIRROR_IP = "10.213.0.2"
REGISTRY_IP = "10.213.0.3"
REGISTRY_PORT = 5000
# The registry is also published on loopback so that the Docker engine on
# this machine can push to it without an insecure-registries setting.
REGISTRY_PUSH = "127.0.0.1:5213"
FIRST_NODE_HOST = 11
MAX_NODES = 12
ARCH = "amd64"


def cache_dir() -> Path:
    """Root of every cache the lab keeps outside the repository."""
    env = os.environ.get("KUBEFORGE_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "kubeforge"


def mirror_url() -> str:
    return f"http://{MIRROR_IP}"


def registry_addr() -> str:
    return f"{REGISTRY_IP}:{REGISTRY_PORT}"


def node_ip(index: int) -> str:
    """Address of node<index> (1-based)."""
    return str(SUBNET.network_address + FIRST_NODE_HOST + index - 1)


@dataclass(frozen=True)
class Versions:
    """Component versions the lab builds, read from the collection's defaults."""

    kube: tuple[str, ...]  # newest first: the default and the minor before it
    etcd: str
    containerd: str
    runc: str
    crictl: str
    cni: str
    helm: str
    pause: str
    coredns: str
    flannel: str
    flannel_cni: str
    calico: str
    dns_autoscaler: str
    metrics_server: str
    local_path_provisioner: str
    traefik: str
    gateway_api: str


def load_defaults() -> dict[str, object]:
    """Merge the YAML files of the kubeforge_defaults role (no templating)."""
    merged: dict[str, object] = {}
    for path in sorted(DEFAULTS_DIR.glob("*.yml")):
        data = yaml.safe_load(path.read_text()) or {}
        merged.update(data)
    return merged


def _minor(version: str) -> tuple[int, int]:
    major, minor = version.split(".")[:2]
    return int(major), int(minor)


# The lab builds the minor before the default for the upgrade scenario, which
# only `make test-full` runs; `make test` sets this to 0 and the lab builds (and
# mirrors) the default release alone: about 5 minutes less on a new machine.
KUBE_PREVIOUS_ENV = "KUBEFORGE_LAB_KUBE_PREVIOUS"


def env_flag(name: str, default: bool) -> bool:
    """A switch of the lab's tools from the environment: 1, 0 or unset (default)."""
    value = os.environ.get(name, "")
    if value not in ("", "0", "1"):
        raise SystemExit(f"lab: {name} must be 1 or 0, not {value!r}")
    return default if value == "" else value == "1"


def with_previous_kube() -> bool:
    return env_flag(KUBE_PREVIOUS_ENV, True)


def versions() -> Versions:
    d = load_defaults()
    default = str(d["kube_version"])
    supported = [str(v) for v in d["kube_supported_versions"]]  # type: ignore[attr-defined]
    older = [v for v in supported if _minor(v) < _minor(default)]
    if not older:
        raise SystemExit("kube_supported_versions has no minor below kube_version")
    previous = max(older, key=_minor)
    # Two images are built from stand-in sources (their upstream source is not
    # on the Go module proxy); the lab's group_vars give their own tags.
    lab = lab_group_vars()
    return Versions(
        kube=(default, previous) if with_previous_kube() else (default,),
        etcd=str(d["etcd_version"]),
        containerd=str(d["containerd_version"]),
        runc=str(d["runc_version"]),
        crictl=str(d["crictl_version"]),
        cni=str(d["cni_version"]),
        helm=str(d["helm_version"]),
        pause=str(d["pod_infra_version"]),
        coredns=str(d["coredns_version"]),
        flannel=str(d["flannel_version"]),
        flannel_cni=str(lab["flannel_cni_image_tag"]).removeprefix("v"),
        calico=str(d["calico_version"]),
        dns_autoscaler=str(lab["dnsautoscaler_image_tag"]).removeprefix("v"),
        metrics_server=str(d["metrics_server_version"]),
        local_path_provisioner=str(d["local_path_provisioner_version"]),
        traefik=str(d["traefik_version"]),
        gateway_api=str(d["gateway_api_version"]),
    )


REGISTRY_PREFIXES = ("kube_image_repo", "docker_image_repo", "quay_image_repo", "github_image_repo")


def lab_group_vars() -> dict[str, object]:
    """The committed lab group_vars for all hosts, merged in file order."""
    merged: dict[str, object] = {}
    for path in sorted((LAB_INVENTORY / "group_vars" / "all").glob("*.yml")):
        merged.update(yaml.safe_load(path.read_text()) or {})
    return merged


def render(variables: dict[str, object]) -> dict[str, object]:
    """Resolve `{{ var }}` references among string values, as Ansible would."""
    import jinja2

    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    resolved = dict(variables)
    for _ in range(10):
        changed = False
        for key, value in resolved.items():
            if isinstance(value, str) and "{{" in value:
                try:
                    new = env.from_string(value).render(resolved)
                except jinja2.TemplateError:
                    continue  # uses an Ansible filter or an unset variable: not needed here
                if new != value:
                    resolved[key] = new
                    changed = True
        if not changed:
            return resolved
    raise ValueError("variables reference each other in a loop")


def default_images(overrides: dict[str, object] | None = None) -> list[str]:
    """Every image (repo:tag) the collection's defaults name, after overrides."""
    variables = render({**load_defaults(), **(overrides or {})})
    found = []
    for key, repo in sorted(variables.items()):
        if key.endswith("_image_repo") and key not in REGISTRY_PREFIXES:
            tag = variables[key.removesuffix("_repo") + "_tag"]
            found.append(f"{repo}:{tag}")
    return found


def cluster_ranges() -> list[str]:
    """The service and pod ranges of a lab cluster (defaults and lab group_vars)."""
    resolved = render({**load_defaults(), **lab_group_vars()})
    return [str(resolved["kube_service_addresses"]), str(resolved["kube_pods_subnet"])]
