"""The `validate` option of plugins/modules/kubeforge_files.py: content a
check refuses never replaces the file."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest

MODULE = Path(__file__).resolve().parents[2] / "plugins" / "modules" / "kubeforge_files.py"


@pytest.fixture(scope="module")
def files_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("kubeforge_files", MODULE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write(files_module: ModuleType, path: Path, data: bytes, verdict: str) -> str:
    seen: list[bytes] = []

    def check(tmp: Path) -> str:
        seen.append(tmp.read_bytes())
        return verdict

    refused: str = files_module._write(path, data, 0o640, os.getuid(), os.getgid(), check)
    assert seen == [data], "the check reads the new content, once"
    return refused


def test_accepted_content_replaces_the_file(files_module: ModuleType, tmp_path: Path) -> None:
    target = tmp_path / "haproxy.cfg"
    target.write_text("old\n")
    assert write(files_module, target, b"new\n", "") == ""
    assert target.read_text() == "new\n"
    assert target.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["haproxy.cfg"]


def test_refused_content_leaves_the_file_and_no_temporary(
    files_module: ModuleType, tmp_path: Path
) -> None:
    target = tmp_path / "haproxy.cfg"
    target.write_text("old\n")
    assert write(files_module, target, b"broken\n", "haproxy -c failed") == "haproxy -c failed"
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["haproxy.cfg"]


def test_without_a_check_the_file_is_written(files_module: ModuleType, tmp_path: Path) -> None:
    target = tmp_path / "new.conf"
    assert files_module._write(target, b"x", 0o600, os.getuid(), os.getgid()) == ""
    assert target.read_bytes() == b"x"
