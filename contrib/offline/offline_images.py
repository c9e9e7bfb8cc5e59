"""Images as OCI archives, copied with skopeo from a registry and into one."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from offline_manifest import ImageItem, rebase_ref
from offline_mirror import RETRIES


def find_skopeo() -> str | None:
    return shutil.which("skopeo")


def run_skopeo(argv: list[str]) -> str:
    """Run skopeo; '' when it succeeded, else its last error line."""
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode == 0:
        return ""
    lines = (done.stderr or done.stdout).strip().splitlines()
    return lines[-1] if lines else f"skopeo exited {done.returncode}"


def skopeo_fetch_argv(
    skopeo: str, item: ImageItem, src: str, dest: Path, tls_verify: bool
) -> list[str]:
    """One architecture: that platform's image only (skopeo's global --override-*);
    several: the whole multi-architecture image (--all)."""
    one = len(item.archs) == 1
    return [
        skopeo,
        *(["--override-os", "linux", "--override-arch", item.archs[0]] if one else []),
        "copy",
        "--retry-times",
        str(RETRIES),
        f"--src-tls-verify={str(tls_verify).lower()}",
        *([] if one else ["--all"]),
        f"docker://{src}",
        f"oci-archive:{dest}",
    ]


def skopeo_push_argv(
    skopeo: str, item: ImageItem, archive: Path, dest: str, tls_verify: bool
) -> list[str]:
    return [
        skopeo,
        "copy",
        "--retry-times",
        str(RETRIES),
        f"--dest-tls-verify={str(tls_verify).lower()}",
        *(["--all"] if len(item.archs) > 1 else []),
        f"oci-archive:{archive}",
        f"docker://{dest}",
    ]


def fetch_image(
    skopeo: str, item: ImageItem, root: Path, registry_from: str | None, tls_verify: bool
) -> tuple[str, str]:
    dest = root / item.archive
    if dest.is_file():
        return "present", str(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    part.unlink(missing_ok=True)
    src = rebase_ref(item.upstream_ref, registry_from) if registry_from else item.upstream_ref
    error = run_skopeo(skopeo_fetch_argv(skopeo, item, src, part, tls_verify))
    if error:
        part.unlink(missing_ok=True)
        return "failed", f"{src}: {error}"
    part.replace(dest)
    return "fetched", f"from {src}"
