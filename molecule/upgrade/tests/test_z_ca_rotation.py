"""Runs after test_upgrade.py (file order), on the upgraded cluster: rotate-ca.yml
replaces the Kubernetes, etcd and front-proxy CAs and the service-account key
with no API downtime (docs/operations.md, CA rotation).

1. The old CAs' certificates and a service-account token signed by the old key
   are kept; the upgrade's probe window is closed and a fresh API probe starts
   on every node, through the node's own endpoint (tests/lab/apiprobe.py, which
   takes up its client certificate again when it is re-issued).
2. rotate-ca.yml runs, with ca_rotation_trust_wait_seconds=30: the default 360 s
   is for workloads of one's own that re-read their CA; the lab's API clients
   in pods are the add-ons, which the rotation restarts.
3. No API probe failed; every certificate on every host, in the kubeconfigs and
   in the cluster's own copies (kube-root-ca.crt, extension-apiserver-
   authentication, the metrics APIService) comes from the new CAs only; the
   old CAs are archived on the control host; tokens of both keys are accepted
   during the grace; every node is Ready; pods on different nodes reach each
   other and names resolve, a Service made after the rotation too (CoreDNS
   follows the API again); the upgrade scenario's workload pods were not
   restarted and its web Service answered its probers throughout; a second
   run changes nothing. The duration and probe counts are printed.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from clustercheck import (
    KUBECONFIG_DATA,
    ApiProbes,
    Inventory,
    Kubectl,
    assert_probes_clean,
    busybox_image,
    certificates,
    host_certificates,
    is_ca,
    lab_env,
    namespace,
    pod_manifest,
    run_ok,
    wait_for,
    wait_nodes_ready,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from kubeforge_kubelet import signed_by_one_of
from runbook import run, runs_dir

__all__ = ["busybox_image", "lab_env", "namespace"]

# Left out of `make test` (tests/lab/fullchecks.py): make test-full runs it.
pytestmark = pytest.mark.full("the CA rotation (rotate-ca.yml, about 15 min)")

PROBE_UNIT = "kubeforge-ca-rotation-apiprobe"
# The upgrade scenario's probe (molecule/upgrade/prepare.yml): test_upgrade.py has read it.
UPGRADE_PROBE_UNIT = "kubeforge-upgrade-apiprobe"
UPGRADE_NAMESPACE = "kubeforge-upgrade"
# Where the upgrade's prober pods write each failed request to its web Service.
WEB_LOG = "/var/log/kubeforge-upgrade-probe/web.log"
CAS = ("ca.crt", "front-proxy-ca.crt", "etcd/ca.crt")
METRICS_API = "v1beta1.metrics.k8s.io"
PAGE = "kubeforge ca-rotation page"
# What the checks read of each host's settings (Inventory.settings).
SETTINGS = (
    "kube_cert_dir", "etcd_cert_dir", "kube_config_dir", "bin_dir", "kube_apiserver_endpoint",
    "artifacts_dir", "dns_domain", "kubeconfig_localhost",
)  # fmt: skip
PORT = 8080


@dataclass
class Rotation:
    pki: Path
    old: dict[str, x509.Certificate]  # CA file -> the old CA
    new: dict[str, x509.Certificate]  # CA file -> the new CA
    old_token: str
    started: str  # UTC, as the web prober writes its times
    workload_pods: dict[str, tuple[str, int]]  # pod -> (uid, restarts) before
    seconds: float
    probes: dict[str, tuple[int, int, list[str]]]
    log: str
    settings: dict[str, dict[str, Any]]


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def control_host_cas(pki: Path) -> dict[str, x509.Certificate]:
    out = {}
    for name in CAS:
        found = certificates((pki / name).read_text())
        assert len(found) == 1, f"{pki / name} holds {len(found)} certificates, not 1"
        out[name] = found[0]
    return out


def workload_pods(kubectl: Kubectl) -> dict[str, tuple[str, int]]:
    """The upgrade scenario's web and prober pods: uid and restarts of each."""
    pods = kubectl.json("-n", UPGRADE_NAMESPACE, "get", "pods")["items"]
    return {
        p["metadata"]["name"]: (
            p["metadata"]["uid"],
            sum(s.get("restartCount", 0) for s in p["status"].get("containerStatuses") or []),
        )
        for p in pods
    }


