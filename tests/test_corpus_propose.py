"""`kb init --plan` proposes [corpus] packages: the installed libraries the plan names, stdlib included."""

from __future__ import annotations

import json
import textwrap

from conftest import run_kb
from kb.corpus.propose import propose_packages, write_packages
from kb.plan import parse_plan

PLAN = textwrap.dedent("""\
    # Knowledge Expansion: Python asyncio (1 runner in 1 batch)

    # BATCH 1: asyncio

    ## PART 1: asyncio and the random module

    - [ ] PART 1: Create asyncio/00-basics.md

    **Step 1: Web Research**
    - [ ] Search: "time budget for queue consumers"

    **Step 2: Create Knowledge File**
    - [ ] Section 1: Running the loop (asyncio.run)
    - [ ] Section 2: Thread pools (concurrent.futures, apex.optimizers)
    """)


def test_dotted_roots_and_title_names_that_are_installed_are_proposed():
    plan = parse_plan(PLAN, "plans/asyncio.md")
    # asyncio: dotted and in the title; concurrent: dotted; apex: not installed; random, time, queue: words.
    assert propose_packages([plan]) == ["asyncio", "concurrent"]


def test_kb_init_writes_the_proposal_into_kb_toml_with_a_comment(tmp_path):
    plan = tmp_path / "asyncio.md"
    plan.write_text(PLAN, encoding="utf-8")
    result = run_kb("init", str(tmp_path / "ws"), "--plan", str(plan), "--no-git", "--json", timeout=60)
    assert result.code == 0, result.err
    assert json.loads(result.out)["corpus_packages"] == ["asyncio", "concurrent"]
    toml = (tmp_path / "ws" / "kb.toml").read_text(encoding="utf-8")
    line = next(ln for ln in toml.splitlines() if ln.startswith("packages"))
    assert line.startswith('packages = ["asyncio", "concurrent"]  # proposed by kb init from plans/asyncio.md')
    import tomllib

    assert tomllib.loads(toml)["corpus"]["packages"] == ["asyncio", "concurrent"]


def test_a_plan_naming_no_library_says_so(tmp_path):
    toml = tmp_path / "kb.toml"
    toml.write_text('[corpus]\npackages = ["torch"]     # old\n', encoding="utf-8")
    assert write_packages(toml, [], ["plans/x.md"])
    text = toml.read_text(encoding="utf-8")
    assert text.startswith('[corpus]\npackages = []  # kb init found no installed library named in plans/x.md')


SECTIONS_PLAN = textwrap.dedent("""\
    # Knowledge Expansion: Data pipelines (1 runner in 1 batch)

    # BATCH 1: pipelines

    ## PART 1: Loading data

    - [ ] PART 1: Create pipelines/00-loading.md

    **Step 1: Web Research**
    - [ ] Search: "PyYAML safe_load speed"
    - [ ] Search: "rich progress bars time per queue item"

    **Step 2: Create Knowledge File**
    - [ ] Section 1: Array batching (NumPy stacking, Megatron-LM shards)
    - [ ] Section 2: Logging optimization (log every N steps, async logging)
    - [ ] Section 3: Statistics (the mean and the statistics of a run)
    """)


def test_sections_details_and_queries_name_libraries_in_any_case():
    plan = parse_plan(SECTIONS_PLAN, "plans/pipelines.md")
    # The PART titles name none of them: before, only titles were read and nothing was proposed.
    # yaml: its distribution's name (PyYAML) in a query; numpy: "NumPy" in a section title; logging and
    # statistics: standard-library modules in lower case; Megatron-LM: not installed; rich, time, queue:
    # everyday words (rich is installed: kb depends on it).
    assert propose_packages([plan]) == ["yaml", "numpy", "logging", "statistics"]


def test_the_performance_plan_proposes_more_than_torch_where_they_are_installed():
    import importlib.util

    from conftest import REPO
    from kb.plan import load_plan

    proposed = propose_packages([load_plan(REPO / "plans" / "completed" / "performance.md")])
    assert proposed[0] == "torch"
    # "Logging optimization (log every N steps, async logging)" names the standard library's logging.
    assert "logging" in proposed
    for name, said in (("tensorboard", "TensorBoard Profiler"), ("bitsandbytes", "8-bit optimizers (bitsandbytes)"),
                       ("deepspeed", "DeepSpeed activation checkpointing")):
        assert (name in proposed) == (importlib.util.find_spec(name) is not None), said
    assert not {"time", "profile", "trace", "functorch"} & set(proposed)
