"""`kb report` over a small workspace written with kb's own writers and validated by the real
`kb validate-snippets`: exact counts in --json, --strict's exit codes, the table for people."""

from __future__ import annotations

import json
import shutil
import time

import pytest

from kb.records import DropRecord, KnowledgeMeta, SourceRef, write_drop, write_knowledge
from kb.workspace import init_workspace
from conftest import run_kb

PLAN = """# Knowledge Expansion: Demo (2 runners in 2 batches)

**Date**: 2025-01-01

# BATCH 1: Basics (2 runners)

## PART 1: Alpha (~100 lines)

- [✓] PART 1: Create demo/00-alpha.md (Completed 2025-01-01 10:00)

**Step 2: Create Knowledge File**
- [ ] Section 1: Intro (what it is)
- [ ] Section 2: Usage (how to use it)

## PART 2: Beta (~100 lines)

- [✓] PART 2: Create demo/01-beta.md (Completed 2025-01-01 10:05)

**Step 2: Create Knowledge File**
- [ ] Section 1: Intro (what)
- [ ] Section 2: Details (more)
- [ ] Section 3: Extras (never written)

# BATCH 2: More (2 runners)

## PART 3: Gamma (~100 lines)

- [✓] PART 3: Create demo/02-gamma.md (Completed 2025-01-01 11:00)

**Step 2: Create Knowledge File**
- [ ] Section 1: Only (one section)

## PART 4: Delta (~100 lines)

- [/] PART 4: Create demo/03-delta.md

**Step 2: Create Knowledge File**
- [ ] Section 1: Never (the PART failed)
"""

# Citations: [1] and [2, 3] and [3] in prose (4); x[1] in code and `a[2]` inline are no citations,
# nor is the numbered list under ## Sources.
ALPHA = """# Alpha

## Overview

An overview without citations.

## Section 1: Intro

Alpha is fast [1] and documented [2, 3]. Inline `a[2]` is code.

```python
print(2 + 2)
```

```text
x[1] is not a citation
```

## Section 2: Usage

Use it like this [3].

```python kb:skip="needs 8 GPUs"
print("never runs here")
```

## Sources

- [1] a docstring
- [2] another knowledge file
- [3] a web page
"""

BETA = """# Beta

## Section 1: Intro

Beta [1].

## Section 2: Details

Details without a citation.

```python
raise ValueError("boom")
```

## Sources

- [1] notes
"""

GAMMA = """# Gamma

## Section 1: Only

Gamma claims [1] and [9].

```python
print("gamma")
```
"""

LEGACY = """# Legacy file without front matter

## Overview

Written by an older tool.

## Section 1: Old Things

No citations here.

```python
print("legacy")
```
"""

FAST = 'preimport = []\ntimeout_s = 30\nmemory_limit_mb = 1024\nmax_processes = 64\nparallel = 2\n'


def _meta(title: str, part: int, batch: int, sources: list[SourceRef]) -> KnowledgeMeta:
    return KnowledgeMeta(title=title, plan="plans/demo.md", batch=batch, part=part, sources=sources, engine="test")


def _drop(ws, name: str, part: int, batch: int, target: str, status: str, consolidated: str | None) -> None:
    record = DropRecord(plan="plans/demo.md", batch=batch, part=part, title=name, status=status,
                        knowledge_file=target, created="2025-01-01T10:00:00Z", consolidated=consolidated)
    write_drop(ws.drops_dir / f"KNOWLEDGE-DROP-{name}-2025-01-01-1000.md", record)


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    """The workspace, validated once; tests that change it work on a copy."""
    workspace, _ = init_workspace(tmp_path_factory.mktemp("report") / "ws")
    root = workspace.root
    (root / "plans" / "demo.md").write_text(PLAN, encoding="utf-8")
    (root / "validators" / "cpu.toml").write_text(FAST, encoding="utf-8")
    demo = root / "knowledge" / "demo"
    write_knowledge(demo / "00-alpha.md", _meta("Alpha", 1, 1, [
        SourceRef(1, "torch.cuda.synchronize", "doc", "torch.cuda.synchronize"),
        SourceRef(2, "Beta", "knowledge", "knowledge/demo/01-beta.md"),
        SourceRef(3, "A page", "web", "https://example.org/page"),
    ]), ALPHA)
    write_knowledge(demo / "01-beta.md", _meta("Beta", 2, 1, [SourceRef(1, "notes", "folder", "notes/beta.md")]), BETA)
    write_knowledge(demo / "02-gamma.md", _meta("Gamma", 3, 2, [SourceRef(1, "G", "web", "https://example.org/g")]), GAMMA)
    (root / "knowledge" / "legacy").mkdir()
    (root / "knowledge" / "legacy" / "old.md").write_text(LEGACY, encoding="utf-8")
    _drop(workspace, "alpha", 1, 1, "knowledge/demo/00-alpha.md", "complete", "2025-01-02T09:00:00Z")
    _drop(workspace, "beta", 2, 1, "knowledge/demo/01-beta.md", "complete", None)
    _drop(workspace, "delta", 4, 2, "knowledge/demo/03-delta.md", "failed", None)

    started = time.monotonic()
    validated = run_kb("validate-snippets", "--json", cwd=root, timeout=120)
    assert validated.code == 1, validated.err  # beta's snippet fails
    assert time.monotonic() - started < 60
    # After validation: gamma's snippet changes (its result is stale) and a new one appears (never run).
    gamma = demo / "02-gamma.md"
    text = gamma.read_text(encoding="utf-8").replace('print("gamma")', 'print("gamma, edited")')
    gamma.write_text(text + '\n```python\nprint("new")\n```\n', encoding="utf-8")
    return workspace


