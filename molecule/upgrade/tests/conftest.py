"""The `upgrade` scenario's fixtures come from tests/lab/clustercheck.py.

The CA rotation check (test_z_ca_rotation.py, marked `ca_rotation`) takes
about 13 minutes: `make test` leaves it out to stay within CI's 90 minutes
(pytest reports it deselected, and says why); `make test-ca-rotation` runs
the scenarios with it (KUBEFORGE_CA_ROTATION_CHECK=1)."""

import os

import pytest
from clustercheck import inventory, kubectl

__all__ = ["inventory", "kubectl"]

CA_ROTATION_CHECK = "KUBEFORGE_CA_ROTATION_CHECK"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "ca_rotation: the CA rotation check (rotate-ca.yml)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get(CA_ROTATION_CHECK) == "1":
        return
    left_out = [item for item in items if item.get_closest_marker("ca_rotation")]
    if left_out:
        print(
            f"\nupgrade: {len(left_out)} CA rotation checks left out "
            f"({CA_ROTATION_CHECK}=1, or make test-ca-rotation, runs them)"
        )
        config.hook.pytest_deselected(items=left_out)
        items[:] = [item for item in items if item not in left_out]
