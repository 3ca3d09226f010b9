"""INDEX.md: markers, links, per-file lines, snippet status, the workspace template."""

from __future__ import annotations

import json

import pytest

from kb.consolidate import consolidate
from kb.errors import KbError
from test_consolidate_support import add_drop, add_knowledge, add_part, assert_links_resolve, make_workspace, plan_text


def test_hand_written_text_around_the_markers_survives(tmp_path):
    ws = make_workspace(tmp_path, git=False)
    add_part(ws, "perf/00-profiling.md", "GPU Profiling", 1, plan="plans/p.md", part=1)
    before = "# My KB\r\n\nNotes *I* wrote.\n\n"
    after = "\n## Appendix\n\nAlso mine.\n"
    ws.index_path.write_text(before + "<!-- kb:index:start -->\nold stuff\n<!-- kb:index:end -->" + after)
    consolidate(ws, commit=False)
    text = ws.index_path.read_bytes().decode()  # byte for byte: the CRLF line stays CRLF
    assert text.startswith(before + "<!-- kb:index:start -->\n")
    assert text.endswith("<!-- kb:index:end -->" + after)
    assert "old stuff" not in text and "GPU Profiling" in text
    # A second consolidation after new work keeps them too.
    add_part(ws, "perf/01-memory.md", "GPU Memory", 2, plan="plans/p.md", part=2)
    consolidate(ws, commit=False)
    text = ws.index_path.read_bytes().decode()
    assert text.startswith(before) and text.endswith(after) and "GPU Memory" in text


def test_missing_markers_append_the_block_and_keep_everything(tmp_path):
    ws = make_workspace(tmp_path, git=False)
    add_part(ws, "perf/00-profiling.md", "GPU Profiling", 1, plan="plans/p.md", part=1)
    ws.index_path.write_text("# Index\n\nNo markers here.\n")
    consolidate(ws, commit=False)
    text = ws.index_path.read_text()
    assert text.startswith("# Index\n\nNo markers here.\n\n<!-- kb:index:start -->\n")
    assert text.rstrip().endswith("<!-- kb:index:end -->")


def test_unpaired_markers_are_an_error_and_nothing_is_written(tmp_path):
    ws = make_workspace(tmp_path, git=False)
    drop = add_drop(ws, "perf/00-x.md", "X", plan="plans/p.md", part=1)
    add_knowledge(ws, "perf/00-x.md", "X", 1)
    broken = "# Index\n\n<!-- kb:index:start -->\nmine\n"
    ws.index_path.write_text(broken)
    with pytest.raises(KbError, match=r"INDEX.md:3: the markers"):
        consolidate(ws, commit=False)
    assert ws.index_path.read_text() == broken
    assert "consolidated: null" in drop.read_text()


def test_index_lists_every_file_with_links_that_resolve(tmp_path):
    ws = make_workspace(tmp_path, git=False)
    plan = "plans/perf.md"
    (ws.root / plan).write_text(plan_text([(1, "perf/00-profiling.md", True), (2, "perf/01 memory [draft].md", False)]))
    add_part(ws, "perf/00-profiling.md", "GPU Profiling", 1, plan=plan, part=1)
    add_part(ws, "perf/01 memory [draft].md", "GPU [Memory]", 2, plan=plan, part=2)
    # A file in the older shape: no front matter, indexed by its first heading.
    old = ws.knowledge_dir / "cuda" / "06-pytorch-jit.md"
    old.parent.mkdir(parents=True)
    old.write_text("# PyTorch JIT\n\n**Compile models ahead of time.**\n\n## Overview\n\nx\n\n## Section 1: Tracing\n\ny\n\n"
                   "## Sources\n\n### Web Research\n\n- [A](https://a) - a (accessed 2025-01-01)\n- [B](https://b) - b\n")
    consolidate(ws, commit=False)
    text = ws.index_path.read_text()
    links = assert_links_resolve(ws.root, text)
    assert "knowledge/perf/00-profiling.md" in links
    assert "knowledge/perf/01%20memory%20%5Bdraft%5D.md" in links
    assert "knowledge/cuda/06-pytorch-jit.md" in links
    assert "plans/perf.md" in links  # the plan that produced the files
    assert "[GPU \\[Memory\\]]" in text  # brackets in titles are escaped in link labels
    assert "[PyTorch JIT](knowledge/cuda/06-pytorch-jit.md): Compile models ahead of time." in text
    assert "1 section: Tracing" in text and "2 sources" in text
    assert "[GPU Profiling](knowledge/perf/00-profiling.md): GPU Profiling explains how things work." in text
    assert "from [perf](plans/perf.md) PART 1" in text
    assert "**3 files** in 2 topics" in text
    assert text.index("## [cuda/]") < text.index("## [perf/]")