# Reads /api (any authenticated user may) with a bearer token alone: prints
# the status; the apiserver is verified with the host's ca.crt.
TOKEN_READ = """
import ssl, sys, urllib.error, urllib.request
url, ca, token = sys.argv[1:4]
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False
request = urllib.request.Request(url + "/api", headers={"Authorization": "Bearer " + token})
try:
    print(urllib.request.urlopen(request, context=ctx, timeout=10).status)
except urllib.error.HTTPError as exc:
    print(exc.code)
"""


def token_status(inventory: Inventory, rotation: Rotation, token: str) -> str:
    """The HTTP status the API answers a request with `token` alone (no client
    certificate) on the first control-plane host: 200 accepted, 401 refused."""
    first = inventory.groups["kube_control_plane"][0]
    own = rotation.settings[first]
    script = base64.b64encode(TOKEN_READ.encode()).decode()
    return run_ok(
        inventory.host(first),
        f"echo {script} | base64 -d > /tmp/kubeforge-token-read.py && python3 "
        f"/tmp/kubeforge-token-read.py {str(own['kube_apiserver_endpoint']).strip()} "
        f"{own['kube_cert_dir']}/ca.crt {token}",
        "read the API with a service-account token",
    ).strip()


def jwt_kid(token: str) -> str:
    head = token.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))["kid"])


@pytest.fixture(scope="module")
def rotation(inventory: Inventory, kubectl: Kubectl) -> Rotation:
    pki = inventory.path.resolve().parent / "artifacts" / "pki"
    if not (pki / "ca.crt").is_file():
        pytest.fail(f"{pki}/ca.crt is missing: the cluster of {inventory.path} was not deployed")
    if (pki / "rotation").exists():
        pytest.fail(f"{pki}/rotation exists: a CA rotation is under way already")
    settings = inventory.settings(*SETTINGS)
    old = control_host_cas(pki)
    old_token = kubectl("-n", "kube-system", "create", "token", "default", "--duration=2h").strip()
    before = workload_pods(kubectl)
    assert before, f"no pods in namespace {UPGRADE_NAMESPACE}: the upgrade's prepare did not run"

    api_probes = ApiProbes(inventory, PROBE_UNIT)
    # The upgrade's probe window is over (test_upgrade.py read it).
    api_probes.start(settings, stop_first=(UPGRADE_PROBE_UNIT,))
    started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    start = time.monotonic()
    done = run(
        "ca-rotation",
        ["-i", str(inventory.path), "rotate-ca.yml", "-e", "ca_rotation_trust_wait_seconds=30"],
    )
    seconds = time.monotonic() - start
    probes = api_probes.stop()
    log = (runs_dir() / "ca-rotation.log").read_text()
    assert done["rc"] == 0, "rotate-ca.yml failed: see ca-rotation.log"
    new = control_host_cas(pki)
    return Rotation(pki, old, new, old_token, started, before, seconds, probes, log, settings)


def test_the_new_cas_are_new(rotation: Rotation) -> None:
    for name in CAS:
        old, new = rotation.old[name], rotation.new[name]
        assert fingerprint(old) != fingerprint(new), f"{name} is the same CA as before"
        assert old.subject != new.subject, f"{name}: old and new have one subject {new.subject}"
        assert new.public_key() != old.public_key(), f"{name}: the new CA has the old key"
    print(
        f"rotate-ca.yml {rotation.seconds:.0f}s: "
        + ", ".join(f"{n}: {rotation.new[n].subject.rfc4514_string()}" for n in CAS)
    )


def test_no_api_probe_failed_during_the_rotation(rotation: Rotation) -> None:
    assert_probes_clean("CA rotation", rotation.seconds, rotation.probes)


