"""The kubespray verdict table (plugins/kubespray/variables.yml), what preflight
makes of an inventory with it (plugins/filter/kubeforge_kubespray.py), and
docs/kubespray.md rendered from it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import kubeforge_kubespray as ks
import pytest
import render_kubespray_doc as renderer
import yaml

REPO = Path(__file__).resolve().parents[2]
ENTRIES = ks.read_table()
NAMED = [e for e in ENTRIES if "name" in e]
FAMILIES = [e for e in ENTRIES if "prefix" in e]
GROUPS: dict[str, list[str]] = {
    "all": ["node1", "node2", "node3"],
    "k8s_cluster": ["node1", "node2", "node3"],
    "kube_control_plane": ["node1"],
    "etcd": ["node1"],
    "kube_node": ["node2", "node3"],
}
# Honored names that are host variables of the inventory only (kubespray's
# inventory.ini sets them), or that kubeforge validates without a default of
# its own (container_manager: containerd is the only value).
INVENTORY_ONLY = {"access_ip", "etcd_member_name", "container_manager"}


def _kubeforge_variables() -> set[str]:
    """Variables with a kubeforge default or an argument spec."""
    names: set[str] = set()
    for path in REPO.glob("roles/*/defaults/**/*.yml"):
        names |= set(yaml.safe_load(path.read_text()) or {})
    for path in REPO.glob("roles/*/meta/argument_specs.yml"):
        for entry_point in yaml.safe_load(path.read_text())["argument_specs"].values():
            names |= set(entry_point.get("options") or {})
    return names


KUBEFORGE = _kubeforge_variables()


def findings(values: Mapping[str, Any], hosts: list[str] | None = None) -> dict[str, list[str]]:
    """Findings for `values` set on `hosts` (default: all of them)."""
    chosen = GROUPS["all"] if hosts is None else hosts
    hostvars = {h: dict(values) if h in chosen else {} for h in GROUPS["all"]}
    return ks.kubeforge_kubespray_findings(hostvars, GROUPS)


def _id(entry: Mapping[str, Any]) -> str:
    return str(entry.get("name") or entry.get("prefix"))


# The table itself ---------------------------------------------------------------------------


@pytest.mark.parametrize("entry", ENTRIES, ids=_id)
def test_entry_has_a_verdict_and_what_it_needs(entry: dict[str, Any]) -> None:
    assert entry["verdict"] in ks.VERDICTS
    assert ("name" in entry) != ("prefix" in entry), "an entry has a name or a prefix"
    assert set(entry) <= {"name", "prefix", "verdict", "default", "use", "note", "accepted"} | {
        "effective",
        "ours_type",
    }
    if entry["verdict"] != "honored":
        assert entry.get("note"), "every verdict but honored explains itself"
    if entry["verdict"] in ("alias", "unsupported"):
        assert entry.get("use"), "say what to use instead"
    if "prefix" in entry:
        assert entry["verdict"] == "not_applicable"
        assert entry["prefix"].endswith("_")
    if entry.get("accepted") or entry.get("effective") is not None or entry.get("ours_type"):
        assert entry["verdict"] == "unsupported"
    assert entry.get("ours_type", "dict") == "dict"


def test_names_and_prefixes_are_unique() -> None:
    names = [e["name"] for e in NAMED]
    prefixes = [e["prefix"] for e in FAMILIES]
    assert len(names) == len(set(names))
    assert len(prefixes) == len(set(prefixes))


def test_every_kubespray_name_is_an_entry_of_the_table() -> None:
    """No list of names without a verdict of their own: the table is `variables` only."""
    document = yaml.safe_load(ks.TABLE.read_text(encoding="utf-8"))
    assert list(document) == ["variables"]


@pytest.mark.parametrize("entry", [e for e in NAMED if e["verdict"] == "honored"], ids=_id)
def test_honored_names_are_kubeforge_variables(entry: dict[str, Any]) -> None:
    assert entry["name"] in KUBEFORGE | INVENTORY_ONLY, (
        f"{entry['name']} is honored but no role defaults or declares it"
    )


@pytest.mark.parametrize("entry", [e for e in ENTRIES if e.get("use")], ids=_id)
def test_use_names_real_kubeforge_variables(entry: dict[str, Any]) -> None:
    if entry["verdict"] == "alias":
        assert entry["use"] in KUBEFORGE
    for word in re.findall(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b", entry["use"]):
        assert word in KUBEFORGE, f"{_id(entry)}: use names {word}, which kubeforge does not read"


def test_no_family_covers_a_kubeforge_variable() -> None:
    table = ks.load_table()
    for name in KUBEFORGE:
        entry = table.lookup(name)
        assert entry is None or entry.name == name, f"family {entry.prefix}* covers {name}"


def test_kubespray_sample_names_all_have_a_verdict() -> None:
    """The variables of kubespray's inventory/sample (names only) that a user copies."""
    sample = [
        "bin_dir",
        "access_ip",
        "loadbalancer_apiserver",
        "loadbalancer_apiserver_localhost",
        "loadbalancer_apiserver_port",
        "loadbalancer_apiserver_healthcheck_port",
        "upstream_dns_servers",
        "cloud_provider",
        "external_cloud_provider",
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "additional_no_proxy",
        "cert_management",
        "kube_read_only_port",
        "ntp_enabled",
        "ntp_servers",
        "unsafe_show_logs",
        "containerd_registries_mirrors",
        "etcd_data_dir",
        "container_manager",
        "etcd_deployment_type",
        "kube_config_dir",
        "kube_script_dir",
        "kube_manifest_dir",
        "kube_cert_dir",
        "kube_token_dir",
        "kube_api_anonymous_auth",
        "local_release_dir",
        "retry_stagger",
        "kube_owner",
        "kube_cert_group",
        "kube_log_level",
        "credentials_dir",
        "kube_oidc_auth",
        "kube_network_plugin",
        "kube_network_plugin_multus",
        "kube_service_addresses",
        "kube_pods_subnet",
        "kube_network_node_prefix",
        "kube_apiserver_ip",
        "kube_apiserver_port",
        "kube_proxy_mode",
        "kube_proxy_strict_arp",
        "kube_proxy_nodeport_addresses",
        "kube_pod_security_use_default",
        "cluster_name",
        "ndots",
        "dns_mode",
        "enable_nodelocaldns",
        "nodelocaldns_ip",
        "resolvconf_mode",
        "skydns_server",
        "skydns_server_secondary",
        "dns_domain",
        "kata_containers_enabled",
        "kubeadm_certificate_key",
        "k8s_image_pull_policy",
        "kubernetes_audit",
        "default_kubelet_config_dir",
        "kubeconfig_localhost",
        "kubectl_localhost",
        "kube_reserved",
        "system_reserved",
        "eviction_hard",
        "supplementary_addresses_in_ssl_keys",
        "volume_cross_zone_attachment",
        "persistent_volumes_enabled",
        "tls_min_version",
        "event_ttl_duration",
        "kube_apiserver_tracing",
        "kubeadm_patches",
        "remove_anonymous_access",
        "helm_enabled",
        "metrics_server_enabled",
        "local_path_provisioner_enabled",
        "gateway_api_enabled",
        "metallb_enabled",
        "kube_vip_enabled",
        "calico_pool_blocksize",
        "cilium_l2announcements",
        "flannel_interface",
        "kube_ovn_network_type",
        "macvlan_interface",
        "enable_nat_default_gateway",
        "docker_daemon_graph",
        "files_repo",
        "kube_image_repo",
        "etcd_member_name",
        "ip",
    ]
    table = ks.load_table()
    assert [n for n in sample if table.lookup(n) is None] == []


