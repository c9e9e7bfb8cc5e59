"""The cluster report (cluster-info.yml): what each host said to
playbooks/files/cluster-info-probe.sh, what etcdctl and kubectl said on the
hosts they ran on, and the certificate report of kubeforge_certs, shaped into
one report (written as JSON), with version drift and problems found, and
rendered as text.

A host as the playbook hands it over (one dict per host of the run)::

    host: node1                  # inventory name
    groups: [etcd, k8s_cluster, kube_control_plane]
    address: 10.213.0.11         # ansible_host
    node_name: node1             # its Node object's name
    etcd_name: node1             # its etcd member name (etcd hosts)
    etcd_endpoint: https://10.213.0.11:2379
    apiserver_url: https://10.213.0.11:6443   # control-plane hosts
    pinned: {kube_version: 1.37.2, etcd_version: 3.6.8, ...}   # the inventory's versions
    unreachable: false
    error: ""                    # why the host could not be read
    probe: "@@ record\\n{...}"   # the probe's output

etcd and the API come as the registered results of the playbook's etcdctl and
kubectl loops (`results`, each with item.key, rc, stdout, stderr) and the host
they ran on.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

RECORD = "/var/lib/kubeforge/installed.json"

# Components in report order: download manifest name -> (short label, the
# inventory variable pinning its version). Names as in roles/download.
COMPONENTS: dict[str, tuple[str, str]] = {
    "kubelet": ("kubelet", "kube_version"),
    "kube-proxy": ("kube-proxy", "kube_version"),
    "kube-apiserver": ("apiserver", "kube_version"),
    "kube-controller-manager": ("controller-manager", "kube_version"),
    "kube-scheduler": ("scheduler", "kube_version"),
    "kubectl": ("kubectl", "kube_version"),
    "etcd": ("etcd", "etcd_version"),
    "containerd": ("containerd", "containerd_version"),
    "runc": ("runc", "runc_version"),
    "crictl": ("crictl", "crictl_version"),
    "cni": ("cni", "cni_version"),
    "helm": ("helm", "helm_version"),
    "calico_crds": ("calico CRDs", "calico_version"),
    "gateway_api_crds": ("Gateway API CRDs", "gateway_api_version"),
}
# What the download manifest installs on every host of a group, whatever the
# add-on switches (helm and the CRDs depend on them: reported when present).
EXPECTED_COMPONENTS: dict[str, tuple[str, ...]] = {
    "k8s_cluster": ("kubelet", "kube-proxy", "containerd", "runc", "crictl", "cni"),
    "kube_control_plane": (
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kubectl",
        "etcd",
    ),
    "etcd": ("etcd",),
}
# The systemd services kubeforge runs on the hosts of each group.
EXPECTED_SERVICES: dict[str, tuple[str, ...]] = {
    "k8s_cluster": ("containerd", "kubelet", "kube-proxy"),
    "kube_control_plane": ("kube-apiserver", "kube-controller-manager", "kube-scheduler"),
    "etcd": ("etcd",),
}
# apiserver_ha_mode vip: on the control-plane hosts.
VIP_SERVICES = ("haproxy", "keepalived")
ROLE_GROUPS = ("kube_control_plane", "etcd", "kube_node")

# The workloads of each add-on (roles/addons addons_units, roles/network_plugin
# network_plugin_rollouts): name, switch, namespace (or the variable naming
# it), kind, object name.
ADDONS: tuple[tuple[str, str, str, str, str], ...] = (
    ("coredns", "coredns", "kube-system", "deployment", "coredns"),
    ("dns-autoscaler", "dns_autoscaler", "kube-system", "deployment", "dns-autoscaler"),
    ("metrics-server", "metrics_server", "kube-system", "deployment", "metrics-server"),
    (
        "local-path-provisioner",
        "local_path_provisioner",
        "local_path_provisioner_namespace",
        "deployment",
        "local-path-provisioner",
    ),
    ("traefik", "ingress_controller", "ingress_controller_namespace", "daemonset", "traefik"),
    ("flannel", "flannel", "kube-flannel", "daemonset", "kube-flannel"),
    ("calico-node", "calico", "kube-system", "daemonset", "calico-node"),
    ("calico-kube-controllers", "calico", "kube-system", "deployment", "calico-kube-controllers"),
)

_VERSION = re.compile(r"\bv?(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)")
# A download cache path: <cache>/<name>_<version>_<file>[.d/<member>] (kubeforge_download).
_SOURCE = re.compile(r"(?:^|/)(?P<name>[^/]+?)_(?P<version>\d[^/_]*)_(?P<file>[^/]+?)(?:\.d/.+)?$")


def _natural(text: str) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text)]


def _bare(version: Any) -> str:
    """A version without its leading v and build metadata: v3.22.0+gabc -> 3.22.0."""
    return str(version or "").strip().removeprefix("v").split("+")[0]


def _true(value: Any) -> bool:
    return str(value).strip().lower() in ("true", "yes", "1")


def _json(text: Any) -> Any:
    try:
        return json.loads(str(text or ""))
    except ValueError:
        return None


def _error(text: Any) -> str:
    """An error message on one line, without Ansible's "Task failed: " prefix."""
    return " ".join(str(text or "").split()).removeprefix("Task failed: ")


