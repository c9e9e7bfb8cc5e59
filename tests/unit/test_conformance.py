"""tests/lab/conformance.py without a lab: images, phases, ginkgo's command, reports."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from pathlib import Path

import artifacts
import conformance
import images
import labconfig as cfg
import pytest
import yaml

JUNIT = """<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="6" disabled="3" errors="0" failures="1" time="10">
  <testsuite name="Kubernetes e2e suite" tests="6" failures="1">
    <testcase name="[SynchronizedBeforeSuite]" status="passed" time="1"></testcase>
    <testcase name="[It] [sig-network] DNS should provide DNS for services [Conformance]"
              status="passed" time="3"></testcase>
    <testcase name="[It] [sig-node] Pods should be updated [Conformance]" status="failed" time="2">
      <failure message="timed out" type="failed">timed out</failure>
    </testcase>
    <testcase name="[It] [sig-apps] Job should run a job [Conformance]" status="skipped" time="0">
      <skipped message="skipped - the cluster has no windows nodes"></skipped>
    </testcase>
    <testcase name="[It] [sig-apps] not selected" status="skipped" time="0">
      <skipped message="skipped"></skipped>
    </testcase>
    <testcase name="[SynchronizedAfterSuite]" status="passed" time="1"></testcase>
  </testsuite>
</testsuites>
"""


def test_junit_counts_leave_out_suite_nodes_and_unselected_specs(tmp_path: Path) -> None:
    report = tmp_path / "junit.xml"
    report.write_text(JUNIT)
    c = conformance.junit_counts(report)
    assert (c.run, c.passed, c.failed, c.skipped) == (2, 1, 1, 1)
    assert c.failures == ("[It] [sig-node] Pods should be updated [Conformance]",)


def test_a_failed_suite_node_counts_as_a_failure(tmp_path: Path) -> None:
    report = tmp_path / "junit.xml"
    report.write_text(
        JUNIT.replace(
            '<testcase name="[SynchronizedBeforeSuite]" status="passed" time="1"></testcase>',
            '<testcase name="[SynchronizedBeforeSuite]" status="failed" time="1">'
            '<failure message="nodes not ready">x</failure></testcase>',
        )
    )
    c = conformance.junit_counts(report)
    assert c.failed == 2
    assert c.failures[0] == "[SynchronizedBeforeSuite]"


def test_the_full_run_is_every_conformance_spec_parallel_then_serial() -> None:
    parallel, serial = conformance.phases(quick=False, procs=4)
    assert (parallel.labels, parallel.procs, parallel.focus) == ("Conformance && !Serial", 4, "")
    assert (serial.labels, serial.procs, serial.focus) == ("Conformance && Serial", 1, "")


def test_the_quick_run_is_a_focused_parallel_subset_without_serial_or_slow_specs() -> None:
    (quick,) = conformance.phases(quick=True, procs=3)
    assert quick.labels == "Conformance && !Serial && !Slow && !Disruptive"
    assert quick.procs == 3
    assert r"\[sig-network\]" in quick.focus and "Secrets" in quick.focus


def test_ginkgo_runs_the_built_suite_against_the_kubeconfig(tmp_path: Path) -> None:
    e2e = conformance.e2e_build(cfg.versions())
    phase = conformance.Phase("quick", "Conformance", "DNS", 2)
    argv = conformance.ginkgo_argv(e2e, phase, tmp_path / "admin.conf", tmp_path)
    sep = argv.index("--")
    ginkgo, suite = argv[:sep], argv[sep + 1 :]
    assert ginkgo[0] == str(e2e.path("ginkgo")) and ginkgo[1] == "run"
    assert ginkgo[-1] == str(e2e.path("e2e.test"))
    for flag in ("--procs=2", "--label-filter=Conformance", "--focus=DNS"):
        assert flag in ginkgo
    assert "--junit-report=junit-quick.xml" in ginkgo
    assert f"--kubeconfig={tmp_path / 'admin.conf'}" in suite
    assert any(a.startswith("--non-blocking-taints=") for a in suite)
    assert any(a.startswith("--kubectl-path=") and a.endswith("/kubectl") for a in suite)


def test_the_skip_list_reaches_ginkgo_and_every_entry_has_a_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for pattern, why in conformance.SKIPS.items():
        assert pattern and why.strip(), pattern
    monkeypatch.setattr(conformance, "SKIPS", {"a spec": "why", "another": "why not"})
    e2e = conformance.e2e_build(cfg.versions())
    argv = conformance.ginkgo_argv(e2e, conformance.phases(True, 1)[0], tmp_path, tmp_path)
    assert "--skip=a spec|another" in argv


IMAGE_VOLUME_CASE = (
    "[It] [sig-node] ImageVolume should succeed with pod and pull policy of Always [LinuxOnly] "
    "[MinimumKubeletVersion:1.35] [Conformance] [sig-node, Conformance]"
)


def test_specs_the_skip_list_leaves_out_count_as_skipped_in_the_phase_that_selects_them(
    tmp_path: Path,
) -> None:
    """ginkgo reports a spec --skip left out as it reports an unselected one:
    the phase's label filter and focus tell them apart."""
    unselected = '<skipped message="skipped"></skipped></testcase>'
    report = tmp_path / "junit.xml"
    report.write_text(
        JUNIT.replace(
            '<testcase name="[SynchronizedAfterSuite]"',
            f'<testcase name="{IMAGE_VOLUME_CASE}" status="skipped" time="0">{unselected}\n'
            '<testcase name="[SynchronizedAfterSuite]"',
        )
    )
    parallel, serial = conformance.phases(quick=False, procs=4)
    (quick,) = conformance.phases(quick=True, procs=4)
    c = conformance.junit_counts(report, parallel)
    assert (c.run, c.skipped, c.listed) == (2, 2, (IMAGE_VOLUME_CASE,))
    for phase in (serial, quick, None):
        c = conformance.junit_counts(report, phase)
        assert (c.run, c.skipped, c.listed) == (2, 1, ())


