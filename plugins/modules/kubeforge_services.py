#!/usr/bin/python
"""Bring systemd services to their wanted state in one module call."""

from __future__ import annotations

import ssl
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ansible.module_utils.basic import AnsibleModule  # type: ignore[import-untyped]

DOCUMENTATION = r"""
module: kubeforge_services
short_description: Enable, start and restart systemd services, and wait until they are healthy
description:
  - Reloads systemd once when a unit file changed (systemd says so with C(NeedDaemonReload)).
  - Each service is enabled and started, in the order given. A running service is restarted
    when one of its C(watch) files (binary, unit, configuration, certificates) changed after its
    main process started, comparing the file's change time with the process start. A run that
    wrote a file and failed before the restart therefore restarts it on the next run.
  - With C(wait), the service's health URL is polled until it answers with one of the accepted
    status codes.
  - In check mode nothing is changed; the result tells what would be. A running service that
    would not be restarted is also asked its health URL (for up to 10 s); C(unhealthy) lists
    those that did not answer, which a real run would wait for and then fail on.
options:
  services:
    description: The services, handled in this order.
    type: list
    elements: dict
    required: true
    suboptions:
      name: {description: Unit name without C(.service)., type: str, required: true}
      watch:
        description: Files whose change restarts the service.
        type: list
        elements: str
        default: []
      enabled: {description: Whether the unit starts at boot., type: bool, default: true}
      no_block:
        description: Start without waiting for the unit to be up (members of a new etcd cluster).
        type: bool
        default: false
      wait:
        description: Health check after a start or restart (and to confirm a running service).
        type: dict
        suboptions:
          url: {description: URL to poll., type: str, required: true}
          status: {description: Accepted status codes., type: list, elements: int, default: [200]}
          ca: {description: CA bundle for https (without it the peer is not verified)., type: str}
          cert: {description: Client certificate., type: str}
          key: {description: Client key., type: str}
  restart:
    description:
      - Restart running services whose watched files changed. With C(false) only stopped
        services are started (a task that starts everything in parallel, followed by a
        throttled one that restarts one host at a time).
    type: bool
    default: true
  timeout:
    description: Seconds to wait for each health check.
    type: int
    default: 180
author: kubeforge
"""

EXAMPLES = r"""
- name: Run the kubelet
  kubeforge_services:
    services:
      - name: kubelet
        watch: [/usr/local/bin/kubelet, /etc/systemd/system/kubelet.service]
        wait: {url: "http://127.0.0.1:10248/healthz"}
"""

RETURN = r"""
started:
  description: Services that were (or would be) started.
  type: list
  elements: str
  returned: always
restarted:
  description: Services that were (or would be) restarted, with the files that made them.
  type: dict
  returned: always
enabled:
  description: Services that were (or would be) enabled.
  type: list
  elements: str
  returned: always
daemon_reload:
  description: Whether systemd was (or would be) reloaded.
  type: bool
  returned: always
unhealthy:
  description: In check mode, running services left as they are whose health URL did not answer.
  type: list
  elements: str
  returned: always
"""

PROPERTIES = (
    "LoadState",
    "ActiveState",
    "UnitFileState",
    "NeedDaemonReload",
    "ExecMainStartTimestamp",
)


def parse_timestamp(value: str) -> float | None:
    """Seconds since the epoch of a systemd `--timestamp=us+utc` value; None when unset."""
    value = value.strip()
    if not value or value in ("n/a", "0"):
        return None
    utc = timezone.utc  # noqa: UP017 - datetime.UTC needs Python 3.11 on the host
    return datetime.strptime(value, "%a %Y-%m-%d %H:%M:%S.%f UTC").replace(tzinfo=utc).timestamp()


def changed_since(paths: list[str], since: float | None) -> list[str]:
    """Watched files whose content or attributes changed after `since` (none when it is unknown)."""
    if since is None:
        return []
    out = []
    for path in paths:
        try:
            if Path(path).stat().st_ctime > since:
                out.append(path)
        except FileNotFoundError:
            continue
    return out


class Systemd:
    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.systemctl = module.get_bin_path("systemctl", required=True)

    def show(self, name: str) -> dict[str, str]:
        rc, out, err = self.module.run_command(
            [
                self.systemctl,
                "show",
                "--timestamp=us+utc",
                "-p",
                ",".join(PROPERTIES),
                f"{name}.service",
            ]
        )
        if rc != 0:
            self.module.fail_json(msg=f"systemctl show {name}: {err.strip()}")
        props = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        return props

    def run(self, *args: str) -> None:
        rc, _, err = self.module.run_command([self.systemctl, *args])
        if rc != 0:
            name = args[-1]
            _, status, _ = self.module.run_command(
                [self.systemctl, "status", "--no-pager", "--lines=20", name]
            )
            self.module.fail_json(
                msg=f"systemctl {' '.join(args)} failed: {err.strip()}", status=status
            )