def _first_line(text: Any) -> str:
    lines = [line.strip() for line in str(text or "").splitlines() if line.strip()]
    return lines[0] if lines else ""


# The probe ---------------------------------------------------------------------------------


def _sections(text: str) -> list[tuple[list[str], str]]:
    """The probe's output as (header words, body) pairs, in order."""
    out: list[tuple[list[str], str]] = []
    for chunk in re.split(r"^@@ ", str(text or ""), flags=re.M)[1:]:
        head, _, body = chunk.partition("\n")
        out.append((head.split(), body.strip()))
    return out


def _recorded(record: Mapping[str, Any]) -> dict[str, list[str]]:
    """Component -> the versions the download record names for its files."""
    found: dict[str, set[str]] = {}
    for src in record.values():
        m = _SOURCE.search(str(src))
        if m:
            found.setdefault(m["name"], set()).add(m["version"])
    return {name: sorted(versions) for name, versions in found.items()}


def _service(body: str) -> dict[str, str] | None:
    """A unit's state; None when systemd does not know it (not installed)."""
    props = dict(line.partition("=")[::2] for line in body.splitlines() if "=" in line)
    if props.get("LoadState") == "not-found":
        return None
    if "ActiveState" not in props:
        return {"active": "unknown", "sub": _first_line(body)[:120] or "no answer from systemctl"}
    return {"active": props["ActiveState"], "sub": props.get("SubState", "")}


def kubeforge_cluster_info_probe(text: str) -> dict[str, Any]:
    """What cluster-info-probe.sh printed on a host: its download record
    (component -> versions), the version each binary reports, its services,
    and where asked whether it reaches the API endpoint, its own apiserver's
    readiness and version, and whether it holds the VIP."""
    out: dict[str, Any] = {
        "record": None,
        "recorded": {},
        "binaries": {},
        "services": {},
        "endpoint": None,
        "apiserver": None,
        "vip": None,
        "complete": False,
    }
    apiserver: dict[str, Any] = {}
    for head, body in _sections(text):
        kind, args = head[0] if head else "", head[1:]
        if kind == "record":
            record = _json(body) if body else None
            out["record"] = record if isinstance(record, dict) else None
            out["recorded"] = _recorded(out["record"] or {})
        elif kind == "version" and args:
            line = _first_line(body)
            m = _VERSION.search(line)
            out["binaries"][args[0]] = m[1] if m else f"unknown ({line[:80]})"
        elif kind == "service" and args:
            state = _service(body)
            if state is not None:
                out["services"][args[0]] = state
        elif kind == "endpoint" and args:
            out["endpoint"] = {"address": args[0], "open": _first_line(body) == "open"}
        elif kind == "readyz":
            apiserver["ready"] = _first_line(body) == "ok"
            apiserver["detail"] = "" if apiserver["ready"] else " ".join(body.split())[:300]
        elif kind == "apiversion":
            data = _json(body)
            apiserver["version"] = data.get("gitVersion") if isinstance(data, dict) else None
        elif kind == "vip" and args:
            out["vip"] = {"address": args[0], "held": _first_line(body) == "held"}
        elif kind == "end":
            out["complete"] = True
    if apiserver:
        out["apiserver"] = {"ready": False, "detail": "", "version": None, **apiserver}
    return out


def kubeforge_cluster_info_pick(hosts: Iterable[Mapping[str, Any]], group: str, check: str) -> str:
    """The host to run etcdctl or kubectl on: the first reachable host of
    `group` where `check` passed (apiserver: its apiserver is ready; else the
    service named is active), else the first reachable host of `group`, else ""."""
    candidates = [
        h
        for h in hosts
        if group in (h.get("groups") or [])
        and not _true(h.get("unreachable"))
        and (h.get("probe") or {}).get("complete")
        and not h.get("error")
    ]

    def passed(h: Mapping[str, Any]) -> bool:
        if check == "apiserver":
            return bool((h["probe"].get("apiserver") or {}).get("ready"))
        return bool((h["probe"].get("services") or {}).get(check, {}).get("active") == "active")

    ordered = [h for h in candidates if passed(h)] + candidates
    return str(ordered[0]["host"]) if ordered else ""


# Hosts and versions ------------------------------------------------------------------------


