"""What scripts/gpu-wheels and scripts/gpu-check share: the GPU machine's Python, kb's requirements, pip.

Standard library only (``packaging`` is taken where it is, else from pip's own copy), so it runs on
the GPU machine's python3 before anything is installed. ``python3 scripts/gpu_support.py deps [FOLDER]``
prints, as JSON, which of kb's requirements the running interpreter (plus FOLDER, the installed wheel
set, on PYTHONPATH) does not satisfy.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import sys
import tomllib
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MACHINE_LIST = REPO / "scripts" / "gpu-machine-packages.txt"
DEFAULT_WHEELS = REPO / ".gpu" / "wheels"
DEFAULT_OUT = REPO / ".gpu" / "out"
LOCK_NAME = "gpu-wheels.lock.json"
BUILD_FOLDER = "build"  # setuptools for building kb there: the build needs it, kb's process does not
# Wheels of packages the machine has, at versions that meet what kb and the carried wheels ask of them:
# installed only where the machine's own version does not (its versions are mostly unknown here).
FALLBACK_FOLDER = "fallback"

# The lent machine's interpreter (device KINDS.md): CPython 3.12.3 on x86-64 Linux, glibc new enough
# for manylinux_2_28; these are the tags pip accepts for it.
PYTHON_VERSION = "3.12"
ABI = "cp312"
PLATFORMS = (
    "manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_26_x86_64", "manylinux_2_24_x86_64",
    "manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux_2_5_x86_64", "manylinux1_x86_64",
)
MACHINE_TORCH = "torch"  # kb's requirement the machine always provides (CUDA build); never carried


def target_flags() -> list[str]:
    """pip options that pick wheels for the GPU machine's interpreter instead of the running one."""
    flags = ["--only-binary=:all:", "--python-version", PYTHON_VERSION, "--implementation", "cp", "--abi", ABI]
    for platform in PLATFORMS:
        flags += ["--platform", platform]
    return flags


def canonical(name: str) -> str:
    """PEP 503 name: lower case, runs of -_. as one dash."""
    return re.sub(r"[-_.]+", "-", name).lower()


def machine_packages(path: Path = MACHINE_LIST) -> dict[str, str | None]:
    """The machine's preinstalled packages: canonical name -> version where known, else None."""
    found: dict[str, str | None] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, _, version = line.partition("==")
        found[canonical(name)] = version.strip() or None
    return found


def _pyproject(repo: Path) -> dict:
    with open(repo / "pyproject.toml", "rb") as handle:
        return tomllib.load(handle)


def kb_requirements(repo: Path = REPO) -> list[str]:
    """kb's runtime requirements as pyproject.toml states them (torch included)."""
    return list(_pyproject(repo)["project"]["dependencies"])


def build_requirements(repo: Path = REPO) -> list[str]:
    """What building kb's wheel needs (pyproject's build-system.requires)."""
    return list(_pyproject(repo)["build-system"]["requires"])


def requirement_name(requirement: str) -> str:
    return canonical(re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement).group(1))


