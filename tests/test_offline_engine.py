"""The offline engine on a small corpus: relevant passages only, quoted and cited, honest about gaps."""

from __future__ import annotations

import ast
import asyncio
import re

import pytest

from kb.corpus.documents import CorpusDoc
from kb.engine.check import check_draft
from kb.engine.factory import build_engine
from kb.engine.offline.owners import QuoteOwners
from kb.engine.offline.research import LocalResearcher
from kb.engine.offline.snippets import free_names, make_snippet
from kb.engine.offline.writer import ExtractiveWriter
from kb.engine.types import ContextDoc, WriteRequest
from kb.errors import ConfigError
from kb.workspace import init_workspace
from kb.plan import parse_plan
from offline_fixtures import demo_index, demo_plan


def run(researcher, writer, part, context=()):
    research = asyncio.run(researcher.research(part, list(context)))
    request = WriteRequest(plan_title="Training Tricks", topic="Training Tricks", plan_path="plans/training.md",
                           part=part, context=list(context), research=research)
    return research, request, asyncio.run(writer.write(request))


@pytest.fixture
def engine_parts():
    index = demo_index()
    researcher = LocalResearcher(index=index)
    writer = ExtractiveWriter(None, corpus="demo 1.0 docstrings", today="2025-01-01",
                              resolve=lambda path: bool(index.named(path)) and "." in path)
    return researcher, writer, demo_plan().part(1)


def test_research_picks_relevant_passages_and_numbers_sources(engine_parts):
    researcher, _writer, part = engine_parts
    research = asyncio.run(researcher.research(part, []))
    assert [s.id for s in research.sources] == list(range(1, len(research.sources) + 1))
    assert research.by_section[1][0].locator == "demo.checkpoint.checkpoint"
    # The plan names the API: it comes first for that section.
    assert research.by_section[2][0].locator == "demo.checkpoint.checkpoint"
    # A product the corpus never mentions, and a topic it only brushes: no passage, a warning each.
    assert research.by_section[3] == [] and research.by_section[4] == []
    assert any("DALI" in w for w in research.warnings)
    assert any(w.startswith("section 4 (Learning rate warmup)") for w in research.warnings)
    # Passages are excerpts that keep the doc's summary, and carry their examples.
    first = research.by_section[1][0]
    assert first.text.startswith("`checkpoint(") and "trades compute for memory" in first.text
    assert first.examples


def test_writer_quotes_cites_and_says_so_when_empty(engine_parts):
    researcher, writer, part = engine_parts
    context = [ContextDoc(path="training/notes.md", note="old notes", text=None)]
    research, request, draft = run(researcher, writer, part, context)
    body = draft.body
    assert check_draft(draft, request) == []
    assert draft.engine == "offline" and draft.model is None
    for s in part.sections:
        assert f"\n## Section {s.number}: {s.title}\n" in body
    assert body.startswith("# Activation Checkpointing\n\n**")
    assert "\n## Overview\n" in body and "\n## Sources\n\n### Source Documents\n" in body and "\n### Web Research\n" in body
    section1 = body.split("## Section 1:")[1].split("## Section 2:")[0]
    # The digest: when to use it (the docstring's own sentence, cited), the API's row, then its one example.
    assert ("**What to use and when**\n\n- `demo.checkpoint.checkpoint` [1]: Activation checkpointing is a technique "
            "that trades compute for memory") in section1
    assert ("| `demo.checkpoint.checkpoint` | `checkpoint(function, *args, use_reentrant=None)` | "
            "Checkpoint a model or part of the model. | [1] |") in section1
    assert "Example from the docstring of `demo.checkpoint.checkpoint` (demo 1.0) [1]" in section1
    # A bracketed number inside a quote is escaped, so it cannot pass for one of our citations.
    assert "see \\[1\\] for details" in section1
    section3 = body.split("## Section 3:")[1].split("## Section 4:")[0]
    assert "Research found nothing on this section" in section3 and "DALI" in section3 and ">" not in section3
    assert len([ln for ln in section3.strip().splitlines() if ln.strip()]) == 3  # heading tail, plan line, one note
    # The sources listed are exactly the ones cited, numbered in order of first citation.
    cited = sorted({int(n) for n in re.findall(r"(?<!\\)\[(\d+)\](?!\()", body.split("## Sources")[0])})
    assert cited == [s.id for s in draft.sources] == list(range(1, len(draft.sources) + 1))
    # A Step 0 file that does not exist is named as text (a link would be broken) ...
    assert "`training/notes.md`: old notes (not in the knowledge tree yet)" in body and "](notes.md)" not in body
    # ... and the plan is named, not linked: consolidate moves it to plans/completed/.
    assert "(`plans/training.md`)" in body and "](../../plans/" not in body
    for block in re.findall(r"```python[^\n]*\n(.*?)```", body, re.S):
        ast.parse(block)


