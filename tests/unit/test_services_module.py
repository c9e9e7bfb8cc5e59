"""plugins/modules/kubeforge_services.py in check mode: it changes nothing,
tells which services a real run would start or restart, and asks running,
unchanged services their health URL, so that roles/node can send only the
nodes that need it through its one-at-a-time restart."""

from __future__ import annotations

import http.server
import importlib.util
import json
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

MODULE = Path(__file__).resolve().parents[2] / "plugins" / "modules" / "kubeforge_services.py"
STARTED = "Thu 2026-12-03 10:00:00.000000 UTC"  # the fake service's start


@pytest.fixture
def services_module(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    spec = importlib.util.spec_from_file_location("kubeforge_services", MODULE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "CHECK_HEALTH_TIMEOUT", 1)
    return module


@pytest.fixture
def systemctl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A systemctl that shows one running, enabled service and logs every call."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "systemctl.log"
    script = bindir / "systemctl"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {log}\n'
        'if [ "$1" = show ]; then\n'
        "  echo LoadState=loaded\n  echo ActiveState=active\n  echo UnitFileState=enabled\n"
        f"  echo NeedDaemonReload=no\n  echo 'ExecMainStartTimestamp={STARTED}'\nfi\n"
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    return log


@pytest.fixture
def health_url() -> Iterator[str]:
    class Ok(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/healthz"
    server.shutdown()


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/healthz"


def run_check(
    module: ModuleType, watch: list[str], url: str, capsys: pytest.CaptureFixture[str]
) -> dict[str, Any]:
    import ansible.module_utils.basic as basic  # type: ignore[import-untyped]

    args = {
        "services": [{"name": "kubelet", "watch": watch, "wait": {"url": url}}],
        "_ansible_check_mode": True,
    }
    basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode()
    basic._ANSIBLE_PROFILE = "legacy"
    with pytest.raises(SystemExit):
        module.main()
    result: dict[str, Any] = json.loads(capsys.readouterr().out)
    return result


def test_a_healthy_unchanged_service_needs_nothing(
    services_module: ModuleType, systemctl: Path, health_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    result = run_check(services_module, [], health_url, capsys)
    assert not result.get("failed"), result
    assert result["changed"] is False
    assert result["unhealthy"] == []
    assert all(line.startswith("show ") for line in systemctl.read_text().splitlines())


def test_an_unanswering_service_is_reported_not_restarted(
    services_module: ModuleType, systemctl: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_check(services_module, [], closed_port_url(), capsys)
    assert not result.get("failed"), result
    assert result["changed"] is False
    assert result["unhealthy"] == ["kubelet"]
    assert all(line.startswith("show ") for line in systemctl.read_text().splitlines())


def test_a_changed_file_is_a_restart_and_not_probed(
    services_module: ModuleType, systemctl: Path, capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:  # fmt: skip
    watched = tmp_path / "config.yaml"
    watched.write_text("new\n")  # written after STARTED
    result = run_check(services_module, [str(watched)], closed_port_url(), capsys)
    assert not result.get("failed"), result
    assert result["changed"] is True
    assert result["restarted"] == {"kubelet": [str(watched)]}
    assert result["unhealthy"] == []
    assert all(line.startswith("show ") for line in systemctl.read_text().splitlines())
