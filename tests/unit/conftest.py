"""Shared by the unit tests."""

import labconfig as cfg
import pytest


@pytest.fixture(autouse=True)
def _lab_builds_every_release(monkeypatch: pytest.MonkeyPatch) -> None:
    """make test runs the unit tests with KUBEFORGE_LAB_KUBE_PREVIOUS=0 in its
    environment; they test the lab's full build list unless they say otherwise."""
    monkeypatch.delenv(cfg.KUBE_PREVIOUS_ENV, raising=False)