def test_a_passage_already_quoted_is_pointed_to_not_repeated(engine_parts):
    researcher, writer, part = engine_parts
    _research, _request, draft = run(researcher, writer, part)
    # Section 2 finds the API section 1 quoted: its row again, its words not again, a pointer to where they are.
    assert draft.body.count("Activation checkpointing is a technique that trades compute for memory") == 1
    assert "quoted above: `demo.checkpoint.checkpoint` [1] (Section 1)" in draft.body


def test_snippets_get_imports_and_skip_reasons():
    assert free_names("import os\nx = os.sep\nprint(x, y)") == {"y"}
    snippet = make_snippet("# xdoctest: +SKIP(\"needs data\")\nt = torch.ones(2)", "torch.ones")
    assert snippet.info == 'python kb:skip="marked skip in the torch.ones docs (needs data)"'
    assert snippet.code == "# Imports added by kb (not in the docs):\nimport torch\n\nt = torch.ones(2)"
    cuda = make_snippet("# xdoctest: +REQUIRES(env:TORCH_DOCTEST_CUDA)\nx = torch.zeros(1)", "torch.zeros")
    assert cuda.info == "python kb:requires=cuda"
    loose = make_snippet("out = helper(model)", "pkg.mod.helper", resolve=lambda p: p == "pkg.mod.helper")
    assert loose.code.startswith("# Imports added by kb (not in the docs):\nfrom pkg.mod import helper\n")
    assert loose.info == 'python kb:skip="excerpt from pkg.mod.helper: uses model defined elsewhere"'
    assert make_snippet("def broken(:\n  pass", "x") is None


def test_knowledge_passages_link_relatively_and_own_target_is_excluded():
    index = demo_index([
        CorpusDoc(kind="knowledge", locator="knowledge/cuda/01-memory.md#activation-checkpointing",
                  title="CUDA Memory — Activation checkpointing", source="CUDA Memory",
                  keywords="Activation checkpointing", text="Activation checkpointing recomputes activations to save memory."),
        CorpusDoc(kind="knowledge", locator="knowledge/training/00-activation-checkpointing.md#overview",
                  title="Our own old output", keywords="Activation checkpointing",
                  text="Activation checkpointing activation checkpointing recomputation tradeoff memory."),
    ])
    researcher = LocalResearcher(index=index)
    writer = ExtractiveWriter(None, corpus="demo", today="2025-01-01")
    part = demo_plan().part(1)
    research, request, draft = run(researcher, writer, part)
    locators = {p.locator for ps in research.by_section.values() for p in ps}
    assert "knowledge/cuda/01-memory.md#activation-checkpointing" in locators
    assert not any(loc.startswith("knowledge/training/00-activation-checkpointing.md") for loc in locators)
    assert "[CUDA Memory — Activation checkpointing](../cuda/01-memory.md#activation-checkpointing)" in draft.body
    assert check_draft(draft, request) == []


def test_workspace_template_is_used_and_a_broken_one_refused(tmp_path, engine_parts):
    researcher, _writer, part = engine_parts
    runners = tmp_path / "runners"
    runners.mkdir()
    (runners / "knowledge-file.md.j2").write_text(
        "# {{ title }}\n\nCUSTOM LAYOUT\n\n{% for s in sections %}## {{ s.heading }}\n\n"
        "{% for p in s.passages %}{{ p.quote }} [{{ p.id }}]\n\n{% else %}{{ s.empty }}\n\n{% endfor %}{% endfor %}")
    writer = ExtractiveWriter(runners, corpus="demo")
    _research, request, draft = run(researcher, writer, part)
    assert "CUSTOM LAYOUT" in draft.body and check_draft(draft, request) == []
    (runners / "knowledge-file.md.j2").write_text("{% for s in sections %}")
    with pytest.raises(ConfigError, match=r"knowledge-file.md.j2: line \d+: jinja2 syntax error"):
        ExtractiveWriter(runners)


def test_build_engine_defaults_to_offline_local_and_refuses_unknown_names(tmp_path):
    ws, _ = init_workspace(tmp_path / "ws")
    engine = build_engine(ws)
    assert (engine.engine, engine.search) == ("offline", "local")
    assert engine.researcher.name == "local" and engine.writer.engine == "offline"
    assert engine.check is check_draft and engine.model is None
    with pytest.raises(ConfigError, match="unknown writer engine 'gpt'"):
        build_engine(ws, engine="gpt")
    with pytest.raises(ConfigError, match="unknown search provider 'bing'"):
        build_engine(ws, search="bing")