def test_every_certificate_on_the_hosts_comes_from_the_new_cas_only(
    rotation: Rotation, inventory: Inventory
) -> None:
    new_cas = list(rotation.new.values())
    new_prints = {fingerprint(c) for c in new_cas}
    old_prints = {fingerprint(c) for c in rotation.old.values()}
    problems, counted = [], 0
    hosts = list(dict.fromkeys(inventory.groups["k8s_cluster"] + inventory.groups["etcd"]))
    for name in hosts:
        files = host_certificates(inventory.host(name), rotation.settings[name])
        for path, text in files.items():
            for cert in certificates(text):
                counted += 1
                what = f"{name}:{path} {cert.subject.rfc4514_string()}"
                if fingerprint(cert) in old_prints:
                    problems.append(f"{what}: an old CA")
                elif is_ca(cert) and fingerprint(cert) not in new_prints:
                    problems.append(f"{what}: a CA that is none of the new ones")
                elif not is_ca(cert) and not signed_by_one_of(cert, new_cas):
                    problems.append(f"{what}: issued by {cert.issuer.rfc4514_string()}")
    # The operator's admin.conf on the control host (kubeconfig_localhost).
    first = rotation.settings[inventory.groups["kube_control_plane"][0]]
    admin = Path(str(first["artifacts_dir"])) / "admin.conf"
    copied = str(first["kubeconfig_localhost"]).lower() == "true"
    for _, value in KUBECONFIG_DATA.findall(admin.read_text() if copied else ""):
        for cert in certificates(base64.b64decode(value).decode()):
            counted += 1
            if fingerprint(cert) not in new_prints and not signed_by_one_of(cert, new_cas):
                problems.append(f"control host {admin}: {cert.subject.rfc4514_string()}")
    print(f"{counted} certificates on {len(hosts)} hosts, every one from the new CAs")
    assert problems == [], "certificates not from the new CAs only:\n" + "\n".join(problems)


def test_the_certificates_report_names_the_new_cas_as_issuers(
    rotation: Rotation, inventory: Inventory
) -> None:
    done = run("ca-rotation-report", ["-i", str(inventory.path), "certificates-report.yml"])
    assert done["rc"] == 0, "certificates-report.yml failed: see ca-rotation-report.log"
    first = rotation.settings[inventory.groups["kube_control_plane"][0]]
    path = Path(str(first["artifacts_dir"])) / "certificates-report.json"
    report = json.loads(path.read_text())
    assert report["errors"] == [], report["errors"]
    issuers = {c.subject.rfc4514_string() for c in rotation.new.values()}
    wrong = [
        f"{c['host']}:{c['file']} {c.get('part') or ''} {c['subject']} issued by {c['issuer']}"
        for c in report["certificates"]
        if c["issuer"] not in issuers
    ]
    assert report["certificates"], "the report lists no certificate"
    assert wrong == [], "certificates whose issuer is not a new CA:\n" + "\n".join(wrong)


def test_the_clusters_own_copies_hold_the_new_cas_only(
    rotation: Rotation, kubectl: Kubectl
) -> None:
    ca, front_proxy = rotation.new["ca.crt"], rotation.new["front-proxy-ca.crt"]
    stale = []
    for item in kubectl.json("get", "configmaps", "-A", "--field-selector",
                             "metadata.name=kube-root-ca.crt")["items"]:  # fmt: skip
        found = [fingerprint(c) for c in certificates(item["data"]["ca.crt"])]
        if found != [fingerprint(ca)]:
            stale.append(f"{item['metadata']['namespace']}/kube-root-ca.crt: {len(found)} CA(s)")
    auth = kubectl.json("-n", "kube-system", "get", "configmap/extension-apiserver-authentication")
    for key, wanted in (("client-ca-file", ca), ("requestheader-client-ca-file", front_proxy)):
        found = [fingerprint(c) for c in certificates(auth["data"].get(key, ""))]
        if found != [fingerprint(wanted)]:
            stale.append(f"extension-apiserver-authentication {key}: {len(found)} CA(s)")
    api = kubectl.json("get", f"apiservice/{METRICS_API}")
    bundle = base64.b64decode(api["spec"].get("caBundle", "")).decode()
    if [fingerprint(c) for c in certificates(bundle)] != [fingerprint(ca)]:
        stale.append(f"apiservice {METRICS_API} caBundle")
    assert stale == [], f"copies of the CAs in the cluster that are not the new CA only: {stale}"
    # metrics-server serves again (its certificate from the new CA, checked by the bundle).
    kubectl("wait", "--for=condition=Available", "--timeout=120s", f"apiservice/{METRICS_API}")