# Each verdict behaves ------------------------------------------------------------------------


OTHER_VALUE = "kubeforge-test-value"


@pytest.mark.parametrize("entry", NAMED, ids=_id)
def test_each_verdict_behaves(entry: dict[str, Any]) -> None:
    name, verdict = entry["name"], entry["verdict"]
    if verdict == "honored":
        assert findings({name: OTHER_VALUE}) == {"errors": [], "warnings": [], "notes": []}
    elif verdict == "alias":
        found = findings({name: True})
        assert found["errors"] == []
        assert len(found["warnings"]) == 1
        assert f"{name} is kubespray's name, read as {entry['use']}" in found["warnings"][0]
    elif verdict == "not_applicable":
        found = findings({name: OTHER_VALUE})
        assert found["errors"] == found["warnings"] == []
        assert any(name in note and "not applicable" in note for note in found["notes"])
    else:
        _check_unsupported(entry)


def _check_unsupported(entry: dict[str, Any]) -> None:
    name = entry["name"]
    passing = entry.get("default", [])  # no default: an empty value passes
    found = findings({name: passing})
    assert found["errors"] == [], f"{name} at kubespray's default is refused"
    assert any(note.startswith("all hosts: " + name) for note in found["notes"])
    for value in entry.get("accepted", []):
        found = findings({name: value})
        assert found["errors"] == []
        assert any("what kubeforge does" in note for note in found["notes"])
    found = findings({name: OTHER_VALUE}, hosts=["node2"])
    assert len(found["errors"]) == 1
    error = found["errors"][0]
    assert error.startswith(f"node2: {name} kubeforge-test-value: not supported")
    assert entry["use"] in error
    assert found["notes"] == []