def test_an_empty_section_is_recorded_and_the_drop_is_partial(tmp_path):
    from kb.engine.check import empty_sections, section_state
    from kb.records import DropRecord, read_drop, write_drop

    index = demo_index()
    researcher = LocalResearcher(index=index)
    writer = ExtractiveWriter(None, corpus="demo", today="2025-01-01")
    part = demo_plan().part(1)
    _research, _request, draft = run(researcher, writer, part)
    empty = empty_sections(draft.body, part)
    assert "DALI pipelines" in empty and "Activation checkpointing basics" not in empty
    assert section_state("Research found nothing on this section in demo.") == "empty"
    assert section_state("Text with a source [1].") == "filled" and section_state("Just text.") == "uncited"
    drop = DropRecord(plan="plans/training.md", batch=1, part=1, title=part.title, status="partial",
                      knowledge_file="knowledge/training/00-activation-checkpointing.md", created="2025-01-01T00:00:00Z",
                      sections_written=[s.title for s in part.sections], sections_empty=empty)
    path = tmp_path / "KNOWLEDGE-DROP-x-2025-01-01-0000.md"
    write_drop(path, drop)
    text = path.read_text(encoding="utf-8")
    assert f"**Status**: PARTIAL ({len(empty)} of 4 sections empty)" in text
    assert "- DALI pipelines (empty: research found nothing)" in text
    back = read_drop(path)
    assert back.status == "partial" and back.sections_empty == empty


def test_an_odd_backtick_in_a_quote_does_not_hide_the_next_citations():
    from kb.engine.check import section_state

    text = "From the docstring of `a.b` [1]:\n\n> uses ``x` oddly\n\nFrom the docstring of `c.d` [2]:\n\n> fine\n"
    assert section_state(text.split("\n\n", 2)[2]) == "filled"  # "From ... `c.d` [2]:" still cites


def _after_an_earlier_file(tmp_path, body: str, part):
    """Write ``part`` (batch 2) in a workspace whose earlier batch's file quotes demo.checkpoint.checkpoint."""
    import dataclasses

    from kb.records import KnowledgeMeta, SourceRef, write_knowledge

    ws, _ = init_workspace(tmp_path / "ws")
    write_knowledge(ws.knowledge_dir / "training" / "00-earlier.md",
                    KnowledgeMeta(title="Earlier File", plan="plans/training.md", batch=1, part=9, engine="offline",
                                  sources=[SourceRef(1, "demo.checkpoint.checkpoint", "doc", "demo.checkpoint.checkpoint")]),
                    body)
    researcher = LocalResearcher(ws, index=demo_index())
    writer = ExtractiveWriter(None, corpus="demo", today="2025-01-01", owners=QuoteOwners(ws, researcher.research_part))
    return run(researcher, writer, dataclasses.replace(part, batch=2))


def test_a_docstring_quoted_in_an_earlier_batch_is_pointed_to_not_quoted_again(tmp_path):
    from kb.engine.check import check_draft as check

    research, request, draft = _after_an_earlier_file(tmp_path, "# Earlier File\n", demo_plan().part(1))
    section2 = draft.body.split("## Section 2:")[1].split("## Section 3:")[0]
    assert "`demo.checkpoint.checkpoint` is quoted in [Earlier File](00-earlier.md) [" in section2
    # No second copy anywhere: no row, no sentence, no example of it.
    assert "| `demo.checkpoint.checkpoint` |" not in draft.body and "trades compute for memory" not in draft.body
    assert "use_reentrant=False" not in draft.body
    assert check(draft, request) == []
    assert any(s.locator == "knowledge/training/00-earlier.md" and s.kind == "knowledge" for s in draft.sources)


def test_a_linked_docstring_still_says_the_argument_the_section_names_when_the_earlier_file_did_not(tmp_path):
    import dataclasses

    from kb.engine.check import check_draft as check

    part = demo_plan().part(1)
    sections = [dataclasses.replace(s, details="demo.checkpoint.checkpoint, use_reentrant") if s.number == 2 else s
                for s in part.sections]
    research, request, draft = _after_an_earlier_file(
        tmp_path, "# Earlier File\n\nActivation checkpointing is a technique that trades compute for memory.\n",
        dataclasses.replace(part, sections=sections))
    section2 = draft.body.split("## Section 2:")[1].split("## Section 3:")[0]
    # The argument the plan names, in the docstring's words and cited to it, beside the link to the file quoting it ...
    assert re.search(r"- `demo.checkpoint.checkpoint`, argument `use_reentrant` \[\d+\]: which checkpointing variant", section2)
    assert "`demo.checkpoint.checkpoint` is quoted in [Earlier File](00-earlier.md) [" in section2
    # ... and nothing the earlier file says, nor a second table row.
    assert "trades compute for memory" not in draft.body and "| `demo.checkpoint.checkpoint` |" not in draft.body
    assert check(draft, request) == []


