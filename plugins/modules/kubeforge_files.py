#!/usr/bin/python
"""Write many small files in one module call (the PKI of a host)."""

from __future__ import annotations

import grp
import os
import pwd
import shlex
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ansible.module_utils.basic import AnsibleModule  # type: ignore[import-untyped]

DOCUMENTATION = r"""
module: kubeforge_files
short_description: Write many small files with their content, mode and owner in one call
description:
  - Each file is compared with what is on the host and only rewritten (atomically) when its
    content differs; mode, owner and group are corrected when they differ.
  - Missing parent directories are created (mode C(dir_mode), owned by root).
  - One call replaces a loop of M(ansible.builtin.copy), which costs two module runs per file.
    Contents are shown like any argument (and in C(--diff)), so use C(no_log) on the task when
    one is secret.
options:
  files:
    description: The files to write.
    type: list
    elements: dict
    default: []
    suboptions:
      path: {description: Absolute path on the host., type: str, required: true}
      content: {description: The file's content., type: str, required: true}
      mode: {description: Octal mode as a string., type: str, default: "0644"}
      owner: {description: Owning user., type: str, default: root}
      group: {description: Owning group., type: str, default: root}
      validate:
        description:
          - Command that checks the new content before it replaces the file, C(%s) standing for
            a temporary file holding it (C(haproxy -c -f %s)). When it fails, the file is left
            as it was and the module fails with the command's output. Not run in check mode.
        type: str
  directories:
    description: Directories to create or correct (mode and owner), before the files.
    type: list
    elements: dict
    default: []
    suboptions:
      path: {description: Absolute path on the host., type: str, required: true}
      mode: {description: Octal mode as a string., type: str, default: "0755"}
      owner: {description: Owning user., type: str, default: root}
      group: {description: Owning group., type: str, default: root}
  dir_mode:
    description: Mode of parent directories this module creates.
    type: str
    default: "0755"
  absent:
    description:
      - Files to remove when they exist (a setting switched off), after the files above. Their
        directories stay. A path that is a directory is refused.
    type: list
    elements: str
    default: []
author: kubeforge
"""

EXAMPLES = r"""
- name: Install two files
  kubeforge_files:
    files:
      - {path: /etc/example/a.crt, content: "{{ lookup('ansible.builtin.file', 'a.crt') }}"}
      - path: /etc/example/a.key
        content: "{{ lookup('ansible.builtin.file', 'a.key') }}"
        mode: "0600"
  no_log: true
"""

RETURN = r"""
changed_paths:
  description: Files and directories created, changed or removed (or that would be in check mode).
  type: list
  elements: str
  returned: always
"""


