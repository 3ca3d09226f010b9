"""Verdicts without running: inference from real snippet shapes, run-time classification of errors,
kb:setup and kb:continue names, and where the new statuses show (JUnit, results.json)."""

from __future__ import annotations

import errno
import importlib.util
import json
import socket
import xml.etree.ElementTree as ET

from kb.snippets.environment import Environment
from kb.snippets.extract import extract_snippets
from kb.snippets.outcome import Context, classify
from kb.snippets.profiles import Profile
from kb.snippets.requirements import infer
from kb.snippets.results import junit_xml, results_text
from kb.snippets.sandbox import pool
from kb.snippets.shape import read_shape, tokenized_imports
from kb.snippets.tasks import plan, unmet


def _one(code: str, info: str = "python"):
    return extract_snippets("k.md", f"```{info}\n{code}\n```\n")[0]


def _env(**kw) -> Environment:
    base = dict(python="3.11.7", torch="2.13.0", cuda=None, gpus=[], modules={"torch": True, "numpy": True, "apex": False, "model": False})
    base.update(kw)
    return Environment(**base)


# -- inference ---------------------------------------------------------------------


def test_a_cuda_device_in_an_f_string_or_a_variable_needs_cuda():
    loop = infer(_one('import torch\nfor i in range(2):\n    t = torch.ones(2, device=torch.device(f"cuda:{i}"))'))
    assert loop.cuda and "f-string" in loop.why[0]
    assert infer(_one('import torch\ndev = "cuda"\nx = torch.ones(2).to(dev)')).cuda
    assert infer(_one('import torch\nDEVICE: str = "cuda:1"\nx = torch.ones(2).to(DEVICE)')).cuda
    assert infer(_one('import torch\nrank = 0\nx = torch.ones(2).to("cuda:" + str(rank))')).cuda
    assert infer(_one('import torch\nuse_gpu = True\nx = torch.ones(1, device=torch.device("cuda" if use_gpu else "cpu"))')).cuda
    assert not infer(_one('import torch\nd = torch.device("cuda" if torch.cuda.is_available() else "cpu")')).cuda
    assert not infer(_one('import torch\nx = torch.ones(1)\nprint(x.device.type == "cuda")')).cuda


def test_cpu_safe_torch_cuda_calls_do_not_need_cuda():
    code = ("import torch\ntorch.cuda.manual_seed(0)\ntorch.cuda.manual_seed_all(0)\ntorch.cuda.empty_cache()\n"
            "print(torch.cuda.memory_allocated(), torch.cuda.memory_reserved(), torch.cuda.max_memory_allocated())\n"
            "print(torch.cuda.is_available(), torch.cuda.device_count())")
    assert not infer(_one(code)).cuda
    assert not infer(_one('import torch\nwith torch.autocast("cuda", dtype=torch.float16):\n    pass\ns = torch.amp.GradScaler("cuda")')).cuda
    assert infer(_one("import torch\ntorch.cuda.synchronize()")).cuda
    assert infer(_one("import torch\ntorch.cuda.reset_peak_memory_stats()")).cuda  # fails on a CPU build
    assert infer(_one('import torch\ntorch.cuda.nvtx.range_push("x")')).cuda


def test_cuda_extensions_need_cuda_and_cpp_ones_do_not():
    setup_py = ('from setuptools import setup\nfrom torch.utils.cpp_extension import BuildExtension, CUDAExtension\n'
                'setup(name="k", ext_modules=[CUDAExtension("k", ["k.cpp", "k_kernel.cu"])], cmdclass={"build_ext": BuildExtension})')
    assert "CUDA extension" in infer(_one(setup_py)).why[0]
    inline = infer(_one('from torch.utils.cpp_extension import load_inline\nm = load_inline(name="k", cpp_sources="", cuda_sources=src)'))
    assert inline.cuda
    assert infer(_one('from torch.utils.cpp_extension import load\nm = load(name="k", sources=["k.cpp", "k.cu"])')).cuda
    assert not infer(_one('from torch.utils.cpp_extension import load_inline\nm = load_inline(name="k", cpp_sources=src)')).cuda