def _components(probe: Mapping[str, Any], pinned: Mapping[str, Any]) -> dict[str, Any]:
    """Component -> recorded, binary and pinned version, and the one reported
    (the binary's own when it answered, else the record's)."""
    recorded: Mapping[str, list[str]] = probe.get("recorded") or {}
    binaries: Mapping[str, str] = probe.get("binaries") or {}
    out: dict[str, Any] = {}
    for name in [*COMPONENTS, *sorted(set(recorded) - set(COMPONENTS))]:
        if name not in recorded and name not in binaries:
            continue
        record = ",".join(recorded.get(name, []))
        binary = binaries.get(name)
        variable = COMPONENTS.get(name, ("", ""))[1]
        out[name] = {
            "version": binary if binary and _VERSION.fullmatch(binary) else record or binary,
            "recorded": record or None,
            "binary": binary,
            "pinned": (_bare(pinned.get(variable)) or None) if variable else None,
        }
    return out


def _wanted(groups: Iterable[str], table: Mapping[str, tuple[str, ...]]) -> list[str]:
    out: list[str] = []
    for group in ("k8s_cluster", "kube_control_plane", "etcd"):
        if group in groups:
            out += [n for n in table[group] if n not in out]
    return out


def _host(data: Mapping[str, Any], vip_mode: bool) -> dict[str, Any]:
    groups = list(data.get("groups") or [])
    reachable = not _true(data.get("unreachable"))
    raw = data.get("probe") or ""
    probe: Mapping[str, Any] = (
        raw if isinstance(raw, Mapping) else kubeforge_cluster_info_probe(raw)
    )
    probe = probe if reachable else {}
    read = reachable and not data.get("error") and bool(probe.get("complete"))
    return {
        "host": str(data["host"]),
        "roles": [g for g in ROLE_GROUPS if g in groups],
        "groups": groups,
        "address": str(data.get("address") or data["host"]),
        "node_name": data.get("node_name") or None,
        "reachable": reachable,
        "read": read,
        "error": _error(data.get("error"))
        or (None if read else "the probe's output is cut short" if reachable else "no answer"),
        "record": probe.get("record") is not None if read else None,
        "components": _components(probe, data.get("pinned") or {}) if read else {},
        "services": probe.get("services", {}) if read else {},
        "expected_components": _wanted(groups, EXPECTED_COMPONENTS),
        "expected_services": _wanted(groups, EXPECTED_SERVICES)
        + (list(VIP_SERVICES) if vip_mode and "kube_control_plane" in groups else []),
        "api_endpoint": probe.get("endpoint") if read else None,
        "apiserver": (
            {"url": data.get("apiserver_url"), **(probe.get("apiserver") or {})}
            if read and "kube_control_plane" in groups
            else None
        ),
        "vip": probe.get("vip") if read else None,
        "etcd_name": data.get("etcd_name") or None,
        "etcd_endpoint": data.get("etcd_endpoint") or None,
    }


def _drift_of(host: Mapping[str, Any], majority: Mapping[str, tuple[str, int]]) -> list[Any]:
    out: list[dict[str, Any]] = []
    comps: Mapping[str, Any] = host["components"]
    for name in host["expected_components"]:
        if name not in comps and host["record"]:
            out.append({"component": name, "version": None, "reasons": ["not installed"]})
    for name, c in comps.items():
        reasons: list[str] = []
        version = _bare(c["version"])
        if c["pinned"] and version != c["pinned"]:
            reasons.append(f"the inventory pins {c['pinned']}")
        common, count = majority.get(name, ("", 0))
        if common and version != common and count > 1:
            reasons.append(f"{count} other host(s) have {common}")
        # A binary that does not tell its version is no difference.
        binary = c["binary"] if _VERSION.fullmatch(str(c["binary"] or "")) else None
        if c["recorded"] and binary and _bare(binary) != _bare(c["recorded"]):
            reasons.append(f"the binary reports {c['binary']}, the download record {c['recorded']}")
        if reasons:
            out.append({"component": name, "version": c["version"], "reasons": reasons})
    return out


def _majorities(hosts: Sequence[Mapping[str, Any]]) -> dict[str, tuple[str, int]]:
    """Component -> its most common version over the hosts, when one version
    is strictly the most common."""
    counts: dict[str, Counter[str]] = {}
    for h in hosts:
        for name, c in h["components"].items():
            counts.setdefault(name, Counter())[_bare(c["version"])] += 1
    out: dict[str, tuple[str, int]] = {}
    for name, counter in counts.items():
        top = counter.most_common(2)
        if len(top) == 1 or top[0][1] > top[1][1]:
            out[name] = top[0]
    return out


