"""The `upgrade` scenario's fixtures come from tests/lab/clustercheck.py; its
long checks (marked `full`: the CA rotation, ...) only run in `make test-full`
(tests/lab/fullchecks.py)."""

from clustercheck import inventory, kubectl
from fullchecks import pytest_collection_modifyitems, pytest_configure

__all__ = ["inventory", "kubectl", "pytest_collection_modifyitems", "pytest_configure"]
