"""Settings a running cluster cannot take are refused by the opening play,
before any host changes: another network plugin, another service network,
another calico pool (the scenario's cluster runs calico), another cluster name
and DNS domain."""

from __future__ import annotations

import subprocess

import pytest
from clustercheck import REPO, Inventory
from runbook import plain_env, recap


def refused(inventory: Inventory, *extra: str) -> str:
    """Run cluster.yml with `extra`; it must fail having changed no host. Its output."""
    done = subprocess.run(
        ["ansible-playbook", "-i", str(inventory.path), "cluster.yml", *extra],
        cwd=REPO, env=plain_env(), text=True, capture_output=True, timeout=900,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode != 0, f"cluster.yml {' '.join(extra)} was not refused:\n{output[-4000:]}"
    changed = {h: c for h, c in recap(output).items() if c["changed"]}
    assert not changed, f"cluster.yml {' '.join(extra)} changed hosts: {changed}"
    return output


@pytest.mark.parametrize(
    ("extra", "messages"),
    [
        (
            ["-e", "kube_network_plugin=flannel", "-e", "kube_service_addresses=10.96.0.0/16"],
            [
                "kube_network_plugin 'flannel': the running cluster runs calico",
                "kube_service_addresses 10.96.0.0/16: the running cluster's kubernetes service",
            ],
        ),
        (
            ["-e", "calico_pool_blocksize=24", "-e", "calico_vxlan_mode=CrossSubnet"],
            [
                "calico_pool_blocksize '24': the running cluster's IP pool default-ipv4-ippool",
                "calico_vxlan_mode 'CrossSubnet': the running cluster's IP pool",
            ],
        ),
        (
            # dns_domain follows cluster_name: both are refused.
            ["-e", "cluster_name=prod.local"],
            [
                "cluster_name 'prod.local': the running cluster is named 'cluster.local'",
                "dns_domain 'prod.local': the running cluster's DNS domain is 'cluster.local'",
            ],
        ),
    ],
    ids=["plugin-and-service-network", "calico-pool", "cluster-name-and-dns-domain"],
)  # fmt: skip
def test_unsafe_change_is_refused_before_any_host_changes(
    inventory: Inventory, extra: list[str], messages: list[str]
) -> None:
    output = refused(inventory, *extra)
    assert "setting(s) the running cluster cannot take, nothing was changed" in output, output[
        -4000:
    ]
    for message in messages:
        assert message in output, f"{message!r} not in the refusal:\n{output[-4000:]}"
