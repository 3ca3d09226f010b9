"""A file's support rate (the LLM writer's citation check, kept in its drop) is in INDEX.md and in kb report."""

from __future__ import annotations

import json

from kb.consolidate import consolidate
from kb.records import DropRecord, write_drop
from test_consolidate_support import add_knowledge, make_workspace, plan_text

SUPPORT = {"sentences": 16, "supported": 7, "rate": 0.4375, "sent_back": 9, "removed": 2, "rewritten": 7, "kept": 7}


def workspace_with_checked_file(tmp_path):
    """Two files of one plan: one the LLM writer wrote (its drop has the support counts), one the offline engine."""
    ws = make_workspace(tmp_path, git=False)
    plan = "plans/perf.md"
    (ws.root / plan).write_text(plan_text([(1, "perf/00-memory.md", True), (2, "perf/01-loading.md", True)]))
    for part, rel, title, research in ((1, "perf/00-memory.md", "GPU Memory", {"support": SUPPORT}),
                                       (2, "perf/01-loading.md", "Data Loading", {})):
        add_knowledge(ws, rel, title, part, plan=plan, part=part, batch=1)
        write_drop(ws.drops_dir / f"KNOWLEDGE-DROP-{rel.split('-', 1)[1][:-3]}-2025-11-16-140{part}.md", DropRecord(
            plan=plan, batch=1, part=part, title=title, status="complete", knowledge_file=f"knowledge/{rel}",
            created="2025-11-16T14:00:00Z", sections_written=["Basics"], engine="openai", research=research))
    return ws


def test_index_md_shows_each_files_support_rate(tmp_path):
    ws = workspace_with_checked_file(tmp_path)
    consolidate(ws, commit=False)
    lines = ws.index_path.read_text(encoding="utf-8").splitlines()
    memory = lines[next(i for i, line in enumerate(lines) if "[GPU Memory]" in line) + 1:][:2]
    loading = lines[next(i for i, line in enumerate(lines) if "[Data Loading]" in line) + 1:][:2]
    assert any("· support 44% of 16 drafted sentences" in line for line in memory), memory
    assert not any("support" in line for line in loading), loading  # no check ran: nothing is claimed


def test_kb_report_shows_the_same_rate_in_text_and_json(tmp_path, kb_cli):
    ws = workspace_with_checked_file(tmp_path)
    text = kb_cli("report", cwd=ws.root, env={"COLUMNS": "250"})
    assert text.code == 0, text.out + text.err
    row = next(line for line in text.out.splitlines() if "00-memory.md" in line)
    assert "support 44%" in row and "support" not in next(l for l in text.out.splitlines() if "01-loading.md" in l)
    data = json.loads(kb_cli("report", "--json", cwd=ws.root).out)
    rates = {f["file"]: f["drops"][-1]["support_rate"] for f in data["files"]}
    assert rates == {"knowledge/perf/00-memory.md": 0.4375, "knowledge/perf/01-loading.md": None}
