"""Each inventory gets its own SSH control-socket directory (vars plugin
plugins/vars/kubeforge_control_path.py, enabled in ansible.cfg): two
clusters whose hosts share an address never share a connection, and an
operator's own setting wins."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml
from ansible_render import host_vars

HOST = {"ansible_host": "10.0.0.5", "ansible_user": "root"}


def write_inventory(directory: Path, all_vars: dict[str, Any] | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {"all": {"hosts": {"node1": HOST}}}
    if all_vars:
        data["all"]["vars"] = all_vars
    path = directory / "hosts.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def control_path_dir(inventory: Path) -> Any:
    return host_vars(inventory, "node1").get("ansible_control_path_dir")


def test_two_inventories_with_the_same_host_get_two_directories(tmp_path: Path) -> None:
    a = control_path_dir(write_inventory(tmp_path / "inventory" / "a"))
    b = control_path_dir(write_inventory(tmp_path / "inventory" / "b"))
    for inventory, value in (("a", a), ("b", b)):
        digest = hashlib.sha256(str((tmp_path / "inventory" / inventory).resolve()).encode())
        assert value == f"~/.ansible/cp/{digest.hexdigest()[:12]}"
    assert a != b


def test_the_inventory_file_setting_wins(tmp_path: Path) -> None:
    inventory = write_inventory(tmp_path / "a", {"ansible_control_path_dir": "/srv/cp"})
    assert control_path_dir(inventory) == "/srv/cp"


def test_group_vars_and_host_vars_win(tmp_path: Path) -> None:
    inventory = write_inventory(tmp_path / "a")
    (tmp_path / "a" / "group_vars" / "all").mkdir(parents=True)
    (tmp_path / "a" / "group_vars" / "all" / "ssh.yml").write_text(
        "ansible_control_path_dir: /srv/group\n"
    )
    assert control_path_dir(inventory) == "/srv/group"
    (tmp_path / "a" / "host_vars").mkdir()
    (tmp_path / "a" / "host_vars" / "node1.yml").write_text("ansible_control_path_dir: /srv/host\n")
    assert control_path_dir(inventory) == "/srv/host"