def _running_drift(hosts: Sequence[Mapping[str, Any]], nodes: Sequence[Any]) -> list[Any]:
    """The kubelets and apiservers running another version than their binary."""
    out: list[dict[str, Any]] = []
    kubelets = {n["host"]: n["kubelet_version"] for n in nodes if n.get("host")}
    for h in hosts:
        comps = h["components"]
        running = {"kubelet": kubelets.get(h["host"])}
        if h.get("apiserver"):
            running["kube-apiserver"] = h["apiserver"].get("version")
        for name, version in running.items():
            if version and name in comps and _bare(version) != _bare(comps[name]["version"]):
                out.append(
                    {
                        "host": h["host"],
                        "component": name,
                        "version": comps[name]["version"],
                        "reasons": [
                            f"the running {name} reports {version}"
                            " (not restarted since its binary changed?)"
                        ],
                    }
                )
    return out


def _drift(hosts: Sequence[Mapping[str, Any]], nodes: Sequence[Any]) -> list[dict[str, Any]]:
    read = [h for h in hosts if h["read"]]
    out: list[dict[str, Any]] = []
    for h in read:
        others = _majorities([o for o in read if o is not h])
        out += [{"host": h["host"], **d} for d in _drift_of(h, others)]
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for d in out + _running_drift(read, nodes):
        key = (d["host"], d["component"])
        if key in merged:
            merged[key]["reasons"] += d["reasons"]
        else:
            merged[key] = {**d, "reasons": list(d["reasons"])}
    order = list(COMPONENTS)
    return sorted(
        merged.values(),
        key=lambda d: (
            _natural(d["host"]),
            order.index(d["component"]) if d["component"] in order else len(order),
            d["component"],
        ),
    )


# Cluster reads (etcdctl, kubectl) ----------------------------------------------------------


