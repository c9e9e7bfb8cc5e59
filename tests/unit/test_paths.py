"""kubespray's path variables (bin_dir, kube_config_dir, kube_cert_dir,
etcd_cert_dir, kube_manifest_dir) are defined once, in kubeforge_defaults, and
every role follows them: no role, template, playbook or plugin spells their
default paths, the roles' derived values move with them, and the checks of
preflight and reset.yml (plugins/filter/kubeforge_paths.py) refuse paths that
would harm a host."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import kubeforge_paths as kp
import pytest
import yaml
from ansible_render import REPO, render, role_var_files, template

DEFAULTS = {
    "bin_dir": "/usr/local/bin",
    "kube_config_dir": "/etc/kubernetes",
    "kube_cert_dir": "/etc/kubernetes/pki",
    "etcd_cert_dir": "/etc/kubernetes/pki/etcd",
    "kube_manifest_dir": "/etc/kubernetes/manifests",
}
# A kubespray-style layout: certificates under ssl/, etcd's in kubespray's own place.
CUSTOM = {
    "bin_dir": "/opt/kf/bin",
    "kube_config_dir": "/etc/kf",
    "kube_cert_dir": "/etc/kf/ssl",
    "etcd_cert_dir": "/etc/ssl/etcd/ssl",
    "kube_manifest_dir": "/etc/kf/static-pods",
}

# The literal default paths, and the few places allowed to spell them.
LITERALS = re.compile(r"/usr/local/bin|/etc/kubernetes")
ALLOWED = {
    "roles/kubeforge_defaults/defaults/main/paths.yml": "defines bin_dir and kube_config_dir",
    "roles/kubeforge_defaults/meta/argument_specs.yml": "documents their defaults",
    "plugins/filter/kubeforge_paths.py": "directories reset.yml must never remove whole",
    "plugins/filter/kubeforge_inventory.py": (
        "directories local_path_provisioner_claim_root may not be (reset.yml removes it)"
    ),
    "plugins/modules/kubeforge_services.py": "an example in the module's documentation",
    "plugins/filter/kubeforge_download.py": "an example in a docstring",
    "plugins/kubespray/variables.yml": "kubespray's own defaults, in the table of its variables",
}
SCANNED = ("roles", "playbooks", "plugins", "tests/playbooks")
SUFFIXES = {".yml", ".yaml", ".j2", ".py", ".sh", ".cfg", ".toml", ".conf", ""}


def scanned_files() -> list[Path]:
    files = [p for p in REPO.glob("*.yml")]
    for top in SCANNED:
        files += [p for p in (REPO / top).rglob("*") if p.is_file() and p.suffix in SUFFIXES]
    return sorted(files)


def test_no_role_template_playbook_or_plugin_spells_a_default_path() -> None:
    found = []
    for path in scanned_files():
        rel = str(path.relative_to(REPO))
        if rel in ALLOWED:
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if LITERALS.search(line):
                found.append(f"{rel}:{number}: {line.strip()}")
    assert not found, (
        "default paths spelled out instead of bin_dir, kube_config_dir, kube_cert_dir, "
        "etcd_cert_dir or kube_manifest_dir:\n" + "\n".join(found)
    )


def test_allowed_files_still_need_their_exception() -> None:
    stale = [f for f in ALLOWED if not LITERALS.search((REPO / f).read_text())]
    assert not stale, f"remove these from ALLOWED, they no longer spell a default path: {stale}"


def test_defaults_are_defined_once() -> None:
    defaults_dir = REPO / "roles" / "kubeforge_defaults" / "defaults" / "main"
    where: dict[str, list[str]] = {}
    for role_file in sorted((REPO / "roles").glob("*/defaults/**/*.yml")) + sorted(
        (REPO / "roles").glob("*/vars/*.yml")
    ):
        for name in yaml.safe_load(role_file.read_text()) or {}:
            if name in DEFAULTS:
                where.setdefault(name, []).append(str(role_file.relative_to(REPO)))
    expected = str((defaults_dir / "paths.yml").relative_to(REPO))
    assert where == {name: [expected] for name in DEFAULTS}


# The checks -------------------------------------------------------------------


@pytest.mark.parametrize("paths", [DEFAULTS, CUSTOM], ids=["defaults", "kubespray-style"])
def test_good_layouts_pass(paths: dict[str, str]) -> None:
    assert kp.kubeforge_path_errors(paths) == []


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("bin_dir", "usr/local/bin", "not an absolute path"),
        ("bin_dir", None, "not an absolute path"),
        ("kube_config_dir", "/etc/kube rnetes", "not an absolute path"),
        ("kube_config_dir", "/etc/kubernetes/", "not in normal form; write '/etc/kubernetes'"),
        ("kube_cert_dir", "/etc/kubernetes/../ssl", "not in normal form"),
        ("etcd_cert_dir", "//etc/etcd", "not in normal form"),
        ("kube_config_dir", "/etc", "'/etc' is, or holds, a directory of the system"),
        ("kube_config_dir", "/", "is, or holds, a directory of the system"),
        ("kube_cert_dir", "/etc/ssl", "is, or holds, a directory of the system"),
        ("kube_manifest_dir", "/usr/share", "is, or holds, a directory of the system"),
        ("kube_config_dir", "/usr/local", "is, or holds, a directory of the system"),
        ("etcd_cert_dir", "/etc/systemd", "is, or holds, a directory of the system"),
        ("kube_cert_dir", "/var/lib/kubelet", "a directory of the system or of other software"),
    ],
)
def test_bad_paths_are_refused(name: str, value: Any, message: str) -> None:
    errors = kp.kubeforge_path_errors({**DEFAULTS, name: value})
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"{name} ") and message in errors[0], errors


def test_etcd_and_kubernetes_pki_must_differ() -> None:
    errors = kp.kubeforge_path_errors({**DEFAULTS, "etcd_cert_dir": "/etc/kubernetes/pki"})
    assert errors == [
        "etcd_cert_dir and kube_cert_dir are both '/etc/kubernetes/pki': the etcd CA and the "
        "Kubernetes CA would overwrite each other (both are ca.crt); give etcd its own directory"
    ]


@pytest.mark.parametrize("other", ["kube_config_dir", "kube_cert_dir", "etcd_cert_dir"])
def test_static_pods_have_their_own_directory(other: str) -> None:
    errors = kp.kubeforge_path_errors({**DEFAULTS, "kube_manifest_dir": DEFAULTS[other]})
    assert len(errors) == 1 and errors[0].startswith(f"kube_manifest_dir and {other} are both")


def test_bin_dir_may_be_a_system_directory() -> None:
    # reset.yml removes only the binaries kubeforge installed from it.
    assert kp.kubeforge_path_errors({**DEFAULTS, "bin_dir": "/usr/bin"}) == []


def test_hosts_must_agree() -> None:
    etcd_only = {**DEFAULTS}
    kubespray = {
        **DEFAULTS,
        "kube_cert_dir": "/etc/kubernetes/ssl",
        "etcd_cert_dir": "/etc/kubernetes/ssl/etcd",
    }
    assert kp.kubeforge_path_disagreements({"node1": kubespray, "node2": dict(kubespray)}) == []
    errors = kp.kubeforge_path_disagreements(
        {"node1": kubespray, "node2": kubespray, "etcd4": etcd_only}
    )
    assert [e.split(" ", 1)[0] for e in errors] == ["kube_cert_dir", "etcd_cert_dir"]
    assert errors[0].startswith(
        "kube_cert_dir differs between the hosts of the cluster (/etc/kubernetes/pki on etcd4; "
        "/etc/kubernetes/ssl on node1, node2): set it once for all of them, in group_vars/all"
    )


def test_control_host_plays_read_the_cluster_paths() -> None:
    # localhost does not read group_vars/k8s_cluster, where kubespray's sample sets kube_cert_dir.
    plays = yaml.safe_load((REPO / "playbooks" / "remove-node.yml").read_text())
    local = [p for p in plays if p.get("hosts") == "localhost"]
    assert local, "remove-node.yml has no play on the control host"
    assert all("vars/cluster_paths.yml" in p.get("vars_files", []) for p in local), [
        p["name"] for p in local
    ]
    names = set(yaml.safe_load((REPO / "playbooks" / "vars" / "cluster_paths.yml").read_text()))
    assert set(DEFAULTS) <= names


def test_cert_path() -> None:
    assert kp.kubeforge_cert_path("ca.crt", "/a/ssl", "/b/etcd") == "/a/ssl/ca.crt"
    assert kp.kubeforge_cert_path("etcd/ca.crt", "/a/ssl", "/b/etcd") == "/b/etcd/ca.crt"
    assert kp.kubeforge_cert_path("etcd/healthcheck-client.key", "/a", "/a/etcd") == (
        "/a/etcd/healthcheck-client.key"
    )
    assert kp.kubeforge_cert_path("nodes/etcd/x.crt", "/a", "/b") == "/a/nodes/etcd/x.crt"


# The roles' values, rendered by Ansible with a non-default layout ------------

# Role files whose variables are rendered (defaults and vars of the roles that
# write or read files on the hosts).
ROLE_VAR_FILES = role_var_files(
    "certificates", "etcd", "control_plane", "node", "container_runtime", "download",
    "addons", "network_plugin", "upgrade", "remove_node", "reset", "apiserver_vip",
)  # fmt: skip


# Name -> Jinja expression, rendered on the host; variables and the templates
# that held literal paths.
RENDERED = {
    **{
        name: name
        for name in (
            "etcdctl_env", "audit_policy_file", "certificates_host_files", "etcd_settings",
            "etcd_member_files", "control_plane_components", "control_plane_services",
            "control_plane_apiserver_serving_files",
            "node_kubelet_files", "node_kube_proxy_files", "node_kubectl", "node_lb_check_files",
            "node_lb_config_dir", "download_gateway_api_crds_dest", "download_calico_crds_dest",
            "addons_kubectl", "addons_manifest_dir", "addons_gateway_api_crds",
            "network_plugin_kubectl", "network_plugin_manifest_dir",
            "network_plugin_calico_etcd_pki", "upgrade_kubectl", "upgrade_probe_script",
            "remove_node_etcdctl", "remove_node_kubectl", "reset_paths", "reset_binaries",
            "reset_admin_conf", "apiserver_vip_check_cert", "apiserver_vip_ca",
        )
    },
    "download_installs": "download_files | map(attribute='install') | list",
    "etcd_unit": template("etcd/templates/etcd.service.j2"),
    "control_plane_unit": template(
        "control_plane/templates/component.service.j2", "{'item': control_plane_components[0]}"
    ),
    "control_plane_kubeconfig": template(
        "control_plane/templates/kubeconfig.j2",
        "{'control_plane_kubeconfig': {'user': 'u', 'cert': 'scheduler'}}",
    ),
    "node_kubeconfig": template(
        "node/templates/kubeconfig.j2",
        "{'node_kubeconfig_cert': 'kube-proxy', 'node_kubeconfig_user': 'u'}",
    ),
    "kubelet_config": template("node/templates/kubelet-config.yaml.j2") + " | from_yaml",
    "kube_proxy_config": template("node/templates/kube-proxy-config.yaml.j2") + " | from_yaml",
    "kubelet_unit": template("node/templates/kubelet.service.j2"),
    "kube_proxy_unit": template("node/templates/kube-proxy.service.j2"),
    "containerd_unit": template("container_runtime/templates/containerd.service.j2"),
}  # fmt: skip


def rendered(paths: dict[str, str]) -> dict[str, Any]:
    """RENDERED as Ansible renders it for one host in every group, with `paths`
    set in the inventory's group_vars."""
    # calico's etcd client and metrics-server's certificates too.
    settings = {
        "kube_network_plugin": "calico",
        "calico_datastore": "etcd",
        "metrics_server_enabled": True,
    }
    return render(
        hosts={"node1": {"ip": "192.0.2.11"}},
        groups={g: ["node1"] for g in ("kube_control_plane", "etcd", "kube_node")},
        settings={**paths, **settings},
        expressions=RENDERED,
        var_files=ROLE_VAR_FILES,
    )


