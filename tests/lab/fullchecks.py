"""The molecule scenarios' long checks that `make test` leaves out.

A check marked `full` repeats, at a cost of minutes, what another check of
`make test` already covers in part (docs/testing.md lists them and why): the
CA rotation, the upgrade's idempotence, the add-on switch, ... `make test`
must finish within CI's 90 minutes on a cold machine, so it deselects them,
and pytest says how many; `make test-full` (KUBEFORGE_FULL_CHECKS=1) runs
every scenario with them.

A scenario's conftest.py takes both hooks:

    from fullchecks import pytest_collection_modifyitems, pytest_configure
"""

from __future__ import annotations

import os

import pytest

FULL_CHECKS = "KUBEFORGE_FULL_CHECKS"


def full_checks() -> bool:
    """Whether this run is `make test-full`'s (converge steps ask too)."""
    value = os.environ.get(FULL_CHECKS, "")
    if value not in ("", "0", "1"):
        raise SystemExit(f"{FULL_CHECKS} must be 1 or 0, not {value!r}")
    return value == "1"


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
