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
import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
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
# deploys: regular expression -> why. docs/testing.md shows this list.
SKIPS: dict[str, str] = {}
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


def build(report: artifacts.Report) -> list[str]:
    """Build the suite and push its images; returns (and prints) the references
    not built."""
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


def junit_counts(report: Path) -> Counts:
    """Specs run, passed, failed and skipped in a ginkgo JUnit report (the
    suite's setup and teardown nodes are not specs and are left out, and so
    are the specs the run did not select)."""
    counts = Counts()
    failures = []
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
            continue
        if failed:
            counts.failed += 1
            failures.append(name)
        if not suite_node:
            counts.run += 1
            counts.passed += not failed
    counts.failures = tuple(failures)
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
        c = junit_counts(report)
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
    summary.update(
        run=total.run,
        passed=total.passed,
        failed=total.failed,
        skipped=total.skipped,
        seconds=round(time.monotonic() - start),
        failures=failures,
        flaky=flakes,
        skip_list=SKIPS,
    )
    (ARTIFACTS / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    text = summary_text(summary)
    (ARTIFACTS / "summary.txt").write_text(text)
    print(text, end="")
    return 1 if total.failed or not total.run else 0


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