@pytest.mark.parametrize("entry", FAMILIES, ids=_id)
def test_a_family_member_gets_a_note(entry: dict[str, Any]) -> None:
    name = entry["prefix"] + "some_setting"
    found = findings({name: "x"})
    assert found["errors"] == found["warnings"] == []
    assert found["notes"] == [f"all hosts: {name}: not applicable: {entry['note']}"]


# Values --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("kube_pod_security_use_default", "false"),  # INI inventories give text
        ("kube_pod_security_use_default", "False"),
        ("kube_pod_security_use_default", "no"),
        ("kube_read_only_port", "0"),
        ("kube_read_only_port", 0),
        ("kube_api_anonymous_auth", "yes"),
        ("kube_proxy_remove", "false"),
        ("drain_grace_period", "300"),
        ("event_ttl_duration", " 1h0m0s "),
    ],
)
def test_values_compare_as_kubespray_reads_them(name: str, value: Any) -> None:
    assert findings({name: value})["errors"] == []


def test_a_value_kubeforge_acts_on_anyway_passes() -> None:
    notes = findings({"enable_nodelocaldns": "false"})["notes"]
    assert notes == [
        "all hosts: enable_nodelocaldns false: what kubeforge does, accepted. "
        + ks.load_table().entries["enable_nodelocaldns"].note
    ]


def test_kubeforge_s_own_dict_under_a_kubespray_name_is_kubeforge_s() -> None:
    assert findings({"kube_reserved": {"cpu": "100m"}, "system_reserved": {}}) == {
        "errors": [],
        "warnings": [],
        "notes": [],
    }
    errors = findings({"kube_reserved": True})["errors"]
    assert len(errors) == 1 and "set kube_reserved to a dict" in errors[0]


def test_without_a_default_only_empty_values_pass() -> None:
    assert (
        "default" not in ks.read_table()[[_id(e) for e in ENTRIES].index("https_proxy_cert_file")]
    )
    assert findings({"https_proxy_cert_file": ""})["errors"] == []
    errors = findings({"https_proxy_cert_file": "/etc/ssl/proxy.pem"})["errors"]
    assert errors == [
        "all hosts: https_proxy_cert_file /etc/ssl/proxy.pem: not supported. No extra CA for the "
        "proxy. Instead: add the proxy's CA to the hosts' trust store."
    ]


