"""The CIS Kubernetes Benchmark items kubeforge passes (tests/cis/checks.yml,
docs/security.md), one test per item, asserted on every host in its scope:
flags of the units and of the running processes, etcd's environment, the
kubelet's configuration file and /configz, kube-proxy's configuration, the
audit policy, the encryption configuration, and the modes and owners of the
files. The hosts are read once (tests/cis/cis_check.py: two scripts per host).
An item whose variable the inventory sets against the benchmark (e.g.
kubelet_protect_kernel_defaults: false in the lab) is checked the other way:
the hosts in scope must not hold it (the inventory's setting was applied)."""

from __future__ import annotations

import cis_check as cis
import pytest
from clustercheck import Inventory

CATALOGUE = cis.load_catalogue()


@pytest.fixture(scope="module")
def cis_facts(inventory: Inventory) -> dict[str, cis.HostFacts]:
    checks = CATALOGUE.passing()
    settings = inventory.settings(*cis.setting_names(checks))
    names = list(dict.fromkeys(h for hosts in inventory.groups.values() for h in hosts))
    try:
        return cis.gather(checks, {n: inventory.host(n) for n in names}, inventory.groups, settings)
    except cis.HostError as exc:
        pytest.fail(f"reading the hosts for the CIS checks: {exc}")


@pytest.mark.parametrize("check", CATALOGUE.passing(), ids=lambda c: c.id)
def test_cis_item(
    check: cis.Check, inventory: Inventory, cis_facts: dict[str, cis.HostFacts]
) -> None:
    hosts = [h for h in cis_facts if cis.checks_for(h, [check], inventory.groups)]
    assert hosts, f"CIS {check.id}: no host of the inventory is in its scope {check.scope}"
    results = [cis.evaluate(check, cis_facts[h]) for h in hosts]
    failed = [r.message() for r in results if r.status == "fail"]
    assert not failed, "\n".join(failed)
    waived = [r for r in results if r.status == "waived"]
    ignored = [f"{r.host}: {'; '.join(r.problems)}, yet it holds" for r in waived if r.holds]
    assert not ignored, f"CIS {check.id}: an inventory setting not applied:\n" + "\n".join(ignored)
    if waived:
        print(f"CIS {check.id} waived by the inventory on {len(waived)} of {len(results)} hosts "
              f"(applied): {waived[0].host}: {'; '.join(waived[0].problems)}")  # fmt: skip