def test_the_old_cas_are_archived_and_the_old_key_still_accepted(
    rotation: Rotation, inventory: Inventory, kubectl: Kubectl
) -> None:
    state = yaml.safe_load((rotation.pki / "rotation" / "state.yaml").read_text())
    assert state["phase"] == "drop" and "dropped" in state, state
    archive = rotation.pki / "archive" / f"ca-rotation-{state['id']}"
    for name in CAS:
        kept = certificates((archive / name).read_text())
        assert [fingerprint(c) for c in kept] == [fingerprint(rotation.old[name])], name
        assert (archive / name.replace(".crt", ".key")).is_file(), f"{archive}: {name} key"
    assert (archive / "sa.key").is_file() and (archive / "sa.pub").is_file()
    # Tokens of the old key are accepted until the grace ends; new ones carry the new key's id.
    status = token_status(inventory, rotation, rotation.old_token)
    assert status == "200", f"a token signed by the old key was refused during the grace: {status}"
    new_token = kubectl("-n", "kube-system", "create", "token", "default").strip()
    status = token_status(inventory, rotation, new_token)
    assert status == "200", f"a token of the new key was refused: {status}"
    assert token_status(inventory, rotation, new_token[:-4] + "AAAA") == "401", (
        "the apiserver accepts a token with a broken signature: this check checks nothing"
    )
    assert jwt_kid(new_token) != jwt_kid(rotation.old_token), "new tokens carry the old key's id"
    print(f"old service-account key accepted until {state['sa_old_until']}; archive {archive}")


def test_every_node_ready(rotation: Rotation, inventory: Inventory, kubectl: Kubectl) -> None:
    wait_nodes_ready(inventory, kubectl, "the CA rotation")


def test_workload_pods_were_not_restarted(rotation: Rotation, kubectl: Kubectl) -> None:
    after = workload_pods(kubectl)
    changed = {
        name: (before, after.get(name))
        for name, before in rotation.workload_pods.items()
        if after.get(name) != before
    }
    assert changed == {}, f"pods of {UPGRADE_NAMESPACE} restarted or replaced: {changed}"


def test_the_web_service_never_failed_during_the_rotation(
    rotation: Rotation, inventory: Inventory
) -> None:
    # The upgrade's prober pods ask its web Service every 0.5 s from every node,
    # through pod networking and kube-proxy's rules, and log each failure.
    # A failure is a line `<time> FAIL ...`; every 20 requests a line
    # `<time> TOTAL <n> FAILED <f>` counts them since the prober started.
    failed, idle = {}, []
    for name in inventory.groups["k8s_cluster"]:
        lines = run_ok(inventory.host(name), f"cat {WEB_LOG}", "the web prober's log").splitlines()
        totals = [
            (line[:20], int(m[1]))
            for line in lines
            if (m := re.search(r" TOTAL \d+ FAILED (\d+)", line))
        ]
        before = [f for at, f in totals if at < rotation.started]
        after = [f for at, f in totals if at >= rotation.started]
        if not after:
            idle.append(name)
            continue
        fails = [
            line
            for line in lines
            if line[:20] >= rotation.started and re.search(r" FAIL( |$)", line)
        ]
        counted = after[-1] - (before[-1] if before else 0)
        if fails or counted:
            failed[name] = (counted, fails[:10])
    assert idle == [], f"the web probers on {idle} counted nothing since the rotation began"
    assert failed == {}, f"requests to the web Service failed during the CA rotation: {failed}"