def _outputs(read: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """item.key -> the registered result of one command of a loop."""
    out: dict[str, dict[str, Any]] = {}
    for r in read.get("results") or []:
        item = r.get("item") or {}
        if isinstance(item, Mapping) and item.get("key") and not r.get("skipped"):
            out[str(item["key"])] = dict(r)
    return out


def _failure(result: Mapping[str, Any] | None) -> str:
    if result is None:
        return "not run"
    if result.get("unreachable"):
        return f"unreachable: {_error(result.get('msg'))}"
    return (
        _first_line(result.get("stderr"))
        or _first_line(result.get("msg"))
        or (f"exit code {result.get('rc')}")
    )


def _etcd(read: Mapping[str, Any], hosts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    by_name = {
        h["etcd_name"]: h["host"] for h in hosts if h.get("etcd_name") and "etcd" in h["groups"]
    }
    by_url = {h["etcd_endpoint"]: h["host"] for h in hosts if h.get("etcd_endpoint")}
    source = str(read.get("host") or "")
    if not source:
        return {
            "read_from": None,
            "error": str(read.get("reason") or "no etcd host answered"),
            "members": [],
        }
    outs = _outputs(read)
    listed = _json((outs.get("members") or {}).get("stdout"))
    if not isinstance(listed, dict) or "members" not in listed:
        return {"read_from": source, "error": _failure(outs.get("members")), "members": []}
    statuses = {s.get("Endpoint"): s.get("Status") or {} for s in _json_list(outs, "status")}
    health = {h.get("endpoint"): h for h in _json_list(outs, "health")}
    leaders = {s.get("leader") for s in statuses.values() if s.get("leader")}
    members = []
    for m in listed.get("members") or []:
        urls = list(m.get("clientURLs") or [])
        url = next((u for u in urls if u in statuses or u in health), urls[0] if urls else None)
        status, checked = statuses.get(url, {}), health.get(url, {})
        host = by_name.get(m.get("name")) or next((by_url[u] for u in urls if u in by_url), None)
        members.append(
            {
                "name": m.get("name") or None,
                "id": f"{int(m.get('ID', 0)):x}",
                "host": host,
                "endpoint": url,
                "healthy": bool(checked.get("health")) if checked else False,
                "error": checked.get("error") or (None if status else "no status (did not answer)"),
                "leader": m.get("ID") in leaders,
                "learner": bool(m.get("isLearner")),
                "version": status.get("version"),
                "db_size": status.get("dbSize"),
                "db_size_in_use": status.get("dbSizeInUse"),
            }
        )
    members.sort(key=lambda m: _natural(str(m["host"] or m["name"] or "")))
    return {"read_from": source, "error": None, "members": members}


def _json_list(outs: Mapping[str, Mapping[str, Any]], key: str) -> list[dict[str, Any]]:
    data = _json((outs.get(key) or {}).get("stdout"))
    return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []


def _node(item: Mapping[str, Any], host_of: Mapping[str, str]) -> dict[str, Any]:
    meta, status = item.get("metadata") or {}, item.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    ready = conditions.get("Ready") or {}
    labels = meta.get("labels") or {}
    roles = sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/"))
    info = status.get("nodeInfo") or {}
    pressure = sorted(
        t for t, c in conditions.items() if t != "Ready" and c.get("status") == "True"
    )
    return {
        "name": meta.get("name"),
        "host": host_of.get(str(meta.get("name"))),
        "ready": ready.get("status", "Unknown"),
        "reason": None
        if ready.get("status") == "True"
        else ready.get("reason") or ready.get("message"),
        "roles": roles,
        "unschedulable": bool((item.get("spec") or {}).get("unschedulable")),
        "conditions": pressure,
        "kubelet_version": info.get("kubeletVersion"),
        "container_runtime": info.get("containerRuntimeVersion"),
    }


def _nodes(outs: Mapping[str, Any], hosts: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    host_of = {str(h["node_name"]): h["host"] for h in hosts if h.get("node_name")}
    listed = _json((outs.get("nodes") or {}).get("stdout"))
    items = listed.get("items") if isinstance(listed, dict) else None
    nodes = [_node(i, host_of) for i in items or []]
    return sorted(nodes, key=lambda n: _natural(str(n["name"])))


def kubeforge_cluster_info_addons(settings: Mapping[str, Any]) -> list[dict[str, str]]:
    """The add-on workloads the settings switch on: name, namespace, kind, object."""
    on = {
        "coredns": settings.get("dns_mode") == "coredns",
        # Role addons' own default (true) when the inventory does not set it.
        "dns_autoscaler": settings.get("dns_mode") == "coredns"
        and (
            settings.get("addons_dns_autoscaler_enabled") in (None, "")
            or _true(settings.get("addons_dns_autoscaler_enabled"))
        ),
        "metrics_server": _true(settings.get("metrics_server_enabled")),
        "local_path_provisioner": _true(settings.get("local_path_provisioner_enabled")),
        "ingress_controller": _true(settings.get("ingress_controller_enabled")),
        "flannel": settings.get("kube_network_plugin") == "flannel",
        "calico": settings.get("kube_network_plugin") == "calico",
    }
    return [
        {"name": name, "namespace": str(settings.get(ns, ns)), "kind": kind, "object": obj}
        for name, switch, ns, kind, obj in ADDONS
        if on[switch]
    ]


def _counts(obj: Mapping[str, Any], kind: str) -> dict[str, int]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if kind == "daemonset":
        keys = (
            "desiredNumberScheduled",
            "numberReady",
            "updatedNumberScheduled",
            "numberAvailable",
        )
        desired = int(status.get(keys[0]) or 0)
    else:
        keys = ("replicas", "readyReplicas", "updatedReplicas", "availableReplicas")
        desired = int(spec.get("replicas", 1) or 0)
    ready, updated, available = (int(status.get(k) or 0) for k in keys[1:])
    return {"desired": desired, "ready": ready, "updated": updated, "available": available}


def _addon_state(counts: Mapping[str, int]) -> str:
    if counts["desired"] == 0:
        return "no pods scheduled"
    if min(counts["ready"], counts["available"]) >= counts["desired"]:
        return "ready" if counts["updated"] >= counts["desired"] else "rolling out"
    return "not ready"


def _addons(
    expected: Sequence[Mapping[str, str]], outs: Mapping[str, Any], api_error: str | None
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for addon in expected:
        key = f"workloads {addon['namespace']}"
        listed = _json((outs.get(key) or {}).get("stdout"))
        entry: dict[str, Any] = dict(addon)
        if not isinstance(listed, dict):
            entry.update(state="unknown", error=api_error or _failure(outs.get(key)))
            out.append(entry)
            continue
        found = [
            o
            for o in listed.get("items") or []
            if str(o.get("kind", "")).lower() == addon["kind"]
            and (o.get("metadata") or {}).get("name") == addon["object"]
        ]
        if not found:
            entry.update(state="missing", error=None)
        else:
            counts = _counts(found[0], addon["kind"])
            entry.update(counts, state=_addon_state(counts), error=None)
        out.append(entry)
    return out


def _api(
    read: Mapping[str, Any], settings: Mapping[str, Any], hosts: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    outs = _outputs(read)
    nodes_read = _json((outs.get("nodes") or {}).get("stdout"))
    if not read.get("host"):
        error: str | None = str(read.get("reason") or "no control-plane host answered")
    elif not isinstance(nodes_read, dict):
        error = f"on {read['host']}: {_failure(outs.get('nodes'))}"
    else:
        error = None
    lb = settings.get("loadbalancer_apiserver") or {}
    return {
        "ha_mode": settings.get("apiserver_ha_mode"),
        "endpoint": str(settings.get("kube_apiserver_endpoint") or "").strip() or None,
        "local_lb_type": settings.get("loadbalancer_apiserver_type")
        if settings.get("apiserver_ha_mode") == "local_lb"
        else None,
        "loadbalancer_apiserver": dict(lb) if lb else None,
        "vip_holders": [h["host"] for h in hosts if (h.get("vip") or {}).get("held")],
        "apiservers": [{"host": h["host"], **h["apiserver"]} for h in hosts if h.get("apiserver")],
        "read_from": read.get("host") or None,
        "error": error,
    }


# Problems ----------------------------------------------------------------------------------


def _host_problems(h: Mapping[str, Any]) -> list[str]:
    name = h["host"]
    if not h["reachable"]:
        return [f"{name}: unreachable at {h['address']}: {h['error']}"]
    if not h["read"]:
        return [f"{name}: could not be read: {h['error']}"]
    out: list[str] = []
    if not h["record"]:
        out.append(f"{name}: no download record ({RECORD}): not deployed by kubeforge, or reset")
    for unit in h["expected_services"]:
        state = h["services"].get(unit)
        if state is None:
            out.append(f"{name}: service {unit} is not installed")
        elif state["active"] != "active":
            out.append(f"{name}: service {unit} is {state['active']} ({state['sub']})")
    endpoint = h.get("api_endpoint")
    if endpoint and not endpoint["open"]:
        out.append(f"{name}: the API endpoint {endpoint['address']} refuses connections here")
    apiserver = h.get("apiserver")
    if apiserver and not apiserver.get("ready"):
        out.append(f"{name}: its apiserver is not ready: {apiserver.get('detail') or 'no answer'}")
    return out


def _cluster_problems(report: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    api, etcd = report["api"], report["etcd"]
    if api["error"]:
        out.append(f"API: could not be read: {api['error']}")
    if (
        api["ha_mode"] == "vip"
        and len(api["vip_holders"]) != 1
        and any(h["read"] and "kube_control_plane" in h["groups"] for h in report["hosts"])
    ):
        out.append(
            f"API: the VIP is held by {len(api['vip_holders'])} hosts, not 1: "
            f"{', '.join(api['vip_holders']) or 'none'}"
        )
    known = {n["name"] for n in report["nodes"]}
    for h in report["hosts"]:
        if not api["error"] and "k8s_cluster" in h["groups"] and h["node_name"] not in known:
            out.append(f"{h['host']}: no Node object {h['node_name']}")
    for n in report["nodes"]:
        if n["ready"] != "True":
            out.append(f"node {n['name']}: Ready is {n['ready']} ({n['reason'] or 'no reason'})")
        if n["conditions"]:
            out.append(f"node {n['name']}: {', '.join(n['conditions'])}")
        if not n["host"]:
            out.append(f"node {n['name']}: not in the inventory (or outside this run)")
    if etcd["error"]:
        out.append(f"etcd: could not be read: {etcd['error']}")
    for m in etcd["members"]:
        if not m["healthy"]:
            out.append(
                f"etcd member {m['name']} ({m['host'] or 'not in the inventory'}): "
                f"unhealthy: {m['error'] or 'no answer'}"
            )
    if etcd["members"] and not any(m["leader"] for m in etcd["members"]):
        out.append("etcd: no member names a leader")
    members = {m["host"] for m in etcd["members"]}
    if not etcd["error"]:
        out += [
            f"{h['host']}: in the etcd group, not an etcd member"
            for h in report["hosts"]
            if "etcd" in h["groups"] and h["host"] not in members
        ]
    for a in report["addons"]:
        # "unknown": the API could not be read, said above.
        if a["state"] not in ("ready", "unknown"):
            ready = f" ({a['ready']}/{a['desired']} ready)" if "desired" in a else ""
            out.append(f"add-on {a['name']}: {a['state']}{ready}")
    return out


def _certificate_problems(certs: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    due = certs.get("due") or []
    if due:
        first = due[0]
        out.append(
            f"certificates: {len(due)} leaf certificate(s) expire within "
            f"certificates_renew_before_days ({certs.get('renew_before_days')}): soonest "
            f"{first['host']} {first['file']} ({first['days_left']} day(s) left)"
        )
    expired = [c for c in certs.get("certificates") or [] if int(c["days_left"]) < 0]
    if expired:
        out.append(
            f"certificates: {len(expired)} expired, e.g. {expired[0]['host']} {expired[0]['file']}"
        )
    if certs.get("errors"):
        out.append(f"certificates: {len(certs['errors'])} file(s) could not be read")
    return out


# The report --------------------------------------------------------------------------------


def kubeforge_cluster_info(
    hosts: Iterable[Mapping[str, Any]],
    settings: Mapping[str, Any],
    etcd: Mapping[str, Any],
    api: Mapping[str, Any],
    certificates: Mapping[str, Any],
) -> dict[str, Any]:
    """The report: hosts (in natural order) with their components and
    services, version drift, the API, nodes, etcd members, certificates (as
    kubeforge_cert_report sorted them, `due` as kubeforge_cert_due found them),
    add-ons, and every problem found as a line of text."""
    vip = settings.get("apiserver_ha_mode") == "vip"
    shaped = sorted((_host(h, vip) for h in hosts), key=lambda h: _natural(h["host"]))
    outs = _outputs(api)
    api_report = _api(api, settings, shaped)
    nodes = _nodes(outs, shaped) if not api_report["error"] else []
    report: dict[str, Any] = {
        "generated": settings.get("generated"),
        "cluster_name": settings.get("cluster_name"),
        "hosts": shaped,
        "drift": _drift(shaped, nodes),
        "api": api_report,
        "nodes": nodes,
        "etcd": _etcd(etcd, shaped),
        "certificates": list(certificates.get("certificates") or []),
        "certificate_errors": list(certificates.get("errors") or []),
        "addons": _addons(kubeforge_cluster_info_addons(settings), outs, api_report["error"]),
    }
    problems = [p for h in shaped for p in _host_problems(h)]
    problems += _cluster_problems(report) + _certificate_problems(certificates)
    if report["drift"]:
        problems.append(f"versions: {len(report['drift'])} difference(s), listed under Versions")
    report["problems"] = problems
    report["summary"] = {
        "hosts": len(shaped),
        "reachable": sum(1 for h in shaped if h["reachable"]),
        "read": sum(1 for h in shaped if h["read"]),
        "unreachable": [h["host"] for h in shaped if not h["reachable"]],
        "api_read": api_report["error"] is None,
        "etcd_read": report["etcd"]["error"] is None,
        "problems": len(problems),
        "drift": len(report["drift"]),
    }
    return report


# Text --------------------------------------------------------------------------------------


def _table(rows: Sequence[Sequence[Any]], indent: str = "  ") -> list[str]:
    cells = [[str("-" if v is None else v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    return [
        (indent + "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True))).rstrip()
        for r in cells
    ]


def _size(value: Any) -> str:
    if value is None:
        return "-"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(value)


def _host_lines(report: Mapping[str, Any]) -> list[str]:
    rows: list[list[Any]] = [["HOST", "ROLES", "ADDRESS", "REACHED", "SERVICES", "API ENDPOINT"]]
    for h in report["hosts"]:
        roles = (
            ",".join(
                r.replace("kube_control_plane", "control-plane").replace("kube_node", "node")
                for r in h["roles"]
            )
            or "-"
        )
        if not h["reachable"]:
            rows.append([h["host"], roles, h["address"], "UNREACHABLE", "-", "-"])
            continue
        down = [
            u
            for u in h["expected_services"]
            if (h["services"].get(u) or {}).get("active") != "active"
        ]
        services = (
            f"{len(h['expected_services'])} active" if not down else "DOWN: " + ",".join(down)
        )
        endpoint = h.get("api_endpoint")
        reach = "-" if not endpoint else ("ok" if endpoint["open"] else "REFUSED")
        rows.append(
            [
                h["host"],
                roles,
                h["address"],
                "yes" if h["read"] else "NOT READ",
                services if h["read"] else "-",
                reach,
            ]
        )
    return _table(rows)


def _version_lines(report: Mapping[str, Any]) -> list[str]:
    drifted = {(d["host"], d["component"]) for d in report["drift"]}
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for h in report["hosts"]:
        for name, c in h["components"].items():
            key = (name, str(c["version"]))
            entry = groups.setdefault(key, {"pinned": set(), "hosts": [], "drift": False})
            entry["pinned"].add(c["pinned"] or "-")
            entry["hosts"].append(h["host"])
            entry["drift"] |= (h["host"], name) in drifted
    order = list(COMPONENTS)
    rows: list[list[Any]] = [["COMPONENT", "PINNED", "VERSION", "HOSTS"]]
    for (name, version), entry in sorted(
        groups.items(),
        # Each component's most common version first.
        key=lambda kv: (
            order.index(kv[0][0]) if kv[0][0] in order else len(order),
            kv[0][0],
            -len(kv[1]["hosts"]),
            kv[0][1],
        ),
    ):
        label = COMPONENTS.get(name, (name, ""))[0]
        rows.append(
            [
                label,
                ",".join(sorted(entry["pinned"])),
                version + (" *" if entry["drift"] else ""),
                f"{' '.join(entry['hosts'])} ({len(entry['hosts'])})",
            ]
        )
    lines = _table(rows) if len(rows) > 1 else ["  no host could be read"]
    for d in report["drift"]:
        lines.append(
            f"  * {d['host']}: {d['component']} {d['version'] or '(none)'}: "
            + "; ".join(d["reasons"])
        )
    return lines


def _api_lines(api: Mapping[str, Any]) -> list[str]:
    mode = api["ha_mode"]
    how = {
        "local_lb": f"a {api['local_lb_type']} load balancer on every node",
        "vip": "a keepalived VIP with haproxy on the control-plane hosts",
        "external": "your load balancer",
    }.get(str(mode), str(mode))
    lines = [f"  apiserver_ha_mode {mode} ({how}); the nodes use {api['endpoint']}"]
    if mode == "vip":
        lines.append(f"  VIP held by: {', '.join(api['vip_holders']) or 'no host read'}")
    rows: list[list[Any]] = [["APISERVER", "URL", "READY", "VERSION"]]
    for a in api["apiservers"]:
        ready = "ok" if a.get("ready") else f"NO: {a.get('detail') or 'no answer'}"[:60]
        rows.append([a["host"], a.get("url"), ready, a.get("version")])
    lines += _table(rows) if len(rows) > 1 else ["  no control-plane host could be read"]
    if api["error"]:
        lines.append(f"  the API could not be read: {api['error']}")
    return lines


def _node_lines(report: Mapping[str, Any]) -> list[str]:
    if report["api"]["error"]:
        return ["  unknown: the API could not be read"]
    rows: list[list[Any]] = [["NODE", "HOST", "STATUS", "ROLES", "KUBELET", "RUNTIME"]]
    for n in report["nodes"]:
        status = "Ready" if n["ready"] == "True" else f"NotReady ({n['ready']})"
        if n["unschedulable"]:
            status += ",SchedulingDisabled"
        rows.append(
            [
                n["name"],
                n["host"] or "(not in inventory)",
                status,
                ",".join(n["roles"]) or "<none>",
                n["kubelet_version"],
                n["container_runtime"],
            ]
        )
    return _table(rows)


def _etcd_lines(etcd: Mapping[str, Any]) -> list[str]:
    if etcd["error"]:
        return [f"  could not be read: {etcd['error']}"]
    rows: list[list[Any]] = [
        ["MEMBER", "HOST", "ENDPOINT", "HEALTH", "LEADER", "DB SIZE", "VERSION"]
    ]
    for m in etcd["members"]:
        health = "healthy" if m["healthy"] else "UNHEALTHY"
        rows.append(
            [
                m["name"],
                m["host"] or "(not in inventory)",
                m["endpoint"],
                health,
                "leader" if m["leader"] else "",
                _size(m["db_size"]),
                m["version"],
            ]
        )
    return [f"  read from {etcd['read_from']}", *_table(rows)]


def _addon_lines(addons: Sequence[Mapping[str, Any]]) -> list[str]:
    rows: list[list[Any]] = [["ADD-ON", "NAMESPACE", "KIND", "READY", "STATE"]]
    for a in addons:
        ready = f"{a['ready']}/{a['desired']}" if "desired" in a else "-"
        rows.append([a["name"], a["namespace"], a["kind"], ready, a["state"]])
    return _table(rows) if addons else ["  none switched on"]


def kubeforge_cluster_info_text(
    report: Mapping[str, Any], certificate_lines: Sequence[str], shown: int = 0
) -> list[str]:
    """The report as text lines. `certificate_lines`: kubeforge_cert_table of
    the `shown` soonest certificates (0: all of them)."""
    summary = report["summary"]
    certs = len(report["certificates"])
    lines = [
        f"Cluster {report['cluster_name']}: {summary['hosts']} host(s), "
        f"{summary['read']} read, {len(summary['unreachable'])} unreachable; "
        f"{summary['problems']} problem(s)",
        f"Problems ({summary['problems']}):",
        *(f"  {p}" for p in report["problems"] or ["none"]),
        "API:",
        *_api_lines(report["api"]),
        "Hosts:",
        *_host_lines(report),
        "Versions (* differs):",
        *_version_lines(report),
        "Nodes:",
        *_node_lines(report),
        "etcd:",
        *_etcd_lines(report["etcd"]),
        f"Certificates, the soonest to expire first ({min(shown or certs, certs)} of {certs}):",
        *([f"  {line}" for line in certificate_lines] if certs else ["  none could be read"]),
        "Add-ons:",
        *_addon_lines(report["addons"]),
    ]
    return lines


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "kubeforge_cluster_info": kubeforge_cluster_info,
            "kubeforge_cluster_info_probe": kubeforge_cluster_info_probe,
            "kubeforge_cluster_info_addons": kubeforge_cluster_info_addons,
            "kubeforge_cluster_info_pick": kubeforge_cluster_info_pick,
            "kubeforge_cluster_info_text": kubeforge_cluster_info_text,
        }
