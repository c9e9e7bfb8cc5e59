"""Node labels and taints from the inventory (node_labels, node_taints):
preflight's checks (plugins/filter/kubeforge_inventory.py), what the kubelet
gets at registration and the kubectl calls that keep the Nodes in step on
later runs (plugins/filter/kubeforge_placement.py), and the lab's ingress node."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubeforge_inventory as inv
import kubeforge_placement as pl
import lab
import pytest
import yaml

INGRESS = "node-role.kubernetes.io/ingress"

# Preflight ---------------------------------------------------------------------


def placement_errors(**hvars: Any) -> list[str]:
    return inv.check_node_placement(["node5"], {"node5": hvars})


def test_valid_labels_and_taints_pass() -> None:
    assert (
        placement_errors(
            node_labels={
                INGRESS: "",
                "example.com/tier": "front-end_1.2",
                "gpu": True,
                "cores": 8,
                "empty": None,
                "a" * 63: "b" * 63,
                "x." * 125 + "io/n": "v",
            },
            node_taints=[
                f"{INGRESS}=:NoSchedule",
                "dedicated=db:NoExecute",
                "spot:PreferNoSchedule",
                "dedicated=db:NoSchedule",
            ],
        )
        == []
    )


def test_unset_or_empty_placement_passes() -> None:
    assert placement_errors() == []
    assert placement_errors(node_labels=None, node_taints=None) == []
    assert placement_errors(node_labels={}, node_taints=[]) == []


def test_wrong_types_name_the_host_and_the_variable() -> None:
    assert placement_errors(node_labels=["a=b"], node_taints="a:NoSchedule") == [
        "node5: node_labels must be a dict of label: value, not ['a=b']",
        "node5: node_taints must be a list of \"key=value:Effect\", not 'a:NoSchedule'",
    ]


@pytest.mark.parametrize(
    "key",
    ["bad key", "-start", "end-", "a" * 64, "Upper.Example.com/x", "a/b/c", "/name", "prefix/",
     "x." * 126 + "io/n", ""],
)  # fmt: skip
def test_bad_label_key_is_named(key: str) -> None:
    (error,) = placement_errors(node_labels={key: "v"})
    assert error.startswith(f"node5: node_labels key {key!r} is not a label name ("), error


def test_label_key_that_is_not_a_string_is_refused() -> None:
    (error,) = placement_errors(node_labels={1: "v"})
    assert error.startswith("node5: node_labels key 1 is not a label name"), error


@pytest.mark.parametrize("value", ["has space", "-x", "x-", "a" * 64, "ü"])
def test_bad_label_value_is_named(value: str) -> None:
    (error,) = placement_errors(node_labels={"tier": value})
    assert error.startswith(f"node5: node_labels['tier'] value {value!r} is not a label value"), (
        error
    )


@pytest.mark.parametrize("value", [{"a": "b"}, ["a"]])
def test_structured_label_value_is_refused(value: Any) -> None:
    assert placement_errors(node_labels={"tier": value}) == [
        f"node5: node_labels['tier'] must be a string, number or boolean, not {value!r}"
    ]


@pytest.mark.parametrize(
    "taint",
    ["foo", "foo=bar", "a:b:NoSchedule", "a=b=c:NoSchedule", "=v:NoSchedule", ":NoSchedule", 5,
     {"key": "a", "effect": "NoSchedule"}],
)  # fmt: skip
def test_taint_syntax_is_checked(taint: Any) -> None:
    (error,) = placement_errors(node_taints=["ok:NoSchedule", taint])
    assert error == (
        f"node5: node_taints[1] {taint!r} is not key=value:Effect or key:Effect "
        "(Effect one of NoSchedule, PreferNoSchedule, NoExecute)"
    )


def test_taint_effect_key_and_value_are_checked() -> None:
    errors = placement_errors(
        node_taints=["a=b:noschedule", "bad key:NoSchedule", "a=bad value:NoExecute"]
    )
    assert errors[0] == (
        "node5: node_taints[0] 'a=b:noschedule': effect 'noschedule' is not one of "
        "NoSchedule, PreferNoSchedule, NoExecute"
    )
    assert errors[1].startswith("node5: node_taints[1] 'bad key:NoSchedule': key 'bad key' is not")
    assert errors[2].startswith(
        "node5: node_taints[2] 'a=bad value:NoExecute': value 'bad value' is not valid"
    )
    assert len(errors) == 3


def test_a_repeated_key_and_effect_is_refused_whatever_the_value() -> None:
    assert placement_errors(node_taints=["a=1:NoSchedule", "a=2:NoExecute", "a:NoSchedule"]) == [
        "node5: node_taints[2] 'a:NoSchedule' repeats key 'a' with effect NoSchedule of "
        "node_taints[0]: a node has one taint per key and effect"
    ]


def test_the_inventory_checks_read_the_placement_of_k8s_cluster_hosts() -> None:
    groups = {
        "kube_control_plane": ["cp1"],
        "etcd": ["cp1", "e2", "e3"],
        "kube_node": ["w1"],
        "k8s_cluster": ["cp1", "w1"],
    }
    hostvars: dict[str, dict[str, Any]] = {
        h: {"ip": f"192.168.10.{i}", "node_taints": ["nope"]}
        for i, h in enumerate(["cp1", "e2", "e3", "w1"], start=11)
    }
    settings = {k: v for k, v in yaml.safe_load(
        (Path(__file__).resolve().parents[2] / "roles/kubeforge_defaults/defaults/main/cluster.yml")
        .read_text()).items() if k in inv.SETTINGS}  # fmt: skip
    found = [e for e in inv.kubeforge_inventory_errors(groups, hostvars, settings) if "taint" in e]
    # etcd-only hosts are no nodes: their variables are not read.
    assert [e.split(":")[0] for e in found] == ["cp1", "w1"], found


# At registration ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "allowed"),
    [
        ("example.com/tier", True),
        ("tier", True),
        ("kubernetes.io.example.com/x", True),
        ("node.kubernetes.io/ingress", True),
        ("sub.node.kubernetes.io/x", True),
        ("kubelet.kubernetes.io/x", True),
        ("topology.kubernetes.io/zone", True),
        ("kubernetes.io/hostname", True),
        ("beta.kubernetes.io/arch", True),
        ("node.kubernetes.io/instance-type", True),
        (INGRESS, False),
        ("node-role.kubernetes.io/worker", False),
        ("kubernetes.io/role", False),
        ("topology.kubernetes.io/rack", False),
        ("node-restriction.kubernetes.io/pool", False),
        ("k8s.io/x", False),
        ("sig.k8s.io/x", False),
        ("xnode.kubernetes.io/x", False),
    ],
)
def test_kubelet_sets_only_what_node_restriction_allows(key: str, allowed: bool) -> None:
    assert pl.kubelet_may_set(key) is allowed


def test_kubelet_flag_holds_the_allowed_labels_sorted() -> None:
    labels = {"zone": "b", INGRESS: "", "example.com/gpu": True, "cores": 8, "none": None,
              "topology.kubernetes.io/zone": "z1"}  # fmt: skip
    assert pl.kubeforge_kubelet_node_labels(labels) == (
        "cores=8,example.com/gpu=true,none=,topology.kubernetes.io/zone=z1,zone=b"
    )
    assert pl.kubeforge_kubelet_node_labels({INGRESS: ""}) == ""
    assert pl.kubeforge_kubelet_node_labels(None) == ""


def test_register_taints_in_kubelet_configuration_form() -> None:
    assert pl.kubeforge_register_taints(
        [f"{INGRESS}=:NoSchedule", "dedicated=db:NoExecute", "spot:PreferNoSchedule"]
    ) == [
        {"key": INGRESS, "effect": "NoSchedule"},
        {"key": "dedicated", "value": "db", "effect": "NoExecute"},
        {"key": "spot", "effect": "PreferNoSchedule"},
    ]
    assert pl.kubeforge_register_taints(None) == []


@pytest.mark.parametrize("text", ["foo", "a:b:NoSchedule", "a=b=c:NoSchedule", "a:Never"])
def test_parse_taint_refuses_what_preflight_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        pl.parse_taint(text)
    assert placement_errors(node_taints=[text])


# Later runs: the kubectl calls ----------------------------------------------------


def node(
    name: str = "node5",
    labels: dict[str, str] | None = None,
    taints: list[dict[str, str]] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    base = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}
    return {
        "kind": "Node",
        "metadata": {"name": name, "labels": {**base, **(labels or {})},
                     "annotations": {"node.alpha.kubernetes.io/ttl": "0", **(annotations or {})}},
        "spec": {"taints": taints} if taints is not None else {},
    }  # fmt: skip


def record(labels: list[str], taints: list[str]) -> dict[str, str]:
    out = {}
    if labels:
        out[pl.RECORD_LABELS] = json.dumps(sorted(labels))
    if taints:
        out[pl.RECORD_TAINTS] = json.dumps(sorted(taints))
    return out


def plan(nodes: list[dict[str, Any]], wanted: dict[str, Any]) -> list[list[str]]:
    listing = json.dumps({"kind": "List", "items": nodes})
    return [c["args"] for c in pl.kubeforge_node_placement(listing, wanted)]


INGRESS_TAINT = {"key": INGRESS, "effect": "NoSchedule"}
WANTED = {"node5": {"labels": {INGRESS: "", "tier": "web"},
                    "taints": [f"{INGRESS}=:NoSchedule", "dedicated=db:NoExecute"]}}  # fmt: skip


def test_a_new_node_gets_labels_taints_and_the_record() -> None:
    # As registered: the kubelet set tier and the ingress taint, not the role label.
    fresh = node(labels={"tier": "web"}, taints=[INGRESS_TAINT])
    assert plan([fresh], WANTED) == [
        ["label", "node", "node5", "--overwrite", f"{INGRESS}="],
        ["taint", "node", "node5", "--overwrite", "dedicated=db:NoExecute"],
        ["annotate", "node", "node5", "--overwrite",
         f'{pl.RECORD_LABELS}=["{INGRESS}","tier"]',
         f'{pl.RECORD_TAINTS}=["dedicated:NoExecute","{INGRESS}:NoSchedule"]'],
    ]  # fmt: skip


def converged() -> dict[str, Any]:
    return node(
        labels={INGRESS: "", "tier": "web", "by-hand": "x"},
        taints=[INGRESS_TAINT, {"key": "dedicated", "value": "db", "effect": "NoExecute"},
                {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}],
        annotations=record([INGRESS, "tier"], ["dedicated:NoExecute", f"{INGRESS}:NoSchedule"]),
    )  # fmt: skip


def test_a_converged_node_needs_nothing() -> None:
    assert plan([converged()], WANTED) == []


def test_the_plan_applied_converges() -> None:
    """Applying the calls to the node the way the API server would leaves
    nothing to do on the next run."""
    current = node(labels={"tier": "old", "by-hand": "x"}, taints=[
        {"key": "dedicated", "value": "other", "effect": "NoExecute"}])  # fmt: skip
    for args in plan([current], WANTED):
        apply(current, args)
    assert plan([current], WANTED) == []
    assert current["metadata"]["labels"]["by-hand"] == "x"


def apply(obj: dict[str, Any], args: list[str]) -> None:
    """What kubectl label/taint/annotate --overwrite do to a Node."""
    verb, _, _, flag, *specs = args
    assert flag == "--overwrite"
    meta = obj["metadata"]
    for spec in specs:
        if verb in ("label", "annotate"):
            field = meta.setdefault("labels" if verb == "label" else "annotations", {})
            if spec.endswith("-"):
                field.pop(spec[:-1])
            else:
                k, _, v = spec.partition("=")
                field[k] = v
        else:
            taints = obj["spec"].setdefault("taints", [])
            if spec.endswith("-"):
                k, _, e = spec[:-1].partition(":")
                obj["spec"]["taints"] = [t for t in taints if (t["key"], t["effect"]) != (k, e)]
            else:
                t = pl.parse_taint(spec)
                kept = [x for x in taints if (x["key"], x["effect"]) != (t.key, t.effect)]
                entry = {
                    "key": t.key,
                    "effect": t.effect,
                    **({"value": t.value} if t.value else {}),
                }
                obj["spec"]["taints"] = [*kept, entry]


def test_a_changed_value_is_overwritten() -> None:
    current = converged()
    current["metadata"]["labels"]["tier"] = "db"
    current["spec"]["taints"][1]["value"] = "cache"
    assert plan([current], WANTED) == [
        ["label", "node", "node5", "--overwrite", "tier=web"],
        ["taint", "node", "node5", "--overwrite", "dedicated=db:NoExecute"],
    ]


def test_what_leaves_the_inventory_is_removed_and_others_labels_stay() -> None:
    wanted = {"node5": {"labels": {"tier": "web"}, "taints": []}}
    assert plan([converged()], wanted) == [
        ["label", "node", "node5", "--overwrite", f"{INGRESS}-"],
        ["taint", "node", "node5", "--overwrite", "dedicated:NoExecute-", f"{INGRESS}:NoSchedule-"],
        ["annotate", "node", "node5", "--overwrite", f'{pl.RECORD_LABELS}=["tier"]',
         f"{pl.RECORD_TAINTS}-"],
    ]  # fmt: skip


def test_an_empty_inventory_removes_everything_kubeforge_set_and_its_record() -> None:
    assert plan([converged()], {"node5": {"labels": {}, "taints": []}}) == [
        ["label", "node", "node5", "--overwrite", f"{INGRESS}-", "tier-"],
        ["taint", "node", "node5", "--overwrite", "dedicated:NoExecute-", f"{INGRESS}:NoSchedule-"],
        ["annotate", "node", "node5", "--overwrite",
         f"{pl.RECORD_LABELS}-", f"{pl.RECORD_TAINTS}-"],
    ]  # fmt: skip


def test_labels_and_taints_kubeforge_never_set_are_left_alone() -> None:
    """No record: the control-plane role, Kubernetes' own taints and a label
    set by hand are not the inventory's, whatever it says now."""
    other = node(
        labels={"node-role.kubernetes.io/control-plane": "", "by-hand": "x"},
        taints=[{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"},
                {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}],
    )  # fmt: skip
    assert plan([other], {"node5": {"labels": {}, "taints": []}}) == []
    assert plan([other], {"node5": {"labels": None, "taints": None}}) == []


def test_a_taint_is_identified_by_key_and_effect() -> None:
    """Someone else's dedicated:NoSchedule is not the inventory's
    dedicated=db:NoExecute: added beside it, and left when that goes."""
    theirs = {"key": "dedicated", "value": "db", "effect": "NoSchedule"}
    current = node(taints=[theirs])
    wanted = {"node5": {"labels": {}, "taints": ["dedicated=db:NoExecute"]}}
    assert plan([current], wanted) == [
        ["taint", "node", "node5", "--overwrite", "dedicated=db:NoExecute"],
        ["annotate", "node", "node5", "--overwrite", f'{pl.RECORD_TAINTS}=["dedicated:NoExecute"]'],
    ]
    for args in plan([current], wanted):
        apply(current, args)
    assert plan([current], {"node5": {"labels": {}, "taints": []}}) == [
        ["taint", "node", "node5", "--overwrite", "dedicated:NoExecute-"],
        ["annotate", "node", "node5", "--overwrite", f"{pl.RECORD_TAINTS}-"],
    ]
    assert theirs in current["spec"]["taints"]


def test_a_recorded_label_already_gone_needs_only_the_record() -> None:
    current = node(labels={"tier": "web"}, annotations=record(["tier", "gone"], []))
    assert plan([current], {"node5": {"labels": {"tier": "web"}, "taints": []}}) == [
        ["annotate", "node", "node5", "--overwrite", f'{pl.RECORD_LABELS}=["tier"]'],
    ]


def test_an_unreadable_record_removes_nothing_and_is_rewritten() -> None:
    current = node(labels={"tier": "web", "other": "x"},
                   annotations={pl.RECORD_LABELS: "not json"})  # fmt: skip
    assert plan([current], {"node5": {"labels": {"tier": "web"}, "taints": []}}) == [
        ["annotate", "node", "node5", "--overwrite", f'{pl.RECORD_LABELS}=["tier"]'],
    ]


def test_yaml_scalars_become_label_values() -> None:
    current = node(labels={"gpu": "true", "cores": "8", "none": ""},
                   annotations=record(["cores", "gpu", "none"], []))  # fmt: skip
    wanted = {"node5": {"labels": {"gpu": True, "cores": 8, "none": None}, "taints": []}}
    assert plan([current], wanted) == []


def test_only_the_play_s_registered_nodes_are_planned() -> None:
    wanted = {**WANTED, "node9": WANTED["node5"]}  # node9 has not registered (check mode)
    nodes = [converged(), node("node4", labels={"tier": "x"})]
    assert plan(nodes, wanted) == []
    one = pl.kubeforge_node_placement(json.dumps(node(labels={"tier": "web"})), WANTED)
    assert {c["node"] for c in one} == {"node5"}
    assert pl.kubeforge_node_placement("", WANTED) == []
    assert pl.kubeforge_node_placement(None, WANTED) == []


def test_filters_are_registered() -> None:
    assert set(pl.FilterModule().filters()) == {
        "kubeforge_kubelet_node_labels",
        "kubeforge_register_taints",
        "kubeforge_node_placement",
    }


# The lab's ingress node -----------------------------------------------------------


@pytest.mark.parametrize(
    ("workers", "ingress"),
    [([4, 5], "node5"), ([4, 5, 6], "node5"), ([4, 6], "node6"), ([2], "node2"), ([], None)],
)
def test_node5_or_the_last_worker_of_a_lab_layout_is_the_ingress_node(
    tmp_path: Path, workers: list[int], ingress: str | None
) -> None:
    path = lab.write_layout(tmp_path / "inv" / "hosts.yml", tmp_path / "key", [1], [1], workers)
    hosts = yaml.safe_load(path.read_text())["all"]["hosts"]
    placed = {name for name, hvars in hosts.items() if "node_labels" in hvars}
    assert placed == ({ingress} if ingress else set())
    if ingress:
        hvars = hosts[ingress]
        assert hvars["node_labels"] == {INGRESS: ""}
        assert hvars["node_taints"] == [f"{INGRESS}=:NoSchedule"]
        assert inv.check_node_placement([ingress], hosts) == []
        # Not the kubelet's to set: applied through the API after registration.
        assert pl.kubeforge_kubelet_node_labels(hvars["node_labels"]) == ""
        assert pl.kubeforge_register_taints(hvars["node_taints"]) == [
            {"key": INGRESS, "effect": "NoSchedule"}
        ]