def test_a_role_default_of_kubespray_is_refused_off_its_value() -> None:
    """kubespray's roles/*/defaults names (not only its sample's) have verdicts of their own."""
    assert findings({"kube_proxy_conntrack_min": "131072"})["errors"] == []
    errors = findings({"kube_proxy_conntrack_min": 262144})["errors"]
    assert errors == [
        "all hosts: kube_proxy_conntrack_min 262144: not supported (kubespray's default: 131072). "
        "kube-proxy's configuration key is not exposed under this name. Instead: set "
        "kube_proxy_config_extra_args: {conntrack: {min: ...}}."
    ]


def test_nameservers_are_refused_naming_what_to_use() -> None:
    assert findings({"nameservers": []})["errors"] == []
    errors = findings({"nameservers": ["1.1.1.1"]})["errors"]
    assert errors == [
        'all hosts: nameservers ["1.1.1.1"]: not supported (kubespray\'s default: []). '
        "kubeforge leaves the hosts' resolv.conf alone. Instead: set upstream_dns_servers for "
        "the cluster's DNS."
    ]


# kubespray's k8s-cluster.yml and all.yml as a user copies them: representative values,
# the Jinja ones exactly as kubespray's sample writes them.
KUBESPRAY_SAMPLE: dict[str, Any] = {
    "bin_dir": "/usr/local/bin",
    "loadbalancer_apiserver_port": 6443,
    "loadbalancer_apiserver_healthcheck_port": 8081,
    "no_proxy_exclude_workers": False,
    "kube_webhook_token_auth": False,
    "ntp_enabled": False,
    "ntp_manage_config": False,
    "ntp_servers": [f"{i}.pool.ntp.org iburst" for i in range(4)],
    "unsafe_show_logs": False,
    "allow_unsupported_distribution_setup": False,
    "etcd_data_dir": "/var/lib/etcd",
    "etcd_deployment_type": "host",
    "kube_config_dir": "/etc/kubernetes",
    "kube_script_dir": "{{ bin_dir }}/kubernetes-scripts",
    "kube_cert_dir": "{{ kube_config_dir }}/ssl",
    "kube_api_anonymous_auth": True,
    "local_release_dir": "/tmp/releases",
    "kube_owner": "kube",
    "kube_log_level": 2,
    "credentials_dir": "{{ inventory_dir }}/credentials",
    "kube_network_plugin_multus": False,
    "kube_service_addresses": "10.233.0.0/18",
    "kube_pods_subnet_ipv6": "fd85:ee78:d8a6:8607::1:0000/112",
    "kube_apiserver_ip": (
        "{{ kube_service_subnets.split(',') | first | ansible.utils.ipaddr('net') "
        "| ansible.utils.ipaddr(1) | ansible.utils.ipaddr('address') }}"
    ),
    "kube_proxy_mode": "ipvs",
    "kube_proxy_nodeport_addresses": (
        "{%- if kube_proxy_nodeport_addresses_cidr is defined -%}\n"
        "[{{ kube_proxy_nodeport_addresses_cidr }}]\n"
        "{%- else -%}\n[]\n{%- endif -%}"
    ),
    "kube_pod_security_use_default": False,
    "ndots": 2,
    "enable_nodelocaldns": True,
    "nodelocaldns_ip": "169.254.25.10",
    "resolvconf_mode": "host_resolvconf",
    "skydns_server_secondary": (
        "{{ kube_service_subnets.split(',') | first | ansible.utils.ipaddr('net') "
        "| ansible.utils.ipaddr(4) | ansible.utils.ipaddr('address') }}"
    ),
    "kubeadm_certificate_key": (
        "{{ lookup('password', credentials_dir + '/kubeadm_certificate_key.creds "
        "length=64 chars=hexdigits') | lower }}"
    ),
    "event_ttl_duration": "1h0m0s",
    "kube_apiserver_tracing": False,
    "metallb_speaker_enabled": "{{ metallb_enabled }}",
    "kubernetes_audit": False,
    "deploy_netchecker": False,
}