def test_imports_are_read_even_from_code_that_does_not_parse():
    assert tokenized_imports("import deepspeed\nfrom apex.optimizers import FusedAdam\nx = (1,\n") == ["deepspeed", "apex"]
    assert tokenized_imports("import os, einops as e\ndef f(:\n  import flash_attn") == ["os", "einops", "flash_attn"]
    req = infer(_one("import jax.numpy as jnp\n\ntype Array = jnp.ndarray"))
    assert req.modules == ["jax"] and req.python == "3.12"


def test_the_python_a_syntax_needs_is_a_skip_on_an_older_one():
    cases = {
        "type Vec = list[float]": "3.12",
        "def first[T](xs: list[T]) -> T:\n    return xs[0]": "3.12",
        'names = ["a"]\nprint(f"{"\\n".join(names)}")': "3.12",
        "try:\n    pass\nexcept ValueError, TypeError:\n    pass": "3.14",
        'user = "x"\ng = t"hi {user}"': "3.14",
        "from itertools import batched": "3.12",
        "from warnings import deprecated": "3.13",
    }
    for code, version in cases.items():
        assert infer(_one(code)).python == version, code
    req = infer(_one("type Vec = list[float]"))
    assert unmet(req, _env(python="3.11.7"), Profile(name="cpu")) == ["requires Python >= 3.12 (this machine has 3.11.7)"]
    assert unmet(req, _env(python="3.12.1"), Profile(name="cpu")) == []
    assert infer(_one("def f(x)\n    return x")).python is None  # a plain syntax error is a bug, not a version


# -- shapes --------------------------------------------------------------------------


def test_what_is_not_python_to_run():
    reasons = {
        ">>> import torch\n>>> torch.ones(1)\ntensor([1.])": "transcript",
        "$ torchrun --nproc_per_node=8 train.py": "shell",
        "pip install deepspeed\npython train.py": "shell",
        "%timeit sum(range(10))": "IPython",
        "for each batch in loader:\n    update the weights\nend for": "pseudo-code",
        "model = Net(\n    depth=4,\n    ...,\n    width=8,\n)": "elided",
        "import torch\nprint(torch.arange(3))\ntensor([0, 1, 2])": "output",
        "x = compute()\nEpoch 1/3: loss=0.7": "output",
        "__global__ void k(float* x) {\n  x[0] = 1;\n}": "C",
        "# only a remark": "comments",
    }
    for code, word in reasons.items():
        shape = read_shape(code)
        assert shape.verdict == "not-executable" and word in shape.reason, (code, shape.reason)


def test_python_that_starts_with_a_command_word_is_not_taken_for_shell():
    for code in ("cat = {1: 2\nprint(cat)", "make(x\ny = 1", "python_version = 3\nif python_version > 2\n    pass", "ls.append(1\nz = 2"):
        assert read_shape(code).verdict is None, code  # Python with a syntax error: it runs, and fails
    assert read_shape("nvidia-smi").reason == "shell commands in a python fence"


def test_excerpts_and_free_names():
    assert read_shape("    loss.backward()\n    opt.step()").reason == "an indented excerpt (cut from inside a block)"
    assert read_shape("@torch.no_grad()\n").verdict == "fragment"
    assert "return outside a function" in read_shape("y = f(x)\nreturn y").reason
    shape = read_shape("import torch\nloss = criterion(model(x), y)\ndef g():\n    return helper()")
    assert shape.verdict is None and shape.free == ["criterion", "model", "x", "y", "helper"]
    assert read_shape("from math import *\nprint(sqrt(2))").dynamic


def test_defines_only_is_read_from_the_top_level():
    assert read_shape("import torch\nT = 3\ndef f(x):\n    return x\nclass A:\n    pass").defines_only
    assert not read_shape("def f(x):\n    return x\nprint(f(2))").defines_only
    assert not read_shape("import torch\nx = torch.ones(2)").defines_only  # does something, defines nothing


# -- planning with kb:setup and kb:continue -----------------------------------------------


