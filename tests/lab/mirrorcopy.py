"""An offline mirror made with contrib/offline/offline.py from the lab's own
mirror and registry, standing in for the release sites and upstream
registries (docs/testing.md, the `scale` scenario):

    mirrorcopy.py start INVENTORY WORK [--port 8089]
        in WORK: the inventory's download manifest (manifest.json, list.json);
        `fetch` of every file and image into WORK/mirror from the lab's mirror
        and registry (fetch.log); `push` of the image archives into the lab
        registry under <registry>/offline (push.log); then `serve` of
        WORK/mirror on 127.0.0.1:PORT in the background (serve.log, serve.pid),
        waited for until it answers.
    mirrorcopy.py stop WORK
        stops the server and removes WORK/mirror and WORK/cache (the logs and
        lists stay for the checks).

A step that fails stops with its log's tail. WORK/cache is the download cache
a run pointed at the copy uses (download_cache_dir), so that every file it
needs is fetched from the copy.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import labconfig as cfg

OFFLINE = cfg.REPO / "contrib" / "offline" / "offline.py"
PUSH_PATH = "offline"


def pushed_registry() -> str:
    """Where `start` pushes the images: the lab registry, below /offline."""
    return f"{cfg.registry_addr()}/{PUSH_PATH}"


def step(name: str, argv: list[str], log: Path) -> None:
    start = time.monotonic()
    with log.open("w") as out:
        done = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, cwd=cfg.REPO, check=False)
    print(f"mirrorcopy: {name}: rc={done.returncode} in {time.monotonic() - start:.0f}s ({log})")
    if done.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-30:])
        raise SystemExit(f"mirrorcopy: {name} failed (rc={done.returncode}):\n{tail}")


def start(inventory: Path, work: Path, port: int) -> None:
    stop(work)
    work.mkdir(parents=True, exist_ok=True)
    manifest, mirror = work / "manifest.json", work / "mirror"
    offline = [sys.executable, str(OFFLINE), "-i", str(inventory), "--manifest", str(manifest)]
    step(
        "manifest",
        ["ansible-playbook", "-i", str(inventory), "playbooks/offline-manifest.yml",
         "-e", f"offline_manifest_file={manifest}"],
        work / "manifest.log",
    )  # fmt: skip
    with (work / "list.json").open("w") as out:
        subprocess.run([*offline, "list", "--json"], stdout=out, cwd=cfg.REPO, check=True)
    step(
        "fetch",
        [*offline, "fetch", str(mirror), "--from", cfg.mirror_url(),
         "--registry-from", cfg.registry_addr(), "--src-tls-verify", "false"],
        work / "fetch.log",
    )  # fmt: skip
    step(
        "push",
        [*offline, "push", pushed_registry(), "--dir", str(mirror), "--dest-tls-verify", "false"],
        work / "push.log",
    )
    with (work / "serve.log").open("w") as out:
        server = subprocess.Popen(
            [sys.executable, str(OFFLINE), "serve", str(mirror), "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, cwd=cfg.REPO, start_new_session=True,
        )  # fmt: skip
    (work / "serve.pid").write_text(f"{server.pid}\n")
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2):
                break
        except OSError as e:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"mirrorcopy: serve did not answer on port {port}: {e}") from e
            time.sleep(0.5)
    print(f"mirrorcopy: serving {mirror} at http://127.0.0.1:{port} (files_repo)")


def stop(work: Path) -> None:
    pid_file = work / "serve.pid"
    if pid_file.is_file():
        pid = int(pid_file.read_text())
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        pid_file.unlink()
    for sub in ("mirror", "cache"):
        shutil.rmtree(work / sub, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_start = sub.add_parser("start")
    p_start.add_argument("inventory", type=Path)
    p_start.add_argument("work", type=Path)
    p_start.add_argument("--port", type=int, default=8089)
    p_stop = sub.add_parser("stop")
    p_stop.add_argument("work", type=Path)
    args = parser.parse_args(argv)
    if args.command == "start":
        start(args.inventory.resolve(), args.work.resolve(), args.port)
    else:
        stop(args.work.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
