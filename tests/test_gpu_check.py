"""scripts/gpu-check, scripts/gpu-wheels and the CUDA suite, tested on the machine the tests run on.

The dry run reaches the cuda step and, without CUDA, fails there with the reason; the wheel set's
resolver check passes for a complete set and names what is wrong with an incomplete one; the CUDA
suite is skipped here with the right reason for each snippet.
"""

from __future__ import annotations

import argparse
import ast
import importlib.machinery
import importlib.util
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import REPO
from kb.snippets.extract import extract_snippets
from kb.snippets.validate import Options, run_validation
from kb.workspace import init_workspace

SCRIPTS = REPO / "scripts"
SUITE = REPO / "tests" / "fixtures" / "cuda-suite" / "knowledge"
WHEELS = REPO / ".gpu" / "wheels"
sys.path.insert(0, str(SCRIPTS))
import gpu_support as gs  # noqa: E402


def load_script(name: str):
    """A script of scripts/ (no .py suffix) as a module."""
    loader = importlib.machinery.SourceFileLoader(name.replace("-", "_"), str(SCRIPTS / name))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


gpu_check = load_script("gpu-check")
gpu_wheels = load_script("gpu-wheels")


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def run_gpu_check(*args: str, out: Path, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    full = {**os.environ, "OUT": str(out), **(env or {})}
    full.pop("GPU_CHECK_DRY_RUN", None)
    full.update(env or {})
    return subprocess.run([sys.executable, str(SCRIPTS / "gpu-check"), *args], capture_output=True, text=True,
                          env=full, timeout=timeout, cwd=REPO)


def assert_stops_at_cuda(proc: subprocess.CompletedProcess, out: Path) -> dict:
    """Without CUDA: exit 3 and the clear line; with CUDA: the dry run passes and stops after the cuda step."""
    results = json.loads((out / "results.json").read_text())
    steps = {s["name"]: s for s in results["steps"]}
    assert [s["name"] for s in results["steps"]] == ["wheels", "install", "deps", "cuda", "pytest", "base", "suite"]
    assert steps["deps"]["status"] == "ok", steps["deps"]
    assert {steps[n]["status"] for n in ("pytest", "base", "suite")} == {"not-run"}
    ET.parse(out / "junit.xml")  # well-formed even when nothing ran
    summary = (out / "summary.md").read_text()
    if cuda_available():
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert steps["cuda"]["status"] == "ok"
        assert steps["pytest"]["detail"] == "dry run: stops after the cuda step"
        return results
    assert proc.returncode == 3, proc.stdout + proc.stderr
    line = next(line for line in proc.stderr.splitlines() if line.startswith("gpu-check: FAILED"))
    assert line.startswith("gpu-check: FAILED at cuda: CUDA is not seen: ")
    assert "torch.version.cuda is None" in line or "torch.cuda.is_available() is False" in line or "torch does not import" in line
    assert steps["cuda"]["status"] == "fail" and results["failed_step"] == "cuda" and results["exit"] == 3
    assert summary.startswith("# kb dry run: FAIL at cuda") and "CUDA is not seen" in summary
    return results


# --- the dry run ---------------------------------------------------------------------------------

@pytest.mark.slow
def test_dry_run_without_a_wheel_set_stops_at_the_cuda_check(tmp_path):
    out = tmp_path / "out"
    proc = run_gpu_check("--dry-run", "--wheels", str(tmp_path / "no-such-set"), out=out)
    results = assert_stops_at_cuda(proc, out)
    steps = {s["name"]: s for s in results["steps"]}
    assert steps["wheels"]["status"] == "skipped" and "no wheel set at" in steps["wheels"]["detail"]
    assert steps["install"]["status"] == "skipped"
    assert results["dry_run"] is True and results["python"] == sys.executable


@pytest.mark.slow
@pytest.mark.skipif(not (WHEELS / gs.LOCK_NAME).is_file(),
                    reason="no wheel set at .gpu/wheels (scripts/gpu-wheels makes it where PyPI is reachable)")
def test_dry_run_with_the_wheel_set_pretends_to_install_it_then_stops_at_the_cuda_check(tmp_path):
    out = tmp_path / "out"
    proc = run_gpu_check(out=out, env={"GPU_CHECK_DRY_RUN": "1"})  # the environment variable, not the flag
    results = assert_stops_at_cuda(proc, out)
    steps = {s["name"]: s for s in results["steps"]}
    lock = json.loads((WHEELS / gs.LOCK_NAME).read_text())
    assert steps["wheels"]["status"] == "ok"
    assert steps["install"]["detail"].startswith(f"dry run: pip would install kb and {len(lock['wheels'])} wheels for CPython 3.12, "
                                                 f"and {len(lock['fallback'])} fallbacks")


def test_the_real_run_fails_loudly_without_cuda(tmp_path):
    if cuda_available():
        pytest.skip("this machine has CUDA: the real run is scripts/gpu-check itself")
    out = tmp_path / "out"
    proc = run_gpu_check("--no-wheels", "--budget", "120", out=out)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "gpu-check: FAILED at cuda: CUDA is not seen" in proc.stderr
    assert json.loads((out / "results.json").read_text())["verdict"] == "fail"


def test_a_spent_budget_fails_the_step_instead_of_running_it(tmp_path):
    out = tmp_path / "out"
    proc = run_gpu_check("--dry-run", "--no-wheels", "--budget", "1", out=out, timeout=60)
    assert proc.returncode == 2
    assert "gpu-check: FAILED at wheels: not started: the 1 s budget is spent" in proc.stderr


# --- pieces of gpu-check -------------------------------------------------------------------------

def test_suite_rule_passes_only_what_should_pass():
    ok = gpu_check.suite_row_ok
    assert ok({"status": "pass", "requires": ["cuda"]}, gpus=1)
    assert not ok({"status": "skip", "reason": "requires cuda", "requires": ["cuda"]}, gpus=1)
    assert not ok({"status": "fail", "reason": "AssertionError", "requires": ["cuda"]}, gpus=1)
    assert ok({"status": "skip", "reason": "requires 2 GPUs (this machine has 1)", "requires": ["multi-gpu:2"]}, gpus=1)
    assert not ok({"status": "skip", "reason": "requires cuda", "requires": ["multi-gpu:2"]}, gpus=1)
    assert not ok({"status": "skip", "reason": "requires 2 GPUs", "requires": ["multi-gpu:2"]}, gpus=2)
    assert ok({"status": "pass", "requires": ["multi-gpu:2"]}, gpus=2)


def test_junit_parts_merge_into_one_file_with_counts(tmp_path):
    a = tmp_path / "a.xml"
    a.write_text('<testsuites><testsuite name="pytest"><testcase classname="t" name="one"/>'
                 '<testcase classname="t" name="two"><skipped message="no"/></testcase></testsuite></testsuites>')
    b = tmp_path / "b.xml"
    b.write_text('<testsuite name="knowledge/x.md"><testcase classname="x" name="L3"><failure message="boom"/></testcase></testsuite>')
    assert gpu_check.junit_counts(a) == {"passed": 1, "failed": 0, "errors": 0, "skipped": 1, "skipped_reasons": ["t.two: no"],
                                         "bad": []}
    gpu_check.merge_junit([("pytest -m gpu", a), ("snippets: suite", b)], tmp_path / "junit.xml")
    merged = ET.parse(tmp_path / "junit.xml").getroot()
    assert [s.get("name") for s in merged] == ["pytest -m gpu: pytest", "snippets: suite: knowledge/x.md"]
    assert gpu_check.junit_counts(tmp_path / "junit.xml")["bad"] == ["failed x.L3: boom"]


@pytest.mark.slow
def test_check_steps_read_what_pytest_and_kb_report(tmp_path):
    """The three GPU steps' plumbing, run here with the cpu profile (no --gpu): what they parse and write."""
    if cuda_available():
        pytest.skip("this machine has CUDA: scripts/gpu-check runs these steps for real")
    args = argparse.Namespace(dry_run=False, out=tmp_path / "out", budget=900, no_wheels=True, wheels=tmp_path, site=None)
    check = gpu_check.Check(args)
    check.validate_flags = ["--all"]
    base = check.do_base(400)
    assert re.match(r"(\d+ [a-z-]+, )*\d+ pass, .*; of the \d+ that need CUDA: \d+ skip$", base), base
    assert check.found["base"]["environment"]["profile"] == "cpu"
    with pytest.raises(gpu_check.StepFailed) as failed:
        check.do_suite(400)  # skipped here, so not as the suite expects of a GPU machine
    assert failed.value.code == 1 and str(failed.value).startswith("CUDA suite: 6 skip; not as expected: ")
    assert str(failed.value).count("skip: requires cuda") == 5
    tests = check.do_pytest(400)
    assert tests.startswith("0 passed, 0 failed, 0 errors, ") and check.found["pytest"]["skipped"] >= 1
    assert any("no CUDA device" in r for r in check.found["pytest"]["skipped_reasons"])
    check.finish(1)
    suites = [s.get("name") for s in ET.parse(args.out / "junit.xml").getroot()]
    assert any(n.startswith("pytest -m gpu") for n in suites)
    assert any(n.startswith("kb validate-snippets --gpu: base: knowledge/") for n in suites)
    assert any(n.startswith("kb validate-snippets --gpu: suite: knowledge/cuda/") for n in suites)
    summary = (args.out / "summary.md").read_text()
    assert summary.startswith("# kb GPU check: FAIL") and "suite cuda/00-cuda-runtime-checks.md#L23: skip: requires cuda" in summary


def fake_dist(folder: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> None:
    info = folder / f"{name.replace('-', '_')}-{version}.dist-info"  # as wheels name it
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                                   + "".join(f"Requires-Dist: {r}\n" for r in requires))


def test_unmet_requirements_names_the_missing_and_the_too_old(tmp_path, monkeypatch):
    carried, preinstalled = tmp_path / "carried", tmp_path / "preinstalled"
    fake_dist(carried, "kbtest-alpha", "1.0", ("pytest>=999", "kbtest-missing", "kbtest-gamma"))
    fake_dist(preinstalled, "kbtest-gamma", "2.0", ("kbtest-absent>=1",))
    monkeypatch.syspath_prepend(str(preinstalled))
    monkeypatch.syspath_prepend(str(carried))
    report = gs.unmet_requirements(["pytest>=1", "kbtest-alpha>=1", "kbtest-none>=1", "kbtest-gamma>=3"], carried=carried)
    assert report["found"]["kbtest-alpha"] == "1.0" and "pytest" in report["found"]
    problems = report["problems"]
    assert "kbtest-none is not installed (kb needs kbtest-none>=1)" in problems
    assert "kbtest-gamma 2.0 is installed, but kb needs kbtest-gamma>=3" in problems
    assert "kbtest-missing is not installed (kbtest-alpha 1.0 needs kbtest-missing)" in problems  # a carried package's need
    assert any(re.fullmatch(r"pytest \S+ is installed, but kbtest-alpha 1\.0 needs pytest>=999", p) for p in problems)
    assert len(problems) == 4
    # What a preinstalled package asks for is that environment's business: noted, not failed.
    assert report["notes"] == ["kbtest-absent is not installed (kbtest-gamma 2.0 needs kbtest-absent>=1)"]


# --- the wheel set -------------------------------------------------------------------------------

def wheel_items(folder: Path, specs: dict[str, tuple[str, ...]]) -> list[dict]:
    items = []
    for spec, requires in specs.items():
        name, version = spec.split("==")
        path = gs.write_stand_in(folder, name, version, requires)
        items.append({"name": name, "version": version, "file": path.name, "sha256": gs.sha256(path), "bytes": path.stat().st_size})
    return items


def make_set(tmp_path: Path, carried: dict[str, tuple[str, ...]], machine: str, project_requires: tuple[str, ...],
             fallback: dict[str, tuple[str, ...]] | None = None):
    """A small wheel set in the shape scripts/gpu-wheels writes, a machine list, and a project wheel."""
    wheels = tmp_path / "wheels"
    (wheels / gs.BUILD_FOLDER).mkdir(parents=True)
    items = wheel_items(wheels, carried)
    machine_list = tmp_path / "machine.txt"
    machine_list.write_text(machine)
    known = gs.machine_packages(machine_list)
    lock = {"generated": "now", "wheels": items, "build": [],
            "fallback": wheel_items(wheels / gs.FALLBACK_FOLDER, fallback or {}),
            "machine": [{"name": n, "known_version": v, "resolved_version": "14.0"} for n, v in known.items()]}
    (wheels / gs.LOCK_NAME).write_text(json.dumps(lock))
    project = gs.write_stand_in(tmp_path / "project", "demo-kb", "0.1.0", project_requires)
    return wheels, machine_list, project


def test_resolver_check_passes_for_a_complete_set(tmp_path):
    wheels, machine, project = make_set(tmp_path, {"alpha==1.0": ("beta>=2", "rich>=13"), "beta==2.0": ()},
                                        "torch==2.11.0\nrich\n", ("alpha>=1", "torch>=2.3"))
    result = gpu_wheels.check(wheels, machine, project)
    assert result["carried"] == 2 and result["torch"] == "torch 2.11.0"
    assert result["machine"] == ["rich 14.0", "torch 2.11.0"]


def test_resolver_check_names_a_missing_dependency(tmp_path):
    wheels, machine, project = make_set(tmp_path, {"alpha==1.0": ("beta>=2",)}, "torch==2.11.0\n", ("alpha>=1", "torch>=2.3"))
    with pytest.raises(gs.WheelSetError, match=r"(?s)resolving kb from the wheel set alone.*beta"):
        gpu_wheels.check(wheels, machine, project)


def test_resolver_check_refuses_a_torch_older_than_kb_needs(tmp_path):
    wheels, machine, project = make_set(tmp_path, {"alpha==1.0": ()}, "torch==2.0.0\n", ("alpha>=1", "torch>=2.3"))
    with pytest.raises(gs.WheelSetError, match=r"(?s)torch"):
        gpu_wheels.check(wheels, machine, project)


def test_resolver_check_refuses_wheels_nothing_needs_and_wheels_off_the_lock(tmp_path):
    wheels, machine, project = make_set(tmp_path, {"alpha==1.0": (), "gamma==1.0": ()}, "torch==2.11.0\n", ("alpha>=1", "torch>=2.3"))
    with pytest.raises(gs.WheelSetError, match="carries wheels demo-kb does not need: gamma-1.0-py3-none-any.whl"):
        gpu_wheels.check(wheels, machine, project)
    gs.write_stand_in(wheels, "delta", "1.0")
    with pytest.raises(gs.WheelSetError, match="holds wheels the lock does not list: delta-1.0-py3-none-any.whl"):
        gpu_wheels.check(wheels, machine, project)


def test_resolver_check_of_fallbacks_resolves_without_the_machines_unknown_versions(tmp_path):
    args = ({"alpha==1.0": ("rich>=13",)}, "torch==2.11.0\nrich\n", ("alpha>=1", "torch>=2.3"))
    wheels, machine, project = make_set(tmp_path / "a", *args, fallback={"rich==14.0": ("mdurl",), "mdurl==0.1": ()})
    assert gpu_wheels.check(wheels, machine, project)["fallbacks"] == 2
    wheels, machine, project = make_set(tmp_path / "b", *args, fallback={"rich==14.0": ("mdurl",)})
    with pytest.raises(gs.WheelSetError, match=r"(?s)with only the machine's packages of known version.*mdurl"):
        gpu_wheels.check(wheels, machine, project)  # the fallback rich needs mdurl, which nothing carries
    wheels, machine, project = make_set(tmp_path / "c", *args, fallback={"rich==14.0": (), "gamma==1.0": ()})
    with pytest.raises(gs.WheelSetError, match="carries fallbacks demo-kb does not need: gamma-1.0-py3-none-any.whl"):
        gpu_wheels.check(wheels, machine, project)


def test_fallback_wheels_go_where_the_machines_version_does_not_do(tmp_path):
    args = argparse.Namespace(dry_run=False, out=tmp_path / "out", budget=120, no_wheels=False, wheels=tmp_path / "wheels", site=None)
    check = gpu_check.Check(args)
    check.wheels = tmp_path / "wheels"
    check.lock = {"fallback": wheel_items(check.wheels / gs.FALLBACK_FOLDER, {"kbtest-rich==14.0": (), "kbtest-other==1.0": ()})}
    check.found["site"] = str(tmp_path / "site")
    problems = ["kbtest-rich 12.0 is installed, but kbtest-alpha 1.0 needs kbtest-rich>=13", "kbtest-none is not installed (kb needs kbtest-none)"]
    assert check.install_fallbacks(problems, 100) == ["kbtest-rich 14.0"]
    assert (tmp_path / "site" / "kbtest_rich-14.0.dist-info" / "METADATA").is_file()
    assert not (tmp_path / "site" / "kbtest_other-1.0.dist-info").exists()
    assert check.install_fallbacks(problems, 100) == []  # installed once
    assert check.found["fallbacks"] == ["kbtest-rich 14.0"]


@pytest.mark.slow
@pytest.mark.skipif(not (WHEELS / gs.LOCK_NAME).is_file(),
                    reason="no wheel set at .gpu/wheels (scripts/gpu-wheels makes it where PyPI is reachable)")
def test_the_built_wheel_set_resolves_kb_without_torch_and_fits_the_carry_limit():
    proc = subprocess.run([sys.executable, str(SCRIPTS / "gpu-wheels"), "--check"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "gpu-wheels: complete: kb resolves from" in proc.stdout and "torch 2.11.0 among them" in proc.stdout
    lock = json.loads((WHEELS / gs.LOCK_NAME).read_text())
    carried = {w["name"] for w in lock["wheels"]}
    assert not carried & set(gs.machine_packages()), "a package the machine has is carried"
    for name in carried | {w["name"] for w in lock["fallback"]}:
        assert name not in ("torch", "triton") and not name.startswith("nvidia-")
    assert "numpy" not in {w["name"] for w in lock["fallback"]}  # its version there (2.5.2) is known to do
    # The device tool's 64 MiB covers the wheels and the tracked tree together (what gpu-check needs travels with them).
    wheels = sum(w["bytes"] for key in ("wheels", "build", "fallback") for w in lock[key])
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=gs.REPO, capture_output=True, check=True).stdout.decode().split("\0")
    tree = sum((gs.REPO / name).stat().st_size for name in tracked if name and (gs.REPO / name).is_file())
    assert wheels + tree < 62 << 20, f"wheels {wheels / 2**20:.1f} MiB + tree {tree / 2**20:.1f} MiB leave no room under 64 MiB"


# --- the CUDA suite ------------------------------------------------------------------------------

def test_cuda_suite_snippets_parse_and_cover_what_the_knowledge_talks_about():
    (path,) = SUITE.rglob("*.md")
    snippets = [s for s in extract_snippets(path, path.read_text()) if s.kind == "python"]
    assert len(snippets) == 6
    for snippet in snippets:
        ast.parse(snippet.code)  # skipped here, so a syntax error would otherwise wait for a GPU
    code = "\n".join(s.code for s in snippets)
    for api in ("elapsed_time", "torch.autocast", "torch.bfloat16", "torch.compile", "_record_memory_history",
                "_snapshot", "torch.cuda.CUDAGraph", ".replay()", 'kb:requires=multi-gpu:2'):
        assert api in code or api in path.read_text(), api


def test_cuda_suite_is_skipped_here_with_the_right_reason(tmp_path):
    workspace, _ = init_workspace(tmp_path / "ws")
    (workspace.root / "knowledge" / "cuda").mkdir()
    for path in SUITE.rglob("*.md"):
        (workspace.root / "knowledge" / "cuda" / path.name).write_text(path.read_text())
    rows = run_validation(workspace, Options()).rows  # the cpu profile, which runs no CUDA snippet
    assert len(rows) == 6
    multi = [r for r in rows if "multi-gpu:2" in r["requires"]]
    assert len(multi) == 1 and multi[0]["status"] == "skip" and multi[0]["reason"].startswith("requires 2 GPUs")
    for row in rows:
        if row is not multi[0]:
            assert row["status"] == "skip" and row["reason"].startswith("requires cuda"), row
            assert row["requires"] == ["cuda"]


# --- the README's GPU section ---------------------------------------------------------------------

README_BLOCK = re.compile(r"<!-- readme-test: gpu-check -->\n```bash\n(.*?)\n```", re.S)


@pytest.mark.slow
def test_readme_gpu_check_commands_run_here(tmp_path):
    blocks = README_BLOCK.findall((REPO / "README.md").read_text())
    commands = [line for block in blocks for line in block.splitlines() if line.strip() and not line.startswith("#")]
    assert any("scripts/gpu-check" in c for c in commands) and any(c.startswith("scripts/gpu-wheels") for c in commands)
    for command in commands:
        if command.startswith("scripts/gpu-wheels"):
            assert os.access(REPO / "scripts" / "gpu-wheels", os.X_OK)
            continue  # it downloads from PyPI: test_the_built_wheel_set_... checks what it made
        out = tmp_path / f"out-{len(list(tmp_path.iterdir()))}"
        env = {**os.environ, "OUT": str(out), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        env.pop("GPU_CHECK_DRY_RUN", None)
        proc = subprocess.run(["bash", "-c", command], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
        if cuda_available():
            assert proc.returncode == 0, proc.stdout + proc.stderr
        else:
            assert proc.returncode == 3 and "CUDA is not seen" in proc.stderr, proc.stdout + proc.stderr