# Seconds a check-mode run gives a running, unchanged service to answer.
CHECK_HEALTH_TIMEOUT = 10


def wait_healthy(spec: dict[str, Any], timeout: int) -> str:
    """Poll the health URL; return '' when healthy, else the last error."""
    context: ssl.SSLContext | None = None
    if spec["url"].startswith("https:"):
        if spec.get("ca"):
            context = ssl.create_default_context(cafile=spec["ca"])
        else:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if spec.get("cert"):
            context.load_cert_chain(spec["cert"], spec.get("key"))
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        try:
            with urllib.request.urlopen(spec["url"], timeout=5, context=context) as resp:
                code = resp.status
        except urllib.error.HTTPError as exc:
            code = exc.code
        except (OSError, ssl.SSLError) as exc:
            code, last = 0, str(exc)
        if code in spec["status"]:
            return ""
        if code:
            last = f"HTTP {code}"
        if time.monotonic() >= deadline:
            return last or "no answer"
        time.sleep(1)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "services": {
                "type": "list",
                "elements": "dict",
                "required": True,
                "options": {
                    "name": {"type": "str", "required": True},
                    "watch": {"type": "list", "elements": "str", "default": []},
                    "enabled": {"type": "bool", "default": True},
                    "no_block": {"type": "bool", "default": False},
                    "wait": {
                        "type": "dict",
                        "options": {
                            "url": {"type": "str", "required": True},
                            "status": {"type": "list", "elements": "int", "default": [200]},
                            "ca": {"type": "str"},
                            "cert": {"type": "str"},
                            "key": {"type": "str", "no_log": False},
                        },
                    },
                },
            },
            "restart": {"type": "bool", "default": True},
            "timeout": {"type": "int", "default": 180},
        },
        supports_check_mode=True,
    )
    systemd = Systemd(module)
    services = module.params["services"]
    check = module.check_mode
    state = {s["name"]: systemd.show(s["name"]) for s in services}

    reload_needed = any(
        p.get("NeedDaemonReload") == "yes" or p.get("LoadState") == "not-found"
        for p in state.values()
    )
    if reload_needed and not check:
        systemd.run("daemon-reload")
        state = {s["name"]: systemd.show(s["name"]) for s in services}

    result: dict[str, Any] = {
        "started": [],
        "restarted": {},
        "enabled": [],
        "daemon_reload": reload_needed,
        "unhealthy": [],
    }
    for svc in services:
        name = svc["name"]
        props = state[name]
        if props.get("LoadState") == "not-found" and not check:
            module.fail_json(msg=f"{name}.service is not installed", **result)
        if svc["enabled"] and props.get("UnitFileState") != "enabled":
            result["enabled"].append(name)
            if not check:
                systemd.run("enable", f"{name}.service")
        active = props.get("ActiveState") in ("active", "activating", "reloading")
        acted = False
        if not active:
            result["started"].append(name)
            acted = True
            if not check:
                systemd.run(
                    "start", *(["--no-block"] if svc["no_block"] else []), f"{name}.service"
                )
        elif module.params["restart"]:
            newer = changed_since(
                svc["watch"], parse_timestamp(props.get("ExecMainStartTimestamp", ""))
            )
            if newer:
                result["restarted"][name] = newer
                acted = True
                if not check:
                    systemd.run(
                        "restart", *(["--no-block"] if svc["no_block"] else []), f"{name}.service"
                    )
        if svc["wait"] and not check and not svc["no_block"]:
            error = wait_healthy(svc["wait"], module.params["timeout"] if acted else 30)
            if error:
                module.fail_json(
                    msg=f"{name} is not healthy at {svc['wait']['url']}: {error}", **result
                )
        elif (
            svc["wait"]
            and check
            and active
            and not acted
            # Read-only: a plan (check mode) reports what a real run would
            # wait for and fail on, so that the caller can run it there.
            and wait_healthy(svc["wait"], CHECK_HEALTH_TIMEOUT)
        ):
            result["unhealthy"].append(name)

    result["changed"] = bool(
        result["started"] or result["restarted"] or result["enabled"] or result["daemon_reload"]
    )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
