"""Extraction, info-string options, inferred requirements and planning (no processes started)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from kb.snippets.environment import Environment
from kb.snippets.extract import extract_snippets
from kb.snippets.options import parse_info
from kb.snippets.profiles import Profile
from kb.snippets.requirements import infer
from kb.snippets.results import junit_xml, load_results
from kb.snippets.tasks import plan

DOC = """# Title

```python
print("top")
```

- a list item

  ```py kb:timeout=5
  print("in a list")
  ```

> ~~~python
> print("in a quote")
> ~~~

    indented = "not a snippet"

````markdown
```python
inner fence is content, not a snippet
```
````

```python kb:skip="needs 8 GPUs" kb:continue
pass
```

```console
$ nvidia-smi
```

```bash
pip install torch
```

```bash kb:run
echo hi
```

```pycon
>>> 1 + 1
2
```
"""


def test_fences_everywhere_with_lines_and_languages():
    snippets = extract_snippets("knowledge/t/a.md", DOC)
    assert [(s.line, s.language) for s in snippets] == [
        (3, "python"), (9, "py"), (13, "python"), (19, "markdown"), (25, "python"), (29, "console"), (33, "bash"), (37, "bash"), (41, "pycon"),
    ]
    assert [s.index for s in snippets] == list(range(9))
    assert snippets[1].code == 'print("in a list")\n'
    assert snippets[2].code == 'print("in a quote")\n'
    assert all("indented" not in s.code for s in snippets)
    kinds = [s.kind for s in snippets]
    assert kinds == ["python", "python", "python", None, "python", None, None, "shell", None]
    assert snippets[1].options.timeout == 5
    assert snippets[4].options.skip == "needs 8 GPUs" and snippets[4].options.continue_
    assert snippets[0].file == "knowledge/t/a.md" and snippets[0].code_line == 4


def test_hash_changes_with_code_and_options():
    a = extract_snippets("a.md", "```python\nx = 1\n```\n")[0]
    b = extract_snippets("a.md", "```python\nx = 2\n```\n")[0]
    c = extract_snippets("a.md", "```python kb:timeout=3\nx = 1\n```\n")[0]
    again = extract_snippets("other.md", "\n\n```python\nx = 1\n```\n")[0]
    assert len({a.hash, b.hash, c.hash}) == 3
    assert again.hash == a.hash  # moving a snippet does not invalidate its result


def test_info_string_options_and_problems():
    language, opts = parse_info('python kb:requires=cuda,module:apex kb:requires=multi-gpu:2 kb:expect-error kb:timeout=120 title="x"')
    assert language == "python"
    assert opts.requires == ["cuda", "module:apex", "multi-gpu:2"]
    assert opts.expect_error and opts.timeout == 120 and not opts.problems
    _, bad = parse_info("python kb:timeout=soon kb:requires=quantum kb:frobnicate")
    assert len(bad.problems) == 3 and "soon" in bad.problems[0]


def _one(code: str, info: str = "python"):
    return extract_snippets("k.md", f"```{info}\n{code}\n```\n")[0]


def test_inferred_cuda_and_what_is_not_cuda():
    assert infer(_one("import torch\nx = torch.ones(2).cuda()")).cuda
    assert infer(_one('import torch\nx = torch.zeros(3, device="cuda:0")')).cuda
    assert infer(_one("import torch\ntorch.cuda.synchronize()")).cuda
    assert infer(_one('device = "cuda"')).cuda
    guarded = infer(_one('import torch\ndevice = "cuda" if torch.cuda.is_available() else "cpu"\nx = torch.ones(2, device=device)'))
    assert not guarded.cuda and guarded.mentions_cuda
    block = infer(_one("import torch\nif torch.cuda.is_available():\n    torch.cuda.synchronize()\nprint(torch.cuda.device_count())"))
    assert not block.cuda
    assert not infer(_one("import torch\ntorch.backends.cuda.matmul.allow_tf32 = True")).cuda


def test_inferred_distributed_and_modules():
    torchrun = infer(_one('import torch.distributed as dist\ndist.init_process_group("gloo")'))
    assert torchrun.distributed
    spawned = infer(_one('import torch.multiprocessing as mp\nimport torch.distributed as dist\n'
                         'def f(r):\n    dist.init_process_group("nccl", rank=r, world_size=4)\nmp.spawn(f, nprocs=4)'))
    assert not spawned.distributed and spawned.gpus == 4
    mods = infer(_one("import os, numpy as np\nfrom sklearn.linear_model import X\nimport json"))
    assert mods.modules == ["numpy", "sklearn"]


def _env(**kw) -> Environment:
    base = dict(python="3.11", torch="2.0", cuda=None, gpus=[], modules={"torch": True, "nope": False})
    base.update(kw)
    return Environment(**base)


def test_plan_skips_with_reasons_and_chains():
    doc = """
```python
import torch
x = torch.ones(1).cuda()
```

```python kb:continue
print(x)
```

```python
import nope
```

```python
a = 1
```

```python kb:continue
print(a)
```

```python kb:requires=network
print("net")
```

```python kb:requires=multi-gpu:2
print("two")
```
"""
    profile = Profile(name="cpu")
    entries, chains = plan({"knowledge/a.md": extract_snippets("knowledge/a.md", doc)}, _env(), profile)
    by_line = {e.snippet.line: e for e in entries}
    assert by_line[2].status == "skip" and by_line[2].reason == "requires cuda"
    assert by_line[7].status == "skip" and by_line[7].reason.startswith("continues L2, which is skipped")
    assert by_line[11].reason == "requires module nope (not installed)"
    assert by_line[19].continues == 15 and by_line[19].status is None
    assert by_line[23].reason.startswith("requires network")
    assert by_line[27].reason.startswith("requires 2 GPUs")
    assert [[e.snippet.line for e in c.run] for c in chains] == [[15, 19]]
    gpu_env = _env(cuda="12.4", gpus=[{"name": "H100", "driver": "550"}])
    entries, _ = plan({"knowledge/a.md": extract_snippets("knowledge/a.md", doc)}, gpu_env, Profile(name="cuda", satisfies=["cuda"]))
    assert {e.snippet.line: e.status for e in entries}[2] is None  # runnable with a GPU
    assert {e.snippet.line: e.reason for e in entries}[27] == "requires 2 GPUs (this machine has 1)"


def test_load_results_without_a_file(tmp_path):
    doc = load_results(tmp_path)
    assert doc["snippets"] == [] and doc["version"] == 1


def test_junit_xml_counts():
    rows = [
        {"file": "knowledge/a.md", "line": 3, "status": "pass", "reason": None, "seconds": 0.1},
        {"file": "knowledge/a.md", "line": 9, "status": "fail", "reason": "ValueError: x", "seconds": 0.1, "stderr_tail": "tb"},
        {"file": "knowledge/a.md", "line": 12, "status": "skip", "reason": "requires cuda", "seconds": 0},
        {"file": "knowledge/b.md", "line": 1, "status": "timeout", "reason": "timed out after 2 s", "seconds": 2},
    ]
    root = ET.fromstring(junit_xml({}, rows))
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["knowledge/a.md", "knowledge/b.md"]
    assert suites[0].get("failures") == "1" and suites[0].get("skipped") == "1"
    assert suites[1].find("testcase/error").get("message") == "timed out after 2 s"