def _differs(path: Path, data: bytes, mode: int, uid: int, gid: int) -> tuple[bool, bool]:
    """(content differs, attributes differ) for `path`."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return True, True
    if not stat.S_ISREG(st.st_mode):
        return True, True
    content_differs = path.read_bytes() != data
    attrs_differ = stat.S_IMODE(st.st_mode) != mode or st.st_uid != uid or st.st_gid != gid
    return content_differs, attrs_differ


def _diff(path: Path, after: str) -> dict[str, str]:
    """A diff entry for --diff (the task's no_log hides it for secrets)."""
    try:
        before = path.read_text()
    except (FileNotFoundError, UnicodeDecodeError):
        before = ""
    return {"before_header": str(path), "after_header": str(path), "before": before, "after": after}


def _makedirs(path: Path, mode: int) -> None:
    missing: list[Path] = []
    while not path.is_dir():
        missing.append(path)
        path = path.parent
    for d in reversed(missing):
        d.mkdir(mode)
        d.chmod(mode)


def _write(
    path: Path,
    data: bytes,
    mode: int,
    uid: int,
    gid: int,
    validate: Callable[[Path], str] | None = None,
) -> str:
    """Replace `path` atomically; '' when written, else why `validate` refused the content."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=".kubeforge-")
    tmp = Path(name)
    try:
        os.fchmod(fd, mode)
        os.fchown(fd, uid, gid)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        refused = validate(tmp) if validate else ""
        if refused:
            tmp.unlink()
            return refused
        tmp.rename(path)
        return ""
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _validator(module: AnsibleModule, command: str | None) -> Callable[[Path], str] | None:
    """A check of a temporary file by `command` (%s: the file): '' when it passes."""
    if not command:
        return None
    if "%s" not in command:
        module.fail_json(msg=f"validate {command!r} must contain %s (the file to check)")

    def run(tmp: Path) -> str:
        rc, out, err = module.run_command(command % shlex.quote(str(tmp)), use_unsafe_shell=False)
        if rc == 0:
            return ""
        output = "\n".join(o.strip() for o in (err, out) if o.strip())
        return f"`{command}` refused the new content ({rc}): {output}"

    return run


def _ids(module: AnsibleModule, path: Path, spec: dict[str, Any]) -> tuple[int, int, int]:
    try:
        return (
            int(spec["mode"], 8),
            pwd.getpwnam(spec["owner"]).pw_uid,
            grp.getgrnam(spec["group"]).gr_gid,
        )
    except (KeyError, ValueError) as exc:
        module.fail_json(msg=f"{path}: bad mode, owner or group: {exc}")
        raise  # not reached


def _directory(module: AnsibleModule, spec: dict[str, Any], dir_mode: int) -> bool:
    """Create or correct one directory; True when it changed (or would)."""
    path = Path(spec["path"])
    mode, uid, gid = _ids(module, path, spec)
    try:
        st = path.stat()
    except FileNotFoundError:
        if not module.check_mode:
            _makedirs(path.parent, dir_mode)
            path.mkdir(mode)
            path.chmod(mode)
            os.chown(path, uid, gid)
        return True
    if not stat.S_ISDIR(st.st_mode):
        module.fail_json(msg=f"{path}: exists and is not a directory")
    if stat.S_IMODE(st.st_mode) == mode and st.st_uid == uid and st.st_gid == gid:
        return False
    if not module.check_mode:
        path.chmod(mode)
        os.chown(path, uid, gid)
    return True


def _remove(module: AnsibleModule, path: Path) -> bool:
    """Remove one file; True when it existed (and, outside check mode, is gone)."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return False
    if stat.S_ISDIR(st.st_mode):
        module.fail_json(msg=f"{path}: is a directory, absent takes files")
    if not module.check_mode:
        path.unlink()
    return True


def main() -> None:
    owned = {
        "path": {"type": "str", "required": True},
        "mode": {"type": "str", "default": "0644"},
        "owner": {"type": "str", "default": "root"},
        "group": {"type": "str", "default": "root"},
    }
    module = AnsibleModule(
        argument_spec={
            "files": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    **owned,
                    "content": {"type": "str", "required": True, "no_log": False},
                    "validate": {"type": "str"},
                },
            },
            "directories": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {**owned, "mode": {"type": "str", "default": "0755"}},
            },
            "dir_mode": {"type": "str", "default": "0755"},
            "absent": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    dir_mode = int(module.params["dir_mode"], 8)
    changed: list[str] = []
    diffs: list[dict[str, str]] = []
    paths = [s["path"] for s in [*module.params["directories"], *module.params["files"]]]
    for path_name in [*paths, *module.params["absent"]]:
        if not Path(path_name).is_absolute():
            module.fail_json(msg=f"{path_name}: not an absolute path")
    for spec in module.params["directories"]:
        try:
            if _directory(module, spec, dir_mode):
                changed.append(spec["path"])
        except OSError as exc:
            module.fail_json(msg=f"{spec['path']}: {exc}", changed_paths=changed)
    for f in module.params["files"]:
        path = Path(f["path"])
        mode, uid, gid = _ids(module, path, f)
        data = f["content"].encode()
        content_differs, attrs_differ = _differs(path, data, mode, uid, gid)
        if not (content_differs or attrs_differ):
            continue
        changed.append(str(path))
        if module._diff and content_differs:
            diffs.append(_diff(path, f["content"]))
        if module.check_mode:
            continue
        try:
            _makedirs(path.parent, dir_mode)
            if content_differs:
                refused = _write(path, data, mode, uid, gid, _validator(module, f["validate"]))
                if refused:
                    module.fail_json(msg=f"{path}: {refused}", changed_paths=changed[:-1])
            else:
                path.chmod(mode)
                os.chown(path, uid, gid)
        except OSError as exc:
            module.fail_json(msg=f"{path}: {exc}", changed_paths=changed)
    for path_name in module.params["absent"]:
        try:
            if _remove(module, Path(path_name)):
                changed.append(path_name)
        except OSError as exc:
            module.fail_json(msg=f"{path_name}: {exc}", changed_paths=changed)
    result: dict[str, Any] = {"changed": bool(changed), "changed_paths": changed}
    if diffs:
        result["diff"] = diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
