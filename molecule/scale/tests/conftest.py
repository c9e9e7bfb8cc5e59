"""The `scale` scenario's fixtures come from tests/lab/clustercheck.py."""

from clustercheck import inventory, kubectl, lab_env

__all__ = ["inventory", "kubectl", "lab_env"]