def test_an_empty_section_links_to_the_section_of_the_file_that_quotes_its_answer(tmp_path):
    import dataclasses

    from kb.engine.check import check_draft as check, pointing_sections, section_state
    from kb.records import KnowledgeMeta, SourceRef, write_knowledge

    ws, _ = init_workspace(tmp_path / "ws")
    write_knowledge(ws.knowledge_dir / "training" / "00-earlier.md",
                    KnowledgeMeta(title="Earlier File", plan="plans/training.md", batch=1, part=9, engine="offline",
                                  sources=[SourceRef(1, "demo.optim.Adam", "doc", "demo.optim.Adam")]),
                    "# Earlier File\n\n## Section 1: Setup\n\nNothing.\n\n## Section 3: Warmup schedules\n\n"
                    "| `demo.optim.Adam` | `Adam()` | Implements the Adam algorithm. | [1] |\n")
    index = demo_index()
    part = dataclasses.replace(demo_plan().part(1), batch=2)
    researcher = LocalResearcher(ws, index=index)
    asked = []

    def linkable(part_, number, quoted):
        asked.append((number, quoted))
        return ["demo.optim.Adam"] if number == 4 else []

    writer = ExtractiveWriter(None, corpus="demo", today="2025-01-01", owners=QuoteOwners(ws, researcher.research_part),
                              linkable=linkable)
    research, request, draft = run(researcher, writer, part)
    assert research.by_section[4] == []  # research found nothing for "Learning rate warmup" ...
    section4 = draft.body.split("## Section 4:")[1].split("## Sources")[0]
    # ... and the section says, in one cited line, which file's section quotes its answer, linked at its heading.
    assert ("- `demo.optim.Adam` is quoted in [Earlier File, Section 3: Warmup schedules]"
            "(00-earlier.md#section-3-warmup-schedules) [") in section4
    assert "Research found nothing" not in section4 and section_state(section4) == "filled"
    # Filled, but with nothing of its own: the drop, kb report and INDEX.md say it only points to its answer.
    kinds = {s.id: s.kind for s in draft.sources}
    assert pointing_sections(draft.body, part, kinds) == ["Learning rate warmup"]
    assert not any(w.startswith("section 4 ") for w in draft.warnings)
    assert any(s.locator == "knowledge/training/00-earlier.md#section-3-warmup-schedules" and s.kind == "knowledge"
               for s in draft.sources)
    assert check(draft, request) == []
    # Only sections research left empty ask, and they learn which section quotes each passage.
    assert {n for n, _q in asked} == {3, 4}
    assert ("demo.optim.Adam", "Warmup schedules", "") in asked[-1][1]
    # A section the linker finds nothing for stays empty, said so.
    assert "Research found nothing" in draft.body.split("## Section 3:")[1].split("## Section 4:")[0]


def test_linkable_takes_a_quoted_passage_only_on_topic_for_the_section():
    researcher = LocalResearcher(index=demo_index())
    part = demo_plan().part(1)
    on_topic = ("demo.checkpoint.checkpoint_sequential", "Activation checkpointing", "recomputation")
    # Recomputing activations answers "Activation checkpointing basics" when the section quoting it is about that.
    assert researcher.linkable(part, 1, [on_topic]) == ["demo.checkpoint.checkpoint_sequential"]
    # A "checkpoint" that saves files shares a word, not the topic: never linked, whatever section quotes it.
    assert researcher.linkable(part, 1, [("demo.io.save", "Activation checkpointing", "recomputation")]) == []
    # The section quoting it is about something else: its passage is not this section's answer.
    assert researcher.linkable(part, 1, [("demo.checkpoint.checkpoint_sequential", "Saving models", "disk files")]) == []
    # About a product the corpus never mentions (DALI): nothing answers it.
    assert researcher.linkable(part, 3, [("demo.data.Loader", "DALI pipelines", "data loading")]) == []
    assert researcher.linkable(part, 1, []) == []


