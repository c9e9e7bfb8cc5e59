"""Component settings under kubespray's names, in the forms the components take.

    kubeforge_feature_gates(value) -> dict[str, bool]
    kubeforge_feature_gates_flag(value) -> str | None
    kubeforge_cidr_list(value) -> list[str]

kubespray writes feature gates as a list of ``"Name=true|false"`` strings
(``kube_feature_gates``); the kubelet and kube-proxy take them as a map in their
configuration files, the control-plane components as ``--feature-gates``.
kubespray's ``kube_proxy_nodeport_addresses`` default is Jinja that renders to
the text of a list (``[]``, ``[10.0.0.0/8]``): inventories copy it as it is.
A value that cannot be read raises ValueError naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

_BOOLS = {"true": True, "false": False}


def _gate_value(name: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    value = _BOOLS.get(str(raw).strip().lower())
    if value is None:
        raise ValueError(f"feature gate {name}={raw}: the value must be true or false")
    return value


def _gate_items(value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, Mapping):
        return [(str(k), v) for k, v in value.items()]
    if isinstance(value, str):
        value = value.split(",")
    items: list[tuple[str, Any]] = []
    for entry in value:
        text = str(entry).strip()
        if not text:
            continue
        name, sep, raw = text.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"feature gate {text!r}: write it as Name=true or Name=false")
        items.append((name.strip(), raw))
    return items


def kubeforge_feature_gates(value: Any) -> dict[str, bool]:
    """``["A=true", "B=False"]`` (or ``"A=true,B=false"``, or a map) -> ``{A: True, B: False}``;
    a gate named twice keeps its last value, in its first place."""
    if value is None:
        return {}
    return {name: _gate_value(name, raw) for name, raw in _gate_items(value)}


def kubeforge_feature_gates_flag(value: Any) -> str | None:
    """The value of ``--feature-gates`` (``A=true,B=false``); None when there is no gate."""
    gates = kubeforge_feature_gates(value)
    if not gates:
        return None
    return ",".join(f"{name}={str(on).lower()}" for name, on in gates.items())


def kubeforge_cidr_list(value: Any) -> list[str]:
    """kube-proxy's nodePortAddresses from a list, the text of a YAML list
    (``"[10.0.0.0/8, 192.0.2.0/24]"``) or comma-separated text; empty -> []."""
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return []
        try:
            parsed = yaml.safe_load(text) if text.startswith("[") else text.split(",")
        except yaml.YAMLError as exc:
            raise ValueError(f"{value!r} is not a list of CIDRs: {exc}") from exc
        value = parsed if isinstance(parsed, list) else [parsed]
    if not isinstance(value, list | tuple):
        raise ValueError(f"{value!r} is not a list of CIDRs")
    return [str(v).strip() for v in value if v is not None and str(v).strip()]


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "kubeforge_feature_gates": kubeforge_feature_gates,
            "kubeforge_feature_gates_flag": kubeforge_feature_gates_flag,
            "kubeforge_cidr_list": kubeforge_cidr_list,
        }