@pytest.fixture(scope="module")
def defaults_rendered() -> dict[str, Any]:
    return rendered({})


@pytest.fixture(scope="module")
def custom_rendered() -> dict[str, Any]:
    return rendered(CUSTOM)


def test_defaults_render_as_before(defaults_rendered: dict[str, Any]) -> None:
    # Existing clusters see the same files and flags (a second run changes nothing).
    r = defaults_rendered
    apiserver = r["control_plane_components"][0]["args"]
    assert apiserver["client-ca-file"] == "/etc/kubernetes/pki/ca.crt"
    assert apiserver["etcd-cafile"] == "/etc/kubernetes/pki/etcd/ca.crt"
    assert r["etcdctl_env"]["ETCDCTL_CERT"] == "/etc/kubernetes/pki/etcd/healthcheck-client.crt"
    assert r["kubelet_config"]["staticPodPath"] == "/etc/kubernetes/manifests"
    assert "ExecStart=/usr/local/bin/kubelet \\\n" in r["kubelet_unit"]
    assert "--kubeconfig=/etc/kubernetes/kubelet.conf" in r["kubelet_unit"]
    assert r["audit_policy_file"] == "/etc/kubernetes/audit-policy.yaml"
    hosts = {f["src"]: f["dest"] for f in r["certificates_host_files"]}
    assert hosts["ca.crt"] == "/etc/kubernetes/pki/ca.crt"
    assert hosts["etcd/ca.crt"] == "/etc/kubernetes/pki/etcd/ca.crt"
    assert hosts["nodes/node1/etcd/server.key"] == "/etc/kubernetes/pki/etcd/server.key"
    assert "/etc/kubernetes" in r["reset_paths"]


