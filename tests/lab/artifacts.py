"""Source builds of the lab's binaries and the file mirror laid out like upstream.

Each build is cached under <cache>/artifacts/<component>/<version>, keyed also by
a hash of its builder script, so a second `make lab-up` reuses it. The mirror
tree (<cache>/mirror) holds the same paths as the upstream release sites, each
file with a `<file>.sha256` beside it; tarballs are written reproducibly. Source
archives (GitHub's /archive/<tag>.tar.gz) are made from the Go module's tree, and
the Gateway API's install YAML from the CRDs in its module, as its release does.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import labconfig as cfg
import yaml

BUILDERS = Path(__file__).resolve().parent / "builders"
# Sourced by the builders that compile from k8s.io/kubernetes: part of their key.
KUBERNETES_MODULE_LIB = BUILDERS / "lib" / "kubernetes-module.sh"
KUBE_BINARIES = (
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kube-proxy",
    "kubectl",
)
CALICO_MODULE = "github.com/projectcalico/calico"
CALICO_BINARIES = (
    "calico-node",
    "calico",  # the CNI plugin, also calico-ipam (it dispatches on argv[0])
    "install",  # the CNI installer of the calico/cni image
    "kube-controllers",
    "check-status",
    "wrapper",  # restarts kube-controllers when it exits 129 (a config change)
)
# The Go module proxy serves calico releases only as pseudo-versions of the tag's
# commit: calico release -> (github.com/projectcalico/calico, projectcalico/api).
CALICO_MODULE_VERSIONS = {
    "3.31.0": ("v0.0.0-20251021213802-b1f3c43f8437", "v0.0.0-20251022175904-f2ab03771208"),
}
GATEWAY_API_MODULE = "sigs.k8s.io/gateway-api"


@dataclass(frozen=True)
class Build:
    component: str
    version: str
    binaries: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()  # extra environment for the builder
    sources: tuple[Path, ...] = ()  # files of this repo the build compiles

    @property
    def script(self) -> Path:
        return BUILDERS / f"{self.component}.sh"

    def key(self) -> str:
        """Changes when the builder, its environment or its sources change."""
        digest = hashlib.sha256(self.script.read_bytes())
        digest.update(repr(self.env).encode())
        for path in self.sources:
            digest.update(path.read_bytes())
        return digest.hexdigest()[:16]

    def outdir(self) -> Path:
        return cfg.cache_dir() / "artifacts" / self.component / self.version

    def path(self, binary: str) -> Path:
        return self.outdir() / binary


@dataclass
class Report:
    """What a lab-up built and reused, with times, printed at the end."""

    lines: list[str] = field(default_factory=list)

    def add(self, what: str, action: str, seconds: float) -> None:
        line = f"{action:8} {what} ({seconds:.1f}s)"
        self.lines.append(line)
        print(f"lab: {line}", flush=True)


def calico_module_version(release: str) -> str:
    """The pseudo-version of github.com/projectcalico/calico for a release."""
    return _calico_modules(release)[0]


def _calico_modules(release: str) -> tuple[str, str]:
    try:
        return CALICO_MODULE_VERSIONS[release]
    except KeyError:
        raise SystemExit(
            f"lab: no Go module versions known for calico {release}: add them to "
            "artifacts.CALICO_MODULE_VERSIONS (docs/lab.md says how to find them)"
        ) from None


def builds(v: cfg.Versions) -> list[Build]:
    kube = [Build("kubernetes", k, KUBE_BINARIES, sources=(KUBERNETES_MODULE_LIB,)) for k in v.kube]
    calico_module, calico_api = _calico_modules(v.calico)
    # pause.c and the client-go of the stand-in autoscaler come from the
    # default Kubernetes release.
    kube_source = (("KUBE_SOURCE_VERSION", f"v{v.kube[0]}"),)
    standin = tuple(sorted((BUILDERS.parent / "cpa-standin").glob("*.go")))
    return [
        *kube,
        Build("etcd", v.etcd, ("etcd", "etcdctl", "etcdutl")),
        Build("containerd", v.containerd, ("containerd", "containerd-shim-runc-v2", "ctr")),
        Build("runc", v.runc, ("runc",)),
        Build("crictl", v.crictl, ("crictl",)),
        Build("cni-plugins", v.cni, ("bridge", "host-local", "loopback", "portmap")),
        Build("helm", v.helm, ("helm",)),
        Build("pause", v.pause, ("pause",), env=kube_source),
        Build("coredns", v.coredns, ("coredns",)),
        Build("flannel", v.flannel, ("flanneld",)),
        Build("flannel-cni", v.flannel_cni, ("flannel",)),
        Build(
            "calico",
            v.calico,
            CALICO_BINARIES,
            env=(
                ("CALICO_MODULE_VERSION", calico_module),
                ("CALICO_API_MODULE_VERSION", calico_api),
            ),
        ),
        Build(
            "cpa",
            v.dns_autoscaler,
            ("cluster-proportional-autoscaler",),
            env=kube_source,
            sources=standin,
        ),
        Build("metrics-server", v.metrics_server, ("metrics-server",)),
        Build("local-path-provisioner", v.local_path_provisioner, ("local-path-provisioner",)),
        Build("traefik", v.traefik, ("traefik",)),
    ]


def lab_build(v: cfg.Versions, component: str, version: str | None = None) -> Build:
    """The lab's build of a component (of `version` when the lab builds several);
    a version the lab does not build gets the same builder, environment and
    sources (pause 3.10.2 and etcd 3.7.0 for the conformance images)."""
    same = [b for b in builds(v) if b.component == component]
    if not same:
        raise SystemExit(f"lab: no build of {component}")
    if version is None:
        return same[0]
    return next((b for b in same if b.version == version), None) or dataclasses.replace(
        same[0], version=version
    )


def go_env() -> dict[str, str]:
    cache = cfg.cache_dir()
    env = dict(os.environ)
    env.update(
        GOCACHE=str(cache / "go-build"),
        GOMODCACHE=str(cache / "go-mod"),
        GOFLAGS="-mod=mod",
        GOTOOLCHAIN="auto",
    )
    return env


def go_module(module: str, version: str) -> dict[str, str]:
    """`go mod download -json` of a module version, downloaded when missing."""
    done = subprocess.run(
        ["go", "mod", "download", "-json", f"{module}@{version}"],
        env=go_env(),
        cwd=cfg.cache_dir(),
        text=True,
        capture_output=True,
    )
    try:
        info = json.loads(done.stdout)
    except json.JSONDecodeError:
        info = {"Error": done.stderr.strip() or f"go mod download exited {done.returncode}"}
    if info.get("Error") or not info.get("Dir"):
        raise SystemExit(f"lab: go mod download {module}@{version}: {info.get('Error')}")
    return {k: str(v) for k, v in info.items() if isinstance(v, str)}


def go_module_dir(module: str, version: str) -> Path:
    """A module's tree in the lab's Go module cache, downloaded when missing.

    The tree is read-only and, as in every module zip, has no file modes.
    """
    return Path(go_module(module, version)["Dir"])


def go_module_year(module: str, version: str) -> str:
    """The year of a module version's commit (the proxy's .info Time)."""
    info = json.loads(Path(go_module(module, version)["Info"]).read_text())
    return str(info["Time"])[:4]


def tree_files(root: Path) -> list[tuple[str, Path]]:
    """Every file under root as (path relative to root, file), sorted."""
    return sorted((p.relative_to(root).as_posix(), p) for p in root.rglob("*") if p.is_file())


def ensure_build(build: Build, report: Report) -> None:
    """Builds `build` unless its output is cached under the same key. The
    builder's output goes to <version>.log beside the output directory; its
    tail is printed when it fails."""
    stamp = build.outdir() / ".kubeforge-build"
    key = build.key()
    if stamp.exists() and stamp.read_text() == key:
        report.add(f"{build.component} {build.version}", "reused", 0.0)
        return
    start = time.monotonic()
    tmp = build.outdir().with_name(build.version + ".partial")
    log = build.outdir().with_name(build.version + ".log")
    shutil.rmtree(tmp, ignore_errors=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    print(f"lab: building {build.component} {build.version} (log: {log}) ...", flush=True)
    env = {**go_env(), **dict(build.env)}
    with log.open("w") as out:
        done = subprocess.run(
            [str(build.script), build.version, str(tmp)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    if done.returncode:
        tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-40:])
        raise SystemExit(
            f"{tail}lab: building {build.component} {build.version} failed "
            f"(exit {done.returncode}); the whole output: {log}"
        )
    missing = [b for b in build.binaries if not (tmp / b).is_file()]
    if missing:
        raise SystemExit(f"lab: {build.component} build produced no {', '.join(missing)}")
    (tmp / ".kubeforge-build").write_text(key)
    shutil.rmtree(build.outdir(), ignore_errors=True)
    tmp.rename(build.outdir())
    report.add(f"{build.component} {build.version}", "built", time.monotonic() - start)


# Builds that run at once. A Go build keeps both of the lab machine's cores busy
# only while it compiles; its links, module downloads and single-package tails
# leave one idle, which a second build fills.
BUILD_WORKERS = 2


def ensure_builds(builds_: Iterable[Build], report: Report) -> None:
    """ensure_build for each, BUILD_WORKERS at a time, in the given order (put
    the longest first); the first failure stops the rest from starting."""
    todo = list(builds_)
    with concurrent.futures.ThreadPoolExecutor(max_workers=BUILD_WORKERS) as pool:
        futures = [pool.submit(ensure_build, b, report) for b in todo]
        try:
            for future in futures:
                future.result()
        finally:
            for future in futures:
                future.cancel()


# ---------------------------------------------------------------- mirror layout

Member = tuple[str, Path]  # (name inside the archive, file on disk)


@dataclass(frozen=True)
class SourceTree:
    """A Go module's file tree, archived as GitHub archives a tag's tree."""

    module: str
    version: str  # the module version holding the release's tree
    prefix: str  # the archive's top directory, e.g. calico-3.31.0

    def members(self) -> tuple[Member, ...]:
        root = go_module_dir(self.module, self.version)
        return tuple((f"{self.prefix}/{name}", path) for name, path in tree_files(root))


@dataclass(frozen=True)
class InstallYaml:
    """A Gateway API release's <channel>-install.yaml, assembled from the
    module's config/crd/<channel>/gateway*.yaml as upstream's
    hack/build-install-yaml.sh assembles the release file: the licence
    boilerplate (YEAR: the year of the release), a channel title, then each CRD
    file in name order after a `---` and a comment naming it."""

    module: str
    version: str  # the module version, e.g. v1.4.0
    channel: str  # standard or experimental

    def members(self) -> tuple[Member, ...]:
        return install_yaml_members(go_module_dir(self.module, self.version), self.channel)

    def render(self, members: Iterable[Member]) -> bytes:
        year = go_module_year(self.module, self.version)
        data = assemble_install_yaml(members, self.channel, year)
        check_crds(data.decode(), self.version, self.channel)
        return data


BOILERPLATE = "hack/boilerplate/boilerplate.sh.txt"


def install_yaml_members(root: Path, channel: str) -> tuple[Member, ...]:
    """The boilerplate, then the channel's CRD files in name order."""
    crds = sorted(root.glob(f"config/crd/{channel}/gateway*.yaml"))
    if not crds:
        raise SystemExit(f"lab: no CRDs in {root}/config/crd/{channel}")
    return (
        (BOILERPLATE, root / BOILERPLATE),
        *((f"config/crd/{channel}/{p.name}", p) for p in crds),
    )