def test_kubespray_s_sample_values_are_not_refused() -> None:
    found = findings(KUBESPRAY_SAMPLE)
    assert found["errors"] == []
    assert found["warnings"] == []
    assert len(found["notes"]) > 5


def test_a_template_equal_to_kubespray_s_default_passes_unevaluated() -> None:
    class Raw(dict[str, Any]):
        """hostvars whose templating would fail: only the raw text may be used."""

        def raw_get(self, host: str) -> dict[str, Any]:
            return dict(self[host])

    ipv6 = "{{ enable_dual_stack_networks  | default(false) }}"  # kubespray's, spaced differently
    hostvars = Raw({h: {"ipv6_stack": ipv6} for h in GROUPS["all"]})
    assert ks.kubeforge_kubespray_findings(hostvars, GROUPS)["errors"] == []


class FakeHostVars(Mapping[str, Any]):
    """Ansible's hostvars: raw_get gives the text, [host][name] the templated value."""

    def __init__(self, raw: dict[str, dict[str, Any]], templated: dict[str, dict[str, Any]]):
        self.raw, self.templated = raw, templated

    def raw_get(self, host: str) -> dict[str, Any]:
        return self.raw[host]

    def __getitem__(self, host: str) -> dict[str, Any]:
        return self.templated[host]

    def __iter__(self) -> Any:
        return iter(self.raw)

    def __len__(self) -> int:
        return len(self.raw)


def test_other_templates_are_evaluated() -> None:
    raw = {h: {"kube_pod_security_use_default": "{{ encrypt }}"} for h in GROUPS["all"]}
    off = FakeHostVars(raw, {h: {"kube_pod_security_use_default": False} for h in GROUPS["all"]})
    assert ks.kubeforge_kubespray_findings(off, GROUPS)["errors"] == []
    on = FakeHostVars(raw, {h: {"kube_pod_security_use_default": True} for h in GROUPS["all"]})
    errors = ks.kubeforge_kubespray_findings(on, GROUPS)["errors"]
    assert errors and errors[0].startswith(
        "all hosts: kube_pod_security_use_default {{ encrypt }} (= true): not supported"
    )


def test_a_template_that_cannot_be_evaluated_is_refused() -> None:
    raw = {h: {"kube_pod_security_use_default": "{{ nowhere }}"} for h in GROUPS["all"]}
    broken = FakeHostVars(raw, {})
    errors = ks.kubeforge_kubespray_findings(broken, GROUPS)["errors"]
    assert len(errors) == 1 and "(unknown before the run)" in errors[0]


# Where ---------------------------------------------------------------------------------------


def test_each_variable_is_reported_once_naming_where_it_is_set() -> None:
    hostvars: dict[str, dict[str, Any]] = {
        "node1": {"kube_pod_security_use_default": True, "kube_apiserver_tracing": True},
        "node2": {"kube_pod_security_use_default": True, "kube_apiserver_tracing": True},
        "node3": {"kube_pod_security_use_default": True},
    }
    errors = ks.kubeforge_kubespray_findings(hostvars, GROUPS)["errors"]
    assert [e.split(": ")[0] + ": " + e.split(": ")[1].split()[0] for e in errors] == [
        "node1, node2: kube_apiserver_tracing",
        "all hosts: kube_pod_security_use_default",
    ]


def test_different_values_are_reported_apart() -> None:
    hostvars = {
        "node1": {"etcd_deployment_type": "docker"},
        "node2": {"etcd_deployment_type": "kubeadm"},
        "node3": {"etcd_deployment_type": "host"},
    }
    found = ks.kubeforge_kubespray_findings(hostvars, GROUPS)
    assert [e.split(":")[0] for e in found["errors"]] == ["group kube_control_plane", "node2"]
    assert found["notes"][0].startswith("node3: etcd_deployment_type host: kubespray's default")