def test_owners_know_the_quoting_section_and_what_later_siblings_will_quote(tmp_path):
    from kb.plan import load_plan

    ws, _ = init_workspace(tmp_path / "ws")
    plan_text = "\n".join([
        "# Knowledge Expansion: Tricks (2 runners in 1 batch)", "", "# BATCH 1: All (2 runners)", "",
        "## PART 1: Checkpointing", "", "- [ ] PART 1: Create training/00-ckpt.md", "",
        "**Step 2: Create Knowledge File**", "- [ ] Section 1: Checkpoint API (demo.checkpoint.checkpoint)", "",
        "## PART 2: Loading", "", "- [ ] PART 2: Create training/01-loading.md", "",
        "**Step 2: Create Knowledge File**", "- [ ] Section 1: Data loader (demo.data.Loader)", ""])
    (ws.root / "plans" / "tricks.md").write_text(plan_text, encoding="utf-8")
    first, second = load_plan(ws.root / "plans" / "tricks.md").parts
    owners = QuoteOwners(ws, LocalResearcher(ws, index=demo_index()).research_part)
    before = owners.elsewhere("plans/tricks.md", first)
    # The later sibling's passage is a link target for PART 1, never counted as already quoted.
    assert "demo.data.Loader" not in before.locators and before.owner("demo.data.Loader") is None
    loader = before.quoted_in("demo.data.Loader")
    assert (loader.where, loader.number, loader.title) == ("knowledge/training/01-loading.md", 1, "Data loader")
    assert loader.locator == "knowledge/training/01-loading.md#section-1-data-loader"
    after = owners.elsewhere("plans/tricks.md", second)
    assert after.owner("demo.checkpoint.checkpoint") == ("knowledge/training/00-ckpt.md", "Checkpointing")
    assert after.quoted_in("demo.checkpoint.checkpoint").label == "Checkpointing, Section 1: Checkpoint API"
    assert not after.later


def test_research_reads_no_file_its_batch_or_a_later_one_writes_and_rereads_the_tree_per_batch():
    # A run with --redo finds last run's files on disk. Were they read, a file's sources would depend on what an
    # earlier run left (two runs of the plan disagree); a fresh run has only the earlier batches' files.
    def part(number: int, target: str) -> str:
        return (f"## PART {number}: Part {number} (~100 lines)\n\n- [ ] PART {number}: Create {target}\n\n"
                "**Step 2: Create Knowledge File**\n- [ ] Section 1: Activation checkpointing basics (recomputation tradeoff)\n\n")

    sibling = "training/01-sibling.md"
    plan = parse_plan("# Knowledge Expansion: Memory (3 runners in 2 batches)\n\n# BATCH 1: First (2 runners)\n\n"
                      + part(1, "training/00-first.md") + part(2, sibling)
                      + "# BATCH 2: Later (1 runner)\n\n" + part(3, "training/02-later.md"), "plans/training.md")
    old = "Activation checkpointing basics: recomputation tradeoff, activations recomputed to save memory."
    stale = [CorpusDoc(kind="knowledge", locator=f"knowledge/{target}#section-1", title=f"Old {target}",
                       keywords="Activation checkpointing", text=old)
             for target in (sibling, "training/02-later.md")]
    loads = []

    def loader():
        loads.append(1)
        return demo_index(stale)

    researcher = LocalResearcher(loader=loader)
    researcher.use_plan(plan)
    assert researcher.written_with(plan.part(1)) == [plan.part(1).target, sibling, "training/02-later.md"]
    assert researcher.written_with(plan.part(3)) == ["training/02-later.md"]
    first = asyncio.run(researcher.research(plan.part(1), []))
    cited = {p.locator for ps in first.by_section.values() for p in ps}
    assert cited and not any(loc.startswith("knowledge/training/0") for loc in cited)
    researcher.use_plan(plan)  # the next batch: the tree is read again
    later = asyncio.run(researcher.research(plan.part(3), []))
    assert len(loads) == 2
    assert f"knowledge/{sibling}#section-1" in {p.locator for ps in later.by_section.values() for p in ps}


def test_a_section_quoting_nothing_of_its_own_is_counted_as_pointing_not_as_quoting():
    from kb.engine.check import points_only

    kinds = {1: "doc", 2: "knowledge"}
    above = "Also relevant, and quoted above: `demo.compile` [1], argument `backend` (Section 1).\n"
    there = "- `demo.compile` is quoted in [Other, Section 2: Modes](01-other.md#section-2-modes) [2].\n"
    own = "- `demo.compile` [1]: Compile a model with a backend.\n"
    assert points_only(above, kinds) and points_only(there, kinds) and points_only(above + there, kinds)
    assert not points_only(own + above, kinds) and not points_only("Research found nothing.\n", kinds)