def assemble_install_yaml(members: Iterable[Member], channel: str, year: str) -> bytes:
    out = []
    for name, path in members:
        text = path.read_text()
        if name == BOILERPLATE:
            out.append(text.replace("YEAR", year))
            out.append(f"#\n# Gateway API {channel.capitalize()} channel install\n#\n")
        else:
            out.append(f"---\n#\n# {name}\n#\n{text}")
    return "".join(out).encode()


def check_crds(text: str, bundle_version: str, channel: str) -> list[str]:
    """The CRD names of an install YAML; exits unless every document (empty ones
    aside, which kubectl skips too) is a CRD of this bundle version and channel
    with exactly one storage version."""
    names = []
    for doc in yaml.safe_load_all(text):
        if doc is None:
            continue
        meta, spec = doc.get("metadata") or {}, doc.get("spec") or {}
        annotations = meta.get("annotations") or {}
        problems = [
            f"{key} is {value!r}"
            for key, value, want in (
                ("apiVersion", doc.get("apiVersion"), "apiextensions.k8s.io/v1"),
                ("kind", doc.get("kind"), "CustomResourceDefinition"),
                (
                    "bundle-version",
                    annotations.get("gateway.networking.k8s.io/bundle-version"),
                    bundle_version,
                ),
                ("channel", annotations.get("gateway.networking.k8s.io/channel"), channel),
            )
            if value != want
        ]
        plural = (spec.get("names") or {}).get("plural")
        if meta.get("name") != f"{plural}.{spec.get('group')}":
            problems.append("its name is not <plural>.<group>")
        if [v.get("storage") for v in spec.get("versions") or []].count(True) != 1:
            problems.append("it has not exactly one storage version")
        if problems:
            what = f"lab: {meta.get('name')} is not a {channel} CRD"
            raise SystemExit(f"{what}: {'; '.join(problems)}")
        names.append(str(meta["name"]))
    return names


