#!/usr/bin/env python3
"""Pack files from the control host's cache into one tar laid out at their destinations.

    bundle.py OUT.tar '[{"src": "/cache/x_1.0_kubelet", "dest": "/opt/bin/kubelet"}, ...]'

One transfer per host instead of several round trips per file. Members are owned
by root with mode 0755; the archive is written next to OUT and renamed into
place, so a concurrent or interrupted run never leaves a partial bundle.
"""

from __future__ import annotations

import json
import sys
import tarfile
import tempfile
from pathlib import Path


def _root_owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mode = 0o755
    return info


def main(out: Path, files: list[dict[str, str]]) -> None:
    if out.exists():
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=out.parent, prefix=".bundle-", delete=False) as tmp:
        try:
            with tarfile.open(
                fileobj=tmp, mode="w", format=tarfile.PAX_FORMAT, dereference=True
            ) as tar:
                for f in files:
                    tar.add(f["src"], arcname=f["dest"].lstrip("/"), filter=_root_owned)
            Path(tmp.name).rename(out)
        except BaseException:
            Path(tmp.name).unlink(missing_ok=True)
            raise


if __name__ == "__main__":
    main(Path(sys.argv[1]), json.loads(sys.argv[2]))
