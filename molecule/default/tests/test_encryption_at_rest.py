"""Secrets at rest (kube_encrypt_secret_data, on by default): a Secret read
straight from etcd is encrypted with the key of the control host's key store,
every apiserver has the same configuration, and rotate-encryption-key.yml
moves the cluster to a new key with no restart: afterwards the Secret still
reads through the API, etcd holds it under the new key, the old key is gone
from the apiservers and the key store, and the run's output shows no key."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from clustercheck import ETCDCTL_LOCAL, Inventory, Kubectl, run_ok
from runbook import run, runs_dir

CONFIG = "/etc/kubernetes/encryption-config.yaml"
SECRET = "kubeforge-at-rest"
PLAIN = "plain-text-that-must-not-reach-etcd"


def store(inventory: Inventory) -> list[dict[str, str]]:
    path = Path(inventory.path).parent / "artifacts" / "pki" / "encryption-keys.yaml"
    assert path.is_file(), f"no key store on the control host at {path}"
    assert oct(path.stat().st_mode & 0o777) == "0o600", f"{path} is not 0600"
    keys: list[dict[str, str]] = yaml.safe_load(path.read_text())["keys"]
    return keys


def etcd_value(inventory: Inventory, namespace: str, name: str) -> bytes:
    host = inventory.host(inventory.groups["etcd"][0])
    key = f"/registry/secrets/{namespace}/{name}"
    out = run_ok(host, f"{ETCDCTL_LOCAL} get {key} --print-value-only | base64 -w0", "etcd get")
    value = base64.b64decode(out.strip())
    assert value, f"etcd has no value at {key}"
    return value


def apiserver_configs(inventory: Inventory) -> dict[str, str]:
    out = {}
    for name in inventory.groups["kube_control_plane"]:
        host = inventory.host(name)
        f = host.file(CONFIG)
        assert f.exists and f.user == "root" and f.mode == 0o600, f"{name}: {CONFIG} not 0600 root"
        cmd = run_ok(host, "cat /proc/$(pgrep -x kube-apiserver)/cmdline | tr '\\0' ' '", "cmdline")
        assert f"--encryption-provider-config={CONFIG}" in cmd, f"{name}: flag missing: {cmd}"
        assert "--encryption-provider-config-automatic-reload=true" in cmd, f"{name}: {cmd}"
        out[name] = f.sha256sum
    return out


def apiserver_pids(inventory: Inventory) -> dict[str, str]:
    return {
        n: run_ok(inventory.host(n), "pgrep -x kube-apiserver", "apiserver pid").strip()
        for n in inventory.groups["kube_control_plane"]
    }


@pytest.fixture(scope="module")
def secret(kubectl: Kubectl, namespace: str) -> str:
    kubectl("create", "secret", "generic", SECRET, "-n", namespace, f"--from-literal=v={PLAIN}")
    return SECRET


def assert_encrypted_with(inventory: Inventory, namespace: str, key: dict[str, Any]) -> None:
    value = etcd_value(inventory, namespace, SECRET)
    assert PLAIN.encode() not in value, "the Secret is stored in plain text"
    prefix = f"k8s:enc:{key['algorithm']}:v1:{key['name']}:".encode()
    assert value.startswith(prefix), f"stored as {value[:40]!r}, not with {prefix!r}"


def test_secrets_are_encrypted_in_etcd_with_the_stored_key(
    inventory: Inventory, namespace: str, secret: str
) -> None:
    keys = store(inventory)
    assert len(keys) == 1, [k["name"] for k in keys]
    assert keys[0]["algorithm"] == "secretbox"
    assert_encrypted_with(inventory, namespace, keys[0])
    configs = apiserver_configs(inventory)
    assert len(set(configs.values())) == 1, f"the apiservers' configurations differ: {configs}"


def test_key_rotation_keeps_every_secret_readable_and_restarts_nothing(
    inventory: Inventory, kubectl: Kubectl, namespace: str, secret: str
) -> None:
    old = store(inventory)[0]
    pids = apiserver_pids(inventory)
    start = time.monotonic()
    done = run("rotate-encryption-key", ["-i", str(inventory.path), "rotate-encryption-key.yml"])
    seconds = time.monotonic() - start
    assert done["rc"] == 0, "rotate-encryption-key.yml failed: see rotate-encryption-key.log"
    print(f"key rotation: {seconds:.0f}s")
    keys = store(inventory)
    assert len(keys) == 1 and keys[0]["name"] != old["name"], [k["name"] for k in keys]
    new = keys[0]
    # The run's output names no key.
    log = (runs_dir() / "rotate-encryption-key.log").read_text()
    assert new["secret"] not in log and old["secret"] not in log, "a key reached the output"
    # Still readable through the API, stored with the new key.
    got = kubectl("get", "secret", secret, "-n", namespace, "-o", "jsonpath={.data.v}")
    assert base64.b64decode(got).decode() == PLAIN
    assert_encrypted_with(inventory, namespace, new)
    # Every Secret of the cluster reads.
    listed = kubectl.json("get", "secrets", "--all-namespaces")
    assert listed["items"], "no Secrets listed"
    configs = apiserver_configs(inventory)
    assert len(set(configs.values())) == 1, f"the apiservers' configurations differ: {configs}"
    for name in inventory.groups["kube_control_plane"]:
        text = run_ok(inventory.host(name), f"cat {CONFIG}", "encryption config")
        assert old["name"] not in text, f"{name} still has the old key"
    assert apiserver_pids(inventory) == pids, "an apiserver restarted during the rotation"