def test_a_custom_layout_moves_everything(custom_rendered: dict[str, Any]) -> None:
    r = custom_rendered
    text = json.dumps(r)
    assert not LITERALS.findall(text), [k for k, v in r.items() if LITERALS.search(json.dumps(v))]
    for name, value in CUSTOM.items():
        assert value in text, f"{name} ({value}) is read nowhere"


def test_custom_layout_certificates(custom_rendered: dict[str, Any]) -> None:
    r = custom_rendered
    dests = {f["src"]: f["dest"] for f in r["certificates_host_files"]}
    assert dests["ca.crt"] == "/etc/kf/ssl/ca.crt"
    assert dests["sa.key"] == "/etc/kf/ssl/sa.key"
    assert dests["etcd/ca.crt"] == "/etc/ssl/etcd/ssl/ca.crt"
    assert dests["etcd/healthcheck-client.key"] == "/etc/ssl/etcd/ssl/healthcheck-client.key"
    assert dests["nodes/node1/etcd/peer.crt"] == "/etc/ssl/etcd/ssl/peer.crt"
    assert dests["nodes/node1/kubelet.crt"] == "/etc/kf/ssl/kubelet.crt"
    assert dests["calico-etcd-client.crt"] == "/etc/kf/ssl/calico-etcd-client.crt"
    assert dests["metrics-server.key"] == "/etc/kf/ssl/metrics-server.key"
    assert r["network_plugin_calico_etcd_pki"] == {
        "etcd-ca": "/etc/ssl/etcd/ssl/ca.crt",
        "etcd-cert": "/etc/kf/ssl/calico-etcd-client.crt",
        "etcd-key": "/etc/kf/ssl/calico-etcd-client.key",
    }


