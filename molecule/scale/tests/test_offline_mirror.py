"""The worker node6 joined from an offline mirror (converge.yml): with
contrib/offline/offline.py, tests/lab/mirrorcopy.py fetched every file and
image the inventory needs from the lab's mirror and registry (standing in for
the release sites and upstream registries) into a new directory, pushed the
image archives into the lab registry under /offline, and served the directory
on 127.0.0.1; scale.yml --limit node6 ran with files_repo at that copy and an
empty download cache (docs/testing.md, `scale`).

Checks: fetch and push report every file and image done, none failed; every
file the list gives node6 was fetched from the copy by that run (the server's
log: a GET answered 200); every image of the list is in the registry below
/offline, and a pod on node6 runs the pod sandbox image from there.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import mirrorcopy
import pytest
from clustercheck import Kubectl, wait_for

WORKER = "node6"
GET = re.compile(r'"GET /(\S+) HTTP/[\d.]+" (\d{3})')


def work() -> Path:
    path = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "")) / "offline"
    if not (path / "list.json").is_file():
        pytest.fail(f"{path}/list.json is missing: converge makes the offline mirror")
    return path


def listing() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((work() / "list.json").read_text())
    assert data["files"] and data["images"], "the offline list is empty"
    return data


def pushed() -> dict[str, str]:
    """push.log: the image the inventory pulls -> where push put it."""
    out: dict[str, str] = {}
    dest = ""
    for line in (work() / "push.log").read_text().splitlines():
        if m := re.match(r"^\s+(pushed|failed)\s+(\S+)", line):
            assert m[1] == "pushed", f"push failed: {line.strip()}"
            dest = m[2]
        elif (m := re.match(r"^\s+\(the inventory pulls (\S+)\)$", line)) and dest:
            out[m[1]] = dest
    return out


def test_fetch_and_push_left_nothing_out() -> None:
    fetch = (work() / "fetch.log").read_text()
    data = listing()
    done = re.search(r"^files: (\d+) fetched, (\d+) already there, (\d+) failed$", fetch, re.M)
    assert done, f"fetch.log has no files summary:\n{fetch[-2000:]}"
    assert int(done[3]) == 0 and int(done[1]) + int(done[2]) == len(data["files"]), done[0]
    wanted = {image["configured"] for image in data["images"]}
    assert set(pushed()) == wanted, f"pushed {sorted(pushed())}, the list has {sorted(wanted)}"
    below = mirrorcopy.pushed_registry() + "/"
    assert all(dest.startswith(below) for dest in pushed().values()), pushed()


def test_every_file_of_the_worker_came_from_the_copy() -> None:
    served = {path: status for path, status in GET.findall((work() / "serve.log").read_text())}
    wanted = [f["path"] for f in listing()["files"] if WORKER in f["hosts"]]
    assert wanted, f"the offline list gives {WORKER} no file"
    missing = [p for p in wanted if served.get(p) != "200"]
    assert missing == [], (
        f"files {WORKER} needs that scale.yml did not fetch from the offline copy: {missing} "
        f"(served: {sorted(served)})"
    )


def test_every_image_is_in_the_registry_below_offline() -> None:
    problems = []
    for ref in pushed().values():
        done = subprocess.run(
            ["skopeo", "inspect", "--tls-verify=false", "--raw", f"docker://{ref}"],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        if done.returncode != 0:
            problems.append(f"{ref}: {done.stderr.strip()}")
    assert problems == [], "images missing below /offline:\n" + "\n".join(problems)


def test_a_pod_on_the_worker_runs_the_pushed_sandbox_image(kubectl: Kubectl) -> None:
    data = listing()
    sandbox = [i for i in data["images"] if i["name"] == "pod_infra"]
    assert sandbox, f"no pod_infra image in the list: {[i['name'] for i in data['images']]}"
    image = pushed()[sandbox[0]["configured"]]
    name = "offline-sandbox"
    kubectl("delete", "pod", name, "-n", "default", "--ignore-not-found", "--wait=true")
    kubectl("apply", "-f", "-", stdin=json.dumps({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"nodeName": WORKER, "terminationGracePeriodSeconds": 0,
                 "containers": [{"name": name, "image": image, "imagePullPolicy": "Always"}]},
    }))  # fmt: skip
    try:

        def running() -> str | None:
            phase = kubectl("get", "pod", name, "-n", "default", "-o", "jsonpath={.status.phase}")
            return None if phase == "Running" else f"phase {phase!r}"

        wait_for(f"a pod on {WORKER} running {image}", running, 120)
    finally:
        kubectl("delete", "pod", name, "-n", "default", "--ignore-not-found", "--wait=false")
