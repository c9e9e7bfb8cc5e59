"""Kubernetes conformance on the lab: `make conformance`, `make conformance-quick`.

    conformance.py build
        builds the suite of the default Kubernetes release (e2e.test, ginkgo,
        builders/e2e.sh) and every image its conformance specs run, and pushes
        them to the lab registry (all cached like the lab's other builds).
    conformance.py run [--quick] [--procs N] [--kubeconfig FILE]
        runs the [Conformance] specs against the lab cluster: the parallel ones
        with N ginkgo processes, then the [Serial] ones alone (--quick: the
        QUICK_FOCUS subset, no serial ones). JUnit reports and a summary
        (summary.txt, summary.json) go to inventory/lab/artifacts/conformance/;
        the exit status is non-zero when a spec failed.

The images come from the names `e2e.test --list-images` prints: each one the
specs of this release run has a recipe in IMAGE_RECIPES (a Dockerfile under
images/ and the files it copies), is pushed under its upstream repository path,
and e2e.test is pointed at the lab registry with KUBE_TEST_REPO_LIST, its own
override mechanism. Specs are left out only through SKIPS, each with its reason.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import artifacts
import images
import labconfig as cfg

KUBERNETES_MODULE = "k8s.io/kubernetes"
UPSTREAM_REGISTRY = "registry.k8s.io"
E2E_BINARIES = ("e2e.test", "ginkgo", "agnhost", "nnp", "sample-apiserver")
ARTIFACTS = cfg.LAB_INVENTORY / "artifacts" / "conformance"
# ginkgo label filters: the suite labels each spec (Conformance, Serial, Slow...).
PARALLEL = "Conformance && !Serial"
SERIAL = "Conformance && Serial"
QUICK = "Conformance && !Serial && !Slow && !Disruptive"
# make conformance-quick: networking (Services, DNS, EndpointSlices, proxy...),
# pods, ConfigMaps and Secrets, service accounts and authorization.
QUICK_FOCUS = (
    r"\[sig-network\]|\[sig-node\] Pods should|ConfigMap|Secrets|\[sig-auth\] ServiceAccounts"
    r"|\[sig-auth\] SubjectReview"
)
# Specs that cannot pass on the lab for a reason outside the cluster kubeforge
# deploys: regular expression (ginkgo --skip, on the spec's full text) -> why.
# docs/testing.md shows this list. A skipped spec whose cluster side the lab
# can still exercise has a stand-in check in STAND_INS, run whenever the
# spec would have run.
IMAGE_VOLUME = r"\[sig-node\] ImageVolume should succeed with pod and pull policy of Always"
SKIPS: dict[str, str] = {
    IMAGE_VOLUME: (
        "it asserts that the kitten test image's etc/os-release names Alpine Linux, the base of "
        "upstream's agnhost image; the lab builds its test images on Debian, as it reaches no "
        "Alpine packages. The lab's stand-in check runs the same pod (the kitten image mounted "
        "as a volume, pull policy Always) and compares the volume's files with the image's own"
    ),
}
# Taints the suite must not wait to see gone before it starts: the control
# plane's, and the one the lab's inventory gives its ingress node.
NON_BLOCKING_TAINTS = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/ingress")
# A failed spec runs once more (ginkgo --flake-attempts): on the lab's container
# hosts (cgroup v1 hierarchies re-rooted per node, docs/lab.md) runc now and then
# finds a new container's perf_event cgroup gone ("unable to apply cgroup
# configuration"). A spec that passes only on its second attempt is reported
# as flaky, by name, in the summary.
FLAKE_ATTEMPTS = 2
NETWORK_DAEMONSETS = {"flannel": "kube-flannel", "calico": "calico-node"}


def e2e_build(v: cfg.Versions) -> artifacts.Build:
    """The suite at the default Kubernetes release (the version the lab deploys)."""
    return artifacts.Build(
        "e2e", v.kube[0], E2E_BINARIES, sources=(artifacts.KUBERNETES_MODULE_LIB,)
    )


def module_dir(v: cfg.Versions) -> Path:
    return artifacts.go_module_dir(KUBERNETES_MODULE, f"v{v.kube[0]}")


def listed_images(e2e: artifacts.Build) -> list[str]:
    """Every image reference this e2e.test may run (`--list-images`)."""
    done = subprocess.run(
        [str(e2e.path("e2e.test")), "--list-images"], capture_output=True, text=True, check=True
    )
    return sorted({line.strip() for line in done.stdout.splitlines() if line.strip()})


@dataclass(frozen=True)
class Recipe:
    directory: str  # under tests/lab/images/
    # tag -> extra build-context files
    files: Callable[[str], dict[str, Path]]
    base: str = ""  # another image (repository path without tag) it is built on
    args: tuple[tuple[str, str], ...] = ()  # docker build arguments


# busybox for the suite's busybox image, built from the upstream release's
# source as Debian ships it (the .orig tarball, without Debian's patches): its
# ash passes on environment variables whose names are not shell names (the
# ConfigMap and Secret envFrom specs print them), which Debian's build reverts,
# and its messages are the ones the specs compare (the read-only root file
# system spec). The version and the sha256 of Debian's source tarball of it;
# with the tarball's address on the lab's Debian mirror, the image's build
# arguments.
BUSYBOX_VERSION = "1.37.0"
BUSYBOX_SHA256 = "3311dff32e746499f4df0d5df04d7eb396382d7e108bb9250e7b519b837043a4"
BUSYBOX_SOURCE = (
    ("BUSYBOX_VERSION", BUSYBOX_VERSION),
    (
        "BUSYBOX_URL",
        f"{images.DEBIAN_MIRROR}/pool/main/b/busybox/busybox_{BUSYBOX_VERSION}.orig.tar.bz2",
    ),
    ("BUSYBOX_SHA256", BUSYBOX_SHA256),
)


def image_recipes(v: cfg.Versions, report: artifacts.Report) -> dict[str, Recipe]:
    """Upstream repository path (without registry.k8s.io/) -> how the lab builds it."""
    e2e = e2e_build(v)
    src = module_dir(v) / "test" / "images"
    coredns = artifacts.lab_build(v, "coredns").path("coredns")

    def built(component: str, names: tuple[str, ...], tag: str) -> dict[str, Path]:
        """The lab's build at the version the image's tag names (pause 3.10.2,
        etcd 3.7.0): the files `names` of it."""
        build = artifacts.lab_build(v, component, tag.split("-")[0])
        artifacts.ensure_build(build, report)
        return {name: build.path(name) for name in names}

    def site(name: str) -> Callable[[str], dict[str, Path]]:
        return lambda _tag: {f"html/{p.name}": p for p in sorted((src / name / "html").iterdir())}

    return {
        "e2e-test-images/agnhost": Recipe(
            "e2e-agnhost",
            lambda _tag: {
                "agnhost": e2e.path("agnhost"),
                "coredns": coredns,
                "localhost.crt": src / "agnhost" / "porter" / "localhost.crt",
                "localhost.key": src / "agnhost" / "porter" / "localhost.key",
            },
        ),
        "e2e-test-images/kitten": Recipe("e2e-agnhost-site", site("kitten"), "agnhost"),
        "e2e-test-images/nautilus": Recipe("e2e-agnhost-site", site("nautilus"), "agnhost"),
        "e2e-test-images/glibc-dns-testing": Recipe(
            "e2e-glibc-dns-testing", lambda _tag: {"coredns": coredns}
        ),
        "e2e-test-images/busybox": Recipe("e2e-busybox", lambda _tag: {}, args=BUSYBOX_SOURCE),
        "e2e-test-images/nginx": Recipe("nginx", lambda _tag: {}),
        "e2e-test-images/nonroot": Recipe("e2e-nonroot", lambda _tag: {}),
        "e2e-test-images/nonewprivs": Recipe(
            "e2e-nonewprivs", lambda _tag: {"nnp": e2e.path("nnp")}
        ),
        "e2e-test-images/sample-apiserver": Recipe(
            "e2e-sample-apiserver", lambda _tag: {"sample-apiserver": e2e.path("sample-apiserver")}
        ),
        "pause": Recipe("pause", lambda tag: built("pause", ("pause",), tag)),
        "etcd": Recipe("e2e-etcd", lambda tag: built("etcd", ("etcd", "etcdctl"), tag)),
    }


def conformance_images(
    v: cfg.Versions, references: list[str], report: artifacts.Report
) -> tuple[list[images.Image], list[str]]:
    """The images the lab builds for these references, in build order (bases
    first), and the references it has no recipe for."""
    recipes = image_recipes(v, report)
    known = [r for r in references if _repo(r) in recipes]
    found: dict[str, images.Image] = {}
    # bases first: their tag and inputs are build arguments of the images on them
    for ref in sorted(known, key=lambda r: bool(recipes[_repo(r)].base)):
        repo, tag = _repo(ref), ref.rpartition(":")[2]
        recipe = recipes[repo]
        args = recipe.args
        if recipe.base:
            base = max(
                (i for i in found.values() if i.tag.startswith(f"e2e-test-images/{recipe.base}:")),
                key=lambda i: i.tag,
            )
            args += (("BASEIMAGE", f"{cfg.REGISTRY_PUSH}/{base.tag}"), ("BASE", base.inputs()))
        found[ref] = images.Image(recipe.directory, f"{repo}:{tag}", recipe.files(tag), True, args)
    return list(found.values()), [r for r in references if r not in known]


def _repo(reference: str) -> str:
    """registry.k8s.io/e2e-test-images/agnhost:2.66.1 -> e2e-test-images/agnhost
    (other registries: the whole repository, which no recipe names)."""
    repo = reference.rpartition(":")[0]
    return repo.removeprefix(f"{UPSTREAM_REGISTRY}/")


def repo_list() -> str:
    """KUBE_TEST_REPO_LIST: the registries of the suite's images that the lab
    registry stands in for (the others keep upstream's, which no conformance
    spec pulls, or which a spec expects to fail)."""
    lab = cfg.registry_addr()
    return f"promoterE2eRegistry: {lab}/e2e-test-images\ngcRegistry: {lab}\ngcEtcdRegistry: {lab}\n"


@contextlib.contextmanager
def build_lock() -> Iterator[None]:
    """Held while the suite builds: one build at a time. `make test` starts one
    beside the lab's scenarios (tests/tools/make_test.sh) and runs another
    before the quick conformance specs, which waits here for the first to
    finish and then finds everything built."""
    path = cfg.cache_dir() / "conformance-build.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            start = time.monotonic()
            print(f"conformance: waiting for the build another process runs ({path})", flush=True)
            fcntl.flock(lock, fcntl.LOCK_EX)
            print(f"conformance: waited {time.monotonic() - start:.0f}s for it", flush=True)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def build(report: artifacts.Report) -> list[str]:
    """Build the suite and push its images; returns (and prints) the references
    not built."""
    with build_lock():
        return _build(report)


def _build(report: artifacts.Report) -> list[str]:
    v = cfg.versions()
    e2e = e2e_build(v)
    artifacts.ensure_build(e2e, report)
    artifacts.ensure_build(artifacts.lab_build(v, "coredns"), report)
    images.ensure_debian_base(report)
    built, missing = conformance_images(v, listed_images(e2e), report)
    for image in built:
        images.ensure_pushed(image, report)
    for ref in missing:
        print(f"conformance: not built, no recipe: {ref} (a spec that runs it fails)")
    return missing


# ------------------------------------------------------------------------- run


@dataclass(frozen=True)
class Phase:
    name: str
    labels: str  # ginkgo --label-filter
    focus: str  # ginkgo --focus ("": every spec the labels select)
    procs: int


def phases(quick: bool, procs: int) -> list[Phase]:
    if quick:
        return [Phase("quick", QUICK, QUICK_FOCUS, procs)]
    return [Phase("parallel", PARALLEL, "", procs), Phase("serial", SERIAL, "", 1)]


def kubectl_path() -> Path:
    """The lab's kubectl of the default release (the suite's kubectl specs run it)."""
    v = cfg.versions()
    return artifacts.lab_build(v, "kubernetes", v.kube[0]).path("kubectl")


def network_plugin(kubeconfig: Path) -> str:
    """Which network plugin the cluster runs, from kube-system's DaemonSets."""
    done = subprocess.run(
        [str(kubectl_path()), f"--kubeconfig={kubeconfig}", "get", "daemonsets",
         "--all-namespaces", "-o", "name"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"conformance: the lab cluster does not answer: {done.stderr.strip()}")
    names = {line.rpartition("/")[2] for line in done.stdout.split()}
    found = [plugin for plugin, ds in NETWORK_DAEMONSETS.items() if ds in names]
    return ",".join(found) or "unknown"


def ginkgo_argv(e2e: artifacts.Build, phase: Phase, kubeconfig: Path, out: Path) -> list[str]:
    argv = [
        str(e2e.path("ginkgo")),
        "run",
        f"--procs={phase.procs}",
        f"--label-filter={phase.labels}",
        "--no-color",
        "--timeout=3h",
        f"--flake-attempts={FLAKE_ATTEMPTS}",
        f"--output-dir={out}",
        f"--junit-report=junit-{phase.name}.xml",
        f"--json-report=report-{phase.name}.json",
    ]
    if phase.focus:
        argv.append(f"--focus={phase.focus}")
    if SKIPS:
        argv.append(f"--skip={'|'.join(SKIPS)}")
    return [
        *argv,
        str(e2e.path("e2e.test")),
        "--",
        f"--kubeconfig={kubeconfig}",
        "--provider=skeleton",
        f"--non-blocking-taints={','.join(NON_BLOCKING_TAINTS)}",
        f"--kubectl-path={kubectl_path()}",
        "--disable-log-dump",
        "--dump-logs-on-failure=true",
        f"--e2e-output-dir={out}",
    ]


@dataclass
class Counts:
    run: int = 0
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    failures: tuple[str, ...] = ()
    listed: tuple[str, ...] = ()  # the specs SKIPS left out that the phase selects


def selects(phase: Phase, name: str) -> bool:
    """Whether the phase's label filter and focus select the spec of a JUnit
    test case name (ginkgo ends it with the spec's labels, "[sig-node,
    Conformance]"). The filters here are conjunctions of labels, some negated."""
    if "||" in phase.labels or "(" in phase.labels:
        raise ValueError(f"conformance: only conjunctions of labels are read: {phase.labels!r}")
    labels = {label.strip() for label in name.rpartition("[")[2].rstrip("]").split(",")}
    for term in phase.labels.split("&&"):
        label = term.strip().removeprefix("!").strip()
        if (label in labels) == term.strip().startswith("!"):
            return False
    return not phase.focus or re.search(phase.focus, name) is not None


def junit_counts(report: Path, phase: Phase | None = None) -> Counts:
    """Specs run, passed, failed and skipped in a ginkgo JUnit report (the
    suite's setup and teardown nodes are not specs and are left out, and so
    are the specs the run did not select). Skipped: by the suite itself (its
    message gives the reason) and, given the phase, by SKIPS (ginkgo reports
    those as unselected: the phase's filters tell them apart)."""
    counts = Counts()
    failures = []
    listed = []
    for case in ET.parse(report).getroot().iter("testcase"):
        name = case.get("name", "")
        failed = case.find("failure") is not None or case.find("error") is not None
        suite_node = name.startswith(("[SynchronizedBeforeSuite]", "[SynchronizedAfterSuite]",
                                      "[BeforeSuite]", "[AfterSuite]", "[ReportAfterSuite]",
                                      "[ReportBeforeSuite]", "[DeferCleanup (Suite)]"))  # fmt: skip
        skipped = case.find("skipped")
        if skipped is not None and not suite_node:
            # "skipped" alone: not selected (focus, labels); any other message:
            # selected, and skipped by the suite itself (with its reason)
            if skipped.get("message", "") != "skipped":
                counts.skipped += 1
            elif phase and any(re.search(p, name) for p in SKIPS) and selects(phase, name):
                counts.skipped += 1
                listed.append(name)
            continue
        if failed:
            counts.failed += 1
            failures.append(name)
        if not suite_node:
            counts.run += 1
            counts.passed += not failed
    counts.failures = tuple(failures)
    counts.listed = tuple(listed)
    return counts


def flaky_specs(report: Path) -> list[str]:
    """Specs of a ginkgo JSON report that passed only after a failed attempt."""
    found = []
    for suite in json.loads(report.read_text()):
        for spec in suite.get("SpecReports") or []:
            if spec.get("State") == "passed" and spec.get("NumAttempts", 0) > 1:
                texts = [*(spec.get("ContainerHierarchyTexts") or []), spec.get("LeafNodeText", "")]
                found.append(" ".join(t for t in texts if t))
    return found


# ------------------------------------------------------------ stand-in checks


def image_volume_stand_in(kubeconfig: Path) -> str:
    """The ImageVolume spec's pod as the spec makes it (busybox, the kitten
    image as a volume at /volume, pull policy Always, a privileged namespace),
    its data.json naming kitten.jpg as the spec wants, and its etc/os-release
    the kitten image's own (read from the image the lab built) instead of
    Alpine's. Returns what went wrong, or "" when it passed."""
    tags = {_repo(r): r.rpartition(":")[2] for r in listed_images(e2e_build(cfg.versions()))}
    kitten, busybox = (
        f"e2e-test-images/{name}:{tags[f'e2e-test-images/{name}']}"
        for name in ("kitten", "busybox")
    )
    namespace = "kubeforge-image-volume"
    kubectl = [str(kubectl_path()), f"--kubeconfig={kubeconfig}"]
    manifest = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {"apiVersion": "v1", "kind": "Namespace",
             "metadata": {"name": namespace,
                          "labels": {"pod-security.kubernetes.io/enforce": "privileged"}}},
            {"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": "test-pod", "namespace": namespace},
             "spec": {
                 "containers": [{
                     "name": "test-container", "image": f"{cfg.registry_addr()}/{busybox}",
                     "command": ["/bin/sh", "-c", "while true; do echo test; sleep 1; done"],
                     "volumeMounts": [{"name": "volume", "mountPath": "/volume"}],
                 }],
                 "volumes": [{"name": "volume", "image": {
                     "reference": f"{cfg.registry_addr()}/{kitten}", "pullPolicy": "Always"}}],
             }},
        ],
    }  # fmt: skip

    def kube(*args: str, stdin: str = "") -> str:
        return subprocess.run(
            [*kubectl, *args], input=stdin, capture_output=True, text=True, check=True
        ).stdout

    try:
        kube("delete", "namespace", namespace, "--ignore-not-found", "--timeout=120s")
        kube("apply", "-f", "-", stdin=json.dumps(manifest))
        kube("wait", "-n", namespace, "--for=condition=Ready", "pod/test-pod", "--timeout=300s")
        cat = ("exec", "-n", namespace, "test-pod", "-c", "test-container", "--", "/bin/cat")
        data = kube(*cat, "/volume/data.json")
        os_release = kube(*cat, "/volume/etc/os-release")
    except subprocess.CalledProcessError as e:
        return f"`kubectl {' '.join(e.cmd[2:4])}` failed: {(e.stderr or '').strip()}"
    finally:
        subprocess.run(
            [*kubectl, "delete", "namespace", namespace, "--ignore-not-found", "--wait=false"],
            capture_output=True, check=False,
        )  # fmt: skip
    image = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "/bin/cat", f"{cfg.REGISTRY_PUSH}/{kitten}",
         "/etc/os-release"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if image.returncode != 0 or not image.stdout.strip():
        return f"the lab's {kitten} image gave no etc/os-release: {image.stderr.strip()}"
    problems = []
    if "kitten.jpg" not in data:
        problems.append(f"/volume/data.json does not name kitten.jpg: {data[:200]!r}")
    if os_release != image.stdout:
        problems.append(
            f"/volume/etc/os-release is not {kitten}'s: {os_release[:200]!r} "
            f"against {image.stdout[:200]!r}"
        )
    return "; ".join(problems)