@pytest.fixture(scope="module")
def pods(
    rotation: Rotation, inventory: Inventory, kubectl: Kubectl, namespace: str, busybox_image: str
) -> Iterator[tuple[str, str]]:
    """A web pod on one worker and a client on another, and a Service made
    after the rotation: (the web pod's IP, the Service's cluster IP)."""
    workers = [h.lower() for h in inventory.groups["kube_node"]]
    assert len(workers) >= 2, f"pods across nodes need two workers, not {workers}"
    serve = f"mkdir -p /www && echo '{PAGE}' > /www/index.html && exec httpd -f -p {PORT} -h /www"
    web = pod_manifest("web", workers[0], busybox_image, serve)
    client = pod_manifest("client", workers[1], busybox_image, "exec sleep 3600")
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "rotated"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": PORT, "targetPort": PORT}]},
    }
    ns = ["-n", namespace]
    kubectl("apply", *ns, "-f", "-", stdin=yaml.safe_dump_all([web, client, service]))
    try:
        kubectl("wait", *ns, "--for=condition=Ready", "pod/web", "pod/client", "--timeout=180s")
        ip = kubectl("get", *ns, "pod/web", "-o", "jsonpath={.status.podIP}").strip()
        cluster_ip = kubectl("get", *ns, "service/rotated", "-o", "jsonpath={.spec.clusterIP}")
        yield ip, cluster_ip.strip()
    finally:
        kubectl("delete", *ns, "pod/web", "pod/client", "service/rotated", "--ignore-not-found",
                "--wait=true", "--timeout=120s")  # fmt: skip


def test_pods_on_different_nodes_talk_and_names_resolve(
    rotation: Rotation,
    inventory: Inventory,
    kubectl: Kubectl,
    namespace: str,
    pods: tuple[str, str],
) -> None:
    web_ip, service_ip = pods
    domain = rotation.settings[inventory.groups["kube_control_plane"][0]]["dns_domain"]

    def in_client(*command: str) -> tuple[int, str]:
        rc, out, err = kubectl.try_run("exec", "-n", namespace, "client", "--", *command)
        return rc, out if rc == 0 else err

    def page_from(url: str) -> str | None:
        rc, out = in_client("timeout", "5", "wget", "-q", "-O", "-", url)
        return None if rc == 0 and out.strip() == PAGE else f"{url}: rc={rc} {out.strip()[:200]}"

    wait_for("the client reaches the web pod on the other node", lambda: page_from(
        f"http://{web_ip}:{PORT}/"), 60)  # fmt: skip
    kubernetes = kubectl("get", "-n", "default", "service/kubernetes",
                         "-o", "jsonpath={.spec.clusterIP}").strip()  # fmt: skip

    def resolves(name: str, address: str) -> Callable[[], str | None]:
        def probe() -> str | None:
            rc, out = in_client("nslookup", name)
            found = re.findall(r"^Address(?: \d+)?:\s+(\S+)", out.split("Name:", 1)[-1], re.M)
            return None if rc == 0 and address in found else f"nslookup {name}: {out[:300]}"

        return probe

    # CoreDNS learns of a Service made after the rotation only if it follows the API.
    for name, address in ((f"kubernetes.default.svc.{domain}", kubernetes),
                          (f"rotated.{namespace}.svc.{domain}", service_ip)):  # fmt: skip
        wait_for(f"{name} to resolve to {address}", resolves(name, address), 60)
    wait_for("the Service made after the rotation to answer", lambda: page_from(
        f"http://rotated:{PORT}/"), 60)  # fmt: skip


def test_a_second_run_changes_nothing(rotation: Rotation, inventory: Inventory) -> None:
    done = run("ca-rotation-again", ["-i", str(inventory.path), "rotate-ca.yml"])
    log = (runs_dir() / "ca-rotation-again.log").read_text()
    assert done["rc"] == 0, "the second rotate-ca.yml failed: see ca-rotation-again.log"
    changed = {h: r["changed"] for h, r in done["recap"].items() if r["changed"]}
    assert changed == {}, f"a second rotate-ca.yml run changed something: {changed}"
    assert "accept service-account tokens signed by the old key until" in log
    print(f"second run {done['seconds']:.0f}s, changed nothing")
