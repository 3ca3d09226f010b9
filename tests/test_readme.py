"""Every command block of README.md runs here, in the README's order, so the README cannot rot.

Each ```bash block in the README is preceded by ``<!-- readme-test: NAME -->``; NAME says
how it is checked. The set-up command's install steps and the test command are what
``.ci/run`` runs; everything else is executed for real in a fresh demo workspace, with the
demo folder moved under tmp and the LLM and search URLs pointed at loopback servers.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from conftest import REPO
from kb.plan import load_plan
from kb.records import read_drop, read_knowledge
from servers import LLMServer, PageServer, SearchServer

README = (REPO / "README.md").read_text(encoding="utf-8")
CI = (REPO / ".ci" / "run").read_text(encoding="utf-8")
MARKED = re.compile(r"<!-- readme-test: ([\w-]+) -->\n```(\w+)\n(.*?)\n```", re.S)
KNOWN = {"setup", "tests", "walkthrough", "serve", "llm-config", "llm", "gpu", "gpu-check", "ray"}
BIN = Path(sys.executable).parent  # the venv the tests run in: its `kb` is the README's `.venv/bin/kb`


def blocks(name: str) -> list[str]:
    return [body for tag, _lang, body in MARKED.findall(README) if tag == name]


def commands(block: str) -> list[str]:
    return [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def shell(script: str, cwd: Path, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    full = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "COLUMNS": "160",
            "NO_COLOR": "1", **(env or {})}
    return subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=full, capture_output=True,
                          text=True, timeout=timeout)


def test_every_command_block_is_marked_and_known():
    fences = re.findall(r"(?:^|\n)(.*)\n```(bash|sh|shell|console)\n", README)
    assert fences, "the README has no command blocks"
    for before, lang in fences:
        tag = re.fullmatch(r"<!-- readme-test: ([\w-]+) -->", before.strip())
        assert tag, f"a ```{lang} block in README.md has no readme-test marker (line before: {before!r})"
        assert tag.group(1) in KNOWN, f"unknown readme-test marker {tag.group(1)!r}"
    assert len(MARKED.findall(README)) == len(re.findall(r"<!-- readme-test:", README))


def test_setup_install_and_test_command_are_what_ci_runs():
    (setup,) = blocks("setup")
    steps = [s.strip() for s in setup.split("&&")]
    install = [s for s in steps if not s.startswith(".venv/bin/kb")]
    assert install == ["python3 -m venv .venv", ".venv/bin/pip install -c constraints.txt -e '.[dev]'"]
    for step in install:
        assert step in CI, f".ci/run does not run the README's install step {step!r}"
    (tests,) = blocks("tests")
    assert [line for line in CI.splitlines() if line.strip()][-1] == tests.strip()
    assert "torch==2.13.0" in (REPO / "constraints.txt").read_text()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The README's main command (its kb steps), with ../kb-demo under tmp: a reset copy of the plan, batch 2 run."""
    root = tmp_path_factory.mktemp("readme") / "kb-demo"
    (setup,) = blocks("setup")
    kb_steps = [s.strip() for s in setup.split("&&") if s.strip().startswith(".venv/bin/kb")]
    script = " && ".join(s.replace(".venv/bin/kb", "kb").replace("../kb-demo", shlex.quote(str(root)))
                         for s in kb_steps)
    result = shell(script, cwd=REPO)
    return root, result


@pytest.mark.slow
def test_main_command_runs_batch_2_of_a_reset_copy_offline(demo):
    root, result = demo
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BATCH 2: 4 done, 0 failed" in result.stdout
    plan = load_plan(root / "plans" / "performance.md")
    assert {p.number for p in plan.parts if p.status == "done"} == {5, 6, 7, 8}
    files = sorted(p.name for p in (root / "knowledge" / "performance").glob("*.md"))
    assert files == ["04-gpu-memory-optimization.md", "05-data-loading-optimization.md",
                     "06-gradient-accumulation-large-batch.md", "07-activation-checkpointing-strategies.md"]
    assert len(list((root / "drops").glob("KNOWLEDGE-DROP-*.md"))) == 4
    assert read_knowledge(root / "knowledge/performance/04-gpu-memory-optimization.md").meta.engine == "offline"