DOC = """```python kb:setup
import torch
model = torch.nn.Linear(2, 2)
```

```python
print(model(torch.ones(1, 2)))
```

```python
print(undefined_thing)
```

```python
def helper(t):
    return t * 2
```

```python kb:continue
print(helper(torch.ones(1)))
```

```python
def unused():
    return 1
```

```python
from model import Net
```

```python
hidden = encoder(tokens)
```

```python kb:continue
print(hidden)
```
"""


def test_an_expected_error_is_run_even_when_it_reads_as_a_fragment():
    doc = "```python kb:expect-error\nprint(not_defined_on_purpose)\n```\n\n```python kb:expect-error\nreturn 1\n```\n"
    entries, chains = plan({"knowledge/e.md": extract_snippets("knowledge/e.md", doc)}, _env(), Profile(name="cpu"))
    assert [e.status for e in entries] == [None, None] and len(chains) == 2


def test_setup_fences_and_chains_carry_names():
    entries, chains = plan({"knowledge/a.md": extract_snippets("knowledge/a.md", DOC)}, _env(), Profile(name="cpu"))
    by_line = {e.snippet.line: e for e in entries}
    assert by_line[1].setup and by_line[1].status is None
    assert by_line[6].status is None  # uses the setup's model and torch
    assert (by_line[10].status, by_line[10].reason) == ("fragment", "uses undefined_thing defined elsewhere")
    assert by_line[14].status is None and not by_line[14].only_defines  # the next fence calls helper
    assert by_line[23].only_defines
    assert by_line[28].status == "fragment" and "author's own module" in by_line[28].reason
    assert by_line[32].status == "fragment" and by_line[36].reason.startswith("continues L32, a fragment")
    runnable = [[e.snippet.line for e in c.run] for c in chains]
    assert runnable == [[1], [6], [14, 19], [23]]
    assert all([s.snippet.line for s in c.setup] == [1] for c in chains[1:])


# -- run-time verdicts -------------------------------------------------------------------


def _exc(kind: str, message: str, **extra) -> dict:
    return {"outcome": "exception", "exc_type": kind, "message": message, **extra}


def test_a_missing_optional_dependency_is_a_skip_naming_it():
    ctx = Context(imports=["torch"], modules={"torch": True})
    status, reason = classify(_exc("ModuleNotFoundError", "No module named 'tensorboard'"), False, context=ctx)
    assert (status, reason) == ("skip", "requires module tensorboard (not installed; an optional dependency of a package it uses)")
    assert classify(_exc("ModuleNotFoundError", "No module named 'onnxscript'"), False, context=ctx)[0] == "skip"
    # A submodule the installed package does not have is a wrong import: a failure.
    assert classify(_exc("ModuleNotFoundError", "No module named 'torch.fancy'"), False, context=ctx)[0] == "fail"


def test_a_name_error_is_a_fragment_only_when_the_snippet_never_binds_the_name():
    ctx = Context(known_names=frozenset({"result", "torch"}))
    assert classify(_exc("NameError", "name 'model' is not defined"), False, context=ctx)[0] == "fragment"
    assert classify(_exc("NameError", "name 'result' is not defined"), False, context=ctx)[0] == "fail"
    assert classify(_exc("UnboundLocalError", "cannot access local variable 'n'"), False, context=ctx)[0] == "fail"