def test_a_phase_selects_by_its_labels_and_focus() -> None:
    parallel, serial = conformance.phases(quick=False, procs=4)
    (quick,) = conformance.phases(quick=True, procs=4)
    serial_case = (
        "[It] [sig-apps] Daemon set should rollback [Serial] [Conformance] "
        "[sig-apps, Serial, Conformance]"
    )
    dns_case = (
        "[It] [sig-network] DNS should provide DNS for services [Conformance] "
        "[sig-network, Conformance]"
    )
    assert conformance.selects(parallel, IMAGE_VOLUME_CASE)
    assert not conformance.selects(serial, IMAGE_VOLUME_CASE)
    assert not conformance.selects(quick, IMAGE_VOLUME_CASE)  # not in the focus
    assert conformance.selects(serial, serial_case)
    assert not conformance.selects(parallel, serial_case)
    assert conformance.selects(quick, dns_case)
    with pytest.raises(ValueError, match="conjunctions"):
        conformance.selects(conformance.Phase("x", "Conformance || Slow", "", 1), dns_case)


def test_every_skipped_spec_with_a_stand_in_check_is_on_the_skip_list() -> None:
    assert set(conformance.STAND_INS) <= set(conformance.SKIPS)
    assert conformance.STAND_INS[conformance.IMAGE_VOLUME] is conformance.image_volume_stand_in
    assert re.search(conformance.IMAGE_VOLUME, IMAGE_VOLUME_CASE)


def test_the_repo_list_points_the_suite_at_the_lab_registry() -> None:
    repos = yaml.safe_load(conformance.repo_list())
    lab = cfg.registry_addr()
    assert repos == {
        "promoterE2eRegistry": f"{lab}/e2e-test-images",
        "gcRegistry": lab,
        "gcEtcdRegistry": lab,
    }


def test_the_suite_is_built_at_the_default_release_from_the_shared_wrapper_module() -> None:
    v = cfg.versions()
    e2e = conformance.e2e_build(v)
    assert (e2e.component, e2e.version) == ("e2e", v.kube[0])
    assert e2e.script.is_file()
    assert artifacts.KUBERNETES_MODULE_LIB in e2e.sources
    kube = next(b for b in artifacts.builds(v) if b.component == "kubernetes")
    assert artifacts.KUBERNETES_MODULE_LIB in kube.sources
    for script in (e2e.script, kube.script):
        assert "lib/kubernetes-module.sh" in script.read_text()