def pip_env(base: dict | None = None) -> dict:
    """``base`` (default: this process's environment) for a pip that reads no configuration but its
    command line: no PIP_* variables, no pip.conf."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if not k.startswith("PIP_")}
    env.update({"PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"})
    return env


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def stage_kb_source(dest: Path, repo: Path = REPO) -> Path:
    """Copy what building kb needs (pyproject, README, kb/) to ``dest``.

    Building from a copy keeps setuptools' build/ folder out of the tree, where modules deleted
    since an earlier build would otherwise end up in the wheel.
    """
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(repo / name, dest / name)
    shutil.copytree(repo / "kb", dest / "kb", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"), dirs_exist_ok=True)
    return dest


def write_stand_in(folder: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> Path:
    """A metadata-only wheel standing for a package the machine already has (for the resolver check only)."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{re.sub(r'[-_.]+', '_', name)}-{version}"
    path = folder / f"{stem}-py3-none-any.whl"
    info = f"{stem}.dist-info"
    files = {
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                            + "".join(f"Requires-Dist: {r}\n" for r in requires),
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: kb scripts/gpu-wheels\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    with zipfile.ZipFile(path, "w") as archive:
        for arcname, text in files.items():
            archive.writestr(arcname, text)
        archive.writestr(f"{info}/RECORD", "".join(f"{n},,\n" for n in files) + f"{info}/RECORD,,\n")
    return path


class WheelSetError(Exception):
    """The carried wheel set is missing, incomplete or inconsistent."""


def read_lock(wheels: Path) -> dict:
    path = wheels / LOCK_NAME
    if not path.is_file():
        raise WheelSetError(f"no wheel set at {wheels} (no {LOCK_NAME}): build it with scripts/gpu-wheels")
    return json.loads(path.read_text())


def verify_files(wheels: Path, lock: dict) -> None:
    """Every locked wheel is there with its sha256, and nothing else is."""
    for folder, items in ((wheels, lock["wheels"]), (wheels / BUILD_FOLDER, lock["build"]),
                          (wheels / FALLBACK_FOLDER, lock.get("fallback", []))):
        names = {item["file"] for item in items}
        extra = sorted(p.name for p in folder.glob("*.whl") if p.name not in names)
        if extra:
            raise WheelSetError(f"{folder} holds wheels the lock does not list: {', '.join(extra)} (rerun scripts/gpu-wheels)")
        for item in items:
            path = folder / item["file"]
            if not path.is_file():
                raise WheelSetError(f"{path} is missing (rerun scripts/gpu-wheels)")
            if item.get("sha256") and sha256(path) != item["sha256"]:
                raise WheelSetError(f"{path} does not match the lock's sha256 (rerun scripts/gpu-wheels)")


# --- kb's requirements against an interpreter's installed packages -------------------------------

def _packaging():
    try:
        from packaging.markers import default_environment
        from packaging.requirements import Requirement
    except ImportError:  # an interpreter without packaging still has pip's copy
        from pip._vendor.packaging.markers import default_environment
        from pip._vendor.packaging.requirements import Requirement
    return Requirement, default_environment


def unmet_requirements(requirements: list[str], skip: tuple[str, ...] = (), carried: Path | None = None) -> dict:
    """Walk ``requirements`` and what they need through this interpreter's installed distributions.

    Returns ``{"found": {name: version}, "problems": [...], "notes": [...]}``. A problem is a package
    that is missing, or whose version does not satisfy kb or a package installed in ``carried`` (the
    wheel set's folder). The same about what a preinstalled package asks for is a note: that
    environment's own business, which kb may not touch. Names in ``skip`` are checked, not followed.
    """
    Requirement, default_environment = _packaging()
    base_env = default_environment()
    carried = carried.resolve() if carried else None
    found: dict[str, str] = {}
    problems: list[str] = []
    notes: list[str] = []
    expanded: set[tuple[str, str]] = set()
    queue = [(Requirement(text), "kb", True) for text in requirements]
    while queue:
        req, wanted_by, strict = queue.pop(0)
        name = canonical(req.name)
        into = problems if strict else notes
        try:
            dist = importlib.metadata.distribution(req.name)
        except importlib.metadata.PackageNotFoundError:
            if name in skip:
                into.append(f"{name} is not installed ({wanted_by} needs {req}; it must be this interpreter's own, "
                            "a CUDA build, never a carried one)")
            else:
                into.append(f"{name} is not installed ({wanted_by} needs {req})")
            continue
        version = dist.version
        found[name] = version
        if req.specifier and not req.specifier.contains(version, prereleases=True):
            into.append(f"{name} {version} is installed, but {wanted_by} needs {req}")
        if name in skip:
            continue  # the machine's own (torch): its own needs are its installer's business
        in_carried = carried is not None and Path(str(dist.locate_file(""))).resolve() == carried
        for extra in ("", *sorted(req.extras)):
            if (name, extra) in expanded:
                continue
            expanded.add((name, extra))
            for text in dist.requires or []:
                child = Requirement(text)
                if child.marker is not None and not child.marker.evaluate({**base_env, "extra": extra}):
                    continue
                if extra and (child.marker is None or "extra" not in str(child.marker)):
                    continue  # the extra's pass adds only what the extra asks for
                queue.append((child, f"{name} {version}", in_carried))
    return {"found": dict(sorted(found.items())), "problems": problems, "notes": notes}


def target_marker_environment() -> dict:
    """Marker values of the GPU machine's interpreter (for evaluating requirements here)."""
    _, default_environment = _packaging()
    env = dict(default_environment())
    env.update({
        "python_version": PYTHON_VERSION, "python_full_version": PYTHON_VERSION + ".3",
        "implementation_name": "cpython", "implementation_version": PYTHON_VERSION + ".3",
        "platform_python_implementation": "CPython", "os_name": "posix", "sys_platform": "linux",
        "platform_system": "Linux", "platform_machine": "x86_64",
    })
    return env


def reachable(requirements: list[str], requires: dict[str, list[str]], provided: set[str], env: dict) -> dict[str, list[str]]:
    """Names reached from ``requirements`` through ``requires`` (name -> Requires-Dist), not walking into ``provided``,
    each with the version specifiers asked of it on the way (empty ones left out).

    A provided package is reached but its own needs are its installer's business, not ours.
    """
    Requirement, _ = _packaging()
    seen: set[tuple[str, str]] = set()
    reached: dict[str, list[str]] = {}
    queue = [Requirement(text) for text in requirements]
    while queue:
        req = queue.pop(0)
        name = canonical(req.name)
        asked = reached.setdefault(name, [])
        if str(req.specifier) and str(req.specifier) not in asked:
            asked.append(str(req.specifier))
        if name in provided:
            continue
        for extra in ("", *sorted(req.extras)):
            if (name, extra) in seen:
                continue
            seen.add((name, extra))
            for text in requires.get(name, []):
                child = Requirement(text)
                if child.marker is not None and not child.marker.evaluate({**env, "extra": extra}):
                    continue
                if extra and (child.marker is None or "extra" not in str(child.marker)):
                    continue
                queue.append(child)
    return reached


def satisfies(version: str, specifiers: list[str]) -> bool:
    """Whether ``version`` meets every specifier (pre-releases allowed: they are what is installed)."""
    from_packaging = _packaging_specifier()
    return all(from_packaging(spec).contains(version, prereleases=True) for spec in specifiers)


def _packaging_specifier():
    try:
        from packaging.specifiers import SpecifierSet
    except ImportError:
        from pip._vendor.packaging.specifiers import SpecifierSet
    return SpecifierSet


def installed_kb_requirements() -> list[str]:
    """kb's requirements as the installed kb-compiler declares them, else as the tree's pyproject does."""
    try:
        return [r for r in importlib.metadata.requires("kb-compiler") or [] if "extra ==" not in r]
    except importlib.metadata.PackageNotFoundError:
        return kb_requirements()


def _main(argv: list[str]) -> int:
    if argv[:1] == ["deps"] and len(argv) <= 2:
        carried = Path(argv[1]) if len(argv) == 2 else None
        report = unmet_requirements(installed_kb_requirements(), skip=(MACHINE_TORCH,), carried=carried)
        print(json.dumps(report))
        return 0
    print("usage: python3 scripts/gpu_support.py deps [CARRIED-FOLDER]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