@dataclass(frozen=True)
class MirrorFile:
    """One file of the mirror: a plain copy of a binary, a tarball of several,
    the source archive of a module's tree, or a file assembled from a module."""

    path: str  # relative to the mirror root, e.g. dl.k8s.io/release/v1.37.2/...
    source: Path | None = None
    members: tuple[Member, ...] = ()
    # Checksum files upstream publishes under other names than <file>.sha256
    # (relative to the file's directory); the mirror carries those too.
    upstream_sums: tuple[str, ...] = ()
    tree: SourceTree | None = None  # resolved only when the mirror is written
    assembled: InstallYaml | None = None  # likewise


def _by_component(all_builds: Iterable[Build]) -> dict[tuple[str, str], Build]:
    return {(b.component, b.version): b for b in all_builds}


def mirror_files(v: cfg.Versions) -> list[MirrorFile]:
    """Every file of the mirror, at the upstream release-site path."""
    b = _by_component(builds(v))
    arch = cfg.ARCH
    files: list[MirrorFile] = []
    for kube in v.kube:
        build = b[("kubernetes", kube)]
        for binary in KUBE_BINARIES:
            files.append(
                MirrorFile(
                    f"dl.k8s.io/release/v{kube}/bin/linux/{arch}/{binary}",
                    source=build.path(binary),
                )
            )
    etcd = b[("etcd", v.etcd)]
    etcd_dir = f"etcd-v{v.etcd}-linux-{arch}"
    files.append(
        MirrorFile(
            f"github.com/etcd-io/etcd/releases/download/v{v.etcd}/{etcd_dir}.tar.gz",
            members=tuple((f"{etcd_dir}/{n}", etcd.path(n)) for n in etcd.binaries),
            upstream_sums=("SHA256SUMS",),
        )
    )
    ctd = b[("containerd", v.containerd)]
    files.append(
        MirrorFile(
            f"github.com/containerd/containerd/releases/download/v{v.containerd}/"
            f"containerd-{v.containerd}-linux-{arch}.tar.gz",
            members=tuple((f"bin/{n}", ctd.path(n)) for n in ctd.binaries),
            upstream_sums=(f"containerd-{v.containerd}-linux-{arch}.tar.gz.sha256sum",),
        )
    )
    files.append(
        MirrorFile(
            f"github.com/opencontainers/runc/releases/download/v{v.runc}/runc.{arch}",
            source=b[("runc", v.runc)].path("runc"),
            upstream_sums=("runc.sha256sum",),
        )
    )
    files.append(
        MirrorFile(
            f"github.com/kubernetes-sigs/cri-tools/releases/download/v{v.crictl}/"
            f"crictl-v{v.crictl}-linux-{arch}.tar.gz",
            members=(("crictl", b[("crictl", v.crictl)].path("crictl")),),
        )
    )
    cni = b[("cni-plugins", v.cni)]
    files.append(
        MirrorFile(
            f"github.com/containernetworking/plugins/releases/download/v{v.cni}/"
            f"cni-plugins-linux-{arch}-v{v.cni}.tgz",
            members=tuple(
                (f"./{p.name}", p)
                for p in sorted(cni.outdir().iterdir())
                if not p.name.startswith(".")
            )
            if cni.outdir().is_dir()
            else (),
        )
    )
    files.append(
        MirrorFile(
            f"get.helm.sh/helm-v{v.helm}-linux-{arch}.tar.gz",
            members=((f"linux-{arch}/helm", b[("helm", v.helm)].path("helm")),),
            upstream_sums=(f"helm-v{v.helm}-linux-{arch}.tar.gz.sha256sum",),
        )
    )
    # calico's CRDs and manifests are applied from its source archive.
    files.append(
        MirrorFile(
            f"github.com/projectcalico/calico/archive/v{v.calico}.tar.gz",
            tree=SourceTree(CALICO_MODULE, calico_module_version(v.calico), f"calico-{v.calico}"),
        )
    )
    files.append(
        MirrorFile(
            f"github.com/kubernetes-sigs/gateway-api/releases/download/v{v.gateway_api}/"
            "standard-install.yaml",
            assembled=InstallYaml(GATEWAY_API_MODULE, f"v{v.gateway_api}", "standard"),
        )
    )
    return files


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _binary_mode(path: Path) -> int:
    return 0o755


