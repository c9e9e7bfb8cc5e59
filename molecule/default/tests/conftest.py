"""The `default` scenario's fixtures come from tests/lab/clustercheck.py."""

from clustercheck import busybox_image, inventory, kubectl, lab_env, namespace

__all__ = ["busybox_image", "inventory", "kubectl", "lab_env", "namespace"]
