"""Node labels and taints from the inventory (`node_labels`, `node_taints`),
kubespray's names and meaning (role `node`).

At registration the kubelet sets them itself: the labels NodeRestriction lets
a kubelet set on its own Node through `--node-labels`, every taint through the
KubeletConfiguration's `registerWithTaints`:

    node_labels | kubeforge_kubelet_node_labels -> "k=v,k2=v2" ('' for none)
    node_taints | kubeforge_register_taints     -> [{key, value?, effect}, ...]

On every run the Nodes are kept in step through the API, which also sets the
labels a kubelet may not set (`node-role.kubernetes.io/*`, ...):

    kubectl_get_nodes_json | kubeforge_node_placement(wanted)
        -> [{"node": name, "args": [kubectl arguments]}, ...]

`wanted` maps a node name to {"labels": node_labels, "taints": node_taints}.
Only what kubeforge applied is ever removed: each Node carries the label keys
and taints (key:Effect) the inventory asked for at the last run, as JSON in the
annotations RECORD_LABELS and RECORD_TAINTS; a label or taint taken out of the
inventory is then removed, those set by anyone else are left alone. A taint is
identified by its key and effect, as in Kubernetes. The inventory's values are
checked by preflight first (kubeforge_inventory.check_node_placement).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
RECORD_LABELS = "kubeforge.io/node-labels"
RECORD_TAINTS = "kubeforge.io/node-taints"

# The labels a kubelet may set on its own Node (k8s.io/kubelet/pkg/apis,
# IsKubeletLabel): every label outside the kubernetes.io and k8s.io namespaces
# (and their subdomains), these well-known keys, and the namespaces below with
# their subdomains. The NodeRestriction admission plugin refuses any other
# kubernetes.io/k8s.io label from a kubelet, and the kubelet refuses to start
# with one in --node-labels.
KUBELET_LABELS = frozenset(
    {
        "kubernetes.io/hostname",
        "kubernetes.io/os",
        "kubernetes.io/arch",
        "beta.kubernetes.io/os",
        "beta.kubernetes.io/arch",
        "beta.kubernetes.io/instance-type",
        "node.kubernetes.io/instance-type",
        "failure-domain.beta.kubernetes.io/region",
        "failure-domain.beta.kubernetes.io/zone",
        "topology.kubernetes.io/region",
        "topology.kubernetes.io/zone",
    }
)
KUBELET_LABEL_NAMESPACES = ("kubelet.kubernetes.io", "node.kubernetes.io")
KUBERNETES_NAMESPACES = ("kubernetes.io", "k8s.io")


def _in_namespace(namespace: str, domain: str) -> bool:
    return namespace == domain or namespace.endswith("." + domain)


def kubelet_may_set(key: str) -> bool:
    """Whether a kubelet may set label `key` on its own Node (NodeRestriction).
    node-restriction.kubernetes.io/ is a kubernetes.io namespace: refused."""
    namespace = key.split("/", 1)[0] if "/" in key else ""
    if not any(_in_namespace(namespace, d) for d in KUBERNETES_NAMESPACES):
        return True
    return key in KUBELET_LABELS or any(
        _in_namespace(namespace, d) for d in KUBELET_LABEL_NAMESPACES
    )


def label_value(value: Any) -> str:
    """A label value as Kubernetes stores it: YAML's true/false as `true`/`false`,
    a number as written, null as the empty value."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def wanted_labels(labels: Mapping[str, Any] | None) -> dict[str, str]:
    return {str(k): label_value(v) for k, v in (labels or {}).items()}


@dataclass(frozen=True)
class Taint:
    key: str
    value: str
    effect: str

    @property
    def identity(self) -> str:
        """key:Effect, what tells two taints of a node apart."""
        return f"{self.key}:{self.effect}"

    @property
    def spec(self) -> str:
        """kubectl taint's form: key=value:Effect, or key:Effect without a value."""
        return f"{self.key}={self.value}:{self.effect}" if self.value else self.identity


def parse_taint(text: str) -> Taint:
    """`key=value:Effect` or `key:Effect`, as kubectl taint reads it."""
    head, sep, effect = str(text).partition(":")
    key, _, value = head.partition("=")
    if not sep or ":" in effect or "=" in value or not key or effect not in EFFECTS:
        raise ValueError(f"{text!r} is not key=value:Effect or key:Effect")
    return Taint(key, value, effect)


def wanted_taints(taints: Sequence[str] | None) -> dict[str, Taint]:
    """Identity -> taint, in the inventory's order (a repeated identity: the last)."""
    out: dict[str, Taint] = {}
    for text in taints or []:
        taint = parse_taint(text)
        out[taint.identity] = taint
    return out