def test_custom_layout_components(custom_rendered: dict[str, Any]) -> None:
    r = custom_rendered
    apiserver, controller_manager, _ = (c["args"] for c in r["control_plane_components"])
    assert apiserver["etcd-cafile"] == "/etc/ssl/etcd/ssl/ca.crt"
    assert apiserver["etcd-certfile"] == "/etc/kf/ssl/apiserver-etcd-client.crt"
    assert apiserver["tls-cert-file"] == "/etc/kf/ssl/apiserver.crt"
    assert controller_manager["kubeconfig"] == "/etc/kf/controller-manager.conf"
    assert "ExecStart=/opt/kf/bin/kube-apiserver \\" in r["control_plane_unit"]
    # A renewed etcd CA restarts the apiserver too.
    watched = next(s["watch"] for s in r["control_plane_services"] if s["name"] == "kube-apiserver")
    assert {"/etc/ssl/etcd/ssl/ca.crt", "/etc/kf/ssl/ca.crt", "/opt/kf/bin/kube-apiserver"} <= set(
        watched
    )
    # Its serving pair it reloads by itself: a change to it alone restarts nothing.
    assert not {"/etc/kf/ssl/apiserver.crt", "/etc/kf/ssl/apiserver.key"} & set(watched)
    assert "/etc/kf/ssl/apiserver-etcd-client.crt" in watched
    assert r["control_plane_apiserver_serving_files"] == [
        "/etc/kf/ssl/apiserver.crt",
        "/etc/kf/ssl/apiserver.key",
    ]
    assert r["etcd_settings"]["trusted-ca-file"] == "/etc/ssl/etcd/ssl/ca.crt"
    assert "ExecStart=/opt/kf/bin/etcd" in r["etcd_unit"]
    assert r["etcdctl_env"]["ETCDCTL_CACERT"] == "/etc/ssl/etcd/ssl/ca.crt"
    kubelet = r["kubelet_config"]
    assert kubelet["staticPodPath"] == "/etc/kf/static-pods"
    assert kubelet["authentication"]["x509"]["clientCAFile"] == "/etc/kf/ssl/ca.crt"
    assert kubelet["tlsCertFile"] == "/etc/kf/ssl/kubelet.crt"
    assert r["kube_proxy_config"]["clientConnection"]["kubeconfig"] == "/etc/kf/kube-proxy.conf"
    assert "client-key: /etc/kf/ssl/kube-proxy.key" in r["node_kubeconfig"]
    assert "--kubeconfig=/etc/kf/kubelet.conf" in r["kubelet_unit"]
    assert "ExecStart=/opt/kf/bin/containerd " in r["containerd_unit"]


def test_custom_layout_day_two(custom_rendered: dict[str, Any]) -> None:
    r = custom_rendered
    assert {"/etc/kf", "/etc/kf/ssl", "/etc/ssl/etcd/ssl", "/etc/kf/static-pods"} <= set(
        r["reset_paths"]
    )
    assert "/etc/ssl/etcd" not in r["reset_paths"] and "/etc/ssl" not in r["reset_paths"]
    assert "/opt/kf/bin/kubelet" in r["reset_binaries"]
    assert r["reset_admin_conf"] == "/etc/kf/admin.conf"
    kubectl = "/opt/kf/bin/kubectl --kubeconfig /etc/kf/admin.conf"
    assert r["upgrade_kubectl"] == r["addons_kubectl"] == r["remove_node_kubectl"] == kubectl
    assert r["network_plugin_kubectl"].strip() == kubectl
    assert r["remove_node_etcdctl"].startswith("/opt/kf/bin/etcdctl ")
    assert "if [ -x /opt/kf/bin/etcd ]" in r["upgrade_probe_script"]