def test_snippet_status_comes_from_the_validator_results(tmp_path):
    ws = make_workspace(tmp_path, git=False)
    add_part(ws, "perf/00-a.md", "A", 1, plan="plans/p.md", part=1)
    add_part(ws, "perf/01-b.md", "B", 2, plan="plans/p.md", part=2)
    consolidate(ws, commit=False)
    assert "validated" not in ws.index_path.read_text()
    results = {"snippets": [
        {"file": "knowledge/perf/00-a.md", "line": 9, "status": "pass", "reason": None},
        {"file": "knowledge/perf/01-b.md", "line": 9, "status": "skip", "reason": "needs cuda"},
        {"file": "knowledge/perf/01-b.md", "line": 20, "status": "weird-status"},
        {"no": "file"}, "junk",
    ], "environment": {"python": "3.11"}}
    (ws.snippets_dir / "results.json").write_text(json.dumps(results))
    result = consolidate(ws, commit=False)
    text = ws.index_path.read_text()
    assert "1 snippet: 1 pass" in text
    assert "2 snippets: 1 skip, 1 error" in text
    assert "(validated: 1 pass, 1 skip, 1 error)" in text
    assert result.index_changed and not result.drops
    # Unreadable results are a warning, not a crash.
    (ws.snippets_dir / "results.json").write_text("{not json")
    result = consolidate(ws, commit=False)
    assert any(w.kind == "unreadable" and "results.json" in w.message for w in result.warnings)


def test_the_workspace_template_is_used_and_the_packaged_one_is_the_fallback(tmp_path):
    ws = make_workspace(tmp_path, git=False)
    add_part(ws, "perf/00-a.md", "Alpha", 1, plan="plans/p.md", part=1)
    (ws.runners_dir / "index.md.j2").write_text("CUSTOM {{ totals.files }}{% for t in topics %} {{ t.name }}{% endfor %}\n")
    consolidate(ws, commit=False)
    assert "<!-- kb:index:start -->\nCUSTOM 1 perf\n<!-- kb:index:end -->" in ws.index_path.read_text()
    (ws.runners_dir / "index.md.j2").unlink()
    consolidate(ws, commit=False)
    text = ws.index_path.read_text()
    assert "CUSTOM" not in text and "[Alpha](knowledge/perf/00-a.md)" in text


def test_a_broken_template_names_its_line(tmp_path):
    ws = make_workspace(tmp_path, git=False)
    (ws.runners_dir / "index.md.j2").write_text("ok\n{% for x in %}\n")
    with pytest.raises(KbError, match=r"runners/index.md.j2:2: template error"):
        consolidate(ws, commit=False)


def test_sections_that_only_point_to_their_answer_are_counted_apart_in_index_and_skill(tmp_path):
    from kb.records import DropRecord, KnowledgeMeta, SourceRef, write_drop, write_knowledge

    ws = make_workspace(tmp_path, git=False)
    plan = "plans/perf.md"
    (ws.root / plan).write_text(plan_text([(1, "perf/00-tuning.md", True)]))
    sections = ["Basics", "Warmup", "Arr"]
    write_knowledge(ws.knowledge_dir / "perf" / "00-tuning.md",
                    KnowledgeMeta(title="Tuning", plan=plan, batch=1, part=1, sections=sections, engine="offline",
                                  sources=[SourceRef(1, "torch docs", "doc", "torch.optim.Adam")]),
                    "# Tuning\n\n## Section 1: Basics\n\n- `torch.optim.Adam` [1]: Implements Adam.\n")
    write_drop(ws.drops_dir / "KNOWLEDGE-DROP-tuning-2025-11-16-1401.md", DropRecord(
        plan=plan, batch=1, part=1, title="Tuning", status="partial", knowledge_file="knowledge/perf/00-tuning.md",
        created="2025-11-16T14:00:00Z", sections_written=sections, sections_empty=["Arr"],
        sections_pointing=["Warmup"]))
    consolidate(ws, commit=False)
    index = ws.index_path.read_text()
    assert "Basics · Warmup (points to its answer) · Arr (empty)" in index
    assert "(1 marked empty: research found nothing; 1 only point to the section that quotes their answer)" in index
    skill = ws.skill_path.read_text()
    assert "with 1 of 3 planned sections filled with cited excerpts, 1 more pointing to the section that quotes" in skill
