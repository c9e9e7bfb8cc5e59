"""After reset.yml (converge), every reset host looks like a lab node that was
never deployed: the reference node, recreated fresh. Then a second reset
changes nothing, and cluster.yml deploys a healthy cluster onto the hosts
again (test_b_redeploy.py)."""

from __future__ import annotations

import functools
import shlex

import hoststate
import lab
import labconfig as cfg
import pytest
import runbook
import testinfra  # type: ignore[import-untyped]
from clustercheck import Inventory
from testinfra.host import Host  # type: ignore[import-untyped]

CATEGORIES = [*hoststate.COMMANDS, "netfilter"]


def container(index: int) -> Host:
    name = lab.container_name(index)
    if not lab.container_running(name):
        pytest.fail(f"lab node {name} is not running: the lab is not up")
    return testinfra.get_host(f"docker://{name}")


@functools.cache
def snapshot(index: int, address: str) -> dict[str, set[str]]:
    host = container(index)
    raw = {name: host.check_output(command) for name, command in hoststate.COMMANDS.items()}
    pid = testinfra.get_host("local://").check_output(
        f"docker inspect -f '{{{{.State.Pid}}}}' {shlex.quote(host.backend.name)}"
    )
    local = testinfra.get_host("local://")
    nft = local.run(f"nsenter -t {pid} -n nft list ruleset")
    legacy = local.run(f"nsenter -t {pid} -n iptables-legacy-save")
    if nft.rc != 0:
        pytest.fail(f"nft list ruleset in lab node {index}: {nft.stderr}")
    return {
        "units": hoststate.units(raw["units"]),
        "ports": hoststate.ports(raw["ports"], address),
        "interfaces": hoststate.interfaces(raw["interfaces"]),
        "routes": hoststate.routes(raw["routes"], address),
        "mounts": hoststate.mounts(raw["mounts"]),
        "packages": hoststate.packages(raw["packages"]),
        "files": hoststate.files(raw["files"]),
        "netfilter": hoststate.nft_ruleset(nft.stdout)
        | hoststate.iptables_save(legacy.stdout if legacy.rc == 0 else ""),
    }


def test_reset_succeeded_on_every_host(reset_hosts: dict[str, int]) -> None:
    run = runbook.read_run("reset")
    assert run["rc"] == 0, f"reset.yml failed (rc={run['rc']}), see its log"
    missing = sorted(set(reset_hosts) - set(run["recap"]))
    assert not missing, f"reset.yml did not run on {missing}"
    bad = {
        h: r
        for h, r in run["recap"].items()
        if h in reset_hosts and (r["failed"] or r["unreachable"])
    }
    assert not bad, f"reset.yml failed or could not reach: {bad}"
    print(f"reset.yml took {run['seconds']:.0f}s")


@pytest.mark.parametrize("category", CATEGORIES)
def test_host_matches_the_never_deployed_reference(
    category: str, inventory: Inventory, reset_hosts: dict[str, int], reference_node: int
) -> None:
    reference = snapshot(reference_node, cfg.node_ip(reference_node))[category]
    problems = []
    for name, index in reset_hosts.items():
        diff = hoststate.difference(snapshot(index, inventory.address(name))[category], reference)
        if diff:
            problems.append(f"{name} (lab node {index}) vs reference node {reference_node}: {diff}")
    assert not problems, f"{category} after reset:\n" + "\n".join(problems)


def test_second_reset_changes_nothing(inventory: Inventory, reset_hosts: dict[str, int]) -> None:
    run = runbook.run(
        "reset-again",
        ["-i", str(inventory.path.resolve()), "reset.yml", "-e", "skip_confirmation=true"],
    )
    assert run["rc"] == 0, f"the second reset.yml failed (rc={run['rc']})"
    changed = {
        h: r["changed"] for h, r in run["recap"].items() if h in reset_hosts and r["changed"]
    }
    assert not changed, f"a second reset changed something on {changed} (log: reset-again.log)"
    assert set(reset_hosts) <= set(run["recap"]), f"the second reset skipped hosts: {run['recap']}"