@pytest.mark.parametrize(
    ("hosts", "expected"),
    [
        (["node1", "node2", "node3"], "all hosts"),
        (["node2", "node3"], "group kube_node"),
        (["node1"], "group kube_control_plane"),
        (["node1", "node3"], "node1, node3"),
    ],
)
def test_where(hosts: list[str], expected: str) -> None:
    assert ks.where(hosts, GROUPS) == expected


def test_where_shortens_long_host_lists() -> None:
    many = {"all": [f"n{i:02}" for i in range(20)]}
    assert ks.where(many["all"][:8], many) == "n00, n01, n02, n03, n04 and 3 more"


# Typos ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "guess"),
    [
        ("kube_verison", "kube_version"),
        ("kube_netwrok_plugin", "kube_network_plugin"),
        ("node_lables", "node_labels"),
        ("upstream_dns_server", "upstream_dns_servers"),
        ("kube_feature_gate", "kube_feature_gates"),
    ],
)
def test_a_name_close_to_a_known_one_gets_a_warning(name: str, guess: str) -> None:
    found = findings({name: "x"})
    assert found["warnings"] == [
        f"all hosts: {name} is not read by kubeforge: did you mean {guess}?"
    ]
    assert found["errors"] == found["notes"] == []


@pytest.mark.parametrize(
    "name",
    [
        "my_site_rack",
        "backup_bucket",
        "node",
        "ntp",
        "ansible_python_interpreter",
        "lab_test_image_repo",
    ],
)
def test_names_far_from_known_ones_and_ansible_s_are_left_alone(name: str) -> None:
    assert findings({name: "x"}) == {"errors": [], "warnings": [], "notes": []}


def test_known_names_come_from_the_repository() -> None:
    known = ks.kubeforge_names()
    # defaults, argument specs, the lab's group_vars, a registered result, an optional variable
    for name in (
        "kube_version",
        "apiserver_vip_interface",
        "lab_test_image_repo",
        "preflight_probe",
    ):
        assert name in known, name
    assert "calico_ipip_mode" in known  # read with | default(...)


# docs/kubespray.md ---------------------------------------------------------------------------


def test_docs_table_is_rendered_from_the_table() -> None:
    doc = (REPO / "docs" / "kubespray.md").read_text(encoding="utf-8")
    assert renderer.expected(doc) == doc, "docs/kubespray.md is stale: run make docs"


def test_docs_table_lists_every_entry() -> None:
    doc = (REPO / "docs" / "kubespray.md").read_text(encoding="utf-8")
    for entry in ENTRIES:
        cell = f"| `{entry['name']}` |" if "name" in entry else f"| `{entry['prefix']}*` |"
        assert cell in doc, _id(entry)


# Inventories of the repository ---------------------------------------------------------------


def _inventory_values(*globs: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for pattern in globs:
        for path in sorted(REPO.glob(pattern)):
            values.update(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    return values


def test_kubeforge_s_own_defaults_set_in_an_inventory_say_nothing() -> None:
    """What a user gets by uncommenting inventory/sample (it shows these defaults)."""
    values = _inventory_values("roles/*/defaults/**/*.yml")
    assert "kube_version" in values
    assert findings(values) == {"errors": [], "warnings": [], "notes": []}


def test_the_lab_s_kubespray_inventory_is_not_refused() -> None:
    """The kubespray-style inventory the reset and upgrade scenarios deploy."""
    values = _inventory_values(
        "tests/lab/kubespray/group_vars/**/*.yml", "inventory/lab/kubespray/host_vars/*.yml"
    )
    assert values, "tests/lab/kubespray/group_vars is missing"
    found = findings(values)
    assert found["errors"] == []
    assert [w for w in found["warnings"] if "did you mean" in w] == []


def test_true_is_not_one() -> None:
    """flannel_vxlan_vni's default is 1: `true` is another value, refused."""
    assert findings({"flannel_vxlan_vni": "1"})["errors"] == []
    assert len(findings({"flannel_vxlan_vni": True})["errors"]) == 1
