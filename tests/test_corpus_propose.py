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