# At registration --------------------------------------------------------------


def kubeforge_kubelet_node_labels(labels: Mapping[str, Any] | None) -> str:
    """The kubelet's --node-labels value: the labels it may set, sorted."""
    wanted = wanted_labels(labels)
    return ",".join(f"{k}={wanted[k]}" for k in sorted(wanted) if kubelet_may_set(k))


def kubeforge_register_taints(taints: Sequence[str] | None) -> list[dict[str, str]]:
    """The KubeletConfiguration's registerWithTaints."""
    out: list[dict[str, str]] = []
    for taint in wanted_taints(taints).values():
        entry = {"key": taint.key, "effect": taint.effect}
        if taint.value:
            entry["value"] = taint.value
        out.append(entry)
    return out


# Later runs: through the API --------------------------------------------------


def _record(annotations: Mapping[str, Any], name: str) -> list[str] | None:
    """A record annotation's entries, sorted; None when it is missing or
    unreadable (then nothing is removed on its account)."""
    try:
        value = json.loads(str(annotations[name]))
    except (KeyError, ValueError):
        return None
    return sorted(str(v) for v in value) if isinstance(value, list) else None


def _record_arg(annotations: Mapping[str, Any], name: str, wanted: list[str]) -> list[str]:
    """The annotate argument that makes record `name` list `wanted` (none when
    it does); an empty record is removed rather than written."""
    if not wanted:
        return [f"{name}-"] if name in annotations else []
    if _record(annotations, name) == wanted:
        return []
    return [f"{name}={json.dumps(wanted, separators=(',', ':'))}"]


def node_commands(
    node: Mapping[str, Any],
    labels: Mapping[str, Any] | None,
    taints: Sequence[str] | None,
) -> list[list[str]]:
    """The kubectl calls (label, taint, annotate; each only when needed) that
    bring one Node in step with its inventory labels and taints."""
    meta = node.get("metadata") or {}
    name = str(meta["name"])
    have_labels: Mapping[str, Any] = meta.get("labels") or {}
    annotations: Mapping[str, Any] = meta.get("annotations") or {}
    have_taints = {
        f"{t.get('key')}:{t.get('effect')}": str(t.get("value") or "")
        for t in (node.get("spec") or {}).get("taints") or []
    }
    want_labels = wanted_labels(labels)
    want_taints = wanted_taints(taints)
    commands: list[list[str]] = []

    label_args = [f"{k}={v}" for k, v in sorted(want_labels.items()) if have_labels.get(k) != v]
    label_args += [
        f"{k}-"
        for k in sorted(set(_record(annotations, RECORD_LABELS) or []) - set(want_labels))
        if k in have_labels
    ]
    if label_args:
        commands.append(["label", "node", name, "--overwrite", *label_args])

    taint_args = [t.spec for i, t in want_taints.items() if have_taints.get(i) != t.value]
    taint_args += [
        f"{i}-"
        for i in sorted(set(_record(annotations, RECORD_TAINTS) or []) - set(want_taints))
        if i in have_taints
    ]
    if taint_args:
        commands.append(["taint", "node", name, "--overwrite", *taint_args])

    record_args = [
        *_record_arg(annotations, RECORD_LABELS, sorted(want_labels)),
        *_record_arg(annotations, RECORD_TAINTS, sorted(want_taints)),
    ]
    if record_args:
        commands.append(["annotate", "node", name, "--overwrite", *record_args])
    return commands


def _nodes(listing: str | Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    """The Nodes of `kubectl get nodes [names] -o json` (a List, or one Node
    when one name was asked for; nothing when none was found)."""
    data = json.loads(listing) if isinstance(listing, str) and listing.strip() else listing
    if not isinstance(data, Mapping):
        return []
    if data.get("kind") == "Node":
        return [data]
    return list(data.get("items") or [])


def kubeforge_node_placement(
    listing: str | Mapping[str, Any] | None, wanted: Mapping[str, Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Every kubectl call (as {"node", "args"}) that brings the registered
    nodes of `wanted` in step with it; nodes not registered are left out."""
    out: list[dict[str, Any]] = []
    for node in _nodes(listing):
        name = str((node.get("metadata") or {}).get("name"))
        if name not in wanted:
            continue
        spec = wanted[name] or {}
        for args in node_commands(node, spec.get("labels"), spec.get("taints")):
            out.append({"node": name, "args": args})
    return out


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "kubeforge_kubelet_node_labels": kubeforge_kubelet_node_labels,
            "kubeforge_register_taints": kubeforge_register_taints,
            "kubeforge_node_placement": kubeforge_node_placement,
        }
