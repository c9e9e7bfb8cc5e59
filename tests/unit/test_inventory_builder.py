"""contrib/inventory_builder/inventory.py: kubespray's inventory builder
interface writing kubeforge's YAML inventory. Every command and environment
variable, the roles by host count (and SCALE_THRESHOLD/MASSIVE_SCALE_THRESHOLD),
adding without re-roling, removing, duplicates, ranges, `load` of both file
kinds and bad input; the output parses with ansible-inventory, passes
preflight's inventory checks and matches the lab's own inventory."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubeforge_inventory as inv
import lab
import pytest
import yaml
from ansible_render import ansible_bin
from test_sample_inventory import known_defaults
from yamllint import linter  # type: ignore[import-untyped]
from yamllint.config import YamlLintConfig  # type: ignore[import-untyped]

import inventory as builder

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "contrib" / "inventory_builder" / "inventory.py"
ROLES = ("kube_control_plane", "etcd", "kube_node")


class _VaultLoader(yaml.SafeLoader):
    pass


_VaultLoader.add_constructor("!vault", lambda loader, node: ("!vault", node.value))


def vault_tree(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.load(path.read_text(), Loader=_VaultLoader)
    return data


@dataclass
class Result:
    rc: int
    out: str
    err: str
    path: Path

    def tree(self) -> dict[str, Any]:
        return vault_tree(self.path)

    def group(self, name: str) -> list[str]:
        return list(self.tree()["all"]["children"][name].get("hosts") or {})

    def roles(self) -> dict[str, list[str]]:
        return {role: self.group(role) for role in ROLES}

    def hostvars(self) -> dict[str, dict[str, Any]]:
        hosts: dict[str, dict[str, Any]] = self.tree()["all"]["hosts"]
        return hosts


Build = Callable[..., Result]


@pytest.fixture
def build(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Build:
    """Run the builder in-process on tmp_path/hosts.yml (DEBUG off unless given)."""

    def run(*args: str, path: Path | None = None, **env: str) -> Result:
        config = path or tmp_path / "hosts.yml"
        environ = {"CONFIG_FILE": str(config), "DEBUG": "false", **env}
        rc = builder.main(list(args), environ)
        captured = capsys.readouterr()
        return Result(rc, captured.out, captured.err, config)

    return run


def ok(result: Result) -> Result:
    assert result.rc == 0, f"builder failed:\n{result.err}"
    return result


def names(count: int, first: int = 1) -> list[str]:
    return [f"node{i}" for i in range(first, first + count)]


def addresses(count: int) -> list[str]:
    return [f"10.10.1.{i}" for i in range(11, 11 + count)]


# Roles by count ----------------------------------------------------------------

# hosts -> (control plane, etcd, workers), by node number.
LAYOUTS = {
    1: ([1], [1], [1]),
    2: ([1], [1], [1, 2]),
    3: ([1, 2, 3], [1, 2, 3], [1, 2, 3]),
    4: ([1, 2, 3], [1, 2, 3], [4]),
    5: ([1, 2, 3], [1, 2, 3], [4, 5]),
    7: ([1, 2, 3], [1, 2, 3], [4, 5, 6, 7]),
}


def numbered(nums: list[int]) -> list[str]:
    return [f"node{i}" for i in nums]


@pytest.mark.parametrize("count", sorted(LAYOUTS))
def test_roles_by_count(build: Build, count: int) -> None:
    result = ok(build(*addresses(count)))
    control, etcd, workers = LAYOUTS[count]
    assert result.roles() == {
        "kube_control_plane": numbered(control),
        "etcd": numbered(etcd),
        "kube_node": numbered(workers),
    }
    assert list(result.hostvars()) == names(count)
    for name, addr in zip(names(count), addresses(count), strict=True):
        assert result.hostvars()[name] == {"ansible_host": addr, "ip": addr}


@pytest.mark.parametrize("count", sorted(LAYOUTS))
def test_every_layout_passes_the_inventory_checks(build: Build, count: int) -> None:
    assert_passes_preflight(ok(build(*addresses(count))))


def test_every_group_the_playbooks_use_is_there(build: Build) -> None:
    children = ok(build(*addresses(5))).tree()["all"]["children"]
    assert list(children) == ["kube_control_plane", "etcd", "kube_node", "k8s_cluster", "calico_rr"]
    assert children["k8s_cluster"] == {"children": {"kube_control_plane": None, "kube_node": None}}
    assert children["calico_rr"] == {"hosts": {}}


def test_roles_follow_the_order_given(build: Build) -> None:
    result = ok(build("c,10.0.0.3", "a,10.0.0.1", "10.0.0.9", "b,10.0.0.2"))
    assert result.roles() == {
        "kube_control_plane": ["c", "a", "node1"],
        "etcd": ["c", "a", "node1"],
        "kube_node": ["b"],
    }


def test_kube_control_hosts_sets_the_control_plane_count(build: Build) -> None:
    result = ok(build(*addresses(5), KUBE_CONTROL_HOSTS="1"))
    # etcd stays at 3; its hosts outside the control plane work below SCALE_THRESHOLD.
    assert result.roles() == {
        "kube_control_plane": ["node1"],
        "etcd": names(3),
        "kube_node": names(4, first=2),
    }
    assert_passes_preflight(result)


def test_kube_masters_is_the_old_name(build: Build) -> None:
    result = ok(build(*addresses(2), KUBE_MASTERS="2"))
    assert result.roles()["kube_control_plane"] == ["node1", "node2"]
    assert result.roles()["etcd"] == ["node1"]


def test_kube_control_hosts_beyond_the_hosts_takes_them_all(build: Build) -> None:
    result = ok(build(*addresses(2), KUBE_CONTROL_HOSTS="5"))
    assert result.roles()["kube_control_plane"] == ["node1", "node2"]


def test_scale_threshold_separates_etcd(build: Build) -> None:
    result = ok(build(*addresses(8), SCALE_THRESHOLD="8"))
    assert result.roles() == {
        "kube_control_plane": names(3, first=4),
        "etcd": names(3),
        "kube_node": names(2, first=7),
    }
    assert_passes_preflight(result)


def test_below_scale_threshold_etcd_stays_on_the_control_plane(build: Build) -> None:
    result = ok(build(*addresses(7), SCALE_THRESHOLD="8"))
    assert result.roles() == layout_roles(7)


def layout_roles(count: int) -> dict[str, list[str]]:
    control, etcd, workers = LAYOUTS[count]
    return {
        "kube_control_plane": numbered(control),
        "etcd": numbered(etcd),
        "kube_node": numbered(workers),
    }


def test_default_scale_threshold_is_50(build: Build, tmp_path: Path) -> None:
    below = ok(build("10.20.0.1-10.20.0.49", path=tmp_path / "49.yml"))
    assert below.roles()["etcd"] == below.roles()["kube_control_plane"] == names(3)
    at = ok(build("10.20.0.1-10.20.0.50", path=tmp_path / "50.yml"))
    assert at.roles() == {
        "kube_control_plane": names(3, first=4),
        "etcd": names(3),
        "kube_node": names(44, first=7),
    }
    assert_passes_preflight(at)


def test_scale_threshold_with_kube_control_hosts(build: Build) -> None:
    result = ok(build(*addresses(8), SCALE_THRESHOLD="6", KUBE_CONTROL_HOSTS="2"))
    assert result.roles() == {
        "kube_control_plane": ["node4", "node5"],
        "etcd": names(3),
        "kube_node": names(3, first=6),
    }


def test_scale_threshold_leaving_no_control_plane_host_is_refused(build: Build) -> None:
    result = build(*addresses(3), SCALE_THRESHOLD="3")
    assert result.rc == 1
    assert "SCALE_THRESHOLD=3" in result.err and "none for the control plane" in result.err
    assert not result.path.exists()


def test_massive_scale_threshold_keeps_the_control_plane_free(build: Build) -> None:
    result = ok(build(*addresses(3), MASSIVE_SCALE_THRESHOLD="3"))
    assert result.roles()["kube_control_plane"] == names(3)
    assert result.roles()["kube_node"] == []
    small = ok(build(*addresses(2), MASSIVE_SCALE_THRESHOLD="3", path=result.path.with_name("2")))
    assert small.roles()["kube_node"] == ["node1", "node2"]


def test_host_prefix_names_the_hosts(build: Build) -> None:
    result = ok(build(*addresses(2), HOST_PREFIX="k8s-"))
    assert list(result.hostvars()) == ["k8s-1", "k8s-2"]
    ok(build("10.10.1.99", HOST_PREFIX="k8s-"))
    assert list(result.hostvars())[-1] == "k8s-3"


# Adding to an inventory ----------------------------------------------------------


def test_adding_hosts_never_renames_or_reroles(build: Build) -> None:
    first = ok(build(*addresses(3)))
    before = first.roles()
    added = ok(build("10.10.1.50", "10.10.1.51"))
    assert "added node4 (10.10.1.50), node5 (10.10.1.51)" in added.out
    after = added.roles()
    assert after["kube_control_plane"] == before["kube_control_plane"]
    assert after["etcd"] == before["etcd"]
    assert after["kube_node"] == [*before["kube_node"], "node4", "node5"]
    assert list(added.hostvars()) == names(5)


def test_growing_from_two_hosts_keeps_etcd_odd(build: Build) -> None:
    ok(build(*addresses(2)))
    result = ok(build("10.10.1.30"))
    assert result.roles() == {
        "kube_control_plane": ["node1"],
        "etcd": ["node1"],
        "kube_node": names(3),
    }
    assert_passes_preflight(result)


def test_add_command_is_the_default(build: Build, tmp_path: Path) -> None:
    ok(build(*addresses(3)))
    ok(build("add", "10.10.1.40"))
    ok(build(*addresses(3), path=tmp_path / "b.yml"))
    ok(build("10.10.1.40", path=tmp_path / "b.yml"))
    assert (tmp_path / "hosts.yml").read_text() == (tmp_path / "b.yml").read_text()


def test_add_to_a_new_file_gets_roles_by_count(build: Build) -> None:
    assert ok(build("add", *addresses(4))).roles() == layout_roles(4)


def test_generated_names_count_on_from_the_highest(build: Build) -> None:
    ok(build("node7,10.10.1.7", "edge,10.10.1.8"))
    assert list(ok(build("10.10.1.9")).hostvars())[-1] == "node8"
    result = ok(build("10.10.1.10", "node20,10.10.1.20"))
    assert list(result.hostvars())[-2:] == ["node21", "node20"]


USER_FILE = """\
all:
  hosts:
    cp1:
      ansible_host: 192.168.5.1
      ip: 10.0.0.1
      node_labels: {zone: a}
      ansible_become_password: !vault |
        $ANSIBLE_VAULT;1.1;AES256
        6331
    bastion1:
      ansible_host: 192.168.5.100
  vars:
    ansible_user: debian
    ansible_become: true
  children:
    kube_control_plane:
      hosts:
        cp1:
    etcd:
      hosts:
        cp1:
    kube_node:
      vars:
        node_taints: []
      hosts:
        w1:
          ansible_host: 192.168.5.2
          ip: 10.0.0.2
    k8s_cluster:
      children:
        kube_control_plane:
        kube_node:
    bastion:
      hosts:
        bastion1:
"""


def test_other_variables_and_groups_stay_untouched(build: Build, tmp_path: Path) -> None:
    path = tmp_path / "hosts.yml"
    path.write_text(USER_FILE)
    path.chmod(0o640)
    before = vault_tree(path)
    result = ok(build("10.0.0.3"))
    after = vault_tree(path)
    new = after["all"]["hosts"].pop("node1")
    assert new == {"ansible_host": "10.0.0.3", "ip": "10.0.0.3"}
    assert after["all"]["children"]["kube_node"]["hosts"].pop("node1") is None
    after["all"]["children"]["calico_rr"] = after["all"]["children"].pop("calico_rr")
    before["all"]["children"]["calico_rr"] = {"hosts": {}}
    assert after == before
    assert "!vault |" in path.read_text()
    assert path.stat().st_mode & 0o777 == 0o640
    assert result.roles()["kube_node"] == ["w1", "node1"]


def test_duplicate_of_a_host_defined_in_a_group_is_refused(build: Build, tmp_path: Path) -> None:
    (tmp_path / "hosts.yml").write_text(USER_FILE)
    result = build("x,10.0.0.2")
    assert result.rc == 1
    assert "address 10.0.0.2 is used by w1 (ip)" in result.err


def test_kubesprays_old_group_names_are_kept(build: Build, tmp_path: Path) -> None:
    (tmp_path / "hosts.yml").write_text(
        "all:\n  hosts:\n    n1: {ansible_host: 10.1.0.1}\n  children:\n"
        "    kube-master: {hosts: {n1: }}\n    etcd: {hosts: {n1: }}\n"
        "    kube-node: {hosts: {n1: }}\n"
        "    k8s-cluster: {children: {kube-master: , kube-node: }}\n"
    )
    result = ok(build("10.1.0.2"))
    children = result.tree()["all"]["children"]
    assert list(children["kube-node"]["hosts"]) == ["n1", "node1"]
    assert "kube_node" not in children and "k8s_cluster" not in children
    assert children["k8s-cluster"] == {"children": {"kube-master": None, "kube-node": None}}
    assert children["calico_rr"] == {"hosts": {}}


def test_a_copy_of_the_sample_gets_its_placeholders_replaced(build: Build, tmp_path: Path) -> None:
    shutil.copy(REPO / "inventory" / "sample" / "hosts.yml", tmp_path / "hosts.yml")
    result = ok(build(*addresses(4)))
    assert "placeholder hosts (node1, node2, node3, node4, node5)" in result.err
    assert result.roles() == layout_roles(4)
    assert result.hostvars()["node1"] == {"ansible_host": "10.10.1.11", "ip": "10.10.1.11"}
    assert result.tree()["all"]["vars"] == {"ansible_user": "root"}


def test_an_edited_sample_is_not_a_placeholder(build: Build, tmp_path: Path) -> None:
    sample = (REPO / "inventory" / "sample" / "hosts.yml").read_text()
    (tmp_path / "hosts.yml").write_text(sample.replace("192.0.2.15", "192.0.2.99"))
    result = ok(build("10.10.1.11"))
    assert list(result.hostvars()) == names(6)


# Duplicates ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["10.10.1.12"], "10.10.1.12: address 10.10.1.12 is used by node2 (ip) in "),
        (["n,192.168.9.1,10.10.1.13"], "address 10.10.1.13 is used by node3 (ip)"),
        (["node2,10.10.1.50"], "node2,10.10.1.50: name node2 is taken by node2 in "),
        (["NODE1,10.10.1.50"], "name NODE1 is taken by node1 in "),
        (["10.10.1.50", "10.10.1.50"], "address 10.10.1.50 is used by new host node4 (10.10.1.50)"),
        (["10.10.1.50-10.10.1.52", "x,10.10.1.51"], "x,10.10.1.51: address 10.10.1.51 is used by"),
        (["a,10.10.1.50", "a,10.10.1.51"], "a,10.10.1.51: name a is taken by new host a"),
    ],
)
def test_duplicates_are_refused_before_writing(build: Build, args: list[str], message: str) -> None:
    first = ok(build(*addresses(3)))
    before = first.path.read_bytes()
    result = build(*args)
    assert result.rc == 1
    assert message in result.err
    assert first.path.read_bytes() == before


def test_every_duplicate_is_reported(build: Build) -> None:
    ok(build(*addresses(3)))
    result = build("10.10.1.11", "node2,10.10.1.60", "10.10.1.13")
    assert result.rc == 1
    where = result.path
    assert [line for line in result.err.splitlines() if "error:" in line] == [
        f"inventory.py: error: 10.10.1.11: address 10.10.1.11 is used by node1 (ip) in {where}",
        f"inventory.py: error: node2,10.10.1.60: name node2 is taken by node2 in {where}",
        f"inventory.py: error: 10.10.1.13: address 10.10.1.13 is used by node3 (ip) in {where}",
    ]


# Ranges and bad input -----------------------------------------------------------


def test_a_range_adds_every_address(build: Build) -> None:
    result = ok(build("10.10.1.254-10.10.2.1"))
    assert [v["ip"] for v in result.hostvars().values()] == [
        "10.10.1.254",
        "10.10.1.255",
        "10.10.2.0",
        "10.10.2.1",
    ]


def test_name_ansible_host_ip_triple(build: Build) -> None:
    result = ok(build("cp1,203.0.113.10,10.0.0.10", "cp2,cp2.example.com,10.0.0.11"))
    assert result.hostvars() == {
        "cp1": {"ansible_host": "203.0.113.10", "ip": "10.0.0.10"},
        "cp2": {"ansible_host": "cp2.example.com", "ip": "10.0.0.11"},
    }


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        ("10.10.1.300", "'10.10.1.300' is not an IP address"),
        ("10.10.1", "'10.10.1' is not an IP address"),
        ("fd00::1", "fd00::1 is IPv6; kubeforge's hosts need IPv4"),
        ("127.0.0.1", "127.0.0.1 is a loopback address"),
        ("0.0.0.0", "0.0.0.0 is a unspecified address"),
        ("224.0.0.5", "224.0.0.5 is a multicast address"),
        ("255.255.255.255", "is a reserved or broadcast address"),
        ("10.10.1.9-10.10.1.3", "the range ends (10.10.1.3) before it starts (10.10.1.9)"),
        ("10.10.1.1-10.10.9.1", "2049 addresses; ranges of more than 1024 are refused"),
        ("10.10.1.1-x", "'x' is not an IP address (end of the range)"),
        ("10.10.1.1-fd00::2", "is IPv6; kubeforge's hosts need IPv4 (end of the range)"),
        ("node1", "'node1' is not an address; a named host is NAME,ADDRESS"),
        ("10.0.0.1,192.168.10.1", "name the host first"),
        ("a,b,c,d", "expected NAME,ADDRESS or NAME,ANSIBLE_HOST,IP"),
        ("a,", "expected NAME,ADDRESS or NAME,ANSIBLE_HOST,IP"),
        ("node_1,10.0.0.1", "host name 'node_1' is not a valid node name"),
        ("kube_node,10.0.0.1", "'kube_node' is a group name"),
        ("all,10.0.0.1", "'all' is a group name"),
        ("a,10.0.0.1,host.example", "'host.example' is not an IP address (ip)"),
        ("a,bad_name!,10.0.0.1", "neither an IP address nor a DNS name (ansible_host)"),
    ],
)
def test_bad_input_is_refused_naming_it(build: Build, arg: str, message: str) -> None:
    result = build("10.10.1.50", arg)
    assert result.rc == 1
    assert f"error: {arg}: " in result.err and message in result.err, result.err
    assert not result.path.exists()


def test_every_bad_argument_is_reported(build: Build) -> None:
    result = build("x", "10.0.0.1", "10.0.0.999")
    errors = [line for line in result.err.splitlines() if "error:" in line]
    assert len(errors) == 2 and "x:" in errors[0] and "10.0.0.999:" in errors[1]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SCALE_THRESHOLD": "0"}, "SCALE_THRESHOLD='0': a whole number of 1 or more"),
        ({"MASSIVE_SCALE_THRESHOLD": "many"}, "MASSIVE_SCALE_THRESHOLD='many'"),
        ({"KUBE_CONTROL_HOSTS": "-1"}, "KUBE_CONTROL_HOSTS='-1'"),
        ({"KUBE_MASTERS": "two"}, "KUBE_MASTERS='two'"),
        ({"DEBUG": "maybe"}, "DEBUG='maybe': use true or false"),
        ({"HOST_PREFIX": "node_"}, "HOST_PREFIX='node_': host names node_1, node_2"),
    ],
)
def test_bad_environment_is_refused_naming_the_variable(
    build: Build, env: dict[str, str], message: str
) -> None:
    result = build("10.10.1.50", **env)
    assert result.rc == 1 and message in result.err, result.err
    assert not result.path.exists()


def test_an_ini_config_file_is_refused(build: Build, tmp_path: Path) -> None:
    result = build("10.10.1.50", path=tmp_path / "hosts.ini")
    assert result.rc == 1 and "an INI inventory; the builder writes YAML" in result.err
    (tmp_path / "hosts").write_text("[kube_node]\nnode1 ansible_host=10.0.0.1\n")
    result = build("10.10.1.50", path=tmp_path / "hosts")
    assert result.rc == 1 and f"CONFIG_FILE {result.path}: not a YAML inventory" in result.err
    (tmp_path / "hosts").write_text("[kube_node]\n")
    result = build("10.10.1.50", path=tmp_path / "hosts")
    assert result.rc == 1 and "not a YAML inventory (an INI one?)" in result.err


def test_a_broken_config_file_is_refused(build: Build, tmp_path: Path) -> None:
    (tmp_path / "hosts.yml").write_text("all:\n  hosts: [node1]\n")
    result = build("10.10.1.50")
    assert result.rc == 1 and "hosts of group all is a list, not a mapping" in result.err


# Removing ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [["remove", "node5"], ["remove", "10.10.1.15"], ["-node5"], ["-10.10.1.15"]],
)
def test_remove_by_name_or_address(build: Build, args: list[str]) -> None:
    ok(build(*addresses(5)))
    result = ok(build(*args))
    assert "removed node5 (10.10.1.15)" in result.out
    assert list(result.hostvars()) == names(4)
    assert result.roles()["kube_node"] == ["node4"]


def test_remove_takes_the_host_out_of_every_group(build: Build, tmp_path: Path) -> None:
    (tmp_path / "hosts.yml").write_text(USER_FILE)
    result = ok(build("remove", "bastion1", "192.168.5.2"))
    tree = result.tree()
    assert "bastion1" not in tree["all"]["hosts"]
    assert tree["all"]["children"]["bastion"]["hosts"] == {}
    assert tree["all"]["children"]["kube_node"]["hosts"] == {}
    assert tree["all"]["children"]["kube_node"]["vars"] == {"node_taints": []}


def test_remove_a_range(build: Build) -> None:
    ok(build(*addresses(5)))
    assert list(ok(build("remove", "10.10.1.14-10.10.1.15")).hostvars()) == names(3)


def test_remove_an_unknown_host_changes_nothing(build: Build) -> None:
    first = ok(build(*addresses(3)))
    before = first.path.read_bytes()
    result = build("remove", "node1", "node9")
    assert result.rc == 1
    assert "remove node9: no host of that name or address in" in result.err
    assert first.path.read_bytes() == before


def test_removing_an_etcd_member_warns_about_the_even_count(build: Build) -> None:
    ok(build(*addresses(5)))
    result = ok(build("remove", "node3"))
    assert "warning: etcd has 2 members (node1, node2): preflight needs an odd number" in result.err
    errors = preflight_errors(result)
    assert any("group etcd has 2 members" in e for e in errors), errors


def test_remove_and_add_in_one_run_do_not_reuse_the_name(build: Build) -> None:
    ok(build(*addresses(5)))
    result = ok(build("-node5", "10.10.1.15"))
    assert "removed node5 (10.10.1.15); added node6 (10.10.1.15)" in result.out
    assert result.roles()["kube_node"] == ["node4", "node6"]


# load ------------------------------------------------------------------------------


def test_load_a_file_of_one_host_per_line(build: Build, tmp_path: Path) -> None:
    listing = tmp_path / "hosts.txt"
    listing.write_text(
        "# the first rack\n10.10.1.11\n\n10.10.1.12-10.10.1.13\n  edge,10.10.1.14  \n"
        "gw,gw.example.com,10.10.1.15\n"
    )
    result = ok(build("load", str(listing)))
    assert list(result.hostvars()) == [*names(3), "edge", "gw"]
    assert result.hostvars()["gw"] == {"ansible_host": "gw.example.com", "ip": "10.10.1.15"}
    assert result.roles() == {
        "kube_control_plane": names(3),
        "etcd": names(3),
        "kube_node": ["edge", "gw"],
    }


def test_load_a_csv_with_a_header(build: Build, tmp_path: Path) -> None:
    table = tmp_path / "hosts.csv"
    table.write_text(
        "\ufeffName,Ansible_Host,IP,access_ip,etcd_member_name\n"
        'cp1,203.0.113.1,10.0.0.1,10.0.0.1,"etcd1"\n'
        ",203.0.113.2,10.0.0.2,,\n"
        "cp3,,10.0.0.3,,\n"
    )
    result = ok(build("load", str(table)))
    assert result.hostvars() == {
        "cp1": {
            "ansible_host": "203.0.113.1",
            "ip": "10.0.0.1",
            "access_ip": "10.0.0.1",
            "etcd_member_name": "etcd1",
        },
        "node1": {"ansible_host": "203.0.113.2", "ip": "10.0.0.2"},
        "cp3": {"ansible_host": "10.0.0.3", "ip": "10.0.0.3"},
    }
    assert result.roles()["etcd"] == ["cp1", "node1", "cp3"]


def test_load_a_csv_with_an_address_column(build: Build, tmp_path: Path) -> None:
    table = tmp_path / "hosts.csv"
    table.write_text("address,Hostname\n10.0.0.1,a\n10.0.0.2,\n")
    result = ok(build("load", str(table)))
    assert result.hostvars() == {
        "a": {"ansible_host": "10.0.0.1", "ip": "10.0.0.1"},
        "node1": {"ansible_host": "10.0.0.2", "ip": "10.0.0.2"},
    }


def test_load_adds_to_an_existing_inventory(build: Build, tmp_path: Path) -> None:
    ok(build(*addresses(3)))
    listing = tmp_path / "more.txt"
    listing.write_text("10.10.1.50\n10.10.1.51\n")
    result = ok(build("load", str(listing)))
    assert result.roles()["kube_node"] == names(5)
    assert result.roles()["etcd"] == names(3)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10.0.0.1\nnope\n10.0.0.300\n", ":2: 'nope' is not an address"),
        ("10.0.0.1\nnope\n10.0.0.300\n", ":3: '10.0.0.300' is not an IP address"),
        ("name,ip\na,10.0.0.1,extra\n", ":2: 3 fields, the header has 2"),
        ("name,ip,ip\na,10.0.0.1,10.0.0.2\n", ":1: a column is named twice"),
        ("name,address,ip\na,10.0.0.1,10.0.0.1\n", ":2: give address, or ansible_host and ip"),
        ("name,ip\na,\n", ":2: no address"),
        ("# nothing\n\n", "lists no host"),
    ],
)
def test_load_refuses_bad_lines_naming_file_and_line(
    build: Build, tmp_path: Path, text: str, message: str
) -> None:
    listing = tmp_path / "list.csv"
    listing.write_text(text)
    result = build("load", str(listing))
    assert result.rc == 1 and message in result.err, result.err
    assert not result.path.exists()


def test_load_a_missing_file_is_refused(build: Build, tmp_path: Path) -> None:
    result = build("load", str(tmp_path / "absent.txt"))
    assert result.rc == 1 and "load: cannot read" in result.err


# The print commands, help, DEBUG, CONFIG_FILE ------------------------------------------


def test_print_commands(build: Build) -> None:
    ok(build(*addresses(2), "gw,gw.example.com,10.10.1.20", "dns,gw2.example.com,10.10.1.21"))
    ok(build("remove", "dns"))
    assert ok(build("print_ips")).out == "10.10.1.11 10.10.1.12 10.10.1.20\n"
    assert ok(build("print_hostnames")).out == "node1 node2 gw\n"
    cfg = ok(build("print_cfg"))
    assert cfg.out == cfg.path.read_text()
    extra = build("print_ips", "10.0.0.1")
    assert extra.rc == 1 and "print_ips takes no argument, got 10.0.0.1" in extra.err


@pytest.mark.parametrize("command", ["print_cfg", "print_ips", "print_hostnames"])
def test_print_commands_need_the_file(build: Build, command: str) -> None:
    result = build(command)
    assert result.rc == 1 and f"CONFIG_FILE {result.path} does not exist" in result.err


@pytest.mark.parametrize("args", [[], ["help"]])
def test_help_lists_every_command_and_variable(build: Build, args: list[str]) -> None:
    result = ok(build(*args))
    for word in [*builder.COMMANDS, "CONFIG_FILE", "HOST_PREFIX", "KUBE_CONTROL_HOSTS"]:
        assert word in result.out
    for word in ["SCALE_THRESHOLD", "MASSIVE_SCALE_THRESHOLD", "DEBUG"]:
        assert word in result.out
    assert not result.path.exists()


def test_add_without_hosts_is_refused(build: Build) -> None:
    result = build("add")
    assert result.rc == 1 and "add: no host given" in result.err


def test_debug_is_on_by_default_and_goes_to_stderr(build: Build) -> None:
    result = ok(build(*addresses(4), DEBUG=""))
    assert "DEBUG: 10.10.1.11: node1 (ansible_host 10.10.1.11, ip 10.10.1.11)" in result.err
    assert "DEBUG: 4 hosts: control-plane and etcd hosts run no workloads" in result.err
    assert "DEBUG" not in result.out
    quiet = ok(build("10.10.1.50", DEBUG="off"))
    assert "DEBUG" not in quiet.err


def test_config_file_defaults_to_inventory_mycluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert builder.main(["10.10.1.11"], {"DEBUG": "0"}) == 0
    assert "inventory/mycluster/hosts.yml: added node1" in capsys.readouterr().out
    assert (tmp_path / "inventory" / "mycluster" / "hosts.yml").is_file()


def test_a_symlinked_config_file_is_written_through(build: Build, tmp_path: Path) -> None:
    real = tmp_path / "real.yml"
    link = tmp_path / "link.yml"
    link.symlink_to(real)
    ok(build(*addresses(1), path=link))
    assert link.is_symlink() and "node1:" in real.read_text()


def test_a_failed_write_leaves_the_file_and_no_temporary(
    build: Build, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = ok(build(*addresses(3)))
    before = first.path.read_bytes()

    def broken(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(OSError, match="No space left"):
        build("10.10.1.50")
    assert first.path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hosts.yml"]


def test_the_script_runs_from_a_checkout(tmp_path: Path) -> None:
    assert os.access(SCRIPT, os.X_OK), f"{SCRIPT} is not executable"
    config = tmp_path / "mycluster" / "hosts.yml"
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "10.10.1.3", "10.10.1.4", "10.10.1.5"],
        env={**os.environ, "CONFIG_FILE": str(config)},
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert f"{config}: added node1 (10.10.1.3), node2 (10.10.1.4), node3 (10.10.1.5)" in run.stdout
    assert "DEBUG: 3 host(s): every host is also a worker" in run.stderr


# The output against Ansible, preflight and the lab -------------------------------------


def listing_groups(listing: Mapping[str, Any]) -> dict[str, list[str]]:
    """Every group of `ansible-inventory --list` with the hosts of its children."""

    def hosts(group: str) -> list[str]:
        entry = listing.get(group) or {}
        found = list(entry.get("hosts", []))
        for child in entry.get("children", []):
            found += [h for h in hosts(child) if h not in found]
        return found

    return {g: hosts(g) for g in listing if g != "_meta"}


def preflight_errors(result: Result) -> list[str]:
    """kubeforge_inventory_errors (preflight's inventory checks) with the shipped defaults."""
    tree = result.tree()["all"]
    groups = {g: list(d.get("hosts") or {}) for g, d in tree["children"].items()}
    groups["k8s_cluster"] = list(dict.fromkeys(groups["kube_control_plane"] + groups["kube_node"]))
    groups["all"] = list(tree["hosts"])
    return inv.kubeforge_inventory_errors(groups, tree["hosts"], shipped_settings())


@functools.cache
def shipped_settings() -> dict[str, Any]:
    _, defaults = known_defaults()
    # apiserver_ha_mode's default is a template: local_lb without loadbalancer_apiserver.
    return {k: defaults[k] for k in inv.SETTINGS} | {"apiserver_ha_mode": "local_lb"}


def assert_passes_preflight(result: Result) -> None:
    assert preflight_errors(result) == []


def ansible_list(path: Path) -> dict[str, Any]:
    run = subprocess.run(
        [ansible_bin("ansible-inventory"), "-i", str(path), "--list"],
        cwd=REPO, env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")},
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, f"ansible-inventory -i {path} --list failed:\n{run.stderr}"
    data: dict[str, Any] = json.loads(run.stdout)
    return data


LAB_PAIRS = [f"node{i},10.213.0.{10 + i}" for i in range(1, 6)]


def test_the_lab_inventory_built_from_name_address_pairs_is_the_labs(
    build: Build, tmp_path: Path
) -> None:
    built = ok(build(*LAB_PAIRS))
    lab_file = lab.write_layout(
        tmp_path / "lab" / "hosts.yml", tmp_path / "key", [1, 2, 3], [1, 2, 3], [4, 5]
    )
    ours, theirs = ansible_list(built.path), ansible_list(lab_file)
    assert listing_groups(ours) == listing_groups(theirs)
    assert listing_groups(ours)["kube_node"] == ["node4", "node5"]
    lab_vars = {
        host: {k: v for k, v in hvars.items() if k in ("ansible_host", "ip")}
        for host, hvars in theirs["_meta"]["hostvars"].items()
    }

    # Each inventory directory has its own SSH control-socket directory
    # (plugins/vars/kubeforge_control_path.py): the rest is the lab's. A vars
    # plugin's value is listed as {"__ansible_unsafe": value}.
    def control_dirs(listing: dict[str, Any]) -> set[str]:
        return {
            json.dumps(v.pop("ansible_control_path_dir"), sort_keys=True)
            for v in listing["_meta"]["hostvars"].values()
        }

    ours_dirs, lab_dirs = control_dirs(ours), control_dirs(theirs)
    assert len(ours_dirs) == 1 and len(lab_dirs) == 1 and ours_dirs != lab_dirs
    assert ours["_meta"]["hostvars"] == lab_vars


def test_preflight_accepts_the_output_as_ansible_runs_it(build: Build, tmp_path: Path) -> None:
    """The opening's group mapping and preflight's inventory check in a play that
    contacts no host, on a built inventory (the in-process checks above cover
    what it refuses)."""
    play = tmp_path / "inventory-checks.yml"
    play.write_text(INVENTORY_CHECK_PLAY.format(repo=REPO))
    built = ok(build(*addresses(5)))
    checked = run_play(built.path, play)
    assert checked.returncode == 0, checked.stdout[-3000:]
    assert "inventory checks passed for 5 hosts" in checked.stdout


INVENTORY_CHECK_PLAY = """\
- name: Offline | Preflight's inventory checks
  hosts: all
  gather_facts: false
  any_errors_fatal: true
  vars_files:
    - {repo}/roles/preflight/defaults/main.yml
  pre_tasks:
    - name: Offline | Map the inventory's groups
      ansible.builtin.import_tasks: {repo}/playbooks/tasks/groups.yml
  roles:
    - role: kubeforge_defaults
  tasks:
    - name: Offline | Check the inventory
      ansible.builtin.assert:
        that: errors | length == 0
        fail_msg: "{{{{ errors }}}}"
        success_msg: "inventory checks passed for {{{{ groups['all'] | length }}}} hosts"
      vars:
        errors: >-
          {{{{ groups | kubeforge_inventory_errors(hostvars, preflight_inventory_settings) }}}}
      run_once: true
      delegate_to: localhost
"""


def run_play(inventory_path: Path, play: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ansible_bin("ansible-playbook"), "-i", str(inventory_path), str(play)],
        cwd=REPO,
        env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"},
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip


def test_the_output_is_yamllint_clean(build: Build, tmp_path: Path) -> None:
    (tmp_path / "hosts.yml").write_text(
        USER_FILE.replace("node_taints: []", "node_taints: [a=b:NoSchedule]")
    )
    result = ok(build("10.0.0.3", "10.0.0.4"))
    config = YamlLintConfig(file=str(REPO / ".yamllint"))
    problems = [
        f"{p.line}: {p.desc} ({p.rule})" for p in linter.run(result.path.read_text(), config)
    ]
    assert problems == [], result.path.read_text()
