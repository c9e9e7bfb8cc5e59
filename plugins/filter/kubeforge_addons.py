"""Add-ons: which objects of a switched-off add-on kubeforge may delete.

    kubeforge_owned_objects(listing, manager) -> dict (a kubectl List)

`listing` is ``kubectl get -f <manifest> -o json --ignore-not-found`` of the
add-on's manifest (the objects of that name that exist), or a list of objects. Only those kubeforge
applied (a managedFields entry of field manager `manager`) are returned, as a
List ``kubectl delete -f -`` takes; an add-on of the same name installed by
someone else (helm, another tool) is left alone. Namespaces Kubernetes itself
keeps are never returned, whoever applied them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

PROTECTED_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})


def _items(listing: Any) -> list[Mapping[str, Any]]:
    if isinstance(listing, str):
        listing = json.loads(listing) if listing.strip() else {}
    if isinstance(listing, list):
        return [i for i in listing if isinstance(i, Mapping)]
    if not isinstance(listing, Mapping):
        return []
    if listing.get("kind") == "List" or "items" in listing:
        return [i for i in listing.get("items") or [] if isinstance(i, Mapping)]
    return [listing] if listing.get("kind") else []


def _applied_by(item: Mapping[str, Any], manager: str) -> bool:
    fields = (item.get("metadata") or {}).get("managedFields") or []
    return any(isinstance(f, Mapping) and f.get("manager") == manager for f in fields)


def kubeforge_owned_objects(listing: Any, manager: str) -> dict[str, Any]:
    owned = []
    for item in _items(listing):
        meta = item.get("metadata") or {}
        if item.get("kind") == "Namespace" and meta.get("name") in PROTECTED_NAMESPACES:
            continue
        if not _applied_by(item, manager):
            continue
        ref: dict[str, Any] = {"name": meta.get("name")}
        if meta.get("namespace"):
            ref["namespace"] = meta["namespace"]
        owned.append(
            {"apiVersion": item.get("apiVersion"), "kind": item.get("kind"), "metadata": ref}
        )
    return {"apiVersion": "v1", "kind": "List", "items": owned}


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"kubeforge_owned_objects": kubeforge_owned_objects}
