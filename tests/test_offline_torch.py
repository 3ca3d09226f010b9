"""The offline engine on the real thing: torch's docstrings and plans/performance.md batch 2."""

from __future__ import annotations

import ast
import asyncio
import re
import time

import pytest

from kb.corpus.index import load_corpus
from kb.engine.check import check_draft
from conftest import install_performance_plan
from kb.engine.factory import build_engine
from kb.engine.types import ContextDoc, WriteRequest
from kb.plan import load_plan
from kb.workspace import init_workspace

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def torch_engine(tmp_path_factory):
    """A workspace with the default corpus (torch docstrings), its index built once for the module."""
    ws, _ = init_workspace(tmp_path_factory.mktemp("torchws") / "ws")
    install_performance_plan(ws.plans_dir / "performance.md")
    engine = build_engine(ws, today="2025-11-14")
    started = time.monotonic()
    engine.researcher.corpus()
    yield ws, engine, time.monotonic() - started
    engine.writer.close()  # its warm sandbox worker would outlive the fixture, a child of the test process


def write_part(ws, engine, number):
    plan = load_plan(ws.plans_dir / "performance.md")
    part = plan.part(number)
    context = [ContextDoc(path=r.path, note=r.note, text=None) for r in part.reads]
    research = asyncio.run(engine.researcher.research(part, context))
    request = WriteRequest(plan_title=plan.title, topic=plan.topic, plan_path="plans/performance.md", part=part,
                           context=context, research=research)
    return part, request, asyncio.run(engine.writer.write(request))


def cited_locators(draft):
    return {s.locator for s in draft.sources}


def test_torch_index_builds_once_and_reloads_from_its_cache(torch_engine):
    # How fast it builds and loads is bench/bench_corpus.py's job; here: a second engine reuses the index.
    ws, engine, _ = torch_engine
    index = engine.researcher.corpus()
    assert len(index) > 2000 and index.info["packages"]["torch"]
    said = []
    reloaded = load_corpus(ws, progress=said.append)
    assert said == [] and len(reloaded) == len(index)
    assert len(build_engine(ws).researcher.corpus()) == len(index)


def test_part8_activation_checkpointing(torch_engine):
    ws, engine, _ = torch_engine
    part, request, draft = write_part(ws, engine, 8)
    assert check_draft(draft, request) == []
    headings = re.findall(r"(?m)^## (Section \d+: .+)$", draft.body)
    assert headings == [f"Section {s.number}: {s.title}" for s in part.sections] and len(headings) == 8
    assert "torch.utils.checkpoint.checkpoint" in cited_locators(draft)
    section2 = draft.body.split("## Section 2:")[1].split("## Section 3:")[0]
    assert "torch.utils.checkpoint" in section2
    for info, code in re.findall(r"```(python[^\n]*)\n(.*?)```", draft.body, re.S):
        ast.parse(code)
    # What torch does not document is said plainly, not filled in.
    section8 = draft.body.split("## Section 8:")[1].split("## Sources")[0]
    assert "Research found nothing on this section" in section8 and "arr-coc-0-1" in section8
    # No passage from private or test modules, unless kb.toml includes them by name ([corpus].include).
    included = tuple(ws.config.corpus.include)
    assert not any(re.search(r"\._|\.test", loc) and not loc.startswith(included) for loc in cited_locators(draft))
    # Profiling its impact: the details ("memory timeline") name the API, deprecation notice and all.
    section7 = draft.body.split("## Section 7:")[1].split("## Section 8:")[0]
    assert "export_memory_timeline" in section7 and "is deprecated" in section7


@pytest.mark.parametrize("number, expected", [
    # "Gradient checkpointing" in PART 5: torch.utils.checkpoint.checkpoint scores 1.186 with the judge, just under the
    # lexical route's 1.2; lowering the bar lets rpc.remote back into "Custom operators" (bench_relevance), so it stays.
    (5, ["torch.cuda.memory_summary"]),
    (6, ["torch.utils.data.DataLoader"]),
    (7, ["torch.GradScaler"]),
])
def test_batch2_parts_cite_the_torch_apis_that_document_them(torch_engine, number, expected):
    ws, engine, _ = torch_engine
    part, request, draft = write_part(ws, engine, number)
    assert check_draft(draft, request) == []
    locators = cited_locators(draft)
    for locator in expected:
        assert locator in locators, f"PART {number} does not cite {locator}: {sorted(locators)}"
    if number == 6:
        assert "`pin_memory`" in draft.body and "`num_workers`" in draft.body
    assert not any(loc.startswith(("torch.xpu", "torch.mps", "torch.mtia")) for loc in locators)


def _section(draft, number):
    return draft.body.split(f"## Section {number}:")[1].split("\n## ")[0]


def test_precision_and_coverage_rules_on_torch(torch_engine):
    ws, engine, _ = torch_engine
    _, _, draft = write_part(ws, engine, 2)
    assert "`torch.cuda.utilization`" in _section(draft, 1)  # "Measuring GPU utilization"
    _, _, draft = write_part(ws, engine, 3)
    # "Profiling stream concurrency (Nsight Systems timeline)": green contexts say stream and concurrency only.
    assert "GreenContext" not in _section(draft, 7) and "Research found nothing" in _section(draft, 7)
    _, _, draft = write_part(ws, engine, 1)
    assert "Research found nothing" in _section(draft, 1)  # "Nsight Systems": torch never says Nsight
    _, _, draft = write_part(ws, engine, 9)
    # torch._dynamo is indexed (included by the shipped kb.toml); the judged filler prefers torch.compile itself
    # for "torch.compile fundamentals", so the include is checked in the index, not in the draft.
    assert engine.researcher.corpus().named("torch._dynamo")
    assert "torch.compile" in cited_locators(draft)
    assert "`torch.compile`" in _section(draft, 5)  # "Backend selection": its backend argument


def test_a_section_left_empty_is_filled_by_naming_its_answer_in_the_plan(torch_engine):
    # The README's advice: research leaves "Serialization and deployment (TorchScript models)" empty (torch.save and
    # torch.jit.save read alike to it); the plan's author who names torch.jit.save in the details gets it.
    import dataclasses

    ws, engine, _ = torch_engine
    part = load_plan(ws.plans_dir / "performance.md").part(12)
    found = asyncio.run(engine.researcher.research(part, []))
    assert found.by_section[5] == []
    named = dataclasses.replace(part, sections=[
        dataclasses.replace(s, details=f"{s.details}, torch.jit.save") if s.number == 5 else s for s in part.sections])
    found = asyncio.run(engine.researcher.research(named, []))
    assert [p.locator for p in found.by_section[5]] == ["torch.jit.save"]