@pytest.mark.slow
def test_walkthrough_blocks_run_in_order(demo):
    root, _ = demo
    ran = []
    for block in blocks("walkthrough"):
        for command in commands(block):
            result = shell(command, cwd=root)
            assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
            ran.append((command, result.stdout))
    outputs = dict(ran)
    assert "Nothing to do" in outputs["kb run-plan plans/performance.md --batch 2"]
    log = subprocess.run(["git", "log", "--format=%s"], cwd=root, capture_output=True, text=True).stdout
    assert log.splitlines()[0].startswith("kb consolidate")
    index = (root / "INDEX.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\((knowledge/[^)#]+)\)", index)
    assert all((root / link).exists() for link in links)
    assert len({link for link in links if link.endswith(".md")}) == 4
    results = json.loads((root / "snippets" / "results.json").read_text())
    assert results["summary"].get("fail", 0) == 0
    assert "04-gpu-memory-optimization" in outputs["kb report"]
    assert (root / "site" / "index.html").is_file()


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.slow
def test_serve_block_serves_the_workspace(demo):
    root, _ = demo
    (command,) = commands(blocks("serve")[0])
    port = int(re.search(r"http://127\.0\.0\.1:(\d+)/", README).group(1))
    if not _port_free(port):
        pytest.skip(f"port {port}, the README's default, is in use here")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "NO_COLOR": "1"}
    proc = subprocess.Popen(["bash", "-c", f"exec {command}"], cwd=root, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}/" in line, line + proc.stderr.read() if proc.poll() is not None else line
        home = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).read().decode()
        assert "04-gpu-memory-optimization" in home or "GPU Memory Optimization" in home
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/knowledge/performance/07-activation-checkpointing-"
                                      "strategies.md", timeout=10).read().decode()
        assert "torch.utils.checkpoint" in page
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.slow
def test_gpu_block(demo):
    root, _ = demo
    (command,) = commands(blocks("gpu")[0])
    result = shell(command, cwd=root)
    import torch

    if torch.cuda.is_available():
        assert result.returncode == 0, result.stderr
    else:  # the README says: without CUDA the command says so and exits 2
        assert result.returncode == 2 and "needs a CUDA device" in result.stderr


@pytest.mark.slow
def test_ray_block(demo):
    root, _ = demo
    install, run = commands(blocks("ray")[0])
    assert install == "pip install -c constraints.txt -e '.[ray]'"
    assert ".venv/bin/pip install -c constraints.txt -e '.[ray]'" in CI
    pytest.importorskip("ray", reason="ray is not installed (the README's pip line installs it)")
    result = shell(run, cwd=root, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    results = json.loads((root / "snippets" / "results.json").read_text())
    assert results["environment"]["backend"] == "ray:local"


@pytest.mark.slow
def test_llm_blocks_with_loopback_model_and_search(demo):
    root, _ = demo
    (config,) = blocks("llm-config")
    (script,) = blocks("llm")
    assert "export" not in script  # a local server needs no key
    pages = PageServer().start()
    search = SearchServer(pages.pages, pages.url).start()
    llm = LLMServer(key=None).start()
    try:
        # The demo's pages are on loopback, which kb fetches only when kb.toml names them.
        local = (config.replace("http://localhost:11434/v1", f"{llm.url}/v1").replace("http://localhost:8888", search.url)
                 .replace("allow_private = []", f'allow_private = ["127.0.0.1:{pages.port}"]'))
        assert local.count(str(pages.port)) == 1 and llm.url in local and search.url in local
        with (root / "kb.toml").open("a", encoding="utf-8") as handle:
            handle.write("\n" + local + "\n")
        result = shell(script, cwd=root)
        assert result.returncode == 0, result.stdout + result.stderr
        assert llm.total() >= 4 and search.total() >= 1
        assert "tokens by stage: research" in result.stdout
        doc = read_knowledge(root / "knowledge/performance/08-torch-compile-deep-dive.md")
        assert (doc.meta.engine, doc.meta.model) == ("openai", "qwen2.5:14b-instruct")
        drops = [read_drop(p) for p in (root / "drops").glob("KNOWLEDGE-DROP-*.md") if "openai" in p.read_text()]
        assert drops and all(len(d.research["searched"]) <= 12 and len(d.research["read"]) <= 16 for d in drops)
    finally:
        for server in (llm, search, pages):
            server.stop()


def test_setup_names_the_prerequisites_and_which_torch_a_user_gets():
    setup = README[README.index("## Set up"):README.index("## Walk-through")]
    # The prerequisites, as pyproject.toml has them.
    assert 'requires-python = ">=3.11"' in (REPO / "pyproject.toml").read_text()
    assert "Python 3.11 or newer" in setup and "git" in setup
    # PyPI's torch==2.13.0 is the CUDA build; the README says so, and how to choose the CPU build.
    assert "CUDA build" in setup and "nvidia-*" in setup
    assert "--index-url https://download.pytorch.org/whl/cpu" in setup
    assert "so a fresh install never pulls a multi-GB" not in setup  # the claim that held on one machine only
    # The set-up line can be rerun.
    assert "can be rerun" in setup


@pytest.mark.slow
def test_main_command_can_be_rerun(demo):
    root, first = demo
    assert first.returncode == 0, first.stdout + first.stderr
    (setup,) = blocks("setup")
    kb_steps = [s.strip() for s in setup.split("&&") if s.strip().startswith(".venv/bin/kb")]
    script = " && ".join(s.replace(".venv/bin/kb", "kb").replace("../kb-demo", shlex.quote(str(root)))
                         for s in kb_steps)
    again = shell(script, cwd=REPO)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already a kb workspace" in again.stdout and "Nothing to do" in again.stdout