def _fake_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A module tree with the test images' files, and builds that need no Go."""
    images = tmp_path / "test" / "images"
    for site in ("kitten", "nautilus"):
        (images / site / "html").mkdir(parents=True)
        (images / site / "html" / f"{site}.jpg").write_bytes(site.encode())
        (images / site / "html" / "data.json").write_text("{}")
    (images / "agnhost" / "porter").mkdir(parents=True)
    for name in ("localhost.crt", "localhost.key"):
        (images / "agnhost" / "porter" / name).write_text(name)
    monkeypatch.setattr(conformance, "module_dir", lambda v: tmp_path)
    # A cache of its own (a new machine has built nothing), where a fake build
    # writes each of its binaries.
    monkeypatch.setenv("KUBEFORGE_CACHE", str(tmp_path / "cache"))

    def fake_build(build: artifacts.Build, report: artifacts.Report) -> None:
        for binary in build.binaries:
            build.path(binary).parent.mkdir(parents=True, exist_ok=True)
            build.path(binary).write_text(f"{build.component} {build.version} {binary}")

    monkeypatch.setattr(artifacts, "ensure_build", fake_build)
    # conformance.build() builds these two before it asks for the images.
    v = cfg.versions()
    for build in (conformance.e2e_build(v), artifacts.lab_build(v, "coredns")):
        fake_build(build, artifacts.Report())


def test_images_are_built_for_the_listed_references_bases_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_sources(tmp_path, monkeypatch)
    refs = [
        "registry.k8s.io/e2e-test-images/kitten:1.8",
        "registry.k8s.io/e2e-test-images/agnhost:2.66.1",
        "registry.k8s.io/e2e-test-images/agnhost:2.55",
        "registry.k8s.io/pause:3.10.2",
        "registry.k8s.io/etcd:3.7.0-0",
        "registry.k8s.io/e2e-test-images/perl:5.26",
        "invalid.registry.k8s.io/invalid/alpine:3.1",
    ]
    built, missing = conformance.conformance_images(cfg.versions(), refs, artifacts.Report())
    tags = [i.tag for i in built]
    assert missing == [
        "registry.k8s.io/e2e-test-images/perl:5.26",
        "invalid.registry.k8s.io/invalid/alpine:3.1",
    ]
    assert set(tags) == {
        "e2e-test-images/kitten:1.8",
        "e2e-test-images/agnhost:2.66.1",
        "e2e-test-images/agnhost:2.55",
        "pause:3.10.2",
        "etcd:3.7.0-0",
    }
    assert tags[-1] == "e2e-test-images/kitten:1.8"
    kitten = built[-1]
    assert all(i.push for i in built)
    base = dict(kitten.build_args)
    agnhost = next(i for i in built if i.tag == "e2e-test-images/agnhost:2.66.1")
    assert base["BASEIMAGE"] == f"{cfg.REGISTRY_PUSH}/e2e-test-images/agnhost:2.66.1"
    assert base["BASE"] == agnhost.inputs()
    assert set(kitten.files) == {"html/kitten.jpg", "html/data.json"}
    pause = next(i for i in built if i.tag == "pause:3.10.2")
    assert pause.files["pause"].parts[-3:] == ("pause", "3.10.2", "pause")
    etcd = next(i for i in built if i.tag == "etcd:3.7.0-0")
    assert etcd.files["etcd"].parts[-3:] == ("etcd", "3.7.0", "etcd")


def test_every_recipe_has_its_dockerfile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_sources(tmp_path, monkeypatch)
    recipes = conformance.image_recipes(cfg.versions(), artifacts.Report())
    for repo, recipe in recipes.items():
        assert (images.IMAGES / recipe.directory / "Dockerfile").is_file(), repo
        if recipe.base:
            assert f"e2e-test-images/{recipe.base}" in recipes, repo


def test_an_image_without_build_args_keeps_the_inputs_it_had() -> None:
    """Build arguments came later: the images built before must not rebuild."""
    image = images.Image("busybox", "library/busybox:1", {})
    with_args = images.Image("busybox", "library/busybox:1", {}, True, (("A", "b"),))
    assert image.inputs() != with_args.inputs()
    digest = hashlib.sha256()
    for path in sorted((images.IMAGES / "busybox").rglob("*")):
        if path.is_file():
            digest.update(path.name.encode() + path.read_bytes())
    assert image.inputs() == digest.hexdigest()[:24]


