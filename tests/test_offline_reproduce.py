"""The shipped knowledge base is what kb writes: a fresh run of the plan reproduces the committed files, timestamps aside."""

from __future__ import annotations

import re
import shutil

import pytest

from conftest import REPO, run_kb
from kb.plan import load_plan
from kb.plan.edit import set_part_status
from kb.records import read_knowledge
from kb.workspace import init_workspace

pytest.importorskip("torch")
PLAN = REPO / "plans" / "completed" / "performance.md"


def _normal(text: str) -> str:
    """Dates and the plan's folder (consolidate moved it to completed/) are not content."""
    text = re.sub(r"\d{4}-\d{2}-\d{2}", "DATE", text)
    return text.replace("plans/completed/", "plans/")


@pytest.mark.slow
def test_a_fresh_run_of_every_batch_reproduces_the_committed_files(tmp_path):
    import importlib.util
    import tomllib

    missing = [p for p in tomllib.loads((REPO / "kb.toml").read_text(encoding="utf-8"))["corpus"]["packages"]
               if importlib.util.find_spec(p) is None]
    if missing:  # without them the corpus is another one: the files would differ for that reason alone
        pytest.skip(f"the shipped corpus needs {', '.join(missing)}: pip install -c constraints.txt -e '.[corpus]'")
    ws, _ = init_workspace(tmp_path / "ws")
    shutil.copy(REPO / "kb.toml", ws.root / "kb.toml")  # the same corpus
    if (REPO / "curation.toml").exists():  # ... and the reviewer's decisions the shipped base was curated with
        shutil.copy(REPO / "curation.toml", ws.root / "curation.toml")
    # Which examples run is decided by the sandbox during the run itself: nothing to copy from snippets/.
    plan_path = ws.plans_dir / "performance.md"
    shutil.copy(PLAN, plan_path)
    plan = load_plan(plan_path)
    set_part_status(plan_path, {p.number: "pending" for p in plan.parts})
    # Every batch: a later one quotes and links the files the earlier ones wrote (the knowledge tree is corpus too).
    result = run_kb("run-plan", str(plan_path), "--all", cwd=ws.root, timeout=900)
    assert result.code == 0, result.out + result.err
    assert len({p.batch for p in plan.parts}) > 1
    for part in plan.parts:
        fresh = read_knowledge(ws.knowledge_dir / part.target)
        shipped = read_knowledge(REPO / "knowledge" / part.target)
        assert _normal(fresh.body) == _normal(shipped.body), part.target
        assert [vars(s) for s in fresh.meta.sources] == [vars(s) for s in shipped.meta.sources], part.target
        assert fresh.meta.sections == shipped.meta.sections