def test_errors_that_name_what_is_missing():
    ctx = Context(python="3.11.7")
    cuda = classify(_exc("AssertionError", "Torch not compiled with CUDA enabled"), False, context=ctx)
    assert cuda[0] == "skip" and cuda[1].startswith("requires cuda (found when run")
    assert classify(_exc("AssertionError", "Torch not compiled with CUDA enabled"), False, context=Context(cuda_usable=True))[0] == "fail"
    net = classify(_exc("URLError", "<urlopen error [Errno -3] Temporary failure in name resolution>", category="network"), False, context=ctx)
    assert net[0] == "skip" and net[1].startswith("requires network")
    perm = classify(_exc("PermissionError", "[Errno 13] Permission denied: '/mnt/x'", category="permission"), False, context=ctx)
    assert perm[0] == "fail" and perm[1].startswith("permission denied") and "network" not in perm[1]
    data = classify(_exc("FileNotFoundError", "[Errno 2] No such file or directory: 'ckpt.pt'"), False, context=ctx)
    assert data == ("fragment", "needs the file 'ckpt.pt', made elsewhere (FileNotFoundError)")
    newer = classify(_exc("ImportError", "cannot import name 'batched' from 'itertools' (/usr/lib/python3.11/itertools.py)"), False, context=ctx)
    assert newer[0] == "skip" and newer[1].startswith("requires Python >= 3.12")
    assert classify({"outcome": "ok"}, False, context=Context(only_defines=True, defines=["f", "g"])) == ("defines-only", "defines f, g; nothing calls them")


