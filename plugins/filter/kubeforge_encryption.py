"""Encryption of Secrets at rest (kube_encrypt_secret_data): the apiservers'
EncryptionConfiguration and the steps that move a running cluster from the
configuration its apiservers have to the one wanted, with no apiserver ever
meeting data it cannot read.

The key store on the control host (``encryption-keys.yaml`` beside the PKI)
lists keys as ``{name, algorithm, secret}``; the first one encrypts. The
configuration written to the apiservers has one ``resources`` entry whose
providers are, in order: the writing provider (a key, or ``identity`` when
encryption is off), then every other provider that must still be read.

kubeforge_encryption_config  the configuration for a writer and readers
kubeforge_encryption_steps   the configurations to apply in turn, each on every
                             apiserver, and whether stored objects must be
                             rewritten after the first step that changes the writer
kubeforge_encryption_prefix  the prefix etcd values get (k8s:enc:<alg>:v1:<key>:)
kubeforge_encryption_reloaded whether an apiserver's /metrics say it loaded the file
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

ALGORITHMS = ("secretbox", "aescbc")
IDENTITY = {"type": "identity"}
API_VERSION = "apiserver.config.k8s.io/v1"
KIND = "EncryptionConfiguration"

Provider = dict[str, str]  # {type, name, secret} or {type: identity}


def _provider(key: Mapping[str, Any]) -> Provider:
    algorithm = str(key.get("algorithm", ""))
    if algorithm not in ALGORITHMS:
        raise ValueError(
            f"encryption key {key.get('name')!r}: algorithm {algorithm!r} is not "
            f"one of {', '.join(ALGORITHMS)}"
        )
    return {"type": algorithm, "name": str(key["name"]), "secret": str(key["secret"])}


def _render(provider: Provider) -> dict[str, Any]:
    if provider["type"] == "identity":
        return {"identity": {}}
    return {provider["type"]: {"keys": [{"name": provider["name"], "secret": provider["secret"]}]}}


def _same(a: Provider, b: Provider) -> bool:
    return a.get("type") == b.get("type") and a.get("name") == b.get("name")


def _unique(providers: Sequence[Provider]) -> list[Provider]:
    out: list[Provider] = []
    for p in providers:
        if not any(_same(p, q) for q in out):
            out.append(p)
    return out


def providers_of(config: Mapping[str, Any] | None) -> list[Provider]:
    """The providers of a configuration as read from a host, in order
    (no configuration: the apiserver stores everything as it is)."""
    if not config:
        return [dict(IDENTITY)]
    out: list[Provider] = []
    for entry in config.get("resources") or []:
        for provider in entry.get("providers") or []:
            for kind, body in provider.items():
                if kind == "identity":
                    out.append(dict(IDENTITY))
                    continue
                for key in (body or {}).get("keys") or []:
                    out.append(
                        {"type": kind, "name": str(key["name"]), "secret": str(key["secret"])}
                    )
    return _unique(out) or [dict(IDENTITY)]


def resources_of(config: Mapping[str, Any] | None) -> list[str]:
    if not config:
        return []
    return [str(r) for entry in config.get("resources") or [] for r in entry.get("resources") or []]


def build_config(providers: Sequence[Provider], resources: Sequence[str]) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "resources": [
            {"resources": list(resources), "providers": [_render(p) for p in _unique(providers)]}
        ],
    }


def wanted_providers(keys: Sequence[Mapping[str, Any]], enabled: bool) -> list[Provider]:
    """Steady state: the first key writes and identity reads what was stored in
    plain text; with encryption off, identity writes and the keys stay readers."""
    ring = [_provider(k) for k in keys]
    if enabled:
        if not ring:
            raise ValueError("kube_encrypt_secret_data is on but the key store has no key")
        return [ring[0], dict(IDENTITY)]
    return [dict(IDENTITY), *ring]


def encryption_config(
    keys: Sequence[Mapping[str, Any]], resources: Sequence[str], enabled: bool = True
) -> dict[str, Any]:
    return build_config(wanted_providers(keys, enabled), resources)


def encryption_steps(
    current: Sequence[Mapping[str, Any] | None],
    keys: Sequence[Mapping[str, Any]],
    resources: Sequence[str],
    enabled: bool = True,
) -> dict[str, Any]:
    """How to get every apiserver from its configuration (``current``, one per
    control-plane host, None where there is none) to the wanted one.

    Returns ``{steps: [config, ...], wait: [bool, ...], rewrite: [resource, ...],
    rewrite_after: i, final: config}``: apply the steps in order, each on every
    apiserver, waiting until each has loaded it where ``wait`` says; after step
    ``rewrite_after`` rewrite the listed resources so that they are stored with
    the new writer. Nothing to do: no steps.

    1. every apiserver learns to read the new writer (old writer still writes);
    2. the new writer writes (everything old still readable); rewrite;
    3. only the wanted providers are left.
    """
    final_providers = wanted_providers(keys, enabled)
    final = build_config(final_providers, resources)
    configs = [c or None for c in current]
    if all(c == final for c in configs):
        return {"steps": [], "rewrite": [], "rewrite_after": -1, "wait": [], "final": final}
    every = [p for c in configs for p in providers_of(c)]
    writer = final_providers[0]
    readers = _unique([p for p in every if not _same(p, writer)] + final_providers[1:])
    old_resources = [r for c in configs for r in resources_of(c)]
    all_resources = list(dict.fromkeys([*resources, *old_resources]))
    writers = _unique([providers_of(c)[0] for c in configs])
    steps: list[dict[str, Any]] = []
    # 1. Unless every apiserver already reads the new writer.
    if not all(any(_same(writer, p) for p in providers_of(c)) for c in configs):
        steps.append(build_config([writers[0], *_unique([writer, *readers])], all_resources))
    # 2. The new writer first, everything else still read.
    steps.append(build_config([writer, *readers], all_resources))
    rewrite_after = len(steps) - 1
    # 3. The wanted configuration.
    if steps[-1] != final:
        steps.append(final)
    # A step that only drops readers (the last, after the rewrite) need not be
    # waited for: nothing stored needs them any more.
    waits = [
        i == 0 or providers_of(s)[0] != providers_of(steps[i - 1])[0] for i, s in enumerate(steps)
    ]
    return {
        "steps": steps,
        "rewrite": all_resources,
        "rewrite_after": rewrite_after,
        "wait": waits,
        "final": final,
    }


def encryption_prefix(key: Mapping[str, Any]) -> str:
    """What the value of an object encrypted with this key starts with in etcd."""
    p = _provider(key)
    return f"k8s:enc:{p['type']}:v1:{p['name']}:"


def encryption_key_errors(store: Any) -> list[str]:
    """What is wrong with a key store read from the control host."""
    if not isinstance(store, Mapping) or not isinstance(store.get("keys"), list):
        return ["it is not a mapping with a list `keys`"]
    errors: list[str] = []
    names: set[str] = set()
    for i, key in enumerate(store["keys"]):
        if not isinstance(key, Mapping) or not {"name", "algorithm", "secret"} <= set(key):
            errors.append(f"key {i + 1} lacks name, algorithm or secret")
            continue
        if key["algorithm"] not in ALGORITHMS:
            errors.append(
                f"key {key['name']}: algorithm {key['algorithm']!r} is not one of "
                + ", ".join(ALGORITHMS)
            )
        if key["name"] in names:
            errors.append(f"key name {key['name']} appears twice")
        names.add(str(key["name"]))
    return errors


def keys_from_config(config: Mapping[str, Any] | None) -> list[dict[str, str]]:
    """A key store's keys recovered from an apiserver's configuration (the
    control host lost its copy): every key, writer first."""
    return [
        {"name": p["name"], "algorithm": p["type"], "secret": p["secret"]}
        for p in providers_of(config)
        if p["type"] != "identity"
    ]


_RELOAD_METRIC = re.compile(
    r"^apiserver_encryption_config_controller_automatic_reload_last_timestamp_seconds"
    r"\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)",
    re.MULTILINE,
)


def encryption_reloaded(metrics: str, since: float) -> str:
    """Whether an apiserver loaded its encryption configuration written at
    ``since`` (a file's mtime), from its /metrics: ``loaded``, ``failed`` (it
    tried and refused the file) or ``waiting``."""
    last: dict[str, float] = {}
    for m in _RELOAD_METRIC.finditer(metrics or ""):
        status = re.search(r'status="([^"]*)"', m.group("labels"))
        try:
            value = float(m.group("value"))
        except ValueError:
            continue
        key = status.group(1) if status else ""
        last[key] = max(last.get(key, 0.0), value)
    success, failure = last.get("success", 0.0), last.get("failure", 0.0)
    if success >= since and success >= failure:
        return "loaded"
    if failure >= since:
        return "failed"
    return "waiting"


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "kubeforge_encryption_config": encryption_config,
            "kubeforge_encryption_steps": encryption_steps,
            "kubeforge_encryption_prefix": encryption_prefix,
            "kubeforge_encryption_key_errors": encryption_key_errors,
            "kubeforge_encryption_keys_from_config": keys_from_config,
            "kubeforge_encryption_reloaded": encryption_reloaded,
        }
