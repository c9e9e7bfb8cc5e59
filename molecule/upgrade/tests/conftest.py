"""The `upgrade` scenario's fixtures come from tests/lab/clustercheck.py."""

from clustercheck import inventory, kubectl

__all__ = ["inventory", "kubectl"]
