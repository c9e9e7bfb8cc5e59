"""plugins/modules/kubeforge_files.py: content a `validate` check refuses never
replaces the file; `absent` removes files that exist and nothing else."""

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


class FakeModule:
    """What _remove uses of AnsibleModule."""

    def __init__(self, check_mode: bool) -> None:
        self.check_mode = check_mode

    def fail_json(self, msg: str) -> None:
        raise AssertionError(msg)


@pytest.mark.parametrize("check_mode", [False, True])
def test_absent_removes_an_existing_file_only(
    files_module: ModuleType, tmp_path: Path, check_mode: bool
) -> None:
    dropin = tmp_path / "containerd.service.d" / "http-proxy.conf"
    dropin.parent.mkdir()
    dropin.write_text("[Service]\n")
    module = FakeModule(check_mode)
    assert files_module._remove(module, dropin) is True
    assert dropin.exists() is check_mode
    assert dropin.parent.is_dir(), "the directory stays"
    assert files_module._remove(module, tmp_path / "missing.conf") is False


def test_absent_refuses_a_directory(files_module: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="is a directory"):
        files_module._remove(FakeModule(False), tmp_path)
