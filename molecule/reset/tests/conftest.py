"""Fixtures of the reset scenario: the inventory (shared with the other
scenarios, tests/lab/clustercheck.py), the lab node each host is, and the
reference node, recreated fresh (never deployed) for the comparison."""

from __future__ import annotations

import os
import subprocess
import time

import artifacts
import images
import lab
import labconfig as cfg
import pytest
import scenario
from clustercheck import Inventory, busybox_image, inventory, kubectl, lab_env, namespace

__all__ = ["busybox_image", "inventory", "kubectl", "lab_env", "namespace"]

REFERENCE_ENV = "KUBEFORGE_RESET_REFERENCE_NODE"


def lab_node(address: str) -> int:
    """The lab node number of an address (nodeN is 10.213.0.(10+N))."""
    for i in range(1, cfg.MAX_NODES + 1):
        if cfg.node_ip(i) == address:
            return i
    pytest.fail(f"{address} is not the address of a lab node (1-{cfg.MAX_NODES})")


@pytest.fixture(scope="session")
def reset_hosts(inventory: Inventory) -> dict[str, int]:
    """Every host reset.yml resets (k8s_cluster and etcd) -> its lab node number."""
    names = dict.fromkeys(inventory.groups["k8s_cluster"] + inventory.groups["etcd"])
    return {name: lab_node(inventory.address(name)) for name in names}


@pytest.fixture(scope="session")
def reference_node(reset_hosts: dict[str, int]) -> int:
    """The reference node, recreated fresh from the lab's node image."""
    index = int(os.environ.get(REFERENCE_ENV, "12"))
    if index in reset_hosts.values():
        pytest.fail(f"{REFERENCE_ENV}={index} is one of the hosts under test: pick another node")
    if not lab.docker_running():
        pytest.fail("no Docker engine: the lab is not up")
    image = images.ensure_image(images.local_images()[0], artifacts.Report())
    lab.remove_node(lab.container_name(index))
    lab.ensure_node(index, image, lab.ssh_key().with_name("id_ed25519.pub"))
    deadline = time.monotonic() + 180
    while True:
        done = subprocess.run(
            ["docker", "exec", lab.container_name(index),
             "systemctl", "is-system-running", "--wait"],
            capture_output=True, text=True, check=False, timeout=200,
        )  # fmt: skip
        if done.stdout.strip() in ("running", "degraded"):
            break
        if time.monotonic() > deadline:
            pytest.fail(f"reference node {index} did not boot: {done.stdout}{done.stderr}")
        time.sleep(2)
    # Logged into over SSH once, as the hosts under test were.
    while scenario.ssh(index, "true").returncode != 0:
        if time.monotonic() > deadline:
            pytest.fail(f"reference node {index} does not answer SSH")
        time.sleep(2)
    return index
