"""The molecule scenarios' long checks that `make test` leaves out.

A check marked `full` repeats, at a cost of minutes, what another check of
`make test` already covers in part (docs/testing.md lists them and why): the
CA rotation, the upgrade's idempotence, the add-on switch, ... `make test`
must finish within CI's 90 minutes on a cold machine, so it deselects them,
and pytest says how many; `make test-full` (KUBEFORGE_FULL_CHECKS=1) runs
every scenario with them.

molecule/conftest.py, shared by every scenario's checks, takes both hooks.
"""

from __future__ import annotations

import labconfig as cfg
import pytest

FULL_CHECKS = "KUBEFORGE_FULL_CHECKS"


def full_checks() -> bool:
    """Whether this run is `make test-full`'s (converge steps ask too)."""
    return cfg.env_flag(FULL_CHECKS, False)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "full(reason): a long check that only make test-full runs (tests/lab/fullchecks.py)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if full_checks():
        return
    left_out = [item for item in items if item.get_closest_marker("full")]
    if not left_out:
        return
    reasons = sorted(
        {str(m.args[0]) for i in left_out if (m := i.get_closest_marker("full")) and m.args}
    )
    print(
        f"\n{len(left_out)} long checks left out ({FULL_CHECKS}=1, or make test-full, runs them):"
        + "".join(f"\n  - {reason}" for reason in reasons)
    )
    config.hook.pytest_deselected(items=left_out)
    items[:] = [item for item in items if item not in left_out]