def _report(root, *extra: str):
    return run_kb("report", "--json", *extra, "-w", str(root), timeout=60)


def test_json_counts_per_file_and_in_total(ws):
    result = _report(ws.root)
    assert result.code == 0, result.err  # without --strict, problems do not change the exit code
    doc = json.loads(result.out)
    files = {f["file"]: f for f in doc["files"]}
    assert list(files) == ["knowledge/demo/00-alpha.md", "knowledge/demo/01-beta.md",
                           "knowledge/demo/02-gamma.md", "knowledge/legacy/old.md"]

    alpha = files["knowledge/demo/00-alpha.md"]
    assert (alpha["plan"], alpha["part"], alpha["batch"]) == ("plans/demo.md", 1, 1)
    assert (alpha["sections_planned"], alpha["sections_present"], alpha["sections_cited"]) == (2, 2, 2)
    assert (alpha["citations"], alpha["citations_resolved"], alpha["citations_unresolved"]) == (4, 4, 0)
    assert alpha["sources"] == {"local": 1, "knowledge": 1, "web": 1, "other": 0}
    assert alpha["snippets"] == {"pass": 1, "defines_only": 0, "fail": 0, "fragment": 0, "skip": 2, "not_run": 0}
    assert alpha["skip_reasons"] == {"needs 8 GPUs": 1, "text transcript": 1}
    assert alpha["drops"] == [{"path": "drops/KNOWLEDGE-DROP-alpha-2025-01-01-1000.md", "status": "complete",
                               "consolidated": "2025-01-02T09:00:00Z", "support_rate": None}]  # an offline drop: not checked

    beta = files["knowledge/demo/01-beta.md"]
    assert (beta["sections_planned"], beta["sections_present"], beta["sections_cited"]) == (3, 2, 1)
    assert beta["missing_sections"] == [{"number": 3, "title": "Extras", "why": "no heading"}]
    assert beta["sources"] == {"local": 1, "knowledge": 0, "web": 0, "other": 0}
    assert beta["source_kinds"] == {"folder": 1}
    assert beta["snippets"] == {"pass": 0, "defines_only": 0, "fail": 1, "fragment": 0, "skip": 0, "not_run": 0}
    assert beta["snippet_problems"][0]["status"] == "fail" and "boom" in beta["snippet_problems"][0]["reason"]
    assert [d["consolidated"] for d in beta["drops"]] == [None]

    gamma = files["knowledge/demo/02-gamma.md"]
    assert (gamma["sections_planned"], gamma["sections_present"], gamma["sections_cited"]) == (1, 1, 1)
    assert (gamma["citations"], gamma["citations_unresolved"]) == (2, 1)
    text = (ws.root / gamma["file"]).read_text(encoding="utf-8").splitlines()
    gamma_line = next(i for i, line in enumerate(text, start=1) if "[9]" in line)
    assert gamma["unresolved"] == [{"number": 9, "line": gamma_line}]
    assert gamma_line > 10  # a line of the file, below the front matter
    assert gamma["snippets"] == {"pass": 0, "defines_only": 0, "fail": 0, "fragment": 0, "skip": 0, "not_run": 2}
    assert gamma["snippets_stale"] == 1 and gamma["drops"] == []

    legacy = files["knowledge/legacy/old.md"]
    assert legacy["front_matter"] is False and legacy["plan"] is None
    assert (legacy["sections_planned"], legacy["sections_present"], legacy["sections_cited"]) == (None, 1, 0)
    assert legacy["snippets"] == {"pass": 1, "defines_only": 0, "fail": 0, "fragment": 0, "skip": 0, "not_run": 0}
    assert legacy["sources"] == {"local": 0, "knowledge": 0, "web": 0, "other": 0}

    totals = doc["totals"]
    assert (totals["files"], totals["files_without_front_matter"], totals["files_without_plan"]) == (4, 1, 1)
    assert (totals["sections_planned"], totals["sections_present"], totals["sections_missing"]) == (6, 5, 1)
    assert (totals["sections_unplanned"], totals["sections_cited"]) == (1, 4)
    assert (totals["citations"], totals["citations_resolved"], totals["citations_unresolved"]) == (7, 6, 1)
    assert totals["sources"] == {"local": 2, "knowledge": 1, "web": 2, "other": 0}
    assert totals["snippets"] == {"total": 7, "pass": 2, "defines_only": 0, "fail": 1, "fragment": 0, "skip": 2, "not_run": 2}
    assert totals["snippets_stale"] == 1
    assert totals["skip_reasons"] == {"needs 8 GPUs": 1, "text transcript": 1}
    assert totals["drops"] == {"total": 3, "consolidated": 1, "not_consolidated": 2, "failed": 1,
                               "without_file": 1, "unreadable": 0}
    assert totals["parts"] == {"total": 4, "done": 3, "failed": 1, "pending": 0}
    assert [d["path"] for d in doc["orphan_drops"]] == ["drops/KNOWLEDGE-DROP-delta-2025-01-01-1000.md"]

    (plan,) = doc["plans"]
    assert (plan["path"], plan["completed"], plan["total"], plan["done"], plan["failed"]) == ("plans/demo.md", False, 4, 3, 1)
    assert [(b["number"], b["done"], b["total"], b["failed"]) for b in plan["batches"]] == [(1, 2, 2, 0), (2, 1, 2, 1)]
    # Every present section is filled (cited), marked empty, or neither: beta's Details and legacy's Old Things.
    assert (totals["sections_filled"], totals["sections_empty"], totals["sections_unsupported"]) == (4, 0, 2)
    # beta's missing section and failed snippet, gamma's [9], and the two sections neither cited nor marked empty
    assert len(doc["problems"]) == 5
    assert any('"Details" is neither filled with a citation nor marked empty' in p for p in doc["problems"])