def _child():
    spec = importlib.util.spec_from_file_location("kb_child_under_test", pool.WORKER.parent / "child.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_permission_errors_are_not_called_network():
    child = _child()
    assert errno.EACCES not in child.NETWORK_ERRNOS and errno.EPERM not in child.NETWORK_ERRNOS
    try:
        raise PermissionError(errno.EACCES, "Permission denied", "/mnt/x")
    except PermissionError as exc:
        assert child.categorise(exc, network_off=True) == "permission"
    guard = PermissionError(errno.ENETUNREACH, "network disabled by kb (kb:requires=network not set)")
    assert child.categorise(guard, network_off=True) == "network"
    assert child.categorise(socket.gaierror(-3, "Temporary failure in name resolution"), network_off=True) == "network"


# -- where the statuses show ---------------------------------------------------------------


def test_junit_reports_fragments_and_defines_only_as_skipped_with_the_reason():
    rows = [
        {"file": "knowledge/a.md", "line": 1, "status": "fragment", "reason": "uses model defined elsewhere", "seconds": 0},
        {"file": "knowledge/a.md", "line": 5, "status": "defines-only", "reason": "defines f; nothing calls them", "seconds": 0.1},
        {"file": "knowledge/a.md", "line": 9, "status": "pass", "reason": None, "seconds": 0.1},
    ]
    suite = ET.fromstring(junit_xml({}, rows)).find("testsuite")
    assert suite.get("skipped") == "2" and suite.get("failures") == "0"
    messages = [c.find("skipped").get("message") for c in suite.findall("testcase")[:2]]
    assert messages == ["fragment: uses model defined elsewhere", "defines-only: defines f; nothing calls them"]


def test_results_text_is_json_with_one_row_per_line():
    doc = {"version": 1, "generated": "t", "environment": {}, "isolation": {}, "summary": {}, "snippets": [{"id": "a", "status": "fragment"}, {"id": "b"}]}
    text = results_text(doc)
    assert json.loads(text) == doc
    assert '{"id": "a", "status": "fragment"},\n{"id": "b"}' in text


def test_the_new_statuses_reach_kb_report_index_and_serve(tmp_path):
    from kb.consolidate.snippets import describe
    from kb.consolidate.snippets import read_results as index_results
    from kb.report.collect import collect_report
    from kb.serve.results import read_results as serve_results
    from kb.snippets.extract import snippet_hash
    from kb.workspace import init_workspace

    workspace, _ = init_workspace(tmp_path / "ws")
    text = "# T\n\n```python\nloss = model(x)\n```\n\n```python\ndef f():\n    return 1\n```\n"
    (workspace.knowledge_dir / "t.md").write_text(text)
    rows = [
        {"file": "knowledge/t.md", "line": 3, "status": "fragment", "reason": "uses model, x defined elsewhere",
         "hash": snippet_hash("python", "loss = model(x)\n")},
        {"file": "knowledge/t.md", "line": 7, "status": "defines-only", "reason": "defines f; nothing calls them",
         "hash": snippet_hash("python", "def f():\n    return 1\n")},
    ]
    (workspace.root / "snippets").mkdir(exist_ok=True)
    (workspace.root / "snippets" / "results.json").write_text(json.dumps({"version": 1, "snippets": rows}))
    totals = collect_report(workspace).totals()["snippets"]
    assert (totals["fragment"], totals["defines_only"], totals["fail"], totals["pass"]) == (1, 1, 0, 0)
    assert describe(index_results(workspace.root).totals) == "1 defines-only, 1 fragment"
    badges = {r.status: (r.badge_class, r.label) for r in serve_results(workspace.root / "snippets" / "results.json").entries}
    assert badges == {"fragment": ("skip", "fragment"), "defines-only": ("muted", "defines only")}


SETUP_DOC = """```python kb:setup
import torch
weights = torch.ones(3)
```

```python
print(weights.sum().item())
```
"""

BROKEN_SETUP_DOC = """```python kb:setup
raise RuntimeError("setup broke")
```

```python
print("never meaningful")
```
"""


def test_setup_runs_first_and_a_rerun_reads_nothing_again(tmp_path, monkeypatch):
    from kb.snippets import validate
    from kb.workspace import init_workspace

    workspace, _ = init_workspace(tmp_path / "ws")
    (workspace.root / "validators" / "cpu.toml").write_text("timeout_s = 60\nmemory_limit_mb = 4096\nmax_processes = 128\n")
    (workspace.knowledge_dir / "ok.md").write_text(SETUP_DOC)
    (workspace.knowledge_dir / "broken.md").write_text(BROKEN_SETUP_DOC)
    first = validate.run_validation(workspace, validate.Options())
    rows = {(r["file"].split("/")[-1], r["line"]): (r["status"], r["reason"], r["stdout_tail"]) for r in first.rows}
    assert rows[("ok.md", 1)][0] == "pass" and rows[("ok.md", 6)] == ("pass", None, "3.0\n")
    assert rows[("broken.md", 1)][:2] == ("fail", "RuntimeError: setup broke")
    assert rows[("broken.md", 5)][:2] == ("error", "not run: its kb:setup fence L1 failed (fail: RuntimeError: setup broke)")

    # Nothing changed: no file is parsed, no snippet read again, no result file rewritten.
    def boom(*args, **kwargs):
        raise AssertionError("read again")

    monkeypatch.setattr(validate, "extract_snippets", boom)
    monkeypatch.setattr(validate, "analyze", boom)
    again = validate.run_validation(workspace, validate.Options())
    assert again.ran == 0 and [(r["status"], r["reason"]) for r in again.rows] == [(r["status"], r["reason"]) for r in first.rows]
    results = workspace.root / "snippets" / "results.json"
    before = (results.stat().st_mtime_ns, json.loads(results.read_text())["generated"])
    third = validate.run_validation(workspace, validate.Options())  # the same as the second: nothing to write
    assert third.ran == 0 and (results.stat().st_mtime_ns, third.document["generated"]) == before


def test_a_cached_result_is_judged_again_by_todays_rules(tmp_path):
    from kb.snippets import validate
    from kb.snippets.cache import CACHE_NAME
    from kb.workspace import init_workspace

    workspace, _ = init_workspace(tmp_path / "ws")
    (workspace.root / "validators" / "cpu.toml").write_text("timeout_s = 60\nmemory_limit_mb = 4096\nmax_processes = 128\n")
    (workspace.knowledge_dir / "n.md").write_text("```python\nfrom math import *\nprint(sqrt(4), undefined_x)\n```\n")
    first = validate.run_validation(workspace, validate.Options())
    assert first.rows[0]["status"] == "fragment"
    # What an older kb kept: a failure for the same facts.
    path = workspace.state_dir / CACHE_NAME
    data = json.loads(path.read_text())
    (hit,) = [h for results in data["entries"].values() for h in results.values()]
    assert hit["fact"]["exc_type"] == "NameError"
    hit["status"], hit["reason"] = "fail", "NameError: name 'undefined_x' is not defined"
    path.write_text(json.dumps(data))
    again = validate.run_validation(workspace, validate.Options())
    assert again.ran == 0 and (again.rows[0]["status"], again.rows[0]["cached"]) == ("fragment", True)
