"""Shared by every molecule scenario's checks (pytest loads it before each
scenario's own tests/conftest.py): the long checks, marked `full`, only run in
`make test-full` (tests/lab/fullchecks.py)."""

from fullchecks import pytest_collection_modifyitems, pytest_configure

__all__ = ["pytest_collection_modifyitems", "pytest_configure"]