def test_strict_exits_1_on_problems_and_0_once_fixed(ws, tmp_path):
    strict = _report(ws.root, "--strict")
    assert strict.code == 1, strict.err
    problems = json.loads(strict.out)["problems"]
    assert any('"Section 3: Extras" is missing' in p for p in problems)
    assert any("citation [9]" in p for p in problems) and any("snippet fail" in p for p in problems)

    # A copy with the three problems fixed; the plan moves to completed/, where the report still finds it ...
    fixed = tmp_path / "fixed"
    shutil.copytree(ws.root, fixed)
    beta = fixed / "knowledge" / "demo" / "01-beta.md"
    beta.write_text(beta.read_text(encoding="utf-8").replace('raise ValueError("boom")', 'print("fixed")')
                    .replace("## Sources", "## Section 3: Extras\n\nNow written [1].\n\n## Sources")
                    .replace("Details without a citation.", "Research found nothing on this section."), encoding="utf-8")
    legacy = fixed / "knowledge" / "legacy" / "old.md"
    legacy.write_text(legacy.read_text(encoding="utf-8").replace("No citations here.", "Research found nothing here."),
                      encoding="utf-8")
    gamma = fixed / "knowledge" / "demo" / "02-gamma.md"
    gamma.write_text(gamma.read_text(encoding="utf-8").replace(" and [9]", ""), encoding="utf-8")
    (fixed / "plans" / "demo.md").rename(fixed / "plans" / "completed" / "demo.md")
    # ... and a reset copy of it (every PART pending) back in plans/: files belong to the done PARTs.
    reset = PLAN.replace("[✓]", "[ ]").replace("[/]", "[ ]")
    (fixed / "plans" / "demo.md").write_text(reset, encoding="utf-8")
    result = _report(fixed, "--strict")
    assert result.code == 0, result.out
    doc = json.loads(result.out)
    assert doc["problems"] == []
    assert [(p["path"], p["done"]) for p in doc["plans"]] == [("plans/demo.md", 0), ("plans/completed/demo.md", 3)]
    assert {f["plan"] for f in doc["files"]} == {"plans/completed/demo.md", None}
    assert doc["totals"]["sections_missing"] == 0 and doc["totals"]["citations_unresolved"] == 0
    assert (doc["totals"]["sections_empty"], doc["totals"]["sections_unsupported"]) == (2, 0)
    # beta's edited snippet has no result yet: not run, which --strict accepts.
    assert doc["totals"]["snippets"]["not_run"] == 3 and doc["totals"]["snippets"]["fail"] == 0