def source_mode(path: Path) -> int:
    """0755 for scripts (they start with #!), 0644 for the rest.

    Module zips drop file modes, so a source archive made from a module's tree
    can only guess which files upstream marks executable.
    """
    with path.open("rb") as f:
        return 0o755 if f.read(2) == b"#!" else 0o644


def _write_tarball(
    dest: Path, members: Iterable[Member], mode: Callable[[Path], int] = _binary_mode
) -> None:
    """A gzip'd tar with fixed owners, modes and times: same inputs, same bytes.

    Directories are 0755, files get `mode(file)`: 0755 by default (binaries).
    """
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs: set[str] = set()
        for name, path in sorted(members):
            parts = name.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in dirs and d != ".":
                    dirs.add(d)
                    info = tarfile.TarInfo(d)
                    info.type = tarfile.DIRTYPE
                    info.mode = 0o755
                    tar.addfile(info)
            info = tarfile.TarInfo(name)
            info.size = path.stat().st_size
            info.mode = mode(path)
            with path.open("rb") as f:
                tar.addfile(info, f)
    # Level 1: the mirror's files are read once per deploy on the same machine;
    # level 9 (gzip's default) took most of a cold build's mirror step.
    with (
        dest.open("wb") as out,
        gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=1) as gz,
    ):
        gz.write(raw.getvalue())


