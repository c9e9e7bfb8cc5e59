"""Encryption at rest (plugins/filter/kubeforge_encryption.py): the apiservers'
configuration, the steps from what they have to what is wanted (no apiserver
ever meets data it cannot read), the reload check and the key store checks."""

from __future__ import annotations

from typing import Any

import kubeforge_encryption as enc
import pytest

K1 = {"name": "key-1", "algorithm": "secretbox", "secret": "c2VjcmV0LTE="}
K2 = {"name": "key-2", "algorithm": "secretbox", "secret": "c2VjcmV0LTI="}
K3 = {"name": "key-3", "algorithm": "aescbc", "secret": "c2VjcmV0LTM="}
RES = ["secrets"]


def providers(config: dict[str, Any] | None) -> list[str]:
    """A configuration's providers as `type:name` (`identity`), in order."""
    return [
        p["type"] if p["type"] == "identity" else f"{p['type']}:{p['name']}"
        for p in enc.providers_of(config)
    ]


def steps(current: list[Any], keys: list[dict[str, str]], enabled: bool = True) -> list[list[str]]:
    return [providers(s) for s in enc.encryption_steps(current, keys, RES, enabled)["steps"]]


def final(keys: list[dict[str, str]], enabled: bool = True) -> dict[str, Any]:
    return enc.encryption_config(keys, RES, enabled)


def test_the_first_key_writes_and_identity_reads_plain_data() -> None:
    config = final([K1, K2])
    assert config["apiVersion"] == "apiserver.config.k8s.io/v1"
    assert config["kind"] == "EncryptionConfiguration"
    assert config["resources"] == [
        {"resources": ["secrets"], "providers": [
            {"secretbox": {"keys": [{"name": "key-1", "secret": "c2VjcmV0LTE="}]}},
            {"identity": {}},
        ]}
    ]  # fmt: skip


def test_turned_off_identity_writes_and_every_key_still_reads() -> None:
    assert providers(final([K1, K2], enabled=False)) == [
        "identity",
        "secretbox:key-1",
        "secretbox:key-2",
    ]


def test_a_new_cluster_needs_no_steps() -> None:
    plan = enc.encryption_steps([], [K1], RES)
    assert plan["steps"] == [] and plan["final"] == final([K1])


def test_a_steady_cluster_needs_no_steps() -> None:
    assert steps([final([K1])] * 3, [K1]) == []


def test_turning_it_on_teaches_every_apiserver_the_key_before_any_writes_with_it() -> None:
    plan = enc.encryption_steps([None, None], [K1], RES)
    assert [providers(s) for s in plan["steps"]] == [
        ["identity", "secretbox:key-1"],
        ["secretbox:key-1", "identity"],
    ]
    assert plan["rewrite_after"] == 1 and plan["rewrite"] == ["secrets"]


def test_rotation_adds_switches_rewrites_then_drops_the_old_key() -> None:
    plan = enc.encryption_steps([final([K1])] * 3, [K2, K1], RES)
    assert [providers(s) for s in plan["steps"]] == [
        ["secretbox:key-1", "secretbox:key-2", "identity"],
        ["secretbox:key-2", "secretbox:key-1", "identity"],
        ["secretbox:key-2", "identity"],
    ]
    assert plan["rewrite_after"] == 1
    # Dropping the old key needs no wait: nothing stored uses it any more.
    assert plan["wait"] == [True, True, False]


def test_a_rotation_stopped_half_way_is_finished_without_losing_a_reader() -> None:
    # One apiserver already writes with key-2, the others still with key-1.
    half = enc.build_config(enc.providers_of(final([K1]))[:1], RES)
    middle = enc.encryption_steps([half], [K2, K1], RES)["steps"][0]
    plan = enc.encryption_steps([middle, final([K1]), final([K1])], [K2, K1], RES)
    got = [providers(s) for s in plan["steps"]]
    assert got[-1] == ["secretbox:key-2", "identity"]
    # Until the rewrite, every step reads key-1 and key-2.
    for s in got[: plan["rewrite_after"] + 1]:
        assert {"secretbox:key-1", "secretbox:key-2"} <= set(s), got


def test_a_new_algorithm_is_a_rotation_to_a_key_of_that_kind() -> None:
    got = steps([final([K1])] * 2, [K3, K1])
    assert got[1][0] == "aescbc:key-3" and got[-1] == ["aescbc:key-3", "identity"]


def test_turning_it_off_rewrites_in_plain_text_and_keeps_the_key() -> None:
    plan = enc.encryption_steps([final([K1])] * 2, [K1], RES, enabled=False)
    assert [providers(s) for s in plan["steps"]] == [["identity", "secretbox:key-1"]]
    assert plan["rewrite_after"] == 0


def test_a_changed_resource_list_is_rewritten_old_and_new() -> None:
    before = enc.encryption_config([K1], ["secrets", "configmaps"])
    plan = enc.encryption_steps([before], [K1], ["secrets"])
    assert plan["rewrite"] == ["secrets", "configmaps"]
    assert plan["steps"][-1] == final([K1])


def test_the_prefix_names_algorithm_and_key() -> None:
    assert enc.encryption_prefix(K1) == "k8s:enc:secretbox:v1:key-1:"
    assert enc.encryption_prefix(K3) == "k8s:enc:aescbc:v1:key-3:"


def test_keys_are_recovered_from_an_apiserver_writer_first() -> None:
    config = enc.encryption_steps([final([K1])], [K2, K1], RES)["steps"][1]
    assert enc.keys_from_config(config) == [K2, K1]
    assert enc.keys_from_config(None) == []


@pytest.mark.parametrize(
    ("store", "error"),
    [
        (None, "not a mapping"),
        ({"keys": "x"}, "not a mapping"),
        ({"keys": [{"name": "a"}]}, "lacks name, algorithm or secret"),
        ({"keys": [dict(K1, algorithm="aesgcm")]}, "algorithm 'aesgcm'"),
        ({"keys": [K1, K1]}, "appears twice"),
    ],
)
def test_a_damaged_key_store_is_named(store: Any, error: str) -> None:
    assert any(error in e for e in enc.encryption_key_errors(store)), enc.encryption_key_errors(
        store
    )


def test_a_good_key_store_passes() -> None:
    assert enc.encryption_key_errors({"keys": [K1, K3]}) == []


def test_a_key_of_an_unknown_algorithm_is_refused() -> None:
    with pytest.raises(ValueError, match="aesgcm"):
        enc.encryption_config([dict(K1, algorithm="aesgcm")], RES)


METRIC = "apiserver_encryption_config_controller_automatic_reload_last_timestamp_seconds"


@pytest.mark.parametrize(
    ("metrics", "since", "state"),
    [
        (f'{METRIC}{{apiserver_id_hash="sha256:x",status="success"}} 1.7e+09\n', 1.6e9, "loaded"),
        (f'{METRIC}{{apiserver_id_hash="sha256:x",status="success"}} 1.5e+09\n', 1.6e9, "waiting"),
        (
            f'{METRIC}{{apiserver_id_hash="sha256:x",status="success"}} 1.5e+09\n'
            f'{METRIC}{{apiserver_id_hash="sha256:x",status="failure"}} 1.7e+09\n',
            1.6e9,
            "failed",
        ),
        ("# no such metric\n", 1.6e9, "waiting"),
        ("", 1.6e9, "waiting"),
    ],
)
def test_the_reload_is_read_from_the_metrics(metrics: str, since: float, state: str) -> None:
    assert enc.encryption_reloaded(metrics, since) == state
