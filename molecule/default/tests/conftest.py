"""The `default` scenario's fixtures come from tests/lab/clustercheck.py; its long
checks (marked `full`) only run in `make test-full` (tests/lab/fullchecks.py)."""

from clustercheck import busybox_image, inventory, kubectl, lab_env, namespace
from fullchecks import pytest_collection_modifyitems, pytest_configure

__all__ = [
    "busybox_image",
    "inventory",
    "kubectl",
    "lab_env",
    "namespace",
    "pytest_collection_modifyitems",
    "pytest_configure",
]