def _inputs_digest(mf: MirrorFile, members: Iterable[Member]) -> str:
    digest = hashlib.sha256(repr(mf.upstream_sums).encode())
    sources: list[Member] = list(members)
    if mf.source is not None:
        sources.append(("", mf.source))
    for name, path in sorted(sources):
        digest.update(name.encode())
        digest.update(_sha256(path).encode())
        if mf.tree is not None:
            digest.update(oct(source_mode(path)).encode())
    return digest.hexdigest()


def ensure_mirror(v: cfg.Versions, report: Report) -> Path:
    root = cfg.cache_dir() / "mirror"
    stamps = cfg.cache_dir() / "mirror-inputs"  # kept out of the served tree
    start = time.monotonic()
    written = 0
    for mf in mirror_files(v):
        dest = root / mf.path
        stamp = stamps / (mf.path + ".inputs")
        if mf.tree is not None:
            members = mf.tree.members()
        elif mf.assembled is not None:
            members = mf.assembled.members()
        else:
            members = mf.members
        inputs = _inputs_digest(mf, members)
        if dest.exists() and stamp.exists() and stamp.read_text() == inputs:
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".tmp")
        if mf.source is not None:
            shutil.copyfile(mf.source, tmp)
            tmp.chmod(0o755)
        elif mf.tree is not None:
            _write_tarball(tmp, members, mode=source_mode)
        elif mf.assembled is not None:
            tmp.write_bytes(mf.assembled.render(members))
        else:
            _write_tarball(tmp, members)
        tmp.rename(dest)
        line = f"{_sha256(dest)}  {dest.name}\n"
        for name in (dest.name + ".sha256", *mf.upstream_sums):
            dest.with_name(name).write_text(line)
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(inputs)
        written += 1
    action = "built" if written else "reused"
    report.add(f"file mirror ({written} files written)", action, time.monotonic() - start)
    return root


# The builds that take minutes cold (docs/lab.md): started first.
LONG_BUILDS = ("kubernetes", "e2e", "calico", "traefik")


def ensure_all(v: cfg.Versions, report: Report, extra: Iterable[Build] = ()) -> None:
    """The lab's builds and `extra` ones (e2e.test), then the mirror."""
    every = [*builds(v), *extra]
    ensure_builds(sorted(every, key=lambda b: b.component not in LONG_BUILDS), report)
    ensure_mirror(v, report)
