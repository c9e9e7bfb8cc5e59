"""The `scale` scenario's fixtures come from tests/lab/clustercheck.py; its long
checks (marked `full`) only run in `make test-full` (tests/lab/fullchecks.py)."""

from clustercheck import inventory, kubectl, lab_env
from fullchecks import pytest_collection_modifyitems, pytest_configure

__all__ = ["inventory", "kubectl", "lab_env", "pytest_collection_modifyitems", "pytest_configure"]
