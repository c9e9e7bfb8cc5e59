"""The file mirror: checksum files read as the role `download` reads them
(ansible.builtin.get_url), verified downloads that resume, and a static server."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO

from offline_manifest import HEX64, FileItem, source_url

CHUNK = 1 << 20
RETRIES = 3
# The checksum file formats ansible.builtin.get_url reads (the role verifies with it).
BSD_LINE = re.compile(r"^(\w+) ?\((?P<path>.+)\) ?= (?P<digest>[\w.]+)$")
GNU_LINE = re.compile(r"^(?P<digest>[\w.]+)\s+(\*|\./|\.)?(?P<path>.+)$")


def parse_checksum_file(text: str, filename: str) -> str:
    """The digest a checksum file gives for `filename`, read as get_url reads it."""
    lines = [line.rstrip("\r") for line in text.splitlines()]
    found: str | None = None
    if len(lines) == 1 and len(lines[0].split()) == 1:
        found = lines[0]
    else:
        for line in lines:
            match = BSD_LINE.match(line) or GNU_LINE.match(line)
            path = match.group("path") if match else ""
            if match and match.re is GNU_LINE:
                path = path.lstrip("./")
            if match and path == filename:
                found = match.group("digest")
                break
    digest = re.sub(r"\W+", "", found or "").lower()
    if not HEX64.fullmatch(digest):
        raise ValueError(f"no sha256 for {filename}")
    return digest


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


class FetchError(Exception):
    """One file could not be fetched or verified (the run goes on with the others)."""

    def __init__(self, msg: str, status: int = 0, missing: bool = False) -> None:
        super().__init__(msg)
        self.status = status  # the HTTP status of an error answer
        self.missing = missing or status == 404  # the server has no such file


def _open(url: str, offset: int = 0) -> Any:
    headers = {"User-Agent": "kubeforge-offline"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60)
    except urllib.error.HTTPError as e:
        raise FetchError(f"{url}: HTTP {e.code} {e.reason}", status=e.code) from e
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        gone = isinstance(reason, FileNotFoundError) or "No such file" in str(reason)
        raise FetchError(f"{url}: {reason}", missing=gone) from e


def read_url(url: str) -> bytes:
    with _open(url) as resp:
        data: bytes = resp.read()
        return data


def _resumes(resp: Any, offset: int) -> bool:
    """Whether the server answered a range request from `offset` (206 Content-Range)."""
    content_range = resp.headers.get("Content-Range", "")
    return bool(resp.status == 206 and content_range.startswith(f"bytes {offset}-"))


def download(url: str, part: Path) -> bool:
    """Download into `part`, continuing a partial one when the server takes ranges
    (then True). Network errors and server errors are retried, 4xx answers not."""
    for attempt in range(1, RETRIES + 1):
        offset = part.stat().st_size if part.exists() else 0
        try:
            with _open(url, offset) as resp:
                resumed = bool(offset) and _resumes(resp, offset)
                with part.open("ab" if resumed else "wb") as out:
                    _copy(resp, out)
            return resumed
        except FetchError as e:
            if offset and e.status == 416:  # the partial file is as long as the file, or longer
                part.unlink()
            elif attempt == RETRIES or 400 <= e.status < 500:
                raise
        except OSError as e:  # the connection broke off: what arrived is kept
            if attempt == RETRIES:
                raise FetchError(f"{url}: {e}") from e
        time.sleep(attempt)
    raise FetchError(f"{url}: no complete download after {RETRIES} attempts")


def _copy(src: IO[bytes], dst: IO[bytes]) -> None:
    for block in iter(lambda: src.read(CHUNK), b""):
        dst.write(block)


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


@dataclass
class FileResult:
    item: FileItem
    status: str  # "present" (already verified), "fetched", "failed"
    detail: str = ""


def expected_sha256(item: FileItem, root: Path, source: str | None, trust: bool) -> str | None:
    """The sha256 the file must have: pinned, else from its checksum file (kept in
    the mirror beside it, where the role looks). None: no checksum file exists and
    --trust-unpinned allows recording the digest of what is downloaded."""
    if item.pinned:
        return item.pinned
    if not item.upstream_checksum_url:
        raise FetchError(f"{item.name} {item.version}: no pinned sha256 and no checksum URL")
    local = root / item.checksum_path
    if local.is_file():
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            return parse_checksum_file(local.read_text(), item.filename)
    url = source_url(item.upstream_checksum_url, source)
    try:
        data = read_url(url)
    except FetchError as e:
        if trust and e.missing:
            return None
        hint = (
            f"; pin its sha256 in kubeforge_checksums.{item.name}['{item.version}'].{item.arch} "
            "or pass --trust-unpinned to record the digest of what is downloaded"
            if e.missing
            else ""
        )
        raise FetchError(f"checksum file {e}{hint}") from e
    try:
        digest = parse_checksum_file(data.decode(errors="replace"), item.filename)
    except ValueError as e:
        raise FetchError(f"checksum file {url} names no sha256 for {item.filename}") from e
    write_atomic(local, data)
    return digest


def fetch_file(item: FileItem, root: Path, source: str | None, trust: bool) -> FileResult:
    dest = root / item.path
    try:
        expected = expected_sha256(item, root, source, trust)
        if dest.is_file():
            if expected and sha256_of(dest) == expected:
                return FileResult(item, "present", expected)
            dest.unlink()  # wrong content, or nothing to check it against: fetch anew
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")
        url = source_url(item.upstream_url, source)
        resumed = download(url, part)
        got = sha256_of(part)
        if expected and got != expected and resumed:  # the partial file held other bytes
            part.unlink()
            download(url, part)
            got = sha256_of(part)
        if expected and got != expected:
            part.unlink()
            raise FetchError(f"{url}: sha256 {got} is not {expected}: the download was deleted")
        part.replace(dest)
        if not expected:
            write_atomic(root / item.checksum_path, f"{got}  {item.filename}\n".encode())
            note = f"{got} UNVERIFIED: recorded in {item.checksum_path}"
            return FileResult(item, "fetched", note)
        return FileResult(item, "fetched", got)
    except (FetchError, OSError) as e:
        return FileResult(item, "failed", str(e))


class MirrorHandler(http.server.SimpleHTTPRequestHandler):
    """Static files of one directory, with single byte ranges (bytes=N- / N-M) so
    that an interrupted `fetch --from` resumes."""

    def send_head(self) -> Any:
        wanted = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        path = Path(self.translate_path(self.path))
        if not wanted or not path.is_file():
            return super().send_head()
        size = path.stat().st_size
        start = int(wanted[1])
        end = min(int(wanted[2]) if wanted[2] else size - 1, size - 1)
        if start >= size or end < start:
            self.send_error(416, "Range Not Satisfiable")
            return None
        f = path.open("rb")
        f.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        return _Limited(f, end - start + 1)


class _Limited:
    """A file object that ends after `left` bytes (what copyfile reads of a range)."""

    def __init__(self, f: BinaryIO, left: int) -> None:
        self.f, self.left = f, left

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        data = self.f.read(n)
        self.left -= len(data)
        return data

    def close(self) -> None:
        self.f.close()


def make_server(root: Path, bind: str, port: int) -> http.server.ThreadingHTTPServer:
    def handler(*args: Any) -> MirrorHandler:
        return MirrorHandler(*args, directory=str(root))

    return http.server.ThreadingHTTPServer((bind, port), handler)


@contextlib.contextmanager
def serving(root: Path, bind: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve `root` in a thread for the duration of the block; yields its base URL."""
    server = make_server(root, bind, port)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{bind}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
