#!/usr/bin/env python3
"""Gather every file and image an inventory needs into a mirror, for air-gapped sites.

    offline.py -i inventory/mycluster/hosts.yml list [--resolve] [--json]
    offline.py -i inventory/mycluster/hosts.yml fetch DIR [--from URL] [--registry-from REG]
    offline.py -i inventory/mycluster/hosts.yml push REGISTRY --dir DIR
    offline.py serve DIR [--port N] [--bind ADDR]

What is needed comes from the roles themselves: playbooks/offline-manifest.yml
evaluates the inventory's download manifest (download_files of the role
`download`) and the images the roles run, once as configured and once with
files_repo unset and the image prefixes at their upstream values, and this
tool reads the result. Files land in DIR at <upstream host>/<upstream path>,
the layout files_repo expects; images are OCI archives under DIR/images/ (skopeo).
Needs Python 3.11 and, for list/fetch/push, the ansible-playbook of `make setup`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import offline_images as oi
import offline_mirror as om
from offline_manifest import (
    IMAGES_DIR,
    FileItem,
    Manifest,
    OfflineError,
    merge_manifests,
    parse_manifest,
    push_destination,
    run_manifest_playbook,
    source_url,
)
from offline_mirror import FetchError, parse_checksum_file, read_url

# Exit codes: 1 a file or image failed, 2 bad usage, 3 images left out (no skopeo).
EXIT_FAILED, EXIT_USAGE, EXIT_NO_SKOPEO = 1, 2, 3
ENV_FROM = "KUBEFORGE_OFFLINE_FROM"
ENV_REGISTRY_FROM = "KUBEFORGE_OFFLINE_REGISTRY_FROM"


def load_manifest(args: argparse.Namespace) -> Manifest:
    if args.manifest:
        return parse_manifest(json.loads(Path(args.manifest).read_text()))
    if not args.inventory:
        raise OfflineError(f"{args.command} needs the inventory: -i inventory/<cluster>/hosts.yml")
    archs: list[str | None] = list(args.arch) if args.arch else [None]
    runs = [run_manifest_playbook(args.inventory, arch) for arch in archs]
    return merge_manifests([parse_manifest(raw) for raw in runs])


def say(msg: str = "") -> None:
    print(msg, flush=True)


def cmd_list(args: argparse.Namespace) -> int:
    manifest = load_manifest(args)
    digests = resolve_digests(manifest, args.source) if args.resolve else {}
    if args.json:
        say(json.dumps(list_view(manifest, digests), indent=2))
        return 0
    for line in list_lines(manifest, digests):
        say(line)
    return EXIT_FAILED if any(isinstance(d, FetchError) for d in digests.values()) else 0


def resolve_digests(manifest: Manifest, source: str | None) -> dict[str, str | FetchError]:
    """sha256 of each file without a pinned one, read from its checksum file."""
    out: dict[str, str | FetchError] = {}
    for item in manifest.files:
        if item.pinned:
            continue
        url = source_url(item.upstream_checksum_url, source)
        try:
            text = read_url(url).decode(errors="replace")
            out[item.upstream_url] = parse_checksum_file(text, item.filename)
        except (FetchError, ValueError) as e:
            out[item.upstream_url] = FetchError(f"{url}: {e}")
    return out


def _sha256_line(item: FileItem, digests: Mapping[str, str | FetchError]) -> str:
    found = digests.get(item.upstream_url)
    if item.pinned:
        return f"    sha256     {item.pinned} (pinned in kubeforge_checksums)"
    if isinstance(found, str):
        return f"    sha256     {found} (from DIR/{item.checksum_path})"
    if isinstance(found, FetchError):
        return f"    sha256     unknown: {found}"
    return f"    sha256     in DIR/{item.checksum_path} (--resolve reads it)"


def list_lines(manifest: Manifest, digests: Mapping[str, str | FetchError]) -> list[str]:
    """Each file: upstream URL, sha256, where it lands in the mirror (DIR), the URL the
    inventory fetches it from now when that differs; each image likewise."""
    lines = [f"files_repo: {manifest.files_repo or '(unset: the upstream sites)'}"]
    lines.append(f"Files ({len(manifest.files)}):")
    for f in manifest.files:
        lines += [
            f"  {f.name} {f.version} {f.arch}: {', '.join(f.hosts)}",
            f"    upstream   {f.upstream_url}",
            _sha256_line(f, digests),
            f"    mirror     DIR/{f.path}",
        ]
        if f.url != f.upstream_url:
            lines.append(f"    configured {f.url}")
    lines.append(f"Images ({len(manifest.images)}):")
    for i in manifest.images:
        lines += [
            f"  {i.name} ({', '.join(i.archs)}): {', '.join(i.hosts)}",
            f"    upstream   {i.upstream_ref}",
            f"    archive    DIR/{i.archive}",
        ]
        if i.ref != i.upstream_ref:
            lines.append(f"    configured {i.ref}")
    return lines


def list_view(manifest: Manifest, digests: Mapping[str, str | FetchError]) -> dict[str, Any]:
    def sha(f: FileItem) -> str | None:
        found = f.pinned or digests.get(f.upstream_url)
        return found if isinstance(found, str) else None

    return {
        "files_repo": manifest.files_repo,
        "files": [
            {
                "name": f.name,
                "version": f.version,
                "arch": f.arch,
                "upstream_url": f.upstream_url,
                "checksum_url": f.upstream_checksum_url,
                "sha256": sha(f),
                "pinned": bool(f.pinned),
                "path": f.path,
                "checksum_path": None if f.pinned else f.checksum_path,
                "configured_url": f.url,
                "hosts": f.hosts,
            }
            for f in manifest.files
        ],
        "images": [
            {
                "name": i.name,
                "upstream": i.upstream_ref,
                "configured": i.ref,
                "archive": i.archive,
                "archs": i.archs,
                "hosts": i.hosts,
            }
            for i in manifest.images
        ],
        "image_prefixes": manifest.prefixes,
    }


def fetch_files(manifest: Manifest, root: Path, source: str | None, trust: bool) -> int:
    results = []
    for item in manifest.files:
        results.append(r := om.fetch_file(item, root, source, trust))
        say(f"  {r.status:8} {r.item.path}  {r.detail}")
    failed = [r for r in results if r.status == "failed"]
    present = sum(r.status == "present" for r in results)
    say(
        f"files: {len(results) - len(failed) - present} fetched, {present} already there, "
        f"{len(failed)} failed"
    )
    return len(failed)


def fetch_images(manifest: Manifest, root: Path, args: argparse.Namespace) -> int:
    """Number of images that failed, or -1 when skopeo is missing."""
    if not manifest.images:
        return 0
    skopeo = oi.find_skopeo()
    if skopeo is None:
        say(
            f"images: skopeo is not installed: the {len(manifest.images)} images were NOT "
            "fetched (install skopeo, e.g. apt-get install skopeo, and run fetch again; "
            "--skip-images fetches files only)"
        )
        return -1
    failed = 0
    for item in manifest.images:
        status, detail = oi.fetch_image(skopeo, item, root, args.registry_from, args.src_tls_verify)
        failed += status == "failed"
        say(f"  {status:8} {item.archive}  {detail}")
    done = len(manifest.images) - failed
    say(f"images: {done} in {Path(args.dir) / IMAGES_DIR}, {failed} failed")
    return failed


def cmd_fetch(args: argparse.Namespace) -> int:
    manifest = load_manifest(args)
    root = Path(args.dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    say(f"files -> {args.dir} (from {args.source or 'the upstream sites'})")
    failed = fetch_files(manifest, root, args.source, args.trust_unpinned)
    images = 0 if args.skip_images else fetch_images(manifest, root, args)
    if failed or images > 0:
        return EXIT_FAILED
    if images < 0:
        return EXIT_NO_SKOPEO
    say(f"done: serve it (`offline.py serve {args.dir}`) and set files_repo to its URL")
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    overrides = dict(_prefix_override(p) for p in args.prefix)
    manifest = load_manifest(args)
    unknown = sorted(set(overrides) - set(manifest.prefixes))
    if unknown:
        known = ", ".join(sorted(manifest.prefixes))
        raise OfflineError(f"--prefix {unknown[0]}: not one of {known}")
    root = Path(args.dir).resolve()
    missing = [i.archive for i in manifest.images if not (root / i.archive).is_file()]
    if missing:
        raise OfflineError(f"{root} lacks {', '.join(missing)}: run `fetch {args.dir}` first")
    skopeo = oi.find_skopeo()
    if skopeo is None:
        say("push needs skopeo, which is not installed (e.g. apt-get install skopeo)")
        return EXIT_NO_SKOPEO
    failed = 0
    for item in manifest.images:
        dest = push_destination(item, args.registry, overrides, manifest.prefixes)
        argv = oi.skopeo_push_argv(skopeo, item, root / item.archive, dest, args.dest_tls_verify)
        error = oi.run_skopeo(argv)
        failed += bool(error)
        say(f"  {'failed' if error else 'pushed':8} {dest}  {error}")
        if not error and dest != item.ref:
            say(f"           (the inventory pulls {item.ref})")
    say("set in group_vars (all):")
    for var in sorted(manifest.prefixes):
        say(f"  {var}: {overrides.get(var, args.registry)}")
    return EXIT_FAILED if failed else 0


def _prefix_override(text: str) -> tuple[str, str]:
    var, sep, value = text.partition("=")
    if not sep or not value:
        raise OfflineError(f"--prefix {text!r}: write VARIABLE=REGISTRY[/PATH]")
    return var, value


def cmd_serve(args: argparse.Namespace) -> int:
    root = Path(args.dir).resolve()
    if not root.is_dir():
        raise OfflineError(f"{args.dir} is not a directory")
    try:
        server = om.make_server(root, args.bind, args.port)
    except OSError as e:
        raise OfflineError(f"cannot listen on {args.bind}:{args.port}: {e.strerror}") from e
    host = "<this host's address>" if args.bind in ("0.0.0.0", "") else args.bind
    url = f"http://{host}:{server.server_address[1]}"
    say(f"serving {args.dir} at {url}/ (files_repo: {url})")
    say(
        "plain HTTP, no authentication, directory listings: for air-gapped or trusted "
        "networks only. Ctrl-C stops it."
    )
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    server.server_close()
    return 0


def _bool(text: str) -> bool:
    value = text.lower()
    if value in ("true", "yes", "1"):
        return True
    if value in ("false", "no", "0"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not true or false")


def _source(text: str) -> str:
    """--from: a mirror URL, or a local directory laid out the same way."""
    if "://" in text:
        return text
    if Path(text).is_dir():
        return Path(text).resolve().as_uri()
    raise argparse.ArgumentTypeError(f"{text!r} is neither a URL nor a directory")


def _inventory_options(p: argparse.ArgumentParser, top: bool) -> None:
    """-i, --arch and --manifest, before or after the command (`list -i INV` too)."""
    kw: dict[str, Any] = {} if top else {"default": argparse.SUPPRESS}
    p.add_argument("-i", "--inventory", help="the cluster's inventory (list, fetch, push)", **kw)
    p.add_argument(
        "--arch",
        action="append",
        choices=["amd64", "arm64"],
        help="architecture of the hosts (repeatable; default: the inventory's "
        "image_arch, amd64 unless set: no facts are gathered)",
        **kw,
    )
    p.add_argument(
        "--manifest",
        help="read this JSON (playbooks/offline-manifest.yml's "
        "output) instead of evaluating the inventory",
        **kw,
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="offline.py",
        description="Gather every file and image an inventory needs into a mirror.",
    )
    _inventory_options(p, top=True)
    sub = p.add_subparsers(dest="command", required=True)

    ls = sub.add_parser("list", help="files (URL, sha256, mirror path) and images needed")
    ls.add_argument(
        "--resolve",
        action="store_true",
        help="read each checksum file to show the sha256 itself (network)",
    )
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    _from_option(ls)
    _inventory_options(ls, top=False)

    fetch = sub.add_parser("fetch", help="download and verify into DIR (files_repo's layout)")
    fetch.add_argument("dir", metavar="DIR")
    _from_option(fetch)
    _inventory_options(fetch, top=False)
    fetch.add_argument(
        "--registry-from",
        metavar="REGISTRY",
        default=os.environ.get(ENV_REGISTRY_FROM) or None,
        help="pull images from this registry (upstream's repository paths "
        f"below it) instead of upstream; env {ENV_REGISTRY_FROM}",
    )
    fetch.add_argument(
        "--src-tls-verify",
        type=_bool,
        default=True,
        metavar="BOOL",
        help="skopeo's --src-tls-verify (false for a plain-HTTP registry)",
    )
    fetch.add_argument("--skip-images", action="store_true", help="files only")
    fetch.add_argument(
        "--trust-unpinned",
        action="store_true",
        help="a file with neither a pinned sha256 nor a published checksum "
        "file is kept, its digest recorded beside it (trust on first use)",
    )

    push = sub.add_parser("push", help="copy the image archives into REGISTRY")
    push.add_argument("registry", metavar="REGISTRY", help="host[:port][/path] the images go under")
    push.add_argument("--dir", required=True, help="the DIR `fetch` filled")
    _inventory_options(push, top=False)
    push.add_argument(
        "--prefix",
        action="append",
        default=[],
        metavar="VAR=REGISTRY",
        help="another destination for one prefix's images, e.g. "
        "docker_image_repo=harbor.example.com/docker (repeatable)",
    )
    push.add_argument(
        "--dest-tls-verify",
        type=_bool,
        default=True,
        metavar="BOOL",
        help="skopeo's --dest-tls-verify (false for a plain-HTTP registry)",
    )

    serve = sub.add_parser("serve", help="serve DIR over HTTP (air-gapped/trusted networks)")
    serve.add_argument("dir", metavar="DIR")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument(
        "--bind",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: the control host fetches every file itself)",
    )
    return p


def _from_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--from",
        dest="source",
        type=_source,
        default=os.environ.get(ENV_FROM) or None,
        metavar="URL",
        help="fetch files from this mirror (or directory) laid out like "
        f"files_repo instead of upstream; env {ENV_FROM}",
    )


COMMANDS = {"list": cmd_list, "fetch": cmd_fetch, "push": cmd_push, "serve": cmd_serve}


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except OfflineError as e:
        print(f"offline.py: {e}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # the output went into `head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
