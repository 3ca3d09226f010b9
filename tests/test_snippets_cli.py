"""`kb validate-snippets` through the real CLI: exit codes, --gpu without CUDA, --json, --junit."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET

import pytest

from kb.workspace import init_workspace

KNOWLEDGE = """# Demo

```python
import torch
print(torch.arange(3).tolist())
```

```python
import torch
x = torch.randn(4, device="cuda")
```

```python
raise RuntimeError("broken claim")
```
"""

FAST = "timeout_s = 20\nmemory_limit_mb = 1024\nmax_processes = 64\n"


def _no_gpu() -> bool:
    return shutil.which("nvidia-smi") is None


@pytest.fixture
def ws(tmp_path):
    workspace, _ = init_workspace(tmp_path / "ws")
    (workspace.root / "knowledge" / "demo").mkdir()
    (workspace.root / "knowledge" / "demo" / "00-demo.md").write_text(KNOWLEDGE)
    return workspace


def test_command_is_registered(kb_cli):
    result = kb_cli("validate-snippets", "--help")
    assert result.code == 0 and "--gpu" in result.out and "--junit" in result.out


@pytest.mark.skipif(not _no_gpu(), reason="this machine has an NVIDIA GPU")
def test_gpu_without_cuda_exits_2_at_once(kb_cli, ws):
    result = kb_cli("validate-snippets", "--gpu", cwd=ws.root, timeout=60)
    assert result.code == 2
    assert "--gpu needs a CUDA device" in result.err and "run without --gpu" in result.err
    assert not (ws.root / "snippets" / "results.json").exists()  # failed before running anything


def test_json_junit_and_exit_code(kb_cli, ws, tmp_path):
    (ws.root / "validators" / "cpu.toml").write_text(FAST)
    junit = tmp_path / "junit.xml"
    result = kb_cli("validate-snippets", "--json", "--junit", str(junit), cwd=ws.root, timeout=120)
    assert result.code == 1, result.err  # one snippet failed
    doc = json.loads(result.out)
    rows = {r["line"]: r for r in doc["snippets"]}
    assert rows[3]["status"] == "pass" and rows[3]["stdout_tail"] == "[0, 1, 2]\n"
    assert rows[13]["status"] == "fail" and rows[13]["reason"] == "RuntimeError: broken claim"
    if _no_gpu():
        assert (rows[8]["status"], rows[8]["reason"]) == ("skip", "requires cuda")
    cases = ET.parse(junit).getroot().findall("testsuite/testcase")
    assert [c.get("name") for c in cases] == ["L3", "L8", "L13"]
    # The rich report for people, served from the cache this time.
    again = kb_cli("validate-snippets", "knowledge/demo", cwd=ws.root, timeout=120)
    assert again.code == 1 and "broken claim" in again.out and "0 run, 2 cached" in again.out


def test_path_outside_the_workspace_is_refused(kb_cli, ws, tmp_path):
    (tmp_path / "elsewhere.md").write_text("```python\nprint(1)\n```\n")
    result = kb_cli("validate-snippets", str(tmp_path / "elsewhere.md"), cwd=ws.root)
    assert result.code == 2 and "outside the workspace" in result.err