# skipped spec (a SKIPS pattern) -> the lab's check of what the cluster does in it
STAND_INS: dict[str, Callable[[Path], str]] = {IMAGE_VOLUME: image_volume_stand_in}


def run(quick: bool, procs: int, kubeconfig: Path) -> int:
    v = cfg.versions()
    e2e = e2e_build(v)
    if not (e2e.outdir() / ".kubeforge-build").exists():
        raise SystemExit("conformance: the suite is not built: run `conformance.py build` first")
    if not kubeconfig.is_file():
        raise SystemExit(
            f"conformance: no kubeconfig at {kubeconfig}: deploy the lab cluster first"
        )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    repos = ARTIFACTS / "repo-list.yaml"
    repos.write_text(repo_list())
    env = {**os.environ, "KUBE_TEST_REPO_LIST": str(repos)}
    summary: dict[str, object] = {
        "kubernetes": v.kube[0],
        "network_plugin": network_plugin(kubeconfig),
        "quick": quick,
        "phases": {},
    }
    total = Counts()
    failures: list[str] = []
    flakes: list[str] = []
    listed: list[str] = []
    start = time.monotonic()
    for phase in phases(quick, procs):
        out = ARTIFACTS / phase.name
        out.mkdir(parents=True, exist_ok=True)
        for old in out.glob("*"):
            if old.is_file():
                old.unlink()
        print(f"conformance: {phase.name}: {phase.labels!r}, focus {phase.focus!r}", flush=True)
        began = time.monotonic()
        done = subprocess.run(ginkgo_argv(e2e, phase, kubeconfig, out), env=env, check=False)
        seconds = time.monotonic() - began
        report = out / f"junit-{phase.name}.xml"
        if not report.is_file():
            raise SystemExit(
                f"conformance: {phase.name}: ginkgo exited {done.returncode} without a JUnit report"
            )
        c = junit_counts(report, phase)
        listed += c.listed
        flaky = flaky_specs(out / f"report-{phase.name}.json")
        if done.returncode != 0 and not c.failed:
            c.failed, c.failures = 1, (f"ginkgo exited {done.returncode}",)
        summary["phases"][phase.name] = {  # type: ignore[index]
            "run": c.run, "passed": c.passed, "failed": c.failed, "skipped": c.skipped,
            "seconds": round(seconds), "failures": list(c.failures), "flaky": flaky,
            "report": str(report),
        }  # fmt: skip
        flakes += flaky
        total.run += c.run
        total.passed += c.passed
        total.failed += c.failed
        total.skipped += c.skipped
        failures += c.failures
    # the stand-in checks of the skipped specs the phases selected
    stand_ins: dict[str, str] = {}
    for pattern, check in STAND_INS.items():
        if any(re.search(pattern, name) for name in listed):
            print(f"conformance: the lab's stand-in check for the skipped {pattern!r}", flush=True)
            problem = check(kubeconfig)
            stand_ins[pattern] = f"failed: {problem}" if problem else "passed"
            if problem:
                failures.append(f"stand-in check for {pattern}: {problem}")
    summary.update(
        run=total.run,
        passed=total.passed,
        failed=total.failed,
        skipped=total.skipped,
        seconds=round(time.monotonic() - start),
        failures=failures,
        flaky=flakes,
        skip_list=SKIPS,
        skipped_specs=listed,
        stand_ins=stand_ins,
    )
    (ARTIFACTS / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    text = summary_text(summary)
    (ARTIFACTS / "summary.txt").write_text(text)
    print(text, end="")
    return 1 if failures or not total.run else 0


def summary_text(summary: dict[str, object]) -> str:
    lines = [
        f"conformance of Kubernetes {summary['kubernetes']} with {summary['network_plugin']}"
        f"{' (quick subset)' if summary['quick'] else ''}: {summary['run']} specs run, "
        f"{summary['passed']} passed, {summary['failed']} failed, {summary['skipped']} skipped, "
        f"in {summary['seconds']} s"
    ]
    for name, p in summary["phases"].items():  # type: ignore[attr-defined]
        lines.append(
            f"  {name}: {p['run']} run, {p['passed']} passed, {p['failed']} failed, "
            f"{p['skipped']} skipped, {p['seconds']} s"
        )
    lines += [f"  FAILED {name}" for name in summary["failures"]]  # type: ignore[attr-defined]
    lines += [f"  flaky (passed on attempt 2) {name}" for name in summary["flaky"]]  # type: ignore[attr-defined]
    skips = summary["skip_list"]
    lines += [f"  skip list: {pattern}: {why}" for pattern, why in skips.items()]  # type: ignore[attr-defined]
    lines += [f"  skipped (skip list) {name}" for name in summary.get("skipped_specs", [])]  # type: ignore[attr-defined]
    stand_ins = summary.get("stand_ins", {})
    lines += [f"  stand-in check for {p}: {r}" for p, r in stand_ins.items()]  # type: ignore[attr-defined]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="build e2e.test and the conformance images")
    p_run = sub.add_parser("run", help="run the conformance specs against the lab cluster")
    p_run.add_argument("--quick", action="store_true", help="the QUICK_FOCUS subset only")
    p_run.add_argument("--procs", type=int, default=4, help="parallel ginkgo processes")
    p_run.add_argument(
        "--kubeconfig", type=Path, default=cfg.LAB_INVENTORY / "artifacts" / "admin.conf"
    )
    args = parser.parse_args(argv)
    if args.command == "build":
        report = artifacts.Report()
        build(report)
        return 0
    if args.procs < 1:
        parser.error("--procs must be 1 or more")
    return run(args.quick, args.procs, args.kubeconfig)


if __name__ == "__main__":
    sys.exit(main())