def test_the_summary_names_the_failures_and_the_skip_list() -> None:
    text = conformance.summary_text(
        {
            "kubernetes": "1.37.2",
            "network_plugin": "flannel",
            "quick": True,
            "run": 2,
            "passed": 1,
            "failed": 1,
            "skipped": 0,
            "seconds": 60,
            "phases": {"quick": {"run": 2, "passed": 1, "failed": 1, "skipped": 0, "seconds": 60}},
            "failures": ["[It] a spec"],
            "flaky": ["Pods should start"],
            "skip_list": {"x": "the lab has no y"},
            "skipped_specs": ["[It] x spec"],
            "stand_ins": {"x": "passed"},
        }
    )
    assert text.startswith("conformance of Kubernetes 1.37.2 with flannel (quick subset): 2 specs")
    assert "  FAILED [It] a spec\n" in text
    assert "skip list: x: the lab has no y" in text
    assert "  skipped (skip list) [It] x spec\n" in text
    assert "  stand-in check for x: passed\n" in text
    assert "  flaky (passed on attempt 2) Pods should start\n" in text


def test_a_spec_that_passed_on_its_second_attempt_is_reported_flaky(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    specs = [
        {"LeafNodeType": "It", "State": "passed", "NumAttempts": 2,
         "ContainerHierarchyTexts": ["[sig-storage] Secrets"], "LeafNodeText": "mount twice"},
        {"LeafNodeType": "It", "State": "passed", "NumAttempts": 1,
         "ContainerHierarchyTexts": ["[sig-node] Pods"], "LeafNodeText": "run"},
        {"LeafNodeType": "It", "State": "failed", "NumAttempts": 2,
         "ContainerHierarchyTexts": ["[sig-node] Pods"], "LeafNodeText": "fail twice"},
        {"LeafNodeType": "SynchronizedBeforeSuite", "State": "passed", "NumAttempts": 0},
    ]  # fmt: skip
    report.write_text(json.dumps([{"SpecReports": specs}]))
    assert conformance.flaky_specs(report) == ["[sig-storage] Secrets mount twice"]


def test_failed_specs_get_one_more_attempt(tmp_path: Path) -> None:
    e2e = conformance.e2e_build(cfg.versions())
    argv = conformance.ginkgo_argv(e2e, conformance.phases(True, 1)[0], tmp_path, tmp_path)
    assert "--flake-attempts=2" in argv[: argv.index("--")]


def test_busybox_is_built_from_the_pinned_upstream_source() -> None:
    """The busybox image's Dockerfile takes exactly the pinned build arguments:
    a name the Dockerfile does not declare would reach it empty."""
    pinned = dict(conformance.BUSYBOX_SOURCE)
    dockerfile = (images.IMAGES / "e2e-busybox" / "Dockerfile").read_text()
    declared = {line.split()[1] for line in dockerfile.splitlines() if line.startswith("ARG ")}
    assert declared == set(pinned)
    version = pinned["BUSYBOX_VERSION"]
    assert pinned["BUSYBOX_URL"].endswith(f"/busybox_{version}.orig.tar.bz2")
    assert len(pinned["BUSYBOX_SHA256"]) == 64
    int(pinned["BUSYBOX_SHA256"], 16)
    assert "sha256sum -c" in dockerfile


def test_a_second_build_waits_for_the_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """make test's side build and the one before the quick specs: one at a time."""
    monkeypatch.setattr(cfg, "cache_dir", lambda: tmp_path)
    held = threading.Event()
    order: list[str] = []

    def first() -> None:
        with conformance.build_lock():
            held.set()
            time.sleep(0.5)
            order.append("first done")

    thread = threading.Thread(target=first)
    thread.start()
    assert held.wait(5)
    with conformance.build_lock():
        order.append("second in")
    thread.join()
    assert order == ["first done", "second in"]
    assert "waiting for the build another process runs" in capsys.readouterr().out
    with conformance.build_lock():  # released by both: taken at once, silently
        pass
    assert capsys.readouterr().out == ""