def test_table_for_people_names_every_file(ws):
    result = run_kb("report", "-w", str(ws.root), timeout=60)
    assert result.code == 0, result.err
    for name in ("demo/00-alpha.md", "demo/01-beta.md", "demo/02-gamma.md", "legacy/old.md"):
        assert name in result.out
    assert "(no front matter)" in result.out
    assert "plans/demo.md: 3/4 parts done, 1 failed" in result.out
    assert "'needs 8 GPUs': 1" in result.out
    assert "Problems (5; --strict exits 1 on these)" in result.out
    assert "sections filled (cited): 4 (0 only pointing to their answer), marked empty: 0, neither: 2" in result.out


def test_no_workspace_is_one_line_and_exit_2(tmp_path):
    result = run_kb("report", cwd=tmp_path, timeout=60)
    assert result.code == 2
    assert result.err.count("\n") == 1 and "no kb workspace" in result.err


def test_help_documents_strict():
    result = run_kb("report", "--help", timeout=60)
    assert result.code == 0 and "--strict" in result.out and "--json" in result.out


def test_unreadable_front_matter_and_non_plans_are_reported_not_fatal(tmp_path):
    from kb.report import collect_report

    workspace, _ = init_workspace(tmp_path / "ws")
    (workspace.root / "plans" / "README.md").write_text("# Notes about plans\n\nNo PART here.\n", encoding="utf-8")
    broken = workspace.root / "knowledge" / "broken.md"
    broken.write_text("---\ntitle: [unclosed\n---\n\n# Broken\n\n## Section 1: Still Here\n\nText [1].\n", encoding="utf-8")
    report = collect_report(workspace)
    (entry,) = report.files
    assert entry.error and entry.error.startswith("front matter unreadable")
    assert (entry.sections_present, entry.citations, entry.citations_unresolved) == (1, 1, 1)
    assert report.skipped_plans == [{"path": "plans/README.md", "reason": "no PART found: not a plan"}]
    assert any("could not be read" in p for p in report.problems())


def test_a_plan_with_a_5000_digit_part_number_breaks_neither_report_nor_serve_build(tmp_path):
    workspace, _ = init_workspace(tmp_path / "ws")
    root = workspace.root
    (root / "plans" / "demo.md").write_text(PLAN, encoding="utf-8")
    huge = "7" * 5000
    (root / "plans" / "huge.md").write_text(
        f"# Knowledge Expansion: Huge\n\n# BATCH 1: B\n\n## PART {huge}: H\n- [ ] PART {huge}: Create t/h.md\n\n"
        "## PART 1: One\n- [ ] PART 1: Create t/one.md\n", encoding="utf-8")
    result = _report(root)
    assert result.code == 0, result.err
    assert "Traceback" not in result.err
    doc = json.loads(result.out)
    assert [(p["path"], p["total"]) for p in doc["plans"]] == [("plans/demo.md", 4), ("plans/huge.md", 1)]
    built = run_kb("serve", "--build", "site", cwd=root, timeout=120)
    assert built.code == 0, built.err
    assert "Traceback" not in built.err
    assert (root / "site" / "index.html").is_file()


@pytest.mark.parametrize("columns", ["80", "60", "200"])
def test_every_file_name_shows_whole_at_any_width(ws, columns):
    # 80 columns is a terminal's default and what rich assumes for every pipe (`kb report | cat`).
    long_name = ws.root / "knowledge" / "performance" / "07-activation-checkpointing-strategies.md"
    long_name.parent.mkdir(exist_ok=True)
    long_name.write_text("# Activation checkpointing\n\n## Overview\n\nText.\n", encoding="utf-8")
    try:
        result = run_kb("report", "-w", str(ws.root), timeout=60, env={"COLUMNS": columns})
    finally:
        long_name.unlink()
        long_name.parent.rmdir()
    assert result.code == 0, result.err
    for name in ("demo/00-alpha.md", "demo/01-beta.md", "demo/02-gamma.md", "legacy/old.md",
                 "performance/07-activation-checkpointing-strategies.md"):
        assert name in result.out, (columns, result.out)
    assert "plans/demo.md: 3/4 parts done, 1 failed" in result.out
